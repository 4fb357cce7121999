//! Query answers as JSON Lines: one object per row.

use super::to_arrow::{f32_value, sparse_to_json};
use super::*;

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

/// One column's values, one per row; null rows as `null`.
pub(super) fn json_values(field: &Field, fd: &FieldData, n: usize) -> Result<Vec<Value>> {
    match without_nulls(fd) {
        None => values_to_json(field, fd, n),
        Some((values, valid)) => Ok(spread_values(
            values_to_json(field, &values, values_len(&values))?,
            valid,
        )),
    }
}

fn values_to_json(field: &Field, fd: &FieldData, n: usize) -> Result<Vec<Value>> {
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
            (Kind::Int8Vector(d), Some(V::Int8Vector(b))) => b
                .chunks(*d)
                .map(|c| Value::from(c.iter().map(|&x| x as i8).collect::<Vec<_>>()))
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
            (Kind::VarChar | Kind::Text, Some(S::StringData(a))) => {
                a.data.iter().map(|b| Value::from(b.as_str())).collect()
            }
            (Kind::Geometry, Some(S::GeometryWktData(a))) => {
                a.data.iter().map(|b| Value::from(b.as_str())).collect()
            }
            (Kind::Geometry, Some(S::GeometryData(a))) => a
                .data
                .iter()
                .map(|b| {
                    wkb_to_wkt(b)
                        .map(Value::from)
                        .ok_or_else(|| bad("a geometry that is not WKB"))
                })
                .collect::<Result<_>>()?,
            // RFC 3339 in UTC
            (Kind::Timestamptz, Some(S::TimestamptzData(a))) => {
                a.data.iter().map(|&t| Value::from(tz_to_text(t))).collect()
            }
            (Kind::Timestamptz, Some(S::StringData(a))) => a
                .data
                .iter()
                .map(|t| {
                    tz_from_text(t)
                        .map(|m| Value::from(tz_to_text(m)))
                        .ok_or_else(|| bad("a time that is not ISO 8601"))
                })
                .collect::<Result<_>>()?,
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
