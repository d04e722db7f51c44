//! The outbox table, as the relay and operators use it (`sql/migrations/V3__message_outbox.sql`).
//!
//! Business procedures insert rows; everything here happens after their commit: claiming due messages (safe
//! with several relays at once: `FOR UPDATE SKIP LOCKED`), marking them sent on the broker's ack, consumed on
//! the consumer's callback, dead when attempts run out, and retrying dead ones for an operator.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::{Pool, Value};

use crate::database::acquire;
use crate::database::rows::{exec_all, exec_first, instant};
use crate::database_error::DatabaseError;

/// One message as the relay sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub message_id: i64,
    pub topic: String,
    pub business_key: String,
    pub payload: String,
    /// Which send this is, 1 for the first.
    pub attempt: u32,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    Pending,
    Sent,
    Consumed,
    Dead,
}

impl MessageState {
    /// The column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Pending => "pending",
            MessageState::Sent => "sent",
            MessageState::Consumed => "consumed",
            MessageState::Dead => "dead",
        }
    }

    /// The state a column's value names, if any.
    pub fn parse(text: &str) -> Option<Self> {
        [MessageState::Pending, MessageState::Sent, MessageState::Consumed, MessageState::Dead]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// How the relay paces sends and re-sends.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// How long a claimed message is reserved for the relay that claimed it: if that relay dies before the
    /// broker acks, another one sends it again after this.
    pub claim_lease: Duration,
    /// How long to wait for the consumer's callback after the first send; doubled at each attempt.
    pub consume_timeout: Duration,
    /// The longest wait for a callback, however many attempts.
    pub max_consume_timeout: Duration,
    /// Sends the broker acked, without a callback, before a message is dead.
    pub max_attempts: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            claim_lease: Duration::from_secs(10),
            consume_timeout: Duration::from_secs(10),
            max_consume_timeout: Duration::from_secs(600),
            max_attempts: 8,
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Claims up to `limit` due messages for sending, each reserved for `claim_lease`. Messages already sent
/// `max_attempts` times without a callback are marked dead instead. Rows another relay has claimed in a
/// transaction still open are skipped, not waited for, and no business insert waits for a claim.
///
/// # Errors
/// The database's error; nothing is claimed then.
pub async fn claim(pool: &Pool, limit: usize, schedule: &Schedule) -> Result<Vec<OutboxMessage>, DatabaseError> {
    let mut conn = acquire(pool).await?;
    // READ COMMITTED: the locking read locks the rows it claims and no gaps. Under REPEATABLE READ its
    // next-key locks on (state, due_at) would block, and deadlock with, the inserts of business procedures
    // writing new messages: a claim must never make a business transaction fail.
    let mut options = mysql_async::TxOpts::default();
    options.with_isolation_level(mysql_async::IsolationLevel::ReadCommitted);
    let mut transaction = conn.start_transaction(options).await?;
    let due: Vec<(i64, String, String, String, u32)> = {
        let rows: Vec<mysql_async::Row> = transaction
            .exec(
                "SELECT message_id, topic, business_key, payload, attempts FROM message_outbox \
                  WHERE state IN ('pending', 'sent') AND due_at <= NOW(3) \
                  ORDER BY due_at LIMIT ? FOR UPDATE SKIP LOCKED",
                (limit,),
            )
            .await?;
        rows.into_iter().map(|row| crate::database::rows::decode(row, "a due message")).collect::<Result<_, _>>()?
    };
    let (dead, live): (Vec<_>, Vec<_>) = due.into_iter().partition(|row| row.4 >= schedule.max_attempts);
    if !dead.is_empty() {
        let ids = id_list(dead.iter().map(|row| row.0));
        transaction
            .query_drop(format!(
                "UPDATE message_outbox SET state = 'dead', \
                        last_error = 'sent {} times without a callback from its consumer' \
                  WHERE message_id IN ({ids})",
                schedule.max_attempts
            ))
            .await?;
    }
    if !live.is_empty() {
        let ids = id_list(live.iter().map(|row| row.0));
        transaction
            .exec_drop(
                format!(
                    "UPDATE message_outbox SET due_at = TIMESTAMPADD(MICROSECOND, ?, NOW(3)) \
                      WHERE message_id IN ({ids})"
                ),
                (micros(schedule.claim_lease),),
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(live
        .into_iter()
        .map(|(message_id, topic, business_key, payload, attempts)| OutboxMessage {
            message_id,
            topic,
            business_key,
            payload,
            attempt: attempts + 1,
        })
        .collect())
}

/// Marks messages the broker acked as sent, counting the attempt, and due again (for a re-send) if the
/// consumer has not called back by then: `consume_timeout` after the first send, doubling with each attempt up
/// to `max_consume_timeout`. Only sends the broker took count: a claim lost to a broken connection costs no
/// attempt. A message already consumed (a fast consumer's callback can beat this) stays consumed.
///
/// # Errors
/// The database's error; the messages then stay claimed and are sent again after the lease.
pub async fn mark_sent(pool: &Pool, message_ids: &[i64], schedule: &Schedule) -> Result<(), DatabaseError> {
    if message_ids.is_empty() {
        return Ok(());
    }
    let mut conn = acquire(pool).await?;
    let ids = id_list(message_ids.iter().copied());
    // `due_at` is assigned before `attempts` and reads its old value under both MySQL's left-to-right and
    // MariaDB's simultaneous assignment: the first send waits `consume_timeout`, the next twice that.
    conn.exec_drop(
        format!(
            "UPDATE message_outbox \
                SET due_at = TIMESTAMPADD(MICROSECOND, LEAST(? * POW(2, attempts), ?), NOW(3)), \
                    attempts = attempts + 1, state = 'sent', sent_at = NOW(3) \
              WHERE message_id IN ({ids}) AND state IN ('pending', 'sent')"
        ),
        (micros(schedule.consume_timeout), micros(schedule.max_consume_timeout)),
    )
    .await?;
    Ok(())
}

/// Marks messages dead at once, with the reason: for what no attempt can fix (a topic no queue takes).
///
/// # Errors
/// The database's error.
pub async fn mark_dead(pool: &Pool, message_ids: &[i64], reason: &str) -> Result<(), DatabaseError> {
    if message_ids.is_empty() {
        return Ok(());
    }
    let mut conn = acquire(pool).await?;
    let ids = id_list(message_ids.iter().copied());
    let reason: String = reason.chars().take(255).collect();
    conn.exec_drop(
        format!(
            "UPDATE message_outbox SET state = 'dead', last_error = ? \
              WHERE message_id IN ({ids}) AND state IN ('pending', 'sent')"
        ),
        (reason,),
    )
    .await?;
    Ok(())
}

/// Marks messages consumed: their consumers committed their effects and called back. Idempotent, and a
/// dead message whose consumer finally called back is consumed too (its effect happened).
///
/// # Errors
/// The database's error.
pub async fn mark_consumed(pool: &Pool, message_ids: &[i64]) -> Result<(), DatabaseError> {
    if message_ids.is_empty() {
        return Ok(());
    }
    let mut conn = acquire(pool).await?;
    let ids = id_list(message_ids.iter().copied());
    conn.query_drop(format!(
        "UPDATE message_outbox SET state = 'consumed', consumed_at = NOW(3) \
          WHERE message_id IN ({ids}) AND state <> 'consumed'"
    ))
    .await?;
    Ok(())
}

/// Integers only: nothing in the list can carry SQL.
fn id_list(ids: impl Iterator<Item = i64>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

/// Message counts by state and the age of the oldest message not yet consumed, for operators.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OutboxStatus {
    pub pending: u64,
    pub sent: u64,
    pub consumed: u64,
    pub dead: u64,
    /// How long the oldest pending or sent message has waited since it was written.
    pub oldest_unconsumed_seconds: Option<f64>,
}

impl OutboxStatus {
    /// Messages not yet consumed nor dead.
    pub fn in_flight(&self) -> u64 {
        self.pending + self.sent
    }
}

/// Reads the counts.
///
/// # Errors
/// The database's error.
pub async fn status(pool: &Pool) -> Result<OutboxStatus, DatabaseError> {
    let mut conn = acquire(pool).await?;
    let counts: Vec<(String, u64)> =
        exec_all(&mut conn, "SELECT state, COUNT(*) FROM message_outbox GROUP BY state", (), "message counts").await?;
    let mut status = OutboxStatus::default();
    for (state, count) in counts {
        match MessageState::parse(&state) {
            Some(MessageState::Pending) => status.pending = count,
            Some(MessageState::Sent) => status.sent = count,
            Some(MessageState::Consumed) => status.consumed = count,
            Some(MessageState::Dead) => status.dead = count,
            None => {}
        }
    }
    let oldest: Option<(Option<f64>,)> = exec_first(
        &mut conn,
        "SELECT TIMESTAMPDIFF(MICROSECOND, MIN(created_at), NOW(3)) / 1000000 FROM message_outbox \
          WHERE state IN ('pending', 'sent')",
        (),
        "the oldest message",
    )
    .await?;
    status.oldest_unconsumed_seconds = oldest.and_then(|(age,)| age);
    Ok(status)
}

/// A message as an operator sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MessageRecord {
    pub message_id: i64,
    pub topic: String,
    pub business_key: String,
    pub state: MessageState,
    pub attempts: u32,
    pub created_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Messages in `state`, oldest first, at most `limit`.
///
/// # Errors
/// The database's error.
pub async fn list(pool: &Pool, state: MessageState, limit: u32) -> Result<Vec<MessageRecord>, DatabaseError> {
    let mut conn = acquire(pool).await?;
    type Row = (i64, String, String, String, u32, Value, Option<String>);
    let rows: Vec<Row> = exec_all(
        &mut conn,
        "SELECT message_id, topic, business_key, state, attempts, created_at, last_error FROM message_outbox \
          WHERE state = ? ORDER BY message_id LIMIT ?",
        (state.as_str(), limit),
        "messages",
    )
    .await?;
    rows.into_iter()
        .map(|(message_id, topic, business_key, state, attempts, created_at, last_error)| {
            Ok(MessageRecord {
                message_id,
                topic,
                business_key,
                state: MessageState::parse(&state)
                    .ok_or_else(|| DatabaseError::UnexpectedAnswer(format!("message state {state:?}")))?,
                attempts,
                created_at: instant(created_at, "a message's creation time")?,
                last_error,
            })
        })
        .collect()
}

/// Gives dead messages (all, or the one named) a fresh set of attempts, to be sent at once. Returns how many.
///
/// # Errors
/// The database's error.
pub async fn retry_dead(pool: &Pool, message_id: Option<i64>) -> Result<u64, DatabaseError> {
    let mut conn = acquire(pool).await?;
    let retry = "UPDATE message_outbox SET state = 'pending', attempts = 0, due_at = NOW(3), last_error = NULL \
                  WHERE state = 'dead'";
    match message_id {
        Some(id) => conn.exec_drop(format!("{retry} AND message_id = ?"), (id,)).await?,
        None => conn.query_drop(retry).await?,
    }
    Ok(conn.affected_rows())
}

/// The state of one message, or `None` when there is no such message.
///
/// # Errors
/// The database's error.
pub async fn state_of(pool: &Pool, message_id: i64) -> Result<Option<MessageState>, DatabaseError> {
    let mut conn = acquire(pool).await?;
    let row: Option<(String,)> =
        exec_first(&mut conn, "SELECT state FROM message_outbox WHERE message_id = ?", (message_id,), "a message")
            .await?;
    Ok(row.and_then(|(state,)| MessageState::parse(&state)))
}

/// Writes a message from Rust, for producers outside a stored procedure (and tests). Business procedures
/// insert into `message_outbox` themselves, in their own transaction. A second message for the same topic and
/// business key is refused by the unique key: `Ok(None)`.
///
/// # Errors
/// The database's error.
pub async fn enqueue(
    pool: &Pool,
    topic: &str,
    business_key: &str,
    payload: &str,
) -> Result<Option<i64>, DatabaseError> {
    let mut conn = acquire(pool).await?;
    let inserted = conn
        .exec_drop(
            "INSERT INTO message_outbox (topic, business_key, payload) VALUES (?, ?, ?)",
            (topic, business_key, payload),
        )
        .await;
    match inserted {
        Ok(()) => Ok(conn.last_insert_id().and_then(|id| i64::try_from(id).ok())),
        Err(mysql_async::Error::Server(error)) if error.code == DUPLICATE_KEY => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// ER_DUP_ENTRY.
const DUPLICATE_KEY: u16 = 1062;
