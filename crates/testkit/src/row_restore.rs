//! A large collection for logical restores killed part-way, and how far
//! a running one got by its journal in backup storage.

use milvus_backup_core::model::layout;
use milvus_backup_core::storage::Storage;
use milvus_backup_core::Context;

/// Rows of [`big_collection`].
pub const BIG_ROWS: u64 = 150_000;

/// Makes `default.<coll>` on `inst` with [`BIG_ROWS`] rows (int64 keys, a
/// scalar and an 8-dimensional vector), flushed, indexed and loaded.
pub fn big_collection(inst: &str, coll: &str) {
    crate::gen_data(
        inst,
        &[
            "late-deletes",
            "--collection",
            coll,
            "--rows",
            &BIG_ROWS.to_string(),
            "--delete",
            "0",
        ],
    );
}

/// The collections' entries of the journals of restores of `backup` in
/// the folders under `root` of `storage`.
pub async fn restore_journals(
    storage: &Storage,
    root: &str,
    backup: &str,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(dirs) = storage.list_dirs(root).await else {
        return out;
    };
    for dir in dirs.iter().filter(|d| d.starts_with(&format!("{backup}_"))) {
        let key = format!("{root}{dir}/{}", layout::RESTORE_JOURNAL);
        let Ok(bytes) = storage.read(&key).await else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        out.extend(
            v["collections"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values().cloned()),
        );
    }
    out
}

/// (target made, rows recorded as inserted) by the journals of restores
/// of `backup` that insert rows.
pub async fn row_restore_progress(ctx: &Context, backup: &str) -> (bool, u64) {
    let mut out = (false, 0);
    let root = layout::ROW_RESTORES_ROOT;
    for c in restore_journals(&ctx.backup_storage, root, backup).await {
        out.0 |= c["ready"].as_bool().unwrap_or(false);
        for f in c["files"].as_object().into_iter().flat_map(|m| m.values()) {
            for r in f["done"].as_array().into_iter().flatten() {
                out.1 += r[1].as_u64().unwrap_or(0) - r[0].as_u64().unwrap_or(0);
            }
        }
    }
    out
}

/// Creates `--format parquet` backup `name` of `collection` (`db.coll`)
/// with config file `cfg`, while no dump reads the source.
pub fn parquet_backup(cfg: &std::path::Path, name: &str, collection: &str) {
    let _turn = crate::source_release_turn();
    let args = [
        "create", "-n", name, "-c", collection, "--format", "parquet",
    ];
    crate::run(cfg, &[], &args);
}
