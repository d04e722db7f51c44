//! The typed call of the `execute_seckill_batch` procedure (`sql/procedures/execute_seckill_batch.sql`):
//!
//! ```sql
//! CALL execute_seckill_batch(v_seckill_id BIGINT, v_phones MEDIUMTEXT /* JSON array, arrival order */);
//! -- one row: status VARCHAR(16), won INT, existing JSON, stock_left INT, kill_time DATETIME(3)
//! ```
//!
//! and the rule that turns its one row into every request's own outcome.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use super::execute_seckill::return_clean;
use super::outcome::{Outcome, SuccessKilled};
use super::phone::Phone;
use crate::database::acquire;
use crate::database_error::DatabaseError;

/// What one batch came to.
#[derive(Debug)]
pub(crate) struct BatchResult {
    /// Every request's outcome, in the order given.
    pub(crate) outcomes: Vec<Outcome>,
    /// The stock after the batch, when the item exists.
    pub(crate) stock_left: Option<i64>,
}

/// Runs one batch for one item: a single statement, a single transaction. On any failure every request gets
/// [`Outcome::InnerError`] and nothing was written (the procedure rolls back whole).
pub(crate) async fn execute_seckill_batch(pool: &Pool, seckill_id: i64, phones: &[Phone]) -> BatchResult {
    match call(pool, seckill_id, phones).await {
        Ok(result) => result,
        Err(outcome) => BatchResult { outcomes: vec![outcome; phones.len()], stock_left: None },
    }
}

type Row = (String, i64, Option<String>, Option<i64>, NaiveDateTime);

/// The batch's result, or the one outcome every request in it gets.
async fn call(pool: &Pool, seckill_id: i64, phones: &[Phone]) -> Result<BatchResult, Outcome> {
    let mut conn = acquire(pool).await.map_err(Outcome::database_error)?;
    // Integers only, in both the id and the JSON array: nothing here can carry SQL.
    let list: Vec<String> = phones.iter().map(|p| p.get().to_string()).collect();
    let call = format!("CALL execute_seckill_batch({seckill_id}, '[{}]')", list.join(","));
    let row: Option<Row> = match conn.query_first(call).await {
        Ok(row) => row,
        Err(error) => {
            // The connection's state is unknown after an error: do not give it back to the pool.
            let _ = conn.disconnect().await;
            return Err(Outcome::call_error(error));
        }
    };
    return_clean(conn).await;
    let unexpected = |what: String| Outcome::database_error(DatabaseError::UnexpectedAnswer(what));
    let (status, won, existing, stock_left, kill_time) =
        row.ok_or_else(|| unexpected("execute_seckill_batch returned no row; run `seckill migrate`".into()))?;
    let existing: HashSet<i64> = match existing {
        Some(json) => serde_json::from_str::<Vec<i64>>(&json)
            .map_err(|e| unexpected(format!("execute_seckill_batch existing {json:?}: {e}")))?
            .into_iter()
            .collect(),
        None => HashSet::new(),
    };
    let outcomes = match status.as_str() {
        "open" => assign(seckill_id, phones, &existing, usize::try_from(won).unwrap_or(0), kill_time),
        "not_found" => vec![Outcome::NotFound; phones.len()],
        "not_started" => vec![Outcome::NotStarted; phones.len()],
        "ended" => vec![Outcome::Ended; phones.len()],
        other => return Err(unexpected(format!("execute_seckill_batch status {other:?}"))),
    };
    Ok(BatchResult { outcomes, stock_left })
}

/// The procedure's rule, request by request: the first `won` distinct phones without an existing row win, in
/// order; a phone that already had the item, or that already won earlier in the batch, is a repeat; everyone
/// else, including a later duplicate of a loser, is sold out.
pub(crate) fn assign(
    seckill_id: i64,
    phones: &[Phone],
    existing: &HashSet<i64>,
    won: usize,
    kill_time: NaiveDateTime,
) -> Vec<Outcome> {
    let mut winners = HashSet::new();
    let mut losers = HashSet::new();
    phones
        .iter()
        .map(|&phone| {
            if existing.contains(&phone.get()) || winners.contains(&phone) {
                Outcome::RepeatKill
            } else if losers.contains(&phone) || winners.len() >= won {
                losers.insert(phone);
                Outcome::SoldOut
            } else {
                winners.insert(phone);
                Outcome::Success(SuccessKilled {
                    seckill_id,
                    user_phone: phone,
                    state: 0,
                    create_time: kill_time.and_utc(),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_arrival_order() {
        let p = |n: i64| Phone::new(13_000_000_000 + n).unwrap();
        let phones = [p(1), p(2), p(3), p(2), p(4), p(5), p(4)];
        let existing = HashSet::from([p(1).get()]);
        let outcomes = assign(7, &phones, &existing, 2, NaiveDateTime::default());
        let reasons: Vec<_> = outcomes.iter().map(Outcome::reason).collect();
        assert_eq!(reasons, ["repeat", "success", "success", "repeat", "sold_out", "sold_out", "sold_out"]);
    }
}
