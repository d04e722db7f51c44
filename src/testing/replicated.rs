//! A test database on a primary + replica pair: for tests of code that reads from replicas.
//!
//! The pair is the one two environment variables name, when both are set: [`PRIMARY_URL_VARIABLE`]
//! (`SECKILL_TEST_PRIMARY_URL`, a server URL whose user may create and drop databases) and
//! [`REPLICA_URL_VARIABLE`] (`SECKILL_TEST_REPLICA_URL`, a replica of that server, replicating every database,
//! whose user may read them). Otherwise it is a private pair this process starts from the binaries on PATH
//! ([`LocalReplicaPair::shared`]), shared by every test of the run and removed when the run ends. Tests that stop
//! the replica, or its SQL thread, start a pair of their own ([`LocalReplicaPair::start`]) and use
//! [`ReplicatedTestDatabase::migrated_on`].
//!
//! The database is created and migrated on the primary, and replicated: the replica has the schema before the
//! test starts. As with [`TestDatabase`], it is named after the test, dropped (on the primary, and so on the
//! replica) when the test passes and kept when it fails.
//!
//! ```no_run
//! use seckill::database::ReplicaConfig;
//! use seckill::seckill::Seckill;
//! use seckill::seckill::signing::Signer;
//! use seckill::testing::ReplicatedTestDatabase;
//!
//! #[tokio::test]
//! async fn lists_are_read_from_the_replica() {
//!     let db = ReplicatedTestDatabase::migrated().await.unwrap();
//!     let split = db.split(ReplicaConfig::default());
//!     let service = Seckill::new(split.clone(), Signer::hmac("a key of sixteen bytes or more").unwrap());
//!     service.list(10).await.unwrap();
//!     assert_eq!(split.stats().replica_reads_total(), 1);
//! }
//! ```

use std::time::Duration;

use mysql_async::Pool;

use super::{TestDatabase, TestingError, current_test_name};
use crate::database::gtid::{binlog_position, wait_for_position};
use crate::database::{
    ConnectOptions, ReadWriteSplit, ReplicaConfig, ReplicaPool, acquire, server_name, url_with_database,
};
use crate::local::replication::LocalReplicaPair;
use crate::migrate::Migrator;

/// The environment variable naming the primary of a pair of your own for tests (both variables or neither).
pub const PRIMARY_URL_VARIABLE: &str = "SECKILL_TEST_PRIMARY_URL";
/// The environment variable naming the replica of a pair of your own for tests (both variables or neither).
pub const REPLICA_URL_VARIABLE: &str = "SECKILL_TEST_REPLICA_URL";

/// How long setting up waits for the replica to apply the new database's schema.
const SCHEMA_CATCH_UP: Duration = Duration::from_secs(30);

/// A database for one test on the primary of a pair, with a pool on the primary and one on the replica.
#[derive(Debug)]
pub struct ReplicatedTestDatabase {
    primary: TestDatabase,
    replica_url: String,
    replica_server_url: String,
    replica_pool: Pool,
}

impl ReplicatedTestDatabase {
    /// An empty database named after the running test, on the pair the environment names or else the shared
    /// private pair, once the replica has it too.
    ///
    /// # Errors
    /// [`TestingError::NoServer`] when no pair is available (or only one variable is set), and the errors of
    /// creating and replicating it.
    pub async fn new() -> Result<Self, TestingError> {
        let (primary, replica) = pair_urls()?;
        Self::on_servers(primary, replica, None).await
    }

    /// As [`Self::new`], with seckill's migrations and procedures applied (as the primary URL's account, which
    /// becomes the procedures' definer).
    ///
    /// # Errors
    /// As [`Self::new`], and [`TestingError::Migrate`] when applying fails.
    pub async fn migrated() -> Result<Self, TestingError> {
        let (primary, replica) = pair_urls()?;
        Self::on_servers(primary, replica, Some(&Migrator::embedded()?)).await
    }

    /// As [`Self::new`], on `pair` (a private pair a test may stop, lag or kill).
    ///
    /// # Errors
    /// As [`Self::new`].
    pub async fn new_on(pair: &LocalReplicaPair) -> Result<Self, TestingError> {
        Self::on_servers(pair.primary_url(), pair.replica_url(), None).await
    }

    /// As [`Self::migrated`], on `pair` (a private pair a test may stop, lag or kill).
    ///
    /// # Errors
    /// As [`Self::migrated`].
    pub async fn migrated_on(pair: &LocalReplicaPair) -> Result<Self, TestingError> {
        Self::on_servers(pair.primary_url(), pair.replica_url(), Some(&Migrator::embedded()?)).await
    }

    /// A database named after the running test on the primary at `primary_server_url` (no database selected),
    /// with `migrator`'s SQL applied if one is given, once the replica at `replica_server_url` has applied it
    /// too.
    ///
    /// # Errors
    /// As [`Self::migrated`]; [`TestingError::ReplicaBehind`] when the replica does not apply it within 30 s.
    pub async fn on_servers(
        primary_server_url: String,
        replica_server_url: String,
        migrator: Option<&Migrator>,
    ) -> Result<Self, TestingError> {
        let primary = TestDatabase::named_on(primary_server_url, &current_test_name()).await?;
        if let Some(migrator) = migrator {
            migrator.run(primary.pool()).await?;
        }
        let replica_url = url_with_database(&replica_server_url, primary.name());
        let replica_pool = ConnectOptions::new(replica_url.clone()).build_pool()?;
        let database = ReplicatedTestDatabase { primary, replica_url, replica_server_url, replica_pool };
        if !database.wait_for_replica(SCHEMA_CATCH_UP).await? {
            return Err(TestingError::ReplicaBehind(format!(
                "the replica at {} did not apply database `{}` within {SCHEMA_CATCH_UP:?}",
                server_name(&database.replica_server_url)?,
                database.name()
            )));
        }
        Ok(database)
    }

    /// The database on the primary: its name, URL and pool.
    pub fn primary(&self) -> &TestDatabase {
        &self.primary
    }

    /// A pool on the primary, with the toolkit's session settings.
    pub fn primary_pool(&self) -> &Pool {
        self.primary.pool()
    }

    /// A pool on the replica's copy of the database, with the toolkit's session settings.
    pub fn replica_pool(&self) -> &Pool {
        &self.replica_pool
    }

    /// The URL of the replica's copy of the database.
    pub fn replica_url(&self) -> &str {
        &self.replica_url
    }

    /// The database's name (the same on both servers).
    pub fn name(&self) -> &str {
        self.primary.name()
    }

    /// A read/write split over the two pools, the replica used as `config` says.
    pub fn split(&self, config: ReplicaConfig) -> ReadWriteSplit {
        let name = server_name(&self.replica_url).unwrap_or_else(|_| "replica".to_string());
        let replica = ReplicaPool { name, pool: self.replica_pool.clone() };
        ReadWriteSplit::new(self.primary_pool().clone(), vec![replica], config)
    }

    /// Waits until the replica has applied everything the primary has logged so far, at most `timeout`: true when
    /// it has.
    ///
    /// # Errors
    /// [`TestingError::Database`] when a server cannot be reached.
    pub async fn wait_for_replica(&self, timeout: Duration) -> Result<bool, TestingError> {
        let position = binlog_position(&mut acquire(self.primary_pool()).await?).await?;
        // On the server, not the database: the replica may not have created the database yet.
        let server = ConnectOptions::new(self.replica_server_url.clone()).max_connections(1).build_pool()?;
        let applied = async { wait_for_position(&mut acquire(&server).await?, &position, timeout).await }.await;
        server.disconnect().await.ok();
        Ok(applied?)
    }
}

/// The server URLs of the pair for tests: the environment's, or the shared private pair's.
fn pair_urls() -> Result<(String, String), TestingError> {
    let variable = |name: &str| std::env::var(name).ok().filter(|url| !url.trim().is_empty());
    match (variable(PRIMARY_URL_VARIABLE), variable(REPLICA_URL_VARIABLE)) {
        (Some(primary), Some(replica)) => Ok((url_with_database(&primary, ""), url_with_database(&replica, ""))),
        (None, None) => {
            let pair = LocalReplicaPair::shared().map_err(TestingError::NoServer)?;
            Ok((pair.primary_url(), pair.replica_url()))
        }
        _ => Err(TestingError::NoServer(format!(
            "set both {PRIMARY_URL_VARIABLE} and {REPLICA_URL_VARIABLE} (a primary and its replica), or neither for a \
             private pair"
        ))),
    }
}
