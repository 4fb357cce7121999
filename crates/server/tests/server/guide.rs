//! The user guide's REST API (`/api/v1/backup/*`) against the real
//! servers: the guide's curl examples run verbatim through `bash` (only the
//! host, port and names substituted), then list, get, status, verify, an
//! async create and delete; and the Go tool's `restorePlan` overrides.

use std::process::Command;
use std::time::Duration;

use milvus_backup_core::repo::catalog;
use milvus_backup_core::Context;
use serde_json::{json, Value};

use milvus_backup_testkit::{
    assert_same_collection, config, config_yaml, drop_collection, gen_data, stdout_of, unique,
    Generated,
};

use crate::http::{backup_objects, pick, Server};

/// The guide's examples, as printed in its "HTTP API 使用" section.
const GUIDE_CREATE: &str = r#"curl -X POST http://localhost:8080/api/v1/backup/create \
  -H "Content-Type: application/json" \
  -d '{
    "backup_name": "backup_20260210",
    "collections": ["my_collection"],
    "compression": true
  }'"#;
const GUIDE_LIST: &str = "curl -X GET http://localhost:8080/api/v1/backup/list";
const GUIDE_RESTORE: &str = r#"curl -X POST http://localhost:8080/api/v1/backup/restore \
  -H "Content-Type: application/json" \
  -d '{
    "backup_name": "backup_20260210",
    "collections": ["my_collection"],
    "target_collection": "my_collection_restored"
  }'"#;
const GUIDE_DELETE: &str = r#"curl -X DELETE http://localhost:8080/api/v1/backup/delete \
  -H "Content-Type: application/json" \
  -d '{
    "backup_name": "backup_20260210"
  }'"#;

/// Runs a guide example with `bash`, the server's address for
/// `localhost:8080` and the test's names for the guide's.
fn curl(s: &Server, example: &str, names: &[(&str, &str)]) -> Value {
    let mut script = example.replace("http://localhost:8080", &s.base);
    for (from, to) in names {
        script = script.replace(from, to);
    }
    let out = stdout_of(
        Command::new("bash").args([
            "-c",
            &format!("{script} --silent --show-error --max-time 600"),
        ]),
        &script,
    );
    serde_json::from_str(&out).unwrap_or_else(|_| panic!("{script}: not JSON: {out}"))
}

fn assert_success(body: &Value) {
    assert_eq!(body["code"], 0, "{body}");
    assert_eq!(body["message"], "success", "{body}");
    assert!(body.get("msg").is_none(), "the guide's envelope: {body}");
}

fn is_rfc3339_utc(text: &str) -> bool {
    text.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn guide_curl_examples_work_verbatim() {
    let g: Generated = pick(&["all_types"]).remove(0);
    assert_eq!(g.db, "default");
    let root = unique("rest_guide");
    let yaml = config_yaml("A", &root);
    let s = Server::start(&yaml, &[], &[]).await;
    let name = unique("rest_guide");
    let restored = format!("{}_restored", g.name);
    let names = [
        ("backup_20260210", name.as_str()),
        ("my_collection", g.name.as_str()),
    ];

    // Create: synchronous, compressed, with the guide's fields.
    let body = curl(&s, GUIDE_CREATE, &names);
    assert_success(&body);
    let d = &body["data"];
    assert_eq!(d["status"], "completed", "{body}");
    assert_eq!(d["backup_name"], name.as_str());
    assert_eq!(d["collections"], json!([g.name]));
    let backup_id = d["backup_id"].as_str().unwrap().to_string();
    assert!(!backup_id.is_empty(), "{body}");
    let entities = d["total_entities"].as_i64().unwrap();
    assert!(
        entities >= g.rows,
        "{entities} entities for {} rows",
        g.rows
    );
    assert!(d["backup_size"].as_i64().unwrap() > 0, "{body}");
    let created_at = d["created_at"].as_str().unwrap().to_string();
    assert!(is_rfc3339_utc(&created_at), "{created_at}");
    assert!(d["duration"].as_f64().unwrap() > 0.0, "{body}");
    // The figures are the core's: its listing of the backup.
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let row = catalog::row(&ctx.backup_storage, &name).await.unwrap();
    assert_eq!(
        (row.entities, row.size_bytes),
        (entities, d["backup_size"].as_i64().unwrap())
    );
    assert_eq!(row.id, backup_id);
    assert!(!row.compression.is_none(), "compression: true compresses");

    // List and get.
    let body = curl(&s, GUIDE_LIST, &names);
    assert_success(&body);
    let item = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not listed: {body}"))
        .clone();
    assert_eq!(item["backup_id"], backup_id.as_str());
    assert_eq!(item["collections"], json!([g.name]));
    assert_eq!(item["total_entities"], entities);
    assert_eq!(item["size"], d["backup_size"]);
    assert_eq!(item["created_at"], created_at.as_str());
    assert_eq!(item["status"], "completed");
    let (status, got) = s.get(&format!("/backup/get?backup_name={name}")).await;
    assert_eq!(status, 200, "{got}");
    assert_success(&got);
    assert_eq!(got["data"], item);

    // Verify: checksums and a restore test.
    let (status, v) = s
        .post(
            "/backup/verify",
            json!({"backup_name": name, "deep": true, "restore_test": true}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_success(&v);
    let v = &v["data"];
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["checksum"], "OK", "{v}");
    assert_eq!(v["metadata"], "OK", "{v}");
    assert_eq!(v["restore_test"], "OK", "{v}");
    let (_, plain) = s.post("/backup/verify", json!({"backup_name": name})).await;
    assert_eq!(plain["data"]["checksum"], "skipped", "{plain}");
    assert_eq!(plain["data"]["restore_test"], "skipped", "{plain}");

    // Restore under the target name, compared row by row.
    let body = curl(&s, GUIDE_RESTORE, &names);
    assert_success(&body);
    let r = &body["data"];
    assert_eq!(r["status"], "completed", "{body}");
    assert_eq!(r["collections"][0]["source"], g.full_name().as_str());
    assert_eq!(
        r["collections"][0]["target"],
        format!("default.{restored}").as_str()
    );
    assert!(r["total_entities"].as_i64().unwrap() >= g.rows, "{body}");
    let (check, target) = (g.clone(), restored.clone());
    tokio::task::spawn_blocking(move || {
        assert_same_collection("A", &check, "A", "default", &target);
        drop_collection("A", "default", &target);
    })
    .await
    .unwrap();

    // Async create: running at once, then completed through status.
    let name2 = unique("rest_guide_async");
    let (status, body) = s
        .post(
            "/backup/create",
            json!({"backup_name": name2, "collections": [g.name], "async": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_success(&body);
    assert_eq!(body["data"]["status"], "running", "{body}");
    let task_id = body["data"]["task_id"].as_str().unwrap().to_string();
    let done = s
        .poll(
            &format!("/backup/status?id={task_id}"),
            Duration::from_secs(180),
            |d| d["status"] != "running",
        )
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"], 100);
    assert_eq!(done["kind"], "create");
    assert!(
        is_rfc3339_utc(done["finished_at"].as_str().unwrap()),
        "{done}"
    );
    let (_, got) = s.get(&format!("/backup/get?backup_name={name2}")).await;
    assert_eq!(got["data"]["status"], "completed", "{got}");

    // Delete, with the guide's JSON body.
    for n in [&name, &name2] {
        let body = curl(&s, GUIDE_DELETE, &[("backup_20260210", n.as_str())]);
        assert_success(&body);
        assert_eq!(body["data"]["backup_name"], n.as_str());
        assert!(!backup_objects(&yaml, n).await, "{n} left files");
    }
    let (status, gone) = s.get(&format!("/backup/get?backup_name={name}")).await;
    assert_eq!(status, 404, "{gone}");
    assert!(gone["message"].as_str().unwrap().contains(&name), "{gone}");
    assert!(gone.get("msg").is_none(), "{gone}");
    let (status, gone) = s.get("/backup/status?id=nope").await;
    assert_eq!(status, 404, "{gone}");
}

#[tokio::test(flavor = "multi_thread")]
async fn guide_routes_refuse_bad_input_in_their_envelope() {
    let s = Server::start(&config_yaml("A", &unique("rest_bad")), &[], &[]).await;
    let cases: Vec<(u16, (u16, Value), &str)> = vec![
        (
            400,
            s.post_raw("/backup/create", "{not json".into()).await,
            "not valid JSON",
        ),
        (
            400,
            s.post(
                "/backup/create",
                json!({"backup_name": "x", "compression": false, "compress": "zstd"}),
            )
            .await,
            "contradicts",
        ),
        (
            400,
            s.post(
                "/backup/restore",
                json!({"backup_name": "x", "collections": ["a", "b"], "target_collection": "t"}),
            )
            .await,
            "exactly one",
        ),
        (
            404,
            s.post(
                "/backup/restore",
                json!({"backup_name": "rest_no_such_backup"}),
            )
            .await,
            "not found",
        ),
        (
            400,
            s.post(
                "/backup/create",
                json!({"backup_name": "ok_name", "compresion": true}),
            )
            .await,
            "unknown field `compresion` in the request body — did you mean `compression`?",
        ),
        (404, s.get("/backup/nothing").await, "no route"),
        (400, s.get("/backup/get").await, "backup_name"),
    ];
    for (want, (status, body), text) in cases {
        assert_eq!(status, want, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(text),
            "{text}: {body}"
        );
        assert!(body.get("msg").is_none(), "{body}");
    }
    // The Go tool's routes keep `msg`.
    let (status, body) = s.post_raw("/create", "{not json".into()).await;
    assert_eq!(status, 400);
    assert!(
        body["msg"].is_string() && body.get("message").is_none(),
        "{body}"
    );
}

/// `describe` of a collection (shards, description, ...).
fn describe(inst: &str, db: &str, name: &str) -> Value {
    serde_json::from_str(&gen_data(
        inst,
        &["describe", "--db", db, "--collection", name],
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_plan_overrides_set_shards_and_description() {
    let g: Generated = pick(&["all_types"]).remove(0);
    let root = unique("rest_ovr");
    let yaml = config_yaml("A", &root);
    let s = Server::start(&yaml, &[], &[]).await;
    let name = unique("rest_ovr");
    let (status, body) = s
        .post(
            "/create",
            json!({"backup_name": name, "collection_names": [g.full_name()]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let source = {
        let g = g.clone();
        tokio::task::spawn_blocking(move || describe("A", &g.db, &g.name))
            .await
            .unwrap()
    };
    let shards = if source["shards_num"] == 3 { 2 } else { 3 };
    let description = "overridden_description_for_test";
    let target = format!("{}_ovr", g.name);
    // The Go tool's own test's request: the filter names the target.
    let (status, body) = s
        .post(
            "/restore",
            json!({
                "async": false,
                "backup_name": name,
                "restorePlan": {
                    "mapping": [{
                        "source": g.db, "target": g.db,
                        "colls": [{"source": g.name, "target": target,
                            "override": {"shardNum": shards, "description": description}}]
                    }],
                    "filter": {g.db.as_str(): {"colls": [target]}}
                }
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["msg"], "success");
    let (g2, target2) = (g.clone(), target.clone());
    let (restored, rows_a, rows_b) = tokio::task::spawn_blocking(move || {
        let d = describe("A", &g2.db, &target2);
        let a = gen_data("A", &["dump", "--db", &g2.db, "--collection", &g2.name]);
        let b = gen_data("A", &["dump", "--db", &g2.db, "--collection", &target2]);
        drop_collection("A", &g2.db, &target2);
        (d, a, b)
    })
    .await
    .unwrap();
    assert_eq!(restored["shards_num"], shards, "{restored}");
    assert_eq!(restored["description"], description, "{restored}");
    assert_ne!(source["shards_num"], shards);
    // Same schema and rows otherwise.
    assert_eq!(restored["fields"], source["fields"]);
    assert_eq!(rows_a.lines().count() as i64, g.rows);
    assert!(rows_a == rows_b, "rows of {target} differ from {}", g.name);

    // An override of fewer than one shard is refused; nothing is made.
    let (status, body) = s
        .post(
            "/restore",
            json!({
                "backup_name": name,
                "restorePlan": {"mapping": [{"source": g.db, "target": g.db,
                    "colls": [{"source": g.name, "target": target,
                        "override": {"shardNum": -1}}]}]}
            }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["msg"].as_str().unwrap().contains("shards"), "{body}");
    let (status, _) = s.delete(&format!("/delete?backup_name={name}")).await;
    assert_eq!(status, 200);
}
