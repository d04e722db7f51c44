//! The points exchange (积分兑换), points side: users' balances, the gift catalogue, and exchanges of points for
//! gifts that the warehouse then ships.
//!
//! An exchange is decided in the database, in one procedure call: the gift's row lock (a popular gift is a hot
//! row, like a seckill item) and the user's balance are held for the decision and a commit, never across a
//! network round trip. Concurrent exchanges of one gift share one transaction through the group-commit lanes
//! ([`crate::group_commit`]). An exchange that goes through writes, in that one transaction, the deduction and
//! its ledger row, one unit of stock, the `credit_exchange` row and one `message_outbox` row asking the warehouse
//! to ship it: the message exists exactly when the exchange committed, and the relay
//! ([`crate::messaging::Relay`]) delivers it.
//!
//! Every request carries the client's request id. The database records the first answer to each (user, request
//! id), refusals included, so a retry with the same id (after a timeout, an in-doubt answer, a crash) hears that
//! answer again, flagged as a repeat, and never pays twice.
//!
//! Its HTTP side, a JSON API and a page for a host app to merge, is [`http`] ([`http::router`]). The message
//! it produces is [`message`] ([`SHIPMENT_TOPIC`], [`ShipmentRequest`]); its consumer, the warehouse with its
//! own database, is [`warehouse`] ([`warehouse::ShipmentHandler`]).
//!
//! Its SQL: `sql/migrations/V4__credit_exchange.sql` (the tables), `sql/procedures/exchange/grant_credit.sql` and
//! `sql/procedures/exchange/exchange_credit_batch.sql` (the decision, its locks and its order of precedence).

mod books;
mod credit;
mod error;
mod exchange_credit_batch;
mod gift;
mod grant_credit;
mod history;
pub mod http;
mod lanes;
pub mod message;
mod outcome;
mod recorded;
mod request;
mod service;
pub mod warehouse;

pub use books::{Books, GiftBooks, UserBooks};
pub use credit::{LedgerEntry, LedgerReason};
pub use error::ExchangeError;
pub use gift::{Gift, MAX_GIFT_NAME_CHARS, NewGift};
pub use grant_credit::MAX_NOTE_CHARS;
pub use history::ExchangeRecord;
pub use message::{SHIPMENT_TOPIC, ShipmentRequest};
pub use outcome::{ExchangeOutcome, InnerError};
pub use request::{InvalidRequestId, MAX_REQUEST_ID_CHARS, RequestId};
pub use service::Exchange;
