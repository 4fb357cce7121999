//! An async REST restore of a logical (Parquet) backup, its server killed
//! with SIGKILL at three moments: after a restart the task is
//! `interrupted`, `POST /resume` finishes it, and the target holds every
//! key of the source once, every row identical. A plain rerun meanwhile
//! names `resume` and never suggests `skipCreateCollection`.

use std::time::{Duration, Instant};

use milvus_backup_core::Context;
use milvus_backup_testkit::row_restore::{
    big_collection, parquet_backup, row_restore_progress, BIG_ROWS,
};
use milvus_backup_testkit::{config, config_file, config_yaml, drop_collection, dump, unique};
use serde_json::json;

use crate::http::Server;

/// `count(*)` of a loaded collection.
async fn count_rows(ctx: &Context, name: &str) -> u64 {
    use milvus_backup_core::milvus::proto::schema::{field_data::Field, scalar_field::Data};
    let client = ctx.milvus().await.unwrap();
    let cols = client
        .query("default", name, "", &["count(*)".to_string()], None)
        .await
        .unwrap();
    match cols[0].field.as_ref() {
        Some(Field::Scalars(s)) => match s.data.as_ref() {
            Some(Data::LongData(d)) => d.data[0] as u64,
            other => panic!("count(*) answered {other:?}"),
        },
        other => panic!("count(*) answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_logical_restore_killed_with_its_server_resumes_without_duplicates() {
    let coll = unique("srv_lrk_src");
    let c = coll.clone();
    tokio::task::spawn_blocking(move || big_collection("A", &c))
        .await
        .unwrap();
    let root = unique("srv_lrk");
    let yaml = config_yaml("A", &root);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let name = unique("srv_lrk");
    let source = format!("default.{coll}");
    let (_d, cfg) = config_file(&yaml);
    let (n, s, c) = (name.clone(), source.clone(), coll.clone());
    let source_rows = tokio::task::spawn_blocking(move || {
        parquet_backup(&cfg, &n, &s);
        dump("A", "default", &c)
    })
    .await
    .unwrap();
    for (i, share) in [0u64, 30, 70].into_iter().enumerate() {
        let suffix = format!("_r{i}");
        let target = format!("{coll}{suffix}");
        let request = json!({"backup_name": name, "collection_names": [source],
            "collection_suffix": suffix, "async": true});
        let mut first = Server::start(&yaml, &[], &[]).await;
        let (status, body) = first.post("/restore", request.clone()).await;
        assert_eq!(status, 200, "{body}");
        let id = body["data"]["id"].as_str().unwrap().to_string();
        let at = BIG_ROWS * share / 100;
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (ready, rows) = row_restore_progress(&ctx, &name).await;
            if ready && rows >= at {
                break;
            }
            assert!(Instant::now() < deadline, "{share} % never reached");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        first.crash();
        let seen = row_restore_progress(&ctx, &name).await.1;

        let second = Server::start(&yaml, &[], &[]).await;
        let (_, t) = second.get(&format!("/get_restore?id={id}")).await;
        assert_eq!(t["data"]["state"], "interrupted", "{t}");
        let (status, again) = second
            .post(
                "/restore",
                json!({"backup_name": name, "collection_names": [source],
                "collection_suffix": suffix}),
            )
            .await;
        let msg = again.to_string();
        assert_eq!(status, 409, "a plain rerun is refused: {again}");
        assert!(msg.contains("resume"), "it names resume: {msg}");
        assert!(
            !msg.contains("skipCreateCollection"),
            "nothing suggests importing into it again: {msg}"
        );
        let (status, r) = second.post(&format!("/resume?id={id}"), json!({})).await;
        assert_eq!(status, 200, "{r}");
        let resumed = r["data"]["id"].as_str().unwrap().to_string();
        let done = second
            .poll(
                &format!("/get_restore?id={resumed}"),
                Duration::from_secs(300),
                |d| d["state_code"].as_i64().unwrap() >= 2,
            )
            .await;
        assert_eq!(done["state_code"], 2, "{done}");
        let counted = count_rows(&ctx, &target).await;
        let t = target.clone();
        let rows = tokio::task::spawn_blocking(move || dump("A", "default", &t))
            .await
            .unwrap();
        println!(
            "REST logical restore killed with {seen} of {BIG_ROWS} rows journaled: resumed, count(*) {counted}, {} keys",
            rows.lines().count()
        );
        assert_eq!(counted, BIG_ROWS, "count(*): no key inserted twice");
        assert!(
            rows == source_rows,
            "rows of {target} differ from the source"
        );
        let t = target.clone();
        tokio::task::spawn_blocking(move || drop_collection("A", "default", &t))
            .await
            .unwrap();
    }
    let (status, _) = Server::start(&yaml, &[], &[])
        .await
        .delete(&format!("/delete?backup_name={name}"))
        .await;
    assert_eq!(status, 200);
    tokio::task::spawn_blocking(move || drop_collection("A", "default", &coll))
        .await
        .unwrap();
}
