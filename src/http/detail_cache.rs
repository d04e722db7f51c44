//! Item details from Redis: cache-aside with a short TTL, for the pages' reads only.
//!
//! A miss loads the item from the database and stores it (unknown ids too, briefly, so a flood of bogus ids
//! does not reach the database). Concurrent misses for one item in this process share one load, so an expiry
//! under load costs the database one query per process, not one per request. Stock decisions never read this
//! cache; the stock it shows may be a TTL old.
//!
//! Redis failing never fails a request, and never holds one up for long: every Redis command is given up
//! after [`REDIS_TIMEOUT`] and the database answers instead, and after a failure reads skip Redis for
//! [`REDIS_BACKOFF`] (the shared [`BoundedRedis`] connection, which also reconnects after Redis restarts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::OnceCell;

use crate::bounded_redis::BoundedRedis;
use crate::database_error::DatabaseError;
use crate::seckill::{Item, Seckill, SeckillError};

/// How long a detail stays cached by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

pub use crate::bounded_redis::{REDIS_BACKOFF, REDIS_CONNECT_TIMEOUT, REDIS_TIMEOUT};

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
        let redis = BoundedRedis::connect(url).await?;
        Ok(DetailCache { redis, ttl: DEFAULT_TTL, prefix: "seckill:detail:".into(), loads: Arc::default() })
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
        match self.redis.bounded("detail cache", async move { connection.get::<_, Option<String>>(key).await }).await {
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
        let mut connection = self.redis.connection();
        let key = self.key(seckill_id);
        // Failures are logged by `bounded`; the item goes out uncached.
        let _ = self
            .redis
            .bounded("detail cache", async move { connection.pset_ex::<_, _, ()>(key, json, millis).await })
            .await;
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
