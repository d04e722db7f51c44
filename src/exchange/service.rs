//! The points-exchange service: balances, the catalogue and exchanges, over one database (a primary, and
//! replicas for reads).
//!
//! What goes where: exchanges, grants and gift creation on the primary; the catalogue, balances, ledgers and
//! histories on a replica when there is one ([`Consistency::Eventual`]), or on a replica that has applied the
//! user's writes when their GTIDs are given ([`Exchange::balance_after`]), so the balance right after an
//! exchange shows it.

use mysql_async::Pool;

use super::credit::{self, LedgerEntry};
use super::error::ExchangeError;
use super::gift::{self, Gift, NewGift};
use super::grant_credit::grant_credit;
use super::history::{self, ExchangeRecord};
use super::lanes::ExchangeBatches;
use super::outcome::ExchangeOutcome;
use super::request::{ExchangeRequest, RequestId};
use crate::database::{Consistency, GtidPosition, ReadWriteSplit, WithGtid};
use crate::group_commit::{GroupCommit, GroupCommitConfig, GroupCommitStats, OutcomeFuture};

/// Runs the points exchange: cheap to clone, share one per application (the lanes that batch a gift's
/// exchanges are per instance).
#[derive(Clone, Debug)]
pub struct Exchange {
    database: ReadWriteSplit,
    lanes: GroupCommit<ExchangeBatches>,
}

impl Exchange {
    /// A service over `database`, batching concurrent exchanges of one gift with the default lanes. `database` is
    /// a pool (the primary alone, see [`crate::database::ConnectOptions`]) or a [`ReadWriteSplit`] with replicas.
    pub fn new(database: impl Into<ReadWriteSplit>) -> Self {
        Self::with_config(database, GroupCommitConfig::default())
    }

    /// A service whose lanes batch, remember and forget as `config` says.
    pub fn with_config(database: impl Into<ReadWriteSplit>, config: GroupCommitConfig) -> Self {
        let database = database.into();
        let lanes = GroupCommit::new(ExchangeBatches { database: database.clone() }, config);
        Exchange { database, lanes }
    }

    /// The primary's pool: every write goes there.
    pub fn pool(&self) -> &Pool {
        self.database.primary()
    }

    /// The primary and the replicas the service reads from.
    pub fn database(&self) -> &ReadWriteSplit {
        &self.database
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
        Ok(self.grant_with_gtid(user_id, amount, note).await?.outcome)
    }

    /// As [`Exchange::grant`], with the grant's commit GTID.
    ///
    /// # Errors
    /// As [`Exchange::grant`].
    pub async fn grant_with_gtid(&self, user_id: i64, amount: i64, note: &str) -> Result<WithGtid<i64>, ExchangeError> {
        let granted = grant_credit(self.pool(), user_id, amount, note).await?;
        self.database.committed(granted.gtid);
        Ok(granted)
    }

    /// A user's balance, or `None` for a user who was never granted points; from a replica when there is one
    /// (it may not show the user's latest exchange yet: see [`Exchange::balance_after`]).
    ///
    /// # Errors
    /// [`ExchangeError::InvalidUser`], [`ExchangeError::Database`].
    pub async fn balance(&self, user_id: i64) -> Result<Option<i64>, ExchangeError> {
        self.balance_after(user_id, None).await
    }

    /// As [`Exchange::balance`], on a replica that has applied `after` (the GTIDs of the user's writes, e.g.
    /// from [`Exchange::exchange_with_gtid`]) when it is given, else on the primary when no replica applies it
    /// in time: a balance that shows every exchange in `after`.
    ///
    /// # Errors
    /// As [`Exchange::balance`].
    pub async fn balance_after(
        &self,
        user_id: i64,
        after: Option<&GtidPosition>,
    ) -> Result<Option<i64>, ExchangeError> {
        check_user(user_id)?;
        self.database.read(&eventual_or_after(after), |conn| Box::pin(credit::balance(conn, user_id))).await
    }

    /// A user's ledger, newest first, at most `limit` entries; from a replica when there is one.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidUser`], [`ExchangeError::Database`].
    pub async fn ledger(&self, user_id: i64, limit: u32) -> Result<Vec<LedgerEntry>, ExchangeError> {
        self.ledger_after(user_id, limit, None).await
    }

    /// As [`Exchange::ledger`], showing at least what `after` stands for (see [`Exchange::balance_after`]).
    ///
    /// # Errors
    /// As [`Exchange::ledger`].
    pub async fn ledger_after(
        &self,
        user_id: i64,
        limit: u32,
        after: Option<&GtidPosition>,
    ) -> Result<Vec<LedgerEntry>, ExchangeError> {
        check_user(user_id)?;
        self.database.read(&eventual_or_after(after), |conn| Box::pin(credit::ledger(conn, user_id, limit))).await
    }

    /// Creates a gift (an admin operation).
    ///
    /// # Errors
    /// [`ExchangeError::InvalidGift`] for an empty or long name, a cost that is not positive or negative stock;
    /// [`ExchangeError::Database`].
    pub async fn create_gift(&self, new_gift: &NewGift) -> Result<Gift, ExchangeError> {
        gift::create(self.pool(), new_gift).await
    }

    /// The catalogue, in id order; from a replica when there is one.
    ///
    /// # Errors
    /// [`ExchangeError::Database`].
    pub async fn gifts(&self) -> Result<Vec<Gift>, ExchangeError> {
        self.database.read(&Consistency::Eventual, |conn| Box::pin(gift::list(conn))).await
    }

    /// One gift, or `None`; from a replica when there is one.
    ///
    /// # Errors
    /// [`ExchangeError::Database`].
    pub async fn gift(&self, gift_id: i64) -> Result<Option<Gift>, ExchangeError> {
        self.database.read(&Consistency::Eventual, |conn| Box::pin(gift::get(conn, gift_id))).await
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
        Ok(self.exchange_with_gtid(user_id, gift_id, request_id).await?.outcome)
    }

    /// As [`Exchange::exchange`], with the commit GTID of the batch that decided it (for a repeat, of the one
    /// that decided it first when this instance remembers it), for [`Exchange::balance_after`].
    ///
    /// # Errors
    /// As [`Exchange::exchange`].
    pub async fn exchange_with_gtid(
        &self,
        user_id: i64,
        gift_id: i64,
        request_id: &str,
    ) -> Result<WithGtid<ExchangeOutcome>, ExchangeError> {
        let request_id = RequestId::new(request_id)?;
        Ok(self.submit_with_gtid(user_id, gift_id, request_id)?.await)
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
        let decided = self.submit_with_gtid(user_id, gift_id, request_id)?;
        Ok(Box::pin(async move { decided.await.outcome }))
    }

    /// As [`Exchange::submit`], the outcome with its commit GTID.
    ///
    /// # Errors
    /// As [`Exchange::submit`].
    pub fn submit_with_gtid(
        &self,
        user_id: i64,
        gift_id: i64,
        request_id: RequestId,
    ) -> Result<OutcomeFuture<WithGtid<ExchangeOutcome>>, ExchangeError> {
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
        self.history_after(user_id, limit, None).await
    }

    /// As [`Exchange::history`], showing at least what `after` stands for (see [`Exchange::balance_after`]).
    ///
    /// # Errors
    /// As [`Exchange::history`].
    pub async fn history_after(
        &self,
        user_id: i64,
        limit: u32,
        after: Option<&GtidPosition>,
    ) -> Result<Vec<ExchangeRecord>, ExchangeError> {
        check_user(user_id)?;
        let consistency = eventual_or_after(after);
        self.database.read(&consistency, |conn| Box::pin(history::history(conn, user_id, limit))).await
    }
}

/// A user's reads tolerate staleness, except after their own writes.
fn eventual_or_after(after: Option<&GtidPosition>) -> Consistency {
    match after {
        Some(position) if !position.is_empty() => Consistency::AfterGtid(position.clone()),
        _ => Consistency::Eventual,
    }
}

fn check_user(user_id: i64) -> Result<(), ExchangeError> {
    if user_id <= 0 { Err(ExchangeError::InvalidUser(user_id)) } else { Ok(()) }
}
