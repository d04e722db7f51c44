//! Helpers shared by the integration tests.

pub mod http;

use std::process::Command;

use chrono::{Duration, Utc};
use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use seckill::seckill::{Item, NewItem, Phone, Seckill};
use seckill::signing::Signer;
use seckill::testing::TestDatabase;

pub const SECRET: &str = "integration-test-secret-0123456789";

/// A migrated database for the running test.
pub async fn migrated_db() -> TestDatabase {
    TestDatabase::migrated().await.expect("a migrated test database")
}

/// The service over `db` with HMAC signing.
pub fn service(db: &TestDatabase) -> Seckill {
    Seckill::new(db.pool().clone(), signer())
}

pub fn signer() -> Signer {
    Signer::hmac(SECRET).expect("a valid key")
}

/// The `n`-th test phone.
pub fn phone(n: i64) -> Phone {
    Phone::new(13_000_000_000 + n).expect("a valid phone")
}

/// An item whose sale opened an hour ago and closes in an hour.
pub async fn open_item(service: &Seckill, stock: i32) -> Item {
    item_with_window(service, stock, Duration::hours(-1), Duration::hours(1)).await
}

/// An item whose window is [now + start, now + end).
pub async fn item_with_window(service: &Seckill, stock: i32, start: Duration, end: Duration) -> Item {
    let now = Utc::now();
    let new_item = NewItem { name: "test item".into(), stock, start_time: now + start, end_time: now + end };
    service.create(&new_item).await.expect("the item is created")
}

/// The item's stock as stored.
pub async fn stock(pool: &Pool, seckill_id: i64) -> i64 {
    let mut conn = pool.get_conn().await.expect("a connection");
    conn.exec_first("SELECT number FROM seckill WHERE seckill_id = ?", (seckill_id,))
        .await
        .expect("stock is readable")
        .expect("the item exists")
}

/// The number of success rows for the item.
pub async fn success_rows(pool: &Pool, seckill_id: i64) -> i64 {
    let mut conn = pool.get_conn().await.expect("a connection");
    conn.exec_first("SELECT COUNT(*) FROM success_killed WHERE seckill_id = ?", (seckill_id,))
        .await
        .expect("rows are countable")
        .unwrap_or(0)
}

/// The `seckill` binary, pointed at `url`, with HMAC signing configured.
pub fn seckill_command(url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_seckill"));
    command.env("DATABASE_URL", url).env("SECKILL_SECRET", SECRET).env_remove("SECKILL_SIGNING");
    command
}
