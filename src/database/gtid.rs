//! GTIDs: where a commit sits in the primary's binary log, so that a later read on a replica can wait until the
//! replica has applied it (read-your-writes).
//!
//! MariaDB names every transaction it logs `domain-server-sequence` (`0-1-42`); sequence numbers grow within a
//! domain. The toolkit's write procedures answer their commit's GTID as their last result set (`SELECT
//! @@last_gtid AS gtid`, after the COMMIT), so a write returns it in the same round trip. `@@last_gtid` is
//! MariaDB's; MySQL 8 would need `@@gtid_executed` or session tracking of GTIDs instead, which these procedures
//! do not do. An empty value (a server without a binary log) is no GTID: later reads then go to the primary.
//!
//! A [`GtidPosition`] is what a client carries from its writes to its later reads: the latest GTID of each
//! domain it saw (what `MASTER_GTID_WAIT` takes).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use thiserror::Error;

use crate::database::error::DatabaseError;
use crate::group_commit::Decided;

/// The most domains a [`GtidPosition`] holds: real deployments use one or a few.
pub const MAX_DOMAINS: usize = 16;

/// One transaction's place in the binary log: `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub sequence: u64,
}

/// A text that is not a GTID or a GTID position.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not a GTID position: {0:?} (expected domain-server-sequence, e.g. 0-1-42, at most {MAX_DOMAINS} domains)")]
pub struct InvalidGtid(String);

impl FromStr for Gtid {
    type Err = InvalidGtid;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidGtid(text.chars().take(64).collect());
        let mut parts = text.split('-');
        let mut next = || parts.next().filter(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        let (domain, server, sequence) = (next(), next(), next());
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Gtid {
            domain: domain.and_then(|d| d.parse().ok()).ok_or_else(invalid)?,
            server: server.and_then(|s| s.parse().ok()).ok_or_else(invalid)?,
            sequence: sequence.and_then(|n| n.parse().ok()).ok_or_else(invalid)?,
        })
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.sequence)
    }
}

/// The latest GTID of each domain seen, at most one per domain, in domain order: a replica that has applied
/// all of them has every write they stand for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GtidPosition(Vec<Gtid>);

impl GtidPosition {
    /// The GTIDs, one per domain, in domain order.
    pub fn gtids(&self) -> &[Gtid] {
        &self.0
    }

    /// True when it holds no GTID.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `gtid`, keeping the later of two in one domain (by sequence). A position already at
    /// [`MAX_DOMAINS`] domains ignores a new domain.
    pub fn include(&mut self, gtid: Gtid) {
        match self.0.binary_search_by_key(&gtid.domain, |known| known.domain) {
            Ok(at) if self.0[at].sequence < gtid.sequence => self.0[at] = gtid,
            Ok(_) => {}
            Err(at) if self.0.len() < MAX_DOMAINS => self.0.insert(at, gtid),
            Err(_) => {}
        }
    }

    /// True when every GTID of `other` is within this position: for each of its domains, this position holds one
    /// with a sequence at least as far (sequences order a domain; the server that logged it does not matter).
    /// Every position covers the empty one.
    pub fn covers(&self, other: &GtidPosition) -> bool {
        other.0.iter().all(|wanted| {
            self.0
                .binary_search_by_key(&wanted.domain, |known| known.domain)
                .is_ok_and(|at| self.0[at].sequence >= wanted.sequence)
        })
    }

    /// This position with every GTID of `other` included.
    pub fn merged(mut self, other: &GtidPosition) -> GtidPosition {
        for gtid in &other.0 {
            self.include(*gtid);
        }
        self
    }

    /// The position as text with `separator` between domains (MariaDB's is a comma; a cookie cannot hold one).
    pub fn to_text(&self, separator: char) -> String {
        let gtids: Vec<String> = self.0.iter().map(Gtid::to_string).collect();
        gtids.join(&separator.to_string())
    }
}

impl From<Gtid> for GtidPosition {
    fn from(gtid: Gtid) -> Self {
        GtidPosition(vec![gtid])
    }
}

/// Parses MariaDB's form (`0-1-42,1-2-7`) and the cookie form, with `_` between domains. Empty is no GTID.
impl FromStr for GtidPosition {
    type Err = InvalidGtid;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut position = GtidPosition::default();
        if text.is_empty() {
            return Ok(position);
        }
        let parts: Vec<&str> = text.split([',', '_']).collect();
        if parts.len() > MAX_DOMAINS {
            return Err(InvalidGtid(text.chars().take(64).collect()));
        }
        for part in parts {
            position.include(part.trim().parse()?);
        }
        Ok(position)
    }
}

impl fmt::Display for GtidPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text(','))
    }
}

/// What a write came to, with the GTID of its commit when the server logged one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithGtid<T> {
    pub outcome: T,
    /// The commit's GTID; `None` when nothing was committed, the server has no binary log, or the answer did
    /// not carry one (then later reads that must see this write go to the primary).
    pub gtid: Option<Gtid>,
}

impl<T> WithGtid<T> {
    /// An outcome with no GTID: nothing was committed, or it is not known where.
    pub fn without_gtid(outcome: T) -> Self {
        WithGtid { outcome, gtid: None }
    }
}

/// Everything the server at `conn` (a primary) has logged so far: its `@@gtid_binlog_pos`.
///
/// # Errors
/// The server's error, or [`DatabaseError::UnexpectedAnswer`] for a position this module cannot read.
pub async fn binlog_position(conn: &mut Conn) -> Result<GtidPosition, DatabaseError> {
    let position: Option<String> = conn.query_first("SELECT @@gtid_binlog_pos").await?;
    position
        .unwrap_or_default()
        .parse()
        .map_err(|error: InvalidGtid| DatabaseError::UnexpectedAnswer(format!("the primary's position: {error}")))
}

/// Waits on `conn` (a replica) until it has applied `position`, at most `timeout`: `SELECT
/// MASTER_GTID_WAIT(position, timeout)`. True when it has (at once for an empty position), false on timeout.
///
/// # Errors
/// The server's error.
pub async fn wait_for_position(
    conn: &mut Conn,
    position: &GtidPosition,
    timeout: Duration,
) -> Result<bool, DatabaseError> {
    if position.is_empty() {
        return Ok(true);
    }
    let reached: Option<Option<i64>> =
        conn.exec_first("SELECT MASTER_GTID_WAIT(?, ?)", (position.to_string(), timeout.as_secs_f64())).await?;
    // 0: applied; -1: not within the timeout (NULL would be a malformed position, which parsing excludes).
    Ok(reached == Some(Some(0)))
}

/// The GTID a write procedure answered in its last result set (a row with a `gtid` column), if any. The CALL
/// succeeded by then, so a value that cannot be read must not turn its answer into an error: it is logged, and
/// the write is treated as having no GTID.
pub(crate) fn commit_gtid(result_sets: &[Vec<Row>]) -> Option<Gtid> {
    let row = result_sets.iter().rev().find_map(|rows| rows.first().filter(|row| gtid_column(row).is_some()))?;
    let text = match row.as_ref(gtid_column(row)?)? {
        Value::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::NULL => return None,
        other => {
            tracing::warn!(value = ?other, "a procedure answered a GTID that is not text; reads after it go to the primary");
            return None;
        }
    };
    if text.is_empty() {
        return None;
    }
    match text.parse() {
        Ok(gtid) => Some(gtid),
        Err(error) => {
            tracing::warn!(%error, "a procedure answered an unreadable GTID; reads after it go to the primary");
            None
        }
    }
}

fn gtid_column(row: &Row) -> Option<usize> {
    row.columns_ref().iter().position(|column| column.name_str() == "gtid")
}

/// Every outcome of a batch stamped with the batch's GTID (one transaction, one commit). The closed answer, which
/// later requests hear from memory without a write, carries none.
pub(crate) fn stamp<O>(decided: Decided<O>, gtid: Option<Gtid>) -> Decided<WithGtid<O>> {
    Decided {
        outcomes: decided.outcomes.into_iter().map(|outcome| WithGtid { outcome, gtid }).collect(),
        closed: decided.closed.map(WithGtid::without_gtid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtids_read_and_write_as_mariadb_spells_them() {
        let gtid: Gtid = "0-1-42".parse().unwrap();
        assert_eq!(gtid, Gtid { domain: 0, server: 1, sequence: 42 });
        assert_eq!(gtid.to_string(), "0-1-42");
        for bad in ["", "0-1", "0-1-42-7", "a-1-2", "0--2", "-1-2-3", "0-1-99999999999999999999", "0-1- 2", "+0-1-2"] {
            assert!(bad.parse::<Gtid>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_position_keeps_the_latest_gtid_of_each_domain() {
        let mut position: GtidPosition = "1-1-5,0-1-9".parse().unwrap();
        assert_eq!(position.to_string(), "0-1-9,1-1-5");
        position.include("0-2-7".parse().unwrap());
        assert_eq!(position.to_string(), "0-1-9,1-1-5", "an earlier sequence changes nothing");
        position.include("0-2-10".parse().unwrap());
        assert_eq!(position.to_text('_'), "0-2-10_1-1-5");
        assert_eq!("0-2-10_1-1-5".parse::<GtidPosition>().unwrap(), position);
        assert!("".parse::<GtidPosition>().unwrap().is_empty());
        let many = (0..=MAX_DOMAINS).map(|d| format!("{d}-1-1")).collect::<Vec<_>>().join(",");
        assert!(many.parse::<GtidPosition>().is_err());
        assert!("0-1-1,".parse::<GtidPosition>().is_err());
    }

    #[test]
    fn a_position_covers_what_it_is_at_or_beyond_in_every_domain() {
        let known: GtidPosition = "0-1-9,1-1-5".parse().unwrap();
        for covered in ["", "0-1-9", "0-1-1", "0-2-9", "1-1-5", "0-1-9,1-1-5", "0-1-3,1-2-4"] {
            assert!(known.covers(&covered.parse().unwrap()), "{covered:?}");
        }
        for beyond in ["0-1-10", "1-1-6", "2-1-1", "0-1-9,1-1-6", "0-1-9,2-1-1"] {
            assert!(!known.covers(&beyond.parse().unwrap()), "{beyond:?}");
        }
        assert!(!GtidPosition::default().covers(&"0-1-1".parse().unwrap()));
    }
}
