//! A Redis connection that never holds a request up for long and fails open: shared by everything that uses
//! Redis as an optional accelerator in front of the database (the item-detail cache, the lottery's "all drawn"
//! flag, the shared closed state).
//!
//! Every command is given up after [`REDIS_TIMEOUT`] and the caller falls back to the database. After a
//! failure, commands skip Redis for [`REDIS_BACKOFF`], so a hung Redis costs one request in a while that much,
//! not every request. The connection is redis's [`ConnectionManager`], which reconnects after Redis restarts;
//! the attempt is started by the first command that finds the connection broken, in the background, so no
//! command waits for it beyond the same bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use thiserror::Error;

/// The longest one Redis command may take (including waiting for a reconnection in progress) before the caller
/// gives up on it and reads the database.
///
/// Redis answers a GET in well under a millisecond on a local network, and even a fork for a snapshot of a
/// large dataset stalls it for a few tens of milliseconds; a command not answered in 100 ms means a Redis that
/// is stopped, swapping or gone, and the database's primary-key read that replaces it takes about a
/// millisecond. It is also small next to what a page can wait, so a hung Redis is not visible to users.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(100);

/// The longest one connection attempt (TCP connect and handshake) may take. Only [`BoundedRedis::connect`]
/// waits for it; reconnections run in the background while commands are bounded by [`REDIS_TIMEOUT`]. A
/// connection to a Redis on the same network takes a millisecond or two; 250 ms leaves room for a slow start
/// without letting a half-open connection (a stopped Redis whose kernel still accepts) hold a reconnection up.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);

/// After Redis fails or times out, how long commands go straight to the database. A command sent to a stopped
/// Redis waits in its connection until Redis answers or the connection goes; skipping Redis for a while keeps
/// those to a few, and spaces the reconnection attempts against a Redis that is down.
pub const REDIS_BACKOFF: Duration = Duration::from_millis(500);

/// Why Redis was not used for one command.
#[derive(Debug, Error)]
pub enum RedisFault {
    #[error("Redis failed a moment ago; skipping it for now")]
    BackingOff,
    #[error("Redis did not answer within {0:?}")]
    TimedOut(Duration),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// A Redis connection whose commands are bounded in time and skipped for a while after a failure. Cheap to
/// clone; clones share the connection and its health.
#[derive(Clone)]
pub struct BoundedRedis {
    connection: ConnectionManager,
    health: Arc<Health>,
}

impl std::fmt::Debug for BoundedRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedRedis").finish_non_exhaustive()
    }
}

/// Since when Redis is to be skipped, shared by the clones of a connection.
#[derive(Debug)]
struct Health {
    origin: Instant,
    /// Milliseconds since `origin` until which Redis is skipped.
    skip_until: AtomicU64,
    /// How many times Redis was found failing after it was thought healthy.
    failures: AtomicU64,
}

impl Health {
    fn new() -> Self {
        Health { origin: Instant::now(), skip_until: AtomicU64::new(0), failures: AtomicU64::new(0) }
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
        let was_healthy = self.skip_until.swap(until, Ordering::Relaxed) <= now;
        if was_healthy {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        was_healthy
    }
}

impl BoundedRedis {
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
            // and every command waits on it. Instead a failed attempt fails fast, and the next command after
            // the back-off starts another.
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(BoundedRedis { connection, health: Arc::new(Health::new()) })
    }

    /// A handle on the connection for one command, to pass to [`BoundedRedis::bounded`].
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// How many times Redis has been found failing after it was thought healthy, by any clone of this
    /// connection: a change tells that Redis may have lost what was written to it (a restart starts empty).
    pub fn failures(&self) -> u64 {
        self.health.failures.load(Ordering::Relaxed)
    }

    /// Whether commands are skipping Redis now, after a failure.
    pub fn backing_off(&self) -> bool {
        self.health.backing_off()
    }

    /// Runs one Redis command within [`REDIS_TIMEOUT`], unless Redis is being skipped after a failure. `user`
    /// names who runs it, in the warning logged once per outage.
    ///
    /// # Errors
    /// Why Redis was not used: the caller falls back to the database.
    pub async fn bounded<T>(
        &self,
        user: &'static str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisFault> {
        if self.health.backing_off() {
            return Err(RedisFault::BackingOff);
        }
        let fault = match tokio::time::timeout(REDIS_TIMEOUT, command).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) if !(error.is_io_error() || error.is_unrecoverable_error()) => {
                // Redis answered, with an error about this command (a wrong type, out of memory for a write):
                // it is up, so other commands still use it.
                tracing::warn!(%error, user, "Redis command failed");
                return Err(RedisFault::Redis(error));
            }
            Ok(Err(error)) => RedisFault::Redis(error),
            Err(_) => RedisFault::TimedOut(REDIS_TIMEOUT),
        };
        if self.health.failed() {
            tracing::warn!(error = %fault, backoff = ?REDIS_BACKOFF, user, "Redis unavailable; using the database");
        }
        Err(fault)
    }
}
