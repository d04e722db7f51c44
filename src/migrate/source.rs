//! Where schema migrations and stored procedures come from, and the naming rules of their files.
//!
//! Migrations are refinery's versioned files, `V{n}__{name}.sql`, applied once each in version order.
//! Procedure files are repeatable: `NAME.sql` holds the `CREATE PROCEDURE NAME` (or `FUNCTION`) statement, in
//! the `DELIMITER` convention of the stock client, and is (re)applied whenever it changes. They sit in the
//! folder of the domain that owns them (`seckill/execute_seckill.sql`), one level deep; the folder is only for
//! people, since the server knows a routine by its name alone, so a name must be unique across folders.
//!
//! The toolkit's own files are embedded at build time (see `build.rs`, which also refuses a file outside a
//! domain's folder); users can read their own from folders ([`SqlSource::from_dirs`]), where a procedure file
//! may also sit directly in the procedures folder. The contract is stated once in `sql/README.md`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

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
    /// The file's path under the procedures folder, `/`-separated, e.g. `seckill/execute_seckill.sql`.
    pub file_name: String,
    /// The routine it creates, which is also the file's stem: unique across folders.
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
    /// The toolkit's own `sql/migrations/` and `sql/procedures/<domain>/`, embedded in the binary.
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

    /// Reads `*.sql` from a migrations folder, and from a procedures folder and its folders one level deep
    /// (`procedures/NAME.sql`, `procedures/DOMAIN/NAME.sql`).
    ///
    /// # Errors
    /// [`MigrateError::Read`] when a folder or file cannot be read, [`MigrateError::InvalidFile`] when a file
    /// breaks the naming rules, two files name the same procedure, or a procedure folder holds a folder.
    pub fn from_dirs(migrations: &Path, procedures: &Path) -> Result<Self, MigrateError> {
        let migrations = read_sql_files(migrations, "")?;
        let procedures = read_procedure_files(procedures)?;
        Self::from_texts(
            migrations.iter().map(|(name, text)| (name.as_str(), text.as_str())),
            procedures.iter().map(|(name, text)| (name.as_str(), text.as_str())),
        )
    }

    /// Builds a source from `(file name, text)` pairs; a procedure's file name may start with its folder
    /// (`seckill/execute_seckill.sql`).
    ///
    /// # Errors
    /// [`MigrateError::InvalidFile`] when a file breaks the naming rules, or two procedure files name the same
    /// procedure.
    pub fn from_texts<'a>(
        migrations: impl IntoIterator<Item = (&'a str, &'a str)>,
        procedures: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, MigrateError> {
        let mut migrations = migrations.into_iter().map(parse_migration).collect::<Result<Vec<_>, _>>()?;
        migrations.sort_by_key(|file| file.migration.version());
        let procedures = procedures.into_iter().map(parse_procedure).collect::<Result<Vec<_>, _>>()?;
        refuse_duplicate_names(&procedures)?;
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

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> MigrateError {
    let path = path.to_path_buf();
    move |source| MigrateError::Read { path, source }
}

/// The entries of `dir` whose names are UTF-8, as (name, path); others cannot be named in SQL or in a message.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, MigrateError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_error(dir))? {
        let path = entry.map_err(read_error(dir))?.path();
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            entries.push((name.to_string(), path));
        }
    }
    Ok(entries)
}

/// The `*.sql` files directly in `dir`, sorted, as (`{prefix}{name}`, text).
fn read_sql_files(dir: &Path, prefix: &str) -> Result<Vec<(String, String)>, MigrateError> {
    let mut files = Vec::new();
    for (name, path) in entries(dir)? {
        if name.ends_with(".sql") && !path.is_dir() {
            files.push((format!("{prefix}{name}"), fs::read_to_string(&path).map_err(read_error(&path))?));
        }
    }
    files.sort();
    Ok(files)
}

/// The procedure files of `dir`: its own `*.sql`, then those of its folders, as (`DOMAIN/NAME.sql`, text), in
/// that order and each sorted. A folder inside a folder is refused rather than skipped: its files would
/// silently never be applied.
fn read_procedure_files(dir: &Path) -> Result<Vec<(String, String)>, MigrateError> {
    let mut files = read_sql_files(dir, "")?;
    let mut folders: Vec<_> = entries(dir)?.into_iter().filter(|(_, path)| path.is_dir()).collect();
    folders.sort();
    for (folder, path) in folders {
        if let Some((inner, _)) = entries(&path)?.into_iter().find(|(_, inner)| inner.is_dir()) {
            return Err(invalid(
                &format!("{folder}/{inner}"),
                format!("procedure folders are one level deep; move its files up into {folder}/"),
            ));
        }
        files.extend(read_sql_files(&path, &format!("{folder}/"))?);
    }
    Ok(files)
}

/// Two files that create the same routine would replace each other at every run: the server knows a routine
/// by its name alone, in any case, whatever folder its file is in.
fn refuse_duplicate_names(procedures: &[ProcedureFile]) -> Result<(), MigrateError> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for file in procedures {
        if let Some(first) = seen.insert(file.name.to_ascii_lowercase(), &file.file_name) {
            return Err(invalid(
                &file.file_name,
                format!("{first} already creates {}; a procedure's name must be unique across folders", file.name),
            ));
        }
    }
    Ok(())
}

fn invalid(file: &str, message: impl Into<String>) -> MigrateError {
    MigrateError::InvalidFile { file: file.to_string(), message: message.into() }
}

fn parse_migration((file_name, text): (&str, &str)) -> Result<MigrationFile, MigrateError> {
    let stem = file_name.strip_suffix(".sql").unwrap_or(file_name);
    // refinery sends a migration as one multi-statement text, which the server splits itself (a trigger's
    // BEGIN ... END included) but where it refuses the client's DELIMITER command. A file that uses DELIMITER,
    // so that the stock client loads it too, is sent as its statements joined by ';'. Files without one are sent
    // as they are: their checksums in refinery's history stay what they were.
    let has_delimiter = text
        .lines()
        .any(|line| line.split_whitespace().next().is_some_and(|word| word.eq_ignore_ascii_case("delimiter")));
    let joined;
    let text = if has_delimiter {
        joined = split_statements(text).map_err(|e| invalid(file_name, e.to_string()))?.join(";\n") + ";\n";
        joined.as_str()
    } else {
        text
    };
    let migration = Migration::unapplied(stem, text)
        .map_err(|e| invalid(file_name, format!("{e} (expected V<number>__<name>.sql)")))?;
    Ok(MigrationFile { file_name: file_name.to_string(), migration })
}

fn parse_procedure((file_name, text): (&str, &str)) -> Result<ProcedureFile, MigrateError> {
    // The folder is only for people: the name is the stem of the file's own name.
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    let stem = base.strip_suffix(".sql").unwrap_or(base);
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
    fn embedded_procedure_names_are_unique_across_folders() {
        let mut seen = HashMap::new();
        for (file_name, _) in embedded::PROCEDURES {
            let (folder, base) = file_name.split_once('/').unwrap();
            assert!(!folder.is_empty() && !base.contains('/'), "{file_name}: one domain folder deep");
            let stem = base.strip_suffix(".sql").unwrap().to_ascii_lowercase();
            if let Some(first) = seen.insert(stem, file_name) {
                panic!("{first} and {file_name} name the same procedure");
            }
        }
        assert!(seen.contains_key("raise_rolled_back") && seen.contains_key("execute_seckill_batch"));
    }

    #[test]
    fn every_embedded_procedure_creates_the_routine_its_file_is_named_after() {
        for file in SqlSource::embedded().unwrap().procedures() {
            let created: Vec<_> = file.statements.iter().filter_map(|statement| created_routine(statement)).collect();
            // The same spelling, not only the same name: `seckill status` shows the file's.
            assert_eq!(created, vec![(file.kind, file.name.clone())], "{}", file.file_name);
            assert!(file.file_name.ends_with(&format!("/{}.sql", file.name)), "{}", file.file_name);
        }
    }

    #[test]
    fn a_procedure_name_is_unique_across_folders() {
        let texts =
            [("seckill/p.sql", "CREATE PROCEDURE p() SELECT 1"), ("lottery/P.sql", "CREATE PROCEDURE P() SELECT 2")];
        let error = SqlSource::from_texts([], texts).unwrap_err();
        assert!(error.to_string().starts_with("lottery/P.sql: seckill/p.sql already creates P;"), "{error}");
        let source = SqlSource::from_texts([], [("seckill/p.sql", "CREATE PROCEDURE p() SELECT 1")]).unwrap();
        assert_eq!(
            (source.procedures()[0].name.as_str(), source.procedures()[0].file_name.as_str()),
            ("p", "seckill/p.sql")
        );
    }

    #[test]
    fn folders_are_read_one_level_deep() {
        let dir = std::env::temp_dir().join(format!("seckill-source-{}", std::process::id()));
        let (migrations, procedures) = (dir.join("migrations"), dir.join("procedures"));
        fs::create_dir_all(procedures.join("seckill")).unwrap();
        fs::create_dir_all(&migrations).unwrap();
        fs::write(procedures.join("flat.sql"), "CREATE PROCEDURE flat() SELECT 1").unwrap();
        fs::write(procedures.join("seckill/deep.sql"), "CREATE PROCEDURE deep() SELECT 1").unwrap();
        fs::write(procedures.join("seckill/notes.md"), "not SQL").unwrap();
        let source = SqlSource::from_dirs(&migrations, &procedures);
        fs::create_dir_all(procedures.join("seckill/deeper")).unwrap();
        let too_deep = SqlSource::from_dirs(&migrations, &procedures);
        fs::remove_dir_all(&dir).unwrap();

        let names: Vec<_> = source.unwrap().procedures().iter().map(|p| p.file_name.clone()).collect();
        assert_eq!(names, ["flat.sql", "seckill/deep.sql"]);
        let error = too_deep.unwrap_err().to_string();
        assert!(error.starts_with("seckill/deeper: procedure folders are one level deep"), "{error}");
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
