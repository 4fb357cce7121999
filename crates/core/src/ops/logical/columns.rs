//! Rows between Milvus's columns (`FieldData`, what Query returns and
//! Insert takes) and the files: Arrow arrays for Parquet, JSON objects for
//! JSON Lines and bulk-writer JSON. Reading a file checks every column
//! against its field (type, dimension) and names the file, the column and
//! the field when they disagree.

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
    FieldData, FloatArray, IntArray, JsonArray, LongArray, ScalarField, SparseFloatArray,
    StringArray as PbStrings, VectorField,
};
use crate::ops::logical::fields::{arrow_schema, Elem, Field, Kind};

/// The number of rows in a query answer.
pub fn row_count(cols: &[FieldData]) -> usize {
    cols.first().map(column_len).unwrap_or(0)
}

fn column_len(fd: &FieldData) -> usize {
    match &fd.field {
        Some(field_data::Field::Scalars(s)) => scalar_len(s),
        Some(field_data::Field::Vectors(v)) => match &v.data {
            Some(vector_field::Data::FloatVector(f)) => f.data.len() / (v.dim.max(1) as usize),
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

fn scalar_len(s: &ScalarField) -> usize {
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
        _ => 0,
    }
}

/// The column of `field` in a query answer.
fn column<'a>(cols: &'a [FieldData], field: &Field) -> Result<&'a FieldData> {
    cols.iter()
        .find(|c| c.field_name == field.name || (field.is_dynamic && c.is_dynamic))
        .ok_or_else(|| {
            Error::remote(format!(
                "Milvus's query answer has no column for field `{}`",
                field.name
            ))
        })
}

fn mismatch(field: &Field, what: &str) -> Error {
    Error::remote(format!(
        "Milvus answered column `{}` ({}) with {what}",
        field.name, field.kind
    ))
}

// ------------------------------------------------------------ to Arrow

/// A query answer as one Arrow record batch in the export's schema.
pub fn to_record_batch(fields: &[Field], cols: &[FieldData]) -> Result<RecordBatch> {
    let arrays = fields
        .iter()
        .map(|f| to_arrow(f, column(cols, f)?))
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::new(arrow_schema(fields)), arrays)
        .map_err(|e| Error::internal(format!("building a record batch: {e}")))
}

fn to_arrow(field: &Field, fd: &FieldData) -> Result<ArrayRef> {
    use scalar_field::Data as S;
    use vector_field::Data as V;
    let bad = |what: &str| mismatch(field, what);
    Ok(match (&field.kind, &fd.field) {
        (Kind::FloatVector(dim), Some(field_data::Field::Vectors(v))) => {
            let Some(V::FloatVector(a)) = &v.data else {
                return Err(bad("no float vector"));
            };
            let values = Float32Array::from(a.data.clone());
            Arc::new(
                FixedSizeListArray::try_new(
                    Arc::new(ArrowField::new("item", ArrowType::Float32, false)),
                    *dim as i32,
                    Arc::new(values),
                    None,
                )
                .map_err(|e| bad(&e.to_string()))?,
            )
        }
        (
            Kind::BinaryVector(_) | Kind::Float16Vector(_) | Kind::BFloat16Vector(_),
            Some(field_data::Field::Vectors(v)),
        ) => {
            let bytes = match &v.data {
                Some(V::BinaryVector(b) | V::Float16Vector(b) | V::Bfloat16Vector(b)) => b,
                _ => return Err(bad("no byte vector")),
            };
            let width = field.kind.vector_bytes().unwrap_or(1) as i32;
            Arc::new(
                FixedSizeBinaryArray::try_new(width, bytes.clone().into(), None)
                    .map_err(|e| bad(&e.to_string()))?,
            )
        }
        (Kind::SparseFloatVector, Some(field_data::Field::Vectors(v))) => {
            let Some(V::SparseFloatVector(s)) = &v.data else {
                return Err(bad("no sparse vector"));
            };
            let rows: Vec<String> = s
                .contents
                .iter()
                .map(|row| sparse_to_json(row).to_string())
                .collect();
            Arc::new(StringArray::from(rows))
        }
        (kind, Some(field_data::Field::Scalars(s))) => match (kind, &s.data) {
            (Kind::Bool, Some(S::BoolData(a))) => Arc::new(BooleanArray::from(a.data.clone())),
            (Kind::Int8, Some(S::IntData(a))) => {
                Arc::new(a.data.iter().map(|&v| v as i8).collect::<Int8Array>())
            }
            (Kind::Int16, Some(S::IntData(a))) => {
                Arc::new(a.data.iter().map(|&v| v as i16).collect::<Int16Array>())
            }
            (Kind::Int32, Some(S::IntData(a))) => Arc::new(Int32Array::from(a.data.clone())),
            (Kind::Int64, Some(S::LongData(a))) => Arc::new(Int64Array::from(a.data.clone())),
            (Kind::Float, Some(S::FloatData(a))) => Arc::new(Float32Array::from(a.data.clone())),
            (Kind::Double, Some(S::DoubleData(a))) => Arc::new(Float64Array::from(a.data.clone())),
            (Kind::VarChar, Some(S::StringData(a))) => {
                Arc::new(StringArray::from_iter_values(a.data.iter()))
            }
            (Kind::Json, Some(S::JsonData(a))) => Arc::new(
                a.data
                    .iter()
                    .map(|b| Some(String::from_utf8_lossy(b)))
                    .collect::<StringArray>(),
            ),
            (Kind::Array(elem), Some(S::ArrayData(a))) => array_to_arrow(*elem, a),
            _ => return Err(bad("another type")),
        },
        _ => return Err(bad("no data")),
    })
}

fn array_to_arrow(elem: Elem, a: &ArrayArray) -> ArrayRef {
    use scalar_field::Data as S;
    macro_rules! list {
        ($builder:expr, $variant:ident, $conv:expr) => {{
            let mut b = ListBuilder::new($builder);
            for row in &a.data {
                if let Some(S::$variant(v)) = &row.data {
                    for x in &v.data {
                        b.values().append_value($conv(x));
                    }
                }
                b.append(true);
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    match elem {
        Elem::Bool => list!(BooleanBuilder::new(), BoolData, |x: &bool| *x),
        Elem::Int8 => list!(Int8Builder::new(), IntData, |x: &i32| *x as i8),
        Elem::Int16 => list!(Int16Builder::new(), IntData, |x: &i32| *x as i16),
        Elem::Int32 => list!(Int32Builder::new(), IntData, |x: &i32| *x),
        Elem::Int64 => list!(Int64Builder::new(), LongData, |x: &i64| *x),
        Elem::Float => list!(Float32Builder::new(), FloatData, |x: &f32| *x),
        Elem::Double => list!(Float64Builder::new(), DoubleData, |x: &f64| *x),
        Elem::VarChar => list!(StringBuilder::new(), StringData, |x: &String| x.clone()),
    }
}

/// A sparse row (`u32` index, `f32` value pairs, little-endian) as
/// `{"index": value, ...}`.
fn sparse_to_json(row: &[u8]) -> Value {
    let mut m = Map::new();
    for pair in row.chunks_exact(8) {
        let idx = u32::from_le_bytes(pair[..4].try_into().expect("4 bytes"));
        let val = f32::from_le_bytes(pair[4..].try_into().expect("4 bytes"));
        m.insert(idx.to_string(), f32_value(val));
    }
    Value::Object(m)
}

fn f32_value(v: f32) -> Value {
    // The shortest text that reads back as the same f32.
    serde_json::from_str(&format!("{v:?}")).unwrap_or(Value::Null)
}

// ------------------------------------------------------------ to JSON

/// Appends a query answer to `out` as JSON Lines: one object per row with
/// the fields by name; JSON fields and `$meta` as JSON values, vectors as
/// arrays of numbers, float16/bfloat16 as arrays of floats, sparse vectors
/// as `{"index": value}` objects.
pub fn write_json_lines(fields: &[Field], cols: &[FieldData], out: &mut Vec<u8>) -> Result<()> {
    let n = row_count(cols);
    let per_field: Vec<Vec<Value>> = fields
        .iter()
        .map(|f| json_values(f, column(cols, f)?, n))
        .collect::<Result<_>>()?;
    let mut iters: Vec<_> = per_field.into_iter().map(|v| v.into_iter()).collect();
    for _ in 0..n {
        let mut row = Map::new();
        for (f, it) in fields.iter().zip(iters.iter_mut()) {
            row.insert(f.name.clone(), it.next().unwrap_or(Value::Null));
        }
        serde_json::to_writer(&mut *out, &Value::Object(row))
            .map_err(|e| Error::internal(format!("writing JSON: {e}")))?;
        out.push(b'\n');
    }
    Ok(())
}

fn json_values(field: &Field, fd: &FieldData, n: usize) -> Result<Vec<Value>> {
    use scalar_field::Data as S;
    use vector_field::Data as V;
    let bad = |what: &str| mismatch(field, what);
    let floats = |v: &[f32]| Value::Array(v.iter().map(|x| f32_value(*x)).collect());
    Ok(match &fd.field {
        Some(field_data::Field::Vectors(v)) => match (&field.kind, &v.data) {
            (Kind::FloatVector(dim), Some(V::FloatVector(a))) => {
                a.data.chunks(*dim).map(floats).collect()
            }
            (Kind::BinaryVector(_), Some(V::BinaryVector(b))) => b
                .chunks(field.kind.vector_bytes().unwrap_or(1))
                .map(|c| Value::from(c.to_vec()))
                .collect(),
            (Kind::Float16Vector(d), Some(V::Float16Vector(b))) => b
                .chunks(d * 2)
                .map(|c| {
                    floats(
                        &c.chunks_exact(2)
                            .map(|h| half::f16::from_le_bytes([h[0], h[1]]).to_f32())
                            .collect::<Vec<_>>(),
                    )
                })
                .collect(),
            (Kind::BFloat16Vector(d), Some(V::Bfloat16Vector(b))) => b
                .chunks(d * 2)
                .map(|c| {
                    floats(
                        &c.chunks_exact(2)
                            .map(|h| half::bf16::from_le_bytes([h[0], h[1]]).to_f32())
                            .collect::<Vec<_>>(),
                    )
                })
                .collect(),
            (Kind::SparseFloatVector, Some(V::SparseFloatVector(s))) => {
                s.contents.iter().map(|r| sparse_to_json(r)).collect()
            }
            _ => return Err(bad("another vector type")),
        },
        Some(field_data::Field::Scalars(s)) => match (&field.kind, &s.data) {
            (Kind::Bool, Some(S::BoolData(a))) => a.data.iter().map(|&b| Value::from(b)).collect(),
            (Kind::Int8 | Kind::Int16 | Kind::Int32, Some(S::IntData(a))) => {
                a.data.iter().map(|&b| Value::from(b)).collect()
            }
            (Kind::Int64, Some(S::LongData(a))) => a.data.iter().map(|&b| Value::from(b)).collect(),
            (Kind::Float, Some(S::FloatData(a))) => a.data.iter().map(|&b| f32_value(b)).collect(),
            (Kind::Double, Some(S::DoubleData(a))) => {
                a.data.iter().map(|&b| Value::from(b)).collect()
            }
            (Kind::VarChar, Some(S::StringData(a))) => {
                a.data.iter().map(|b| Value::from(b.as_str())).collect()
            }
            (Kind::Json, Some(S::JsonData(a))) => a
                .data
                .iter()
                .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null))
                .collect(),
            (Kind::Array(_), Some(S::ArrayData(a))) => a
                .data
                .iter()
                .map(|row| match &row.data {
                    Some(S::BoolData(v)) => Value::from(v.data.clone()),
                    Some(S::IntData(v)) => Value::from(v.data.clone()),
                    Some(S::LongData(v)) => Value::from(v.data.clone()),
                    Some(S::FloatData(v)) => floats(&v.data),
                    Some(S::DoubleData(v)) => Value::from(v.data.clone()),
                    Some(S::StringData(v)) => Value::from(v.data.clone()),
                    _ => Value::Array(Vec::new()),
                })
                .collect(),
            _ => return Err(bad("another type")),
        },
        _ if n == 0 => Vec::new(),
        _ => return Err(bad("no data")),
    })
}

// ------------------------------------------------------------ from files

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

/// Checks an Arrow schema (a Parquet file's) against the target's fields
/// before any row is read: every column a field, every required field a
/// column, each type one the field takes. Returns whether the data must be
/// read to check more (vector lengths of variable-size lists).
pub fn check_arrow_schema(
    fields: &[Field],
    schema: &arrow_schema::Schema,
    origin: Origin<'_>,
) -> Result<bool> {
    let mut need_data = false;
    for col in schema.fields() {
        let Some(field) = fields.iter().find(|f| &f.name == col.name()) else {
            return Err(Error::invalid_input(format!(
                "file `{}`, column `{}`: {} has no field of that name",
                origin.file,
                col.name(),
                origin.collection
            )));
        };
        need_data |= check_arrow_type(field, col.data_type(), col.name(), origin)?;
    }
    for f in fields.iter().filter(|f| required(f)) {
        if schema.field_with_name(&f.name).is_err() {
            return Err(Error::invalid_input(format!(
                "file `{}` has no column `{}`, but field `{}` of {} ({}) needs a value in every row",
                origin.file, f.name, f.name, origin.collection, f.kind
            )));
        }
    }
    Ok(need_data)
}

/// Whether every row must carry the field.
fn required(f: &Field) -> bool {
    !(f.auto_id || f.is_dynamic || f.nullable)
}

fn is_int(t: &ArrowType) -> bool {
    matches!(
        t,
        ArrowType::Int8
            | ArrowType::Int16
            | ArrowType::Int32
            | ArrowType::Int64
            | ArrowType::UInt8
            | ArrowType::UInt16
            | ArrowType::UInt32
    )
}

fn check_arrow_type(field: &Field, t: &ArrowType, col: &str, origin: Origin<'_>) -> Result<bool> {
    let wrong = || origin.error(col, field, format_args!("the column is {t}"));
    let list_item = |t: &ArrowType| match t {
        ArrowType::List(item) | ArrowType::LargeList(item) => Some(item.data_type().clone()),
        _ => None,
    };
    let mut need_data = false;
    let ok = match field.kind {
        Kind::Bool => matches!(t, ArrowType::Boolean),
        Kind::Int8 | Kind::Int16 | Kind::Int32 | Kind::Int64 => is_int(t),
        Kind::Float | Kind::Double => matches!(t, ArrowType::Float32 | ArrowType::Float64),
        Kind::VarChar | Kind::Json | Kind::SparseFloatVector => {
            matches!(t, ArrowType::Utf8 | ArrowType::LargeUtf8)
        }
        Kind::Array(elem) => match list_item(t) {
            Some(item) => {
                let f = Field {
                    kind: elem.kind(),
                    ..field.clone()
                };
                check_arrow_type(&f, &item, col, origin).is_ok()
            }
            None => false,
        },
        Kind::FloatVector(dim) => match t {
            ArrowType::FixedSizeList(item, n) => {
                if *n as usize != dim {
                    return Err(origin.error(
                        col,
                        field,
                        format_args!("its vectors have dimension {n}"),
                    ));
                }
                matches!(item.data_type(), ArrowType::Float32 | ArrowType::Float64)
            }
            _ => {
                need_data = true;
                matches!(list_item(t), Some(ArrowType::Float32 | ArrowType::Float64))
            }
        },
        Kind::BinaryVector(_) | Kind::Float16Vector(_) | Kind::BFloat16Vector(_) => {
            let width = field.kind.vector_bytes().unwrap_or(0);
            match t {
                ArrowType::FixedSizeBinary(n) => {
                    if *n as usize != width {
                        return Err(origin.error(
                            col,
                            field,
                            format_args!("its vectors have {n} bytes instead of {width}"),
                        ));
                    }
                    true
                }
                ArrowType::Binary | ArrowType::LargeBinary => {
                    need_data = true;
                    true
                }
                _ => {
                    need_data = true;
                    let item = list_item(t);
                    matches!(item, Some(ArrowType::UInt8))
                        || (!matches!(field.kind, Kind::BinaryVector(_))
                            && matches!(item, Some(ArrowType::Float32 | ArrowType::Float64)))
                }
            }
        }
    };
    if ok {
        Ok(need_data)
    } else {
        Err(wrong())
    }
}

/// One Parquet record batch as Milvus columns for Insert, checked value by
/// value (vector lengths, integer ranges). Columns of auto-ID primary keys
/// are left out when `drop_auto_id`.
pub fn from_record_batch(
    fields: &[Field],
    batch: &RecordBatch,
    origin: Origin<'_>,
    drop_auto_id: bool,
) -> Result<Vec<FieldData>> {
    let mut out = Vec::new();
    for field in fields {
        if field.auto_id && drop_auto_id {
            continue;
        }
        let Some(col) = batch.column_by_name(&field.name) else {
            if required(field) {
                return Err(Error::invalid_input(format!(
                    "file `{}` has no column `{}`, but field `{}` of {} ({}) needs a value in every row",
                    origin.file, field.name, field.name, origin.collection, field.kind
                )));
            }
            if field.is_dynamic {
                out.push(json_field(
                    field,
                    vec![b"{}".to_vec(); batch.num_rows()],
                    true,
                ));
            }
            continue;
        };
        out.push(arrow_column(field, col, origin)?);
    }
    Ok(out)
}

fn scalars(field: &Field, data: scalar_field::Data) -> FieldData {
    FieldData {
        r#type: field.kind.data_type() as i32,
        field_name: field.name.clone(),
        field: Some(field_data::Field::Scalars(ScalarField {
            data: Some(data),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn vectors(field: &Field, dim: usize, data: vector_field::Data) -> FieldData {
    FieldData {
        r#type: field.kind.data_type() as i32,
        field_name: field.name.clone(),
        field: Some(field_data::Field::Vectors(VectorField {
            dim: dim as i64,
            data: Some(data),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn json_field(field: &Field, rows: Vec<Vec<u8>>, dynamic: bool) -> FieldData {
    let mut fd = scalars(
        field,
        scalar_field::Data::JsonData(JsonArray { data: rows }),
    );
    fd.is_dynamic = dynamic;
    fd
}

/// A primitive column's values, converted one by one.
fn widen<T: arrow_array::ArrowPrimitiveType, U>(
    a: &dyn Array,
    f: impl Fn(T::Native) -> U,
) -> Vec<U> {
    a.as_primitive::<T>()
        .values()
        .iter()
        .map(|&v| f(v))
        .collect()
}

fn ints(col: &ArrayRef) -> Option<Vec<i64>> {
    use arrow_array::types::{UInt16Type, UInt32Type};
    let a = col.as_ref();
    Some(match a.data_type() {
        ArrowType::Int8 => widen::<Int8Type, _>(a, i64::from),
        ArrowType::Int16 => widen::<Int16Type, _>(a, i64::from),
        ArrowType::Int32 => widen::<Int32Type, _>(a, i64::from),
        ArrowType::Int64 => widen::<Int64Type, _>(a, |v| v),
        ArrowType::UInt8 => widen::<UInt8Type, _>(a, i64::from),
        ArrowType::UInt16 => widen::<UInt16Type, _>(a, i64::from),
        ArrowType::UInt32 => widen::<UInt32Type, _>(a, i64::from),
        _ => return None,
    })
}

fn floats64(col: &dyn Array) -> Option<Vec<f64>> {
    Some(match col.data_type() {
        ArrowType::Float32 => widen::<Float32Type, _>(col, f64::from),
        ArrowType::Float64 => widen::<Float64Type, _>(col, |v| v),
        _ => return None,
    })
}

fn floats32(col: &dyn Array) -> Option<Vec<f32>> {
    Some(match col.data_type() {
        ArrowType::Float32 => widen::<Float32Type, _>(col, |v| v),
        ArrowType::Float64 => widen::<Float64Type, _>(col, |v| v as f32),
        _ => return None,
    })
}

fn strings(col: &dyn Array) -> Option<Vec<String>> {
    Some(match col.data_type() {
        ArrowType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect(),
        ArrowType::LargeUtf8 => col
            .as_string::<i64>()
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect(),
        _ => return None,
    })
}

/// Narrows integers to the field's range, naming the first bad row.
fn narrow(
    values: Vec<i64>,
    lo: i64,
    hi: i64,
    bad: impl Fn(usize, i64) -> Error,
) -> Result<Vec<i32>> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if v < lo || v > hi {
                Err(bad(i, v))
            } else {
                Ok(v as i32)
            }
        })
        .collect()
}

/// The rows of a list column: (offsets, values).
fn list_parts(col: &dyn Array) -> Option<(Vec<usize>, ArrayRef)> {
    match col.data_type() {
        ArrowType::List(_) => {
            let l = col.as_list::<i32>();
            Some((
                l.offsets().iter().map(|&o| o as usize).collect(),
                l.values().clone(),
            ))
        }
        ArrowType::LargeList(_) => {
            let l = col.as_list::<i64>();
            Some((
                l.offsets().iter().map(|&o| o as usize).collect(),
                l.values().clone(),
            ))
        }
        ArrowType::FixedSizeList(_, n) => {
            let l = col.as_fixed_size_list();
            let n = *n as usize;
            Some(((0..=l.len()).map(|i| i * n).collect(), l.values().clone()))
        }
        _ => None,
    }
}

fn arrow_column(field: &Field, col: &ArrayRef, origin: Origin<'_>) -> Result<FieldData> {
    use scalar_field::Data as S;
    use vector_field::Data as V;
    let name = field.name.as_str();
    let wrong = || {
        origin.error(
            name,
            field,
            format_args!("the column is {}", col.data_type()),
        )
    };
    let range = |lo: i64, hi: i64| {
        move |i: usize, v: i64| {
            origin.error(
                name,
                field,
                format_args!("row {i} holds {v}, outside [{lo}, {hi}]"),
            )
        }
    };
    if col.null_count() > 0 && !field.nullable {
        return Err(origin.error(name, field, "the column has nulls"));
    }
    Ok(match field.kind {
        Kind::Bool => {
            let a = col.as_boolean_opt().ok_or_else(wrong)?;
            scalars(
                field,
                S::BoolData(BoolArray {
                    data: a.iter().map(|b| b.unwrap_or(false)).collect(),
                }),
            )
        }
        Kind::Int8 | Kind::Int16 | Kind::Int32 => {
            let (lo, hi) = match field.kind {
                Kind::Int8 => (i8::MIN as i64, i8::MAX as i64),
                Kind::Int16 => (i16::MIN as i64, i16::MAX as i64),
                _ => (i32::MIN as i64, i32::MAX as i64),
            };
            let v = ints(col).ok_or_else(wrong)?;
            scalars(
                field,
                S::IntData(IntArray {
                    data: narrow(v, lo, hi, range(lo, hi))?,
                }),
            )
        }
        Kind::Int64 => scalars(
            field,
            S::LongData(LongArray {
                data: ints(col).ok_or_else(wrong)?,
            }),
        ),
        Kind::Float => scalars(
            field,
            S::FloatData(FloatArray {
                data: floats32(col).ok_or_else(wrong)?,
            }),
        ),
        Kind::Double => scalars(
            field,
            S::DoubleData(DoubleArray {
                data: floats64(col).ok_or_else(wrong)?,
            }),
        ),
        Kind::VarChar => scalars(
            field,
            S::StringData(PbStrings {
                data: strings(col).ok_or_else(wrong)?,
            }),
        ),
        Kind::Json => {
            let rows = strings(col).ok_or_else(wrong)?;
            json_field(
                field,
                rows.into_iter().map(String::into_bytes).collect(),
                field.is_dynamic,
            )
        }
        Kind::SparseFloatVector => {
            let rows = strings(col).ok_or_else(wrong)?;
            let mut contents = Vec::with_capacity(rows.len());
            let mut dim = 0;
            for (i, r) in rows.iter().enumerate() {
                let v: Value = serde_json::from_str(r).map_err(|e| {
                    origin.error(name, field, format_args!("row {i} is not JSON ({e})"))
                })?;
                let (row, d) = sparse_from_json(&v).ok_or_else(|| {
                    origin.error(name, field, format_args!("row {i} is not a sparse vector"))
                })?;
                dim = dim.max(d);
                contents.push(row);
            }
            vectors(
                field,
                dim,
                V::SparseFloatVector(SparseFloatArray {
                    contents,
                    dim: dim as i64,
                }),
            )
        }
        Kind::Array(elem) => {
            let (offsets, values) = list_parts(col).ok_or_else(wrong)?;
            let ef = Field {
                kind: elem.kind(),
                nullable: false,
                ..field.clone()
            };
            let inner = arrow_column(&ef, &values, origin)?;
            let Some(field_data::Field::Scalars(ScalarField { data: Some(d), .. })) = inner.field
            else {
                return Err(wrong());
            };
            let rows = offsets
                .windows(2)
                .map(|w| ScalarField {
                    data: Some(slice_scalars(&d, w[0], w[1])),
                    ..Default::default()
                })
                .collect();
            let mut fd = scalars(
                field,
                S::ArrayData(ArrayArray {
                    data: rows,
                    element_type: elem.kind().data_type() as i32,
                }),
            );
            fd.r#type = field.kind.data_type() as i32;
            fd
        }
        Kind::FloatVector(dim) => {
            let (offsets, values) = list_parts(col).ok_or_else(wrong)?;
            check_lengths(&offsets, dim, |i, n| {
                origin.error(
                    name,
                    field,
                    format_args!("row {i} has a vector of dimension {n}"),
                )
            })?;
            let flat = floats32(values.as_ref()).ok_or_else(wrong)?;
            let flat = flat[offsets[0]..offsets[offsets.len() - 1]].to_vec();
            vectors(field, dim, V::FloatVector(FloatArray { data: flat }))
        }
        Kind::BinaryVector(dim) | Kind::Float16Vector(dim) | Kind::BFloat16Vector(dim) => {
            let width = field.kind.vector_bytes().unwrap_or(0);
            let bad_len = |i: usize, n: usize| {
                origin.error(
                    name,
                    field,
                    format_args!("row {i} has a vector of {n} bytes instead of {width}"),
                )
            };
            let bytes: Vec<u8> = match col.data_type() {
                ArrowType::FixedSizeBinary(_) => {
                    let a = col.as_fixed_size_binary();
                    a.values().to_vec()
                }
                ArrowType::Binary => {
                    let a = col.as_binary::<i32>();
                    let mut out = Vec::with_capacity(a.len() * width);
                    for (i, v) in a.iter().enumerate() {
                        let v = v.unwrap_or_default();
                        if v.len() != width {
                            return Err(bad_len(i, v.len()));
                        }
                        out.extend_from_slice(v);
                    }
                    out
                }
                _ => {
                    let (offsets, values) = list_parts(col).ok_or_else(wrong)?;
                    if let Some(f) = floats32(values.as_ref()) {
                        // float16/bfloat16 given as floats
                        check_lengths(&offsets, dim, |i, n| {
                            origin.error(
                                name,
                                field,
                                format_args!("row {i} has a vector of dimension {n}"),
                            )
                        })?;
                        halves(field.kind, &f[offsets[0]..offsets[offsets.len() - 1]])
                    } else {
                        check_lengths(&offsets, width, bad_len)?;
                        let v = values.as_primitive_opt::<UInt8Type>().ok_or_else(wrong)?;
                        v.values()[offsets[0]..offsets[offsets.len() - 1]].to_vec()
                    }
                }
            };
            let data = match field.kind {
                Kind::BinaryVector(_) => V::BinaryVector(bytes),
                Kind::Float16Vector(_) => V::Float16Vector(bytes),
                _ => V::Bfloat16Vector(bytes),
            };
            vectors(field, dim, data)
        }
    })
}

fn halves(kind: Kind, f: &[f32]) -> Vec<u8> {
    match kind {
        Kind::Float16Vector(_) => f
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect(),
        _ => f
            .iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
            .collect(),
    }
}

fn check_lengths(
    offsets: &[usize],
    want: usize,
    bad: impl Fn(usize, usize) -> Error,
) -> Result<()> {
    for (i, w) in offsets.windows(2).enumerate() {
        if w[1] - w[0] != want {
            return Err(bad(i, w[1] - w[0]));
        }
    }
    Ok(())
}

fn slice_scalars(d: &scalar_field::Data, a: usize, b: usize) -> scalar_field::Data {
    use scalar_field::Data as S;
    match d {
        S::BoolData(v) => S::BoolData(BoolArray {
            data: v.data[a..b].to_vec(),
        }),
        S::IntData(v) => S::IntData(IntArray {
            data: v.data[a..b].to_vec(),
        }),
        S::LongData(v) => S::LongData(LongArray {
            data: v.data[a..b].to_vec(),
        }),
        S::FloatData(v) => S::FloatData(FloatArray {
            data: v.data[a..b].to_vec(),
        }),
        S::DoubleData(v) => S::DoubleData(DoubleArray {
            data: v.data[a..b].to_vec(),
        }),
        S::StringData(v) => S::StringData(PbStrings {
            data: v.data[a..b].to_vec(),
        }),
        S::BytesData(v) => S::BytesData(BytesArray {
            data: v.data[a..b].to_vec(),
        }),
        other => other.clone(),
    }
}

/// `{"index": value}` or `{"indices": [...], "values": [...]}` as Milvus's
/// sparse row bytes (sorted by index), with its dimension (max index + 1).
fn sparse_from_json(v: &Value) -> Option<(Vec<u8>, usize)> {
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

/// Rows of a JSON file (JSON Lines objects, or bulk-writer JSON's `rows`)
/// as Milvus columns, checked value by value. Keys that are no field go
/// into `$meta` when the collection has a dynamic field, else are refused.
pub fn from_json_rows(
    fields: &[Field],
    rows: &[Map<String, Value>],
    origin: Origin<'_>,
    drop_auto_id: bool,
) -> Result<Vec<FieldData>> {
    let dynamic = fields.iter().find(|f| f.is_dynamic);
    let by_name: HashMap<&str, &Field> = fields.iter().map(|f| (f.name.as_str(), f)).collect();
    for row in rows.iter().take(1) {
        for k in row.keys() {
            if !by_name.contains_key(k.as_str()) && dynamic.is_none() {
                return Err(Error::invalid_input(format!(
                    "file `{}`, column `{k}`: {} has no field of that name (and no dynamic field)",
                    origin.file, origin.collection
                )));
            }
        }
    }
    let mut out = Vec::new();
    for field in fields {
        if field.auto_id && drop_auto_id {
            continue;
        }
        if field.is_dynamic {
            let mut metas = Vec::with_capacity(rows.len());
            for row in rows {
                let mut meta = match row.get(&field.name) {
                    Some(Value::Object(m)) => m.clone(),
                    Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
                    _ => Map::new(),
                };
                for (k, v) in row {
                    if !by_name.contains_key(k.as_str()) {
                        meta.insert(k.clone(), v.clone());
                    }
                }
                metas.push(serde_json::to_vec(&Value::Object(meta)).unwrap_or_default());
            }
            out.push(json_field(field, metas, true));
            continue;
        }
        let mut values = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            match row.get(&field.name) {
                Some(v) => values.push(v),
                None if required(field) => {
                    return Err(Error::invalid_input(format!(
                        "file `{}`, row {i}: no value for field `{}` of {} ({}), which needs one in every row",
                        origin.file, field.name, origin.collection, field.kind
                    )))
                }
                None => values.push(&Value::Null),
            }
        }
        if values.iter().all(|v| v.is_null()) && !required(field) {
            continue;
        }
        out.push(json_column(field, &values, origin)?);
    }
    Ok(out)
}

fn json_column(field: &Field, values: &[&Value], origin: Origin<'_>) -> Result<FieldData> {
    use scalar_field::Data as S;
    use vector_field::Data as V;
    let name = field.name.as_str();
    let bad = |i: usize, v: &Value| {
        let mut text = v.to_string();
        if text.len() > 40 {
            text.truncate(40);
            text.push('…');
        }
        origin.error(name, field, format_args!("row {i} holds {text}"))
    };
    macro_rules! each {
        ($conv:expr) => {
            values
                .iter()
                .enumerate()
                .map(|(i, v)| $conv(*v).ok_or_else(|| bad(i, v)))
                .collect::<Result<Vec<_>>>()?
        };
    }
    let int_in = |lo: i64, hi: i64| {
        move |v: &Value| {
            v.as_i64()
                .filter(|x| *x >= lo && *x <= hi)
                .map(|x| x as i32)
        }
    };
    let f32s = |v: &Value| {
        v.as_array()?
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<Vec<f32>>>()
    };
    Ok(match field.kind {
        Kind::Bool => scalars(
            field,
            S::BoolData(BoolArray {
                data: each!(|v: &Value| v.as_bool()),
            }),
        ),
        Kind::Int8 => scalars(
            field,
            S::IntData(IntArray {
                data: each!(int_in(i8::MIN as i64, i8::MAX as i64)),
            }),
        ),
        Kind::Int16 => scalars(
            field,
            S::IntData(IntArray {
                data: each!(int_in(i16::MIN as i64, i16::MAX as i64)),
            }),
        ),
        Kind::Int32 => scalars(
            field,
            S::IntData(IntArray {
                data: each!(int_in(i32::MIN as i64, i32::MAX as i64)),
            }),
        ),
        Kind::Int64 => scalars(
            field,
            S::LongData(LongArray {
                data: each!(|v: &Value| v.as_i64()),
            }),
        ),
        Kind::Float => scalars(
            field,
            S::FloatData(FloatArray {
                data: each!(|v: &Value| v.as_f64().map(|f| f as f32)),
            }),
        ),
        Kind::Double => scalars(
            field,
            S::DoubleData(DoubleArray {
                data: each!(|v: &Value| v.as_f64()),
            }),
        ),
        Kind::VarChar => scalars(
            field,
            S::StringData(PbStrings {
                data: each!(|v: &Value| v.as_str().map(str::to_string)),
            }),
        ),
        Kind::Json => json_field(
            field,
            values
                .iter()
                .map(|v| serde_json::to_vec(v).unwrap_or_default())
                .collect(),
            false,
        ),
        Kind::Array(elem) => {
            let ef = Field {
                kind: elem.kind(),
                nullable: false,
                ..field.clone()
            };
            let mut rows = Vec::with_capacity(values.len());
            for (i, v) in values.iter().enumerate() {
                let items: Vec<&Value> = v.as_array().ok_or_else(|| bad(i, v))?.iter().collect();
                let inner = json_column(&ef, &items, origin)?;
                let Some(field_data::Field::Scalars(s)) = inner.field else {
                    return Err(bad(i, v));
                };
                rows.push(s);
            }
            let mut fd = scalars(
                field,
                S::ArrayData(ArrayArray {
                    data: rows,
                    element_type: elem.kind().data_type() as i32,
                }),
            );
            fd.r#type = field.kind.data_type() as i32;
            fd
        }
        Kind::FloatVector(dim) => {
            let rows = each!(|v: &Value| f32s(v).filter(|r| r.len() == dim));
            vectors(
                field,
                dim,
                V::FloatVector(FloatArray {
                    data: rows.concat(),
                }),
            )
        }
        Kind::BinaryVector(dim) => {
            let width = dim / 8;
            let rows = each!(|v: &Value| v
                .as_array()?
                .iter()
                .map(|x| x.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()
                .filter(|r| r.len() == width));
            vectors(field, dim, V::BinaryVector(rows.concat()))
        }
        Kind::Float16Vector(dim) | Kind::BFloat16Vector(dim) => {
            let rows = each!(|v: &Value| f32s(v).filter(|r| r.len() == dim));
            let bytes = halves(field.kind, &rows.concat());
            let data = if matches!(field.kind, Kind::Float16Vector(_)) {
                V::Float16Vector(bytes)
            } else {
                V::Bfloat16Vector(bytes)
            };
            vectors(field, dim, data)
        }
        Kind::SparseFloatVector => {
            let rows = each!(|v: &Value| match v {
                Value::String(s) => serde_json::from_str::<Value>(s)
                    .ok()
                    .and_then(|v| sparse_from_json(&v)),
                v => sparse_from_json(v),
            });
            let dim = rows.iter().map(|r| r.1).max().unwrap_or(0);
            vectors(
                field,
                dim,
                V::SparseFloatVector(SparseFloatArray {
                    contents: rows.into_iter().map(|r| r.0).collect(),
                    dim: dim as i64,
                }),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, kind: Kind) -> Field {
        Field {
            name: name.into(),
            kind,
            is_primary: name == "id",
            auto_id: false,
            is_dynamic: false,
            nullable: false,
        }
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
        let back = from_json_rows(&fields, &rows, origin, false).unwrap();
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
