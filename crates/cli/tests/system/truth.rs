//! Issue 24: what the guide's workflows leave is true. Backup names with
//! dots in every command; `check` under the guide's config; the restore
//! test of a logical backup that compares rows (and catches a value that
//! checksums cannot), with the verdict shown by `list` and `get`; a backup
//! of everything that leaves out a collection Milvus cannot read (exit 11,
//! the scheduler's run `partial`, alerted); failed runs of the command
//! line counted by `status`. Against Milvus A and the S3 service, with the
//! user guide's config (logical backups).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use milvus_backup_core::model::layout;
use milvus_backup_core::storage::Storage;
use milvus_backup_core::Context;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::env::{cli, config, config_file, guide_yaml, stdout_of, unique, var};

/// pymilvus 2.3: `make DB` creates database DB with `auto_pk` (autoID
/// int64 keys) and `str_pk` (varchar keys), 30 rows each, indexed and
/// loaded, and `no_index` (10 rows, no index, not loaded); `drop DB`
/// drops it all.
const HELPER: &str = r#"
import json, random, sys
from pymilvus import connections, db, utility, Collection, CollectionSchema, FieldSchema, DataType
host, port, op, name = sys.argv[1:5]
connections.connect(host=host, port=port)
if op == "drop":
    if name in db.list_database():
        db.using_database(name)
        for c in utility.list_collections():
            utility.drop_collection(c)
        db.using_database("default")
        db.drop_database(name)
    sys.exit(0)
db.create_database(name)
db.using_database(name)
def make(coll, varchar_pk, n, indexed):
    pk = (FieldSchema("id", DataType.VARCHAR, is_primary=True, max_length=64) if varchar_pk
          else FieldSchema("id", DataType.INT64, is_primary=True, auto_id=True))
    fields = [pk, FieldSchema("n", DataType.INT64), FieldSchema("tag", DataType.VARCHAR, max_length=32),
              FieldSchema("v", DataType.FLOAT_VECTOR, dim=4)]
    c = Collection(coll, CollectionSchema(fields, description="issue 24"))
    r = random.Random(coll)
    cols = [[f"k{i:04d}" for i in range(n)]] if varchar_pk else []
    cols += [[i * 10 for i in range(n)], [f"t{i}" for i in range(n)],
             [[r.random() for _ in range(4)] for _ in range(n)]]
    c.insert(cols)
    if indexed:
        c.create_index("v", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
        c.load()
make("auto_pk", False, 30, True)
make("str_pk", True, 30, True)
make("no_index", False, 10, False)
print(json.dumps({"db": name}))
"#;

/// A database of the test's own on Milvus A (see [`HELPER`]), dropped
/// when the test ends.
struct TestDb(String);

impl TestDb {
    fn new(tag: &str) -> TestDb {
        let name = unique(tag);
        helper(&["make", &name]);
        TestDb(name)
    }

    fn coll(&self, name: &str) -> String {
        format!("{}.{name}", self.0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| helper(&["drop", &self.0]));
    }
}

fn helper(args: &[&str]) -> String {
    stdout_of(
        Command::new(var("MBT_PY_23"))
            .arg("-c")
            .arg(HELPER)
            .arg(var("MBT_A_HOST"))
            .arg(var("MBT_A_PORT"))
            .args(args),
        &format!("pymilvus helper {args:?}"),
    )
}

/// The user guide's config for A, backups under `root`, plus `extra`.
fn guide(root: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    config_file(&format!("{}{extra}", guide_yaml("A", root)))
}

fn backup_storage(root: &str) -> Storage {
    Context::open(&config(&guide_yaml("A", root), &[]))
        .unwrap()
        .backup_storage
}

/// Runs the CLI: exit code, stdout, stderr.
fn run(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let out = cli().arg("--config").arg(cfg).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the CLI with `--json`; exit code and the answer.
fn run_json(cfg: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(cfg, &all);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v)
}

fn list_row(cfg: &Path, name: &str) -> Option<Value> {
    let (code, rows) = run_json(cfg, &["list"]);
    assert_eq!(code, 0, "{rows}");
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
}

// ---------------------------------------------------------------- item 3

/// `rag_version_v1.0`-style names work in create, list, get, verify,
/// restore and delete; `--help` and the refusal say the rule.
#[test]
fn t24_a_dotted_backup_name_works_in_every_command() {
    let db = TestDb::new("t24_names");
    let root = unique("t24_names");
    let (_d, cfg) = guide(&root, "");
    let name = format!("{}_v1.0", unique("rag_version"));
    let (code, out, err) = run(&cfg, &["create", "-n", &name, "-c", &db.coll("str_pk")]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("Backup name: {name}")), "{out}");
    let row = list_row(&cfg, &name).expect("listed");
    assert_eq!(row["state"], "complete", "{row}");
    assert_eq!(row["entities"], 30, "{row}");
    let (code, out, _) = run(&cfg, &["list", "--collection", &db.coll("str_pk")]);
    assert!(code == 0 && out.contains(&name), "{out}");
    let (code, out, err) = run(&cfg, &["get", "-n", &name]);
    assert!(
        code == 0 && out.contains(&format!("name:           {name}")),
        "{out}\n{err}"
    );
    let (code, out, err) = run(&cfg, &["verify", "-n", &name, "--deep"]);
    assert!(
        code == 0 && out.contains(&format!("OK   {name}")),
        "{out}\n{err}"
    );
    let target = format!("{}.restored", db.0);
    let (code, out, err) = run(
        &cfg,
        &[
            "restore",
            "-n",
            &name,
            "-r",
            &format!("{}:{target}", db.coll("str_pk")),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("30"), "{out}");
    let (code, out, err) = run(&cfg, &["delete", "-n", &name]);
    assert!(code == 0 && out.contains(&name), "{out}\n{err}");
    assert!(list_row(&cfg, &name).is_none());

    // The rule, in --help and in the refusal of a name that breaks it.
    let (_, help, _) = run(&cfg, &["create", "--help"]);
    assert!(help.contains("rag_version_v1.0"), "{help}");
    for bad in ["a/b", "..", ".hidden", "v1.", "a b"] {
        let (code, _, err) = run(&cfg, &["create", "-n", bad, "-c", &db.coll("str_pk")]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(
            err.contains("invalid backup name")
                && err.contains("letters, digits, `_`, `-` and `.`"),
            "{bad}: {err}"
        );
    }
}

// ---------------------------------------------------------------- item 6

/// The guide's config names no storage for Milvus's own files: `check`
/// skips that step (rather than failing on the built-in localhost:9000)
/// and probes backup storage alone.
#[test]
fn t24_check_passes_with_the_guides_config_skipping_milvus_storage() {
    let (_d, cfg) = guide(&unique("t24_check"), "");
    let (code, out, err) = run(&cfg, &["check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("SKIP milvus storage — not configured: backups are logical (rows over gRPC)"),
        "{out}"
    );
    for step in [
        "milvus —",
        "backup storage",
        "write probe",
        "read back",
        "delete probe",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(step))
            .unwrap_or_else(|| panic!("no {step} line: {out}"));
        assert!(line.starts_with("OK"), "{line}");
    }
    assert!(
        !out.contains("FAIL") && !out.contains("localhost:9000"),
        "{out}"
    );
    assert!(out.contains("check passed"), "{out}");
    // A Milvus that is not there still fails it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, out, _) = run(&cfg, &["--set", &format!("milvus.port={port}"), "check"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("FAIL milvus —"), "{out}");
}

// ---------------------------------------------------------------- item 5

/// A changed value, -424242, that no row has.
const CHANGED: i64 = -424_242;

/// Sets `size`, `sha256` (and a stored file's plain twins) of every entry
/// for `file` in a meta document.
fn restamp(v: &mut Value, file: &str, size: usize, sha: &str) {
    match v {
        Value::Object(m) => {
            if m.get("path").and_then(Value::as_str) == Some(file) {
                for (k, new) in [
                    ("size", Value::from(size)),
                    ("sha256", Value::from(sha)),
                    ("raw_size", Value::from(size)),
                    ("raw_sha256", Value::from(sha)),
                ] {
                    if m.get(k).is_some_and(|old| !old.is_null()) {
                        m.insert(k.into(), new);
                    }
                }
            }
            m.values_mut().for_each(|x| restamp(x, file, size, sha));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| restamp(x, file, size, sha)),
        _ => {}
    }
}

/// Rewrites data file `file` of backup `name` with `edit` and every record
/// of it to match — the manifest's and the meta files' size and SHA-256,
/// and those files' SHA-256 in `summary.json` — as if the backup had been
/// made so: no checksum can tell. Only comparing rows can.
async fn rewrite_consistently(
    st: &Storage,
    name: &str,
    file: &str,
    edit: impl FnOnce(Vec<u8>) -> Vec<u8>,
) {
    let key = format!("{name}/{file}");
    let new = edit(st.read(&key).await.unwrap());
    let sha = hex::encode(Sha256::digest(&new));
    let size = new.len();
    st.write(&key, new).await.unwrap();
    let summary_key = layout::backup_meta_file(name, layout::SUMMARY);
    let mut summary: Value = serde_json::from_slice(&st.read(&summary_key).await.unwrap()).unwrap();
    for meta in [layout::MANIFEST, layout::FULL_META, layout::BACKUP_META] {
        let k = layout::backup_meta_file(name, meta);
        let mut doc: Value = serde_json::from_slice(&st.read(&k).await.unwrap()).unwrap();
        restamp(&mut doc, file, size, &sha);
        let bytes = serde_json::to_vec_pretty(&doc).unwrap();
        summary["meta_sha256"][meta] = hex::encode(Sha256::digest(&bytes)).into();
        st.write(&k, bytes).await.unwrap();
    }
    st.write(&summary_key, serde_json::to_vec_pretty(&summary).unwrap())
        .await
        .unwrap();
}

/// Field `n` of the first row of a Parquet file set to [`CHANGED`]: the
/// file written anew, and that row's key and old `n`.
fn change_parquet(bytes: Vec<u8>) -> (Vec<u8>, Value, i64) {
    use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::{arrow_reader::ParquetRecordBatchReaderBuilder, ArrowWriter};
    let batches: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let schema = batches[0].schema();
    let (n, id) = (
        schema.index_of("n").unwrap(),
        schema.index_of("id").unwrap(),
    );
    let first = &batches[0];
    let ids = first.column(id);
    let pk = match ids.as_any().downcast_ref::<Int64Array>() {
        Some(a) => Value::from(a.value(0)),
        None => Value::from(ids.as_any().downcast_ref::<StringArray>().unwrap().value(0)),
    };
    let ns = first
        .column(n)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    let old = ns.value(0);
    let mut values = ns.values().to_vec();
    values[0] = CHANGED;
    let mut columns = first.columns().to_vec();
    columns[n] = Arc::new(Int64Array::from(values));
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema.clone(), None).unwrap();
    w.write(&RecordBatch::try_new(schema, columns).unwrap())
        .unwrap();
    for b in &batches[1..] {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    (out, pk, old)
}

/// Field `n` of the first row of a JSON Lines file set to [`CHANGED`].
fn change_json_lines(bytes: Vec<u8>) -> (Vec<u8>, Value, i64) {
    let text = String::from_utf8(bytes).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut row: Value = serde_json::from_str(&lines[0]).unwrap();
    let (pk, old) = (row["id"].clone(), row["n"].as_i64().unwrap());
    row["n"] = CHANGED.into();
    lines[0] = serde_json::to_string(&row).unwrap();
    ((lines.join("\n") + "\n").into_bytes(), pk, old)
}

/// `verify --restore-test` of a logical backup restores its rows and
/// compares them: a good backup passes with every row counted and the
/// sample compared; one value changed in a data file (its checksums made
/// to agree, so `verify --deep` passes) fails the restore test, which
/// names the row and the field. The verdict is kept: `list` shows the
/// backup damaged, `get` says so.
async fn restore_test_compares_the_rows_of_a_logical_backup(format: &str, coll: &str) {
    let db = TestDb::new("t24_vrt");
    let root = unique("t24_vrt");
    let (_d, cfg) = guide(&root, "");
    let name = unique("t24_vrt");
    let source = db.coll(coll);
    let (code, out, err) = run(
        &cfg,
        &["create", "-n", &name, "-c", &source, "--format", format],
    );
    assert_eq!(code, 0, "{out}\n{err}");

    let (code, reports) = run_json(&cfg, &["verify", "-n", &name, "--restore-test"]);
    let report = &reports[0];
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let rt = &report["restore_test"];
    assert_eq!(rt["format"], format, "{rt}");
    let c = &rt["collections"][0];
    assert_eq!(c["collection"], source.as_str(), "{c}");
    assert!(c["files"].as_u64().unwrap() >= 1, "{c}");
    assert_eq!(
        (c["backed_up_rows"].as_i64(), c["imported_rows"].as_i64()),
        (Some(30), Some(30)),
        "{c}"
    );
    assert_eq!(c["sampled_rows"], 30, "{c}");
    assert_eq!(c["sample_compared"], true, "{c}");
    assert_eq!(c["dropped"], true, "{c}");
    let row = list_row(&cfg, &name).unwrap();
    assert_eq!(
        (&row["state"], &row["verified_ok"]),
        (&"complete".into(), &true.into()),
        "{row}"
    );

    // One value changed, every checksum made to agree.
    let st = backup_storage(&root);
    let manifest: Value = serde_json::from_slice(
        &st.read(&layout::backup_meta_file(&name, layout::MANIFEST))
            .await
            .unwrap(),
    )
    .unwrap();
    let entry = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().starts_with("data/"))
        .unwrap();
    assert!(
        entry["encoding"].is_null() || entry["encoding"]["compression"] == "none",
        "{entry}"
    );
    let file = entry["path"].as_str().unwrap().to_string();
    let changed = Mutex::new(None);
    rewrite_consistently(&st, &name, &file, |bytes| {
        let (new, pk, old) = match format {
            "parquet" => change_parquet(bytes),
            _ => change_json_lines(bytes),
        };
        *changed.lock().unwrap() = Some((pk, old));
        new
    })
    .await;
    let (pk, old) = changed.into_inner().unwrap().unwrap();
    let (code, out, err) = run(&cfg, &["verify", "-n", &name, "--deep"]);
    assert_eq!(code, 0, "checksums cannot see it: {out}\n{err}");

    let (code, out, err) = run(&cfg, &["verify", "-n", &name, "--restore-test"]);
    assert_eq!(code, 9, "{out}\n{err}");
    let says = format!(
        "BAD  {name}: data/{}/{coll}/: restore test of {source}: row with primary key {pk}: field `n` is {CHANGED}, the backup recorded {old}",
        db.0
    );
    assert!(out.contains(&says), "{says}\n{out}");
    let bad: Vec<&str> = out.lines().filter(|l| l.starts_with("BAD  ")).collect();
    assert!(bad.iter().all(|l| l.contains("restore test")), "{out}");
    for verdict in ["Checksum: OK", "Metadata: OK", "Restore test: FAILED"] {
        assert!(out.contains(verdict), "{verdict}: {out}");
    }
    assert!(!out.contains("Restore test: OK"), "{out}");

    // The verdict is kept: list and get say the backup is damaged.
    let row = list_row(&cfg, &name).unwrap();
    assert_eq!(
        (&row["state"], &row["verified_ok"]),
        (&"damaged".into(), &false.into()),
        "{row}"
    );
    let (_, table, _) = run(&cfg, &["list"]);
    let line = table.lines().find(|l| l.starts_with(&name)).unwrap();
    assert!(
        line.contains("DAMAGED") && !line.contains("complete"),
        "{line}"
    );
    let (code, out, _) = run(&cfg, &["get", "-n", &name]);
    assert!(
        code == 0 && out.contains("state:          damaged"),
        "{out}"
    );
    assert!(out.contains("field `n`"), "{out}");

    let (code, _, err) = run(&cfg, &["delete", "-n", &name]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn t24_restore_test_catches_a_changed_value_in_a_parquet_backup() {
    // autoID keys: the throwaway copy keeps the backup's, so rows are found.
    restore_test_compares_the_rows_of_a_logical_backup("parquet", "auto_pk").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn t24_restore_test_catches_a_changed_value_in_a_json_lines_backup() {
    restore_test_compares_the_rows_of_a_logical_backup("json", "str_pk").await;
}

/// A restore test that restores nothing is never OK: a logical backup
/// whose data files are gone from its records (the rows it recorded
/// kept) restores no row, and fails.
#[tokio::test(flavor = "multi_thread")]
async fn t24_a_restore_test_that_restored_nothing_fails() {
    let db = TestDb::new("t24_nothing");
    let root = unique("t24_nothing");
    let (_d, cfg) = guide(&root, "");
    let name = unique("t24_nothing");
    let (code, out, err) = run(&cfg, &["create", "-n", &name, "-c", &db.coll("str_pk")]);
    assert_eq!(code, 0, "{out}\n{err}");
    // The collection's files dropped from full_meta.json (its hash updated).
    let st = backup_storage(&root);
    let key = layout::backup_meta_file(&name, layout::FULL_META);
    let mut full: Value = serde_json::from_slice(&st.read(&key).await.unwrap()).unwrap();
    full["logical"]["collections"][0]["files"] = serde_json::json!([]);
    let bytes = serde_json::to_vec_pretty(&full).unwrap();
    let summary_key = layout::backup_meta_file(&name, layout::SUMMARY);
    let mut summary: Value = serde_json::from_slice(&st.read(&summary_key).await.unwrap()).unwrap();
    summary["meta_sha256"][layout::FULL_META] = hex::encode(Sha256::digest(&bytes)).into();
    st.write(&key, bytes).await.unwrap();
    st.write(&summary_key, serde_json::to_vec_pretty(&summary).unwrap())
        .await
        .unwrap();
    let (code, out, err) = run(&cfg, &["verify", "-n", &name, "--restore-test"]);
    assert_eq!(code, 9, "{out}\n{err}");
    assert!(
        out.contains("Restore test: FAILED") && !out.contains("Restore test: OK"),
        "{out}"
    );
    assert!(out.contains("0 rows imported of 30 backed up"), "{out}");
    run(&cfg, &["delete", "-n", &name]);
}

// ---------------------------------------------------------------- item 7

type Hooks = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on a free port: every POSTed JSON body is kept.
fn receiver() -> (String, Hooks) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Hooks = Arc::default();
    let keep = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let body = loop {
                let n = conn.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break Some(buf[end + 4..end + 4 + len].to_vec());
                }
            };
            if let Some(v) = body.and_then(|b| serde_json::from_slice(&b).ok()) {
                keep.lock().unwrap().push(v);
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (url, got)
}

/// A backup of a whole database (not named one by one) keeps a collection
/// Milvus cannot read (no index, not loaded) with its schema and no rows,
/// marks it, warns and exits 11; named with `-c` it still fails. The
/// scheduler's backup of everything records the run as `partial`, alerts,
/// and `status` warns.
#[test]
fn t24_an_unreadable_collection_is_left_out_of_a_backup_of_everything() {
    let db = TestDb::new("t24_left");
    let root = unique("t24_left");
    let (url, hooks) = receiver();
    let strategy = format!(
        "\nbackup_strategy:\n  full_backup: {{ schedule: \"0 0 1 1 *\", retention: 5 }}\n  filter: \"{}.*\"\n  alerts: {{ webhook: \"{url}\" }}\n",
        db.0
    );
    let (_d, cfg) = guide(&root, &strategy);
    let unreadable = db.coll("no_index");

    let name = unique("t24_left");
    let (code, out, err) = run(&cfg, &["create", "-n", &name, "-d", &db.0]);
    assert_eq!(code, 11, "{out}\n{err}");
    assert!(
        out.contains("Backup created with 1 collection(s) left out"),
        "{out}"
    );
    assert!(
        err.contains("completed with 1 collection(s) left out")
            && err.contains(&format!("{unreadable}: is not loaded and has no index")),
        "{err}"
    );
    let (code, info) = run_json(&cfg, &["get", "-n", &name]);
    assert_eq!(code, 0, "{info}");
    assert_eq!(
        info["left_out"][0]["collection"],
        unreadable.as_str(),
        "{info}"
    );
    assert_eq!(info["left_out"].as_array().unwrap().len(), 1, "{info}");
    let kept = info["collection_backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["collection_name"] == "no_index")
        .expect("its schema is in the backup");
    assert_eq!(
        kept["schema"]["fields"].as_array().unwrap().len(),
        4,
        "{kept}"
    );
    let (_, text, _) = run(&cfg, &["get", "-n", &name]);
    assert!(
        text.contains(&format!(
            "left out:       {unreadable} (schema only, no rows)"
        )),
        "{text}"
    );
    let row = list_row(&cfg, &name).unwrap();
    assert_eq!(
        row["left_out"][0]["collection"],
        unreadable.as_str(),
        "{row}"
    );
    assert_eq!(row["entities"], 60, "{row}");

    // Named one by one, it fails the backup, which leaves nothing.
    let named = unique("t24_named");
    let (code, _, err) = run(&cfg, &["create", "-n", &named, "-c", &unreadable]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not loaded and has no index"), "{err}");
    assert!(list_row(&cfg, &named).is_none());

    // The scheduler's backup of everything: partial, alerted, and status warns.
    let (code, out, err) = run(&cfg, &["schedule", "run-now", "full"]);
    assert_eq!(code, 11, "{out}\n{err}");
    assert!(err.contains(&unreadable), "{err}");
    let (_, st) = run_json(&cfg, &["schedule", "status"]);
    let full = st["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == "full")
        .unwrap();
    assert_eq!(full["last_run"]["outcome"], "partial", "{full}");
    assert_eq!(full["partial"], 1, "{full}");
    let (_, health) = run_json(&cfg, &["status"]);
    assert_eq!(health["status"], "warning", "{health}");
    assert!(
        health["failed_runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["outcome"] == "partial"
                && r["message"].as_str().unwrap().contains(&unreadable)),
        "{health}"
    );
    let alerts = hooks.lock().unwrap().clone();
    assert!(
        alerts
            .iter()
            .any(|a| a["event"] == "backup_partial"
                && a["text"].as_str().unwrap().contains(&unreadable)),
        "{alerts:?}"
    );
    // A restore of it says it comes back without rows.
    let (code, out, err) = run(
        &cfg,
        &["restore", "-n", &name, "-c", &unreadable, "-s", "_back"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains(&format!(
            "{unreadable} has no rows in backup `{name}`: it was left out when the backup was made"
        )) && err.contains("restored with its schema only"),
        "{err}"
    );
    let (code, _, err) = run(&cfg, &["delete", "--all", "--yes"]);
    assert_eq!(code, 0, "{err}");
}

// ---------------------------------------------------------------- item 8

/// Failed runs of the command line — `schedule run-now`, and `create` and
/// `replicate` under the strategy — are recorded where `status` reads
/// runs: two failed run-nows make it warn, as the server's would.
#[test]
fn t24_failed_runs_of_the_command_line_make_status_warn() {
    let root = unique("t24_runs");
    let missing = format!("default.{}", unique("t24_missing"));
    // A pattern nothing matches: each run fails ("no collections to back up").
    let strategy = format!(
        "\nbackup_strategy:\n  full_backup: {{ schedule: \"0 0 1 1 *\", retention: 2 }}\n  filter: \"{missing}\"\n"
    );
    let (_d, cfg) = guide(&root, &strategy);
    let (_, health) = run_json(&cfg, &["status"]);
    assert_eq!(health["status"], "ok", "{health}");
    for _ in 0..2 {
        let (code, out, err) = run(&cfg, &["schedule", "run-now", "full"]);
        assert_ne!(code, 0, "{out}\n{err}");
    }
    let (_, health) = run_json(&cfg, &["status"]);
    assert_eq!(health["status"], "warning", "{health}");
    let failed = health["failed_runs"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{health}");
    assert!(
        failed
            .iter()
            .all(|r| r["policy"] == "full" && r["outcome"] == "failed"),
        "{health}"
    );
    let (_, text, _) = run(&cfg, &["status"]);
    assert!(text.contains("health: WARNING"), "{text}");
    let (_, st) = run_json(&cfg, &["schedule", "status"]);
    let full = &st["policies"][0];
    assert_eq!(
        (full["runs"].as_u64(), full["failed"].as_u64()),
        (Some(2), Some(2)),
        "{st}"
    );

    // By hand, under the strategy: create and replicate are counted too.
    let (code, _, _) = run(
        &cfg,
        &["create", "-n", &unique("t24_by_hand"), "-c", &missing],
    );
    assert_ne!(code, 0);
    let (code, _, _) = run(&cfg, &["replicate", "-n", "no_such_backup"]);
    assert_ne!(code, 0);
    let (_, health) = run_json(&cfg, &["status"]);
    let kinds: Vec<&str> = health["failed_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["full", "full", "create", "replicate"], "{health}");
}
