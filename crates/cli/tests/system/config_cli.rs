//! `config show` and configuration errors through the binary.

use predicates::prelude::*;

use crate::env::{
    assert_same_collection, cli, config_file, drop_collection, host_port, pick, unique, var,
};

const V1: &str = r#"
milvus: { address: milvus.internal, port: 19530, user: root, password: "Pa55word!" }
minio:
  storageType: "minio"
  address: minio.internal
  port: 9000
  accessKeyID: minioadmin
  secretAccessKey: "S3cr3tKey!"
  bucketName: "a-bucket"
  rootPath: "files"
  backupBucketName: "a-bucket"
  backupRootPath: "backup"
"#;

#[test]
fn config_show_masks_secrets_and_applies_env_and_set() {
    let (_d, cfg) = config_file(V1);
    cli()
        .arg("--config")
        .arg(&cfg)
        .env("MINIO_ADDRESS", "from-env.internal")
        .env("MINIO_BACKUP_SECRET_KEY", "EnvSecretValue")
        .args([
            "--set",
            "milvus.address=from-set.internal",
            "config",
            "show",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("address: from-set.internal"))
        .stdout(predicate::str::contains("address: from-env.internal"))
        .stdout(predicate::str::contains("bucketName: a-bucket"))
        .stdout(predicate::str::contains("Pa55word!").not())
        .stdout(predicate::str::contains("S3cr3tKey!").not())
        .stdout(predicate::str::contains("EnvSecretValue").not())
        .stdout(predicate::str::contains("password: '****'"));
}

#[test]
fn invalid_values_stop_with_one_line() {
    for (set, key) in [
        ("milvus.port=abc", "milvus.port"),
        ("milvus.tlsMode=7", "milvus.tlsMode"),
        ("minio.storageType=ftp", "minio.storageType"),
    ] {
        let out = cli()
            .args(["--set", set, "config", "show"])
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(key) && stderr.contains("allowed"),
            "{stderr}"
        );
    }
}

#[test]
fn unknown_keys_warn_but_run() {
    let (_d, cfg) = config_file("milvus: { port: 19530, flavour: vanilla }\n");
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["config", "show"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "unknown config key `milvus.flavour`",
        ));
}

#[test]
fn server_fails_fast_when_its_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    cli()
        .args(["--set", "http.address=127.0.0.1", "server", "-p", &port])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!(
            "cannot listen on 127.0.0.1:{port}"
        )));
}

/// The Go tool's v2 `configs/backup.yaml` (its structure at head f81df44,
/// values for the test servers) runs `check`, `create` and `restore`, and
/// `config show --as v2` prints a file that reads back the same.
#[test]
fn the_go_tools_v2_config_runs_check_create_and_restore() {
    let g = &pick("A", &["all_types"])[0];
    let root = unique("v2cfg");
    let (s3_host, s3_port) = host_port(&var("MBT_S3_ENDPOINT"));
    let yaml = format!(
        r#"configVersion: v2
log:
  level: info
  console: true
  file:
    path: ""
server:
  debugMode: false
  swaggerBasePath: ""
milvus:
  user: "root"
  password: "Milvus"
  grpc:
    address: {host}
    port: {port}
    tlsMode: disabled
    caCertPath: ""
    serverName: ""
    mtlsCertPath: ""
    mtlsKeyPath: ""
  rest:
    endpoint: ""
  management:
    endpoint: {mgmt}
  storage:
    provider: "minio"
    address: {s3_host}
    port: {s3_port}
    region: "us-east-1"
    useSSL: false
    bucketName: "{bucket}"
    rootPath: "{mroot}"
    auth:
      type: static
      accessKeyID: {ak}
      secretAccessKey: {sk}
backup:
  storage:
    provider: "minio"
    bucketName: "{backup_bucket}"
    rootPath: "{root}"
  concurrency:
    collections: 4
    segments: 1024
  pauseGC: true
restore:
  concurrency:
    collections: 2
    importJobs: 768
  keepTempFiles: false
transfer:
  mode: auto
  concurrency: 128
  multipartCopyThresholdMiB: 500
"#,
        host = var("MBT_A_HOST"),
        port = var("MBT_A_PORT"),
        mgmt = var("MBT_A_MGMT"),
        bucket = var("MBT_A_BUCKET"),
        mroot = var("MBT_A_ROOT"),
        ak = var("MBT_S3_ACCESS_KEY"),
        sk = var("MBT_S3_SECRET_KEY"),
        backup_bucket = var("MBT_BACKUP_BUCKET"),
    );
    let (_d, cfg) = config_file(&yaml);
    let mb = |args: &[&str]| cli().arg("--config").arg(&cfg).args(args).assert();
    let checked = mb(&["check"]).success();
    let stdout = String::from_utf8_lossy(&checked.get_output().stdout).to_string();
    assert!(!stdout.contains("FAIL"), "{stdout}");

    let name = root.clone();
    mb(&["create", "-n", &name, "-c", &g.full_name()]).success();
    let suffix = format!("_v2{}", &root[root.len() - 4..]);
    mb(&[
        "restore",
        "-n",
        &name,
        "-c",
        &g.full_name(),
        "-s",
        &suffix,
        "--restore_index",
    ])
    .success();
    let target = format!("{}{suffix}", g.name);
    assert_same_collection("A", g, "A", &g.db, &target);
    drop_collection("A", &g.db, &target);

    // The v2 form of these settings reads back to the same settings.
    let shown = mb(&["config", "show", "--as", "v2"]).success();
    let v2 = String::from_utf8_lossy(&shown.get_output().stdout).to_string();
    assert!(v2.starts_with("configVersion: v2"), "{v2}");
    assert!(
        !v2.contains(&var("MBT_S3_SECRET_KEY")),
        "secret shown: {v2}"
    );
    let (_d2, again) = config_file(&v2);
    let v1_of = |path: &std::path::Path| {
        let out = cli()
            .arg("--json")
            .arg("--config")
            .arg(path)
            .args(["config", "show"])
            .assert()
            .success();
        serde_json::from_slice::<serde_json::Value>(&out.get_output().stdout).unwrap()
    };
    assert_eq!(v1_of(&again), v1_of(&cfg));
    mb(&["delete", "-n", &name]).success();
}

#[test]
fn built_in_defaults_are_said_on_stderr_and_a_found_file_is_read_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let keygen_stderr = || {
        let out = cli()
            .current_dir(dir.path())
            .arg("keygen")
            .assert()
            .success();
        String::from_utf8_lossy(&out.get_output().stderr).to_string()
    };
    let stderr = keygen_stderr();
    assert!(
        stderr.contains("using built-in defaults (no config file found in configs/backup.yaml, config.yaml, /etc/milvus-backup/config.yaml; name one with --config)"),
        "{stderr}"
    );
    std::fs::write(dir.path().join("config.yaml"), "milvus: { port: 19530 }\n").unwrap();
    let stderr = keygen_stderr();
    assert!(!stderr.contains("built-in defaults"), "{stderr}");
}

/// A config in the user guide's spelling gets its errors in that spelling:
/// `storage.minio.port`, not our `minio.backupPort`.
#[test]
fn errors_name_config_keys_as_the_users_file_spells_them() {
    let (_, s3_port) = crate::env::host_port(&crate::env::var("MBT_S3_ENDPOINT"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = crate::env::guide_yaml("A", &crate::env::unique("spelled")).replace(
        &format!("    port: {s3_port}\n"),
        &format!("    port: {closed}\n"),
    );
    let (_d, cfg) = config_file(&yaml);
    let out = cli()
        .arg("--config")
        .arg(&cfg)
        .arg("list")
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("storage.minio.address/storage.minio.port"),
        "{stderr}"
    );
    assert!(!stderr.contains("minio.backupPort"), "{stderr}");
}
