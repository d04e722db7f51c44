//! Users' balances and their ledgers, as users are shown them (`credit` and `credit_ledger`).
//!
//! Reads only: every change of a balance happens in a procedure, with its ledger row in the same transaction.

use chrono::{DateTime, Utc};
use mysql_async::{Conn, Value};
use serde::Serialize;

use super::error::ExchangeError;
use crate::database::error::DatabaseError;
use crate::database::rows::{exec_all, exec_first, instant};

/// Why a balance changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerReason {
    /// Points were granted (`grant_credit`).
    Grant,
    /// Points were paid for a gift (`exchange_credit_batch`).
    Exchange,
}

impl LedgerReason {
    /// The column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerReason::Grant => "grant",
            LedgerReason::Exchange => "exchange",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [LedgerReason::Grant, LedgerReason::Exchange].into_iter().find(|reason| reason.as_str() == text)
    }
}

/// One change of a user's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub id: i64,
    /// Positive for a grant, negative for an exchange.
    pub delta: i64,
    /// The balance right after this change.
    pub balance_after: i64,
    pub reason: LedgerReason,
    /// The exchange id for an exchange, the note for a grant.
    pub reference: String,
    /// When it happened, by the database's clock (`None` for a row written by hand with the zero date).
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub created_at: Option<DateTime<Utc>>,
}

/// A user's balance, or `None` for a user who was never granted points.
pub(crate) async fn balance(conn: &mut Conn, user_id: i64) -> Result<Option<i64>, ExchangeError> {
    let query = "SELECT credit FROM credit WHERE user_id = ?";
    let row: Option<(i64,)> = exec_first(conn, query, (user_id,), "a balance").await?;
    Ok(row.map(|(credit,)| credit))
}

/// A user's ledger, newest first, at most `limit` entries.
pub(crate) async fn ledger(conn: &mut Conn, user_id: i64, limit: u32) -> Result<Vec<LedgerEntry>, ExchangeError> {
    let query = "SELECT id, delta, balance_after, reason, reference, created_at FROM credit_ledger \
                  WHERE user_id = ? ORDER BY id DESC LIMIT ?";
    let what = "a ledger entry";
    let rows: Vec<(i64, i64, i64, String, String, Value)> = exec_all(conn, query, (user_id, limit), what).await?;
    rows.into_iter()
        .map(|(id, delta, balance_after, reason, reference, created)| {
            let reason = LedgerReason::parse(&reason)
                .ok_or_else(|| DatabaseError::UnexpectedAnswer(format!("{what} {id}: reason {reason:?}")))?;
            Ok(LedgerEntry { id, delta, balance_after, reason, reference, created_at: instant(created, what)? })
        })
        .collect()
}
