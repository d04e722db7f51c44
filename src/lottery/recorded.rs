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
//!
//! Every draw of a drawn campaign asks this memory, so it is laid out for that: one lock, the users in a vector by
//! id while their ids are dense (a map once they are not), and a watch per campaign, not each answer, reading the
//! clock for the end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
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

/// How often a campaign's watch reads the wall clock while its end is further away (a clock set forward is
/// noticed within this).
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Room a campaign's table of users may leave empty beyond one slot per user, before it becomes a map.
const DENSE_SLACK: usize = 1 << 16;

/// The campaigns this instance knows, by id.
type Campaigns = HashMap<i64, CampaignDraws, foldhash::fast::RandomState>;

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
    users: UserTable,
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
    /// Set by the campaign's watch once its end is less than [`END_MARGIN`] away: the answers then come from the
    /// database, without each reading the clock.
    near_end: bool,
    /// Which life of the campaign's memory this is (a new one begins when it is forgotten and learnt again): a
    /// count taken in one says nothing of another.
    life: u64,
}

impl CampaignDraws {
    /// A campaign's memory in a life of its own.
    fn begin() -> Self {
        static LIVES: AtomicU64 = AtomicU64::new(0);
        CampaignDraws { life: LIVES.fetch_add(1, Ordering::Relaxed), ..CampaignDraws::default() }
    }
}

/// The draws of the campaigns this instance draws from.
#[derive(Debug)]
pub(crate) struct Drawn {
    pool: Pool,
    campaigns: Arc<Mutex<Campaigns>>,
}

impl Drawn {
    pub(crate) fn new(pool: Pool) -> Self {
        Drawn { pool, campaigns: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Campaigns> {
        lock(&self.campaigns)
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
        let (known, life, check) = {
            let mut campaigns = self.lock();
            if campaigns.len() >= MOST_CAMPAIGNS && !campaigns.contains_key(&campaign_id) {
                campaigns.clear();
            }
            let campaign = campaigns.entry(campaign_id).or_insert_with(CampaignDraws::begin);
            for (draw, decided) in draws.iter().zip(&decided.outcomes) {
                campaign.learn(draw.user_id, &decided.outcome);
            }
            let all_drawn = decided.closed.as_ref().is_some_and(|closed| closed.outcome == DrawOutcome::AllDrawn);
            campaign.closed |= all_drawn;
            let full = campaign.users.len() >= MOST_USERS;
            (campaign.recorded, campaign.life, campaign.closed && !campaign.complete && !full)
        };
        if !check {
            return;
        }
        let Ok((draws_per_user, end, recorded)) = self.count(campaign_id).await else { return };
        let mut campaigns = self.lock();
        if let Some(campaign) = campaigns.get_mut(&campaign_id).filter(|campaign| campaign.life == life) {
            campaign.draws_per_user = Some(draws_per_user);
            if campaign.end.is_none() {
                tokio::spawn(watch_end(Arc::downgrade(&self.campaigns), campaign_id, end));
            }
            campaign.end = Some(end);
            // Counted after the batch's commit: every draw the tally includes had committed, and `known` of them
            // were known here when it was taken. A count that falls short of complete says nothing: another
            // batch's check, answered in between, may have found it complete (a campaign never reopens).
            campaign.complete |= known == recorded;
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
        self.lock().get(&campaign_id)?.answer(user_id, closed)
    }

    /// The answer for `user_id` when this instance's batches found the campaign all drawn and it knows the
    /// user's answer: asked before anything else, so that a campaign drawn here costs each answer one lock.
    pub(crate) fn answer_all_drawn(&self, campaign_id: i64, user_id: i64) -> Option<WithGtid<DrawOutcome>> {
        let campaigns = self.lock();
        let campaign = campaigns.get(&campaign_id).filter(|campaign| campaign.closed)?;
        campaign.answer(user_id, &WithGtid::without_gtid(DrawOutcome::AllDrawn))
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
    /// The answer for `user_id` while the campaign is closed with `closed` ("all drawn"), when this memory
    /// holds it.
    fn answer(&self, user_id: i64, closed: &WithGtid<DrawOutcome>) -> Option<WithGtid<DrawOutcome>> {
        let draws_per_user = self.draws_per_user?;
        if self.end.is_none() || self.near_end {
            return None;
        }
        match self.users.get(user_id) {
            Some(user) if user.used_up || user.draws >= draws_per_user => {
                Some(WithGtid::without_gtid(self.repeat(user.last_draw, user.last_tier)))
            }
            _ => self.complete.then(|| closed.clone()),
        }
    }

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
        if self.users.len() >= MOST_USERS && self.users.get(user_id).is_none() {
            return;
        }
        let user = self
            .users
            .get_or_insert(user_id, UserDraws { draws: 0, used_up: false, last_draw: draw_id, last_tier: tier });
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

fn lock(campaigns: &Mutex<Campaigns>) -> MutexGuard<'_, Campaigns> {
    // Nothing that can panic runs under this lock; a poisoned map is consistent.
    campaigns.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Marks a campaign near its end once the wall clock is less than [`END_MARGIN`] from `end`; ends with the
/// memory (or the campaign's place in it).
async fn watch_end(campaigns: Weak<Mutex<Campaigns>>, campaign_id: i64, end: DateTime<Utc>) {
    loop {
        let left = (end - Utc::now()).to_std().unwrap_or_default().saturating_sub(END_MARGIN);
        {
            let Some(campaigns) = campaigns.upgrade() else { return };
            let mut campaigns = lock(&campaigns);
            let Some(campaign) = campaigns.get_mut(&campaign_id) else { return };
            if left.is_zero() {
                campaign.near_end = true;
                return;
            }
        }
        tokio::time::sleep(left.min(WATCH_EVERY)).await;
    }
}

/// Each user's draws, by user id: in a vector indexed by id while the ids are dense (at least one slot in two
/// used, beyond [`DENSE_SLACK`]), so that a user's answer is one read beside their neighbours'; in a map once
/// they spread wider.
#[derive(Debug, Default)]
struct UserTable {
    /// The user whose id is `base + i` at `slots[i]`, while the ids are dense.
    base: i64,
    slots: Vec<Option<UserDraws>>,
    /// The users in `slots`.
    dense: usize,
    /// Every user, once the ids spread wider (`slots` then stays empty).
    spread: Option<HashMap<i64, UserDraws, foldhash::fast::RandomState>>,
}

impl UserTable {
    fn len(&self) -> usize {
        self.spread.as_ref().map_or(self.dense, HashMap::len)
    }

    fn get(&self, user_id: i64) -> Option<&UserDraws> {
        if let Some(users) = &self.spread {
            return users.get(&user_id);
        }
        let index = usize::try_from(user_id.checked_sub(self.base)?).ok()?;
        self.slots.get(index)?.as_ref()
    }

    /// The user's draws, inserted as `new` when the table has none.
    fn get_or_insert(&mut self, user_id: i64, new: UserDraws) -> &mut UserDraws {
        if self.spread.is_none()
            && let Some(index) = self.make_room(user_id)
        {
            // Within the slots: `make_room` says so.
            let slot = &mut self.slots[index];
            if slot.is_none() {
                self.dense += 1;
            }
            return slot.get_or_insert(new);
        }
        self.spread().entry(user_id).or_insert(new)
    }

    /// Makes the slots cover `user_id` and says at which index, unless that would leave more than half of them
    /// (beyond [`DENSE_SLACK`]) empty.
    fn make_room(&mut self, user_id: i64) -> Option<usize> {
        if self.slots.is_empty() {
            self.base = user_id;
        }
        // The span the slots would cover, with room on the side that grows, so that ids arriving in descending
        // order cost amortised constant time as ascending ones do.
        let (first, end) = (self.base, self.base.checked_add(i64::try_from(self.slots.len()).ok()?)?);
        let room = i64::try_from(self.slots.len() / 2).ok()?;
        let new_first = if user_id < first { user_id.saturating_sub(room) } else { first };
        let new_end = end.max(user_id.checked_add(1)?);
        let span = usize::try_from(new_end.checked_sub(new_first)?).ok()?;
        if span > 2 * (self.dense + 1) + DENSE_SLACK {
            return None;
        }
        if new_first < first {
            let before = usize::try_from(first - new_first).ok()?;
            self.slots.splice(0..0, std::iter::repeat_n(None, before));
            self.base = new_first;
        }
        if span > self.slots.len() {
            self.slots.resize(span, None);
        }
        usize::try_from(user_id - new_first).ok().filter(|&index| index < self.slots.len())
    }

    /// The map of every user, made from the slots the first time.
    fn spread(&mut self) -> &mut HashMap<i64, UserDraws, foldhash::fast::RandomState> {
        let (base, slots) = (self.base, std::mem::take(&mut self.slots));
        self.dense = 0;
        self.spread.get_or_insert_with(|| {
            slots
                .into_iter()
                .enumerate()
                .filter_map(|(index, user)| Some((base.checked_add(i64::try_from(index).ok()?)?, user?)))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(draw: i64) -> UserDraws {
        UserDraws { draws: 1, used_up: false, last_draw: draw, last_tier: None }
    }

    fn is_dense(table: &UserTable) -> bool {
        table.spread.is_none()
    }

    #[test]
    fn dense_ids_in_any_order_stay_in_slots_and_each_is_found() {
        let mut table = UserTable::default();
        // Descending, then ascending, around a start in the middle.
        let ids: Vec<i64> = (1..=50_000).rev().chain(50_001..=100_000).map(|n| n * 2).collect();
        for &id in &ids {
            table.get_or_insert(id, draws(id));
        }
        assert!(is_dense(&table), "one id in two is dense enough");
        assert_eq!(table.len(), ids.len());
        for &id in &ids {
            assert_eq!(table.get(id).map(|user| user.last_draw), Some(id));
            assert!(table.get(id + 1).is_none(), "{} was never inserted", id + 1);
        }
        assert!(table.get(0).is_none() && table.get(-5).is_none() && table.get(i64::MAX).is_none());
        // Inserting again finds the same user.
        table.get_or_insert(4, draws(99)).draws += 1;
        assert_eq!(table.get(4).map(|user| (user.draws, user.last_draw)), Some((2, 4)));
        assert_eq!(table.len(), ids.len());
    }

    #[test]
    fn ids_spread_wide_move_to_a_map_and_keep_every_user() {
        let mut table = UserTable::default();
        for id in 1..=1000 {
            table.get_or_insert(id, draws(id));
        }
        assert!(is_dense(&table));
        let far = [i64::MAX - 1, 10_000_000_000, 1 << 40];
        for id in far {
            table.get_or_insert(id, draws(id));
        }
        assert!(!is_dense(&table), "ids a trillion apart are not kept in slots");
        assert_eq!(table.len(), 1003);
        for id in (1..=1000).chain(far) {
            assert_eq!(table.get(id).map(|user| user.last_draw), Some(id));
        }
        assert!(table.get(1001).is_none());
    }
}
