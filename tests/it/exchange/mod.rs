//! The points exchange: its service and procedures, its HTTP API, and the shipments its warehouse consumes.

mod batch_sql;
mod http;
mod service;
mod shipping;
