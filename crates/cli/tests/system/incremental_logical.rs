//! The user guide's incremental backup with the guide's config (no
//! storage for Milvus's own files, so backups are logical Parquet):
//! `create --base-backup` after a few changes stores only the key ranges
//! that changed, shares the others' files with the base, restores
//! row-identical, and still restores once the base is deleted.

use crate::env::{drop_collection, dump, gen_data, unique};
use crate::logical_backup::{run, run_json};

#[test]
fn the_guides_incremental_backup_stores_only_changed_ranges_and_restores_identical() {
    let root = unique("incl");
    let u = &unique("x")[2..10];
    let coll = format!("incl_{u}");
    // Three key ranges of about 65,536 rows: 0.., 65536.., 131072..
    gen_data(
        "A",
        &[
            "late-deletes",
            "--collection",
            &coll,
            "--rows",
            "150000",
            "--delete",
            "0",
        ],
    );
    let (base, inc) = (
        format!("backup_{u}_base"),
        format!("backup_{u}_incremental"),
    );
    let full = run_json(
        "A",
        &root,
        &[],
        &["create", "--collection", &coll, "--backup-name", &base],
    );
    assert_eq!(full["format"], "parquet", "{full}");
    assert_eq!(full["shared_files"], 0, "{full}");
    let info = run_json("A", &root, &[], &["get", "-n", &base]);
    let ranges = info["logical"]["collections"][0]["ranges"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(ranges, 3, "{info}");

    // A few changes, all in the last range: one row deleted, 500 appended.
    gen_data(
        "A",
        &[
            "delete-keys",
            "--collection",
            &coll,
            "--keys",
            "149990",
            "--int",
        ],
    );
    gen_data(
        "A",
        &[
            "append",
            "--collection",
            &coll,
            "--first-new",
            "150000",
            "--rows",
            "500",
        ],
    );
    let stats = run_json(
        "A",
        &root,
        &[],
        &[
            "create",
            "--collection",
            &coll,
            "--backup-name",
            &inc,
            "--base-backup",
            &base,
        ],
    );
    assert_eq!(stats["base_backup"], base.as_str(), "{stats}");
    assert_eq!(stats["entities"], 150_499, "{stats}");
    let (copied, shared) = (
        stats["copied_bytes"].as_u64().unwrap(),
        stats["shared_bytes"].as_u64().unwrap(),
    );
    assert!(stats["shared_files"].as_u64().unwrap() >= 2, "{stats}");
    assert!(copied * 3 < copied + shared, "{stats}");
    eprintln!(
        "incremental logical: {copied} bytes stored anew, {shared} shared ({:.1} % anew)",
        100.0 * copied as f64 / (copied + shared) as f64
    );
    run("A", &root, &[], &["verify", "--deep", "-n", &inc]);

    // Restored row-identical; again once the base is gone.
    let source = dump("A", "default", &coll);
    for round in ["with_base", "base_deleted"] {
        if round == "base_deleted" {
            run("A", &root, &[], &["delete", "-n", &base]);
            run("A", &root, &[], &["verify", "--deep", "-n", &inc]);
        }
        let target = format!("{coll}_{round}");
        let rename = format!("default.{coll}:default.{target}");
        let r = run_json(
            "A",
            &root,
            &[],
            &["restore", "-n", &inc, "-c", &coll, "-r", &rename],
        );
        assert_eq!(r["entities"], 150_499, "{r}");
        assert!(
            dump("A", "default", &target) == source,
            "{round}: rows differ"
        );
        drop_collection("A", "default", &target);
    }
    // The live collection against the backup: only the live side is read.
    let v = run_json("A", &root, &[], &["compare", "-c", &coll, "-n", &inc]);
    assert_eq!(v["identical"], true, "{v}");
    assert_eq!(v["rows_target"], 150_499, "{v}");
    gen_data(
        "A",
        &[
            "delete-keys",
            "--collection",
            &coll,
            "--keys",
            "70000",
            "--int",
        ],
    );
    let (_d, cfg) = crate::env::config_file(&crate::env::guide_yaml("A", &root));
    let out = crate::env::cli()
        .arg("--config")
        .arg(&cfg)
        .args(["--json", "compare", "-c", &coll, "-n", &inc])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(10), "{v}");
    assert_eq!(v["ranges_differing"], 1, "{v}");
    assert_eq!(
        v["only_in_source"]["keys"],
        serde_json::json!([70000]),
        "{v}"
    );
    run("A", &root, &[], &["delete", "-n", &inc]);
    drop_collection("A", "default", &coll);
}
