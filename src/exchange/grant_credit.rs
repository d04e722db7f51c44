//! The typed call of the `grant_credit` procedure (`sql/procedures/exchange/grant_credit.sql`):
//!
//! ```sql
//! CALL grant_credit(v_user_id BIGINT, v_amount BIGINT, v_note VARCHAR(255));
//! -- one row: balance BIGINT, the balance after the grant
//! -- then one row: gtid, the commit's GTID ('' without a binary log)
//! -- SQLSTATE '45RB0': rolled back, nothing written; any other error: in doubt
//! ```
//!
//! A prepared statement, unlike the exchange's text-protocol CALL: the note is free text from an operator, and
//! only a bound parameter carries any text safely. A grant is rare, so the extra round trip to prepare it (once
//! per pooled connection) does not matter.

use mysql_async::Pool;

use super::error::ExchangeError;
use crate::database::call::call_prepared;
use crate::database::error::DatabaseError;
use crate::database::gtid::{WithGtid, commit_gtid};
use crate::database::rows::decode;

/// The longest note the ledger holds (`VARCHAR(255)`).
pub const MAX_NOTE_CHARS: usize = 255;

const PROCEDURE: &str = "grant_credit";

/// Checks a grant before anything is sent.
pub(crate) fn validate(user_id: i64, amount: i64, note: &str) -> Result<(), ExchangeError> {
    if user_id <= 0 {
        return Err(ExchangeError::InvalidUser(user_id));
    }
    if amount <= 0 {
        return Err(ExchangeError::InvalidGrant(format!("the amount must be positive, not {amount}")));
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ExchangeError::InvalidGrant("the note must be at most 255 characters".into()));
    }
    Ok(())
}

/// Grants `amount` points to `user_id` and returns the balance after it, with the commit's GTID.
pub(crate) async fn grant_credit(
    pool: &Pool,
    user_id: i64,
    amount: i64,
    note: &str,
) -> Result<WithGtid<i64>, ExchangeError> {
    validate(user_id, amount, note)?;
    let result_sets = call_prepared(pool, "CALL grant_credit(?, ?, ?)", (user_id, amount, note))
        .await
        .map_err(|failure| ExchangeError::call(PROCEDURE, failure))?;
    // The CALL succeeded, so the grant committed: an answer that cannot be read leaves only the balance unknown.
    let gtid = commit_gtid(&result_sets);
    let what = "the answer of grant_credit";
    let unreadable = |detail: String| ExchangeError::InDoubt {
        procedure: PROCEDURE,
        error: DatabaseError::UnexpectedAnswer(detail),
    };
    let row = result_sets
        .into_iter()
        .next()
        .and_then(|rows| rows.into_iter().next())
        .ok_or_else(|| unreadable(format!("{what}: no row; run `seckill migrate`")))?;
    let (balance,): (i64,) = decode(row, what).map_err(|error| unreadable(error.to_string()))?;
    Ok(WithGtid { outcome: balance, gtid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_checked_before_they_are_sent() {
        assert!(validate(1, 1, "").is_ok());
        assert!(matches!(validate(0, 1, ""), Err(ExchangeError::InvalidUser(0))));
        assert!(matches!(validate(1, 0, ""), Err(ExchangeError::InvalidGrant(_))));
        assert!(matches!(validate(1, -5, ""), Err(ExchangeError::InvalidGrant(_))));
        assert!(validate(1, 1, &"é".repeat(255)).is_ok());
        assert!(matches!(validate(1, 1, &"x".repeat(256)), Err(ExchangeError::InvalidGrant(_))));
    }
}
