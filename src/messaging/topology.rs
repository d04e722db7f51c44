//! Where messages travel in RabbitMQ, declared by whoever connects first (declarations are idempotent).
//!
//! All names derive from a namespace (default `seckill`), so that several shops, or several tests, share a
//! broker without seeing each other's messages:
//! - one durable direct exchange, `{namespace}.messages`; each topic is a routing key with its own queue,
//!   `{namespace}.{topic}`, so consumers of one topic never see another's;
//! - queues are quorum queues (replicated, durable; the kind RabbitMQ recommends for data that must not be
//!   lost), with a delivery limit so that a message that keeps failing is dropped by the broker rather than
//!   redelivered forever. Dropping it loses nothing: the outbox still holds it and re-sends it later, up to
//!   its last attempt, after which it is dead and visible to an operator;
//! - consumers call back on `{namespace}.consumed`, through the default exchange, once their own commit is done.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

/// The namespace of a shop's messages unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "seckill";

/// Deliveries of one message before the broker gives up on it (the outbox re-sends it later).
pub const DELIVERY_LIMIT: i32 = 10;

/// The names of one namespace's exchange and queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    namespace: String,
}

impl Default for Topology {
    fn default() -> Self {
        Topology::new(DEFAULT_NAMESPACE)
    }
}

impl Topology {
    /// The names under `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Topology { namespace: namespace.into() }
    }

    /// The exchange every outbox message is published to, with its topic as the routing key.
    pub fn exchange(&self) -> String {
        format!("{}.messages", self.namespace)
    }

    /// The queue a topic's consumers read.
    pub fn queue(&self, topic: &str) -> String {
        format!("{}.{topic}", self.namespace)
    }

    /// The queue consumers send their "consumed" callbacks to.
    pub fn callback_queue(&self) -> String {
        format!("{}.consumed", self.namespace)
    }

    /// Declares the exchange, a queue bound to it for each topic, and the callback queue.
    ///
    /// # Errors
    /// The broker's error.
    pub async fn declare(&self, channel: &Channel, topics: &[String]) -> Result<(), lapin::Error> {
        let exchange = self.exchange();
        let durable_exchange = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        channel
            .exchange_declare(exchange.as_str().into(), ExchangeKind::Direct, durable_exchange, FieldTable::default())
            .await?;
        for topic in topics {
            let queue = self.queue(topic);
            channel.queue_declare(queue.as_str().into(), durable(), quorum_arguments(Some(DELIVERY_LIMIT))).await?;
            channel
                .queue_bind(
                    queue.as_str().into(),
                    exchange.as_str().into(),
                    topic.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        channel.queue_declare(self.callback_queue().as_str().into(), durable(), quorum_arguments(None)).await?;
        Ok(())
    }
}

fn quorum_arguments(delivery_limit: Option<i32>) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    if let Some(limit) = delivery_limit {
        arguments.insert("x-delivery-limit".into(), AMQPValue::LongInt(limit));
    }
    arguments
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() }
}
