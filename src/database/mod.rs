//! Connecting to the server: the one place that turns a URL into a pool with the session settings the whole
//! toolkit relies on.
//!
//! Every connection runs with the session time zone set to UTC, so that the toolkit reads and writes instants
//! as UTC (the schema's TIMESTAMP columns convert to and from whatever zone a session has, so classic clients in
//! +08:00 read their own local times). Connections are not reset when they go back to the pool: a reset is a
//! round trip and drops the prepared-statement cache, and nothing the toolkit does leaves state behind (the
//! procedures always end their transactions, and [`call::return_clean`] checks that they did).
//!
//! Replicas are given besides the primary ([`ConnectOptions::replica`]); [`ConnectOptions::build_split`] then
//! builds a [`ReadWriteSplit`] that sends writes to the primary and reads where their freshness allows.
//!
//! - [`bounded`]: work bounded on the client side, whose connection is closed, never reused, past its bound.
//! - [`call`]: calling a procedure, and whether its failure means "rolled back" or "in doubt".
//! - [`gtid`]: GTIDs, which writes return so that later reads can wait for them on a replica.
//! - [`read_write_split`]: the primary, the replicas, and which one a read goes to; `primary_position`: what the
//!   primary is known to have committed, so that no read waits on a replica for a position it has not.
//! - [`rows`]: rows into Rust types without panicking.

pub mod bounded;
pub mod call;
pub mod error;
pub mod gtid;
mod primary_position;
pub mod read_write_split;
pub mod rows;

pub use bounded::{Checkout, DEFAULT_ANSWER_TIMEOUT, within};
pub use error::DatabaseError;
pub use gtid::{Gtid, GtidPosition, InvalidGtid, WithGtid};
pub use read_write_split::{Consistency, FallbackReason, ReadWriteSplit, ReplicaConfig, ReplicaPool, SplitStats};

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

/// How long to wait for a free pooled connection before giving up (mysql_async itself waits forever).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a pooled connection may sit idle before TCP keepalive starts probing its peer, unless told otherwise
/// ([`ConnectOptions::tcp_keepalive`]).
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// How to connect: a URL plus the few settings the toolkit needs to choose itself.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    url: String,
    max_connections: usize,
    lock_wait_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
    prefer_socket: Option<bool>,
    via: Option<std::net::SocketAddr>,
    tcp_keepalive: Option<Duration>,
    replica_urls: Vec<String>,
    replica_config: ReplicaConfig,
}

impl ConnectOptions {
    /// Options for `url` (`mysql://user:password@host:port/database`), with at most 32 connections.
    pub fn new(url: impl Into<String>) -> Self {
        ConnectOptions {
            url: url.into(),
            max_connections: 32,
            lock_wait_timeout: None,
            statement_timeout: None,
            prefer_socket: None,
            via: None,
            tcp_keepalive: Some(DEFAULT_TCP_KEEPALIVE),
            replica_urls: Vec::new(),
            replica_config: ReplicaConfig::default(),
        }
    }

    /// Adds a replica of the primary to read from (`mysql://user:password@host:port/database`, the same
    /// database), with the same session settings and connection limit. Writes never go to it; see
    /// [`ReadWriteSplit`].
    pub fn replica(mut self, url: impl Into<String>) -> Self {
        self.replica_urls.push(url.into());
        self
    }

    /// How replicas are used, skipped and checked (see [`ReplicaConfig`]).
    pub fn replica_config(mut self, config: ReplicaConfig) -> Self {
        self.replica_config = config;
        self
    }

    /// The replicas' URLs, in the order given.
    pub fn replica_urls(&self) -> &[String] {
        &self.replica_urls
    }

    /// The largest number of connections the pool opens.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Sets `innodb_lock_wait_timeout` for every session (whole seconds, at least 1). A flash sale wants this
    /// short: a request stuck behind a hot row lock is better answered "try again" than left hanging.
    pub fn lock_wait_timeout(mut self, timeout: Duration) -> Self {
        self.lock_wait_timeout = Some(timeout);
        self
    }

    /// Sets MariaDB's `max_statement_time` for every session: the server aborts any statement (a whole CALL
    /// included) that runs longer, so no caller waits on the database forever. A seckill aborted this way is
    /// answered "rolled back" when its procedure proved it, "in doubt" otherwise. MariaDB only: MySQL's
    /// `max_execution_time` covers SELECTs alone, and the session setting fails there.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// Whether a TCP URL to this machine may be swapped for the server's Unix socket (mysql_async's default is
    /// yes). Set `false` when the TCP path matters, e.g. behind a proxy.
    pub fn prefer_socket(mut self, prefer: bool) -> Self {
        self.prefer_socket = Some(prefer);
        self
    }

    /// Connects over TCP to `address` instead of the URL's host and port (keeping its user, password and
    /// database), with `prefer_socket` off so that the TCP path is really taken: for proxies.
    pub fn via(mut self, address: std::net::SocketAddr) -> Self {
        self.via = Some(address);
        self.prefer_socket = Some(false);
        self
    }

    /// TCP keepalive on every connection (default [`DEFAULT_TCP_KEEPALIVE`]; `None`: off, mysql_async's default):
    /// once a connection has been idle this long, the kernel probes its peer, and closes it when the peer is gone
    /// (after the system's probe interval and count: on Linux `net.ipv4.tcp_keepalive_intvl` × `_probes`, 75 s ×
    /// 9 unless tuned), so that a pooled connection to a host that vanished without a word is not kept for hours.
    /// It does not bound a call waiting for an answer: the kernel does not probe while data is unacknowledged, and
    /// a silent peer's host may still acknowledge; that is what [`bounded::within`] is for. A `tcp_keepalive`
    /// parameter in the URL (milliseconds) wins over this setting.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self
    }

    /// The URL these options connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Builds the pool. No connection is opened until one is needed; see [`check_connection`] to fail early.
    ///
    /// # Errors
    /// [`DatabaseError::InvalidUrl`] when the URL cannot be parsed.
    pub fn build_pool(&self) -> Result<Pool, DatabaseError> {
        self.pool_for(&self.url, self.via)
    }

    /// Builds the primary's pool and a pool for each replica. No connection is opened until one is needed.
    ///
    /// # Errors
    /// [`DatabaseError::InvalidUrl`] when a URL cannot be parsed.
    pub fn build_split(&self) -> Result<ReadWriteSplit, DatabaseError> {
        let primary = self.build_pool()?;
        let replicas = self
            .replica_urls
            .iter()
            .map(|url| Ok(ReplicaPool { name: server_name(url)?, pool: self.pool_for(url, None)? }))
            .collect::<Result<Vec<_>, DatabaseError>>()?;
        Ok(ReadWriteSplit::new(primary, replicas, self.replica_config))
    }

    fn pool_for(&self, url: &str, via: Option<std::net::SocketAddr>) -> Result<Pool, DatabaseError> {
        Ok(Pool::new(self.opts_for(url, via)?))
    }

    /// The connection options of a pool for `url`.
    fn opts_for(&self, url: &str, via: Option<std::net::SocketAddr>) -> Result<Opts, DatabaseError> {
        let opts = Opts::from_url(url).map_err(DatabaseError::InvalidUrl)?;
        let keepalive = opts.tcp_keepalive().or(self.tcp_keepalive);
        let mut setup = vec!["SET time_zone = '+00:00'".to_string()];
        if let Some(timeout) = self.lock_wait_timeout {
            setup.push(format!("SET SESSION innodb_lock_wait_timeout = {}", timeout.as_secs().max(1)));
        }
        if let Some(timeout) = self.statement_timeout {
            setup.push(format!("SET SESSION max_statement_time = {:.6}", timeout.as_secs_f64()));
        }
        let constraints = PoolConstraints::new(0, self.max_connections).unwrap_or_default();
        // With mysql_async's default inactive TTL of zero, every connection above `min` is closed as soon as
        // it is returned, so with min 0 each call would reconnect. Keep idle connections up to `max` for a
        // minute instead.
        let pool_opts = PoolOpts::default()
            .with_constraints(constraints)
            .with_inactive_connection_ttl(Duration::from_secs(60))
            .with_reset_connection(false);
        let mut builder = OptsBuilder::from_opts(opts).setup(setup).pool_opts(pool_opts).tcp_keepalive(keepalive);
        if let Some(prefer) = self.prefer_socket {
            builder = builder.prefer_socket(prefer);
        }
        if let Some(address) = via {
            builder = builder.ip_or_hostname(address.ip().to_string()).tcp_port(address.port());
        }
        Ok(builder.into())
    }
}

/// `host:port` of a URL: how a replica is named in metrics and logs (never its password).
///
/// # Errors
/// [`DatabaseError::InvalidUrl`] when the URL cannot be parsed.
pub fn server_name(url: &str) -> Result<String, DatabaseError> {
    let opts = Opts::from_url(url).map_err(DatabaseError::InvalidUrl)?;
    Ok(format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()))
}

/// Builds a pool for `url` with the default options.
///
/// # Errors
/// [`DatabaseError::InvalidUrl`] when the URL cannot be parsed.
pub fn connect(url: &str) -> Result<Pool, DatabaseError> {
    ConnectOptions::new(url).build_pool()
}

/// Takes a connection from the pool, waiting at most [`DEFAULT_ACQUIRE_TIMEOUT`].
///
/// # Errors
/// [`DatabaseError::PoolTimeout`] when none became free in time; the connection errors otherwise.
pub async fn acquire(pool: &Pool) -> Result<Conn, DatabaseError> {
    acquire_within(pool, DEFAULT_ACQUIRE_TIMEOUT).await
}

/// Takes a connection from the pool, waiting at most `timeout`.
///
/// # Errors
/// [`DatabaseError::PoolTimeout`] when none became free in time; the connection errors otherwise.
pub async fn acquire_within(pool: &Pool, timeout: Duration) -> Result<Conn, DatabaseError> {
    match tokio::time::timeout(timeout, pool.get_conn()).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(DatabaseError::PoolTimeout(timeout)),
    }
}

/// Opens one connection and runs a trivial query, so that a wrong URL, an unreachable server or bad
/// credentials are reported before any work starts.
///
/// # Errors
/// The connection's error, classified.
pub async fn check_connection(pool: &Pool) -> Result<(), DatabaseError> {
    let mut conn = acquire(pool).await?;
    conn.query_drop("SELECT 1").await?;
    Ok(())
}

/// `url` with its database replaced by `database` (empty for none), keeping user, host and parameters.
pub fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// `url` (any `scheme://user:password@host/...`) with its password replaced by `***`: for messages and logs,
/// which must show where, never the secret.
pub fn url_without_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        return url.to_string();
    };
    let authority_end = url[scheme_end..].find('/').map_or(url.len(), |at| scheme_end + at);
    let authority = &url[scheme_end..authority_end];
    match authority.rfind('@').and_then(|at| authority[..at].find(':').map(|colon| (colon, at))) {
        Some((colon, at)) => {
            format!("{}{}:***{}", &url[..scheme_end], &authority[..colon], &url[scheme_end + at..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{ConnectOptions, DEFAULT_TCP_KEEPALIVE, url_with_database, url_without_password};

    #[test]
    fn urls_are_shown_without_their_passwords() {
        assert_eq!(url_without_password("mysql://shop:s3cret@db:3306/shop"), "mysql://shop:***@db:3306/shop");
        assert_eq!(url_without_password("redis://:pw@127.0.0.1:6379/0"), "redis://:***@127.0.0.1:6379/0");
        assert_eq!(url_without_password("mysql://root@127.0.0.1:3306/seckill"), "mysql://root@127.0.0.1:3306/seckill");
        assert_eq!(url_without_password("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
        assert_eq!(url_without_password("not a url"), "not a url");
    }

    #[test]
    fn pools_probe_idle_connections_unless_told_otherwise() {
        let keepalive = |options: ConnectOptions| options.opts_for(options.url(), None).unwrap().tcp_keepalive();
        assert_eq!(keepalive(ConnectOptions::new("mysql://h/db")), Some(DEFAULT_TCP_KEEPALIVE));
        let custom = ConnectOptions::new("mysql://h/db").tcp_keepalive(Some(Duration::from_secs(5)));
        assert_eq!(keepalive(custom), Some(Duration::from_secs(5)));
        assert_eq!(keepalive(ConnectOptions::new("mysql://h/db").tcp_keepalive(None)), None);
        // The URL's own parameter (milliseconds) wins.
        assert_eq!(keepalive(ConnectOptions::new("mysql://h/db?tcp_keepalive=7000")), Some(Duration::from_secs(7)));
    }

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(url_with_database("mysql://u:p@h:1/old?x=1", "new"), "mysql://u:p@h:1/new?x=1");
        assert_eq!(url_with_database("mysql://h", "new"), "mysql://h/new");
        assert_eq!(url_with_database("mysql://h:3306/db", ""), "mysql://h:3306/");
    }
}
