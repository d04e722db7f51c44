//! The lottery (抽奖): campaigns of prize tiers that a crowd draws from at one moment, each user a fixed number
//! of times, with every win delivered by a gift service through the reliable message service.
//!
//! A draw is decided in the database, in one procedure call (`sql/procedures/lottery/draw_lottery_batch.sql`): the
//! campaign's row lock is held for the decision and a commit, never across a network round trip. Concurrent
//! draws of one campaign share one transaction through the group-commit lanes ([`crate::group_commit`]), so a
//! campaign pays for one durable commit per batch, not per draw. A draw is recorded whether it wins or not; a win
//! takes one unit of its tier and writes, in the same transaction, one `message_outbox` row (topic
//! [`PRIZE_TOPIC`], business key the draw id) that the gift service delivers: a win exists exactly when its
//! message does.
//!
//! The wheel (exact rules in the procedure's header): the random number `r` in [0, 2^32) of a draw lands on
//! slot `r * total / 2^32` of a wheel of `total = blank_weight + the weights of all tiers`; tiers take the slots
//! in position order, the blank share ("no prize") comes last. A draw landing on an empty tier falls through to
//! the units left in other tiers, in position order, so with no blank share winners = min(prizes, draws). `r`
//! is derived by the procedures from the campaign's secret seed ([`randomness`]), whose commitment is public from
//! creation on and which is revealed once the campaign is over, so that anyone can check every draw
//! ([`audit`], `docs/lottery-verification.md`).
//!
//! Once every prize is drawn, the rest of the crowd is turned away without a database query: from the lanes'
//! memory, from the instance's "all drawn" flags, and across instances and load balancers through Redis
//! ([`closed`]: `SET seckill:lottery:{campaign_id}:state all_drawn`); the wins are delivered through a gift
//! service by [`delivery`], from the message the draw writes ([`message`]).
//!
//! Outcomes: [`DrawOutcome`]. Its SQL: `sql/migrations/V5__lottery.sql` (the tables) and
//! `sql/procedures/lottery/draw_lottery_batch.sql` (the decision, its locks and its order of precedence).

pub mod audit;
mod books;
mod campaign;
pub mod closed;
pub mod delivery;
mod draw_lottery_batch;
mod error;
mod history;
pub mod http;
mod lanes;
pub mod message;
mod outcome;
pub mod randomness;
mod recorded;
pub mod rules;
mod service;
mod wheels;

pub use books::{LotteryBooks, TierBooks};
pub use campaign::{
    Campaign, CampaignPhase, CampaignStatus, DEFAULT_MAX_PRIZE_FEN, MAX_BLANK_WEIGHT, MAX_DRAWS_PER_USER,
    MAX_NAME_CHARS, MAX_TIER_WEIGHT, MAX_TIERS, NewCampaign, NewTier, Tier, yuan,
};
pub use error::LotteryError;
pub use history::DrawRecord;
pub use message::{PRIZE_TOPIC, PrizeMessage, read_gift_call};
pub use outcome::{DrawOutcome, DrawOutcomeView, InnerError};
pub use randomness::CampaignSeed;
pub use rules::CampaignRules;
pub use service::Lottery;
