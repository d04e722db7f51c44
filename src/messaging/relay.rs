//! The relay: outbox rows to RabbitMQ, and consumers' callbacks back to the outbox.
//!
//! Two loops over one connection. The publishing loop claims due messages (several relays may run at once:
//! claims skip rows another relay holds), publishes each as a persistent message with publisher confirms,
//! all of a claim at once, and then collects the confirms as they come; only the messages the broker acked
//! are marked sent. A nack, a confirm that does not come, or a broken connection leaves a message claimed,
//! and it is sent again when the claim's lease ends. The callback loop reads consumers' answers
//! ([`super::callback`]) and records them, a batch per update: consumed; later (the consumer's own downstream is
//! down: only the reason is kept, the message is sent again after its wait); refused as poison (counted, dead at
//! `Schedule::max_attempts`).
//!
//! Whatever breaks (the broker restarting, a connection cut), the relay reconnects by itself; the outbox, not
//! the broker connection, remembers what is still to be sent. Every database call is bounded too
//! ([`RelayConfig::database_timeout`]): a connection to the outbox that goes silent is closed after the bound,
//! the relay says so in its log, and the claim or mark is tried again on a new connection.
//!
//! Besides, every relay samples the outbox's backlog by state and its lag (the age of the oldest message not
//! yet consumed) into gauges every [`BACKLOG_SAMPLE_INTERVAL`], broker or not (see [`crate::prometheus`]).

use std::time::Duration;

use futures_util::StreamExt;
use lapin::Confirmation;
use lapin::options::ConfirmSelectOptions;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use mysql_async::Pool;

use super::callback::{Answers, REASON_HEADER};
use super::error::{MessagingError, bounded};
use super::outbox::{self, OutboxMessage, Schedule};
use super::topology::Topology;
use crate::database::{DEFAULT_ANSWER_TIMEOUT, DatabaseError};
use crate::prometheus::BACKLOG_SAMPLE_INTERVAL;
use crate::prometheus::names::{OUTBOX_MESSAGES, RELAY_LAG};

/// How the relay works.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The names of the exchange and queues (default: namespace `seckill`).
    pub topology: Topology,
    /// The topics the relay carries: it declares their queues, and claims only their messages, so relays for
    /// different topics can share one outbox. Empty: every topic (a message whose topic has no queue ends
    /// dead at once).
    pub topics: Vec<String>,
    /// The most messages one claim takes (default 1000).
    pub batch: usize,
    /// Publishing loops run at once, each claiming its own messages on its own channel, so that one claim's
    /// database round trips overlap another's wait for confirms (default 3).
    pub publishers: usize,
    /// How long to wait before looking again when nothing was due (default 20 ms).
    pub idle_poll: Duration,
    /// How long to wait for the broker's confirms of one claim (default 10 s).
    pub confirm_timeout: Duration,
    /// How long to wait before reconnecting after the broker failed (default 500 ms).
    pub reconnect_delay: Duration,
    /// How long any one database call (a claim, a mark, a sample of the backlog) may wait for the database's
    /// answers before its connection is closed and the call tried again on a new one (default
    /// [`DEFAULT_ANSWER_TIMEOUT`]). A claim that got no answer may still have been made: its messages are then
    /// sent when their lease ends.
    pub database_timeout: Duration,
    /// Leases, callback waits and attempts.
    pub schedule: Schedule,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            topology: Topology::default(),
            topics: Vec::new(),
            batch: 1000,
            publishers: 3,
            idle_poll: Duration::from_millis(20),
            confirm_timeout: Duration::from_secs(10),
            reconnect_delay: Duration::from_millis(500),
            database_timeout: DEFAULT_ANSWER_TIMEOUT,
            schedule: Schedule::default(),
        }
    }
}

/// Relays one outbox to one broker.
#[derive(Debug, Clone)]
pub struct Relay {
    pool: Pool,
    amqp_url: String,
    config: RelayConfig,
}

/// The most callbacks marked consumed by one update.
const CALLBACK_BATCH: usize = 500;

impl Relay {
    /// A relay of the outbox in `pool` to the broker at `amqp_url` (`amqp://user:password@host:port/vhost`).
    pub fn new(pool: Pool, amqp_url: impl Into<String>, config: RelayConfig) -> Self {
        Relay { pool, amqp_url: amqp_url.into(), config }
    }

    /// Runs until `shutdown` completes, reconnecting to the broker whenever it fails. Messages claimed when
    /// it stops are sent again after their lease, by this relay or another.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let sampling = sample_backlog(&self.pool, self.config.database_timeout);
        tokio::pin!(sampling);
        loop {
            let session = async {
                let (connection, publishers, callbacks) = self.connect().await?;
                let publishing = futures_util::future::select_all(
                    publishers.iter().map(|publisher| Box::pin(self.publish_loop(publisher))),
                );
                let result = tokio::select! {
                    (result, _, _) = publishing => result,
                    result = self.callback_loop(callbacks) => result,
                };
                close(connection).await;
                result
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = &mut sampling => {}
                result = session => {
                    if let Err(error) = result {
                        tracing::warn!(%error, "relay: reconnecting to RabbitMQ");
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = &mut sampling => {}
                () = tokio::time::sleep(self.config.reconnect_delay) => {}
            }
        }
    }

    async fn connect(&self) -> Result<(Connection, Vec<Channel>, Consumer), MessagingError> {
        let connection = bounded(Connection::connect(&self.amqp_url, ConnectionProperties::default())).await?;
        let mut publishers = Vec::new();
        for _ in 0..self.config.publishers.max(1) {
            let publisher = bounded(connection.create_channel()).await?;
            bounded(self.config.topology.declare(&publisher, &self.config.topics)).await?;
            bounded(publisher.confirm_select(ConfirmSelectOptions::default())).await?;
            publishers.push(publisher);
        }
        let listener = bounded(connection.create_channel()).await?;
        let prefetch = u16::try_from(CALLBACK_BATCH).unwrap_or(u16::MAX);
        bounded(listener.basic_qos(prefetch, BasicQosOptions::default())).await?;
        let callback_queue = self.config.topology.callback_queue();
        let callbacks = bounded(listener.basic_consume(
            callback_queue.as_str().into(),
            "seckill-relay".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await?;
        Ok((connection, publishers, callbacks))
    }

    /// Claims, publishes and marks sent, until the broker fails.
    async fn publish_loop(&self, channel: &Channel) -> Result<(), MessagingError> {
        loop {
            let (topics, schedule, bound) = (&self.config.topics, &self.config.schedule, self.config.database_timeout);
            let claimed = match outbox::claim_within(&self.pool, topics, self.config.batch, schedule, bound).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    // The outbox's database is down or silent: nothing can be claimed, so nothing is lost by
                    // waiting.
                    tracing::warn!(%error, "relay: cannot claim messages");
                    tokio::time::sleep(self.config.reconnect_delay).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                tokio::time::sleep(self.config.idle_poll).await;
                continue;
            }
            let exchange = self.config.topology.exchange();
            let published = publish_confirmed(channel, &exchange, &claimed, self.config.confirm_timeout).await;
            let (confirmed, failure) = match published {
                Ok(confirmed) => (confirmed, None),
                Err((confirmed, error)) => (confirmed, Some(error)),
            };
            if let Err(error) = outbox::mark_sent(&self.pool, &confirmed.acked, schedule, bound).await {
                // They stay claimed and are sent again after the lease: a duplicate, never a loss.
                tracing::warn!(%error, "relay: cannot mark messages sent");
            }
            let reason = "no queue takes this topic: declare it in the relay's topics, then retry";
            if let Err(error) = outbox::mark_dead(&self.pool, &confirmed.unroutable, reason, bound).await {
                tracing::warn!(%error, "relay: cannot mark unroutable messages dead");
            }
            if let Some(error) = failure {
                return Err(error);
            }
        }
    }

    /// Records the answers consumers called back with (consumed, later, refused), a batch at a time, acking the
    /// callbacks after.
    async fn callback_loop(&self, mut callbacks: Consumer) -> Result<(), MessagingError> {
        loop {
            let Some(first) = callbacks.next().await else {
                return Err(MessagingError::Handler("the callback consumer was cancelled".into()));
            };
            let mut deliveries = vec![first?];
            // Whatever else has already arrived joins this update.
            while deliveries.len() < CALLBACK_BATCH {
                match tokio::time::timeout(Duration::from_millis(2), callbacks.next()).await {
                    Ok(Some(delivery)) => deliveries.push(delivery?),
                    Ok(None) | Err(_) => break,
                }
            }
            let mut answers = Answers::default();
            for delivery in &deliveries {
                answers.read(&delivery.data, reason(delivery));
            }
            let Some(last) = deliveries.last() else { continue };
            match self.record(&answers).await {
                Ok(()) => {
                    bounded(last.ack(BasicAckOptions { multiple: true })).await?;
                }
                Err(error) => {
                    tracing::warn!(%error, "relay: cannot record consumers' answers; the callbacks will come again");
                    bounded(last.nack(BasicNackOptions { multiple: true, requeue: true })).await?;
                    tokio::time::sleep(self.config.reconnect_delay).await;
                }
            }
        }
    }

    /// Records what consumers answered: consumed, later, refused. Refusals go last, as the only answers that are
    /// not idempotent: if an earlier update fails, the callbacks come again and no refusal was counted yet.
    async fn record(&self, answers: &Answers) -> Result<(), DatabaseError> {
        let bound = self.config.database_timeout;
        outbox::mark_consumed(&self.pool, &answers.consumed, bound).await?;
        for (reason, ids) in &answers.later {
            outbox::mark_later(&self.pool, ids, reason, bound).await?;
        }
        for (reason, ids) in &answers.refused {
            outbox::mark_refused(&self.pool, ids, reason, &self.config.schedule, bound).await?;
        }
        Ok(())
    }
}

/// The reason a callback carries for its "later" or "poison" answers, if any.
fn reason(delivery: &lapin::message::Delivery) -> Option<&str> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(REASON_HEADER)? {
        AMQPValue::LongString(reason) => std::str::from_utf8(reason.as_bytes()).ok(),
        _ => None,
    }
}

/// Sets the backlog and lag gauges from the outbox every [`BACKLOG_SAMPLE_INTERVAL`], for as long as it is
/// polled: on a timer, never per message, and whether the broker is up or not; each sample within `bound`.
async fn sample_backlog(pool: &Pool, bound: Duration) {
    let mut tick = tokio::time::interval(BACKLOG_SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A failed sample leaves the gauges as they were; the claim loop already says the database is down.
        let Ok(status) = outbox::status_within(pool, bound).await else { continue };
        for (state, count) in
            [("pending", status.pending), ("sent", status.sent), ("consumed", status.consumed), ("dead", status.dead)]
        {
            metrics::gauge!(OUTBOX_MESSAGES, "state" => state).set(count as f64);
        }
        metrics::gauge!(RELAY_LAG).set(status.oldest_unconsumed_seconds.unwrap_or(0.0));
    }
}

/// Closes a connection that may already be dead without waiting for it long: a broken connection's close
/// would wait for an answer that never comes, and the relay would never reconnect.
pub(crate) async fn close(connection: Connection) {
    let _ = tokio::time::timeout(Duration::from_secs(1), connection.close(200, "reconnecting".into())).await;
}

/// What the broker said of one claim's messages.
#[derive(Debug, Default)]
struct Confirmed {
    /// Taken and routed to a queue.
    acked: Vec<i64>,
    /// Taken, but no queue is bound for their topic: they came back.
    unroutable: Vec<i64>,
}

/// Publishes every message, then collects the confirms as they come. On a broker failure, returns what was
/// confirmed before it, and the error.
async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    messages: &[OutboxMessage],
    confirm_timeout: Duration,
) -> Result<Confirmed, (Confirmed, MessagingError)> {
    let deadline = tokio::time::Instant::now() + confirm_timeout;
    let mut pending = Vec::with_capacity(messages.len());
    for message in messages {
        let mut headers = FieldTable::default();
        headers.insert("business_key".into(), AMQPValue::LongString(message.business_key.as_str().into()));
        headers.insert("attempt".into(), AMQPValue::LongUInt(message.attempt));
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(message.message_id.to_string().into())
            .with_headers(headers);
        // Mandatory: a message no queue would take comes back in its confirm instead of vanishing.
        let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let publish = channel.basic_publish(
            exchange.into(),
            message.topic.as_str().into(),
            options,
            message.payload.as_bytes(),
            properties,
        );
        match tokio::time::timeout_at(deadline, publish).await {
            Ok(Ok(confirm)) => pending.push((message.message_id, confirm)),
            Ok(Err(error)) => return Err((Confirmed::default(), error.into())),
            Err(_) => return Err((Confirmed::default(), MessagingError::ConfirmTimeout(confirm_timeout))),
        }
    }
    let mut confirmed = Confirmed::default();
    for (message_id, confirm) in pending {
        match tokio::time::timeout_at(deadline, confirm).await {
            Ok(Ok(Confirmation::Ack(None))) => confirmed.acked.push(message_id),
            Ok(Ok(Confirmation::Ack(Some(_)))) => confirmed.unroutable.push(message_id),
            // A nack: the broker could not take it now; it is sent again after the lease.
            Ok(Ok(other)) => tracing::warn!(message_id, ?other, "relay: the broker refused a message"),
            Ok(Err(error)) => return Err((confirmed, error.into())),
            Err(_) => return Err((confirmed, MessagingError::ConfirmTimeout(confirm_timeout))),
        }
    }
    Ok(confirmed)
}
