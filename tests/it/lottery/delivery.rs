//! Prize delivery on real parts: the outbox in a test database, the relay, RabbitMQ, the gift worker and a real
//! gift service on loopback ([`GiftServiceStub`]). Wins are written into the outbox with the contract's payload,
//! as the draw procedure writes them. Every test ends with the reconciliation: every message consumed (or, for
//! a refused one, dead), and the gift service's effects exactly one per draw id, none missing, none extra.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use seckill::local::gift_service::{CallOutcome, GiftServiceStub, RateLimit, StubConfig};
use seckill::lottery::read_gift_call;

use seckill::lottery::PRIZE_TOPIC;

use seckill::local::rabbitmq::LocalRabbitMq;
use seckill::lottery::delivery::{GiftWorker, GiftWorkerConfig};
use seckill::messaging::{MessageState, OutboxStatus, RelayConfig, Running, Schedule, Topology, outbox};

use crate::common::messaging::{
    Sides, broker, relay_config, schedule, sides, start_consumer_with, start_relay_with, wait_for,
};

fn prize(draw_id: i64) -> String {
    serde_json::json!({
        "draw_id": draw_id, "campaign_id": 3, "user_id": 1000 + draw_id, "tier_id": 1 + draw_id % 3,
        "prize": format!("prize {}", draw_id % 3),
    })
    .to_string()
}

/// Writes the wins of draws `first..first + count`, as the draw procedure would.
async fn win(sides: &Sides, first: i64, count: i64) {
    for draw_id in first..first + count {
        let id = outbox::enqueue(sides.shop.pool(), PRIZE_TOPIC, &draw_id.to_string(), &prize(draw_id)).await.unwrap();
        assert!(id.is_some());
    }
}

fn relay(sides: &Sides, url: &str, schedule: Schedule) -> Running {
    let config = RelayConfig { topics: vec![PRIZE_TOPIC.to_string()], schedule, ..relay_config(&sides.namespace) };
    start_relay_with(sides, url, config)
}

fn worker(stub: &GiftServiceStub, config: GiftWorkerConfig) -> GiftWorker {
    GiftWorker::new(&stub.url(), config).unwrap()
}

fn start_worker(sides: &Sides, url: &str, worker: &GiftWorker) -> Running {
    let mut config = worker.consumer_config(Topology::new(&sides.namespace));
    config.reconnect_delay = Duration::from_millis(100);
    start_consumer_with(url, config, worker)
}

/// The reconciliation: `draws` (all but `refused`) consumed and delivered exactly once in effect, `refused`
/// dead and never delivered.
async fn reconcile(
    sides: &Sides,
    stub: &GiftServiceStub,
    draws: std::ops::Range<i64>,
    refused: &[i64],
    limit: Duration,
) -> OutboxStatus {
    let delivered = draws.clone().count() - refused.len();
    let status =
        wait_for(sides, limit, |status| status.consumed == delivered as u64 && status.dead == refused.len() as u64)
            .await;
    assert_eq!(
        (status.consumed, status.dead, status.in_flight()),
        (delivered as u64, refused.len() as u64, 0),
        "{status:?}"
    );
    let effects = stub.effects_per_id();
    let expected: HashMap<i64, u64> = draws.filter(|draw| !refused.contains(draw)).map(|draw| (draw, 1)).collect();
    assert_eq!(effects.len(), expected.len(), "one effect per won draw, none missing, none extra");
    assert_eq!(effects, expected, "every win delivered exactly once in effect");
    status
}

/// Short waits, and enough attempts for a service failing a third of its calls.
fn fast_schedule() -> Schedule {
    Schedule { consume_timeout: Duration::from_millis(1500), ..schedule() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gift_service_failing_30_percent_of_calls_gets_every_win_delivered_once_in_effect() {
    let sides = sides().await;
    let url = broker();
    let stub = GiftServiceStub::start(StubConfig {
        fail_share: 0.3,
        lost_answer_share: 0.1,
        seed: 11,
        latency: Duration::from_millis(3),
        ..StubConfig::new(read_gift_call)
    })
    .await
    .unwrap();
    let worker = worker(
        &stub,
        GiftWorkerConfig {
            rate: 500.0,
            burst: 10,
            concurrency: 16,
            attempts: 3,
            first_backoff: Duration::from_millis(20),
            ..GiftWorkerConfig::default()
        },
    );
    let relay = relay(&sides, &url, fast_schedule());
    let consumer = start_worker(&sides, &url, &worker);
    win(&sides, 1, 300).await;
    reconcile(&sides, &stub, 1..301, &[], Duration::from_secs(60)).await;
    relay.stop().await;
    consumer.stop().await;

    let stats = worker.stats();
    let log = stub.call_log();
    let count = |outcome| log.calls.iter().filter(|call| call.outcome == outcome).count() as u64;
    assert!(
        count(CallOutcome::Failed) > 30 && count(CallOutcome::LostAnswer) > 5,
        "the service failed calls: {stats:?}"
    );
    assert!(stats.retries > 0, "failed calls were tried again: {stats:?}");
    assert!(stats.duplicates > 0, "lost answers were asked again and absorbed by the key: {stats:?}");
    assert_eq!(stats.poison, 0);
}

/// A gift service that protects itself: above 25 calls/s (a second's worth at once) it answers 429 with
/// `Retry-After`, and the worker is set to call faster than that. A 429 is "not now", never a refusal: the worker
/// waits as told and calls again, and every win is delivered once in effect, none dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gift_service_answering_429_above_its_rate_gets_every_win_delivered_once_none_dead() {
    let sides = sides().await;
    let url = broker();
    let stub = GiftServiceStub::start(StubConfig {
        rate_limit: Some(RateLimit { rate: 25.0, burst: 25 }),
        latency: Duration::from_millis(5),
        ..StubConfig::new(read_gift_call)
    })
    .await
    .unwrap();
    let worker =
        worker(&stub, GiftWorkerConfig { rate: 60.0, burst: 5, concurrency: 8, ..GiftWorkerConfig::default() });
    // Few refusals make a message dead, and re-sends come soon: a 429 taken for poison kills wins within the run.
    let schedule = Schedule { consume_timeout: Duration::from_millis(1500), max_attempts: 3, ..schedule() };
    let relay = relay(&sides, &url, schedule);
    let consumer = start_worker(&sides, &url, &worker);
    win(&sides, 1, 200).await;
    reconcile(&sides, &stub, 1..201, &[], Duration::from_secs(60)).await;
    relay.stop().await;
    consumer.stop().await;

    let limited = stub.call_log().calls.iter().filter(|call| call.outcome == CallOutcome::RateLimited).count();
    assert!(limited > 0, "the service's limit was reached");
    let stats = worker.stats();
    assert_eq!(stats.poison, 0, "a 429 is never poison: {stats:?}");
    assert!(stats.throttled > 0, "the worker waited as it was told: {stats:?}");
}

/// The limiter's guarantees as the gift service sees them. Calls granted in any interval of length `w` are at
/// most `burst + w × rate + 1`; a call can arrive later than granted, but only while it holds one of the
/// `concurrency` permits, so the calls arriving in any interval of length `w` are at most
/// `burst + w × rate + 1 + concurrency`, whatever the machine's timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gift_service_never_sees_more_calls_than_the_rate_and_concurrency_allow() {
    let sides = sides().await;
    let url = broker();
    let stub =
        GiftServiceStub::start(StubConfig { latency: Duration::from_millis(25), ..StubConfig::new(read_gift_call) })
            .await
            .unwrap();
    let (rate, burst, concurrency) = (80.0, 4, 3);
    let worker = worker(&stub, GiftWorkerConfig { rate, burst, concurrency, ..GiftWorkerConfig::default() });
    // The relay waits long enough for the backlog to drain at the rate before it sends anything again.
    let relay = relay(&sides, &url, Schedule { consume_timeout: Duration::from_secs(10), ..schedule() });
    let consumer = start_worker(&sides, &url, &worker);
    win(&sides, 1, 200).await;
    reconcile(&sides, &stub, 1..201, &[], Duration::from_secs(60)).await;
    relay.stop().await;
    consumer.stop().await;

    assert!(stub.max_in_flight() <= concurrency, "{} calls at once", stub.max_in_flight());
    assert!(stub.max_in_flight() > 1, "the bound was reached for: {} at once", stub.max_in_flight());
    let log = stub.call_log();
    let slack = f64::from(burst) + 1.0 + concurrency as f64;
    for window in [Duration::from_millis(50), Duration::from_millis(250), Duration::from_secs(1), log.span()] {
        let seen = log.max_calls_within(window);
        let bound = window.as_secs_f64() * rate + slack;
        assert!(seen as f64 <= bound, "{seen} calls within {window:?}, bound {bound}");
    }
    assert!(log.calls.len() >= 200);
    let achieved = log.achieved_rate().unwrap();
    eprintln!("achieved {achieved:.1} calls/s at a configured {rate}");
}

/// A refused win (the service answers 422): poison at once for the worker, dead after its attempts, visible
/// and re-triable; the other wins keep flowing. Once the service accepts it, a retry delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_win_ends_dead_visible_and_retriable_and_the_rest_flow() {
    let sides = sides().await;
    let url = broker();
    let refused = 25;
    let stub =
        GiftServiceStub::start(StubConfig { refused_ids: HashSet::from([refused]), ..StubConfig::new(read_gift_call) })
            .await
            .unwrap();
    let worker = worker(&stub, GiftWorkerConfig::default());
    let schedule = Schedule {
        consume_timeout: Duration::from_millis(300),
        max_consume_timeout: Duration::from_secs(1),
        max_attempts: 4,
        ..schedule()
    };
    let relay = relay(&sides, &url, schedule);
    let consumer = start_worker(&sides, &url, &worker);
    win(&sides, 1, 50).await;
    reconcile(&sides, &stub, 1..51, &[refused], Duration::from_secs(30)).await;

    let dead = outbox::list(sides.shop.pool(), MessageState::Dead, 10).await.unwrap();
    assert_eq!(dead.iter().map(|message| message.business_key.as_str()).collect::<Vec<_>>(), [refused.to_string()]);
    assert_eq!(dead[0].attempts, schedule.max_attempts);
    let stats = worker.stats();
    assert!(stats.poison >= 1 && stats.retries == 0, "refused, never retried by the worker: {stats:?}");
    let refused_calls = stub.call_log().calls.iter().filter(|call| call.id == Some(refused)).count();
    assert!(
        (1..=schedule.max_attempts as usize).contains(&refused_calls),
        "{refused_calls} calls for the refused draw"
    );

    // The operator has the service accept it, and retries it.
    stub.refuse_ids(HashSet::new());
    assert_eq!(outbox::retry_dead(sides.shop.pool(), Some(dead[0].message_id)).await.unwrap(), 1);
    reconcile(&sides, &stub, 1..51, &[], Duration::from_secs(30)).await;
    relay.stop().await;
    consumer.stop().await;
}

/// `seckill gift-worker` processes killed with SIGKILL mid-delivery, again and again: the batches they had
/// delivered without calling back come again, and the gift service's key absorbs them. On a private broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gift_worker_processes_killed_mid_delivery_deliver_every_win_once_in_effect() {
    let sides = sides().await;
    let node = tokio::task::spawn_blocking(LocalRabbitMq::start).await.unwrap().unwrap();
    let url = node.url();
    let stub = GiftServiceStub::start(StubConfig {
        fail_share: 0.1,
        seed: 5,
        latency: Duration::from_millis(10),
        ..StubConfig::new(read_gift_call)
    })
    .await
    .unwrap();
    // A consume timeout longer than the run: what comes again comes from the kills, not from re-sends.
    let relay = relay(&sides, &url, Schedule { consume_timeout: Duration::from_secs(10), ..schedule() });
    win(&sides, 1, 400).await;
    let worker_process = || {
        crate::common::seckill_command(sides.shop.url())
            .env("RABBITMQ_URL", &url)
            .args(["gift-worker", "--namespace", &sides.namespace, "--gift-url", &stub.url()])
            .args(["--rate", "100", "--concurrency", "8", "--call-timeout", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut delivered_before_kills = Vec::new();
    for round in 0..4u64 {
        let mut worker = worker_process();
        tokio::time::sleep(Duration::from_millis(500 + round * 150)).await;
        worker.kill().unwrap(); // SIGKILL, by pid: this test's own process
        worker.wait().unwrap();
        delivered_before_kills.push(stub.delivered());
    }
    assert!(
        delivered_before_kills.iter().any(|delivered| (1..400).contains(delivered)),
        "killed mid-delivery: {delivered_before_kills:?}"
    );
    let mut last = worker_process();
    reconcile(&sides, &stub, 1..401, &[], Duration::from_secs(60)).await;
    last.kill().unwrap();
    last.wait().unwrap();
    relay.stop().await;
    let replayed = stub.call_log().calls.iter().filter(|call| call.outcome == CallOutcome::Replayed).count();
    assert!(replayed > 0, "wins delivered by killed workers came again and were absorbed");
    drop(node);
}

/// Settings no worker or stub can run with are refused with one line and a non-zero exit, before anything
/// connects.
#[test]
fn bad_gift_settings_get_one_line_and_a_non_zero_exit() {
    let cases: &[&[&str]] = &[
        &["gift-worker", "--gift-url", "https://gifts.example/", "--amqp-url", "amqp://127.0.0.1:1/%2f"],
        &["gift-worker", "--gift-url", "http://127.0.0.1:1/", "--rate", "0", "--amqp-url", "amqp://127.0.0.1:1/%2f"],
        &["gift-worker", "--gift-url", "http://127.0.0.1:1/", "--concurrency", "0"],
        &["gift-worker", "--gift-url", "http://127.0.0.1:1/", "--call-timeout=-1"],
        &["gift-stub", "--fail-share", "1.5"],
        &["gift-stub", "--listen", "not an address"],
    ];
    for args in cases {
        let output = crate::common::seckill_command("mysql://127.0.0.1:1/none").args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        // clap's own errors add a blank line before their "try --help".
        let lines = stderr.lines().filter(|line| !line.trim().is_empty()).count();
        assert!(lines <= 2 && stderr.contains("error"), "{args:?}: {stderr}");
    }
}
