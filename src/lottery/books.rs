//! The books of a lottery campaign: what callers were told must be what the database holds, and every fact
//! must agree with every other. Checked by the tests after every run; cheap enough for an operator's check.
//!
//! - per tier: units won (`stocked - stock`) = the campaign's draws that won it, and stock never negative;
//! - every win has exactly one prize message (topic `lottery.prize`, business key the draw id) with its own
//!   payload, and every prize message of the campaign belongs to a win;
//! - no user has more draws than `draws_per_user`, and every user's draw numbers run 1, 2, ... without a gap;
//! - the campaign's draw tally (what its status shows) = its draws.
//!
//! The sums run in the database; only the numbers come back.

use mysql_async::Pool;

use super::PRIZE_TOPIC;
use super::error::LotteryError;
use crate::database::acquire;
use crate::database::error::DatabaseError;
use crate::database::rows::{exec_all, exec_first};

/// One tier's books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierBooks {
    pub tier_id: i64,
    pub stocked: i64,
    pub stock: i64,
    /// Draws that won the tier.
    pub wins: i64,
}

impl TierBooks {
    /// Units taken = wins, and stock never negative.
    pub fn balances(&self) -> bool {
        self.stock >= 0 && self.stocked - self.stock == self.wins
    }
}

/// A campaign's books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotteryBooks {
    pub campaign_id: i64,
    pub tiers: Vec<TierBooks>,
    /// Draws recorded, winners and losers.
    pub draws: i64,
    /// Draws that won.
    pub wins: i64,
    /// Distinct users who drew.
    pub users: i64,
    /// Wins with exactly one prize message whose payload is the win's.
    pub wins_with_one_message: i64,
    /// Prize messages of the campaign.
    pub messages: i64,
    /// Users with more draws than allowed, or draw numbers with gaps.
    pub users_over_limit: i64,
    /// The draws the campaign's tally says were recorded.
    pub draws_counted: i64,
}

impl LotteryBooks {
    /// Reads a campaign's books.
    ///
    /// # Errors
    /// [`LotteryError::Database`].
    pub async fn read(pool: &Pool, campaign_id: i64) -> Result<LotteryBooks, LotteryError> {
        let mut conn = acquire(pool).await?;
        // The wins per tier in one pass over the campaign's draws (no index serves a count per tier).
        let tiers: Vec<(i64, i64, i64, i64)> = exec_all(
            &mut conn,
            "SELECT t.tier_id, t.stocked, t.stock, COALESCE(w.wins, 0) \
             FROM lottery_tier t \
             LEFT JOIN (SELECT d.tier_id, COUNT(*) AS wins FROM lottery_draw d \
                         WHERE d.campaign_id = ? AND d.tier_id IS NOT NULL GROUP BY d.tier_id) AS w \
               ON w.tier_id = t.tier_id \
             WHERE t.campaign_id = ? ORDER BY t.position",
            (campaign_id, campaign_id),
            "a lottery tier's books",
        )
        .await?;
        let tiers = tiers
            .into_iter()
            .map(|(tier_id, stocked, stock, wins)| TierBooks { tier_id, stocked, stock, wins })
            .collect();
        let counts: Option<(i64, i64, i64)> = exec_first(
            &mut conn,
            "SELECT COUNT(*), COUNT(tier_id), COUNT(DISTINCT user_id) FROM lottery_draw WHERE campaign_id = ?",
            (campaign_id,),
            "a lottery campaign's draws",
        )
        .await?;
        let (draws, wins, users) = counts.ok_or_else(|| DatabaseError::UnexpectedAnswer("no draw count".into()))?;
        let counted: Option<(i64,)> = exec_first(
            &mut conn,
            "SELECT CAST(COALESCE(SUM(draws), 0) AS SIGNED) FROM lottery_draw_tally WHERE campaign_id = ?",
            (campaign_id,),
            "a lottery campaign's draw tally",
        )
        .await?;
        // A win's message matches it field by field; the UNIQUE (topic, business_key) makes "one" exact.
        let matched: Option<(i64,)> = exec_first(
            &mut conn,
            "SELECT COUNT(*) FROM lottery_draw d \
             JOIN lottery_tier t ON t.tier_id = d.tier_id \
             JOIN message_outbox m ON m.topic = ? AND m.business_key = CAST(d.draw_id AS CHAR) \
             WHERE d.campaign_id = ? AND d.tier_id IS NOT NULL \
               AND JSON_VALUE(m.payload, '$.draw_id') = d.draw_id \
               AND JSON_VALUE(m.payload, '$.campaign_id') = d.campaign_id \
               AND JSON_VALUE(m.payload, '$.user_id') = d.user_id \
               AND JSON_VALUE(m.payload, '$.tier_id') = d.tier_id \
               AND JSON_VALUE(m.payload, '$.prize') = t.name",
            (PRIZE_TOPIC, campaign_id),
            "a lottery campaign's messages",
        )
        .await?;
        let messages: Option<(i64,)> = exec_first(
            &mut conn,
            "SELECT COUNT(*) FROM message_outbox WHERE topic = ? AND JSON_VALUE(payload, '$.campaign_id') = ?",
            (PRIZE_TOPIC, campaign_id),
            "a lottery campaign's messages",
        )
        .await?;
        let over: Option<(i64,)> = exec_first(
            &mut conn,
            "SELECT COUNT(*) FROM (SELECT d.user_id FROM lottery_draw d \
               JOIN lottery_campaign c ON c.campaign_id = d.campaign_id \
              WHERE d.campaign_id = ? \
              GROUP BY d.user_id \
             HAVING COUNT(*) > MAX(c.draws_per_user) OR MAX(d.draw_no) <> COUNT(*)) AS over_limit",
            (campaign_id,),
            "a lottery campaign's users",
        )
        .await?;
        Ok(LotteryBooks {
            campaign_id,
            tiers,
            draws,
            wins,
            users,
            wins_with_one_message: matched.map_or(0, |(n,)| n),
            messages: messages.map_or(0, |(n,)| n),
            users_over_limit: over.map_or(0, |(n,)| n),
            draws_counted: counted.map_or(0, |(n,)| n),
        })
    }

    /// Every tier balances, every win has its one message and every message its win, no user is over the
    /// limit, and the draw tally counts every draw.
    pub fn balances(&self) -> bool {
        self.tiers.iter().all(TierBooks::balances)
            && self.draws_counted == self.draws
            && self.tiers.iter().map(|tier| tier.wins).sum::<i64>() == self.wins
            && self.wins_with_one_message == self.wins
            && self.messages == self.wins
            && self.users_over_limit == 0
    }

    /// Units won in every tier.
    pub fn units_won(&self) -> i64 {
        self.tiers.iter().map(|tier| tier.stocked - tier.stock).sum()
    }

    /// Reads the books and says what does not balance.
    ///
    /// # Errors
    /// [`LotteryError::Database`], or [`LotteryError::Unbalanced`] naming the first fact that disagrees.
    pub async fn check(pool: &Pool, campaign_id: i64) -> Result<LotteryBooks, LotteryError> {
        let books = Self::read(pool, campaign_id).await?;
        if books.balances() { Ok(books) } else { Err(LotteryError::Unbalanced(format!("{books:?}"))) }
    }
}
