//! Campaigns and their prize tiers: creating them (an admin operation, one transaction of plain INSERTs) and
//! reading them. Only draws, which take stock, go through the procedure.
//!
//! A campaign's rules are fixed at creation: the transaction that creates it draws its secret seed from the
//! operating system and ends by setting its commitment ([`super::rules`]), from which on the database's triggers
//! refuse any change of the rules (`sql/migrations/V9__lottery_commitments.sql`). So stock is never added later,
//! which is what makes "all drawn" a fact that never turns false (see [`super::closed`]). The seed is revealed
//! once the campaign is over: ended, or every prize drawn (no draw can be decided after either).

use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, TxOpts, Value};
use serde::Serialize;

use super::error::LotteryError;
use super::randomness::CampaignSeed;
use super::rules::{ALGORITHM, CampaignRules, TierRules};
use crate::database::acquire;
use crate::database::error::DatabaseError;
use crate::database::rows::{exec_all, exec_first, required_instant};

/// The longest campaign or prize name the schema holds (`VARCHAR(120)`).
pub const MAX_NAME_CHARS: usize = 120;
/// The most tiers a campaign has.
pub const MAX_TIERS: usize = 100;
/// The largest weight of one tier (keeps `r * total` within a BIGINT in the procedure).
pub const MAX_TIER_WEIGHT: u32 = 1_000_000;
/// The largest blank share of the wheel.
pub const MAX_BLANK_WEIGHT: u32 = 1_000_000_000;
/// The most draws one user may have in a campaign.
pub const MAX_DRAWS_PER_USER: u32 = 1000;
/// The highest value of one prize unless configured otherwise, in fen: 50,000 yuan, the cap China's
/// Anti-Unfair Competition Law (art. 10) puts on a lottery's top prize.
pub const DEFAULT_MAX_PRIZE_FEN: u64 = 5_000_000;

/// A prize tier to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTier {
    /// The prize, as winners and the gift service see it.
    pub name: String,
    /// Units to draw, 0 or more.
    pub stock: u32,
    /// Share of the wheel, 1 to [`MAX_TIER_WEIGHT`].
    pub weight: u32,
    /// The prize's value in fen (1/100 yuan), published with the rules; at most the lottery's cap.
    pub value_fen: u64,
}

/// A campaign to create, with its tiers in wheel order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCampaign {
    pub name: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    /// Draws per user, 1 to [`MAX_DRAWS_PER_USER`] (usually 1).
    pub draws_per_user: u32,
    /// The wheel's "no prize" share even while stock remains (usually 0).
    pub blank_weight: u32,
    pub tiers: Vec<NewTier>,
}

impl NewCampaign {
    /// A campaign of one draw per user and no blank share.
    pub fn new(
        name: impl Into<String>,
        start_time: DateTime<Utc>,
        end_time: DateTime<Utc>,
        tiers: Vec<NewTier>,
    ) -> Self {
        NewCampaign { name: name.into(), start_time, end_time, draws_per_user: 1, blank_weight: 0, tiers }
    }

    /// Checks what the schema would refuse, and a prize worth more than `max_prize_fen`, with a message that
    /// names the field.
    ///
    /// # Errors
    /// [`LotteryError::InvalidCampaign`].
    pub fn validate(&self, max_prize_fen: u64) -> Result<(), LotteryError> {
        let invalid = |message: String| Err(LotteryError::InvalidCampaign(message));
        check_name("the name", &self.name).or_else(invalid)?;
        if self.start_time >= self.end_time {
            return invalid("the start must be before the end".into());
        }
        if !(1..=MAX_DRAWS_PER_USER).contains(&self.draws_per_user) {
            return invalid(format!("draws per user must be 1 to {MAX_DRAWS_PER_USER}"));
        }
        if self.blank_weight > MAX_BLANK_WEIGHT {
            return invalid(format!("the blank weight must be at most {MAX_BLANK_WEIGHT}"));
        }
        if self.tiers.is_empty() || self.tiers.len() > MAX_TIERS {
            return invalid(format!("a campaign needs 1 to {MAX_TIERS} prize tiers"));
        }
        for (index, tier) in self.tiers.iter().enumerate() {
            let which = format!("tier {}", index + 1);
            check_name(&format!("{which}'s name"), &tier.name).or_else(invalid)?;
            if !(1..=MAX_TIER_WEIGHT).contains(&tier.weight) {
                return invalid(format!("{which}'s weight must be 1 to {MAX_TIER_WEIGHT}"));
            }
            if i32::try_from(tier.stock).is_err() {
                return invalid(format!("{which}'s stock must be at most {}", i32::MAX));
            }
            if tier.value_fen > max_prize_fen {
                return invalid(format!(
                    "{which}'s value, {} yuan, is over the cap on a prize, {} yuan (the law caps a lottery's top \
                     prize at 50,000 yuan)",
                    yuan(tier.value_fen),
                    yuan(max_prize_fen)
                ));
            }
        }
        Ok(())
    }
}

/// An amount in fen as yuan: `1234` is `12.34`.
pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let chars = name.trim().chars().count();
    if chars == 0 {
        return Err(format!("{what} must not be empty"));
    }
    if chars > MAX_NAME_CHARS {
        return Err(format!("{what} must be at most {MAX_NAME_CHARS} characters"));
    }
    Ok(())
}

/// One prize tier as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tier {
    pub tier_id: i64,
    pub name: String,
    /// Wheel order, from 1.
    pub position: i32,
    pub weight: i32,
    /// Units left.
    pub stock: i32,
    /// Units ever put in stock: `stocked - stock` were won.
    pub stocked: i32,
    /// The prize's value in fen (1/100 yuan).
    pub value_fen: i64,
}

/// A campaign as stored, with its tiers in wheel order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Campaign {
    pub campaign_id: i64,
    pub name: String,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub start_time: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub end_time: DateTime<Utc>,
    pub draws_per_user: i32,
    pub blank_weight: i32,
    pub tiers: Vec<Tier>,
    /// SHA-256 over the secret seed and the rules ([`CampaignRules`]), public from creation on; `None` for a
    /// campaign created before commitments, which cannot be verified.
    pub commitment: Option<String>,
}

impl Campaign {
    /// The rules as committed to (the units each tier was stocked with, not those left).
    pub fn rules(&self) -> CampaignRules {
        CampaignRules {
            algorithm: ALGORITHM.to_string(),
            blank_weight: self.blank_weight.into(),
            campaign_id: self.campaign_id,
            draws_per_user: self.draws_per_user.into(),
            end_ms: self.end_time.timestamp_millis(),
            name: self.name.clone(),
            start_ms: self.start_time.timestamp_millis(),
            tiers: self
                .tiers
                .iter()
                .map(|tier| TierRules {
                    name: tier.name.clone(),
                    position: tier.position.into(),
                    stock: tier.stocked.into(),
                    value_fen: tier.value_fen,
                    weight: tier.weight.into(),
                })
                .collect(),
        }
    }

    /// Units left in every tier.
    pub fn prizes_left(&self) -> i64 {
        self.tiers.iter().map(|tier| i64::from(tier.stock)).sum()
    }
}

/// Where a campaign's window stands, by the database's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignPhase {
    NotStarted,
    Open,
    Ended,
}

/// A campaign now: its tiers with the units left in each, the window's phase, and the draws recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignStatus {
    pub campaign: Campaign,
    pub phase: CampaignPhase,
    /// Units left in every tier; 0 means all drawn.
    pub prizes_left: i64,
    /// Draws recorded, winners and losers.
    pub draws: i64,
    /// Draws that won.
    pub wins: i64,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub now: DateTime<Utc>,
    /// The campaign's seed, once it is over (ended, or every prize drawn): with it anyone checks the commitment
    /// and recomputes every draw. `None` before.
    pub revealed_seed: Option<String>,
}

impl CampaignStatus {
    /// True once every unit of every tier was won.
    pub fn is_all_drawn(&self) -> bool {
        self.prizes_left == 0
    }
}

/// Creates a campaign, its tiers and its secret seed in one transaction that ends by committing to its rules,
/// and returns it as stored.
pub(crate) async fn create(pool: &Pool, campaign: &NewCampaign, max_prize_fen: u64) -> Result<Campaign, LotteryError> {
    campaign.validate(max_prize_fen)?;
    let seed = CampaignSeed::generate().map_err(DatabaseError::UnexpectedAnswer)?;
    // Milliseconds, as stored (TIMESTAMP(3)): MySQL would round finer digits and MariaDB cut them, and the rules
    // committed to must be the rules stored (checked below).
    let millis = |instant: DateTime<Utc>| DateTime::<Utc>::from_timestamp_millis(instant.timestamp_millis());
    let (Some(start_time), Some(end_time)) = (millis(campaign.start_time), millis(campaign.end_time)) else {
        return Err(LotteryError::InvalidCampaign("the window is out of the range of instants".into()));
    };
    let mut conn = acquire(pool).await?;
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    tx.exec_drop(
        "INSERT INTO lottery_campaign (name, start_time, end_time, draws_per_user, blank_weight, created_at) \
         VALUES (?, ?, ?, ?, ?, NOW(3))",
        (
            campaign.name.trim(),
            start_time.naive_utc(),
            end_time.naive_utc(),
            campaign.draws_per_user,
            campaign.blank_weight,
        ),
    )
    .await?;
    let campaign_id = tx
        .last_insert_id()
        .and_then(|id| i64::try_from(id).ok())
        .ok_or_else(|| DatabaseError::UnexpectedAnswer("the insert returned no campaign id".into()))?;
    let tiers = campaign.tiers.iter().enumerate().map(|(index, tier)| {
        let position = i64::try_from(index + 1).unwrap_or(i64::MAX);
        (campaign_id, tier.name.trim(), position, tier.weight, tier.value_fen, tier.stock, tier.stock)
    });
    tx.exec_batch(
        "INSERT INTO lottery_tier (campaign_id, name, position, weight, value_fen, stock, stocked, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, NOW(3))",
        tiers,
    )
    .await?;
    tx.exec_drop("INSERT INTO lottery_campaign_seed (campaign_id, seed) VALUES (?, ?)", (campaign_id, seed.to_hex()))
        .await?;
    let tiers = campaign.tiers.iter().zip(1..).map(|(tier, position)| Tier {
        tier_id: 0,
        name: tier.name.trim().to_string(),
        position,
        weight: i32::try_from(tier.weight).unwrap_or(i32::MAX),
        stock: i32::try_from(tier.stock).unwrap_or(i32::MAX),
        stocked: i32::try_from(tier.stock).unwrap_or(i32::MAX),
        value_fen: i64::try_from(tier.value_fen).unwrap_or(i64::MAX),
    });
    let created = Campaign {
        campaign_id,
        name: campaign.name.trim().to_string(),
        start_time,
        end_time,
        draws_per_user: i32::try_from(campaign.draws_per_user).unwrap_or(i32::MAX),
        blank_weight: i32::try_from(campaign.blank_weight).unwrap_or(i32::MAX),
        tiers: tiers.collect(),
        commitment: None,
    };
    let rules = created.rules();
    let commitment = rules.commitment(&seed.to_hex());
    tx.exec_drop("UPDATE lottery_campaign SET commitment = ? WHERE campaign_id = ?", (&commitment, campaign_id))
        .await?;
    tx.commit().await?;
    let stored = get(&mut conn, campaign_id)
        .await?
        .ok_or_else(|| DatabaseError::UnexpectedAnswer(format!("campaign {campaign_id} vanished")))?;
    // What the commitment binds must be what draws use: the rules read back are the rules committed to (a
    // server that stores a name or an instant otherwise would break every verification of the campaign).
    let stored_rules = stored.rules();
    if stored_rules != rules {
        let (stored_rules, rules) = (stored_rules.canonical(), rules.canonical());
        let detail = format!("campaign {campaign_id} was stored as {stored_rules}, committed to as {rules}");
        return Err(DatabaseError::UnexpectedAnswer(detail).into());
    }
    Ok(stored)
}

/// A campaign's seed, whether revealed or not: for this instance's own use (where draws land), never shown.
pub(crate) async fn seed(conn: &mut Conn, campaign_id: i64) -> Result<Option<CampaignSeed>, LotteryError> {
    let seed: Option<String> = exec_first(
        conn,
        "SELECT seed FROM lottery_campaign_seed WHERE campaign_id = ?",
        (campaign_id,),
        "a lottery campaign's seed",
    )
    .await?;
    Ok(seed.as_deref().and_then(CampaignSeed::from_hex))
}

type CampaignRow = (i64, String, Value, Value, i32, i32, Option<String>);
type TierRow = (i64, String, i32, i32, i32, i32, i64);

/// One campaign with its tiers, or `None`.
pub(crate) async fn get(conn: &mut Conn, campaign_id: i64) -> Result<Option<Campaign>, LotteryError> {
    let row: Option<CampaignRow> = exec_first(
        conn,
        "SELECT campaign_id, name, start_time, end_time, draws_per_user, blank_weight, commitment \
         FROM lottery_campaign WHERE campaign_id = ?",
        (campaign_id,),
        "a lottery campaign",
    )
    .await?;
    let Some((campaign_id, name, start, end, draws_per_user, blank_weight, commitment)) = row else {
        return Ok(None);
    };
    let what = format!("lottery campaign {campaign_id}");
    let start_time = required_instant(start, &what)?;
    let end_time = required_instant(end, &what)?;
    let tiers: Vec<TierRow> = exec_all(
        conn,
        "SELECT tier_id, name, position, weight, stock, stocked, value_fen FROM lottery_tier \
         WHERE campaign_id = ? ORDER BY position",
        (campaign_id,),
        "a lottery tier",
    )
    .await?;
    let tiers = tiers
        .into_iter()
        .map(|(tier_id, name, position, weight, stock, stocked, value_fen)| Tier {
            tier_id,
            name,
            position,
            weight,
            stock,
            stocked,
            value_fen,
        })
        .collect();
    Ok(Some(Campaign { campaign_id, name, start_time, end_time, draws_per_user, blank_weight, tiers, commitment }))
}

/// A campaign's status now, or `None` for an unknown campaign.
pub(crate) async fn status(conn: &mut Conn, campaign_id: i64) -> Result<Option<CampaignStatus>, LotteryError> {
    let Some(campaign) = get(conn, campaign_id).await? else { return Ok(None) };
    // The tally the draw procedures keep, not a count of a million rows; wins are the units gone. The seed only
    // once the database itself says the campaign is over, in the same statement.
    let row: Option<(i64, i64, Value, Option<String>)> = exec_first(
        conn,
        "SELECT (SELECT CAST(COALESCE(SUM(y.draws), 0) AS SIGNED) FROM lottery_draw_tally y \
                  WHERE y.campaign_id = c.campaign_id), \
                (SELECT CAST(COALESCE(SUM(t.stocked - t.stock), 0) AS SIGNED) \
                   FROM lottery_tier t WHERE t.campaign_id = c.campaign_id), \
                NOW(3), \
                (SELECT s.seed FROM lottery_campaign_seed s \
                  WHERE s.campaign_id = c.campaign_id \
                    AND (NOW(3) >= c.end_time \
                         OR NOT EXISTS (SELECT 1 FROM lottery_tier t \
                                         WHERE t.campaign_id = c.campaign_id AND t.stock > 0))) \
         FROM lottery_campaign c WHERE c.campaign_id = ?",
        (campaign_id,),
        "a lottery campaign's draws",
    )
    .await?;
    let (draws, wins, now, revealed_seed) =
        row.ok_or_else(|| DatabaseError::UnexpectedAnswer(format!("campaign {campaign_id} vanished")))?;
    let now = required_instant(now, "the database's clock")?;
    let phase = if now < campaign.start_time {
        CampaignPhase::NotStarted
    } else if now >= campaign.end_time {
        CampaignPhase::Ended
    } else {
        CampaignPhase::Open
    };
    let prizes_left = campaign.prizes_left();
    Ok(Some(CampaignStatus { campaign, phase, prizes_left, draws, wins, now, revealed_seed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaigns_the_schema_would_refuse_are_refused_first() {
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        let tier = |name: &str, stock, weight| NewTier { name: name.into(), stock, weight, value_fen: 100 };
        let good = NewCampaign::new("spring", now, later, vec![tier("mug", 10, 1)]);
        assert!(good.validate(100).is_ok());
        let cases = [
            (NewCampaign { name: " ".into(), ..good.clone() }, "name"),
            (NewCampaign { end_time: now, ..good.clone() }, "start"),
            (NewCampaign { draws_per_user: 0, ..good.clone() }, "draws per user"),
            (NewCampaign { blank_weight: MAX_BLANK_WEIGHT + 1, ..good.clone() }, "blank"),
            (NewCampaign { tiers: vec![], ..good.clone() }, "tiers"),
            (NewCampaign { tiers: vec![tier("mug", 1, 0)], ..good.clone() }, "weight"),
            (NewCampaign { tiers: vec![tier("", 1, 1)], ..good.clone() }, "tier 1's name"),
            (NewCampaign { tiers: vec![tier("mug", u32::MAX, 1)], ..good.clone() }, "stock"),
            (NewCampaign { tiers: vec![NewTier { value_fen: 101, ..tier("mug", 1, 1) }], ..good.clone() }, "1.01 yuan"),
        ];
        for (bad, field) in cases {
            let error = bad.validate(100).unwrap_err().to_string();
            assert!(error.starts_with("invalid campaign:") && error.contains(field), "{error}");
        }
    }
}
