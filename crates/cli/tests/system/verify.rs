//! `verify` against real backups: damage caught and named, by size or by
//! checksum.

use milvus_backup::Context;
use predicates::prelude::*;

use crate::env::{cli, config, config_file, config_yaml, generated, unique};

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_missing_truncated_and_changed_files() {
    let g = generated("A")
        .iter()
        .find(|g| g.deleted > 0)
        .unwrap()
        .clone();
    let yaml = config_yaml("A", &unique("verify"));
    let (_d, cfg) = config_file(&yaml);
    let name = unique("v");
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["create", "-n", &name, "-c", &g.full_name()])
        .assert()
        .success();
    for mode in [&[][..], &["--deep"][..]] {
        cli()
            .arg("--config")
            .arg(&cfg)
            .args(["verify", "-n", &name])
            .args(mode)
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("OK   {name}")));
    }

    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let files = ctx
        .backup_storage
        .list(&format!("{name}/binlogs/"))
        .await
        .unwrap();
    assert!(files.len() >= 3);
    let rel = |k: &str| k[name.len() + 1..].to_string();
    // One byte flipped: same size, different content.
    let mut flipped = ctx.backup_storage.read(&files[0].key).await.unwrap();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    ctx.backup_storage
        .write(&files[0].key, flipped)
        .await
        .unwrap();
    let plain = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["verify", "-n", &name])
        .assert()
        .success();
    assert!(
        !String::from_utf8_lossy(&plain.get_output().stdout).contains("BAD"),
        "sizes still match"
    );
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["verify", "-n", &name, "--deep"])
        .assert()
        .code(9)
        .stdout(predicate::str::contains(format!(
            "BAD  {name}: {}: checksum",
            rel(&files[0].key)
        )));

    // One file truncated, one removed: plain verify names both.
    let data = ctx.backup_storage.read(&files[1].key).await.unwrap();
    ctx.backup_storage
        .write(&files[1].key, data[..data.len() / 2].to_vec())
        .await
        .unwrap();
    ctx.backup_storage.delete(&files[2].key).await.unwrap();
    let out = cli()
        .arg("--json")
        .arg("--config")
        .arg(&cfg)
        .args(["verify", "-n", &name])
        .assert()
        .code(9);
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let problems = reports[0]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    let find = |k: &str| {
        problems
            .iter()
            .find(|p| p["path"] == rel(k).as_str())
            .unwrap()["problem"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(find(&files[1].key).starts_with("size"), "{problems:?}");
    assert_eq!(find(&files[2].key), "missing");
    milvus_backup::catalog::delete(&ctx.backup_storage, &name)
        .await
        .unwrap();
}
