//! A crate's layers, checked (the unit tests `layers` of the core and of
//! the server call it): every `crate::…` path in the code outside tests
//! is read, and a module may only use modules of its own layer or the
//! layers below it, and no two modules may use each other, directly or
//! round a loop. Each crate lists its layers in a [`Layers`].
//!
//! A module's children are its own business: a parent and a child may
//! refer to each other (a `mod.rs` re-exports what its children define).
//! This reads source text only; it knows nothing of a crate's items.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One crate's layering.
pub struct Layers {
    /// Top-level modules by layer, lowest first.
    pub layers: &'static [&'static [&'static str]],
    /// Items the crate root re-exports, and the module each comes from.
    pub root_items: &'static [(&'static str, &'static str)],
    /// Files that are not part of the layers (the crate root, its tests).
    pub outside: &'static [&'static str],
}

impl Layers {
    /// The problems of the crate whose sources are in `src`, of which
    /// there are at least `min_files`.
    pub fn check(&self, src: &Path, min_files: usize) -> Vec<String> {
        let mut tree = BTreeMap::new();
        read_tree(src, src, &mut tree);
        assert!(
            tree.len() >= min_files,
            "read only {} files in {}",
            tree.len(),
            src.display()
        );
        self.problems(&tree)
    }

    fn layer_of(&self, module: &str) -> Option<usize> {
        let top = module.split("::").next().unwrap_or(module);
        self.layers.iter().position(|l| l.contains(&top))
    }

    /// The problems in a set of files (module path → code): uses of a
    /// higher layer, modules outside every layer, and cycles.
    pub fn problems(&self, files: &BTreeMap<String, String>) -> Vec<String> {
        let modules: BTreeSet<String> = files.keys().cloned().collect();
        let mut edges: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut found = Vec::new();
        for (module, code) in files {
            if self.outside.contains(&module.as_str()) {
                continue;
            }
            let Some(own) = self.layer_of(module) else {
                found.push(format!("{module} belongs to no layer: add it to LAYERS"));
                continue;
            };
            // Upward uses by the layer they reach: one problem each.
            let mut above: BTreeMap<usize, Vec<String>> = BTreeMap::new();
            for path in crate_paths(&code_of(code), module) {
                let Some(target) = self.target_module(&path, &modules) else {
                    continue;
                };
                if related(module, &target) {
                    continue;
                }
                if let Some(l) = self.layer_of(&target).filter(|l| *l > own) {
                    let uses = above.entry(l).or_default();
                    let path = format!("crate::{path}");
                    if !uses.contains(&path) {
                        uses.push(path);
                    }
                }
                edges.entry(module).or_default().insert(target);
            }
            for (l, uses) in above {
                found.push(format!(
                    "{module} uses {}, a layer above its own ({} above {})",
                    uses.join(", "),
                    self.layers[l][0],
                    self.layers[own][0]
                ));
            }
        }
        found.extend(cycles(&edges));
        found
    }

    /// The module a path points into: the longest prefix that is a module
    /// (or the module a root re-export comes from).
    fn target_module(&self, path: &str, modules: &BTreeSet<String>) -> Option<String> {
        let segments: Vec<&str> = path.split("::").collect();
        for n in (1..=segments.len()).rev() {
            let candidate = segments[..n].join("::");
            if modules.contains(&candidate) {
                return Some(candidate);
            }
        }
        self.root_items
            .iter()
            .find(|(item, _)| *item == segments[0])
            .map(|(_, m)| m.to_string())
    }
}

/// The module path of a source file (`ops/restore/mod.rs` → `ops::restore`).
pub fn module_of(relative: &str) -> String {
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
/// `use crate::{a::b, c::{d, e}}` and `use crate::a::{b, c}` groups (at
/// any depth), as `a::b…`, `c::d…` (first segments only up to the first
/// item that is not a module name).
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
        let rest = &code[start..];
        let head = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        if rest[head..].starts_with('{') {
            let close = matching_brace(rest, head).min(rest.len() - 1);
            expand(&rest[..=close], &mut out);
        } else {
            out.push(leading_path(rest));
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

/// The paths of a use tree: `a::{b, c::{d}, self}` → `a::b`, `a::c::d`, `a`.
fn expand(tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        out.push(leading_path(tree));
        return;
    };
    let head = tree[..open].trim().trim_end_matches(':');
    let close = matching_brace(tree, open).min(tree.len());
    for item in split_top(&tree[open + 1..close]) {
        match item.trim() {
            "" => {}
            "self" => out.push(head.to_string()),
            item if head.is_empty() => expand(item, out),
            item => expand(&format!("{head}::{item}"), out),
        }
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

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
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

/// Every `.rs` file below `dir`, by module path (relative to `root`).
pub fn read_tree(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
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
