//! Duplicate primary keys through a physical restore (issue 23). Milvus
//! accepts a key twice; a backup-mode import gives all rows of a task the
//! timestamp its data node allocates when it starts the task, so which
//! copy a query returns after a restore depends on the order the imports
//! start in. The restore starts a collection's imports in write order
//! (segment id), each once the one before has its timestamp.
//!
//! Measured on Milvus 2.3.5 (`docs`): within one segment the earlier row
//! wins; between a growing and a sealed segment the later timestamp wins;
//! between two sealed segments the winner changes from query to query, on
//! the source as well. So the winner is compared key by key where the
//! source has one (one segment), and the import order is checked where
//! only a server that resolves by timestamp decides (two segments).

use milvus_backup_core::Context;

use crate::env::{config, config_file, config_yaml, drop_collection, gen_data, run, unique};

/// The row a query returns for each of the keys 0..3000 (every field).
fn winners(inst: &str, coll: &str) -> String {
    gen_data(inst, &["dump", "--collection", coll, "--keys", "3000"])
}

/// The import concurrency at its maximum (`backup.parallelism.importJob`,
/// the Go tool's `restore.concurrency.importJobs`).
fn max_import_jobs() -> Vec<String> {
    vec!["backup.parallelism.importJob=100000".to_string()]
}

/// A backed-up collection and the configs that reach its backup.
struct Backed {
    coll: String,
    name: String,
    cfg_a: std::path::PathBuf,
    cfg_b: std::path::PathBuf,
    _dirs: [tempfile::TempDir; 2],
}

impl Backed {
    /// Restores the backup into B as `target`, the import concurrency at
    /// its maximum; the restore's stats.
    fn restore_into_b(&self, target: &str, extra: &[&str]) -> serde_json::Value {
        let rename = format!("{}:{target}", self.coll);
        let mut args = vec!["restore", "-n", &self.name, "-r", &rename];
        args.extend_from_slice(extra);
        run(&self.cfg_b, &max_import_jobs(), &args)
    }
}

/// A collection on A with keys 0..3000 written twice (`tag` 1 then 2),
/// backed up, with configs for A and B.
fn backed_up_duplicates(test: &str, one_segment: bool) -> Backed {
    let coll = unique(test);
    let mut args = vec!["dup-keys", "--collection", &coll, "--rows", "3000"];
    if one_segment {
        args.push("--one-segment");
    }
    gen_data("A", &args);
    let root = unique(test);
    let (da, cfg_a) = config_file(&config_yaml("A", &root));
    let (db, cfg_b) = config_file(&config_yaml("B", &root));
    let name = unique(test);
    let stats = run(&cfg_a, &[], &["create", "-n", &name, "-c", &coll]);
    assert_eq!(stats["entities"], 6000, "both copies of every key: {stats}");
    Backed {
        coll,
        name,
        cfg_a,
        cfg_b,
        _dirs: [da, db],
    }
}

#[test]
fn duplicate_keys_in_one_segment_keep_their_winner_over_five_restores() {
    let b = backed_up_duplicates("dup1", true);
    let coll = &b.coll;
    let source = winners("A", coll);
    assert_eq!(source.lines().count(), 3000);
    for i in 1..=5 {
        let target = format!("{coll}_r{i}");
        let started = std::time::Instant::now();
        let stats = b.restore_into_b(&target, &["--restore_index"]);
        eprintln!("restore {i}: {:.1} s", started.elapsed().as_secs_f64());
        assert_eq!(stats["entities"], 6000, "{stats}");
        let restored = winners("B", &target);
        // Every key returns the same row (every field) as the source.
        assert!(
            restored == source,
            "restore {i}: another copy of some key won"
        );
        drop_collection("B", "default", &target);
    }
    drop_collection("A", "default", coll);
    run(&b.cfg_a, &[], &["delete", "-n", &b.name]);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_keys_in_two_segments_are_imported_in_write_order() {
    let b = backed_up_duplicates("dup2", false);
    let (coll, name) = (&b.coll, &b.name);
    let got = run(&b.cfg_a, &[], &["get", "-n", name]);
    let mut segments: Vec<i64> = got["collection_backups"][0]["partition_backups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["segment_backups"].as_array().unwrap().clone())
        .map(|s| s["segment_id"].as_i64().unwrap())
        .collect();
    segments.sort_unstable();
    assert_eq!(
        segments.len(),
        2,
        "the flushed batch and the growing one: {got}"
    );
    let client = Context::open(&config(&config_yaml("B", "unused"), &[]))
        .unwrap()
        .milvus()
        .await
        .unwrap();
    for i in 1..=5 {
        let target = format!("{coll}_r{i}");
        let stats = b.restore_into_b(&target, &[]);
        assert_eq!(stats["entities"], 6000, "{stats}");
        // The import tasks as Milvus ran them: requested (task id) and
        // timestamped (the segments each made, allocated after the
        // timestamp) in the source's write order.
        let mut tasks = client.list_import_tasks("default", &target).await.unwrap();
        tasks.sort_by_key(|t| t.id);
        let order: Vec<(i64, i64, i64)> = tasks
            .iter()
            .map(|t| {
                let files = t.infos.iter().find(|kv| kv.key == "files").unwrap();
                let insert_dir = files.value.split(',').next().unwrap();
                let source: i64 = insert_dir
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let first = t.segment_ids.iter().min().copied().unwrap_or(0);
                let last = t.segment_ids.iter().max().copied().unwrap_or(0);
                (source, first, last)
            })
            .collect();
        let sources: Vec<i64> = order.iter().map(|o| o.0).collect();
        assert_eq!(
            sources, segments,
            "restore {i}: imports requested out of order"
        );
        assert!(
            order[0].2 < order[1].1,
            "restore {i}: the later segment's import started before the earlier one had its timestamp: {order:?}"
        );
        client.drop_collection("default", &target).await.unwrap();
    }
    let source = Context::open(&config(&config_yaml("A", "unused"), &[]))
        .unwrap()
        .milvus()
        .await
        .unwrap();
    source.drop_collection("default", coll).await.unwrap();
    run(&b.cfg_a, &[], &["delete", "-n", name]);
}
