//! Exchanges of one gift merged into one transaction, on the shared group-commit lanes
//! ([`crate::group_commit`]): a popular gift is a hot row, and InnoDB holds its lock until the commit is
//! durable, so one transaction for many users pays that price once.
//!
//! A gift seen out of stock is answered without a batch for the lanes' `recheck_interval`, and "out of stock" is
//! said only to requests that have no outcome yet: each is looked up by its (user, request id) first
//! ([`super::recorded`], one point read), so a retry hears its first answer, flagged repeat, on any instance,
//! and a request id first used for another gift is refused as reused. A request answered "out of stock" this
//! way is not recorded: if stock comes back, its retry is decided afresh.

use super::exchange_credit_batch::exchange_credit_batch;
use super::outcome::ExchangeOutcome;
use super::request::ExchangeRequest;
use crate::database::ReadWriteSplit;
use crate::database::gtid::WithGtid;
use crate::group_commit::{BatchRunner, Committing, Decided};

/// Decides one gift's batches in the database; every outcome carries its batch's commit GTID.
pub(crate) struct ExchangeBatches {
    /// Batches go to its primary, which it is told the commit of.
    pub(crate) database: ReadWriteSplit,
}

impl BatchRunner for ExchangeBatches {
    const DOMAIN: &'static str = "exchange";
    type Key = i64;
    type Request = ExchangeRequest;
    type Outcome = WithGtid<ExchangeOutcome>;

    async fn run(
        &self,
        gift_id: i64,
        requests: Vec<ExchangeRequest>,
        committing: Committing,
    ) -> Decided<WithGtid<ExchangeOutcome>> {
        let decided = exchange_credit_batch(self.database.primary(), gift_id, &requests, committing).await;
        // One transaction, one commit: every outcome carries the same GTID.
        self.database.committed(decided.outcomes.first().and_then(|decided| decided.gtid));
        decided
    }

    fn lost(&self) -> WithGtid<ExchangeOutcome> {
        WithGtid::without_gtid(ExchangeOutcome::in_doubt(
            "the exchange's batch ended without an answer; it may have committed (retry with the same request id)",
        ))
    }

    fn not_sent(&self) -> WithGtid<ExchangeOutcome> {
        WithGtid::without_gtid(ExchangeOutcome::not_sent(
            "the exchange stopped before sending this request; nothing was written",
        ))
    }

    async fn recorded(
        &self,
        gift_id: i64,
        request: ExchangeRequest,
    ) -> Result<Option<WithGtid<ExchangeOutcome>>, String> {
        super::recorded::recorded(self.database.primary(), gift_id, &request).await
    }
}
