//! `restore --import-mode bulk` of logical backups: the files are staged
//! into the target Milvus's storage (converted to Parquet as 2.3 reads it,
//! or to row-based JSON for 2.2) and read by its own import. A Parquet backup of 2.3.5 (A) restores this way into
//! 2.3.5 (B) and 2.2.16 (V22), row-identical; what cannot work is refused
//! with exit 2 before anything is created. The targets' configs name their
//! storage (`config_yaml`); backups are made with the user guide's config
//! (no Milvus storage), as `logical_backup` makes them.

use crate::env::{
    cli, collections_of, config_file, config_yaml, drop_collection, pick, unique, Generated,
};
use milvus_backup_core::model::layout;

use crate::logical_backup::{assert_restored, backup, delete, target_name};

/// `restore --import-mode bulk` of `g` from backup `name` into `to` (its
/// full config) under a new name: checks the output, compares the rows
/// with the source and drops the copy.
fn restore_bulk(g: &Generated, to: &str, root: &str, name: &str, db: &str, exact: bool) {
    let target = target_name(g);
    let (_d, cfg) = config_file(&config_yaml(to, root));
    let (source, rename) = (g.full_name(), format!("{}:{db}.{target}", g.full_name()));
    let mut args = vec![
        "--json",
        "--config",
        cfg.to_str().unwrap(),
        "restore",
        "-n",
        name,
        "-c",
        &source,
        "-r",
        &rename,
        "--import-mode",
        "bulk",
    ];
    if exact {
        args.push("--restore_index");
    }
    let started = std::time::Instant::now();
    let out = cli().args(&args).assert().success();
    let stats: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    eprintln!(
        "bulk restore of {} into {to}: {:.1} s",
        g.full_name(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stats["import_mode"], "bulk", "{stats}");
    assert_restored(&stats, "A", g, to, db, &target, exact);
    drop_collection(to, db, &target);
}

#[test]
fn bulk_restore_of_a_parquet_backup_into_2_3_and_2_2_is_row_identical() {
    let root = unique("bkroot");
    // Every type 2.3 has (all_types), new keys (autoid), binary vectors
    // and partition-key partitions: as Parquet into 2.3.5, as row-based
    // JSON into 2.2.16 (which has no arrays and no databases).
    let (for_23, for_22) = (
        pick("A", &["all_types", "autoid", "binary_vec", "partition_key"]),
        pick("A", &["varchar_pk", "autoid", "binary_vec"]),
    );
    let mut both: Vec<Generated> = for_23.clone();
    both.extend(
        for_22
            .iter()
            .filter(|g| g.name.ends_with("varchar_pk"))
            .cloned(),
    );
    let name = backup("A", &root, &both, &[], &[]);
    for g in &for_23 {
        restore_bulk(g, "B", &root, &name, &g.db, true);
    }
    for g in &for_22 {
        restore_bulk(g, "V22", &root, &name, "default", false);
    }
    delete("A", &root, &name);
}

/// `restore --import-mode bulk` of `source` from backup `name` as
/// `default.target` with `yaml`'s config: asserts exit `code` with one line
/// containing `says`, and that `inst` has no collection named `target`.
fn refused(
    yaml: &str,
    inst: &str,
    (name, source, target): (&str, &str, &str),
    (code, says): (i32, &str),
) {
    let (_d, cfg) = config_file(yaml);
    let rename = format!("{source}:default.{target}");
    let out = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["restore", "-n", name, "-c", source, "-r", &rename])
        .args(["--import-mode", "bulk"])
        .assert()
        .code(code);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.lines().any(|l| l.contains(says)),
        "expected a line with `{says}`:\n{err}"
    );
    assert!(
        !collections_of(inst).iter().any(|c| c.ends_with(target)),
        "{target} was created on {inst}"
    );
}

#[test]
fn bulk_restore_refuses_physical_backups_missing_storage_and_unreadable_fields_and_cleans_up_a_failure(
) {
    let root = unique("bkroot");
    let g = pick("A", &["all_types"]).remove(0);
    let target = target_name(&g);
    let source = g.full_name();
    // A logical backup, restored without the target's storage configured.
    let name = backup("A", &root, std::slice::from_ref(&g), &[], &[]);
    refused(
        &crate::env::guide_yaml("B", &root),
        "B",
        (&name, &source, &target),
        (2, "(no `minio:` section)"),
    );
    // 2.2.16 has no arrays (all_types has them): the preflight refuses
    // before the bulk import's own check of what its import can read.
    refused(
        &config_yaml("V22", &root),
        "V22",
        (&name, &source, &target),
        (8, "ARRAY fields (needs Milvus 2.3.0 or later)"),
    );
    // Milvus cannot find the staged files (the config names another
    // bucket than B's): the import fails, the collection made for it is
    // dropped and the staging folder removed.
    let wrong = config_yaml("B", &root).replace(
        &format!("bucketName: \"{}\"", crate::env::var("MBT_B_BUCKET")),
        &format!("bucketName: \"{}\"", crate::env::var("MBT_A_BUCKET")),
    );
    let (_w, wrong_cfg) = config_file(&wrong);
    let rename = format!("{source}:default.{target}");
    let out = cli()
        .arg("--config")
        .arg(&wrong_cfg)
        .args(["restore", "-n", &name, "-c", &source, "-r", &rename])
        .args(["--import-mode", "bulk"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.lines()
            .any(|l| l.starts_with("error:") && l.contains("bulk import of")),
        "{err}"
    );
    assert!(!collections_of("B").iter().any(|c| c.ends_with(&target)));
    let ctx = milvus_backup_core::Context::open(&crate::env::config(&wrong, &[])).unwrap();
    let staged = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(ctx.milvus_storage.list(layout::STAGING_ROOT))
        .unwrap();
    assert!(
        staged.iter().all(|o| !o.key.contains(&name)),
        "staging files left behind: {staged:?}"
    );
    delete("A", &root, &name);
    // A physical backup: bulk mode is for logical ones.
    let (_d, cfg) = config_file(&config_yaml("A", &root));
    let physical = unique("bkphys").replace('-', "_");
    {
        let _turn = crate::env::source_release_turn();
        cli()
            .arg("--config")
            .arg(&cfg)
            .args(["create", "-n", &physical, "-c", &g.full_name()])
            .assert()
            .success();
    }
    refused(
        &config_yaml("B", &root),
        "B",
        (&physical, &source, &target),
        (2, "applies to logical backups"),
    );
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["delete", "-n", &physical])
        .assert()
        .success();
}
