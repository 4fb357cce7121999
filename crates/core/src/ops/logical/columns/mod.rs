//! Rows between Milvus's columns (`FieldData`, what Query returns and
//! Insert takes) and the files: Arrow arrays for Parquet, JSON objects for
//! JSON Lines and bulk-writer JSON. Reading a file checks every column
//! against its field (type, dimension) and names the file, the column and
//! the field when they disagree.
//!
//! Out: `to_arrow` (Parquet) and `to_json` (JSON Lines). In: `from_arrow`
//! (Parquet, schema checked before any row is read) and `from_json`. This
//! file keeps what they share: row counts, a field's column, and where a
//! column came from ([`Origin`]) for messages.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    Int8Builder, ListBuilder, StringBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, FixedSizeBinaryArray, FixedSizeListArray, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType as ArrowType, Field as ArrowField};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::milvus::proto::schema::{
    field_data, scalar_field, vector_field, ArrayArray, BoolArray, BytesArray, DoubleArray,
    FieldData, FloatArray, GeometryArray, GeometryWktArray, IntArray, JsonArray, LongArray,
    ScalarField, SparseFloatArray, StringArray as PbStrings, TimestamptzArray, VectorField,
};
use crate::ops::logical::fields::{arrow_schema, Elem, Field, Kind};

mod from_arrow;
mod from_json;
mod to_arrow;
mod to_json;

pub use from_arrow::{check_arrow_schema, from_record_batch};
pub use from_json::{from_json_rows, JsonRow};
pub use to_arrow::to_record_batch;
pub use to_json::write_json_lines;

/// The number of rows in a query answer.
pub fn row_count(cols: &[FieldData]) -> usize {
    cols.first().map(column_len).unwrap_or(0)
}

/// Rows of a column: its validity's length when it has one (nullable
/// fields), else its values'.
pub(super) fn column_len(fd: &FieldData) -> usize {
    if !fd.valid_data.is_empty() {
        return fd.valid_data.len();
    }
    values_len(fd)
}

/// Values a column holds: one per row, or one per valid row when Milvus
/// sent it without the nulls (as pymilvus inserts them).
pub(super) fn values_len(fd: &FieldData) -> usize {
    match &fd.field {
        Some(field_data::Field::Scalars(s)) => scalar_len(s),
        Some(field_data::Field::Vectors(v)) => match &v.data {
            Some(vector_field::Data::FloatVector(f)) => f.data.len() / (v.dim.max(1) as usize),
            Some(vector_field::Data::Int8Vector(b)) => b.len() / (v.dim.max(1) as usize),
            Some(vector_field::Data::BinaryVector(b)) => b.len() / ((v.dim.max(8) / 8) as usize),
            Some(vector_field::Data::Float16Vector(b) | vector_field::Data::Bfloat16Vector(b)) => {
                b.len() / ((v.dim.max(1) * 2) as usize)
            }
            Some(vector_field::Data::SparseFloatVector(s)) => s.contents.len(),
            _ => 0,
        },
        _ => 0,
    }
}

pub(super) fn scalar_len(s: &ScalarField) -> usize {
    use scalar_field::Data as D;
    match &s.data {
        Some(D::BoolData(a)) => a.data.len(),
        Some(D::IntData(a)) => a.data.len(),
        Some(D::LongData(a)) => a.data.len(),
        Some(D::FloatData(a)) => a.data.len(),
        Some(D::DoubleData(a)) => a.data.len(),
        Some(D::StringData(a)) => a.data.len(),
        Some(D::BytesData(a)) => a.data.len(),
        Some(D::ArrayData(a)) => a.data.len(),
        Some(D::JsonData(a)) => a.data.len(),
        Some(D::GeometryData(a)) => a.data.len(),
        Some(D::GeometryWktData(a)) => a.data.len(),
        Some(D::TimestamptzData(a)) => a.data.len(),
        _ => 0,
    }
}

/// The column with only the rows `keep` marks (`keep` has one entry per
/// value). Nullable columns are converted without their null rows, whose
/// placeholder values mean nothing.
pub(super) fn keep_rows(fd: &FieldData, keep: &[bool]) -> FieldData {
    use scalar_field::Data as S;
    use vector_field::Data as V;
    fn pick<T: Clone>(v: &[T], keep: &[bool]) -> Vec<T> {
        v.iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| x.clone())
            .collect()
    }
    fn chunks(v: &[u8], width: usize, keep: &[bool]) -> Vec<u8> {
        v.chunks(width.max(1))
            .zip(keep)
            .filter(|(_, k)| **k)
            .flat_map(|(c, _)| c.iter().copied())
            .collect()
    }
    let mut out = fd.clone();
    match &mut out.field {
        Some(field_data::Field::Scalars(s)) => {
            s.data = s.data.as_ref().map(|d| match d {
                S::BoolData(a) => S::BoolData(BoolArray {
                    data: pick(&a.data, keep),
                }),
                S::IntData(a) => S::IntData(IntArray {
                    data: pick(&a.data, keep),
                }),
                S::LongData(a) => S::LongData(LongArray {
                    data: pick(&a.data, keep),
                }),
                S::FloatData(a) => S::FloatData(FloatArray {
                    data: pick(&a.data, keep),
                }),
                S::DoubleData(a) => S::DoubleData(DoubleArray {
                    data: pick(&a.data, keep),
                }),
                S::StringData(a) => S::StringData(PbStrings {
                    data: pick(&a.data, keep),
                }),
                S::BytesData(a) => S::BytesData(BytesArray {
                    data: pick(&a.data, keep),
                }),
                S::JsonData(a) => S::JsonData(JsonArray {
                    data: pick(&a.data, keep),
                }),
                S::ArrayData(a) => S::ArrayData(ArrayArray {
                    data: pick(&a.data, keep),
                    element_type: a.element_type,
                }),
                S::GeometryData(a) => S::GeometryData(GeometryArray {
                    data: pick(&a.data, keep),
                }),
                S::GeometryWktData(a) => S::GeometryWktData(GeometryWktArray {
                    data: pick(&a.data, keep),
                }),
                S::TimestamptzData(a) => S::TimestamptzData(TimestamptzArray {
                    data: pick(&a.data, keep),
                }),
                other => other.clone(),
            });
        }
        Some(field_data::Field::Vectors(v)) => {
            let dim = v.dim.max(1) as usize;
            v.data = v.data.as_ref().map(|d| match d {
                V::FloatVector(a) => V::FloatVector(FloatArray {
                    data: a
                        .data
                        .chunks(dim)
                        .zip(keep)
                        .filter(|(_, k)| **k)
                        .flat_map(|(c, _)| c.iter().copied())
                        .collect(),
                }),
                V::BinaryVector(b) => V::BinaryVector(chunks(b, dim / 8, keep)),
                V::Float16Vector(b) => V::Float16Vector(chunks(b, dim * 2, keep)),
                V::Bfloat16Vector(b) => V::Bfloat16Vector(chunks(b, dim * 2, keep)),
                V::Int8Vector(b) => V::Int8Vector(chunks(b, dim, keep)),
                V::SparseFloatVector(a) => V::SparseFloatVector(SparseFloatArray {
                    contents: pick(&a.contents, keep),
                    dim: a.dim,
                }),
                other => other.clone(),
            });
        }
        _ => {}
    }
    out.valid_data.clear();
    out
}

/// A nullable column's values without its null rows, and its validity
/// (one entry per row); `None` when the column has no validity.
pub(super) fn without_nulls(fd: &FieldData) -> Option<(std::borrow::Cow<'_, FieldData>, &[bool])> {
    if fd.valid_data.is_empty() {
        return None;
    }
    let valid = fd.valid_data.as_slice();
    let values = if values_len(fd) == valid.len() && valid.iter().any(|v| !v) {
        std::borrow::Cow::Owned(keep_rows(fd, valid))
    } else {
        std::borrow::Cow::Borrowed(fd)
    };
    Some((values, valid))
}

/// Spreads `values` (one per valid row) over the rows `valid` marks, with
/// nulls between.
pub(super) fn spread_array(values: ArrayRef, valid: &[bool]) -> Result<ArrayRef> {
    if values.len() == valid.len() && valid.iter().all(|v| *v) {
        return Ok(values);
    }
    let mut next = 0u32;
    let indices: arrow_array::UInt32Array = valid
        .iter()
        .map(|&v| {
            v.then(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    arrow_select::take::take(values.as_ref(), &indices, None)
        .map_err(|e| Error::internal(format!("placing nulls: {e}")))
}

/// A column of `n` rows without a value (nulls, or the field's default):
/// no values of the field's type, and `valid_data` all false.
pub(super) fn no_values(field: &Field, n: usize) -> FieldData {
    use scalar_field::Data as S;
    use vector_field::Data as V;
    let scalar = |data: S| {
        Some(field_data::Field::Scalars(ScalarField {
            data: Some(data),
            ..Default::default()
        }))
    };
    let vector = |dim: usize, data: V| {
        Some(field_data::Field::Vectors(VectorField {
            dim: dim as i64,
            data: Some(data),
            ..Default::default()
        }))
    };
    let field_value = match field.kind {
        Kind::Bool => scalar(S::BoolData(BoolArray::default())),
        Kind::Int8 | Kind::Int16 | Kind::Int32 => scalar(S::IntData(IntArray::default())),
        Kind::Int64 => scalar(S::LongData(LongArray::default())),
        Kind::Float => scalar(S::FloatData(FloatArray::default())),
        Kind::Double => scalar(S::DoubleData(DoubleArray::default())),
        Kind::VarChar | Kind::Text | Kind::Timestamptz => {
            scalar(S::StringData(PbStrings::default()))
        }
        Kind::Json => scalar(S::JsonData(JsonArray::default())),
        Kind::Geometry => scalar(S::GeometryWktData(GeometryWktArray::default())),
        Kind::Array(e) => scalar(S::ArrayData(ArrayArray {
            data: Vec::new(),
            element_type: e.kind().data_type() as i32,
        })),
        Kind::FloatVector(d) => vector(d, V::FloatVector(FloatArray::default())),
        Kind::BinaryVector(d) => vector(d, V::BinaryVector(Vec::new())),
        Kind::Float16Vector(d) => vector(d, V::Float16Vector(Vec::new())),
        Kind::BFloat16Vector(d) => vector(d, V::Bfloat16Vector(Vec::new())),
        Kind::Int8Vector(d) => vector(d, V::Int8Vector(Vec::new())),
        Kind::SparseFloatVector => vector(0, V::SparseFloatVector(SparseFloatArray::default())),
    };
    FieldData {
        r#type: field.kind.data_type() as i32,
        field_name: field.name.clone(),
        field: field_value,
        valid_data: vec![false; n],
        ..Default::default()
    }
}

/// [`spread_array`] for JSON values.
pub(super) fn spread_values(values: Vec<Value>, valid: &[bool]) -> Vec<Value> {
    let mut it = values.into_iter();
    valid
        .iter()
        .map(|&v| {
            if v {
                it.next().unwrap_or(Value::Null)
            } else {
                Value::Null
            }
        })
        .collect()
}

/// WKT (as Milvus answers and takes geometries) as WKB (as GeoParquet keeps them).
pub(super) fn wkt_to_wkb(text: &str) -> Option<Vec<u8>> {
    use std::str::FromStr;
    let geom = wkt::Wkt::<f64>::from_str(text).ok()?;
    let mut out = Vec::new();
    wkb::writer::write_geometry(&mut out, &geom, &Default::default()).ok()?;
    Some(out)
}

/// WKB as WKT, spaced as GEOS and Milvus write it:
/// `POLYGON ((0 0, 1 0, 0 0))`.
pub(super) fn wkb_to_wkt(bytes: &[u8]) -> Option<String> {
    let geom = wkb::reader::read_wkb(bytes).ok()?;
    let mut tight = String::new();
    wkt::to_wkt::write_geometry(&mut tight, &geom).ok()?;
    let mut out = String::with_capacity(tight.len() + tight.len() / 8);
    let mut prev = ' ';
    for c in tight.chars() {
        if c == '(' && prev.is_ascii_alphabetic() {
            out.push(' ');
        }
        out.push(c);
        if c == ',' {
            out.push(' ');
        }
        prev = c;
    }
    Some(out)
}

/// An ISO 8601 / RFC 3339 time (with an offset; without one it is UTC) as
/// microseconds since the epoch.
pub(super) fn tz_from_text(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Some(t.timestamp_micros());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    Some(naive.and_utc().timestamp_micros())
}

/// Microseconds since the epoch as RFC 3339 in UTC, e.g. `2025-01-02T03:04:05.000006Z`.
pub(super) fn tz_to_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| micros.to_string())
}

/// The column of `field` in a query answer.
pub(super) fn column<'a>(cols: &'a [FieldData], field: &Field) -> Result<&'a FieldData> {
    cols.iter()
        .find(|c| c.field_name == field.name || (field.is_dynamic && c.is_dynamic))
        .ok_or_else(|| {
            Error::remote(format!(
                "Milvus's query answer has no column for field `{}`",
                field.name
            ))
        })
}

pub(super) fn mismatch(field: &Field, what: &str) -> Error {
    Error::remote(format!(
        "Milvus answered column `{}` ({}) with {what}",
        field.name, field.kind
    ))
}

/// Where a column came from, for messages: `file `x`, column `c``.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub file: &'a str,
    pub collection: &'a str,
}

impl Origin<'_> {
    fn error(&self, column: &str, field: &Field, problem: impl std::fmt::Display) -> Error {
        Error::invalid_input(format!(
            "file `{}`, column `{column}`: {problem}, but field `{}` of {} is {}",
            self.file, field.name, self.collection, field.kind
        ))
    }
}

/// `{"index": value}` or `{"indices": [...], "values": [...]}` as Milvus's
/// sparse row bytes (sorted by index), with its dimension (max index + 1).
pub(super) fn sparse_from_json(v: &Value) -> Option<(Vec<u8>, usize)> {
    let obj = v.as_object()?;
    let mut pairs: Vec<(u32, f32)> =
        if let (Some(i), Some(x)) = (obj.get("indices"), obj.get("values")) {
            i.as_array()?
                .iter()
                .zip(x.as_array()?)
                .map(|(i, x)| Some((u32::try_from(i.as_u64()?).ok()?, x.as_f64()? as f32)))
                .collect::<Option<_>>()?
        } else {
            obj.iter()
                .map(|(k, x)| Some((k.parse().ok()?, x.as_f64()? as f32)))
                .collect::<Option<_>>()?
        };
    pairs.sort_by_key(|p| p.0);
    let dim = pairs.last().map(|p| p.0 as usize + 1).unwrap_or(0);
    Some((
        pairs
            .iter()
            .flat_map(|(i, x)| i.to_le_bytes().into_iter().chain(x.to_le_bytes()))
            .collect(),
        dim,
    ))
}

/// The text of NaN and the infinities in JSON files.
fn non_finite_text(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("Infinity")
    } else if v == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::from_arrow::*;
    use super::from_json::*;
    use super::to_arrow::*;
    use super::to_json::*;
    use super::*;
    use crate::milvus::proto::schema::DataType;

    fn f(name: &str, kind: Kind) -> Field {
        Field::plain(name, kind)
    }

    fn nullable(name: &str, kind: Kind) -> Field {
        Field {
            nullable: true,
            ..f(name, kind)
        }
    }

    /// Rows as `from_json_rows` takes them (values as text).
    fn raw_rows(rows: &[Map<String, Value>]) -> Vec<JsonRow> {
        rows.iter()
            .map(|r| serde_json::from_str(&Value::Object(r.clone()).to_string()).unwrap())
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Rows 0 and 2 have values, row 1 is null; as Milvus answers a
    /// query (a placeholder value in the null row) and as pymilvus
    /// inserts (no value for the null row).
    fn with_nulls(
        field: &Field,
        answered: scalar_field::Data,
        inserted: scalar_field::Data,
    ) -> (FieldData, FieldData) {
        let valid = vec![true, false, true];
        let mut a = scalars(field, answered);
        a.valid_data = valid.clone();
        let mut i = scalars(field, inserted);
        i.valid_data = valid;
        (a, i)
    }

    #[test]
    fn nulls_and_newer_types_round_trip_through_arrow_and_json() {
        use scalar_field::Data as S;
        let fields = vec![
            f("id", Kind::Int64),
            nullable("n", Kind::Int32),
            nullable("s", Kind::VarChar),
            nullable("a", Kind::Array(Elem::Int64)),
            nullable("g", Kind::Geometry),
            nullable("t", Kind::Timestamptz),
            f("x", Kind::Text),
            f("i8", Kind::Int8Vector(2)),
        ];
        let long = |v: Vec<i64>| S::LongData(LongArray { data: v });
        let list = |rows: Vec<Vec<i64>>| {
            S::ArrayData(ArrayArray {
                data: rows
                    .into_iter()
                    .map(|r| ScalarField {
                        data: Some(long(r)),
                        ..Default::default()
                    })
                    .collect(),
                element_type: 5,
            })
        };
        let (n, n_in) = with_nulls(
            &fields[1],
            S::IntData(IntArray {
                data: vec![7, 0, -1],
            }),
            S::IntData(IntArray { data: vec![7, -1] }),
        );
        let (s, s_in) = with_nulls(
            &fields[2],
            S::StringData(PbStrings {
                data: strings(&["a", "", "c"]),
            }),
            S::StringData(PbStrings {
                data: strings(&["a", "c"]),
            }),
        );
        let (a, a_in) = with_nulls(
            &fields[3],
            list(vec![vec![1, 2], vec![], vec![]]),
            list(vec![vec![1, 2], vec![]]),
        );
        let (g, g_in) = with_nulls(
            &fields[4],
            S::GeometryWktData(GeometryWktArray {
                data: strings(&["POINT (1.5 2)", "", "LINESTRING (0 0, 1 1)"]),
            }),
            S::GeometryWktData(GeometryWktArray {
                data: strings(&["POINT (1.5 2)", "LINESTRING (0 0, 1 1)"]),
            }),
        );
        let (t, t_in) = with_nulls(
            &fields[5],
            S::TimestamptzData(TimestamptzArray {
                data: vec![1_700_000_000_000_001, 0, -5],
            }),
            S::StringData(PbStrings {
                data: strings(&["2023-11-14T22:13:20.000001Z", "1969-12-31T23:59:59.999995Z"]),
            }),
        );
        let x = scalars(
            &fields[6],
            S::StringData(PbStrings {
                data: strings(&["long", "text", ""]),
            }),
        );
        let i8v = vectors(
            &fields[7],
            2,
            vector_field::Data::Int8Vector(vec![1, 255, 0, 127, 128, 2]),
        );
        let id = scalars(&fields[0], long(vec![1, 2, 3]));
        let answered = vec![id.clone(), n, s, a, g, t, x.clone(), i8v.clone()];
        let inserted = vec![id, n_in, s_in, a_in, g_in, t_in, x, i8v];
        let origin = Origin {
            file: "f",
            collection: "c",
        };

        let batch = to_record_batch(&fields, &answered).unwrap();
        assert_eq!(batch.num_rows(), 3);
        for name in ["n", "s", "a", "g", "t"] {
            let col = batch.column_by_name(name).unwrap();
            assert_eq!(col.null_count(), 1, "{name}");
            assert!(col.is_null(1), "{name}: row 1 is null, not a zero");
        }
        // GeoParquet metadata names the geometry column.
        let geo: Value = serde_json::from_str(&batch.schema().metadata()["geo"]).unwrap();
        assert_eq!(geo["primary_column"], "g");
        assert_eq!(geo["columns"]["g"]["encoding"], "WKB");
        let back = from_record_batch(&fields, &batch, origin, false).unwrap();
        assert_eq!(back, inserted);

        let mut text = Vec::new();
        write_json_lines(&fields, &answered, &mut text).unwrap();
        let rows: Vec<Map<String, Value>> = String::from_utf8(text)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for name in ["n", "s", "a", "g", "t"] {
            assert_eq!(rows[1][name], Value::Null, "{name}");
        }
        assert_eq!(rows[0]["g"], "POINT (1.5 2)");
        assert_eq!(rows[2]["t"], "1969-12-31T23:59:59.999995Z");
        assert_eq!(rows[0]["i8"], serde_json::json!([1, -1]));
        let back = from_json_rows(&fields, &raw_rows(&rows), origin, false).unwrap();
        assert_eq!(back, inserted);
    }

    /// JSON text nested `depth` objects deep.
    fn deep_json(depth: usize) -> Vec<u8> {
        let mut t = "{\"k\":".repeat(depth);
        t.push('1');
        t.push_str(&"}".repeat(depth));
        t.into_bytes()
    }

    /// Every value at an edge: NaN, the infinities, -0.0, denormals and
    /// the limits of each number type; strings with escapes, control
    /// characters and emoji; JSON and `$meta` text deeper than any parser's
    /// default limit, with key order and escapes a re-encoding would change.
    fn edge_sample() -> (Vec<Field>, Vec<FieldData>) {
        use scalar_field::Data as S;
        let mut meta = f("$meta", Kind::Json);
        meta.is_dynamic = true;
        let fields = vec![
            f("id", Kind::Int64),
            f("i8", Kind::Int8),
            f("i16", Kind::Int16),
            f("i32", Kind::Int32),
            f("f", Kind::Float),
            f("d", Kind::Double),
            f("af", Kind::Array(Elem::Float)),
            f("ad", Kind::Array(Elem::Double)),
            f("s", Kind::VarChar),
            f("av", Kind::Array(Elem::VarChar)),
            f("j", Kind::Json),
            meta,
        ];
        let floats = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            f32::from_bits(1),
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            f32::from_bits(0xffc0_0001),
        ];
        let doubles = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::from_bits(0x7ff8_0000_0000_0001),
        ];
        let texts = [
            "\\\"'😀",
            "\\\"'😀x",
            "",
            "\u{1}\u{7}\u{1f}\u{7f}\t\n\r",
            "é中\u{fffd}\u{10ffff}",
            "\\u0041",
            "a/b</script>",
            "😀😀",
            "\u{0}nul",
        ];
        let n = floats.len();
        let ints = |lo: i32, hi: i32| {
            S::IntData(IntArray {
                data: (0..n as i32)
                    .map(|i| [lo, hi, 0, -1][i as usize % 4])
                    .collect(),
            })
        };
        let json_texts: Vec<Vec<u8>> = (0..n)
            .map(|i| match i {
                0 => deep_json(10_000),
                1 => br#"{"b":1,"a":"\u00e9\/\"","c":[1.0,-0.0,1E+2,12345678901234567890123]}"#
                    .to_vec(),
                2 => b"[]".to_vec(),
                3 => b"\"text\"".to_vec(),
                _ => format!(r#"{{"z":{i},"a":{{"y":[true,null]}}}}"#).into_bytes(),
            })
            .collect();
        let meta_texts: Vec<Vec<u8>> = (0..n)
            .map(|i| match i {
                0 => br#"{"z":1,"a":2}"#.to_vec(),
                1 => {
                    let mut t = br#"{"deep":"#.to_vec();
                    t.extend(deep_json(5_000));
                    t.push(b'}');
                    t
                }
                _ => b"{}".to_vec(),
            })
            .collect();
        let cols = vec![
            scalars(
                &fields[0],
                S::LongData(LongArray {
                    data: (0..n)
                        .map(|i| [i64::MIN + 1, i64::MAX, 0, -1, i64::MIN, 1][i % 6])
                        .collect(),
                }),
            ),
            scalars(&fields[1], ints(i8::MIN as i32, i8::MAX as i32)),
            scalars(&fields[2], ints(i16::MIN as i32, i16::MAX as i32)),
            scalars(&fields[3], ints(i32::MIN, i32::MAX)),
            scalars(
                &fields[4],
                S::FloatData(FloatArray {
                    data: floats.to_vec(),
                }),
            ),
            scalars(
                &fields[5],
                S::DoubleData(DoubleArray {
                    data: doubles.to_vec(),
                }),
            ),
            scalars(
                &fields[6],
                S::ArrayData(ArrayArray {
                    data: (0..n)
                        .map(|i| ScalarField {
                            data: Some(S::FloatData(FloatArray {
                                data: floats[i..].to_vec(),
                            })),
                            ..Default::default()
                        })
                        .collect(),
                    element_type: DataType::Float as i32,
                }),
            ),
            scalars(
                &fields[7],
                S::ArrayData(ArrayArray {
                    data: (0..n)
                        .map(|i| ScalarField {
                            data: Some(S::DoubleData(DoubleArray {
                                data: doubles[..=i].to_vec(),
                            })),
                            ..Default::default()
                        })
                        .collect(),
                    element_type: DataType::Double as i32,
                }),
            ),
            scalars(
                &fields[8],
                S::StringData(PbStrings {
                    data: strings(&texts),
                }),
            ),
            scalars(
                &fields[9],
                S::ArrayData(ArrayArray {
                    data: (0..n)
                        .map(|i| ScalarField {
                            data: Some(S::StringData(PbStrings {
                                data: strings(&texts[i..]),
                            })),
                            ..Default::default()
                        })
                        .collect(),
                    element_type: DataType::VarChar as i32,
                }),
            ),
            json_field(&fields[10], json_texts, false),
            json_field(&fields[11], meta_texts, true),
        ];
        (fields, cols)
    }

    /// Columns as text that tells NaN, -0.0 and every bit of a float
    /// apart (`PartialEq` of floats does not: NaN != NaN, -0.0 == 0.0).
    fn exact(cols: &[FieldData]) -> String {
        format!("{cols:?}")
    }

    #[test]
    fn edge_values_come_back_exactly_from_parquet() {
        let (fields, cols) = edge_sample();
        let batch = to_record_batch(&fields, &cols).unwrap();
        let settings = crate::ops::logical::files::FileSettings::default();
        let props =
            crate::ops::logical::files::parquet_properties(&batch.schema(), settings).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        let bytes = bytes::Bytes::from(w.into_inner().unwrap());
        let read: Vec<RecordBatch> =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap()
                .collect::<std::result::Result<_, _>>()
                .unwrap();
        let origin = Origin {
            file: "f.parquet",
            collection: "c",
        };
        let back = from_record_batch(&fields, &read[0], origin, false).unwrap();
        assert_eq!(exact(&back), exact(&cols));
        assert_eq!(double_bits(&back[5]), double_bits(&cols[5]));
    }

    /// A double column's values bit for bit (Debug's text shows no NaN bits).
    fn double_bits(c: &FieldData) -> Vec<u64> {
        match &c.field {
            Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::DoubleData(a)),
                ..
            })) => a.data.iter().map(|x| x.to_bits()).collect(),
            _ => panic!("double column"),
        }
    }

    #[test]
    fn edge_values_come_back_exactly_from_json_lines() {
        let (fields, cols) = edge_sample();
        let mut text = Vec::new();
        write_json_lines(&fields, &cols, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.lines().count(), 9);
        let last = text.lines().last().unwrap();
        assert!(last.contains(r#""d":"NaN:7ff8000000000001""#), "{last}");
        let first = text.lines().next().unwrap();
        // NaN and the infinities as pandas writes them, not as null.
        assert!(first.contains(r#""f":"NaN""#), "{}", &first[..200]);
        assert!(first.contains(r#""d":"NaN""#));
        let second = text.lines().nth(1).unwrap();
        assert!(second.contains(r#""f":"Infinity""#));
        // JSON as the text Milvus returned: key order and escapes kept.
        assert!(second.contains(
            r#""j":{"b":1,"a":"\u00e9\/\"","c":[1.0,-0.0,1E+2,12345678901234567890123]}"#
        ));
        let rows: Vec<JsonRow> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let origin = Origin {
            file: "f.jsonl",
            collection: "c",
        };
        let back = from_json_rows(&fields, &rows, origin, false).unwrap();
        assert_eq!(exact(&back), exact(&cols));
        assert_eq!(double_bits(&back[5]), double_bits(&cols[5]));
    }

    #[test]
    fn non_finite_floats_are_taken_as_other_writers_spell_them() {
        let fields = vec![
            f("id", Kind::Int64),
            f("f", Kind::Float),
            f("d", Kind::Double),
            f("af", Kind::Array(Elem::Float)),
        ];
        let rows: Vec<JsonRow> = [
            r#"{"id":1,"f":"nan","d":"+Infinity","af":["-inf","INF",1.5]}"#,
            r#"{"id":2,"f":"-Infinity","d":"NaN","af":[]}"#,
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let origin = Origin {
            file: "other.json",
            collection: "c",
        };
        let back = from_json_rows(&fields, &rows, origin, false).unwrap();
        let text = exact(&back);
        assert!(text.contains("data: [NaN, -inf]"), "{text}");
        assert!(text.contains("data: [inf, NaN]"), "{text}");
        assert!(text.contains("data: [-inf, inf, 1.5]"), "{text}");
        // Any other text in a float field is refused, naming the row.
        let bad: Vec<JsonRow> =
            vec![serde_json::from_str(r#"{"id":1,"f":"one","d":1,"af":[]}"#).unwrap()];
        let e = from_json_rows(&fields, &bad, origin, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("column `f`: row 0 holds \"one\""), "{e}");
    }

    #[test]
    fn dynamic_keys_beside_the_fields_join_meta_without_losing_any() {
        let mut meta = f("$meta", Kind::Json);
        meta.is_dynamic = true;
        let fields = vec![f("id", Kind::Int64), meta];
        let deep = String::from_utf8(deep_json(3_000)).unwrap();
        let rows: Vec<JsonRow> = [
            format!(r#"{{"id":1,"$meta":{{"a":{deep}}},"extra":2}}"#),
            r#"{"id":2,"$meta":"{\"s\":1}"}"#.to_string(),
            r#"{"id":3,"x":{"y":[1,2]}}"#.to_string(),
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let origin = Origin {
            file: "bulk.json",
            collection: "c",
        };
        let back = from_json_rows(&fields, &rows, origin, false).unwrap();
        let Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::JsonData(a)),
            ..
        })) = &back[1].field
        else {
            panic!("a JSON column")
        };
        let texts: Vec<String> = a
            .data
            .iter()
            .map(|t| String::from_utf8(t.clone()).unwrap())
            .collect();
        assert_eq!(texts[0], format!(r#"{{"a":{deep},"extra":2}}"#));
        assert_eq!(texts[1], r#"{"s":1}"#);
        assert_eq!(texts[2], r#"{"x":{"y":[1,2]}}"#);
    }

    #[test]
    fn a_null_in_a_field_that_takes_none_names_the_column() {
        let fields = vec![f("id", Kind::Int64), f("n", Kind::Int32)];
        let rows: Vec<JsonRow> = vec![serde_json::from_str(r#"{"id": 1, "n": null}"#).unwrap()];
        let e = from_json_rows(
            &fields,
            &rows,
            Origin {
                file: "f.jsonl",
                collection: "c",
            },
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("field `n`"), "{e}");
    }

    fn sample() -> (Vec<Field>, Vec<FieldData>) {
        let fields = vec![
            f("id", Kind::Int64),
            f("v", Kind::FloatVector(2)),
            f("tags", Kind::Array(Elem::VarChar)),
            f("j", Kind::Json),
            f("b", Kind::BinaryVector(16)),
        ];
        let cols = vec![
            scalars(
                &fields[0],
                scalar_field::Data::LongData(LongArray { data: vec![1, 2] }),
            ),
            vectors(
                &fields[1],
                2,
                vector_field::Data::FloatVector(FloatArray {
                    data: vec![0.1, 0.2, 0.3, 0.4],
                }),
            ),
            scalars(
                &fields[2],
                scalar_field::Data::ArrayData(ArrayArray {
                    data: vec![
                        ScalarField {
                            data: Some(scalar_field::Data::StringData(PbStrings {
                                data: vec!["a".into()],
                            })),
                            ..Default::default()
                        },
                        ScalarField {
                            data: Some(scalar_field::Data::StringData(PbStrings { data: vec![] })),
                            ..Default::default()
                        },
                    ],
                    element_type: 21,
                }),
            ),
            json_field(
                &fields[3],
                vec![br#"{"k":1}"#.to_vec(), b"null".to_vec()],
                false,
            ),
            vectors(
                &fields[4],
                16,
                vector_field::Data::BinaryVector(vec![1, 2, 3, 4]),
            ),
        ];
        (fields, cols)
    }

    #[test]
    fn columns_round_trip_through_arrow_and_json() {
        let (fields, cols) = sample();
        let origin = Origin {
            file: "f",
            collection: "c",
        };
        let batch = to_record_batch(&fields, &cols).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert!(!check_arrow_schema(&fields, &batch.schema(), origin).unwrap());
        let back = from_record_batch(&fields, &batch, origin, false).unwrap();
        assert_eq!(back, cols);

        let mut text = Vec::new();
        write_json_lines(&fields, &cols, &mut text).unwrap();
        let rows: Vec<Map<String, Value>> = String::from_utf8(text)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows[0]["v"], serde_json::json!([0.1, 0.2]));
        let back = from_json_rows(&fields, &raw_rows(&rows), origin, false).unwrap();
        assert_eq!(back, cols);
    }

    #[test]
    fn a_wrong_dimension_names_the_file_the_column_and_the_field() {
        let (fields, cols) = sample();
        let batch = to_record_batch(&fields, &cols).unwrap();
        let mut wider = fields.clone();
        wider[1].kind = Kind::FloatVector(4);
        let e = check_arrow_schema(
            &wider,
            &batch.schema(),
            Origin {
                file: "a.parquet",
                collection: "db.c",
            },
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("file `a.parquet`, column `v`"), "{msg}");
        assert!(
            msg.contains("field `v` of db.c is FloatVector(dim 4)"),
            "{msg}"
        );
    }
}
