//! The JSON shapes of the lottery's API, inside the shared `{success, data, error}` envelope: camelCase names and
//! epoch-millisecond times, like the seckill and exchange APIs'.
//!
//! The campaign's seed is shown only once the database says the campaign is over; a draw's random number is
//! never shown here (the audit log holds them all, once the seed is out).

use serde::Serialize;

use crate::lottery::{CampaignPhase, CampaignStatus, DrawOutcome, DrawRecord, Tier};

/// A campaign now: its window, the wheel and the published odds, the units left in each tier, the commitment to
/// its rules and, once it is over, its seed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub campaign_id: i64,
    pub name: String,
    pub start_time: i64,
    pub end_time: i64,
    /// The database's clock when this was read, epoch ms.
    pub now: i64,
    /// `not_started`, `open` or `ended`, by the database's clock.
    #[schema(value_type = String)]
    pub phase: CampaignPhase,
    pub draws_per_user: i32,
    /// The wheel's "no prize" share.
    pub blank_weight: i32,
    /// In wheel order.
    pub tiers: Vec<TierView>,
    /// Units left in every tier.
    pub prizes_left: i64,
    /// Every prize was drawn: draws from now on answer `all_drawn`.
    pub all_drawn: bool,
    /// Draws recorded, winners and losers.
    pub draws: i64,
    /// Draws that won.
    pub wins: i64,
    /// SHA-256 over the seed and the rules, public from creation on (`null`: created before commitments).
    pub commitment: Option<String>,
    /// The seed, once the campaign is over (ended, or every prize drawn); `null` before.
    pub seed: Option<String>,
    /// The rules committed to, in their canonical text (docs/lottery-verification.md): what the commitment is
    /// checked against.
    pub rules: String,
}

impl From<CampaignStatus> for StatusView {
    fn from(status: CampaignStatus) -> Self {
        let all_drawn = status.is_all_drawn();
        let rules = status.campaign.rules().canonical();
        let campaign = status.campaign;
        let total_weight =
            i64::from(campaign.blank_weight) + campaign.tiers.iter().map(|tier| i64::from(tier.weight)).sum::<i64>();
        StatusView {
            campaign_id: campaign.campaign_id,
            name: campaign.name,
            start_time: campaign.start_time.timestamp_millis(),
            end_time: campaign.end_time.timestamp_millis(),
            now: status.now.timestamp_millis(),
            phase: status.phase,
            draws_per_user: campaign.draws_per_user,
            blank_weight: campaign.blank_weight,
            tiers: campaign.tiers.into_iter().map(|tier| TierView::new(tier, total_weight)).collect(),
            prizes_left: status.prizes_left,
            all_drawn,
            draws: status.draws,
            wins: status.wins,
            commitment: campaign.commitment,
            seed: status.revealed_seed,
            rules,
        }
    }
}

/// One prize tier.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierView {
    pub tier_id: i64,
    /// The prize.
    pub name: String,
    /// Wheel order, from 1.
    pub position: i32,
    /// Share of the wheel.
    pub weight: i32,
    /// Units left.
    pub stock: i32,
    /// Units ever put in stock.
    pub stocked: i32,
    /// The prize's value in fen (1/100 yuan).
    pub value_fen: i64,
    /// The chance that a draw lands on this tier: its weight over the wheel's total (blank share included).
    /// While the tier has units, that is the chance to win it.
    pub odds: f64,
}

impl TierView {
    fn new(tier: Tier, total_weight: i64) -> Self {
        TierView {
            tier_id: tier.tier_id,
            name: tier.name,
            position: tier.position,
            weight: tier.weight,
            stock: tier.stock,
            stocked: tier.stocked,
            value_fen: tier.value_fen,
            odds: f64::from(tier.weight) / total_weight.max(1) as f64,
        }
    }
}

/// One of the user's recorded draws.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrawView {
    pub draw_id: i64,
    /// The user's draws in the campaign, from 1.
    pub draw_no: i32,
    /// The tier won, `null` for no prize.
    pub tier_id: Option<i64>,
    /// The prize won, `null` for no prize.
    pub prize: Option<String>,
    pub created_at: i64,
}

impl From<DrawRecord> for DrawView {
    fn from(record: DrawRecord) -> Self {
        DrawView {
            draw_id: record.draw_id,
            draw_no: record.draw_no,
            tier_id: record.tier_id,
            prize: record.prize,
            created_at: record.created_at.timestamp_millis(),
        }
    }
}

/// The user's draws in a campaign, in draw order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LotteryMine)]
pub struct MineView {
    pub user_id: i64,
    pub campaign_id: i64,
    pub draws: Vec<DrawView>,
}

/// A decided draw: `outcome` is `won`, `no_prize`, `all_drawn`, `not_started`, `ended` or `unknown_campaign`;
/// `drawId` is set for `won` and `no_prize`, `tierId` and `prize` only for `won`; `repeat` says the user had
/// used all their draws and this is their last result, given again (nothing was recorded).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrawAnswer {
    pub outcome: &'static str,
    pub draw_id: Option<i64>,
    pub tier_id: Option<i64>,
    pub prize: Option<String>,
    pub repeat: bool,
}

impl DrawAnswer {
    /// The answer for a decided outcome; `None` for an inner error, which decided nothing.
    pub fn decided(outcome: &DrawOutcome) -> Option<Self> {
        let (tier_id, prize) = match outcome {
            DrawOutcome::InnerError(_) => return None,
            DrawOutcome::Won { tier_id, prize, .. } => (Some(*tier_id), Some(prize.clone())),
            _ => (None, None),
        };
        Some(DrawAnswer {
            outcome: outcome.reason(),
            draw_id: outcome.draw_id(),
            tier_id,
            prize,
            repeat: outcome.is_repeat(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lottery::DrawOutcome;

    #[test]
    fn answers_name_the_outcome_and_only_a_win_its_prize() {
        let won = DrawOutcome::Won { draw_id: 7, tier_id: 2, prize: "mug".into(), repeat: true };
        assert_eq!(
            serde_json::to_value(DrawAnswer::decided(&won).unwrap()).unwrap(),
            serde_json::json!({"outcome": "won", "drawId": 7, "tierId": 2, "prize": "mug", "repeat": true})
        );
        let lost = DrawAnswer::decided(&DrawOutcome::NoPrize { draw_id: 8, repeat: false }).unwrap();
        assert_eq!((lost.outcome, lost.draw_id, lost.tier_id), ("no_prize", Some(8), None));
        let all_drawn = DrawAnswer::decided(&DrawOutcome::AllDrawn).unwrap();
        assert_eq!((all_drawn.outcome, all_drawn.draw_id), ("all_drawn", None));
        assert!(DrawAnswer::decided(&DrawOutcome::in_doubt("lost")).is_none());
    }
}
