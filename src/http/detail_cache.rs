//! Item details from Redis: cache-aside with a short TTL, for the pages' reads only.
//!
//! A miss loads the item from the database and stores it (unknown ids too, briefly, so a flood of bogus ids
//! does not reach the database). Concurrent misses for one item in this process share one load, so an expiry
//! under load costs the database one query per process, not one per request. Redis failing never fails a
//! request: the database answers instead. Stock decisions never read this cache; the stock it shows may be a
//! TTL old.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use tokio::sync::OnceCell;

use crate::seckill::{Item, Seckill, SeckillError};

/// How long a detail stays cached by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

type Load = Arc<OnceCell<Result<Option<Item>, String>>>;

/// A Redis-backed cache of item details. Cheap to clone.
#[derive(Clone)]
pub struct DetailCache {
    connection: MultiplexedConnection,
    ttl: Duration,
    prefix: String,
    loads: Arc<Mutex<HashMap<i64, Load>>>,
}

impl std::fmt::Debug for DetailCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetailCache").field("ttl", &self.ttl).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl DetailCache {
    /// Connects to Redis at `url` (`redis://host:port/db`).
    ///
    /// # Errors
    /// When the URL is invalid or Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, redis::RedisError> {
        let connection = redis::Client::open(url)?.get_multiplexed_async_connection().await?;
        Ok(DetailCache { connection, ttl: DEFAULT_TTL, prefix: "seckill:detail:".into(), loads: Arc::default() })
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
            Some(item) => Ok(item),
            None => self.load_once(service, seckill_id).await,
        }
    }

    /// The cached item (`Some(None)`: cached as unknown), or `None` on a miss or when Redis fails.
    async fn cached(&self, seckill_id: i64) -> Option<Option<Item>> {
        let mut connection = self.connection.clone();
        match connection.get::<_, Option<String>>(self.key(seckill_id)).await {
            Ok(Some(json)) => serde_json::from_str::<Option<Item>>(&json).ok(),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "detail cache unavailable; reading the database");
                None
            }
        }
    }

    /// Loads from the database and fills the cache, one load at a time per item in this process.
    async fn load_once(&self, service: &Seckill, seckill_id: i64) -> Result<Option<Item>, SeckillError> {
        let load: Load = {
            let mut loads = self.loads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            loads.entry(seckill_id).or_default().clone()
        };
        let result = load
            .get_or_init(|| async {
                // A load that finished just before this one started has filled the cache already.
                if let Some(item) = self.cached(seckill_id).await {
                    return Ok(item);
                }
                let loaded = service.get(seckill_id).await.map_err(|e| e.to_string());
                if let Ok(item) = &loaded {
                    self.store(seckill_id, item).await;
                }
                loaded
            })
            .await
            .clone();
        let mut loads = self.loads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if loads.get(&seckill_id).is_some_and(|current| Arc::ptr_eq(current, &load)) {
            loads.remove(&seckill_id);
        }
        drop(loads);
        result.map_err(|message| SeckillError::Database(crate::database_error::DatabaseError::Unreachable(message)))
    }

    async fn store(&self, seckill_id: i64, item: &Option<Item>) {
        let Ok(json) = serde_json::to_string(item) else { return };
        let millis = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut connection = self.connection.clone();
        if let Err(error) = connection.pset_ex::<_, _, ()>(self.key(seckill_id), json, millis).await {
            tracing::warn!(%error, "could not fill the detail cache");
        }
    }
}
