//! The cluster's database: where the instances' primary and replicas are, started privately or given, and
//! migrated once before any instance starts.
//!
//! Every instance gets the primary's URL (`DATABASE_URL`) and one `--replica-url` per replica. A private
//! database is, for now, one throwaway MariaDB ([`LocalServer`]) with no replica; a primary + replica pair plugs
//! in as one more [`ClusterDatabase`] variant that starts it and fills [`RunningDatabase::replica_urls`].

use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use super::error::{ClusterError, local};
use crate::database::{self, ConnectOptions, url_with_database};
use crate::database_error::DatabaseError;
use crate::local_server::LocalServer;
use crate::migrate::Migrator;

/// The name of the database made in a private server.
pub const PRIVATE_DATABASE: &str = "seckill";

/// Which database the instances use.
#[derive(Debug, Clone)]
pub enum ClusterDatabase {
    /// A private throwaway MariaDB started for the cluster and removed with it.
    Private,
    /// A database of yours: the primary every write goes to, and replicas for reads that tolerate staleness
    /// (each passed to every instance as `--replica-url`).
    Given { primary_url: String, replica_urls: Vec<String> },
}

/// The database of a running cluster.
#[derive(Debug)]
pub struct RunningDatabase {
    primary_url: String,
    replica_urls: Vec<String>,
    pool: Pool,
    /// The private server, when the cluster started one: removed when dropped (by its guardian).
    server: Option<LocalServer>,
}

impl ClusterDatabase {
    /// A database of yours at `primary_url`, without replicas.
    pub fn given(primary_url: impl Into<String>) -> Self {
        ClusterDatabase::Given { primary_url: primary_url.into(), replica_urls: Vec::new() }
    }

    /// Starts (or reaches) the database and migrates it.
    pub(crate) async fn start(&self) -> Result<RunningDatabase, ClusterError> {
        let (primary_url, replica_urls, server) = match self {
            ClusterDatabase::Given { primary_url, replica_urls } => (primary_url.clone(), replica_urls.clone(), None),
            ClusterDatabase::Private => {
                let server = tokio::task::spawn_blocking(LocalServer::start)
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
        Ok(RunningDatabase { primary_url, replica_urls, pool, server })
    }
}

impl RunningDatabase {
    /// The primary's URL, as the instances get it.
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
    pub fn local_server(&self) -> Option<&LocalServer> {
        self.server.as_ref()
    }
}
