//! The cluster's database: where the instances' primary and replicas are, started privately or given, and
//! migrated once before any instance starts.
//!
//! Every instance gets the primary's URL (`DATABASE_URL`) and the replicas' (`SECKILL_REPLICA_URLS`), in its
//! environment. A private
//! database is one throwaway MariaDB ([`LocalMariaDb`]), or a primary + replica pair ([`LocalReplicaPair`]) on
//! which the cluster migrates as an owner account and the instances connect as an app account, neither with
//! READ ONLY ADMIN: the procedures run with their owner's privileges, so the replica's `read_only` refuses any
//! write that reached it by mistake (root would pass it). Both accounts get passwords drawn for this topology
//! from the system's random source (as root of each server has its own), which reach the instances in their
//! environment, never on a command line.

use std::fmt;

use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use super::error::{ClusterError, local};
use crate::database::error::DatabaseError;
use crate::database::{self, ConnectOptions, url_with_database, url_without_password as without_password};
use crate::local::scratch::Password;
use crate::local::{LocalMariaDb, LocalReplicaPair};
use crate::migrate::Migrator;

/// The name of the database made in a private server.
pub const PRIVATE_DATABASE: &str = "seckill";

/// Which database the instances use.
#[derive(Debug, Clone)]
pub enum ClusterDatabase {
    /// A private throwaway MariaDB started for the cluster and removed with it.
    Private,
    /// A private primary + replica pair with GTID replication, started for the cluster and removed with it.
    PrivatePair,
    /// A database of yours: the primary every write goes to, and replicas for reads that tolerate staleness
    /// (passed to every instance in `SECKILL_REPLICA_URLS`).
    Given { primary_url: String, replica_urls: Vec<String> },
}

/// The database of a running cluster.
pub struct RunningDatabase {
    primary_url: String,
    replica_urls: Vec<String>,
    pool: Pool,
    /// The private server, when the cluster started one: removed when dropped (by its guardian).
    server: Option<LocalMariaDb>,
    /// The private pair, when the cluster started one.
    pair: Option<LocalReplicaPair>,
}

/// The accounts of a private pair: the owner migrates (and so defines the procedures), the app serves.
const OWNER: &str = "seckill_owner";
const APP: &str = "seckill_app";

impl ClusterDatabase {
    /// A database of yours at `primary_url`, without replicas.
    pub fn given(primary_url: impl Into<String>) -> Self {
        ClusterDatabase::Given { primary_url: primary_url.into(), replica_urls: Vec::new() }
    }

    /// Starts (or reaches) the database and migrates it.
    pub(crate) async fn start(&self) -> Result<RunningDatabase, ClusterError> {
        let (primary_url, replica_urls, server) = match self {
            ClusterDatabase::Given { primary_url, replica_urls } => (primary_url.clone(), replica_urls.clone(), None),
            ClusterDatabase::PrivatePair => return start_pair().await,
            ClusterDatabase::Private => {
                let server = tokio::task::spawn_blocking(LocalMariaDb::start)
                    .await
                    .map_err(|e| local("starting MariaDB")(std::io::Error::other(e)))?
                    .map_err(ClusterError::DatabaseServer)?;
                let admin = database::connect(&server.root_url())?;
                let mut conn = database::acquire(&admin).await?;
                conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{PRIVATE_DATABASE}`"))
                    .await
                    .map_err(DatabaseError::from)?;
                drop(conn);
                admin.disconnect().await.map_err(DatabaseError::from)?;
                (url_with_database(&server.root_url(), PRIVATE_DATABASE), Vec::new(), Some(server))
            }
        };
        let pool = ConnectOptions::new(primary_url.clone()).build_pool()?;
        database::check_connection(&pool).await?;
        // Once, before any instance starts: instances given a URL never migrate by themselves.
        Migrator::embedded()?.run(&pool).await?;
        Ok(RunningDatabase { primary_url, replica_urls, pool, server, pair: None })
    }
}

/// A private pair: the database and both accounts made on the primary (replicated to the replica), migrated as
/// the owner, and the app's URLs for the instances.
async fn start_pair() -> Result<RunningDatabase, ClusterError> {
    let pair = tokio::task::spawn_blocking(LocalReplicaPair::start)
        .await
        .map_err(|e| local("starting MariaDB")(std::io::Error::other(e)))?
        .map_err(|e| local("starting a primary and replica")(std::io::Error::other(e.to_string())))?;
    let admin = database::connect(&pair.primary_url())?;
    let mut conn = database::acquire(&admin).await?;
    let (db, owner, app) = (PRIVATE_DATABASE, OWNER, APP);
    // Loopback is every local user's: the passwords are this topology's own, and go no further than the
    // instances' environment.
    let (owner_password, app_password) = (password()?, password()?);
    let (owner_password, app_password) = (owner_password.as_str(), app_password.as_str());
    let setup = [
        format!("CREATE DATABASE IF NOT EXISTS `{db}`"),
        format!("CREATE USER IF NOT EXISTS '{owner}'@'%' IDENTIFIED BY '{owner_password}'"),
        format!("GRANT ALL PRIVILEGES ON `{db}`.* TO '{owner}'@'%'"),
        format!("CREATE USER IF NOT EXISTS '{app}'@'%' IDENTIFIED BY '{app_password}'"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE, CREATE TEMPORARY TABLES ON `{db}`.* TO '{app}'@'%'"),
        // The split's lag check reads SHOW SLAVE STATUS on the replica.
        format!("GRANT SLAVE MONITOR ON *.* TO '{app}'@'%'"),
    ];
    for statement in setup {
        conn.query_drop(statement).await.map_err(DatabaseError::from)?;
    }
    drop(conn);
    admin.disconnect().await.map_err(DatabaseError::from)?;
    // Never root by mistake: root passes the replica's read_only, which these accounts exist to meet.
    let as_account = |server: &LocalMariaDb, user: &str, password: &str| {
        format!("mysql://{user}:{password}@127.0.0.1:{}/{db}", server.port())
    };
    let owner_pool = ConnectOptions::new(as_account(pair.primary(), owner, owner_password)).build_pool()?;
    database::check_connection(&owner_pool).await?;
    Migrator::embedded()?.run(&owner_pool).await?;
    owner_pool.disconnect().await.map_err(DatabaseError::from)?;
    let primary_url = as_account(pair.primary(), app, app_password);
    let replica_urls = vec![as_account(pair.replica(), app, app_password)];
    let pool = ConnectOptions::new(primary_url.clone()).build_pool()?;
    database::check_connection(&pool).await?;
    Ok(RunningDatabase { primary_url, replica_urls, pool, server: None, pair: Some(pair) })
}

/// A password for an account of the private pair.
fn password() -> Result<Password, ClusterError> {
    Password::generate().map_err(ClusterError::DatabaseServer)
}

impl fmt::Debug for RunningDatabase {
    // The URLs hold passwords: shown without them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let replica_urls: Vec<String> = self.replica_urls.iter().map(|url| without_password(url)).collect();
        f.debug_struct("RunningDatabase")
            .field("primary_url", &without_password(&self.primary_url))
            .field("replica_urls", &replica_urls)
            .field("server", &self.server)
            .field("pair", &self.pair)
            .finish_non_exhaustive()
    }
}

impl RunningDatabase {
    /// The primary's URL, as the instances get it (with its password: keep it to this process).
    pub fn primary_url(&self) -> &str {
        &self.primary_url
    }

    /// The replicas' URLs (none for a private single server).
    pub fn replica_urls(&self) -> &[String] {
        &self.replica_urls
    }

    /// A pool on the primary, migrated.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The private server, when the cluster started one (to kill or restart it in a fault test).
    pub fn local_server(&self) -> Option<&LocalMariaDb> {
        self.server.as_ref()
    }

    /// The private primary + replica pair, when the cluster started one (to stop or lag its replica in a fault
    /// test).
    pub fn local_pair(&self) -> Option<&LocalReplicaPair> {
        self.pair.as_ref()
    }
}
