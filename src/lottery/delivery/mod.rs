//! Prize delivery: the lottery's wins handed to a gift service that must not be flooded, each delivered once
//! in effect.
//!
//! ```text
//!  draw procedure ──(same transaction)──▶ message_outbox ──relay──▶ RabbitMQ ──▶ GiftWorker ──POST──▶ gift service
//!                                          (lottery.prize)                      rate, concurrency,   Idempotency-Key:
//!                                                                               timeout, retries     lottery-draw-{id}
//! ```
//!
//! - [`PrizeMessage`](super::PrizeMessage) and [`PRIZE_TOPIC`](super::PRIZE_TOPIC): the message the lottery
//!   writes for each win ([`super::message`]), which the gift service is sent as it is.
//! - [`GiftWorker`]: the message service's [`Handler`](crate::messaging::Handler) that calls the gift service,
//!   paced by a [`Pacer`] (GCRA: at most `rate` calls a second, `burst` at once) and a concurrency bound,
//!   every call with a timeout; 408, 429, 5xx, timeouts and connection errors retried after the service's
//!   `Retry-After` (which pauses the whole worker) or a doubling wait.
//! - [`GiftClient`]: one call and how its answer is read ([`GiftAnswer`]).
//! - A real gift service on loopback for tests, the demo and the benchmark is a local server
//!   ([`crate::local::gift_service::GiftServiceStub`]), checking calls by [`read_gift_call`](super::read_gift_call).
//!
//! ## The promise: at least once, effect once
//!
//! The message service delivers each win at least once; the worker may call the gift service more than once
//! for it, and every call carries the same `Idempotency-Key`, so the gift is delivered once. The windows
//! where a win is asked for again:
//!
//! 1. A call fails (5xx, timeout, cut connection) after the service did the work: the worker's retry is
//!    answered "already delivered" (2xx again, or 409).
//! 2. The worker dies after the service delivered and before the message service heard of it (the callback
//!    and the ack come once the whole batch is done): RabbitMQ redelivers the batch to the next worker.
//! 3. A delivery takes longer than the relay's consume timeout (a backlog behind the rate limit, or retries):
//!    the relay sends the message again. Size the relay's `--consume-timeout` above the backlog's drain time
//!    (backlog / rate) to keep these rare; they are harmless either way.
//!
//! A message still failing after its calls is left for the message service to send again later
//! ([`Handled::Later`](crate::messaging::Handled::Later)), however long the gift service stays down: late, never
//! dead. A refusal (4xx but 408, 409 and 429) is poison: a message refused on every send ends dead, visible to
//! operators (`seckill messages dead`) and re-triable (`seckill messages retry`).

mod consumer;
mod error;
mod gift_client;
mod pacer;

pub use consumer::{GiftStats, GiftWorker, GiftWorkerConfig};
pub use error::GiftDeliveryError;
pub use gift_client::{GiftAnswer, GiftClient, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
pub use pacer::{InvalidRate, Pacer};
