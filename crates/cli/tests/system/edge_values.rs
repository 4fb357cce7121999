//! Every value Milvus accepts comes back (issue 28): the edge collection
//! set of `gen_data.py edge` (NaN, ±infinity, -0.0, denormals and limits in
//! floats, doubles and float arrays; JSON and `$meta` nested 1000 deep;
//! int64 keys from -2^63; varchar keys and array elements with escapes,
//! NUL, emoji and max-length values), backed up from A as binlog, Parquet
//! and JSON Lines and restored into B: every field of every row byte-equal
//! (floats by their bits, JSON as text), compared through Milvus's own
//! answers (not pymilvus's, which parses JSON).

use std::collections::BTreeMap;

use milvus_backup_core::milvus::proto::schema::{
    field_data, scalar_field, vector_field, FieldData, ScalarField,
};
use milvus_backup_core::Context;

use crate::env::{cli, config, config_file, config_yaml, gen_data, unique};

#[derive(serde::Deserialize)]
struct Made {
    name: String,
    rows: i64,
}

/// Row `i` of a scalar column, exactly: floats as their bits, strings and
/// JSON text quoted with every byte visible.
fn scalar_text(data: &scalar_field::Data, i: usize) -> String {
    use scalar_field::Data as S;
    match data {
        S::BoolData(a) => a.data[i].to_string(),
        S::IntData(a) => a.data[i].to_string(),
        S::LongData(a) => a.data[i].to_string(),
        S::FloatData(a) => format!("f{:08x}", a.data[i].to_bits()),
        S::DoubleData(a) => format!("d{:016x}", a.data[i].to_bits()),
        S::StringData(a) => format!("{:?}", a.data[i]),
        S::JsonData(a) => format!("json{:?}", String::from_utf8_lossy(&a.data[i])),
        S::ArrayData(a) => {
            let row: &ScalarField = &a.data[i];
            let Some(inner) = &row.data else {
                return "[]".into();
            };
            let n = match inner {
                S::BoolData(v) => v.data.len(),
                S::IntData(v) => v.data.len(),
                S::LongData(v) => v.data.len(),
                S::FloatData(v) => v.data.len(),
                S::DoubleData(v) => v.data.len(),
                S::StringData(v) => v.data.len(),
                other => panic!("array of {other:?}"),
            };
            let items: Vec<String> = (0..n).map(|j| scalar_text(inner, j)).collect();
            format!("[{}]", items.join(","))
        }
        other => panic!("a column of {other:?}"),
    }
}

fn cell(fd: &FieldData, i: usize) -> String {
    match &fd.field {
        Some(field_data::Field::Scalars(ScalarField { data: Some(d), .. })) => scalar_text(d, i),
        Some(field_data::Field::Vectors(v)) => match &v.data {
            Some(vector_field::Data::FloatVector(a)) => {
                let dim = v.dim as usize;
                a.data[i * dim..(i + 1) * dim]
                    .iter()
                    .map(|x| format!("{:08x}", x.to_bits()))
                    .collect::<Vec<_>>()
                    .join(",")
            }
            other => panic!("a vector column of {other:?}"),
        },
        other => panic!("a column of {other:?}"),
    }
}

/// Every row Milvus returns for `expr` (every field and `$meta`), as
/// exact text by primary key; and `count(*)` of the collection.
fn rows_of(inst: &str, name: &str, pk: &str, expr: &str) -> (BTreeMap<String, String>, i64) {
    let cfg = config(&config_yaml(inst, "unused"), &[]);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = Context::open(&cfg).unwrap().milvus().await.unwrap();
        let cols = client
            .query("default", name, expr, &["*".to_string()], None)
            .await
            .unwrap();
        let key = cols
            .iter()
            .find(|c| c.field_name == pk)
            .expect("key column");
        let n = match &key.field {
            Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::LongData(a)),
                ..
            })) => a.data.len(),
            Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::StringData(a)),
                ..
            })) => a.data.len(),
            other => panic!("key column {other:?}"),
        };
        let mut rows = BTreeMap::new();
        for i in 0..n {
            let mut fields: Vec<String> = cols
                .iter()
                .map(|c| format!("{}={}", c.field_name, cell(c, i)))
                .collect();
            fields.sort();
            rows.insert(cell(key, i), fields.join(" "));
        }
        let counted = client
            .query("default", name, "", &["count(*)".to_string()], None)
            .await
            .unwrap();
        let count = match &counted[0].field {
            Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::LongData(a)),
                ..
            })) => a.data[0],
            other => panic!("count(*) {other:?}"),
        };
        (rows, count)
    })
}

/// The filter that selects every row (what Milvus can return).
fn all_rows(name: &str) -> (&'static str, &'static str) {
    if name.ends_with("varchar_keys") {
        ("pk", "pk >= \"\"")
    } else {
        ("id", "id <= 9223372036854775807")
    }
}

fn assert_same(source: &Made, target: &str, how: &str) {
    let (pk, expr) = all_rows(&source.name);
    let (a, count_a) = rows_of("A", &source.name, pk, expr);
    let (b, count_b) = rows_of("B", target, pk, expr);
    assert_eq!(count_a, source.rows, "{}: count(*)", source.name);
    assert_eq!(count_b, count_a, "{how}: count(*) of {target}");
    assert_eq!(b.len(), a.len(), "{how}: rows of {target}");
    for (k, row) in &a {
        let got = b
            .get(k)
            .unwrap_or_else(|| panic!("{how}: {target} lacks the row keyed {k}"));
        if got != row {
            let at = row
                .bytes()
                .zip(got.bytes())
                .position(|(x, y)| x != y)
                .unwrap_or(row.len().min(got.len()));
            let around =
                |s: &str| -> String { s.chars().skip(at.saturating_sub(150)).take(300).collect() };
            panic!(
                "{how}: row {k} of {target} differs at byte {at}:\n source …{}…\n target …{}…",
                around(row),
                around(got)
            );
        }
    }
}

#[test]
fn edge_values_come_back_byte_equal_from_binlog_parquet_and_json_lines() {
    let prefix = format!("{}_", unique("edge"));
    let out = gen_data("A", &["edge", "--prefix", &prefix]);
    let made: Vec<Made> = serde_json::from_value(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["collections"].clone(),
    )
    .unwrap();
    let _drop = DropOnExit(made.iter().map(|m| ("A", m.name.clone())).collect());
    let root = unique("edgebk");
    let (_da, cfg_a) = config_file(&config_yaml("A", &root));
    let (_db, cfg_b) = config_file(&config_yaml("B", &root));
    let max_key = made
        .iter()
        .find(|m| m.name.ends_with("edge_max_key"))
        .unwrap();
    for format in ["binlog", "parquet", "json"] {
        // A row keyed 2^63-1 reaches no query of Milvus 2.3.5: only a
        // binlog backup carries it; a logical one says so and fails.
        let colls: Vec<&Made> = made
            .iter()
            .filter(|m| format == "binlog" || !m.name.ends_with("edge_max_key"))
            .collect();
        let names: Vec<String> = colls
            .iter()
            .map(|m| format!("default.{}", m.name))
            .collect();
        let backup = unique(&format!("edge_{format}"));
        at(&cfg_a)
            .args([
                "create",
                "-n",
                &backup,
                "-c",
                &names.join(","),
                "--format",
                format,
            ])
            .assert()
            .success();
        for m in &colls {
            let target = format!("rle_{}", &unique(format)[2..]);
            let _drop_target = DropOnExit(vec![("B", target.clone())]);
            let rename = format!("default.{}:default.{target}", m.name);
            at(&cfg_b)
                .args([
                    "restore",
                    "-n",
                    &backup,
                    "-c",
                    &format!("default.{}", m.name),
                ])
                .args(["-r", &rename])
                .assert()
                .success();
            assert_same(m, &target, format);
        }
        at(&cfg_a)
            .args(["delete", "-n", &backup])
            .assert()
            .success();
    }
    let out = at(&cfg_a)
        .args(["create", "-n", &unique("edge_max"), "--format", "parquet"])
        .args(["-c", &format!("default.{}", max_key.name)])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("keyed 9223372036854775807") && err.contains("--format binlog"),
        "{err}"
    );
}

/// The CLI with config file `cfg`.
pub(crate) fn at(cfg: &std::path::Path) -> assert_cmd::Command {
    let mut cmd = cli();
    cmd.arg("--config").arg(cfg);
    cmd
}

/// Drops collections (instance, name) when the test ends, passed or not.
struct DropOnExit(Vec<(&'static str, String)>);

impl Drop for DropOnExit {
    fn drop(&mut self) {
        // No panic here (it may run while a failed assertion unwinds).
        for (inst, name) in &self.0 {
            let cfg = config(&config_yaml(inst, "unused"), &[]);
            let _ = tokio::runtime::Runtime::new().map(|rt| {
                rt.block_on(async {
                    if let Ok(ctx) = Context::open(&cfg) {
                        if let Ok(client) = ctx.milvus().await {
                            let _ = client.drop_collection("default", name).await;
                        }
                    }
                })
            });
        }
    }
}
