//! The crate's layers, checked: every `crate::…` path in the code outside
//! tests is read, and a module may only use modules of its own layer or
//! the layers below it, and no two modules may use each other, directly or
//! round a loop. The layers, lowest first, are listed in [`LAYERS`] and in
//! the crate's documentation.
//!
//! A module's children are its own business: a parent and a child may
//! refer to each other (a `mod.rs` re-exports what its children define).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules by layer, lowest first.
const LAYERS: &[&[&str]] = &[
    &["error", "events", "stream", "phase_time"],
    &["model"],
    &["config"],
    &["codec"],
    &["milvus"],
    &["storage"],
    &["context"],
    &["repo"],
    &["ops"],
    &["schedule"],
];

/// Items `lib.rs` re-exports, and the module each comes from.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("ErrorKind", "error"),
    ("Result", "error"),
    ("ResultExt", "error"),
    ("Context", "context"),
    ("CancellationToken", "error"),
    ("cancellable", "error"),
];

/// Files that are not part of the layers: the crate root, this check and
/// the unit tests' fakes.
const OUTSIDE: &[&str] = &["lib", "layers", "testkit"];

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS.iter().position(|l| l.contains(&top))
}

/// The module path of a source file (`ops/restore/mod.rs` → `ops::restore`).
fn module_of(relative: &str) -> String {
    let path = relative.trim_end_matches(".rs");
    let path = path.strip_suffix("/mod").unwrap_or(path);
    path.replace('/', "::")
}

/// The code of a file without its tests and comments.
fn code_of(text: &str) -> String {
    let end = text.find("#[cfg(test)]\nmod ").unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path `crate::a::b…` the code names, including those inside
/// `use crate::{a::b, c::{d, e}}` groups (as `a::b`, `c::d`, `c::e`).
fn crate_paths(code: &str, module: &str) -> Vec<String> {
    let code = resolve_super(code, module);
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at + "crate::".len();
        from = start;
        if at > 0 && is_ident(bytes[from - "crate::".len() - 1]) {
            continue;
        }
        expand(&code[start..], "", &mut out);
    }
    out.retain(|p| !p.is_empty());
    out
}

/// The paths `text` starts with, under `prefix`: `a::b` → `prefix::a::b`;
/// `a::{b, c::{d}}` → `prefix::a::b`, `prefix::a::c::d`.
fn expand(text: &str, prefix: &str, out: &mut Vec<String>) {
    let text = text.trim_start();
    let path = leading_path(text);
    let full = match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.clone(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}::{path}"),
    };
    let rest = &text[text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len())..];
    if rest.starts_with('{') {
        let end = matching_brace(rest, 0);
        for item in split_top(&rest[1..end]) {
            expand(item, &full, out);
        }
    } else {
        out.push(full);
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `super::x` as `crate::<parent>::x`.
fn resolve_super(code: &str, module: &str) -> String {
    match module.rsplit_once("::") {
        Some((parent, _)) => code.replace("super::", &format!("crate::{parent}::")),
        None => code.replace("super::", "crate::"),
    }
}

fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
            _ => {}
        }
    }
    code.len()
}

fn split_top(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

/// `a::b::{c, d}` → `a::b`; `a::B` → `a::B`.
fn leading_path(text: &str) -> String {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    text[..end].trim_end_matches(':').to_string()
}

/// The module a path points into: the longest prefix that is a module
/// (or the module a root re-export comes from).
fn target_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    for n in (1..=segments.len()).rev() {
        let candidate = segments[..n].join("::");
        if modules.contains(&candidate) {
            return Some(candidate);
        }
    }
    ROOT_ITEMS
        .iter()
        .find(|(item, _)| *item == segments[0])
        .map(|(_, m)| m.to_string())
}

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

/// The problems in a set of files (module path → code): uses of a higher
/// layer, modules outside every layer, and cycles.
fn problems(files: &BTreeMap<String, String>) -> Vec<String> {
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut edges: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut found = Vec::new();
    for (module, code) in files {
        if OUTSIDE.contains(&module.as_str()) {
            continue;
        }
        let Some(own) = layer_of(module) else {
            found.push(format!("{module} belongs to no layer: add it to LAYERS"));
            continue;
        };
        for path in crate_paths(&code_of(code), module) {
            let Some(target) = target_module(&path, &modules) else {
                continue;
            };
            if related(module, &target) {
                continue;
            }
            match layer_of(&target) {
                Some(l) if l > own => found.push(format!(
                    "{module} uses crate::{path}, a layer above its own ({} above {})",
                    LAYERS[l][0], LAYERS[own][0]
                )),
                _ => {}
            }
            edges.entry(module).or_default().insert(target);
        }
    }
    found.extend(cycles(&edges));
    found
}

/// Each loop of modules that use each other, once.
fn cycles(edges: &BTreeMap<&str, BTreeSet<String>>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in edges.keys() {
        // Depth-first search for a path back to `start`.
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.to_string(), vec![])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(at.as_str()).into_iter().flatten() {
                let mut p = path.clone();
                p.push(at.clone());
                if next == start {
                    let mut ring = p.clone();
                    let min = ring.iter().min().cloned().unwrap_or_default();
                    let pos = ring.iter().position(|m| *m == min).unwrap_or(0);
                    ring.rotate_left(pos);
                    found.insert(format!("import cycle: {} → {}", ring.join(" → "), ring[0]));
                } else if seen.insert(next.clone()) {
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    found.into_iter().collect()
}

fn read_tree(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("source entry").path();
        if path.is_dir() {
            read_tree(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src");
            let module = module_of(&relative.to_string_lossy());
            out.insert(module, std::fs::read_to_string(&path).expect("source file"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(f, code)| (module_of(f), code.to_string()))
            .collect()
    }

    #[test]
    fn every_module_uses_only_its_layer_and_those_below_without_cycles() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut tree = BTreeMap::new();
        read_tree(&root, &root, &mut tree);
        assert!(tree.len() > 40, "read only {} files", tree.len());
        let found = problems(&tree);
        assert!(found.is_empty(), "layering problems:\n{}", found.join("\n"));
    }

    #[test]
    fn an_upward_use_is_found_in_every_spelling() {
        for code in [
            "use crate::ops::backup::BackupOptions;",
            "use crate::{error::Result, ops::backup};",
            "use crate::{\n    ops::{backup, restore},\n};",
            "fn f() { crate::ops::backup::plan(); }",
        ] {
            let tree = files(&[
                ("model/meta.rs", code),
                ("ops/backup/mod.rs", ""),
                ("ops/restore/mod.rs", ""),
                ("error.rs", ""),
            ]);
            let found = problems(&tree);
            assert!(!found.is_empty(), "{code}: nothing found");
            for f in &found {
                assert!(
                    f.starts_with("model::meta uses crate::ops::"),
                    "{code}: {f}"
                );
            }
        }
    }

    #[test]
    fn a_cycle_within_a_layer_is_found_but_tests_comments_and_children_are_not() {
        let tree = files(&[
            (
                "ops/backup/mod.rs",
                "use crate::ops::restore::x;\n// crate::schedule::run\n",
            ),
            (
                "ops/restore/mod.rs",
                "use crate::ops::backup::y;\nuse super::restore::bulk;",
            ),
            ("ops/restore/bulk.rs", "use super::plan;"),
            (
                "model/meta.rs",
                "#[cfg(test)]\nmod tests { use crate::ops::backup; }",
            ),
            ("schedule/run.rs", ""),
        ]);
        assert_eq!(
            problems(&tree),
            vec!["import cycle: ops::backup → ops::restore → ops::backup".to_string()]
        );
    }

    #[test]
    fn a_module_outside_every_layer_is_named() {
        let tree = files(&[("misc.rs", "")]);
        assert_eq!(
            problems(&tree),
            vec!["misc belongs to no layer: add it to LAYERS".to_string()]
        );
    }
}
