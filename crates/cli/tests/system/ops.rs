//! The operation model end to end: `--dry-run` plans change nothing, a
//! damaged meta file is damage (exit 9), and a storage that fails is an
//! outage (exit 6), never damage.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use milvus_backup_core::model::layout;
use milvus_backup_core::Context;

use crate::env::{cli, config, config_file, config_yaml, generated, run, unique};

fn json_of(out: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_runs_list_the_work_and_change_nothing() {
    let g = generated("A")
        .iter()
        .find(|g| g.deleted > 0)
        .unwrap()
        .clone();
    let yaml = config_yaml("A", &unique("dry"));
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let name = unique("dry");

    let plan = json_of(
        &cli()
            .arg("--json")
            .arg("--config")
            .arg(&cfg)
            .args(["create", "-n", &name, "-c", &g.full_name(), "--dry-run"])
            .assert()
            .success(),
    );
    assert_eq!(plan["dry_run"], true);
    let p = &plan["plan"];
    assert_eq!(p["name"], name.as_str());
    assert_eq!(p["collections"][0]["collection"], g.full_name().as_str());
    assert!(p["totals"]["segments"].as_u64().unwrap() >= 2, "{p}");
    let files = p["collections"][0]["files"].as_array().unwrap();
    assert!(!files.is_empty());
    assert_eq!(p["totals"]["files"].as_u64().unwrap(), files.len() as u64);
    assert!(p["totals"]["bytes"].as_u64().unwrap() > 0);
    assert!(
        !ctx.backup_storage
            .has_objects(&layout::backup_dir(&name))
            .await
            .unwrap(),
        "a dry run wrote into backup storage"
    );
    let text = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["create", "-n", &name, "-c", &g.full_name(), "--dry-run"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&text.get_output().stdout).to_string();
    assert!(
        text.contains("nothing was written") && text.contains(&g.full_name()),
        "{text}"
    );
    assert!(!ctx.backup_storage.has_objects("").await.unwrap());

    // A real backup, then restore plans.
    run(&cfg, &[], &["create", "-n", &name, "-c", &g.full_name()]);
    let client = ctx.milvus().await.unwrap();
    let suffix = format!("_d{}", &name[name.len() - 5..]);
    let plan = json_of(
        &cli()
            .arg("--json")
            .arg("--config")
            .arg(&cfg)
            .args(["restore", "-n", &name, "-s", &suffix, "--dry-run"])
            .assert()
            .success(),
    );
    let task = &plan["plan"]["tasks"][0];
    assert_eq!(
        task["target"]["name"],
        format!("{}{suffix}", g.name).as_str()
    );
    assert_eq!(task["exists"], false);
    assert!(task.get("refused").is_none(), "{task}");
    assert!(!task["imports"].as_array().unwrap().is_empty());
    // Without a suffix the target exists: the plan says it would be refused,
    // and the dry run fails as the restore would (exit 4).
    let refused = cli()
        .arg("--json")
        .arg("--config")
        .arg(&cfg)
        .args(["restore", "-n", &name, "--dry-run"])
        .assert()
        .code(4);
    // The plan, then the error object: two JSON values on stdout.
    let values: Vec<serde_json::Value> =
        serde_json::Deserializer::from_slice(&refused.get_output().stdout)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
    let plan = &values[0];
    assert_eq!(values[1]["error"]["kind"], "already_exists");
    assert_eq!(plan["plan"]["tasks"][0]["exists"], true);
    assert_eq!(
        plan["plan"]["tasks"][0]["refused"]["kind"],
        "already_exists"
    );
    // Other tests share the server: look only at what these plans name.
    let after = client.list_collections(&g.db).await.unwrap();
    assert!(
        after.contains(&g.name),
        "a restore dry run dropped {}",
        g.name
    );
    assert!(
        !after.iter().any(|c| c.ends_with(&suffix)),
        "a restore dry run created a collection: {after:?}"
    );
    let staged = ctx.milvus_storage.list(layout::STAGING_ROOT).await.unwrap();
    assert!(staged.iter().all(|o| !o.key.contains(&name)), "{staged:?}");
    milvus_backup_core::ops::delete::delete_backup(&ctx.backup_storage, &name)
        .await
        .unwrap();
}

/// Cuts a stored object in half, so it is no longer JSON.
async fn truncate(ctx: &Context, key: &str) {
    let bytes = ctx.backup_storage.read(key).await.unwrap();
    ctx.backup_storage
        .write(key, bytes[..bytes.len() / 2].to_vec())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_full_meta_or_manifest_is_damage_exit_9() {
    let g = generated("A")[0].clone();
    let yaml = config_yaml("A", &unique("cut"));
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    for file in [layout::FULL_META, layout::MANIFEST] {
        let name = unique("cut");
        run(&cfg, &[], &["create", "-n", &name, "-c", &g.full_name()]);
        truncate(&ctx, &layout::backup_meta_file(&name, file)).await;
        let out = cli()
            .arg("--config")
            .arg(&cfg)
            .args(["verify", "-n", &name])
            .assert()
            .code(9);
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(
            stdout.contains(&format!("BAD  {name}: meta/{file}"))
                && stdout.contains("not a valid backup meta file"),
            "{file}: {stdout}"
        );
        let out = cli()
            .arg("--config")
            .arg(&cfg)
            .args(["restore", "-n", &name, "-s", "_cut"])
            .assert()
            .code(9);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            stderr.contains(file)
                && stderr.contains("damaged")
                && stderr.contains("restore from another backup"),
            "{file}: {stderr}"
        );
        milvus_backup_core::ops::delete::delete_backup(&ctx.backup_storage, &name)
            .await
            .unwrap();
    }
}

/// An HTTP server on loopback that answers 503 to every request, for at
/// most `limit`; stops when dropped.
struct Unavailable {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Unavailable {
    fn start(limit: Duration) -> Unavailable {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            while !flag.load(Ordering::SeqCst) && started.elapsed() < limit {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = [0u8; 8192];
                        let _ = conn.read(&mut buf);
                        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code><Message>down for the test</Message></Error>";
                        let _ = write!(
                            conn,
                            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Unavailable { port, stop }
    }
}

impl Drop for Unavailable {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_storage_answering_503_is_an_outage_not_damage() {
    let down = Unavailable::start(Duration::from_secs(240));
    let yaml = config_yaml("A", &unique("down"));
    let (_d, cfg) = config_file(&yaml);
    let sets = [
        "minio.backupAddress=127.0.0.1".to_string(),
        format!("minio.backupPort={}", down.port),
        "minio.backupBucketName=milvus-backup".to_string(),
    ];
    for args in [
        &["list"][..],
        &["get", "-n", "nightly"][..],
        &["verify", "-n", "nightly"][..],
        &["verify", "--all"][..],
        &["restore", "-n", "nightly", "-s", "_x"][..],
    ] {
        let mut c = cli();
        c.arg("--config").arg(&cfg);
        for s in &sets {
            c.arg("--set").arg(s);
        }
        let out = c.args(args).assert().failure();
        let code = out.get_output().status.code().unwrap();
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert_eq!(code, 6, "{args:?}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            line.contains("storage") && line.contains("503") && line.contains("unavailable"),
            "{args:?} does not name the storage outage: {stderr}"
        );
        assert!(!line.contains("damaged"), "{args:?}: {line}");
    }
}
