//! Group commit for hot rows: concurrent requests for one key (an item, a gift, a campaign) merged into one
//! transaction per batch. Shared by every domain; each supplies a [`BatchRunner`] that decides a batch in the
//! database.
//!
//! Each key has a lane. A request joins its key's queue; if no batch is being decided for that key, a task
//! starts one at once (a lone request is never held back to wait for company). While a batch is being decided,
//! new requests queue up; when it is decided, the next batch takes everything queued, up to `max_batch`. So
//! batches grow exactly as fast as the database is slow, and one key never has more than one transaction
//! deciding from this process: a flood cannot open unbounded connections or pile up lock waits on the hot row.
//!
//! A batch is decided before it is durable: a procedure that announces its decisions before its COMMIT (see
//! [`Committing`]) lets the lane send the key's next batch while the previous commit waits for the disk, so the
//! hot row's lock, released by InnoDB before the log is flushed, is never idle for a flush or a round trip. The
//! next batch is sent only once the previous one is decided, so batches are decided in arrival order; callers
//! are answered only once their own batch's CALL has ended, i.e. after its commit. At most `max_in_flight`
//! batches of a key are deciding or committing at once, and a batch goes early only when it has at least
//! `min_early_batch` requests: on a key that is not hot, a small early batch would cost as much as a large one.
//!
//! A lane also remembers a key the database said is closed (sold out, ended, all drawn) and answers later
//! requests without a batch for `recheck_interval`; after that one request goes to the database again. A closed
//! answer only ever refuses what cannot have an outcome yet: a request that may already have one (a winner
//! asking again, a retried exchange, a user who drew) hears its own outcome. The runner answers from what it
//! knows for certain ([`BatchRunner::closed_answer`]: its memory of who was decided, complete when it has
//! checked it against the database) or else reads the request's record, one point read by its unique key
//! ([`BatchRunner::recorded`]); a read that fails sends the request to the database like any other. Another
//! instance's closed fact (shared through Redis) is answered the same way ([`GroupCommit::submit_closed`]).
//!
//! A runner whose batches compete for nothing (the lottery's blanks) says "decided" as soon as it starts: its
//! lane then runs up to `max_in_flight` batches side by side, in no order.
//!
//! Safe by construction: whatever ends a batch task (an error, a panic, a cancellation at runtime shutdown), a
//! guard answers the callers of that batch with the runner's [`BatchRunner::lost`] answer (in doubt: the batch
//! may have been sent), and the lane goes on with the callers still queued; at shutdown, they are told nothing
//! was sent. Lanes idle for `idle_ttl` are forgotten, so memory is bounded by the keys in recent use; a forgotten
//! closed key is simply re-learnt from the database.

use std::collections::HashMap;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};

use crate::prometheus::names::{BATCH_REQUESTS, SHORT_CIRCUITS};

/// Decides batches of one domain in the database.
pub trait BatchRunner: Send + Sync + 'static {
    /// The domain's name in metrics (`seckill`, `exchange`, `lottery`): see [`crate::prometheus`].
    const DOMAIN: &'static str;

    /// What lanes are per: an item id, a campaign id.
    type Key: Copy + Eq + Hash + Send + Sync + std::fmt::Debug + 'static;
    /// One request: a buyer, a user.
    type Request: Clone + Eq + Hash + Send + Sync + 'static;
    /// What a request comes to.
    type Outcome: Clone + Send + Sync + 'static;

    /// Decides `requests` (in arrival order) for `key`, in one transaction: one outcome per request, in order,
    /// exactly as if they had run one by one. A runner that knows when the batch is decided and only its commit
    /// is outstanding says so through `committing`, which lets the lane send the next batch meanwhile; one that
    /// never does keeps the lane to one batch at a time.
    fn run(
        &self,
        key: Self::Key,
        requests: Vec<Self::Request>,
        committing: Committing,
    ) -> impl Future<Output = Decided<Self::Outcome>> + Send;

    /// The answer for a request whose batch ended without one (a panic or cancellation after it may have been
    /// sent): in doubt.
    fn lost(&self) -> Self::Outcome;

    /// The answer for a request that was never sent (the lane could not run it): nothing was written.
    fn not_sent(&self) -> Self::Outcome;

    /// Learns what a batch decided, before its callers are answered, so that requests of a closed key can be
    /// answered from memory ([`BatchRunner::closed_answer`]); a batch that closed the key is the time to check
    /// that memory against the database. The default learns nothing.
    fn learnt(
        &self,
        _key: Self::Key,
        _requests: &[Self::Request],
        _decided: &Decided<Self::Outcome>,
    ) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// The answer for `request` while its key is closed (`closed` is what the database said closed it), from
    /// what the runner knows for certain: the request's own outcome when it has one, `closed` when it can have
    /// none. `None` when only the database can tell ([`BatchRunner::recorded`]). The default knows nothing.
    fn closed_answer(
        &self,
        _key: Self::Key,
        _request: &Self::Request,
        _closed: &Self::Outcome,
    ) -> Option<Self::Outcome> {
        None
    }

    /// What the database holds for `request` of a closed key, read now (a point read by the request's unique
    /// key): `Some` answer when the request has an outcome (its repeat, or what the database says first to
    /// everyone, such as "ended"), `None` when nothing is recorded for it, so that the closed answer is true of it.
    ///
    /// # Errors
    /// The read failed: the lane then sends the request to the database like any other.
    fn recorded(
        &self,
        key: Self::Key,
        request: Self::Request,
    ) -> impl Future<Output = Result<Option<Self::Outcome>, String>> + Send;
}

/// Tells a lane that a batch is decided and only its commit is outstanding, so the key's next batch may be sent.
///
/// Call [`Committing::decided`] only once the database has taken every decision of the batch (for the
/// toolkit's procedures: once their answer has arrived, which they send before their COMMIT). It changes
/// nothing about what callers hear: they are answered when the batch's call has ended.
#[derive(Debug, Default)]
pub struct Committing(Option<oneshot::Sender<()>>);

impl Committing {
    /// A signal nobody waits for, for running a batch outside the lanes.
    pub fn unobserved() -> Self {
        Committing(None)
    }

    /// The batch is decided: the lane may send the next one. Later calls do nothing.
    pub fn decided(&mut self) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(());
        }
    }
}

/// What one batch came to.
#[derive(Debug, Clone)]
pub struct Decided<O> {
    /// Every request's outcome, in the order given.
    pub outcomes: Vec<O>,
    /// When the key is now closed: the answer every later request gets from memory.
    pub closed: Option<O>,
}

/// How lanes batch, short-circuit and forget.
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitConfig {
    /// The most requests one batch decides (default 256).
    pub max_batch: usize,
    /// How long a key seen closed is answered in-process before the database is asked again (default 1 s).
    pub recheck_interval: Duration,
    /// How long an idle lane is kept before it is forgotten (default 60 s).
    pub idle_ttl: Duration,
    /// The most batches of one key deciding or committing at once (default 3; 1 waits for each commit).
    pub max_in_flight: usize,
    /// The fewest requests sent as a batch while the key's last batch is still committing (default 32): fewer
    /// wait for it to end and join the next batch, which keeps batches large on a key that is not hot.
    pub min_early_batch: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig {
            max_batch: 256,
            recheck_interval: Duration::from_secs(1),
            idle_ttl: Duration::from_secs(60),
            max_in_flight: 3,
            min_early_batch: 32,
        }
    }
}

/// Counters of what the lanes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Requests received.
    pub requests: u64,
    /// Batches run (one database round trip each).
    pub batches: u64,
    /// Requests of a key known closed answered without a batch: from memory, or by a point read of their record.
    pub short_circuited: u64,
    /// The largest batch so far.
    pub largest_batch: u64,
}

/// The future of one request's outcome.
pub type OutcomeFuture<O> = Pin<Box<dyn Future<Output = O> + Send + 'static>>;

type Waiter<B> = (<B as BatchRunner>::Request, oneshot::Sender<<B as BatchRunner>::Outcome>);

struct Lane<B: BatchRunner> {
    queue: Vec<Waiter<B>>,
    /// A task is taking batches off the queue (and at most one of them is being decided).
    driven: bool,
    /// One permit per batch deciding or committing.
    in_flight: Arc<Semaphore>,
    /// Told of every request queued, for a driver waiting for the queue to grow.
    arrivals: Arc<Notify>,
    /// The closed answer while the key is known closed, and when that was learnt.
    closed: Option<(B::Outcome, Instant)>,
    last_used: Instant,
}

impl<B: BatchRunner> Lane<B> {
    fn new(now: Instant, max_in_flight: usize) -> Self {
        Lane {
            queue: Vec::new(),
            driven: false,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            arrivals: Arc::new(Notify::new()),
            closed: None,
            last_used: now,
        }
    }

    fn is_idle_since(&self, idle_ttl: Duration, max_in_flight: usize, now: Instant) -> bool {
        !self.driven
            && self.queue.is_empty()
            && self.in_flight.available_permits() == max_in_flight
            && now.saturating_duration_since(self.last_used) >= idle_ttl
    }
}

struct Lanes<B: BatchRunner> {
    by_key: HashMap<B::Key, Lane<B>>,
    last_sweep: Instant,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    batches: AtomicU64,
    short_circuited: AtomicU64,
    largest_batch: AtomicU64,
}

struct Inner<B: BatchRunner> {
    runner: B,
    config: GroupCommitConfig,
    /// One lock for all lanes: every critical section is a few pointer moves, far shorter than a batch.
    lanes: Mutex<Lanes<B>>,
    counters: Counters,
}

/// Per-key lanes over one [`BatchRunner`]. Cheap to clone.
pub struct GroupCommit<B: BatchRunner> {
    inner: Arc<Inner<B>>,
}

impl<B: BatchRunner> Clone for GroupCommit<B> {
    fn clone(&self) -> Self {
        GroupCommit { inner: self.inner.clone() }
    }
}

impl<B: BatchRunner> std::fmt::Debug for GroupCommit<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl<B: BatchRunner> GroupCommit<B> {
    /// Lanes over `runner`.
    pub fn new(runner: B, config: GroupCommitConfig) -> Self {
        let config = GroupCommitConfig {
            max_batch: config.max_batch.max(1),
            max_in_flight: config.max_in_flight.clamp(1, Semaphore::MAX_PERMITS),
            ..config
        };
        let lanes = Lanes { by_key: HashMap::new(), last_sweep: Instant::now() };
        GroupCommit {
            inner: Arc::new(Inner { runner, config, lanes: Mutex::new(lanes), counters: Counters::default() }),
        }
    }

    /// The runner.
    pub fn runner(&self) -> &B {
        &self.inner.runner
    }

    /// Queues the request at once (arrival order is the order of calls) and returns its outcome's future.
    /// Needs a tokio runtime: it may spawn the lane's batch task.
    pub fn submit(&self, key: B::Key, request: B::Request) -> OutcomeFuture<B::Outcome> {
        let counters = &self.inner.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut lanes = self.inner.lock();
        self.inner.sweep(&mut lanes, now);
        let max_in_flight = self.inner.config.max_in_flight;
        let lane = lanes.by_key.entry(key).or_insert_with(|| Lane::new(now, max_in_flight));
        lane.last_used = now;
        if let Some((closed, since)) = &lane.closed {
            if now.saturating_duration_since(*since) < self.inner.config.recheck_interval {
                counters.short_circuited.fetch_add(1, Ordering::Relaxed);
                // Asked under the lanes' lock, which every request takes anyway: one lock per answer rather
                // than two taken in turn by every thread.
                if let Some(known) = self.inner.runner.closed_answer(key, &request, closed) {
                    drop(lanes);
                    metrics::counter!(SHORT_CIRCUITS, "domain" => B::DOMAIN, "source" => "lanes").increment(1);
                    return Box::pin(std::future::ready(known));
                }
                let closed = closed.clone();
                drop(lanes);
                return self.answer_closed(key, request, closed, true);
            }
            lane.closed = None;
        }
        self.queue(lane, key, request)
    }

    /// Answers `request` of a key another instance found closed (`closed`, the answer that fact gives), as a
    /// lane answers its own closed keys: the request's own outcome when it may have one, else `closed`; a
    /// record that cannot be read sends the request to the database. The caller counts it (it is not one of
    /// the lanes' requests unless it goes to the database).
    pub fn submit_closed(&self, key: B::Key, request: B::Request, closed: B::Outcome) -> OutcomeFuture<B::Outcome> {
        self.answer_closed(key, request, closed, false)
    }

    /// The answer for `request` of a closed key: the runner's certain knowledge, else the request's record.
    /// `lanes` says whether the lanes knew the key closed (and count it) or the caller did.
    fn answer_closed(
        &self,
        key: B::Key,
        request: B::Request,
        closed: B::Outcome,
        lanes: bool,
    ) -> OutcomeFuture<B::Outcome> {
        if let Some(known) = self.inner.runner.closed_answer(key, &request, &closed) {
            if lanes {
                metrics::counter!(SHORT_CIRCUITS, "domain" => B::DOMAIN, "source" => "lanes").increment(1);
            }
            return Box::pin(std::future::ready(known));
        }
        let this = self.clone();
        Box::pin(async move {
            match this.inner.runner.recorded(key, request.clone()).await {
                Ok(recorded) => {
                    metrics::counter!(SHORT_CIRCUITS, "domain" => B::DOMAIN, "source" => "lookup").increment(1);
                    recorded.unwrap_or(closed)
                }
                Err(error) => {
                    // Not answered from a guess: the database decides it, as if the key were open.
                    tracing::warn!(domain = B::DOMAIN, ?key, %error, "cannot read a request's record; deciding it");
                    let counters = &this.inner.counters;
                    if lanes {
                        counters.short_circuited.fetch_sub(1, Ordering::Relaxed);
                    } else {
                        counters.requests.fetch_add(1, Ordering::Relaxed);
                    }
                    this.enqueue(key, request, Instant::now()).await
                }
            }
        })
    }

    /// Queues `request` in its key's lane for a batch, whatever the lane knows of the key.
    fn enqueue(&self, key: B::Key, request: B::Request, now: Instant) -> OutcomeFuture<B::Outcome> {
        let mut lanes = self.inner.lock();
        let max_in_flight = self.inner.config.max_in_flight;
        let lane = lanes.by_key.entry(key).or_insert_with(|| Lane::new(now, max_in_flight));
        lane.last_used = now;
        self.queue(lane, key, request)
    }

    /// Puts `request` in `lane`'s queue (the lanes' lock held) and starts the lane's driver if it has none.
    fn queue(&self, lane: &mut Lane<B>, key: B::Key, request: B::Request) -> OutcomeFuture<B::Outcome> {
        let (reply, answer) = oneshot::channel();
        lane.queue.push((request, reply));
        lane.arrivals.notify_one();
        if !lane.driven {
            lane.driven = true;
            tokio::spawn(drive(self.inner.clone(), key));
        }
        let inner = self.inner.clone();
        // The guard answers every caller; a dropped sender can only mean a batch lost mid-way: in doubt.
        Box::pin(async move { answer.await.unwrap_or_else(|_| inner.runner.lost()) })
    }

    /// Forgets that a key was closed, e.g. because stock was just added.
    pub fn reopen(&self, key: B::Key) {
        if let Some(lane) = self.inner.lock().by_key.get_mut(&key) {
            lane.closed = None;
        }
    }

    /// What the lanes have done so far.
    pub fn stats(&self) -> GroupCommitStats {
        let c = &self.inner.counters;
        GroupCommitStats {
            requests: c.requests.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            short_circuited: c.short_circuited.load(Ordering::Relaxed),
            largest_batch: c.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// How many lanes are held in memory now.
    pub fn lanes_held(&self) -> usize {
        self.inner.lock().by_key.len()
    }
}

impl<B: BatchRunner> Inner<B> {
    fn lock(&self) -> MutexGuard<'_, Lanes<B>> {
        // No code that can panic runs under this lock (the runner is called outside it), so a poisoned lock
        // holds consistent lanes and is used as it is.
        self.lanes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets idle lanes, at most once per `recheck_interval`: a scan of every lane, paid once per interval
    /// rather than per request.
    fn sweep(&self, lanes: &mut Lanes<B>, now: Instant) {
        let every = self.config.recheck_interval.max(Duration::from_millis(100));
        if now.saturating_duration_since(lanes.last_sweep) < every {
            return;
        }
        lanes.last_sweep = now;
        let (idle_ttl, max_in_flight) = (self.config.idle_ttl, self.config.max_in_flight);
        lanes.by_key.retain(|_, lane| !lane.is_idle_since(idle_ttl, max_in_flight, now));
    }

    /// How many requests wait in the lane's queue.
    fn queued(&self, key: B::Key) -> usize {
        self.lock().by_key.get(&key).map_or(0, |lane| lane.queue.len())
    }

    /// The lane's permits for batches in flight, or `None` when the lane is gone.
    fn permits(&self, key: B::Key) -> Option<Arc<Semaphore>> {
        self.lock().by_key.get(&key).map(|lane| lane.in_flight.clone())
    }

    /// What tells the lane's driver of arrivals, or `None` when the lane is gone.
    fn arrivals(&self, key: B::Key) -> Option<Arc<Notify>> {
        self.lock().by_key.get(&key).map(|lane| lane.arrivals.clone())
    }

    /// Takes the next batch off the lane, or marks the lane undriven and returns `None`.
    fn next_batch(&self, key: B::Key) -> Option<Vec<Waiter<B>>> {
        let mut lanes = self.lock();
        let lane = lanes.by_key.get_mut(&key)?;
        if lane.queue.is_empty() {
            lane.driven = false;
            return None;
        }
        let take = lane.queue.len().min(self.config.max_batch);
        Some(lane.queue.drain(..take).collect())
    }

    /// Remembers a key that the batch found closed.
    fn learn(&self, key: B::Key, decided: &Decided<B::Outcome>) {
        let Some(closed) = &decided.closed else { return };
        let mut lanes = self.lock();
        if let Some(lane) = lanes.by_key.get_mut(&key) {
            lane.closed = Some((closed.clone(), Instant::now()));
        }
    }
}

/// The lane's loop: takes a batch off the queue, sends it, and takes the next once it is decided (or over),
/// while requests keep arriving; then ends, and the next request starts another.
async fn drive<B: BatchRunner>(inner: Arc<Inner<B>>, key: B::Key) {
    let mut driver = Driver { inner: inner.clone(), key, finished: false };
    loop {
        // A permit first, so that a lane waiting for its commits takes everything queued meanwhile.
        let permit = match inner.permits(key) {
            Some(permits) => permits.acquire_owned().await.ok(),
            None => None,
        };
        let (Some(permit), Some(batch)) = (permit, inner.next_batch(key)) else {
            driver.finished = true;
            return;
        };
        let (committing, decided) = oneshot::channel();
        // Dropped when the batch task ends, however it ends.
        let (over, batch_over) = oneshot::channel::<()>();
        tokio::spawn(run_batch(inner.clone(), key, batch, Committing(Some(committing)), (permit, over)));
        // Decided, or over (answered, failed or panicked: the sender is dropped either way).
        let _ = decided.await;
        // The next batch goes early only when it is worth a transaction of its own: a few requests sent now would
        // cost as much as many and leave fewer for the batch after, so they wait until enough have queued, or
        // this batch has ended (and its callers' next requests join them).
        let Some(arrivals) = inner.arrivals(key) else { continue };
        let mut batch_over = std::pin::pin!(batch_over);
        while inner.queued(key) < inner.config.min_early_batch {
            tokio::select! {
                _ = &mut batch_over => break,
                () = arrivals.notified() => {}
            }
        }
    }
}

/// Runs one batch and answers its callers once its call has ended.
async fn run_batch<B: BatchRunner>(
    inner: Arc<Inner<B>>,
    key: B::Key,
    batch: Vec<Waiter<B>>,
    committing: Committing,
    _in_flight: (OwnedSemaphorePermit, oneshot::Sender<()>),
) {
    let mut guard = InFlight { inner: inner.clone(), batch, finished: false };
    let counters = &inner.counters;
    counters.batches.fetch_add(1, Ordering::Relaxed);
    counters.largest_batch.fetch_max(guard.batch.len() as u64, Ordering::Relaxed);
    metrics::histogram!(BATCH_REQUESTS, "domain" => B::DOMAIN).record(guard.batch.len() as f64);
    let requests: Vec<B::Request> = guard.batch.iter().map(|(request, _)| request.clone()).collect();
    let decided = inner.runner.run(key, requests.clone(), committing).await;
    inner.runner.learnt(key, &requests, &decided).await;
    inner.learn(key, &decided);
    let mut outcomes = decided.outcomes.into_iter();
    for (_, reply) in guard.batch.drain(..) {
        // A runner that answered fewer outcomes than requests broke its contract: those are lost.
        let outcome = outcomes.next().unwrap_or_else(|| inner.runner.lost());
        // A caller that stopped waiting (say, a closed HTTP connection) just misses its answer.
        let _ = reply.send(outcome);
    }
    guard.finished = true;
}

/// A batch in flight. Dropped without `finished` (a panic or a cancellation), it answers the batch's callers in
/// doubt: the batch may have been sent.
struct InFlight<B: BatchRunner> {
    inner: Arc<Inner<B>>,
    batch: Vec<Waiter<B>>,
    finished: bool,
}

impl<B: BatchRunner> Drop for InFlight<B> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        for (_, reply) in self.batch.drain(..) {
            let _ = reply.send(self.inner.runner.lost());
        }
    }
}

/// A lane's loop. Dropped without `finished`, the runtime is shutting down (the loop itself runs no code that
/// panics; a panicking batch is its own task's): a new loop would never run, so the callers still queued are
/// told now that nothing was sent.
struct Driver<B: BatchRunner> {
    inner: Arc<Inner<B>>,
    key: B::Key,
    finished: bool,
}

impl<B: BatchRunner> Drop for Driver<B> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut lanes = self.inner.lock();
        let Some(lane) = lanes.by_key.get_mut(&self.key) else { return };
        lane.driven = false;
        for (_, reply) in lane.queue.drain(..) {
            let _ = reply.send(self.inner.runner.not_sent());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A runner that answers each request with itself, and panics on a batch containing 13.
    struct Echo {
        batches: AtomicUsize,
        decided: Mutex<std::collections::HashSet<u32>>,
        lookups: AtomicUsize,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Answer {
        Decided(u32),
        Closed,
        Repeat,
        Lost,
        NotSent,
    }

    impl BatchRunner for Echo {
        const DOMAIN: &'static str = "test";
        type Key = u8;
        type Request = u32;
        type Outcome = Answer;

        async fn run(&self, key: u8, requests: Vec<u32>, _committing: Committing) -> Decided<Answer> {
            self.batches.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!requests.contains(&13), "a batch task that panics");
            let closed = (key == 9).then_some(Answer::Closed);
            Decided { outcomes: requests.into_iter().map(Answer::Decided).collect(), closed }
        }

        fn lost(&self) -> Answer {
            Answer::Lost
        }

        fn not_sent(&self) -> Answer {
            Answer::NotSent
        }

        async fn learnt(&self, _key: u8, requests: &[u32], _decided: &Decided<Answer>) {
            self.decided.lock().unwrap().extend(requests);
        }

        /// Its memory: who it saw decided, and request 8, known to have no outcome.
        fn closed_answer(&self, _key: u8, request: &u32, closed: &Answer) -> Option<Answer> {
            if self.decided.lock().unwrap().contains(request) {
                return Some(Answer::Repeat);
            }
            (*request == 8).then(|| closed.clone())
        }

        /// Its database: request 7 was decided elsewhere; reading request 66's record fails.
        async fn recorded(&self, _key: u8, request: u32) -> Result<Option<Answer>, String> {
            self.lookups.fetch_add(1, Ordering::Relaxed);
            match request {
                7 => Ok(Some(Answer::Repeat)),
                66 => Err("the database is away".into()),
                _ => Ok(None),
            }
        }
    }

    fn lanes(config: GroupCommitConfig) -> GroupCommit<Echo> {
        let echo = Echo { batches: AtomicUsize::new(0), decided: Mutex::default(), lookups: AtomicUsize::new(0) };
        GroupCommit::new(echo, config)
    }

    #[tokio::test]
    async fn a_panicking_batch_answers_its_callers_in_doubt_and_the_lane_goes_on() {
        let lanes = lanes(GroupCommitConfig::default());
        let first = tokio::spawn(lanes.submit(1, 1));
        tokio::time::sleep(Duration::from_millis(5)).await; // the lone first request is in flight
        let poisoned: Vec<_> = [2, 13, 4].into_iter().map(|n| tokio::spawn(lanes.submit(1, n))).collect();
        assert_eq!(first.await.unwrap(), Answer::Decided(1));
        for caller in poisoned {
            assert_eq!(caller.await.unwrap(), Answer::Lost, "the whole batch that panicked is in doubt");
        }
        let later = tokio::time::timeout(Duration::from_secs(2), lanes.submit(1, 5)).await;
        assert_eq!(later.expect("the lane is not wedged"), Answer::Decided(5));
    }

    #[tokio::test]
    async fn requests_queued_behind_a_panicking_batch_are_still_decided() {
        let lanes = lanes(GroupCommitConfig { max_batch: 1, ..GroupCommitConfig::default() });
        let callers: Vec<_> = [13, 2, 3].into_iter().map(|n| tokio::spawn(lanes.submit(1, n))).collect();
        let mut answers = Vec::new();
        for caller in callers {
            answers.push(tokio::time::timeout(Duration::from_secs(2), caller).await.unwrap().unwrap());
        }
        assert_eq!(answers, [Answer::Lost, Answer::Decided(2), Answer::Decided(3)]);
    }

    #[test]
    fn a_runtime_shutting_down_mid_batch_answers_every_caller() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let lanes = lanes(GroupCommitConfig { max_batch: 1, ..GroupCommitConfig::default() });
        let answers: Vec<_> = runtime.block_on(async { (1..=3).map(|n| lanes.submit(1, n)).collect() });
        runtime.shutdown_timeout(Duration::from_millis(1)); // cancels the batch task mid-sleep
        let after = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for answer in answers {
            let answer = after.block_on(async { tokio::time::timeout(Duration::from_secs(2), answer).await });
            assert!(matches!(answer, Ok(Answer::Lost | Answer::NotSent)), "{answer:?}");
        }
    }

    #[tokio::test]
    async fn a_closed_key_refuses_only_requests_that_have_no_outcome() {
        let lanes = lanes(GroupCommitConfig::default());
        assert_eq!(lanes.submit(9, 1).await, Answer::Decided(1));
        // Unknown to memory: its record is read, and it has none.
        assert_eq!(lanes.submit(9, 2).await, Answer::Closed);
        // Decided here, and decided elsewhere: each hears its own outcome, never the closed answer.
        assert_eq!(lanes.submit(9, 1).await, Answer::Repeat);
        assert_eq!(lanes.submit(9, 7).await, Answer::Repeat);
        // Known to have none: refused from memory, without a read.
        assert_eq!(lanes.submit(9, 8).await, Answer::Closed);
        assert_eq!(lanes.runner().lookups.load(Ordering::Relaxed), 2);
        // A record that cannot be read: the database decides the request.
        assert_eq!(lanes.submit(9, 66).await, Answer::Decided(66));
        assert_eq!(lanes.runner().batches.load(Ordering::Relaxed), 2);
        assert_eq!(lanes.stats().short_circuited, 4);
        lanes.reopen(9);
        assert_eq!(lanes.submit(9, 3).await, Answer::Decided(3));
    }

    #[tokio::test]
    async fn another_instances_closed_fact_is_answered_the_same_way() {
        let lanes = lanes(GroupCommitConfig::default());
        assert_eq!(lanes.submit_closed(5, 7, Answer::Closed).await, Answer::Repeat);
        assert_eq!(lanes.submit_closed(5, 2, Answer::Closed).await, Answer::Closed);
        assert_eq!(lanes.submit_closed(5, 66, Answer::Closed).await, Answer::Decided(66));
        assert_eq!(lanes.runner().batches.load(Ordering::Relaxed), 1, "only the unreadable one");
    }

    /// A runner that says it is decided at once and then "commits" for 30 ms, recording how many of its
    /// batches overlap and the order they were decided in.
    struct SlowCommits {
        deciding: AtomicUsize,
        committing: AtomicUsize,
        most_at_once: AtomicUsize,
        decided_in_order: Mutex<Vec<u32>>,
    }

    impl BatchRunner for SlowCommits {
        const DOMAIN: &'static str = "test";
        type Key = u8;
        type Request = u32;
        type Outcome = u32;

        async fn run(&self, _key: u8, requests: Vec<u32>, mut committing: Committing) -> Decided<u32> {
            assert_eq!(self.deciding.fetch_add(1, Ordering::SeqCst), 0, "two batches of a key deciding at once");
            self.decided_in_order.lock().unwrap().extend(&requests);
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.deciding.fetch_sub(1, Ordering::SeqCst);
            let now = self.committing.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            committing.decided();
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.committing.fetch_sub(1, Ordering::SeqCst);
            Decided { outcomes: requests, closed: None }
        }

        fn lost(&self) -> u32 {
            0
        }

        fn not_sent(&self) -> u32 {
            0
        }

        async fn recorded(&self, _key: u8, _request: u32) -> Result<Option<u32>, String> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn batches_decided_before_their_commit_overlap_up_to_the_bound_in_arrival_order() {
        let runner = SlowCommits {
            deciding: AtomicUsize::new(0),
            committing: AtomicUsize::new(0),
            most_at_once: AtomicUsize::new(0),
            decided_in_order: Mutex::default(),
        };
        let config =
            GroupCommitConfig { max_batch: 4, max_in_flight: 3, min_early_batch: 1, ..GroupCommitConfig::default() };
        let lanes = GroupCommit::new(runner, config);
        let answers: Vec<_> = (1..=40).map(|n| lanes.submit(1, n)).collect();
        for (n, answer) in (1..=40).zip(answers) {
            assert_eq!(answer.await, n, "every caller hears its own outcome");
        }
        let runner = lanes.runner();
        assert_eq!(*runner.decided_in_order.lock().unwrap(), (1..=40).collect::<Vec<_>>(), "arrival order");
        assert_eq!(runner.most_at_once.load(Ordering::SeqCst), 3, "commits overlap, never beyond the bound");
    }

    #[tokio::test]
    async fn idle_lanes_are_forgotten_so_memory_follows_the_keys_in_use() {
        let config = GroupCommitConfig {
            recheck_interval: Duration::from_millis(100),
            idle_ttl: Duration::from_millis(100),
            ..GroupCommitConfig::default()
        };
        let lanes = lanes(config);
        let requests: Vec<_> = (0..200u8).map(|key| lanes.submit(key, 1)).collect();
        assert_eq!(lanes.lanes_held(), 200);
        for request in requests {
            request.await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        lanes.submit(9, 1).await;
        assert_eq!(lanes.lanes_held(), 1, "only the lane just used is held");
    }
}
