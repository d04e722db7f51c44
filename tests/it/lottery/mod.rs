//! The lottery: its service and procedures, its HTTP API, and the prizes its gift worker delivers.

mod batch_sql;
mod delivery;
mod http;
mod service;
mod verifiable;
