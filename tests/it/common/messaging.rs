//! The message service in tests: a shop's database and the warehouse's, a relay and consumers that run until
//! stopped, with waits short enough for re-sends and leases to happen within a test.

use std::time::{Duration, Instant};

use seckill::exchange::SHIPMENT_TOPIC;
use seckill::local::rabbitmq::rabbitmq_url;
use seckill::messaging::{
    self, ConsumerConfig, Handler, OutboxStatus, Relay, RelayConfig, Running, Schedule, Topology, outbox,
};
use seckill::migrate::Migrator;
use seckill::testing::TestDatabase;

use super::migrated_db;

/// The shop's database and the warehouse's, for the running test.
pub struct Sides {
    pub shop: TestDatabase,
    pub warehouse: TestDatabase,
    pub namespace: String,
}

pub async fn sides() -> Sides {
    let shop = migrated_db().await;
    let warehouse = TestDatabase::companion("warehouse", &Migrator::warehouse().unwrap()).await.unwrap();
    let namespace = shop.name().to_string();
    Sides { shop, warehouse, namespace }
}

/// Short waits, so that re-sends and leases happen within a test.
pub fn schedule() -> Schedule {
    Schedule {
        claim_lease: Duration::from_millis(600),
        consume_timeout: Duration::from_millis(800),
        max_consume_timeout: Duration::from_secs(3),
        max_attempts: 6,
    }
}

pub fn relay_config(namespace: &str) -> RelayConfig {
    RelayConfig {
        topology: Topology::new(namespace),
        topics: vec![SHIPMENT_TOPIC.to_string()],
        reconnect_delay: Duration::from_millis(100),
        confirm_timeout: Duration::from_secs(3),
        schedule: schedule(),
        ..RelayConfig::default()
    }
}

pub fn consumer_config(namespace: &str) -> ConsumerConfig {
    ConsumerConfig {
        topology: Topology::new(namespace),
        reconnect_delay: Duration::from_millis(100),
        confirm_timeout: Duration::from_secs(3),
        ..ConsumerConfig::new(SHIPMENT_TOPIC)
    }
}

pub fn start_relay(sides: &Sides, amqp_url: &str) -> Running {
    start_relay_with(sides, amqp_url, relay_config(&sides.namespace))
}

pub fn start_relay_with(sides: &Sides, amqp_url: &str, config: RelayConfig) -> Running {
    Relay::new(sides.shop.pool().clone(), amqp_url, config).spawn()
}

pub fn start_consumer<H: Handler + Clone>(sides: &Sides, amqp_url: &str, handler: &H) -> Running {
    start_consumer_with(amqp_url, consumer_config(&sides.namespace), handler)
}

pub fn start_consumer_with<H: Handler + Clone>(amqp_url: &str, config: ConsumerConfig, handler: &H) -> Running {
    messaging::spawn_consumer(amqp_url, config, handler.clone())
}

/// Waits until `done` holds for the outbox's status, up to `limit`.
pub async fn wait_for(sides: &Sides, limit: Duration, done: impl Fn(&OutboxStatus) -> bool) -> OutboxStatus {
    let deadline = Instant::now() + limit;
    loop {
        let status = outbox::status(sides.shop.pool()).await.unwrap();
        if done(&status) || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The broker tests share: `RABBITMQ_URL` or a private node.
pub fn broker() -> String {
    rabbitmq_url().expect("a RabbitMQ: set RABBITMQ_URL or install rabbitmq-server (.ci/install)")
}
