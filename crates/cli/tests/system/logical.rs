//! `export` and `import` (logical backups: rows as Parquet or JSON over
//! gRPC) between real servers: Milvus 2.3.5 → 2.3.5, → 2.2.16, → Milvus
//! Lite, Lite → 2.3.5 and 2.2.16 → Lite. Every imported collection is
//! compared with its source row by row (every field, by primary key; for
//! the autoID collection every field but the regenerated key). Also: pyarrow
//! reads the Parquet files, pymilvus's LocalBulkWriter files import
//! row-identical, and bad files are refused before anything is inserted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::env::{
    assert_same_collection, assert_same_rows, cli, config_file, config_yaml, drop_collection, dump,
    generated, pick, source_release_turn, stdout_of, unique, var, Generated,
};

fn config_for(inst: &str) -> (tempfile::TempDir, PathBuf) {
    config_file(&config_yaml(inst, "unused"))
}

/// Runs the CLI with `--json` against `inst`; the parsed result.
fn run_json(inst: &str, args: &[&str]) -> serde_json::Value {
    let (_d, cfg) = config_for(inst);
    let out = cli()
        .arg("--json")
        .arg("--config")
        .arg(&cfg)
        .args(args)
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// One export per (instance, collection, format) and test run, shared by
/// the tests that import it.
fn exported(inst: &'static str, g: &Generated, format: &str) -> PathBuf {
    static DIRS: OnceLock<Mutex<HashMap<String, (tempfile::TempDir, serde_json::Value)>>> =
        OnceLock::new();
    let key = format!("{inst}/{}/{format}", g.full_name());
    let mut dirs = DIRS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((d, _)) = dirs.get(&key) {
        return d.path().join("x");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let stats = {
        let _turn = source_release_turn();
        run_json(
            inst,
            &[
                "export",
                "-c",
                &g.full_name(),
                "--format",
                format,
                "-o",
                out.to_str().unwrap(),
            ],
        )
    };
    assert_eq!(stats["rows"], g.rows, "{key}: {stats}");
    assert_eq!(stats["format"], format);
    for k in [
        "raw_bytes",
        "stored_bytes",
        "files",
        "duration_s",
        "rows_per_s",
    ] {
        assert!(stats[k].as_f64().unwrap() > 0.0, "{k} in {stats}");
    }
    dirs.insert(key, (dir, stats));
    out
}

/// A name for an imported collection, outside the generator's prefix (so
/// that generating data never drops it).
fn target_name(source: &str) -> String {
    format!("imp_{source}_{}", &unique("x")[2..12])
}

/// Imports an export of `g` into `to` under a new name (made from
/// _schema.json) and compares it with the source; drops it again.
fn round_trip(
    from: &'static str,
    g: &Generated,
    format: &str,
    to: &'static str,
    db: &str,
    schema: bool,
) {
    let dir = exported(from, g, format);
    if to != "B" {
        // Generating a server's data drops its prefixed collections and
        // databases: done before anything is imported there.
        generated(to);
    }
    let target = target_name(&g.name);
    let full = format!("{db}.{target}");
    let stats = run_json(
        to,
        &[
            "import",
            "-i",
            dir.to_str().unwrap(),
            "-c",
            &full,
            "--create",
        ],
    );
    assert_eq!(stats["rows"], g.rows, "{stats}");
    let auto_id = g.name.ends_with("autoid");
    assert_eq!(stats["keys_regenerated"], auto_id, "{stats}");
    if schema && !auto_id {
        assert_same_collection(from, g, to, db, &target);
    } else {
        assert_same_rows(from, g, to, db, &target, auto_id.then_some("id"));
    }
    drop_collection(to, db, &target);
}

#[test]
fn milvus_2_3_to_2_3_every_collection_as_parquet() {
    for g in generated("A") {
        round_trip("A", g, "parquet", "B", &g.db, true);
    }
}

#[test]
fn milvus_2_3_to_2_2_as_json_lines() {
    // 2.2 has no arrays and no databases: the collections it can hold.
    for g in pick(
        "A",
        &["varchar_pk", "autoid", "binary_vec", "partition_key"],
    ) {
        round_trip("A", &g, "json", "V22", "default", false);
    }
    let db2 = pick("A", &["in_db2"]).remove(0);
    round_trip("A", &db2, "json", "V22", "default", false);
}

/// The generator's collections of 2.3.5 that Milvus Lite restores.
pub(crate) const FOR_LITE: &[&str] = &[
    "all_types",
    "varchar_pk",
    "autoid",
    "partition_key",
    "in_db2",
];

#[test]
fn milvus_2_3_to_milvus_lite() {
    for g in pick("A", FOR_LITE) {
        round_trip("A", &g, "parquet", "LITE", &g.db, false);
    }
}

#[test]
fn milvus_lite_to_2_3() {
    for g in generated("LITE") {
        round_trip("LITE", g, "parquet", "A", &g.db, false);
    }
}

#[test]
fn milvus_2_2_to_milvus_lite() {
    for g in pick("V22", &["all_types", "varchar_pk", "partition_key"]) {
        round_trip("V22", &g, "json", "LITE", "default", false);
    }
}

fn python_lite(args: &[&str]) -> String {
    stdout_of(
        std::process::Command::new(var("MBT_PY_LITE"))
            .arg(logical_files_script())
            .args(args),
        &format!("logical_files.py {args:?}"),
    )
}

fn logical_files_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/logical_files.py")
}

#[test]
fn pyarrow_reads_the_parquet_files_with_the_expected_columns_and_types() {
    let all = pick("A", &["all_types"]).remove(0);
    let dir = exported("A", &all, "parquet");
    let v: serde_json::Value =
        serde_json::from_str(&python_lite(&["inspect", dir.to_str().unwrap()])).unwrap();
    assert_eq!(v["rows"], all.rows, "{v}");
    let files = v["files"].as_object().unwrap();
    assert_eq!(
        files.len(),
        all.partitions.len(),
        "a file per partition: {v}"
    );
    for p in &all.partitions {
        // pandas skips folders starting with `_`: `_default` is `part-_default`
        let dir = match p.starts_with('_') {
            true => format!("part-{p}/"),
            false => format!("{p}/"),
        };
        assert!(files.keys().any(|k| k.starts_with(&dir)), "{p}: {v}");
    }
    let cols = &files.values().next().unwrap()["columns"];
    for (name, ty) in [
        ("id", "int64"),
        ("f_bool", "bool"),
        ("f_int8", "int8"),
        ("f_int16", "int16"),
        ("f_int32", "int32"),
        ("f_float", "float"),
        ("f_double", "double"),
        ("f_varchar", "string"),
        ("f_json", "string"),
        ("f_array_int64", "list<item: int64>"),
        ("f_array_varchar", "list<item: string>"),
        ("vec", "fixed_size_list<item: float not null>[16]"),
        ("$meta", "string"),
    ] {
        assert_eq!(cols[name], ty, "column {name}: {cols}");
    }
    let bin = pick("A", &["binary_vec"]).remove(0);
    let v: serde_json::Value = serde_json::from_str(&python_lite(&[
        "inspect",
        exported("A", &bin, "parquet").to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(v["rows"], bin.rows);
    let cols = &v["files"].as_object().unwrap().values().next().unwrap()["columns"];
    assert_eq!(cols["bvec"], "fixed_size_binary[8]", "{cols}");
}

/// A directory with `_schema.json` of an export (without its file list)
/// and files written by pymilvus's LocalBulkWriter from the source's rows.
fn bulk_writer_dir(g: &Generated, format: &str) -> tempfile::TempDir {
    let export = exported("A", g, "parquet");
    let dir = tempfile::tempdir().unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("_schema.json")).unwrap()).unwrap();
    meta["files"] = serde_json::json!([]);
    std::fs::write(dir.path().join("_schema.json"), meta.to_string()).unwrap();
    let rows = dump("A", &g.db, &g.name);
    let dump_file = dir.path().join("rows.dump");
    std::fs::write(&dump_file, rows).unwrap();
    python_lite(&[
        "bulk-write",
        export.join("_schema.json").to_str().unwrap(),
        dump_file.to_str().unwrap(),
        dir.path().join("bulk").to_str().unwrap(),
        format,
    ]);
    std::fs::remove_file(&dump_file).unwrap();
    dir
}

#[test]
fn local_bulk_writer_files_import_row_identical() {
    let g = pick("A", &["all_types"]).remove(0);
    for format in ["parquet", "json"] {
        let dir = bulk_writer_dir(&g, format);
        let target = target_name(&format!("{}_bw_{format}", g.name));
        let stats = run_json(
            "B",
            &[
                "import",
                "-i",
                dir.path().to_str().unwrap(),
                "-c",
                &target,
                "--create",
            ],
        );
        assert_eq!(stats["rows"], g.rows, "{format}: {stats}");
        assert_same_rows("A", &g, "B", "default", &target, None);
        drop_collection("B", "default", &target);
    }
}

#[test]
fn bad_files_are_refused_before_anything_is_inserted() {
    let g = pick("A", &["all_types"]).remove(0);
    let export = exported("A", &g, "parquet");
    // The target: an import of the export (it holds g.rows rows).
    let target = target_name(&format!("{}_bad", g.name));
    run_json(
        "B",
        &[
            "import",
            "-i",
            export.to_str().unwrap(),
            "-c",
            &target,
            "--create",
        ],
    );
    let before = dump("B", "default", &target);
    let good = std::fs::read_dir(export.join("p1"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for (kind, column, expect) in [
        ("type", "f_int32", "the column is Utf8, but field `f_int32`"),
        (
            "dim",
            "vec",
            "has a vector of dimension 17, but field `vec`",
        ),
        (
            "missing",
            "f_varchar",
            "has no column `f_varchar`, but field `f_varchar`",
        ),
    ] {
        // A good file first: nothing of it may be inserted either.
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&good, dir.path().join("a_good.parquet")).unwrap();
        let bad = dir.path().join("b_bad.parquet");
        python_lite(&[
            "corrupt",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
            kind,
            column,
        ]);
        let (_d, cfg) = config_for("B");
        let out = cli()
            .arg("--config")
            .arg(&cfg)
            .args(["import", "-i", dir.path().to_str().unwrap(), "-c", &target])
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{kind}: one line: {stderr}");
        assert!(
            errors[0].contains("file `b_bad.parquet`"),
            "{kind}: {stderr}"
        );
        assert!(errors[0].contains(column), "{kind}: {stderr}");
        assert!(errors[0].contains(expect), "{kind}: {stderr}");
        assert_eq!(
            before,
            dump("B", "default", &target),
            "{kind}: rows changed"
        );
    }
    drop_collection("B", "default", &target);
}

#[test]
fn an_unloaded_collection_without_index_is_refused_naming_the_fix() {
    // A collection made here: no index, never loaded.
    let g = pick("A", &["varchar_pk"]).remove(0);
    let export = exported("A", &g, "parquet");
    let name = format!("noidx_{}", &unique("x")[2..]);
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("_schema.json")).unwrap()).unwrap();
    meta["collection"]["index_infos"] = serde_json::json!([]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("_schema.json"), meta.to_string()).unwrap();
    // Its files: _schema.json lists them relative to the export.
    for f in meta["files"].as_array().unwrap() {
        let p = f["path"].as_str().unwrap();
        std::fs::create_dir_all(dir.path().join(p).parent().unwrap()).unwrap();
        std::fs::copy(export.join(p), dir.path().join(p)).unwrap();
    }
    run_json(
        "A",
        &[
            "import",
            "-i",
            dir.path().to_str().unwrap(),
            "-c",
            &name,
            "--create",
        ],
    );
    let (_d, cfg) = config_for("A");
    let out = dir.path().join("out");
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["export", "-c", &name, "-o", out.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is not loaded and has no index"))
        .stderr(predicates::str::contains("create an index on `vec`"));
    drop_collection("A", "default", &name);
}

#[test]
fn export_discard_reads_every_row_and_writes_nothing() {
    let g = &generated("A")[0];
    let dir = tempfile::tempdir().unwrap();
    let stats = {
        let _turn = source_release_turn();
        run_json("A", &["export", "-c", &g.full_name(), "--discard"])
    };
    assert_eq!(stats["rows"], g.rows, "{stats}");
    assert_eq!(stats["files"], 0, "{stats}");
    assert!(stats["rows_per_s"].as_f64().unwrap() > 0.0, "{stats}");
    // Nothing is written: --output is refused beside it.
    let (_d, cfg) = config_for("A");
    let out = dir.path().join("x");
    let refused = cli()
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "export",
            "-c",
            &g.full_name(),
            "--discard",
        ])
        .args(["-o", out.to_str().unwrap()])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(
        err.contains("--discard") && err.contains("--output"),
        "{err}"
    );
    assert!(!out.exists());
}
