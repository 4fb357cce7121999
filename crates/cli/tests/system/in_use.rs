//! A backup in use is protected (issue 28): while a restore of it runs,
//! `delete` refuses it naming the restore, `delete --force` deletes it
//! with a warning, and the restore then says the backup was deleted while
//! in use (never that it is damaged).

use std::time::{Duration, Instant};

use milvus_backup_core::repo::lease;
use milvus_backup_core::Context;

use crate::edge_values::at;
use crate::env::{bin, config, config_file, config_yaml, drop_collection, pick, unique};

#[test]
fn delete_of_a_backup_under_restore_is_refused_unless_forced() {
    let g = pick("A", &["all_types"]).remove(0);
    let root = unique("inuse");
    let (_da, cfg_a) = config_file(&config_yaml("A", &root));
    let (_db, cfg_b) = config_file(&config_yaml("B", &root));
    let name = unique("inuse");
    at(&cfg_a)
        .args([
            "create",
            "-n",
            &name,
            "-c",
            &g.full_name(),
            "--format",
            "parquet",
        ])
        .assert()
        .success();
    let target = format!("riu_{}", &unique("x")[2..]);
    let rename = format!("{}:default.{target}", g.full_name());
    // assert_cmd runs to completion; the restore must run beside the deletes.
    let mut restore = std::process::Command::new(bin());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_") || k == "RUST_LOG") {
        restore.env_remove(k);
    }
    let mut child = restore
        .env("NO_COLOR", "1")
        .env("no_proxy", "127.0.0.1,localhost")
        .arg("--config")
        .arg(&cfg_b)
        .args(["restore", "-n", &name, "-c", &g.full_name(), "-r", &rename])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) for the restore's lease.
    let storage = Context::open(&config(&config_yaml("A", &root), &[]))
        .unwrap()
        .backup_storage
        .clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    while rt
        .block_on(lease::users(&storage, &name))
        .unwrap()
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no lease on {name} after 60 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the restore ended before it took a lease"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = at(&cfg_a).args(["delete", "-n", &name]).assert().failure();
    let err = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(
        err.contains(&format!("backup `{name}` is in use by a restore (process"))
            && err.contains("--force"),
        "{err}"
    );
    let forced = at(&cfg_a)
        .args(["delete", "-n", &name, "--force"])
        .assert()
        .success();
    let warned = String::from_utf8_lossy(&forced.get_output().stderr).into_owned();
    assert!(
        warned.contains(&format!("deleting backup `{name}` while a restore")),
        "{warned}"
    );
    let out = child.wait_with_output().unwrap();
    let restore_err = String::from_utf8_lossy(&out.stderr).into_owned();
    // It fails if it still needed a file (which file depends on timing),
    // and then says why; never that the backup is damaged.
    eprintln!(
        "restore after the forced delete: {} — {}",
        out.status,
        restore_err.lines().last().unwrap_or_default()
    );
    if !out.status.success() {
        assert!(
            restore_err.contains("deleted while in use"),
            "{restore_err}"
        );
    }
    assert!(!restore_err.contains("damaged"), "{restore_err}");
    let _ = std::panic::catch_unwind(|| drop_collection("B", "default", &target));
}
