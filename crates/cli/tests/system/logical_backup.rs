//! Logical backups in the catalog (`create --format parquet|json`, the
//! default when the config names no storage for Milvus's own files) and
//! their restore, between real servers: 2.3.5 → 2.3.5 (A → B), → 2.2.16,
//! → Milvus Lite, Lite → 2.3.5 and 2.2.16 → Lite. One backup per source is
//! shared by the restores from it. Every restored collection is compared
//! with its source row by row (every field, by primary key; for the autoID
//! collection every field but the regenerated key), plus its fields and
//! partitions (A → B: schema, partitions and indexes, exactly).

use std::path::PathBuf;

use crate::env::{
    assert_same_collection, assert_same_rows, cli, config_file, drop_collection, gen_data,
    generated, guide_yaml, pick, source_release_turn, unique, Generated,
};

/// The user guide's config: Milvus's address and a `storage:` block for
/// backups (S3 bucket, under `root`), nothing of Milvus's own storage.
fn guide_config(inst: &str, root: &str) -> (tempfile::TempDir, PathBuf) {
    config_file(&guide_yaml(inst, root))
}

/// Runs the CLI against `inst` with backups under `root`; stdout and stderr.
pub(crate) fn run(inst: &str, root: &str, env: &[(&str, &str)], args: &[&str]) -> (String, String) {
    let (_d, cfg) = guide_config(inst, root);
    let mut cmd = cli();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.arg("--config").arg(&cfg).args(args).assert().success();
    let o = out.get_output();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub(crate) fn run_json(
    inst: &str,
    root: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (out, err) = run(inst, root, env, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"))
}

/// Backs up `colls` of `inst` (the default format, or `extra` flags) and
/// checks what create, list, get and verify --deep say of it.
pub(crate) fn backup(
    inst: &'static str,
    root: &str,
    colls: &[Generated],
    extra: &[&str],
    env: &[(&str, &str)],
) -> String {
    let name = unique("lgb").replace('-', "_");
    let names: Vec<String> = colls.iter().map(|g| g.full_name()).collect();
    let mut args = vec!["create", "-n", &name, "-c"];
    let joined = names.join(",");
    args.push(&joined);
    args.extend_from_slice(extra);
    let format = if extra.contains(&"json") {
        "json"
    } else {
        "parquet"
    };
    let stats = {
        // A logical backup may load a collection and release it again.
        let _turn = source_release_turn();
        run_json(inst, root, env, &args)
    };
    assert_eq!(stats["format"], format, "{stats}");
    let rows: i64 = colls.iter().map(|g| g.rows).sum();
    assert_eq!(stats["entities"], rows, "{stats}");
    assert_eq!(stats["deleted_entities"], 0, "{stats}");
    let list = run_json(inst, root, env, &["list"]);
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in {list}"));
    assert_eq!(row["format"], format, "{row}");
    assert_eq!(row["entities"], rows, "{row}");
    let (text, _) = run(inst, root, env, &["list"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&name) && l.contains(format)),
        "{text}"
    );
    let info = run_json(inst, root, env, &["get", "-n", &name]);
    assert_eq!(info["logical"]["format"], format, "{info}");
    for deep in [false, true] {
        let mut v = vec!["verify", "-n", name.as_str()];
        if deep {
            v.push("--deep");
        }
        run(inst, root, env, &v);
    }
    name
}

/// A target name outside the generator's prefix (generating data never
/// drops it).
pub(crate) fn target_name(g: &Generated) -> String {
    format!("rlg_{}_{}", g.name, &unique("x")[2..10])
}

/// A backup: the instance it was made from, its root and name, and the
/// environment a restore of it needs.
struct BackupAt<'a> {
    from: &'static str,
    root: &'a str,
    name: &'a str,
    env: &'a [(&'a str, &'a str)],
}

/// Restores `g` from backup `b` into `to` under a new name, compares it
/// with the source and drops it again.
fn restore_one(b: &BackupAt<'_>, g: &Generated, to: &'static str, db: &str, exact: bool) {
    let BackupAt {
        from,
        root,
        name,
        env,
    } = *b;
    let target = target_name(g);
    let (source, rename) = (g.full_name(), format!("{}:{db}.{target}", g.full_name()));
    let mut args = vec!["restore", "-n", name, "-c", &source, "-r", &rename];
    if exact {
        args.push("--restore_index");
    }
    let stats = run_json(to, root, env, &args);
    assert_restored(&stats, from, g, to, db, &target, exact);
    drop_collection(to, db, &target);
}

/// What a restore of `g` from `from` into `to` as `db.target` must give:
/// its `--json` stats (rows, regenerated keys of the autoID collection)
/// and the same rows (with `exact`, schema, partitions and indexes too).
pub(crate) fn assert_restored(
    stats: &serde_json::Value,
    from: &str,
    g: &Generated,
    to: &str,
    db: &str,
    target: &str,
    exact: bool,
) {
    let auto_id = g.name.ends_with("autoid");
    assert_eq!(stats["entities"], g.rows, "{stats}");
    let full = format!("{db}.{target}");
    assert_eq!(
        stats["keys_regenerated"]
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t == full.as_str())),
        auto_id,
        "{stats}"
    );
    if exact && !auto_id {
        assert_same_collection(from, g, to, db, target);
    } else {
        assert_same_shape(from, g, to, db, target);
        assert_same_rows(from, g, to, db, target, auto_id.then_some("id"));
    }
}

/// The same fields (name, type, primary key, parameters) and partitions
/// (unless the partition key makes them) on both sides.
pub(crate) fn assert_same_shape(from: &str, g: &Generated, to: &str, db: &str, target: &str) {
    let describe = |inst: &str, db: &str, name: &str| -> serde_json::Value {
        serde_json::from_str(&gen_data(
            inst,
            &["describe", "--db", db, "--collection", name],
        ))
        .unwrap()
    };
    let (a, b) = (describe(from, &g.db, &g.name), describe(to, db, target));
    let shape = |v: &serde_json::Value| -> Vec<(String, String, bool)> {
        v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap_or_default().to_string(),
                    f["data_type"].to_string(),
                    f["is_primary_key"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    assert_eq!(shape(&a), shape(&b), "fields of {to} {db}.{target}");
    if !g.name.ends_with("partition_key") {
        assert_eq!(
            a["partitions"], b["partitions"],
            "partitions of {to} {db}.{target}"
        );
    }
}

pub(crate) fn delete(inst: &str, root: &str, name: &str) {
    run(inst, root, &[], &["delete", "-n", name]);
}

#[test]
fn logical_backup_of_2_3_restores_into_2_3_2_2_and_lite() {
    let root = unique("lgroot");
    let all = generated("A");
    let names: Vec<String> = all.iter().map(|g| g.full_name()).collect();
    let (plan, _) = run(
        "A",
        &root,
        &[],
        &["create", "-c", &names.join(","), "--dry-run"],
    );
    assert!(plan.contains("stored as parquet files"), "{plan}");
    // One backup (the default format: the config names no Milvus storage)
    // shared by every restore from A.
    let name = backup("A", &root, all, &[], &[]);
    // Generating a server's data drops its prefixed collections: first.
    generated("LITE");
    generated("V22");
    let b = BackupAt {
        from: "A",
        root: &root,
        name: &name,
        env: &[],
    };
    for g in all {
        restore_one(&b, g, "B", &g.db, true);
    }
    for g in pick(
        "A",
        &[
            "varchar_pk",
            "autoid",
            "binary_vec",
            "partition_key",
            "in_db2",
        ],
    ) {
        // 2.2 has no arrays and no databases.
        restore_one(&b, &g, "V22", "default", false);
    }
    for g in pick("A", crate::logical::FOR_LITE) {
        restore_one(&b, &g, "LITE", &g.db, false);
    }
    delete("A", &root, &name);
}

#[test]
fn logical_backups_of_lite_and_2_2_restore_into_2_3_and_lite() {
    let root = unique("lgroot");
    // Lite → 2.3.5 as JSON Lines, compressed and encrypted.
    let (key, _) = run("LITE", &root, &[], &["keygen"]);
    let key = key
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap()
        .trim()
        .to_string();
    let env = [("MILVUS_BACKUP_ENCRYPTION_KEY", key.as_str())];
    let lite = generated("LITE");
    let name = backup(
        "LITE",
        &root,
        lite,
        &["--format", "json", "--compress", "zstd", "--encrypt"],
        &env,
    );
    generated("A");
    for g in lite {
        restore_one(
            &BackupAt {
                from: "LITE",
                root: &root,
                name: &name,
                env: &env,
            },
            g,
            "A",
            &g.db,
            false,
        );
    }
    delete("LITE", &root, &name);

    // 2.2.16 → Lite, Parquet (the default here).
    let v22 = pick("V22", &["all_types", "varchar_pk", "partition_key"]);
    let name = backup("V22", &root, &v22, &[], &[]);
    for g in &v22 {
        restore_one(
            &BackupAt {
                from: "V22",
                root: &root,
                name: &name,
                env: &[],
            },
            g,
            "LITE",
            "default",
            false,
        );
    }
    delete("V22", &root, &name);
}

#[test]
fn a_config_naming_no_milvus_storage_makes_a_parquet_backup_and_says_so() {
    let root = unique("lgroot");
    let g = pick("A", &["varchar_pk"]).remove(0);
    let (_, err) = {
        let _turn = source_release_turn();
        run(
            "A",
            &root,
            &[],
            &["create", "-n", "lg_default_fmt", "-c", &g.full_name()],
        )
    };
    assert!(
        err.contains("names no storage for Milvus's own files") && err.contains("Parquet"),
        "{err}"
    );
    let (text, _) = run("A", &root, &[], &["get", "-n", "lg_default_fmt"]);
    assert!(text.contains("format:         parquet"), "{text}");
    delete("A", &root, "lg_default_fmt");
}
