//! The Milvus 2.5–3.0 data model, on Milvus Lite 3.2.2 (the newest server
//! protocol here): a collection with nullable scalars, defaults, GEOMETRY,
//! TIMESTAMPTZ, an analyzer feeding a BM25 function, sparse and dense
//! vectors, arrays and JSON with nulls, a partition key and the dynamic
//! field (`scripts/gen_modern.py`), backed up and restored, exported and
//! imported, in Parquet and JSON Lines. Restored collections are compared
//! with the source row by row (every field, nulls included), by schema
//! (fields, nullable, defaults, analyzer params, functions, partition key,
//! properties, indexes) and by their BM25 top-10 hits. Targets that cannot
//! hold it (2.3.5, and 2.2.16 for arrays) refuse before creating anything.

use std::sync::OnceLock;

use crate::env::{collections_of, generated, pick, stdout_of, unique, var};
use crate::logical_backup::{run, run_json};

/// The collections `gen_modern.py generate` made on Lite (once per run).
struct Modern {
    db: String,
    modern: String,
    plain: String,
}

fn gen_modern(args: &[&str]) -> String {
    stdout_of(
        std::process::Command::new(var("MBT_PY_LITE"))
            .arg(std::path::Path::new(&var("MBT_GEN_DATA")).with_file_name("gen_modern.py"))
            .arg(args[0])
            .args([
                "--host",
                &var("MBT_LITE_HOST"),
                "--port",
                &var("MBT_LITE_PORT"),
            ])
            .args(&args[1..]),
        &format!("gen_modern {args:?}"),
    )
}

fn modern() -> &'static Modern {
    static CELL: OnceLock<Modern> = OnceLock::new();
    CELL.get_or_init(|| {
        let prefix = format!("{}m_", crate::env::gen_prefix());
        let out = gen_modern(&["generate", "--prefix", &prefix, "--rows", "3000"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let name = |suffix: &str| {
            v["collections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"].as_str().unwrap().ends_with(suffix))
                .unwrap_or_else(|| panic!("no {suffix} in {v}"))["name"]
                .as_str()
                .unwrap()
                .to_string()
        };
        Modern {
            db: "default".into(),
            modern: name("modern"),
            plain: name("plain"),
        }
    })
}

/// Schema, indexes and properties of a collection, without what names it.
fn describe(db: &str, name: &str) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&gen_modern(&["describe", "--db", db, "--collection", name])).unwrap();
    for k in ["aliases", "load_state"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

/// Asserts `db.target` on Lite is `source` on Lite: every row (nulls
/// included), the schema and the BM25 top-10 hits.
fn assert_same(db: &str, source: &str, target: &str) {
    assert_eq!(
        describe(db, source),
        describe(db, target),
        "schema of {db}.{target} differs from {db}.{source}"
    );
    let rows = |c: &str| gen_modern(&["dump", "--db", db, "--collection", c]);
    let (a, b) = (rows(source), rows(target));
    assert!(a.lines().count() > 2000, "{source} has rows");
    assert!(a.contains("null"), "the source has nulls");
    if a != b {
        let first = a
            .lines()
            .zip(b.lines())
            .find(|(x, y)| x != y)
            .map(|(x, y)| format!("\n{x}\n{y}"))
            .unwrap_or_default();
        panic!(
            "rows of {db}.{target} differ from {db}.{source} ({} vs {} rows){first}",
            a.lines().count(),
            b.lines().count()
        );
    }
    let bm25 = |c: &str| gen_modern(&["bm25", "--db", db, "--collection", c]);
    assert_eq!(bm25(source), bm25(target), "BM25 top-10 of {target}");
}

fn drop(db: &str, name: &str) {
    crate::env::drop_collection("LITE", db, name);
}

#[test]
fn lite_to_lite_is_faithful_in_parquet_and_json_lines() {
    let m = modern();
    let root = unique("mdroot");
    for format in ["parquet", "json"] {
        let name = format!("md_{format}_{}", &unique("x")[2..10]);
        let full = format!("{}.{}", m.db, m.modern);
        let stats = run_json(
            "LITE",
            &root,
            &[],
            &["create", "-n", &name, "-c", &full, "--format", format],
        );
        assert_eq!(stats["format"], format, "{stats}");
        let target = format!("rmd_{format}_{}", &unique("x")[2..10]);
        // The guide's flags.
        run_json(
            "LITE",
            &root,
            &[],
            &[
                "restore",
                "-n",
                &name,
                "--collection",
                &m.modern,
                "--target-collection",
                &target,
                "--restore_index",
            ],
        );
        assert_same(&m.db, &m.modern, &target);
        drop(&m.db, &target);
        run("LITE", &root, &[], &["delete", "-n", &name]);
    }
}

#[test]
fn export_and_import_on_lite_are_faithful_and_pandas_reads_the_export() {
    let m = modern();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let out_s = out.to_str().unwrap();
    let full = format!("{}.{}", m.db, m.modern);
    run("LITE", "unused", &[], &["export", "-c", &full, "-o", out_s]);
    // pandas, pyarrow and DuckDB read the folder as it is; GeoPandas reads
    // the geometry column as geometry.
    let report: serde_json::Value = serde_json::from_str(&stdout_of(
        std::process::Command::new(var("MBT_PY_LITE"))
            .arg(std::path::Path::new(&var("MBT_GEN_DATA")).with_file_name("interop.py"))
            .arg(out_s),
        "interop.py",
    ))
    .unwrap();
    let rows = report["pandas"]["rows"].as_i64().unwrap();
    assert!(rows > 2000, "{report}");
    for reader in ["pyarrow_dataset", "duckdb"] {
        assert_eq!(report[reader]["rows"], rows, "{reader}: {report}");
    }
    let dtypes = &report["pandas"]["dtypes"];
    assert_eq!(dtypes["id"], "int64", "{report}");
    assert!(
        dtypes["ts"].as_str().unwrap().starts_with("datetime64"),
        "{report}"
    );
    assert_eq!(report["geometry"]["column"], "geo", "{report}");
    assert_eq!(report["geometry"]["rows"], rows, "{report}");

    for format in ["parquet", "json"] {
        let sub = dir.path().join(format);
        let sub_s = sub.to_str().unwrap();
        let src = if format == "parquet" {
            out_s.to_string()
        } else {
            run(
                "LITE",
                "unused",
                &[],
                &["export", "-c", &full, "-o", sub_s, "--format", "json"],
            );
            sub_s.to_string()
        };
        let target = format!("imd_{format}_{}", &unique("x")[2..10]);
        run(
            "LITE",
            "unused",
            &[],
            &["import", "-i", &src, "-c", &target, "--create"],
        );
        // an import creates no indexes: the schema without them, and rows
        let schema = |c: &str| {
            let mut d = describe(&m.db, c);
            d.as_object_mut().unwrap().remove("indexes");
            d
        };
        assert_eq!(schema(&m.modern), schema(&target), "schema of {target}");
        let rows = |c: &str| gen_modern(&["dump", "--db", &m.db, "--collection", c]);
        assert_eq!(rows(&m.modern), rows(&target), "rows of {target}");
        drop(&m.db, &target);
    }
}

#[test]
fn a_target_that_cannot_hold_the_backup_refuses_before_creating_anything() {
    let m = modern();
    let root = unique("mdroot");
    let name = format!("md_mixed_{}", &unique("x")[2..10]);
    let both = format!("{}.{},{}.{}", m.db, m.modern, m.db, m.plain);
    run_json("LITE", &root, &[], &["create", "-n", &name, "-c", &both]);
    generated("A");
    let suffix = format!("_r{}", &unique("x")[2..8]);
    // What this restore would create (other tests create their own
    // collections on A meanwhile).
    let ours = |suffix: &str| -> Vec<String> {
        collections_of("A")
            .into_iter()
            .filter(|c| c.ends_with(suffix))
            .collect()
    };
    let (_d, cfg) = crate::env::config_file(&crate::env::guide_yaml("A", &root));
    let out = crate::env::cli()
        .arg("--config")
        .arg(&cfg)
        .args(["restore", "-n", &name, "-s", &suffix])
        .assert()
        .code(8);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    for what in [
        ".n_int32: nullable fields (needs Milvus 2.5.0 or later)",
        ".geo: GEOMETRY fields",
        ".ts: TIMESTAMPTZ fields",
        ".body_bm25: BM25 functions",
        "--skip-unsupported",
    ] {
        assert!(err.contains(what), "{what} in: {err}");
    }
    assert_eq!(ours(&suffix), Vec::<String>::new(), "nothing created");

    // With --skip-unsupported only the plain collection is restored.
    let stats = crate::env::run(
        &cfg,
        &[],
        &["restore", "-n", &name, "-s", &suffix, "--skip-unsupported"],
    );
    assert_eq!(stats["collections"], 1, "{stats}");
    assert_eq!(
        stats["skipped"][0]["collection"],
        format!("{}.{}", m.db, m.modern),
        "{stats}"
    );
    assert_eq!(ours(&suffix), [format!("default.{}{suffix}", m.plain)]);
    crate::env::drop_collection("A", "default", &format!("{}{suffix}", m.plain));
    run("LITE", &root, &[], &["delete", "-n", &name]);
}

#[test]
fn arrays_are_refused_by_the_preflight_on_milvus_2_2() {
    let root = unique("mdroot");
    let g = pick("A", &["all_types"]).remove(0);
    let name = format!("md_arrays_{}", &unique("x")[2..10]);
    {
        let _turn = crate::env::source_release_turn();
        run_json(
            "A",
            &root,
            &[],
            &[
                "create",
                "-n",
                &name,
                "-c",
                &g.full_name(),
                "--format",
                "parquet",
            ],
        );
    }
    generated("V22");
    let (_d, cfg) = crate::env::config_file(&crate::env::guide_yaml("V22", &root));
    let out = crate::env::cli()
        .arg("--config")
        .arg(&cfg)
        .args([
            "restore",
            "-n",
            &name,
            "-r",
            &format!("{}:default.rmd_arrays", g.full_name()),
        ])
        .assert()
        .code(8);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("ARRAY fields (needs Milvus 2.3.0 or later)")
            && !err.contains("CreateCollection"),
        "{err}"
    );
    assert!(
        !collections_of("V22")
            .iter()
            .any(|c| c.ends_with(".rmd_arrays")),
        "nothing created"
    );
    run("A", &root, &[], &["delete", "-n", &name]);
}

/// A database's properties as pymilvus reads them (`name` left out).
fn database_properties(db: &str) -> serde_json::Value {
    let code = format!(
        "import json; from pymilvus import MilvusClient; \
         d = MilvusClient(uri='http://{}:{}').describe_database('{db}'); d.pop('name'); \
         print(json.dumps(d, sort_keys=True))",
        var("MBT_LITE_HOST"),
        var("MBT_LITE_PORT")
    );
    serde_json::from_str(&stdout_of(
        std::process::Command::new(var("MBT_PY_LITE")).args(["-c", &code]),
        "describe_database",
    ))
    .unwrap()
}

#[test]
fn a_database_restored_anew_gets_its_properties_back() {
    let u = &unique("x")[2..8];
    let prefix = format!("mdb_{u}_");
    let (db, db2) = (format!("{prefix}db"), format!("{prefix}db2"));
    gen_modern(&[
        "generate", "--prefix", &prefix, "--rows", "200", "--db", &db,
    ]);
    let props = database_properties(&db);
    assert_eq!(props["database.max.collections"], "64", "{props}");
    let root = unique("mdroot");
    let name = format!("md_db_{u}");
    let plain = format!("{db}.{prefix}plain");
    run_json("LITE", &root, &[], &["create", "-n", &name, "-c", &plain]);
    run_json(
        "LITE",
        &root,
        &[],
        &["restore", "-n", &name, "-r", &format!("{db}.*:{db2}.*")],
    );
    assert_eq!(database_properties(&db2), props);
    run("LITE", &root, &[], &["delete", "-n", &name]);
    // the collections in both databases, then the databases
    gen_modern(&["drop", "--prefix", &prefix]);
}
