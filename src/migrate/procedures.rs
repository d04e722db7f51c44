//! The repeatable-procedure applier: (re)creates procedures whose file changed, records what it applied, and
//! detects drift between the files, the server and its own history.
//!
//! Its history table, `seckill_procedure_history`, holds one row per routine: the MD5 of the file it was
//! applied from, and a fingerprint of the definition the server stored (from `SHOW CREATE`, ignoring comments,
//! white space and the definer). Comparing the three tells the states of [`ProcedureState`] apart: a file
//! changed since it was applied, a routine dropped from the server, or a routine the server holds in a
//! different form than the one applied (edited by hand).
//!
//! A file holds `DROP PROCEDURE IF EXISTS` then `CREATE PROCEDURE`, so that it loads with the stock client on
//! MariaDB and MySQL alike. Sent as they are, the two leave a moment with no routine, in which every `CALL`
//! fails (error 1305): on MariaDB the applier sends `CREATE OR REPLACE` instead (see [`Replacement`]).

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use super::error::MigrateError;
use super::source::{ProcedureFile, RoutineKind};
use super::sql_script::{code_start, definition_fingerprint, strip_comments};
use crate::database::error::{self, DatabaseError};
use crate::database::rows::{exec_first, instant, query_all};

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

/// The history, by lower-cased routine name, with when each was applied (`None` for a time edited by hand into
/// something that is no instant).
type History = HashMap<String, (HistoryRow, Option<DateTime<Utc>>)>;

async fn read_history(conn: &mut Conn) -> Result<History, DatabaseError> {
    let query = format!("SELECT name, file_checksum, definition_fingerprint, applied_on FROM {HISTORY_TABLE}");
    let rows: Vec<(String, String, String, Value)> = match query_all(conn, &query, HISTORY_TABLE).await {
        Ok(rows) => rows,
        Err(mysql_async::Error::Server(e)) if e.code == NO_SUCH_TABLE => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    rows.into_iter()
        .map(|(name, file_checksum, definition_fingerprint, applied_on)| {
            let applied_on = instant(applied_on, HISTORY_TABLE)?;
            Ok((name.to_ascii_lowercase(), (HistoryRow { file_checksum, definition_fingerprint }, applied_on)))
        })
        .collect()
}

/// The fingerprint of the routine as the server holds it, or `None` when it does not exist.
async fn server_fingerprint(conn: &mut Conn, kind: RoutineKind, name: &str) -> Result<Option<String>, MigrateError> {
    let query = format!("SHOW CREATE {} `{}`", kind.keyword(), name);
    let row: Option<mysql_async::Row> = match conn.query_first(query).await {
        Ok(row) => row,
        Err(mysql_async::Error::Server(e)) if e.code == error::ROUTINE_DOES_NOT_EXIST => {
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
        statuses.push(ProcedureStatus { name: file.name.clone(), state, applied_on: applied.and_then(|(_, at)| at) });
    }
    let mut removed: Vec<_> = history
        .into_iter()
        .map(|(name, (_, at))| ProcedureStatus { name, state: ProcedureState::FileRemoved, applied_on: at })
        .collect();
    removed.sort_by(|a, b| a.name.cmp(&b.name));
    statuses.extend(removed);
    Ok(statuses)
}

/// How the server re-creates a routine that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replacement {
    /// MariaDB: one `CREATE OR REPLACE` statement, which swaps the definition under the routine's metadata
    /// lock, so a `CALL` meanwhile runs the old or the new one and never finds none. The file's `DROP ... IF
    /// EXISTS` of the same routine is left out.
    CreateOrReplace,
    /// MySQL, which has no `CREATE OR REPLACE PROCEDURE` (nor `FUNCTION`): the file's statements as they are,
    /// `DROP` then `CREATE`. A `CALL` between the two fails with error 1305.
    DropThenCreate,
}

impl Replacement {
    async fn of_server(conn: &mut Conn) -> Result<Self, DatabaseError> {
        let version: Option<(String,)> = exec_first(conn, "SELECT VERSION()", (), "the server's version").await?;
        Ok(match version {
            Some((version,)) if version.contains("MariaDB") => Replacement::CreateOrReplace,
            _ => Replacement::DropThenCreate,
        })
    }
}

/// The statement's words outside comments, split at white space and `(`, as in `CREATE PROCEDURE p(`.
fn words(statement: &str) -> Vec<String> {
    strip_comments(statement)
        .split(|c: char| c.is_whitespace() || c == '(')
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect()
}

fn same_routine(word: &str, file: &ProcedureFile) -> bool {
    let name = word.strip_prefix('`').and_then(|w| w.strip_suffix('`')).unwrap_or(word);
    name.eq_ignore_ascii_case(&file.name)
}

/// Whether `statement` is `DROP PROCEDURE|FUNCTION IF EXISTS` of the file's own routine.
fn drops_the_routine(statement: &str, file: &ProcedureFile) -> bool {
    match words(statement).as_slice() {
        [drop, kind, if_, exists, name] => {
            drop.eq_ignore_ascii_case("DROP")
                && kind.eq_ignore_ascii_case(file.kind.keyword())
                && if_.eq_ignore_ascii_case("IF")
                && exists.eq_ignore_ascii_case("EXISTS")
                && same_routine(name, file)
        }
        _ => false,
    }
}

/// `statement` as `CREATE OR REPLACE [DEFINER=..] PROCEDURE|FUNCTION`, when it creates the file's routine.
/// `None` for any other statement, and for `CREATE .. IF NOT EXISTS`, which MariaDB refuses with `OR REPLACE`
/// (so the file is sent as it is).
fn as_create_or_replace(statement: &str, file: &ProcedureFile) -> Option<String> {
    let words = words(statement);
    let (create, rest) = words.split_first()?;
    if !create.eq_ignore_ascii_case("CREATE") {
        return None;
    }
    // The words before the routine's name: OR REPLACE, DEFINER=.., AGGREGATE, the kind, IF NOT EXISTS.
    let kind_at = rest.iter().take(5).position(|word| word.eq_ignore_ascii_case(file.kind.keyword()))?;
    let (before_name, name) = rest.split_at(kind_at + 1);
    let (name, if_not_exists) = match name {
        [if_, not, exists, name, ..]
            if if_.eq_ignore_ascii_case("IF")
                && not.eq_ignore_ascii_case("NOT")
                && exists.eq_ignore_ascii_case("EXISTS") =>
        {
            (name, true)
        }
        [name, ..] => (name, false),
        [] => return None,
    };
    if if_not_exists || !same_routine(name, file) {
        return None;
    }
    if before_name.first().is_some_and(|word| word.eq_ignore_ascii_case("OR")) {
        return Some(statement.to_string()); // already CREATE OR REPLACE
    }
    // Insert after the `CREATE` keyword itself, wherever comments before it put it.
    let keyword_at = code_start(statement);
    let keyword_end = keyword_at + "CREATE".len();
    if !statement.get(keyword_at..keyword_end)?.eq_ignore_ascii_case("CREATE") {
        return None;
    }
    Some(format!("{} OR REPLACE{}", &statement[..keyword_end], &statement[keyword_end..]))
}

/// The statements to send for `file`. With [`Replacement::CreateOrReplace`], the `CREATE` of the routine
/// becomes `CREATE OR REPLACE` and a `DROP .. IF EXISTS` of it before that is left out; everything else is
/// sent as written.
fn statements_to_send(file: &ProcedureFile, replacement: Replacement) -> Vec<Cow<'_, str>> {
    let as_written = || file.statements.iter().map(|statement| Cow::Borrowed(statement.as_str())).collect();
    if replacement == Replacement::DropThenCreate {
        return as_written();
    }
    let created = file
        .statements
        .iter()
        .enumerate()
        .find_map(|(at, statement)| as_create_or_replace(statement, file).map(|replacing| (at, replacing)));
    let Some((create_at, replacing)) = created else {
        return as_written();
    };
    let mut statements = Vec::with_capacity(file.statements.len());
    for (at, statement) in file.statements.iter().enumerate() {
        if at == create_at {
            statements.push(Cow::Owned(replacing.clone()));
        } else if at > create_at || !drops_the_routine(statement, file) {
            statements.push(Cow::Borrowed(statement.as_str()));
        }
    }
    statements
}

/// Runs a file's statements (see [`Replacement`] for how the routine is replaced) and records the result in
/// the history.
pub(crate) async fn apply(conn: &mut Conn, file: &ProcedureFile) -> Result<(), MigrateError> {
    let failed = |cause: DatabaseError| MigrateError::ProcedureFailed { file: file.file_name.clone(), cause };
    ensure_history_table(conn).await?;
    let replacement = Replacement::of_server(conn).await?;
    for statement in statements_to_send(file, replacement) {
        conn.query_drop(statement.as_ref()).await.map_err(|e| failed(e.into()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::sql_script::split_statements;

    fn file(kind: RoutineKind, name: &str, statements: &[&str]) -> ProcedureFile {
        ProcedureFile {
            file_name: format!("{name}.sql"),
            name: name.to_string(),
            kind,
            statements: statements.iter().map(|s| s.to_string()).collect(),
            checksum: String::new(),
        }
    }

    fn sent(file: &ProcedureFile, replacement: Replacement) -> Vec<String> {
        statements_to_send(file, replacement).into_iter().map(Cow::into_owned).collect()
    }

    #[test]
    fn on_mariadb_the_drop_is_left_out_and_the_create_replaces() {
        let text = "-- why\nDROP PROCEDURE IF EXISTS `p`;\nDELIMITER $$\nCREATE PROCEDURE p(IN a INT)\nBEGIN\n  SELECT a;\nEND $$\n";
        let statements = split_statements(text).unwrap();
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        let file = file(RoutineKind::Procedure, "p", &statements);
        assert_eq!(
            sent(&file, Replacement::CreateOrReplace),
            vec!["CREATE OR REPLACE PROCEDURE p(IN a INT)\nBEGIN\n  SELECT a;\nEND"]
        );
        assert_eq!(sent(&file, Replacement::DropThenCreate), file.statements);
    }

    #[test]
    fn or_replace_goes_after_the_create_keyword_past_comments_and_before_the_definer() {
        let file = file(
            RoutineKind::Function,
            "f",
            &[
                "drop function if exists F",
                "/* note */ -- more\ncreate DEFINER=`a`@`%` AGGREGATE FUNCTION f() RETURNS INT RETURN 1",
            ],
        );
        assert_eq!(
            sent(&file, Replacement::CreateOrReplace),
            vec!["/* note */ -- more\ncreate OR REPLACE DEFINER=`a`@`%` AGGREGATE FUNCTION f() RETURNS INT RETURN 1"]
        );
    }

    #[test]
    fn other_drops_and_statements_are_sent_as_written() {
        let file = file(
            RoutineKind::Procedure,
            "p",
            &["DROP FUNCTION IF EXISTS p", "DROP PROCEDURE IF EXISTS q", "SET @x = 1", "CREATE PROCEDURE p() SELECT 1"],
        );
        assert_eq!(
            sent(&file, Replacement::CreateOrReplace),
            vec![
                "DROP FUNCTION IF EXISTS p",
                "DROP PROCEDURE IF EXISTS q",
                "SET @x = 1",
                "CREATE OR REPLACE PROCEDURE p() SELECT 1"
            ]
        );
    }

    #[test]
    fn a_file_that_cannot_use_or_replace_is_sent_as_written() {
        let if_not_exists = file(
            RoutineKind::Procedure,
            "p",
            &["DROP PROCEDURE IF EXISTS p", "CREATE PROCEDURE IF NOT EXISTS p() SELECT 1"],
        );
        assert_eq!(sent(&if_not_exists, Replacement::CreateOrReplace), if_not_exists.statements);
        let already = file(
            RoutineKind::Procedure,
            "p",
            &["DROP PROCEDURE IF EXISTS p", "CREATE OR REPLACE PROCEDURE p() SELECT 1"],
        );
        assert_eq!(sent(&already, Replacement::CreateOrReplace), vec!["CREATE OR REPLACE PROCEDURE p() SELECT 1"]);
    }
}
