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

/// A listener that accepts connections and answers each with `reply`
/// (`None`: never answers), for as long as the test runs.
fn fake_server(reply: Option<&'static [u8]>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            if let Some(reply) = reply {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(reply);
            } else {
                held.push(stream);
            }
        }
    });
    port
}

/// Runs `create` against Milvus on `port`; returns the exit code, the
/// seconds it took and stderr.
fn create_against(port: u16) -> (i32, f64, String) {
    let (_d, cfg) = config_file(&config_yaml("A", &unique("hung")));
    let start = std::time::Instant::now();
    let out = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["--set", &format!("milvus.port={port}")])
        .args(["create", "-n", &unique("hung"), "--collection", "c"])
        .timeout(std::time::Duration::from_secs(90))
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code().unwrap_or(-1), secs, stderr)
}

#[test]
fn a_milvus_that_never_answers_fails_within_15_s_with_exit_6() {
    let (code, secs, stderr) = create_against(fake_server(None));
    assert_eq!(code, 6, "{stderr}");
    assert!(secs <= 15.0, "took {secs:.1} s: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("did not answer"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("127.0.0.1:"), "{line}");
    assert!(line.contains("within 10 s"), "{line}");
    assert!(line.contains("milvus.connectTimeout"), "{line}");
}

#[test]
fn a_port_that_speaks_http_is_named_as_such() {
    let port = fake_server(Some(
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ));
    let (code, secs, stderr) = create_against(port);
    assert_eq!(code, 6, "{stderr}");
    assert!(secs <= 15.0, "took {secs:.1} s: {stderr}");
    assert!(
        stderr.contains(&format!(
            "127.0.0.1:{port} answers HTTP, not Milvus's gRPC: is this Milvus's gRPC port (19530)?"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("h2 protocol error"), "{stderr}");
}

#[test]
fn a_log_that_is_not_a_terminal_has_no_colour_codes() {
    let out = cli()
        .args(["--set", "milvus.port=1", "check"])
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}
