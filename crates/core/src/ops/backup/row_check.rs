//! The rows Milvus serves against the rows a physical backup's files hold,
//! compared for each collection right after its flush, before anything is
//! copied.
//!
//! Milvus 2.2 writes the deletes of rows in flushed segments to delta logs
//! only every `dataNode.segment.syncPeriod` (600 s by default), and `Flush`
//! does not force it: files copied right after such deletes hold the
//! deleted rows, and a restore brings them back (measured on 2.2.16: 5 of
//! 6,000 rows deleted just before the backup, none in a delta log). The
//! files' rows are the segments' rows minus the deletes their delta logs
//! record ([`crate::ops::binlog`]); the rows Milvus serves are its `count(*)`
//! at the flush's timestamp (2.3 and later), or, where the server has no
//! `count(*)` (2.2), a key-only query paged by primary key. A key scan
//! sees a key written twice once, the files every copy, and Milvus may
//! record one delete in the delta logs of several segments: so with a key
//! scan the keys of the files' rows are read from their insert and delta
//! logs, and only keys Milvus no longer serves count as deletes. Both
//! need the collection loaded; one that is not is left unchecked (with a
//! warning on 2.2).
//!
//! Not here: what a difference does to the backup ([`super::run`]).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use super::plan::{CollectionPlan, FileCopy};
use super::rows::{count_value, file_rows, segment_rows};
use crate::context::Context;
use crate::error::{Error, Opt, Remedy, Result};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::proto::schema::{field_data, scalar_field, DataType, FieldData};
use crate::milvus::{Milvus, QueryPage, Version};
use crate::model::meta::{FieldSchema, RowCheck};
use crate::ops::binlog::{delete_keys, insert_keys, Key as FileKey};

/// Rows per page of a key scan (Milvus refuses a larger query `limit`).
const PAGE_ROWS: u64 = 16_384;
/// How long a key scan may run before the check gives up (with a warning).
const SCAN_LIMIT: Duration = Duration::from_secs(600);
/// The smallest int64 Milvus's expression parser reads (not -2^63).
const MIN_INT64: i64 = -i64::MAX;
/// How the rows Milvus serves were counted where it has no `count(*)`.
const KEY_SCAN: &str = "key_scan";
/// Rows whose keys are read from the files at most (about 40 bytes of
/// memory each), to tell keys written twice from unpersisted deletes.
const MAX_KEYS_READ: i64 = 10_000_000;

/// Compares collection `index` of the plan, flushed at `flush_ts`; `None`
/// (with a warning where it matters) when the rows cannot be compared.
pub(super) async fn compare(
    ctx: &Context,
    client: &dyn Milvus,
    c: &CollectionPlan,
    index: usize,
    flush_ts: u64,
    events: &dyn EventSink,
) -> Option<RowCheck> {
    let coll = &c.collection;
    let persists_on_flush = client.version().is_some_and(flush_persists_deletes);
    if c.meta.load_state != "Loaded" {
        if !persists_on_flush {
            events.warn(format!(
                "{coll} is not loaded, so the rows Milvus serves cannot be counted: deletes it has not yet written to delta logs ({}) would come back on restore unseen — load it to have them checked, or make a logical backup",
                why_unpersisted(client.version())
            ));
        }
        return None;
    }
    let parallelism = ctx.settings.tuning.meta_parallelism;
    let compared = async {
        let file_rows = file_rows(ctx, c, parallelism).await?;
        let (served, counted_by) =
            served_rows(client, c, index, flush_ts, file_rows, events).await?;
        let mut check = RowCheck {
            collection: coll.clone(),
            served_rows: served,
            file_rows,
            unpersisted_deletes: (file_rows - served).max(0),
            duplicate_rows: 0,
            counted_by: counted_by.into(),
        };
        // A key scan sees each key once, the files every copy of a key
        // written twice, and a delete may be recorded in several segments:
        // the keys the files hold tell deletes Milvus applied from those.
        if counted_by == KEY_SCAN && segment_rows(&c.meta) <= MAX_KEYS_READ {
            let keys = live_keys(ctx, c, parallelism).await?;
            check.file_rows = keys.rows;
            check.unpersisted_deletes = (keys.distinct - served).max(0);
            check.duplicate_rows = keys.rows - keys.distinct;
        }
        Ok::<_, Error>(check)
    }
    .await;
    match compared {
        Ok(check) => Some(check),
        Err(e) => {
            events.warn(format!(
                "{coll}: the rows Milvus serves were not compared with the backed-up files, so deletes it has not persisted would go unnoticed: {e}"
            ));
            None
        }
    }
}

/// The rows of the files and their distinct keys.
struct LiveKeys {
    rows: i64,
    distinct: i64,
}

/// The live rows of the files and their distinct primary keys: each
/// segment's keys (read from the primary key's insert logs) less those its
/// own delta logs delete — a delete applies to the segment that records it.
async fn live_keys(ctx: &Context, c: &CollectionPlan, parallelism: usize) -> Result<LiveKeys> {
    let pk = primary_key(c)?.field_id.to_string();
    type Files<'a> = (Vec<&'a FileCopy>, Vec<&'a FileCopy>);
    let mut segments: BTreeMap<[&str; 3], Files> = BTreeMap::new();
    for f in &c.files {
        let parts: Vec<&str> = f.source.split('/').collect();
        match parts.as_slice() {
            ["insert_log", c, p, s, field, _] if *field == pk => {
                segments.entry([c, p, s]).or_default().0.push(f)
            }
            ["delta_log", c, p, s, _] => segments.entry([c, p, s]).or_default().1.push(f),
            _ => {}
        }
    }
    let mut live = HashSet::new();
    let mut rows = 0;
    for (inserts, deltas) in segments.into_values() {
        let inserted = keys_in(ctx, inserts, insert_keys, parallelism).await?;
        let deleted: HashSet<FileKey> = keys_in(ctx, deltas, delete_keys, parallelism)
            .await?
            .into_iter()
            .collect();
        for key in inserted.into_iter().filter(|k| !deleted.contains(k)) {
            rows += 1;
            live.insert(key);
        }
    }
    Ok(LiveKeys {
        rows,
        distinct: live.len() as i64,
    })
}

/// The keys `keys` reads from `files` in Milvus storage, every copy.
async fn keys_in(
    ctx: &Context,
    files: Vec<&FileCopy>,
    keys: fn(&[u8]) -> Result<Vec<FileKey>>,
    parallelism: usize,
) -> Result<Vec<FileKey>> {
    futures::stream::iter(
        files
            .into_iter()
            .map(|f| async move { keys(&ctx.milvus_storage.read(&f.source).await?) }),
    )
    .buffer_unordered(parallelism.max(1))
    .try_fold(Vec::new(), |mut all, keys| async move {
        all.extend(keys);
        Ok(all)
    })
    .await
}

/// Whether `Flush` writes the deletes of flushed segments to delta logs
/// (measured: 2.3.5 does, 2.2.16 does not).
fn flush_persists_deletes(v: Version) -> bool {
    v >= Version {
        major: 2,
        minor: 3,
        patch: 0,
    }
}

/// Why files can lack deletes Milvus applied, for the server's version.
fn why_unpersisted(version: Option<Version>) -> String {
    match version {
        Some(v) if flush_persists_deletes(v) => format!(
            "Milvus {v} had not written them to the delta logs of the flushed segments"
        ),
        v => format!(
            "Milvus {} writes the deletes of flushed segments to delta logs only every dataNode.segment.syncPeriod, 600 s by default, and a flush does not force it",
            v.map_or_else(|| "2.2".to_string(), |v| v.to_string())
        ),
    }
}

/// The refusal of a backup whose files hold rows Milvus no longer serves:
/// how many, where, why, and the ways out in the user's words.
pub(super) fn unpersisted_error(check: &RowCheck, version: Option<Version>) -> Error {
    Error::conflict(format!(
        "{}: {} deletes are not yet persisted ({}): Milvus serves {} rows but the files to back up hold {}{}, so a restore would bring the deleted rows back; nothing was written",
        check.collection,
        check.unpersisted_deletes,
        why_unpersisted(version),
        check.served_rows,
        check.file_rows,
        written_twice(check),
    ))
    .remedy(
        Remedy::text("wait and retry, use ")
            .opt(Opt::FormatParquet)
            .then(" (a logical backup reads only live rows), or ")
            .opt(Opt::AllowUnpersistedDeletes)
            .then(" to back up anyway (the backup records it)"),
    )
    .at("collection", &check.collection)
    .temporary(true)
}

/// The warning of a backup that goes on despite them.
pub(super) fn unpersisted_warning(check: &RowCheck, version: Option<Version>) -> String {
    format!(
        "{}: {} deletes are not yet persisted ({}): the backup holds {} rows where Milvus serves {}{}, and a restore brings the deleted rows back; recorded in the backup (row_checks in meta/manifest.json)",
        check.collection,
        check.unpersisted_deletes,
        why_unpersisted(version),
        check.file_rows,
        check.served_rows,
        written_twice(check),
    )
}

/// The part of a difference that is rows sharing a key, which a key scan
/// counts once.
fn written_twice(check: &RowCheck) -> String {
    match check.duplicate_rows {
        n if n > 0 => format!(
            " ({n} of them rows written under a key another row has, which Milvus serves once)"
        ),
        _ => String::new(),
    }
}

/// Rows Milvus serves as of `flush_ts`: its `count(*)`, or a key scan
/// where it has none; and which of the two.
async fn served_rows(
    client: &dyn Milvus,
    c: &CollectionPlan,
    index: usize,
    flush_ts: u64,
    expected: i64,
    events: &dyn EventSink,
) -> Result<(i64, &'static str)> {
    let (db, name) = (&c.source.db, &c.source.name);
    // Rows as of the flush (MVCC), where the server takes a travel
    // timestamp (2.3 and later; 2.2 refuses one it keeps no history for).
    let travel = client.capabilities().reads_at_timestamp();
    let page = |expr: String, output: &str, limit: u64| QueryPage {
        expr,
        output_fields: vec![output.to_string()],
        partitions: Vec::new(),
        limit,
        ts: flush_ts,
        travel,
    };
    let counted = client
        .query_page(db, name, &page(String::new(), "count(*)", 0))
        .await;
    if let Some(n) = counted
        .ok()
        .and_then(|(cols, _)| cols.first().and_then(count_value))
    {
        return Ok((n, "count"));
    }
    let pk = primary_key(c)?;
    events.phase(Phase::CountingRows {
        collection: c.collection.clone(),
        rows: expected.max(0) as u64,
    });
    let started = Instant::now();
    let mut cursor = KeyCursor::new(pk);
    let mut rows = 0i64;
    loop {
        let (cols, _) = client
            .query_page(db, name, &page(cursor.next_expr(), &pk.name, PAGE_ROWS))
            .await?;
        let n = cursor.advance(&cols);
        rows += n as i64;
        events.emit(Event::RowsDone {
            collection: index,
            rows: n,
            bytes: 0,
        });
        if n < PAGE_ROWS {
            return Ok((rows, KEY_SCAN));
        }
        if started.elapsed() > SCAN_LIMIT {
            return Err(Error::remote(format!(
                "counting by key stopped after {} s and {rows} rows",
                SCAN_LIMIT.as_secs()
            )));
        }
    }
}

fn primary_key(c: &CollectionPlan) -> Result<&FieldSchema> {
    c.meta
        .schema
        .fields
        .iter()
        .find(|f| f.is_primary_key)
        .ok_or_else(|| Error::internal(format!("{} has no primary key", c.collection)))
}

/// The position of a key scan: after the largest key read so far.
struct KeyCursor<'a> {
    pk: &'a str,
    varchar: bool,
    last: Option<Key>,
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Int(i64),
    Str(String),
}

impl KeyCursor<'_> {
    fn new(pk: &FieldSchema) -> KeyCursor<'_> {
        KeyCursor {
            pk: &pk.name,
            varchar: pk.data_type == DataType::VarChar as i32,
            last: None,
        }
    }

    /// The filter of the next page.
    fn next_expr(&self) -> String {
        let pk = self.pk;
        match &self.last {
            // A JSON string is a string literal Milvus's parser reads.
            Some(Key::Str(s)) => format!("{pk} > {}", serde_json::Value::from(s.as_str())),
            Some(Key::Int(v)) => format!("{pk} > {v}"),
            None if self.varchar => format!("{pk} >= \"\""),
            None => format!("{pk} >= {MIN_INT64}"),
        }
    }

    /// Moves past a page; the rows it held.
    fn advance(&mut self, cols: &[FieldData]) -> u64 {
        let Some(field_data::Field::Scalars(s)) = cols
            .iter()
            .find(|c| c.field_name == self.pk)
            .and_then(|c| c.field.as_ref())
        else {
            return 0;
        };
        let (n, max) = match &s.data {
            Some(scalar_field::Data::LongData(a)) => {
                (a.data.len(), a.data.iter().max().map(|v| Key::Int(*v)))
            }
            Some(scalar_field::Data::StringData(a)) => (
                a.data.len(),
                a.data.iter().max().map(|v| Key::Str(v.clone())),
            ),
            _ => (0, None),
        };
        if max.is_some() {
            self.last = max;
        }
        n as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::proto::schema::{LongArray, StringArray};
    use crate::testkit::scalar_column as column;

    #[test]
    fn a_key_scan_pages_past_the_largest_key_read() {
        let pk = FieldSchema {
            name: "id".into(),
            data_type: DataType::Int64 as i32,
            ..Default::default()
        };
        let mut cursor = KeyCursor::new(&pk);
        assert_eq!(cursor.next_expr(), format!("id >= {MIN_INT64}"));
        let page = column(
            "id",
            scalar_field::Data::LongData(LongArray {
                data: vec![3, 9, 5],
            }),
        );
        assert_eq!(cursor.advance(&[page]), 3);
        assert_eq!(cursor.next_expr(), "id > 9");
        assert_eq!(cursor.advance(&[]), 0);
        assert_eq!(cursor.next_expr(), "id > 9");

        let pk = FieldSchema {
            name: "k".into(),
            data_type: DataType::VarChar as i32,
            ..Default::default()
        };
        let mut cursor = KeyCursor::new(&pk);
        assert_eq!(cursor.next_expr(), "k >= \"\"");
        let page = column(
            "k",
            scalar_field::Data::StringData(StringArray {
                data: vec!["a\"b".into(), "a".into()],
            }),
        );
        assert_eq!(cursor.advance(&[page]), 2);
        assert_eq!(cursor.next_expr(), r#"k > "a\"b""#);
    }

    #[test]
    fn the_refusal_names_the_deletes_the_reason_and_the_ways_out() {
        let check = RowCheck {
            collection: "default.docs".into(),
            served_rows: 5995,
            file_rows: 6000,
            unpersisted_deletes: 5,
            duplicate_rows: 0,
            counted_by: "key_scan".into(),
        };
        let v22 = Version::parse("v2.2.16");
        let e = unpersisted_error(&check, v22);
        assert_eq!(e.kind(), crate::ErrorKind::Conflict);
        assert!(e.is_temporary());
        let text = e.to_string();
        for part in [
            "default.docs: 5 deletes are not yet persisted",
            "dataNode.segment.syncPeriod, 600 s by default",
            "Milvus serves 5995 rows but the files to back up hold 6000",
            "wait and retry",
            "--format parquet",
            "--allow-unpersisted-deletes",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert!(!text.contains('\n'));
        let json = e.line(crate::Caller::Rest);
        assert!(
            json.contains(r#""allow_unpersisted_deletes": true"#)
                && json.contains(r#""format": "parquet""#),
            "{json}"
        );
        let sdk = e.line(crate::Caller::Sdk);
        assert!(sdk.contains("allow_unpersisted_deletes=True"), "{sdk}");
        let v23 = unpersisted_error(&check, Version::parse("v2.3.5"));
        assert!(!v23.to_string().contains("syncPeriod"), "{v23}");
    }
}
