//! Schema migrations and stored procedures: apply them, and tell whether a database matches the files.
//!
//! Two kinds of SQL, applied in this order under one server-wide lock:
//! - **migrations** (`sql/migrations/V{n}__{name}.sql`): refinery's versioned files, each applied once and
//!   recorded in `refinery_schema_history`, so refinery's own tooling can read the history;
//! - **procedures** (`sql/procedures/DOMAIN/NAME.sql`): repeatable, re-created when their file changes, recorded
//!   in `seckill_procedure_history`; one changed in the server by hand is reported and only overwritten when asked.
//!
//! The contract of the files (naming, `DELIMITER`, the rolled-back protocol, the COMMIT tail) is `sql/README.md`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = seckill::database::connect("mysql://root@127.0.0.1:3306/shop")?;
//! let migrator = seckill::migrate::Migrator::embedded()?;
//! migrator.run(&pool).await?;
//! assert!(migrator.status(&pool).await?.is_in_sync());
//! # Ok(()) }
//! ```

mod error;
mod lock;
mod procedures;
mod source;
pub mod sql_script;
mod status;

use std::collections::HashMap;
use std::time::Duration;

use mysql_async::Pool;
use refinery::Runner;

pub use error::MigrateError;
use lock::NamedLock;
pub use procedures::HISTORY_TABLE as PROCEDURE_HISTORY_TABLE;
pub use source::{MigrationFile, ProcedureFile, RoutineKind, SqlSource};
pub use status::{MigrationState, MigrationStatus, ProcedureState, ProcedureStatus, Status};

use crate::database::acquire;
use crate::database::error::DatabaseError;
use crate::database::rows::query_all;

/// refinery's history table.
pub const MIGRATION_HISTORY_TABLE: &str = "refinery_schema_history";

/// ER_NO_SUCH_TABLE.
const NO_SUCH_TABLE: u16 = 1146;

/// What one [`Migrator::run`] changed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// Migrations applied, `V{n}__{name}`.
    pub migrations: Vec<String>,
    /// Procedures (re)created.
    pub procedures: Vec<String>,
}

/// Applies a [`SqlSource`] to a database and reports its status.
#[derive(Debug, Clone)]
pub struct Migrator {
    source: SqlSource,
    lock_timeout: Duration,
    overwrite_hand_edits: bool,
}

impl Migrator {
    /// A migrator for the toolkit's own embedded SQL.
    ///
    /// # Errors
    /// Only if a file shipped with the toolkit is malformed.
    pub fn embedded() -> Result<Self, MigrateError> {
        Ok(Self::new(SqlSource::embedded()?))
    }

    /// A migrator for the warehouse's own database ([`SqlSource::embedded_warehouse`]).
    ///
    /// # Errors
    /// Only if a file shipped with the toolkit is malformed.
    pub fn warehouse() -> Result<Self, MigrateError> {
        Ok(Self::new(SqlSource::embedded_warehouse()?))
    }

    /// A migrator for any source, e.g. [`SqlSource::from_dirs`] for a project's own files.
    pub fn new(source: SqlSource) -> Self {
        Migrator { source, lock_timeout: Duration::from_secs(60), overwrite_hand_edits: false }
    }

    /// How long to wait for another process's run to finish (default 60 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Replace procedures that were changed in the server by hand, or created by something else, with the
    /// files. Off by default: a hand edit is often a hot fix someone will want to keep.
    pub fn overwrite_hand_edits(mut self, overwrite: bool) -> Self {
        self.overwrite_hand_edits = overwrite;
        self
    }

    /// The SQL this migrator applies.
    pub fn source(&self) -> &SqlSource {
        &self.source
    }

    /// Compares the database with the files. Reads only.
    ///
    /// # Errors
    /// [`MigrateError::Database`] when the server cannot be asked.
    pub async fn status(&self, pool: &Pool) -> Result<Status, MigrateError> {
        let mut conn = acquire(pool).await?;
        let migrations = self.migration_states(&mut conn).await?;
        let procedures = procedures::states(&mut conn, &self.source.procedures).await?;
        Ok(Status { migrations, procedures })
    }

    /// Each migration file against refinery's history, then applied versions whose file is gone.
    async fn migration_states(&self, conn: &mut mysql_async::Conn) -> Result<Vec<MigrationStatus>, MigrateError> {
        let query = format!("SELECT version, name, checksum FROM {MIGRATION_HISTORY_TABLE}");
        let applied: Vec<(i64, String, String)> = match query_all(conn, &query, MIGRATION_HISTORY_TABLE).await {
            Ok(rows) => rows,
            Err(mysql_async::Error::Server(e)) if e.code == NO_SUCH_TABLE => Vec::new(),
            Err(e) => return Err(DatabaseError::from(e).into()),
        };
        let mut applied: HashMap<i64, (String, String)> =
            applied.into_iter().map(|(version, name, checksum)| (version, (name, checksum))).collect();
        let mut migrations = Vec::new();
        for file in &self.source.migrations {
            let migration = &file.migration;
            let state = match applied.remove(&i64::from(migration.version())) {
                None => MigrationState::Pending,
                Some((_, checksum)) if checksum == migration.checksum().to_string() => MigrationState::Applied,
                Some(_) => MigrationState::Divergent,
            };
            migrations.push(MigrationStatus { name: format!("V{}__{}", migration.version(), migration.name()), state });
        }
        let mut missing: Vec<_> = applied.into_iter().collect();
        missing.sort();
        migrations.extend(missing.into_iter().map(|(version, (name, _))| MigrationStatus {
            name: format!("V{version}__{name}"),
            state: MigrationState::FileMissing,
        }));
        Ok(migrations)
    }

    /// Applies pending migrations, then every procedure that is new, missing or changed in its file.
    ///
    /// Runs under a server-wide lock per database, so concurrent runs apply each migration once. Procedures
    /// changed in the server by hand are left alone (unless [`Migrator::overwrite_hand_edits`]) and reported
    /// as [`MigrateError::HandEdited`] after everything else was applied.
    ///
    /// # Errors
    /// [`MigrateError::MigrationFailed`] / [`MigrateError::ProcedureFailed`] naming the file and quoting the
    /// server, [`MigrateError::HistoryMismatch`] when an applied migration changed or vanished,
    /// [`MigrateError::LockTimeout`] when another run held the lock too long.
    pub async fn run(&self, pool: &Pool) -> Result<Report, MigrateError> {
        let lock = NamedLock::acquire_for_database(pool, self.lock_timeout).await?;
        let result = self.run_locked(pool).await;
        let released = lock.release().await;
        let report = result?;
        released?;
        Ok(report)
    }

    async fn run_locked(&self, pool: &Pool) -> Result<Report, MigrateError> {
        let mut report = Report { migrations: self.run_migrations(pool).await?, procedures: Vec::new() };
        let mut conn = acquire(pool).await?;
        let states = procedures::states(&mut conn, &self.source.procedures).await?;
        let mut refused = Vec::new();
        for (file, status) in self.source.procedures.iter().zip(&states) {
            let hand_made = status.state.is_hand_made();
            if status.state.is_pending() || (hand_made && self.overwrite_hand_edits) {
                procedures::apply(&mut conn, file).await?;
                report.procedures.push(file.name.clone());
            } else if hand_made {
                refused.push(file.name.clone());
            }
        }
        if refused.is_empty() { Ok(report) } else { Err(MigrateError::HandEdited { names: refused }) }
    }

    async fn run_migrations(&self, pool: &Pool) -> Result<Vec<String>, MigrateError> {
        // Only the migrations' states: the procedures are compared afterwards, against the new schema.
        let states = self.migration_states(&mut acquire(pool).await?).await?;
        if let Some(bad) =
            states.iter().find(|m| m.state != MigrationState::Applied && m.state != MigrationState::Pending)
        {
            let why = match bad.state {
                MigrationState::Divergent => {
                    "its file changed after it was applied; restore it and add a new migration instead"
                }
                _ => "it was applied but its file is missing",
            };
            return Err(MigrateError::HistoryMismatch(format!("{}: {why}", bad.name)));
        }
        let pending: Vec<&MigrationFile> = self
            .source
            .migrations
            .iter()
            .zip(&states)
            .filter(|(_, status)| status.state == MigrationState::Pending)
            .map(|(file, _)| file)
            .collect();
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let migrations: Vec<_> = self.source.migrations.iter().map(|file| file.migration.clone()).collect();
        let runner = Runner::new(&migrations).set_abort_divergent(true).set_abort_missing(true);
        let mut refinery_pool = pool.clone();
        match runner.run_async(&mut refinery_pool).await {
            Ok(report) => {
                Ok(report.applied_migrations().iter().map(|m| format!("V{}__{}", m.version(), m.name())).collect())
            }
            Err(error) => {
                let applied: Vec<i64> = error
                    .report()
                    .map(|r| r.applied_migrations().iter().map(|m| i64::from(m.version())).collect())
                    .unwrap_or_default();
                let failed = pending.iter().find(|file| !applied.contains(&i64::from(file.migration.version())));
                let cause = std::error::Error::source(&error)
                    .and_then(|source| source.downcast_ref::<mysql_async::Error>())
                    .map(|e| DatabaseError::from(clone_error(e)))
                    .unwrap_or_else(|| DatabaseError::UnexpectedAnswer(error.to_string()));
                match failed {
                    Some(file) => Err(MigrateError::MigrationFailed { file: file.file_name.clone(), cause }),
                    None => Err(MigrateError::HistoryMismatch(error.to_string())),
                }
            }
        }
    }
}

/// mysql_async's error is not `Clone`; keep what matters of the server's answer.
fn clone_error(error: &mysql_async::Error) -> mysql_async::Error {
    match error {
        mysql_async::Error::Server(server) => mysql_async::Error::Server(server.clone()),
        other => mysql_async::Error::Other(other.to_string().into()),
    }
}
