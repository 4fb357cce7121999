//! An insert log's values as an Arrow column, and that column in the form
//! the logical engine reads for the field's kind
//! ([`Kind::arrow_type`](crate::ops::logical::fields::Kind::arrow_type)), so
//! that a physical backup's rows go in through the same insert path as a
//! logical backup's ([`crate::ops::logical::columns::from_record_batch`]).
//!
//! How Milvus 2.2 and 2.3 write each type (checked on their files): bool,
//! int8–int64, float and double as Parquet columns of their own type;
//! VarChar as strings; JSON (and the dynamic field) as bytes; an array as
//! the bytes of a protobuf `ScalarField` per row; vectors as fixed-size
//! binary — a float vector `dim × 4` bytes little-endian, a binary vector
//! `dim / 8`, float16 and bfloat16 `dim × 2`, int8 `dim`; a sparse vector
//! as bytes of (`u32` index, `f32` value) pairs. A null (nullable fields,
//! Milvus 2.5) is a Parquet null.
//!
//! Does not own: which files make a segment, or deletes
//! ([`crate::ops::restore`] and [`super`]).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    Int8Builder, ListBuilder, StringBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Int8Array, StringArray, UInt64Array,
};
use arrow_schema::{DataType as ArrowType, Field as ArrowField};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use prost::Message;

use super::{bad, payload_bytes, Key, INSERT_EVENT};
use crate::error::{Error, Result};
use crate::milvus::proto::schema::{scalar_field, ScalarField};
use crate::ops::logical::fields::{Elem, Kind};

/// Every value of an insert log (all its insert events), as Milvus wrote
/// them: one Arrow array.
pub fn insert_values(file: &[u8]) -> Result<ArrayRef> {
    let mut parts: Vec<ArrayRef> = Vec::new();
    for payload in payload_bytes(file, INSERT_EVENT)? {
        let reader = ParquetRecordBatchReaderBuilder::try_new(payload)
            .and_then(|b| b.with_batch_size(64 * 1024).build())
            .map_err(|e| bad(&format!("its Parquet payload does not parse: {e}")))?;
        for batch in reader {
            let batch =
                batch.map_err(|e| bad(&format!("its Parquet payload does not read: {e}")))?;
            if batch.num_columns() != 1 {
                return Err(bad("an insert payload without exactly one column"));
            }
            parts.push(batch.column(0).clone());
        }
    }
    concat(&parts)
}

/// The arrays one after another (one column of several files).
pub fn concat(parts: &[ArrayRef]) -> Result<ArrayRef> {
    match parts {
        [] => Err(bad("an insert log without values")),
        [one] => Ok(one.clone()),
        many => {
            let refs: Vec<&dyn Array> = many.iter().map(|a| a.as_ref()).collect();
            arrow_select::concat::concat(&refs)
                .map_err(|e| bad(&format!("its columns do not join: {e}")))
        }
    }
}

/// The primary keys of a primary-key column.
pub fn keys_of(values: &ArrayRef) -> Result<Vec<Key>> {
    match values.data_type() {
        ArrowType::Int64 => Ok(values
            .as_primitive::<arrow_array::types::Int64Type>()
            .values()
            .iter()
            .map(|&k| Key::Int(k))
            .collect()),
        ArrowType::Utf8 => Ok(values
            .as_string::<i32>()
            .iter()
            .map(|s| Key::Str(s.unwrap_or_default().to_string()))
            .collect()),
        ArrowType::Binary => Ok(values
            .as_binary::<i32>()
            .iter()
            .map(|b| Key::Str(String::from_utf8_lossy(b.unwrap_or_default()).into_owned()))
            .collect()),
        other => Err(bad(&format!("a primary-key column of type {other}"))),
    }
}

/// The timestamps of the timestamp field's column (field 1).
pub fn timestamps_of(values: &ArrayRef) -> Result<Vec<u64>> {
    match values.data_type() {
        ArrowType::Int64 => Ok(values
            .as_primitive::<arrow_array::types::Int64Type>()
            .values()
            .iter()
            .map(|&t| t as u64)
            .collect()),
        ArrowType::UInt64 => Ok(values
            .as_any()
            .downcast_ref::<UInt64Array>()
            .map(|a| a.values().to_vec())
            .unwrap_or_default()),
        other => Err(bad(&format!("a timestamp column of type {other}"))),
    }
}

/// Whether a restore can insert the values of a field of `kind` read from
/// insert logs; `Some(why)` when it cannot.
pub fn unreadable(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Geometry | Kind::Timestamptz => {
            Some("its insert logs are not read by this tool yet (Milvus 2.6 types)")
        }
        _ => None,
    }
}

/// An insert log's values as the Arrow type the logical engine reads for
/// a field of `kind`; `Err` says how they differ.
pub fn as_field_column(kind: Kind, values: &ArrayRef) -> std::result::Result<ArrayRef, String> {
    let t = values.data_type().clone();
    let wrong = || format!("the insert log holds {t}");
    match kind {
        Kind::Bool => matches!(t, ArrowType::Boolean)
            .then(|| values.clone())
            .ok_or_else(wrong),
        Kind::Int8 | Kind::Int16 | Kind::Int32 | Kind::Int64 => matches!(
            t,
            ArrowType::Int8 | ArrowType::Int16 | ArrowType::Int32 | ArrowType::Int64
        )
        .then(|| values.clone())
        .ok_or_else(wrong),
        Kind::Float | Kind::Double => matches!(t, ArrowType::Float32 | ArrowType::Float64)
            .then(|| values.clone())
            .ok_or_else(wrong),
        Kind::VarChar | Kind::Text | Kind::Json => text(values).ok_or_else(wrong),
        Kind::SparseFloatVector => sparse_as_json(values).ok_or_else(wrong),
        Kind::Array(elem) => arrays(elem, values),
        Kind::FloatVector(dim) => {
            let bytes = fixed(values, dim * 4).ok_or_else(wrong)?;
            let floats: Float32Array = bytes
                .value_data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect();
            let item = Arc::new(ArrowField::new("item", ArrowType::Float32, false));
            FixedSizeListArray::try_new(item, dim as i32, Arc::new(floats), bytes.nulls().cloned())
                .map(|a| Arc::new(a) as ArrayRef)
                .map_err(|e| e.to_string())
        }
        Kind::Int8Vector(dim) => {
            let bytes = fixed(values, dim).ok_or_else(wrong)?;
            let ints: Int8Array = bytes.value_data().iter().map(|&b| b as i8).collect();
            let item = Arc::new(ArrowField::new("item", ArrowType::Int8, false));
            FixedSizeListArray::try_new(item, dim as i32, Arc::new(ints), bytes.nulls().cloned())
                .map(|a| Arc::new(a) as ArrayRef)
                .map_err(|e| e.to_string())
        }
        Kind::BinaryVector(_) | Kind::Float16Vector(_) | Kind::BFloat16Vector(_) => {
            let width = kind.vector_bytes().unwrap_or(0);
            fixed(values, width)
                .map(|_| values.clone())
                .ok_or_else(wrong)
        }
        Kind::Geometry | Kind::Timestamptz => Err(unreadable(kind).unwrap_or_default().into()),
    }
}

/// A fixed-size binary column of `width` bytes a value.
fn fixed(values: &ArrayRef, width: usize) -> Option<&arrow_array::FixedSizeBinaryArray> {
    let a = values.as_fixed_size_binary_opt()?;
    (a.value_length() as usize == width).then_some(a)
}

/// Strings, or bytes that are UTF-8 (JSON), as a string column.
fn text(values: &ArrayRef) -> Option<ArrayRef> {
    match values.data_type() {
        ArrowType::Utf8 => Some(values.clone()),
        ArrowType::Binary => {
            let strings: Option<StringArray> = values
                .as_binary::<i32>()
                .iter()
                .map(|b| match b {
                    None => Some(None),
                    Some(b) => std::str::from_utf8(b).ok().map(Some),
                })
                .collect::<Option<Vec<_>>>()
                .map(StringArray::from);
            strings.map(|s| Arc::new(s) as ArrayRef)
        }
        _ => None,
    }
}

/// Sparse rows (`u32` index, `f32` value pairs) as the JSON text
/// `{"indices": […], "values": […]}` the logical engine reads.
fn sparse_as_json(values: &ArrayRef) -> Option<ArrayRef> {
    let rows = values.as_binary_opt::<i32>()?;
    let texts: StringArray = rows
        .iter()
        .map(|row| {
            row.map(|b| {
                let (mut idx, mut vals) = (Vec::new(), Vec::new());
                for pair in b.chunks_exact(8) {
                    idx.push(u32::from_le_bytes(pair[..4].try_into().expect("4 bytes")));
                    vals.push(f32::from_le_bytes(pair[4..].try_into().expect("4 bytes")));
                }
                serde_json::json!({"indices": idx, "values": vals}).to_string()
            })
        })
        .collect();
    Some(Arc::new(texts))
}

/// Rows of serialized `ScalarField`s as a list column of `elem`.
fn arrays(elem: Elem, values: &ArrayRef) -> std::result::Result<ArrayRef, String> {
    let rows = values
        .as_binary_opt::<i32>()
        .ok_or_else(|| format!("the insert log holds {}", values.data_type()))?;
    let mut decoded = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        decoded.push(match row {
            None => None,
            Some(b) => Some(
                ScalarField::decode(b)
                    .map_err(|e| format!("row {i} is not a serialized array: {e}"))?,
            ),
        });
    }
    use scalar_field::Data as D;
    macro_rules! list {
        ($builder:expr, $variant:ident, $conv:expr) => {{
            let mut b = ListBuilder::new($builder);
            for (i, row) in decoded.iter().enumerate() {
                match row.as_ref().map(|s| &s.data) {
                    None => b.append_null(),
                    Some(None) => b.append(true),
                    Some(Some(D::$variant(a))) => {
                        for v in &a.data {
                            b.values().append_value($conv(v));
                        }
                        b.append(true);
                    }
                    Some(Some(_)) => {
                        return Err(format!("row {i} holds elements of another type"));
                    }
                }
            }
            Ok(Arc::new(b.finish()) as ArrayRef)
        }};
    }
    match elem {
        Elem::Bool => list!(BooleanBuilder::new(), BoolData, |v: &bool| *v),
        Elem::Int8 => list!(Int8Builder::new(), IntData, |v: &i32| *v as i8),
        Elem::Int16 => list!(Int16Builder::new(), IntData, |v: &i32| *v as i16),
        Elem::Int32 => list!(Int32Builder::new(), IntData, |v: &i32| *v),
        Elem::Int64 => list!(Int64Builder::new(), LongData, |v: &i64| *v),
        Elem::Float => list!(Float32Builder::new(), FloatData, |v: &f32| *v),
        Elem::Double => list!(Float64Builder::new(), DoubleData, |v: &f64| *v),
        Elem::VarChar => list!(StringBuilder::new(), StringData, |v: &String| v.clone()),
    }
}

/// An insert log whose column does not fit its field, for messages.
pub fn mismatch(field: &str, kind: Kind, key: &str, why: &str) -> Error {
    Error::corrupt(format!(
        "insert log `{key}` of field `{field}` ({kind}) does not read: {why}"
    ))
    .at("key", key)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{binlog, payload};
    use super::*;
    use parquet::column::writer::ColumnWriter;
    use parquet::data_type::{ByteArray, FixedLenByteArray};

    fn byte_rows(schema: &str, rows: &[Vec<u8>]) -> Vec<u8> {
        let values: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.clone())).collect();
        binlog(
            INSERT_EVENT,
            payload(schema, |c| {
                let ColumnWriter::ByteArrayColumnWriter(w) = c else {
                    panic!("byte array column")
                };
                let _ = w.write_batch(&values, None, None).unwrap();
            }),
        )
    }

    #[test]
    fn float_vectors_are_little_endian_floats() {
        let rows: Vec<FixedLenByteArray> = [[1.5f32, -2.0], [0.25, 3.0]]
            .iter()
            .map(|v| {
                let b: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                FixedLenByteArray::from(b)
            })
            .collect();
        let file = binlog(
            INSERT_EVENT,
            payload("message m { required fixed_len_byte_array(8) v; }", |c| {
                let ColumnWriter::FixedLenByteArrayColumnWriter(w) = c else {
                    panic!("fixed column")
                };
                let _ = w.write_batch(&rows, None, None).unwrap();
            }),
        );
        let raw = insert_values(&file).unwrap();
        let col = as_field_column(Kind::FloatVector(2), &raw).unwrap();
        assert_eq!(col.data_type(), &Kind::FloatVector(2).arrow_type());
        let list = col.as_fixed_size_list();
        let floats = list
            .values()
            .as_primitive::<arrow_array::types::Float32Type>();
        assert_eq!(floats.values().to_vec(), vec![1.5, -2.0, 0.25, 3.0]);
        let e = as_field_column(Kind::FloatVector(4), &raw).unwrap_err();
        assert!(e.contains("FixedSizeBinary(8)"), "{e}");
    }

    #[test]
    fn arrays_are_serialized_scalar_fields_and_json_is_bytes() {
        use crate::milvus::proto::schema::{LongArray, StringArray as Strings};
        let longs = |v: Vec<i64>| {
            ScalarField {
                data: Some(scalar_field::Data::LongData(LongArray { data: v })),
                ..Default::default()
            }
            .encode_to_vec()
        };
        let file = byte_rows(
            "message m { required binary v; }",
            &[longs(vec![1, -(1 << 40)]), longs(vec![])],
        );
        let col = as_field_column(Kind::Array(Elem::Int64), &insert_values(&file).unwrap());
        let list = col.unwrap();
        let list = list.as_list::<i32>();
        assert_eq!(list.value_length(0), 2);
        assert_eq!(list.value_length(1), 0);
        let strings = ScalarField {
            data: Some(scalar_field::Data::StringData(Strings {
                data: vec!["x".into()],
            })),
            ..Default::default()
        }
        .encode_to_vec();
        let mixed = byte_rows("message m { required binary v; }", &[strings]);
        let e = as_field_column(Kind::Array(Elem::Int64), &insert_values(&mixed).unwrap());
        assert!(e.unwrap_err().contains("another type"));
        let json = byte_rows(
            "message m { required binary v; }",
            &[br#"{"a":1}"#.to_vec()],
        );
        let col = as_field_column(Kind::Json, &insert_values(&json).unwrap()).unwrap();
        assert_eq!(col.as_string::<i32>().value(0), r#"{"a":1}"#);
    }

    #[test]
    fn keys_and_timestamps_come_from_int64_and_string_columns() {
        let ints: ArrayRef = Arc::new(arrow_array::Int64Array::from(vec![3, -1]));
        assert_eq!(keys_of(&ints).unwrap(), vec![Key::Int(3), Key::Int(-1)]);
        assert_eq!(timestamps_of(&ints).unwrap()[0], 3);
        let strs: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
        assert_eq!(keys_of(&strs).unwrap()[1], Key::Str("b".into()));
        assert!(timestamps_of(&strs).is_err());
    }
}
