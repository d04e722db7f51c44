//! "All drawn", known once and shared: when every prize of a campaign is drawn, the rest of the crowd is turned
//! away without reaching the database, in this instance and, through Redis, in every other instance and in a
//! load balancer in front of them.
//!
//! The convention (for load balancers and other instances):
//!
//! ```text
//! SET seckill:lottery:{campaign_id}:state all_drawn        (no expiry)
//! ```
//!
//! The key holds `all_drawn` exactly when every unit of every tier of the campaign has been won. The flag is
//! monotone: a campaign's stock is fixed at creation, so once true it stays true, and nobody clears it during
//! the campaign (an operator may delete keys of campaigns long over). A balancer that finds the value
//! `all_drawn` may answer draws of that campaign itself (e.g. nginx `access_by_lua` through lua-resty-redis,
//! cached per worker for ~100 ms); any other value, or no key, means "ask the app". The prefix is configurable
//! ([`super::Lottery::with_redis`]) to keep several apps apart in one Redis.
//!
//! In the app: an instance learns "all drawn" from a batch's answer (prizes left 0), remembers it for good, and
//! publishes the key. Before its lanes, every draw checks memory; a campaign not known all drawn is looked up in
//! Redis at most once per [`RECHECK_INTERVAL`] (one request does the lookup, the others go on to the lanes). A
//! fact that could not be published (Redis down) is published again once Redis answers, and every fact again
//! after Redis failed (it may have restarted empty). Redis is optional and only ever an accelerator: every
//! command is bounded by [`crate::shared_state::bounded_redis::REDIS_TIMEOUT`], and any error, timeout or missing key fails
//! open to the database, which answers exactly. A wrong flag can only come from someone writing the key by hand.
//!
//! The machinery is the crate's shared closed state ([`crate::shared_state::closed`]), with monotone facts
//! ([`Reopening::Never`]): this module only names the fact and its key.

use crate::shared_state::closed::{ClosedFact, ClosedState, Reopening};

pub use crate::shared_state::closed::RECHECK_INTERVAL;

/// The value of a campaign's state key once every prize is drawn.
pub const ALL_DRAWN_VALUE: &str = "all_drawn";

/// What names campaigns in a state key, after the app's prefix (`seckill:`): `seckill:lottery:{id}:state`.
pub const KEY_KIND: &str = "lottery:";

/// The default prefix of the state keys: `seckill:lottery:{campaign_id}:state`.
pub const DEFAULT_KEY_PREFIX: &str = "seckill:lottery:";

/// Who reads and writes the flags, in Redis warnings.
const USER: &str = "lottery all-drawn flag";

/// The one closed fact of a campaign: every prize is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllDrawn;

impl ClosedFact for AllDrawn {
    fn value(self) -> &'static str {
        ALL_DRAWN_VALUE
    }

    fn parse(value: &str) -> Option<Self> {
        (value == ALL_DRAWN_VALUE).then_some(AllDrawn)
    }
}

/// The "all drawn" facts of one instance, and its link to the shared flag.
pub(crate) type AllDrawnFlags = ClosedState<AllDrawn>;

/// The flags under `prefix`, shared through `redis` when given.
pub(crate) fn flags(
    redis: Option<crate::shared_state::bounded_redis::BoundedRedis>,
    prefix: String,
) -> std::sync::Arc<AllDrawnFlags> {
    ClosedState::new(redis, prefix, Reopening::Never, USER)
}
