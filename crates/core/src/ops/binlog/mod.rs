//! Milvus's binlog files read by the tool itself: how many deletes a delta
//! log records (live rows of collections the backup cannot query), the
//! primary keys of insert and delta logs (to tell rows written twice under
//! one key from deletes Milvus has not persisted), each delete's key and
//! timestamp, and an insert log's values as an Arrow column ([`columns`],
//! which a restore with `--import-mode insert` inserts).
//!
//! A Milvus binlog is a magic number, a descriptor event, then data events.
//! Every event starts with a 17-byte header — timestamp (8), type code (1),
//! event length (4), next event's absolute offset (4), little-endian — and
//! an insert or delete event's data is two timestamps (16 bytes) and a
//! Parquet payload: one column, the field's values, or for deletes one
//! string per delete (`pk,ts`, or JSON `{"pk":…,"ts":…}`). Counting reads
//! the Parquet footer alone, so nothing is decompressed. Checked on files
//! written by Milvus 2.2.16 and 2.3.5.

use bytes::Bytes;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::error::{Error, Result};

pub mod columns;

const MAGIC: u32 = 0xfffabc;
const HEADER: usize = 17;
pub(crate) const INSERT_EVENT: u8 = 1;
const DELETE_EVENT: u8 = 2;

/// A primary key as a binlog holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Int(i64),
    Str(String),
}

/// Milvus's file, not the backup's: never `Corrupt` (exit 9).
fn bad(why: &str) -> Error {
    Error::internal(format!("not a Milvus binlog: {why}"))
}

/// The Parquet payloads of the events of `type_code` in a binlog.
fn payloads(file: &[u8], type_code: u8) -> Result<Vec<SerializedFileReader<Bytes>>> {
    payload_bytes(file, type_code)?
        .into_iter()
        .map(|payload| {
            SerializedFileReader::new(payload)
                .map_err(|e| bad(&format!("its Parquet payload does not parse: {e}")))
        })
        .collect()
}

/// The Parquet bytes of the events of `type_code` in a binlog.
fn payload_bytes(file: &[u8], type_code: u8) -> Result<Vec<Bytes>> {
    let u32_at = |at: usize| -> Result<u32> {
        file.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| bad("cut short"))
    };
    if u32_at(0)? != MAGIC {
        return Err(bad("wrong magic number"));
    }
    let mut at = 4;
    let mut out = Vec::new();
    while at + HEADER <= file.len() {
        let code = file[at + 8];
        let length = u32_at(at + 9)? as usize;
        let next = u32_at(at + 13)? as usize;
        if length < HEADER || at + length > file.len() || next <= at {
            return Err(bad("an event runs past the end of the file"));
        }
        if code == type_code {
            let payload = file
                .get(at + HEADER + 16..at + length)
                .ok_or_else(|| bad("an event without payload"))?;
            out.push(Bytes::copy_from_slice(payload));
        }
        at = next;
    }
    Ok(out)
}

/// The number of deletes recorded in one delta log file.
pub fn count_deletes(file: &[u8]) -> Result<u64> {
    Ok(payloads(file, DELETE_EVENT)?
        .iter()
        .map(|r| r.metadata().file_metadata().num_rows().max(0) as u64)
        .sum())
}

/// The values of every row of a payload's one column.
fn values(reader: &SerializedFileReader<Bytes>) -> Result<Vec<Field>> {
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| bad(&format!("its Parquet payload does not read: {e}")))?;
    rows.map(|row| {
        let row = row.map_err(|e| bad(&format!("a Parquet row does not read: {e}")))?;
        row.get_column_iter()
            .next()
            .map(|(_, v)| v.clone())
            .ok_or_else(|| bad("a payload without a column"))
    })
    .collect()
}

/// The primary keys of an insert log of the primary-key field, in order.
pub fn insert_keys(file: &[u8]) -> Result<Vec<Key>> {
    let mut keys = Vec::new();
    for reader in payloads(file, INSERT_EVENT)? {
        for v in values(&reader)? {
            keys.push(match v {
                Field::Long(n) => Key::Int(n),
                Field::Str(s) => Key::Str(s),
                Field::Bytes(b) => Key::Str(String::from_utf8_lossy(b.data()).into_owned()),
                other => return Err(bad(&format!("a primary key of unknown type: {other}"))),
            });
        }
    }
    Ok(keys)
}

/// The primary keys a delta log deletes.
pub fn delete_keys(file: &[u8]) -> Result<Vec<Key>> {
    Ok(deletes(file)?.into_iter().map(|(k, _)| k).collect())
}

/// Every delete a delta log records: the key, and the timestamp of the
/// delete (rows of that key written before it are gone).
pub fn deletes(file: &[u8]) -> Result<Vec<(Key, u64)>> {
    let mut out = Vec::new();
    for reader in payloads(file, DELETE_EVENT)? {
        for v in values(&reader)? {
            let text = match v {
                Field::Str(s) => s,
                Field::Bytes(b) => String::from_utf8_lossy(b.data()).into_owned(),
                other => return Err(bad(&format!("a delete of unknown form: {other}"))),
            };
            out.push(delete_of(&text).ok_or_else(|| bad(&format!("a delete `{text}`")))?);
        }
    }
    Ok(out)
}

/// One delete: JSON `{"pk": …, "ts": …}` (Milvus 2.3) or `pk,ts` (2.2).
fn delete_of(text: &str) -> Option<(Key, u64)> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let key = match &v["pk"] {
            serde_json::Value::Number(n) => n.as_i64().map(Key::Int),
            serde_json::Value::String(s) => Some(Key::Str(s.clone())),
            _ => None,
        }?;
        return Some((key, v["ts"].as_u64()?));
    }
    let (pk, ts) = text.rsplit_once(',')?;
    let key = pk
        .parse()
        .map_or_else(|_| Key::Str(pk.to_string()), Key::Int);
    Some((key, ts.trim().parse().ok()?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use parquet::data_type::ByteArray;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    /// A one-column Parquet payload: `schema`'s column written by `write`.
    pub(crate) fn payload(
        schema: &str,
        write: impl FnOnce(&mut parquet::column::writer::ColumnWriter),
    ) -> Vec<u8> {
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let mut out = Vec::new();
        let mut w = SerializedFileWriter::new(&mut out, schema, Default::default()).unwrap();
        let mut rg = w.next_row_group().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        write(col.untyped());
        col.close().unwrap();
        rg.close().unwrap();
        w.close().unwrap();
        out
    }

    /// A binlog as Milvus writes it: magic, descriptor, one event of
    /// `type_code` with `payload`.
    pub(crate) fn binlog(type_code: u8, payload: Vec<u8>) -> Vec<u8> {
        let mut file = MAGIC.to_le_bytes().to_vec();
        let event = |type_code: u8, data: &[u8], at: usize| {
            let length = HEADER + data.len();
            let mut e = vec![0u8; 8];
            e.push(type_code);
            e.extend((length as u32).to_le_bytes());
            e.extend(((at + length) as u32).to_le_bytes());
            e.extend(data);
            e
        };
        let d = event(0, &[0u8; 20], file.len());
        file.extend(d);
        let mut data = vec![0u8; 16];
        data.extend(payload);
        let e = event(type_code, &data, file.len());
        file.extend(e);
        file
    }

    /// A delta log of `deletes` strings (`pk,ts`).
    pub(crate) fn delta_log(deletes: &[String]) -> Vec<u8> {
        let values: Vec<ByteArray> = deletes
            .iter()
            .map(|d| ByteArray::from(d.as_str()))
            .collect();
        let p = payload("message m { required binary v (UTF8); }", |c| {
            let parquet::column::writer::ColumnWriter::ByteArrayColumnWriter(w) = c else {
                panic!("byte array column")
            };
            let _ = w.write_batch(&values, None, None).unwrap();
        });
        binlog(DELETE_EVENT, p)
    }

    fn numbered(rows: usize) -> Vec<String> {
        (0..rows).map(|i| format!("{i},1")).collect()
    }

    #[test]
    fn counts_the_rows_of_the_delete_payload() {
        assert_eq!(count_deletes(&delta_log(&numbered(37))).unwrap(), 37);
        assert_eq!(count_deletes(&delta_log(&[])).unwrap(), 0);
    }

    #[test]
    fn a_file_that_is_not_a_delta_log_is_refused() {
        assert!(count_deletes(b"PAR1 not a binlog").is_err());
        let mut cut = delta_log(&numbered(5));
        cut.truncate(cut.len() - 10);
        assert!(count_deletes(&cut).is_err());
    }

    #[test]
    fn keys_are_read_from_insert_and_delta_logs() {
        let p = payload("message m { required int64 v; }", |c| {
            let parquet::column::writer::ColumnWriter::Int64ColumnWriter(w) = c else {
                panic!("int64 column")
            };
            let _ = w.write_batch(&[7, 3, 7], None, None).unwrap();
        });
        let keys = insert_keys(&binlog(INSERT_EVENT, p)).unwrap();
        assert_eq!(keys, vec![Key::Int(7), Key::Int(3), Key::Int(7)]);
        let deletes_ = [
            "12,449".to_string(),
            r#"{"pk":5,"ts":449,"pkType":5}"#.to_string(),
            r#"{"pk":"a,b","ts":449,"pkType":21}"#.to_string(),
        ];
        assert_eq!(
            delete_keys(&delta_log(&deletes_)).unwrap(),
            vec![Key::Int(12), Key::Int(5), Key::Str("a,b".into())]
        );
        let with_ts = deletes(&delta_log(&deletes_)).unwrap();
        assert_eq!(with_ts[0], (Key::Int(12), 449));
        assert_eq!(with_ts[2], (Key::Str("a,b".into()), 449));
    }
}
