//! The seckill service: items, the exposer and execution, over one pool and one signing configuration.

use std::sync::Arc;

use chrono::Utc;
use mysql_async::Pool;

use super::error::SeckillError;
use super::executor::{Executor, ExecutorConfig, ExecutorStats};
use super::exposure::Exposure;
use super::item::{self, Item, NewItem, Window};
use super::item_state::{self, ItemState};
use super::outcome::{Outcome, SuccessKilled};
use super::phone::Phone;
use crate::bounded_redis::BoundedRedis;
use crate::closed_state::{ClosedState, Reopening};
use crate::signing::Signer;

/// Runs flash sales: cheap to clone, share one per application.
#[derive(Clone, Debug)]
pub struct Seckill {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    signer: Signer,
    executor: Executor,
    config: ExecutorConfig,
}

impl Seckill {
    /// A service over `pool` (see [`crate::database::ConnectOptions`]) signing with `signer`, batching
    /// concurrent seckills of one item (see [`ExecutorConfig`]).
    pub fn new(pool: Pool, signer: Signer) -> Self {
        Self::with_executor(pool, signer, ExecutorConfig::default())
    }

    /// A service with its own executor settings, e.g. `batching: false` for one procedure call per seckill.
    pub fn with_executor(pool: Pool, signer: Signer, config: ExecutorConfig) -> Self {
        let executor = Executor::new(pool.clone(), config, None);
        Seckill { inner: Arc::new(Inner { pool, signer, executor, config }) }
    }

    /// The same service sharing items' closed state (sold out, ended) through `redis`, under keys
    /// `{prefix}{seckill_id}:state` (prefix `seckill:item:` by default, see [`super::item_state`]): what one
    /// instance's batch learns, every instance answers without its database. Redis failing never fails a
    /// seckill: it is skipped and the database answers. The executor starts afresh (its lanes are per service).
    pub fn with_redis(self, redis: BoundedRedis, prefix: Option<&str>) -> Self {
        let prefix = prefix.unwrap_or(item_state::DEFAULT_KEY_PREFIX);
        let state = ClosedState::<ItemState>::new(Some(redis), prefix, Reopening::ByGeneration, item_state::USER);
        let (pool, signer, config) = (self.inner.pool.clone(), self.inner.signer.clone(), self.inner.config);
        let executor = Executor::new(pool.clone(), config, Some(state));
        Seckill { inner: Arc::new(Inner { pool, signer, executor, config }) }
    }

    /// The Redis key of an item's shared closed state, when it is shared ([`Seckill::with_redis`]).
    pub fn state_key(&self, seckill_id: i64) -> Option<String> {
        self.inner.executor.state_key(seckill_id)
    }

    /// What the executor has done so far.
    pub fn executor_stats(&self) -> ExecutorStats {
        self.inner.executor.stats()
    }

    /// The pool the service uses.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The signing configuration.
    pub fn signer(&self) -> &Signer {
        &self.inner.signer
    }

    /// Items, newest first, at most `limit`.
    ///
    /// # Errors
    /// [`SeckillError::Database`].
    pub async fn list(&self, limit: u32) -> Result<Vec<Item>, SeckillError> {
        item::list(self.pool(), limit).await
    }

    /// One item, or `None`.
    ///
    /// # Errors
    /// [`SeckillError::Database`].
    pub async fn get(&self, seckill_id: i64) -> Result<Option<Item>, SeckillError> {
        Ok(item::get_with_now(self.pool(), seckill_id).await?.0)
    }

    /// Creates an item (an admin operation).
    ///
    /// # Errors
    /// [`SeckillError::InvalidItem`] for an empty or long name, negative stock or an end not after the start.
    pub async fn create(&self, new_item: &NewItem) -> Result<Item, SeckillError> {
        item::create(self.pool(), new_item).await
    }

    /// Adds stock to an item and returns the new stock, and reopens it: this instance's lanes at once, and the
    /// shared closed state (deleted in Redis, its generation incremented, retried in the background if Redis is
    /// down). Other instances see it within 100 ms, as does a balancer that caches the key that long.
    ///
    /// # Errors
    /// [`SeckillError::NotFound`], [`SeckillError::InvalidItem`] for a non-positive amount.
    pub async fn add_stock(&self, seckill_id: i64, amount: i32) -> Result<i32, SeckillError> {
        let stock = item::add_stock(self.pool(), seckill_id, amount).await?;
        self.inner.executor.reopen(seckill_id).await;
        Ok(stock)
    }

    /// Whether `phone`'s seckill of `seckill_id` went through: the committed success record, or `None`. The
    /// answer to an [`Outcome::InnerError`] that was in doubt, once the database is back.
    ///
    /// # Errors
    /// [`SeckillError::Database`].
    pub async fn kill_record(&self, seckill_id: i64, phone: Phone) -> Result<Option<SuccessKilled>, SeckillError> {
        item::kill_record(self.pool(), seckill_id, phone).await
    }

    /// The database's clock: the one every sale window is decided by.
    ///
    /// # Errors
    /// [`SeckillError::Database`].
    pub async fn now(&self) -> Result<chrono::DateTime<Utc>, SeckillError> {
        item::database_now(self.pool()).await
    }

    /// What a page may know about an item for `phone`: the signed token if the sale is open, otherwise the
    /// database's clock and the window for a countdown. Open means `start <= now < end`; stock is not looked
    /// at (a sold-out item still exposes, and execution says sold out), as in the classic design.
    ///
    /// # Errors
    /// [`SeckillError::Database`].
    pub async fn expose(&self, seckill_id: i64, phone: Phone) -> Result<Exposure, SeckillError> {
        let (item, now) = item::get_with_now(self.pool(), seckill_id).await?;
        let Some(item) = item else {
            return Ok(Exposure::NotFound { now });
        };
        let (start, end) = (item.start_time, item.end_time);
        Ok(match item.window_at(now) {
            Window::Open => {
                // The token's expiry runs on this server's clock, which is also the clock that checks it.
                let token = self.signer().sign(seckill_id, phone, Utc::now());
                Exposure::Open { token, now, start, end }
            }
            Window::NotStarted | Window::Ended => Exposure::Closed { now, start, end },
        })
    }

    /// Checks the signature and runs the seckill. A bad, expired or another user's signature is
    /// [`Outcome::Tampered`] and touches nothing; every failure past that is [`Outcome::InnerError`], which says
    /// whether the seckill may have committed (`in_doubt`: ask [`Seckill::kill_record`]).
    pub async fn execute(&self, seckill_id: i64, phone: Phone, signature: &str) -> Outcome {
        if self.signer().verify(seckill_id, phone, signature, Utc::now()).is_err() {
            return Outcome::Tampered;
        }
        self.execute_verified(seckill_id, phone).await
    }

    /// Runs the seckill through the executor without a signature check (the caller vouches for the user).
    /// Concurrent requests for one item share one transaction; the result is the same as if they had run one
    /// by one in the order of the calls. A request that finds the item known sold out or ended (in memory, or
    /// in the shared state in Redis) is answered without the database.
    pub async fn execute_verified(&self, seckill_id: i64, phone: Phone) -> Outcome {
        self.inner.executor.execute(seckill_id, phone).await
    }

    /// Queues the request at once and returns the future of its outcome: the order of `submit` calls is the
    /// arrival order batches honour. Consults only this instance's memory of the shared state (no Redis
    /// lookup). Needs a tokio runtime.
    pub fn submit_verified(&self, seckill_id: i64, phone: Phone) -> impl Future<Output = Outcome> + Send + 'static {
        self.inner.executor.submit(seckill_id, phone)
    }

    /// Runs one seckill with its own procedure call, bypassing the executor and the sold-out memory: exactly
    /// one round trip to the database.
    pub async fn execute_one(&self, seckill_id: i64, phone: Phone) -> Outcome {
        let decided = super::execute_seckill::execute_seckill(self.pool(), seckill_id, phone).await;
        decided.outcomes.into_iter().next().unwrap_or_else(|| Outcome::in_doubt("no outcome"))
    }
}
