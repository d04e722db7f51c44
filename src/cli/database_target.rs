//! Which database a command works on: the URL given, or a private throwaway server; and the replicas to read
//! from.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, Pool};
use seckill::database::error::DatabaseError;
use seckill::database::{self, ConnectOptions, ReadWriteSplit, url_with_database};
use seckill::local::LocalMariaDb;

use super::Failure;

/// How long starting up waits for each replica before saying it is not answering (and serving anyway).
const REPLICA_CHECK: Duration = Duration::from_secs(2);

/// The database named by `--database-url` / `DATABASE_URL`, if any, and its replicas (`--replica-url` /
/// `SECKILL_REPLICA_URLS`).
#[derive(Debug)]
pub(crate) struct DatabaseTarget {
    url: Option<String>,
    /// Where a URL would have come from, for the note that a throwaway server is used instead.
    named_by: &'static str,
    replica_urls: Vec<String>,
}

impl DatabaseTarget {
    pub(crate) fn new(url: Option<String>) -> Self {
        Self::named_by(url, "--database-url or DATABASE_URL")
    }

    /// A database other than the shop's, whose URL comes from `named_by` (e.g. `--warehouse-database-url`).
    pub(crate) fn named_by(url: Option<String>, named_by: &'static str) -> Self {
        DatabaseTarget { url: url.filter(|u| !u.trim().is_empty()), named_by, replica_urls: Vec::new() }
    }

    /// The replicas' URLs given (`--replica-url` / `SECKILL_REPLICA_URLS`).
    pub(crate) fn replica_urls(&self) -> &[String] {
        &self.replica_urls
    }

    /// The same target with replicas to read from (empty entries ignored).
    pub(crate) fn with_replicas(mut self, urls: Vec<String>) -> Self {
        self.replica_urls = urls.into_iter().map(|url| url.trim().to_string()).filter(|url| !url.is_empty()).collect();
        self
    }

    /// The database and its replicas as a read/write split: the primary as [`Self::connect_or_throwaway`] gives
    /// it, checked; each replica's URL parsed (a bad one fails the command), and tried once: one not answering
    /// is said on stderr and skipped until it does.
    pub(crate) async fn split_or_throwaway(&self, name: &str) -> Result<ReadWriteSplit, Failure> {
        if self.replica_urls.is_empty() {
            return Ok(self.connect_or_throwaway(name).await?.into());
        }
        let Some(url) = &self.url else {
            return Err(Failure::new("--replica-url needs the primary's URL too")
                .hint("pass --database-url mysql://user:password@host:port/database or set DATABASE_URL"));
        };
        let primary_database = Opts::from_url(url).map_err(DatabaseError::InvalidUrl)?.db_name().map(str::to_string);
        let mut options = ConnectOptions::new(url.clone());
        for (index, replica) in self.replica_urls.iter().enumerate() {
            let opts = Opts::from_url(replica).map_err(|error| {
                // The URL itself is not shown: it may hold a password.
                Failure::new(format!(
                    "replica URL {} of {}: {}",
                    index + 1,
                    self.replica_urls.len(),
                    DatabaseError::InvalidUrl(error)
                ))
            })?;
            options = match (opts.db_name(), &primary_database) {
                (None, Some(database)) => options.replica(url_with_database(replica, database)),
                _ => options.replica(replica.clone()),
            };
        }
        let split = options.build_split()?;
        check(split.primary(), url).await?;
        for replica in split.replica_names() {
            eprintln!("seckill: reading from replica {replica}");
        }
        self.warn_about_silent_replicas(&options).await;
        Ok(split)
    }

    /// Says on stderr which replicas do not answer now; reads skip them until they do.
    async fn warn_about_silent_replicas(&self, options: &ConnectOptions) {
        for url in options.replica_urls() {
            let Ok(pool) = ConnectOptions::new(url.clone()).max_connections(1).build_pool() else { continue };
            let answered = tokio::time::timeout(REPLICA_CHECK, database::check_connection(&pool)).await;
            if !matches!(answered, Ok(Ok(()))) {
                let name = database::server_name(url).unwrap_or_default();
                eprintln!("seckill: replica {name} does not answer now; reads go to the primary until it does");
            }
            pool.disconnect().await.ok();
        }
    }

    /// The URL given, if any.
    pub(crate) fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// True when no URL was given, so commands work on a private throwaway server.
    pub(crate) fn is_throwaway(&self) -> bool {
        self.url.is_none()
    }

    /// A checked pool on the URL given; commands that only make sense on a lasting database use this.
    pub(crate) async fn connect(&self) -> Result<Pool, Failure> {
        let url = self.url.as_deref().ok_or_else(|| {
            Failure::new("no database given")
                .hint("pass --database-url mysql://user:password@host:port/database or set DATABASE_URL")
        })?;
        connect_checked(ConnectOptions::new(url)).await
    }

    /// A checked pool on the URL given, or else on a database `name` in a private throwaway server (said on
    /// stderr, since everything in it is gone when the command exits).
    pub(crate) async fn connect_or_throwaway(&self, name: &str) -> Result<Pool, Failure> {
        Ok(self.url_or_throwaway(name).await?.1)
    }

    /// As [`Self::connect_or_throwaway`], also returning the URL it connected to.
    pub(crate) async fn url_or_throwaway(&self, name: &str) -> Result<(String, Pool), Failure> {
        if let Some(url) = &self.url {
            return Ok((url.clone(), self.connect().await?));
        }
        let server = LocalMariaDb::shared()
            .map_err(|e| Failure::new(e).hint(format!("or pass {} to use your own server", self.named_by)))?;
        // Said once per database: a command that opens it again (each act of the demo) has said it already.
        static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let first = {
            let mut said = SAID.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let first = !said.iter().any(|database| database == name);
            if first {
                said.push(name.to_string());
            }
            first
        };
        if first {
            eprintln!(
                "seckill: no {}; using `{name}` in a private throwaway MariaDB on 127.0.0.1:{} (removed on exit)",
                self.named_by,
                server.port()
            );
        }
        let admin = database::connect(&server.root_url())?;
        let mut conn = database::acquire(&admin).await?;
        conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{name}`")).await.map_err(DatabaseError::from)?;
        drop(conn);
        let url = url_with_database(&server.root_url(), name);
        let pool = connect_checked(ConnectOptions::new(url.clone())).await?;
        Ok((url, pool))
    }
}

async fn connect_checked(options: ConnectOptions) -> Result<Pool, Failure> {
    let pool = options.build_pool()?;
    check(&pool, options.url()).await?;
    Ok(pool)
}

/// One connection and a trivial query on `pool`, whose server is `url`'s; a failure names the server
/// (host:port, never the password) and what to look at.
async fn check(pool: &Pool, url: &str) -> Result<(), Failure> {
    let Err(error) = database::check_connection(pool).await else { return Ok(()) };
    let server = database::server_name(url).unwrap_or_else(|_| "the database server".into());
    let failure = match &error {
        // Nothing else uses the pool yet: the wait was for the server.
        DatabaseError::PoolTimeout(waited) => {
            return Err(Failure::new(format!("no answer from the database server at {server} within {waited:?}"))
                .hint(
                    "check the host and port; a host that is down or a firewall that drops packets looks like this",
                ));
        }
        _ => Failure::new(format!("cannot use the database at {server}: {error}")),
    };
    Err(match error {
        DatabaseError::Unreachable(_) => failure.hint("check that the server runs and listens on that host and port"),
        DatabaseError::AccessDenied(_) => failure.hint("check the user name and password in the URL"),
        _ => failure,
    })
}
