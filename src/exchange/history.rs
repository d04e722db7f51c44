//! A user's exchanges, each with where its shipment message stands: what the points side knows of the
//! shipment.
//!
//! The message is the `message_outbox` row the exchange wrote (topic `warehouse.shipment`, business key the
//! exchange id). `pending`: not yet sent; `sent`: handed to the broker, the warehouse has not called back;
//! `consumed`: the warehouse recorded the shipment request; `dead`: the warehouse refused it as poison, an
//! operator must look (`seckill messages dead`).

use chrono::{DateTime, Utc};
use mysql_async::{Conn, Value};
use serde::Serialize;

use super::error::ExchangeError;
use crate::database::error::DatabaseError;
use crate::database::rows::{exec_all, instant};
use crate::messaging::MessageState;

/// One exchange that went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExchangeRecord {
    pub exchange_id: i64,
    pub gift_id: i64,
    /// Points paid.
    pub exchanged_credit: i64,
    pub request_id: String,
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub created_at: Option<DateTime<Utc>>,
    /// The shipment message's state; `None` only if its row was removed by hand (the books flag that).
    pub shipment: Option<MessageState>,
}

fn message_state(text: &str) -> Option<MessageState> {
    [MessageState::Pending, MessageState::Sent, MessageState::Consumed, MessageState::Dead]
        .into_iter()
        .find(|state| state.as_str() == text)
}

/// A user's exchanges, newest first, at most `limit`.
pub(crate) async fn history(conn: &mut Conn, user_id: i64, limit: u32) -> Result<Vec<ExchangeRecord>, ExchangeError> {
    // CONCAT rather than CAST: its result yields to the column's collation, where CAST's would clash with it in
    // a session whose collation_connection differs (error 1267); both use the unique (topic, business_key).
    let query = "SELECT ce.id, ce.product_id, ce.exchanged_credit, ce.request_id, ce.created_at, mo.state \
                   FROM credit_exchange ce \
                   LEFT JOIN message_outbox mo \
                     ON mo.topic = 'warehouse.shipment' AND mo.business_key = CONCAT(ce.id) \
                  WHERE ce.user_id = ? ORDER BY ce.id DESC LIMIT ?";
    let what = "an exchange";
    type HistoryRow = (i64, i64, i64, String, Value, Option<String>);
    let rows: Vec<HistoryRow> = exec_all(conn, query, (user_id, limit), what).await?;
    rows.into_iter()
        .map(|(exchange_id, gift_id, exchanged_credit, request_id, created, state)| {
            let shipment = match state {
                None => None,
                Some(text) => Some(message_state(&text).ok_or_else(|| {
                    DatabaseError::UnexpectedAnswer(format!("{what} {exchange_id}: message state {text:?}"))
                })?),
            };
            let created_at = instant(created, what)?;
            Ok(ExchangeRecord { exchange_id, gift_id, exchanged_credit, request_id, created_at, shipment })
        })
        .collect()
}
