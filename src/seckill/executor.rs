//! The seckill executor: concurrent seckills for one item merged into one transaction, on the shared
//! group-commit lanes ([`crate::group_commit`]).
//!
//! A batch of one uses `execute_seckill_detailed`, a larger one `execute_seckill_batch`; both decide under the
//! item's row lock with the same order of precedence, so they agree with each other and with classic SQL
//! callers. An item seen sold out or ended is answered in-process for `recheck_interval`; a buyer this process
//! saw win hears "repeat" from memory, everyone else the closed answer ("sold out", "ended": true of the item,
//! though a buyer who won through another process or long ago would hear "repeat" from the database). Stock
//! added through the toolkit reopens the lane at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mysql_async::Pool;

use super::execute_seckill::execute_seckill;
use super::execute_seckill_batch::execute_seckill_batch;
use super::outcome::Outcome;
use super::phone::Phone;
use crate::database::gtid::WithGtid;
use crate::group_commit::{BatchRunner, Committing, Decided, GroupCommit, GroupCommitConfig, OutcomeFuture};

/// How the executor batches and short-circuits.
#[derive(Debug, Clone, Copy)]
pub struct ExecutorConfig {
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

impl Default for ExecutorConfig {
    fn default() -> Self {
        let lanes = GroupCommitConfig::default();
        ExecutorConfig {
            batching: true,
            max_batch: lanes.max_batch,
            recheck_interval: lanes.recheck_interval,
            lane_idle_ttl: lanes.idle_ttl,
        }
    }
}

/// Counters of what the executor did, for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutorStats {
    /// Requests received.
    pub requests: u64,
    /// Procedure calls made (one round trip each).
    pub database_calls: u64,
    /// Requests answered in-process because the item was known sold out or ended.
    pub short_circuited: u64,
    /// The largest batch so far.
    pub largest_batch: u64,
    /// Item lanes held in memory now.
    pub lanes_held: usize,
}

/// Decides one item's batches in the database; every outcome carries its batch's commit GTID.
pub(crate) struct SeckillBatches {
    pool: Pool,
}

impl BatchRunner for SeckillBatches {
    type Key = i64;
    type Request = Phone;
    type Outcome = WithGtid<Outcome>;

    async fn run(&self, seckill_id: i64, phones: Vec<Phone>, committing: Committing) -> Decided<WithGtid<Outcome>> {
        match phones.as_slice() {
            [phone] => execute_seckill(&self.pool, seckill_id, *phone).await,
            _ => execute_seckill_batch(&self.pool, seckill_id, &phones, committing).await,
        }
    }

    fn lost(&self) -> WithGtid<Outcome> {
        WithGtid::without_gtid(Outcome::in_doubt("the seckill's batch ended without an answer; it may have committed"))
    }

    fn not_sent(&self) -> WithGtid<Outcome> {
        WithGtid::without_gtid(Outcome::inner_error(
            "the executor stopped before sending this seckill; nothing was written",
        ))
    }

    fn remembered(&self, decided: &WithGtid<Outcome>) -> Option<WithGtid<Outcome>> {
        // The win's commit is where the buyer's row is.
        decided.outcome.is_success().then_some(WithGtid { outcome: Outcome::RepeatKill, gtid: decided.gtid })
    }
}

/// Decides seckills through per-item lanes. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Executor {
    lanes: GroupCommit<SeckillBatches>,
    batching: bool,
    direct_calls: std::sync::Arc<AtomicU64>,
}

impl Executor {
    pub(crate) fn new(pool: Pool, config: ExecutorConfig) -> Self {
        let lanes = GroupCommitConfig {
            max_batch: config.max_batch,
            recheck_interval: config.recheck_interval,
            idle_ttl: config.lane_idle_ttl,
            ..GroupCommitConfig::default()
        };
        Executor {
            lanes: GroupCommit::new(SeckillBatches { pool }, lanes),
            batching: config.batching,
            direct_calls: Default::default(),
        }
    }

    /// Queues the request at once (arrival order is the order of calls) and returns the future of its outcome
    /// with its commit's GTID. Needs a tokio runtime: it may spawn the lane's batch task.
    pub(crate) fn submit(&self, seckill_id: i64, phone: Phone) -> OutcomeFuture<WithGtid<Outcome>> {
        if self.batching {
            return self.lanes.submit(seckill_id, phone);
        }
        let pool = self.lanes.runner().pool.clone();
        let direct_calls = self.direct_calls.clone();
        Box::pin(async move {
            direct_calls.fetch_add(1, Ordering::Relaxed);
            let decided = execute_seckill(&pool, seckill_id, phone).await;
            decided
                .outcomes
                .into_iter()
                .next()
                .unwrap_or_else(|| WithGtid::without_gtid(Outcome::in_doubt("no outcome")))
        })
    }

    /// Forgets that an item was closed, e.g. because stock was just added.
    pub(crate) fn reopen(&self, seckill_id: i64) {
        self.lanes.reopen(seckill_id);
    }

    pub(crate) fn stats(&self) -> ExecutorStats {
        let lanes = self.lanes.stats();
        let direct = self.direct_calls.load(Ordering::Relaxed);
        ExecutorStats {
            requests: lanes.requests + direct,
            database_calls: lanes.batches + direct,
            short_circuited: lanes.short_circuited,
            largest_batch: lanes.largest_batch.max(u64::from(direct > 0)),
            lanes_held: self.lanes.lanes_held(),
        }
    }
}
