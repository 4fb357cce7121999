//! `create`, `list`, `get`, `delete` against real Milvus servers and S3.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use milvus_backup_core::config::Config;
use milvus_backup_core::model::layout;
use milvus_backup_core::repo::catalog;
use milvus_backup_core::Context;
use predicates::prelude::*;

use crate::env::{cli, config, config_file, config_yaml, generated, host_port, unique, var};

/// Runs `milvus-backup --json ... create` and returns the summary object.
fn create_json(cfg: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = cli()
        .arg("--json")
        .arg("--config")
        .arg(cfg)
        .arg("create")
        .args(args)
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).expect("create --json prints one object")
}

fn list_json(cfg: &std::path::Path) -> Vec<serde_json::Value> {
    let out = cli()
        .arg("--json")
        .arg("--config")
        .arg(cfg)
        .arg("list")
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// Checks a finished backup against Milvus and storage: every insert and
/// delta log of each backed-up segment is in backup storage with the size
/// and checksum the manifest records, and entity counts match the source.
/// Rows in each collection's flushed segments right now, by `db.name`.
/// Compaction only ever lowers this (it applies deletes), so a backup taken
/// between two readings lies between them.
async fn flushed_rows(
    cfg: &Config,
    colls: &[crate::env::Generated],
) -> std::collections::HashMap<String, i64> {
    let client = Context::open(cfg).unwrap().milvus().await.unwrap();
    let mut out = std::collections::HashMap::new();
    for g in colls {
        let segments = client.persistent_segments(&g.db, &g.name).await.unwrap();
        out.insert(
            g.full_name(),
            segments
                .iter()
                .filter(|s| s.state == 4)
                .map(|s| s.num_rows)
                .sum(),
        );
    }
    out
}

async fn assert_backup_matches_source(
    cfg: &Config,
    name: &str,
    expect: &[crate::env::Generated],
    before: &std::collections::HashMap<String, i64>,
) {
    let ctx = Context::open(cfg).unwrap();
    let info = catalog::get(&ctx.backup_storage, name).await.unwrap();
    let manifest = catalog::manifest(&ctx.backup_storage, name)
        .await
        .unwrap()
        .expect("manifest.json");
    let by_source: std::collections::HashMap<&str, &milvus_backup_core::model::meta::ManifestFile> =
        manifest
            .files
            .iter()
            .map(|f| (f.source.as_str(), f))
            .collect();

    let names: BTreeSet<String> = info
        .collection_backups
        .iter()
        .map(|c| format!("{}.{}", c.db_name, c.collection_name))
        .collect();
    let wanted: BTreeSet<String> = expect.iter().map(|g| g.full_name()).collect();
    assert_eq!(names, wanted);

    let mut saw_delta = false;
    for c in &info.collection_backups {
        let g = expect
            .iter()
            .find(|g| g.name == c.collection_name && g.db == c.db_name)
            .unwrap();
        let after = flushed_rows(cfg, std::slice::from_ref(g)).await[&g.full_name()];
        let backup_rows: i64 = c
            .partition_backups
            .iter()
            .flat_map(|p| &p.segment_backups)
            .map(|s| s.num_of_rows)
            .sum();
        let before = before[&g.full_name()];
        assert!(
            after <= backup_rows && backup_rows <= before,
            "{}: {backup_rows} entities in the backup, Milvus had {before} before and {after} after",
            g.full_name()
        );
        assert!(
            backup_rows >= g.rows && backup_rows <= g.rows + g.deleted,
            "{}: {backup_rows} rows",
            g.full_name()
        );
        let parts: BTreeSet<&str> = c
            .partition_backups
            .iter()
            .map(|p| p.partition_name.as_str())
            .collect();
        for p in &g.partitions {
            assert!(
                parts.contains(p.as_str()),
                "partition {p} missing from {}",
                g.full_name()
            );
        }
        assert!(!c.schema.fields.is_empty());

        for p in &c.partition_backups {
            for s in &p.segment_backups {
                let mut keys: Vec<String> = Vec::new();
                for dir in [
                    layout::milvus_insert_log_dir(s.collection_id, s.partition_id, s.segment_id),
                    layout::milvus_delta_log_dir(s.collection_id, s.partition_id, s.segment_id),
                ] {
                    for obj in ctx.milvus_storage.list(&dir).await.unwrap() {
                        saw_delta |= obj.key.starts_with("delta_log/");
                        keys.push(obj.key);
                    }
                }
                assert!(!keys.is_empty(), "segment {} has no files", s.segment_id);
                for key in keys {
                    let f = by_source
                        .get(key.as_str())
                        .unwrap_or_else(|| panic!("{key} not in the manifest"));
                    let stored = layout::join(&layout::backup_dir(name), &f.path);
                    let (sha, size) = ctx.backup_storage.sha256(&stored).await.unwrap();
                    assert_eq!(size, f.size, "{stored}");
                    assert_eq!(sha, f.sha256, "{stored}");
                    let (src_sha, _) = ctx.milvus_storage.sha256(&key).await.unwrap();
                    assert_eq!(src_sha, f.sha256, "copy of {key} differs from the source");
                }
            }
        }
    }
    assert!(
        saw_delta,
        "the generated data has deletes, so some delta logs must be backed up"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backs_up_every_generated_collection_with_checksums() {
    let gen = generated("A");
    let yaml = config_yaml("A", &unique("full"));
    let (_d, cfg) = config_file(&yaml);
    let name = unique("all");
    let colls: Vec<String> = gen.iter().map(|g| g.full_name()).collect();
    let before = flushed_rows(&config(&yaml, &[]), gen).await;
    let stats = create_json(&cfg, &["-n", &name, "-c", &colls.join(",")]);
    assert_eq!(stats["name"], name.as_str());
    assert_eq!(stats["collections"], gen.len());
    assert!(stats["files"].as_u64().unwrap() > 0);
    assert_eq!(stats["size_bytes"], stats["copied_bytes"]);
    for key in [
        "entities",
        "size_bytes",
        "copied_bytes",
        "files",
        "duration_s",
    ] {
        assert!(stats.get(key).is_some(), "{key} missing from {stats}");
    }
    assert_backup_matches_source(&config(&yaml, &[]), &name, gen, &before).await;
}

#[test]
fn selection_forms_pick_the_right_collections() {
    let gen = generated("A");
    let (_d, cfg) = config_file(&config_yaml("A", &unique("select")));
    let db2: Vec<_> = gen.iter().filter(|g| g.db != "default").collect();
    assert!(
        !db2.is_empty(),
        "the generator makes a collection in a second database"
    );
    let first = &gen[0];

    // -a with a JSON string, plus --filter with a wildcard.
    let name = unique("sel");
    let a = format!("{{\"{}\": [\"{}\"]}}", first.db, first.name);
    let filter = format!("{}.{}*", db2[0].db, crate::env::gen_prefix());
    let stats = create_json(
        &cfg,
        &["-n", &name, "-a", &a, "--filter", &filter, "--meta_only"],
    );
    assert_eq!(stats["collections"], 1 + db2.len());
    assert_eq!(stats["files"], 0, "meta only copies no data");

    let out = cli()
        .arg("--json")
        .arg("--config")
        .arg(&cfg)
        .args(["get", "-n", &name])
        .assert()
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let got: BTreeSet<String> = doc["collection_backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}.{}",
                c["db_name"].as_str().unwrap(),
                c["collection_name"].as_str().unwrap()
            )
        })
        .collect();
    let mut want: BTreeSet<String> = db2.iter().map(|g| g.full_name()).collect();
    want.insert(first.full_name());
    assert_eq!(got, want);
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["delete", "-n", &name])
        .assert()
        .success();
}

#[test]
fn list_get_delete_round_trip() {
    let gen = generated("A");
    let (_d, cfg) = config_file(&config_yaml("A", &unique("catalog")));
    let first = gen[0].full_name();
    let (n1, n2) = (unique("one"), unique("two"));
    let s1 = create_json(&cfg, &["-n", &n1, "-c", &first]);
    create_json(&cfg, &["-n", &n2, "-c", &first, "--meta_only"]);

    let rows = list_json(&cfg);
    assert_eq!(rows.len(), 2);
    let r1 = rows.iter().find(|r| r["name"] == n1.as_str()).unwrap();
    assert_eq!(r1["state"], "complete");
    assert_eq!(r1["entities"], s1["entities"]);
    assert_eq!(r1["collections"][0], first.as_str());

    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(&n1));
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["get", "-n", &n1])
        .assert()
        .success()
        .stdout(predicate::str::contains(&gen[0].name));

    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["delete", "-n", &n1])
        .assert()
        .success();
    let rows = list_json(&cfg);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], n2.as_str());
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["delete", "-n", &n1])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!("backup `{n1}` not found")));
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["delete", "--all"])
        .assert()
        .code(2);
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["delete", "--all", "--yes"])
        .assert()
        .success();
    assert!(list_json(&cfg).is_empty());
}

/// A failing create: exit code, one line on stderr naming the problem, and
/// nothing left under the backup's name.
fn assert_create_fails(cfg: &std::path::Path, args: &[&str], code: i32, needle: &str) {
    let out = cli()
        .arg("--config")
        .arg(cfg)
        .arg("create")
        .args(args)
        .assert()
        .code(code);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(needle), "{stderr}");
}

#[test]
fn bad_input_fails_cleanly_and_leaves_nothing() {
    let gen = generated("A");
    let root = unique("bad");
    let yaml = config_yaml("A", &root);
    let (_d, cfg) = config_file(&yaml);
    let name = unique("b");
    assert_create_fails(
        &cfg,
        &["-n", &name, "-c", "no_such_collection"],
        3,
        "collection `default.no_such_collection` not found",
    );
    assert_create_fails(
        &cfg,
        &["-n", &name, "-d", "no_such_db"],
        3,
        "database `no_such_db` not found",
    );
    assert_create_fails(&cfg, &["-n", "1-bad name"], 2, "invalid backup name");
    assert_create_fails(
        &cfg,
        &["-n", "", "-c", &gen[0].full_name()],
        2,
        "invalid backup name",
    );
    assert!(list_json(&cfg).is_empty(), "failed creates leave no backup");

    // An existing name is refused and the existing backup is untouched.
    create_json(
        &cfg,
        &["-n", &name, "-c", &gen[0].full_name(), "--meta_only"],
    );
    assert_create_fails(
        &cfg,
        &["-n", &name, "-c", &gen[1].full_name()],
        4,
        "already exists",
    );
    let rows = list_json(&cfg);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["collections"][0], gen[0].full_name().as_str());

    // Unreachable Milvus and a missing bucket.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = cli();
    c.arg("--config").arg(&cfg).args([
        "--set",
        &format!("milvus.port={closed}"),
        "create",
        "-n",
        "x1",
    ]);
    let out = c.assert().code(6);
    assert!(
        String::from_utf8_lossy(&out.get_output().stderr).contains("Failed to connect to Milvus")
    );
    let mut c = cli();
    c.arg("--config").arg(&cfg).args([
        "--set",
        "minio.backupBucketName=no-such-backup-bucket",
        "create",
        "-n",
        "x2",
    ]);
    let out = c.assert().code(3);
    assert!(String::from_utf8_lossy(&out.get_output().stderr)
        .contains("bucket `no-such-backup-bucket` not found"));
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["delete", "--all", "--yes"])
        .assert()
        .success();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_backup_is_incomplete_and_can_be_deleted() {
    let gen = generated("A");
    let yaml = config_yaml("A", &unique("kill"));
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let name = unique("k");
    let colls: Vec<String> = gen.iter().map(|g| g.full_name()).collect();

    let bin = assert_cmd::cargo::cargo_bin("milvus-backup");
    let mut child = std::process::Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .args([
            "--set",
            "backup.parallelism.copydata=1",
            "-q",
            "create",
            "-n",
            &name,
            "-c",
            &colls.join(","),
            "-f",
        ])
        .env("no_proxy", "127.0.0.1,localhost")
        .spawn()
        .unwrap();
    let binlogs = format!("{name}/binlogs/");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ctx.backup_storage.has_objects(&binlogs).await.unwrap() {
        assert!(Instant::now() < deadline, "copy never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "create ended before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let rows = list_json(&cfg);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "incomplete");
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["get", "-n", &name])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("incomplete"));
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["restore", "-n", &name, "-s", "_never"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "backup `{name}` is incomplete"
        )));
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["delete", "-n", &name])
        .assert()
        .success();
    assert!(!ctx
        .backup_storage
        .has_objects(&layout::backup_dir(&name))
        .await
        .unwrap());
    let stats = create_json(&cfg, &["-n", &name, "-c", &colls[0]]);
    assert_eq!(stats["name"], name.as_str());
    assert_eq!(list_json(&cfg)[0]["state"], "complete");
}

/// Backs up two collections of `inst` (one with deletes) into the backup
/// storage that `sets` describe, and checks the result file by file.
async fn backup_to(inst: &'static str, sets: &[String]) {
    let gen = generated(inst);
    let yaml = config_yaml(inst, &unique("where"));
    let (_d, cfg) = config_file(&yaml);
    let with_deletes = gen.iter().filter(|g| g.deleted > 0).take(1);
    let picked: Vec<_> = with_deletes
        .chain(gen.iter().filter(|g| g.deleted == 0).take(1))
        .cloned()
        .collect();
    let names: Vec<String> = picked.iter().map(|g| g.full_name()).collect();
    let name = unique(&inst.to_lowercase());
    let mut args: Vec<&str> = vec!["-n", &name, "-c"];
    let joined = names.join(",");
    args.push(&joined);
    for s in sets {
        args.extend(["--set", s.as_str()]);
    }
    let cfg_with_sets = config(&yaml, sets);
    let before = flushed_rows(&cfg_with_sets, &picked).await;
    create_json(&cfg, &args);
    assert_backup_matches_source(&cfg_with_sets, &name, &picked, &before).await;
    let ctx = Context::open(&cfg_with_sets).unwrap();
    milvus_backup_core::ops::delete::delete_backup(&ctx.backup_storage, &name)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_into_milvus_own_bucket() {
    backup_to(
        "A",
        &[format!("minio.backupBucketName={}", var("MBT_A_BUCKET"))],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_into_another_s3_service() {
    let (host, port) = host_port(&var("MBT_S3B_ENDPOINT"));
    backup_to(
        "A",
        &[
            format!("minio.backupAddress={host}"),
            format!("minio.backupPort={port}"),
            format!("minio.backupAccessKeyID={}", var("MBT_S3B_ACCESS_KEY")),
            format!("minio.backupSecretAccessKey={}", var("MBT_S3B_SECRET_KEY")),
            "minio.crossStorage=true".to_string(),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_into_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    backup_to(
        "A",
        &[
            "minio.backupStorageType=local".into(),
            format!("minio.backupRootPath={}", dir.path().display()),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_from_local_storage_milvus() {
    let dir = tempfile::tempdir().unwrap();
    backup_to(
        "L",
        &[
            "minio.backupStorageType=local".into(),
            format!("minio.backupRootPath={}", dir.path().display()),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_from_milvus_2_2() {
    backup_to("V22", &[]).await;
}
