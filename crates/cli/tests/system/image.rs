//! The container image as the user guide runs it ("方式1：使用 Docker（推荐）"):
//! `scripts/image.sh` builds it with docker or podman (installing podman
//! from Debian when there is neither), the guide's `docker run` serves
//! `/api/v1/hello`, and a `POST /api/v1/backup/create` sent from outside
//! writes the backup into the host's `backup_data`. Skipped, saying so,
//! only when no engine can be installed.
//!
//! The image is built from the binary these tests run (debug info
//! stripped), or from `MILVUS_BACKUP_IMAGE_BIN` (a release binary, for the
//! size the README states).

use milvus_backup_testkit::curl::curl;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::env::{bin, pick, source_release_turn, unique, var};

/// What `scripts/image.sh` reports on its last line.
struct Built {
    engine: String,
    containers_conf: String,
    size_bytes: u64,
}

fn build_image(stage: &Path) -> Option<Built> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let binary = std::env::var("MILVUS_BACKUP_IMAGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| bin());
    let out = Command::new(repo.join("scripts/image.sh"))
        .env("MILVUS_BACKUP_BIN", &binary)
        .env("MILVUS_BACKUP_IMAGE_DIR", stage)
        .output()
        .expect("scripts/image.sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        eprintln!(
            "SKIPPED the_guides_docker_run_serves_the_api_and_backs_up_into_the_host_folder: \
             no container engine could be installed: {}",
            stderr.trim()
        );
        return None;
    }
    assert!(
        out.status.success(),
        "scripts/image.sh failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{}", stdout.trim());
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with("IMAGE "))
        .expect("scripts/image.sh prints an IMAGE line");
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    Some(Built {
        engine: field("engine"),
        containers_conf: field("containers_conf"),
        size_bytes: field("size_bytes").parse().expect("size_bytes is a number"),
    })
}

/// Removes the container when the test ends, however it ends.
struct Container<'a> {
    built: &'a Built,
    name: String,
}

impl Container<'_> {
    fn engine(&self) -> Command {
        let mut cmd = Command::new(&self.built.engine);
        if !self.built.containers_conf.is_empty() {
            cmd.env("CONTAINERS_CONF", &self.built.containers_conf);
        }
        cmd
    }

    fn logs(&self) -> String {
        self.engine()
            .args(["logs", &self.name])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.engine().args(["rm", "-f", &self.name]).output();
    }
}

/// The host's first address that is not loopback: a container on the
/// engine's bridge reaches the test Milvus there.
fn host_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
}

#[test]
fn the_guides_docker_run_serves_the_api_and_backs_up_into_the_host_folder() {
    let stage = tempfile::tempdir().unwrap();
    let Some(built) = build_image(stage.path()) else {
        return;
    };
    if std::env::var_os("MILVUS_BACKUP_IMAGE_BIN").is_some() {
        assert!(
            built.size_bytes <= 100 * 1024 * 1024,
            "the image is {} bytes, over 100 MiB",
            built.size_bytes
        );
    }

    // The guide's working folder: backup_data/ and config.yaml beside it.
    let work = tempfile::tempdir().unwrap();
    let backup_data = work.path().join("backup_data");
    std::fs::create_dir(&backup_data).unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    // On the bridge (the guide's -p) Milvus is reached at the host's
    // address; without one, the container shares the host's network.
    let (milvus_host, network) = match host_address() {
        Some(ip) => (ip, vec!["-p".to_string(), format!("{port}:8080")]),
        None => (
            var("MBT_A_HOST"),
            vec!["--network".to_string(), "host".to_string()],
        ),
    };
    let http = if network[0] == "--network" {
        format!("http:\n  port: {port}\n")
    } else {
        String::new()
    };
    std::fs::write(
        work.path().join("config.yaml"),
        format!(
            "milvus:\n  address: {milvus_host}\n  port: {}\n  username: \"\"\n  password: \"\"\n\n\
             storage:\n  storageType: local\n  local:\n    path: /backup\n{http}",
            var("MBT_A_PORT")
        ),
    )
    .unwrap();

    let container = Container {
        built: &built,
        name: format!("milvus-backup-{}", unique("img")),
    };
    let volume = |host: &Path, inside: &str| format!("{}:{inside}", host.display());
    let run = container
        .engine()
        .args(["run", "-d", "--name", &container.name])
        .args(&network)
        .arg("-v")
        .arg(volume(&backup_data, "/backup"))
        .arg("-v")
        .arg(volume(
            &work.path().join("config.yaml"),
            "/etc/milvus-backup/config.yaml",
        ))
        .arg("milvusdb/milvus-backup:latest")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{} run failed: {}",
        built.engine,
        String::from_utf8_lossy(&run.stderr)
    );

    let base = format!("http://127.0.0.1:{port}/api/v1");
    let deadline = Instant::now() + Duration::from_secs(60);
    let hello = loop {
        let (ok, body) = curl(&[&format!("{base}/hello")]);
        if ok || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        hello.contains("Hello, This is backup service"),
        "/api/v1/hello answered {hello}; container log:\n{}",
        container.logs()
    );

    let coll = &pick("A", &["all_types"])[0];
    let name = unique("img");
    let body = format!(
        r#"{{"backup_name": "{name}", "collections": ["{}"]}}"#,
        coll.full_name()
    );
    let (ok, answer) = {
        // A logical backup loads and releases the collection.
        let _turn = source_release_turn();
        curl(&[
            "-X",
            "POST",
            &format!("{base}/backup/create"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ])
    };
    assert!(ok, "create failed: {answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {answer}; log:\n{}", container.logs()));
    assert_eq!(answer["code"], 0, "{answer}");
    assert_eq!(answer["data"]["status"], "completed", "{answer}");
    assert_eq!(answer["data"]["total_entities"], coll.rows, "{answer}");

    // The backup is in the host's folder, complete, with its rows' files.
    let folder = backup_data.join(&name);
    assert!(
        folder.join("meta/full_meta.json").is_file(),
        "{} has no meta/full_meta.json",
        folder.display()
    );
    let data_files = walk(&folder.join("data"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert!(data_files > 0, "no Parquet file under {}", folder.display());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                found.extend(walk(&p));
            } else {
                found.push(p);
            }
        }
    }
    found
}
