//! The message service in tests: a shop's database and the warehouse's, a relay and consumers that run until
//! stopped, with waits short enough for re-sends and leases to happen within a test.

use std::time::{Duration, Instant};

use seckill::local_rabbitmq::rabbitmq_url;
use seckill::messaging::{self, ConsumerConfig, Handler, OutboxStatus, Relay, RelayConfig, Schedule, Topology, outbox};
use seckill::migrate::Migrator;
use seckill::testing::TestDatabase;
use seckill::warehouse::SHIPMENT_TOPIC;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

/// A task that runs until stopped.
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }

    /// Runs the future `run` makes of the stop signal, until stopped.
    pub fn spawn<F>(run: impl FnOnce(oneshot::Receiver<()>) -> F) -> Running
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        Running { stop, task: tokio::spawn(run(stopped)) }
    }
}

pub fn start_relay(sides: &Sides, amqp_url: &str) -> Running {
    start_relay_with(sides, amqp_url, relay_config(&sides.namespace))
}

pub fn start_relay_with(sides: &Sides, amqp_url: &str, config: RelayConfig) -> Running {
    let relay = Relay::new(sides.shop.pool().clone(), amqp_url, config);
    Running::spawn(|stopped| {
        relay.run(async move {
            let _ = stopped.await;
        })
    })
}

pub fn start_consumer<H: Handler + Clone>(sides: &Sides, amqp_url: &str, handler: &H) -> Running {
    start_consumer_with(amqp_url, consumer_config(&sides.namespace), handler)
}

pub fn start_consumer_with<H: Handler + Clone>(amqp_url: &str, config: ConsumerConfig, handler: &H) -> Running {
    let (url, handler) = (amqp_url.to_string(), handler.clone());
    Running::spawn(|stopped| async move {
        messaging::consume(&url, &config, &handler, async move {
            let _ = stopped.await;
        })
        .await;
    })
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
