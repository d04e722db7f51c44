//! Item details from Redis: cache-aside with a short TTL, for the pages' reads only.
//!
//! A miss loads the item from the database and stores it (unknown ids too, briefly, so a flood of bogus ids
//! does not reach the database). Concurrent misses for one item share one load, in this process (single
//! flight) and across processes (a lease in Redis), so an expiry under load costs the database about one query
//! in all, not one per request or per process. Stock decisions never read this cache; the stock it shows may be
//! a TTL old.
//!
//! The lease: the process whose miss comes first takes `{prefix}{id}:lease` (`SET NX PX`, [`LEASE_TTL`]), loads
//! the item, stores it and lets the lease go (deleting it only if it is still its own). The others, finding
//! the lease taken, look for the item in the cache every [`LEASE_POLL`] and take the lease themselves once it
//! is gone, so a holder that dies or whose load fails costs them at most the lease's life; after
//! [`LEASE_WAIT`] in all they load the item themselves whatever the lease says.
//!
//! Redis failing never fails a request, and never holds one up for long: every Redis command is given up
//! after [`REDIS_TIMEOUT`] and the database answers instead, and after a failure reads skip Redis for
//! [`REDIS_BACKOFF`] (the shared [`BoundedRedis`] connection, which also reconnects after Redis restarts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tokio::sync::OnceCell;

use crate::database::error::DatabaseError;
use crate::seckill::{Item, Seckill, SeckillError};
use crate::shared_state::bounded_redis::BoundedRedis;

/// How long a detail stays cached by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

pub use crate::shared_state::bounded_redis::{REDIS_BACKOFF, REDIS_CONNECT_TIMEOUT, REDIS_TIMEOUT};

/// How long a process's lease on loading one item lasts. The load is one primary-key read (a millisecond or
/// so) and two Redis commands; a holder that has not stored the item by then is slow or gone, and another
/// process takes over.
pub const LEASE_TTL: Duration = Duration::from_millis(200);

/// The longest a process waits for another's load, in all, before it loads the item itself.
pub const LEASE_WAIT: Duration = Duration::from_millis(300);

/// How often a process waiting for another's load looks for the item (and for the lease's end).
pub const LEASE_POLL: Duration = Duration::from_millis(10);

/// Who runs the cache's Redis commands, in Redis warnings.
const USER: &str = "detail cache";

/// Lets a lease go only if it is still the one taken: a slow holder whose lease ran out must not delete the
/// next holder's.
const RELEASE_LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// What a lease attempt came to.
enum Lease {
    /// Taken, with this token.
    Held(String),
    /// Another process holds it.
    Taken,
    Unavailable,
}

type Load = Arc<OnceCell<Result<Option<Item>, String>>>;
type Loads = Mutex<HashMap<i64, Load>>;

/// A Redis-backed cache of item details. Cheap to clone.
#[derive(Clone)]
pub struct DetailCache {
    redis: BoundedRedis,
    ttl: Duration,
    prefix: String,
    /// The loads in progress, one per item. An entry lives exactly while a caller is waiting on it and its
    /// load has not finished (see [`LoadGuard`]), so cancelled callers leave nothing behind.
    loads: Arc<Loads>,
}

impl std::fmt::Debug for DetailCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetailCache").field("ttl", &self.ttl).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// What Redis said about an item.
enum Lookup {
    /// Cached: the item, or `None` for an id cached as unknown.
    Hit(Option<Item>),
    Miss,
    Unavailable,
}

impl DetailCache {
    /// Connects to Redis at `url` (`redis://host:port/db`). Later commands are bounded by [`REDIS_TIMEOUT`] and
    /// reconnect by themselves; only this first connection must succeed, so that a wrong URL is seen at once.
    ///
    /// # Errors
    /// When the URL is invalid or Redis cannot be reached within [`REDIS_CONNECT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self::new(BoundedRedis::connect(url).await?))
    }

    /// A cache over a connection shared with the rest of the app (the closed state, the buyer limit).
    pub fn new(redis: BoundedRedis) -> Self {
        DetailCache { redis, ttl: DEFAULT_TTL, prefix: "seckill:detail:".into(), loads: Arc::default() }
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
        let mut connection = self.redis.connection();
        let key = self.key(seckill_id);
        match self.redis.bounded(USER, async move { connection.get::<_, Option<String>>(key).await }).await {
            // An entry that does not parse (another version's format) is a miss, and is overwritten.
            Ok(Some(json)) => serde_json::from_str::<Option<Item>>(&json).map_or(Lookup::Miss, Lookup::Hit),
            Ok(None) => Lookup::Miss,
            Err(_) => Lookup::Unavailable,
        }
    }

    /// Loads from the database and fills the cache, one load at a time per item in this process.
    async fn load_once(&self, service: &Seckill, seckill_id: i64) -> Result<Option<Item>, SeckillError> {
        let guard = LoadGuard::join(&self.loads, seckill_id);
        let load = || self.load_shared(service, seckill_id);
        let result = match guard.load.as_deref() {
            Some(shared) => shared.get_or_init(load).await.clone(),
            // Only `drop` empties the guard; were it empty, loading alone would still be right.
            None => load().await,
        };
        drop(guard);
        result.map_err(|message| SeckillError::Database(DatabaseError::Unreachable(message)))
    }

    /// Loads under the item's lease across processes: the holder loads, the others wait for its value (at most
    /// [`LEASE_WAIT`]); without Redis, this process loads.
    async fn load_shared(&self, service: &Seckill, seckill_id: i64) -> Result<Option<Item>, String> {
        let deadline = Instant::now() + LEASE_WAIT;
        loop {
            match self.lease(seckill_id).await {
                Lease::Held(token) => {
                    // A holder that finished just before this one took the lease has filled the cache already.
                    let loaded = match self.cached(seckill_id).await {
                        Lookup::Hit(item) => Ok(item),
                        Lookup::Miss | Lookup::Unavailable => self.load_and_store(service, seckill_id).await,
                    };
                    self.release(seckill_id, token).await;
                    return loaded;
                }
                Lease::Unavailable => return self.load_and_store(service, seckill_id).await,
                Lease::Taken => {}
            }
            if Instant::now() >= deadline {
                // The holder is slow: this process does not wait any longer.
                return self.load_and_store(service, seckill_id).await;
            }
            tokio::time::sleep(LEASE_POLL).await;
            match self.cached(seckill_id).await {
                Lookup::Hit(item) => return Ok(item),
                Lookup::Miss => {}
                Lookup::Unavailable => return self.load_and_store(service, seckill_id).await,
            }
        }
    }

    async fn load_and_store(&self, service: &Seckill, seckill_id: i64) -> Result<Option<Item>, String> {
        let loaded = service.get(seckill_id).await.map_err(|e| e.to_string());
        if let Ok(item) = &loaded {
            self.store(seckill_id, item).await;
        }
        loaded
    }

    /// The key of the lease on loading an item.
    pub fn lease_key(&self, seckill_id: i64) -> String {
        format!("{}{seckill_id}:lease", self.prefix)
    }

    async fn lease(&self, seckill_id: i64) -> Lease {
        static TAKEN: AtomicU64 = AtomicU64::new(0);
        let token = format!("{}-{}", std::process::id(), TAKEN.fetch_add(1, Ordering::Relaxed));
        let millis = u64::try_from(LEASE_TTL.as_millis()).unwrap_or(u64::MAX);
        let mut set = redis::cmd("SET");
        set.arg(self.lease_key(seckill_id)).arg(&token).arg("NX").arg("PX").arg(millis);
        let mut connection = self.redis.connection();
        match self.redis.bounded(USER, async move { set.query_async::<Option<String>>(&mut connection).await }).await {
            Ok(Some(_)) => Lease::Held(token),
            Ok(None) => Lease::Taken,
            Err(_) => Lease::Unavailable,
        }
    }

    async fn release(&self, seckill_id: i64, token: String) {
        let mut eval = redis::cmd("EVAL");
        eval.arg(RELEASE_LEASE).arg(1).arg(self.lease_key(seckill_id)).arg(token);
        let mut connection = self.redis.connection();
        // A lease not let go ends by itself after LEASE_TTL.
        let _ = self.redis.bounded(USER, async move { eval.query_async::<i64>(&mut connection).await }).await;
    }

    async fn store(&self, seckill_id: i64, item: &Option<Item>) {
        let Ok(json) = serde_json::to_string(item) else { return };
        let millis = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut connection = self.redis.connection();
        let key = self.key(seckill_id);
        // Failures are logged by `bounded`; the item goes out uncached.
        let _ = self.redis.bounded(USER, async move { connection.pset_ex::<_, _, ()>(key, json, millis).await }).await;
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
