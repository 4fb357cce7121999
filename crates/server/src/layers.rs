//! The server's layers, checked with `milvus_backup_testkit::layers` (the
//! checker the core's `layers` test uses too): a module may only use
//! modules of its own layer or the layers below it, and no two modules may
//! use each other, directly or round a loop. The layers, lowest first, are
//! listed in [`LAYERS`] and in the crate's documentation.

use milvus_backup_testkit::layers::Layers;

/// Top-level modules by layer, lowest first.
const LAYERS: &[&[&str]] = &[
    &["api", "record", "tls"],
    &["error", "metrics"],
    &["tasks"],
    &["views", "shared", "scheduler"],
    &[
        "routes",
        "backups",
        "service",
        "resume",
        "guide",
        "schedule_routes",
        "live",
        "page",
    ],
    &["router"],
];

const SERVER: Layers = Layers {
    layers: LAYERS,
    root_items: &[],
    // The crate root (serve and its options), this check and the REST
    // reference's test.
    outside: &["lib", "layers", "rest_docs"],
};

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn every_module_uses_only_its_layer_and_those_below_without_cycles() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let found = SERVER.check(&root, 18);
        assert!(found.is_empty(), "layering problems:\n{}", found.join("\n"));
    }
}
