//! Many collections at once (issue 26): 24 small collections in 3
//! databases (`gen_data.py many`) backed up with
//! `backup.parallelism.backupCollection` 4, verified with the restore test
//! and restored into the other Milvus with `restoreCollection` 4. Every
//! collection's row count matches and the backup lists them sorted,
//! whatever order they finished in. A collection dropped while the create
//! runs (several collections in flight, Milvus slowed by a proxy) fails
//! the create naming it, leaves nothing complete, and `--resume` finishes
//! the backup once it is back.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use milvus_backup_core::model::layout;
use milvus_backup_core::repo::catalog;
use milvus_backup_core::Context;

use crate::env::fault::{Fault, FaultProxy};
use crate::env::{bin, config, config_file, config_yaml, gen_data, run, unique, var};

/// One generated collection: (database, name, rows).
type Made = (String, String, i64);

/// `gen_data.py many` on `inst`: `n` collections in `dbs` databases, each
/// with its own row count.
fn make(inst: &str, prefix: &str, n: usize, dbs: usize) -> Vec<Made> {
    let out = gen_data(
        inst,
        &[
            "many",
            "--prefix",
            prefix,
            "--collections",
            &n.to_string(),
            "--databases",
            &dbs.to_string(),
            "--rows",
            "200",
            "--vary",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut made: Vec<Made> = (v["collections"].as_array().unwrap().iter())
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_string();
            (s("db"), s("name"), c["rows"].as_i64().unwrap())
        })
        .collect();
    made.sort();
    made
}

fn drop_all(inst: &str, prefix: &str) {
    gen_data(inst, &["many-drop", "--prefix", prefix]);
}

fn databases(made: &[Made]) -> String {
    let mut dbs: Vec<&str> = made.iter().map(|(db, _, _)| db.as_str()).collect();
    dbs.dedup();
    dbs.join(",")
}

const SETS: [&str; 2] = [
    "backup.parallelism.backupCollection=4",
    "backup.parallelism.restoreCollection=4",
];

fn sets() -> Vec<String> {
    SETS.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn many_collections_are_backed_up_verified_and_restored_several_at_once() {
    let prefix = format!("{}_", unique("mc"));
    let made = make("A", &prefix, 24, 3);
    let root = unique("many");
    let (_da, cfg_a) = config_file(&config_yaml("A", &root));
    let (_db, cfg_b) = config_file(&config_yaml("B", &root));
    let name = unique("many");
    let want_rows: i64 = made.iter().map(|m| m.2).sum();

    let created = run(
        &cfg_a,
        &sets(),
        &["create", "-n", &name, "-d", &databases(&made)],
    );
    assert_eq!(created["collections"], 24, "{created}");
    assert_eq!(created["entities"].as_i64(), Some(want_rows), "{created}");
    // Listed sorted, as one at a time lists them.
    let ctx_a = Context::open(&config(&config_yaml("A", &root), &[])).unwrap();
    let info = catalog::get(&ctx_a.backup_storage, &name).await.unwrap();
    let listed: Vec<(String, String)> = (info.collection_backups.iter())
        .map(|c| (c.db_name.clone(), c.collection_name.clone()))
        .collect();
    let expected: Vec<(String, String)> = made.iter().map(|m| (m.0.clone(), m.1.clone())).collect();
    assert_eq!(listed, expected);

    // The restore test, several collections at once; every throwaway goes.
    let out = crate::env::cli()
        .arg("--json")
        .arg("--config")
        .arg(&cfg_a)
        .args(["--set", SETS[0]])
        .args(["verify", "-n", &name, "--restore-test"])
        .output()
        .unwrap();
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{reports}");
    let tested = reports[0]["restore_test"]["collections"]
        .as_array()
        .unwrap();
    assert_eq!(tested.len(), 24);
    for (t, m) in tested.iter().zip(&made) {
        assert_eq!(t["collection"], format!("{}.{}", m.0, m.1));
        assert_eq!(t["imported_rows"].as_i64(), Some(m.2), "{t}");
        assert_eq!(t["dropped"], true, "{t}");
    }

    // Into the other Milvus, four collections at a time.
    let restored = run(&cfg_b, &sets(), &["restore", "-n", &name]);
    assert_eq!(restored["collections"], 24, "{restored}");
    assert_eq!(restored["entities"].as_i64(), Some(want_rows), "{restored}");
    let ctx_b = Context::open(&config(&config_yaml("B", &root), &[])).unwrap();
    let b = ctx_b.milvus().await.unwrap();
    for (db, coll, rows) in &made {
        let n = b.row_count(db, coll).await.unwrap();
        assert_eq!(n, *rows, "{db}.{coll} in B");
    }

    run(&cfg_a, &[], &["delete", "-n", &name]);
    drop_all("A", &prefix);
    drop_all("B", &prefix);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collection_dropped_mid_run_names_itself_and_resume_finishes() {
    let prefix = format!("{}_", unique("md"));
    let made = make("A", &prefix, 12, 3);
    let yaml = config_yaml("A", &unique("many"));
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let name = unique("many");
    let named: Vec<String> = made.iter().map(|m| format!("{}.{}", m.0, m.1)).collect();
    let named = named.join(",");
    let args = ["create", "-n", &name, "-c", &named];
    // Milvus slowed down, so the flushes of 4 collections at once take a
    // while; the last collection in plan order is started last.
    let slow = FaultProxy::start(&format!("{}:{}", var("MBT_A_HOST"), var("MBT_A_PORT")));
    slow.set(Fault::Latency(Duration::from_millis(20)), u64::MAX);
    let mut cmd = Command::new(bin());
    cmd.arg("--config").arg(&cfg).args(["--set", SETS[0]]);
    cmd.args(["--set", &format!("milvus.port={}", slow.port)]);
    let child = cmd
        .args(args)
        .env("no_proxy", "127.0.0.1,localhost")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The journal is written when the run (past its plan) begins.
    let deadline = Instant::now() + Duration::from_secs(120);
    let journal = layout::create_journal(&name);
    while ctx.backup_storage.stat(&journal).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "the create never began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (db, victim, _) = made.last().unwrap().clone();
    let client = ctx.milvus().await.unwrap();
    client.drop_collection(&db, &victim).await.unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the create survived the drop: {stderr}"
    );
    let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(error[0].contains(&format!("{db}.{victim}")), "{stderr}");
    let rows = catalog::list(&ctx.backup_storage).await.unwrap();
    assert!(
        !rows
            .iter()
            .any(|r| r.name == name && r.state == catalog::BackupState::Complete),
        "a failed create looks complete"
    );

    // Back again: --resume finishes the backup with every collection.
    make("A", &prefix, 12, 3);
    let created = run(&cfg, &sets(), &[&args[..], &["--resume"]].concat());
    assert_eq!(created["collections"], 12, "{created}");
    let want: i64 = made.iter().map(|m| m.2).sum();
    assert_eq!(created["entities"].as_i64(), Some(want), "{created}");

    run(&cfg, &[], &["delete", "-n", &name]);
    drop_all("A", &prefix);
}
