//! The outbox table, as the relay and operators use it (`sql/migrations/V3__message_outbox.sql`).
//!
//! Business procedures insert rows; everything here happens after their commit: claiming due messages (safe
//! with several relays at once: `FOR UPDATE SKIP LOCKED`), marking them sent on the broker's ack, consumed on
//! the consumer's callback, recording a consumer's "later" and its refusals, dead when refusals reach the limit,
//! and retrying dead ones for an operator.
//!
//! ## What makes a message dead
//!
//! Dead is for poison: a message a consumer refused ([`super::Handled::Poison`]) `max_attempts` times (the
//! `attempts` column counts refusals). A consumer answering "later" (its own database or service is down: an
//! outage) and a send nobody answered (no consumer running, a callback lost) never count: the message is only
//! late, sent again after a wait that doubles with its `sends` up to `max_consume_timeout`, for as long as it
//! takes, and the relay's lag shows it (`seckill_relay_lag_seconds`).
//!
//! Every function here is bounded on the client side ([`crate::database::bounded`]): past its bound (the `_within`
//! and relay functions take it, the others use [`DEFAULT_ANSWER_TIMEOUT`]) it answers
//! [`DatabaseError::NoAnswer`] and its connection is closed, never handed out again. Each is safe to try again:
//! the marks are idempotent, and a claim whose answer was lost only delays its messages by a lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Pool, Value};

use crate::database::error::DatabaseError;
use crate::database::rows::{decode, exec_all, exec_first, instant};
use crate::database::{Checkout, DEFAULT_ANSWER_TIMEOUT, within};

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
    /// How long to wait for the consumer's callback after the first send; doubled at each send.
    pub consume_timeout: Duration,
    /// The longest wait for a callback, however many sends.
    pub max_consume_timeout: Duration,
    /// Refusals by a consumer (poison answers) before a message is dead. Answers "later" and sends nobody
    /// answered never count.
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

/// Claims up to `limit` due messages of `topics` (empty: of every topic) for sending, each reserved for
/// `claim_lease`: new messages first, then re-sends. Messages already refused `max_attempts` times (a limit
/// lowered since their last refusal) are marked dead instead. Several relays (and a relay's publishing loops)
/// claim at once without waiting for each other, and no business transaction ever waits for a claim (it runs at
/// READ COMMITTED: see `begin_relay_transaction`).
///
/// Two reads. First the candidates of both states, from the `(state, due_at)` index in its order, without a lock
/// (a consistent read): only committed messages, and no wait for the index entries the relay's own updates
/// delete-mark and lock as they move messages from state to state (a locking read through that index waits
/// for them, SKIP LOCKED or not, and deadlocks with a concurrent mark-consumed). Then the claim proper, by
/// primary key, `FOR UPDATE SKIP LOCKED`, checking again that each candidate is still due: a row another relay
/// holds is skipped, one it claimed in between is no longer due.
///
/// As [`claim_within`] with [`DEFAULT_ANSWER_TIMEOUT`].
///
/// # Errors
/// The database's error; nothing is claimed then.
pub async fn claim(
    pool: &Pool,
    topics: &[String],
    limit: usize,
    schedule: &Schedule,
) -> Result<Vec<OutboxMessage>, DatabaseError> {
    claim_within(pool, topics, limit, schedule, DEFAULT_ANSWER_TIMEOUT).await
}

/// [`claim`], bounded by `bound`.
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`]; nothing is claimed then (a claim whose commit got no
/// answer may have been made: its messages are sent when its lease ends).
pub async fn claim_within(
    pool: &Pool,
    topics: &[String],
    limit: usize,
    schedule: &Schedule,
    bound: Duration,
) -> Result<Vec<OutboxMessage>, DatabaseError> {
    within(bound, "claiming messages", async {
        let mut conn = Checkout::take(pool).await?;
        let claimed = claim_on(&mut conn, topics, limit, schedule, bound).await?;
        conn.release();
        Ok(claimed)
    })
    .await
}

async fn claim_on(
    conn: &mut Conn,
    topics: &[String],
    limit: usize,
    schedule: &Schedule,
    bound: Duration,
) -> Result<Vec<OutboxMessage>, DatabaseError> {
    conn.query_drop(begin_relay_transaction(bound)).await?;
    let of_topics = match topics.len() {
        0 => String::new(),
        n => format!(" AND topic IN ({})", vec!["?"; n].join(", ")),
    };
    // Each half of the union takes the topics, then its limit.
    let half = topics.iter().map(|topic| Value::from(topic.as_str())).chain([Value::from(limit)]);
    let both: Vec<Value> = half.clone().chain(half).collect();
    // New messages first, then re-sends, each in index order; one round trip for both.
    let candidates: Vec<(i64,)> = exec_all(
        conn,
        &format!(
            "(SELECT message_id FROM message_outbox FORCE INDEX (idx_state_due) \
               WHERE state = 'pending' AND due_at <= NOW(3){of_topics} ORDER BY due_at LIMIT ?) \
             UNION ALL \
             (SELECT message_id FROM message_outbox FORCE INDEX (idx_state_due) \
               WHERE state = 'sent' AND due_at <= NOW(3){of_topics} ORDER BY due_at LIMIT ?)"
        ),
        both,
        "due messages",
    )
    .await?;
    let mut due: Vec<(i64, String, String, String, u32, u32)> = Vec::new();
    for chunk in candidates[..candidates.len().min(limit)].chunks(IDS_PER_STATEMENT) {
        let rows: Vec<mysql_async::Row> = conn
            .query(format!(
                "SELECT message_id, topic, business_key, payload, attempts, sends \
                   FROM message_outbox FORCE INDEX (PRIMARY) \
                  WHERE message_id IN ({}) AND state IN ('pending', 'sent') AND due_at <= NOW(3) \
                  ORDER BY message_id FOR UPDATE SKIP LOCKED",
                id_list(chunk.iter().map(|(id,)| *id))
            ))
            .await?;
        for row in rows {
            due.push(decode(row, "a due message")?);
        }
    }
    let (dead, live): (Vec<_>, Vec<_>) = due.into_iter().partition(|row| row.4 >= schedule.max_attempts);
    let reason = format!("refused {} times by its consumer", schedule.max_attempts);
    update_by_ids(
        conn,
        "UPDATE message_outbox FORCE INDEX (PRIMARY) SET state = 'dead', last_error = ? WHERE message_id IN ({ids})",
        (reason,),
        dead.iter().map(|row| row.0),
    )
    .await?;
    update_by_ids(
        conn,
        "UPDATE message_outbox FORCE INDEX (PRIMARY) SET due_at = TIMESTAMPADD(MICROSECOND, ?, NOW(3)) \
          WHERE message_id IN ({ids})",
        (micros(schedule.claim_lease),),
        live.iter().map(|row| row.0),
    )
    .await?;
    conn.query_drop(END_RELAY_TRANSACTION).await?;
    Ok(live
        .into_iter()
        .map(|(message_id, topic, business_key, payload, _refusals, sends)| OutboxMessage {
            message_id,
            topic,
            business_key,
            payload,
            attempt: sends.saturating_add(1),
        })
        .collect())
}

/// Starts a transaction of the relay's, at READ COMMITTED, so that a business transaction never waits for the
/// relay, and so can never be the victim of a deadlock with it. Business procedures only insert outbox rows, and
/// an insert waits only for gap locks; at READ COMMITTED the relay takes none. At the session's REPEATABLE READ
/// it did: with few messages in flight, an update by a list of ids is planned as a range scan of
/// `(state, due_at)` (not of the primary key), whose next-key locks cover the gaps new messages go into, and
/// which waits for uncommitted messages in its range; a business insert waiting for such an update is one
/// edge of a deadlock cycle whose victim may be the business transaction. The relay's updates now force the
/// primary key, and pass over uncommitted rows instead of waiting for them (semi-consistent reads).
///
/// On MariaDB it also sets the session's `idle_transaction_timeout` to `bound` (whole seconds, rounded up) until
/// [`END_RELAY_TRANSACTION`]: a claim holds row locks across round trips, and if this client goes silent in the
/// middle, the relay gives up on the connection after `bound` but the server would keep the transaction, and the
/// claimed rows locked (every later claim skips them), until its `wait_timeout` (8 hours by default). With it,
/// the server rolls the transaction back and closes the session as soon as the client has been silent that
/// long. MySQL has no such variable: the version comment hides it there, and a silent claim's rows wait for the
/// server to notice the connection is gone.
fn begin_relay_transaction(bound: Duration) -> String {
    let idle = bound.as_secs_f64().ceil().max(1.0) as u64;
    format!(
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; \
         SET @seckill_relay_transaction = 1 /*M!100300 , SESSION idle_transaction_timeout = {idle} */; \
         START TRANSACTION"
    )
}

/// Commits a relay transaction and gives the session back its server's `idle_transaction_timeout`.
const END_RELAY_TRANSACTION: &str =
    "COMMIT; SET @seckill_relay_transaction = NULL /*M!100300 , SESSION idle_transaction_timeout = DEFAULT */";

/// The most ids written into one statement: MariaDB turns an IN list of 1000 values or more
/// (`in_predicate_conversion_threshold`) into a subquery, whose plan would no longer be a primary-key range.
const IDS_PER_STATEMENT: usize = 500;

/// Runs `statement`, whose `{ids}` is replaced by a list of ids, for every 500 of `ids`.
async fn update_by_ids(
    conn: &mut Conn,
    statement: &str,
    params: impl Into<Params>,
    ids: impl Iterator<Item = i64>,
) -> Result<(), DatabaseError> {
    let params: Params = params.into();
    let ids: Vec<i64> = ids.collect();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let list = id_list(chunk.iter().copied());
        conn.exec_drop(statement.replace("{ids}", &list), params.clone()).await?;
    }
    Ok(())
}

/// Runs `statement` (no parameters), whose `{ids}` is replaced by a list of ids, for every 500 of `ids`, each
/// at READ COMMITTED and in one round trip: `SET TRANSACTION` and the statement sent together, the statement
/// its own transaction, so that no lock outlives a round trip. If it fails or gets no answer within `bound`, the
/// isolation level may still be pending for the connection's next transaction, and the connection is closed
/// instead of going back to the pool.
async fn update_by_ids_committed(
    pool: &Pool,
    statement: &str,
    ids: &[i64],
    work: &'static str,
    bound: Duration,
) -> Result<(), DatabaseError> {
    if ids.is_empty() {
        return Ok(());
    }
    within(bound, work, async {
        let mut conn = Checkout::take(pool).await?;
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let list = id_list(chunk.iter().copied());
            let update =
                format!("SET TRANSACTION ISOLATION LEVEL READ COMMITTED; {}", statement.replace("{ids}", &list));
            conn.query_drop(update).await?;
        }
        conn.release();
        Ok(())
    })
    .await
}

/// Marks messages the broker acked as sent, counting the send, and due again (for a re-send) if the consumer
/// has not called back by then: `consume_timeout` after the first send, doubling with each send up to
/// `max_consume_timeout`. Only sends the broker took count: a claim lost to a broken connection costs none. A
/// message already consumed (a fast consumer's callback can beat this) stays consumed. Sends never make a
/// message dead.
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`] past `bound`; the messages then stay claimed and are sent
/// again after the lease.
pub async fn mark_sent(
    pool: &Pool,
    message_ids: &[i64],
    schedule: &Schedule,
    bound: Duration,
) -> Result<(), DatabaseError> {
    // `due_at` is assigned before `sends` and reads its old value under both MySQL's left-to-right and
    // MariaDB's simultaneous assignment: the first send waits `consume_timeout`, the next twice that. Sends have
    // no limit (a consumer may be down for days), so the exponent is capped: POW(2, 1024) is out of range.
    update_by_ids_committed(
        pool,
        &format!(
            "UPDATE message_outbox FORCE INDEX (PRIMARY) \
                SET due_at = TIMESTAMPADD(MICROSECOND, LEAST({} * POW(2, LEAST(sends, 62)), {}), NOW(3)), \
                    sends = sends + 1, state = 'sent', sent_at = NOW(3) \
              WHERE message_id IN ({{ids}}) AND state IN ('pending', 'sent')",
            micros(schedule.consume_timeout),
            micros(schedule.max_consume_timeout)
        ),
        message_ids,
        "marking messages sent",
        bound,
    )
    .await
}

/// Marks messages dead at once, with the reason: for what no attempt can fix (a topic no queue takes).
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`] past `bound`.
pub async fn mark_dead(pool: &Pool, message_ids: &[i64], reason: &str, bound: Duration) -> Result<(), DatabaseError> {
    update_with_reason(
        pool,
        "UPDATE message_outbox FORCE INDEX (PRIMARY) SET state = 'dead', last_error = ? \
          WHERE message_id IN ({ids}) AND state IN ('pending', 'sent')",
        message_ids,
        reason,
        "marking messages dead",
        bound,
    )
    .await
}

/// Records that consumers answered "later" for messages (not done for now, not poison: their own database or
/// service is down): `last_error` says why, for operators; nothing else changes. The message is sent again when its
/// wait ends, and this never counts toward its death. A message consumed or dead meanwhile is left as it is.
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`] past `bound`.
pub async fn mark_later(pool: &Pool, message_ids: &[i64], reason: &str, bound: Duration) -> Result<(), DatabaseError> {
    update_with_reason(
        pool,
        "UPDATE message_outbox FORCE INDEX (PRIMARY) SET last_error = ? \
          WHERE message_id IN ({ids}) AND state IN ('pending', 'sent')",
        message_ids,
        reason,
        "recording answers",
        bound,
    )
    .await
}

/// Records that consumers refused messages as poison: each refusal counts one attempt, and a message refused
/// `schedule.max_attempts` times is dead, its last reason in `last_error`. Until then it is sent again when its
/// wait ends (a consumer fixed meanwhile may take it). A message consumed or dead meanwhile is left as it is.
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`] past `bound` (the refusal may have been recorded then; if
/// the relay records it again, the message dies one refusal early, never for an outage).
pub async fn mark_refused(
    pool: &Pool,
    message_ids: &[i64],
    reason: &str,
    schedule: &Schedule,
    bound: Duration,
) -> Result<(), DatabaseError> {
    // `state` is assigned before `attempts` and reads its old value under both MySQL's left-to-right and
    // MariaDB's simultaneous assignment.
    let statement = format!(
        "UPDATE message_outbox FORCE INDEX (PRIMARY) \
            SET state = IF(attempts + 1 >= {}, 'dead', state), last_error = ?, attempts = attempts + 1 \
          WHERE message_id IN ({{ids}}) AND state IN ('pending', 'sent')",
        schedule.max_attempts
    );
    update_with_reason(pool, &statement, message_ids, reason, "recording answers", bound).await
}

/// Runs `statement`, whose one parameter is `reason` (cut to 255 characters) and whose `{ids}` is replaced by a
/// list of ids, for every 500 of `ids`, each its own transaction at READ COMMITTED.
async fn update_with_reason(
    pool: &Pool,
    statement: &str,
    message_ids: &[i64],
    reason: &str,
    work: &'static str,
    bound: Duration,
) -> Result<(), DatabaseError> {
    if message_ids.is_empty() {
        return Ok(());
    }
    let reason: String = reason.chars().take(255).collect();
    within(bound, work, async {
        let mut conn = Checkout::take(pool).await?;
        for chunk in message_ids.chunks(IDS_PER_STATEMENT) {
            // Two round trips (a prepared statement cannot follow another in one), but no lock held between them:
            // the isolation level waits for the update, which is its own transaction.
            conn.query_drop("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").await?;
            let update = statement.replace("{ids}", &id_list(chunk.iter().copied()));
            conn.exec_drop(update, (reason.as_str(),)).await?;
        }
        conn.release();
        Ok(())
    })
    .await
}

/// Marks messages consumed: their consumers committed their effects and called back. Idempotent, and a
/// dead message whose consumer finally called back is consumed too (its effect happened).
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`] past `bound`.
pub async fn mark_consumed(pool: &Pool, message_ids: &[i64], bound: Duration) -> Result<(), DatabaseError> {
    update_by_ids_committed(
        pool,
        "UPDATE message_outbox FORCE INDEX (PRIMARY) SET state = 'consumed', consumed_at = NOW(3) \
          WHERE message_id IN ({ids}) AND state <> 'consumed'",
        message_ids,
        "marking messages consumed",
        bound,
    )
    .await
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

/// Reads the counts, within [`DEFAULT_ANSWER_TIMEOUT`].
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`].
pub async fn status(pool: &Pool) -> Result<OutboxStatus, DatabaseError> {
    status_within(pool, DEFAULT_ANSWER_TIMEOUT).await
}

/// Reads the counts, within `bound`.
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`].
pub async fn status_within(pool: &Pool, bound: Duration) -> Result<OutboxStatus, DatabaseError> {
    within(bound, "sampling the outbox", async {
        let mut conn = Checkout::take(pool).await?;
        let counts: Vec<(String, u64)> =
            exec_all(&mut conn, "SELECT state, COUNT(*) FROM message_outbox GROUP BY state", (), "message counts")
                .await?;
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
        conn.release();
        status.oldest_unconsumed_seconds = oldest.and_then(|(age,)| age);
        Ok(status)
    })
    .await
}

/// Whether any message is in one of `states`: one probe of the state index, cheap enough to poll while relays
/// and consumers work, where [`status`] counts every row the table holds.
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`] past [`DEFAULT_ANSWER_TIMEOUT`].
pub async fn any_in(pool: &Pool, states: &[MessageState]) -> Result<bool, DatabaseError> {
    if states.is_empty() {
        return Ok(false);
    }
    let placeholders = vec!["?"; states.len()].join(", ");
    let query = format!("SELECT EXISTS (SELECT 1 FROM message_outbox WHERE state IN ({placeholders}))");
    let params: Vec<Value> = states.iter().map(|state| Value::from(state.as_str())).collect();
    within(DEFAULT_ANSWER_TIMEOUT, "probing the outbox", async {
        let mut conn = Checkout::take(pool).await?;
        let found: Option<(i64,)> = exec_first(&mut conn, &query, params, "messages by state").await?;
        conn.release();
        Ok(found.is_some_and(|(found,)| found != 0))
    })
    .await
}

/// The states of a message not yet consumed nor dead.
pub const IN_FLIGHT: [MessageState; 2] = [MessageState::Pending, MessageState::Sent];

/// A message as an operator sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MessageRecord {
    pub message_id: i64,
    pub topic: String,
    pub business_key: String,
    pub state: MessageState,
    /// Times a consumer refused it as poison.
    pub attempts: u32,
    /// Sends the broker acked.
    pub sends: u32,
    pub created_at: Option<DateTime<Utc>>,
    /// Why it was last refused, answered "later", or made dead.
    pub last_error: Option<String>,
}

/// Messages in `state`, oldest first, at most `limit`.
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`] past [`DEFAULT_ANSWER_TIMEOUT`].
pub async fn list(pool: &Pool, state: MessageState, limit: u32) -> Result<Vec<MessageRecord>, DatabaseError> {
    type Row = (i64, String, String, String, u32, u32, Value, Option<String>);
    let rows: Vec<Row> = within(DEFAULT_ANSWER_TIMEOUT, "listing messages", async {
        let mut conn = Checkout::take(pool).await?;
        let rows = exec_all(
            &mut conn,
            "SELECT message_id, topic, business_key, state, attempts, sends, created_at, last_error \
               FROM message_outbox \
              WHERE state = ? ORDER BY message_id LIMIT ?",
            (state.as_str(), limit),
            "messages",
        )
        .await?;
        conn.release();
        Ok(rows)
    })
    .await?;
    rows.into_iter()
        .map(|(message_id, topic, business_key, state, attempts, sends, created_at, last_error)| {
            Ok(MessageRecord {
                message_id,
                topic,
                business_key,
                state: MessageState::parse(&state)
                    .ok_or_else(|| DatabaseError::UnexpectedAnswer(format!("message state {state:?}")))?,
                attempts,
                sends,
                created_at: instant(created_at, "a message's creation time")?,
                last_error,
            })
        })
        .collect()
}

/// Gives dead messages (all, or the one named) a fresh start (no refusal, no send), to be sent at once. Returns
/// how many.
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`] past [`DEFAULT_ANSWER_TIMEOUT`] (the retry may have been
/// made: `seckill messages dead` shows what is still dead).
pub async fn retry_dead(pool: &Pool, message_id: Option<i64>) -> Result<u64, DatabaseError> {
    let retry = "UPDATE message_outbox \
                    SET state = 'pending', attempts = 0, sends = 0, due_at = NOW(3), last_error = NULL \
                  WHERE state = 'dead'";
    within(DEFAULT_ANSWER_TIMEOUT, "retrying dead messages", async {
        let mut conn = Checkout::take(pool).await?;
        match message_id {
            Some(id) => conn.exec_drop(format!("{retry} AND message_id = ?"), (id,)).await?,
            None => conn.query_drop(retry).await?,
        }
        let retried = conn.affected_rows();
        conn.release();
        Ok(retried)
    })
    .await
}

/// The state of one message, or `None` when there is no such message.
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`] past [`DEFAULT_ANSWER_TIMEOUT`].
pub async fn state_of(pool: &Pool, message_id: i64) -> Result<Option<MessageState>, DatabaseError> {
    within(DEFAULT_ANSWER_TIMEOUT, "reading a message", async {
        let mut conn = Checkout::take(pool).await?;
        let row: Option<(String,)> =
            exec_first(&mut conn, "SELECT state FROM message_outbox WHERE message_id = ?", (message_id,), "a message")
                .await?;
        conn.release();
        Ok(row.and_then(|(state,)| MessageState::parse(&state)))
    })
    .await
}

/// Writes a message from Rust, for producers outside a stored procedure (and tests). Business procedures
/// insert into `message_outbox` themselves, in their own transaction. A second message for the same topic and
/// business key is refused by the unique key: `Ok(None)`.
///
/// # Errors
/// The database's error, or [`DatabaseError::NoAnswer`] past [`DEFAULT_ANSWER_TIMEOUT`]: the message may have
/// been written then, and writing it again answers `Ok(None)` if it was.
pub async fn enqueue(
    pool: &Pool,
    topic: &str,
    business_key: &str,
    payload: &str,
) -> Result<Option<i64>, DatabaseError> {
    within(DEFAULT_ANSWER_TIMEOUT, "writing a message", async {
        let mut conn = Checkout::take(pool).await?;
        let inserted = conn
            .exec_drop(
                "INSERT INTO message_outbox (topic, business_key, payload) VALUES (?, ?, ?)",
                (topic, business_key, payload),
            )
            .await;
        let written = match inserted {
            Ok(()) => conn.last_insert_id().and_then(|id| i64::try_from(id).ok()),
            Err(mysql_async::Error::Server(error)) if error.code == DUPLICATE_KEY => None,
            Err(error) => return Err(error.into()),
        };
        conn.release();
        Ok(written)
    })
    .await
}

/// ER_DUP_ENTRY.
const DUPLICATE_KEY: u16 = 1062;
