//! Draws of one campaign merged into one transaction, on the shared group-commit lanes
//! ([`crate::group_commit`]): a campaign is a hot row, and InnoDB holds its lock until the commit is durable, so
//! one transaction for many users pays that price once.
//!
//! A campaign seen all drawn or ended is answered in-process for the lanes' `recheck_interval`, to everyone:
//! "ended" is what the database answers everyone too (it comes first in the order of precedence), and "all
//! drawn" is true of the campaign, though a user who already used their draws would hear "repeat" from the
//! database (their draws stay readable, [`super::Lottery::my_draws`]). Users are not remembered as repeats:
//! with several draws per user, a lane cannot tell from memory whether one has draws left. A batch that finds the campaign all drawn also tells the instance's "all drawn" flags
//! ([`super::all_drawn`]), which then answer from memory for good and publish it through Redis.

use std::sync::Arc;

use mysql_async::Pool;

use super::all_drawn::{AllDrawn, AllDrawnFlags};
use super::draw_lottery_batch::{DrawRequest, draw_lottery_batch};
use super::outcome::DrawOutcome;
use crate::group_commit::{BatchRunner, Committing, Decided};

/// Decides one campaign's batches in the database.
pub(crate) struct DrawBatches {
    pub(crate) pool: Pool,
    pub(crate) flags: Arc<AllDrawnFlags>,
}

impl BatchRunner for DrawBatches {
    const DOMAIN: &'static str = "lottery";
    type Key = i64;
    type Request = DrawRequest;
    type Outcome = DrawOutcome;

    async fn run(&self, campaign_id: i64, draws: Vec<DrawRequest>, committing: Committing) -> Decided<DrawOutcome> {
        let decided = draw_lottery_batch(&self.pool, campaign_id, &draws, committing).await;
        if decided.closed == Some(DrawOutcome::AllDrawn) {
            self.flags.learnt(campaign_id, AllDrawn, 0);
        }
        decided
    }

    fn lost(&self) -> DrawOutcome {
        DrawOutcome::in_doubt("the draw's batch ended without an answer; it may have committed (see the user's draws)")
    }

    fn not_sent(&self) -> DrawOutcome {
        DrawOutcome::not_sent("the lottery stopped before sending this draw; nothing was written")
    }

    fn remembered(&self, _outcome: &DrawOutcome) -> Option<DrawOutcome> {
        None
    }
}
