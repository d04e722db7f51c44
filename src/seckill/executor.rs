//! The group-commit executor: concurrent seckills for one item merged into one transaction.
//!
//! Each item has a lane. A request joins its item's queue; if no batch is in flight for that item, a task
//! starts one at once (a lone request is never held back to wait for company). While a batch is in flight, new
//! requests queue up; when it returns, the next batch takes everything queued, up to `max_batch`. So batches
//! grow exactly as fast as the database is slow, and one item never has more than one transaction in flight
//! from this process: a flood cannot open unbounded connections or pile up lock waits on the hot row. Items are
//! independent: each lane has its own batches, bounded together only by the pool.
//!
//! The lane also remembers an item it saw sold out or ended, and answers later requests in-process for
//! `recheck_interval`; after that one request goes to the database again, so stock added behind the toolkit's
//! back is noticed within the interval. Stock added through the toolkit reopens the lane at once.
//!
//! A batch of one uses `execute_seckill` (via `execute_seckill_detailed`), a larger one `execute_seckill_batch`;
//! both decide under the same row lock, so they agree with each other and with classic SQL callers.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mysql_async::Pool;
use tokio::sync::oneshot;

use super::execute_seckill::execute_seckill;
use super::execute_seckill_batch::{BatchResult, execute_seckill_batch};
use super::outcome::Outcome;
use super::phone::Phone;

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
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig { batching: true, max_batch: 256, recheck_interval: Duration::from_secs(1) }
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
}

/// The future of one request's outcome.
pub(crate) type OutcomeFuture = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

struct Request {
    phone: Phone,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Lane {
    queue: Vec<Request>,
    in_flight: bool,
    /// The answer for everyone while the item is known closed, and when that was learnt.
    closed: Option<(Outcome, Instant)>,
    /// Buyers this lane saw win, so that a winner asking again after sell-out hears "repeat" from memory too.
    /// Capped at [`WINNERS_REMEMBERED`]; past that (or for wins through other processes) a retry after sell-out
    /// hears "sold out", which is also classic code 0's meaning.
    winners: HashSet<Phone>,
}

/// The most winners a lane remembers (some tens of MiB at most).
const WINNERS_REMEMBERED: usize = 1_000_000;

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    database_calls: AtomicU64,
    short_circuited: AtomicU64,
    largest_batch: AtomicU64,
}

/// Decides seckills through per-item lanes. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: ExecutorConfig,
    /// One lock for all lanes: every critical section is a few pointer moves, far shorter than a batch.
    lanes: Mutex<HashMap<i64, Lane>>,
    counters: Counters,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Executor {
    pub(crate) fn new(pool: Pool, config: ExecutorConfig) -> Self {
        let config = ExecutorConfig { max_batch: config.max_batch.max(1), ..config };
        Executor { inner: Arc::new(Inner { pool, config, lanes: Mutex::default(), counters: Counters::default() }) }
    }

    /// Queues the request at once (arrival order is the order of calls) and returns its outcome's future.
    /// Needs a tokio runtime: it may spawn the lane's batch task.
    pub(crate) fn submit(&self, seckill_id: i64, phone: Phone) -> OutcomeFuture {
        let counters = &self.inner.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if !self.inner.config.batching {
            let executor = self.clone();
            return Box::pin(async move {
                executor.inner.counters.database_calls.fetch_add(1, Ordering::Relaxed);
                execute_seckill(&executor.inner.pool, seckill_id, phone).await
            });
        }
        let mut lanes = self.lanes();
        let lane = lanes.entry(seckill_id).or_default();
        if let Some((outcome, since)) = &lane.closed {
            if since.elapsed() < self.inner.config.recheck_interval {
                counters.short_circuited.fetch_add(1, Ordering::Relaxed);
                let outcome = if lane.winners.contains(&phone) { Outcome::RepeatKill } else { outcome.clone() };
                return Box::pin(std::future::ready(outcome));
            }
            lane.closed = None;
        }
        let (reply, answer) = oneshot::channel();
        lane.queue.push(Request { phone, reply });
        if !lane.in_flight {
            lane.in_flight = true;
            tokio::spawn(self.clone().drive(seckill_id));
        }
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| Outcome::inner_error("the executor stopped before deciding this request"))
        })
    }

    /// Forgets that an item was closed, e.g. because stock was just added.
    pub(crate) fn reopen(&self, seckill_id: i64) {
        if let Some(lane) = self.lanes().get_mut(&seckill_id) {
            lane.closed = None;
        }
    }

    pub(crate) fn stats(&self) -> ExecutorStats {
        let c = &self.inner.counters;
        ExecutorStats {
            requests: c.requests.load(Ordering::Relaxed),
            database_calls: c.database_calls.load(Ordering::Relaxed),
            short_circuited: c.short_circuited.load(Ordering::Relaxed),
            largest_batch: c.largest_batch.load(Ordering::Relaxed),
        }
    }

    fn lanes(&self) -> MutexGuard<'_, HashMap<i64, Lane>> {
        // A panic while holding this lock cannot leave a lane half-updated in a way that matters more than
        // stopping all sales would, so a poisoned lock is used as it is.
        self.inner.lanes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The lane's batch loop: runs while requests keep arriving, then ends; the next request starts another.
    async fn drive(self, seckill_id: i64) {
        loop {
            let batch: Vec<Request> = {
                let mut lanes = self.lanes();
                let Some(lane) = lanes.get_mut(&seckill_id) else { return };
                if lane.queue.is_empty() {
                    lane.in_flight = false;
                    if lane.closed.is_none() && lane.winners.is_empty() {
                        // Forget idle lanes that know nothing, so ids that never existed do not accumulate.
                        lanes.remove(&seckill_id);
                    }
                    return;
                }
                let take = lane.queue.len().min(self.inner.config.max_batch);
                lane.queue.drain(..take).collect()
            };
            let result = self.run(seckill_id, &batch).await;
            self.learn(seckill_id, &result);
            for (request, outcome) in batch.into_iter().zip(result.outcomes) {
                // A caller that stopped waiting (say, a closed HTTP connection) just misses its answer.
                let _ = request.reply.send(outcome);
            }
        }
    }

    async fn run(&self, seckill_id: i64, batch: &[Request]) -> BatchResult {
        let counters = &self.inner.counters;
        counters.database_calls.fetch_add(1, Ordering::Relaxed);
        counters.largest_batch.fetch_max(batch.len() as u64, Ordering::Relaxed);
        if let [single] = batch {
            let outcome = execute_seckill(&self.inner.pool, seckill_id, single.phone).await;
            let stock_left = (outcome == Outcome::SoldOut).then_some(0);
            return BatchResult { outcomes: vec![outcome], stock_left };
        }
        let phones: Vec<Phone> = batch.iter().map(|r| r.phone).collect();
        execute_seckill_batch(&self.inner.pool, seckill_id, &phones).await
    }

    /// Remembers the batch's winners, and an item that is sold out or over, so the next requests need not ask
    /// the database.
    fn learn(&self, seckill_id: i64, result: &BatchResult) {
        let mut lanes = self.lanes();
        let Some(lane) = lanes.get_mut(&seckill_id) else { return };
        for outcome in &result.outcomes {
            if let Outcome::Success(kill) = outcome
                && lane.winners.len() < WINNERS_REMEMBERED
            {
                lane.winners.insert(kill.user_phone);
            }
        }
        let closed = if result.outcomes.contains(&Outcome::Ended) {
            Some(Outcome::Ended)
        } else if result.stock_left == Some(0) {
            Some(Outcome::SoldOut)
        } else {
            None
        };
        if let Some(outcome) = closed {
            lane.closed = Some((outcome, Instant::now()));
        }
    }
}
