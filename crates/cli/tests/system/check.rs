//! `milvus-backup check` against the real Milvus A and S3, and with each
//! kind of broken setting.

use predicates::prelude::*;

use crate::env::{cli, config_file, config_yaml, host_port, unique, var};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn check_passes_against_milvus_a_and_s3() {
    let (_d, cfg) = config_file(&config_yaml("A", &unique("check")));
    let out = cli()
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains(&format!("v{}", var("MBT_A_VERSION"))),
        "{stdout}"
    );
    for step in [
        "milvus ",
        "milvus storage",
        "backup storage",
        "write probe",
        "copy probe",
        "read back",
        "delete probe",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(step))
            .unwrap_or_else(|| panic!("no {step} line: {stdout}"));
        assert!(line.starts_with("OK"), "{line}");
    }
    assert!(!stdout.contains("FAIL"));
}

#[test]
fn check_leaves_nothing_that_lists_as_a_backup() {
    // A local backup directory keeps empty folders; they must not list.
    let dir = tempfile::tempdir().unwrap();
    let (_d, cfg) = config_file(&config_yaml("A", "unused"));
    let local = [
        "--set".to_string(),
        "minio.backupStorageType=local".to_string(),
        "--set".to_string(),
        format!("minio.backupRootPath={}", dir.path().display()),
    ];
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(&local)
        .arg("check")
        .assert()
        .success();
    let out = cli()
        .arg("--json")
        .arg("--config")
        .arg(&cfg)
        .args(&local)
        .arg("list")
        .assert()
        .success();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(rows.is_empty(), "{rows:?}");
}

#[test]
fn check_json_reports_every_step() {
    let (_d, cfg) = config_file(&config_yaml("A", &unique("checkjson")));
    let out = cli()
        .args(["--json", "--config"])
        .arg(&cfg)
        .arg("check")
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["milvus_version"]
        .as_str()
        .unwrap()
        .contains(&var("MBT_A_VERSION")));
    assert_eq!(v["steps"].as_array().unwrap().len(), 7);
}

/// Runs a failing check and returns its FAIL lines.
fn failing_check(sets: &[String]) -> Vec<String> {
    let (_d, cfg) = config_file(&config_yaml("A", &unique("checkfail")));
    let mut cmd = cli();
    cmd.arg("--config").arg(&cfg);
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    let out = cmd.arg("check").assert().failure();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let fails: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with("FAIL"))
        .map(str::to_string)
        .collect();
    assert!(!fails.is_empty(), "{stdout}");
    fails
}

#[test]
fn check_with_a_closed_milvus_port_fails_with_the_reason() {
    let port = free_port();
    let fails = failing_check(&[format!("milvus.port={port}")]);
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert!(
        fails[0].contains(&format!("Failed to connect to Milvus at 127.0.0.1:{port}")),
        "{fails:?}"
    );
    assert!(fails[0].contains("milvus.port"));
}

#[test]
fn check_with_a_missing_bucket_fails_with_the_reason() {
    let fails = failing_check(&["minio.bucketName=no-such-milvus-bucket".into()]);
    assert!(
        fails[0].contains("bucket `no-such-milvus-bucket` not found"),
        "{fails:?}"
    );
    assert!(fails[0].contains("minio.bucketName"), "{fails:?}");
}

#[test]
fn check_with_wrong_s3_credentials_fails_with_the_reason() {
    // S3AUTH checks credentials and knows none; point the backup side at it.
    let (host, port) = host_port(&var("MBT_S3AUTH_ENDPOINT"));
    let fails = failing_check(&[
        format!("minio.backupAddress={host}"),
        format!("minio.backupPort={port}"),
        "minio.backupAccessKeyID=AKIAWRONG".into(),
        "minio.backupSecretAccessKey=WrongSecret987".into(),
        "minio.crossStorage=true".into(),
    ]);
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert!(fails[0].contains("refused the credentials"), "{fails:?}");
    assert!(fails[0].contains("minio.backupAccessKeyID"), "{fails:?}");
    assert!(!fails[0].contains("WrongSecret987"));
}

#[test]
fn check_never_prints_secrets_even_at_debug_level() {
    let (_d, cfg) = config_file(&config_yaml("A", &unique("checksecret")));
    cli()
        .arg("--config")
        .arg(&cfg)
        .args([
            "--set",
            "milvus.password=PwSecret4711",
            "--set",
            "log.level=debug",
        ])
        .args(["--set", "minio.backupSecretAccessKey=BkSecret4711"])
        .arg("check")
        .env("RUST_LOG", "debug")
        .assert()
        .stdout(predicate::str::contains("PwSecret4711").not())
        .stderr(predicate::str::contains("PwSecret4711").not())
        .stderr(predicate::str::contains("BkSecret4711").not());
}
