//! The read/write split: one primary for writes and decisions, replicas for reads, and read-your-writes by GTID.
//!
//! - Writes and decisions (a seckill, an exchange, a draw, the exposer's window): always the primary,
//!   [`ReadWriteSplit::primary`].
//! - Reads that tolerate staleness (lists, details, balances, campaign status): a healthy replica, else the
//!   primary ([`Consistency::Eventual`]).
//! - Reads after a write the user expects to see ("did my seckill go through?", the balance right after an
//!   exchange): on a replica, `SELECT MASTER_GTID_WAIT(gtid, short timeout)` first (0: the replica has applied
//!   the write, -1: not within the timeout), then the read on the same connection; after a timeout, an error, or
//!   with no replica up, the primary ([`Consistency::AfterGtid`]). Never a stale answer after the user's write.
//!   A position the primary has not committed (a client's made-up one) is never waited for on a replica: its
//!   read goes to the primary at once. What the primary has committed is learnt from the writes' own answers
//!   ([`ReadWriteSplit::committed`]) and, for positions beyond that, asked of the primary at most once per
//!   [`ReplicaConfig::position_refresh`] (see `primary_position.rs`).
//! - Reads that must be exact without a GTID to wait for (settling an answer that was in doubt): the primary
//!   ([`Consistency::Primary`]).
//!
//! A replica that fails (it cannot be reached, a query errs, a call outlives its bound) is skipped for
//! [`ReplicaConfig::down_backoff`], then used again for reads after a GTID (the wait protects them) and, once a
//! lag check finds it within bounds, for any read. A replica lagging beyond [`ReplicaConfig::max_lag`]
//! (`Seconds_Behind_Master` from `SHOW SLAVE STATUS`, or either replication thread not running) is skipped by
//! reads that tolerate staleness. The lag is checked in the background, at most once per
//! [`ReplicaConfig::lag_check_interval`] per replica and never on a request's path; the check needs the
//! `SLAVE MONITOR` privilege (MariaDB 10.5+; `REPLICATION CLIENT` on MySQL) for the replica's account, and
//! without it the lag is not checked (said once in the log): only failures then skip a replica. Every replica
//! call is bounded in time ([`ReplicaConfig::gtid_wait`] plus [`ReplicaConfig::call_timeout`]); no caller waits on
//! a replica longer.
//!
//! Metrics (through the `metrics` facade; [`crate::prometheus`] exports them): `seckill_replica_reads_total{replica}`
//! for reads a replica served (named `host:port`), and `seckill_replica_fallbacks_total{reason}` for reads that
//! meant a replica and went to the primary, `reason` one of `down`, `lagging`, `gtid_wait_timeout`,
//! `ahead_of_primary` (a position the primary has not committed: made up, or from another primary). A split with no
//! replica counts nothing. The same counts are in [`ReadWriteSplit::stats`].
//!
//! `MASTER_GTID_WAIT` is MariaDB's; MySQL 8 has `WAIT_FOR_EXECUTED_GTID_SET` with its own GTID format, which this
//! module does not speak.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Row};

use super::gtid::{Gtid, GtidPosition, wait_for_position};
use super::primary_position::PrimaryPosition;
use super::{acquire, acquire_within};
use crate::database::error::DatabaseError;
use crate::prometheus::names::{REPLICA_FALLBACKS, REPLICA_READS};

/// ER_SPECIFIC_ACCESS_DENIED_ERROR: the account lacks a privilege (here `SLAVE MONITOR` for the lag check).
const SPECIFIC_ACCESS_DENIED: u16 = 1227;

/// How replicas are used, skipped and checked.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaConfig {
    /// The `MASTER_GTID_WAIT` timeout of a read after a GTID: how long a replica may take to apply the user's
    /// write before the primary answers instead (default 500 ms).
    pub gtid_wait: Duration,
    /// The bound on one replica call besides the GTID wait: connecting, the read, a lag check (default 1 s).
    pub call_timeout: Duration,
    /// How long a replica that failed is skipped (default 2 s).
    pub down_backoff: Duration,
    /// The lag beyond which reads that tolerate staleness skip a replica (default 5 s; the server reports whole
    /// seconds).
    pub max_lag: Duration,
    /// How often each replica's lag is checked at most (default 1 s).
    pub lag_check_interval: Duration,
    /// How often the primary is asked at most what it has committed, for reads after a GTID this process has not
    /// seen committed (one written through another instance, or made up) (default 50 ms). Between two asks,
    /// such reads go to the primary.
    pub position_refresh: Duration,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            gtid_wait: Duration::from_millis(500),
            call_timeout: Duration::from_secs(1),
            down_backoff: Duration::from_secs(2),
            max_lag: Duration::from_secs(5),
            lag_check_interval: Duration::from_secs(1),
            position_refresh: Duration::from_millis(50),
        }
    }
}

/// How fresh a read must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consistency {
    /// Any replica within the lag bound, else the primary.
    Eventual,
    /// At least everything `position` stands for: a replica that has applied it within the GTID wait, else the
    /// primary. An empty position waits for nothing: as [`Consistency::Eventual`].
    AfterGtid(GtidPosition),
    /// The primary.
    Primary,
}

impl Consistency {
    /// After `position` when one is known, else the primary: what a read-your-writes endpoint wants.
    pub fn after_or_primary(position: Option<GtidPosition>) -> Self {
        match position {
            Some(position) if !position.is_empty() => Consistency::AfterGtid(position),
            _ => Consistency::Primary,
        }
    }
}

/// One replica to read from: a name for metrics and logs (`host:port`) and its pool.
#[derive(Debug, Clone)]
pub struct ReplicaPool {
    pub name: String,
    pub pool: Pool,
}

/// Why a read meant for a replica went to the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    /// The replica failed, or every replica is skipped after failing.
    Down,
    /// Every replica up is lagging beyond the bound (reads that tolerate staleness only).
    Lagging,
    /// The replica had not applied the GTID within the wait.
    GtidWaitTimeout,
    /// The GTID is beyond what the primary has committed (made up, or another primary's): never waited for.
    AheadOfPrimary,
}

impl FallbackReason {
    /// The metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Down => "down",
            FallbackReason::Lagging => "lagging",
            FallbackReason::GtidWaitTimeout => "gtid_wait_timeout",
            FallbackReason::AheadOfPrimary => "ahead_of_primary",
        }
    }
}

/// What the split has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitStats {
    /// Reads served by each replica, in the order given.
    pub replica_reads: Vec<(String, u64)>,
    /// Reads that meant a replica and went to the primary, by reason.
    pub fallbacks_down: u64,
    pub fallbacks_lagging: u64,
    pub fallbacks_gtid_wait_timeout: u64,
    pub fallbacks_ahead_of_primary: u64,
}

impl SplitStats {
    /// Reads served by all replicas.
    pub fn replica_reads_total(&self) -> u64 {
        self.replica_reads.iter().map(|(_, reads)| reads).sum()
    }
}

/// The primary's pool and the replicas' pools, and which to read from. Cheap to clone; share one per
/// application. Built by [`super::ConnectOptions::build_split`], or from a plain pool (primary only).
#[derive(Clone, Debug)]
pub struct ReadWriteSplit {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    primary: Pool,
    replicas: Vec<Replica>,
    config: ReplicaConfig,
    /// Where the next replica choice starts: reads take the replicas in turn.
    next: AtomicUsize,
    fallbacks: [AtomicU64; 4],
    /// What the primary has committed, as far as this process knows.
    primary_position: PrimaryPosition,
}

#[derive(Debug)]
struct Replica {
    name: String,
    pool: Pool,
    health: Mutex<Health>,
    reads: AtomicU64,
    /// A lag check is running (at most one per replica).
    checking: AtomicBool,
}

#[derive(Debug)]
struct Health {
    state: State,
    lagging: bool,
    last_check: Option<Instant>,
    /// The account may not run `SHOW SLAVE STATUS`: lag is not checked (said once).
    lag_unknowable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Up,
    /// Failed: skipped until the instant.
    Down(Instant),
    /// Back after failing: used for reads after a GTID, and for any read once a lag check passes.
    Recovering,
}

impl Health {
    fn state(&mut self, now: Instant) -> State {
        if let State::Down(until) = self.state
            && now >= until
        {
            self.state = State::Recovering;
        }
        self.state
    }
}

impl From<Pool> for ReadWriteSplit {
    /// The primary alone: every read goes to it.
    fn from(primary: Pool) -> Self {
        ReadWriteSplit::primary_only(primary)
    }
}

impl ReadWriteSplit {
    /// The primary alone: every read goes to it.
    pub fn primary_only(primary: Pool) -> Self {
        Self::new(primary, Vec::new(), ReplicaConfig::default())
    }

    /// The primary and its replicas, used as `config` says.
    pub fn new(primary: Pool, replicas: Vec<ReplicaPool>, config: ReplicaConfig) -> Self {
        let replicas = replicas
            .into_iter()
            .map(|ReplicaPool { name, pool }| Replica {
                name,
                pool,
                health: Mutex::new(Health {
                    state: State::Up,
                    lagging: false,
                    last_check: None,
                    lag_unknowable: false,
                }),
                reads: AtomicU64::new(0),
                checking: AtomicBool::new(false),
            })
            .collect();
        let inner = Inner {
            primary,
            replicas,
            config,
            next: AtomicUsize::new(0),
            fallbacks: Default::default(),
            primary_position: PrimaryPosition::default(),
        };
        ReadWriteSplit { inner: Arc::new(inner) }
    }

    /// The pool for writes and decisions: always the primary.
    pub fn primary(&self) -> &Pool {
        &self.inner.primary
    }

    /// The replicas' names, in the order given.
    pub fn replica_names(&self) -> Vec<String> {
        self.inner.replicas.iter().map(|replica| replica.name.clone()).collect()
    }

    /// True when there is at least one replica.
    pub fn has_replicas(&self) -> bool {
        !self.inner.replicas.is_empty()
    }

    /// How replicas are used.
    pub fn config(&self) -> &ReplicaConfig {
        &self.inner.config
    }

    /// Tells the split that the primary committed `gtid` (a write's answer, [`crate::database::WithGtid`]), so
    /// that a read after it waits on a replica without asking the primary first. The services call it for every
    /// write they make; call it for writes of your own through [`Self::primary`]. A GTID from anywhere but the
    /// primary's answer must not be given: a read after it could then wait on a replica for nothing.
    pub fn committed(&self, gtid: Option<Gtid>) {
        if let Some(gtid) = gtid {
            self.inner.primary_position.learn(gtid);
        }
    }

    /// A pool for a read that tolerates staleness: a healthy replica within the lag bound, else the primary
    /// (counted as a read of that replica, or a fallback). For reads of your own; errors on it are yours to
    /// handle. [`Self::read`] also falls back to the primary when the replica fails.
    pub fn stale_read_pool(&self) -> &Pool {
        self.check_lag_when_due();
        match self.inner.choose(false) {
            Ok(index) => {
                self.inner.served(index);
                &self.inner.replicas[index].pool
            }
            Err(reason) => {
                self.inner.fell_back(reason);
                &self.inner.primary
            }
        }
    }

    /// Runs `read` on a connection chosen for `consistency` (see the module's documentation), falling back to
    /// the primary when a replica fails, lags or has not applied the GTID in time. `read` may run twice: once
    /// on a replica that failed, then on the primary; it must only read.
    ///
    /// # Errors
    /// The primary's error when the read fails there (a replica's failure is never returned).
    pub async fn read<T, E, F>(&self, consistency: &Consistency, mut read: F) -> Result<T, E>
    where
        T: Send,
        E: From<DatabaseError> + Display + Send,
        F: for<'c> FnMut(&'c mut Conn) -> BoxFuture<'c, Result<T, E>> + Send,
    {
        let waiting_for = match consistency {
            Consistency::Primary => None,
            _ if !self.has_replicas() => None,
            Consistency::Eventual => Some(None),
            Consistency::AfterGtid(position) if position.is_empty() => Some(None),
            Consistency::AfterGtid(position) => Some(Some(position)),
        };
        // A position the primary has not committed would hold a replica connection for the whole wait, for
        // nothing: its read goes to the primary, which has everything the primary committed.
        let waiting_for = match waiting_for {
            Some(Some(position)) if !self.primary_committed(position).await => {
                self.inner.fell_back(FallbackReason::AheadOfPrimary);
                None
            }
            other => other,
        };
        if let Some(position) = waiting_for {
            self.check_lag_when_due();
            // A read after a GTID takes a lagging replica too: the wait tells whether it has the write.
            match self.inner.choose(position.is_some()) {
                Ok(index) => match self.on_replica(index, position, &mut read).await {
                    Ok(answer) => {
                        self.inner.served(index);
                        return Ok(answer);
                    }
                    Err(reason) => self.inner.fell_back(reason),
                },
                Err(reason) => self.inner.fell_back(reason),
            }
        }
        let mut conn = acquire(&self.inner.primary).await?;
        read(&mut conn).await
    }

    /// Whether the primary has committed `position` (see [`PrimaryPosition::committed`]).
    async fn primary_committed(&self, position: &GtidPosition) -> bool {
        let config = &self.inner.config;
        let known = &self.inner.primary_position;
        known.committed(position, &self.inner.primary, config.position_refresh, config.call_timeout).await
    }

    /// The read on replica `index`, after the GTID wait when there is a position, within the replica's bound.
    /// A failure marks the replica down.
    async fn on_replica<T, E, F>(
        &self,
        index: usize,
        position: Option<&GtidPosition>,
        read: &mut F,
    ) -> Result<T, FallbackReason>
    where
        E: From<DatabaseError> + Display,
        F: for<'c> FnMut(&'c mut Conn) -> BoxFuture<'c, Result<T, E>>,
    {
        let replica = &self.inner.replicas[index];
        let config = &self.inner.config;
        let bound = config.call_timeout + if position.is_some() { config.gtid_wait } else { Duration::ZERO };
        let attempt = async {
            let mut conn = acquire_within(&replica.pool, config.call_timeout).await.map_err(|e| e.to_string())?;
            if let Some(position) = position {
                let applied =
                    wait_for_position(&mut conn, position, config.gtid_wait).await.map_err(|e| e.to_string())?;
                if !applied {
                    return Ok(Err(FallbackReason::GtidWaitTimeout));
                }
            }
            read(&mut conn).await.map(Ok).map_err(|e| e.to_string())
        };
        let failure = match tokio::time::timeout(bound, attempt).await {
            Ok(Ok(answer)) => return answer,
            Ok(Err(error)) => error,
            Err(_) => format!("no answer within {bound:?}"),
        };
        self.inner.mark_down(index, &failure);
        Err(FallbackReason::Down)
    }

    /// Starts a background lag check of each replica whose last one is older than the interval. Never waits.
    fn check_lag_when_due(&self) {
        let now = Instant::now();
        for (index, replica) in self.inner.replicas.iter().enumerate() {
            let due = {
                let mut health = self.inner.health(index);
                let state = health.state(now);
                let stale = health.last_check.is_none_or(|at| now - at >= self.inner.config.lag_check_interval);
                !matches!(state, State::Down(_)) && (stale || state == State::Recovering)
            };
            if due && !replica.checking.swap(true, Ordering::AcqRel) {
                let inner = self.inner.clone();
                // Outside a runtime there is no background: the lag stays as last seen.
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(async move { inner.check_lag(index).await });
                    }
                    Err(_) => replica.checking.store(false, Ordering::Release),
                }
            }
        }
    }

    /// What the split has done so far.
    pub fn stats(&self) -> SplitStats {
        let fallback = |reason: FallbackReason| self.inner.fallbacks[reason as usize].load(Ordering::Relaxed);
        SplitStats {
            replica_reads: self
                .inner
                .replicas
                .iter()
                .map(|replica| (replica.name.clone(), replica.reads.load(Ordering::Relaxed)))
                .collect(),
            fallbacks_down: fallback(FallbackReason::Down),
            fallbacks_lagging: fallback(FallbackReason::Lagging),
            fallbacks_gtid_wait_timeout: fallback(FallbackReason::GtidWaitTimeout),
            fallbacks_ahead_of_primary: fallback(FallbackReason::AheadOfPrimary),
        }
    }
}

impl Inner {
    fn health(&self, index: usize) -> MutexGuard<'_, Health> {
        self.replicas[index].health.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next replica in turn that may serve the read, or why none may: `lagging_ok` for reads after a GTID.
    fn choose(&self, lagging_ok: bool) -> Result<usize, FallbackReason> {
        let count = self.replicas.len();
        if count == 0 {
            return Err(FallbackReason::Down);
        }
        let now = Instant::now();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut any_lagging = false;
        for offset in 0..count {
            let index = (start + offset) % count;
            let mut health = self.health(index);
            match health.state(now) {
                State::Up if lagging_ok || !health.lagging => return Ok(index),
                State::Up => any_lagging = true,
                State::Recovering if lagging_ok => return Ok(index),
                State::Recovering | State::Down(_) => {}
            }
        }
        Err(if any_lagging { FallbackReason::Lagging } else { FallbackReason::Down })
    }

    fn served(&self, index: usize) {
        let replica = &self.replicas[index];
        replica.reads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(REPLICA_READS, "replica" => replica.name.clone()).increment(1);
    }

    fn fell_back(&self, reason: FallbackReason) {
        if self.replicas.is_empty() {
            return;
        }
        self.fallbacks[reason as usize].fetch_add(1, Ordering::Relaxed);
        metrics::counter!(REPLICA_FALLBACKS, "reason" => reason.as_str()).increment(1);
    }

    fn mark_down(&self, index: usize, failure: &str) {
        let until = Instant::now() + self.config.down_backoff;
        let was_down = {
            let mut health = self.health(index);
            let was_down = matches!(health.state, State::Down(_));
            health.state = State::Down(until);
            was_down
        };
        if !was_down {
            let replica = &self.replicas[index].name;
            tracing::warn!(replica, failure, backoff = ?self.config.down_backoff, "replica skipped: it failed");
        }
    }

    /// One lag check of replica `index`: `SHOW SLAVE STATUS`, within the call bound.
    async fn check_lag(&self, index: usize) {
        let replica = &self.replicas[index];
        let read = async {
            let mut conn = acquire_within(&replica.pool, self.config.call_timeout).await?;
            let status: Option<Row> = conn.query_first("SHOW SLAVE STATUS").await?;
            Ok::<_, DatabaseError>(status)
        };
        let result = tokio::time::timeout(self.config.call_timeout, read).await;
        let now = Instant::now();
        match result {
            Ok(Ok(status)) => {
                let lagging = status.as_ref().is_some_and(|row| self.is_lagging(row));
                let mut health = self.health(index);
                health.last_check = Some(now);
                if lagging != health.lagging {
                    tracing::warn!(replica = replica.name, lagging, "replica lag changed");
                }
                health.lagging = lagging;
                if health.state(now) == State::Recovering {
                    health.state = State::Up;
                }
            }
            Ok(Err(DatabaseError::Server { code: SPECIFIC_ACCESS_DENIED, .. })) => {
                let mut health = self.health(index);
                health.last_check = Some(now);
                health.lagging = false;
                if health.state(now) == State::Recovering {
                    health.state = State::Up;
                }
                if !std::mem::replace(&mut health.lag_unknowable, true) {
                    tracing::warn!(
                        replica = replica.name,
                        "replica lag is not checked: its account may not run SHOW SLAVE STATUS (grant SLAVE MONITOR)"
                    );
                }
            }
            Ok(Err(error)) => self.mark_down(index, &error.to_string()),
            Err(_) => self.mark_down(index, "the lag check had no answer in time"),
        }
        replica.checking.store(false, Ordering::Release);
    }

    /// Either replication thread not running, an unknown lag, or one beyond the bound.
    fn is_lagging(&self, status: &Row) -> bool {
        let running = |column: &str| {
            status.get_opt::<Option<String>, _>(column).and_then(Result::ok).flatten().as_deref() == Some("Yes")
        };
        let behind = status.get_opt::<Option<u64>, _>("Seconds_Behind_Master").and_then(Result::ok).flatten();
        !running("Slave_SQL_Running")
            || !running("Slave_IO_Running")
            || behind.is_none_or(|seconds| Duration::from_secs(seconds) > self.config.max_lag)
    }
}
