//! The points-exchange service: balances, the catalogue and exchanges, over one pool.

use mysql_async::Pool;

use super::credit::{self, LedgerEntry};
use super::error::ExchangeError;
use super::gift::{self, Gift, NewGift};
use super::grant_credit::grant_credit;
use super::history::{self, ExchangeRecord};
use super::lanes::ExchangeBatches;
use super::outcome::ExchangeOutcome;
use super::request::{ExchangeRequest, RequestId};
use crate::group_commit::{GroupCommit, GroupCommitConfig, GroupCommitStats, OutcomeFuture};

/// Runs the points exchange: cheap to clone, share one per application (the lanes that batch a gift's
/// exchanges are per instance).
#[derive(Clone, Debug)]
pub struct Exchange {
    pool: Pool,
    lanes: GroupCommit<ExchangeBatches>,
}

impl Exchange {
    /// A service over `pool` (see [`crate::database::ConnectOptions`]), batching concurrent exchanges of one gift
    /// with the default lanes.
    pub fn new(pool: Pool) -> Self {
        Self::with_config(pool, GroupCommitConfig::default())
    }

    /// A service whose lanes batch, remember and forget as `config` says.
    pub fn with_config(pool: Pool, config: GroupCommitConfig) -> Self {
        let lanes = GroupCommit::new(ExchangeBatches { pool: pool.clone() }, config);
        Exchange { pool, lanes }
    }

    /// The pool the service uses.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// What the lanes have done so far: requests, batches (one round trip each), answers from memory.
    pub fn stats(&self) -> GroupCommitStats {
        self.lanes.stats()
    }

    /// Grants `amount` points to `user_id` (creating the user's balance on the first grant), with a note for the
    /// ledger, and returns the balance after it. Not idempotent: after an in-doubt failure, read the ledger
    /// before granting again.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidUser`] or [`ExchangeError::InvalidGrant`] (nothing sent) for a user id or amount
    /// that is not positive or a note over 255 characters; [`ExchangeError::RolledBack`] (nothing written),
    /// [`ExchangeError::InDoubt`] (may have committed) or [`ExchangeError::Database`] (nothing sent).
    pub async fn grant(&self, user_id: i64, amount: i64, note: &str) -> Result<i64, ExchangeError> {
        grant_credit(&self.pool, user_id, amount, note).await
    }

    /// A user's balance, or `None` for a user who was never granted points.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidUser`], [`ExchangeError::Database`].
    pub async fn balance(&self, user_id: i64) -> Result<Option<i64>, ExchangeError> {
        check_user(user_id)?;
        credit::balance(&self.pool, user_id).await
    }

    /// A user's ledger, newest first, at most `limit` entries.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidUser`], [`ExchangeError::Database`].
    pub async fn ledger(&self, user_id: i64, limit: u32) -> Result<Vec<LedgerEntry>, ExchangeError> {
        check_user(user_id)?;
        credit::ledger(&self.pool, user_id, limit).await
    }

    /// Creates a gift (an admin operation).
    ///
    /// # Errors
    /// [`ExchangeError::InvalidGift`] for an empty or long name, a cost that is not positive or negative stock;
    /// [`ExchangeError::Database`].
    pub async fn create_gift(&self, new_gift: &NewGift) -> Result<Gift, ExchangeError> {
        gift::create(&self.pool, new_gift).await
    }

    /// The catalogue, in id order.
    ///
    /// # Errors
    /// [`ExchangeError::Database`].
    pub async fn gifts(&self) -> Result<Vec<Gift>, ExchangeError> {
        gift::list(&self.pool).await
    }

    /// One gift, or `None`.
    ///
    /// # Errors
    /// [`ExchangeError::Database`].
    pub async fn gift(&self, gift_id: i64) -> Result<Option<Gift>, ExchangeError> {
        gift::get(&self.pool, gift_id).await
    }

    /// Exchanges `user_id`'s points for one unit of `gift_id`, under the client's `request_id`. Concurrent
    /// exchanges of one gift share one transaction; each gets the outcome it would have had alone, in the order
    /// of the calls. Every failure once the input is valid is an [`ExchangeOutcome::InnerError`], which says
    /// whether the exchange may have committed; a retry with the same request id is always safe and answers
    /// the first outcome.
    ///
    /// # Errors
    /// Only for input refused before anything is sent: [`ExchangeError::InvalidUser`],
    /// [`ExchangeError::InvalidGiftId`], [`ExchangeError::InvalidRequestId`].
    pub async fn exchange(
        &self,
        user_id: i64,
        gift_id: i64,
        request_id: &str,
    ) -> Result<ExchangeOutcome, ExchangeError> {
        let request_id = RequestId::new(request_id)?;
        Ok(self.submit(user_id, gift_id, request_id)?.await)
    }

    /// Queues the exchange at once and returns the future of its outcome: the order of `submit` calls is the
    /// arrival order batches honour. Needs a tokio runtime.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidUser`] or [`ExchangeError::InvalidGiftId`]: nothing was queued.
    pub fn submit(
        &self,
        user_id: i64,
        gift_id: i64,
        request_id: RequestId,
    ) -> Result<OutcomeFuture<ExchangeOutcome>, ExchangeError> {
        check_user(user_id)?;
        if gift_id <= 0 {
            return Err(ExchangeError::InvalidGiftId(gift_id));
        }
        Ok(self.lanes.submit(gift_id, ExchangeRequest { user_id, request_id }))
    }

    /// A user's exchanges, newest first, at most `limit`, each with where its shipment message stands.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidUser`], [`ExchangeError::Database`].
    pub async fn history(&self, user_id: i64, limit: u32) -> Result<Vec<ExchangeRecord>, ExchangeError> {
        check_user(user_id)?;
        history::history(&self.pool, user_id, limit).await
    }
}

fn check_user(user_id: i64) -> Result<(), ExchangeError> {
    if user_id <= 0 { Err(ExchangeError::InvalidUser(user_id)) } else { Ok(()) }
}
