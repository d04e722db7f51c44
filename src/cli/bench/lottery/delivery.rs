//! The lottery workload's delivery phase: the durable draw's wins go through the reliable message service (the
//! relay, RabbitMQ, a gift worker held to a configured rate) to a real local gift service that fails a share of
//! the calls on purpose. It measures the rate the gift service saw and checks that every win was delivered once
//! in effect and that no message is left in flight.

use std::time::{Duration, Instant};

use mysql_async::Pool;
use serde::Serialize;

use crate::cli::bench::error::BenchError;
use seckill::local::gift_service::{GiftServiceStub, StubConfig};
use seckill::lottery::PRIZE_TOPIC;
use seckill::lottery::delivery::{GiftWorker, GiftWorkerConfig};
use seckill::lottery::read_gift_call;
use seckill::messaging::{Relay, RelayConfig, Topology, outbox, spawn_consumer};

/// The share of the gift service's calls that fail (503) on purpose: the worker's retries are calls too, so the
/// rate it holds is the rate of every call, not of first tries.
const FAIL_SHARE: f64 = 0.1;

/// Calls the gift worker has in flight at once: enough that the rate, not the concurrency, is the limit.
const CONCURRENCY: usize = 32;

/// What the delivery phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryReport {
    /// Wins to deliver.
    pub wins: u64,
    /// The gift worker's configured calls per second.
    pub configured_rate: f64,
    /// Calls per second the gift service saw, from its first call to its last (the last retries' backoff
    /// included).
    pub achieved_rate: f64,
    /// Calls per second over the middle 80% of the calls: the pace held while there was a backlog.
    pub steady_rate: f64,
    /// How far the steady rate is from the configured one, in percent (negative: slower).
    pub deviation_percent: f64,
    /// Calls the gift service answered, retries included.
    pub calls: usize,
    /// The share of calls the gift service failed on purpose.
    pub fail_share: f64,
    /// From the relay's start until every win was delivered and called back.
    pub took_ms: f64,
}

/// Delivers the `wins` prize messages of campaign `campaign_id` waiting in `pool`'s outbox at `rate` calls per
/// second, and checks the books of the delivery: one effect per win at the gift service, nothing left in
/// flight. Each campaign has queues of its own, so that a duplicate left in an earlier run's queue (a re-send
/// whose first copy was consumed) never reaches this run's gift service.
///
/// # Errors
/// [`BenchError::BooksDoNotBalance`] when a win is not delivered exactly once in effect within a generous
/// limit; database and broker errors.
pub async fn deliver(
    pool: &Pool,
    amqp_url: &str,
    campaign_id: i64,
    wins: u64,
    rate: f64,
) -> Result<DeliveryReport, BenchError> {
    let stub = GiftServiceStub::start(StubConfig { fail_share: FAIL_SHARE, ..StubConfig::new(read_gift_call) }).await?;
    // A burst of 20 ms of calls: the pacer may make up for a short gap (no message ready, a timer woken late)
    // instead of losing those slots for good.
    let burst = (rate / 50.0).ceil().clamp(1.0, 10_000.0) as u32;
    let config = GiftWorkerConfig { rate, burst, concurrency: CONCURRENCY, ..GiftWorkerConfig::default() };
    let worker = GiftWorker::new(&stub.url(), config)?;
    let topology = Topology::new(format!("seckill-bench-lottery-{}-{campaign_id}", std::process::id()));
    let relay_config =
        RelayConfig { topology: topology.clone(), topics: vec![PRIZE_TOPIC.to_string()], ..RelayConfig::default() };
    let started = Instant::now();
    let relay = Relay::new(pool.clone(), amqp_url, relay_config).spawn();
    let consumer = spawn_consumer(amqp_url, worker.consumer_config(topology), worker.clone());
    // Twice the time the rate needs, and time for the broker's queues to be declared.
    let limit = Duration::from_secs_f64(wins as f64 / rate * 2.0) + Duration::from_secs(30);
    let drained = loop {
        if !outbox::any_in(pool, &outbox::IN_FLIGHT).await? {
            break Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            let status = outbox::status(pool).await?;
            break Err(BenchError::BooksDoNotBalance(format!(
                "prize messages not delivered after {limit:?}: {status:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    relay.stop().await;
    consumer.stop().await;
    let took = drained?;
    let effects = stub.effects_per_id();
    let twice = effects.values().filter(|&&effects| effects != 1).count();
    if effects.len() as u64 != wins || twice > 0 {
        return Err(BenchError::BooksDoNotBalance(format!(
            "{} of {wins} wins reached the gift service, {twice} of them more than once in effect",
            effects.len()
        )));
    }
    let log = stub.call_log();
    let steady_rate = log.middle_rate(0.8).unwrap_or(0.0);
    Ok(DeliveryReport {
        wins,
        configured_rate: rate,
        achieved_rate: log.achieved_rate().unwrap_or(0.0),
        steady_rate,
        deviation_percent: (steady_rate - rate) / rate * 100.0,
        calls: log.calls.len(),
        fail_share: FAIL_SHARE,
        took_ms: took.as_secs_f64() * 1000.0,
    })
}
