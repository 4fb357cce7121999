//! Parquet (Arrow) columns as Milvus columns: the schema checked before
//! any row is read, then every value (vector lengths, integer ranges).

use super::*;

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
pub(super) fn required(f: &Field) -> bool {
    !(f.auto_id || f.is_dynamic || f.takes_null())
}

pub(super) fn is_int(t: &ArrowType) -> bool {
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

pub(super) fn check_arrow_type(
    field: &Field,
    t: &ArrowType,
    col: &str,
    origin: Origin<'_>,
) -> Result<bool> {
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
        Kind::VarChar | Kind::Text | Kind::Json | Kind::SparseFloatVector => {
            matches!(t, ArrowType::Utf8 | ArrowType::LargeUtf8)
        }
        // WKB (GeoParquet) or WKT
        Kind::Geometry => matches!(
            t,
            ArrowType::Binary | ArrowType::LargeBinary | ArrowType::Utf8 | ArrowType::LargeUtf8
        ),
        // a timestamp in any unit, or ISO 8601 text
        Kind::Timestamptz => matches!(
            t,
            ArrowType::Timestamp(..) | ArrowType::Utf8 | ArrowType::LargeUtf8
        ),
        Kind::Int8Vector(dim) => match t {
            ArrowType::FixedSizeList(item, n) => {
                if *n as usize != dim {
                    return Err(origin.error(
                        col,
                        field,
                        format_args!("its vectors have dimension {n}"),
                    ));
                }
                is_int(item.data_type())
            }
            _ => {
                need_data = true;
                list_item(t).is_some_and(|t| is_int(&t))
            }
        },
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
            } else if field.takes_null() {
                out.push(no_values(field, batch.num_rows()));
            }
            continue;
        };
        out.push(arrow_column(field, col, origin)?);
    }
    Ok(out)
}

pub(super) fn scalars(field: &Field, data: scalar_field::Data) -> FieldData {
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

pub(super) fn vectors(field: &Field, dim: usize, data: vector_field::Data) -> FieldData {
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

pub(super) fn json_field(field: &Field, rows: Vec<Vec<u8>>, dynamic: bool) -> FieldData {
    let mut fd = scalars(
        field,
        scalar_field::Data::JsonData(JsonArray { data: rows }),
    );
    fd.is_dynamic = dynamic;
    fd
}

/// A primitive column's values, converted one by one.
pub(super) fn widen<T: arrow_array::ArrowPrimitiveType, U>(
    a: &dyn Array,
    f: impl Fn(T::Native) -> U,
) -> Vec<U> {
    a.as_primitive::<T>()
        .values()
        .iter()
        .map(|&v| f(v))
        .collect()
}

pub(super) fn ints(col: &ArrayRef) -> Option<Vec<i64>> {
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

pub(super) fn floats64(col: &dyn Array) -> Option<Vec<f64>> {
    Some(match col.data_type() {
        ArrowType::Float32 => widen::<Float32Type, _>(col, f64::from),
        ArrowType::Float64 => widen::<Float64Type, _>(col, |v| v),
        _ => return None,
    })
}

pub(super) fn floats32(col: &dyn Array) -> Option<Vec<f32>> {
    Some(match col.data_type() {
        ArrowType::Float32 => widen::<Float32Type, _>(col, |v| v),
        ArrowType::Float64 => widen::<Float64Type, _>(col, |v| v as f32),
        _ => return None,
    })
}

pub(super) fn strings(col: &dyn Array) -> Option<Vec<String>> {
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
pub(super) fn narrow(
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
pub(super) fn list_parts(col: &dyn Array) -> Option<(Vec<usize>, ArrayRef)> {
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

/// One Arrow column as a Milvus column for Insert. Null rows of a nullable
/// field are left out of the values and marked in `valid_data`, as
/// pymilvus sends them.
pub(super) fn arrow_column(field: &Field, col: &ArrayRef, origin: Origin<'_>) -> Result<FieldData> {
    if col.null_count() > 0 && !field.takes_null() {
        return Err(origin.error(&field.name, field, "the column has nulls"));
    }
    if !field.takes_null() {
        return values_column(field, col, origin);
    }
    let valid: Vec<bool> = (0..col.len()).map(|i| col.is_valid(i)).collect();
    let values = if col.null_count() > 0 {
        arrow_select::filter::filter(col.as_ref(), &BooleanArray::from(valid.clone()))
            .map_err(|e| Error::internal(format!("leaving out null rows: {e}")))?
    } else {
        col.clone()
    };
    let mut fd = values_column(field, &values, origin)?;
    fd.valid_data = valid;
    Ok(fd)
}

/// Microseconds since the epoch of a timestamp column in any unit.
fn timestamp_micros(col: &dyn Array) -> Option<Vec<i64>> {
    use arrow_array::types::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    use arrow_schema::TimeUnit;
    Some(match col.data_type() {
        ArrowType::Timestamp(TimeUnit::Second, _) => {
            widen::<TimestampSecondType, _>(col, |v| v * 1_000_000)
        }
        ArrowType::Timestamp(TimeUnit::Millisecond, _) => {
            widen::<TimestampMillisecondType, _>(col, |v| v * 1_000)
        }
        ArrowType::Timestamp(TimeUnit::Microsecond, _) => {
            widen::<TimestampMicrosecondType, _>(col, |v| v)
        }
        ArrowType::Timestamp(TimeUnit::Nanosecond, _) => {
            widen::<TimestampNanosecondType, _>(col, |v| v.div_euclid(1_000))
        }
        _ => return None,
    })
}

fn values_column(field: &Field, col: &ArrayRef, origin: Origin<'_>) -> Result<FieldData> {
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
    let bad_dim = |i: usize, n: usize| {
        origin.error(
            name,
            field,
            format_args!("row {i} has a vector of dimension {n}"),
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
        Kind::VarChar | Kind::Text => scalars(
            field,
            S::StringData(PbStrings {
                data: strings(col).ok_or_else(wrong)?,
            }),
        ),
        Kind::Geometry => {
            let wkt = match col.data_type() {
                ArrowType::Binary | ArrowType::LargeBinary => {
                    let rows: Vec<&[u8]> = match col.data_type() {
                        ArrowType::Binary => col.as_binary::<i32>().iter().flatten().collect(),
                        _ => col.as_binary::<i64>().iter().flatten().collect(),
                    };
                    rows.iter()
                        .enumerate()
                        .map(|(i, b)| {
                            wkb_to_wkt(b).ok_or_else(|| {
                                origin.error(name, field, format_args!("row {i} is not WKB"))
                            })
                        })
                        .collect::<Result<Vec<_>>>()?
                }
                _ => strings(col).ok_or_else(wrong)?,
            };
            scalars(field, S::GeometryWktData(GeometryWktArray { data: wkt }))
        }
        Kind::Timestamptz => {
            let text = match timestamp_micros(col.as_ref()) {
                Some(micros) => micros.into_iter().map(tz_to_text).collect(),
                None => {
                    let rows = strings(col).ok_or_else(wrong)?;
                    for (i, t) in rows.iter().enumerate() {
                        if tz_from_text(t).is_none() {
                            return Err(origin.error(
                                name,
                                field,
                                format_args!("row {i} holds `{t}`, not an ISO 8601 time"),
                            ));
                        }
                    }
                    rows
                }
            };
            scalars(field, S::StringData(PbStrings { data: text }))
        }
        Kind::Int8Vector(dim) => {
            let (offsets, values) = list_parts(col).ok_or_else(wrong)?;
            check_lengths(&offsets, dim, bad_dim)?;
            let flat = ints(&values).ok_or_else(wrong)?;
            let bytes = narrow(
                flat[offsets[0]..offsets[offsets.len() - 1]].to_vec(),
                i8::MIN as i64,
                i8::MAX as i64,
                range(i8::MIN as i64, i8::MAX as i64),
            )?
            .into_iter()
            .map(|v| v as i8 as u8)
            .collect();
            vectors(field, dim, V::Int8Vector(bytes))
        }
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
                has_default: false,
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
            check_lengths(&offsets, dim, bad_dim)?;
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
                        check_lengths(&offsets, dim, bad_dim)?;
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

pub(super) fn halves(kind: Kind, f: &[f32]) -> Vec<u8> {
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

pub(super) fn check_lengths(
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

pub(super) fn slice_scalars(d: &scalar_field::Data, a: usize, b: usize) -> scalar_field::Data {
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
