//! The ways of running one seckill that the bench compares.

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use serde::Serialize;

use seckill::database::acquire;
use seckill::database::error::DatabaseError;
use seckill::seckill::{Outcome, Phone, Seckill};

/// A way of running seckills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// A client-side transaction: BEGIN; UPDATE; INSERT; COMMIT, one statement per round trip.
    Naive,
    /// One CALL of the stored procedure per seckill.
    Procedure,
    /// The group-commit lanes: concurrent seckills of one item share one procedure call.
    Batched,
}

impl Strategy {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Naive => "naive",
            Strategy::Procedure => "procedure",
            Strategy::Batched => "batched",
        }
    }
}

/// Runs one seckill with `strategy`.
pub(crate) async fn attempt(strategy: Strategy, service: &Seckill, seckill_id: i64, phone: Phone) -> Outcome {
    match strategy {
        Strategy::Naive => naive(service.pool(), seckill_id, phone).await,
        Strategy::Procedure => service.execute_one(seckill_id, phone).await,
        Strategy::Batched => service.execute_verified(seckill_id, phone).await,
    }
}

/// The textbook client transaction, hot UPDATE first as most tutorials write it: every statement is a round
/// trip taken while the item's row lock is held.
async fn naive(pool: &Pool, seckill_id: i64, phone: Phone) -> Outcome {
    let mut conn = match acquire(pool).await {
        Ok(conn) => conn,
        Err(error) => return Outcome::inner_error(error),
    };
    let result: Result<Outcome, mysql_async::Error> = async {
        conn.query_drop("BEGIN").await?;
        conn.query_drop(format!(
            "UPDATE seckill SET number = number - 1 WHERE seckill_id = {seckill_id} AND number > 0 \
             AND start_time <= NOW(3) AND end_time > NOW(3)"
        ))
        .await?;
        if conn.affected_rows() == 0 {
            conn.query_drop("ROLLBACK").await?;
            return Ok(Outcome::SoldOut);
        }
        let insert = format!(
            "INSERT INTO success_killed (seckill_id, user_phone, state, create_time) \
             VALUES ({seckill_id}, {}, 0, NOW(3))",
            phone.get()
        );
        match conn.query_drop(insert).await {
            Err(mysql_async::Error::Server(e)) if e.code == 1062 => {
                conn.query_drop("ROLLBACK").await?;
                Ok(Outcome::RepeatKill)
            }
            Err(e) => Err(e),
            Ok(()) => {
                conn.query_drop("COMMIT").await?;
                Ok(Outcome::Success(seckill::seckill::SuccessKilled {
                    seckill_id,
                    user_phone: phone,
                    state: 0,
                    create_time: Some(chrono::Utc::now()),
                }))
            }
        }
    }
    .await;
    match result {
        Ok(outcome) => outcome,
        Err(error) => {
            let _ = conn.disconnect().await;
            Outcome::inner_error(DatabaseError::from(error))
        }
    }
}
