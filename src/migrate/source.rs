//! Where schema migrations and stored procedures come from, and the naming rules of their files.
//!
//! Migrations are refinery's versioned files, `V{n}__{name}.sql`, applied once each in version order.
//! Procedure files are repeatable: `NAME.sql` holds the `CREATE PROCEDURE NAME` (or `FUNCTION`) statement, in
//! the `DELIMITER` convention of the stock client, and is (re)applied whenever it changes. The toolkit's own
//! files are embedded at build time (see `build.rs`); users can read their own from folders.

use std::fs;
use std::path::Path;

use refinery::Migration;

use super::error::MigrateError;
use super::sql_script::{md5_hex, split_statements, strip_comments};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_sql.rs"));
}

/// Whether a file defines a procedure or a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutineKind {
    Procedure,
    Function,
}

impl RoutineKind {
    /// The SQL keyword, as in `SHOW CREATE PROCEDURE`.
    pub fn keyword(self) -> &'static str {
        match self {
            RoutineKind::Procedure => "PROCEDURE",
            RoutineKind::Function => "FUNCTION",
        }
    }
}

/// One versioned migration file.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    /// The file's name, e.g. `V1__seckill_schema.sql`.
    pub file_name: String,
    /// refinery's view of it (version, name, checksum, SQL).
    pub migration: Migration,
}

/// One repeatable procedure file.
#[derive(Debug, Clone)]
pub struct ProcedureFile {
    /// The file's name, e.g. `execute_seckill.sql`.
    pub file_name: String,
    /// The routine it creates, which is also the file's stem.
    pub name: String,
    /// Procedure or function.
    pub kind: RoutineKind,
    /// The statements to send, split at the file's delimiters.
    pub statements: Vec<String>,
    /// MD5 of the file's text: a changed file is re-applied.
    pub checksum: String,
}

/// All the SQL a [`crate::migrate::Migrator`] applies.
#[derive(Debug, Clone)]
pub struct SqlSource {
    pub(crate) migrations: Vec<MigrationFile>,
    pub(crate) procedures: Vec<ProcedureFile>,
}

impl SqlSource {
    /// The toolkit's own `sql/migrations/` and `sql/procedures/`, embedded in the binary.
    ///
    /// # Errors
    /// Only if a file shipped with the toolkit is malformed, which the toolkit's own tests rule out.
    pub fn embedded() -> Result<Self, MigrateError> {
        Self::from_texts(embedded::MIGRATIONS.iter().copied(), embedded::PROCEDURES.iter().copied())
    }

    /// The warehouse's own database (`sql/warehouse/migrations/`), embedded in the binary: a separate
    /// migration set, applied by the same machinery to the warehouse's URL.
    ///
    /// # Errors
    /// Only if a file shipped with the toolkit is malformed.
    pub fn embedded_warehouse() -> Result<Self, MigrateError> {
        Self::from_texts(embedded::WAREHOUSE_MIGRATIONS.iter().copied(), [])
    }

    /// Reads `*.sql` from a migrations folder and a procedures folder.
    ///
    /// # Errors
    /// [`MigrateError::Read`] when a folder or file cannot be read, [`MigrateError::InvalidFile`] when a file
    /// breaks the naming rules.
    pub fn from_dirs(migrations: &Path, procedures: &Path) -> Result<Self, MigrateError> {
        let migrations = read_sql_files(migrations)?;
        let procedures = read_sql_files(procedures)?;
        Self::from_texts(
            migrations.iter().map(|(name, text)| (name.as_str(), text.as_str())),
            procedures.iter().map(|(name, text)| (name.as_str(), text.as_str())),
        )
    }

    /// Builds a source from `(file name, text)` pairs.
    ///
    /// # Errors
    /// [`MigrateError::InvalidFile`] when a file breaks the naming rules.
    pub fn from_texts<'a>(
        migrations: impl IntoIterator<Item = (&'a str, &'a str)>,
        procedures: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, MigrateError> {
        let mut migrations = migrations.into_iter().map(parse_migration).collect::<Result<Vec<_>, _>>()?;
        migrations.sort_by_key(|file| file.migration.version());
        let procedures = procedures.into_iter().map(parse_procedure).collect::<Result<Vec<_>, _>>()?;
        Ok(SqlSource { migrations, procedures })
    }

    /// The migration files, in version order.
    pub fn migrations(&self) -> &[MigrationFile] {
        &self.migrations
    }

    /// The procedure files.
    pub fn procedures(&self) -> &[ProcedureFile] {
        &self.procedures
    }
}

fn read_sql_files(dir: &Path) -> Result<Vec<(String, String)>, MigrateError> {
    let read_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MigrateError::Read { path, source }
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_error(dir))? {
        let path = entry.map_err(read_error(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".sql") {
            files.push((name.to_string(), fs::read_to_string(&path).map_err(read_error(&path))?));
        }
    }
    files.sort();
    Ok(files)
}

fn invalid(file: &str, message: impl Into<String>) -> MigrateError {
    MigrateError::InvalidFile { file: file.to_string(), message: message.into() }
}

fn parse_migration((file_name, text): (&str, &str)) -> Result<MigrationFile, MigrateError> {
    let stem = file_name.strip_suffix(".sql").unwrap_or(file_name);
    let migration = Migration::unapplied(stem, text)
        .map_err(|e| invalid(file_name, format!("{e} (expected V<number>__<name>.sql)")))?;
    Ok(MigrationFile { file_name: file_name.to_string(), migration })
}

fn parse_procedure((file_name, text): (&str, &str)) -> Result<ProcedureFile, MigrateError> {
    let stem = file_name.strip_suffix(".sql").unwrap_or(file_name);
    if stem.is_empty() || !stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid(file_name, "a procedure file is named NAME.sql, NAME made of letters, digits and _"));
    }
    let statements = split_statements(text).map_err(|e| invalid(file_name, e.to_string()))?;
    let mut created = statements.iter().filter_map(|statement| created_routine(statement));
    let (kind, name) = match (created.next(), created.next()) {
        (Some(routine), None) => routine,
        (None, _) => {
            return Err(invalid(file_name, format!("no CREATE PROCEDURE {stem} statement")));
        }
        (Some(_), Some(_)) => {
            return Err(invalid(file_name, "a procedure file creates exactly one routine"));
        }
    };
    if !name.eq_ignore_ascii_case(stem) {
        return Err(invalid(file_name, format!("creates {name}; a procedure file is named after what it creates")));
    }
    Ok(ProcedureFile {
        file_name: file_name.to_string(),
        name: stem.to_string(),
        kind,
        statements,
        checksum: md5_hex(text.as_bytes()),
    })
}

/// The kind and name of the routine a `CREATE [OR REPLACE] [DEFINER=..] PROCEDURE|FUNCTION name` statement
/// creates.
fn created_routine(statement: &str) -> Option<(RoutineKind, String)> {
    let code = strip_comments(statement);
    let mut words = code.split(|c: char| c.is_whitespace() || c == '(').filter(|w| !w.is_empty());
    if !words.next()?.eq_ignore_ascii_case("CREATE") {
        return None;
    }
    let kind = words.by_ref().take(4).find_map(|word| {
        [RoutineKind::Procedure, RoutineKind::Function]
            .into_iter()
            .find(|kind| word.eq_ignore_ascii_case(kind.keyword()))
    })?;
    let name = words.find(|word| !["IF", "NOT", "EXISTS"].iter().any(|k| word.eq_ignore_ascii_case(k)))?;
    Some((kind, name.trim_matches('`').to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_files_follow_the_naming_rules() {
        let source = SqlSource::embedded().unwrap();
        assert!(source.migrations().iter().any(|m| m.file_name == "V1__seckill_schema.sql"));
        let execute = source.procedures().iter().find(|p| p.name == "execute_seckill").unwrap();
        assert_eq!(execute.kind, RoutineKind::Procedure);
        assert_eq!(execute.statements.len(), 2, "DROP IF EXISTS, then CREATE");
    }

    #[test]
    fn procedure_file_must_be_named_after_its_routine() {
        let error = SqlSource::from_texts([], [("other.sql", "CREATE PROCEDURE p() SELECT 1")]).unwrap_err();
        assert!(error.to_string().contains("other.sql: creates p"), "{error}");
    }

    #[test]
    fn recognises_definer_and_backticks() {
        let statement = "CREATE DEFINER=`a`@`%` FUNCTION `f`(x INT) RETURNS INT RETURN x";
        assert_eq!(created_routine(statement), Some((RoutineKind::Function, "f".to_string())));
    }

    #[test]
    fn migration_names_are_refinerys() {
        let error = SqlSource::from_texts([("1_schema.sql", "SELECT 1")], []).unwrap_err();
        assert!(error.to_string().starts_with("1_schema.sql:"), "{error}");
    }
}
