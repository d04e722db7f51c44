//! A history checker, in the spirit of Jepsen's: a concurrent crowd of all three domains through the whole
//! topology (two `seckill serve` instances behind the nginx balancer, a private Redis for the shared state, a TCP
//! proxy before the database, the relay and both consumers on a private RabbitMQ node), faults injected while it
//! runs (connections cut, Redis killed and started empty, the broker killed and started again, an instance
//! SIGKILLed for good), every request and answer recorded ([`crowd`]); afterwards every answer is checked
//! against the final databases by rules that know the product's promise, not this run ([`checker`]).
//!
//! A short run is part of `cargo test`; `SECKILL_SOAK=1` runs it ten times as long, with more clients.

mod checker;
mod crowd;

use std::time::{Duration, Instant};

use chrono::Utc;
use seckill::exchange::warehouse::ShipmentHandler;
use seckill::exchange::{Exchange, NewGift, SHIPMENT_TOPIC};
use seckill::local::LocalRabbitMq;
use seckill::local::cluster::{Cluster, ClusterDatabase, ClusterOptions, ClusterRedis};
use seckill::local::gift_service::{GiftServiceStub, StubConfig};
use seckill::local::tcp_proxy::TcpProxy;
use seckill::lottery::delivery::{GiftWorker, GiftWorkerConfig};
use seckill::lottery::{Lottery, NewCampaign, NewTier, PRIZE_TOPIC, read_gift_call};
use seckill::messaging::{self, ConsumerConfig, Relay, RelayConfig, Topology};
use seckill::migrate::Migrator;
use seckill::seckill::NewItem;
use seckill::testing::TestDatabase;

use crate::common::{SECRET, migrated_db, service};
use checker::Ground;
use crowd::{ApiClient, History, Stage};

/// How long the crowd runs, and how many clients it has.
struct Scale {
    run: Duration,
    clients: u64,
}

fn scale() -> Scale {
    if std::env::var_os("SECKILL_SOAK").is_some() {
        Scale { run: Duration::from_secs(120), clients: 48 }
    } else {
        Scale { run: Duration::from_secs(12), clients: 16 }
    }
}

/// The same URL (credentials, database) through `proxy`, over TCP.
fn through(url: &str, upstream: std::net::SocketAddr, proxy: std::net::SocketAddr) -> String {
    let url = url.replacen(&format!("@{upstream}"), &format!("@{proxy}"), 1);
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}prefer_socket=false")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_of_a_crowd_under_faults_is_what_the_databases_hold() {
    let scale = scale();
    let shop = migrated_db().await;
    let warehouse = TestDatabase::companion("warehouse", &Migrator::warehouse().unwrap()).await.unwrap();
    // The instances reach the database through a proxy the run can cut; the checker reads it directly.
    let opts = mysql_async::Opts::from_url(shop.url()).unwrap();
    let upstream = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()).parse().unwrap();
    let proxy = TcpProxy::start(upstream, Duration::ZERO).await.unwrap();
    let proxied = through(shop.url(), upstream, proxy.address());
    assert!(proxied.contains(&format!("@{}/", proxy.address())), "the instances go through the proxy: {proxied}");
    let options = ClusterOptions::new(seckill::app::served(env!("CARGO_BIN_EXE_seckill")))
        .instances(2)
        .database(ClusterDatabase::given(proxied))
        .redis(ClusterRedis::Private)
        .hmac_secret(SECRET);
    let cluster = Cluster::start(options).await.expect("the cluster starts");
    let broker = tokio::task::spawn_blocking(LocalRabbitMq::start).await.unwrap().unwrap();

    // What the crowd buys, exchanges and draws: stock that runs out, and stock that lasts.
    let now = Utc::now();
    let seckills = service(&shop);
    let initial_stock = [40, 100_000];
    let mut items = [0; 2];
    for (item, stock) in items.iter_mut().zip(initial_stock) {
        let window = (now - chrono::Duration::minutes(5), now + chrono::Duration::hours(1));
        let new =
            NewItem { name: format!("秒杀 {stock}"), stock: stock as i32, start_time: window.0, end_time: window.1 };
        *item = seckills.create(&new).await.unwrap().seckill_id;
    }
    let exchange = Exchange::new(shop.pool().clone());
    let hot = exchange.create_gift(&NewGift { name: "限量 hot".into(), cost: 30, stock: 25 }).await.unwrap().gift_id;
    let cold = exchange.create_gift(&NewGift { name: "cold".into(), cost: 10, stock: 100_000 }).await.unwrap().gift_id;
    let users = 300;
    for user in 1..=users {
        // Every fifth user has too few points for the hot gift.
        let points = if user % 5 == 0 { 20 } else { 100 };
        exchange.grant(user, points, "welcome").await.unwrap();
    }
    let lottery = Lottery::new(shop.pool().clone());
    let tiers = vec![
        NewTier { name: "金 Gold".into(), stock: 5, weight: 1, value_fen: 0 },
        NewTier { name: "杯 Mug".into(), stock: 25, weight: 3, value_fen: 0 },
    ];
    let mut new = NewCampaign::new("抽奖", now - chrono::Duration::minutes(5), now + chrono::Duration::hours(1), tiers);
    new.blank_weight = 4;
    let campaign = lottery.create_campaign(&new).await.unwrap().campaign_id;
    let stage = Stage { items, gifts: [hot, cold], campaign, buyers: 400, users };

    // The message service: the relay of the shop's outbox, the warehouse, and the gift worker before a gift
    // service that fails some calls.
    let topology = Topology::new(shop.name());
    let relay_config = RelayConfig {
        topology: topology.clone(),
        topics: seckill::app::message_topics(),
        reconnect_delay: Duration::from_millis(100),
        confirm_timeout: Duration::from_secs(3),
        schedule: crate::common::messaging::schedule(),
        ..RelayConfig::default()
    };
    let relay = Relay::new(shop.pool().clone(), broker.url(), relay_config).spawn();
    let consumer = |topic: &str| ConsumerConfig {
        topology: topology.clone(),
        reconnect_delay: Duration::from_millis(100),
        confirm_timeout: Duration::from_secs(3),
        ..ConsumerConfig::new(topic)
    };
    let shipments = messaging::spawn_consumer(
        broker.url(),
        consumer(SHIPMENT_TOPIC),
        ShipmentHandler::new(warehouse.pool().clone()),
    );
    let stub = GiftServiceStub::start(StubConfig { fail_share: 0.2, seed: 7, ..StubConfig::new(read_gift_call) })
        .await
        .unwrap();
    let worker_config = GiftWorkerConfig {
        rate: 500.0,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..GiftWorkerConfig::default()
    };
    let prizes = messaging::spawn_consumer(
        broker.url(),
        consumer(PRIZE_TOPIC),
        GiftWorker::new(&stub.url(), worker_config).unwrap(),
    );

    // The crowd, and the faults while it runs.
    let history = History::default();
    let started = Instant::now();
    let until = started + scale.run;
    let clients: Vec<_> = (0..scale.clients)
        .map(|n| {
            tokio::spawn(crowd::client(
                ApiClient::new(cluster.balancer().address(), history.clone()),
                stage,
                n + 1,
                until,
            ))
        })
        .collect();
    let at = |share: f64| started + scale.run.mul_f64(share);
    let mut faults = Vec::new();
    tokio::time::sleep_until(at(0.15).into()).await;
    proxy.set_cut_probability(0.01);
    faults.push("database connections cut at random");
    tokio::time::sleep_until(at(0.35).into()).await;
    proxy.set_cut_probability(0.0);
    let redis = cluster.local_redis().expect("a private Redis");
    tokio::task::block_in_place(|| redis.restart()).expect("Redis starts again");
    faults.push("Redis killed and started empty");
    tokio::time::sleep_until(at(0.5).into()).await;
    tokio::task::block_in_place(|| broker.restart()).expect("the broker starts again");
    faults.push("the broker killed and started again");
    tokio::time::sleep_until(at(0.65).into()).await;
    cluster.instances()[0].kill().expect("instance 1 is killed");
    faults.push("instance 1 SIGKILLed for good");
    for client in clients {
        client.await.unwrap();
    }
    let cuts = proxy.cuts();

    // Quiescence: every message consumed, every win delivered.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let status = messaging::outbox::status(shop.pool()).await.unwrap();
        if status.pending + status.sent == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ground = Ground {
        shop: shop.pool(),
        warehouse: warehouse.pool(),
        gift_effects: stub.effects_per_id(),
        client: ApiClient::new(cluster.balancer().address(), History::default()),
        stage,
        initial_stock,
    };
    let events = history.events();
    let report = checker::check(&events, &ground).await;
    eprintln!(
        "history: {} requests over {:?} by {} clients, faults: {} ({cuts} connections cut); {} answers checked, {} in \
         doubt, {} resolved; {} violations",
        report.requests,
        scale.run,
        scale.clients,
        faults.join(", "),
        report.answers_checked,
        report.in_doubt,
        report.resolved,
        report.violations.len()
    );
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert_eq!(report.in_doubt, report.resolved, "every answer in doubt resolved");
    assert!(report.requests > 500, "the crowd made enough requests to test something: {}", report.requests);
    for (item, initial) in items.iter().zip(initial_stock) {
        let left = crate::common::stock(shop.pool(), *item).await;
        if initial < 100 {
            assert_eq!(left, 0, "the hot item sold out");
        }
    }
    for running in [relay, shipments, prizes] {
        running.stop().await;
    }
}
