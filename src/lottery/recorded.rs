//! Who drew in a campaign, as this instance knows it: so that once every prize is drawn, a user who already used
//! their draws hears their last result, flagged repeat, as the database would answer them, and only users who can
//! still draw hear "all drawn", mostly without the database.
//!
//! A campaign's draws cannot change once it is all drawn: the procedures record no draw after the batch that
//! took the last unit, whose exclusive lock on the campaign waited for every batch of blanks before it. So when a
//! batch finds the campaign all drawn, the draws recorded are counted once (the campaign's tally); if this
//! instance has seen each of them decided (they all went through its lanes), it knows them all and answers every
//! user from memory. Otherwise (another instance drew some, a batch's answer was lost, this instance started
//! since) a user it does not know costs one point read of their last allowed draw by its unique key. The
//! campaign's end is read with the count: the database says "ended" to everyone first, so near and after the end
//! this instance asks it rather than its clock.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use super::draw_lottery_batch::DrawRequest;
use super::outcome::DrawOutcome;
use crate::database::acquire;
use crate::database::gtid::WithGtid;
use crate::database::rows::{decode, instant};
use crate::group_commit::Decided;

/// The most campaigns known at once; beyond it (a flood of campaign ids) the memory starts again.
const MOST_CAMPAIGNS: usize = 256;

/// The most users known of one campaign; a campaign with more is answered by point reads once all drawn.
const MOST_USERS: usize = 4_000_000;

/// How long before its end a campaign's answers come from the database instead of memory: more than this
/// instance's clock may be off the database's.
const END_MARGIN: Duration = Duration::from_secs(2);

/// One user's draws, as far as this instance knows them.
#[derive(Debug, Clone, Copy)]
struct UserDraws {
    /// Draws recorded for the user that this instance saw decided.
    draws: u32,
    /// The user has used all their draws (a repeat was answered to them).
    used_up: bool,
    /// Their last draw, and the tier it won.
    last_draw: i64,
    last_tier: Option<i64>,
}

/// One campaign's draws, as far as this instance knows them.
#[derive(Debug, Default)]
struct CampaignDraws {
    users: HashMap<i64, UserDraws>,
    /// New draws this instance saw recorded.
    recorded: u64,
    /// The tiers' names, for the answer of a win.
    tiers: HashMap<i64, String>,
    /// A batch has found the campaign all drawn.
    closed: bool,
    /// `users` holds every draw recorded in the campaign (checked once it is all drawn).
    complete: bool,
    /// Read from the campaign with the count.
    draws_per_user: Option<u32>,
    end: Option<DateTime<Utc>>,
}

/// The draws of the campaigns this instance draws from.
#[derive(Debug)]
pub(crate) struct Drawn {
    pool: Pool,
    campaigns: Mutex<HashMap<i64, CampaignDraws>>,
}

impl Drawn {
    pub(crate) fn new(pool: Pool) -> Self {
        Drawn { pool, campaigns: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, CampaignDraws>> {
        // Nothing that can panic runs under this lock; a poisoned map is consistent.
        self.campaigns.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Learns the draws of a batch; once the campaign is found all drawn, checks whether the draws known are all
    /// its draws (again after each batch until they are: a batch that committed before may still be on its way
    /// back).
    pub(crate) async fn learn(
        &self,
        campaign_id: i64,
        draws: &[DrawRequest],
        decided: &Decided<WithGtid<DrawOutcome>>,
    ) {
        let (known, check) = {
            let mut campaigns = self.lock();
            if campaigns.len() >= MOST_CAMPAIGNS && !campaigns.contains_key(&campaign_id) {
                campaigns.clear();
            }
            let campaign = campaigns.entry(campaign_id).or_default();
            for (draw, decided) in draws.iter().zip(&decided.outcomes) {
                campaign.learn(draw.user_id, &decided.outcome);
            }
            let all_drawn = decided.closed.as_ref().is_some_and(|closed| closed.outcome == DrawOutcome::AllDrawn);
            campaign.closed |= all_drawn;
            let full = campaign.users.len() >= MOST_USERS;
            (campaign.recorded, campaign.closed && !campaign.complete && !full)
        };
        if !check {
            return;
        }
        let Ok((draws_per_user, end, recorded)) = self.count(campaign_id).await else { return };
        let mut campaigns = self.lock();
        if let Some(campaign) = campaigns.get_mut(&campaign_id) {
            campaign.draws_per_user = Some(draws_per_user);
            campaign.end = Some(end);
            // Counted after the batch's commit: every draw the tally includes had committed, and `known` of them
            // were known here when it was taken.
            campaign.complete = known == recorded;
        }
    }

    /// The campaign's draws per user, its end, and the draws recorded in it.
    async fn count(&self, campaign_id: i64) -> Result<(u32, DateTime<Utc>, u64), String> {
        let what = "a campaign's draws recorded";
        let mut conn = acquire(&self.pool).await.map_err(|error| error.to_string())?;
        let row: Option<mysql_async::Row> = conn
            .exec_first(
                "SELECT c.draws_per_user, c.end_time, \
                        (SELECT COALESCE(SUM(t.draws), 0) FROM lottery_draw_tally t WHERE t.campaign_id = c.campaign_id) \
                   FROM lottery_campaign c WHERE c.campaign_id = ?",
                (campaign_id,),
            )
            .await
            .map_err(|error| error.to_string())?;
        let row = row.ok_or_else(|| format!("{what}: no campaign {campaign_id}"))?;
        let (draws_per_user, end, recorded): (u32, mysql_async::Value, u64) =
            decode(row, what).map_err(|error| error.to_string())?;
        let end = instant(end, what).map_err(|error| error.to_string())?.ok_or_else(|| format!("{what}: no end"))?;
        Ok((draws_per_user, end, recorded))
    }

    /// The answer for `user_id` while the campaign is closed with `closed`, when this instance knows it.
    pub(crate) fn answer(
        &self,
        campaign_id: i64,
        user_id: i64,
        closed: &WithGtid<DrawOutcome>,
    ) -> Option<WithGtid<DrawOutcome>> {
        // "Ended" comes first in the order of precedence: everyone hears it.
        if closed.outcome == DrawOutcome::Ended {
            return Some(closed.clone());
        }
        let campaigns = self.lock();
        let campaign = campaigns.get(&campaign_id)?;
        let (draws_per_user, end) = (campaign.draws_per_user?, campaign.end?);
        if Utc::now() + END_MARGIN >= end {
            return None;
        }
        match campaign.users.get(&user_id) {
            Some(user) if user.used_up || user.draws >= draws_per_user => {
                Some(WithGtid::without_gtid(campaign.repeat(user.last_draw, user.last_tier)))
            }
            _ => campaign.complete.then(|| closed.clone()),
        }
    }

    /// What the database says to `user_id` drawing again in a closed campaign, by a point read of their last
    /// allowed draw: "ended", their last result flagged repeat, or nothing (`None`: they can draw, and nothing
    /// is left).
    pub(crate) async fn recorded(
        &self,
        campaign_id: i64,
        user_id: i64,
    ) -> Result<Option<WithGtid<DrawOutcome>>, String> {
        let what = "a user's last allowed draw";
        let mut conn = acquire(&self.pool).await.map_err(|error| error.to_string())?;
        let row: Option<mysql_async::Row> = conn
            .exec_first(
                "SELECT NOW(3) >= c.end_time, d.draw_id, d.tier_id, t.name \
                   FROM lottery_campaign c \
                   LEFT JOIN lottery_draw d \
                          ON d.campaign_id = c.campaign_id AND d.user_id = ? AND d.draw_no = c.draws_per_user \
                   LEFT JOIN lottery_tier t ON t.tier_id = d.tier_id \
                  WHERE c.campaign_id = ?",
                (user_id, campaign_id),
            )
            .await
            .map_err(|error| error.to_string())?;
        let Some(row) = row else { return Ok(Some(WithGtid::without_gtid(DrawOutcome::UnknownCampaign))) };
        let (ended, draw_id, tier_id, prize): (bool, Option<i64>, Option<i64>, Option<String>) =
            decode(row, what).map_err(|error| error.to_string())?;
        let outcome = match (ended, draw_id, tier_id, prize) {
            (true, ..) => DrawOutcome::Ended,
            (false, Some(draw_id), Some(tier_id), Some(prize)) => {
                DrawOutcome::Won { draw_id, tier_id, prize, repeat: true }
            }
            (false, Some(draw_id), None, _) => DrawOutcome::NoPrize { draw_id, repeat: true },
            (false, Some(draw_id), Some(tier_id), None) => {
                return Err(format!("{what}: draw {draw_id} won tier {tier_id}, which has no name"));
            }
            (false, None, ..) => return Ok(None),
        };
        Ok(Some(WithGtid::without_gtid(outcome)))
    }
}

impl CampaignDraws {
    /// Learns one draw's outcome for `user_id`.
    fn learn(&mut self, user_id: i64, outcome: &DrawOutcome) {
        let (draw_id, tier, repeat) = match outcome {
            DrawOutcome::Won { draw_id, tier_id, prize, repeat } => {
                if !self.tiers.contains_key(tier_id) {
                    self.tiers.insert(*tier_id, prize.clone());
                }
                (*draw_id, Some(*tier_id), *repeat)
            }
            DrawOutcome::NoPrize { draw_id, repeat } => (*draw_id, None, *repeat),
            _ => return,
        };
        if self.users.len() >= MOST_USERS && !self.users.contains_key(&user_id) {
            return;
        }
        let user = self.users.entry(user_id).or_insert(UserDraws {
            draws: 0,
            used_up: false,
            last_draw: draw_id,
            last_tier: tier,
        });
        if repeat {
            // The answer of a repeat is the user's last allowed draw.
            user.used_up = true;
        } else {
            user.draws += 1;
            self.recorded += 1;
        }
        user.last_draw = draw_id;
        user.last_tier = tier;
    }

    /// The repeat answer of a user whose last allowed draw is `draw_id`, which won `tier` if any.
    fn repeat(&self, draw_id: i64, tier: Option<i64>) -> DrawOutcome {
        match tier.and_then(|tier_id| self.tiers.get(&tier_id).map(|prize| (tier_id, prize.clone()))) {
            Some((tier_id, prize)) => DrawOutcome::Won { draw_id, tier_id, prize, repeat: true },
            None => DrawOutcome::NoPrize { draw_id, repeat: true },
        }
    }
}
