//! The repeatable-procedure applier: (re)creates procedures whose file changed, records what it applied, and
//! detects drift between the files, the server and its own history.
//!
//! Its history table, `seckill_procedure_history`, holds one row per routine: the MD5 of the file it was
//! applied from, and a fingerprint of the definition the server stored (from `SHOW CREATE`, ignoring comments,
//! white space and the definer). Comparing the three tells the states of [`ProcedureState`] apart: a file
//! changed since it was applied, a routine dropped from the server, or a routine the server holds in a
//! different form than the one applied (edited by hand).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::error::MigrateError;
use super::source::{ProcedureFile, RoutineKind};
use super::sql_script::definition_fingerprint;
use crate::database_error::{self, DatabaseError};

/// The applier's own history table.
pub const HISTORY_TABLE: &str = "seckill_procedure_history";

/// ER_NO_SUCH_TABLE: the history table does not exist yet (nothing applied).
const NO_SUCH_TABLE: u16 = 1146;

/// Where one procedure stands, compared across file, server and history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcedureState {
    /// The server holds what the file says.
    UpToDate,
    /// Never applied: not in the server, not in the history.
    NotApplied,
    /// Applied once, but no longer in the server (dropped).
    Missing,
    /// The file changed since it was applied.
    FileChanged,
    /// The server's definition differs from what was applied: edited by hand.
    EditedInServer,
    /// In the server, but never applied by seckill (loaded by hand, or left by another tool).
    Unmanaged,
    /// Applied once, but its file is gone. Left in place: removing a file never drops a procedure.
    FileRemoved,
}

impl ProcedureState {
    /// Whether `migrate` brings this state up to date without being asked to overwrite anything.
    pub fn is_pending(self) -> bool {
        matches!(self, ProcedureState::NotApplied | ProcedureState::Missing | ProcedureState::FileChanged)
    }

    /// Whether the server holds something seckill did not put there.
    pub fn is_hand_made(self) -> bool {
        matches!(self, ProcedureState::EditedInServer | ProcedureState::Unmanaged)
    }

    /// A few words for `seckill status`.
    pub fn describe(self) -> &'static str {
        match self {
            ProcedureState::UpToDate => "up to date",
            ProcedureState::NotApplied => "missing in the server: not applied yet",
            ProcedureState::Missing => "missing in the server: dropped since it was applied",
            ProcedureState::FileChanged => "changed in the files: to be re-applied",
            ProcedureState::EditedInServer => "changed in the server by hand",
            ProcedureState::Unmanaged => "in the server but not applied by seckill",
            ProcedureState::FileRemoved => "applied, but its file is gone (left in place)",
        }
    }
}

/// One routine's row of the history.
#[derive(Debug, Clone)]
struct HistoryRow {
    file_checksum: String,
    definition_fingerprint: String,
}

/// The state of one routine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcedureStatus {
    /// The routine's name.
    pub name: String,
    /// Where it stands.
    pub state: ProcedureState,
    /// When seckill last applied it.
    pub applied_on: Option<DateTime<Utc>>,
}

async fn ensure_history_table(conn: &mut Conn) -> Result<(), DatabaseError> {
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
             name                   VARCHAR(64) NOT NULL PRIMARY KEY,
             kind                   VARCHAR(16) NOT NULL,
             file_checksum          CHAR(32)    NOT NULL,
             definition_fingerprint CHAR(32)    NOT NULL,
             applied_on             DATETIME(3) NOT NULL
         ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4"
    );
    conn.query_drop(ddl).await?;
    Ok(())
}

async fn read_history(conn: &mut Conn) -> Result<HashMap<String, (HistoryRow, NaiveDateTime)>, DatabaseError> {
    let query = format!("SELECT name, file_checksum, definition_fingerprint, applied_on FROM {HISTORY_TABLE}");
    let rows: Vec<(String, String, String, NaiveDateTime)> = match conn.query(query).await {
        Ok(rows) => rows,
        Err(mysql_async::Error::Server(e)) if e.code == NO_SUCH_TABLE => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(rows
        .into_iter()
        .map(|(name, file_checksum, definition_fingerprint, applied_on)| {
            (name.to_ascii_lowercase(), (HistoryRow { file_checksum, definition_fingerprint }, applied_on))
        })
        .collect())
}

/// The fingerprint of the routine as the server holds it, or `None` when it does not exist.
async fn server_fingerprint(conn: &mut Conn, kind: RoutineKind, name: &str) -> Result<Option<String>, MigrateError> {
    let query = format!("SHOW CREATE {} `{}`", kind.keyword(), name);
    let row: Option<mysql_async::Row> = match conn.query_first(query).await {
        Ok(row) => row,
        Err(mysql_async::Error::Server(e)) if e.code == database_error::ROUTINE_DOES_NOT_EXIST => {
            return Ok(None);
        }
        Err(e) => return Err(DatabaseError::from(e).into()),
    };
    // Columns: name, sql_mode, definition, ...; the definition is NULL when this user may not read it.
    let definition: Option<String> = row.and_then(|row| row.get_opt(2)).and_then(Result::ok).flatten();
    match definition {
        Some(definition) => Ok(Some(definition_fingerprint(&definition))),
        None => Err(MigrateError::DefinitionHidden { name: name.to_string() }),
    }
}

/// Compares every file with the server and the history; routines in the history without a file come last.
pub(crate) async fn states(conn: &mut Conn, files: &[ProcedureFile]) -> Result<Vec<ProcedureStatus>, MigrateError> {
    let mut history = read_history(conn).await?;
    let mut statuses = Vec::new();
    for file in files {
        let applied = history.remove(&file.name.to_ascii_lowercase());
        let in_server = server_fingerprint(conn, file.kind, &file.name).await?;
        let state = match (&in_server, &applied) {
            (None, None) => ProcedureState::NotApplied,
            (None, Some(_)) => ProcedureState::Missing,
            (Some(_), None) => ProcedureState::Unmanaged,
            (Some(server), Some((row, _))) if *server != row.definition_fingerprint => ProcedureState::EditedInServer,
            (Some(_), Some((row, _))) if row.file_checksum != file.checksum => ProcedureState::FileChanged,
            (Some(_), Some(_)) => ProcedureState::UpToDate,
        };
        statuses.push(ProcedureStatus {
            name: file.name.clone(),
            state,
            applied_on: applied.map(|(_, at)| at.and_utc()),
        });
    }
    let mut removed: Vec<_> = history
        .into_iter()
        .map(|(name, (_, at))| ProcedureStatus {
            name,
            state: ProcedureState::FileRemoved,
            applied_on: Some(at.and_utc()),
        })
        .collect();
    removed.sort_by(|a, b| a.name.cmp(&b.name));
    statuses.extend(removed);
    Ok(statuses)
}

/// Runs a file's statements and records the result in the history.
pub(crate) async fn apply(conn: &mut Conn, file: &ProcedureFile) -> Result<(), MigrateError> {
    let failed = |cause: DatabaseError| MigrateError::ProcedureFailed { file: file.file_name.clone(), cause };
    ensure_history_table(conn).await?;
    for statement in &file.statements {
        conn.query_drop(statement.as_str()).await.map_err(|e| failed(e.into()))?;
    }
    let fingerprint = server_fingerprint(conn, file.kind, &file.name).await?.ok_or_else(|| {
        failed(DatabaseError::UnexpectedAnswer(format!("{} does not exist after running its file", file.name)))
    })?;
    let record = format!(
        "REPLACE INTO {HISTORY_TABLE} (name, kind, file_checksum, definition_fingerprint, applied_on) \
         VALUES (?, ?, ?, ?, UTC_TIMESTAMP(3))"
    );
    conn.exec_drop(record, (&file.name, file.kind.keyword(), &file.checksum, &fingerprint))
        .await
        .map_err(DatabaseError::from)?;
    Ok(())
}
