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
    FieldData, FloatArray, IntArray, JsonArray, LongArray, ScalarField, SparseFloatArray,
    StringArray as PbStrings, VectorField,
};
use crate::ops::logical::fields::{arrow_schema, Elem, Field, Kind};

mod from_arrow;
mod from_json;
mod to_arrow;
mod to_json;

pub use from_arrow::{check_arrow_schema, from_record_batch};
pub use from_json::from_json_rows;
pub use to_arrow::to_record_batch;
pub use to_json::write_json_lines;

/// The number of rows in a query answer.
pub fn row_count(cols: &[FieldData]) -> usize {
    cols.first().map(column_len).unwrap_or(0)
}

pub(super) fn column_len(fd: &FieldData) -> usize {
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
        _ => 0,
    }
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

#[cfg(test)]
mod tests {
    use super::from_arrow::*;
    use super::from_json::*;
    use super::to_arrow::*;
    use super::to_json::*;
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
