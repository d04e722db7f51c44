//! Rows into Rust types without panicking.
//!
//! mysql_async's typed reads (`query_first::<(i64, NaiveDateTime)>`, `FromRow::from_row`) panic when a value
//! does not convert: a zero date (`0000-00-00`, which MariaDB's default sql_mode accepts from any client), a
//! NULL where the type has none, a column of the wrong type. Rows that others may have written are read here
//! instead, and a value that does not fit is an error naming what was being read.

use chrono::{DateTime, NaiveDate, Utc};
use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::{Conn, Params, Row, Value};

use crate::database::error::DatabaseError;

/// Converts one row, or says which answer did not have the expected shape.
///
/// # Errors
/// [`DatabaseError::UnexpectedAnswer`] naming `what`.
pub fn decode<T: FromRow>(row: Row, what: &str) -> Result<T, DatabaseError> {
    T::from_row_opt(row).map_err(|error| DatabaseError::UnexpectedAnswer(format!("{what}: {error}")))
}

/// The first row of a prepared statement's answer, converted.
///
/// # Errors
/// The server's error, or [`DatabaseError::UnexpectedAnswer`] when the row does not convert.
pub async fn exec_first<T: FromRow>(
    conn: &mut Conn,
    statement: &str,
    params: impl Into<Params> + Send,
    what: &str,
) -> Result<Option<T>, DatabaseError> {
    let row: Option<Row> = conn.exec_first(statement, params).await?;
    row.map(|row| decode(row, what)).transpose()
}

/// Every row of a prepared statement's answer, converted.
///
/// # Errors
/// The server's error, or [`DatabaseError::UnexpectedAnswer`] when a row does not convert.
pub async fn exec_all<T: FromRow>(
    conn: &mut Conn,
    statement: &str,
    params: impl Into<Params> + Send,
    what: &str,
) -> Result<Vec<T>, DatabaseError> {
    let rows: Vec<Row> = conn.exec(statement, params).await?;
    rows.into_iter().map(|row| decode(row, what)).collect()
}

/// Every row of a text-protocol query's answer, converted.
///
/// # Errors
/// The server's error, or [`DatabaseError::UnexpectedAnswer`] when a row does not convert.
pub async fn query_all<T: FromRow>(conn: &mut Conn, query: &str, what: &str) -> Result<Vec<T>, mysql_async::Error> {
    let rows: Vec<Row> = conn.query(query).await?;
    rows.into_iter()
        .map(|row| T::from_row_opt(row))
        .collect::<Result<_, _>>()
        .map_err(|error| mysql_async::Error::Other(format!("{what}: {error}").into()))
}

/// A DATETIME or TIMESTAMP value read in a UTC session as an instant; `None` for NULL and for the zero date,
/// which is no instant at all.
///
/// # Errors
/// [`DatabaseError::UnexpectedAnswer`] when the value is not a date and time.
pub fn instant(value: Value, what: &str) -> Result<Option<DateTime<Utc>>, DatabaseError> {
    match value {
        Value::NULL | Value::Date(0, 0, 0, ..) => Ok(None),
        Value::Date(year, month, day, hour, minute, second, micros) => {
            NaiveDate::from_ymd_opt(i32::from(year), u32::from(month), u32::from(day))
                .and_then(|date| date.and_hms_micro_opt(u32::from(hour), u32::from(minute), u32::from(second), micros))
                .map(|at| Some(at.and_utc()))
                .ok_or_else(|| {
                    DatabaseError::UnexpectedAnswer(format!("{what}: {value:?} is not a valid date and time"))
                })
        }
        Value::Bytes(ref text) => {
            // The text protocol sends dates as text.
            let text = String::from_utf8_lossy(text);
            if text.starts_with("0000-00-00") {
                return Ok(None);
            }
            chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f")
                .map(|at| Some(at.and_utc()))
                .map_err(|_| DatabaseError::UnexpectedAnswer(format!("{what}: {text:?} is not a date and time")))
        }
        other => Err(DatabaseError::UnexpectedAnswer(format!("{what}: {other:?} is not a date and time"))),
    }
}

/// As [`instant`], for a value that must be there.
///
/// # Errors
/// [`DatabaseError::UnexpectedAnswer`] for NULL, the zero date, or a value that is not a date and time.
pub fn required_instant(value: Value, what: &str) -> Result<DateTime<Utc>, DatabaseError> {
    instant(value, what)?.ok_or_else(|| DatabaseError::UnexpectedAnswer(format!("{what}: no date and time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_dates_are_no_instant_and_never_panic() {
        assert_eq!(instant(Value::Date(0, 0, 0, 0, 0, 0, 0), "t").unwrap(), None);
        assert_eq!(instant(Value::Bytes(b"0000-00-00 00:00:00.000".to_vec()), "t").unwrap(), None);
        assert!(instant(Value::Date(2026, 13, 1, 0, 0, 0, 0), "t").is_err());
        assert!(instant(Value::Int(5), "t").is_err());
        let at = instant(Value::Bytes(b"2026-11-11 12:00:00.250".to_vec()), "t").unwrap().unwrap();
        assert_eq!(at.timestamp_millis() % 1000, 250);
        assert!(required_instant(Value::NULL, "t").is_err());
    }
}
