//! Item details from Redis: cache-aside with a short TTL, for the pages' reads only.
//!
//! A miss loads the item from the database and stores it (unknown ids too, briefly, so a flood of bogus ids
//! does not reach the database). Concurrent misses for one item in this process share one load, so an expiry
//! under load costs the database one query per process, not one per request. Stock decisions never read this
//! cache; the stock it shows may be a TTL old.
//!
//! Redis failing never fails a request, and never holds one up for long: every Redis command is given up
//! after [`REDIS_TIMEOUT`] and the database answers instead. After a failure, reads skip Redis for
//! [`REDIS_BACKOFF`], so a hung Redis costs one request in a while that much, not every request. The connection
//! is redis's [`ConnectionManager`], which reconnects after Redis restarts; the attempt is started by the
//! first request that finds the connection broken, in the background, so no request waits for it beyond
//! the same bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use thiserror::Error;
use tokio::sync::OnceCell;

use crate::database_error::DatabaseError;
use crate::seckill::{Item, Seckill, SeckillError};

/// How long a detail stays cached by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

/// The longest one Redis command may take (including waiting for a reconnection in progress) before the cache
/// gives up on it and reads the database.
///
/// Redis answers a GET in well under a millisecond on a local network, and even a fork for a snapshot of a
/// large dataset stalls it for a few tens of milliseconds; a command not answered in 100 ms means a Redis that
/// is stopped, swapping or gone, and the database's primary-key read that replaces it takes about a
/// millisecond. It is also small next to what a page can wait, so a hung Redis is not visible to buyers.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(100);

/// The longest one connection attempt (TCP connect and handshake) may take. Only [`DetailCache::connect`]
/// waits for it; reconnections run in the background while requests are bounded by [`REDIS_TIMEOUT`]. A
/// connection to a Redis on the same network takes a millisecond or two; 250 ms leaves room for a slow start
/// without letting a half-open connection (a stopped Redis whose kernel still accepts) hold a reconnection up.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);

/// After Redis fails or times out, how long reads go straight to the database. A command sent to a stopped
/// Redis waits in its connection until Redis answers or the connection goes; skipping Redis for a while
/// keeps those to a few, and spaces the reconnection attempts against a Redis that is down.
pub const REDIS_BACKOFF: Duration = Duration::from_millis(500);

type Load = Arc<OnceCell<Result<Option<Item>, String>>>;
type Loads = Mutex<HashMap<i64, Load>>;

/// A Redis-backed cache of item details. Cheap to clone.
#[derive(Clone)]
pub struct DetailCache {
    connection: ConnectionManager,
    ttl: Duration,
    prefix: String,
    /// The loads in progress, one per item. An entry lives exactly while a caller is waiting on it and its
    /// load has not finished (see [`LoadGuard`]), so cancelled callers leave nothing behind.
    loads: Arc<Loads>,
    health: Arc<Health>,
}

impl std::fmt::Debug for DetailCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetailCache").field("ttl", &self.ttl).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// Why Redis was not used for one command.
#[derive(Debug, Error)]
enum RedisFault {
    #[error("Redis failed a moment ago; skipping it for now")]
    BackingOff,
    #[error("Redis did not answer within {0:?}")]
    TimedOut(Duration),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// What Redis said about an item.
enum Lookup {
    /// Cached: the item, or `None` for an id cached as unknown.
    Hit(Option<Item>),
    Miss,
    Unavailable,
}

/// Since when Redis is to be skipped, shared by the clones of a cache.
#[derive(Debug)]
struct Health {
    origin: Instant,
    /// Milliseconds since `origin` until which Redis is skipped.
    skip_until: AtomicU64,
}

impl Health {
    fn new() -> Self {
        Health { origin: Instant::now(), skip_until: AtomicU64::new(0) }
    }

    fn now_millis(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn backing_off(&self) -> bool {
        self.now_millis() < self.skip_until.load(Ordering::Relaxed)
    }

    /// Records a failure; says whether Redis was thought healthy until now, so that an outage is logged once
    /// per back-off rather than once per request.
    fn failed(&self) -> bool {
        let now = self.now_millis();
        let until = now.saturating_add(u64::try_from(REDIS_BACKOFF.as_millis()).unwrap_or(u64::MAX));
        self.skip_until.swap(until, Ordering::Relaxed) <= now
    }
}

impl DetailCache {
    /// Connects to Redis at `url` (`redis://host:port/db`). Later commands are bounded by [`REDIS_TIMEOUT`] and
    /// reconnect by themselves; only this first connection must succeed, so that a wrong URL is seen at once.
    ///
    /// # Errors
    /// When the URL is invalid or Redis cannot be reached within [`REDIS_CONNECT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(REDIS_TIMEOUT)
            .set_connection_timeout(REDIS_CONNECT_TIMEOUT)
            // One attempt per reconnection: retries would keep the shared reconnection pending for seconds,
            // and every command waits on it. Instead a failed attempt fails fast, and the next request after
            // the back-off starts another.
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(DetailCache {
            connection,
            ttl: DEFAULT_TTL,
            prefix: "seckill:detail:".into(),
            loads: Arc::default(),
            health: Arc::new(Health::new()),
        })
    }

    /// How long entries live (default 1 s).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// The prefix of the cache's keys (default `seckill:detail:`), to keep several apps apart in one Redis.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key an item is cached under.
    pub fn key(&self, seckill_id: i64) -> String {
        format!("{}{seckill_id}", self.prefix)
    }

    /// The item, from Redis or else the database.
    ///
    /// # Errors
    /// The database's error when Redis has nothing and the database fails.
    pub async fn get(&self, service: &Seckill, seckill_id: i64) -> Result<Option<Item>, SeckillError> {
        match self.cached(seckill_id).await {
            Lookup::Hit(item) => Ok(item),
            Lookup::Miss | Lookup::Unavailable => self.load_once(service, seckill_id).await,
        }
    }

    /// How many items have a load in progress: what the single-flight table holds.
    #[doc(hidden)]
    pub fn pending_loads(&self) -> usize {
        lock(&self.loads).len()
    }

    /// The cached item, a miss, or Redis unavailable.
    async fn cached(&self, seckill_id: i64) -> Lookup {
        let mut connection = self.connection.clone();
        let key = self.key(seckill_id);
        match self.bounded(async move { connection.get::<_, Option<String>>(key).await }).await {
            // An entry that does not parse (another version's format) is a miss, and is overwritten.
            Ok(Some(json)) => serde_json::from_str::<Option<Item>>(&json).map_or(Lookup::Miss, Lookup::Hit),
            Ok(None) => Lookup::Miss,
            Err(_) => Lookup::Unavailable,
        }
    }

    /// Loads from the database and fills the cache, one load at a time per item in this process.
    async fn load_once(&self, service: &Seckill, seckill_id: i64) -> Result<Option<Item>, SeckillError> {
        let guard = LoadGuard::join(&self.loads, seckill_id);
        let load = || async {
            // A load that finished just before this one started has filled the cache already.
            if let Lookup::Hit(item) = self.cached(seckill_id).await {
                return Ok(item);
            }
            let loaded = service.get(seckill_id).await.map_err(|e| e.to_string());
            if let Ok(item) = &loaded {
                self.store(seckill_id, item).await;
            }
            loaded
        };
        let result = match guard.load.as_deref() {
            Some(shared) => shared.get_or_init(load).await.clone(),
            // Only `drop` empties the guard; were it empty, loading alone would still be right.
            None => load().await,
        };
        drop(guard);
        result.map_err(|message| SeckillError::Database(DatabaseError::Unreachable(message)))
    }

    async fn store(&self, seckill_id: i64, item: &Option<Item>) {
        let Ok(json) = serde_json::to_string(item) else { return };
        let millis = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut connection = self.connection.clone();
        let key = self.key(seckill_id);
        // Failures are logged by `bounded`; the item goes out uncached.
        let _ = self.bounded(async move { connection.pset_ex::<_, _, ()>(key, json, millis).await }).await;
    }

    /// Runs one Redis command within [`REDIS_TIMEOUT`], unless Redis is being skipped after a failure.
    async fn bounded<T>(&self, command: impl Future<Output = redis::RedisResult<T>>) -> Result<T, RedisFault> {
        if self.health.backing_off() {
            return Err(RedisFault::BackingOff);
        }
        let fault = match tokio::time::timeout(REDIS_TIMEOUT, command).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) if !(error.is_io_error() || error.is_unrecoverable_error()) => {
                // Redis answered, with an error about this command (a wrong type, out of memory for a write):
                // it is up, so other commands still use it.
                tracing::warn!(%error, "detail cache command failed");
                return Err(RedisFault::Redis(error));
            }
            Ok(Err(error)) => RedisFault::Redis(error),
            Err(_) => RedisFault::TimedOut(REDIS_TIMEOUT),
        };
        if self.health.failed() {
            tracing::warn!(error = %fault, backoff = ?REDIS_BACKOFF, "detail cache unavailable; reading the database");
        }
        Err(fault)
    }
}

fn lock(loads: &Loads) -> MutexGuard<'_, HashMap<i64, Load>> {
    loads.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One caller's share of an item's load. Every clone and drop of a [`Load`] happens under the table's mutex,
/// so the count of holders is exact there: the entry goes when its load has finished (later callers start a
/// fresh one) or when its last holder leaves, finished or cancelled.
struct LoadGuard<'a> {
    loads: &'a Loads,
    seckill_id: i64,
    load: Option<Load>,
}

impl<'a> LoadGuard<'a> {
    fn join(loads: &'a Loads, seckill_id: i64) -> Self {
        let load = lock(loads).entry(seckill_id).or_default().clone();
        LoadGuard { loads, seckill_id, load: Some(load) }
    }
}

impl Drop for LoadGuard<'_> {
    fn drop(&mut self) {
        let mut loads = lock(self.loads);
        let Some(ours) = self.load.take() else { return };
        // The table's reference and ours: nobody else is waiting on this load.
        let last = Arc::strong_count(&ours) == 2;
        if loads.get(&self.seckill_id).is_some_and(|entry| Arc::ptr_eq(entry, &ours) && (last || ours.initialized())) {
            loads.remove(&self.seckill_id);
        }
        drop(ours);
        drop(loads);
    }
}
