//! Where a campaign's draws land, as this instance knows it: which procedure decides a draw.
//!
//! A draw that lands on the wheel's blank share is "no prize" whatever the stock, so it competes with no one and
//! is decided by `draw_lottery_blanks`, under a shared lock on the campaign: batches of blanks run side by side,
//! while the draws that land on prizes are decided by `draw_lottery_batch` one batch at a time under the
//! exclusive lock. Where a draw lands follows from its random number (derived from the campaign's seed, see
//! [`super::randomness`]) and the wheel (the tiers' weights and the blank share), and neither changes once a
//! campaign is created: they are read once per campaign, in the background, the first time the campaign is
//! drawn from. The seed stays in this memory, never shown. Until it is known, and for a campaign with no blank
//! share or more than one draw per user (whose later draws have numbers of their own), every draw goes to
//! `draw_lottery_batch`. A mistake costs time only: the blanks' procedure checks every draw again and hands
//! anything else to `draw_lottery_batch`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mysql_async::Pool;

use super::campaign;
use super::draw_lottery_batch::DrawProcedure;
use super::randomness::CampaignSeed;
use crate::database::acquire;

/// The most campaigns remembered: beyond it (a flood of bogus ids) the memory starts again.
const CAMPAIGNS_REMEMBERED: usize = 10_000;

/// A campaign's wheel: its tiers' slots come first, the blank share last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wheel {
    tier_weight: u64,
    total_weight: u64,
}

/// A campaign as far as routing needs it: its seed and its wheel.
#[derive(Debug, Clone)]
struct Routing {
    campaign_id: i64,
    seed: CampaignSeed,
    wheel: Wheel,
}

impl Routing {
    /// Whether a user's first draw lands on the blank share.
    fn lands_on_blank(&self, user_id: i64) -> bool {
        self.wheel.lands_on_blank(self.seed.draw_number(self.campaign_id, user_id, 1))
    }
}

impl Wheel {
    /// Whether `r` lands on the blank share: slot `r * total DIV 2^32` at or past the tiers' weight, as the
    /// procedures compute it.
    fn lands_on_blank(self, r: u32) -> bool {
        (u64::from(r) * self.total_weight) >> 32 >= self.tier_weight
    }
}

/// What this instance knows of a campaign's wheel.
#[derive(Debug, Clone)]
enum Known {
    /// Being read.
    Reading,
    /// One draw per user and a blank share: blanks can be told apart.
    Blanks(Arc<Routing>),
    /// No blank share, more than one draw per user, or no such campaign: every draw to `draw_lottery_batch`.
    NoBlanks,
}

/// The wheels of the campaigns this instance has drawn from. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Wheels {
    pool: Pool,
    known: Arc<Mutex<HashMap<i64, Known>>>,
    /// Draws sent to `draw_lottery_blanks` so far.
    blanks: Arc<AtomicU64>,
}

impl Wheels {
    pub(crate) fn new(pool: Pool) -> Self {
        Wheels { pool, known: Arc::default(), blanks: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Known>> {
        // Nothing that can panic runs under this lock; a poisoned map is consistent.
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The procedure for the first draw of `user_id` in `campaign_id`. Starts reading the wheel when it is not
    /// known yet (needs a tokio runtime for that; without one, the wheel stays unknown).
    pub(crate) fn procedure(&self, campaign_id: i64, user_id: i64) -> DrawProcedure {
        let known = {
            let mut known = self.lock();
            match known.get(&campaign_id) {
                Some(fact) => fact.clone(),
                None => {
                    if known.len() >= CAMPAIGNS_REMEMBERED {
                        known.clear();
                    }
                    known.insert(campaign_id, Known::Reading);
                    drop(known);
                    self.read_in_background(campaign_id);
                    Known::Reading
                }
            }
        };
        match known {
            Known::Blanks(routing) if routing.lands_on_blank(user_id) => {
                self.blanks.fetch_add(1, Ordering::Relaxed);
                DrawProcedure::Blanks
            }
            _ => DrawProcedure::Batch,
        }
    }

    /// Draws sent to `draw_lottery_blanks` so far.
    pub(crate) fn blank_draws(&self) -> u64 {
        self.blanks.load(Ordering::Relaxed)
    }

    fn read_in_background(&self, campaign_id: i64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let wheels = self.clone();
        runtime.spawn(async move {
            let read = async {
                let mut conn = acquire(&wheels.pool).await.ok()?;
                let campaign = campaign::get(&mut conn, campaign_id).await.ok()?;
                let seed = campaign::seed(&mut conn, campaign_id).await.ok()?;
                Some((campaign, seed))
            };
            match read.await {
                Some((campaign, seed)) => {
                    let known = match (campaign, seed) {
                        (Some(campaign), Some(seed)) if campaign.draws_per_user == 1 && campaign.blank_weight > 0 => {
                            let weight = |w: i32| u64::try_from(w).unwrap_or(0);
                            let tier_weight: u64 = campaign.tiers.iter().map(|tier| weight(tier.weight)).sum();
                            let total_weight = tier_weight + weight(campaign.blank_weight);
                            let wheel = Wheel { tier_weight, total_weight };
                            Known::Blanks(Arc::new(Routing { campaign_id, seed, wheel }))
                        }
                        _ => Known::NoBlanks,
                    };
                    wheels.lock().insert(campaign_id, known);
                }
                // Read again by the next draw.
                None => {
                    wheels.lock().remove(&campaign_id);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draw_lands_on_the_blank_share_past_the_tiers_slots() {
        // Tiers take slots 0..10 of 100: slot r * 100 >> 32 below 10 lands on a tier.
        let wheel = Wheel { tier_weight: 10, total_weight: 100 };
        let first_blank = (10u64 << 32).div_ceil(100);
        assert!(!wheel.lands_on_blank(0));
        assert!(!wheel.lands_on_blank((first_blank - 1) as u32));
        assert!(wheel.lands_on_blank(first_blank as u32));
        assert!(wheel.lands_on_blank(u32::MAX));
        assert!(!Wheel { tier_weight: 5, total_weight: 5 }.lands_on_blank(u32::MAX), "no blank share");
    }
}
