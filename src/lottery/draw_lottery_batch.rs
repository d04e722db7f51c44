//! The typed call of the `draw_lottery_batch` procedure (`sql/procedures/lottery/draw_lottery_batch.sql`):
//!
//! ```sql
//! CALL draw_lottery_batch(v_campaign_id BIGINT, v_draws MEDIUMTEXT /* [1,2,...]: the users, in arrival order */);
//! -- a batch of first draws: one row, first_draw_id BIGINT, draw_increment BIGINT, prizes_left BIGINT,
//! -- tiers TEXT /* every draw's tier won, comma-separated, 0 for none */, prizes JSON /* {"<tier_id>": name} */
//! -- any other batch: one row per draw, in input order: seq INT, outcome VARCHAR, repeat INT, draw_id BIGINT,
//! -- tier_id BIGINT, prize VARCHAR(120), prizes_left BIGINT
//! -- then one row: gtid, the commit's GTID ('' without a binary log)
//! -- SQLSTATE '45RB0': rolled back whole, nothing written; any other error: in doubt
//! ```
//!
//! One statement in the text protocol: exactly one round trip, nothing to prepare. The draws travel as a JSON
//! literal written into the statement, which is safe because they are integers only.
//!
//! `draw_lottery_blanks` (`sql/procedures/lottery/draw_lottery_blanks.sql`) takes the same arguments and gives the same
//! answers: it is a short way to `draw_lottery_batch`'s decisions for draws that land on the blank share, without
//! the campaign's lock, and hands any other batch to `draw_lottery_batch`. [`DrawProcedure`] says which is called.

use std::collections::HashMap;
use std::fmt::Write as _;

use mysql_async::{Pool, Row};

use super::outcome::DrawOutcome;
use crate::database::call::{CallFailure, call_committing};
use crate::database::error::DatabaseError;
use crate::database::gtid::{WithGtid, commit_gtid, stamp};
use crate::database::rows::decode;
use crate::group_commit::{Committing, Decided};

/// Which procedure decides a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DrawProcedure {
    /// `draw_lottery_batch`: any draws, decided one batch at a time under the campaign's lock.
    Batch,
    /// `draw_lottery_blanks`: first draws that all land on the blank share, decided side by side under a shared
    /// lock.
    Blanks,
}

impl DrawProcedure {
    fn name(self) -> &'static str {
        match self {
            DrawProcedure::Batch => "draw_lottery_batch",
            DrawProcedure::Blanks => "draw_lottery_blanks",
        }
    }
}

/// One draw request: a user's next draw (the procedure derives its number from the campaign's seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DrawRequest {
    pub(crate) user_id: i64,
}

/// How many times a batch chosen as a deadlock's victim is sent again. Batches of blanks, decided without the
/// campaign's lock, can meet other batches with the same users on the UNIQUE key in another order; InnoDB rolls
/// one back (proven: nothing was written) and the other goes on.
const DEADLOCK_RETRIES: usize = 3;

/// Decides one batch of draws of one campaign: a single statement, a single transaction, every outcome with the
/// batch's commit GTID; `committing` hears when it is decided. A batch rolled back as a deadlock's victim is
/// sent again, up to [`DEADLOCK_RETRIES`] times. On any other failure every draw gets the same
/// [`DrawOutcome::InnerError`], which says whether the batch may have committed.
pub(crate) async fn draw_lottery_batch(
    pool: &Pool,
    procedure: DrawProcedure,
    campaign_id: i64,
    draws: &[DrawRequest],
    mut committing: Committing,
) -> Decided<WithGtid<DrawOutcome>> {
    let failed = |outcome: DrawOutcome| Decided { outcomes: vec![outcome; draws.len()], closed: None };
    let statement = statement(procedure, campaign_id, draws);
    // The lane hears "decided" from the attempt that got that far: a victim's batch was not.
    let mut called = call_committing(pool, &statement, &mut committing).await;
    for _ in 0..DEADLOCK_RETRIES {
        if !matches!(called, Err(CallFailure::RolledBack(DatabaseError::Deadlock(_)))) {
            break;
        }
        called = call_committing(pool, &statement, &mut committing).await;
    }
    match called {
        // The CALL succeeded, so it committed whatever it decided: an answer that cannot be read leaves every
        // draw's outcome unknown (the user's draws tell).
        Ok(result_sets) => {
            let gtid = commit_gtid(&result_sets);
            let decided =
                answer(draws.len(), result_sets).unwrap_or_else(|detail| failed(DrawOutcome::in_doubt(detail)));
            stamp(decided, gtid)
        }
        Err(failure) => stamp(failed(DrawOutcome::InnerError(failure.into())), None),
    }
}

/// The CALL for a batch.
fn statement(procedure: DrawProcedure, campaign_id: i64, draws: &[DrawRequest]) -> String {
    let mut list = String::with_capacity(draws.len() * 12 + 2);
    list.push('[');
    for (index, draw) in draws.iter().enumerate() {
        if index > 0 {
            list.push(',');
        }
        // Writing into a String cannot fail.
        let _ = write!(list, "{}", draw.user_id);
    }
    list.push(']');
    format!("CALL {}({campaign_id}, '{list}')", procedure.name())
}

type AnswerRow = (i64, String, i64, Option<i64>, Option<i64>, Option<String>, Option<i64>);

type FirstDrawsRow = (i64, i64, i64, String, String);

const WHAT: &str = "the answer of draw_lottery_batch";

/// Every draw's outcome, and the campaign's closed answer once it is all drawn or ended.
fn answer(draws: usize, result_sets: Vec<Vec<Row>>) -> Result<Decided<DrawOutcome>, String> {
    let what = WHAT;
    let rows = result_sets
        .into_iter()
        .next()
        .ok_or_else(|| format!("{what}: no rows; is the procedure up to date? run `seckill migrate`"))?;
    if let [row] = rows.as_slice()
        && row.columns_ref().first().is_some_and(|column| column.name_str() == "first_draw_id")
    {
        let (outcomes, prizes_left) = first_draws(draws, row.clone())?;
        return Ok(closing(outcomes, Some(prizes_left)));
    }
    if rows.len() != draws {
        return Err(format!("{what}: {} rows for {draws} draws", rows.len()));
    }
    let mut outcomes = Vec::with_capacity(draws);
    let mut prizes_left = None;
    for (index, row) in rows.into_iter().enumerate() {
        let (seq, outcome, repeat, draw_id, tier_id, prize, left): AnswerRow =
            decode(row, what).map_err(|error| error.to_string())?;
        if usize::try_from(seq) != Ok(index + 1) {
            return Err(format!("{what}: row {} has seq {seq}", index + 1));
        }
        let decided = DrawOutcome::decided(&outcome, repeat != 0, draw_id, tier_id, prize)
            .ok_or_else(|| format!("{what}: row {seq}: outcome {outcome:?} with draw {draw_id:?}, tier {tier_id:?}"))?;
        outcomes.push(decided);
        prizes_left = left;
    }
    Ok(closing(outcomes, prizes_left))
}

/// The one-row answer of a batch of first draws: every draw recorded, with consecutive ids.
fn first_draws(draws: usize, row: Row) -> Result<(Vec<DrawOutcome>, i64), String> {
    let what = WHAT;
    let (first_draw_id, increment, prizes_left, tiers, prizes): FirstDrawsRow =
        decode(row, what).map_err(|error| error.to_string())?;
    let prizes: HashMap<String, String> =
        serde_json::from_str(&prizes).map_err(|error| format!("{what}: prizes {prizes:?}: {error}"))?;
    let mut outcomes = Vec::with_capacity(draws);
    let mut draw_id = first_draw_id;
    for tier in tiers.split(',') {
        let outcome = match tier {
            "0" => DrawOutcome::NoPrize { draw_id, repeat: false },
            tier => {
                let prize = prizes.get(tier).ok_or_else(|| format!("{what}: tier {tier:?} is not the campaign's"))?;
                let tier_id = tier.parse().map_err(|_| format!("{what}: tier {tier:?}"))?;
                DrawOutcome::Won { draw_id, tier_id, prize: prize.clone(), repeat: false }
            }
        };
        outcomes.push(outcome);
        draw_id += increment;
    }
    if outcomes.len() != draws {
        return Err(format!("{what}: {} tiers for {draws} draws", outcomes.len()));
    }
    Ok((outcomes, prizes_left))
}

/// The outcomes, with the campaign's closed answer once it is ended or all drawn: both are facts that never turn
/// back (stock is never added to a campaign, and time moves on).
fn closing(outcomes: Vec<DrawOutcome>, prizes_left: Option<i64>) -> Decided<DrawOutcome> {
    let closed = if outcomes.contains(&DrawOutcome::Ended) {
        Some(DrawOutcome::Ended)
    } else if prizes_left == Some(0) {
        Some(DrawOutcome::AllDrawn)
    } else {
        None
    };
    Decided { outcomes, closed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_travels_as_a_json_literal_of_integers() {
        let draws = [DrawRequest { user_id: 1 }, DrawRequest { user_id: 22 }];
        assert_eq!(statement(DrawProcedure::Batch, 7, &draws), "CALL draw_lottery_batch(7, '[1,22]')");
    }
}
