//! `restore` against real Milvus servers: the cross-instance cases of the
//! original guide, local storage on either side, and 2.2.16 → 2.3.5. Every
//! restored collection is compared with its source row by row (all fields,
//! by primary key) and by schema, partitions and indexes.

use milvus_backup_core::model::layout;
use milvus_backup_core::Context;
use predicates::prelude::*;

use crate::env::{
    assert_same_collection, cli, config, config_file, config_yaml, drop_collection, gen_data,
    generated, host_port, pick, run, unique, var, Generated,
};

/// Backs up `colls` of `from` with backup storage `backup_sets`, restores
/// them into `to` (whose storage the config describes) with `_r` + a tag,
/// compares each, and drops what it restored.
fn round_trip(
    from: &'static str,
    to: &'static str,
    backup_sets: &[String],
    colls: &[Generated],
) -> serde_json::Value {
    let root = unique("rt");
    let (_d1, cfg_from) = config_file(&config_yaml(from, &root));
    let (_d2, cfg_to) = config_file(&config_yaml(to, &root));
    let name = unique("rt");
    let list: Vec<String> = colls.iter().map(|g| g.full_name()).collect();
    run(
        &cfg_from,
        backup_sets,
        &["create", "-n", &name, "-c", &list.join(",")],
    );
    let suffix = format!("_r{}", &name[name.len() - 6..]);
    let stats = run(
        &cfg_to,
        backup_sets,
        &["restore", "-n", &name, "-s", &suffix, "--restore_index"],
    );
    assert_eq!(stats["collections"], colls.len());
    for g in colls {
        let target = format!("{}{suffix}", g.name);
        assert_same_collection(from, g, to, &g.db, &target);
        drop_collection(to, &g.db, &target);
    }
    stats
}

#[test]
fn case1_same_instance_with_suffix_every_collection() {
    let all = generated("A").to_vec();
    let stats = round_trip("A", "A", &[], &all);
    assert!(stats["entities"].as_i64().unwrap() > 0);
    assert!(
        stats["staged_bytes"].as_u64().unwrap() > 0,
        "backup bucket differs from Milvus's: files are staged"
    );
    for k in ["duration_s", "staging_s", "import_s"] {
        assert!(stats[k].as_f64().is_some(), "{k} in {stats}");
    }
}

#[test]
fn case2_backup_in_the_target_bucket_is_imported_in_place() {
    // The backup lives in Milvus B's own bucket (another root path): B reads
    // the files where they are, nothing is staged.
    let stats = round_trip(
        "A",
        "B",
        &[format!("minio.backupBucketName={}", var("MBT_B_BUCKET"))],
        &pick("A", &["all_types", "varchar_pk"]),
    );
    assert_eq!(stats["staged_bytes"], 0);
}

#[test]
fn case3_different_buckets_on_one_s3_service() {
    let stats = round_trip("A", "B", &[], &pick("A", &["autoid", "partition_key"]));
    assert!(stats["staged_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn case4_different_s3_services() {
    let (host, port) = host_port(&var("MBT_S3B_ENDPOINT"));
    let sets = [
        format!("minio.backupAddress={host}"),
        format!("minio.backupPort={port}"),
        format!("minio.backupAccessKeyID={}", var("MBT_S3B_ACCESS_KEY")),
        format!("minio.backupSecretAccessKey={}", var("MBT_S3B_SECRET_KEY")),
        "minio.crossStorage=true".to_string(),
    ];
    let stats = round_trip("A", "B", &sets, &pick("A", &["all_types", "binary_vec"]));
    assert!(stats["staged_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn local_storage_milvus_as_source() {
    round_trip("L", "A", &[], &pick("L", &["all_types", "autoid"]));
}

#[test]
fn local_storage_milvus_as_target() {
    round_trip("A", "L", &[], &pick("A", &["varchar_pk", "in_db2"]));
}

#[test]
fn from_milvus_2_2_into_2_3() {
    round_trip("V22", "B", &[], &pick("V22", &["all_types", "varchar_pk"]));
}

#[test]
fn existing_target_is_refused_and_left_untouched() {
    let g = pick("A", &["varchar_pk"]).remove(0);
    let (_d, cfg) = config_file(&config_yaml("A", &unique("exist")));
    let name = unique("ex");
    run(&cfg, &[], &["create", "-n", &name, "-c", &g.full_name()]);
    let before = gen_data("A", &["dump", "--db", &g.db, "--collection", &g.name]);
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["restore", "-n", &name])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(format!(
            "collection `{}` already exists",
            g.full_name()
        )))
        .stderr(predicate::str::contains("--drop_exist_collection"));
    assert_eq!(
        before,
        gen_data("A", &["dump", "--db", &g.db, "--collection", &g.name])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_import_reports_the_reason_and_leaves_no_staging_files() {
    let g = pick("A", &["all_types"]).remove(0);
    let yaml = config_yaml("A", &unique("fail"));
    let (_d, cfg) = config_file(&yaml);
    let name = unique("f");
    run(&cfg, &[], &["create", "-n", &name, "-c", &g.full_name()]);
    // Replace every insert log with bytes Milvus cannot parse, and record
    // them in the manifest: the files pass the checksum check while staged
    // (a changed file alone is refused before import, see trust.rs), so it
    // is Milvus's import that fails.
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let files = ctx
        .backup_storage
        .list(&format!("{name}/binlogs/insert_log/"))
        .await
        .unwrap();
    let garbage = b"not a binlog".to_vec();
    for f in &files {
        ctx.backup_storage
            .write(&f.key, garbage.clone())
            .await
            .unwrap();
    }
    let manifest_key = layout::backup_meta_file(&name, layout::MANIFEST);
    let mut manifest: milvus_backup_core::model::meta::Manifest =
        serde_json::from_slice(&ctx.backup_storage.read(&manifest_key).await.unwrap()).unwrap();
    for f in manifest
        .files
        .iter_mut()
        .filter(|f| f.path.contains("insert_log/"))
    {
        f.size = garbage.len() as u64;
        f.sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&garbage));
        // The garbage's own ETag is not recorded: staging copies it as is.
        f.etag = None;
    }
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&manifest_bytes));
    ctx.backup_storage
        .write(&manifest_key, manifest_bytes)
        .await
        .unwrap();
    // ... and in summary.json's meta checksums, or restore refuses the
    // edited manifest itself (see the core's meta-edit tests).
    let summary_key = layout::backup_meta_file(&name, layout::SUMMARY);
    let mut summary: milvus_backup_core::model::meta::Summary =
        serde_json::from_slice(&ctx.backup_storage.read(&summary_key).await.unwrap()).unwrap();
    summary
        .meta_sha256
        .insert(layout::MANIFEST.to_string(), manifest_sha);
    ctx.backup_storage
        .write(&summary_key, serde_json::to_vec(&summary).unwrap())
        .await
        .unwrap();
    let out = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["restore", "-n", &name, "-s", "_broken"])
        .assert()
        .code(7);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let line = stderr.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        line.contains("import of segment") && line.contains("failed"),
        "{stderr}"
    );
    assert!(
        line.contains(&format!("{}_broken", g.name)),
        "names the collection: {line}"
    );
    let staged = ctx.milvus_storage.list(layout::STAGING_ROOT).await.unwrap();
    assert!(
        staged.iter().all(|o| !o.key.contains(&name)),
        "staging files left behind: {staged:?}"
    );
    // The half-restored collection is gone, so a retry can start clean.
    let client = ctx.milvus().await.unwrap();
    let left = client.list_collections(&g.db).await.unwrap();
    assert!(!left.contains(&format!("{}_broken", g.name)), "{left:?}");
}

/// What a killed restore leaves in the target's bucket (a staging folder
/// whose lease nobody renews) is listed by `gc --staging --dry-run` and
/// removed by `gc --staging`; a folder with a fresh lease is left alone.
#[tokio::test]
async fn gc_staging_removes_only_what_no_running_restore_holds() {
    let root = unique("gcst");
    let yaml = config_yaml("A", &root);
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let storage = &ctx.milvus_storage;
    let abandoned = layout::staging_dir(&format!("{root}_abandoned"));
    let running = layout::staging_dir(&format!("{root}_running"));
    for dir in [&abandoned, &running] {
        storage
            .write(&layout::join(dir, "7/insert_log/7/100/1"), vec![7; 1000])
            .await
            .unwrap();
    }
    // Renewed long ago: its restore was killed.
    storage
        .write(&layout::join(&abandoned, ".lease"), b"1000".to_vec())
        .await
        .unwrap();
    let _lease = milvus_backup_core::repo::staging::hold(storage, &running)
        .await
        .unwrap();

    let planned = run(&cfg, &[], &["gc", "--staging", "--dry-run"]);
    let dirs: Vec<&str> = planned["staging"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["dir"].as_str().unwrap())
        .collect();
    assert!(dirs.contains(&abandoned.as_str()), "{planned}");
    assert!(!dirs.contains(&running.as_str()), "{planned}");
    assert_eq!(storage.list(&abandoned).await.unwrap().len(), 2);

    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["gc", "--staging"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("removed `{abandoned}`")));
    assert!(storage.list(&abandoned).await.unwrap().is_empty());
    assert_eq!(storage.list(&running).await.unwrap().len(), 2);
    storage.delete_prefix(&running).await.unwrap();
}
