//! `seckill bench --workload exchange`: points exchanges through the reliable message service, measured in four
//! phases, with the books of both databases reconciled at the end.
//!
//! 1. **Exchanges**: callers exchange a hot gift and a spread of others for `duration`, relay stopped: the
//!    exchanges committed per second, each with its outbox message in the same transaction.
//! 2. **Relay**: the relay alone publishes that backlog, the consumer stopped: messages per second relayed with
//!    publisher confirms (marked sent); then the warehouse consumer ships it: messages per second consumed
//!    (shipment requests committed, callbacks confirmed).
//! 3. **Latency**: exchanges at a sustained rate with everything running: exchange-to-shipment latency, from the
//!    `credit_exchange` row's commit time to the `shipment_request` row's (one server's clock).
//! 4. **Broker restart** (only on a private broker the bench started): the broker is killed, exchanges go on
//!    at the sustained rate, the broker comes back: how long the backlog takes to drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use serde::Serialize;

use super::error::BenchError;
use crate::cli::latencies::Latencies;
use seckill::database::acquire;
use seckill::database::error::DatabaseError;
use seckill::database::rows::query_all;
use seckill::exchange::SHIPMENT_TOPIC;
use seckill::exchange::warehouse::ShipmentHandler;
use seckill::exchange::{Books, Exchange, ExchangeOutcome, NewGift};
use seckill::group_commit::GroupCommitConfig;
use seckill::local::rabbitmq::LocalRabbitMq;
use seckill::messaging::{self, ConsumerConfig, MessageState, Relay, RelayConfig, Running, Schedule, Topology, outbox};

/// How the exchange workload runs.
#[derive(Debug, Clone)]
pub struct ExchangeBenchConfig {
    /// Users with points.
    pub users: i64,
    /// Callers in flight in the exchange phase.
    pub concurrency: usize,
    /// How long the exchange phase and the sustained phase last.
    pub duration: Duration,
    /// Exchanges per second in the sustained phases.
    pub sustained_rate: u32,
    /// The lanes' largest batch.
    pub max_batch: usize,
}

/// What the exchange workload measured.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeReport {
    pub workload: &'static str,
    pub concurrency: usize,
    pub exchanges: u64,
    pub exchanges_per_s: f64,
    pub exchange_errors: u64,
    pub messages_relayed: u64,
    pub messages_per_s: f64,
    /// Phase 2, then: messages per second the warehouse consumed (shipment committed, callback confirmed).
    pub messages_consumed_per_s: f64,
    pub sustained_rate: u32,
    pub shipment_latency_p50_ms: f64,
    pub shipment_latency_p99_ms: f64,
    /// Phase 4: the backlog left when the broker came back, and how long it took to drain.
    pub backlog_after_broker_restart: Option<u64>,
    pub drain_after_broker_restart_ms: Option<f64>,
    /// Duplicates the warehouse absorbed (re-sends and redeliveries).
    pub duplicates_absorbed: u64,
}

/// A relay of the shipment topic, waiting `consume_timeout` for a message's consumption before sending it again.
fn start_relay(shop: &Pool, amqp_url: &str, namespace: &str, consume_timeout: Duration) -> Running {
    let schedule = Schedule { consume_timeout, ..Schedule::default() };
    let config = RelayConfig {
        topology: Topology::new(namespace),
        topics: vec![SHIPMENT_TOPIC.to_string()],
        reconnect_delay: Duration::from_millis(100),
        schedule,
        ..RelayConfig::default()
    };
    Relay::new(shop.clone(), amqp_url, config).spawn()
}

fn start_consumer(handler: &ShipmentHandler, amqp_url: &str, namespace: &str) -> Running {
    let config = ConsumerConfig {
        topology: Topology::new(namespace),
        reconnect_delay: Duration::from_millis(100),
        ..ConsumerConfig::new(SHIPMENT_TOPIC)
    };
    messaging::spawn_consumer(amqp_url, config, handler.clone())
}

/// Waits until every message written is consumed, up to `limit`; returns how long it took.
async fn drain(shop: &Pool, limit: Duration) -> Result<Duration, BenchError> {
    wait_until_none_in(shop, &outbox::IN_FLIGHT, limit).await
}

/// How long until no message is in any of `states`, at most `limit`.
async fn wait_until_none_in(shop: &Pool, states: &[MessageState], limit: Duration) -> Result<Duration, BenchError> {
    let started = Instant::now();
    loop {
        // Polled with a probe: counting the table's rows every 20 ms would take the server's CPU from the drain.
        if !outbox::any_in(shop, states).await? {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            let status = outbox::status(shop).await?;
            return Err(BenchError::BooksDoNotBalance(format!("messages not drained after {limit:?}: {status:?}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The gifts: one hot, nine others; and `users` users with points enough for every exchange.
async fn set_up(exchange: &Exchange, users: i64) -> Result<Vec<i64>, BenchError> {
    let mut gifts = Vec::new();
    for n in 0..10 {
        let name = if n == 0 { "hot gift".to_string() } else { format!("gift {n}") };
        let gift = exchange.create_gift(&NewGift { name, cost: 1, stock: 1_000_000_000 }).await;
        gifts.push(gift.map_err(|e| DatabaseError::UnexpectedAnswer(e.to_string()))?.gift_id);
    }
    let exchange = Arc::new(exchange.clone());
    let grants: Vec<_> = (0..16)
        .map(|worker| {
            let exchange = exchange.clone();
            tokio::spawn(async move {
                for user in (1 + worker..=users).step_by(16) {
                    exchange.grant(user, 1_000_000, "bench").await?;
                }
                Ok::<_, seckill::exchange::ExchangeError>(())
            })
        })
        .collect();
    for grant in grants {
        grant
            .await
            .map_err(|e| DatabaseError::Client(e.to_string()))?
            .map_err(|e| DatabaseError::UnexpectedAnswer(e.to_string()))?;
    }
    Ok(gifts)
}

/// Exchanges by `concurrency` callers until `deadline`; half of them the hot gift. Returns (exchanged, errors).
async fn crowd(exchange: &Exchange, gifts: &[i64], users: i64, concurrency: usize, deadline: Instant) -> (u64, u64) {
    let next = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (exchange, gifts, next) = (exchange.clone(), gifts.to_vec(), next.clone());
            tokio::spawn(async move {
                let (mut exchanged, mut errors) = (0, 0);
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let outcome = attempt(&exchange, &gifts, users, n).await;
                    match outcome {
                        Some(ExchangeOutcome::Exchanged { .. }) => exchanged += 1,
                        _ => errors += 1,
                    }
                }
                (exchanged, errors)
            })
        })
        .collect();
    let mut total = (0, 0);
    for caller in callers {
        if let Ok((exchanged, errors)) = caller.await {
            total = (total.0 + exchanged, total.1 + errors);
        }
    }
    total
}

/// The `n`-th exchange: a spread of users, the hot gift every other time, a fresh request id.
async fn attempt(exchange: &Exchange, gifts: &[i64], users: i64, n: u64) -> Option<ExchangeOutcome> {
    let user = 1 + (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) % users.max(1) as u64) as i64;
    let (hot, others) = gifts.split_first()?;
    let gift = if n.is_multiple_of(2) || others.is_empty() { *hot } else { others[(n as usize / 2) % others.len()] };
    exchange.exchange(user, gift, &format!("bench-{n}")).await.ok()
}

/// Exchanges at `rate` per second until `deadline`, from a numbering that starts at `first`.
async fn sustained(exchange: &Exchange, gifts: &[i64], users: i64, rate: u32, first: u64, deadline: Instant) -> u64 {
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    let per_tick = u64::from(rate.max(1)).div_ceil(100);
    let mut n = first;
    let mut pending = Vec::new();
    while Instant::now() < deadline {
        ticks.tick().await;
        for _ in 0..per_tick {
            let (exchange, gifts) = (exchange.clone(), gifts.to_vec());
            pending.push(tokio::spawn(async move { attempt(&exchange, &gifts, users, n).await }));
            n += 1;
        }
    }
    for call in pending {
        let _ = call.await;
    }
    n
}

/// Exchange-to-shipment latencies of the exchanges with ids above `after`, from both databases' rows.
async fn shipment_latencies(shop: &Pool, warehouse: &Pool, after: i64) -> Result<Latencies, BenchError> {
    let mut shop_conn = acquire(shop).await?;
    let made: Vec<(i64, i64)> = query_all(
        &mut shop_conn,
        &format!(
            "SELECT id, CAST(UNIX_TIMESTAMP(created_at) * 1000000 AS SIGNED) FROM credit_exchange WHERE id > {after}"
        ),
        "exchange times",
    )
    .await
    .map_err(DatabaseError::from)?;
    let mut warehouse_conn = acquire(warehouse).await?;
    let shipped: Vec<(i64, i64)> = query_all(
        &mut warehouse_conn,
        &format!(
            "SELECT credit_exchange_id, CAST(UNIX_TIMESTAMP(created_at) * 1000000 AS SIGNED) FROM shipment_request \
              WHERE credit_exchange_id > {after}"
        ),
        "shipment times",
    )
    .await
    .map_err(DatabaseError::from)?;
    let shipped: std::collections::HashMap<i64, i64> = shipped.into_iter().collect();
    let mut latencies = Latencies::default();
    for (id, at) in made {
        if let Some(shipped_at) = shipped.get(&id) {
            latencies.record(Duration::from_micros(u64::try_from(shipped_at - at).unwrap_or(0)));
        }
    }
    Ok(latencies)
}

async fn last_exchange_id(shop: &Pool) -> Result<i64, BenchError> {
    let mut conn = acquire(shop).await?;
    let last: Option<Option<i64>> =
        conn.query_first("SELECT MAX(id) FROM credit_exchange").await.map_err(DatabaseError::from)?;
    Ok(last.flatten().unwrap_or(0))
}

/// Runs the four phases. `broker` is a private node the bench may kill, when it started one.
///
/// # Errors
/// Database errors, and [`BenchError::BooksDoNotBalance`] when the reconciliation fails.
pub async fn run(
    shop: &Pool,
    warehouse: &Pool,
    amqp_url: &str,
    broker: Option<&LocalRabbitMq>,
    config: &ExchangeBenchConfig,
) -> Result<ExchangeReport, BenchError> {
    let lanes = GroupCommitConfig { max_batch: config.max_batch, ..GroupCommitConfig::default() };
    let exchange = Exchange::with_config(shop.clone(), lanes);
    let namespace = format!("seckill-bench-{}", std::process::id());
    let gifts = set_up(&exchange, config.users).await?;

    // 1. Exchanges, relay stopped.
    let started = Instant::now();
    let (exchanges, exchange_errors) =
        crowd(&exchange, &gifts, config.users, config.concurrency, started + config.duration).await;
    let exchanges_per_s = exchanges as f64 / started.elapsed().as_secs_f64();

    // 2. The relay publishes that backlog with confirms, the consumer stopped; then the consumer ships it.
    let backlog = outbox::status(shop).await?.in_flight();
    let handler = ShipmentHandler::new(warehouse.clone());
    // Its relay waits long enough for the consumer that it sends nothing twice: this is the relay's own rate.
    let relay = start_relay(shop, amqp_url, &namespace, Duration::from_secs(600));
    let declared = Instant::now();
    let relayed = wait_until_none_in(shop, &[MessageState::Pending], Duration::from_secs(600)).await?;
    let messages_per_s = backlog as f64 / relayed.as_secs_f64().max(1e-9);
    let consumer = start_consumer(&handler, amqp_url, &namespace);
    let shipped = drain(shop, Duration::from_secs(600)).await?;
    let messages_consumed_per_s = backlog as f64 / shipped.as_secs_f64().max(1e-9);
    // From here on, a deployment's relay: it sends again what is not consumed within the usual timeout.
    relay.stop().await;
    let relay = start_relay(shop, amqp_url, &namespace, Schedule::default().consume_timeout);

    // 3. Latency at a sustained rate, everything running.
    let before_sustained = last_exchange_id(shop).await?;
    let next =
        sustained(&exchange, &gifts, config.users, config.sustained_rate, 1 << 40, Instant::now() + config.duration)
            .await;
    drain(shop, Duration::from_secs(120)).await?;
    let (latency_p50_ms, latency_p99_ms, _) = shipment_latencies(shop, warehouse, before_sustained).await?.summary();

    // 4. The broker killed and back, exchanges going on meanwhile.
    let (mut backlog_after_restart, mut drain_after_restart) = (None, None);
    if let Some(node) = broker {
        // Debian's RabbitMQ 3.10 writes a new quorum queue's registration lazily and loses a queue killed too
        // soon after its creation; queues in service are long settled, so these must be too.
        tokio::time::sleep((declared + Duration::from_secs(5)).saturating_duration_since(Instant::now())).await;
        // Killing and starting a node blocks on the process; the bench runs on a multi-threaded runtime.
        tokio::task::block_in_place(|| node.kill())
            .map_err(|e| DatabaseError::Client(format!("killing the broker: {e}")))?;
        let resume = Instant::now() + Duration::from_secs(3);
        sustained(&exchange, &gifts, config.users, config.sustained_rate, next, resume).await;
        let waiting = outbox::status(shop).await?.in_flight();
        let restarted = Instant::now();
        tokio::task::block_in_place(|| node.start_again())
            .map_err(|e| DatabaseError::Client(format!("restarting the broker: {e}")))?;
        drain(shop, Duration::from_secs(300)).await?;
        backlog_after_restart = Some(waiting);
        drain_after_restart = Some(restarted.elapsed().as_secs_f64() * 1000.0);
    }
    relay.stop().await;
    consumer.stop().await;

    // The books: the points side on its own, and one shipment request per exchange across the two.
    Books::read(shop).await?.check().map_err(BenchError::BooksDoNotBalance)?;
    let mut shop_conn = acquire(shop).await?;
    let made: Option<u64> =
        shop_conn.query_first("SELECT COUNT(*) FROM credit_exchange").await.map_err(DatabaseError::from)?;
    let mut warehouse_conn = acquire(warehouse).await?;
    let shipped: Option<(u64, u64)> = warehouse_conn
        .query_first("SELECT COUNT(*), COUNT(DISTINCT credit_exchange_id) FROM shipment_request")
        .await
        .map_err(DatabaseError::from)?;
    let (made, (shipped, distinct)) = (made.unwrap_or(0), shipped.unwrap_or((0, 0)));
    if made != shipped || shipped != distinct {
        return Err(BenchError::BooksDoNotBalance(format!(
            "{made} exchanges but {shipped} shipment requests ({distinct} distinct)"
        )));
    }
    Ok(ExchangeReport {
        workload: "exchange",
        concurrency: config.concurrency,
        exchanges,
        exchanges_per_s,
        exchange_errors,
        messages_relayed: backlog,
        messages_per_s,
        messages_consumed_per_s,
        sustained_rate: config.sustained_rate,
        shipment_latency_p50_ms: latency_p50_ms,
        shipment_latency_p99_ms: latency_p99_ms,
        backlog_after_broker_restart: backlog_after_restart,
        drain_after_broker_restart_ms: drain_after_restart,
        duplicates_absorbed: handler.stats().duplicates,
    })
}
