//! The consumer side of the message service: take a topic's messages, let a [`Handler`] commit their effects,
//! call back, and only then ack.
//!
//! The order is what makes the effect happen once: the handler commits first (idempotently: a message it has
//! seen before is "already done", e.g. a duplicate key), then the consumer publishes its callbacks with
//! publisher confirms, and only after the broker confirmed them does it ack the deliveries. A crash anywhere
//! before the ack is a redelivery, absorbed by the handler's idempotency; a lost callback is a re-send by the
//! relay, absorbed the same way.
//!
//! Every message is answered ([`super::callback`]): done, poison, or later. A message the handler calls poison is
//! rejected and answered "poison": the relay counts the refusal, sends it again later and, once it has been
//! refused `max_attempts` times, marks it dead: it never loops forever. A message the handler could not finish
//! for now ([`Handled::Later`], say its downstream service is unavailable), and a whole batch whose handler
//! failed (say its database is down), are rejected and answered "later": the relay's re-send, after its growing
//! wait, is the retry, and it never counts toward the message's death.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::Confirmation;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

use super::callback::{Callback, REASON_HEADER, Verdict};
use super::error::{MessagingError, bounded};
use super::topology::Topology;

/// One message as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The outbox's id for it: the same on every redelivery and re-send.
    pub message_id: i64,
    /// The business fact it is about, e.g. the credit_exchange id.
    pub business_key: String,
    /// The JSON the business procedure wrote.
    pub payload: String,
    /// Which send of the relay this is (1 for the first).
    pub attempt: u32,
    /// The broker delivered it before (this send).
    pub redelivered: bool,
}

/// What a handler did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Its effect is committed (now or earlier: a duplicate is done too).
    Done,
    /// It can never be handled (say, a payload that does not parse): answered "poison", one refusal counted;
    /// refused `max_attempts` times, it ends dead, visible and re-triable.
    Poison(String),
    /// Not done yet, and not poison (say, the service it calls is unavailable): answered "later", so the relay
    /// sends it again after its growing wait, for as long as it takes. It never ends dead for this.
    Later(String),
}

/// Commits the effects of a batch of messages, idempotently.
pub trait Handler: Send + Sync + 'static {
    /// Handles the batch and answers one [`Handled`] per message, in order. An error means nothing of the
    /// batch can be trusted to be done (say, the handler's database is down): the whole batch is answered
    /// [`Handled::Later`], and sent again by the relay after its wait.
    fn handle(&self, batch: &[Incoming]) -> impl Future<Output = Result<Vec<Handled>, String>> + Send;
}

/// How a consumer works.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The names of the exchange and queues (default: namespace `seckill`).
    pub topology: Topology,
    /// The topic to consume.
    pub topic: String,
    /// Deliveries in flight at once (RabbitMQ's prefetch; default 256).
    pub prefetch: u16,
    /// The most messages handed to the handler at once (default 256).
    pub batch: usize,
    /// Batches handled at once (default 1). More lets a handler whose batches end with a slow straggler (a
    /// retry waiting out its backoff) go on with the next batch meanwhile; each delivery is then acked on its
    /// own, since a batch may finish before one taken earlier.
    pub batches_in_flight: usize,
    /// How long to wait for the broker's confirm of the callbacks (default 10 s).
    pub confirm_timeout: Duration,
    /// How long to wait before reconnecting after a failure (default 500 ms).
    pub reconnect_delay: Duration,
}

impl ConsumerConfig {
    /// Defaults for `topic`.
    pub fn new(topic: impl Into<String>) -> Self {
        ConsumerConfig {
            topology: Topology::default(),
            topic: topic.into(),
            prefetch: 256,
            batch: 256,
            batches_in_flight: 1,
            confirm_timeout: Duration::from_secs(10),
            reconnect_delay: Duration::from_millis(500),
        }
    }
}

/// Runs `handler` over a topic's messages until `shutdown` completes, reconnecting whenever the broker fails.
pub async fn consume<H: Handler>(
    amqp_url: &str,
    config: &ConsumerConfig,
    handler: &H,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let session = async {
            let (connection, channel, deliveries) = connect(amqp_url, config).await?;
            let result = consume_until_failure(&channel, deliveries, config, handler).await;
            super::relay::close(connection).await;
            result
        };
        tokio::select! {
            () = &mut shutdown => return,
            result = session => {
                if let Err(error) = result {
                    tracing::warn!(%error, topic = %config.topic, "consumer: reconnecting to RabbitMQ");
                }
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(config.reconnect_delay) => {}
        }
    }
}

async fn connect(amqp_url: &str, config: &ConsumerConfig) -> Result<(Connection, Channel, Consumer), MessagingError> {
    let connection = bounded(Connection::connect(amqp_url, ConnectionProperties::default())).await?;
    let channel = bounded(connection.create_channel()).await?;
    bounded(config.topology.declare(&channel, std::slice::from_ref(&config.topic))).await?;
    bounded(channel.confirm_select(ConfirmSelectOptions::default())).await?;
    bounded(channel.basic_qos(config.prefetch, BasicQosOptions::default())).await?;
    let tag = format!("seckill-consumer-{}", std::process::id());
    let queue = config.topology.queue(&config.topic);
    let deliveries = bounded(channel.basic_consume(
        queue.as_str().into(),
        tag.into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await?;
    Ok((connection, channel, deliveries))
}

async fn consume_until_failure<H: Handler>(
    channel: &Channel,
    mut deliveries: Consumer,
    config: &ConsumerConfig,
    handler: &H,
) -> Result<(), MessagingError> {
    let most_in_flight = config.batches_in_flight.max(1);
    let ack_each = most_in_flight > 1;
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            // Finished batches first, so a failure is seen before more deliveries are taken.
            biased;
            Some(handled) = in_flight.next(), if !in_flight.is_empty() => handled?,
            // `next` is cancel-safe: a delivery is either taken here or left in the stream.
            first = deliveries.next(), if in_flight.len() < most_in_flight => {
                let Some(first) = first else {
                    return Err(MessagingError::Handler("the broker cancelled the consumer".into()));
                };
                let mut batch = vec![first?];
                while batch.len() < config.batch {
                    match tokio::time::timeout(Duration::from_millis(1), deliveries.next()).await {
                        Ok(Some(delivery)) => batch.push(delivery?),
                        Ok(None) | Err(_) => break,
                    }
                }
                in_flight.push(handle_batch(channel, batch, config, handler, ack_each));
            }
        }
    }
}

/// The handler, then the callbacks, then the acks: in that order.
async fn handle_batch<H: Handler>(
    channel: &Channel,
    deliveries: Vec<Delivery>,
    config: &ConsumerConfig,
    handler: &H,
    ack_each: bool,
) -> Result<(), MessagingError> {
    let mut readable = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        match incoming(&delivery) {
            Some(message) => readable.push((delivery, message)),
            // Not one of the relay's messages: nobody can call back for it, so it is dropped.
            None => {
                bounded(delivery.reject(BasicRejectOptions { requeue: false })).await?;
            }
        }
    }
    if readable.is_empty() {
        return Ok(());
    }
    let messages: Vec<Incoming> = readable.iter().map(|(_, message)| message.clone()).collect();
    let (handled, failed) = match handler.handle(&messages).await {
        Ok(handled) if handled.len() == messages.len() => (handled, false),
        Ok(handled) => {
            return Err(MessagingError::Handler(format!("{} answers for {} messages", handled.len(), messages.len())));
        }
        // Nothing of the batch is known done, and nothing says it is poison: the handler's own database or
        // service failed (down, or silent past its bound). Requeued, the batch would come straight back to the
        // same failure, and the broker's delivery limit would drop it within seconds; answered "later", the relay
        // sends it again after its growing wait, and an outage never makes it dead.
        Err(error) => {
            tracing::warn!(
                %error,
                topic = %config.topic,
                messages = messages.len(),
                "consumer: the handler failed; the batch is answered later and will be sent again by the relay"
            );
            (vec![Handled::Later(format!("the handler failed: {error}")); messages.len()], true)
        }
    };
    let callbacks = Callback::grouped(readable.iter().zip(&handled).map(|((_, message), outcome)| match outcome {
        Handled::Done => (message.message_id, Verdict::Consumed, ""),
        Handled::Later(why) => (message.message_id, Verdict::Later, why.as_str()),
        Handled::Poison(why) => (message.message_id, Verdict::Poison, why.as_str()),
    }));
    call_back(channel, config, &callbacks).await?;
    if !ack_each && handled.iter().all(|outcome| *outcome == Handled::Done) {
        // The common case: one ack for the whole batch, and every earlier delivery is in it.
        if let Some((last, _)) = readable.last() {
            bounded(last.ack(BasicAckOptions { multiple: true })).await?;
        }
        return Ok(());
    }
    for ((delivery, message), outcome) in readable.iter().zip(handled) {
        match outcome {
            Handled::Done => {
                bounded(delivery.ack(BasicAckOptions::default())).await?;
            }
            Handled::Poison(why) => {
                tracing::warn!(message_id = message.message_id, %why, "consumer: poison message refused");
                bounded(delivery.reject(BasicRejectOptions { requeue: false })).await?;
            }
            // Not requeued: an immediate redelivery would hit the same failure at once; the relay's re-send
            // comes after a wait that grows with each send.
            Handled::Later(why) => {
                if !failed {
                    tracing::info!(message_id = message.message_id, %why, "consumer: not done, left for a re-send");
                }
                bounded(delivery.reject(BasicRejectOptions { requeue: false })).await?;
            }
        }
    }
    if failed {
        // A pause before the next batch, so that a database that is down is not hammered.
        tokio::time::sleep(config.reconnect_delay).await;
    }
    Ok(())
}

/// Publishes the batch's callbacks and waits for the broker to confirm them all. Until it has, no delivery of the
/// batch is acked: a callback not taken means the deliveries come again, and are absorbed.
async fn call_back(channel: &Channel, config: &ConsumerConfig, callbacks: &[Callback]) -> Result<(), MessagingError> {
    let callback_queue = config.topology.callback_queue();
    let mut confirms = Vec::with_capacity(callbacks.len());
    for callback in callbacks {
        let mut properties = BasicProperties::default().with_delivery_mode(2);
        if let Some(reason) = &callback.reason {
            let mut headers = FieldTable::default();
            headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.as_str().into()));
            properties = properties.with_headers(headers);
        }
        confirms.push(
            bounded(channel.basic_publish(
                "".into(),
                callback_queue.as_str().into(),
                BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                callback.body().as_bytes(),
                properties,
            ))
            .await?,
        );
    }
    let deadline = tokio::time::Instant::now() + config.confirm_timeout;
    for confirm in confirms {
        match tokio::time::timeout_at(deadline, confirm).await {
            Ok(Ok(Confirmation::Ack(None))) => {}
            Ok(Ok(other)) => return Err(MessagingError::Handler(format!("the callback was not taken: {other:?}"))),
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => return Err(MessagingError::ConfirmTimeout(config.confirm_timeout)),
        }
    }
    Ok(())
}

/// The message the relay sent, or `None` for anything else.
fn incoming(delivery: &Delivery) -> Option<Incoming> {
    let properties = &delivery.properties;
    let message_id = properties.message_id().as_ref()?.as_str().parse().ok()?;
    let headers = properties.headers().as_ref();
    let header = |name: &str| headers.and_then(|headers| headers.inner().get(name));
    let business_key = match header("business_key") {
        Some(AMQPValue::LongString(key)) => key.to_string(),
        _ => String::new(),
    };
    let attempt = match header("attempt") {
        Some(AMQPValue::LongUInt(attempt)) => *attempt,
        _ => 1,
    };
    Some(Incoming {
        message_id,
        business_key,
        payload: String::from_utf8_lossy(&delivery.data).into_owned(),
        attempt,
        redelivered: delivery.redelivered,
    })
}
