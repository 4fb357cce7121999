//! `POST /api/v1/migrate` and `POST /api/v1/compare` against real servers:
//! a round moves a collection from Milvus A into B (the target named by a
//! config file on the server's host), a compare says identical, then a row
//! deleted on B alone makes an async compare name it.

use std::time::Duration;

use serde_json::json;

use milvus_backup_testkit::{config_file, config_yaml, drop_collection, gen_data, unique};

use crate::http::Server;

#[tokio::test(flavor = "multi_thread")]
async fn a_migrate_round_and_compares_over_rest() {
    let root = unique("srvlive");
    let coll = format!("srvlive_{}", &unique("x")[2..10]);
    gen_data(
        "A",
        &[
            "late-deletes",
            "--collection",
            &coll,
            "--rows",
            "3000",
            "--delete",
            "0",
        ],
    );
    let s = Server::start(&config_yaml("A", &root), &[], &[]).await;
    let (_d, b) = config_file(&config_yaml("B", &root));
    let to_config = b.to_string_lossy().to_string();

    let (code, v) = s
        .post(
            "/migrate",
            json!({"collection_name": coll, "to_config": to_config}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let r = &v["data"]["result"];
    assert_eq!(r["created"], true, "{v}");
    assert_eq!(r["rows_copied"], 3000, "{v}");
    assert_eq!(r["identical"], true, "{v}");

    let (code, v) = s
        .post(
            "/compare",
            json!({"collection_name": coll, "to_config": to_config}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["result"]["identical"], true, "{v}");

    gen_data(
        "B",
        &[
            "delete-keys",
            "--collection",
            &coll,
            "--keys",
            "42",
            "--int",
        ],
    );
    let (code, v) = s
        .post(
            "/compare",
            json!({"collection_name": coll, "to_config": to_config, "async": true}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let id = v["data"]["id"].as_str().unwrap().to_string();
    let done = s
        .poll(
            &format!("/get_compare?id={id}"),
            Duration::from_secs(120),
            |v| v["state"] != "executing",
        )
        .await;
    assert_eq!(done["state"], "success", "{done}");
    let r = &done["result"];
    assert_eq!(r["identical"], false, "{done}");
    assert_eq!(r["only_in_source"]["keys"], json!([42]), "{done}");

    // A misspelled field is named; a missing to_config file too.
    let (code, v) = s
        .post(
            "/compare",
            json!({"collection_name": coll, "to_confg": to_config}),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert!(v.to_string().contains("to_config"), "{v}");
    let (code, v) = s
        .post(
            "/migrate",
            json!({"collection_name": coll, "to_config": "/nonexistent/b.yaml"}),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert!(v.to_string().contains("no such file"), "{v}");
    std::thread::spawn(move || {
        drop_collection("A", "default", &coll);
        drop_collection("B", "default", &coll);
    })
    .join()
    .unwrap();
}
