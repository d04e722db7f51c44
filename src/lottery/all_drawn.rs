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
//! Redis at most once per [`RECHECK_INTERVAL`] (one request does the lookup, the others go on to the lanes).
//! Redis is optional and only ever an accelerator: every command is bounded by
//! [`crate::bounded_redis::REDIS_TIMEOUT`], and any error, timeout or missing key fails open to the database,
//! which answers exactly. A wrong flag can only come from someone writing the key by hand.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use crate::bounded_redis::BoundedRedis;

/// The value of a campaign's state key once every prize is drawn.
pub const ALL_DRAWN_VALUE: &str = "all_drawn";

/// The default prefix of the state keys: `seckill:lottery:{campaign_id}:state`.
pub const DEFAULT_KEY_PREFIX: &str = "seckill:lottery:";

/// How long an instance trusts "not all drawn" from Redis before it looks again.
pub const RECHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The most campaigns whose last Redis lookup is remembered: ids that are not all drawn (bogus ones included) are
/// forgotten beyond it, so a flood of unknown ids cannot grow memory; all-drawn facts are always kept.
const LOOKUPS_REMEMBERED: usize = 10_000;

/// What this instance knows of one campaign.
#[derive(Debug, Clone, Copy)]
enum Known {
    /// Every prize is drawn: for good.
    AllDrawn,
    /// Redis was last looked at then (or is being looked at).
    LookedAt(Instant),
}

/// The "all drawn" facts of one instance, and its link to the shared flag.
#[derive(Debug)]
pub(crate) struct AllDrawnFlags {
    redis: Option<BoundedRedis>,
    prefix: String,
    known: Mutex<HashMap<i64, Known>>,
}

impl AllDrawnFlags {
    pub(crate) fn new(redis: Option<BoundedRedis>, prefix: String) -> Self {
        AllDrawnFlags { redis, prefix, known: Mutex::default() }
    }

    /// The Redis key of a campaign's state.
    pub(crate) fn key(&self, campaign_id: i64) -> String {
        format!("{}{campaign_id}:state", self.prefix)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Known>> {
        // Nothing that can panic runs under this lock; a poisoned map is consistent.
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True when this instance knows the campaign is all drawn, without asking anyone.
    pub(crate) fn known_all_drawn(&self, campaign_id: i64) -> bool {
        matches!(self.lock().get(&campaign_id), Some(Known::AllDrawn))
    }

    /// True when the campaign is known all drawn here or, looked up at most once per [`RECHECK_INTERVAL`], in
    /// Redis. False whenever it is not known: the database decides.
    pub(crate) async fn is_all_drawn(&self, campaign_id: i64) -> bool {
        let Some(redis) = &self.redis else { return self.known_all_drawn(campaign_id) };
        {
            let mut known = self.lock();
            let now = Instant::now();
            match known.get(&campaign_id) {
                Some(Known::AllDrawn) => return true,
                Some(Known::LookedAt(at)) if now.saturating_duration_since(*at) < RECHECK_INTERVAL => return false,
                _ => {}
            }
            if known.len() >= LOOKUPS_REMEMBERED {
                known.retain(|_, fact| matches!(fact, Known::AllDrawn));
            }
            // This request looks; the others in the meantime go on to the database.
            known.insert(campaign_id, Known::LookedAt(now));
        }
        let mut connection = redis.connection();
        let key = self.key(campaign_id);
        let value = redis
            .bounded("lottery all-drawn flag", async move { connection.get::<_, Option<String>>(key).await })
            .await;
        let all_drawn = matches!(value, Ok(Some(value)) if value == ALL_DRAWN_VALUE);
        if all_drawn {
            self.lock().insert(campaign_id, Known::AllDrawn);
        }
        all_drawn
    }

    /// Remembers that the campaign is all drawn (the database said so) and publishes it, in the background, once
    /// per instance. A publication that fails is not retried: other instances learn it from their own next
    /// batch, which the database answers exactly.
    pub(crate) fn learnt(&self, campaign_id: i64) {
        let first = !matches!(self.lock().insert(campaign_id, Known::AllDrawn), Some(Known::AllDrawn));
        let Some(redis) = self.redis.clone().filter(|_| first) else { return };
        let key = self.key(campaign_id);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let mut connection = redis.connection();
            let set = async move { connection.set::<_, _, ()>(key, ALL_DRAWN_VALUE).await };
            if let Err(error) = redis.bounded("lottery all-drawn flag", set).await {
                tracing::warn!(%error, campaign_id, "could not publish that the campaign is all drawn");
            }
        });
    }
}
