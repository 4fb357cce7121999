//! Resume and fault injection: `create` and `restore` killed with SIGKILL
//! at several moments and finished with `--resume`, and both run through
//! our fault-injecting proxy (`milvus_backup_testkit::fault`) in front of
//! S3 and of Milvus. Each fault either is survived by bounded retries or
//! fails cleanly (one error line, nothing complete-looking) and `--resume`
//! then finishes; no row or file may be lost. The figures are printed
//! (`--nocapture`).

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use milvus_backup_core::model::layout;
use milvus_backup_core::Context;

use crate::env::fault::{Fault, FaultProxy};
use crate::env::row_restore::restore_journals;
use crate::env::{
    bin, cli, config, config_file, config_yaml, dump, host_port, pick, run, unique, var, Generated,
};

/// Starts the CLI without waiting for it.
pub(crate) fn spawn(cfg: &Path, sets: &[String], args: &[&str]) -> Child {
    let mut cmd = Command::new(bin());
    cmd.arg("-q").arg("--config").arg(cfg);
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    cmd.args(args)
        .env("no_proxy", "127.0.0.1,localhost")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls `ready` (bounded) while `child` runs, then kills it with SIGKILL.
pub(crate) async fn kill_when<F, Fut>(child: &mut Child, what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(180);
    while !ready().await {
        assert!(Instant::now() < deadline, "{what}: never reached");
        assert!(
            child.try_wait().unwrap().is_none(),
            "{what}: the run ended before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Files the journal of a running create of `name` lists.
async fn journaled_files(ctx: &Context, name: &str) -> Option<usize> {
    let bytes = ctx
        .backup_storage
        .read(&layout::create_journal(name))
        .await
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(v["files"].as_array()?.len())
}

/// (created and ready, segments imported) per the journal of a running
/// restore of `backup`.
async fn restore_progress(ctx: &Context, backup: &str) -> (bool, usize) {
    let mut out = (false, 0);
    let (storage, root) = (&ctx.milvus_storage, layout::STAGING_ROOT);
    for c in restore_journals(storage, root, backup).await {
        out.0 |= c["ready"].as_bool().unwrap_or(false);
        out.1 += c["segments"]
            .as_object()
            .map(|s| s.values().filter(|s| s["rows"].is_i64()).count())
            .unwrap_or(0);
    }
    out
}

/// The manifest's files of a backup, as (path, size, sha256).
async fn manifest_files(ctx: &Context, name: &str) -> Vec<(String, u64, String)> {
    milvus_backup_core::repo::catalog::manifest(&ctx.backup_storage, name)
        .await
        .unwrap()
        .unwrap()
        .files
        .into_iter()
        .map(|f| (f.path, f.size, f.sha256))
        .collect()
}

fn state_of(cfg: &Path, name: &str) -> Option<String> {
    run(cfg, &[], &["list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .map(|b| b["state"].as_str().unwrap().to_string())
}

fn verify_deep(cfg: &Path, name: &str) -> bool {
    cli()
        .arg("--config")
        .arg(cfg)
        .args(["verify", "-n", name, "--deep"])
        .output()
        .unwrap()
        .status
        .success()
}

pub(crate) fn delete(cfg: &Path, name: &str) {
    cli()
        .arg("--config")
        .arg(cfg)
        .args(["delete", "-n", name, "--yes"])
        .assert()
        .success();
}

/// `count(*)` of a collection (loaded first): a segment imported twice would count
/// its rows twice (a query by key would show them once).
pub(crate) async fn count_rows(ctx: &Context, db: &str, name: &str) -> i64 {
    use milvus_backup_core::milvus::proto::schema::{field_data::Field, scalar_field::Data};
    let client = ctx.milvus().await.unwrap();
    client.load_collection(db, name).await.unwrap();
    let cols = client
        .query(db, name, "", &["count(*)".to_string()], None)
        .await
        .unwrap();
    match cols[0].field.as_ref().unwrap() {
        Field::Scalars(s) => match s.data.as_ref().unwrap() {
            Data::LongData(d) => d.data[0],
            other => panic!("count(*) answered {other:?}"),
        },
        other => panic!("count(*) answered {other:?}"),
    }
}

/// Drops a restored collection (inside the test's runtime).
pub(crate) async fn drop_target(ctx: &Context, db: &str, name: &str) {
    let client = ctx.milvus().await.unwrap();
    client.drop_collection(db, name).await.unwrap();
}

/// The shared generated collection with at least 8 segments.
fn big() -> Generated {
    pick("A", &["all_types"]).remove(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn create_killed_at_five_moments_resumes_copying_only_what_is_missing() {
    let g = big();
    let yaml = config_yaml("A", &unique("kc"));
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let coll = g.full_name();
    // -f: no flush, so every run copies the same segments.
    let reference = unique("kref");
    let whole = run(&cfg, &[], &["create", "-n", &reference, "-c", &coll, "-f"]);
    let total = whole["files"].as_u64().unwrap();
    assert!(total >= 100, "{whole}");
    let want = manifest_files(&ctx, &reference).await;
    let slow = ["backup.parallelism.copydata=1".to_string()];
    for (i, at) in [0usize, 30, 70, 110, 150].into_iter().enumerate() {
        let name = unique(&format!("kc{i}"));
        let mut child = spawn(&cfg, &slow, &["create", "-n", &name, "-c", &coll, "-f"]);
        let (c, n) = (&ctx, name.as_str());
        kill_when(
            &mut child,
            &format!("{at} files journaled"),
            || async move { journaled_files(c, n).await.is_some_and(|k| k >= at) },
        )
        .await;
        let journaled = journaled_files(&ctx, &name).await.unwrap();
        assert_eq!(state_of(&cfg, &name).as_deref(), Some("incomplete"));
        // The name is refused without --resume, with both ways out.
        let refused = cli()
            .arg("--config")
            .arg(&cfg)
            .args(["create", "-n", &name, "-c", &coll, "-f"])
            .output()
            .unwrap();
        let msg = String::from_utf8_lossy(&refused.stderr).to_string();
        assert!(
            msg.contains("--resume") && msg.contains(&format!("delete -n {name}")),
            "{msg}"
        );
        let stats = run(
            &cfg,
            &[],
            &["create", "-n", &name, "-c", &coll, "-f", "--resume"],
        );
        let resumed = stats["resumed_files"].as_u64().unwrap_or(0);
        let resumed_bytes = stats["resumed_bytes"].as_u64().unwrap_or(0);
        let copied = stats["copied_bytes"].as_u64().unwrap();
        assert_eq!(stats["files"].as_u64(), Some(total));
        assert!(
            resumed as usize >= journaled,
            "kept {resumed} of the {journaled} files the journal listed"
        );
        println!(
            "create killed with {journaled} of {total} files journaled: resume kept {resumed} file(s) ({resumed_bytes} B), copied {} file(s) ({} B) of {copied} B",
            total - resumed,
            copied - resumed_bytes
        );
        assert_eq!(state_of(&cfg, &name).as_deref(), Some("complete"));
        assert!(verify_deep(&cfg, &name), "verify --deep of {name}");
        assert_eq!(manifest_files(&ctx, &name).await, want, "same manifest");
        delete(&cfg, &name);
    }
    delete(&cfg, &reference);
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_killed_at_three_moments_resumes_without_duplicates() {
    let g = big();
    let yaml = config_yaml("A", &unique("kr"));
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let name = unique("kr");
    run(&cfg, &[], &["create", "-n", &name, "-c", &g.full_name()]);
    let source_rows = dump("A", &g.db, &g.name);
    let one_at_a_time = ["backup.parallelism.importJob=1".to_string()];
    // Moments: collection made but nothing imported; 3 and 7 segments in.
    for (i, at) in [0usize, 3, 7].into_iter().enumerate() {
        let suffix = format!("_k{i}{}", &name[name.len() - 4..]);
        let target = format!("{}{suffix}", g.name);
        let args = ["restore", "-n", &name, "-s", &suffix, "--restore_index"];
        let mut child = spawn(&cfg, &one_at_a_time, &args);
        let (c, n) = (&ctx, name.as_str());
        kill_when(
            &mut child,
            &format!("{at} segments imported"),
            || async move {
                let (ready, done) = restore_progress(c, n).await;
                ready && done >= at
            },
        )
        .await;
        let refused = cli().arg("--config").arg(&cfg).args(args).output().unwrap();
        let msg = String::from_utf8_lossy(&refused.stderr).to_string();
        assert!(
            msg.contains("--resume"),
            "a plain rerun says --resume: {msg}"
        );
        let mut resume_args = args.to_vec();
        resume_args.push("--resume");
        let stats = run(&cfg, &[], &resume_args);
        assert!(stats["entities"].as_i64().unwrap() > 0, "{stats}");
        let rows = dump("A", &g.db, &target);
        let keys: Vec<&str> = rows.lines().collect();
        println!(
            "restore killed after {at}+ segment(s): resumed, {} rows (source {})",
            keys.len(),
            g.rows
        );
        assert_eq!(keys.len() as i64, g.rows, "no missing rows");
        assert_eq!(
            count_rows(&ctx, &g.db, &target).await,
            g.rows,
            "count(*): no segment imported twice"
        );
        assert!(
            rows == source_rows,
            "rows of {target} differ from the source"
        );
        drop_target(&ctx, &g.db, &target).await;
    }
    delete(&cfg, &name);
}

/// How one fault run ended.
#[derive(Default, Debug)]
struct Figures {
    tried: u32,
    survived: u32,
    failed_cleanly: u32,
    not_triggered: u32,
    lost_data: u32,
}

impl Figures {
    /// Runs `attempt` with `fault` on `proxy` and counts how it ended; the
    /// error lines (exactly one) when it failed.
    fn attempt(
        &mut self,
        proxy: &FaultProxy,
        (fault, times): (Fault, u64),
        attempt: impl FnOnce() -> Result<(), Vec<String>>,
    ) -> Result<&'static str, String> {
        let before = proxy.injected();
        proxy.set(fault, times);
        let outcome = attempt();
        proxy.set(Fault::None, 0);
        self.tried += 1;
        match outcome {
            Ok(()) if proxy.injected() > before => {
                self.survived += 1;
                Ok("survived by retry")
            }
            Ok(()) => {
                self.not_triggered += 1;
                Ok("not triggered")
            }
            Err(errors) => {
                assert_eq!(errors.len(), 1, "{fault:?}: one error line: {errors:?}");
                self.failed_cleanly += 1;
                Err(errors[0].clone())
            }
        }
    }
}

fn scenarios() -> Vec<(&'static str, &'static str, Fault, u64)> {
    use Fault::*;
    let ms = Duration::from_millis;
    vec![
        ("s3", "drop after 4 KB (3 connections)", DropAfter(4_000), 3),
        ("s3", "latency 20 ms", Latency(ms(20)), u64::MAX),
        (
            "s3",
            "stall 3 s after 2 KB (2 connections)",
            Stall {
                after: 2_000,
                pause: ms(3000),
            },
            2,
        ),
        ("s3", "503 SlowDown (2 requests)", SlowDown, 2),
        (
            "s3",
            "drop after 2 KB (every connection)",
            DropAfter(2_000),
            u64::MAX,
        ),
        (
            "milvus",
            "drop after 3 KB (2 connections)",
            DropAfter(3_000),
            2,
        ),
        ("milvus", "latency 20 ms", Latency(ms(20)), u64::MAX),
        (
            "milvus",
            "stall 3 s after 2 KB (1 connection)",
            Stall {
                after: 2_000,
                pause: ms(3000),
            },
            1,
        ),
        (
            "milvus",
            "drop after 500 B (every connection)",
            DropAfter(500),
            u64::MAX,
        ),
    ]
}

/// The proxies in front of S3 and Milvus, and the `--set`s routing the
/// tool's traffic through them.
fn proxies() -> (FaultProxy, FaultProxy, Vec<String>) {
    let (s3_host, s3_port) = host_port(&var("MBT_S3_ENDPOINT"));
    let s3 = FaultProxy::start(&format!("{s3_host}:{s3_port}"));
    let milvus = FaultProxy::start(&format!("{}:{}", var("MBT_A_HOST"), var("MBT_A_PORT")));
    let sets = vec![
        format!("minio.port={}", s3.port),
        format!("milvus.port={}", milvus.port),
    ];
    (s3, milvus, sets)
}

/// Runs the CLI under a fault: `Ok` on success, else the stderr's error lines.
fn run_faulty(cfg: &Path, sets: &[String], args: &[&str]) -> Result<(), Vec<String>> {
    let mut cmd = cli();
    cmd.arg("--config").arg(cfg);
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    let out = cmd.args(args).output().unwrap();
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    Err(stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .map(str::to_string)
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn create_under_injected_faults_survives_or_fails_cleanly_and_resumes() {
    let g = pick("A", &["varchar_pk"]).remove(0);
    let yaml = config_yaml("A", &unique("fc"));
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let coll = g.full_name();
    let reference = unique("fref");
    run(&cfg, &[], &["create", "-n", &reference, "-c", &coll, "-f"]);
    let want = manifest_files(&ctx, &reference).await;
    let (s3, milvus, sets) = proxies();
    let mut fig = Figures::default();
    for (i, (side, what, fault, times)) in scenarios().into_iter().enumerate() {
        let proxy = if side == "s3" { &s3 } else { &milvus };
        let name = unique(&format!("fc{i}"));
        let args = ["create", "-n", &name, "-c", &coll, "-f"];
        let verdict = match fig.attempt(proxy, (fault, times), || run_faulty(&cfg, &sets, &args)) {
            Ok(v) => v.to_string(),
            Err(error) => {
                let state = state_of(&cfg, &name);
                assert_ne!(state.as_deref(), Some("complete"), "{what}");
                if state.is_some() {
                    assert!(error.contains("--resume"), "{what}: {error}");
                }
                run(&cfg, &[], &[&args[..], &["--resume"]].concat());
                format!("failed cleanly, then resumed: {error}")
            }
        };
        if !verify_deep(&cfg, &name) || manifest_files(&ctx, &name).await != want {
            fig.lost_data += 1;
        }
        println!("create, {side} {what}: {verdict}");
        delete(&cfg, &name);
    }
    delete(&cfg, &reference);
    println!("create under faults: {fig:?}");
    assert_eq!(fig.lost_data, 0, "{fig:?}");
    assert!(fig.survived >= 3 && fig.failed_cleanly >= 1, "{fig:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_under_injected_faults_survives_or_fails_cleanly_and_resumes() {
    let g = pick("A", &["varchar_pk"]).remove(0);
    let yaml = config_yaml("A", &unique("fr"));
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let name = unique("fr");
    run(&cfg, &[], &["create", "-n", &name, "-c", &g.full_name()]);
    let source_rows = dump("A", &g.db, &g.name);
    let (s3, milvus, sets) = proxies();
    let mut fig = Figures::default();
    for (i, (side, what, fault, times)) in scenarios().into_iter().enumerate() {
        let proxy = if side == "s3" { &s3 } else { &milvus };
        let suffix = format!("_f{i}{}", &name[name.len() - 4..]);
        let target = format!("{}{suffix}", g.name);
        let args = ["restore", "-n", &name, "-s", &suffix, "--restore_index"];
        let client = ctx.milvus().await.unwrap();
        let verdict = match fig.attempt(proxy, (fault, times), || run_faulty(&cfg, &sets, &args)) {
            Ok(v) => v.to_string(),
            Err(error) => {
                let left = client.list_collections(&g.db).await.unwrap();
                if left.contains(&target) {
                    assert!(
                        error.contains("--resume"),
                        "{what}: a partly restored collection is named with --resume: {error}"
                    );
                }
                run(&cfg, &[], &[&args[..], &["--resume"]].concat());
                format!("failed cleanly, then resumed: {error}")
            }
        };
        if dump("A", &g.db, &target) != source_rows
            || count_rows(&ctx, &g.db, &target).await != g.rows
        {
            fig.lost_data += 1;
        }
        println!("restore, {side} {what}: {verdict}");
        drop_target(&ctx, &g.db, &target).await;
    }
    delete(&cfg, &name);
    println!("restore under faults: {fig:?}");
    assert_eq!(fig.lost_data, 0, "{fig:?}");
    assert!(fig.survived >= 3 && fig.failed_cleanly >= 1, "{fig:?}");
}
