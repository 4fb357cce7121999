//! Read back at backup time: each data file, once written, is read again
//! as a restore reads it — from storage, decoded, into a temporary file,
//! then [`files::read_file`] batch by batch (bounded memory) — and its row
//! count and a digest of its decoded values must equal those of the rows
//! exported into it. A file the restore could not read fails the export
//! then, naming the file (and the reader names column, field and row),
//! not a restore months later.
//!
//! The digest ([`ValueDigest`]) is taken over values in one canonical form
//! per field, so Milvus's answer and the reader's columns compare equal
//! when they hold the same values whatever their shape: null rows as
//! validity (with or without placeholder values), times as microseconds,
//! geometries as WKB, sparse rows sorted, floats by their bits.

use std::time::Instant;

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};
use crate::milvus::proto::schema::{field_data, scalar_field, vector_field, FieldData};
use crate::model::meta::{DataFile, Format};
use crate::ops::logical::columns;
use crate::ops::logical::digest::le_bytes;
use crate::ops::logical::fields::{Field, Kind};
use crate::ops::logical::files::{self, Location, ReadSpec};

/// A digest of the values of some rows, field by field, in row order
/// (the same whatever batches the rows came in). XXH3-128: it compares
/// what one run wrote with what it reads back (never stored, never an
/// adversary's), at memory speed.
#[derive(Clone)]
pub struct ValueDigest {
    /// Per field: its values, and (nullable fields) which rows are null,
    /// hashed apart so that neither depends on where batches split.
    columns: Vec<(Hasher, Hasher)>,
    rows: u64,
}

/// A streaming XXH3-128.
#[derive(Clone)]
struct Hasher(Xxh3);

impl Hasher {
    fn new() -> Hasher {
        Hasher(Xxh3::new())
    }

    fn update(&mut self, bytes: impl AsRef<[u8]>) {
        self.0.update(bytes.as_ref());
    }

    fn finalize(&self) -> [u8; 16] {
        self.0.digest128().to_le_bytes()
    }
}

impl ValueDigest {
    pub fn new(fields: &[Field]) -> ValueDigest {
        ValueDigest {
            columns: fields
                .iter()
                .map(|_| (Hasher::new(), Hasher::new()))
                .collect(),
            rows: 0,
        }
    }

    /// Adds `rows` rows given as columns (a query answer, or a batch a
    /// reader made).
    pub fn add(&mut self, fields: &[Field], cols: &[FieldData], rows: usize) -> Result<()> {
        for (field, (h, nulls)) in fields.iter().zip(self.columns.iter_mut()) {
            feed_column(h, nulls, field, columns::column(cols, field)?, rows);
        }
        self.rows += rows as u64;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The digest: one hash over every field's.
    pub fn finish(self) -> String {
        let mut all = Hasher::new();
        for h in self.per_field() {
            all.update(h);
        }
        hex::encode(all.finalize())
    }

    /// Each field's digest, in the order of the fields.
    fn per_field(self) -> Vec<[u8; 16]> {
        (self.columns.into_iter())
            .map(|(values, nulls)| {
                let mut h = Hasher::new();
                h.update(values.finalize());
                h.update(nulls.finalize());
                h.finalize()
            })
            .collect()
    }
}

fn feed_column(h: &mut Hasher, nulls: &mut Hasher, field: &Field, fd: &FieldData, rows: usize) {
    let (values, valid) = match columns::without_nulls(fd) {
        Some((values, valid)) => (values, Some(valid)),
        None => (std::borrow::Cow::Borrowed(fd), None),
    };
    // A nullable field's rows, null or not: Milvus leaves the validity out
    // of a page without nulls, where a reader may give one of all `true`.
    if field.takes_null() {
        match valid {
            Some(valid) => nulls.update(valid.iter().map(|&v| v as u8).collect::<Vec<_>>()),
            None => nulls.update(vec![1u8; rows]),
        }
    }
    match &values.field {
        Some(field_data::Field::Scalars(s)) => {
            if let Some(d) = &s.data {
                feed_scalars(h, field, d);
            }
        }
        Some(field_data::Field::Vectors(v)) => match &v.data {
            Some(vector_field::Data::FloatVector(a)) => h.update(le_bytes(&a.data)),
            Some(
                vector_field::Data::BinaryVector(b)
                | vector_field::Data::Float16Vector(b)
                | vector_field::Data::Bfloat16Vector(b)
                | vector_field::Data::Int8Vector(b),
            ) => h.update(b),
            Some(vector_field::Data::SparseFloatVector(s)) => {
                for row in &s.contents {
                    let mut pairs: Vec<&[u8]> = row.chunks_exact(8).collect();
                    pairs.sort_by_key(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]));
                    h.update((pairs.len() as u64).to_le_bytes());
                    for p in pairs {
                        h.update(p);
                    }
                }
            }
            _ => {}
        },
        _ => {}
    }
}

fn bytes_item(h: &mut Hasher, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

fn feed_scalars(h: &mut Hasher, field: &Field, d: &scalar_field::Data) {
    use scalar_field::Data as S;
    let kind = field.kind;
    match d {
        S::BoolData(a) => h.update(a.data.iter().map(|&b| b as u8).collect::<Vec<_>>()),
        S::IntData(a) => h.update(le_bytes(&a.data)),
        S::LongData(a) => h.update(le_bytes(&a.data)),
        S::FloatData(a) => h.update(le_bytes(&a.data)),
        S::DoubleData(a) => h.update(le_bytes(&a.data)),
        S::TimestamptzData(a) => h.update(le_bytes(&a.data)),
        S::StringData(a) if kind == Kind::Timestamptz => {
            for t in &a.data {
                match columns::tz_from_text(t) {
                    Some(m) => h.update(m.to_le_bytes()),
                    None => bytes_item(h, t.as_bytes()),
                }
            }
        }
        S::StringData(a) => {
            let mut buf = Vec::new();
            for t in &a.data {
                buf.extend_from_slice(&(t.len() as u64).to_le_bytes());
                buf.extend_from_slice(t.as_bytes());
            }
            h.update(buf);
        }
        S::BytesData(a) => a.data.iter().for_each(|t| bytes_item(h, t)),
        // JSON Lines keeps a JSON text's line breaks (whitespace) as spaces.
        // No text is what JSON Lines writes for it (`{}` in `$meta`, else
        // `null`).
        S::JsonData(a) => {
            for t in &a.data {
                let t: &[u8] = match t.trim_ascii().is_empty() {
                    true if field.is_dynamic => b"{}",
                    true => b"null",
                    false => t,
                };
                let spaced: Vec<u8> = t
                    .iter()
                    .map(|&b| if matches!(b, b'\n' | b'\r') { b' ' } else { b })
                    .collect();
                bytes_item(h, &spaced);
            }
        }
        S::GeometryWktData(a) => {
            for t in &a.data {
                bytes_item(
                    h,
                    &columns::wkt_to_wkb(t).unwrap_or_else(|| t.as_bytes().to_vec()),
                );
            }
        }
        S::GeometryData(a) => {
            for b in &a.data {
                let wkb = columns::wkb_to_wkt(b).and_then(|t| columns::wkt_to_wkb(&t));
                bytes_item(h, wkb.as_deref().unwrap_or(b));
            }
        }
        S::ArrayData(a) => {
            for row in &a.data {
                let n = columns::scalar_len(row);
                h.update((n as u64).to_le_bytes());
                if let Some(inner) = &row.data {
                    feed_scalars(h, field, inner);
                }
            }
        }
        _ => {}
    }
}

/// What one export wrote into a file: its rows' digest, to check the file
/// against.
pub struct Written<'a> {
    pub file: &'a DataFile,
    pub digest: ValueDigest,
    pub fields: &'a [Field],
    /// `db.collection`, for messages.
    pub collection: &'a str,
}

/// Reads `written.file` back from `location` as a restore would and
/// checks its rows and values; returns the seconds it took.
pub async fn check(location: &Location, written: Written<'_>) -> Result<f64> {
    let started = Instant::now();
    let Written {
        file,
        digest,
        fields,
        collection,
    } = written;
    let path = &file.path;
    let shown = if path.starts_with(location.display.trim_end_matches('/')) {
        path.clone()
    } else {
        format!("{}/{path}", location.display.trim_end_matches('/'))
    };
    let unreadable = |why: String| {
        Error::corrupt(format!(
            "data file `{shown}` of {collection}, read back after it was written, {why} — \
             the backup is not kept; try again, and if it happens again report it with this message"
        ))
        .at("key", path)
    };
    // Encoded files (compressed, encrypted) are decoded as a restore does;
    // plain ones are read where they are (or downloaded).
    let tmp;
    let local = if file.encoding.is_plain() {
        location.local_copy(path).await?
    } else {
        tmp = tempfile::tempdir()
            .map_err(|e| Error::internal(format!("making a temporary folder: {e}")))?;
        let dir = Location::open(location.storage.spec(), &tmp.path().to_string_lossy())?;
        let copied = crate::storage::encoded::decode_copy(
            &location.storage,
            path,
            &file.expected(),
            Some((&dir.storage, "check")),
        )
        .await?;
        if let Err(damage) = copied {
            return Err(unreadable(format!("is not what was written: {damage}")));
        }
        files::LocalFile::InPlace(tmp.path().join("check"))
    };
    let format = Format::of_file(path).unwrap_or(Format::Parquet);
    let (fields_owned, file_name, coll) = (fields.to_vec(), path.clone(), collection.to_string());
    let read = tokio::task::spawn_blocking(move || {
        let spec = ReadSpec {
            fields: &fields_owned,
            file: &file_name,
            collection: &coll,
            batch_bytes: 4 << 20,
            drop_auto_id: false,
        };
        let mut got = ValueDigest::new(&fields_owned);
        files::read_file(local.path(), format, &spec, |(cols, n, _)| {
            got.add(&fields_owned, &cols, n)
        })
        .map(|()| got)
    })
    .await
    .map_err(|e| Error::internal(format!("reading back `{path}`: {e}")))?;
    let got = read.map_err(|e| unreadable(format!("cannot be read by a restore: {e}")))?;
    if got.rows() != digest.rows() {
        return Err(unreadable(format!(
            "holds {} rows, but {} were written",
            got.rows(),
            digest.rows()
        )));
    }
    let differing: Vec<&str> = (got.per_field().into_iter())
        .zip(digest.per_field())
        .zip(fields)
        .filter(|((a, b), _)| a != b)
        .map(|(_, f)| f.name.as_str())
        .collect();
    if !differing.is_empty() {
        return Err(unreadable(format!(
            "reads back with other values than were written in field {}",
            differing.join(", ")
        )));
    }
    Ok(started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::proto::schema::{
        FieldData, FloatArray, JsonArray, LongArray, ScalarField, VectorField,
    };
    use crate::ops::logical::files::{FileSettings, FileWriter};
    use crate::storage::{Side, StorageSpec};

    fn field(name: &str, kind: Kind) -> Field {
        Field::plain(name, kind)
    }

    fn sample(n: usize) -> (Vec<Field>, Vec<FieldData>) {
        let fields = vec![
            field("id", Kind::Int64),
            field("v", Kind::FloatVector(2)),
            field("j", Kind::Json),
        ];
        let scalar = |name: &str, data| FieldData {
            field_name: name.into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(data),
                ..Default::default()
            })),
            ..Default::default()
        };
        let cols = vec![
            scalar(
                "id",
                scalar_field::Data::LongData(LongArray {
                    data: (0..n as i64).collect(),
                }),
            ),
            FieldData {
                field_name: "v".into(),
                field: Some(field_data::Field::Vectors(VectorField {
                    dim: 2,
                    data: Some(vector_field::Data::FloatVector(FloatArray {
                        data: (0..2 * n).map(|i| i as f32 * 0.5).collect(),
                    })),
                    ..Default::default()
                })),
                ..Default::default()
            },
            scalar(
                "j",
                scalar_field::Data::JsonData(JsonArray {
                    data: (0..n)
                        .map(|i| format!(r#"{{"b":{i},"a":[1,"x"]}}"#).into_bytes())
                        .collect(),
                }),
            ),
        ];
        (fields, cols)
    }

    /// Writes `sample(n)` into `name` under `dir`; the file and its digest.
    async fn write(
        dir: &std::path::Path,
        name: &str,
        n: usize,
    ) -> (Location, DataFile, ValueDigest) {
        let (fields, cols) = sample(n);
        let location = Location::open(
            &StorageSpec::memory(Side::Backup, "unused"),
            &dir.to_string_lossy(),
        )
        .unwrap();
        let settings = FileSettings {
            format: Format::of_file(name).unwrap(),
            ..Default::default()
        };
        let mut w = FileWriter::create(&location, name, "", &fields, settings)
            .await
            .unwrap();
        let mut digest = ValueDigest::new(&fields);
        digest.add(&fields, &cols, n).unwrap();
        w.write(&fields, &cols, n, 0).await.unwrap();
        (location, w.finish().await.unwrap(), digest)
    }

    #[tokio::test]
    async fn a_file_read_back_as_written_passes_and_a_damaged_one_names_itself() {
        let (fields, _) = sample(0);
        for name in ["part-000-00000.parquet", "part-000-00000.jsonl"] {
            let dir = tempfile::tempdir().unwrap();
            let (location, file, digest) = write(dir.path(), name, 500).await;
            let written = |digest: ValueDigest| Written {
                file: &file,
                digest,
                fields: &fields,
                collection: "db.c",
            };
            check(&location, written(digest.clone())).await.unwrap();

            // Truncated after it was written.
            let path = dir.path().join(name);
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
            let e = check(&location, written(digest.clone())).await.unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(name) && msg.contains("db.c"), "{msg}");
            assert_eq!(e.kind(), crate::error::ErrorKind::Corrupt, "{msg}");

            // Same length, one value changed (a row's key in JSON Lines; a
            // byte of the Parquet pages).
            let mut changed = bytes.clone();
            if name.ends_with(".jsonl") {
                let text =
                    String::from_utf8(changed)
                        .unwrap()
                        .replacen(r#"{"id":7,"#, r#"{"id":8,"#, 1);
                changed = text.into_bytes();
            } else {
                let at = changed.len() / 3;
                changed[at] ^= 0x55;
            }
            std::fs::write(&path, &changed).unwrap();
            let e = check(&location, written(digest)).await.unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn the_digest_does_not_depend_on_batches_or_null_placeholders() {
        let (fields, cols) = sample(4);
        let mut whole = ValueDigest::new(&fields);
        whole.add(&fields, &cols, 4).unwrap();
        let (_, first) = sample(2);
        let mut second = sample(4).1;
        for c in &mut second {
            *c = columns::keep_rows(c, &[false, false, true, true]);
        }
        let mut parts = ValueDigest::new(&fields);
        parts.add(&fields, &first, 2).unwrap();
        parts.add(&fields, &second, 2).unwrap();
        assert_eq!(parts.rows(), 4);
        assert_eq!(whole.clone().finish(), parts.finish());

        // A nullable column answered with placeholders, or without.
        let f = Field {
            nullable: true,
            ..field("n", Kind::Int64)
        };
        let with = |data: Vec<i64>| FieldData {
            field_name: "n".into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::LongData(LongArray { data })),
                ..Default::default()
            })),
            valid_data: vec![true, false, true],
            ..Default::default()
        };
        let digest = |fd: FieldData| {
            let mut d = ValueDigest::new(std::slice::from_ref(&f));
            d.add(std::slice::from_ref(&f), &[fd], 3).unwrap();
            d.finish()
        };
        assert_eq!(digest(with(vec![5, 0, 6])), digest(with(vec![5, 6])));
        assert_ne!(digest(with(vec![5, 0, 6])), digest(with(vec![5, 0, 7])));
        // A page without nulls: with or without a validity of all `true`.
        // Nulls split over batches as a reader splits them, or not.
        let mut whole = ValueDigest::new(std::slice::from_ref(&f));
        whole
            .add(std::slice::from_ref(&f), &[with(vec![5, 0, 6])], 3)
            .unwrap();
        let mut split = ValueDigest::new(std::slice::from_ref(&f));
        let mut first = with(vec![5, 0]);
        first.valid_data.truncate(2);
        let mut second = with(vec![6]);
        second.valid_data = vec![true];
        split.add(std::slice::from_ref(&f), &[first], 2).unwrap();
        split.add(std::slice::from_ref(&f), &[second], 1).unwrap();
        assert_eq!(whole.finish(), split.finish());
        let mut all_valid = with(vec![5, 4, 6]);
        all_valid.valid_data = vec![true; 3];
        let mut no_validity = all_valid.clone();
        no_validity.valid_data.clear();
        assert_eq!(digest(all_valid), digest(no_validity));
    }
}
