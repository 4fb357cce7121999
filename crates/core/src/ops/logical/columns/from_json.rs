//! Rows of JSON files (JSON Lines or bulk-writer JSON) as Milvus columns,
//! checked value by value.

use serde_json::value::RawValue;

use super::from_arrow::{halves, json_field, required, scalars, vectors};
use super::*;

/// One row of a JSON file: each key with its value's text, not parsed
/// (JSON fields and `$meta` are kept as that text, at any depth).
pub type JsonRow = std::collections::BTreeMap<String, Box<RawValue>>;

/// Rows of a JSON file (JSON Lines objects, or bulk-writer JSON's `rows`)
/// as Milvus columns, checked value by value. Keys that are no field go
/// into `$meta` when the collection has a dynamic field, else are refused.
/// JSON fields and `$meta` keep the file's text byte for byte.
pub fn from_json_rows(
    fields: &[Field],
    rows: &[JsonRow],
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
            let metas = rows
                .iter()
                .enumerate()
                .map(|(i, row)| dynamic_text(field, row, &by_name, i, origin))
                .collect::<Result<Vec<_>>>()?;
            out.push(json_field(field, metas, true));
            continue;
        }
        let mut raws: Vec<Option<&RawValue>> = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            match row.get(&field.name) {
                Some(v) if v.get() != "null" => raws.push(Some(&**v)),
                Some(_) => raws.push(None),
                None if required(field) => {
                    return Err(Error::invalid_input(format!(
                        "file `{}`, row {i}: no value for field `{}` of {} ({}), which needs one in every row",
                        origin.file, field.name, origin.collection, field.kind
                    )))
                }
                None => raws.push(None),
            }
        }
        let column = |present: Vec<&RawValue>| -> Result<FieldData> {
            if field.kind == Kind::Json {
                let texts = present
                    .iter()
                    .map(|r| r.get().as_bytes().to_vec())
                    .collect();
                return Ok(json_field(field, texts, false));
            }
            let values = present
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    serde_json::from_str::<Value>(r.get()).map_err(|e| {
                        origin.error(
                            &field.name,
                            field,
                            format_args!("row {i} is not JSON ({e})"),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            json_column(field, &values.iter().collect::<Vec<_>>(), origin)
        };
        if field.takes_null() {
            // Null rows are left out of the values and marked in `valid_data`.
            let valid: Vec<bool> = raws.iter().map(Option::is_some).collect();
            let present: Vec<&RawValue> = raws.into_iter().flatten().collect();
            let mut fd = if present.is_empty() {
                no_values(field, 0)
            } else {
                column(present)?
            };
            fd.valid_data = valid;
            out.push(fd);
            continue;
        }
        if raws.iter().all(Option::is_none) && !required(field) {
            continue;
        }
        if field.kind == Kind::Json {
            // A required JSON field's `null` is the JSON text `null`.
            let texts = raws
                .iter()
                .map(|r| r.map_or(b"null".to_vec(), |r| r.get().as_bytes().to_vec()))
                .collect();
            out.push(json_field(field, texts, false));
            continue;
        }
        let null = RawValue::from_string("null".into()).expect("JSON");
        out.push(column(raws.iter().map(|r| r.unwrap_or(&*null)).collect())?);
    }
    Ok(out)
}

/// The `$meta` text of a row: the file's `$meta` object as it is (or the
/// JSON text a string `$meta` holds), with the row's keys that are no
/// field added (bulk-writer files put dynamic keys beside the fields).
fn dynamic_text(
    field: &Field,
    row: &JsonRow,
    by_name: &HashMap<&str, &Field>,
    i: usize,
    origin: Origin<'_>,
) -> Result<Vec<u8>> {
    let bad = |what: &dyn std::fmt::Display| {
        origin.error(&field.name, field, format_args!("row {i} {what}"))
    };
    let own: Option<String> = match row.get(&field.name).map(|r| r.get()) {
        None | Some("null") => None,
        Some(text) if text.starts_with('{') => Some(text.to_string()),
        Some(text) if text.starts_with('"') => {
            let inner: String =
                serde_json::from_str(text).map_err(|e| bad(&format_args!("is not JSON ({e})")))?;
            Some(inner)
        }
        Some(text) => {
            let mut t = text.to_string();
            t.truncate(40);
            return Err(bad(&format_args!("holds {t}, not a JSON object")));
        }
    };
    let extras: Vec<(&String, &Box<RawValue>)> = row
        .iter()
        .filter(|(k, _)| !by_name.contains_key(k.as_str()))
        .collect();
    if extras.is_empty() {
        return Ok(own.unwrap_or_else(|| "{}".into()).into_bytes());
    }
    let mut merged: JsonRow = match own {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| bad(&format_args!("holds no JSON object ({e})")))?,
        None => JsonRow::new(),
    };
    for (k, v) in extras {
        merged.insert(k.clone(), v.clone());
    }
    serde_json::to_vec(&merged).map_err(|e| Error::internal(format!("writing `$meta`: {e}")))
}

pub(super) fn json_column(
    field: &Field,
    values: &[&Value],
    origin: Origin<'_>,
) -> Result<FieldData> {
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
            .map(f32_of)
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
                data: each!(f32_of),
            }),
        ),
        Kind::Double => scalars(
            field,
            S::DoubleData(DoubleArray {
                data: each!(float_of),
            }),
        ),
        Kind::VarChar | Kind::Text => scalars(
            field,
            S::StringData(PbStrings {
                data: each!(|v: &Value| v.as_str().map(str::to_string)),
            }),
        ),
        Kind::Geometry => scalars(
            field,
            S::GeometryWktData(GeometryWktArray {
                data: each!(|v: &Value| v.as_str().map(str::to_string)),
            }),
        ),
        // ISO 8601 text, or microseconds since the epoch
        Kind::Timestamptz => scalars(
            field,
            S::StringData(PbStrings {
                data: each!(|v: &Value| match v {
                    Value::String(s) => tz_from_text(s).map(|_| s.clone()),
                    v => v.as_i64().map(tz_to_text),
                }),
            }),
        ),
        Kind::Int8Vector(dim) => {
            let rows = each!(|v: &Value| v
                .as_array()?
                .iter()
                .map(|x| x
                    .as_i64()
                    .and_then(|b| i8::try_from(b).ok())
                    .map(|b| b as u8))
                .collect::<Option<Vec<u8>>>()
                .filter(|r| r.len() == dim));
            vectors(field, dim, V::Int8Vector(rows.concat()))
        }
        // (from_json_rows keeps a JSON field's text; this is for callers
        // that hold values)
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
                has_default: false,
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

/// A number, or the text of NaN or an infinity as JSON writers put them
/// (`"NaN"`, `"Infinity"`, `"-Infinity"`; also `"+Infinity"`, `"inf"`,
/// `"-inf"`, any case).
pub(super) fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.len() == 20 && s.starts_with("NaN:") => {
            u64::from_str_radix(&s[4..], 16)
                .ok()
                .map(f64::from_bits)
                .filter(|x| x.is_nan())
        }
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "nan" | "+nan" | "-nan" => Some(f64::NAN),
            "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
            "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// [`float_of`] for a float field: `"NaN:<8 hex digits>"` gives those bits.
pub(super) fn f32_of(v: &Value) -> Option<f32> {
    match v {
        Value::String(s) if s.len() == 12 && s.starts_with("NaN:") => {
            u32::from_str_radix(&s[4..], 16)
                .ok()
                .map(f32::from_bits)
                .filter(|x| x.is_nan())
        }
        v => float_of(v).map(|f| f as f32),
    }
}
