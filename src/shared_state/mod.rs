//! Shared state in Redis: what one instance learns and every other instance (and a load balancer in front of
//! them) may use to answer without a database, over a Redis connection that never holds a request up for long.
//!
//! - [`closed`]: closed facts (sold out, ended, all drawn), remembered, published and republished
//!   ([`ClosedState`]), one piece of machinery for every domain.
//! - [`bounded_redis`]: the connection every user of Redis shares, each command bounded in time and failing
//!   open to the database ([`BoundedRedis`]).
//!
//! Redis is only ever an accelerator here: the database stays the source of truth, and any Redis error,
//! timeout or unknown value means "ask the database".

pub mod bounded_redis;
pub mod closed;

pub use bounded_redis::{BoundedRedis, RedisFault};
pub use closed::{ClosedFact, ClosedState, Reopening};
