//! What the primary is known to have committed, so that a read after a GTID never waits on a replica for a
//! position the primary has not reached.
//!
//! A read after a GTID ([`super::Consistency::AfterGtid`]) waits on a replica until it has applied the position,
//! holding one of the replica's pooled connections meanwhile. The position comes from the client (the
//! `seckillGtid` cookie), so a client can make one up: a position far ahead of anything committed would hold a
//! replica connection through the whole wait on every read, and enough such reads would take every connection
//! from everyone else's reads. An honest position is never ahead of the primary: it is the GTID of a write the
//! primary committed before answering it. So a position the primary has not committed is never waited for: its
//! read goes to the primary, which is exact (read-your-writes holds), and costs the sender what a read without a
//! cookie costs.
//!
//! What the primary has committed is learnt without a round trip from the writes this process makes (their
//! answers carry their commit's GTID, [`super::ReadWriteSplit::committed`]), and otherwise asked of the primary
//! (`@@gtid_binlog_pos`) when a read brings a position beyond what is known, as one written through another
//! instance does: one question at a time, at most once per [`super::ReplicaConfig::position_refresh`], within the
//! call bound. A read that comes while one is asked waits for its answer, which it shares; one that finds the
//! position still beyond a recent answer goes to the primary without asking again, so a flood of made-up
//! positions costs the primary one small query per interval, and honest readers at most a primary read.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mysql_async::Pool;

use super::acquire_within;
use super::gtid::{Gtid, GtidPosition, binlog_position};

/// The primary's committed position as far as this process knows it, and the questions that refresh it.
#[derive(Debug, Default)]
pub(crate) struct PrimaryPosition {
    /// Never goes back: everything in it was committed by the primary.
    known: Mutex<GtidPosition>,
    /// Held while the primary is asked (one question at a time); when the last question was asked.
    asked: tokio::sync::Mutex<Option<Instant>>,
}

impl PrimaryPosition {
    fn known(&self) -> MutexGuard<'_, GtidPosition> {
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Includes a GTID the primary committed (a write's answer).
    pub(crate) fn learn(&self, gtid: Gtid) {
        self.known().include(gtid);
    }

    /// Whether `position` is within what the primary is known to have committed.
    pub(crate) fn covers(&self, position: &GtidPosition) -> bool {
        self.known().covers(position)
    }

    /// Whether the primary has committed `position`: from what is known, else from the primary's own answer
    /// (asked at most once per `interval`, within `timeout`). `false` when it has not, or when that cannot be
    /// known now (the primary did not answer, or was asked too recently): the read then goes to the primary.
    pub(crate) async fn committed(
        &self,
        position: &GtidPosition,
        primary: &Pool,
        interval: Duration,
        timeout: Duration,
    ) -> bool {
        if self.covers(position) {
            return true;
        }
        let wanted = Instant::now();
        let mut asked = self.asked.lock().await;
        // The question this read waited for may have brought the position.
        if self.covers(position) {
            return true;
        }
        // Asked since this read came, or too recently: a position still beyond that answer goes to the primary.
        if asked.is_some_and(|at| at >= wanted || at.elapsed() < interval) {
            return false;
        }
        *asked = Some(Instant::now());
        let answer = tokio::time::timeout(timeout, async {
            let mut conn = acquire_within(primary, timeout).await?;
            binlog_position(&mut conn).await
        })
        .await;
        match answer {
            Ok(Ok(committed)) => {
                let mut known = self.known();
                *known = std::mem::take(&mut *known).merged(&committed);
            }
            Ok(Err(error)) => tracing::debug!(%error, "the primary's position could not be read"),
            Err(_) => tracing::debug!("the primary's position had no answer in time"),
        }
        drop(asked);
        self.covers(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_writes_answered_is_known_committed() {
        let position = PrimaryPosition::default();
        assert!(position.covers(&GtidPosition::default()), "nothing to wait for is always committed");
        assert!(!position.covers(&"0-1-5".parse().unwrap()));
        position.learn("0-1-7".parse().unwrap());
        assert!(position.covers(&"0-1-5".parse().unwrap()));
        assert!(position.covers(&"0-2-7".parse().unwrap()), "a sequence orders a domain, whatever the server");
        assert!(!position.covers(&"0-1-8".parse().unwrap()));
        assert!(!position.covers(&"0-1-5,1-1-1".parse().unwrap()), "a domain the primary never logged");
        position.learn("0-1-3".parse().unwrap());
        assert!(position.covers(&"0-1-7".parse().unwrap()), "never goes back");
    }
}
