//! The tidy test (rust-analyzer's `tidy.rs` is the model): the docs that describe the code are
//! checked against it, so that they fail the test suite when they drift.
//!
//! - Layering: every workspace crate's `[dependencies]` on other workspace crates are among
//!   those its row of the "Layering" table in `docs/architecture.md` allows, and every
//!   workspace member has a row.
//! - Charters: every crate's `lib.rs` (or `main.rs` for a binary-only crate) starts with a
//!   `//!` module doc.
//! - Coverage: every rule ID in `docs/protocol-coverage.md` occurs in the code, and every
//!   file, function and type its "code" and "test" columns name exists.
//!
//! Only `[dependencies]` (and `[build-dependencies]`) count for the layering: a lower crate's
//! tests may use a higher one as a dev-dependency (the delivery service's tests build real
//! clients with `mimi-e2e`), which does not put the higher layer into the lower one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The workspace members' folders, from the root `Cargo.toml`.
fn members() -> Vec<PathBuf> {
    let manifest = read(&root().join("Cargo.toml"));
    let start = manifest
        .find("members = [")
        .expect("the root Cargo.toml lists its members");
    let list = &manifest[start..];
    let end = list.find(']').expect("the members list ends");
    list[..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(|m| root().join(m))
        .collect()
}

/// A crate's package name and its workspace dependencies (normal and build, not dev).
fn package(dir: &Path) -> (String, BTreeSet<String>) {
    let manifest = read(&dir.join("Cargo.toml"));
    let mut name = None;
    let mut deps = BTreeSet::new();
    let mut section = String::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if section == "[package]" && key == "name" {
            name = Some(value.trim().trim_matches('"').to_owned());
        }
        if section == "[dependencies]" || section == "[build-dependencies]" {
            let dep = key.split('.').next().unwrap_or(key).trim();
            if dep.starts_with("mimi-") {
                deps.insert(dep.to_owned());
            }
        }
    }
    (
        name.unwrap_or_else(|| panic!("{}: no package name", dir.display())),
        deps,
    )
}

/// The "Layering" table of docs/architecture.md: crate → the workspace crates it may use.
fn layering() -> BTreeMap<String, BTreeSet<String>> {
    let doc = read(&root().join("docs/architecture.md"));
    let start = doc
        .find("## Layering")
        .expect("docs/architecture.md has a \"## Layering\" section");
    let mut table = BTreeMap::new();
    for line in doc[start..].lines().skip(1) {
        if line.starts_with("## ") {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `crate` | `dep`, `dep` | ...
        if cells.len() < 3 || !cells[1].starts_with('`') {
            continue;
        }
        let name = cells[1].trim_matches('`').to_owned();
        let allowed = backticked(cells[2]).into_iter().collect();
        table.insert(name, allowed);
    }
    table
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == ".git" || name == "corpus" || name == "artifacts" {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every Rust source of the project (crates, xtask, fuzz targets) with its text.
fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "fuzz"] {
        rust_files(&root().join(dir), &mut files);
    }
    files
        .into_iter()
        .map(|p| {
            let text = read(&p);
            (p, text)
        })
        .collect()
}

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let table = layering();
    let mut problems = Vec::new();
    for dir in members() {
        let (name, deps) = package(&dir);
        let Some(allowed) = table.get(&name) else {
            problems.push(format!(
                "{name} has no row in docs/architecture.md's Layering table"
            ));
            continue;
        };
        for dep in deps.difference(allowed) {
            problems.push(format!(
                "{name} depends on {dep}, which the Layering table does not allow it"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "layering drift:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_crate_starts_with_its_charter() {
    let mut missing = Vec::new();
    for dir in members() {
        let lib = dir.join("src/lib.rs");
        let file = if lib.exists() {
            lib
        } else {
            dir.join("src/main.rs")
        };
        let text = read(&file);
        if !text.trim_start().starts_with("//!") {
            missing.push(file.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "crates without a `//!` charter at the top:\n{}",
        missing.join("\n")
    );
}

/// Whether `name` (a file name or path fragment) is a file of the project.
fn file_exists(name: &str, files: &[(PathBuf, String)]) -> bool {
    if root().join(name).exists() {
        return true;
    }
    files
        .iter()
        .any(|(p, _)| p.to_string_lossy().ends_with(&format!("/{name}")))
}

/// Whether the code has `name`: a function, type, trait, constant, module, macro, field
/// or enum variant defined by the project, a file of that name (a module or fuzz target),
/// or an item of a dependency that the code uses by that name (`name(`, `::name`, `.name`).
fn defined(name: &str, files: &[(PathBuf, String)]) -> bool {
    let keywords = [
        "fn ", "struct ", "enum ", "trait ", "const ", "static ", "type ", "mod ",
    ];
    let word_ends = |rest: &str| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_');
    files.iter().any(|(path, text)| {
        if path.file_stem().is_some_and(|s| s == name) {
            return true;
        }
        text.lines().any(|line| {
            let line = line.trim_start();
            if line.starts_with("//") {
                return false;
            }
            let after_vis = line
                .strip_prefix("pub(crate) ")
                .or_else(|| line.strip_prefix("pub "))
                .unwrap_or(line);
            let after_async = after_vis.strip_prefix("async ").unwrap_or(after_vis);
            let is_item = keywords.iter().any(|k| {
                after_async
                    .strip_prefix(k)
                    .and_then(|rest| rest.strip_prefix(name))
                    .is_some_and(word_ends)
            });
            let is_macro = line
                .strip_prefix("macro_rules! ")
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(word_ends);
            // A field (`name: Type,`) or a variant (`Name,` `Name(..)` `Name { .. }`).
            let is_member = after_vis.strip_prefix(name).is_some_and(|rest| {
                rest.starts_with(':') && !rest.starts_with("::")
                    || rest == ","
                    || rest.starts_with('(')
                    || rest.starts_with(" {")
                    || rest.starts_with(" =")
            });
            let is_used = [format!("::{name}"), format!(".{name}"), format!("{name}(")]
                .iter()
                .any(|form| {
                    line.match_indices(form.as_str()).any(|(i, _)| {
                        let end = i + form.len();
                        let before_ok = !form.starts_with(name)
                            || !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
                        before_ok && (form.ends_with('(') || word_ends(&line[end..]))
                    })
                });
            is_item || is_macro || is_member || is_used
        })
    })
}

/// Whether a file or a function of the project has a name starting with `prefix`.
fn globbed(prefix: &str, files: &[(PathBuf, String)]) -> bool {
    files.iter().any(|(path, text)| {
        path.file_stem()
            .is_some_and(|s| s.to_string_lossy().starts_with(prefix))
            || text.contains(&format!("fn {prefix}"))
    })
}

/// The name a backticked token of the coverage table refers to, or `None` for tokens that
/// are not names (paths, commands, literal values, prose in code font).
fn reference(token: &str) -> Option<Reference> {
    let token = token.trim();
    if token.ends_with(".rs") || token.ends_with(".toml") || token.ends_with(".md") {
        return Some(Reference::File(token.to_owned()));
    }
    if let Some(prefix) = token.strip_suffix('*').filter(|p| p.ends_with('_')) {
        return Some(Reference::Glob(prefix.to_owned()));
    }
    let named = token.contains("::") || token.contains('_');
    let token = token
        .trim_end_matches("()")
        .trim_end_matches("::*")
        .trim_end_matches('*')
        .trim_end_matches("::");
    let is_path = !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && token.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if !is_path {
        return None;
    }
    let last = token.rsplit("::").next().unwrap_or(token);
    // Bare lowercase single words without an underscore are too often prose in code font
    // (`ring`, `redb`); a name with an underscore, a path, or a capital is a reference.
    if !named && !last.contains('_') && !last.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    Some(Reference::Item(last.to_owned()))
}

enum Reference {
    File(String),
    Item(String),
    /// `prefix_*`: some file or item whose name starts with the prefix.
    Glob(String),
}

#[test]
fn protocol_coverage_names_only_what_exists() {
    let doc = read(&root().join("docs/protocol-coverage.md"));
    let files = sources();
    let mut problems = Vec::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | rule ID | rule | code | test |
        if cells.len() < 6 || cells[1] == "rule ID" || cells[1].starts_with("---") {
            continue;
        }
        let id = cells[1].trim_matches('`');
        if !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
            && !files.iter().any(|(_, text)| text.contains(id))
        {
            problems.push(format!("rule {id} occurs nowhere in the code"));
        }
        for cell in [cells[3], cells[4]] {
            for token in backticked(cell) {
                match reference(&token) {
                    Some(Reference::File(f)) if !file_exists(&f, &files) => {
                        problems.push(format!("{id}: file `{f}` does not exist"));
                    }
                    Some(Reference::Item(name)) if !defined(&name, &files) => {
                        problems.push(format!("{id}: `{token}` is defined nowhere"));
                    }
                    Some(Reference::Glob(prefix)) if !globbed(&prefix, &files) => {
                        problems.push(format!("{id}: nothing is named `{token}`"));
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/protocol-coverage.md drifted from the code:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checks_catch_what_they_claim_to() {
    let files = vec![(
        PathBuf::from("x/src/a.rs"),
        "pub fn real_name() {}\nenum E {\n    Variant,\n}\n".to_owned(),
    )];
    assert!(defined("real_name", &files));
    assert!(defined("Variant", &files));
    assert!(!defined("real", &files));
    assert!(!defined("name", &files));
    assert!(!defined("gone_name", &files));
    assert!(matches!(reference("a::b_c"), Some(Reference::Item(n)) if n == "b_c"));
    assert!(matches!(reference("props::*"), Some(Reference::Item(n)) if n == "props"));
    assert!(matches!(reference("v06_decode_*"), Some(Reference::Glob(p)) if p == "v06_decode_"));
    assert!(globbed("real_", &files));
    assert!(!globbed("unreal_", &files));
    assert!(reference("ring").is_none());
    assert!(reference("GET /v1/inbox").is_none());
    assert!(matches!(reference("server.rs"), Some(Reference::File(_))));
}
