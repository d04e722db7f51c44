//! The reliable message service: business facts committed in one database delivered to another service's
//! database through RabbitMQ, at least once, with effects that happen once.
//!
//! ```text
//!  business procedure ──(same transaction)──▶ message_outbox ──relay──▶ RabbitMQ ──▶ consumer ──▶ its database
//!                                                    ▲                                  │
//!                                                    └─ callback: done, later, poison ◀─┘ (after its commit)
//! ```
//!
//! - [`outbox`]: the table business procedures write to, and the relay's claims on it.
//! - [`relay::Relay`]: publishes due messages with publisher confirms and marks them sent only on ack; records
//!   what consumers call back (consumed, later, poison); re-sends messages not consumed in time, later each time,
//!   for as long as it takes; only a message refused as poison `max_attempts` times is dead (visible,
//!   re-triable by an operator). An outage makes messages late, never dead.
//! - [`consumer::consume`]: runs a [`consumer::Handler`] over a topic's messages: commit, call back, then ack.
//! - [`callback`]: what consumers answer the relay (done, later, poison), and how it travels.
//! - [`running`]: a relay or consumer on a task of its own until stopped, to run the service in-process.
//!
//! ## The promise: at least once, effects once
//!
//! A message exists exactly when its business fact committed (same transaction). It is delivered at least
//! once: nothing removes it from the outbox until its consumer called back, and a message refused as poison
//! until its last attempt is kept, dead, for an operator. It can be delivered more than once; consumers make
//! that harmless by being idempotent on the business key (a UNIQUE key: a duplicate means "already done"). The
//! duplicate windows, each measured by the tests in `tests/it/messaging.rs`:
//!
//! 1. The relay dies (or its connection breaks) after the broker acked a publish and before the row was
//!    marked sent: the message is sent again when the claim's lease ends (`Schedule::claim_lease`).
//! 2. The consumer commits and dies (or its connection breaks) before its callback is confirmed or before it
//!    acks: the broker redelivers at once; the consumer's idempotency absorbs it.
//! 3. The consumer is slower than `Schedule::consume_timeout` (or its callback is lost): the relay sends the
//!    message again; absorbed the same way.
//!
//! Messages can also arrive out of order across re-sends; consumers must not depend on order.

pub mod callback;
pub mod consumer;
mod error;
pub mod outbox;
pub mod relay;
pub mod running;
pub mod topology;

pub use consumer::{ConsumerConfig, Handled, Handler, Incoming, consume};
pub use error::MessagingError;
pub use outbox::{MessageRecord, MessageState, OutboxMessage, OutboxStatus, Schedule};
pub use relay::{Relay, RelayConfig};
pub use running::{Running, spawn_consumer};
pub use topology::Topology;
