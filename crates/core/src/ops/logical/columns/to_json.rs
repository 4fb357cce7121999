//! Query answers as JSON Lines: one object per row.
//!
//! JSON fields and `$meta` are written as the exact text Milvus returned
//! (no parse, so any depth and the same key order, spacing and escapes);
//! NaN and ±infinity, which JSON has no numbers for, as the strings
//! `"NaN"`, `"Infinity"` and `"-Infinity"` (as pandas writes them); a NaN
//! whose bits are not the usual ones as `"NaN:<bits in hex>"`.

use serde_json::value::RawValue;

use super::to_arrow::{f32_value, sparse_to_json};
use super::*;

/// One value of a row as written: a JSON value, or JSON text kept as is.
enum Cell<'a> {
    Value(Value),
    Raw(&'a [u8]),
    /// Text whose line breaks (whitespace between tokens) became spaces:
    /// a JSON Lines row is one line.
    Spaced(Vec<u8>),
}

/// Appends a query answer to `out` as JSON Lines: one object per row with
/// the fields by name, in field order; JSON fields and `$meta` as the text
/// Milvus returned, vectors as arrays of numbers, float16/bfloat16 as
/// arrays of floats, sparse vectors as `{"index": value}` objects.
pub fn write_json_lines(fields: &[Field], cols: &[FieldData], out: &mut Vec<u8>) -> Result<()> {
    let n = row_count(cols);
    let per_field: Vec<Vec<Cell<'_>>> = fields
        .iter()
        .map(|f| {
            let fd = column(cols, f)?;
            Ok(match f.kind {
                Kind::Json => json_text_cells(f, fd, n)?,
                _ => json_values(f, fd, n)?
                    .into_iter()
                    .map(Cell::Value)
                    .collect(),
            })
        })
        .collect::<Result<_>>()?;
    let names: Vec<String> = fields
        .iter()
        .map(|f| Value::from(f.name.as_str()).to_string())
        .collect();
    for i in 0..n {
        out.push(b'{');
        for (j, (name, cells)) in names.iter().zip(&per_field).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            match cells.get(i) {
                Some(Cell::Value(v)) => serde_json::to_writer(&mut *out, v)
                    .map_err(|e| Error::internal(format!("writing JSON: {e}")))?,
                Some(Cell::Raw(text)) => out.extend_from_slice(text),
                Some(Cell::Spaced(text)) => out.extend_from_slice(text),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b"}\n");
    }
    Ok(())
}

/// A JSON column's rows as the text Milvus returned, checked to be JSON
/// (without parsing it into values, so at any depth); null rows as `null`.
fn json_text_cells<'a>(field: &Field, fd: &'a FieldData, n: usize) -> Result<Vec<Cell<'a>>> {
    let texts: &[Vec<u8>] = match &fd.field {
        Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::JsonData(a)),
            ..
        })) => &a.data,
        _ if n == 0 => &[],
        _ => return Err(mismatch(field, "another type")),
    };
    let cell = |i: usize, text: &'a [u8]| -> Result<Cell<'a>> {
        // No text at all (a server may answer a row without dynamic keys
        // so): `{}` for `$meta`, `null` for a JSON field.
        if text.trim_ascii().is_empty() {
            return Ok(Cell::Raw(if field.is_dynamic { b"{}" } else { b"null" }));
        }
        if serde_json::from_slice::<&RawValue>(text).is_err() {
            return Err(mismatch(
                field,
                &format!("text that is not JSON in row {i}"),
            ));
        }
        Ok(if text.iter().any(|b| matches!(b, b'\n' | b'\r')) {
            Cell::Spaced(
                text.iter()
                    .map(|&b| if matches!(b, b'\n' | b'\r') { b' ' } else { b })
                    .collect(),
            )
        } else {
            Cell::Raw(text)
        })
    };
    let valid = &fd.valid_data;
    if valid.is_empty() {
        return texts.iter().enumerate().map(|(i, t)| cell(i, t)).collect();
    }
    // One value per row (placeholders in null rows), or per valid row.
    let dense = texts.len() == valid.len();
    let mut it = texts.iter();
    valid
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let text = if dense || v { it.next() } else { None };
            match (v, text) {
                (true, Some(t)) => cell(i, t),
                (true, None) => Err(mismatch(field, "fewer values than valid rows")),
                (false, _) => Ok(Cell::Value(Value::Null)),
            }
        })
        .collect()
}

/// A double as JSON: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`
/// (a NaN with other bits than the usual one as `"NaN:<16 hex digits>"`,
/// so that it comes back bit for bit).
pub(super) fn f64_value(v: f64) -> Value {
    if v.is_nan() && v.to_bits() != f64::NAN.to_bits() {
        return Value::from(format!("NaN:{:016x}", v.to_bits()));
    }
    match non_finite_text(v) {
        Some(text) => Value::from(text),
        None => Value::from(v),
    }
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
                a.data.iter().map(|&b| f64_value(b)).collect()
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
            (Kind::Array(_), Some(S::ArrayData(a))) => a
                .data
                .iter()
                .map(|row| match &row.data {
                    Some(S::BoolData(v)) => Value::from(v.data.clone()),
                    Some(S::IntData(v)) => Value::from(v.data.clone()),
                    Some(S::LongData(v)) => Value::from(v.data.clone()),
                    Some(S::FloatData(v)) => floats(&v.data),
                    Some(S::DoubleData(v)) => {
                        Value::Array(v.data.iter().map(|&x| f64_value(x)).collect())
                    }
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
