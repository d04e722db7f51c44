//! The seckill's lanes: concurrent seckills for one item merged into one transaction, on the shared
//! group-commit lanes ([`crate::group_commit`]).
//!
//! A batch of one uses `execute_seckill_detailed`, a larger one `execute_seckill_batch`; both decide under the
//! item's row lock with the same order of precedence, so they agree with each other and with classic SQL
//! callers. An item seen sold out or ended is answered without a batch for `recheck_interval`, and only ever
//! refused to buyers who did not buy: a winner hears "repeat", as the database would say, from this instance's
//! memory of the item's winners, complete once checked against the database, or else from a point read of
//! their row ([`super::recorded`]). Stock added through the toolkit reopens the lane at once.
//!
//! With Redis ([`super::Seckill::with_redis`]), the item's closed state is shared ([`super::closed`]): a
//! batch that learns an item sold out or ended publishes it, and before its lanes every execution checks this
//! instance's memory and then, at most every 100 ms per item, Redis, answering closed without the database
//! when the key says so. Any Redis failure falls back to the lanes and the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::closed::ItemState;
use super::execute_seckill::execute_seckill;
use super::execute_seckill_batch::execute_seckill_batch;
use super::outcome::Outcome;
use super::phone::Phone;
use super::recorded::Winners;
use crate::database::ReadWriteSplit;
use crate::database::gtid::WithGtid;
use crate::group_commit::{BatchRunner, Committing, Decided, GroupCommit, GroupCommitConfig, OutcomeFuture};
use crate::prometheus::names::SHORT_CIRCUITS;
use crate::shared_state::closed::ClosedState;

/// How the lanes batch and short-circuit.
#[derive(Debug, Clone, Copy)]
pub struct LaneConfig {
    /// Merge concurrent requests for one item (default). Off: one procedure call per request.
    pub batching: bool,
    /// The most requests one batch decides (default 256).
    pub max_batch: usize,
    /// How long an item seen sold out or ended is answered in-process before the database is asked again
    /// (default 1 s).
    pub recheck_interval: Duration,
    /// How long an idle item's lane is kept in memory (default 60 s).
    pub lane_idle_ttl: Duration,
}

impl Default for LaneConfig {
    fn default() -> Self {
        let lanes = GroupCommitConfig::default();
        LaneConfig {
            batching: true,
            max_batch: lanes.max_batch,
            recheck_interval: lanes.recheck_interval,
            lane_idle_ttl: lanes.idle_ttl,
        }
    }
}

/// Counters of what the lanes did, for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneStats {
    /// Requests received.
    pub requests: u64,
    /// Procedure calls made (one round trip each).
    pub database_calls: u64,
    /// Requests answered by the lanes' memory because the item was known sold out or ended.
    pub short_circuited: u64,
    /// Requests answered closed from the shared closed state (this instance's memory of it, or Redis), before
    /// the lanes.
    pub closed_answers: u64,
    /// The largest batch so far.
    pub largest_batch: u64,
    /// Item lanes held in memory now.
    pub lanes_held: usize,
}

/// Decides one item's batches in the database; every outcome carries its batch's commit GTID.
pub(crate) struct SeckillBatches {
    /// Batches go to its primary, which it is told the commit of.
    database: ReadWriteSplit,
    /// The shared closed state, told what batches learn.
    state: Option<Arc<ClosedState<ItemState>>>,
    /// Who bought, for the answers of closed items.
    winners: Winners,
}

impl SeckillBatches {
    /// Decides one batch (one request: the single procedure) and tells the shared state what it learnt.
    async fn decide(&self, seckill_id: i64, phones: &[Phone], committing: Committing) -> Decided<WithGtid<Outcome>> {
        // Read before the database observes anything: a reopening after this makes the fact unpublishable.
        let generation = self.state.as_ref().map(|state| state.generation(seckill_id));
        let pool = self.database.primary();
        let decided = match phones {
            [phone] => execute_seckill(pool, seckill_id, *phone).await,
            _ => execute_seckill_batch(pool, seckill_id, phones, committing).await,
        };
        // One transaction, one commit: every outcome carries the same GTID.
        self.database.committed(decided.outcomes.first().and_then(|decided| decided.gtid));
        if let (Some(state), Some(generation)) = (&self.state, generation)
            && let Some(closed) = decided.closed.as_ref().and_then(|closed| ItemState::of(&closed.outcome))
        {
            state.learnt(seckill_id, closed, generation);
        }
        decided
    }
}

impl BatchRunner for SeckillBatches {
    const DOMAIN: &'static str = "seckill";
    type Key = i64;
    type Request = Phone;
    type Outcome = WithGtid<Outcome>;

    async fn run(&self, seckill_id: i64, phones: Vec<Phone>, committing: Committing) -> Decided<WithGtid<Outcome>> {
        self.decide(seckill_id, &phones, committing).await
    }

    fn lost(&self) -> WithGtid<Outcome> {
        WithGtid::without_gtid(Outcome::in_doubt("the seckill's batch ended without an answer; it may have committed"))
    }

    fn not_sent(&self) -> WithGtid<Outcome> {
        WithGtid::without_gtid(Outcome::inner_error(
            "the lanes stopped before sending this seckill; nothing was written",
        ))
    }

    async fn learnt(&self, seckill_id: i64, phones: &[Phone], decided: &Decided<WithGtid<Outcome>>) {
        self.winners.learn(seckill_id, phones, decided).await;
    }

    fn closed_answer(&self, seckill_id: i64, phone: &Phone, closed: &WithGtid<Outcome>) -> Option<WithGtid<Outcome>> {
        self.winners.answer(seckill_id, *phone, closed)
    }

    async fn recorded(&self, seckill_id: i64, phone: Phone) -> Result<Option<WithGtid<Outcome>>, String> {
        self.winners.recorded(seckill_id, phone).await
    }
}

/// Decides seckills through per-item lanes. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Lanes {
    lanes: GroupCommit<SeckillBatches>,
    batching: bool,
    direct_calls: Arc<AtomicU64>,
    closed_answers: Arc<AtomicU64>,
}

impl Lanes {
    pub(crate) fn new(
        database: ReadWriteSplit,
        config: LaneConfig,
        state: Option<Arc<ClosedState<ItemState>>>,
    ) -> Self {
        let lanes = GroupCommitConfig {
            max_batch: config.max_batch,
            recheck_interval: config.recheck_interval,
            idle_ttl: config.lane_idle_ttl,
            ..GroupCommitConfig::default()
        };
        Lanes {
            lanes: GroupCommit::new(
                SeckillBatches { winners: Winners::new(database.primary().clone()), database, state },
                lanes,
            ),
            batching: config.batching,
            direct_calls: Default::default(),
            closed_answers: Default::default(),
        }
    }

    fn answered_closed(&self) {
        self.closed_answers.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(SHORT_CIRCUITS, "domain" => SeckillBatches::DOMAIN, "source" => "shared_state").increment(1);
    }

    fn state(&self) -> Option<&Arc<ClosedState<ItemState>>> {
        self.lanes.runner().state.as_ref()
    }

    /// Runs the seckill, with its commit's GTID: answered closed from the shared state when it says so (memory, then Redis at most
    /// every 100 ms), else through the lanes.
    pub(crate) async fn execute(&self, seckill_id: i64, phone: Phone) -> WithGtid<Outcome> {
        if let Some(state) = self.state() {
            let generation = state.generation(seckill_id);
            let closed = state.closed(seckill_id).await;
            if state.generation(seckill_id) > generation {
                // Another instance reopened the item (stock added): this one's lanes forget it at once too,
                // rather than after their recheck interval.
                self.forget_closed(seckill_id);
            }
            if let Some(closed) = closed {
                self.answered_closed();
                return self.lanes.submit_closed(seckill_id, phone, WithGtid::without_gtid(closed.outcome())).await;
            }
        }
        self.submit_to_lanes(seckill_id, phone).await
    }

    /// Queues the request at once (arrival order is the order of calls) and returns its outcome's future,
    /// consulting only this instance's memory of the shared state. Needs a tokio runtime: it may spawn the
    /// lane's batch task.
    pub(crate) fn submit(&self, seckill_id: i64, phone: Phone) -> OutcomeFuture<WithGtid<Outcome>> {
        if let Some(closed) = self.state().and_then(|state| state.known(seckill_id)) {
            self.answered_closed();
            return self.lanes.submit_closed(seckill_id, phone, WithGtid::without_gtid(closed.outcome()));
        }
        self.submit_to_lanes(seckill_id, phone)
    }

    fn submit_to_lanes(&self, seckill_id: i64, phone: Phone) -> OutcomeFuture<WithGtid<Outcome>> {
        if self.batching {
            return self.lanes.submit(seckill_id, phone);
        }
        let lanes = self.lanes.clone();
        let direct_calls = self.direct_calls.clone();
        Box::pin(async move {
            direct_calls.fetch_add(1, Ordering::Relaxed);
            let decided = lanes.runner().decide(seckill_id, &[phone], Committing::unobserved()).await;
            decided
                .outcomes
                .into_iter()
                .next()
                .unwrap_or_else(|| WithGtid::without_gtid(Outcome::in_doubt("no outcome")))
        })
    }

    /// Forgets that an item was closed, here and in the shared state, because stock was just added.
    pub(crate) async fn reopen(&self, seckill_id: i64) {
        self.forget_closed(seckill_id);
        if let Some(state) = self.state() {
            state.reopen(seckill_id).await;
        }
    }

    /// Forgets in this instance that an item was closed: it may sell again.
    fn forget_closed(&self, seckill_id: i64) {
        self.lanes.reopen(seckill_id);
        self.lanes.runner().winners.reopened(seckill_id);
    }

    /// The Redis key of an item's shared closed state, when it is shared.
    pub(crate) fn state_key(&self, seckill_id: i64) -> Option<String> {
        self.state().map(|state| state.state_key(seckill_id))
    }

    pub(crate) fn stats(&self) -> LaneStats {
        let lanes = self.lanes.stats();
        let direct = self.direct_calls.load(Ordering::Relaxed);
        let closed_answers = self.closed_answers.load(Ordering::Relaxed);
        LaneStats {
            requests: lanes.requests + direct + closed_answers,
            database_calls: lanes.batches + direct,
            short_circuited: lanes.short_circuited,
            closed_answers,
            largest_batch: lanes.largest_batch.max(u64::from(direct > 0)),
            lanes_held: self.lanes.lanes_held(),
        }
    }
}
