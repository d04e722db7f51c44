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

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Row};

use super::acquire;
use crate::database_error::DatabaseError;

/// The SQLSTATE the toolkit's procedures raise after rolling back their own transaction: nothing was written.
/// Its MYSQL_ERRNO is the original error's code, its message `rolled back: <original message>`.
pub const ROLLED_BACK_SQLSTATE: &str = "45RB0";

/// Why a procedure call gave no answer, told by what it means for the data.
#[derive(Debug)]
pub enum CallFailure {
    /// No connection could be had: nothing was sent, nothing written.
    NotSent(DatabaseError),
    /// The procedure rolled its transaction back and said so: nothing was written.
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

    fn from_sent(error: mysql_async::Error) -> Self {
        let proven = matches!(&error, mysql_async::Error::Server(server) if server.state == ROLLED_BACK_SQLSTATE);
        if proven { CallFailure::RolledBack(error.into()) } else { CallFailure::InDoubt(error.into()) }
    }
}

/// Sends `statement` (one `CALL`, text protocol: one round trip) and returns every result set it produced, in
/// order. The connection goes back to the pool only when the call succeeded and left no transaction open;
/// after an error its state is unknown and it is closed (which also rolls back anything it left open).
///
/// # Errors
/// A [`CallFailure`] saying whether anything may have been written.
pub async fn call(pool: &Pool, statement: &str) -> Result<Vec<Vec<Row>>, CallFailure> {
    let mut conn = acquire(pool).await.map_err(CallFailure::NotSent)?;
    match read_all(&mut conn, statement).await {
        Ok(result_sets) => {
            return_clean(conn).await;
            Ok(result_sets)
        }
        Err(error) => {
            let _ = conn.disconnect().await;
            Err(CallFailure::from_sent(error))
        }
    }
}

async fn read_all(conn: &mut Conn, statement: &str) -> Result<Vec<Vec<Row>>, mysql_async::Error> {
    let mut result = conn.query_iter(statement).await?;
    let mut result_sets = Vec::new();
    while !result.is_empty() {
        // `Row` converts from any row, so collecting never panics; typed decoding comes later (`rows`).
        result_sets.push(result.collect::<Row>().await?);
    }
    result.drop_result().await?;
    Ok(result_sets)
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
