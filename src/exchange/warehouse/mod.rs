//! The warehouse side: its own database, and the consumer that turns "ship this" messages into
//! `shipment_request` rows (`sql/warehouse/migrations/`).
//!
//! Nothing here reads the points database, and nothing there reads this one. The consumer runs on the message
//! service ([`crate::messaging::consume`]): it commits the shipment requests of a batch in one statement,
//! where the UNIQUE key on `credit_exchange_id` turns a duplicate delivery into "already done"; then the
//! message service calls back and acks.

mod consumer;

pub use consumer::{ShipmentHandler, WarehouseStats};
