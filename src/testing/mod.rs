//! A fresh database for each test, on a real server: for the toolkit's own tests and for yours.
//!
//! The server is the one `DATABASE_URL` points at when it is set (the user needs `CREATE` and `DROP` on
//! databases); otherwise a private MariaDB that this process starts from the binaries on PATH, shared by every
//! test of the run and removed when the run ends (see [`crate::local::mariadb`]). Each test gets its own
//! database, named after the test, so tests run in parallel without seeing each other. When the test passes
//! the database is dropped; when it fails (panics) it is kept and its name printed, so you can look inside.
//!
//! Enable the `testing` feature to use it:
//!
//! ```toml
//! [dev-dependencies]
//! seckill = { version = "0.1", features = ["testing"] }
//! ```
//!
//! ```no_run
//! use mysql_async::prelude::Queryable;
//! use seckill::testing::TestDatabase;
//!
//! #[tokio::test]
//! async fn my_procedure_refuses_negative_stock() {
//!     // Migrated with seckill's schema and procedures; `TestDatabase::with_migrator` takes your own files.
//!     let db = TestDatabase::migrated().await.unwrap();
//!     let mut conn = db.pool().get_conn().await.unwrap();
//!     let stock: Option<i64> = conn.query_first("SELECT COUNT(*) FROM seckill").await.unwrap();
//!     assert_eq!(stock, Some(0));
//! }
//! ```
//!
//! For code that reads from replicas, [`ReplicatedTestDatabase`] is such a database on the primary of a primary +
//! replica pair, with a pool on each server, dropped the same way.

mod replicated;

pub use replicated::{PRIMARY_URL_VARIABLE, REPLICA_URL_VARIABLE, ReplicatedTestDatabase};

use std::sync::atomic::{AtomicUsize, Ordering};

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use thiserror::Error;

use crate::database::error::DatabaseError;
use crate::database::{ConnectOptions, acquire, url_with_database, url_without_password};
use crate::local::LocalMariaDb;
use crate::migrate::{MigrateError, Migrator, sql_script::md5_hex};

/// Why a test database could not be made.
#[derive(Debug, Error)]
pub enum TestingError {
    /// Neither `DATABASE_URL` nor a private server is available.
    #[error("no database server for tests: {0}")]
    NoServer(String),
    /// The server refused to create or reach the database.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// The migrations or procedures failed to apply.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The replica of a pair did not apply the test's database in time.
    #[error("{0}")]
    ReplicaBehind(String),
}

/// The URL of the server tests use, with no database selected: `DATABASE_URL` when set, or the private
/// server (started on first use).
///
/// # Errors
/// [`TestingError::NoServer`] with what to install or set.
pub fn server_url() -> Result<String, TestingError> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url_with_database(&url, "")),
        _ => LocalMariaDb::shared().map(LocalMariaDb::root_url).map_err(TestingError::NoServer),
    }
}

/// A database that exists for one test. Dropped with the test when it passes, kept when it fails.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    server_url: String,
    pool: Pool,
}

impl TestDatabase {
    /// An empty database named after the running test.
    ///
    /// # Errors
    /// [`TestingError`] when no server is available or the database cannot be created.
    pub async fn new() -> Result<Self, TestingError> {
        Self::named(&current_test_name()).await
    }

    /// A database named after the running test, with seckill's migrations and procedures applied.
    ///
    /// # Errors
    /// As [`TestDatabase::new`], and [`TestingError::Migrate`] when applying fails.
    pub async fn migrated() -> Result<Self, TestingError> {
        Self::with_migrator(&Migrator::embedded()?).await
    }

    /// A database named after the running test, with `migrator`'s SQL applied: use
    /// [`crate::migrate::SqlSource::from_dirs`] for your own files.
    ///
    /// # Errors
    /// As [`TestDatabase::migrated`].
    pub async fn with_migrator(migrator: &Migrator) -> Result<Self, TestingError> {
        let database = Self::new().await?;
        migrator.run(database.pool()).await?;
        Ok(database)
    }

    /// A database named after the running test on the server at `server_url` (no database selected), with
    /// seckill's migrations and procedures applied: for a test that needs a server configured its own way, such
    /// as a private one started with other options ([`crate::local::LocalMariaDb::start_with_options`]).
    ///
    /// # Errors
    /// As [`TestDatabase::migrated`].
    pub async fn migrated_on(server_url: impl Into<String>) -> Result<Self, TestingError> {
        let database = Self::named_on(server_url.into(), &current_test_name()).await?;
        Migrator::embedded()?.run(database.pool()).await?;
        Ok(database)
    }

    /// A second database for the running test, named after it with `suffix`, with `migrator`'s SQL applied:
    /// for tests of two services that each own a database, such as the warehouse
    /// ([`Migrator::warehouse`]) beside the shop.
    ///
    /// # Errors
    /// As [`TestDatabase::migrated`].
    pub async fn companion(suffix: &str, migrator: &Migrator) -> Result<Self, TestingError> {
        let database = Self::named(&format!("{}_{suffix}", current_test_name())).await?;
        migrator.run(database.pool()).await?;
        Ok(database)
    }

    /// An empty database for the test called `test_name`. A database left from an earlier failed run of the
    /// same test is replaced.
    ///
    /// # Errors
    /// [`TestingError`] when no server is available or the database cannot be created.
    pub async fn named(test_name: &str) -> Result<Self, TestingError> {
        Self::named_on(server_url()?, test_name).await
    }

    /// An empty database for the test called `test_name` on the server at `server_url` (no database selected).
    async fn named_on(server_url: String, test_name: &str) -> Result<Self, TestingError> {
        let name = database_name(test_name);
        let admin = ConnectOptions::new(server_url.clone()).max_connections(1).build_pool()?;
        let created = async {
            let mut conn = acquire(&admin).await?;
            conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`")).await?;
            conn.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")).await?;
            Ok::<_, DatabaseError>(())
        }
        .await;
        admin.disconnect().await.ok();
        created?;
        let url = url_with_database(&server_url, &name);
        let pool = ConnectOptions::new(url.clone()).build_pool()?;
        Ok(TestDatabase { name, url, server_url, pool })
    }

    /// A pool on this database, with the toolkit's session settings.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The URL of this database, e.g. to hand to the `seckill` binary or to build a pool of your own.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the server, with no database selected.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let url = url_without_password(&self.url);
            eprintln!("seckill::testing: the test failed; kept database `{}` for inspection: {url}", self.name);
            return;
        }
        // Drop runs outside async, maybe on a runtime that is shutting down: use a thread and a runtime of its own.
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let admin =
                    ConnectOptions::new(server_url).max_connections(1).build_pool().map_err(std::io::Error::other)?;
                let result = async {
                    acquire(&admin).await?.query_drop(format!("DROP DATABASE IF EXISTS `{name}`")).await?;
                    Ok::<_, DatabaseError>(())
                }
                .await;
                admin.disconnect().await.ok();
                result.map_err(std::io::Error::other)
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("seckill::testing: could not drop database `{}`: {error}", self.name);
        }
    }
}

/// The running test's path, from the name libtest gives its thread; a unique fallback elsewhere.
fn current_test_name() -> String {
    static FALLBACK: AtomicUsize = AtomicUsize::new(0);
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => format!("process{}_{}", std::process::id(), FALLBACK.fetch_add(1, Ordering::Relaxed)),
    }
}

/// `sktest_` and the test path, made a valid identifier and cut to MySQL's 64 characters with a hash that keeps
/// long names apart.
fn database_name(test_name: &str) -> String {
    let cleaned: String =
        test_name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    let name = format!("sktest_{cleaned}");
    if name.len() <= 64 {
        return name;
    }
    let hash = &md5_hex(test_name.as_bytes())[..12];
    format!("{}_{hash}", &name[..51])
}

#[cfg(test)]
mod tests {
    use super::database_name;

    #[test]
    fn database_names_fit_and_stay_apart() {
        assert_eq!(database_name("seckill::oversell"), "sktest_seckill__oversell");
        let long_a = database_name(&format!("{}a", "x".repeat(100)));
        let long_b = database_name(&format!("{}b", "x".repeat(100)));
        assert!(long_a.len() <= 64 && long_b.len() <= 64);
        assert_ne!(long_a, long_b);
    }
}
