//! Query answers as Arrow record batches, for Parquet files.

use arrow_array::{BinaryArray, TimestampMicrosecondArray};

use super::*;

/// A query answer as one Arrow record batch in the export's schema.
pub fn to_record_batch(fields: &[Field], cols: &[FieldData]) -> Result<RecordBatch> {
    let arrays = fields
        .iter()
        .map(|f| to_arrow(f, column(cols, f)?))
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::new(arrow_schema(fields)), arrays)
        .map_err(|e| Error::internal(format!("building a record batch: {e}")))
}

/// One column as an Arrow array; null rows (Milvus's `valid_data`) are
/// Arrow nulls.
pub(super) fn to_arrow(field: &Field, fd: &FieldData) -> Result<ArrayRef> {
    match without_nulls(fd) {
        None => values_to_arrow(field, fd),
        Some((values, valid)) => spread_array(values_to_arrow(field, &values)?, valid),
    }
}

fn values_to_arrow(field: &Field, fd: &FieldData) -> Result<ArrayRef> {
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
        (Kind::Int8Vector(dim), Some(field_data::Field::Vectors(v))) => {
            let Some(V::Int8Vector(b)) = &v.data else {
                return Err(bad("no int8 vector"));
            };
            let values: Int8Array = b.iter().map(|&x| x as i8).collect();
            Arc::new(
                FixedSizeListArray::try_new(
                    Arc::new(ArrowField::new("item", ArrowType::Int8, false)),
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
            (Kind::VarChar | Kind::Text, Some(S::StringData(a))) => {
                Arc::new(StringArray::from_iter_values(a.data.iter()))
            }
            (Kind::Geometry, Some(S::GeometryData(a))) => Arc::new(
                a.data
                    .iter()
                    .map(|b| Some(b.as_slice()))
                    .collect::<BinaryArray>(),
            ),
            (Kind::Geometry, Some(S::GeometryWktData(a))) => {
                let wkb = a
                    .data
                    .iter()
                    .map(|t| wkt_to_wkb(t).ok_or_else(|| bad(&format!("geometry `{t}`, not WKT"))))
                    .collect::<Result<Vec<_>>>()?;
                Arc::new(BinaryArray::from_iter_values(wkb))
            }
            (Kind::Timestamptz, Some(S::TimestamptzData(a))) => {
                Arc::new(TimestampMicrosecondArray::from(a.data.clone()).with_timezone("UTC"))
            }
            (Kind::Timestamptz, Some(S::StringData(a))) => {
                let micros = a
                    .data
                    .iter()
                    .map(|t| tz_from_text(t).ok_or_else(|| bad(&format!("time `{t}`"))))
                    .collect::<Result<Vec<_>>>()?;
                Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC"))
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

pub(super) fn array_to_arrow(elem: Elem, a: &ArrayArray) -> ArrayRef {
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
pub(super) fn sparse_to_json(row: &[u8]) -> Value {
    let mut m = Map::new();
    for pair in row.chunks_exact(8) {
        let idx = u32::from_le_bytes(pair[..4].try_into().expect("4 bytes"));
        let val = f32::from_le_bytes(pair[4..].try_into().expect("4 bytes"));
        m.insert(idx.to_string(), f32_value(val));
    }
    Value::Object(m)
}

/// A float as JSON: the shortest number that reads back as the same f32,
/// or `"NaN"` (`"NaN:<8 hex digits>"` for other NaN bits), `"Infinity"`,
/// `"-Infinity"`.
pub(super) fn f32_value(v: f32) -> Value {
    if v.is_nan() && v.to_bits() != f32::NAN.to_bits() {
        return Value::from(format!("NaN:{:08x}", v.to_bits()));
    }
    match non_finite_text(v as f64) {
        Some(text) => Value::from(text),
        None => serde_json::from_str(&format!("{v:?}")).unwrap_or(Value::Null),
    }
}
