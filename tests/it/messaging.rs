//! The reliable message service on real servers: a points database with its outbox, RabbitMQ, and the
//! warehouse's own database. Every test ends with the reconciliation: every message consumed (or, for poison,
//! dead), exactly one shipment request per business fact, none lost, none pending.
//!
//! Each test uses its own namespace (exchange and queues), so tests share a broker without seeing each other's
//! messages; tests that stop the broker start a private one.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use seckill::exchange::SHIPMENT_TOPIC;
use seckill::exchange::warehouse::ShipmentHandler;
use seckill::local::rabbitmq::LocalRabbitMq;
use seckill::local::tcp_proxy::TcpProxy;
use seckill::messaging::{self, Handler, MessageState, RelayConfig, Topology, outbox};

use crate::common::messaging::{
    Sides, broker, relay_config, schedule, sides, start_consumer, start_relay, start_relay_with, wait_for,
};

fn shipment(n: i64) -> String {
    serde_json::json!({"type": 2, "credit_exchange_id": n, "product_id": 7, "user_id": 100 + n, "exchanged_credit": 50})
        .to_string()
}

/// Writes `count` shipment messages for business facts `first..first + count`, as a business procedure would.
async fn enqueue(sides: &Sides, first: i64, count: i64) {
    for n in first..first + count {
        let id = outbox::enqueue(sides.shop.pool(), SHIPMENT_TOPIC, &n.to_string(), &shipment(n)).await.unwrap();
        assert!(id.is_some());
    }
}

/// The reconciliation: `facts` business facts written, every one consumed and shipped exactly once.
async fn reconcile(sides: &Sides, facts: u64) {
    let status = wait_for(sides, Duration::from_secs(30), |status| status.consumed == facts).await;
    assert_eq!((status.consumed, status.in_flight(), status.dead), (facts, 0, 0), "{status:?}");
    let mut conn = sides.warehouse.pool().get_conn().await.unwrap();
    let (rows, distinct): (u64, u64) = conn
        .query_first("SELECT COUNT(*), COUNT(DISTINCT credit_exchange_id) FROM shipment_request")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rows, distinct), (facts, facts), "exactly one shipment request per exchange");
    let mut shop = sides.shop.pool().get_conn().await.unwrap();
    let keys: Vec<String> = shop.query("SELECT business_key FROM message_outbox").await.unwrap();
    let shipped: Vec<i64> = conn.query("SELECT credit_exchange_id FROM shipment_request").await.unwrap();
    let shipped: HashSet<String> = shipped.into_iter().map(|id| id.to_string()).collect();
    assert_eq!(keys.into_iter().collect::<HashSet<_>>(), shipped, "the same facts on both sides");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_flow_from_the_outbox_to_the_warehouse_and_are_marked_consumed() {
    let sides = sides().await;
    let url = broker();
    let handler = ShipmentHandler::new(sides.warehouse.pool().clone());
    let relay = start_relay(&sides, &url);
    let consumer = start_consumer(&sides, &url, &handler);
    enqueue(&sides, 1, 300).await;
    reconcile(&sides, 300).await;
    relay.stop().await;
    consumer.stop().await;
    assert_eq!(handler.stats().inserted, 300);
}

/// `outbox::any_in`, the cheap probe a drain polls, agrees with the counts at each step of a message's way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_in_flight_probe_follows_messages_until_they_are_consumed() {
    let sides = sides().await;
    let pool = sides.shop.pool();
    assert!(!outbox::any_in(pool, &outbox::IN_FLIGHT).await.unwrap(), "an empty outbox");
    enqueue(&sides, 1, 3).await;
    assert!(outbox::any_in(pool, &[MessageState::Pending]).await.unwrap());
    let later = [MessageState::Sent, MessageState::Consumed, MessageState::Dead];
    assert!(!outbox::any_in(pool, &later).await.unwrap(), "nothing sent yet");
    assert!(!outbox::any_in(pool, &[]).await.unwrap(), "no state, no message");
    let url = broker();
    let handler = ShipmentHandler::new(sides.warehouse.pool().clone());
    let relay = start_relay(&sides, &url);
    let consumer = start_consumer(&sides, &url, &handler);
    reconcile(&sides, 3).await;
    relay.stop().await;
    consumer.stop().await;
    assert!(!outbox::any_in(pool, &outbox::IN_FLIGHT).await.unwrap(), "all consumed");
    assert!(outbox::any_in(pool, &[MessageState::Consumed]).await.unwrap());
}

/// A relay carries only its topics: relays for different topics share one outbox, and a message of a topic this
/// relay does not carry waits, pending and untouched, for the relay that does (it is never sent to a queue that
/// is not there, nor marked dead).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_leaves_the_messages_of_other_topics_to_their_own_relay() {
    let sides = sides().await;
    let url = broker();
    let other = outbox::enqueue(sides.shop.pool(), "another.topic", "1", "{}").await.unwrap().unwrap();
    enqueue(&sides, 1, 50).await;
    let handler = ShipmentHandler::new(sides.warehouse.pool().clone());
    let relay = start_relay(&sides, &url);
    let consumer = start_consumer(&sides, &url, &handler);
    let status = wait_for(&sides, Duration::from_secs(30), |status| status.consumed == 50).await;
    // A few claim rounds more, in which the other topic's message would have been taken.
    tokio::time::sleep(schedule().claim_lease * 2).await;
    relay.stop().await;
    consumer.stop().await;
    let mut conn = sides.shop.pool().get_conn().await.unwrap();
    let (state, attempts): (String, u32) = conn
        .exec_first("SELECT state, attempts FROM message_outbox WHERE message_id = ?", (other,))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((state.as_str(), attempts), ("pending", 0), "{status:?}");
    assert_eq!((status.consumed, status.dead), (50, 0), "{status:?}");
}

/// Duplicate window 1, made on purpose: a relay claimed messages and published them, and the broker acked,
/// but it died before marking them sent. When the lease ends another relay sends them again; the warehouse
/// absorbs every duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_dying_between_publish_and_mark_sends_again_and_the_duplicate_is_absorbed() {
    let sides = sides().await;
    let url = broker();
    let handler = ShipmentHandler::new(sides.warehouse.pool().clone());
    enqueue(&sides, 1, 200).await;

    // The dead relay's half of the work: claimed and published with confirms, never marked.
    let claimed = outbox::claim(sides.shop.pool(), &[], 1000, &schedule()).await.unwrap();
    assert_eq!(claimed.len(), 200);
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = Topology::new(&sides.namespace);
    topology.declare(&channel, &[SHIPMENT_TOPIC.to_string()]).await.unwrap();
    channel.confirm_select(lapin::options::ConfirmSelectOptions::default()).await.unwrap();
    for message in &claimed {
        let properties = lapin::BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(message.message_id.to_string().into());
        let confirm = channel
            .basic_publish(
                topology.exchange().as_str().into(),
                SHIPMENT_TOPIC.into(),
                lapin::options::BasicPublishOptions::default(),
                message.payload.as_bytes(),
                properties,
            )
            .await
            .unwrap();
        assert!(confirm.await.unwrap().is_ack());
    }
    connection.close(200, "the relay dies".into()).await.unwrap();

    // After the lease, the next relay sends all of them again; only then does a consumer come: it sees each
    // message twice.
    let relay = start_relay(&sides, &url);
    let resent = wait_for(&sides, Duration::from_secs(10), |status| status.sent == 200).await;
    assert_eq!(resent.sent, 200, "{resent:?}");
    let consumer = start_consumer(&sides, &url, &handler);
    reconcile(&sides, 200).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while handler.stats().inserted + handler.stats().duplicates < 400 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await; // the second copies still queued
    }
    relay.stop().await;
    consumer.stop().await;
    let stats = handler.stats();
    assert_eq!(stats.inserted, 200);
    assert!(stats.duplicates >= 200, "every message came twice and was absorbed: {stats:?}");
}

/// The relay process killed with SIGKILL again and again while it relays: whatever it had claimed, published or
/// marked, the next one finishes the job, and the books reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_processes_killed_at_random_lose_nothing() {
    let sides = sides().await;
    let url = broker();
    let handler = ShipmentHandler::new(sides.warehouse.pool().clone());
    let consumer = start_consumer(&sides, &url, &handler);
    enqueue(&sides, 1, 3000).await;
    let relay_process = || {
        crate::common::seckill_command(sides.shop.url())
            .env("RABBITMQ_URL", &url)
            .args(["relay", "--namespace", &sides.namespace, "--consume-timeout", "0.8", "--claim-lease", "0.6"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    for round in 0..6u64 {
        let mut relay = relay_process();
        tokio::time::sleep(Duration::from_millis(150 + round * 70)).await;
        relay.kill().unwrap(); // SIGKILL, by pid: this test's own process
        relay.wait().unwrap();
    }
    let mut last = relay_process();
    reconcile(&sides, 3000).await;
    last.kill().unwrap();
    last.wait().unwrap();
    consumer.stop().await;
}

/// The private broker killed while the relay has publishes it has not yet seen confirmed, then started again
/// on the same data: nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_crash_with_unconfirmed_publishes_loses_nothing() {
    let sides = sides().await;
    let node = tokio::task::spawn_blocking(LocalRabbitMq::start).await.unwrap().unwrap();
    let url = node.url();
    let handler = ShipmentHandler::new(sides.warehouse.pool().clone());
    let relay = start_relay(&sides, &url);
    let consumer = start_consumer(&sides, &url, &handler);
    // RabbitMQ 3.10 (Debian's) loses a quorum queue killed within about half a second of its creation: its
    // registration is written lazily. Queues in service are long settled; here they must be too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    enqueue(&sides, 1, 1000).await;
    let progress = wait_for(&sides, Duration::from_secs(10), |status| status.consumed > 0).await;
    assert!(progress.in_flight() > 0, "killed mid-flow: {progress:?}");
    let node = tokio::task::spawn_blocking(move || {
        node.kill().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        node.restart().unwrap();
        node
    })
    .await
    .unwrap();
    enqueue(&sides, 1001, 500).await;
    reconcile(&sides, 1500).await;
    relay.stop().await;
    consumer.stop().await;
    drop(node);
}

/// The relay's and the consumer's connections to the broker cut at random points (a loopback proxy): they
/// reconnect by themselves, and the books reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_to_the_broker_cut_at_random_lose_nothing() {
    let sides = sides().await;
    let url = broker();
    // amqp://user:password@host:port/vhost: the same URL with the proxy's port in place of the broker's.
    let (scheme_and_user, rest) = url.rsplit_once('@').unwrap();
    let (host_port, vhost) = rest.split_once('/').unwrap_or((rest, ""));
    let upstream = tokio::net::lookup_host(host_port).await.unwrap().next().unwrap();
    let proxy = TcpProxy::start(upstream, Duration::ZERO).await.unwrap();
    let proxied = format!("{scheme_and_user}@127.0.0.1:{}/{vhost}", proxy.address().port());

    let handler = ShipmentHandler::new(sides.warehouse.pool().clone());
    let relay = start_relay(&sides, &proxied);
    let consumer = start_consumer(&sides, &proxied, &handler);
    proxy.set_cut_probability(0.01);
    enqueue(&sides, 1, 2000).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set_cut_probability(0.0);
    reconcile(&sides, 2000).await;
    relay.stop().await;
    consumer.stop().await;
    assert!(proxy.cuts() > 0, "connections were cut");
}

/// The warehouse consumer process killed before it acks (SIGKILL, again and again), and a consumer that commits
/// but never calls back: redeliveries and re-sends, every one absorbed by the shipment request's unique key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_that_die_before_acking_or_never_call_back_ship_each_exchange_once() {
    let sides = sides().await;
    let url = broker();
    let relay = start_relay(&sides, &url);
    enqueue(&sides, 1, 300).await;

    // A consumer that commits its effects and acks, but never calls back.
    let silent = ShipmentHandler::new(sides.warehouse.pool().clone());
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = Topology::new(&sides.namespace);
    topology.declare(&channel, &[SHIPMENT_TOPIC.to_string()]).await.unwrap();
    let mut deliveries = channel
        .basic_consume(
            topology.queue(SHIPMENT_TOPIC).as_str().into(),
            "silent".into(),
            lapin::options::BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let mut silently_done = 0;
    while silently_done < 100 {
        use futures_util::StreamExt;
        let delivery = deliveries.next().await.unwrap().unwrap();
        let message = messaging::Incoming {
            message_id: delivery.properties.message_id().as_ref().unwrap().as_str().parse().unwrap(),
            business_key: String::new(),
            payload: String::from_utf8(delivery.data.clone()).unwrap(),
            attempt: 1,
            redelivered: delivery.redelivered,
        };
        silent.handle(std::slice::from_ref(&message)).await.unwrap();
        delivery.ack(lapin::options::BasicAckOptions::default()).await.unwrap();
        silently_done += 1;
    }
    connection.close(200, "the silent consumer goes away".into()).await.unwrap();

    // Warehouse processes killed before their acks, then one that stays.
    let warehouse_process = || {
        crate::common::seckill_command(sides.shop.url())
            .env("RABBITMQ_URL", &url)
            .args(["warehouse", "--namespace", &sides.namespace, "--warehouse-database-url", sides.warehouse.url()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    for round in 0..4u64 {
        let mut consumer = warehouse_process();
        tokio::time::sleep(Duration::from_millis(300 + round * 100)).await;
        consumer.kill().unwrap();
        consumer.wait().unwrap();
    }
    let mut last = warehouse_process();
    reconcile(&sides, 300).await;
    last.kill().unwrap();
    last.wait().unwrap();
    relay.stop().await;
}

/// A poison message (a payload no consumer can handle) ends dead after its attempts, visible to operators and
/// re-triable, while the others keep flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_message_ends_dead_visible_and_retriable_and_the_rest_flow() {
    let sides = sides().await;
    let url = broker();
    let handler = ShipmentHandler::new(sides.warehouse.pool().clone());
    let relay = start_relay(&sides, &url);
    let consumer = start_consumer(&sides, &url, &handler);
    enqueue(&sides, 1, 50).await;
    let poison = outbox::enqueue(sides.shop.pool(), SHIPMENT_TOPIC, "poison", "{\"not\": \"a shipment\"}")
        .await
        .unwrap()
        .unwrap();
    enqueue(&sides, 51, 50).await;

    let status = wait_for(&sides, Duration::from_secs(40), |status| status.dead == 1 && status.consumed == 100).await;
    assert_eq!((status.consumed, status.dead, status.in_flight()), (100, 1, 0), "{status:?}");
    assert_eq!(outbox::state_of(sides.shop.pool(), poison).await.unwrap(), Some(MessageState::Dead));
    let dead = outbox::list(sides.shop.pool(), MessageState::Dead, 10).await.unwrap();
    assert_eq!(dead.iter().map(|m| m.message_id).collect::<Vec<_>>(), [poison]);
    assert_eq!(dead[0].attempts, schedule().max_attempts);

    let cli = crate::common::seckill_command(sides.shop.url()).args(["messages", "dead"]).output().unwrap();
    assert!(String::from_utf8_lossy(&cli.stdout).contains(&format!("{poison}  {SHIPMENT_TOPIC}  poison")));
    let retry = crate::common::seckill_command(sides.shop.url())
        .args(["messages", "retry", "--id", &poison.to_string()])
        .output()
        .unwrap();
    assert!(retry.status.success(), "{}", String::from_utf8_lossy(&retry.stderr));
    let state = outbox::state_of(sides.shop.pool(), poison).await.unwrap();
    assert!(matches!(state, Some(MessageState::Pending | MessageState::Sent)), "re-tried: {state:?}");
    relay.stop().await;
    consumer.stop().await;
    assert!(handler.stats().poison >= 1);
    let mut conn = sides.warehouse.pool().get_conn().await.unwrap();
    let shipped: Option<u64> = conn.query_first("SELECT COUNT(*) FROM shipment_request").await.unwrap();
    assert_eq!(shipped, Some(100));
}

/// A handler that answers "later" to the first sends of every message, and to every send of the message
/// named `never`, counting what it saw.
#[derive(Clone, Default)]
struct NotYet {
    sends: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
}

impl Handler for NotYet {
    async fn handle(&self, batch: &[messaging::Incoming]) -> Result<Vec<messaging::Handled>, String> {
        let mut sends = self.sends.lock().unwrap();
        Ok(batch
            .iter()
            .map(|message| {
                *sends.entry(message.business_key.clone()).or_default() += 1;
                if message.business_key == "never" || message.attempt < 3 {
                    messaging::Handled::Later(format!("attempt {}: not yet", message.attempt))
                } else {
                    messaging::Handled::Done
                }
            })
            .collect())
    }
}

/// `Handled::Later`: no immediate redelivery; the relay sends the message again after its wait, and the
/// handler's later success consumes it. A message never done is sent again and again past the attempt budget,
/// and never ends dead: "later" is an outage downstream of the consumer, not poison.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_handled_later_come_again_from_the_relay_and_never_end_dead() {
    let sides = sides().await;
    let url = broker();
    let handler = NotYet::default();
    let schedule = messaging::Schedule {
        consume_timeout: Duration::from_millis(300),
        max_consume_timeout: Duration::from_secs(1),
        max_attempts: 4,
        ..schedule()
    };
    let relay = start_relay_with(&sides, &url, RelayConfig { schedule, ..relay_config(&sides.namespace) });
    let consumer = start_consumer(&sides, &url, &handler);
    for n in 1..=20 {
        outbox::enqueue(sides.shop.pool(), SHIPMENT_TOPIC, &n.to_string(), &shipment(n)).await.unwrap().unwrap();
    }
    let never = outbox::enqueue(sides.shop.pool(), SHIPMENT_TOPIC, "never", &shipment(21)).await.unwrap().unwrap();

    let status = wait_for(&sides, Duration::from_secs(40), |status| status.consumed == 20).await;
    assert_eq!((status.consumed, status.dead), (20, 0), "{status:?}");
    let sends_of_never = || handler.sends.lock().unwrap().get("never").copied().unwrap_or(0);
    let past_the_budget = schedule.max_attempts + 2;
    for _ in 0..400 {
        if sends_of_never() >= past_the_budget {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = outbox::state_of(sides.shop.pool(), never).await.unwrap();
    relay.stop().await;
    consumer.stop().await;
    assert!(sends_of_never() >= past_the_budget, "sent again past the budget: {}", sends_of_never());
    assert!(matches!(state, Some(MessageState::Pending | MessageState::Sent)), "late, not dead: {state:?}");
    let mut conn = sides.shop.pool().get_conn().await.unwrap();
    let (attempts, sends, last_error): (u32, u32, Option<String>) = conn
        .exec_first("SELECT attempts, sends, last_error FROM message_outbox WHERE message_id = ?", (never,))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempts, 0, "no refusal counted");
    assert!(sends >= past_the_budget, "{sends} sends");
    assert!(last_error.is_some_and(|error| error.contains("not yet")), "the consumer's reason is kept");
    let sends = handler.sends.lock().unwrap().clone();
    for n in 1..=20 {
        assert_eq!(sends.get(&n.to_string()), Some(&3), "message {n}: twice later, then done");
    }
}

/// The relay's and the warehouse's database connections go silent mid-run (no FIN, no RST: a frozen host, a
/// partition, a firewall dropping the flow) while new connections would get through: every call of theirs is
/// bounded, a call past its bound drops its connection (so the pool never hands it out again) and the work is
/// tried again on a new one. Nothing stalls, nothing ends dead, every fact is shipped once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_connections_going_silent_mid_run_stall_neither_the_relay_nor_the_warehouse() {
    let sides = sides().await;
    let url = broker();
    let opts = mysql_async::Opts::from_url(sides.shop.url()).unwrap();
    let upstream = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()).parse().unwrap();
    let proxy = TcpProxy::start(upstream, Duration::ZERO).await.unwrap();
    let through = |url: &str| seckill::database::ConnectOptions::new(url).via(proxy.address()).build_pool().unwrap();
    let bound = Duration::from_secs(2);
    let handler = ShipmentHandler::new(through(sides.warehouse.url())).with_answer_timeout(bound);
    let config = RelayConfig { database_timeout: bound, ..relay_config(&sides.namespace) };
    let relay = messaging::Relay::new(through(sides.shop.url()), &url, config).spawn();
    let consumer = start_consumer(&sides, &url, &handler);
    enqueue(&sides, 1, 200).await;
    let before = wait_for(&sides, Duration::from_secs(30), |status| status.consumed >= 100).await;
    assert!(before.consumed >= 100, "flowing before the silence: {before:?}");

    proxy.silence();
    enqueue(&sides, 201, 200).await;
    reconcile(&sides, 400).await;
    relay.stop().await;
    consumer.stop().await;
    assert!(proxy.silenced() >= 2, "the relay's and the warehouse's connections went silent: {}", proxy.silenced());
    let dropped = proxy.silent_connections_closed_by_client();
    assert!(dropped >= 2, "the relay and the warehouse each dropped a silent connection: {dropped}");
}

/// A relay's connection goes silent in the middle of a claim, the claimed rows locked by its transaction: the
/// relay gives up at its bound, and the server, told by the claim to end a transaction left idle that long, rolls
/// it back, so the next claim gets those messages (rather than skipping them, locked, until the server's
/// `wait_timeout`, eight hours by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_whose_connection_goes_silent_frees_its_messages_after_the_bound() {
    let sides = sides().await;
    enqueue(&sides, 1, 20).await;
    let opts = mysql_async::Opts::from_url(sides.shop.url()).unwrap();
    let upstream = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()).parse().unwrap();
    // Each round trip takes 300 ms: time to see the claim's locks taken before its next statement arrives.
    let proxy = TcpProxy::start(upstream, Duration::from_millis(150)).await.unwrap();
    let relay_pool =
        seckill::database::ConnectOptions::new(sides.shop.url()).via(proxy.address()).build_pool().unwrap();
    seckill::database::check_connection(&relay_pool).await.unwrap(); // connected before the claim's bound runs
    let bound = Duration::from_secs(4);
    let claiming = tokio::spawn(async move { outbox::claim_within(&relay_pool, &[], 1000, &schedule(), bound).await });
    let mut conn = sides.shop.pool().get_conn().await.unwrap();
    let mut locked = 0;
    for _ in 0..100 {
        let rows: Option<u64> = conn
            .query_first(
                "SELECT COALESCE(SUM(t.trx_rows_locked), 0) FROM information_schema.INNODB_TRX t \
                   JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.DB = DATABASE()",
            )
            .await
            .unwrap();
        locked = rows.unwrap_or(0);
        if locked >= 20 {
            break;
        }
        // The server refreshes INNODB_TRX only when it was last read more than 100 ms ago.
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    assert!(locked >= 20, "the claim locked the messages: {locked} rows");
    proxy.silence();
    drop(conn);

    let skipped = outbox::claim(sides.shop.pool(), &[], 1000, &schedule()).await.unwrap();
    assert!(skipped.is_empty(), "locked by the silent claim for now: {skipped:?}");
    let silent = claiming.await.unwrap();
    assert!(matches!(silent, Err(seckill::database::DatabaseError::NoAnswer { .. })), "{silent:?}");
    let mut freed = Vec::new();
    for _ in 0..200 {
        freed = outbox::claim(sides.shop.pool(), &[], 1000, &schedule()).await.unwrap();
        if !freed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(freed.len(), 20, "the server rolled the silent claim back");
}

/// The warehouse's database unreachable (every connection to it cut at once) for several times the relay's whole
/// attempt budget, then back: a consumer whose downstream is down answers "later", which never counts toward a
/// message's death. Every message is consumed once in effect after the outage, none dead; a poison message among
/// them still ends dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_warehouse_database_outage_longer_than_the_attempt_budget_makes_messages_late_not_dead() {
    let sides = sides().await;
    let url = broker();
    let opts = mysql_async::Opts::from_url(sides.warehouse.url()).unwrap();
    let upstream = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()).parse().unwrap();
    let proxy = TcpProxy::start(upstream, Duration::ZERO).await.unwrap();
    let warehouse = seckill::database::ConnectOptions::new(sides.warehouse.url()).via(proxy.address()).build_pool();
    let handler = ShipmentHandler::new(warehouse.unwrap());
    // Three sends, 200 ms then 400 ms apart: the whole budget is spent in about a second.
    let schedule = messaging::Schedule {
        claim_lease: Duration::from_millis(600),
        consume_timeout: Duration::from_millis(200),
        max_consume_timeout: Duration::from_millis(600),
        max_attempts: 3,
    };
    let relay = start_relay_with(&sides, &url, RelayConfig { schedule, ..relay_config(&sides.namespace) });
    let consumer = start_consumer(&sides, &url, &handler);

    proxy.set_cut_probability(1.0);
    enqueue(&sides, 1, 200).await;
    let poison = outbox::enqueue(sides.shop.pool(), SHIPMENT_TOPIC, "poison", "{\"not\": \"a shipment\"}")
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during = outbox::status(sides.shop.pool()).await.unwrap();
    assert_eq!(during.consumed, 0, "the warehouse's database was down: {during:?}");
    proxy.set_cut_probability(0.0);

    let status = wait_for(&sides, Duration::from_secs(30), |status| status.consumed == 200 && status.dead == 1).await;
    relay.stop().await;
    consumer.stop().await;
    assert_eq!((status.consumed, status.dead, status.in_flight()), (200, 1, 0), "late, not dead: {status:?}");
    assert_eq!(outbox::state_of(sides.shop.pool(), poison).await.unwrap(), Some(MessageState::Dead));
    let mut conn = sides.warehouse.pool().get_conn().await.unwrap();
    let (rows, distinct): (u64, u64) = conn
        .query_first("SELECT COUNT(*), COUNT(DISTINCT credit_exchange_id) FROM shipment_request")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rows, distinct), (200, 200), "exactly one shipment request per exchange");
    assert!(proxy.cuts() > 0, "connections to the warehouse's database were cut");
}
