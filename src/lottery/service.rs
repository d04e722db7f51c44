//! The lottery service: campaigns, draws and the books, over one database (a primary, and replicas for reads;
//! optionally Redis for "all drawn").
//!
//! What goes where: draws, campaign creation and the books on the primary; campaigns and their status on a
//! replica when there is one ([`Consistency::Eventual`]); a user's draws on the primary (they settle a draw that
//! was in doubt), or on a replica that has applied the user's draws when their GTIDs are given
//! ([`Lottery::my_draws_after`]).

use std::sync::Arc;

use mysql_async::Pool;

use super::audit::{self, AuditLog};
use super::books::LotteryBooks;
use super::campaign::{self, Campaign, CampaignStatus, DEFAULT_MAX_PRIZE_FEN, NewCampaign};
use super::closed::{self, AllDrawnFlags, DEFAULT_KEY_PREFIX};
use super::draw_lottery_batch::{DrawProcedure, DrawRequest};
use super::error::LotteryError;
use super::history::{self, DrawRecord};
use super::lanes::DrawBatches;
use super::outcome::DrawOutcome;
use super::recorded::Drawn;
use super::wheels::Wheels;
use crate::database::{Consistency, GtidPosition, ReadWriteSplit, WithGtid};
use crate::group_commit::{BatchRunner, GroupCommit, GroupCommitConfig, GroupCommitStats, OutcomeFuture};
use crate::prometheus::names::SHORT_CIRCUITS;
use crate::shared_state::bounded_redis::BoundedRedis;

/// Runs the lottery: cheap to clone, share one per application (the lanes that batch a campaign's draws are
/// per instance; several instances on one database are safe, the campaign's row lock orders their batches).
#[derive(Clone, Debug)]
pub struct Lottery {
    database: ReadWriteSplit,
    lanes: GroupCommit<DrawBatches>,
    wheels: Wheels,
    flags: Arc<AllDrawnFlags>,
    config: GroupCommitConfig,
    /// The highest value of a prize a campaign may offer, in fen.
    max_prize_fen: u64,
}

impl Lottery {
    /// A lottery over `database` with the default lanes and no Redis. `database` is a pool (the primary alone,
    /// see [`crate::database::ConnectOptions`]) or a [`ReadWriteSplit`] with replicas.
    pub fn new(database: impl Into<ReadWriteSplit>) -> Self {
        Self::with_config(database, GroupCommitConfig::default())
    }

    /// A lottery on lanes configured as `config`.
    pub fn with_config(database: impl Into<ReadWriteSplit>, config: GroupCommitConfig) -> Self {
        Self::build(database.into(), config, None, DEFAULT_KEY_PREFIX.to_string())
    }

    /// The same lottery refusing to create a campaign with a prize worth more than `max_prize_fen` (fen, 1/100
    /// yuan; [`DEFAULT_MAX_PRIZE_FEN`], 50,000 yuan, unless set).
    pub fn with_max_prize_fen(mut self, max_prize_fen: u64) -> Self {
        self.max_prize_fen = max_prize_fen;
        self
    }

    /// The same lottery sharing "all drawn" through `redis`, under keys `{prefix}{campaign_id}:state` (prefix
    /// `seckill:lottery:` by default, see [`super::closed`]). Redis failing never fails a draw: it is skipped
    /// and the database answers.
    pub fn with_redis(self, redis: BoundedRedis, prefix: Option<&str>) -> Self {
        let prefix = prefix.unwrap_or(DEFAULT_KEY_PREFIX).to_string();
        Self::build(self.database, self.config, Some(redis), prefix).with_max_prize_fen(self.max_prize_fen)
    }

    fn build(database: ReadWriteSplit, config: GroupCommitConfig, redis: Option<BoundedRedis>, prefix: String) -> Self {
        let flags = closed::flags(redis, prefix);
        let lanes = GroupCommit::new(
            DrawBatches {
                drawn: Drawn::new(database.primary().clone()),
                database: database.clone(),
                flags: flags.clone(),
            },
            config,
        );
        let wheels = Wheels::new(database.primary().clone());
        Lottery { database, lanes, wheels, flags, config, max_prize_fen: DEFAULT_MAX_PRIZE_FEN }
    }

    /// The primary's pool: every draw goes there.
    pub fn pool(&self) -> &Pool {
        self.database.primary()
    }

    /// The primary and the replicas the lottery reads from.
    pub fn database(&self) -> &ReadWriteSplit {
        &self.database
    }

    /// What the lanes have done so far: requests that reached them, batches (one round trip each), answers from
    /// their memory. Draws answered "all drawn" by the flags before the lanes are not counted here.
    pub fn stats(&self) -> GroupCommitStats {
        self.lanes.stats()
    }

    /// Draws sent so far to `draw_lottery_blanks`, the procedure for draws that land on the blank share, which
    /// decides them side by side under the campaign's shared lock (`sql/procedures/lottery/draw_lottery_blanks.sql`);
    /// they are counted in [`Lottery::stats`] too.
    pub fn blank_draws(&self) -> u64 {
        self.wheels.blank_draws()
    }

    /// The Redis key that says whether a campaign is all drawn.
    pub fn state_key(&self, campaign_id: i64) -> String {
        self.flags.state_key(campaign_id)
    }

    /// Creates a campaign, its tiers and its secret seed, committed to (an admin operation): from here on the
    /// database refuses any change of its rules.
    ///
    /// # Errors
    /// [`LotteryError::InvalidCampaign`] (nothing sent; a prize over the cap too), [`LotteryError::Database`]
    /// (nothing written).
    pub async fn create_campaign(&self, campaign: &NewCampaign) -> Result<Campaign, LotteryError> {
        campaign::create(self.pool(), campaign, self.max_prize_fen).await
    }

    /// A campaign with its tiers, or `None`; from a replica when there is one.
    ///
    /// # Errors
    /// [`LotteryError::InvalidCampaignId`], [`LotteryError::Database`].
    pub async fn campaign(&self, campaign_id: i64) -> Result<Option<Campaign>, LotteryError> {
        check_campaign(campaign_id)?;
        self.database.read(&Consistency::Eventual, |conn| Box::pin(campaign::get(conn, campaign_id))).await
    }

    /// A campaign now: phase, units left per tier and in all, draws and wins; `None` for an unknown campaign.
    /// From a replica when there is one (the counts may lag a little).
    ///
    /// # Errors
    /// [`LotteryError::InvalidCampaignId`], [`LotteryError::Database`].
    pub async fn status(&self, campaign_id: i64) -> Result<Option<CampaignStatus>, LotteryError> {
        check_campaign(campaign_id)?;
        self.database.read(&Consistency::Eventual, |conn| Box::pin(campaign::status(conn, campaign_id))).await
    }

    /// Draws for `user_id` in `campaign_id`. Concurrent draws of one campaign share one transaction; every
    /// failure once the input is valid is a [`DrawOutcome::InnerError`], which says whether the draw may have
    /// committed ([`Lottery::my_draws`] tells). Drawing again is always safe: a user over their draws hears
    /// their last result, flagged repeat, except once the campaign is known all drawn or ended: then everyone
    /// hears that from memory, without a database query (their draws stay readable).
    ///
    /// # Errors
    /// Only for input refused before anything is sent: [`LotteryError::InvalidUser`],
    /// [`LotteryError::InvalidCampaignId`].
    pub async fn draw(&self, campaign_id: i64, user_id: i64) -> Result<DrawOutcome, LotteryError> {
        Ok(self.draw_with_gtid(campaign_id, user_id).await?.outcome)
    }

    /// As [`Lottery::draw`], with the commit GTID of the batch that decided it, for [`Lottery::my_draws_after`].
    ///
    /// # Errors
    /// As [`Lottery::draw`].
    pub async fn draw_with_gtid(&self, campaign_id: i64, user_id: i64) -> Result<WithGtid<DrawOutcome>, LotteryError> {
        check_campaign(campaign_id)?;
        check_user(user_id)?;
        if let Some(known) = self.answer_all_drawn(campaign_id, user_id) {
            return Ok(known);
        }
        // Redis too, at most every 100 ms per campaign: this instance learns what another found.
        let all_drawn = self.flags.closed(campaign_id).await.is_some();
        Ok(self.submit_draw(campaign_id, user_id, all_drawn).await)
    }

    /// Queues the draw at once and returns the future of its outcome: the order of `submit` calls is the arrival
    /// order batches honour. Consults only this instance's memory of "all drawn" (no Redis lookup). Needs a
    /// tokio runtime.
    ///
    /// # Errors
    /// [`LotteryError::InvalidUser`], [`LotteryError::InvalidCampaignId`]: nothing was queued.
    pub fn submit(&self, campaign_id: i64, user_id: i64) -> Result<OutcomeFuture<DrawOutcome>, LotteryError> {
        let decided = self.submit_with_gtid(campaign_id, user_id)?;
        Ok(Box::pin(async move { decided.await.outcome }))
    }

    /// As [`Lottery::submit`], the outcome with its commit GTID.
    ///
    /// # Errors
    /// As [`Lottery::submit`].
    pub fn submit_with_gtid(
        &self,
        campaign_id: i64,
        user_id: i64,
    ) -> Result<OutcomeFuture<WithGtid<DrawOutcome>>, LotteryError> {
        check_campaign(campaign_id)?;
        check_user(user_id)?;
        if let Some(known) = self.answer_all_drawn(campaign_id, user_id) {
            return Ok(Box::pin(std::future::ready(known)));
        }
        let all_drawn = self.flags.known(campaign_id).is_some();
        Ok(self.submit_draw(campaign_id, user_id, all_drawn))
    }

    /// The answer for a campaign this instance's batches found all drawn, when its memory of who drew holds the
    /// user's: the common case once a campaign is drawn, answered before the shared state is asked.
    fn answer_all_drawn(&self, campaign_id: i64, user_id: i64) -> Option<WithGtid<DrawOutcome>> {
        let known = self.lanes.runner().drawn.answer_all_drawn(campaign_id, user_id)?;
        answered_all_drawn();
        Some(known)
    }

    /// Queues a checked draw, or, for a campaign known all drawn, answers it as the lanes answer a closed
    /// campaign: the user's last result when they used their draws, else "all drawn".
    fn submit_draw(&self, campaign_id: i64, user_id: i64, all_drawn: bool) -> OutcomeFuture<WithGtid<DrawOutcome>> {
        let draw = DrawRequest { user_id };
        if all_drawn {
            answered_all_drawn();
            let closed = WithGtid::without_gtid(DrawOutcome::AllDrawn);
            return self.lanes.submit_closed((campaign_id, DrawProcedure::Batch), draw, closed);
        }
        let lane = (campaign_id, self.wheels.procedure(campaign_id, user_id));
        self.lanes.submit(lane, draw)
    }

    /// A user's draws in a campaign, in draw order, from the primary: exact, so it settles a draw in doubt.
    ///
    /// # Errors
    /// [`LotteryError::InvalidUser`], [`LotteryError::InvalidCampaignId`], [`LotteryError::Database`].
    pub async fn my_draws(&self, campaign_id: i64, user_id: i64) -> Result<Vec<DrawRecord>, LotteryError> {
        self.my_draws_after(campaign_id, user_id, None).await
    }

    /// As [`Lottery::my_draws`], on a replica that has applied `after` (the GTIDs of the user's draws, e.g. from
    /// [`Lottery::draw_with_gtid`]) when it is given and a replica applies it in time, else on the primary.
    ///
    /// # Errors
    /// As [`Lottery::my_draws`].
    pub async fn my_draws_after(
        &self,
        campaign_id: i64,
        user_id: i64,
        after: Option<&GtidPosition>,
    ) -> Result<Vec<DrawRecord>, LotteryError> {
        check_campaign(campaign_id)?;
        check_user(user_id)?;
        let consistency = Consistency::after_or_primary(after.cloned());
        self.database.read(&consistency, |conn| Box::pin(history::my_draws(conn, campaign_id, user_id))).await
    }

    /// A campaign's audit log (see [`audit`]), from the primary, once its seed is revealed; `None` for an unknown
    /// campaign.
    ///
    /// # Errors
    /// [`LotteryError::NotRevealed`], [`LotteryError::Unverifiable`], [`LotteryError::InvalidCampaignId`],
    /// [`LotteryError::Database`].
    pub async fn export(&self, campaign_id: i64) -> Result<Option<AuditLog>, LotteryError> {
        check_campaign(campaign_id)?;
        audit::export(self.pool(), campaign_id).await
    }

    /// A campaign's books (see [`LotteryBooks`]).
    ///
    /// # Errors
    /// [`LotteryError::InvalidCampaignId`], [`LotteryError::Database`].
    pub async fn books(&self, campaign_id: i64) -> Result<LotteryBooks, LotteryError> {
        check_campaign(campaign_id)?;
        LotteryBooks::read(self.pool(), campaign_id).await
    }
}

/// Counts a draw answered "all drawn" from the shared state, before the lanes.
fn answered_all_drawn() {
    metrics::counter!(SHORT_CIRCUITS, "domain" => DrawBatches::DOMAIN, "source" => "shared_state").increment(1);
}

fn check_user(user_id: i64) -> Result<(), LotteryError> {
    if user_id <= 0 { Err(LotteryError::InvalidUser(user_id)) } else { Ok(()) }
}

fn check_campaign(campaign_id: i64) -> Result<(), LotteryError> {
    if campaign_id <= 0 { Err(LotteryError::InvalidCampaignId(campaign_id)) } else { Ok(()) }
}
