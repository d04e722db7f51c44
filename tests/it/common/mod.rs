//! Helpers shared by the integration tests.

pub mod browser;
pub mod http;
pub mod messaging;

use std::process::Command;
use std::sync::OnceLock;

use chrono::{Duration, Utc};
use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use seckill::local::LocalMariaDb;
use seckill::seckill::signing::Signer;
use seckill::seckill::{Item, NewItem, Phone, Seckill};
use seckill::testing::TestDatabase;

pub const SECRET: &str = "integration-test-secret-0123456789";

/// A private server whose auto-increment lock mode is "interleaved" (2: MySQL 8's default, Galera's
/// requirement), where one statement's ids need not be consecutive: the procedures' ways that assume they are
/// must step aside there. Started once per test run, removed with it.
pub fn interleaved_ids_server() -> &'static LocalMariaDb {
    static SERVER: OnceLock<LocalMariaDb> = OnceLock::new();
    SERVER.get_or_init(|| {
        LocalMariaDb::start_with_options(vec!["--innodb-autoinc-lock-mode=2".to_string()])
            .expect("a private server with interleaved auto-increment ids")
    })
}

/// A migrated database for the running test on [`interleaved_ids_server`].
pub async fn interleaved_ids_db() -> TestDatabase {
    let server = tokio::task::spawn_blocking(interleaved_ids_server).await.expect("the server starts");
    TestDatabase::migrated_on(server.root_url()).await.expect("a migrated test database")
}

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

/// A lottery campaign open for the hour around now, of one tier `prize` with `stock` units, which every draw wins
/// while units last.
pub async fn open_campaign(lottery: &seckill::lottery::Lottery, prize: &str, stock: u32) -> i64 {
    let (now, hour) = (Utc::now(), Duration::hours(1));
    let tiers = vec![seckill::lottery::NewTier { name: prize.into(), stock, weight: 1, value_fen: 0 }];
    let campaign = seckill::lottery::NewCampaign::new("春节抽奖", now - hour, now + hour, tiers);
    lottery.create_campaign(&campaign).await.expect("the campaign is created").campaign_id
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

/// The one number a query answers (a `COUNT(*)`), 0 for no row.
pub async fn count(pool: &Pool, query: &str) -> i64 {
    let mut conn = pool.get_conn().await.expect("a connection");
    conn.query_first(query).await.expect("the count").unwrap_or(0)
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
    // `seckill serve`'s metrics on a free port: tests run side by side, and another process may hold the default.
    command.env("SECKILL_METRICS_LISTEN", "127.0.0.1:0");
    command
}

/// Holds an item's row lock from another session until `release`, so that requests queue up behind a call that
/// cannot finish: the way to build a batch of known content, or to make a call wait across an instant.
pub struct RowLock(mysql_async::Conn);

impl RowLock {
    /// A seckill item's row.
    pub async fn take(pool: &Pool, seckill_id: i64) -> RowLock {
        Self::row(pool, "SELECT number FROM seckill WHERE seckill_id = ? FOR UPDATE", seckill_id).await
    }

    /// A points-exchange gift's row.
    pub async fn gift(pool: &Pool, gift_id: i64) -> RowLock {
        Self::row(pool, "SELECT stock FROM exchange_gift WHERE gift_id = ? FOR UPDATE", gift_id).await
    }

    /// A lottery campaign's row, which every batch of its draws locks first.
    pub async fn campaign(pool: &Pool, campaign_id: i64) -> RowLock {
        Self::row(pool, "SELECT name FROM lottery_campaign WHERE campaign_id = ? FOR UPDATE", campaign_id).await
    }

    async fn row(pool: &Pool, locking_read: &str, id: i64) -> RowLock {
        let mut conn = pool.get_conn().await.expect("a connection");
        conn.query_drop("START TRANSACTION").await.expect("a transaction");
        conn.exec_drop(locking_read, (id,)).await.expect("the row lock");
        RowLock(conn)
    }

    pub async fn release(mut self) {
        self.0.query_drop("ROLLBACK").await.expect("the lock is released");
    }

    /// The holder's connection id, to tell it apart from the sessions waiting for it.
    pub fn connection_id(&self) -> u32 {
        self.0.id()
    }
}

/// The id of another connection to this test's database that is waiting inside a procedure for an item's row
/// lock (the process list shows the statement running inside the CALL), waiting up to 5 s for one to show.
pub async fn connection_waiting_for_an_item_lock(pool: &Pool) -> u64 {
    let mut conn = pool.get_conn().await.expect("a connection");
    for _ in 0..100 {
        let id: Option<u64> = conn
            .query_first(
                "SELECT ID FROM information_schema.PROCESSLIST \
                  WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND COMMAND = 'Query' \
                    AND INFO LIKE '%FROM seckill%FOR UPDATE%' \
                  ORDER BY ID LIMIT 1",
            )
            .await
            .expect("the process list");
        if let Some(id) = id {
            return id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no connection is waiting for an item's row lock")
}

/// The id of a connection to this test's database running a statement like `statement` (a `LIKE` pattern: a
/// locking read inside a procedure) while `lock` holds its row, waiting up to 5 s for one to show. The holder is
/// left out by name: its own `FOR UPDATE` may still show as its last statement.
pub async fn connection_waiting_behind(pool: &Pool, lock: &RowLock, statement: &str) -> u64 {
    let mut conn = pool.get_conn().await.expect("a connection");
    for _ in 0..100 {
        let id: Option<u64> = conn
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST \
                  WHERE DB = DATABASE() AND ID NOT IN (CONNECTION_ID(), ?) AND COMMAND = 'Query' \
                    AND INFO LIKE ? \
                  ORDER BY ID LIMIT 1",
                (lock.connection_id(), statement),
            )
            .await
            .expect("the process list");
        if let Some(id) = id {
            return id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no connection is waiting for the row lock ({statement})")
}

/// Whether `phone` has a success row for the item.
pub async fn has_row(pool: &Pool, seckill_id: i64, phone: Phone) -> bool {
    let mut conn = pool.get_conn().await.expect("a connection");
    let rows: Option<i64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM success_killed WHERE seckill_id = ? AND user_phone = ?",
            (seckill_id, phone.get()),
        )
        .await
        .expect("rows are countable");
    rows.unwrap_or(0) > 0
}

/// Continues a paused Redis when the test ends, passing or failing, so that its clean-up is not held up.
pub struct Resume<'a>(pub &'a seckill::local::redis::LocalRedis);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        let _ = self.0.resume();
    }
}

/// A private server of the test's own (so that its server-wide counters count only the test's statements, or
/// so that the test may kill it) with a migrated database `name`, and that database's URL.
pub async fn private_database(name: &str) -> (seckill::local::LocalMariaDb, String) {
    let server = tokio::task::spawn_blocking(|| seckill::local::LocalMariaDb::start().expect("a private MariaDB"))
        .await
        .expect("the server starts");
    let admin = Pool::new(server.root_url().as_str());
    admin.get_conn().await.expect("a connection").query_drop(format!("CREATE DATABASE {name}")).await.unwrap();
    admin.disconnect().await.expect("a clean disconnect");
    let url = seckill::database::url_with_database(&server.root_url(), name);
    let pool = seckill::database::ConnectOptions::new(url.as_str()).build_pool().expect("a pool");
    seckill::migrate::Migrator::embedded().expect("the migrations").run(&pool).await.expect("migrated");
    pool.disconnect().await.expect("a clean disconnect");
    (server, url)
}

/// Kills a private server with SIGKILL, as a crash would, and keeps it down for `down` (off the async threads).
pub async fn crash(server: seckill::local::LocalMariaDb, down: std::time::Duration) -> seckill::local::LocalMariaDb {
    tokio::task::spawn_blocking(move || {
        server.kill().expect("the server is killed");
        std::thread::sleep(down);
        server
    })
    .await
    .expect("the crash completes")
}

/// Starts a crashed private server again on its data (off the async threads).
pub async fn restart(server: seckill::local::LocalMariaDb) -> seckill::local::LocalMariaDb {
    tokio::task::spawn_blocking(move || {
        server.restart().expect("the server restarts");
        server
    })
    .await
    .expect("the restart completes")
}
