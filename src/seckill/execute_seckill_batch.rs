//! The typed call of the `execute_seckill_batch` procedure (`sql/procedures/seckill/execute_seckill_batch.sql`):
//!
//! ```sql
//! CALL execute_seckill_batch(v_seckill_id BIGINT, v_phones MEDIUMTEXT /* JSON array, arrival order */);
//! -- one row: status VARCHAR(16), won INT, existing JSON, stock_left INT, kill_time TIMESTAMP(3)
//! -- then one row: gtid, the commit's GTID ('' when nothing was written or without a binary log)
//! -- SQLSTATE '45RB0': rolled back whole, nothing written; any other error: in doubt
//! ```
//!
//! and the rule that turns its one row into every request's own outcome.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use mysql_async::{Pool, Row, Value};

use super::outcome::{Outcome, SuccessKilled};
use super::phone::Phone;
use crate::database::call::call_committing;
use crate::database::gtid::{WithGtid, commit_gtid, stamp};
use crate::database::rows::{decode, instant};
use crate::group_commit::{Committing, Decided};

/// Runs one batch for one item: a single statement, a single transaction, every outcome with the batch's commit
/// GTID; `committing` hears when it is decided. On any failure every request gets the same [`Outcome::InnerError`],
/// which says whether the batch may have committed.
pub(crate) async fn execute_seckill_batch(
    pool: &Pool,
    seckill_id: i64,
    phones: &[Phone],
    mut committing: Committing,
) -> Decided<WithGtid<Outcome>> {
    // Integers only, in both the id and the JSON array: nothing here can carry SQL.
    let list: Vec<String> = phones.iter().map(|p| p.get().to_string()).collect();
    let statement = format!("CALL execute_seckill_batch({seckill_id}, '[{}]')", list.join(","));
    let failed = |outcome: Outcome| Decided { outcomes: vec![outcome; phones.len()], closed: None };
    match call_committing(pool, &statement, &mut committing).await {
        // The CALL succeeded, so it committed whatever it decided: an answer that cannot be read leaves every
        // request's outcome unknown.
        Ok(result_sets) => {
            let gtid = commit_gtid(&result_sets);
            let decided =
                answer(seckill_id, phones, result_sets).unwrap_or_else(|detail| failed(Outcome::in_doubt(detail)));
            stamp(decided, gtid)
        }
        Err(failure) => stamp(failed(Outcome::InnerError(failure.into())), None),
    }
}

type AnswerRow = (String, i64, String, Option<i64>, Value);

fn answer(seckill_id: i64, phones: &[Phone], result_sets: Vec<Vec<Row>>) -> Result<Decided<Outcome>, String> {
    let what = "the answer of execute_seckill_batch";
    let row = result_sets
        .into_iter()
        .next()
        .and_then(|rows| rows.into_iter().next())
        .ok_or_else(|| format!("{what}: no row; is the procedure up to date? run `seckill migrate`"))?;
    let (status, won, existing, stock_left, kill_time): AnswerRow = decode(row, what).map_err(|e| e.to_string())?;
    let existing: HashSet<i64> = serde_json::from_str::<Vec<i64>>(&existing)
        .map_err(|e| format!("{what}: existing {existing:?}: {e}"))?
        .into_iter()
        .collect();
    let kill_time = instant(kill_time, what).map_err(|e| e.to_string())?;
    let window = match status.as_str() {
        "open" => None,
        "not_found" => return Ok(Decided { outcomes: vec![Outcome::NotFound; phones.len()], closed: None }),
        "not_started" => Some(Outcome::NotStarted),
        "ended" => Some(Outcome::Ended),
        other => return Err(format!("{what}: status {other:?}")),
    };
    let won = usize::try_from(won).map_err(|_| format!("{what}: won {won}"))?;
    let closed = match &window {
        Some(Outcome::Ended) => Some(Outcome::Ended),
        None if stock_left == Some(0) => Some(Outcome::SoldOut),
        _ => None,
    };
    let outcomes = assign(seckill_id, phones, &existing, window, won, kill_time);
    Ok(Decided { outcomes, closed })
}

/// The procedure's rule, request by request, with decide_seckill's order of precedence: a phone that already
/// had the item, or that already won earlier in the batch, is a repeat; otherwise a closed window answers for
/// itself; otherwise the first `won` distinct phones win, in order, and everyone else (including a later
/// duplicate of a loser) is sold out.
pub(crate) fn assign(
    seckill_id: i64,
    phones: &[Phone],
    existing: &HashSet<i64>,
    window: Option<Outcome>,
    won: usize,
    kill_time: Option<DateTime<Utc>>,
) -> Vec<Outcome> {
    let mut winners = HashSet::new();
    let mut losers = HashSet::new();
    phones
        .iter()
        .map(|&phone| {
            if existing.contains(&phone.get()) || winners.contains(&phone) {
                Outcome::RepeatKill
            } else if let Some(closed) = &window {
                closed.clone()
            } else if losers.contains(&phone) || winners.len() >= won {
                losers.insert(phone);
                Outcome::SoldOut
            } else {
                winners.insert(phone);
                Outcome::Success(SuccessKilled { seckill_id, user_phone: phone, state: 0, create_time: kill_time })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i64) -> Phone {
        Phone::nth(n as u64)
    }

    #[test]
    fn outcomes_follow_arrival_order() {
        let phones = [p(1), p(2), p(3), p(2), p(4), p(5), p(4)];
        let existing = HashSet::from([p(1).get()]);
        let outcomes = assign(7, &phones, &existing, None, 2, None);
        let reasons: Vec<_> = outcomes.iter().map(Outcome::reason).collect();
        assert_eq!(reasons, ["repeat", "success", "success", "repeat", "sold_out", "sold_out", "sold_out"]);
    }

    #[test]
    fn a_buyer_who_has_the_item_hears_repeat_whatever_the_window() {
        let existing = HashSet::from([p(1).get()]);
        for window in [Outcome::Ended, Outcome::NotStarted] {
            let outcomes = assign(7, &[p(1), p(2)], &existing, Some(window.clone()), 0, None);
            assert_eq!(outcomes, [Outcome::RepeatKill, window]);
        }
    }
}
