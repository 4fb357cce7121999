//! A physical backup's rows inserted over gRPC (`--import-mode insert`):
//! each segment's binlogs are read from backup storage (decoded and checked
//! against the manifest), its fields' insert logs decoded into columns
//! ([`crate::ops::binlog::columns`]) and aligned by row, and the rows go in
//! by the logical engine's Insert path, batched by bytes across segments of
//! one partition. Milvus 2.2 and 2.3 import one segment per job, seconds
//! each however small: a collection of many small segments restores in
//! seconds this way instead of most of an hour.
//!
//! What Milvus would serve is what goes in: first every segment's primary
//! keys and row timestamps (field 1) and every delete of its delta logs are
//! read, then of the rows sharing a key only the newest is kept, and it is
//! dropped when a delete of that key is newer than it (a delete at `T`
//! removes the rows written before `T`; an upsert's insert carries its
//! delete's timestamp and stays). The system fields (row id and timestamp)
//! are not inserted; the target gives the rows new timestamps.
//!
//! No journal: a failed insert-mode restore drops what it made, and runs
//! again from the start. All keys of a collection are held in memory while
//! it is restored (this path is for many small segments).
//!
//! Does not own: creating the collection, indexes or the load
//! ([`super::run`]), or importing segments ([`super::binlog`]).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{Field as ArrowField, Schema as ArrowSchema};
use futures::{Stream, StreamExt, TryStreamExt};

use crate::context::Context;
use crate::error::{Error, Result, ResultExt};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::Milvus;
use crate::model::layout;
use crate::model::meta::{ManifestFile, SegmentBackupInfo};
use crate::ops::binlog::columns::{self, as_field_column, insert_values};
use crate::ops::binlog::{deletes, Key};
use crate::ops::logical::columns::{from_record_batch, Origin};
use crate::ops::logical::fields::Field;
use crate::ops::logical::import::{insert_with_retry, INSERT_BATCH_BYTES};
use crate::ops::logical::in_backup::target_fields;
use crate::ops::restore::binlog::{files_under, DataStats};
use crate::ops::restore::plan::RestorePlan;
use crate::ops::restore::tasks::{segments_with_files, CollectionTask};

/// The timestamp field of every collection's binlogs.
const TIMESTAMP_FIELD: i64 = 1;
/// Segments read at once, when they are small.
const SEGMENTS_IN_FLIGHT: usize = 16;
/// Raw bytes of segments read ahead, at most.
const READ_AHEAD_BYTES: i64 = 256 << 20;

/// One file of a segment: its key in backup storage and manifest entry.
type SegmentFile<'p> = (String, Option<&'p ManifestFile>);

/// A segment's files: insert logs by field id (in log-id order) and delta logs.
#[derive(Default)]
struct SegmentFiles<'p> {
    fields: HashMap<i64, Vec<(i64, SegmentFile<'p>)>>,
    deltas: Vec<SegmentFile<'p>>,
}

/// The keys, row timestamps and deletes of one segment.
struct SegmentKeys {
    keys: Vec<Key>,
    timestamps: Vec<u64>,
    deletes: Vec<(Key, u64)>,
    /// The primary-key column as read, inserted without a second read.
    pk_values: Option<ArrayRef>,
}

/// The binlog insert of one collection of a plan.
pub(crate) struct BinlogRows<'a> {
    pub ctx: &'a Context,
    pub client: &'a dyn Milvus,
    pub plan: &'a RestorePlan,
    pub task: &'a CollectionTask,
    pub events: &'a dyn EventSink,
}

impl BinlogRows<'_> {
    /// Reads every segment's keys and deletes, then inserts the rows
    /// Milvus would serve, segment by segment, in byte-sized batches.
    pub(crate) async fn insert_all(&self) -> Result<DataStats> {
        let (client, target, events) = (self.client, &self.task.target, self.events);
        let (fields, has_partition_key) = target_fields(client, target).await?;
        let keys_regenerated = fields.iter().any(|f| f.is_primary && f.auto_id);
        if keys_regenerated {
            events.warn(format!(
                "{target} makes its own primary keys (autoID) and this Milvus takes none from a client: the backup's keys are not kept, new ones are generated"
            ));
        }
        let segments = segments_with_files(&self.task.meta);
        let mut files = Vec::with_capacity(segments.len());
        for (_, seg) in &segments {
            files.push(self.files_of(seg).await?);
        }
        let in_flight = segments_in_flight(&segments);
        let keys: Vec<SegmentKeys> = futures::stream::iter(
            segments
                .iter()
                .zip(&files)
                .map(|((_, seg), f)| self.read_keys(seg, f)),
        )
        .buffered(in_flight)
        .try_collect()
        .await?;
        let keep = rows_to_keep(&keys);
        let rows: usize = keep.iter().map(|k| k.iter().filter(|x| **x).count()).sum();
        events.phase(Phase::Inserting {
            collection: target.to_string(),
            files: segments.len(),
            rows: rows as u64,
        });
        let pk_values = keys.into_iter().map(|k| k.pk_values);
        let decoded =
            futures::stream::iter(segments.iter().zip(&files).zip(keep).zip(pk_values).map(
                |((((partition, seg), f), keep), pk_values)| {
                    let partition = match has_partition_key {
                        true => String::new(),
                        false => partition.to_string(),
                    };
                    let fields = &fields;
                    async move {
                        let batch = self.read_rows(seg, f, fields, &keep, pk_values).await?;
                        Ok::<_, Error>(batch.map(|b| (partition, b)))
                    }
                },
            ))
            .buffered(in_flight);
        let origin = format!("the binlogs of {}", self.task.source);
        let collection = target.to_string();
        let inserted: Vec<usize> = batched(Box::pin(decoded), INSERT_BATCH_BYTES)
            .map(|batch| {
                let (fields, origin, collection) = (&fields, &origin, &collection);
                async move {
                    let (partition, batch, bytes) = batch?;
                    let origin = Origin {
                        file: origin,
                        collection,
                    };
                    let cols = from_record_batch(fields, &batch, origin, keys_regenerated)?;
                    let n = batch.num_rows();
                    insert_with_retry(client, target, &partition, cols, n).await?;
                    events.emit(Event::RowsDone {
                        collection: 0,
                        rows: n as u64,
                        bytes: bytes as u64,
                    });
                    Ok::<_, Error>(n)
                }
            })
            .buffer_unordered(self.plan.tuning.import_parallelism.clamp(2, 8))
            .try_collect()
            .await?;
        Ok(DataStats {
            entities: inserted.iter().sum::<usize>() as i64,
            segments: segments.len(),
            keys_regenerated,
            ..Default::default()
        })
    }

    /// A segment's insert logs by field and its delta logs, in backup storage.
    async fn files_of(&self, seg: &SegmentBackupInfo) -> Result<SegmentFiles<'_>> {
        let (name, c) = (&self.plan.backup, self.task.meta.collection_id);
        let (p, s) = (seg.partition_id, seg.segment_id);
        let mut out = SegmentFiles::default();
        let insert_dir = layout::backup_insert_log_dir(name, c, p, s);
        for (key, rest, entry) in files_under(self.ctx, self.plan, &insert_dir).await? {
            // `<field id>/<log id>`
            let mut parts = rest.split('/');
            let field = parts.next().and_then(|f| f.parse::<i64>().ok());
            let log = parts.next().and_then(|l| l.parse::<i64>().ok());
            if let (Some(field), Some(log)) = (field, log) {
                out.fields
                    .entry(field)
                    .or_default()
                    .push((log, (key, entry)));
            }
        }
        for files in out.fields.values_mut() {
            files.sort_by_key(|(log, _)| *log);
        }
        if seg.deltalogs.iter().any(|d| !d.binlogs.is_empty()) {
            let delta_dir = layout::backup_delta_log_dir(name, c, p, s);
            for (key, _, entry) in files_under(self.ctx, self.plan, &delta_dir).await? {
                out.deltas.push((key, entry));
            }
        }
        Ok(out)
    }

    /// One file of the backup, decoded and checked against the manifest.
    async fn read(&self, (key, entry): &SegmentFile<'_>) -> Result<Vec<u8>> {
        let (storage, name) = (&self.ctx.backup_storage, &self.plan.backup);
        let Some(entry) = entry else {
            return storage.read(key).await;
        };
        crate::storage::encoded::decode_read(storage, key, &entry.expected())
            .await?
            .map_err(|damage| {
                Error::corrupt(format!(
                    "backup file `{key}` is damaged: {damage} — run `milvus-backup verify --deep -n {name}`"
                ))
                .at("key", key)
            })
    }

    /// The values of one field of a segment, all its insert logs in order;
    /// `None` when the segment has none (a field added later).
    async fn field_values(&self, files: &SegmentFiles<'_>, field: i64) -> Result<Option<ArrayRef>> {
        let Some(logs) = files.fields.get(&field) else {
            return Ok(None);
        };
        let parts = futures::future::try_join_all(logs.iter().map(|(_, file)| async move {
            let bytes = self.read(file).await?;
            insert_values(&bytes).at("key", &file.0)
        }))
        .await?;
        columns::concat(&parts).map(Some)
    }

    /// The primary keys, row timestamps and deletes of one segment.
    async fn read_keys(
        &self,
        seg: &SegmentBackupInfo,
        files: &SegmentFiles<'_>,
    ) -> Result<SegmentKeys> {
        let s = seg.segment_id;
        let missing = |what: &str| {
            Error::corrupt(format!(
                "segment {s} of {} has no insert log of its {what} in backup `{}` — run `milvus-backup verify -n {}`",
                self.task.source, self.plan.backup, self.plan.backup
            ))
            .at("segment", s)
        };
        let pk = self.pk_field_id()?;
        let deleted = futures::future::try_join_all(files.deltas.iter().map(|file| async move {
            let bytes = self.read(file).await?;
            deletes(&bytes).at("key", &file.0)
        }));
        let (deleted, pk_values, ts) = futures::try_join!(
            deleted,
            self.field_values(files, pk),
            self.field_values(files, TIMESTAMP_FIELD)
        )?;
        let deleted: Vec<(Key, u64)> = deleted.into_iter().flatten().collect();
        if files.fields.is_empty() {
            // Deletes alone (an L0 segment of Milvus 2.4 and later).
            return Ok(SegmentKeys {
                keys: Vec::new(),
                timestamps: Vec::new(),
                deletes: deleted,
                pk_values: None,
            });
        }
        let pk_values = pk_values.ok_or_else(|| missing("primary key"))?;
        let ts = ts.ok_or_else(|| missing("row timestamps"))?;
        let (keys, timestamps) = (columns::keys_of(&pk_values)?, columns::timestamps_of(&ts)?);
        if keys.len() != timestamps.len() {
            return Err(Error::corrupt(format!(
                "segment {s} of {}: {} primary keys but {} row timestamps in its insert logs",
                self.task.source,
                keys.len(),
                timestamps.len()
            ))
            .at("segment", s));
        }
        Ok(SegmentKeys {
            keys,
            timestamps,
            deletes: deleted,
            pk_values: Some(pk_values),
        })
    }

    fn pk_field_id(&self) -> Result<i64> {
        (self.task.meta.schema.fields.iter())
            .find(|f| f.is_primary_key)
            .map(|f| f.field_id)
            .ok_or_else(|| Error::corrupt(format!("{} has no primary key field", self.task.source)))
    }

    /// The rows of one segment that `keep` marks, one column per field the
    /// insert logs hold (fields without a log are left to their defaults);
    /// `None` when no row is kept.
    async fn read_rows(
        &self,
        seg: &SegmentBackupInfo,
        files: &SegmentFiles<'_>,
        fields: &[Field],
        keep: &[bool],
        pk_values: Option<ArrayRef>,
    ) -> Result<Option<(RecordBatch, usize)>> {
        if !keep.iter().any(|k| *k) {
            return Ok(None);
        }
        let s = seg.segment_id;
        let ids: HashMap<&str, i64> = (self.task.meta.schema.fields.iter())
            .map(|f| (f.name.as_str(), f.field_id))
            .collect();
        let mut columns = Vec::new();
        let mut schema = Vec::new();
        let mut bytes = 0;
        // A backup of Milvus 2.3 lists no `$meta` in its schema; its insert
        // logs are those of the one field id the schema does not name.
        let unnamed = (files.fields.keys())
            .find(|id| **id > TIMESTAMP_FIELD && !ids.values().any(|known| known == *id))
            .copied();
        let field_ids: Vec<Option<i64>> = (fields.iter())
            .map(|field| match ids.get(field.name.as_str()) {
                Some(id) => Some(*id),
                None if field.is_dynamic => unnamed,
                None => None,
            })
            .collect();
        let pk = self.pk_field_id()?;
        let all = futures::future::try_join_all(field_ids.iter().map(|id| {
            let pk_values = pk_values.clone();
            async move {
                match *id {
                    Some(id) if id == pk && pk_values.is_some() => Ok(pk_values),
                    Some(id) => self.field_values(files, id).await,
                    None => Ok(None),
                }
            }
        }))
        .await?;
        for ((field, id), values) in fields.iter().zip(field_ids).zip(all) {
            let Some(values) = values else {
                if field.takes_null() || field.is_dynamic || field.auto_id {
                    continue;
                }
                return Err(Error::corrupt(format!(
                    "segment {s} of {} has no insert log of field `{}` in backup `{}`",
                    self.task.source, field.name, self.plan.backup
                ))
                .at("segment", s));
            };
            let key = (files.fields.get(&id.unwrap_or_default()))
                .and_then(|l| l.first())
                .map(|(_, (k, _))| k.as_str())
                .unwrap_or_default();
            let col = as_field_column(field.kind, &values)
                .map_err(|why| columns::mismatch(&field.name, field.kind, key, &why))?;
            if col.len() != keep.len() {
                return Err(Error::corrupt(format!(
                    "segment {s} of {}: field `{}` has {} rows, its primary key {}",
                    self.task.source,
                    field.name,
                    col.len(),
                    keep.len()
                ))
                .at("segment", s));
            }
            bytes += col.get_array_memory_size();
            schema.push(ArrowField::new(&field.name, col.data_type().clone(), true));
            columns.push(col);
        }
        let batch = RecordBatch::try_new(Arc::new(ArrowSchema::new(schema)), columns)
            .map_err(|e| Error::internal(format!("the rows of segment {s}: {e}")))?;
        let kept = keep.iter().filter(|k| **k).count();
        let batch = match kept == keep.len() {
            true => batch,
            false => arrow_select::filter::filter_record_batch(
                &batch,
                &BooleanArray::from(keep.to_vec()),
            )
            .map_err(|e| Error::internal(format!("the rows of segment {s}: {e}")))?,
        };
        Ok(Some((batch, bytes * kept / keep.len().max(1))))
    }
}

/// Segments read at once: fewer when they are large.
fn segments_in_flight(segments: &[(&str, &SegmentBackupInfo)]) -> usize {
    let largest = segments
        .iter()
        .map(|(_, s)| s.size)
        .max()
        .unwrap_or(0)
        .max(1);
    ((READ_AHEAD_BYTES / largest) as usize).clamp(1, SEGMENTS_IN_FLIGHT)
}

/// Which rows of each segment Milvus serves: of the rows sharing a key,
/// the newest (the later one on a tie), unless a delete of the key is
/// newer still.
fn rows_to_keep(segments: &[SegmentKeys]) -> Vec<Vec<bool>> {
    let mut newest: HashMap<&Key, (u64, usize, usize)> = HashMap::new();
    let mut deleted: HashMap<&Key, u64> = HashMap::new();
    for (s, seg) in segments.iter().enumerate() {
        for (r, (key, &ts)) in seg.keys.iter().zip(&seg.timestamps).enumerate() {
            let e = newest.entry(key).or_insert((ts, s, r));
            if ts >= e.0 {
                *e = (ts, s, r);
            }
        }
        for (key, ts) in &seg.deletes {
            let e = deleted.entry(key).or_insert(*ts);
            *e = (*e).max(*ts);
        }
    }
    let mut keep: Vec<Vec<bool>> = segments.iter().map(|s| vec![false; s.keys.len()]).collect();
    for (key, (ts, s, r)) in newest {
        if deleted.get(key).is_none_or(|d| ts >= *d) {
            keep[s][r] = true;
        }
    }
    keep
}

/// Rows of segments grouped into batches of about `limit` bytes, each of
/// one partition: (partition, rows, bytes).
fn batched<S>(inner: S, limit: usize) -> impl Stream<Item = Result<(String, RecordBatch, usize)>>
where
    S: Stream<Item = Result<Option<(String, (RecordBatch, usize))>>> + Unpin,
{
    struct State<S> {
        inner: S,
        partition: String,
        pending: Vec<RecordBatch>,
        bytes: usize,
        ready: std::collections::VecDeque<Result<(String, RecordBatch, usize)>>,
        done: bool,
    }
    impl<S> State<S> {
        /// The pending rows as one batch, made ready.
        fn cut(&mut self) {
            if self.pending.is_empty() {
                return;
            }
            let pending = std::mem::take(&mut self.pending);
            let bytes = std::mem::take(&mut self.bytes);
            let joined = arrow_select::concat::concat_batches(&pending[0].schema(), &pending)
                .map_err(|e| Error::internal(format!("joining rows of segments: {e}")));
            self.ready
                .push_back(joined.map(|b| (self.partition.clone(), b, bytes)));
        }

        fn push(&mut self, partition: String, batch: RecordBatch, bytes: usize, limit: usize) {
            if partition != self.partition {
                self.cut();
                self.partition = partition;
            }
            // A large segment goes in slices of about `limit` bytes.
            let rows = batch.num_rows().max(1);
            let per = (limit * rows / bytes.max(1)).clamp(1, rows);
            for at in (0..batch.num_rows()).step_by(per) {
                let n = per.min(batch.num_rows() - at);
                let slice_bytes = bytes * n / rows;
                if self.bytes + slice_bytes > limit {
                    self.cut();
                }
                self.pending.push(batch.slice(at, n));
                self.bytes += slice_bytes;
            }
            if self.bytes >= limit {
                self.cut();
            }
        }
    }
    let state = State {
        inner,
        partition: String::new(),
        pending: Vec::new(),
        bytes: 0,
        ready: Default::default(),
        done: false,
    };
    futures::stream::unfold(state, move |mut st| async move {
        loop {
            if let Some(out) = st.ready.pop_front() {
                return Some((out, st));
            }
            if st.done {
                return None;
            }
            match st.inner.next().await {
                None => {
                    st.done = true;
                    st.cut();
                }
                Some(Err(e)) => {
                    (st.done, st.pending) = (true, Vec::new());
                    return Some((Err(e), st));
                }
                Some(Ok(None)) => {}
                Some(Ok(Some((partition, (batch, bytes))))) => {
                    st.push(partition, batch, bytes, limit)
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(keys: &[i64], ts: &[u64], deletes: &[(i64, u64)]) -> SegmentKeys {
        SegmentKeys {
            keys: keys.iter().map(|k| Key::Int(*k)).collect(),
            timestamps: ts.to_vec(),
            deletes: deletes.iter().map(|(k, t)| (Key::Int(*k), *t)).collect(),
            pk_values: None,
        }
    }

    #[test]
    fn the_newest_row_of_a_key_is_kept_unless_a_later_delete_removes_it() {
        let segments = [
            // key 1 written twice, key 2 deleted after it was written, key 3
            // deleted before it was written again (an upsert: same ts).
            seg(&[1, 2, 3, 4], &[10, 10, 10, 10], &[(2, 15), (3, 20)]),
            seg(&[1, 3], &[30, 20], &[]),
            // deletes alone
            seg(&[], &[], &[(4, 11)]),
        ];
        let keep = rows_to_keep(&segments);
        assert_eq!(keep[0], vec![false, false, false, false]);
        assert_eq!(keep[1], vec![true, true]);
        assert!(keep[2].is_empty());
    }

    #[tokio::test]
    async fn batches_hold_one_partition_and_about_the_limit() {
        let batch = |n: i64| {
            let col: ArrayRef = Arc::new(arrow_array::Int64Array::from_iter_values(0..n));
            RecordBatch::try_from_iter([("id", col)]).unwrap()
        };
        let rows = vec![
            Ok(Some(("p1".to_string(), (batch(10), 100)))),
            Ok(None),
            Ok(Some(("p1".to_string(), (batch(10), 100)))),
            Ok(Some(("p2".to_string(), (batch(100), 1000)))),
        ];
        let out: Vec<_> = batched(futures::stream::iter(rows), 300)
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
        let shape: Vec<(String, usize)> = out
            .iter()
            .map(|(p, b, _)| (p.clone(), b.num_rows()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("p1".to_string(), 20),
                ("p2".to_string(), 30),
                ("p2".to_string(), 30),
                ("p2".to_string(), 30),
                ("p2".to_string(), 10)
            ]
        );
    }
}
