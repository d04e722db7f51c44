//! Calling a stored procedure, and knowing what its failure means.
//!
//! The rule the whole toolkit keeps: a caller is told "rolled back" only when the server proved it. The
//! toolkit's procedures prove it by raising SQLSTATE [`ROLLED_BACK_SQLSTATE`] themselves, from a handler that
//! has just run its own ROLLBACK and that never covers their COMMIT. Any other error once a CALL was sent (a
//! lost connection, a `KILL QUERY`, a statement timeout, an error from the COMMIT) proves nothing: the call may
//! have committed, and the caller hears "in doubt" with a way to ask later.
//!
//! An answer is trusted only when the whole CALL succeeded: the procedures send their answer before they end
//! their transaction, so rows followed by an error are thrown away and the error decides.
//!
//! The batch procedures send one more result set, a marker, between their answer and their COMMIT: the server
//! flushes what it has buffered when a result set begins, so the answer reaches the client while the commit is
//! still being made durable. [`call_committing`] tells the lanes then ([`Committing`]) that the batch is decided,
//! so the next one can be sent; it still returns only once the whole CALL has ended.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Pool, Row};

use super::acquire;
use crate::database::error::{DatabaseError, ROUTINE_DOES_NOT_EXIST, WRONG_ARGUMENT_COUNT};
use crate::group_commit::Committing;
use crate::prometheus::names::DATABASE_CALL_DURATION;

/// The SQLSTATE the toolkit's procedures raise after rolling back their own transaction: nothing was written.
/// Its MYSQL_ERRNO is the original error's code, its message `rolled back: <original message>`.
pub const ROLLED_BACK_SQLSTATE: &str = "45RB0";

/// Why a procedure call gave no answer, told by what it means for the data.
#[derive(Debug)]
pub enum CallFailure {
    /// No connection could be had: nothing was sent, nothing written.
    NotSent(DatabaseError),
    /// The procedure rolled its transaction back and said so, or the server refused the call before the
    /// procedure ran (no such procedure, the wrong number of arguments: a schema behind the code): nothing was
    /// written.
    RolledBack(DatabaseError),
    /// The call was sent and then failed without that proof: it may or may not have committed.
    InDoubt(DatabaseError),
}

impl CallFailure {
    /// The database error behind the failure.
    pub fn error(&self) -> &DatabaseError {
        match self {
            CallFailure::NotSent(error) | CallFailure::RolledBack(error) | CallFailure::InDoubt(error) => error,
        }
    }

    /// The failure of `statement`, a call that was sent: rolled back when the procedure said so or when the
    /// server refused to run the procedure it calls, in doubt otherwise.
    pub fn from_sent(statement: &str, error: mysql_async::Error) -> Self {
        let proven = match &error {
            mysql_async::Error::Server(server) => {
                server.state == ROLLED_BACK_SQLSTATE || refused_before_running(statement, server.code, &server.message)
            }
            _ => false,
        };
        if proven { CallFailure::RolledBack(error.into()) } else { CallFailure::InDoubt(error.into()) }
    }
}

/// Whether the server refused `statement`'s own procedure before running it: it does not exist, or takes
/// another number of arguments. The same errors about a procedure it calls in turn prove nothing (the toolkit's
/// procedures call one after their COMMIT), so the procedure the error names must be the one called.
fn refused_before_running(statement: &str, code: u16, message: &str) -> bool {
    if !matches!(code, ROUTINE_DOES_NOT_EXIST | WRONG_ARGUMENT_COUNT) {
        return false;
    }
    let Some(called) = called_procedure(statement) else { return false };
    // The server names it `database.procedure`, followed by a space, a semicolon or the end.
    message.match_indices(&format!(".{called}")).any(|(at, found)| {
        let after = message.get(at + found.len()..).unwrap_or_default();
        !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Sends `statement` (one `CALL`, text protocol: one round trip) and returns every result set it produced, in
/// order. The connection goes back to the pool only when the call succeeded and left no transaction open;
/// after an error its state is unknown and it is closed (which also rolls back anything it left open).
///
/// # Errors
/// A [`CallFailure`] saying whether anything may have been written.
pub async fn call(pool: &Pool, statement: &str) -> Result<Vec<Vec<Row>>, CallFailure> {
    call_committing(pool, statement, &mut Committing::unobserved()).await
}

/// As [`call`], for a batch procedure that sends its answer before its COMMIT and another result set after it:
/// `committing` hears that the batch is decided as soon as the answer (the first result set) has arrived and
/// more follow. The answer is returned only once the whole CALL has ended.
///
/// # Errors
/// A [`CallFailure`] saying whether anything may have been written.
pub async fn call_committing(
    pool: &Pool,
    statement: &str,
    committing: &mut Committing,
) -> Result<Vec<Vec<Row>>, CallFailure> {
    timed(statement, async {
        let mut conn = acquire(pool).await.map_err(CallFailure::NotSent)?;
        let read = async {
            let result = conn.query_iter(statement).await?;
            collect_all(result, committing).await
        };
        let read = read.await;
        settle(statement, conn, read).await
    })
    .await
}

/// As [`call`], for a statement with parameters (prepared: two round trips the first time on a connection, one
/// after), for procedures that take text a client supplies.
///
/// # Errors
/// A [`CallFailure`] saying whether anything may have been written.
pub async fn call_prepared(
    pool: &Pool,
    statement: &str,
    params: impl Into<Params> + Send,
) -> Result<Vec<Vec<Row>>, CallFailure> {
    timed(statement, async {
        let mut conn = acquire(pool).await.map_err(CallFailure::NotSent)?;
        let read = async {
            let result = conn.exec_iter(statement, params).await?;
            collect_all(result, &mut Committing::unobserved()).await
        };
        let read = read.await;
        settle(statement, conn, read).await
    })
    .await
}

/// Runs one call and records how long it took, until its last result, under its procedure's name
/// (`seckill_database_call_duration_seconds`, see [`crate::prometheus`]).
async fn timed<T>(statement: &str, call: impl Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let result = call.await;
    let procedure = procedure_name(statement);
    metrics::histogram!(DATABASE_CALL_DURATION, "procedure" => procedure).record(started.elapsed().as_secs_f64());
    result
}

/// The procedure a `CALL name(...)` statement calls, or `other`. Only the toolkit's own statements come here,
/// so the names are few.
fn procedure_name(statement: &str) -> String {
    called_procedure(statement).unwrap_or("other").to_string()
}

/// The procedure a `CALL name(...)` statement calls.
fn called_procedure(statement: &str) -> Option<&str> {
    let statement = statement.trim_start();
    let rest = match statement.get(..4) {
        Some(keyword) if keyword.eq_ignore_ascii_case("call") => statement.get(4..)?.trim_start(),
        _ => return None,
    };
    let name = rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next()?;
    (!name.is_empty()).then_some(name)
}

/// The connection back to the pool after a success; closed after an error, whose meaning is classified.
async fn settle(
    statement: &str,
    conn: Conn,
    read: Result<Vec<Vec<Row>>, mysql_async::Error>,
) -> Result<Vec<Vec<Row>>, CallFailure> {
    match read {
        Ok(result_sets) => {
            return_clean(conn).await;
            Ok(result_sets)
        }
        Err(error) => {
            let _ = conn.disconnect().await;
            Err(CallFailure::from_sent(statement, error))
        }
    }
}

/// Every result set, read to the end so that an error after them (from the COMMIT) is seen. Once the first has
/// arrived and another follows, `committing` hears that the batch is decided.
async fn collect_all<P: mysql_async::prelude::Protocol>(
    mut result: mysql_async::QueryResult<'_, '_, P>,
    committing: &mut Committing,
) -> Result<Vec<Vec<Row>>, mysql_async::Error> {
    let mut result_sets = Vec::new();
    while !result.is_empty() {
        // `Row` converts from any row, so collecting never panics; typed decoding comes later (`rows`).
        result_sets.push(result.collect::<Row>().await?);
        if !result.is_empty() {
            committing.decided();
        }
    }
    result.drop_result().await?;
    Ok(result_sets)
}

/// Why a domain could not decide a request. Unless `in_doubt`, nothing was written for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerError {
    /// What went wrong, for logs; never shown to end users.
    pub detail: String,
    /// The database could not be reached at all, so nothing was sent: trying again later may help, and an
    /// HTTP API answers 503.
    pub unavailable: bool,
    /// The call was sent and failed without the server proving it rolled back (a lost connection, a KILL, an
    /// error from the COMMIT, an unreadable answer), so it may have committed or not. Each domain says how to
    /// find out: a seckill's record (`Seckill::kill_record`), an exchange's retry with the same request id.
    pub in_doubt: bool,
}

impl From<DatabaseError> for InnerError {
    /// A failure before anything was sent.
    fn from(error: DatabaseError) -> Self {
        InnerError { unavailable: error.is_unavailable(), in_doubt: false, detail: error.to_string() }
    }
}

impl From<CallFailure> for InnerError {
    fn from(failure: CallFailure) -> Self {
        let detail = failure.error().to_string();
        match failure {
            CallFailure::NotSent(error) => error.into(),
            CallFailure::RolledBack(_) => InnerError { detail, unavailable: false, in_doubt: false },
            CallFailure::InDoubt(_) => InnerError { detail, unavailable: false, in_doubt: true },
        }
    }
}

/// Puts a connection back in the pool only if no transaction is open on it. The procedures always end their
/// transactions, but a pooled connection with an open transaction is exactly how the classic design doubled
/// its sales, so this is checked on every call: the server reports it in the status flags of its last answer,
/// which costs no round trip.
pub async fn return_clean(mut conn: Conn) {
    let in_transaction = conn
        .last_ok_packet()
        .is_some_and(|ok| ok.status_flags().contains(mysql_async::consts::StatusFlags::SERVER_STATUS_IN_TRANS));
    if in_transaction && conn.query_drop("ROLLBACK").await.is_err() {
        let _ = conn.disconnect().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_call_is_timed_under_its_procedures_name() {
        let name = super::procedure_name;
        assert_eq!(name("CALL execute_seckill_batch(1, '[2]')"), "execute_seckill_batch");
        assert_eq!(name("  call grant_credit(?, ?, ?)"), "grant_credit");
        assert_eq!(name("SELECT 1"), "other");
        assert_eq!(name("CALL"), "other");
        assert_eq!(name("ca"), "other");
    }

    #[test]
    fn only_a_refusal_of_the_called_procedure_itself_proves_nothing_ran() {
        let refused = super::refused_before_running;
        let call = "CALL draw_lottery_batch(1, '[]')";
        assert!(refused(call, 1305, "PROCEDURE shop.draw_lottery_batch does not exist"));
        assert!(refused(
            call,
            1318,
            "Incorrect number of arguments for PROCEDURE shop.draw_lottery_batch; expected 2, got 1"
        ));
        // Another procedure (one it calls after its COMMIT), a longer name, another error.
        assert!(!refused(call, 1305, "PROCEDURE shop.answer_commit_gtid does not exist"));
        assert!(!refused(call, 1305, "PROCEDURE shop.draw_lottery_batch_v2 does not exist"));
        assert!(!refused(call, 1146, "Table 'shop.draw_lottery_batch' doesn't exist"));
        assert!(!refused("SELECT 1", 1305, "PROCEDURE shop.other does not exist"));
    }
}
