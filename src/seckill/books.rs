//! The books: what callers were told must be what the database holds. Checked after every bench run and
//! every demo, and by the tests.

use mysql_async::Pool;

use crate::database::acquire;
use crate::database::error::DatabaseError;
use crate::database::rows::exec_first;

/// One item's books as the database holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Books {
    /// Success rows for the item.
    pub rows: i64,
    /// Distinct buyers among them.
    pub distinct_buyers: i64,
    /// Stock left.
    pub stock: i64,
}

impl Books {
    /// Reads an item's books.
    ///
    /// # Errors
    /// The database's error.
    pub async fn read(pool: &Pool, seckill_id: i64) -> Result<Books, DatabaseError> {
        let mut conn = acquire(pool).await?;
        let counts_query = "SELECT COUNT(*), COUNT(DISTINCT user_phone) FROM success_killed WHERE seckill_id = ?";
        let counts: Option<(i64, i64)> = exec_first(&mut conn, counts_query, (seckill_id,), "the books").await?;
        let stock_query = "SELECT number FROM seckill WHERE seckill_id = ?";
        let stock: Option<(i64,)> = exec_first(&mut conn, stock_query, (seckill_id,), "the stock").await?;
        let (rows, distinct_buyers) = counts.unwrap_or((0, 0));
        Ok(Books { rows, distinct_buyers, stock: stock.map_or(-1, |(stock,)| stock) })
    }

    /// Whether they balance against `reported` successes from an initial stock: successes reported = success
    /// rows = stock taken, no buyer twice, stock never negative. `Err` says how they do not.
    ///
    /// # Errors
    /// A description of the imbalance.
    pub fn check(&self, initial_stock: i64, reported: u64) -> Result<(), String> {
        let balanced = u64::try_from(self.rows) == Ok(reported)
            && self.rows == self.distinct_buyers
            && self.stock >= 0
            && initial_stock - self.stock == self.rows;
        if balanced {
            Ok(())
        } else {
            Err(format!(
                "{reported} successes reported, {} success rows ({} distinct buyers), stock {initial_stock} -> {}",
                self.rows, self.distinct_buyers, self.stock
            ))
        }
    }
}
