//! The shape of the crate, checked on its sources: shared machinery and the local servers import no domain, the
//! bench is the binary's own, and no two files import each other, directly or round a circle.
//!
//! The files are read as text: every path that starts with `crate::`, `super::` or `self::`, and every `use`
//! (braces expanded), is resolved to the file that defines its module, following re-exports (`use child::Item`
//! in a folder's `mod.rs` leads to the child's file). Comments are left out: a doc may point anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The domains, and the module that puts them together.
const DOMAINS: &[&str] = &["seckill", "exchange", "lottery", "app"];

/// Machinery and local servers: none of them may import a domain.
const DOMAIN_FREE: &[&str] = &[
    "src/http/",
    "src/database/",
    "src/group_commit",
    "src/messaging/",
    "src/migrate/",
    "src/shared_state/",
    "src/prometheus.rs",
    "src/local/",
    "src/testing/",
];

/// One source file of a crate.
struct Module {
    file: PathBuf,
    /// The code, without comments and without the tests at its end.
    code: String,
}

/// A crate's files by module path (`["seckill", "http"]` for `src/seckill/http/mod.rs`).
struct Crate {
    modules: BTreeMap<Vec<String>, Module>,
}

impl Crate {
    /// The files of `src/` for which `belongs` holds, by the path inside `src/` (`seckill/http/mod.rs`).
    fn read(src: &Path, belongs: impl Fn(&str) -> bool) -> Crate {
        let mut modules = BTreeMap::new();
        let mut pending = vec![src.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path.strip_prefix(src).unwrap().to_string_lossy().to_string();
                if !relative.ends_with(".rs") || !belongs(&relative) {
                    continue;
                }
                let mut names: Vec<String> = relative.trim_end_matches(".rs").split('/').map(String::from).collect();
                if matches!(names.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                    names.pop();
                }
                let text = fs::read_to_string(&path).unwrap();
                let code = without_comments(text.split("#[cfg(test)]\nmod tests").next().unwrap_or(&text));
                modules.insert(names, Module { file: Path::new("src").join(&relative), code });
            }
        }
        Crate { modules }
    }

    /// The module a path names, from `at`: the module of the longest prefix that is a file, following the
    /// re-exports of each module on the way.
    fn resolve(&self, at: &[String], path: &[String], depth: usize) -> Option<Vec<String>> {
        if depth > 8 {
            return None;
        }
        self.modules.get(at)?;
        let mut current: Vec<String> = at.to_vec();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                current.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            _ => {}
        }
        while rest.first().map(String::as_str) == Some("super") {
            current.pop()?;
            rest = &rest[1..];
        }
        for (at_segment, segment) in rest.iter().enumerate() {
            let mut child = current.clone();
            child.push(segment.clone());
            if self.modules.contains_key(&child) {
                current = child;
                continue;
            }
            // A name this module imports: follow it, with what is left of the path.
            let imported = self.imports(&current).remove(segment.as_str());
            if let Some(target) = imported {
                let mut followed = target;
                followed.extend(rest[at_segment + 1..].iter().cloned());
                return self.resolve(&current, &followed, depth + 1).or(Some(current));
            }
            break;
        }
        Some(current)
    }

    /// The names module `at` imports or re-exports, each with the path it stands for.
    fn imports(&self, at: &[String]) -> BTreeMap<String, Vec<String>> {
        let mut names = BTreeMap::new();
        let Some(module) = self.modules.get(at) else { return names };
        for path in use_paths(&module.code) {
            let Some(last) = path.last() else { continue };
            if last == "*" || last == "self" {
                continue;
            }
            names.insert(last.clone(), path);
        }
        names
    }

    /// Every module each file refers to, but its own ancestors (a folder's `mod.rs` is the interface its
    /// children share; what it re-exports is followed to where it is defined).
    fn edges(&self) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
        let mut edges = BTreeMap::new();
        for (at, module) in &self.modules {
            let mut targets = BTreeSet::new();
            let mut paths = use_paths(&module.code);
            paths.extend(inline_paths(&module.code));
            for path in paths {
                let Some(target) = self.resolve(at, &path, 0) else { continue };
                let ancestor = target.len() <= at.len() && at[..target.len()] == target[..];
                if target != *at && !ancestor {
                    targets.insert(target);
                }
            }
            edges.insert(at.clone(), targets);
        }
        edges
    }
}

/// The code without `//` comments (doc comments included) and `/* */` blocks; string contents are kept, which
/// is harmless here.
fn without_comments(text: &str) -> String {
    let mut code = String::new();
    let mut in_block = false;
    for line in text.lines() {
        let mut line = line.to_string();
        if in_block {
            match line.find("*/") {
                Some(end) => {
                    line = line[end + 2..].to_string();
                    in_block = false;
                }
                None => continue,
            }
        }
        if let Some(start) = line.find("/*") {
            in_block = !line[start..].contains("*/");
            line.truncate(start);
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if let Some(comment) = line.find(" //") {
            line.truncate(comment);
        }
        code.push_str(&line);
        code.push('\n');
    }
    code
}

/// The full paths of every `use` (braces expanded; `x as y` counts as `x`).
fn use_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(start) = find_use(rest) {
        let after = &rest[start..];
        let Some(end) = after.find(';') else { break };
        let tree = after[..end].split_once("use ").map_or("", |(_, tree)| tree);
        expand(&tree.split_whitespace().collect::<Vec<_>>().join(" "), &mut Vec::new(), &mut paths);
        rest = &after[end + 1..];
    }
    paths
}

/// Where the next `use` statement starts (`use`, `pub use`, `pub(crate) use` at the start of a line).
fn find_use(code: &str) -> Option<usize> {
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let statement = trimmed.strip_prefix("pub(crate) ").or_else(|| trimmed.strip_prefix("pub(super) "));
        let statement = statement.or_else(|| trimmed.strip_prefix("pub ")).unwrap_or(trimmed);
        if statement.starts_with("use ") {
            return Some(offset + line.len() - trimmed.len());
        }
        offset += line.len();
    }
    None
}

/// Expands `a::b::{c, d::{e, f}}` into `a::b::c`, `a::b::d::e`, `a::b::d::f`.
fn expand(tree: &str, prefix: &mut Vec<String>, paths: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    let segments = |text: &str| -> Vec<String> {
        text.split("::").map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
    };
    if let Some(open) = tree.find('{') {
        let depth = prefix.len();
        prefix.extend(segments(&tree[..open]));
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut level = 0;
        let mut item = String::new();
        for c in inner.chars() {
            match c {
                '{' => level += 1,
                '}' => level -= 1,
                ',' if level == 0 => {
                    expand(&item, prefix, paths);
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        expand(&item, prefix, paths);
        prefix.truncate(depth);
    } else if !tree.is_empty() {
        let mut full = prefix.clone();
        full.extend(segments(tree.split(" as ").next().unwrap_or(tree)));
        paths.push(full);
    }
}

/// Paths written in the code itself: `crate::a::b`, `super::a`, `self::a`.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut rest = code;
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().last();
            let tail = &rest[at..];
            let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                paths.push(tail[..end].split("::").filter(|s| !s.is_empty()).map(String::from).collect());
            }
            rest = &tail[end.max(1)..];
        }
    }
    paths
}

/// Every circle in `edges`, each as the files around it.
fn circles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    let mut found = Vec::new();
    for start in edges.keys() {
        // Paths from `start` back to it, through modules that sort after it (each circle once).
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    found.push(path.clone());
                } else if next > start && !path.contains(next) && path.len() < 6 {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn library() -> Crate {
    Crate::read(&src(), |file| file != "main.rs" && !file.starts_with("cli/"))
}

fn binary() -> Crate {
    Crate::read(&src(), |file| file == "main.rs" || file.starts_with("cli/"))
}

#[test]
fn machinery_and_local_servers_import_no_domain() {
    let library = library();
    let edges = library.edges();
    let mut offending = Vec::new();
    for (at, module) in &library.modules {
        let file = module.file.to_string_lossy().to_string();
        if !DOMAIN_FREE.iter().any(|prefix| file.starts_with(prefix)) {
            continue;
        }
        for target in edges.get(at).into_iter().flatten() {
            if target.first().is_some_and(|first| DOMAINS.contains(&first.as_str())) {
                offending.push(format!("{file} imports crate::{}", target.join("::")));
            }
        }
    }
    assert!(library.modules.len() > 100, "the checker reads the crate: {} files", library.modules.len());
    assert_eq!(offending, Vec::<String>::new());
}

#[test]
fn no_two_files_import_each_other() {
    for (name, krate) in [("library", library()), ("binary", binary())] {
        let circles: Vec<String> = circles(&krate.edges())
            .iter()
            .map(|circle| circle.iter().map(|module| module.join("::")).collect::<Vec<_>>().join(" -> "))
            .collect();
        assert_eq!(circles, Vec::<String>::new(), "import circles in the {name}");
    }
}

#[test]
fn only_the_command_runs_the_bench() {
    let library = library();
    let mut mentions = Vec::new();
    for module in library.modules.values() {
        if module.code.contains("bench::") || module.code.contains("mod bench") {
            mentions.push(module.file.to_string_lossy().to_string());
        }
    }
    assert_eq!(mentions, Vec::<String>::new());
    assert!(binary().modules.keys().any(|at| at.starts_with(&["cli".to_string(), "bench".to_string()])));
}

#[test]
fn the_checker_finds_what_it_looks_for() {
    // Two files that import each other, and a file that imports a domain: both must be seen.
    let code = |text: &str| without_comments(text);
    let mut modules = BTreeMap::new();
    let module = |file: &str, _folder: bool, text: &str| Module { file: file.into(), code: code(text) };
    modules.insert(vec![], module("src/lib.rs", true, "pub mod http;\npub mod seckill;"));
    modules.insert(vec!["http".into()], module("src/http/mod.rs", true, "mod a;\nmod b;\npub use a::Thing;"));
    modules.insert(vec!["http".into(), "a".into()], module("src/http/a.rs", false, "use super::b::Other;"));
    modules.insert(
        vec!["http".into(), "b".into()],
        module(
            "src/http/b.rs",
            false,
            "// use crate::lottery::Nothing;\nuse super::Thing;\nfn f() { crate::seckill::go() }",
        ),
    );
    modules.insert(vec!["seckill".into()], module("src/seckill/mod.rs", true, ""));
    let krate = Crate { modules };
    let edges = krate.edges();
    let b = vec!["http".to_string(), "b".to_string()];
    assert!(edges[&b].contains(&vec!["seckill".to_string()]), "{edges:?}");
    assert!(!edges[&b].iter().any(|t| t.first().is_some_and(|f| f == "lottery")), "comments are not code");
    assert_eq!(circles(&edges).len(), 1, "a and b, through the folder's re-export: {edges:?}");
}
