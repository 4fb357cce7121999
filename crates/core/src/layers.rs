//! The core's layers, checked: every `crate::…` path in the code outside
//! tests is read, and a module may only use modules of its own layer or
//! the layers below it, and no two modules may use each other, directly or
//! round a loop (the checker is `milvus_backup_testkit::layers`, shared
//! with the server). The layers, lowest first, are listed in [`LAYERS`]
//! and in the crate's documentation.

use milvus_backup_testkit::layers::Layers;

/// Top-level modules by layer, lowest first.
const LAYERS: &[&[&str]] = &[
    &["error", "events", "board", "stream", "phase_time"],
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

const CORE: Layers = Layers {
    layers: LAYERS,
    root_items: ROOT_ITEMS,
    outside: OUTSIDE,
};

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use milvus_backup_testkit::layers::module_of;

    use super::*;

    fn problems(files: &BTreeMap<String, String>) -> Vec<String> {
        CORE.problems(files)
    }

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(f, code)| (module_of(f), code.to_string()))
            .collect()
    }

    #[test]
    fn every_module_uses_only_its_layer_and_those_below_without_cycles() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let found = CORE.check(&root, 41);
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
            assert_eq!(found.len(), 1, "{code}: {found:?}");
            assert!(
                found[0].starts_with("model::meta uses crate::ops::"),
                "{found:?}"
            );
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
