//! `backup_strategy` end to end against Milvus A, the S3 service (primary)
//! and the second S3 service S3B (secondary), with a webhook receiver in
//! the test: scheduled and run-now runs as tasks, names, no overlap,
//! retention per policy with a kept incremental's base rehomed, copies in
//! the secondary checked deep, a corrupted binlog flagged by the
//! verification run and alerted, a missing collection alerted, an RPO
//! breach, one scheduler per root, a restore from the secondary after the
//! primary's copy is gone, and the status page in headless Chromium.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use milvus_backup_core::Context;
use serde_json::Value;

use milvus_backup_testkit::{
    assert_same_collection, bin, config, config_file, config_yaml, host_port, unique, var,
};

use crate::http::{pick, Server};

type Hooks = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on a free port: every POSTed JSON body is kept.
async fn receiver() -> (String, Hooks) {
    let got: Hooks = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    keep.lock().unwrap().push(v);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

fn strategy_yaml(collections: &str, root: &str, hook: &str, rpo: &str, extra: &str) -> String {
    let (h, p) = host_port(&var("MBT_S3B_ENDPOINT"));
    format!(
        r#"
backup_strategy:
  full_backup:        {{ schedule: "0 0 1 1 *", retention: 1 }}
  incremental_backup: {{ schedule: "* * * * *", retention: 2 }}
  storage:
    secondary:
      uri: s3://{bucket}/{root}_sec
      endpoint: "http://{h}:{p}"
      accessKeyID: {ak}
      secretAccessKey: {sk}
      region: {region}
  verification: {{ enabled: true, schedule: "0 0 1 1 *" }}
  collections: [{collections}]
  rpo: {rpo}
  catchup: 1h
  lease: 6s
  alerts: {{ webhook: "{hook}" }}
{extra}"#,
        bucket = var("MBT_BACKUP_BUCKET"),
        ak = var("MBT_S3B_ACCESS_KEY"),
        sk = var("MBT_S3B_SECRET_KEY"),
        region = var("MBT_S3B_REGION"),
    )
}

/// Runs a policy now on `s` and waits for its task; the task record.
async fn run_now(s: &Server, policy: &str) -> Value {
    let start = Instant::now();
    let id = loop {
        let (code, body) = s
            .post(&format!("/schedule/run_now?policy={policy}"), Value::Null)
            .await;
        if code == 200 {
            break body["data"]["id"].as_str().unwrap().to_string();
        }
        // The scheduled run of the same policy may be going: runs never overlap.
        assert_eq!(code, 409, "{body}");
        assert!(start.elapsed() < Duration::from_secs(120), "{body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    wait_task(s, &id).await
}

async fn wait_task(s: &Server, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let (_, body) = s.get("/tasks").await;
        let task = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("task {id} not in /tasks: {body}"));
        if task["state_code"].as_i64().unwrap() >= 2 {
            return task;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "task {id} did not end: {task}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn cli(cfg: &std::path::Path, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(bin())
        .env("no_proxy", "127.0.0.1,localhost")
        .arg("--config")
        .arg(cfg)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.success(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn names_of(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "complete")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

fn hooks_of(h: &Hooks, event: &str) -> Vec<Value> {
    h.lock()
        .unwrap()
        .iter()
        .filter(|v| v["event"] == event)
        .cloned()
        .collect()
}

async fn wait_hook(h: &Hooks, event: &str, about: &str, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        if let Some(v) = hooks_of(h, event)
            .into_iter()
            .find(|v| v["text"].as_str().unwrap_or("").contains(about))
        {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "no {event} alert in {limit:?}; got {:?}",
            h.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Chromium from Debian's packages, installed when missing.
fn chromium() -> String {
    for b in ["chromium", "chromium-browser"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .unwrap()
            .status
            .success()
        {
            return b.to_string();
        }
    }
    let ok = Command::new("sh")
        .args(["-c", "(apt-get install -y --no-install-recommends chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)) >/tmp/sc_chromium_install.log 2>&1"])
        .status()
        .unwrap()
        .success();
    assert!(
        ok,
        "installing chromium failed: see /tmp/sc_chromium_install.log"
    );
    "chromium".into()
}

fn browse(url: &str, screenshot: &std::path::Path) -> String {
    let b = chromium();
    // One headless run; its stdout, after asserting it succeeded.
    let run = |what: &str, args: &[&str]| {
        milvus_backup_testkit::stdout_of(
            Command::new(&b)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                ])
                .args(args)
                .arg(url),
            &format!("chromium {what}"),
        )
    };
    let shot = format!("--screenshot={}", screenshot.display());
    run("screenshot", &[&shot, "--window-size=1280,1000"]);
    run("dump-dom", &["--dump-dom"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sc_scheduled_backups_replicate_verify_alert_and_show_status() {
    let test_start = Instant::now();
    let g = pick(&["varchar_pk"]).remove(0);
    let root = unique("sc_root");
    let (hook, hooks) = receiver().await;
    let yaml = config_yaml("A", &root) + &strategy_yaml(&g.full_name(), &root, &hook, "1h", "");
    // A strategy naming a missing collection, on a root of its own, with a
    // short RPO: its scheduled runs fail and its RPO is breached.
    let missing_root = unique("sc_missing");
    let missing = config_yaml("A", &missing_root)
        + &strategy_yaml(
            "default.sc_no_such_collection",
            &missing_root,
            &hook,
            "30s",
            "",
        )
        .replace("\"0 0 1 1 *\", retention: 1", "\"* * * * *\", retention: 1");
    let m = Server::start(&missing, &[], &[]).await;

    // A bad strategy stops the server with one line naming the key.
    let (_d, bad_cfg) = config_file(
        &(config_yaml("A", &root)
            + "backup_strategy:\n  full_backup: { schedule: \"61 * * * *\" }\n"),
    );
    let bad = Command::new(bin())
        .arg("--config")
        .arg(&bad_cfg)
        .args(["server", "-p", "1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("backup_strategy.full_backup.schedule"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Two servers on one root: exactly one schedules.
    let s1 = Server::start(&yaml, &[], &[]).await;
    let s2 = Server::start(&yaml, &[], &[]).await;
    let start = Instant::now();
    let (leader, follower) = loop {
        let (_, a) = s1.get("/schedule").await;
        let (_, b) = s2.get("/schedule").await;
        let (la, lb) = (a["data"]["leader"] == true, b["data"]["leader"] == true);
        assert!(!(la && lb), "both servers schedule: {a} {b}");
        if la {
            break (&s1, &s2);
        }
        if lb {
            break (&s2, &s1);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no server took the lease: {a} {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let (_, st) = follower.get("/schedule").await;
    assert_eq!(st["data"]["leader"], false);
    let (code, body) = follower
        .post("/schedule/run_now?policy=nightly", Value::Null)
        .await;
    assert_eq!(code, 400, "{body}");

    // Full, then incrementals: as tasks, named <policy>_<YYYYMMDD_HHMMSS>.
    let f1 = run_now(leader, "full").await;
    assert_eq!(f1["state"], "success", "{f1}");
    let f1_name = f1["backup_name"].as_str().unwrap().to_string();
    assert!(
        milvus_backup_core::schedule::PolicyKind::Full.made(&f1_name),
        "{f1_name}"
    );
    let i1 = run_now(leader, "incremental").await;
    assert_eq!(i1["state"], "success", "{i1}");
    // No overlap: a second run of a policy while one goes is refused.
    let i2_id = loop {
        let (code, body) = leader
            .post("/schedule/run_now?policy=incremental", Value::Null)
            .await;
        if code == 200 {
            break body["data"]["id"].as_str().unwrap().to_string();
        }
        assert_eq!(code, 409, "{body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (code2, body2) = leader
        .post("/schedule/run_now?policy=incremental", Value::Null)
        .await;
    assert_eq!(code2, 409, "{body2}");
    assert!(
        body2["msg"].as_str().unwrap().contains("never overlap"),
        "{body2}"
    );
    let i2 = wait_task(leader, &i2_id).await;
    assert_eq!(i2["state"], "success", "{i2}");
    // A scheduled (cron) run: `* * * * *` fires within a minute.
    let sched = leader
        .poll_every(
            "/schedule",
            Duration::from_secs(90),
            Duration::from_secs(1),
            |d| {
                d["policies"].as_array().unwrap().iter().any(|p| {
                    p["policy"] == "incremental"
                        && p["last_run"]["trigger"] == "schedule"
                        && p["last_run"]["outcome"] != "running"
                })
            },
        )
        .await;
    let inc = sched["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == "incremental")
        .unwrap()
        .clone();
    assert_eq!(inc["last_run"]["outcome"], "success", "{inc}");
    assert!(inc["next_run"].as_str().is_some(), "{inc}");
    // Phase 2: the cron schedules stop (both servers go); a server whose
    // schedules do not fire now runs the rest by hand, deterministically.
    drop(s1);
    drop(s2);
    let quiet_yaml = yaml.replace("\"* * * * *\", retention: 2", "\"0 0 1 1 *\", retention: 2");
    let s3 = Server::start(&quiet_yaml, &[], &[]).await;
    let leader = &s3;
    leader
        .poll("/schedule", Duration::from_secs(30), |d| {
            d["leader"] == true
        })
        .await;
    let f2 = run_now(leader, "full").await;
    assert_eq!(f2["state"], "success", "{f2}");
    let f2_name = f2["backup_name"].as_str().unwrap().to_string();
    let i3 = run_now(leader, "incremental").await;
    assert_eq!(i3["state"], "success", "{i3}");

    // Retention per policy: one full, two incrementals, on both sides.
    let (_d1, cfg) = config_file(&yaml);
    let (ok, primary, e) = cli(&cfg, &["list"]);
    assert!(ok, "{e}");
    let names = names_of(&primary);
    let fulls: Vec<&String> = names.iter().filter(|n| n.starts_with("full_")).collect();
    let incs: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("incremental_"))
        .collect();
    assert_eq!(fulls, vec![&f2_name], "{names:?}");
    assert_eq!(incs.len(), 2, "{names:?}");
    assert!(!names.contains(&f1_name), "{names:?}");
    let (ok, secondary, e) = cli(&cfg, &["--storage", "secondary", "list"]);
    assert!(ok, "{e}");
    let mut sec_names = names_of(&secondary);
    sec_names.sort();
    let mut prim_sorted = names.clone();
    prim_sorted.sort();
    assert_eq!(
        sec_names, prim_sorted,
        "secondary and primary hold the same backups"
    );
    // The kept incrementals whose base was trimmed still verify deep, both sides.
    for n in &incs {
        let (ok, v, e) = cli(&cfg, &["verify", "-n", n, "--deep"]);
        assert!(ok, "primary {n}: {v} {e}");
        let (ok, v, e) = cli(
            &cfg,
            &["--storage", "secondary", "verify", "-n", n, "--deep"],
        );
        assert!(ok, "secondary {n}: {v} {e}");
    }
    let newest = incs.iter().max().unwrap().to_string();

    // A corrupted binlog: the verification run flags it and alerts.
    let primary_cfg = config(&yaml, &[]);
    let ctx = Context::open(&primary_cfg).unwrap();
    let manifest = milvus_backup_core::repo::catalog::manifest(&ctx.backup_storage, &newest)
        .await
        .unwrap()
        .unwrap();
    // Nothing changed since its base: it shares every file; corrupt one where it is kept.
    let file = &manifest.files[0];
    let key = format!("{}/{}", file.holder(&newest), file.path);
    ctx.backup_storage
        .write(&key, b"corrupted by the test".to_vec())
        .await
        .unwrap();
    let v = run_now(leader, "verification").await;
    assert_eq!(v["state"], "success", "{v}");
    wait_hook(&hooks, "backup_corrupt", &newest, Duration::from_secs(30)).await;
    let (_, listed, _) = cli(&cfg, &["list"]);
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == newest.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["verified_ok"], false, "{row}");
    // The corrupted file is kept in the folder of `holder`; the older
    // incremental keeps its own (rehomed from the trimmed first full).
    let row_of = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    let holder = file.holder(&newest).to_string();
    assert_eq!(row_of(&holder)["verified_ok"], false);
    let older = incs.iter().find(|n| **n != &newest).unwrap().to_string();
    assert_eq!(row_of(&older)["verified_ok"], true, "{}", row_of(&older));
    let (_, got, _) = cli(&cfg, &["get", "-n", &newest]);
    assert_eq!(got["verified_ok"], false);

    // The status page, in headless Chromium.
    let (_, h) = leader.get("/health").await;
    assert_eq!(h["data"]["status"], "critical", "{h}");
    let shot = std::env::temp_dir().join(format!("{root}.png"));
    let dom = browse(&format!("{}/", leader.base), &shot);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "screenshot too small"
    );
    assert!(dom.contains("id=\"overall\""), "{dom}");
    assert!(dom.contains("data-status=\"critical\""), "{dom}");
    let row_marker = format!("data-collection=\"{}\" data-status=\"red\"", g.full_name());
    assert!(dom.contains(&row_marker), "{dom}");
    assert!(dom.contains("DAMAGED"), "{dom}");
    assert!(
        dom.contains("data-policy=\"incremental\"") && dom.contains("data-policy=\"verification\""),
        "{dom}"
    );
    assert!(
        dom.contains("id=\"secondary\" data-lag=\"0\" data-missing=\"0\""),
        "{dom}"
    );
    eprintln!("sc: status page screenshot at {}", shot.display());

    // Disaster recovery: the primary's copy is gone; restore from the secondary.
    let (ok, _, e) = cli(&cfg, &["delete", "-n", &newest]);
    assert!(ok, "{e}");
    let target = format!("{}_scr", g.name);
    // A failed earlier run may have left it.
    let _ = ctx
        .milvus()
        .await
        .unwrap()
        .drop_collection(&g.db, &target)
        .await;
    let (ok, r, e) = cli(
        &cfg,
        &[
            "--storage",
            "secondary",
            "restore",
            "-n",
            &newest,
            "-c",
            &g.full_name(),
            "-s",
            "_scr",
            "--restore_index",
        ],
    );
    assert!(ok, "{r} {e}");
    assert_same_collection("A", &g, "A", &g.db, &target);
    ctx.milvus()
        .await
        .unwrap()
        .drop_collection(&g.db, &target)
        .await
        .unwrap();

    // The missing collection's server alerted a failed backup and an RPO breach.
    wait_hook(
        &hooks,
        "backup_failed",
        "sc_no_such_collection",
        Duration::from_secs(90),
    )
    .await;
    wait_hook(
        &hooks,
        "rpo_breach",
        "No backup in last 30 seconds!",
        Duration::from_secs(30),
    )
    .await;
    // Backed up within its RPO: no breach alerted for the real collection.
    assert!(
        !hooks_of(&hooks, "rpo_breach")
            .iter()
            .any(|v| v["text"].as_str().unwrap().contains(&g.full_name())),
        "{:?}",
        hooks.lock().unwrap()
    );
    let (_, mh) = m.get("/health").await;
    assert!(
        !mh["data"]["failed_runs"].as_array().unwrap().is_empty(),
        "{mh}"
    );
    for v in hooks.lock().unwrap().iter() {
        let text = v.to_string();
        assert!(
            !text.contains(&var("MBT_S3_SECRET_KEY")) && !text.contains(&var("MBT_S3B_SECRET_KEY")),
            "{text}"
        );
    }

    // After the schedules stop, a short RPO is breached.
    drop(s3);
    drop(m);
    let short = config_yaml("A", &root) + &strategy_yaml(&g.full_name(), &root, &hook, "5s", "");
    let (_d2, short_cfg) = config_file(&short);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (ok, status, _) = cli(&short_cfg, &["status"]);
    assert!(!ok, "{status}");
    let c = status["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["collection"] == g.full_name().as_str())
        .unwrap()
        .clone();
    assert_eq!(c["message"], "No backup in last 5 seconds!", "{c}");
    assert_eq!(c["rpo_ok"], false);
    let (ok, st, e) = cli(&cfg, &["schedule", "status"]);
    assert!(ok, "{e}");
    let incp = st["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == "incremental")
        .unwrap()
        .clone();
    assert!(incp["runs"].as_u64().unwrap() >= 3, "{incp}");

    // Exactly one scheduler acted: at most one scheduled run per minute.
    let records = ctx
        .backup_storage
        .list(".milvus_backup_tasks/")
        .await
        .unwrap();
    let mut per_minute: BTreeMap<String, u32> = BTreeMap::new();
    for o in records {
        let r: Value =
            serde_json::from_slice(&ctx.backup_storage.read(&o.key).await.unwrap()).unwrap();
        if let Some(lag) = r["result"]["secondary"]["copy_lag_s"].as_f64() {
            eprintln!(
                "sc: {} ({}): backup end to secondary copy {lag:.2} s, {} file(s) copied",
                r["backup_name"],
                r["options"]["trigger"],
                r["result"]["secondary"]["copied"][0]["copied_files"]
            );
        }
        if r["options"]["trigger"] == "schedule" {
            let name = r["backup_name"].as_str().unwrap();
            *per_minute
                .entry(name[..name.len() - 2].to_string())
                .or_default() += 1;
        }
    }
    assert!(per_minute.values().all(|n| *n == 1), "{per_minute:?}");
    eprintln!(
        "sc: end to end in {:.0} s",
        test_start.elapsed().as_secs_f64()
    );

    // Clean up both roots on both services.
    for r in [&root, &missing_root] {
        let c = config(
            &(config_yaml("A", r) + &strategy_yaml("x", r, &hook, "1h", "")),
            &[],
        );
        let p = Context::open(&c).unwrap();
        let _ = p.backup_storage.delete_prefix("").await;
        milvus_backup_core::repo::catalog_index::discard(&p.backup_storage).await;
        let sec = milvus_backup_core::schedule::Strategy::from_config(&c)
            .unwrap()
            .unwrap();
        let s = Context::open(&sec.secondary_config(&c).unwrap()).unwrap();
        let _ = s.backup_storage.delete_prefix("").await;
        milvus_backup_core::repo::catalog_index::discard(&s.backup_storage).await;
    }
}
