//! Draws of one campaign merged into one transaction, on the shared group-commit lanes
//! ([`crate::group_commit`]): a campaign is a hot row, and InnoDB holds its lock until the commit is durable, so
//! one transaction for many users pays that price once.
//!
//! A campaign seen all drawn or ended is answered in-process for the lanes' `recheck_interval`, to everyone:
//! "ended" is what the database answers everyone too (it comes first in the order of precedence), and "all
//! drawn" is true of the campaign, though a user who already used their draws would hear "repeat" from the
//! database (their draws stay readable, [`super::Lottery::my_draws`]). Users are not remembered as repeats:
//! with several draws per user, a lane cannot tell from memory whether one has draws left. A batch that finds
//! the campaign all drawn also tells the instance's "all drawn" flags ([`super::closed`]), which then answer
//! from memory for good and publish it through Redis.
//!
//! A campaign has two lanes: one for draws that may win, decided by `draw_lottery_batch` one batch at a time
//! in arrival order, and one for draws that land on the blank share ([`super::wheels`]), decided by
//! `draw_lottery_blanks` under a shared lock on the campaign. Blanks compete for nothing, so their batches are not
//! ordered, among themselves or with the others: a batch of blanks says it is decided as soon as it is sent, and
//! the lane runs several side by side.

use std::sync::Arc;

use super::closed::{AllDrawn, AllDrawnFlags};
use super::draw_lottery_batch::{DrawProcedure, DrawRequest, draw_lottery_batch};
use super::outcome::DrawOutcome;
use super::recorded::Drawn;
use crate::database::ReadWriteSplit;
use crate::database::gtid::WithGtid;
use crate::group_commit::{BatchRunner, Committing, Decided};

/// A lane: a campaign, and the procedure that decides its batches.
pub(crate) type DrawLane = (i64, DrawProcedure);

/// Decides one campaign's batches in the database; every outcome carries its batch's commit GTID.
pub(crate) struct DrawBatches {
    /// Batches go to its primary, which it is told the commit of.
    pub(crate) database: ReadWriteSplit,
    pub(crate) flags: Arc<AllDrawnFlags>,
    /// Who drew, for the answers of closed campaigns (one memory for both of a campaign's lanes).
    pub(crate) drawn: Drawn,
}

impl BatchRunner for DrawBatches {
    const DOMAIN: &'static str = "lottery";
    type Key = DrawLane;
    type Request = DrawRequest;
    type Outcome = WithGtid<DrawOutcome>;

    async fn run(
        &self,
        (campaign_id, procedure): DrawLane,
        draws: Vec<DrawRequest>,
        mut committing: Committing,
    ) -> Decided<WithGtid<DrawOutcome>> {
        if procedure == DrawProcedure::Blanks {
            // Blanks are not ordered: the next batch may go now.
            committing.decided();
        }
        let decided = draw_lottery_batch(self.database.primary(), procedure, campaign_id, &draws, committing).await;
        // One transaction, one commit: every outcome carries the same GTID.
        self.database.committed(decided.outcomes.first().and_then(|decided| decided.gtid));
        if decided.closed.as_ref().is_some_and(|closed| closed.outcome == DrawOutcome::AllDrawn) {
            self.flags.learnt(campaign_id, AllDrawn, 0);
        }
        decided
    }

    fn lost(&self) -> WithGtid<DrawOutcome> {
        WithGtid::without_gtid(DrawOutcome::in_doubt(
            "the draw's batch ended without an answer; it may have committed (see the user's draws)",
        ))
    }

    fn not_sent(&self) -> WithGtid<DrawOutcome> {
        WithGtid::without_gtid(DrawOutcome::not_sent(
            "the lottery stopped before sending this draw; nothing was written",
        ))
    }

    async fn learnt(
        &self,
        (campaign_id, _): DrawLane,
        draws: &[DrawRequest],
        decided: &Decided<WithGtid<DrawOutcome>>,
    ) {
        self.drawn.learn(campaign_id, draws, decided).await;
    }

    fn closed_answer(
        &self,
        (campaign_id, _): DrawLane,
        draw: &DrawRequest,
        closed: &WithGtid<DrawOutcome>,
    ) -> Option<WithGtid<DrawOutcome>> {
        self.drawn.answer(campaign_id, draw.user_id, closed)
    }

    async fn recorded(
        &self,
        (campaign_id, _): DrawLane,
        draw: DrawRequest,
    ) -> Result<Option<WithGtid<DrawOutcome>>, String> {
        self.drawn.recorded(campaign_id, draw.user_id).await
    }
}
