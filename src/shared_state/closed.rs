//! Closed state shared through Redis: facts such as "sold out", "ended" or "all drawn" that one instance learns
//! from its database and every other instance (and a load balancer in front of them) uses to turn requests
//! away without reaching a database. One piece of machinery for every domain: the seckill's items
//! ([`crate::seckill::ItemState`]) and the lottery's campaigns ([`crate::lottery::closed`]).
//!
//! # The keys
//!
//! ```text
//! {prefix}{id}:state        the fact's value: sold_out | ended (prefix seckill:item:), all_drawn (seckill:lottery:)
//! {prefix}{id}:generation   reopenable facts only: how many times the id was reopened (INCR), an integer
//! ```
//!
//! Values are plain strings with no expiry. Any other value of `:state`, or no key, means "ask the app": a
//! balancer that reads the key answers only the values it knows, and one that cannot reach Redis passes the
//! request on. `:generation` is for instances only; balancers never read it.
//!
//! # Two kinds of facts
//!
//! - **Monotone** ([`Reopening::Never`]): once true, true for good (a campaign's prizes are fixed at creation,
//!   so "all drawn" never turns back). An instance remembers such a fact for good, and publishes it with a plain
//!   `SET`.
//! - **Reopenable** ([`Reopening::ByGeneration`]): true until someone reopens the id (stock added to a sold-out
//!   item). An instance trusts what it knows for [`RECHECK_INTERVAL`] and then asks Redis again, so a reopening
//!   by another instance is seen within that. Reopening ([`ClosedState::reopen`]) deletes `:state` and
//!   increments `:generation` in one transaction; publishing is a script that sets `:state` only if
//!   `:generation` is still the one the instance had read *before* its database observed the fact. So a fact
//!   observed before a reopening can never be published after it, however late it arrives (a slow task, a
//!   republication after an outage): the reopening wins, and the next batch learns the truth again.
//!
//! # In an instance
//!
//! Before its lanes, every request asks [`ClosedState::closed`]: memory first, then Redis at most once per
//! [`RECHECK_INTERVAL`] per id (one request looks, the others meanwhile use what was known). A batch whose
//! answer shows the id closed calls [`ClosedState::learnt`], which remembers it and publishes it in the
//! background.
//!
//! # Republished on return
//!
//! A fact this instance learnt and could not publish (Redis down) is published again once Redis answers: a
//! background task, started on first use and ending with the state, makes a pass every
//! [`REPUBLISH_INTERVAL`] over what is still unpublished, at most [`REPUBLISH_PER_PASS`] commands a pass. After
//! any Redis failure (which may have been a restart, and a restarted Redis is empty) every fact this instance
//! learnt is asserted again the same way; while it holds published facts, the pass sends one `PING` so that a
//! restart is noticed even when no request uses Redis. Reopenable facts are held for republication for
//! [`OWNED_FOR`] after their batch (traffic refreshes them), monotone ones for good. Reopenings that could not
//! reach Redis are retried the same way, before anything else.
//!
//! # Failing open
//!
//! Redis is only ever an accelerator in front of the database, which stays the source of truth. Every command
//! is bounded ([`crate::shared_state::bounded_redis::REDIS_TIMEOUT`]); any error, timeout or unknown value means "ask the
//! database". A wrong closed state can come only from a hand edit: stock added by SQL behind the toolkit's
//! back must also `INCR` the id's `:generation` and `DEL` its `:state` (or go through the toolkit, which does
//! both). A balancer that caches the key for ~100 ms may refuse for that long after a reopening.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use crate::shared_state::bounded_redis::{BoundedRedis, RedisFault};

/// How long an instance trusts what it knows of a reopenable id (closed or not), and a monotone id not known
/// closed, before it asks Redis again.
pub const RECHECK_INTERVAL: Duration = Duration::from_millis(100);

/// How often the background task republishes what could not be published, and checks that Redis still holds
/// what was.
pub const REPUBLISH_INTERVAL: Duration = Duration::from_millis(500);

/// The most publications and reopenings one republishing pass sends.
pub const REPUBLISH_PER_PASS: usize = 100;

/// How long after its batch a reopenable fact is held for republication. Past that, a fact lost with a
/// restarted Redis is learnt again by the next batch of the id, which traffic brings within the lanes'
/// recheck interval.
pub const OWNED_FOR: Duration = Duration::from_secs(60);

/// The most ids whose last lookup is remembered, and the most facts held for republication: ids not known
/// closed (bogus ones included) are forgotten beyond it, so a flood of unknown ids cannot grow memory.
const REMEMBERED: usize = 10_000;

/// A closed fact of one domain, with its value in Redis.
pub trait ClosedFact: Copy + Eq + Send + Sync + std::fmt::Debug + 'static {
    /// The value of the `:state` key for this fact.
    fn value(self) -> &'static str;

    /// The fact a `:state` value names, or `None` for any other value ("ask the app").
    fn parse(value: &str) -> Option<Self>;
}

/// Whether a closed fact can be undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopening {
    /// Closed for good: remembered for good, published with a plain `SET`.
    Never,
    /// Undone by [`ClosedState::reopen`]: trusted for [`RECHECK_INTERVAL`], published only under the
    /// generation read before the database observed it.
    ByGeneration,
}

/// How many times an id was reopened, as `:generation` counts it: 0 while the key does not exist.
pub type Generation = u64;

/// Sets `:state` only if `:generation` is still the one the fact was observed under. Sent with `EVAL`:
/// publications are rare (one per batch that closes an id), so caching the script buys nothing.
const PUBLISH_UNDER_GENERATION: &str = r"
-- KEYS[1] the id's :state, KEYS[2] its :generation; ARGV[1] the fact's value, ARGV[2] the generation read
-- before the database observed the fact. A reopening since then means the fact may be stale.
local current = tonumber(redis.call('GET', KEYS[2])) or 0
if current ~= tonumber(ARGV[2]) then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
";

/// What requests are answered from: the state as last seen, and when.
#[derive(Debug, Clone, Copy)]
struct Seen<F> {
    closed: Option<F>,
    at: Instant,
    generation: Generation,
    /// Changes with every write, so that a lookup that finishes after a newer write leaves it alone.
    token: u64,
}

/// A fact this instance learnt from its database: what it publishes, and publishes again after an outage.
#[derive(Debug, Clone, Copy)]
struct Owned<F> {
    fact: F,
    generation: Generation,
    published: bool,
    learnt: Instant,
}

#[derive(Debug)]
struct Memory<F> {
    seen: HashMap<i64, Seen<F>>,
    owned: HashMap<i64, Owned<F>>,
    /// Reopenings not yet in Redis.
    reopens: HashSet<i64>,
    next_token: u64,
    /// [`BoundedRedis::failures`] at the last republishing pass.
    failures_seen: u64,
}

impl<F> Memory<F> {
    fn token(&mut self) -> u64 {
        self.next_token = self.next_token.wrapping_add(1);
        self.next_token
    }
}

/// The closed facts of one domain in one instance, and its link to the shared ones in Redis. Share one per
/// domain and instance (it is always held in an [`Arc`]).
#[derive(Debug)]
pub struct ClosedState<F: ClosedFact> {
    redis: Option<BoundedRedis>,
    prefix: String,
    reopening: Reopening,
    /// Who uses it, in Redis warnings.
    user: &'static str,
    memory: Mutex<Memory<F>>,
    republisher_started: AtomicBool,
}

impl<F: ClosedFact> ClosedState<F> {
    /// The closed state of ids under `prefix` (keys `{prefix}{id}:state`), shared through `redis` when given;
    /// `user` names the domain in Redis warnings.
    pub fn new(
        redis: Option<BoundedRedis>,
        prefix: impl Into<String>,
        reopening: Reopening,
        user: &'static str,
    ) -> Arc<Self> {
        let failures_seen = redis.as_ref().map_or(0, BoundedRedis::failures);
        let memory = Memory {
            seen: HashMap::new(),
            owned: HashMap::new(),
            reopens: HashSet::new(),
            next_token: 0,
            failures_seen,
        };
        Arc::new(ClosedState {
            redis,
            prefix: prefix.into(),
            reopening,
            user,
            memory: Mutex::new(memory),
            republisher_started: AtomicBool::new(false),
        })
    }

    /// The Redis key of an id's closed state.
    pub fn state_key(&self, id: i64) -> String {
        format!("{}{id}:state", self.prefix)
    }

    /// The Redis key of an id's generation (reopenable facts).
    pub fn generation_key(&self, id: i64) -> String {
        format!("{}{id}:generation", self.prefix)
    }

    fn lock(&self) -> MutexGuard<'_, Memory<F>> {
        // Nothing that can panic runs under this lock; a poisoned map is consistent.
        self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What this instance knows without asking anyone: a monotone fact for good, a reopenable one for
    /// [`RECHECK_INTERVAL`] after it was learnt or seen.
    pub fn known(&self, id: i64) -> Option<F> {
        let memory = self.lock();
        let seen = memory.seen.get(&id)?;
        match self.reopening {
            Reopening::Never => seen.closed,
            Reopening::ByGeneration => seen.closed.filter(|_| seen.at.elapsed() < RECHECK_INTERVAL),
        }
    }

    /// The generation last seen for `id` (0 when none was): read it before a batch asks the database, and pass
    /// it to [`Self::learnt`] with what the batch learnt.
    pub fn generation(&self, id: i64) -> Generation {
        self.lock().seen.get(&id).map_or(0, |seen| seen.generation)
    }

    /// The id's closed fact as known here or, looked up at most once per [`RECHECK_INTERVAL`], in Redis.
    /// `None` whenever it is not known closed (Redis failing included): the database decides.
    pub async fn closed(self: &Arc<Self>, id: i64) -> Option<F> {
        let Some(redis) = &self.redis else { return self.known(id) };
        let now = Instant::now();
        if self.lock().reopens.contains(&id) {
            // Reopened here and not yet in Redis, whose state is stale: land the reopening instead of reading
            // it, and let the database decide.
            self.land_reopen(redis, id).await;
            return None;
        }
        let token = {
            let mut memory = self.lock();
            let seen = memory.seen.get(&id).copied();
            match seen {
                Some(Seen { closed: Some(fact), .. }) if self.reopening == Reopening::Never => return Some(fact),
                Some(seen) if now.saturating_duration_since(seen.at) < RECHECK_INTERVAL => return seen.closed,
                _ => {}
            }
            if memory.seen.len() >= REMEMBERED {
                memory.seen.retain(|_, seen| seen.closed.is_some());
            }
            // This request looks; the others in the meantime answer from what was known.
            let token = memory.token();
            let (closed, generation) = seen.map_or((None, 0), |seen| (seen.closed, seen.generation));
            memory.seen.insert(id, Seen { closed, at: now, generation, token });
            token
        };
        let looked = self.lookup(redis, id).await;
        let mut memory = self.lock();
        let ours = memory.seen.get(&id).filter(|seen| seen.token == token).copied();
        match (looked, ours) {
            (Ok((closed, generation)), Some(seen)) => {
                // A monotone fact known here stays known, whatever Redis lost.
                let closed = match self.reopening {
                    Reopening::Never => closed.or(seen.closed),
                    Reopening::ByGeneration => closed,
                };
                memory.seen.insert(id, Seen { closed, at: now, generation, token });
                closed
            }
            (Err(_), Some(seen)) if self.reopening == Reopening::ByGeneration => {
                // Fail open: until the next lookup the lanes decide (their memory answers a closed item).
                memory.seen.insert(id, Seen { closed: None, ..seen });
                None
            }
            // Redis failed on a monotone id, or something newer was written meanwhile: what is known now.
            (_, _) => memory.seen.get(&id).and_then(|seen| seen.closed),
        }
    }

    /// Reads `:state` and `:generation` in one command.
    async fn lookup(&self, redis: &BoundedRedis, id: i64) -> Result<(Option<F>, Generation), RedisFault> {
        let mut connection = redis.connection();
        let keys = [self.state_key(id), self.generation_key(id)];
        let (value, generation): (Option<String>, Option<String>) =
            redis.bounded(self.user, async move { connection.mget(&keys).await }).await?;
        let generation = generation.and_then(|generation| generation.trim().parse().ok()).unwrap_or(0);
        Ok((value.as_deref().and_then(F::parse), generation))
    }

    /// Remembers that the database showed `id` closed as `fact`, in a batch that started after this instance
    /// had seen `generation` ([`Self::generation`]), and publishes it in the background: a monotone fact once
    /// per instance, a reopenable one every time a batch learns it.
    pub fn learnt(self: &Arc<Self>, id: i64, fact: F, generation: Generation) {
        let now = Instant::now();
        let publish = {
            let mut memory = self.lock();
            let token = memory.token();
            let seen_generation = memory.seen.get(&id).map_or(generation, |seen| seen.generation);
            memory.seen.insert(id, Seen { closed: Some(fact), at: now, generation: seen_generation, token });
            let again = self.reopening == Reopening::Never && memory.owned.get(&id).is_some_and(|o| o.fact == fact);
            if !again && (memory.owned.len() < REMEMBERED || memory.owned.contains_key(&id)) {
                memory.owned.insert(id, Owned { fact, generation, published: false, learnt: now });
            }
            !again
        };
        let Some(redis) = self.redis.clone().filter(|_| publish) else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        self.start_republisher(&runtime);
        let state = self.clone();
        runtime.spawn(async move {
            // A failure is logged by `bounded`; the republishing pass sends it again.
            let _ = state.publish(&redis, id, fact, generation).await;
        });
    }

    /// Publishes one fact; says whether it is now in Redis (`false`: the id was reopened since its batch
    /// began, so the fact is dropped as possibly stale).
    async fn publish(
        &self,
        redis: &BoundedRedis,
        id: i64,
        fact: F,
        generation: Generation,
    ) -> Result<bool, RedisFault> {
        let mut connection = redis.connection();
        let state_key = self.state_key(id);
        let published = match self.reopening {
            Reopening::Never => {
                let set = async move { connection.set::<_, _, ()>(state_key, fact.value()).await };
                redis.bounded(self.user, set).await.map(|()| true)
            }
            Reopening::ByGeneration => {
                let generation_key = self.generation_key(id);
                let mut eval = redis::cmd("EVAL");
                eval.arg(PUBLISH_UNDER_GENERATION).arg(2).arg(state_key).arg(generation_key);
                eval.arg(fact.value()).arg(generation);
                let script = async move { eval.query_async::<i64>(&mut connection).await };
                redis.bounded(self.user, script).await.map(|set| set == 1)
            }
        };
        let mut memory = self.lock();
        let ours = memory.owned.get(&id).is_some_and(|owned| owned.fact == fact && owned.generation == generation);
        match published {
            Ok(true) if ours => {
                if let Some(owned) = memory.owned.get_mut(&id) {
                    owned.published = true;
                }
            }
            Ok(false) => {
                if ours {
                    memory.owned.remove(&id);
                }
                // Not trusted from memory either: the lanes, and so the database, decide.
                if let Some(seen) = memory.seen.get_mut(&id).filter(|seen| seen.closed == Some(fact)) {
                    seen.closed = None;
                }
            }
            _ => {}
        }
        published
    }

    /// Reopens `id` (the database has just been changed so that it is open again): forgets the fact here at
    /// once and, in Redis, deletes `:state` and increments `:generation` in one transaction, so that no fact
    /// observed before can be published after. If Redis cannot be reached now, the reopening is retried in the
    /// background until it lands, and meanwhile this instance does not trust Redis's state of the id.
    pub async fn reopen(self: &Arc<Self>, id: i64) {
        {
            let mut memory = self.lock();
            memory.owned.remove(&id);
            let token = memory.token();
            let generation = memory.seen.get(&id).map_or(0, |seen| seen.generation);
            memory.seen.insert(id, Seen { closed: None, at: Instant::now(), generation, token });
            if self.redis.is_some() {
                memory.reopens.insert(id);
            }
        }
        let Some(redis) = &self.redis else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.start_republisher(&runtime);
        }
        self.land_reopen(redis, id).await;
    }

    /// Sends one pending reopening; says whether it landed.
    async fn land_reopen(&self, redis: &BoundedRedis, id: i64) -> bool {
        let mut connection = redis.connection();
        let (state_key, generation_key) = (self.state_key(id), self.generation_key(id));
        let transaction = async move {
            let (generation,): (Generation,) = redis::pipe()
                .atomic()
                .incr(&generation_key, 1)
                .del(&state_key)
                .ignore()
                .query_async(&mut connection)
                .await?;
            Ok(generation)
        };
        let Ok(generation) = redis.bounded(self.user, transaction).await else { return false };
        let mut memory = self.lock();
        memory.reopens.remove(&id);
        if let Some(seen) = memory.seen.get_mut(&id) {
            seen.generation = seen.generation.max(generation);
        }
        true
    }

    /// Starts the republishing task once, on `runtime`. It holds the state weakly and ends with it.
    fn start_republisher(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        if self.redis.is_none() || self.republisher_started.swap(true, Ordering::Relaxed) {
            return;
        }
        let state = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(REPUBLISH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(state) = state.upgrade() else { return };
                state.republish_pass().await;
            }
        });
    }

    /// One pass: pending reopenings, then facts not (or no longer surely) in Redis, at most
    /// [`REPUBLISH_PER_PASS`] commands, stopping at the first failure.
    async fn republish_pass(&self) {
        let Some(redis) = &self.redis else { return };
        if redis.backing_off() {
            return;
        }
        let (reopens, facts, holding) = {
            let mut memory = self.lock();
            let now = Instant::now();
            if self.reopening == Reopening::ByGeneration {
                memory.owned.retain(|_, owned| now.saturating_duration_since(owned.learnt) < OWNED_FOR);
            }
            let failures = redis.failures();
            if failures != memory.failures_seen {
                // Redis failed since the last pass and may have restarted empty: assert every fact again.
                memory.failures_seen = failures;
                for owned in memory.owned.values_mut() {
                    owned.published = false;
                }
            }
            let reopens: Vec<i64> = memory.reopens.iter().take(REPUBLISH_PER_PASS).copied().collect();
            let facts: Vec<(i64, F, Generation)> = memory
                .owned
                .iter()
                .filter(|(_, owned)| !owned.published)
                .take(REPUBLISH_PER_PASS - reopens.len())
                .map(|(id, owned)| (*id, owned.fact, owned.generation))
                .collect();
            (reopens, facts, !memory.owned.is_empty())
        };
        if reopens.is_empty() && facts.is_empty() {
            if holding {
                // Notices a restart (a broken connection) even when no request uses Redis; the next pass
                // then asserts every fact again.
                let mut connection = redis.connection();
                let ping = async move { redis::cmd("PING").query_async::<()>(&mut connection).await };
                let _ = redis.bounded(self.user, ping).await;
            }
            return;
        }
        for id in reopens {
            if !self.land_reopen(redis, id).await {
                return;
            }
        }
        for (id, fact, generation) in facts {
            if self.publish(redis, id, fact, generation).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Done;

    impl ClosedFact for Done {
        fn value(self) -> &'static str {
            "done"
        }

        fn parse(value: &str) -> Option<Self> {
            (value == "done").then_some(Done)
        }
    }

    #[tokio::test]
    async fn without_redis_a_monotone_fact_is_kept_and_a_reopenable_one_expires() {
        let monotone = ClosedState::<Done>::new(None, "t:", Reopening::Never, "test");
        let reopenable = ClosedState::<Done>::new(None, "t:", Reopening::ByGeneration, "test");
        for state in [&monotone, &reopenable] {
            assert_eq!(state.closed(1).await, None);
            state.learnt(1, Done, 0);
            assert_eq!(state.closed(1).await, Some(Done));
            assert_eq!(state.closed(2).await, None);
        }
        tokio::time::sleep(RECHECK_INTERVAL + Duration::from_millis(20)).await;
        assert_eq!(monotone.closed(1).await, Some(Done), "for good");
        assert_eq!(reopenable.closed(1).await, None, "trusted for the recheck interval only");
        reopenable.learnt(1, Done, 0);
        reopenable.reopen(1).await;
        assert_eq!(reopenable.closed(1).await, None, "reopened at once");
        assert_eq!(monotone.state_key(7), "t:7:state");
        assert_eq!(monotone.generation_key(7), "t:7:generation");
    }
}
