//! The books check after every run: what callers were told must be what the database holds.

use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use super::BenchError;
use crate::database::acquire;

/// Checks that successes reported = success rows = stock taken, no user twice, stock never negative.
pub(crate) async fn check(pool: &Pool, seckill_id: i64, initial_stock: i64, reported: u64) -> Result<(), BenchError> {
    let mut conn = acquire(pool).await?;
    let row: Option<(i64, i64)> = conn
        .exec_first(
            "SELECT COUNT(*), COUNT(DISTINCT user_phone) FROM success_killed WHERE seckill_id = ?",
            (seckill_id,),
        )
        .await
        .map_err(crate::database_error::DatabaseError::from)?;
    let (rows, distinct_users) = row.unwrap_or((0, 0));
    let stock: Option<i64> = conn
        .exec_first("SELECT number FROM seckill WHERE seckill_id = ?", (seckill_id,))
        .await
        .map_err(crate::database_error::DatabaseError::from)?;
    let stock = stock.unwrap_or(-1);
    let balanced =
        u64::try_from(rows) == Ok(reported) && rows == distinct_users && stock >= 0 && initial_stock - stock == rows;
    if balanced {
        Ok(())
    } else {
        Err(BenchError::BooksDoNotBalance(format!(
            "item {seckill_id}: {reported} successes reported, {rows} success rows ({distinct_users} distinct users), \
             stock {initial_stock} -> {stock}"
        )))
    }
}
