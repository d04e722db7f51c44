//! The seckill service: items, the exposer and execution, over one database (a primary, and replicas for
//! reads) and one signing configuration.
//!
//! What goes where: execution, the exposer (it decides from the sale window and the clock), item creation and
//! stock on the primary; the list and item details on a replica when there is one ([`Consistency::Eventual`]);
//! "did my seckill go through?" on the primary, or on a replica that has applied the buyer's last write when its
//! GTID is known ([`Seckill::kill_record_after`]), so a buyer told "success" is never told "no" afterwards.

use std::sync::Arc;

use chrono::Utc;
use mysql_async::Pool;

use super::closed::{self, ItemState};
use super::error::SeckillError;
use super::exposure::Exposure;
use super::item::{self, Item, NewItem, Window};
use super::lanes::{LaneConfig, LaneStats, Lanes};
use super::outcome::{Outcome, SuccessKilled};
use super::phone::Phone;
use super::signing::Signer;
use crate::database::{Consistency, GtidPosition, ReadWriteSplit, WithGtid};
use crate::shared_state::bounded_redis::BoundedRedis;
use crate::shared_state::closed::{ClosedState, Reopening};

/// Runs flash sales: cheap to clone, share one per application.
#[derive(Clone, Debug)]
pub struct Seckill {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    database: ReadWriteSplit,
    signer: Signer,
    lanes: Lanes,
    config: LaneConfig,
}

impl Seckill {
    /// A service over `database` signing with `signer`, batching concurrent seckills of one item (see
    /// [`LaneConfig`]). `database` is a pool (the primary alone, see [`crate::database::ConnectOptions`]) or
    /// a [`ReadWriteSplit`] with replicas ([`crate::database::ConnectOptions::build_split`]).
    pub fn new(database: impl Into<ReadWriteSplit>, signer: Signer) -> Self {
        Self::with_config(database, signer, LaneConfig::default())
    }

    /// A service with its own lane settings, e.g. `batching: false` for one procedure call per seckill.
    pub fn with_config(database: impl Into<ReadWriteSplit>, signer: Signer, config: LaneConfig) -> Self {
        let database = database.into();
        let lanes = Lanes::new(database.clone(), config, None);
        Seckill { inner: Arc::new(Inner { database, signer, lanes, config }) }
    }

    /// The same service sharing items' closed state (sold out, ended) through `redis`, under keys
    /// `{prefix}{seckill_id}:state` (prefix `seckill:item:` by default, see [`super::closed`]): what one
    /// instance's batch learns, every instance answers without its database. Redis failing never fails a
    /// seckill: it is skipped and the database answers. The lanes start afresh (they are per service).
    pub fn with_redis(self, redis: BoundedRedis, prefix: Option<&str>) -> Self {
        let prefix = prefix.unwrap_or(closed::DEFAULT_KEY_PREFIX);
        let state = ClosedState::<ItemState>::new(Some(redis), prefix, Reopening::ByGeneration, closed::USER);
        let (database, signer, config) = (self.inner.database.clone(), self.inner.signer.clone(), self.inner.config);
        let lanes = Lanes::new(database.clone(), config, Some(state));
        Seckill { inner: Arc::new(Inner { database, signer, lanes, config }) }
    }

    /// The Redis key of an item's shared closed state, when it is shared ([`Seckill::with_redis`]).
    pub fn state_key(&self, seckill_id: i64) -> Option<String> {
        self.inner.lanes.state_key(seckill_id)
    }

    /// What the lanes have done so far.
    pub fn lane_stats(&self) -> LaneStats {
        self.inner.lanes.stats()
    }

    /// The primary's pool: every write and decision goes there.
    pub fn pool(&self) -> &Pool {
        self.inner.database.primary()
    }

    /// The primary and the replicas the service reads from.
    pub fn database(&self) -> &ReadWriteSplit {
        &self.inner.database
    }

    /// The signing configuration.
    pub fn signer(&self) -> &Signer {
        &self.inner.signer
    }

    /// Items, newest first, at most `limit`; from a replica when there is one (stock shown may lag a little).
    ///
    /// # Errors
    /// [`SeckillError::Database`].
    pub async fn list(&self, limit: u32) -> Result<Vec<Item>, SeckillError> {
        let reads = &self.inner.database;
        reads.read(&Consistency::Eventual, |conn| Box::pin(item::list(conn, limit))).await
    }

    /// One item, or `None`; from a replica when there is one (an item created a moment ago may not show yet).
    ///
    /// # Errors
    /// [`SeckillError::Database`].
    pub async fn get(&self, seckill_id: i64) -> Result<Option<Item>, SeckillError> {
        let reads = &self.inner.database;
        let (item, _now) =
            reads.read(&Consistency::Eventual, |conn| Box::pin(item::get_with_now(conn, seckill_id))).await?;
        Ok(item)
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
        self.inner.lanes.reopen(seckill_id).await;
        Ok(stock)
    }

    /// Whether `phone`'s seckill of `seckill_id` went through: the committed success record, or `None`. The
    /// answer to an [`Outcome::InnerError`] that was in doubt, once the database is back.
    ///
    /// # Errors
    /// [`SeckillError::Database`].
    pub async fn kill_record(&self, seckill_id: i64, phone: Phone) -> Result<Option<SuccessKilled>, SeckillError> {
        self.kill_record_after(seckill_id, phone, None).await
    }

    /// As [`Seckill::kill_record`], on a replica that has applied `after` (the GTIDs of the buyer's writes,
    /// e.g. from [`Seckill::execute_with_gtid`]) when one is given and a replica applies it in time, else on the
    /// primary. Never a stale "no" after a success whose GTID is in `after`.
    ///
    /// # Errors
    /// [`SeckillError::Database`].
    pub async fn kill_record_after(
        &self,
        seckill_id: i64,
        phone: Phone,
        after: Option<&GtidPosition>,
    ) -> Result<Option<SuccessKilled>, SeckillError> {
        let consistency = Consistency::after_or_primary(after.cloned());
        let reads = &self.inner.database;
        reads.read(&consistency, |conn| Box::pin(item::kill_record(conn, seckill_id, phone))).await
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
        // A decision (the token is given only inside the window), so the primary's item and clock.
        let reads = &self.inner.database;
        let (item, now) =
            reads.read(&Consistency::Primary, |conn| Box::pin(item::get_with_now(conn, seckill_id))).await?;
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
        self.execute_with_gtid(seckill_id, phone, signature).await.outcome
    }

    /// As [`Seckill::execute`], with the GTID of the commit that decided it (for a success: the one that wrote
    /// the buyer's row), for [`Seckill::kill_record_after`].
    pub async fn execute_with_gtid(&self, seckill_id: i64, phone: Phone, signature: &str) -> WithGtid<Outcome> {
        if self.signer().verify(seckill_id, phone, signature, Utc::now()).is_err() {
            return WithGtid::without_gtid(Outcome::Tampered);
        }
        self.execute_verified_with_gtid(seckill_id, phone).await
    }

    /// Runs the seckill through the lanes without a signature check (the caller vouches for the user).
    /// Concurrent requests for one item share one transaction; the result is the same as if they had run one
    /// by one in the order of the calls. A request that finds the item known sold out or ended (in memory, or
    /// in the shared state in Redis) is answered without the database.
    pub async fn execute_verified(&self, seckill_id: i64, phone: Phone) -> Outcome {
        self.inner.lanes.execute(seckill_id, phone).await.outcome
    }

    /// As [`Seckill::execute_verified`], with the GTID of the commit that decided it.
    pub async fn execute_verified_with_gtid(&self, seckill_id: i64, phone: Phone) -> WithGtid<Outcome> {
        self.inner.lanes.execute(seckill_id, phone).await
    }

    /// Queues the request at once and returns the future of its outcome: the order of `submit` calls is the
    /// arrival order batches honour. Consults only this instance's memory of the shared state (no Redis
    /// lookup). Needs a tokio runtime.
    pub fn submit_verified(&self, seckill_id: i64, phone: Phone) -> impl Future<Output = Outcome> + Send + 'static {
        let decided = self.inner.lanes.submit(seckill_id, phone);
        async move { decided.await.outcome }
    }

    /// Runs one seckill with its own procedure call, bypassing the lanes and the sold-out memory: exactly
    /// one round trip to the database.
    pub async fn execute_one(&self, seckill_id: i64, phone: Phone) -> Outcome {
        let decided = super::execute_seckill::execute_seckill(self.pool(), seckill_id, phone).await;
        decided.outcomes.into_iter().next().map_or_else(|| Outcome::in_doubt("no outcome"), |decided| decided.outcome)
    }
}
