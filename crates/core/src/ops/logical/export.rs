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

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, Event, EventSink, Operation, Phase, PlannedCollection};
use crate::milvus::Milvus;
use crate::model::meta::CollectionBackupInfo;
use crate::model::meta::Format;
use crate::model::selection::CollectionRef;
use crate::ops::logical::by_range;
pub use crate::ops::logical::export_plan::ExportPlan;
use crate::ops::logical::fields::{fields_of, row_bytes, Kind};
use crate::ops::logical::files::{FileSettings, Location};
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
    announce(plan, events);
    let client = ctx.milvus().await?;
    let written = Mutex::new(Vec::new());
    let result = with_loaded(&*client, plan, events, cancel, async {
        by_range::export_rows(&*client, plan, &location, "", &written, None, events).await
    })
    .await;
    let (files, ts) = match result.map(|r| (r.files, r.ts)) {
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

/// Reads and decodes every row as [`execute`] would, in the same key
/// ranges and streams, and drops them: nothing is written anywhere. Its
/// rate is the query limit an export works within (`export --discard`,
/// bench/logical.sh).
pub async fn read_only(
    ctx: &Context,
    plan: &ExportPlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<ExportStats> {
    let started = Instant::now();
    announce(plan, events);
    let client = ctx.milvus().await?;
    let rows = with_loaded(&*client, plan, events, cancel, async {
        by_range::read_rows(&*client, plan, events).await
    })
    .await?;
    let duration_s = started.elapsed().as_secs_f64();
    Ok(ExportStats {
        format: "none (--discard)".into(),
        rows,
        raw_bytes: rows * row_bytes(&plan.fields, 64) as u64,
        duration_s,
        rows_per_s: rows as f64 / duration_s.max(1e-9),
        loaded_for_export: plan.load_for_export,
        ..Default::default()
    })
}

fn announce(plan: &ExportPlan, events: &dyn EventSink) {
    events.emit(Event::Planned {
        operation: Operation::Export,
        collections: vec![PlannedCollection {
            name: plan.collection.to_string(),
            files: plan.estimated_rows.max(0) as u64,
            ..Default::default()
        }],
    });
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
}
