//! `config show` and configuration errors through the binary.

use predicates::prelude::*;

use crate::env::{cli, config_file};

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
