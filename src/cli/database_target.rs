//! Which database a command works on: the URL given, or a private throwaway server.

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use seckill::database::{self, ConnectOptions, url_with_database};
use seckill::database_error::DatabaseError;
use seckill::local_server::LocalServer;

use super::Failure;

/// The database named by `--database-url` / `DATABASE_URL`, if any.
#[derive(Debug)]
pub(crate) struct DatabaseTarget {
    url: Option<String>,
    /// Where a URL would have come from, for the note that a throwaway server is used instead.
    named_by: &'static str,
}

impl DatabaseTarget {
    pub(crate) fn new(url: Option<String>) -> Self {
        Self::named_by(url, "--database-url or DATABASE_URL")
    }

    /// A database other than the shop's, whose URL comes from `named_by` (e.g. `--warehouse-database-url`).
    pub(crate) fn named_by(url: Option<String>, named_by: &'static str) -> Self {
        DatabaseTarget { url: url.filter(|u| !u.trim().is_empty()), named_by }
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
        let server = LocalServer::shared()
            .map_err(|e| Failure::new(e).hint(format!("or pass {} to use your own server", self.named_by)))?;
        eprintln!(
            "seckill: no {}; using `{name}` in a private throwaway MariaDB on 127.0.0.1:{} (removed on exit)",
            self.named_by,
            server.port()
        );
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
    database::check_connection(&pool).await?;
    Ok(pool)
}
