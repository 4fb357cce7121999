//! `milvus-backup server` over HTTP against real Milvus servers: the real
//! binary runs as a child process on a free loopback port, each test with
//! its own backup root (so task records and backups of tests never mix).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use milvus_backup_core::model::layout;
use milvus_backup_core::Context;
use serde_json::{json, Value};

use milvus_backup_testkit::{
    assert_same_collection, auth_config_yaml, bin, config, config_file, config_yaml,
    drop_collection, gen_data, generated, unique, Generated,
};

/// A running `milvus-backup server`; killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) token: Option<String>,
    pub(crate) log: PathBuf,
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) http: reqwest::Client,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts the server for `yaml` with `--set` pairs and environment.
    pub(crate) async fn start(yaml: &str, sets: &[String], envs: &[(&str, &str)]) -> Server {
        let (dir, cfg) = config_file(yaml);
        let log = dir.path().join("server.log");
        let port = free_port();
        let mut cmd = Command::new(bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("MILVUS_") || k.starts_with("MINIO_") || k.starts_with("BACKUP_") {
                cmd.env_remove(k);
            }
        }
        cmd.env(
            "RUST_LOG",
            "error,milvus_backup=info,milvus_backup_core=info,milvus_backup_server=info",
        )
        .env("NO_COLOR", "1")
        .env("no_proxy", "127.0.0.1,localhost")
        .arg("--config")
        .arg(&cfg)
        .args(["--set", "http.address=127.0.0.1"]);
        for s in sets {
            cmd.arg("--set").arg(s);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .args(["server", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            token: None,
            log,
            _dir: dir,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(300))
                .build()
                .unwrap(),
        };
        let start = Instant::now();
        loop {
            if let Ok(r) = server
                .http
                .get(format!("{}/healthz", server.base))
                .send()
                .await
            {
                if r.status().is_success() {
                    break;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("server exited with {status}: {}", server.log_text());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "server not ready: {}",
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.token = envs
            .iter()
            .find(|(k, _)| *k == "MILVUS_BACKUP_AUTH_TOKEN")
            .map(|(_, v)| v.to_string());
        server
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "status {status}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, body)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}/api/v1{path}", self.base)))
            .await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    pub(crate) async fn post_raw(&self, path: &str, body: String) -> (u16, Value) {
        self.send(
            self.http
                .post(format!("{}/api/v1{path}", self.base))
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    pub(crate) async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(format!("{}/api/v1{path}", self.base)))
            .await
    }

    /// Polls `path` until `done` holds (bounded).
    pub(crate) async fn poll(
        &self,
        path: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        self.poll_every(path, limit, Duration::from_millis(300), done)
            .await
    }

    pub(crate) async fn poll_every(
        &self,
        path: &str,
        limit: Duration,
        every: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let (status, body) = self.get(path).await;
            assert_eq!(status, 200, "{path}: {body}");
            if done(&body["data"]) {
                return body["data"].clone();
            }
            assert!(
                start.elapsed() < limit,
                "{path} not done after {limit:?}: {body}"
            );
            tokio::time::sleep(every).await;
        }
    }

    /// SIGTERM, then waits (bounded) for the process to exit.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "server did not exit after SIGTERM: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: a crash, nothing is cleaned up.
    pub(crate) fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn pick(names: &[&str]) -> Vec<Generated> {
    generated("A")
        .iter()
        .filter(|g| names.iter().any(|n| g.name.ends_with(n)))
        .cloned()
        .collect()
}

fn full_names(colls: &[Generated]) -> Vec<String> {
    colls.iter().map(|g| g.full_name()).collect()
}

/// The task record this test's server wrote, read from backup storage.
async fn stored_record(yaml: &str, id: &str) -> Option<Value> {
    let ctx = Context::open(&config(yaml, &[])).unwrap();
    match ctx.backup_storage.read(&layout::task_record(id)).await {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap()),
        Err(_) => None,
    }
}

pub(crate) async fn backup_objects(yaml: &str, name: &str) -> bool {
    let ctx = Context::open(&config(yaml, &[])).unwrap();
    ctx.backup_storage
        .has_objects(&layout::backup_dir(name))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn async_create_then_async_restore_into_a_second_milvus() {
    let colls = pick(&["all_types", "varchar_pk"]);
    let root = unique("srv_rt");
    let (yaml_a, yaml_b) = (config_yaml("A", &root), config_yaml("B", &root));
    let a = Server::start(&yaml_a, &[], &[]).await;
    let b = Server::start(&yaml_b, &[], &[]).await;
    let name = unique("srv_async");

    let (status, body) = a
        .post(
            "/create",
            json!({"backup_name": name, "collection_names": full_names(&colls), "async": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 0);
    assert_eq!(body["msg"], "success");
    let task_id = body["data"]["task_id"].as_str().unwrap().to_string();
    assert!(
        body["data"]["state_code"].as_i64().unwrap() <= 1,
        "async create returns at once: {body}"
    );
    let done = a
        .poll(
            &format!("/get_backup?backup_name={name}"),
            Duration::from_secs(180),
            |d| d["state_code"].as_i64().unwrap() >= 2,
        )
        .await;
    assert_eq!(done["state_code"], 2, "{done}");
    assert_eq!(done["progress"], 100);
    assert!(done["size"].as_i64().unwrap() > 0);
    let mut names: Vec<String> = done["collection_backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}.{}",
                c["db_name"].as_str().unwrap(),
                c["collection_name"].as_str().unwrap()
            )
        })
        .collect();
    names.sort();
    let mut want = full_names(&colls);
    want.sort();
    assert_eq!(names, want);
    // By the task's id and by the backup's own id, on the other server too
    // (which did not make it: read from storage).
    let (_, by_task) = a.get(&format!("/get_backup?backup_id={task_id}")).await;
    assert_eq!(by_task["data"]["name"], name.as_str());
    let backup_id = done["id"].as_str().unwrap();
    let (status, by_id) = b.get(&format!("/get_backup?backup_id={backup_id}")).await;
    assert_eq!(status, 200, "{by_id}");
    assert_eq!(by_id["data"]["name"], name.as_str());
    assert_eq!(by_id["data"]["state_code"], 2);

    let suffix = format!("_h{}", &name[name.len() - 6..]);
    let (status, body) = b
        .post(
            "/restore",
            json!({"backup_name": name, "collection_suffix": suffix, "async": true, "restoreIndex": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let restore_id = body["data"]["id"].as_str().unwrap().to_string();
    let restored = b
        .poll(
            &format!("/get_restore?id={restore_id}"),
            Duration::from_secs(300),
            |d| d["state_code"].as_i64().unwrap() >= 2,
        )
        .await;
    assert_eq!(restored["state_code"], 2, "{restored}");
    assert_eq!(restored["progress"], 100);
    let subtasks = restored["collection_restore_tasks"].as_array().unwrap();
    assert_eq!(subtasks.len(), colls.len());
    for t in subtasks {
        assert_eq!(t["state_code"], 2, "{t}");
        assert!(t["target_collection_name"]
            .as_str()
            .unwrap()
            .ends_with(&suffix));
    }
    // The helpers block on their own runtime.
    let (check, suffix2) = (colls.clone(), suffix.clone());
    tokio::task::spawn_blocking(move || {
        for g in &check {
            let target = format!("{}{suffix2}", g.name);
            assert_same_collection("A", g, "B", &g.db, &target);
            drop_collection("B", &g.db, &target);
        }
    })
    .await
    .unwrap();

    let text = a
        .http
        .get(format!("{}/api/v1/metrics", a.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("milvus_backup_backups_total{outcome=\"success\"} 1"),
        "{text}"
    );
    for g in &colls {
        assert!(
            text.contains(&format!(
                "milvus_backup_last_success_timestamp_seconds{{collection=\"{}\"}}",
                g.full_name()
            )),
            "{text}"
        );
    }
    let text_b = b
        .http
        .get(format!("{}/api/v1/metrics", b.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text_b.contains("milvus_backup_restores_total{outcome=\"success\"} 1"),
        "{text_b}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rb_rbac_over_rest_creates_and_plans_users_and_roles() {
    let root = unique("rb_srv");
    let src = Server::start(&auth_config_yaml("AUTH", &root), &[], &[]).await;
    let name = unique("rb_srv");
    let (status, body) = src
        .post("/create", json!({"backup_name": name, "rbac": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let ctx = Context::open(&config(&auth_config_yaml("AUTH", &root), &[])).unwrap();
    let info = milvus_backup_core::repo::catalog::get(&ctx.backup_storage, &name)
        .await
        .unwrap();
    let rbac = info.rbac_meta.expect("rbac_meta recorded");
    assert!(rbac.users.iter().any(|u| u.user == "root"), "{rbac:?}");
    assert!(rbac.roles.iter().any(|r| r.name == "public"), "{rbac:?}");
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwords");
    std::fs::write(&pw, "nobody:nothing\n").unwrap();
    let dst = Server::start(&auth_config_yaml("AUTH2", &root), &[], &[]).await;
    let (status, body) = dst
        .post(
            "/restore",
            json!({"backup_name": name, "rbac": true, "dry_run": true,
                   "rbacUserPasswordFile": pw.to_str().unwrap()}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let plan = &body["data"]["plan"]["rbac"];
    let root_user = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "user" && i["name"] == "root")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(root_user["action"], "existing");
    let (status, _) = src.delete(&format!("/delete?backup_name={name}")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_create_returns_the_whole_brief_and_names_are_unique() {
    let g = pick(&["all_types"]).remove(0);
    let root = unique("srv_sync");
    let s = Server::start(&config_yaml("A", &root), &[], &[]).await;
    let name = unique("srv_sync");
    let (status, body) = s
        .post(
            "/create",
            json!({"backup_name": name, "collection_names": [g.full_name()], "compress": "zstd"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let d = &body["data"];
    assert_eq!(d["state_code"], 2, "{body}");
    assert_eq!(d["name"], name.as_str());
    assert!(d["size"].as_i64().unwrap() > 0);
    let c = &d["collection_backups"][0];
    assert_eq!(c["collection_name"], g.name.as_str());
    assert_eq!(c["db_name"], g.db.as_str());
    assert!(
        ["Loaded", "NotLoad"].contains(&c["load_state"].as_str().unwrap()),
        "{c}"
    );
    assert!(!c["index_infos"].as_array().unwrap().is_empty(), "{c}");
    let entities: i64 = c["partition_backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["entities"].as_i64().unwrap())
        .sum();
    assert!(
        entities >= g.rows,
        "{entities} entities for {} rows",
        g.rows
    );

    // The same name again: refused, and the backup is untouched.
    let (status, again) = s
        .post(
            "/create",
            json!({"backup_name": name, "collection_names": [g.full_name()]}),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    assert!(again["msg"].as_str().unwrap().contains("already exists"));

    // A restore onto the live collection that must not replace it: refused,
    // with the ways out named as each route's fields, never as CLI flags.
    let (status, refused) = s
        .post(
            "/restore",
            json!({"backup_name": name, "collection_names": [g.full_name()]}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    let msg = refused["msg"].as_str().unwrap();
    assert!(
        msg.contains(r#""dropExistCollection": true"#)
            && msg.contains(r#""collection_suffix""#)
            && !msg.contains("--"),
        "{msg}"
    );
    let (status, refused) = s
        .post(
            "/backup/restore",
            json!({"backup_name": name, "collections": [g.full_name()], "drop_existing": false}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    let msg = refused["message"].as_str().unwrap();
    assert!(
        msg.contains(r#""drop_existing": true"#) && !msg.contains("--"),
        "{msg}"
    );

    let (_, list) = s.get("/list").await;
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(row["state_code"], 2);

    let (status, v) = s
        .post(
            "/verify",
            json!({"backup_name": name, "deep": true, "restore_test": true}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["ok"], true, "{v}");
    let tested = &v["data"]["restore_test"]["collections"][0];
    assert_eq!(tested["collection"], g.full_name().as_str(), "{v}");
    assert!(tested["imported_rows"].as_i64().unwrap() > 0, "{v}");
    assert!(v["data"]["files"].as_u64().unwrap() > 0);
    let verify_id = v["data"]["id"].as_str().unwrap();
    let (status, again) = s.get(&format!("/get_verify?id={verify_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(again["data"]["ok"], true);

    let (status, del) = s.delete(&format!("/delete?backup_name={name}")).await;
    assert_eq!(status, 200, "{del}");
    assert!(del["data"]["deleted_objects"].as_u64().unwrap() > 0);
    let (status, gone) = s.get(&format!("/get_backup?backup_name={name}")).await;
    // The task record says it succeeded, the backup is gone.
    assert_eq!(status, 404, "{gone}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unpersisted_deletes_are_refused_in_the_requests_words_and_allowed_by_its_field() {
    // Milvus 2.2.16: 5 rows of a flushed segment deleted right now.
    let coll = unique("srv_late");
    let c = coll.clone();
    tokio::task::spawn_blocking(move || gen_data("V22", &["late-deletes", "--collection", &c]))
        .await
        .unwrap();
    let root = unique("srv_late");
    let s = Server::start(&config_yaml("V22", &root), &[], &[]).await;
    let name = unique("srv_late");
    let (status, body) = s
        .post(
            "/create",
            json!({"backup_name": name, "collection_names": [coll]}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let msg = body["msg"].as_str().unwrap();
    assert!(
        msg.contains("5 deletes are not yet persisted")
            && msg.contains(r#""allow_unpersisted_deletes": true"#)
            && msg.contains(r#""format": "parquet""#)
            && !msg.contains("--allow"),
        "{msg}"
    );
    // The task is failed, and nothing of the backup is in storage.
    let (_, got) = s.get(&format!("/get_backup?backup_name={name}")).await;
    assert_eq!(got["data"]["state_code"], 3, "{got}");
    let (_, list) = s.get("/list").await;
    assert!(
        !list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == name.as_str()),
        "{list}"
    );

    let (status, body) = s
        .post(
            "/create",
            json!({"backup_name": name, "collection_names": [coll], "allow_unpersisted_deletes": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = s.get("/list").await;
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == name.as_str()
            && r["state_code"] == 2
            && r["unpersisted_deletes"] == 5));
    let (status, _) = s.delete(&format!("/delete?backup_name={name}")).await;
    assert_eq!(status, 200);
    tokio::task::spawn_blocking(move || drop_collection("V22", "default", &coll))
        .await
        .unwrap();
}

/// Starts an async create slowed down to one copy at a time; returns its
/// task id once its record is in storage and it is still running, or
/// `None` when it finished before that.
async fn start_slow_create(s: &Server, yaml: &str, name: &str) -> Option<String> {
    let all: Vec<String> = generated("A").iter().map(|g| g.full_name()).collect();
    let (status, body) = s
        .post(
            "/create",
            json!({"backup_name": name, "collection_names": all, "async": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["task_id"].as_str().unwrap().to_string();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(r) = stored_record(yaml, &id).await {
            let (_, now) = s.get(&format!("/get_backup?backup_id={id}")).await;
            if r["state"] == "executing" && now["data"]["state_code"] == 1 {
                return Some(id);
            }
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no task record for {id} in storage after 20 s");
}

const SLOW: &str = "backup.parallelism.copydata=1";

#[tokio::test(flavor = "multi_thread")]
async fn cancel_stops_a_running_create_and_leaves_no_backup() {
    let root = unique("srv_cancel");
    let yaml = config_yaml("A", &root);
    let s = Server::start(&yaml, &[SLOW.to_string()], &[]).await;
    for attempt in 0..4 {
        let name = unique("srv_cancel");
        let Some(id) = start_slow_create(&s, &yaml, &name).await else {
            continue;
        };
        // The name is taken while its create runs (or exists once it ended).
        let (status, dup) = s
            .post("/create", json!({"backup_name": name, "async": true}))
            .await;
        assert_eq!(status, 409, "{dup}");
        let msg = dup["msg"].as_str().unwrap();
        if msg.contains("already exists") {
            continue;
        }
        assert!(msg.contains("being created"), "{dup}");
        let (status, body) = s.post(&format!("/cancel?id={id}"), json!({})).await;
        if status == 409
            && body["msg"]
                .as_str()
                .unwrap()
                .contains("before it could be cancelled")
        {
            assert!(attempt < 3, "every create finished before the cancel");
            continue;
        }
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["state"], "cancelled", "{body}");
        assert_eq!(body["data"]["state_code"], 3);

        let (status, b) = s.get(&format!("/get_backup?backup_name={name}")).await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(b["data"]["state"], "cancelled");
        assert_eq!(b["data"]["state_code"], 3);
        let (_, list) = s.get("/list").await;
        assert!(
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["name"] != name.as_str()),
            "cancelled backup listed: {list}"
        );
        assert!(
            !backup_objects(&yaml, &name).await,
            "files of the cancelled backup remain"
        );
        let rec = stored_record(&yaml, &id).await.unwrap();
        assert_eq!(rec["state"], "cancelled");
        // Nothing left to cancel; the name is free again.
        let (status, again) = s.post(&format!("/cancel?id={id}"), json!({})).await;
        assert_eq!(status, 409, "{again}");
        let text = s
            .http
            .get(format!("{}/api/v1/metrics", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("milvus_backup_backups_total{outcome=\"cancelled\"} 1"),
            "{text}"
        );
        return;
    }
    panic!("no create ran long enough to be cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_server_answers_for_earlier_tasks() {
    let g = pick(&["varchar_pk"]).remove(0);
    let root = unique("srv_restart");
    let yaml = config_yaml("A", &root);
    let mut first = Server::start(&yaml, &[SLOW.to_string()], &[]).await;

    // A finished create and verify, then a create killed mid-way.
    let done_name = unique("srv_done");
    let (status, body) = first
        .post(
            "/create",
            json!({"backup_name": done_name, "collection_names": [g.full_name()]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let done_task = body["data"]["task_id"].as_str().unwrap().to_string();
    let (_, v) = first
        .post("/verify", json!({"backup_name": done_name}))
        .await;
    let verify_id = v["data"]["id"].as_str().unwrap().to_string();
    let mut running = None;
    for _ in 0..4 {
        let name = unique("srv_crash");
        if let Some(id) = start_slow_create(&first, &yaml, &name).await {
            running = Some((id, name));
            break;
        }
    }
    let (crashed_id, crashed_name) = running.expect("a create ran long enough to be killed");
    first.crash();

    let second = Server::start(&yaml, &[], &[]).await;
    let (status, b) = second
        .get(&format!("/get_backup?backup_id={crashed_id}"))
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["data"]["state_code"], 3, "{b}");
    assert_eq!(b["data"]["state"], "interrupted");
    assert!(b["data"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("interrupted"));
    let (_, b) = second
        .get(&format!("/get_backup?backup_name={crashed_name}"))
        .await;
    assert_eq!(b["data"]["state"], "interrupted", "{b}");
    let (_, d) = second
        .get(&format!("/get_backup?backup_id={done_task}"))
        .await;
    assert_eq!(d["data"]["state_code"], 2, "{d}");
    assert_eq!(d["data"]["name"], done_name.as_str());
    let (status, v) = second.get(&format!("/get_verify?id={verify_id}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["ok"], true);
    let (_, tasks) = second.get("/tasks").await;
    assert!(
        tasks["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] != "executing" && t["state"] != "initial"),
        "{tasks}"
    );
    // POST /resume finishes what the crash left, as a new task; a task
    // that succeeded has nothing to resume.
    let (status, r) = second
        .post(&format!("/resume?id={done_task}"), json!({}))
        .await;
    assert_eq!(status, 409, "{r}");
    let (status, r) = second.post("/resume?id=no_such_task", json!({})).await;
    assert_eq!(status, 404, "{r}");
    let (status, r) = second
        .post(&format!("/resume?id={crashed_id}"), json!({}))
        .await;
    assert_eq!(status, 200, "{r}");
    let resumed = r["data"]["id"].as_str().unwrap().to_string();
    let done = second
        .poll(
            &format!("/get_backup?backup_id={resumed}"),
            Duration::from_secs(180),
            |d| d["state_code"] == 2 || d["state_code"] == 3,
        )
        .await;
    assert_eq!(done["state_code"], 2, "{done}");
    let (status, b) = second
        .get(&format!("/get_backup?backup_name={crashed_name}"))
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["data"]["state_code"], 2, "complete now: {b}");
    let (status, _) = second
        .delete(&format!("/delete?backup_name={crashed_name}"))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_marks_running_tasks_interrupted() {
    let root = unique("srv_term");
    let yaml = config_yaml("A", &root);
    let mut s = Server::start(&yaml, &[SLOW.to_string()], &[]).await;
    let mut running = None;
    for _ in 0..4 {
        let name = unique("srv_term");
        if let Some(id) = start_slow_create(&s, &yaml, &name).await {
            running = Some((id, name));
            break;
        }
    }
    let (id, name) = running.expect("a create ran long enough to be interrupted");
    let status = s.terminate();
    assert!(status.success(), "exit status {status}: {}", s.log_text());
    let rec = stored_record(&yaml, &id).await.unwrap();
    assert_eq!(rec["state"], "interrupted", "{rec}");
    assert!(
        !backup_objects(&yaml, &name).await,
        "an interrupted create leaves no files"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_is_required_when_configured() {
    let token = format!("tok{}", uuid::Uuid::new_v4().simple());
    let root = unique("srv_auth");
    let mut s = Server::start(
        &config_yaml("A", &root),
        &[],
        &[("MILVUS_BACKUP_AUTH_TOKEN", token.as_str())],
    )
    .await;
    // With the token.
    let (status, body) = s.get("/list").await;
    assert_eq!(status, 200, "{body}");
    // Without it, or with a wrong one: 401 everywhere but /healthz.
    s.token = None;
    for path in ["/list", "/hello", "/tasks", "/get_backup?backup_name=x"] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body["msg"].as_str().unwrap().contains("Bearer"), "{body}");
    }
    let (status, _) = s.post("/create", json!({"backup_name": "x"})).await;
    assert_eq!(status, 401);
    // The guide's routes too, in their envelope.
    let (status, body) = s.get("/backup/list").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("Bearer"),
        "{body}"
    );
    let docs = s
        .http
        .get(format!("{}/api/v1/docs/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status().as_u16(), 401);
    let (status, _) = s.get("/healthz").await;
    assert_eq!(status, 200);
    s.token = Some("wrong".into());
    let (status, body) = s.get("/list").await;
    assert_eq!(status, 401, "{body}");
    assert!(!s.log_text().contains(&token), "the token is in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_4xx_with_a_message() {
    let s = Server::start(&config_yaml("A", &unique("srv_bad")), &[], &[]).await;
    let cases: Vec<(u16, (u16, Value), &str)> = vec![
        (
            400,
            s.post_raw("/create", "{not json".into()).await,
            "not valid JSON",
        ),
        (400, s.post_raw("/create", "".into()).await, "empty"),
        (
            // Fields the Go tool's clients send are accepted.
            404,
            s.post(
                "/restore",
                json!({"backup_name": "no_such_backup_x", "requestId": "r1",
                       "bucket_name": "", "skipParams": {}, "useV2Restore": false}),
            )
            .await,
            "not found",
        ),
        (
            400,
            s.post(
                "/restore",
                json!({"backup_name": "ok_name", "dropExistColection": true}),
            )
            .await,
            "did you mean `dropExistCollection`?",
        ),
        (
            400,
            s.post("/create", json!({"backup_name": "ok_name", "zzz": 1}))
                .await,
            "unknown field `zzz` in the request body — the fields are: backup_name,",
        ),
        (
            400,
            s.post_raw("/create", "[1, 2]".into()).await,
            "JSON object",
        ),
        (
            400,
            s.post("/create", json!({"backup_name": "bad/name"})).await,
            "invalid backup name",
        ),
        (
            400,
            s.post(
                "/create",
                json!({"backup_name": "ok_name", "collection_names": "notalist"}),
            )
            .await,
            "invalid request",
        ),
        (
            400,
            s.post("/create", json!({"db_collections": "{broken"}))
                .await,
            "db_collections",
        ),
        (
            404,
            s.post(
                "/create",
                json!({"backup_name": unique("nf"), "collection_names": ["no_such_collection_x"]}),
            )
            .await,
            "not found",
        ),
        (
            404,
            s.get("/get_backup?backup_name=no_such_backup_x").await,
            "not found",
        ),
        (400, s.get("/get_backup").await, "backup_name or backup_id"),
        (
            404,
            s.get("/get_backup?backup_id=no-such-id").await,
            "no backup",
        ),
        (
            400,
            s.get("/get_backup?backup_name=bad%2Fname").await,
            "invalid backup name",
        ),
        (
            404,
            s.get("/get_restore?id=no-such-task").await,
            "no restore task",
        ),
        (400, s.get("/get_restore").await, "id"),
        (
            404,
            s.post("/cancel?id=no-such-task", json!({})).await,
            "no task",
        ),
        (
            404,
            s.get("/get_verify?id=no-such-task").await,
            "no verify task",
        ),
        (
            404,
            s.delete("/delete?backup_name=no_such_backup_x").await,
            "not found",
        ),
        (
            400,
            s.delete("/delete?backup_name=bad%2Fname").await,
            "invalid backup name",
        ),
        (
            400,
            s.post("/restore", json!({})).await,
            "backup_name is required",
        ),
        (
            404,
            s.post("/restore", json!({"backup_name": "no_such_backup_x"}))
                .await,
            "not found",
        ),
        (
            400,
            s.post("/restore", json!({"backup_name": "x", "id": "bad id!"}))
                .await,
            "not a valid task id",
        ),
        (
            404,
            s.post("/verify", json!({"backup_name": "no_such_backup_x"}))
                .await,
            "not found",
        ),
        (400, s.get("/tasks?kind=nonsense").await, "not a task kind"),
        (404, s.get("/no_such_route").await, "no route"),
    ];
    for (want, (status, body), needle) in cases {
        assert_eq!(status, want, "{body}");
        assert_ne!(body["code"], 0, "{body}");
        let msg = body["msg"].as_str().unwrap();
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
        assert!(body["requestId"].as_str().is_some_and(|r| !r.is_empty()));
    }
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    // The run backs up Milvus V22 (which the other tests only read), with
    // its generated data in place first.
    generated("V22");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/schemathesis.sh"))
        .arg(bin())
        .env("MBT_ST_INSTANCE", "V22")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("SCHEMATHESIS "))
        .unwrap_or_else(|| {
            panic!(
                "no summary: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    eprintln!("{summary} ({:.0} s)", started.elapsed().as_secs_f64());
    assert!(out.status.success(), "schemathesis failed:\n{stdout}");
    assert!(summary.contains(" failures=0 "), "{summary}");
    assert!(summary.contains(" 5xx=0"), "{summary}");
    // 29 operations less the two verify routes (see schemathesis.sh).
    assert!(summary.contains("operations=27 "), "{summary}");
}

/// Polls `path` until its task ends; returns every progress value seen.
async fn progress_of(s: &Server, path: &str) -> (Vec<i64>, Value) {
    let seen = std::sync::Mutex::new(Vec::new());
    let done = s
        .poll_every(
            path,
            Duration::from_secs(600),
            Duration::from_millis(20),
            |d| {
                seen.lock().unwrap().push(d["progress"].as_i64().unwrap());
                d["state_code"].as_i64().unwrap() >= 2
            },
        )
        .await;
    (seen.into_inner().unwrap(), done)
}

fn assert_rising(what: &str, seen: &[i64]) {
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "{what}: progress went down: {seen:?}"
    );
    let mut between: Vec<i64> = seen
        .iter()
        .copied()
        .filter(|p| *p > 0 && *p < 100)
        .collect();
    between.dedup();
    assert!(
        between.len() >= 3,
        "{what}: fewer than 3 progress values between 0 and 100: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&100), "{what}: {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn async_progress_rises_through_create_and_restore() {
    let yaml = config_yaml("A", &unique("srv_prog"));
    // One file and one segment at a time, so progress moves in steps.
    let s = Server::start(
        &yaml,
        &[
            SLOW.to_string(),
            "backup.parallelism.importJob=1".to_string(),
        ],
        &[],
    )
    .await;
    // The plan says which collections make 8 segments or more.
    let all: Vec<String> = generated("A").iter().map(|g| g.full_name()).collect();
    let (status, dry) = s
        .post("/create", json!({"collection_names": all, "dry_run": true}))
        .await;
    assert_eq!(status, 200, "{dry}");
    let mut planned: Vec<(u64, String)> = dry["data"]["plan"]["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["segments"].as_u64().unwrap(),
                c["collection"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    planned.sort_by(|a, b| b.cmp(a));
    let mut colls = Vec::new();
    let mut segments = 0;
    for (n, c) in planned {
        if segments >= 8 {
            break;
        }
        segments += n;
        colls.push(c);
    }
    assert!(segments >= 8, "the generated data has {segments} segments");

    let name = unique("srv_prog");
    let (status, body) = s
        .post(
            "/create",
            json!({"backup_name": name, "collection_names": colls, "async": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (seen, done) = progress_of(&s, &format!("/get_backup?backup_name={name}")).await;
    assert_eq!(done["state_code"], 2, "{done}");
    eprintln!("create progress: {seen:?}");
    assert_rising("create", &seen);

    let suffix = format!("_p{}", &name[name.len() - 6..]);
    let (status, body) = s
        .post(
            "/restore",
            json!({"backup_name": name, "collection_suffix": suffix, "async": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_string();
    let (seen, done) = progress_of(&s, &format!("/get_restore?id={id}")).await;
    assert_eq!(done["state_code"], 2, "{done}");
    eprintln!("restore progress: {seen:?}");
    assert_rising("restore", &seen);
    let tasks = done["collection_restore_tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), colls.len());
    assert!(
        tasks
            .iter()
            .all(|t| t["progress"] == 100 && t["state_code"] == 2),
        "{done}"
    );

    tokio::task::spawn_blocking(move || {
        for c in &colls {
            let (db, coll) = c.split_once('.').unwrap();
            drop_collection("A", db, &format!("{coll}{suffix}"));
        }
    })
    .await
    .unwrap();
    let (status, _) = s.delete(&format!("/delete?backup_name={name}")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_a_password_encrypts_and_refuses_a_wrong_one() {
    let g = pick(&["varchar_pk"]).remove(0);
    let root = unique("pw_srv");
    let yaml = config_yaml("A", &root);
    let name = unique("pw_srv");
    let s = Server::start(&yaml, &[], &[("MILVUS_BACKUP_PASSWORD", "srv pass")]).await;
    let (status, body) = s
        .post(
            "/create",
            json!({"backup_name": name, "collection_names": [g.full_name()], "encrypt": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["state_code"], 2, "{body}");
    // Sealed for the root key the password unlocks.
    let plain = Context::open(&config(&yaml, &[])).unwrap().backup_storage;
    assert!(plain.stat(layout::ROOT_KEY).await.unwrap().is_some());
    let full = plain
        .read(&layout::backup_meta_file(&name, layout::FULL_META))
        .await
        .unwrap();
    assert!(milvus_backup_core::codec::key::is_sealed(&full));
    let (status, b) = s.get(&format!("/get_backup?backup_name={name}")).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        b["data"]["collection_backups"][0]["collection_name"],
        g.name.as_str()
    );
    let (status, v) = s
        .post("/verify", json!({"backup_name": name, "deep": true}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["ok"], true, "{v}");
    drop(s);

    // Another password: refused with one message, nothing made.
    let s = Server::start(&yaml, &[], &[("MILVUS_BACKUP_PASSWORD", "wrong-pw-xyz")]).await;
    let other = unique("pw_srv_bad");
    let (status, body) = s
        .post(
            "/create",
            json!({"backup_name": other, "collection_names": [g.full_name()], "encrypt": true}),
        )
        .await;
    assert_ne!(status, 200, "{body}");
    let msg = body["msg"].as_str().unwrap();
    assert!(msg.contains("does not unlock the root key"), "{msg}");
    assert!(
        !msg.contains("wrong-pw-xyz"),
        "no password in answers: {msg}"
    );
    assert!(!backup_objects(&yaml, &other).await);
    assert!(!s.log_text().contains("srv pass"));
    drop(s);
    plain.delete_prefix("").await.unwrap();
    milvus_backup_core::repo::catalog_index::discard(&plain).await;
}
