//! The per-buyer rate limit held across instances: one atomic Redis script per request, so that N instances
//! behind a balancer admit one buyer's rate in total, not N times it.
//!
//! The limit is GCRA (the generic cell rate algorithm), which admits exactly what a token bucket of the same
//! rate and burst admits, with one number per buyer: the theoretical arrival time (TAT) of the buyer's next
//! request, in microseconds of Redis's own clock (`TIME`), so instances' clocks never matter.
//!
//! ```text
//! {prefix}rate:buyer:{phone}    the buyer's TAT (integer µs), expiring (PX) when the bucket would be full again
//! ```
//!
//! A request is admitted when `max(TAT, now) + 1/rate - now <= burst/rate`, and then moves the TAT on by
//! `1/rate`. Keys expire exactly when the buyer's bucket would be full again, so they clean themselves.
//!
//! Redis failing never refuses anyone: the caller falls back to the in-process token buckets of
//! [`crate::seckill::http::SeckillHttp::admission`], per process as before, and every command is bounded
//! ([`crate::shared_state::bounded_redis::REDIS_TIMEOUT`]; after a failure Redis is skipped for
//! [`crate::shared_state::bounded_redis::REDIS_BACKOFF`]).

use crate::seckill::Phone;
use crate::shared_state::bounded_redis::{BoundedRedis, RedisFault};

use super::rate::Rate;

/// The default prefix of the limit's keys: `seckill:rate:buyer:{phone}`.
pub const DEFAULT_KEY_PREFIX: &str = "seckill:";

/// Who runs the script, in Redis warnings.
const USER: &str = "shared rate limit";

/// One GCRA step, atomic in Redis. Sent with `EVAL`: Redis keeps the compiled script by its hash, and the text
/// is a few hundred bytes.
const GCRA: &str = r"
-- KEYS[1] the buyer's key; ARGV[1] the emission interval (µs per request: 1/rate), ARGV[2] the burst
-- (µs: burst/rate). Answers 1 when the request is admitted, 0 when it is refused.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
    tat = now
end
local next_tat = tat + interval
if next_tat - now > burst then
    return 0
end
-- Expires when the bucket is full again: nothing is lost by forgetting it then.
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return 1
";

/// The per-buyer limit in Redis.
#[derive(Debug, Clone)]
pub(crate) struct SharedBuyerLimit {
    redis: BoundedRedis,
    prefix: String,
    /// Microseconds per request.
    interval: u64,
    /// Microseconds of burst.
    burst: u64,
}

impl SharedBuyerLimit {
    /// The limit `rate` per buyer in `redis` under `prefix`, or `None` for a rate that never refills (zero per
    /// second), which only the in-process limiter holds.
    pub(crate) fn new(redis: BoundedRedis, prefix: String, rate: Rate) -> Option<Self> {
        if rate.per_second <= 0.0 || !rate.per_second.is_finite() {
            return None;
        }
        let micros = |seconds: f64| (seconds * 1e6).round().clamp(1.0, 1e15) as u64;
        Some(SharedBuyerLimit {
            redis,
            prefix,
            interval: micros(1.0 / rate.per_second),
            burst: micros(rate.burst / rate.per_second),
        })
    }

    /// The key of a buyer's limit.
    pub(crate) fn key(&self, phone: Phone) -> String {
        format!("{}rate:buyer:{phone}", self.prefix)
    }

    /// Takes one request from the buyer's shared allowance: `Ok(false)` when over the limit.
    ///
    /// # Errors
    /// Why Redis was not used: the caller falls back to its own limiter.
    pub(crate) async fn take(&self, phone: Phone) -> Result<bool, RedisFault> {
        let mut eval = redis::cmd("EVAL");
        eval.arg(GCRA).arg(1).arg(self.key(phone)).arg(self.interval).arg(self.burst);
        let mut connection = self.redis.connection();
        let admitted = self.redis.bounded(USER, async move { eval.query_async::<i64>(&mut connection).await }).await?;
        Ok(admitted == 1)
    }
}
