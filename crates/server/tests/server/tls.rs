//! `milvus-backup server` over HTTPS (`http.tls.certFile`/`keyFile`, here
//! as `--tls-cert`/`--tls-key` and the environment variables) with a
//! self-signed certificate: reqwest (rustls), curl and the Python SDK work
//! when they trust it, plain HTTP to the TLS port is answered with one line
//! naming `https://`, and a key that does not fit stops the server before
//! it listens.

use milvus_backup_testkit::curl::curl;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use milvus_backup_testkit::{bin, config_file, config_yaml, unique, var};

use crate::http::free_port;

/// A self-signed certificate for `localhost` and 127.0.0.1: (cert, key) PEM.
fn self_signed() -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("rcgen makes a certificate");
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

/// The server child; killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server(cfg: &Path, port: u16, args: &[&str], envs: &[(&str, &Path)], log: &Path) -> Child {
    let mut cmd = Command::new(bin());
    cmd.env("NO_COLOR", "1")
        .env("no_proxy", "127.0.0.1,localhost")
        .arg("--config")
        .arg(cfg)
        .args(["--set", "http.address=127.0.0.1", "server", "-p"])
        .arg(port.to_string())
        .args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn https_serves_the_api_and_plain_http_is_told_to_use_https() {
    let (cert, key) = self_signed();
    let (dir, cfg) = config_file(&config_yaml("A", &unique("tls")));
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let log = dir.path().join("server.log");
    let port = free_port();
    // The certificate as a flag, the key from the environment.
    let _server = Running(server(
        &cfg,
        port,
        &["--tls-cert", cert_file.to_str().unwrap()],
        &[("MILVUS_BACKUP_TLS_KEY_FILE", &key_file)],
        &log,
    ));

    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let https = format!("https://localhost:{port}/api/v1");
    let start = Instant::now();
    let hello = loop {
        match client.get(format!("{https}/hello")).send().await {
            Ok(r) => break r,
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "no HTTPS answer ({e}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(hello.status(), 200);
    let body: serde_json::Value = hello.json().await.unwrap();
    assert_eq!(body["data"], "Hello, This is backup service", "{body}");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        log_text.contains(&format!("listening on https://127.0.0.1:{port}")),
        "{log_text}"
    );

    // curl, trusting the certificate; and refusing it without.
    let (ok, out) = curl(&[
        "--cacert",
        cert_file.to_str().unwrap(),
        &format!("{https}/list"),
    ]);
    assert!(ok, "curl over HTTPS failed: {out}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["code"], 0, "{list}");
    let (ok, out) = curl(&[&format!("{https}/hello")]);
    assert!(!ok, "curl trusted a self-signed certificate: {out}");

    // Plain HTTP to the TLS port: a 400 that says what to do.
    let (ok, out) = curl(&[
        "-w",
        "\nstatus %{http_code}",
        &format!("http://127.0.0.1:{port}/api/v1/hello"),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("use https:// instead of http://") && out.ends_with("status 400"),
        "{out}"
    );
    // The server still serves HTTPS after it.
    let again = client.get(format!("{https}/healthz")).send().await.unwrap();
    assert_eq!(again.status(), 200);

    // The Python SDK, trusting the certificate through SSL_CERT_FILE.
    let python = std::env::var("MBT_PY_SDK").unwrap_or_else(|_| {
        format!(
            "{}/.cache/milvus-backup-testenv/venv-sdk/bin/python",
            var("HOME")
        )
    });
    let sdk = Command::new(&python)
        .env("SSL_CERT_FILE", &cert_file)
        .env("no_proxy", "*")
        .args([
            "-c",
            "import sys; from milvus_backup import BackupClient\n\
             c = BackupClient(milvus_host=sys.argv[2], milvus_port=int(sys.argv[3]), backup_host='localhost', backup_port=int(sys.argv[1]), scheme='https')\n\
             print(c.base_url, len(c.list_backups()))",
            &port.to_string(),
            &var("MBT_A_HOST"),
            &var("MBT_A_PORT"),
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("{python} did not run ({e}) — scripts/testenv.sh install-sdk and pip install ./python into it (scripts/test.sh does)")
        });
    let sdk_out = String::from_utf8_lossy(&sdk.stdout);
    assert!(
        sdk.status.success(),
        "the SDK over HTTPS failed: {sdk_out}{}",
        String::from_utf8_lossy(&sdk.stderr)
    );
    assert!(
        sdk_out.starts_with(&format!("https://localhost:{port} ")),
        "{sdk_out}"
    );
}

#[test]
fn a_key_that_does_not_fit_the_certificate_stops_the_server_before_it_listens() {
    let (cert, _) = self_signed();
    let (_, other_key) = self_signed();
    let (dir, cfg) = config_file(&config_yaml("A", &unique("tls")));
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, other_key).unwrap();
    let log = dir.path().join("server.log");
    let port = free_port();
    let mut child = Running(server(
        &cfg,
        port,
        &[],
        &[
            ("MILVUS_BACKUP_TLS_CERT_FILE", &cert_file),
            ("MILVUS_BACKUP_TLS_KEY_FILE", &key_file),
        ],
        &log,
    ));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server kept running with a key that does not fit"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(2), "exit code for invalid input");
    let text = std::fs::read_to_string(&log).unwrap();
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains("does not fit the certificate in http.tls.certFile"),
        "{text}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
