//! Embeds every file of `sql/migrations/` and `sql/procedures/` (the shop's database) and of
//! `sql/warehouse/migrations/` (the warehouse's own database) into the binary.
//!
//! The list is generated rather than written by hand so that adding a file is all it takes to ship it, and
//! `rerun-if-changed` makes cargo rebuild when a file is added, removed or edited (refinery's own
//! `embed_migrations!` does not notice new files).

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs, io};

fn main() -> io::Result<()> {
    let root = env::var("CARGO_MANIFEST_DIR").map_err(io::Error::other)?;
    let mut generated = String::new();
    for (constant, folder) in [
        ("MIGRATIONS", "sql/migrations"),
        ("PROCEDURES", "sql/procedures"),
        ("WAREHOUSE_MIGRATIONS", "sql/warehouse/migrations"),
    ] {
        let dir = Path::new(&root).join(folder);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "sql") {
                println!("cargo:rerun-if-changed={}", path.display());
                files.push(path);
            }
        }
        files.sort();
        writeln!(generated, "pub(crate) const {constant}: &[(&str, &str)] = &[").map_err(io::Error::other)?;
        for path in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| io::Error::other(format!("{} is not a UTF-8 file name", path.display())))?;
            writeln!(generated, "    ({name:?}, include_str!({:?})),", path.display()).map_err(io::Error::other)?;
        }
        writeln!(generated, "];").map_err(io::Error::other)?;
    }
    let out = env::var("OUT_DIR").map_err(io::Error::other)?;
    fs::write(Path::new(&out).join("embedded_sql.rs"), generated)
}
