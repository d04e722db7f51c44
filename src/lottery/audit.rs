//! A campaign's audit log, and its verification: everything a third party needs to check a campaign without us,
//! once its seed is revealed.
//!
//! The log holds the commitment, the revealed seed, the rules committed to, every recorded draw in commit order
//! (the batch it was decided in, the user, the draw number, its random number and the prize won), and the units
//! the database says are left in each tier. [`verify`] recomputes all of it: the commitment from the seed and the
//! rules, each draw's number from the seed, each batch's results from the wheel and the stock it met, one draw
//! number after another per user within the draws allowed, and the units left. The algorithm is written down in
//! `docs/lottery-verification.md`, which is what a verifier in another language follows.

use std::collections::HashMap;

use mysql_async::Pool;
use serde::{Deserialize, Serialize};

use super::campaign;
use super::error::LotteryError;
use super::randomness::draw_number;
use super::rules::{ALGORITHM, CampaignRules};
use crate::database::acquire;
use crate::database::error::DatabaseError;
use crate::database::rows::exec_all;

/// The format named at the top of every log.
pub const FORMAT: &str = "seckill-lottery-audit/1";

/// A campaign's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditLog {
    /// [`FORMAT`].
    pub format: String,
    /// The commitment published from the campaign's creation on.
    pub commitment: String,
    /// The revealed seed, 64 lowercase hex digits.
    pub seed: String,
    /// The rules committed to.
    pub rules: CampaignRules,
    /// Every recorded draw, in commit order.
    pub draws: Vec<AuditDraw>,
    /// The units left in each tier, in wheel order, as the database holds them.
    pub stock_left: Vec<i64>,
}

/// One recorded draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditDraw {
    /// The draw's id, as the user's own records show it.
    pub draw_id: i64,
    /// The batch it was decided in, from 1 in commit order; `None` for a draw decided apart because it landed
    /// on the blank share (it met no stock and competed with no one).
    pub batch: Option<i64>,
    pub user: i64,
    /// The user's draws in the campaign, from 1.
    pub draw_no: i64,
    /// The draw's random number, in [0, 2^32).
    pub r: i64,
    /// The position of the tier won, `None` for no prize.
    pub tier: Option<i64>,
}

/// What a log that verified holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub draws: usize,
    pub wins: usize,
    pub batches: usize,
    pub users: usize,
}

/// The first thing in a log that does not hold, named as `docs/lottery-verification.md` names it: `format`,
/// `seed`, `commitment`, `draw N` (N the draw's place in the log, from 1) or `tier P` (its position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {why}")]
pub struct Mismatch {
    pub what: String,
    pub why: String,
}

fn mismatch(what: impl Into<String>, why: impl Into<String>) -> Mismatch {
    Mismatch { what: what.into(), why: why.into() }
}

/// A draw as read: draw_id, opens_batch, user_id, draw_no, r, tier_id.
type DrawRow = (i64, Option<i64>, i64, i64, i64, Option<i64>);

/// The audit log of a campaign whose seed is revealed, read from the primary.
///
/// # Errors
/// [`LotteryError::NotRevealed`] before the campaign is over, [`LotteryError::Unverifiable`] for a campaign
/// created before commitments, [`LotteryError::Database`].
pub(crate) async fn export(pool: &Pool, campaign_id: i64) -> Result<Option<AuditLog>, LotteryError> {
    let mut conn = acquire(pool).await?;
    let Some(status) = campaign::status(&mut conn, campaign_id).await? else { return Ok(None) };
    let Some(commitment) = status.campaign.commitment.clone() else {
        return Err(LotteryError::Unverifiable(campaign_id));
    };
    let Some(seed) = status.revealed_seed.clone() else {
        return Err(LotteryError::NotRevealed { campaign_id, end_time: status.campaign.end_time });
    };
    let positions: HashMap<i64, i64> =
        status.campaign.tiers.iter().map(|tier| (tier.tier_id, i64::from(tier.position))).collect();
    let rows: Vec<DrawRow> = exec_all(
        &mut conn,
        "SELECT draw_id, opens_batch, user_id, draw_no, r, tier_id FROM lottery_draw \
         WHERE campaign_id = ? ORDER BY draw_id",
        (campaign_id,),
        "a lottery draw",
    )
    .await?;
    let mut batch = 0;
    let mut draws = Vec::with_capacity(rows.len());
    for (draw_id, opens_batch, user, draw_no, r, tier_id) in rows {
        batch += i64::from(opens_batch == Some(1));
        let tier = match tier_id {
            None => None,
            Some(tier_id) => Some(*positions.get(&tier_id).ok_or_else(|| {
                DatabaseError::UnexpectedAnswer(format!("draw {draw_id} won tier {tier_id}, not the campaign's"))
            })?),
        };
        draws.push(AuditDraw { draw_id, batch: opens_batch.map(|_| batch), user, draw_no, r, tier });
    }
    Ok(Some(AuditLog {
        format: FORMAT.to_string(),
        commitment,
        rules: status.campaign.rules(),
        seed,
        draws,
        stock_left: status.campaign.tiers.iter().map(|tier| i64::from(tier.stock)).collect(),
    }))
}

/// Recomputes everything a log says (see the module's documentation).
///
/// # Errors
/// The first [`Mismatch`], in the order the doc checks: format, seed, commitment, the draws in log order, then
/// the units left.
pub fn verify(log: &AuditLog) -> Result<Verified, Mismatch> {
    if log.format != FORMAT {
        return Err(mismatch("format", format!("{:?} is not {FORMAT:?}", log.format)));
    }
    if log.seed.len() != 64 || !log.seed.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(mismatch("seed", "not 64 lowercase hex digits"));
    }
    let rules = &log.rules;
    if rules.commitment(&log.seed) != log.commitment {
        return Err(mismatch("commitment", "SHA-256 of the seed and the rules is not the commitment"));
    }
    if rules.algorithm != ALGORITHM {
        return Err(mismatch("rules", format!("algorithm {:?} is not {ALGORITHM:?}", rules.algorithm)));
    }
    let mut stock: Vec<i64> = rules.tiers.iter().map(|tier| tier.stock).collect();
    let mut draws_of: HashMap<i64, i64> = HashMap::new();
    let mut batches = 0;
    let mut wins = 0;
    let mut index = 0;
    while index < log.draws.len() {
        let batch = log.draws[index].batch;
        // A batch: the draws of one batch number in a row; a draw decided apart stands alone.
        let end = match batch {
            None => index + 1,
            Some(number) => {
                if number != batches + 1 {
                    return Err(mismatch(
                        format!("draw {}", index + 1),
                        format!("batch {number} after batch {batches}"),
                    ));
                }
                batches += 1;
                index + log.draws[index..].iter().take_while(|draw| draw.batch == batch).count()
            }
        };
        let members = &log.draws[index..end];
        let mut landed = Vec::with_capacity(members.len());
        for (offset, draw) in members.iter().enumerate() {
            let what = || format!("draw {}", index + offset + 1);
            let previous = draws_of.entry(draw.user).or_insert(0);
            if draw.draw_no != *previous + 1 || draw.draw_no > rules.draws_per_user {
                return Err(mismatch(
                    what(),
                    format!(
                        "user {} draws number {} after {previous} (at most {})",
                        draw.user, draw.draw_no, rules.draws_per_user
                    ),
                ));
            }
            *previous = draw.draw_no;
            let r = draw_number(&log.seed, rules.campaign_id, draw.user, draw.draw_no);
            if draw.r != i64::from(r) {
                return Err(mismatch(what(), format!("r is {}, the seed gives {r}", draw.r)));
            }
            landed.push(rules.landed(r));
        }
        let expected = if batch.is_none() {
            if landed[0].is_some() {
                return Err(mismatch(format!("draw {}", index + 1), "decided apart, but it lands on a tier"));
            }
            vec![None]
        } else {
            if stock.iter().all(|&left| left == 0) {
                return Err(mismatch(format!("draw {}", index + 1), "recorded after every prize was drawn"));
            }
            decide_batch(&landed, &mut stock)
        };
        for (offset, (draw, won)) in members.iter().zip(expected).enumerate() {
            let won = won.map(|tier| rules.tiers[tier].position);
            if draw.tier != won {
                let name =
                    |tier: Option<i64>| tier.map_or("no prize".to_string(), |position| format!("tier {position}"));
                return Err(mismatch(
                    format!("draw {}", index + offset + 1),
                    format!("recorded {}, the rules give {}", name(draw.tier), name(won)),
                ));
            }
            wins += usize::from(won.is_some());
        }
        index = end;
    }
    if log.stock_left.len() != stock.len() {
        return Err(mismatch("stock_left", format!("{} tiers, the rules have {}", log.stock_left.len(), stock.len())));
    }
    for ((tier, left), held) in rules.tiers.iter().zip(&stock).zip(&log.stock_left) {
        if left != held {
            return Err(mismatch(
                format!("tier {}", tier.position),
                format!("{left} units left by the draws, {held} in the database"),
            ));
        }
    }
    Ok(Verified { draws: log.draws.len(), wins, batches: usize::try_from(batches).unwrap_or(0), users: draws_of.len() })
}

/// One batch's prizes, as tier indexes, from where its draws landed (in arrival order) and the stock it met,
/// which it takes from: round 1, every tier gives its units to the draws that landed on it, in order; round 2,
/// the draws that landed on a tier and got nothing take the units left, in order, from the first tier in wheel
/// order that has any.
fn decide_batch(landed: &[Option<usize>], stock: &mut [i64]) -> Vec<Option<usize>> {
    let mut won = vec![None; landed.len()];
    let mut overflowing = Vec::new();
    for (index, tier) in landed.iter().enumerate() {
        if let Some(tier) = *tier {
            if stock[tier] > 0 {
                stock[tier] -= 1;
                won[index] = Some(tier);
            } else {
                overflowing.push(index);
            }
        }
    }
    for index in overflowing {
        if let Some(tier) = stock.iter().position(|&left| left > 0) {
            stock[tier] -= 1;
            won[index] = Some(tier);
        }
    }
    won
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lottery::rules::TierRules;

    #[test]
    fn a_batch_gives_each_tier_to_its_own_draws_first_then_what_is_left_in_wheel_order() {
        // Tiers A (1 unit) and B (1 unit): A, A, B. Round 1: the first A and the B win; the second A overflows
        // and finds nothing. Decided one at a time, the second A would have taken B's unit.
        let mut stock = [1, 1];
        assert_eq!(decide_batch(&[Some(0), Some(0), Some(1)], &mut stock), [Some(0), None, Some(1)]);
        assert_eq!(stock, [0, 0]);
        let mut stock = [1, 2];
        assert_eq!(decide_batch(&[Some(0), Some(0), None, Some(0)], &mut stock), [Some(0), Some(1), None, Some(1)]);
    }

    fn log() -> AuditLog {
        let seed = "ab".repeat(32);
        let rules = CampaignRules {
            algorithm: ALGORITHM.into(),
            blank_weight: 0,
            campaign_id: 9,
            draws_per_user: 1,
            end_ms: 2,
            name: "n".into(),
            start_ms: 1,
            tiers: vec![TierRules { name: "mug".into(), position: 1, stock: 1, value_fen: 0, weight: 1 }],
        };
        let draw = |draw_id, user, tier| AuditDraw {
            draw_id,
            batch: Some(1),
            user,
            draw_no: 1,
            r: i64::from(draw_number(&seed, 9, user, 1)),
            tier,
        };
        let draws = vec![draw(1, 5, Some(1)), draw(2, 6, None)];
        AuditLog { format: FORMAT.into(), commitment: rules.commitment(&seed), seed, rules, draws, stock_left: vec![0] }
    }

    #[test]
    fn a_log_verifies_and_each_kind_of_tampering_is_named() {
        assert_eq!(verify(&log()), Ok(Verified { draws: 2, wins: 1, batches: 1, users: 2 }));
        let mut swapped = log();
        swapped.draws[0].tier = None;
        swapped.draws[1].tier = Some(1);
        assert_eq!(verify(&swapped).unwrap_err().what, "draw 1");
        let mut other_user = log();
        other_user.draws[1].user = 7;
        assert_eq!(verify(&other_user).unwrap_err().what, "draw 2");
        let mut seed = log();
        seed.seed = "cd".repeat(32);
        assert_eq!(verify(&seed).unwrap_err().what, "commitment");
        let mut weight = log();
        weight.rules.tiers[0].weight = 2;
        assert_eq!(verify(&weight).unwrap_err().what, "commitment");
        let mut twice = log();
        twice.draws[1].user = 5;
        twice.draws[1].r = twice.draws[0].r;
        assert_eq!(verify(&twice).unwrap_err().what, "draw 2");
        let mut left = log();
        left.stock_left = vec![1];
        assert_eq!(verify(&left).unwrap_err().what, "tier 1");
    }
}
