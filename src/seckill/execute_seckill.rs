//! The typed call of the `execute_seckill_detailed` procedure (`sql/procedures/seckill/execute_seckill_detailed.sql`):
//!
//! ```sql
//! CALL execute_seckill_detailed(v_seckill_id BIGINT, v_phone BIGINT, v_kill_time TIMESTAMP(3));
//! -- one row: result INT, reason VARCHAR(16), kill_time TIMESTAMP(3), stock_left INT
//! -- then one row: gtid, the success's commit GTID ('' when nothing was written or without a binary log)
//! -- SQLSTATE '45RB0': rolled back, nothing written; any other error: in doubt
//! ```
//!
//! One statement in the text protocol with the two integers written into it: exactly one round trip, with no
//! statement to prepare first and nothing to read back from session variables. Integers cannot carry SQL, so
//! writing them into the text is safe. The kill time is NULL: the database's clock decides, once the item's
//! row lock is held, so the app servers' clocks never matter.

use mysql_async::{Pool, Row, Value};

use super::outcome::{Outcome, SuccessKilled};
use super::phone::Phone;
use crate::database::call::call;
use crate::database::gtid::{WithGtid, commit_gtid, stamp};
use crate::database::rows::{decode, required_instant};
use crate::group_commit::Decided;

/// Runs one seckill in the database and reads its outcome and its commit's GTID, with what the item's lane may
/// learn from it. Never fails: every failure is an [`Outcome::InnerError`] that says whether the seckill may
/// have committed.
pub(crate) async fn execute_seckill(pool: &Pool, seckill_id: i64, phone: Phone) -> Decided<WithGtid<Outcome>> {
    let statement = format!("CALL execute_seckill_detailed({seckill_id}, {}, NULL)", phone.get());
    let (outcome, closed, gtid) = match call(pool, &statement).await {
        Ok(result_sets) => {
            let gtid = commit_gtid(&result_sets);
            match answer(seckill_id, phone, result_sets) {
                Ok((outcome, closed)) => (outcome, closed, gtid),
                // The CALL succeeded, so it committed if it decided a success: an answer that cannot be read
                // leaves the outcome unknown.
                Err(detail) => (Outcome::in_doubt(detail), None, gtid),
            }
        }
        Err(failure) => (Outcome::InnerError(failure.into()), None, None),
    };
    stamp(Decided { outcomes: vec![outcome], closed }, gtid)
}

type AnswerRow = (i32, String, Value, Option<i64>);

/// The outcome in the answer row, and the item's closed state when the answer shows it.
fn answer(seckill_id: i64, phone: Phone, result_sets: Vec<Vec<Row>>) -> Result<(Outcome, Option<Outcome>), String> {
    let what = "the answer of execute_seckill_detailed";
    let row = result_sets
        .into_iter()
        .next()
        .and_then(|rows| rows.into_iter().next())
        .ok_or_else(|| format!("{what}: no row; is the procedure up to date? run `seckill migrate`"))?;
    let (result, reason, kill_time, stock_left): AnswerRow = decode(row, what).map_err(|e| e.to_string())?;
    let sold_out = stock_left == Some(0);
    Ok(match (result, reason.as_str()) {
        (1, "success") => {
            let at = required_instant(kill_time, what).map_err(|e| e.to_string())?;
            let kill = SuccessKilled { seckill_id, user_phone: phone, state: 0, create_time: Some(at) };
            (Outcome::Success(kill), sold_out.then_some(Outcome::SoldOut))
        }
        (-1, "repeat") => (Outcome::RepeatKill, None),
        (0, "sold_out") => (Outcome::SoldOut, Some(Outcome::SoldOut)),
        (0, "not_started") => (Outcome::NotStarted, None),
        (0, "ended") => (Outcome::Ended, Some(Outcome::Ended)),
        (0, "not_found") => (Outcome::NotFound, None),
        _ => return Err(format!("{what}: unexpected ({result}, {reason:?})")),
    })
}
