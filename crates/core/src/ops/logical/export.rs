//! `export`: one collection's rows as Parquet or JSON Lines files plus
//! `schema.json`, over gRPC alone.
//!
//! Rows are read per partition with a primary-key cursor (`pk > last`,
//! `limit` rows in key order, as pymilvus's `QueryIterator` does), every
//! query at one timestamp recorded in `schema.json`. An int64 key's range
//! is split so that several ranges are read at once; each range writes its
//! own files, so memory stays at a few batches whatever the collection's
//! size. A collection that is not loaded is loaded for the export and
//! released afterwards; one that cannot be (no index) is refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, Event, EventSink, Operation, Phase, PlannedCollection};
use crate::milvus::proto::schema::{field_data, scalar_field, FieldData};
use crate::milvus::{Milvus, QueryPage};
use crate::model::meta::CollectionBackupInfo;
use crate::model::meta::{DataFile, Format};
use crate::model::selection::CollectionRef;
use crate::ops::logical::columns::row_count;
use crate::ops::logical::fields::{fields_of, row_bytes, Field, Kind};
use crate::ops::logical::files::{FileSettings, FileWriter, Location};
use crate::ops::logical::read_back::{self, ValueDigest};
use crate::ops::logical::{LogicalMeta, LOGICAL_FORMAT_VERSION, SCHEMA_FILE};
use crate::CancellationToken;

/// Milvus refuses a query `limit` above this.
const MAX_LIMIT: usize = 16_384;
/// Memory an export's streams share for rows in flight, whatever their
/// number (peak RSS stays under 200 MiB).
const EXPORT_MEMORY: usize = 64 << 20;
/// More key ranges at once than this only thin each one's share.
const MAX_STREAMS: usize = 8;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// `coll` or `db.coll`.
    pub collection: String,
    /// A local directory or `s3://bucket/prefix`.
    pub location: String,
    pub format: Format,
    /// Raw bytes per query at most (rows are capped at 16384 per query,
    /// and bytes by each stream's share of the export's memory).
    pub batch_bytes: usize,
    /// Key ranges read at once.
    pub streams: usize,
    pub byte_stream_split: bool,
    /// A new file after this many raw bytes.
    pub file_bytes: u64,
}

impl Default for ExportOptions {
    fn default() -> ExportOptions {
        ExportOptions {
            collection: String::new(),
            location: String::new(),
            format: Format::Parquet,
            batch_bytes: 8 << 20,
            streams: 4,
            byte_stream_split: true,
            file_bytes: FileSettings::default().file_bytes,
        }
    }
}

/// What an export will do.
#[derive(Debug, Clone, Serialize)]
pub struct ExportPlan {
    pub collection: CollectionRef,
    pub location: String,
    pub settings: FileSettings,
    /// Milvus's row count (deleted rows may still be counted).
    pub estimated_rows: i64,
    pub batch_rows: usize,
    pub streams: usize,
    /// Partitions read one by one; empty: the whole collection at once
    /// (a partition-key collection, whose partitions follow the key).
    pub partitions: Vec<String>,
    /// Not loaded: loaded for the export, released afterwards.
    pub load_for_export: bool,
    pub server_version: String,
    /// Every query reads as of the snapshot timestamp (MVCC), not only at
    /// least that recent: Milvus ≥ 2.3 (2.2 refuses travel timestamps
    /// unless it keeps history).
    pub travel: bool,
    #[serde(skip)]
    pub meta: CollectionBackupInfo,
    #[serde(skip)]
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportStats {
    pub format: String,
    pub rows: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub files: usize,
    pub duration_s: f64,
    pub rows_per_s: f64,
    pub snapshot_ts: u64,
    pub loaded_for_export: bool,
    pub location: String,
}

pub async fn plan(ctx: &Context, opts: &ExportOptions) -> Result<ExportPlan> {
    let coll = CollectionRef::parse_checked(&opts.collection)?;
    let client = ctx.milvus().await?;
    let meta = crate::ops::collection::collection_meta(&*client, &coll).await?;
    let fields = fields_of(&meta.schema)?;
    let load_for_export = meta.load_state != "Loaded";
    if let Some(why) = unreadable(&meta) {
        return Err(Error::new(ErrorKind::Conflict, format!("{coll} {why}")));
    }
    let has_partition_key = meta.schema.fields.iter().any(|f| f.is_partition_key);
    let partitions = if has_partition_key {
        Vec::new()
    } else {
        meta.partition_backups
            .iter()
            .map(|p| p.partition_name.clone())
            .collect()
    };
    let (streams, batch_bytes, row_group_bytes) = memory_shares(opts.streams, opts.batch_bytes);
    let batch_rows = (batch_bytes / row_bytes(&fields, 64)).clamp(1, MAX_LIMIT);
    let estimated_rows = client.row_count(&coll.db, &coll.name).await.unwrap_or(0);
    Ok(ExportPlan {
        location: opts.location.clone(),
        settings: FileSettings {
            format: opts.format,
            compression_level: ctx.settings.compression.level,
            file_bytes: opts.file_bytes,
            byte_stream_split: opts.byte_stream_split,
            row_group_bytes,
        },
        estimated_rows,
        batch_rows,
        streams,
        partitions,
        load_for_export,
        server_version: client.version_text().to_string(),
        travel: client.capabilities().reads_at_timestamp(),
        collection: coll,
        meta,
        fields,
    })
}

/// Why Milvus cannot give a collection's rows, with what to do about it;
/// `None` when it can. A collection that is not loaded and has no index
/// cannot be loaded, and rows are only read from a loaded collection.
pub fn unreadable(meta: &CollectionBackupInfo) -> Option<String> {
    if meta.load_state == "Loaded" || !meta.index_infos.is_empty() {
        return None;
    }
    let vector = fields_of(&meta.schema)
        .ok()
        .and_then(|fields| {
            fields
                .into_iter()
                .find(|f| f.kind.vector_bytes().is_some() || f.kind == Kind::SparseFloatVector)
        })
        .map(|f| f.name)
        .unwrap_or_else(|| "its vector field".into());
    Some(format!(
        "is not loaded and has no index, so Milvus cannot load it to read its rows — \
         create an index on `{vector}` (e.g. pymilvus `collection.create_index(\"{vector}\", \
         {{\"index_type\": \"FLAT\", \"metric_type\": \"L2\"}})`) and try again"
    ))
}

/// The folder of a partition's files. pandas and pyarrow skip folders
/// whose names start with `_` (`_default`), so those get `part-` in
/// front (Milvus names have no `-`, so no other partition has that name).
fn partition_dir(partition: Option<&str>) -> String {
    match partition {
        None => "all".to_string(),
        Some(p) if p.starts_with('_') => format!("part-{p}"),
        Some(p) => p.to_string(),
    }
}

/// Exports as planned: data files, then `schema.json` (written last, so a
/// directory with one is complete). Files of a failed or cancelled export
/// are deleted.
pub async fn execute(
    ctx: &Context,
    plan: &ExportPlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<ExportStats> {
    let started = Instant::now();
    let location = Location::open(ctx.backup_storage.spec(), &plan.location)?;
    events.emit(Event::Planned {
        operation: Operation::Export,
        collections: vec![PlannedCollection {
            name: plan.collection.to_string(),
            files: plan.estimated_rows.max(0) as u64,
            ..Default::default()
        }],
    });
    let client = ctx.milvus().await?;
    let written = Mutex::new(Vec::new());
    let result = with_loaded(&*client, plan, events, cancel, async {
        export_rows(&*client, plan, &location, "", &written, events).await
    })
    .await;
    let (files, ts) = match result {
        Ok(r) => r,
        Err(e) => {
            let paths = std::mem::take(&mut *written.lock().expect("written"));
            for p in paths {
                let _ = location.storage.delete(&p).await;
            }
            return Err(e);
        }
    };
    let meta = LogicalMeta {
        format_version: LOGICAL_FORMAT_VERSION,
        format: plan.settings.format,
        collection: plan.meta.clone(),
        snapshot_ts: ts,
        server_version: plan.server_version.clone(),
        rows: files.iter().map(|f| f.rows).sum(),
        files,
    };
    location
        .storage
        .write(
            SCHEMA_FILE,
            serde_json::to_vec_pretty(&meta)
                .map_err(|e| Error::internal(format!("schema.json: {e}")))?,
        )
        .await?;
    Ok(stats(&meta, plan, started, &location.display))
}

fn stats(meta: &LogicalMeta, plan: &ExportPlan, started: Instant, location: &str) -> ExportStats {
    let duration_s = started.elapsed().as_secs_f64();
    ExportStats {
        format: meta.format.to_string(),
        rows: meta.rows,
        raw_bytes: meta.files.iter().map(|f| f.raw_bytes).sum(),
        stored_bytes: meta.files.iter().map(|f| f.size).sum(),
        files: meta.files.len(),
        duration_s,
        rows_per_s: meta.rows as f64 / duration_s.max(1e-9),
        snapshot_ts: meta.snapshot_ts,
        loaded_for_export: plan.load_for_export,
        location: location.to_string(),
    }
}

/// Runs `work` with the collection loaded: loads it first when the plan
/// says so, and releases it afterwards whatever happened, a load that
/// failed or was cancelled half-way included.
pub(crate) async fn with_loaded<T>(
    client: &dyn Milvus,
    plan: &ExportPlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    loaded_for(
        client,
        &plan.collection,
        plan.load_for_export,
        events,
        cancel,
        work,
    )
    .await
}

pub(crate) async fn loaded_for<T>(
    client: &dyn Milvus,
    c: &CollectionRef,
    load: bool,
    events: &dyn EventSink,
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let result = if load {
        events.note(format!(
            "{c} is not loaded: loading it for the export (it is released afterwards)"
        ));
        events.phase(Phase::Loading {
            collection: c.to_string(),
        });
        match crate::cancellable(cancel, crate::ops::collection::load_and_wait(client, c)).await {
            Ok(()) => crate::cancellable(cancel, work).await,
            Err(e) => Err(e),
        }
    } else {
        crate::cancellable(cancel, work).await
    };
    if load {
        match client.release_collection(&c.db, &c.name).await {
            Ok(()) => events.note(format!("released {c} again")),
            Err(e) => events.warn(format!(
                "{c} was loaded for the export and could not be released: {e}"
            )),
        }
    }
    result
}

/// A primary key value, as the cursor of a key range.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Int(i64),
    Str(String),
}

/// One unit of parallel work: a partition (or the whole collection) and an
/// int64 key range (inclusive), or all keys.
#[derive(Debug, Clone)]
struct Unit {
    index: usize,
    partition: Option<String>,
    range: Option<(i64, i64)>,
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The filter of the next page: after `last`, within the unit's range.
/// Every int64 literal is one Milvus's parser reads: it parses the digits
/// after a minus as a positive int64, so -2^63 is never written (`pk >
/// -2^63` is `pk >= -2^63+1`, `pk <= -2^63` is `pk < -2^63+1`, and a range
/// from -2^63 has no lower bound).
fn page_expr(pk: &str, unit: &Unit, last: &Option<Key>, varchar: bool) -> String {
    let above = |v: i64| match v {
        i64::MIN => format!("{pk} >= {}", i64::MIN + 1),
        v => format!("{pk} > {v}"),
    };
    let at_most = |v: i64| match v {
        i64::MIN => format!("{pk} < {}", i64::MIN + 1),
        v => format!("{pk} <= {v}"),
    };
    match (last, unit.range) {
        (Some(Key::Str(s)), _) => format!("{pk} > {}", quote(s)),
        (Some(Key::Int(v)), Some((_, hi))) => format!("{} && {}", above(*v), at_most(hi)),
        (Some(Key::Int(v)), None) => above(*v),
        (None, Some((i64::MIN, hi))) => at_most(hi),
        (None, Some((lo, hi))) => format!("{pk} >= {lo} && {}", at_most(hi)),
        (None, None) if varchar => format!("{pk} >= \"\""),
        // every key, -2^63 included
        (None, None) => at_most(i64::MAX),
    }
}

/// The largest key of a page (its last row, in key order).
fn max_key(cols: &[FieldData], pk: &str) -> Option<Key> {
    let col = cols.iter().find(|c| c.field_name == pk)?;
    match &col.field {
        Some(field_data::Field::Scalars(s)) => match &s.data {
            Some(scalar_field::Data::LongData(a)) => a.data.iter().max().map(|v| Key::Int(*v)),
            Some(scalar_field::Data::StringData(a)) => {
                a.data.iter().max().map(|v| Key::Str(v.clone()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Streams, bytes per query and Parquet row-group bytes within the
/// export's memory: each stream holds a query answer about three times
/// (on the wire, decoded, as Arrow), a row group in progress and flushed,
/// and an upload part; its share of the budget bounds the first two.
fn memory_shares(streams: usize, batch_bytes: usize) -> (usize, usize, usize) {
    let streams = streams.clamp(1, MAX_STREAMS);
    let share = EXPORT_MEMORY / streams;
    let batch_bytes = batch_bytes.min(share / 8).max(256 << 10);
    let row_group_bytes = (share / 4).clamp(1 << 20, 16 << 20);
    (streams, batch_bytes, row_group_bytes)
}

/// Hybrid timestamp of now (physical milliseconds << 18).
fn hybrid_now() -> u64 {
    (chrono::Utc::now().timestamp_millis() as u64) << 18
}

/// Reads every row into files under `prefix`; returns the files and the
/// timestamp the rows were read at. Each started file's path is pushed to
/// `written`, so a caller can remove them after a failure.
pub(crate) async fn export_rows(
    client: &dyn Milvus,
    plan: &ExportPlan,
    location: &Location,
    prefix: &str,
    written: &Mutex<Vec<String>>,
    events: &dyn EventSink,
) -> Result<(Vec<DataFile>, u64)> {
    let c = &plan.collection;
    let pk = plan
        .fields
        .iter()
        .find(|f| f.is_primary)
        .ok_or_else(|| Error::invalid_input(format!("{c} has no primary key")))?;
    let varchar = pk.kind == Kind::VarChar;
    // The first key, strongly consistent; its session timestamp (or now)
    // is the one every later query reads at.
    let probe = |expr: String, ts: u64| QueryPage {
        expr,
        output_fields: vec![pk.name.clone()],
        partitions: Vec::new(),
        limit: 1,
        ts,
        travel: plan.travel,
    };
    let first_expr = page_expr(
        &pk.name,
        &Unit {
            index: 0,
            partition: None,
            range: None,
        },
        &None,
        varchar,
    );
    let (first, session_ts) = client
        .query_page(&c.db, &c.name, &probe(first_expr, 0))
        .await?;
    let ts = if session_ts > 0 {
        session_ts
    } else {
        hybrid_now()
    };
    let ranges = match max_key(&first, &pk.name) {
        Some(Key::Int(min))
            if plan.streams > 1 && plan.estimated_rows as usize > 2 * plan.batch_rows =>
        {
            let max = max_int_key(client, c, pk, min, ts).await?;
            split(
                min,
                max,
                plan.streams
                    .min(plan.estimated_rows as usize / plan.batch_rows)
                    .max(1),
            )
        }
        _ => vec![None],
    };
    let parts: Vec<Option<String>> = if plan.partitions.is_empty() {
        vec![None]
    } else {
        plan.partitions.iter().cloned().map(Some).collect()
    };
    let units: Vec<Unit> = parts
        .iter()
        .flat_map(|p| ranges.iter().map(move |r| (p.clone(), *r)))
        .enumerate()
        .map(|(index, (partition, range))| Unit {
            index,
            partition,
            range,
        })
        .collect();
    events.phase(Phase::Exporting {
        collection: c.to_string(),
        rows: plan.estimated_rows.max(0) as u64,
        streams: plan.streams.min(units.len()),
    });
    let rows = AtomicU64::new(0);
    let read_back_us = AtomicU64::new(0);
    let streams = Streams {
        client,
        plan,
        location,
        prefix,
        ts,
        written,
        events,
        total: &rows,
        read_back: &read_back_us,
    };
    let files: Vec<Vec<DataFile>> = futures::stream::iter(units)
        .map(|u| export_unit(streams, u))
        .buffer_unordered(plan.streams)
        .try_collect()
        .await?;
    let mut files: Vec<DataFile> = files.into_iter().flatten().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    events.note(format!(
        "{c}: read back {} data file(s) as a restore reads them, rows and values as written ({:.2} s)",
        files.len(),
        read_back_us.load(Ordering::Relaxed) as f64 / 1e6
    ));
    check_count(
        client,
        c,
        ts,
        plan.travel,
        rows.load(Ordering::Relaxed),
        (!varchar).then_some(pk.name.as_str()),
        events,
    )
    .await?;
    Ok((files, ts))
}

/// Compares the rows written with Milvus's `count(*)` at the same
/// timestamp, where the server counts (2.3+).
async fn check_count(
    client: &dyn Milvus,
    c: &CollectionRef,
    ts: u64,
    travel: bool,
    written: u64,
    int_pk: Option<&str>,
    events: &dyn EventSink,
) -> Result<()> {
    let counted = count(client, c, ts, travel, "").await;
    match counted {
        Some(n) if n as u64 != written => {
            if let Some(pk) = int_pk {
                let at_max = count(client, c, ts, travel, &format!("{pk} == {}", i64::MAX)).await;
                if at_max.is_some_and(|m| m > 0 && written + m as u64 == n as u64) {
                    return Err(Error::unsupported(format!(
                        "{c} has a row keyed {} (the largest int64), which Milvus counts but \
                         returns to no query, so a logical backup cannot read it — back {c} up with \
                         --format binlog, or give that row another key",
                        i64::MAX
                    )));
                }
            }
            Err(Error::remote(format!(
                "the export of {c} read {written} rows but Milvus counts {n} at the same timestamp — \
                 the key-order reads missed rows; nothing was kept"
            )))
        }
        Some(_) => Ok(()),
        None => {
            events.note(format!(
                "{c}: the server does not count rows; {written} rows exported"
            ));
            Ok(())
        }
    }
}

/// Milvus's `count(*)` of the rows matching `expr` at `ts`; `None` where
/// the server does not count.
async fn count(
    client: &dyn Milvus,
    c: &CollectionRef,
    ts: u64,
    travel: bool,
    expr: &str,
) -> Option<i64> {
    let page = QueryPage {
        expr: expr.to_string(),
        output_fields: vec!["count(*)".into()],
        partitions: Vec::new(),
        limit: 0,
        ts,
        travel,
    };
    match client.query_page(&c.db, &c.name, &page).await {
        Ok((cols, _)) => match cols.first().and_then(|c| c.field.as_ref()) {
            Some(field_data::Field::Scalars(s)) => match &s.data {
                Some(scalar_field::Data::LongData(a)) => a.data.first().copied(),
                _ => None,
            },
            _ => None,
        },
        Err(_) => None,
    }
}

/// The largest int64 key at or above `min`: a binary search of
/// `pk >= mid` probes (64 at most).
async fn max_int_key(
    client: &dyn Milvus,
    c: &CollectionRef,
    pk: &Field,
    min: i64,
    ts: u64,
) -> Result<i64> {
    let (mut lo, mut hi) = (min, i64::MAX);
    while lo < hi {
        let mid = lo + ((hi as i128 - lo as i128 + 1) / 2) as i64;
        let page = QueryPage {
            expr: format!("{} >= {mid}", pk.name),
            output_fields: vec![pk.name.clone()],
            partitions: Vec::new(),
            limit: 1,
            ts,
            travel: false,
        };
        let (cols, _) = client.query_page(&c.db, &c.name, &page).await?;
        if row_count(&cols) > 0 {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(lo)
}

/// `[min, max]` in `n` inclusive ranges of equal width.
fn split(min: i64, max: i64, n: usize) -> Vec<Option<(i64, i64)>> {
    let (min128, max128) = (min as i128, max as i128);
    let width = ((max128 - min128 + 1) / n as i128).max(1);
    let mut out = Vec::new();
    let mut lo = min128;
    for i in 0..n {
        if lo > max128 {
            break;
        }
        let hi = if i + 1 == n {
            max128
        } else {
            (lo + width - 1).min(max128)
        };
        out.push(Some((lo as i64, hi as i64)));
        lo = hi + 1;
    }
    out
}

/// What the export streams of one collection share: where they read and
/// write, the timestamp every query reads at, the files written so far
/// (removed on failure) and the rows exported.
#[derive(Clone, Copy)]
struct Streams<'a> {
    client: &'a dyn Milvus,
    plan: &'a ExportPlan,
    location: &'a Location,
    prefix: &'a str,
    ts: u64,
    written: &'a Mutex<Vec<String>>,
    events: &'a dyn EventSink,
    total: &'a AtomicU64,
    /// Microseconds spent reading files back.
    read_back: &'a AtomicU64,
}

/// One stream: the rows of one partition and key range, into its own files.
async fn export_unit(streams: Streams<'_>, unit: Unit) -> Result<Vec<DataFile>> {
    let Streams {
        client,
        plan,
        location,
        prefix,
        ts,
        written,
        events,
        total,
        ..
    } = streams;
    let c = &plan.collection;
    let pk = plan.fields.iter().find(|f| f.is_primary).expect("checked");
    let varchar = pk.kind == Kind::VarChar;
    let output_fields: Vec<String> = plan.fields.iter().map(|f| f.name.clone()).collect();
    let per_row = row_bytes(&plan.fields, 64) as u64;
    let dir = partition_dir(unit.partition.as_deref());
    let ext = plan.settings.format.extension();
    let mut last: Option<Key> = None;
    // The file being written and the digest of the rows written into it.
    let mut writer: Option<(FileWriter, ValueDigest)> = None;
    let mut files = Vec::new();
    let mut seq = 0;
    loop {
        let page = QueryPage {
            expr: page_expr(&pk.name, &unit, &last, varchar),
            output_fields: output_fields.clone(),
            partitions: unit.partition.iter().cloned().collect(),
            limit: plan.batch_rows as u64,
            ts,
            travel: plan.travel,
        };
        let (cols, _) = client.query_page(&c.db, &c.name, &page).await?;
        let n = row_count(&cols);
        if n == 0 {
            break;
        }
        last = max_key(&cols, &pk.name);
        if writer.is_none() {
            let path = format!("{prefix}{dir}/part-{:03}-{seq:05}.{ext}", unit.index);
            seq += 1;
            written.lock().expect("written").push(path.clone());
            let partition = unit.partition.clone().unwrap_or_default();
            writer = Some((
                FileWriter::create(location, &path, &partition, &plan.fields, plan.settings)
                    .await?,
                ValueDigest::new(&plan.fields),
            ));
        }
        let (w, digest) = writer.as_mut().expect("just made");
        let raw = per_row * n as u64;
        digest.add(&plan.fields, &cols, n)?;
        w.write(&plan.fields, &cols, n, raw).await?;
        total.fetch_add(n as u64, Ordering::Relaxed);
        events.emit(Event::RowsDone {
            collection: 0,
            rows: n as u64,
            bytes: raw,
        });
        if w.is_full() {
            let (w, digest) = writer.take().expect("open");
            files.push(close_and_check(streams, w, digest).await?);
        }
        if last.is_none() {
            return Err(Error::remote(format!(
                "Milvus's answer for {c} has no primary key column `{}`",
                pk.name
            )));
        }
    }
    if let Some((w, digest)) = writer {
        files.push(close_and_check(streams, w, digest).await?);
    }
    Ok(files)
}

/// Closes a data file, then reads it back as a restore would and checks
/// its rows and values against `digest` (what was written into it).
async fn close_and_check(
    streams: Streams<'_>,
    w: FileWriter,
    digest: ValueDigest,
) -> Result<DataFile> {
    let file = w.finish().await?;
    let collection = streams.plan.collection.to_string();
    let seconds = read_back::check(
        streams.location,
        read_back::Written {
            file: &file,
            digest,
            fields: &streams.plan.fields,
            collection: &collection,
        },
    )
    .await?;
    streams
        .read_back
        .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `work` through [`loaded_for`] on the fake; its answer and the
    /// collections released.
    async fn run_loaded(
        kit: &crate::testkit::Kit,
        load: bool,
        cancel: &CancellationToken,
        work: impl std::future::Future<Output = Result<()>>,
    ) -> (Result<()>, Vec<String>) {
        let c = CollectionRef::parse("default.c");
        let r = loaded_for(
            &*kit.milvus,
            &c,
            load,
            &crate::events::Discard,
            cancel,
            work,
        )
        .await;
        (r, kit.milvus.state.lock().unwrap().released.clone())
    }

    #[tokio::test]
    async fn a_load_cancelled_half_way_is_released() {
        let kit = crate::testkit::Kit::new();
        let cancel = CancellationToken::new();
        let later = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            later.cancel();
        });
        // The fake never reports the collection loaded: the load waits
        // until the cancel.
        let (r, released) = run_loaded(&kit, true, &cancel, async { Ok(()) }).await;
        assert_eq!(r.unwrap_err().kind(), crate::error::ErrorKind::Cancelled);
        assert_eq!(released, vec!["default.c"]);
    }

    #[tokio::test]
    async fn a_failed_export_releases_what_it_loaded_and_leaves_loaded_ones() {
        let kit = crate::testkit::Kit::new();
        (kit.milvus.state.lock().unwrap().served).insert("default.c".into(), 0);
        let cancel = CancellationToken::new();
        let fail = || async { Err(Error::remote("export failed")) };
        let (r, released) = run_loaded(&kit, true, &cancel, fail()).await;
        assert!(r.is_err());
        assert_eq!(released, vec!["default.c"]);
        // A collection that was loaded before is not released.
        let (r, released) = run_loaded(&kit, false, &cancel, fail()).await;
        assert!(r.is_err());
        assert_eq!(released.len(), 1);
    }

    #[test]
    fn streams_share_the_memory_budget_whatever_their_number() {
        for (asked, batch) in [(1, 8 << 20), (4, 8 << 20), (8, 64 << 20), (100, 8 << 20)] {
            let (streams, b, rg) = memory_shares(asked, batch);
            assert!((1..=MAX_STREAMS).contains(&streams));
            // Three copies of a query answer and two row groups per stream
            // fit the budget.
            assert!(
                streams * (3 * b + 2 * rg) <= EXPORT_MEMORY,
                "{asked}: {b} {rg}"
            );
        }
        assert_eq!(memory_shares(100, 8 << 20).0, MAX_STREAMS);
        // A small ask is kept.
        assert_eq!(memory_shares(4, 1 << 20).1, 1 << 20);
    }

    #[test]
    fn ranges_cover_the_keys_once() {
        assert_eq!(
            split(0, 9, 3),
            vec![Some((0, 2)), Some((3, 5)), Some((6, 9))]
        );
        assert_eq!(split(5, 5, 4), vec![Some((5, 5))]);
        let r = split(i64::MIN + 1, i64::MAX, 2);
        assert_eq!(r[0].unwrap().0, i64::MIN + 1);
        assert_eq!(r[1].unwrap().1, i64::MAX);
        assert_eq!(r[0].unwrap().1 + 1, r[1].unwrap().0);
    }

    /// Whether a key matches a filter `page_expr` writes (`pk OP v`
    /// joined by `&&`), reading each literal as Milvus's parser does: the
    /// digits after a minus as a positive int64, so -2^63 fails.
    fn matches(expr: &str, key: i64) -> bool {
        expr.split(" && ").all(|cond| {
            let mut it = cond.split_whitespace();
            let (_, op, lit) = (it.next(), it.next().unwrap(), it.next().unwrap());
            let v = match lit.strip_prefix('-') {
                Some(digits) => -digits.parse::<i64>().expect("Milvus parses the literal"),
                None => lit.parse::<i64>().expect("Milvus parses the literal"),
            };
            match op {
                ">" => key > v,
                ">=" => key >= v,
                "<" => key < v,
                "<=" => key <= v,
                _ => panic!("operator {op}"),
            }
        })
    }

    /// Keys read by paging each of `n` ranges of [min, max] in `batch`
    /// rows, as `export_unit` does (the smallest `batch` keys that match,
    /// then after the largest of them).
    fn read_all(keys: &[i64], n: usize, batch: usize) -> Vec<i64> {
        let (min, max) = (*keys.iter().min().unwrap(), *keys.iter().max().unwrap());
        let ranges = if n == 0 {
            vec![None]
        } else {
            split(min, max, n)
        };
        let mut out = Vec::new();
        for range in ranges {
            let unit = Unit {
                index: 0,
                partition: None,
                range,
            };
            let mut last = None;
            loop {
                let expr = page_expr("id", &unit, &last, false);
                let mut page: Vec<i64> = keys
                    .iter()
                    .copied()
                    .filter(|k| matches(&expr, *k))
                    .collect();
                page.sort();
                page.truncate(batch);
                let Some(&top) = page.last() else { break };
                out.extend(page);
                last = Some(Key::Int(top));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn key_ranges_read_every_int64_key_once_at_the_limits() {
        let edges = [
            i64::MIN,
            i64::MIN + 1,
            i64::MIN + 2,
            -1,
            0,
            1,
            i64::MAX - 1,
            i64::MAX,
        ];
        let mut keys: Vec<i64> = edges.to_vec();
        keys.extend((-50..50).map(|k| k * 1_000_003));
        keys.sort();
        keys.dedup();
        for n in [0, 1, 2, 3, 7, 8] {
            for batch in [1, 2, 5, 1000] {
                assert_eq!(
                    read_all(&keys, n, batch),
                    keys,
                    "{n} ranges, {batch} per page"
                );
            }
        }
        // Only the limits, and a single key at each.
        for keys in [
            vec![i64::MIN, i64::MAX],
            vec![i64::MIN],
            vec![i64::MAX],
            vec![i64::MIN + 1, i64::MAX - 1],
        ] {
            for n in [0, 1, 2, 8] {
                assert_eq!(read_all(&keys, n, 1), keys, "{keys:?} in {n} ranges");
            }
        }
    }

    #[test]
    fn ranges_split_the_whole_int64_domain_without_gaps_or_overlaps() {
        for n in 1..=8 {
            let r: Vec<(i64, i64)> = split(i64::MIN, i64::MAX, n)
                .into_iter()
                .map(Option::unwrap)
                .collect();
            assert_eq!(r.len(), n);
            assert_eq!(r[0].0, i64::MIN);
            assert_eq!(r[n - 1].1, i64::MAX);
            for w in r.windows(2) {
                assert!(w[0].0 <= w[0].1);
                assert_eq!(w[0].1 + 1, w[1].0, "{n}: {w:?}");
            }
        }
        assert_eq!(
            split(i64::MAX, i64::MAX, 3),
            vec![Some((i64::MAX, i64::MAX))]
        );
        assert_eq!(
            split(i64::MIN, i64::MIN, 3),
            vec![Some((i64::MIN, i64::MIN))]
        );
        assert_eq!(
            split(i64::MAX - 2, i64::MAX, 8),
            vec![
                Some((i64::MAX - 2, i64::MAX - 2)),
                Some((i64::MAX - 1, i64::MAX - 1)),
                Some((i64::MAX, i64::MAX))
            ]
        );
    }

    #[test]
    fn page_filters_never_write_an_int64_milvus_cannot_parse() {
        let u = |range| Unit {
            index: 0,
            partition: None,
            range,
        };
        let all = u(None);
        assert_eq!(
            page_expr("id", &all, &None, false),
            "id <= 9223372036854775807"
        );
        assert_eq!(
            page_expr("id", &all, &Some(Key::Int(i64::MIN)), false),
            "id >= -9223372036854775807"
        );
        assert_eq!(
            page_expr("id", &u(Some((i64::MIN, i64::MIN))), &None, false),
            "id < -9223372036854775807"
        );
        assert_eq!(
            page_expr(
                "id",
                &u(Some((i64::MIN, 5))),
                &Some(Key::Int(i64::MIN)),
                false
            ),
            "id >= -9223372036854775807 && id <= 5"
        );
        // Varchar keys: quotes and backslashes escaped, unicode and empty as they are.
        assert_eq!(
            page_expr("k", &all, &Some(Key::Str(String::new())), true),
            "k > \"\""
        );
        assert_eq!(
            page_expr("k", &all, &Some(Key::Str("\\\"'😀é".into())), true),
            "k > \"\\\\\\\"'😀é\""
        );
    }

    #[test]
    fn page_filters_continue_after_the_last_key() {
        let u = Unit {
            index: 0,
            partition: None,
            range: Some((10, 20)),
        };
        assert_eq!(page_expr("id", &u, &None, false), "id >= 10 && id <= 20");
        assert_eq!(
            page_expr("id", &u, &Some(Key::Int(12)), false),
            "id > 12 && id <= 20"
        );
        let all = Unit { range: None, ..u };
        assert_eq!(page_expr("k", &all, &None, true), "k >= \"\"");
        assert_eq!(
            page_expr("k", &all, &Some(Key::Str("a\"b".into())), true),
            "k > \"a\\\"b\""
        );
    }
}
