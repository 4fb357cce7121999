//! A logical backup made, and restored, by 4 shard processes on one
//! machine, as a Kubernetes Indexed Job runs them: the shards in a
//! shuffled order, two of them at once (one plans, the other waits),
//! one run twice; `--seal` refused while a shard is missing. The backup
//! passes `verify --deep` and restores row-identical, indexed and loaded.
//! The shared generated collections make the ranges: every scalar type in
//! three partitions, varchar keys, a partition key and a second database,
//! 6 key ranges over 4 collections.

use std::process::Output;

use crate::env::{
    assert_same_collection, cli, config_file, drop_collection, gen_data, guide_yaml, pick, unique,
};
use crate::logical_backup::run_json;

/// Runs the CLI (`--json`) against `inst` with backups under `root`.
fn spawn(inst: &str, root: &str, args: &[&str]) -> std::thread::JoinHandle<Output> {
    let (dir, cfg) = config_file(&guide_yaml(inst, root));
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    std::thread::spawn(move || {
        let out = cli()
            .arg("--config")
            .arg(&cfg)
            .arg("--json")
            .args(&args)
            .output()
            .unwrap();
        drop(dir);
        out
    })
}

fn json_of(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Runs the CLI expecting a refusal; its stderr.
fn refused(inst: &str, root: &str, args: &[&str]) -> String {
    let out = spawn(inst, root, args).join().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Milvus's load state of `db.coll` on `inst`.
fn load_state(inst: &str, db: &str, coll: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&gen_data(
        inst,
        &["describe", "--db", db, "--collection", coll],
    ))
    .unwrap();
    v["load_state"].clone()
}

#[test]
fn four_shards_in_any_order_make_a_backup_that_verifies_and_restores_identical() {
    let root = unique("shard");
    let u = &unique("x")[2..10];
    let gs = pick("A", &["all_types", "varchar_pk", "partition_key", "in_db2"]);
    assert_eq!(gs.len(), 4, "{gs:?}");
    let sel = gs
        .iter()
        .map(|g| g.full_name())
        .collect::<Vec<_>>()
        .join(",");
    let rows: i64 = gs.iter().map(|g| g.rows).sum();
    let name = format!("sharded_{u}");
    let create = |k: usize| {
        let shard = format!("{k}/4");
        let args = [
            "create", "-c", &sel, "-n", &name, "--format", "parquet", "--shard", &shard,
        ];
        spawn("A", &root, &args)
    };
    // Two shards start together: one plans, the other waits for its plan.
    let (a, b) = (create(2), create(0));
    let (two, zero) = (json_of(&a.join().unwrap()), json_of(&b.join().unwrap()));
    assert!(two["planned"] != zero["planned"], "one plans: {two} {zero}");
    assert_eq!(two["ranges_total"], 6, "{two}");
    let e = refused("A", &root, &["create", "-n", &name, "--seal"]);
    assert!(
        e.contains("2 of 4 shard(s)") && e.contains("1/4, 3/4"),
        "{e}"
    );
    let list = run_json("A", &root, &[], &["list"]);
    let row = (list["backups"].as_array().or(list.as_array()))
        .and_then(|rows| rows.iter().find(|r| r["name"] == name.as_str()).cloned())
        .unwrap_or_else(|| panic!("{name} not listed: {list}"));
    assert_eq!(row["state"], "incomplete", "{row}");
    let three = json_of(&create(3).join().unwrap());
    assert_eq!(three["planned"], false, "{three}");
    let one = json_of(&create(1).join().unwrap());
    let again = json_of(&create(2).join().unwrap());
    assert_eq!(again["already_done"], true, "{again}");
    assert_eq!(again["rows"], two["rows"], "{again}");
    let shards = [&zero, &one, &two, &three];
    let ranges: u64 = shards.iter().map(|s| s["ranges"].as_u64().unwrap()).sum();
    let exported: i64 = shards.iter().map(|s| s["rows"].as_i64().unwrap()).sum();
    assert_eq!((ranges, exported), (6, rows), "each range once: {shards:?}");

    let sealed = run_json("A", &root, &[], &["create", "-n", &name, "--seal"]);
    assert_eq!(sealed["entities"], rows, "{sealed}");
    assert_eq!(sealed["format"], "parquet", "{sealed}");
    run_json("A", &root, &[], &["verify", "--deep", "-n", &name]);
    let info = run_json("A", &root, &[], &["get", "-n", &name]);
    let per_coll = info["logical"]["collections"].as_array().unwrap();
    let got: usize = per_coll
        .iter()
        .map(|c| c["ranges"].as_array().unwrap().len())
        .sum();
    assert_eq!(got, 6, "{info}");

    // Restored by 4 shards into B, in another shuffled order.
    let suffix = format!("_s{u}");
    let restore = |k: usize| {
        let shard = format!("{k}/4");
        spawn(
            "B",
            &root,
            &["restore", "-n", &name, "-s", &suffix, "--shard", &shard],
        )
    };
    let r1 = json_of(&restore(1).join().unwrap());
    assert_eq!(
        r1["files_total"].as_u64().map(|n| n >= 6),
        Some(true),
        "{r1}"
    );
    let e = refused(
        "B",
        &root,
        &["restore", "-n", &name, "-s", &suffix, "--seal"],
    );
    assert!(e.contains("3 of 4 shard(s)"), "{e}");
    let (a, b) = (restore(3), restore(0));
    json_of(&a.join().unwrap());
    json_of(&b.join().unwrap());
    json_of(&restore(2).join().unwrap());
    let again = json_of(&restore(0).join().unwrap());
    assert_eq!(again["already_done"], true, "{again}");
    let done = run_json(
        "B",
        &root,
        &[],
        &["restore", "-n", &name, "-s", &suffix, "--seal"],
    );
    assert_eq!(done["entities"], rows, "{done}");

    for g in &gs {
        let target = format!("{}{suffix}", g.name);
        assert_same_collection("A", g, "B", &g.db, &target);
        assert_eq!(load_state("B", &g.db, &target), "Loaded", "{target}");
        drop_collection("B", &g.db, &target);
    }
}
