//! The gift catalogue: the `exchange_gift` table's rows, and the reads and writes admins and pages need.
//!
//! Creating a gift is an admin operation and a plain INSERT; only exchanges, which take the gift's stock, go
//! through the procedure.

use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Value};
use serde::Serialize;

use super::error::ExchangeError;
use crate::database::acquire;
use crate::database::error::DatabaseError;
use crate::database::rows::{exec_all, exec_first, required_instant};

/// The longest gift name the schema holds (`VARCHAR(120)`).
pub const MAX_GIFT_NAME_CHARS: usize = 120;

/// One gift of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gift {
    pub gift_id: i64,
    pub name: String,
    /// Points per unit.
    pub cost: i64,
    /// Units left.
    pub stock: i32,
    /// Units ever put in stock: `stocked - stock` were taken by exchanges.
    pub stocked: i32,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub created_at: DateTime<Utc>,
}

/// A gift to create.
#[derive(Debug, Clone)]
pub struct NewGift {
    pub name: String,
    /// Points per unit, positive.
    pub cost: i64,
    /// Units for exchange, 0 or more.
    pub stock: i32,
}

impl NewGift {
    /// Checks what the schema would refuse, with a message that names the field.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidGift`].
    pub fn validate(&self) -> Result<(), ExchangeError> {
        let invalid = |message: &str| Err(ExchangeError::InvalidGift(message.to_string()));
        if self.name.trim().is_empty() {
            return invalid("the name must not be empty");
        }
        if self.name.trim().chars().count() > MAX_GIFT_NAME_CHARS {
            return invalid("the name must be at most 120 characters");
        }
        if self.cost <= 0 {
            return invalid("the cost must be positive");
        }
        if self.stock < 0 {
            return invalid("the stock must not be negative");
        }
        Ok(())
    }
}

type GiftRow = (i64, String, i64, i32, i32, Value);

const GIFT_COLUMNS: &str = "gift_id, name, cost, stock, stocked, created_at";

fn from_row((gift_id, name, cost, stock, stocked, created): GiftRow) -> Result<Gift, DatabaseError> {
    let created_at = required_instant(created, &format!("gift {gift_id}"))?;
    Ok(Gift { gift_id, name, cost, stock, stocked, created_at })
}

/// Creates a gift and returns it as stored.
pub(crate) async fn create(pool: &Pool, gift: &NewGift) -> Result<Gift, ExchangeError> {
    gift.validate()?;
    let mut conn = acquire(pool).await?;
    conn.exec_drop(
        "INSERT INTO exchange_gift (name, cost, stock, stocked, created_at) VALUES (?, ?, ?, ?, NOW(3))",
        (gift.name.trim(), gift.cost, gift.stock, gift.stock),
    )
    .await?;
    let id = conn
        .last_insert_id()
        .and_then(|id| i64::try_from(id).ok())
        .ok_or_else(|| DatabaseError::UnexpectedAnswer("the insert returned no gift id".into()))?;
    get(&mut conn, id).await?.ok_or_else(|| DatabaseError::UnexpectedAnswer(format!("gift {id} vanished")).into())
}

/// Every gift, in id order.
pub(crate) async fn list(conn: &mut Conn) -> Result<Vec<Gift>, ExchangeError> {
    let query = format!("SELECT {GIFT_COLUMNS} FROM exchange_gift ORDER BY gift_id");
    let rows: Vec<GiftRow> = exec_all(conn, &query, (), "the gift list").await?;
    Ok(rows.into_iter().map(from_row).collect::<Result<_, _>>()?)
}

/// One gift, or `None`.
pub(crate) async fn get(conn: &mut Conn, gift_id: i64) -> Result<Option<Gift>, ExchangeError> {
    let query = format!("SELECT {GIFT_COLUMNS} FROM exchange_gift WHERE gift_id = ?");
    let row: Option<GiftRow> = exec_first(conn, &query, (gift_id,), "a gift").await?;
    Ok(row.map(from_row).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gifts_the_schema_would_refuse_are_refused_first() {
        let gift = |name: &str, cost, stock| NewGift { name: name.into(), cost, stock };
        assert!(gift("mug", 100, 0).validate().is_ok());
        for (bad, field) in [
            (gift(" ", 100, 1), "name"),
            (gift(&"x".repeat(121), 100, 1), "name"),
            (gift("mug", 0, 1), "cost"),
            (gift("mug", 100, -1), "stock"),
        ] {
            let error = bad.validate().unwrap_err().to_string();
            assert!(error.starts_with("invalid gift:") && error.contains(field), "{error}");
        }
    }
}
