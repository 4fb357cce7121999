//! Row digests: a 128-bit hash of each row's values in one canonical form,
//! the same whichever server version, client or file the row comes from
//! (Milvus 2.2, 2.3, Milvus Lite, a Parquet or JSON Lines file of a
//! logical backup), and [`RangeDigest`]: the count and the sum of the row
//! hashes of a set of rows, which does not depend on their order or on how
//! they were paged.
//!
//! Canonical values: integers of every width as int64, floats by their
//! bits, strings as UTF-8, JSON parsed and written again with sorted keys
//! (an empty `$meta` is `{}`), times as microseconds in UTC, geometries as
//! WKB, sparse vectors sorted by index, arrays as their elements. A null
//! hashes apart from every value (a null is never a zero). Fields that a
//! function computes (BM25 outputs) are not in [`Field`] lists at all.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_128, xxh3_128_with_seed};

use crate::error::Result;
use crate::milvus::proto::schema::{field_data, scalar_field, vector_field, FieldData};
use crate::ops::logical::columns;
use crate::ops::logical::fields::{Field, Kind};

/// The hash of a row (or of one value of it).
pub type RowHash = u128;

/// Seed of a value's hash; a null's hash is that of no bytes with
/// another seed, so it equals no value's.
const VALUE: u64 = 0x6d69_6c76_7573;
const NULL: u64 = 0x6e75_6c6c;

/// Rows counted and their hashes summed: two sets of rows with the same
/// digest hold the same rows (with overwhelming probability), whatever
/// their order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeDigest {
    pub rows: u64,
    /// The sum of the row hashes modulo 2^128, as 32 hex digits.
    #[serde(with = "hex128")]
    pub sum: u128,
}

impl RangeDigest {
    pub fn add(&mut self, h: RowHash) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(h);
    }

    pub fn add_all(&mut self, hashes: &[RowHash]) {
        hashes.iter().for_each(|h| self.add(*h));
    }

    /// The sum as recorded in a backup's ranges: 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }

    pub fn merge(&mut self, other: &RangeDigest) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }
}

mod hex128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:032x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        u128::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

/// The hash of each of the `n` rows of `cols` over `fields` (in their
/// order): a query answer or a batch read from a file.
pub fn row_hashes(fields: &[Field], cols: &[FieldData], n: usize) -> Result<Vec<RowHash>> {
    let per_field = fields
        .iter()
        .map(|f| field_hashes(f, columns::column(cols, f)?, n))
        .collect::<Result<Vec<_>>>()?;
    let mut row = Vec::with_capacity(16 * fields.len());
    Ok((0..n)
        .map(|i| {
            row.clear();
            for hashes in &per_field {
                row.extend_from_slice(&hashes[i].to_le_bytes());
            }
            xxh3_128(&row)
        })
        .collect())
}

/// Numbers a digest takes as their little-endian bytes.
pub(crate) trait LeBytes: arrow_buffer::ArrowNativeType {
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! le_bytes_of {
    ($($t:ty),*) => {$(
        impl LeBytes for $t {
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_bytes_of!(i32, i64, f32, f64);

/// The little-endian bytes of numbers (floats by their bits): their own
/// memory, not a copy, on a little-endian machine.
pub(crate) fn le_bytes<T: LeBytes>(v: &[T]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(arrow_buffer::ToByteSlice::to_byte_slice(v))
    } else {
        let mut out = Vec::with_capacity(std::mem::size_of_val(v));
        v.iter().for_each(|x| x.put_le(&mut out));
        std::borrow::Cow::Owned(out)
    }
}

fn value(bytes: &[u8]) -> RowHash {
    xxh3_128_with_seed(bytes, VALUE)
}

fn null() -> RowHash {
    xxh3_128_with_seed(&[], NULL)
}

/// One hash per row of one column: nulls as [`null`], values canonical.
/// A column shorter than `n` (a server that answers fewer values) is
/// padded with nulls rather than read out of bounds.
fn field_hashes(field: &Field, fd: &FieldData, n: usize) -> Result<Vec<RowHash>> {
    let (values, valid) = match columns::without_nulls(fd) {
        Some((values, valid)) => (values, Some(valid)),
        None => (std::borrow::Cow::Borrowed(fd), None),
    };
    let hashes = value_hashes(field, &values)?;
    let mut out = Vec::with_capacity(n);
    let mut next = hashes.into_iter();
    for i in 0..n {
        let present = valid.is_none_or(|v| v.get(i).copied().unwrap_or(false));
        out.push(match present.then(|| next.next()).flatten() {
            Some(h) => h,
            None => null(),
        });
    }
    Ok(out)
}

/// One hash per value present in the column.
fn value_hashes(field: &Field, fd: &FieldData) -> Result<Vec<RowHash>> {
    match &fd.field {
        Some(field_data::Field::Scalars(s)) => Ok(match &s.data {
            Some(d) => scalar_hashes(field.kind, field.is_dynamic, d),
            None => Vec::new(),
        }),
        Some(field_data::Field::Vectors(v)) => {
            let dim = v.dim.max(1) as usize;
            let chunks = |b: &[u8], per: usize| -> Vec<RowHash> {
                b.chunks(per.max(1)).map(value).collect()
            };
            Ok(match &v.data {
                Some(vector_field::Data::FloatVector(a)) => a
                    .data
                    .chunks(dim)
                    .map(|row| value(&le_bytes(row)))
                    .collect(),
                Some(vector_field::Data::BinaryVector(b)) => chunks(b, dim.div_ceil(8)),
                Some(
                    vector_field::Data::Float16Vector(b) | vector_field::Data::Bfloat16Vector(b),
                ) => chunks(b, 2 * dim),
                Some(vector_field::Data::Int8Vector(b)) => chunks(b, dim),
                Some(vector_field::Data::SparseFloatVector(s)) => s
                    .contents
                    .iter()
                    .map(|row| {
                        let mut pairs: Vec<&[u8]> = row.chunks_exact(8).collect();
                        pairs.sort_by_key(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]));
                        value(&pairs.concat())
                    })
                    .collect(),
                _ => Vec::new(),
            })
        }
        _ => Err(columns::mismatch(field, "no values")),
    }
}

fn scalar_hashes(kind: Kind, dynamic: bool, d: &scalar_field::Data) -> Vec<RowHash> {
    use scalar_field::Data as S;
    match d {
        S::BoolData(a) => a.data.iter().map(|&b| value(&[b as u8])).collect(),
        S::IntData(a) => a
            .data
            .iter()
            .map(|&x| value(&(x as i64).to_le_bytes()))
            .collect(),
        S::LongData(a) => a.data.iter().map(|&x| value(&x.to_le_bytes())).collect(),
        S::FloatData(a) => a
            .data
            .iter()
            .map(|&x| value(&x.to_bits().to_le_bytes()))
            .collect(),
        S::DoubleData(a) => a
            .data
            .iter()
            .map(|&x| value(&x.to_bits().to_le_bytes()))
            .collect(),
        S::TimestamptzData(a) => a.data.iter().map(|&x| value(&x.to_le_bytes())).collect(),
        S::StringData(a) if kind == Kind::Timestamptz => (a.data.iter())
            .map(|t| match columns::tz_from_text(t) {
                Some(m) => value(&m.to_le_bytes()),
                None => value(t.as_bytes()),
            })
            .collect(),
        S::StringData(a) => a.data.iter().map(|t| value(t.as_bytes())).collect(),
        S::BytesData(a) => a.data.iter().map(|b| value(b)).collect(),
        S::JsonData(a) => a
            .data
            .iter()
            .map(|t| value(&canonical_json(t, dynamic)))
            .collect(),
        S::GeometryWktData(a) => (a.data.iter())
            .map(|t| value(&columns::wkt_to_wkb(t).unwrap_or_else(|| t.as_bytes().to_vec())))
            .collect(),
        S::GeometryData(a) => (a.data.iter())
            .map(|b| {
                let wkb = columns::wkb_to_wkt(b).and_then(|t| columns::wkt_to_wkb(&t));
                value(wkb.as_deref().unwrap_or(b))
            })
            .collect(),
        S::ArrayData(a) => {
            let elem = match kind {
                Kind::Array(e) => e.kind(),
                other => other,
            };
            (a.data.iter())
                .map(|row| {
                    let inner = row
                        .data
                        .as_ref()
                        .map(|d| scalar_hashes(elem, false, d))
                        .unwrap_or_default();
                    let mut bytes = (inner.len() as u64).to_le_bytes().to_vec();
                    inner
                        .iter()
                        .for_each(|h| bytes.extend_from_slice(&h.to_le_bytes()));
                    value(&bytes)
                })
                .collect()
        }
        // Types no logical backup takes ([`Kind::of`] refuses them).
        _ => Vec::new(),
    }
}

/// JSON text parsed and written again with sorted keys and no spaces; no
/// text is `{}` in `$meta` (Milvus answers an empty dynamic field either
/// way). Text that does not parse is kept as it is.
fn canonical_json(text: &[u8], dynamic: bool) -> Vec<u8> {
    if text.trim_ascii().is_empty() {
        return if dynamic {
            b"{}".to_vec()
        } else {
            b"null".to_vec()
        };
    }
    match serde_json::from_slice::<serde_json::Value>(text) {
        Ok(v) => {
            let mut out = Vec::with_capacity(text.len());
            write_sorted(&v, &mut out);
            out
        }
        Err(_) => text.to_vec(),
    }
}

fn write_sorted(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::from(k.as_str()).to_string().as_bytes());
                out.push(b':');
                write_sorted(&m[k], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_sorted(x, out);
            }
            out.push(b']');
        }
        // Numbers as f64 where they are not integers (1.50 and 1.5 agree).
        Value::Number(n) if n.is_f64() => {
            out.extend_from_slice(format!("{:?}", n.as_f64().unwrap_or(f64::NAN)).as_bytes())
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::proto::schema::{
        FloatArray, JsonArray, LongArray, ScalarField, StringArray, VectorField,
    };

    fn scalar(name: &str, data: scalar_field::Data, valid: Vec<bool>) -> FieldData {
        FieldData {
            field_name: name.into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(data),
                ..Default::default()
            })),
            valid_data: valid,
            ..Default::default()
        }
    }

    fn longs(name: &str, data: Vec<i64>, valid: Vec<bool>) -> FieldData {
        scalar(
            name,
            scalar_field::Data::LongData(LongArray { data }),
            valid,
        )
    }

    fn nullable(name: &str, kind: Kind) -> Field {
        Field {
            nullable: true,
            ..Field::plain(name, kind)
        }
    }

    #[test]
    fn a_null_is_not_a_zero_and_placeholders_do_not_count() {
        let f = [nullable("n", Kind::Int64)];
        let with_placeholder = row_hashes(&f, &[longs("n", vec![0, 5], vec![false, true])], 2);
        let compact = row_hashes(&f, &[longs("n", vec![5], vec![false, true])], 2);
        let zero = row_hashes(&f, &[longs("n", vec![0, 5], vec![])], 2);
        assert_eq!(with_placeholder.unwrap(), compact.as_ref().unwrap().clone());
        let (compact, zero) = (compact.unwrap(), zero.unwrap());
        assert_ne!(compact[0], zero[0], "null and 0 differ");
        assert_eq!(compact[1], zero[1]);
    }

    #[test]
    fn json_compares_by_value_and_widths_by_number() {
        let f = [Field::plain("j", Kind::Json)];
        let j = |t: &str| {
            scalar(
                "j",
                scalar_field::Data::JsonData(JsonArray {
                    data: vec![t.as_bytes().to_vec()],
                }),
                vec![],
            )
        };
        let h = |t: &str| row_hashes(&f, &[j(t)], 1).unwrap()[0];
        assert_eq!(
            h(r#"{"b": 1, "a": [1.50, "x"]}"#),
            h(r#"{"a":[1.5,"x"],"b":1}"#)
        );
        assert_ne!(h(r#"{"a":1}"#), h(r#"{"a":2}"#));
        // An int8 answered as int32 hashes as the int64 it is.
        let i = [Field::plain("i", Kind::Int8)];
        let ints = scalar(
            "i",
            scalar_field::Data::IntData(crate::milvus::proto::schema::IntArray { data: vec![-3] }),
            vec![],
        );
        let long = [Field::plain("i", Kind::Int64)];
        assert_eq!(
            row_hashes(&i, &[ints], 1).unwrap(),
            row_hashes(&long, &[longs("i", vec![-3], vec![])], 1).unwrap()
        );
    }

    #[test]
    fn float_vectors_hash_by_the_little_endian_bits_of_each_row() {
        // The form recorded in backups' range digests: a change here would
        // make every range of an older backup differ.
        let v = vec![1.0f32, -2.5, f32::NAN, -0.0];
        let fd = FieldData {
            field: Some(field_data::Field::Vectors(VectorField {
                dim: 2,
                data: Some(vector_field::Data::FloatVector(FloatArray {
                    data: v.clone(),
                })),
                ..Default::default()
            })),
            ..Default::default()
        };
        let bits = |row: &[f32]| -> Vec<u8> {
            row.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()
        };
        let hashes = value_hashes(&Field::plain("v", Kind::FloatVector(2)), &fd).unwrap();
        assert_eq!(hashes, vec![value(&bits(&v[..2])), value(&bits(&v[2..]))]);
    }

    #[test]
    fn range_digests_ignore_order_and_see_every_field() {
        let fields = [
            Field::plain("id", Kind::Int64),
            Field::plain("s", Kind::VarChar),
            Field::plain("v", Kind::FloatVector(2)),
        ];
        let cols = |ids: Vec<i64>, s: Vec<&str>, v: Vec<f32>| {
            vec![
                longs("id", ids, vec![]),
                scalar(
                    "s",
                    scalar_field::Data::StringData(StringArray {
                        data: s.into_iter().map(String::from).collect(),
                    }),
                    vec![],
                ),
                FieldData {
                    field_name: "v".into(),
                    field: Some(field_data::Field::Vectors(VectorField {
                        dim: 2,
                        data: Some(vector_field::Data::FloatVector(FloatArray { data: v })),
                        ..Default::default()
                    })),
                    ..Default::default()
                },
            ]
        };
        let digest = |c: Vec<FieldData>| {
            let mut d = RangeDigest::default();
            d.add_all(&row_hashes(&fields, &c, 2).unwrap());
            d
        };
        let a = digest(cols(vec![1, 2], vec!["x", "y"], vec![1.0, 2.0, 3.0, 4.0]));
        let b = digest(cols(vec![2, 1], vec!["y", "x"], vec![3.0, 4.0, 1.0, 2.0]));
        assert_eq!(a, b);
        let c = digest(cols(vec![1, 2], vec!["x", "y"], vec![1.0, 2.0, 3.0, -4.0]));
        assert_ne!(a, c);
        assert_eq!(a.rows, 2);
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<RangeDigest>(&text).unwrap(), a);
    }
}
