//! Logical restores (rows inserted from a Parquet backup) killed with
//! SIGKILL at three moments and finished with `restore --resume`: every
//! key of the source once, every row identical. A plain rerun meanwhile
//! names `--resume` and never suggests importing into the partly restored
//! collection. The figures are printed (`--nocapture`).

use milvus_backup_core::model::layout;
use milvus_backup_core::Context;
use serde_json::json;

use crate::env::row_restore::{big_collection, parquet_backup, row_restore_progress, BIG_ROWS};
use crate::env::{cli, config, config_file, config_yaml, dump, pick, run, unique};
use crate::resume::{count_rows, delete, drop_target, kill_when, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn logical_restore_killed_at_three_moments_resumes_without_duplicates() {
    let coll = unique("lrk_src");
    big_collection("A", &coll);
    let yaml = config_yaml("A", &unique("lrk"));
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let name = unique("lrk");
    let source = format!("default.{coll}");
    parquet_backup(&cfg, &name, &source);
    let source_rows = dump("A", "default", &coll);
    assert_eq!(source_rows.lines().count() as u64, BIG_ROWS);
    // Moments: collection made but no batch in; about 30 % and 70 % in.
    for (i, share) in [0u64, 30, 70].into_iter().enumerate() {
        let suffix = format!("_k{i}");
        let target = format!("{coll}{suffix}");
        let args = ["restore", "-n", &name, "-c", &source, "-s", &suffix];
        let mut child = spawn(&cfg, &[], &args);
        let (c, n) = (&ctx, name.as_str());
        let at = BIG_ROWS * share / 100;
        kill_when(&mut child, &format!("{share} % inserted"), || async move {
            let (ready, rows) = row_restore_progress(c, n).await;
            ready && rows >= at
        })
        .await;
        let seen = row_restore_progress(c, n).await.1;
        let refused = cli().arg("--config").arg(&cfg).args(args).output().unwrap();
        let msg = String::from_utf8_lossy(&refused.stderr).to_string();
        assert!(!refused.status.success(), "a plain rerun is refused");
        assert!(
            msg.contains("--resume"),
            "a plain rerun says --resume: {msg}"
        );
        assert!(
            !msg.contains("skip_create_collection"),
            "nothing suggests importing into it again: {msg}"
        );
        let mut resume_args = args.to_vec();
        resume_args.push("--resume");
        let stats = run(&cfg, &[], &resume_args);
        assert_eq!(stats["entities"].as_u64(), Some(BIG_ROWS), "{stats}");
        let counted = count_rows(&ctx, "default", &target).await;
        let rows = dump("A", "default", &target);
        println!(
            "logical restore killed with {seen} of {BIG_ROWS} rows journaled: resumed, count(*) {counted}, {} keys",
            rows.lines().count()
        );
        assert_eq!(counted as u64, BIG_ROWS, "count(*): no key inserted twice");
        assert!(
            rows == source_rows,
            "rows of {target} differ from the source"
        );
        drop_target(&ctx, "default", &target).await;
    }
    delete(&cfg, &name);
    drop_target(&ctx, "default", &coll).await;
}

/// Writes the journal of an interrupted restore of `backup` into `target`
/// (made and ready) that sent every batch of the backup's data files and
/// heard no answer, as a kill between an insert and its answer leaves it.
async fn journal_all_sent(ctx: &Context, backup: &str, source: &str, target: &str) {
    let prefix = format!("{backup}/");
    let mut files = serde_json::Map::new();
    for o in ctx
        .backup_storage
        .list(&format!("{prefix}data/"))
        .await
        .unwrap()
    {
        let path = o.key.strip_prefix(&prefix).unwrap().to_string();
        files.insert(path, json!({"done": [], "sent": [[0, 1_000_000_000u64]]}));
    }
    assert!(!files.is_empty(), "backup `{backup}` has data files");
    let record = json!({
        "backup": backup,
        "updated": 1,
        "collections": {
            target: {"source": source, "created": true, "ready": true, "done": false, "files": files}
        }
    });
    let key = format!("{}{backup}_lost/journal.json", layout::ROW_RESTORES_ROOT);
    ctx.backup_storage
        .write(&key, serde_json::to_vec(&record).unwrap())
        .await
        .unwrap();
}

/// A batch sent before a kill whose answer was never recorded: `--resume`
/// looks its keys up and inserts only the rows the target lacks — none
/// when the target holds them all, every one when it holds none; an autoID
/// target's keys cannot be looked up, so `--resume` says so and names
/// `--drop_exist_collection`.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_sent_without_an_answer_is_looked_up_by_key_on_resume() {
    let (g, auto) = (
        pick("A", &["all_types"]).remove(0),
        pick("A", &["autoid"]).remove(0),
    );
    let yaml = config_yaml("A", &unique("lost"));
    let (_d, cfg) = config_file(&yaml);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let (name, auto_name) = (unique("lost"), unique("lost_auto"));
    parquet_backup(&cfg, &name, &g.full_name());
    parquet_backup(&cfg, &auto_name, &auto.full_name());
    let source_rows = dump("A", &g.db, &g.name);
    // The target holds every row already; the target holds none.
    for (suffix, meta_only) in [("_lost_all", false), ("_lost_none", true)] {
        let target = format!("{}{suffix}", g.name);
        let mut args = vec!["restore", "-n", &name, "-s", suffix];
        run(
            &cfg,
            &[],
            &[&args[..], &["--meta_only"][..meta_only as usize]].concat(),
        );
        journal_all_sent(&ctx, &name, &g.full_name(), &format!("{}.{target}", g.db)).await;
        args.push("--resume");
        let stats = run(&cfg, &[], &args);
        assert_eq!(stats["entities"].as_i64(), Some(g.rows), "{stats}");
        assert_eq!(
            count_rows(&ctx, &g.db, &target).await,
            g.rows,
            "count(*) of {target}"
        );
        assert!(
            dump("A", &g.db, &target) == source_rows,
            "rows of {target} differ from the source"
        );
        drop_target(&ctx, &g.db, &target).await;
    }
    let target = format!("{}_lost", auto.name);
    let args = ["restore", "-n", &auto_name, "-s", "_lost"];
    run(&cfg, &[], &[&args[..], &["--meta_only"]].concat());
    journal_all_sent(
        &ctx,
        &auto_name,
        &auto.full_name(),
        &format!("{}.{target}", auto.db),
    )
    .await;
    let out = cli()
        .arg("--config")
        .arg(&cfg)
        .args([&args[..], &["--resume"]].concat())
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "an autoID target cannot be checked");
    assert!(
        msg.contains("autoID") && msg.contains("--drop_exist_collection"),
        "says why and how to start over: {msg}"
    );
    drop_target(&ctx, &auto.db, &target).await;
    delete(&cfg, &name);
    delete(&cfg, &auto_name);
}
