//! The field's seckill, as the hot workload's baseline: every buyer is one Lua script run in Redis (EVALSHA), the
//! design most flash-sale projects use.
//!
//! The script, atomically: a buyer seen before (a set of buyers) is a repeat; no stock left (a counter) is sold
//! out; else the counter goes down by one and the buyer is recorded. Fast, but not durable: a Redis that dies loses
//! whatever it had not yet written to disk, and the sales must still reach a database.
//!
//! It runs on a private Redis ([`seckill::local::redis::LocalRedis`]) with the hot run's callers, fresh buyers and
//! duration, twice: at its best, the callers sharing a few multiplexed connections (pipelined, as Lettuce does by
//! default), and with a connection per caller. Its books are checked as the durable run's are: buyers told
//! success = units taken = buyers recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::BenchError;
use super::redis_connections;
use super::workload::Tally;

/// The seckill, in Lua. KEYS: stock, buyers. ARGV: the buyer. Answers `success`, `repeat` or `sold_out`.
const SECKILL_SCRIPT: &str = r"
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return 'repeat'
end
local left = tonumber(redis.call('GET', KEYS[1]))
if not left or left <= 0 then
  return 'sold_out'
end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 'success'
";

/// Units in stock: more than any run sells.
const STOCK: i64 = 1_000_000_000;

/// One run of the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct RedisRunReport {
    pub baseline: &'static str,
    pub concurrency: usize,
    /// Multiplexed connections the callers shared.
    pub connections: usize,
    pub seconds: f64,
    pub seckills: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seckills_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn redis_error(what: &str) -> impl Fn(redis::RedisError) -> BenchError + '_ {
    move |error| BenchError::Redis(format!("Redis baseline, {what}: {error}"))
}

/// Runs the baseline once: `concurrency` callers sharing `connections` connections for `duration`, each buyer
/// new, then checks its books.
///
/// # Errors
/// [`BenchError::Redis`] when Redis cannot be reached or set up, [`BenchError::BooksDoNotBalance`].
pub(crate) async fn run(
    url: &str,
    concurrency: usize,
    connections: usize,
    duration: Duration,
) -> Result<RedisRunReport, BenchError> {
    let opened = redis_connections::open(url, connections).await.map_err(BenchError::Redis)?;
    let keys = ["seckill:bench:stock", "seckill:bench:buyers"];
    let mut first = opened[0].clone();
    redis::cmd("DEL").arg(&keys).query_async::<()>(&mut first).await.map_err(redis_error("clearing"))?;
    redis::cmd("SET").arg(keys[0]).arg(STOCK).query_async::<()>(&mut first).await.map_err(redis_error("stocking"))?;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(SECKILL_SCRIPT)
        .query_async(&mut first)
        .await
        .map_err(redis_error("loading the script"))?;

    let opened = Arc::new(opened);
    let (sha, next) = (Arc::new(sha), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let deadline = started + duration;
    let callers: Vec<_> = (0..concurrency.max(1))
        .map(|caller| {
            let (opened, sha, next) = (opened.clone(), sha.clone(), next.clone());
            tokio::spawn(async move {
                let mut connection = opened[caller % opened.len()].clone();
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let buyer = next.fetch_add(1, Ordering::Relaxed);
                    let began = Instant::now();
                    let answer: Result<String, _> = redis::cmd("EVALSHA")
                        .arg(sha.as_str())
                        .arg(2)
                        .arg(keys[0])
                        .arg(keys[1])
                        .arg(buyer)
                        .query_async(&mut connection)
                        .await;
                    tally.latencies.record(began.elapsed());
                    let error = match answer.as_deref() {
                        Ok("success") => None,
                        Ok(other) => Some(format!("a fresh buyer told {other:?}")),
                        Err(error) => Some(error.to_string()),
                    };
                    match error {
                        None => tally.successes += 1,
                        Some(error) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert(error);
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for caller in callers {
        let tally =
            caller.await.map_err(|error| BenchError::Redis(format!("a caller of the Redis baseline: {error}")))?;
        total.merge(tally);
    }
    let seconds = started.elapsed().as_secs_f64();

    let (left, buyers): (i64, u64) = redis::pipe()
        .cmd("GET")
        .arg(keys[0])
        .cmd("SCARD")
        .arg(keys[1])
        .query_async(&mut first)
        .await
        .map_err(redis_error("reading its books"))?;
    let taken = u64::try_from(STOCK - left).unwrap_or(u64::MAX);
    if taken != total.successes || buyers != total.successes {
        return Err(BenchError::BooksDoNotBalance(format!(
            "Redis baseline: {} buyers told success, {taken} units taken, {buyers} buyers recorded",
            total.successes
        )));
    }
    redis::cmd("DEL").arg(&keys).query_async::<()>(&mut first).await.map_err(redis_error("clearing"))?;
    let (p50_ms, p99_ms, _) = total.latencies.summary();
    Ok(RedisRunReport {
        baseline: "redis_lua",
        concurrency,
        connections: opened.len(),
        seconds,
        seckills: total.successes,
        errors: total.errors,
        first_error: total.first_error,
        seckills_per_s: total.successes as f64 / seconds,
        p50_ms,
        p99_ms,
    })
}
