//! Row samples: a few rows of each collection, read from Milvus when the
//! backup is made and compared by `verify --restore-test` with the same rows
//! read back from a restored copy.
//!
//! A physical backup samples only collections that are loaded (a query
//! needs that) and only when it flushes first, right before the flush, so
//! every sampled row is in the segments it copies. A logical backup samples
//! every collection it exports, right before reading its rows, while it is
//! loaded for that. Up to
//! [`SAMPLE_ROWS`] rows are picked, evenly spread over up to [`CANDIDATES`]
//! primary keys in key order. Each field's value is stored as canonical
//! JSON, or as the SHA-256 of that JSON when it is long (vectors), so the
//! file stays small. Fields of types this module cannot read are left out.
//!
//! Does not own: where the sample is stored (`backup`, `catalog`) or the
//! throwaway restore (`restore_test`).

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::milvus::proto::schema::{
    field_data::Field, scalar_field::Data as Scalar, vector_field::Data as Vector, FieldData,
    ScalarField,
};
use crate::milvus::Milvus;
use crate::model::meta::{CollectionBackupInfo, FieldSchema};

/// Rows sampled per collection.
pub const SAMPLE_ROWS: usize = 50;
/// Primary keys read to choose the sampled rows from: Milvus's largest
/// query limit, so a collection up to that size is sampled over all its
/// segments (a smaller limit may return the keys of one segment only).
pub const CANDIDATES: u64 = 16384;
/// Values whose canonical JSON is longer are stored as a SHA-256.
const INLINE_LIMIT: usize = 200;
/// How [`check`] ends the message of a row that was not found.
pub const MISSING: &str = " is missing";
/// The dynamic field's name.
const DYNAMIC_FIELD: &str = "$meta";
/// Version of `meta/sample.json`.
pub const SAMPLE_FORMAT_VERSION: u32 = 1;

/// `meta/sample.json`: the samples of every sampled collection of a backup.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Sample {
    pub format_version: u32,
    pub collections: Vec<CollectionSample>,
}

impl Sample {
    pub fn new(collections: Vec<CollectionSample>) -> Sample {
        Sample {
            format_version: SAMPLE_FORMAT_VERSION,
            collections,
        }
    }

    /// The sample of one backed-up collection, if it was sampled.
    pub fn of(&self, db: &str, collection: &str) -> Option<&CollectionSample> {
        self.collections
            .iter()
            .find(|c| c.db_name == db && c.collection_name == collection)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionSample {
    pub db_name: String,
    pub collection_name: String,
    pub pk_field: String,
    /// The fields each row records.
    pub fields: Vec<String>,
    pub rows: Vec<SampledRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SampledRow {
    /// The primary key: a JSON number (Int64) or string (VarChar).
    pub pk: Value,
    /// Field name → value.
    pub fields: BTreeMap<String, Cell>,
}

/// One recorded value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// The value as canonical JSON (bytes as base64).
    Value(Value),
    /// SHA-256 (hex) of the value's canonical JSON text.
    Sha256(String),
}

impl Cell {
    fn of(value: Value) -> Cell {
        let text = value.to_string();
        if text.len() > INLINE_LIMIT {
            Cell::Sha256(hex::encode(Sha256::digest(text.as_bytes())))
        } else {
            Cell::Value(value)
        }
    }

    /// A short rendering for problem messages.
    fn brief(&self) -> String {
        match self {
            Cell::Value(v) => {
                let t = v.to_string();
                if t.chars().count() > 60 {
                    format!("{}…", t.chars().take(60).collect::<String>())
                } else {
                    t
                }
            }
            Cell::Sha256(h) => format!("a value with SHA-256 {}…", &h[..h.len().min(12)]),
        }
    }
}

/// Samples one collection; `None` when it is not loaded, empty, or its
/// primary key is neither Int64 nor VarChar.
pub async fn take(
    client: &dyn Milvus,
    coll: &CollectionBackupInfo,
) -> Result<Option<CollectionSample>> {
    if coll.load_state != "Loaded" {
        return Ok(None);
    }
    take_loaded(client, coll).await
}

/// Samples a collection the caller has loaded (a logical backup loads one
/// that is not for its export); `None` when it is empty or its primary key
/// is neither Int64 nor VarChar.
pub async fn take_loaded(
    client: &dyn Milvus,
    coll: &CollectionBackupInfo,
) -> Result<Option<CollectionSample>> {
    let Some(pk) = coll.schema.fields.iter().find(|f| f.is_primary_key) else {
        return Ok(None);
    };
    let Some(every_row) = match_all(pk) else {
        return Ok(None);
    };
    let (db, name) = (&coll.db_name, &coll.collection_name);
    let columns = client
        .query(
            db,
            name,
            &every_row,
            std::slice::from_ref(&pk.name),
            Some(CANDIDATES),
        )
        .await?;
    let mut pks = columns
        .iter()
        .find(|c| c.field_name == pk.name)
        .and_then(column_values)
        .unwrap_or_default();
    pks.sort_by(pk_order);
    pks.dedup();
    let picked = spread(&pks, SAMPLE_ROWS);
    if picked.is_empty() {
        return Ok(None);
    }
    let mut fields: Vec<String> = coll.schema.fields.iter().map(|f| f.name.clone()).collect();
    // 2.3 does not list the dynamic field in the schema it describes.
    if coll.schema.enable_dynamic_field && !fields.iter().any(|f| f == DYNAMIC_FIELD) {
        fields.push(DYNAMIC_FIELD.to_string());
    }
    let mut rows: Vec<SampledRow> = fetch(client, db, name, &pk.name, &fields, &picked)
        .await?
        .into_values()
        .collect();
    rows.sort_by(|a, b| pk_order(&a.pk, &b.pk));
    // Only fields every row could record; the others have unreadable types.
    let recorded: Vec<String> = fields
        .into_iter()
        .filter(|f| rows.iter().all(|r| r.fields.contains_key(f)))
        .collect();
    Ok(Some(CollectionSample {
        db_name: db.clone(),
        collection_name: name.clone(),
        pk_field: pk.name.clone(),
        fields: recorded,
        rows,
    }))
}

/// Compares the sampled rows with the same rows of `db.collection` (a
/// restored copy, loaded); returns one message per missing or different row.
pub async fn check(
    client: &dyn Milvus,
    db: &str,
    collection: &str,
    sample: &CollectionSample,
) -> Result<Vec<String>> {
    let pks: Vec<Value> = sample.rows.iter().map(|r| r.pk.clone()).collect();
    let found = fetch(
        client,
        db,
        collection,
        &sample.pk_field,
        &sample.fields,
        &pks,
    )
    .await?;
    let mut problems = Vec::new();
    for row in &sample.rows {
        let Some(restored) = found.get(&row.pk.to_string()) else {
            problems.push(format!("row with primary key {}{MISSING}", row.pk));
            continue;
        };
        for (field, cell) in &row.fields {
            match restored.fields.get(field) {
                Some(c) if c == cell => {}
                Some(c) => problems.push(format!(
                    "row with primary key {}: field `{field}` is {}, the backup recorded {}",
                    row.pk,
                    c.brief(),
                    cell.brief()
                )),
                None => problems.push(format!(
                    "row with primary key {}: field `{field}` could not be read back",
                    row.pk
                )),
            }
        }
    }
    Ok(problems)
}

/// An expression every row matches, on 2.2 and 2.3 alike.
fn match_all(pk: &FieldSchema) -> Option<String> {
    match pk.data_type {
        5 => Some(format!("{0} >= 0 || {0} < 0", pk.name)),
        21 => Some(format!("{} >= \"\"", pk.name)),
        _ => None,
    }
}

fn pk_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.as_str().cmp(&b.as_str()),
    }
}

/// Up to `n` items, evenly spread, always the same for the same input.
fn spread<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    (0..n).map(|i| items[i * items.len() / n].clone()).collect()
}

/// Reads the rows with primary keys `pks`; keyed by the key's JSON text.
async fn fetch(
    client: &dyn Milvus,
    db: &str,
    collection: &str,
    pk_field: &str,
    fields: &[String],
    pks: &[Value],
) -> Result<BTreeMap<String, SampledRow>> {
    let list: Vec<String> = pks.iter().map(Value::to_string).collect();
    let expr = format!("{pk_field} in [{}]", list.join(", "));
    let mut output = fields.to_vec();
    if !output.iter().any(|f| f == pk_field) {
        output.push(pk_field.to_string());
    }
    let columns = client.query(db, collection, &expr, &output, None).await?;
    let Some(keys) = columns
        .iter()
        .find(|c| c.field_name == pk_field)
        .and_then(column_values)
    else {
        return Ok(BTreeMap::new());
    };
    let mut rows: Vec<SampledRow> = keys
        .into_iter()
        .map(|pk| SampledRow {
            pk,
            fields: BTreeMap::new(),
        })
        .collect();
    for column in &columns {
        if !fields.contains(&column.field_name) {
            continue;
        }
        let Some(values) = column_values(column) else {
            continue;
        };
        if values.len() != rows.len() {
            continue;
        }
        for (row, value) in rows.iter_mut().zip(values) {
            row.fields
                .insert(column.field_name.clone(), Cell::of(value));
        }
    }
    Ok(rows.into_iter().map(|r| (r.pk.to_string(), r)).collect())
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// One JSON value per row of a query column; `None` for types not read here.
fn column_values(column: &FieldData) -> Option<Vec<Value>> {
    let mut values = match column.field.as_ref()? {
        Field::Scalars(s) => scalar_values(s)?,
        Field::Vectors(v) => {
            let dim = v.dim.max(1) as usize;
            match v.data.as_ref()? {
                Vector::FloatVector(a) => a
                    .data
                    .chunks(dim)
                    .map(|c| c.iter().map(|x| f64::from(*x)).collect::<Vec<_>>().into())
                    .collect(),
                Vector::BinaryVector(b) => b.chunks(dim.div_ceil(8)).map(b64).collect(),
                Vector::Float16Vector(b) | Vector::Bfloat16Vector(b) => {
                    b.chunks(dim * 2).map(b64).collect()
                }
                Vector::Int8Vector(b) => b.chunks(dim).map(b64).collect(),
                Vector::SparseFloatVector(s) => s.contents.iter().map(|c| b64(c)).collect(),
                _ => return None,
            }
        }
        _ => return None,
    };
    let valid = &column.valid_data;
    if valid.len() == values.len() {
        for (v, valid) in values.iter_mut().zip(valid) {
            if !valid {
                *v = Value::Null;
            }
        }
    } else if !valid.is_empty() && valid.iter().filter(|v| **v).count() == values.len() {
        // values of the valid rows only: a null is placed between them,
        // never read as a zero
        let mut it = values.into_iter();
        values = valid
            .iter()
            .map(|&v| {
                if v {
                    it.next().unwrap_or(Value::Null)
                } else {
                    Value::Null
                }
            })
            .collect();
    }
    Some(values)
}

fn scalar_values(s: &ScalarField) -> Option<Vec<Value>> {
    fn all<T: Clone + Into<Value>>(d: &[T]) -> Vec<Value> {
        d.iter().cloned().map(Into::into).collect()
    }
    Some(match s.data.as_ref()? {
        Scalar::BoolData(a) => all(&a.data),
        Scalar::IntData(a) => all(&a.data),
        Scalar::LongData(a) => all(&a.data),
        Scalar::FloatData(a) => a.data.iter().map(|x| f64::from(*x).into()).collect(),
        Scalar::DoubleData(a) => all(&a.data),
        Scalar::StringData(a) => all(&a.data),
        Scalar::BytesData(a) => a.data.iter().map(|b| b64(b)).collect(),
        // Parsed, so key order and spacing do not matter.
        Scalar::JsonData(a) => a
            .data
            .iter()
            .map(|b| {
                serde_json::from_slice(b)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned()))
            })
            .collect(),
        Scalar::ArrayData(a) => a
            .data
            .iter()
            // An empty array comes without data.
            .map(|e| match e.data {
                None => Some(Value::Array(Vec::new())),
                Some(_) => scalar_values(e).map(Value::Array),
            })
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    })
}

/// The rows sampled when the backup was made (`meta/sample.json`), when it has them.
pub async fn read(storage: &crate::storage::Storage, name: &str) -> Result<Option<Sample>> {
    crate::repo::meta_files::read_json(
        storage,
        &crate::model::layout::backup_meta_file(name, crate::model::layout::SAMPLE),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::proto::schema::{FloatArray, LongArray, VectorField};

    #[test]
    fn spread_is_even_and_stable() {
        let items: Vec<i32> = (0..1000).collect();
        let picked = spread(&items, 50);
        assert_eq!(picked.len(), 50);
        assert_eq!(picked[0], 0);
        assert_eq!(picked[1], 20);
        assert_eq!(picked[49], 980);
        assert_eq!(spread(&items[..3], 50), vec![0, 1, 2]);
    }

    #[test]
    fn columns_split_into_rows_and_long_values_are_hashed() {
        let longs = FieldData {
            field_name: "id".into(),
            field: Some(Field::Scalars(ScalarField {
                data: Some(Scalar::LongData(LongArray { data: vec![7, -3] })),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            column_values(&longs).unwrap(),
            vec![Value::from(7), Value::from(-3)]
        );
        let vectors = FieldData {
            field_name: "v".into(),
            field: Some(Field::Vectors(VectorField {
                dim: 2,
                data: Some(Vector::FloatVector(FloatArray {
                    data: vec![0.5, 1.0, -2.0, 0.25],
                })),
                ..Default::default()
            })),
            ..Default::default()
        };
        let rows = column_values(&vectors).unwrap();
        assert_eq!(
            rows,
            vec![
                serde_json::json!([0.5, 1.0]),
                serde_json::json!([-2.0, 0.25])
            ]
        );
        assert_eq!(Cell::of(7.into()), Cell::Value(7.into()));
        let long = Value::Array(vec![0.123456789.into(); 40]);
        assert!(matches!(Cell::of(long), Cell::Sha256(h) if h.len() == 64));
    }

    #[test]
    fn match_all_covers_int_and_varchar_keys() {
        let mut pk = FieldSchema {
            name: "id".into(),
            data_type: 5,
            ..Default::default()
        };
        assert_eq!(match_all(&pk).unwrap(), "id >= 0 || id < 0");
        pk.data_type = 21;
        assert_eq!(match_all(&pk).unwrap(), "id >= \"\"");
        pk.data_type = 11;
        assert!(match_all(&pk).is_none());
    }
}
