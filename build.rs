//! Embeds every file of `sql/migrations/` and `sql/procedures/<domain>/` (the shop's database) and of
//! `sql/warehouse/migrations/` (the warehouse's own database) into the binary.
//!
//! The list is generated rather than written by hand so that adding a file is all it takes to ship it, and
//! `rerun-if-changed` on every folder and file makes cargo rebuild when a file or a folder is added, removed or
//! edited (refinery's own `embed_migrations!` does not notice new files).
//!
//! Procedure files live one folder deep, in the folder of the domain that owns them (`common/` for the helpers
//! every domain calls). A procedure is named after its file's stem, and the server knows it by that name alone,
//! so a stem used in two folders, or a file directly in `sql/procedures/` (no domain), fails the build with the
//! file named. The contract is stated in `sql/README.md`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

/// One embedded file: its name as the applier shows it (relative to its folder, `/`-separated) and its path.
struct SqlFile {
    name: String,
    path: PathBuf,
}

fn main() {
    if let Err(message) = run() {
        // One line that cargo shows as the build's error.
        println!("cargo::error={}", message.replace('\n', " "));
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| format!("CARGO_MANIFEST_DIR: {e}"))?);
    let mut generated = String::new();
    for (constant, folder) in [
        ("MIGRATIONS", "sql/migrations"),
        ("PROCEDURES", "sql/procedures"),
        ("WAREHOUSE_MIGRATIONS", "sql/warehouse/migrations"),
    ] {
        let dir = root.join(folder);
        let files = if constant == "PROCEDURES" { procedure_files(&dir, folder)? } else { sql_files(&dir, "")? };
        writeln!(generated, "pub(crate) const {constant}: &[(&str, &str)] = &[").map_err(|e| e.to_string())?;
        for file in files {
            let path = file.path.to_str().ok_or_else(|| format!("{} is not a UTF-8 path", file.path.display()))?;
            writeln!(generated, "    ({:?}, include_str!({path:?})),", file.name).map_err(|e| e.to_string())?;
        }
        writeln!(generated, "];").map_err(|e| e.to_string())?;
    }
    let out = env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?;
    let target = Path::new(&out).join("embedded_sql.rs");
    fs::write(&target, generated).map_err(|e| format!("cannot write {}: {e}", target.display()))
}

/// The entries of `dir`, sorted, with cargo told to watch the folder itself.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let cannot_read = |e: std::io::Error| format!("cannot read {}: {e}", dir.display());
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(cannot_read)? {
        paths.push(entry.map_err(cannot_read)?.path());
    }
    paths.sort();
    Ok(paths)
}

fn utf8_name(path: &Path) -> Result<&str, String> {
    path.file_name().and_then(|n| n.to_str()).ok_or_else(|| format!("{} is not a UTF-8 file name", path.display()))
}

/// The `*.sql` files directly in `dir`, named `{prefix}{file name}`; other files are not SQL and are left out.
fn sql_files(dir: &Path, prefix: &str) -> Result<Vec<SqlFile>, String> {
    let mut files = Vec::new();
    for path in entries(dir)? {
        if path.extension().is_some_and(|ext| ext == "sql") && !path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(SqlFile { name: format!("{prefix}{}", utf8_name(&path)?), path });
        }
    }
    Ok(files)
}

/// The procedure files of `dir` (shown as `shown`): `*.sql` in its folders, one level deep, named
/// `{domain}/{file name}`. A file directly in `dir`, a folder inside a domain's folder, and two files whose
/// stems name the same procedure are errors.
fn procedure_files(dir: &Path, shown: &str) -> Result<Vec<SqlFile>, String> {
    let mut files = Vec::new();
    for path in entries(dir)? {
        let name = utf8_name(&path)?;
        if !path.is_dir() {
            if path.extension().is_some_and(|ext| ext == "sql") {
                return Err(format!(
                    "{shown}/{name}: a procedure file goes in the folder of the domain that owns it, \
                     {shown}/<domain>/{name} (see sql/README.md)"
                ));
            }
            continue;
        }
        for inner in entries(&path)? {
            if inner.is_dir() {
                return Err(format!(
                    "{shown}/{name}/{}: procedure folders are one level deep; move its files up into {shown}/{name}/",
                    utf8_name(&inner)?
                ));
            }
        }
        files.extend(sql_files(&path, &format!("{name}/"))?);
    }
    // The server knows a routine by its name alone, in any case.
    let mut by_procedure: HashMap<String, &str> = HashMap::new();
    for file in &files {
        let stem = file.name.rsplit('/').next().unwrap_or(&file.name).trim_end_matches(".sql");
        if let Some(first) = by_procedure.insert(stem.to_ascii_lowercase(), &file.name) {
            return Err(format!(
                "{shown}/{first} and {shown}/{} both define the procedure {stem}: a procedure is named after its \
                 file's stem, which must be unique across the folders of {shown}/",
                file.name
            ));
        }
    }
    Ok(files)
}
