//! `restore --import-mode insert` of physical (binlog) backups (issue 29):
//! the binlogs are read from backup storage, deletes and rows written twice
//! resolved, and the rows inserted over gRPC. Every restored collection is
//! compared with its source by schema, partitions, indexes and every row
//! (all fields, by primary key): from Milvus 2.3.5 (arrays, JSON, the
//! dynamic field, partition keys, upserts) and from 2.2.16 (JSON, `pk,ts`
//! delta logs), plain, compressed and encrypted.

use predicates::prelude::*;

use crate::env::{
    assert_same_collection, assert_same_rows, cli, config_file, config_yaml, drop_collection,
    gen_data, generated, run, unique, Generated,
};

/// Restores backup `name` into `to` with `--import-mode insert` and suffix
/// `suffix`, then compares every collection of `colls` with its source on
/// `from` and drops it. An autoID collection is compared without its keys
/// (Milvus 2.2/2.3 take none from a client).
fn restore_and_compare(
    cfg_to: &std::path::Path,
    name: &str,
    suffix: &str,
    (from, to): (&str, &str),
    colls: &[Generated],
) -> serde_json::Value {
    let stats = run(
        cfg_to,
        &[],
        &[
            "restore",
            "-n",
            name,
            "-s",
            suffix,
            "--restore_index",
            "--import-mode",
            "insert",
        ],
    );
    assert_eq!(stats["import_mode"], "insert", "{stats}");
    let expected: i64 = colls.iter().map(|g| g.rows).sum();
    assert_eq!(stats["entities"], expected, "live rows only: {stats}");
    for g in colls {
        let target = format!("{}{suffix}", g.name);
        if g.auto_id {
            assert_same_rows(from, g, to, &g.db, &target, Some(&g.pk));
        } else {
            assert_same_collection(from, g, to, &g.db, &target);
        }
        drop_collection(to, &g.db, &target);
    }
    stats
}

#[test]
fn physical_backup_of_2_3_restored_by_insert_is_row_identical() {
    let all: Vec<Generated> = generated("A").to_vec();
    let root = unique("ins23");
    let (_da, cfg_a) = config_file(&config_yaml("A", &root));
    let (_db, cfg_b) = config_file(&config_yaml("B", &root));
    let name = unique("ins23");
    let list: Vec<String> = all.iter().map(|g| g.full_name()).collect();
    run(&cfg_a, &[], &["create", "-n", &name, "-c", &list.join(",")]);
    // The plan says how the data gets in, and that no staging is needed.
    cli()
        .arg("--config")
        .arg(&cfg_b)
        .args(["restore", "-n", &name, "-s", "_x", "--dry-run"])
        .args(["--import-mode", "insert"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "rows inserted over gRPC (insert mode)",
        ))
        .stdout(predicate::str::contains(
            "staging: none, the rows are inserted",
        ));
    let suffix = format!("_i{}", &name[name.len() - 6..]);
    let stats = restore_and_compare(&cfg_b, &name, &suffix, ("A", "B"), &all);
    assert!(stats["segments"].as_u64().unwrap() >= all.len() as u64);
    assert_eq!(stats["staged_bytes"], 0, "nothing staged: {stats}");
    run(&cfg_a, &[], &["delete", "-n", &name]);
}

/// A collection written to as an application does (inserts, upserts,
/// deletes across several segments) and one whose keys were all inserted
/// twice, in two segments.
#[test]
fn upserts_deletes_and_keys_written_twice_resolve_as_milvus_serves_them() {
    let (busy, twice) = (unique("insbusy"), unique("instwice"));
    gen_data(
        "A",
        &[
            "late-deletes",
            "--collection",
            &busy,
            "--rows",
            "3000",
            "--delete",
            "0",
        ],
    );
    let wrote = gen_data(
        "A",
        &[
            "writer",
            "--collection",
            &busy,
            "--seconds",
            "4",
            "--first-new",
            "3000",
        ],
    );
    let wrote: serde_json::Value = serde_json::from_str(&wrote).unwrap();
    assert!(wrote["upserted"].as_i64().unwrap() > 0, "{wrote}");
    gen_data("A", &["dup-keys", "--collection", &twice, "--rows", "500"]);
    let root = unique("insdup");
    let (_da, cfg_a) = config_file(&config_yaml("A", &root));
    let (_db, cfg_b) = config_file(&config_yaml("B", &root));
    let name = unique("insdup");
    let list = format!("{busy},{twice}");
    run(&cfg_a, &[], &["create", "-n", &name, "-c", &list]);
    let stats = run(
        &cfg_b,
        &[],
        &["restore", "-n", &name, "-s", "_i", "--restore_index"],
    );
    assert!(stats["import_mode"].is_null(), "Milvus's import by default");
    drop_collection("B", "default", &format!("{busy}_i"));
    drop_collection("B", "default", &format!("{twice}_i"));
    let stats = run(
        &cfg_b,
        &[],
        &["restore", "-n", &name, "-s", "_i", "--restore_index"]
            .into_iter()
            .chain(["--import-mode", "insert"])
            .collect::<Vec<_>>(),
    );
    assert_eq!(stats["import_mode"], "insert");
    // Upserts and deletes: every key, every field, as the source serves it.
    let source = gen_data("A", &["dump", "--collection", &busy]);
    let restored = gen_data("B", &["dump", "--collection", &format!("{busy}_i")]);
    assert_eq!(
        restored.lines().count(),
        wrote["rows"].as_u64().unwrap() as usize
    );
    assert!(
        source == restored,
        "rows of {busy}_i differ from the source"
    );
    // Keys inserted twice (tag 1, then tag 2 in a later segment): one row
    // each, the newer one — what Milvus resolves by timestamp.
    let rows = gen_data("B", &["dump", "--collection", &format!("{twice}_i")]);
    assert_eq!(rows.lines().count(), 500);
    for line in rows.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["tag"], 2, "{line}");
    }
    for c in [&busy, &twice] {
        drop_collection("B", "default", &format!("{c}_i"));
        drop_collection("A", "default", c);
    }
    run(&cfg_a, &[], &["delete", "-n", &name]);
}

#[test]
fn compressed_and_encrypted_backups_of_2_2_restore_by_insert_into_2_3() {
    let colls: Vec<Generated> = generated("V22")
        .iter()
        .filter(|g| g.db == "default")
        .cloned()
        .collect();
    let root = unique("ins22");
    let (_dv, cfg_v) = config_file(&config_yaml("V22", &root));
    let (_db, cfg_b) = config_file(&config_yaml("B", &root));
    let list: Vec<String> = colls.iter().map(|g| g.full_name()).collect();
    let zstd = unique("ins22z");
    run(
        &cfg_v,
        &[],
        &[
            "create",
            "-n",
            &zstd,
            "-c",
            &list.join(","),
            "--compress",
            "zstd",
        ],
    );
    restore_and_compare(&cfg_b, &zstd, "_iz", ("V22", "B"), &colls);
    let sealed = unique("ins22e");
    let one = &colls[..1];
    let (v, b) = (cfg_v.to_str().unwrap(), cfg_b.to_str().unwrap());
    cli()
        .env("MILVUS_BACKUP_PASSWORD", "insert-mode")
        .args(["--config", v, "create", "-n", &sealed, "--encrypt"])
        .args(["-c", &one[0].full_name()])
        .assert()
        .success();
    let target = format!("{}_ie", one[0].name);
    cli()
        .env("MILVUS_BACKUP_PASSWORD", "insert-mode")
        .args(["--config", b, "restore", "-n", &sealed, "-s", "_ie"])
        .args(["--restore_index", "--import-mode", "insert"])
        .assert()
        .success();
    assert_same_collection("V22", &one[0], "B", &one[0].db, &target);
    drop_collection("B", &one[0].db, &target);
    for n in [&zstd, &sealed] {
        run(&cfg_v, &[], &["delete", "-n", n]);
    }
}
