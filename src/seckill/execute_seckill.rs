//! The typed call of the `execute_seckill_detailed` procedure (`sql/procedures/execute_seckill_detailed.sql`):
//!
//! ```sql
//! CALL execute_seckill_detailed(v_seckill_id BIGINT, v_phone BIGINT, v_kill_time DATETIME(3));
//! -- one row: result INT, reason VARCHAR(16), kill_time DATETIME(3)
//! ```
//!
//! One statement in the text protocol with the two integers written into it: exactly one round trip, with no
//! statement to prepare first and nothing to read back from session variables. Integers cannot carry SQL, so
//! writing them into the text is safe. The kill time is NULL: the database's clock decides, so the app
//! servers' clocks never matter.

use chrono::NaiveDateTime;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};

use super::outcome::{Outcome, SuccessKilled};
use super::phone::Phone;
use crate::database::acquire;

/// Runs one seckill in the database and reads its outcome. Never fails: every failure is an
/// [`Outcome::InnerError`], and nothing is left half-done (the procedure rolls back on any SQL error).
pub(crate) async fn execute_seckill(pool: &Pool, seckill_id: i64, phone: Phone) -> Outcome {
    let mut conn = match acquire(pool).await {
        Ok(conn) => conn,
        Err(error) => return Outcome::database_error(error),
    };
    let call = format!("CALL execute_seckill_detailed({seckill_id}, {}, NULL)", phone.get());
    match conn.query_first::<(i32, String, Option<NaiveDateTime>), _>(call).await {
        Ok(Some(row)) => {
            return_clean(conn).await;
            decode(seckill_id, phone, row)
        }
        Ok(None) => {
            return_clean(conn).await;
            Outcome::inner_error(
                "execute_seckill_detailed returned no row; is the procedure up to date? run `seckill migrate`",
            )
        }
        Err(error) => {
            // The connection's state is unknown after an error: do not give it back to the pool.
            let _ = conn.disconnect().await;
            Outcome::call_error(error)
        }
    }
}

fn decode(seckill_id: i64, phone: Phone, (result, reason, kill_time): (i32, String, Option<NaiveDateTime>)) -> Outcome {
    match (result, reason.as_str(), kill_time) {
        (1, "success", Some(at)) => {
            Outcome::Success(SuccessKilled { seckill_id, user_phone: phone, state: 0, create_time: at.and_utc() })
        }
        (-1, "repeat", _) => Outcome::RepeatKill,
        (0, "sold_out", _) => Outcome::SoldOut,
        (0, "not_started", _) => Outcome::NotStarted,
        (0, "ended", _) => Outcome::Ended,
        (0, "not_found", _) => Outcome::NotFound,
        (-2, _, _) => Outcome::inner_error("execute_seckill hit an SQL error and rolled back"),
        _ => Outcome::inner_error(format!("unexpected answer from execute_seckill_detailed: ({result}, {reason:?})")),
    }
}

/// Puts a connection back in the pool only if no transaction is open on it. The procedures always end their
/// transactions, but a pooled connection with an open transaction is exactly how the classic design doubled
/// its sales, so this is checked on every call: the server reports it in the status flags of its last answer,
/// which costs no round trip.
pub(crate) async fn return_clean(mut conn: Conn) {
    let in_transaction = conn
        .last_ok_packet()
        .is_some_and(|ok| ok.status_flags().contains(mysql_async::consts::StatusFlags::SERVER_STATUS_IN_TRANS));
    if in_transaction && conn.query_drop("ROLLBACK").await.is_err() {
        let _ = conn.disconnect().await;
    }
}
