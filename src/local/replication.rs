//! A private primary + replica pair of MariaDB servers with GTID replication, started from the binaries on
//! this machine, for tests and the demo of the read/write split ([`crate::database::ReadWriteSplit`]).
//!
//! Two [`LocalMariaDb`]s, each in its own temporary folder with its own clean-up guardian (so both are removed
//! however this process exits, even on SIGKILL): the primary with `--server-id=1 --log-bin --gtid-strict-mode=1
//! --binlog-format=ROW`, the replica with `--server-id=2 --read-only=1 --gtid-strict-mode=1`, replicating from
//! the primary's first transaction (`gtid_slave_pos` empty, `master_use_gtid=slave_pos`) as a user that may
//! only replicate, with a password of the pair's own. Each server's root has its own password
//! ([`LocalMariaDb::root_url`]), which the primary does not replicate. Both keep InnoDB's durable defaults (`innodb_flush_log_at_trx_commit=1`); the binary log is
//! not synced at every commit (`sync_binlog=0`, the server's default), which a crash of the whole machine, not
//! of a process, could tell.
//!
//! Faults on demand, for tests: the replica's process stopped and started again by its pid
//! ([`LocalReplicaPair::stop_replica`], [`LocalReplicaPair::start_replica`]); lag on demand by stopping the
//! replica's SQL thread, which keeps receiving the primary's binary log but applies none of it
//! ([`LocalReplicaPair::stop_applying`], [`LocalReplicaPair::start_applying`]).
//!
//! `read_only` does not hold back accounts with the READ ONLY ADMIN privilege (root has it): only an ordinary
//! account shows that writes never reach the replica (error 1290).

use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};
use thiserror::Error;

use crate::database::error::DatabaseError;
use crate::database::gtid::{binlog_position, wait_for_position};
use crate::database::{ConnectOptions, GtidPosition, acquire};
use crate::local::scratch::Password;
use crate::local::{LocalMariaDb, LocalServerError};

/// The account the replica replicates as: `REPLICATION SLAVE` only, with a password drawn for each pair (it
/// reads every change the primary logs).
const REPLICATION_USER: &str = "seckill_replication";

/// How long starting the pair waits for the replica to connect to the primary.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the pair could not do what was asked.
#[derive(Debug, Error)]
pub enum ReplicationError {
    /// A server of the pair could not be started.
    #[error(transparent)]
    Start(#[from] LocalServerError),
    /// A server of the pair refused or failed a statement.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// The replica did not reach the primary's position in time.
    #[error("the replica did not reach the primary's position {position:?} within {waited:?}")]
    NotCaughtUp { position: String, waited: Duration },
}

/// A running primary and its replica; both removed when the process exits.
#[derive(Debug)]
pub struct LocalReplicaPair {
    primary: LocalMariaDb,
    replica: LocalMariaDb,
}

static SHARED: OnceLock<Result<LocalReplicaPair, String>> = OnceLock::new();

impl LocalReplicaPair {
    /// The pair shared by everything in this process, started on first use. Tests that stop the replica or its
    /// SQL thread start their own ([`Self::start`]): the shared pair must stay healthy for everyone.
    ///
    /// # Errors
    /// [`ReplicationError`] as a message (the same one to every caller) when it could not be started.
    pub fn shared() -> Result<&'static LocalReplicaPair, String> {
        SHARED.get_or_init(|| LocalReplicaPair::start().map_err(|e| e.to_string())).as_ref().map_err(Clone::clone)
    }

    /// Starts a new pair and waits until the replica replicates. Blocks the calling thread (a few seconds:
    /// both data directories are laid out at once).
    ///
    /// # Errors
    /// [`ReplicationError::Start`] when a server does not come up, [`ReplicationError::Database`] when
    /// replication cannot be set up.
    pub fn start() -> Result<LocalReplicaPair, ReplicationError> {
        let common = ["--gtid-strict-mode=1", "--innodb-buffer-pool-size=64M", "--max-connections=500"];
        let mut primary_options: Vec<String> = common.iter().map(|o| o.to_string()).collect();
        // With a binary log, creating the lottery's triggers needs SUPER unless creators are trusted; the
        // migrating account has no SUPER, and with ROW events a trigger's effects replicate as rows.
        primary_options.extend(
            ["--server-id=1", "--log-bin=binlog", "--binlog-format=ROW", "--log-bin-trust-function-creators=1"]
                .map(String::from),
        );
        let mut replica_options: Vec<String> = common.iter().map(|o| o.to_string()).collect();
        // The relay log's name would otherwise follow the host name.
        replica_options.extend(["--server-id=2", "--read-only=1", "--relay-log=relay-bin"].map(String::from));
        let (primary, replica) = std::thread::scope(|scope| {
            let primary = scope.spawn(|| LocalMariaDb::start_with_options(primary_options));
            let replica = LocalMariaDb::start_with_options(replica_options);
            let primary = primary.join().unwrap_or_else(|_| {
                Err(LocalServerError::StartFailed { step: "starting the primary", detail: "panicked".into() })
            });
            (primary, replica)
        });
        let pair = LocalReplicaPair { primary: primary?, replica: replica? };
        on_own_runtime(pair.set_up_replication())?;
        Ok(pair)
    }

    /// The primary: writes and decisions go here.
    pub fn primary(&self) -> &LocalMariaDb {
        &self.primary
    }

    /// The replica.
    pub fn replica(&self) -> &LocalMariaDb {
        &self.replica
    }

    /// The primary's root URL (with root's password), with no database selected.
    pub fn primary_url(&self) -> String {
        self.primary.root_url()
    }

    /// The replica's root URL (with root's password, not the primary's), with no database selected. Root is not
    /// held back by `read_only`: read through an ordinary account to see the replica as an application does.
    pub fn replica_url(&self) -> String {
        self.replica.root_url()
    }

    /// The replica's process id while it runs.
    pub fn replica_pid(&self) -> Option<u32> {
        self.replica.pid()
    }

    /// Kills the replica's process (SIGKILL, by its pid), as a crash would. The primary goes on; see
    /// [`Self::start_replica`].
    ///
    /// # Errors
    /// When the process could not be signalled.
    pub fn stop_replica(&self) -> io::Result<()> {
        self.replica.kill()
    }

    /// Starts the replica again on its data and waits until it accepts connections. It reconnects to the primary
    /// by itself and catches up from its own position (kept in InnoDB, so a crash loses none of it); see
    /// [`Self::wait_until_caught_up`].
    ///
    /// # Errors
    /// [`LocalServerError::StartFailed`] when it does not come up.
    pub fn start_replica(&self) -> Result<(), LocalServerError> {
        self.replica.restart()
    }

    /// Lag on demand: stops the replica's SQL thread (`STOP SLAVE SQL_THREAD`). The replica keeps receiving the
    /// primary's changes and serving reads, but applies nothing until [`Self::start_applying`].
    ///
    /// # Errors
    /// [`DatabaseError`] when the replica refuses or cannot be reached.
    pub async fn stop_applying(&self) -> Result<(), DatabaseError> {
        on_server(&self.replica_url(), async |conn| Ok(conn.query_drop("STOP SLAVE SQL_THREAD").await?)).await
    }

    /// Starts the replica's SQL thread again (`START SLAVE SQL_THREAD`): it applies what it received meanwhile.
    ///
    /// # Errors
    /// [`DatabaseError`] when the replica refuses or cannot be reached.
    pub async fn start_applying(&self) -> Result<(), DatabaseError> {
        on_server(&self.replica_url(), async |conn| Ok(conn.query_drop("START SLAVE SQL_THREAD").await?)).await
    }

    /// Waits until the replica has applied everything the primary has committed so far (its `gtid_binlog_pos`),
    /// at most `timeout`.
    ///
    /// # Errors
    /// [`ReplicationError::NotCaughtUp`] after `timeout`; [`ReplicationError::Database`] when a server cannot be
    /// reached.
    pub async fn wait_until_caught_up(&self, timeout: Duration) -> Result<(), ReplicationError> {
        let position = on_server(&self.primary_url(), async |conn| binlog_position(conn).await).await?;
        self.wait_for(&position, timeout).await
    }

    /// Waits until the replica has applied `position` (e.g. a write's GTID), at most `timeout`.
    ///
    /// # Errors
    /// [`ReplicationError::NotCaughtUp`] after `timeout`; [`ReplicationError::Database`] when the replica cannot
    /// be reached.
    pub async fn wait_for(&self, position: &GtidPosition, timeout: Duration) -> Result<(), ReplicationError> {
        let started = Instant::now();
        let applied =
            on_server(&self.replica_url(), async |conn| wait_for_position(conn, position, timeout).await).await?;
        if applied {
            Ok(())
        } else {
            Err(ReplicationError::NotCaughtUp { position: position.to_string(), waited: started.elapsed() })
        }
    }

    async fn set_up_replication(&self) -> Result<(), ReplicationError> {
        let password = Password::generate()?;
        let password = password.as_str();
        let create_user = format!(
            "CREATE USER IF NOT EXISTS '{REPLICATION_USER}'@'%' IDENTIFIED BY '{password}'; \
             GRANT REPLICATION SLAVE ON *.* TO '{REPLICATION_USER}'@'%'"
        );
        on_server(&self.primary_url(), async |conn| Ok(conn.query_drop(&create_user).await?)).await?;
        // From the primary's first transaction: everything it ever logged, the replication user included.
        let change_master = format!(
            "SET GLOBAL gtid_slave_pos = ''; \
             CHANGE MASTER TO master_host = '127.0.0.1', master_port = {}, master_user = '{REPLICATION_USER}', \
               master_password = '{password}', master_use_gtid = slave_pos, master_connect_retry = 1; \
             START SLAVE",
            self.primary.port()
        );
        on_server(&self.replica_url(), async |conn| Ok(conn.query_drop(&change_master).await?)).await?;
        self.wait_until_caught_up(CONNECT_TIMEOUT).await
    }
}

/// Runs `work` on one connection to `url`, on a pool of its own that is closed afterwards (pools must not
/// outlive the runtime they were used on).
async fn on_server<T>(
    url: &str,
    work: impl AsyncFnOnce(&mut Conn) -> Result<T, DatabaseError>,
) -> Result<T, DatabaseError> {
    let pool: Pool = ConnectOptions::new(url).max_connections(1).build_pool()?;
    let result = async {
        let mut conn = acquire(&pool).await?;
        work(&mut conn).await
    }
    .await;
    pool.disconnect().await.ok();
    result
}

/// Runs `work` to completion on a runtime of its own, on a thread of its own: starting the pair is synchronous
/// (like [`LocalMariaDb::start`]) and may be called from inside another runtime.
fn on_own_runtime<T: Send>(
    work: impl Future<Output = Result<T, ReplicationError>> + Send,
) -> Result<T, ReplicationError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
                    LocalServerError::StartFailed { step: "a runtime for setup", detail: e.to_string() }
                })?;
                runtime.block_on(work)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(LocalServerError::StartFailed { step: "setting up replication", detail: "panicked".into() }.into())
            })
    })
}
