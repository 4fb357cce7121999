//! Logical restores (rows inserted from a Parquet backup) killed with
//! SIGKILL at three moments and finished with `restore --resume`: every
//! key of the source once, every row identical. A plain rerun meanwhile
//! names `--resume` and never suggests importing into the partly restored
//! collection. The figures are printed (`--nocapture`).

use milvus_backup_core::Context;

use crate::env::row_restore::{big_collection, row_restore_progress, BIG_ROWS};
use crate::env::{cli, config, config_file, config_yaml, dump, run, unique};
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
    run(
        &cfg,
        &[],
        &["create", "-n", &name, "-c", &source, "--format", "parquet"],
    );
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
