//! How many deletes a Milvus delta log records, read from the file itself,
//! so a backup can report live rows (inserted minus deleted) for
//! collections it cannot query (not loaded).
//!
//! A Milvus binlog is a magic number, a descriptor event, then data events.
//! Every event starts with a 17-byte header — timestamp (8), type code (1),
//! event length (4), next event's absolute offset (4), little-endian — and a
//! delete event's data is two timestamps (16 bytes) and a Parquet payload
//! with one row per delete. The row count comes from the Parquet footer
//! alone, so nothing is decompressed. Checked on files written by Milvus
//! 2.2.16 and 2.3.5.

use bytes::Bytes;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::error::{Error, Result};

const MAGIC: u32 = 0xfffabc;
const HEADER: usize = 17;
const DELETE_EVENT: u8 = 2;

/// The number of deletes recorded in one delta log file.
pub fn count_deletes(file: &[u8]) -> Result<u64> {
    // Milvus's file, not the backup's: never `Corrupt` (exit 9).
    let bad = |why: &str| Error::internal(format!("not a Milvus delta log: {why}"));
    let u32_at = |at: usize| -> Result<u32> {
        file.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| bad("cut short"))
    };
    if u32_at(0)? != MAGIC {
        return Err(bad("wrong magic number"));
    }
    let mut at = 4;
    let mut deletes = 0;
    while at + HEADER <= file.len() {
        let type_code = file[at + 8];
        let length = u32_at(at + 9)? as usize;
        let next = u32_at(at + 13)? as usize;
        if length < HEADER || at + length > file.len() || next <= at {
            return Err(bad("an event runs past the end of the file"));
        }
        if type_code == DELETE_EVENT {
            let payload = file
                .get(at + HEADER + 16..at + length)
                .ok_or_else(|| bad("a delete event without payload"))?;
            let reader = SerializedFileReader::new(Bytes::copy_from_slice(payload))
                .map_err(|e| bad(&format!("its Parquet payload does not parse: {e}")))?;
            deletes += reader.metadata().file_metadata().num_rows().max(0) as u64;
        }
        at = next;
    }
    Ok(deletes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delta log as Milvus writes it: magic, descriptor, one delete event
    /// whose payload is a Parquet file of `rows` strings.
    fn delta_log(rows: usize) -> Vec<u8> {
        use parquet::data_type::{ByteArray, ByteArrayType};
        use parquet::file::writer::SerializedFileWriter;
        use parquet::schema::parser::parse_message_type;
        use std::sync::Arc;

        let schema =
            Arc::new(parse_message_type("message m { required binary v (UTF8); }").unwrap());
        let mut payload = Vec::new();
        let mut w = SerializedFileWriter::new(&mut payload, schema, Default::default()).unwrap();
        let mut rg = w.next_row_group().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        let values: Vec<ByteArray> = (0..rows)
            .map(|i| ByteArray::from(format!("{i},1").as_str()))
            .collect();
        col.typed::<ByteArrayType>()
            .write_batch(&values, None, None)
            .unwrap();
        col.close().unwrap();
        rg.close().unwrap();
        w.close().unwrap();

        let mut file = MAGIC.to_le_bytes().to_vec();
        let descriptor = [0u8; 20];
        let event = |type_code: u8, data: &[u8], at: usize| {
            let length = HEADER + data.len();
            let mut e = vec![0u8; 8];
            e.push(type_code);
            e.extend((length as u32).to_le_bytes());
            e.extend(((at + length) as u32).to_le_bytes());
            e.extend(data);
            e
        };
        let d = event(0, &descriptor, file.len());
        file.extend(d);
        let mut data = vec![0u8; 16];
        data.extend(payload);
        let e = event(DELETE_EVENT, &data, file.len());
        file.extend(e);
        file
    }

    #[test]
    fn counts_the_rows_of_the_delete_payload() {
        assert_eq!(count_deletes(&delta_log(37)).unwrap(), 37);
        assert_eq!(count_deletes(&delta_log(0)).unwrap(), 0);
    }

    #[test]
    fn a_file_that_is_not_a_delta_log_is_refused() {
        assert!(count_deletes(b"PAR1 not a binlog").is_err());
        let mut cut = delta_log(5);
        cut.truncate(cut.len() - 10);
        assert!(count_deletes(&cut).is_err());
    }
}
