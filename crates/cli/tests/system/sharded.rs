//! A logical backup made, and restored, by 4 shard processes on one
//! machine, as a Kubernetes Indexed Job runs them: the shards in a
//! shuffled order, two of them at once (one plans, the other waits),
//! one run twice; `--seal` refused while a shard is missing. The backup
//! passes `verify --deep` and restores row-identical, indexed and loaded.

use std::process::Output;

use crate::env::{cli, config_file, drop_collection, dump, gen_data, guide_yaml, unique};
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

/// Schema, partitions, indexes and load state, without name and db.
fn describe(inst: &str, coll: &str) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&gen_data(inst, &["describe", "--collection", coll])).unwrap();
    for k in ["name", "db", "aliases"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

#[test]
fn four_shards_in_any_order_make_a_backup_that_verifies_and_restores_identical() {
    let root = unique("shard");
    let u = &unique("x")[2..10];
    let coll = format!("shard_{u}");
    // Four key ranges of about 65,536 rows.
    gen_data(
        "A",
        &[
            "late-deletes",
            "--collection",
            &coll,
            "--rows",
            "200000",
            "--delete",
            "0",
        ],
    );
    let name = format!("sharded_{u}");
    let create = |k: usize| {
        let shard = format!("{k}/4");
        let args = [
            "create", "-c", &coll, "-n", &name, "--format", "parquet", "--shard", &shard,
        ];
        spawn("A", &root, &args)
    };
    // Two shards start together: one plans, the other waits for its plan.
    let (a, b) = (create(2), create(0));
    let (first, zero) = (json_of(&a.join().unwrap()), json_of(&b.join().unwrap()));
    assert!(
        first["planned"] != zero["planned"],
        "one plans: {first} {zero}"
    );
    assert_eq!(first["ranges_total"], 4, "{first}");
    assert_eq!(first["ranges"], 1, "{first}");
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
    json_of(&create(1).join().unwrap());
    let again = json_of(&create(2).join().unwrap());
    assert_eq!(again["already_done"], true, "{again}");
    assert_eq!(again["rows"], first["rows"], "{again}");

    let sealed = run_json("A", &root, &[], &["create", "-n", &name, "--seal"]);
    assert_eq!(sealed["entities"], 200_000, "{sealed}");
    assert_eq!(sealed["format"], "parquet", "{sealed}");
    run_json("A", &root, &[], &["verify", "--deep", "-n", &name]);
    let info = run_json("A", &root, &[], &["get", "-n", &name]);
    let ranges = &info["logical"]["collections"][0]["ranges"];
    assert_eq!(ranges.as_array().map(Vec::len), Some(4), "{info}");

    // Restored by 4 shards into B, in another shuffled order.
    let target = format!("{coll}_r");
    let rename = format!("default.{coll}:default.{target}");
    let restore = |k: usize| {
        let shard = format!("{k}/4");
        spawn(
            "B",
            &root,
            &["restore", "-n", &name, "-r", &rename, "--shard", &shard],
        )
    };
    let r1 = json_of(&restore(1).join().unwrap());
    assert_eq!(
        r1["files_total"].as_u64().map(|n| n >= 4),
        Some(true),
        "{r1}"
    );
    let e = refused(
        "B",
        &root,
        &["restore", "-n", &name, "-r", &rename, "--seal"],
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
        &["restore", "-n", &name, "-r", &rename, "--seal"],
    );
    assert_eq!(done["entities"], 200_000, "{done}");

    assert_eq!(describe("A", &coll), describe("B", &target));
    assert!(
        dump("A", "default", &coll) == dump("B", "default", &target),
        "rows differ"
    );
    drop_collection("A", "default", &coll);
    drop_collection("B", "default", &target);
}
