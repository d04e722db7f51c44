//! Seckill items: the `seckill` table's rows, and the reads and writes admins and pages need.
//!
//! Times are UTC in the database and `DateTime<Utc>` here; JSON carries them as epoch milliseconds under the
//! classic field names (`seckillId`, `startTime`, ...), as the classic front ends expect.

use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Value};
use serde::{Deserialize, Serialize};

use super::error::SeckillError;
use super::outcome::SuccessKilled;
use super::phone::Phone;
use crate::database::acquire;
use crate::database::error::DatabaseError;
use crate::database::rows::{exec_all, exec_first, instant, required_instant};

/// The longest item name the schema holds (`VARCHAR(120)`).
pub const MAX_NAME_CHARS: usize = 120;

/// The last instant a `TIMESTAMP` column holds on MySQL and MariaDB before 11.5: 2038-01-19 03:14:07 UTC. Sale
/// windows must end by then.
pub const LAST_INSTANT_SECONDS: i64 = i32::MAX as i64;

/// One seckill item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub seckill_id: i64,
    pub name: String,
    /// Stock left.
    pub number: i32,
    /// The sale opens at this instant (inclusive).
    #[serde(with = "chrono::serde::ts_milliseconds")]
    #[schema(value_type = i64)]
    pub start_time: DateTime<Utc>,
    /// The sale closes at this instant (exclusive).
    #[serde(with = "chrono::serde::ts_milliseconds")]
    #[schema(value_type = i64)]
    pub end_time: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    #[schema(value_type = i64)]
    pub create_time: DateTime<Utc>,
}

impl Item {
    /// Where `now` falls in this item's sale window.
    pub fn window_at(&self, now: DateTime<Utc>) -> Window {
        Window::of(self.start_time, self.end_time, now)
    }
}

/// Where an instant falls relative to a half-open sale window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    NotStarted,
    Open,
    Ended,
}

impl Window {
    /// The same rule as the procedures: `start <= now < end`.
    pub fn of(start: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        if now < start {
            Window::NotStarted
        } else if now < end {
            Window::Open
        } else {
            Window::Ended
        }
    }
}

/// An item to create.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub name: String,
    pub stock: i32,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

impl NewItem {
    /// Checks what the schema would refuse, with a message that names the field.
    ///
    /// # Errors
    /// [`SeckillError::InvalidItem`].
    pub fn validate(&self) -> Result<(), SeckillError> {
        let invalid = |message: &str| Err(SeckillError::InvalidItem(message.to_string()));
        if self.name.trim().is_empty() {
            return invalid("the name must not be empty");
        }
        if self.name.chars().count() > MAX_NAME_CHARS {
            return invalid("the name must be at most 120 characters");
        }
        if self.stock < 0 {
            return invalid("the stock must not be negative");
        }
        if self.end_time <= self.start_time {
            return invalid("the sale must end after it starts");
        }
        if self.start_time.timestamp() < 1 || self.end_time.timestamp() > LAST_INSTANT_SECONDS {
            return invalid("the sale must lie between 1970 and 2038-01-19 03:14:07 UTC (the range of TIMESTAMP)");
        }
        Ok(())
    }
}

type ItemRow = (i64, String, i32, Value, Value, Value);

const ITEM_COLUMNS: &str = "seckill_id, name, number, start_time, end_time, create_time";

fn from_row((seckill_id, name, number, start, end, created): ItemRow) -> Result<Item, DatabaseError> {
    let what = format!("item {seckill_id}");
    Ok(Item {
        seckill_id,
        name,
        number,
        start_time: required_instant(start, &what)?,
        end_time: required_instant(end, &what)?,
        create_time: required_instant(created, &what)?,
    })
}

/// Items, newest first, at most `limit` of them.
pub(crate) async fn list(conn: &mut Conn, limit: u32) -> Result<Vec<Item>, SeckillError> {
    let query = format!("SELECT {ITEM_COLUMNS} FROM seckill ORDER BY create_time DESC, seckill_id DESC LIMIT ?");
    let rows: Vec<ItemRow> = exec_all(conn, &query, (limit,), "the item list").await?;
    Ok(rows.into_iter().map(from_row).collect::<Result<_, _>>()?)
}

/// One item and the database's clock, read together (the clock every window decision uses).
pub(crate) async fn get_with_now(
    conn: &mut Conn,
    seckill_id: i64,
) -> Result<(Option<Item>, DateTime<Utc>), SeckillError> {
    // A LEFT JOIN on a one-row table returns the clock even when the item does not exist.
    let query = "SELECT s.seckill_id, s.name, s.number, s.start_time, s.end_time, s.create_time, clock.t \
                   FROM (SELECT UTC_TIMESTAMP(3) AS t) clock LEFT JOIN seckill s ON s.seckill_id = ?";
    type Row = (Option<i64>, Option<String>, Option<i32>, Value, Value, Value, Value);
    let row: Option<Row> = exec_first(conn, query, (seckill_id,), "an item and the clock").await?;
    let Some((id, name, number, start, end, created, now)) = row else {
        return Err(DatabaseError::UnexpectedAnswer("no clock row".into()).into());
    };
    let now = required_instant(now, "the database's clock")?;
    let item = match (id, name, number) {
        (Some(id), Some(name), Some(number)) => Some(from_row((id, name, number, start, end, created))?),
        _ => None,
    };
    Ok((item, now))
}

/// A buyer's success record for an item, if the seckill went through.
pub(crate) async fn kill_record(
    conn: &mut Conn,
    seckill_id: i64,
    phone: Phone,
) -> Result<Option<SuccessKilled>, SeckillError> {
    let what = "a success record";
    let query = "SELECT state, create_time FROM success_killed WHERE seckill_id = ? AND user_phone = ?";
    let row: Option<(i8, Value)> = exec_first(conn, query, (seckill_id, phone.get()), what).await?;
    row.map(|(state, at)| Ok(SuccessKilled { seckill_id, user_phone: phone, state, create_time: instant(at, what)? }))
        .transpose()
}

/// The database's clock.
pub(crate) async fn database_now(pool: &Pool) -> Result<DateTime<Utc>, SeckillError> {
    let mut conn = acquire(pool).await?;
    let now: Option<(Value,)> = exec_first(&mut conn, "SELECT UTC_TIMESTAMP(3)", (), "the database's clock").await?;
    let now = now.ok_or_else(|| DatabaseError::UnexpectedAnswer("no clock row".into()))?;
    Ok(required_instant(now.0, "the database's clock")?)
}

/// Creates an item and returns it as stored.
pub(crate) async fn create(pool: &Pool, item: &NewItem) -> Result<Item, SeckillError> {
    item.validate()?;
    let mut conn = acquire(pool).await?;
    conn.exec_drop(
        "INSERT INTO seckill (name, number, start_time, end_time) VALUES (?, ?, ?, ?)",
        (item.name.trim(), item.stock, item.start_time.naive_utc(), item.end_time.naive_utc()),
    )
    .await?;
    let id = conn
        .last_insert_id()
        .and_then(|id| i64::try_from(id).ok())
        .ok_or_else(|| DatabaseError::UnexpectedAnswer("the insert returned no item id".into()))?;
    get_with_now(&mut conn, id).await?.0.ok_or(SeckillError::NotFound(id))
}

/// Adds `amount` units of stock to an item and returns the new stock.
pub(crate) async fn add_stock(pool: &Pool, seckill_id: i64, amount: i32) -> Result<i32, SeckillError> {
    if amount <= 0 {
        return Err(SeckillError::InvalidItem("the stock to add must be positive".into()));
    }
    let mut conn = acquire(pool).await?;
    conn.exec_drop("UPDATE seckill SET number = number + ? WHERE seckill_id = ?", (amount, seckill_id)).await?;
    if conn.affected_rows() == 0 {
        return Err(SeckillError::NotFound(seckill_id));
    }
    let stock: Option<(i32,)> =
        exec_first(&mut conn, "SELECT number FROM seckill WHERE seckill_id = ?", (seckill_id,), "the stock").await?;
    stock.map(|(stock,)| stock).ok_or(SeckillError::NotFound(seckill_id))
}
