//! Shipment requests from the message service: the warehouse consumer's [`Handler`], which turns each
//! [`ShipmentRequest`] into a `shipment_request` row of the warehouse's own database.
//!
//! Each batch's insert is bounded on the client side ([`ShipmentHandler::with_answer_timeout`]): a connection to
//! the warehouse's database that goes silent is closed after the bound, and the batch fails, so that the message
//! service tries it again later on a new connection (the insert is idempotent on `credit_exchange_id`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Pool, Value};

use crate::database::{Checkout, DEFAULT_ANSWER_TIMEOUT, within};
use crate::exchange::message::ShipmentRequest;
use crate::messaging::{Handled, Handler, Incoming};

/// What the handler has done, for tests, benchmarks and logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WarehouseStats {
    /// Shipment requests inserted.
    pub inserted: u64,
    /// Messages that were already done (a redelivery or a re-send): the duplicates the key absorbed.
    pub duplicates: u64,
    /// Messages refused as poison.
    pub poison: u64,
}

#[derive(Debug, Default)]
struct Counters {
    inserted: AtomicU64,
    duplicates: AtomicU64,
    poison: AtomicU64,
}

/// Inserts shipment requests into the warehouse's database, idempotently.
#[derive(Debug, Clone)]
pub struct ShipmentHandler {
    pool: Pool,
    answer_timeout: Duration,
    counters: Arc<Counters>,
}

impl ShipmentHandler {
    /// A handler writing to the warehouse database in `pool` (migrated with
    /// [`crate::migrate::Migrator::warehouse`]), each batch's insert bounded by [`DEFAULT_ANSWER_TIMEOUT`].
    pub fn new(pool: Pool) -> Self {
        ShipmentHandler { pool, answer_timeout: DEFAULT_ANSWER_TIMEOUT, counters: Arc::default() }
    }

    /// Bounds each batch's insert by `bound` instead: past it the connection is closed and the batch fails.
    pub fn with_answer_timeout(mut self, bound: Duration) -> Self {
        self.answer_timeout = bound;
        self
    }

    /// What it has done so far.
    pub fn stats(&self) -> WarehouseStats {
        WarehouseStats {
            inserted: self.counters.inserted.load(Ordering::Relaxed),
            duplicates: self.counters.duplicates.load(Ordering::Relaxed),
            poison: self.counters.poison.load(Ordering::Relaxed),
        }
    }
}

impl Handler for ShipmentHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Handled>, String> {
        let parsed: Vec<Result<ShipmentRequest, String>> =
            batch.iter().map(|message| ShipmentRequest::parse(&message.payload)).collect();
        let mut params: Vec<Value> = Vec::new();
        let mut rows = 0;
        for (message, request) in batch.iter().zip(&parsed) {
            if let Ok(request) = request {
                rows += 1;
                params.extend([
                    Value::from(request.kind),
                    Value::from(request.credit_exchange_id),
                    Value::from(request.product_id),
                    Value::from(request.user_id),
                    Value::from(message.message_id),
                ]);
            }
        }
        if rows > 0 {
            let values = vec!["(?, ?, ?, ?, ?)"; rows].join(", ");
            // One statement, one transaction for the batch. A duplicate key updates nothing (`id = id`) and
            // counts 0 rows: "already done". Unlike INSERT IGNORE, any other error is still an error.
            let insert = format!(
                "INSERT INTO shipment_request (type, credit_exchange_id, product_id, user_id, message_id) \
                 VALUES {values} ON DUPLICATE KEY UPDATE id = id"
            );
            let inserted = within(self.answer_timeout, "inserting shipment requests", async {
                let mut conn = Checkout::take(&self.pool).await?;
                conn.exec_drop(insert, params).await?;
                let inserted = conn.affected_rows();
                conn.release();
                Ok(inserted)
            })
            .await
            .map_err(|error| error.to_string())?;
            self.counters.inserted.fetch_add(inserted, Ordering::Relaxed);
            self.counters.duplicates.fetch_add((rows as u64).saturating_sub(inserted), Ordering::Relaxed);
        }
        Ok(parsed
            .into_iter()
            .map(|request| match request {
                Ok(_) => Handled::Done,
                Err(why) => {
                    self.counters.poison.fetch_add(1, Ordering::Relaxed);
                    Handled::Poison(why)
                }
            })
            .collect())
    }
}
