//! Why a migration run or a status check failed, naming the file, procedure or lock at fault.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::database::error::DatabaseError;

/// A failure of [`crate::migrate::Migrator`].
#[derive(Debug, Error)]
pub enum MigrateError {
    /// Talking to the server failed outside any one file.
    #[error(transparent)]
    Database(#[from] DatabaseError),

    /// A folder or file of SQL could not be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },

    /// A file is not a valid migration or procedure file.
    #[error("{file}: {message}")]
    InvalidFile { file: String, message: String },

    /// The server rejected a migration. Statements before the failing one may have been applied (MySQL DDL
    /// commits implicitly); the migration is not recorded as applied, so the history stays honest.
    #[error("migration {file} failed: {cause}")]
    MigrationFailed { file: String, cause: DatabaseError },

    /// The migration history disagrees with the files (a changed or a deleted migration).
    #[error("the migration history does not match sql/migrations: {0}")]
    HistoryMismatch(String),

    /// The server rejected a procedure file.
    #[error("procedure file {file} failed: {cause}")]
    ProcedureFailed { file: String, cause: DatabaseError },

    /// The server would not show a procedure's definition to this user.
    #[error(
        "cannot read the definition of {name}: connect as its definer, or grant SELECT on mysql.proc (MariaDB) \
         or SHOW_ROUTINE (MySQL)"
    )]
    DefinitionHidden { name: String },

    /// Procedures were edited in the server by hand, and overwriting them was not asked for.
    #[error(
        "not overwritten, changed in the server by hand or not created by seckill: {}; \
         run `seckill migrate --overwrite-hand-edits` to replace them with the files",
        names.join(", ")
    )]
    HandEdited { names: Vec<String> },

    /// The URL selects no database, so there is nowhere to migrate.
    #[error("the database URL names no database (add one: mysql://user@host:port/DATABASE)")]
    NoDatabaseSelected,

    /// Another migration run held the lock for too long.
    #[error("waited {waited:?} for another `seckill migrate` to release the lock {lock}; try again when it is done")]
    LockTimeout { lock: String, waited: Duration },
}
