//! `migrate`: moves a collection into another Milvus (any version, or the
//! same one under another name) while it keeps taking writes.
//!
//! Every run is one round of reconciliation: the source's keys are split
//! into ranges ([`crate::ops::logical::ranges`]), both sides digest each
//! range, and for each range that differs the target is brought to the
//! source — a range the target has no row of is streamed over in pages
//! (the first run's copy), any other is read row by row on both sides:
//! keys only on the target are deleted, rows missing or different on the
//! target are deleted and inserted again from the source. The first run
//! creates the target like a restore (schema, partitions, indexes,
//! properties, after the same preflight) and loads it.
//!
//! Safety: nothing on the source is ever changed, and a target collection
//! is only written when this tool created it for this source (a collection
//! property says so) or `reconcile_existing` is given. A run stopped at any
//! point leaves a state the next run completes: it compares again.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::proto::schema::FieldData;
use crate::model::meta::{CollectionBackupInfo, KeyValue};
use crate::model::selection::CollectionRef;
use crate::ops::collection::{self, collection_meta};
use futures::{StreamExt, TryStreamExt};

use crate::ops::compare::{
    common_fields, compare_range, live, named, travels, units, KeyDiff, Side,
};
use crate::ops::logical::digest::RangeDigest;
use crate::ops::logical::fields::{fields_of, Field};
use crate::ops::logical::import::insert_with_retry;
use crate::ops::logical::ranges::{in_expr, Key, Live, PartRanges};
use crate::ops::preflight;

/// The collection property that marks a target this tool created, with
/// the source it migrates (`db.collection`).
pub const MARK: &str = "milvus_backup.migrated_from";

/// Keys per delete or per query of rows by key.
const KEYS_PER_CALL: usize = 1000;

#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// `coll` or `db.coll` on the source Milvus.
    pub source: String,
    /// On the target Milvus; the source's name when absent.
    pub target: Option<String>,
    /// Bring an existing collection this tool did not create to the
    /// source's rows (only with `target` named).
    pub reconcile_existing: bool,
    /// Ranges worked on at once on each side.
    pub streams: usize,
    /// Rows per key range, about.
    pub range_rows: usize,
}

/// What one round did, and what it left.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateStats {
    pub source: String,
    pub target: String,
    /// The target was created by this run.
    pub created: bool,
    pub rows_source: u64,
    pub rows_target: u64,
    pub ranges: usize,
    /// Ranges whose digests differed at the start of the round.
    pub ranges_differing: usize,
    pub rows_copied: u64,
    pub rows_deleted: u64,
    /// The repaired ranges compared again equal: the target holds the
    /// source's rows as of this round's reads.
    pub identical: bool,
    /// Ranges that still differ after the round (writes meanwhile).
    pub ranges_still_differing: usize,
    pub duration_s: f64,
}

/// One round: creates the target when missing, then reconciles it.
pub async fn round(
    a: &Context,
    b: &Context,
    opts: &MigrateOptions,
    events: &dyn EventSink,
) -> Result<MigrateStats> {
    let started = Instant::now();
    let (source, target) = named(&opts.source, opts.target.as_deref())?;
    let (ca, cb) = (a.milvus().await?, b.milvus().await?);
    let (sa, sb) = (Side::of(&*ca, source), Side::of(&*cb, target));
    if std::ptr::eq(a, b) && sa.collection == sb.collection {
        return Err(Error::invalid_input(
            "migrate needs another Milvus (--to-config FILE) or another collection (--target db.coll)",
        ));
    }
    let meta = collection_meta(sa.client, &sa.collection).await?;
    if let Some(pk) = meta.schema.fields.iter().find(|f| f.is_primary_key) {
        if pk.auto_id || meta.schema.auto_id {
            return Err(Error::unsupported(format!(
                "{} makes its own primary keys (autoID): a migration keeps keys to reconcile by them, and a target that took client keys would refuse the application's inserts afterwards — move it with a backup and restore, then check with `compare --ignore-key`",
                sa.collection
            )));
        }
    }
    let mut out = MigrateStats {
        source: sa.collection.to_string(),
        target: sb.collection.to_string(),
        ..Default::default()
    };
    if let Some(why) = crate::ops::logical::export::unreadable(&meta) {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("{} {why}", sa.collection),
        ));
    }
    out.created = prepare_target(&sa, &sb, &meta, opts, events).await?;
    // A source that is not loaded is loaded for the round and released
    // afterwards; the round itself is never cut short.
    let load = meta.load_state != "Loaded";
    let work = reconcile(&sa, &sb, &meta, opts, events, &mut out);
    let never = crate::CancellationToken::new();
    crate::ops::logical::export::loaded_for(sa.client, &sa.collection, load, events, &never, work)
        .await?;
    out.duration_s = started.elapsed().as_secs_f64();
    Ok(out)
}

/// Creates the target like a restore when it does not exist (true), or
/// checks that this tool may write into the existing one.
async fn prepare_target(
    a: &Side<'_>,
    b: &Side<'_>,
    meta: &CollectionBackupInfo,
    opts: &MigrateOptions,
    events: &dyn EventSink,
) -> Result<bool> {
    let t = &b.collection;
    let exists = b.client.list_databases().await?.contains(&t.db)
        && b.client.list_collections(&t.db).await?.contains(&t.name);
    let mark = a.collection.to_string();
    if exists {
        let there = collection_meta(b.client, t).await?;
        let ours = there
            .properties
            .iter()
            .any(|p| p.key == MARK && p.value == mark);
        let allowed = ours || (opts.reconcile_existing && opts.target.is_some());
        if !allowed {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{t} exists on the target and was not created by a migration of {mark}: nothing was changed — name another --target, or name it with --target and add --reconcile-existing to bring its rows to the source's"
                ),
            ));
        }
        if there.load_state != "Loaded" {
            collection::load_and_wait(b.client, t).await?;
        }
        return Ok(false);
    }
    let caps = b.client.capabilities();
    if let Some(u) = preflight::check(&caps, &a.collection, &meta.schema) {
        let server = format!("{} ({})", b.client.address(), b.client.version_text());
        return Err(preflight::refusal(&server, &[u], 0));
    }
    if t.db != "default" {
        collection::ensure_database(b.client, &t.db, &[]).await?;
    }
    let mut like = meta.clone();
    like.properties.push(KeyValue {
        key: MARK.into(),
        value: mark,
    });
    crate::ops::logical::import::complete_schema(&mut like.schema);
    let created = AtomicBool::new(false);
    collection::create_like(b.client, &like, t, false, &created, events).await?;
    events.note(format!(
        "created {t} on {} like {} (schema, partitions, properties)",
        b.client.version_text(),
        a.collection
    ));
    collection::create_indexes(b.client, meta, t, false, 0, events).await?;
    events.phase(Phase::Loading {
        collection: t.to_string(),
    });
    collection::load_and_wait(b.client, t).await.map_err(|e| {
        Error::new(
            e.kind(),
            format!("{t} was created but cannot be loaded, so its rows cannot be compared: {e}"),
        )
    })?;
    Ok(true)
}

/// Digests both sides and repairs the target's differing ranges.
async fn reconcile(
    a: &Side<'_>,
    b: &Side<'_>,
    meta: &CollectionBackupInfo,
    opts: &MigrateOptions,
    events: &dyn EventSink,
    out: &mut MigrateStats,
) -> Result<()> {
    let fa = fields_of(&meta.schema)?;
    let fb = fields_of(&collection_meta(b.client, &b.collection).await?.schema)?;
    let (fields, differences) = common_fields(&fa, &fb);
    if let Some(d) = differences.first() {
        return Err(Error::invalid_input(format!(
            "{} and {} differ in their schemas ({d}): rows cannot be moved between them",
            a.collection, b.collection
        )));
    }
    let pkey = meta.schema.fields.iter().any(|f| f.is_partition_key);
    let partitions: Vec<String> = (meta.partition_backups.iter())
        .map(|p| p.partition_name.clone())
        .collect();
    let la = live(a, &fields, false).at_snapshot(travels(a)).await?;
    let lb = live(b, &fields, false).at_snapshot(travels(b)).await?;
    let mut all = Vec::new();
    for u in units(pkey, &partitions) {
        all.push(la.boundaries(u.as_deref(), opts.range_rows.max(1)).await?);
    }
    out.ranges = all.iter().map(PartRanges::count).sum();
    events.phase(Phase::Comparing {
        source: out.source.clone(),
        target: out.target.clone(),
        ranges: out.ranges,
        rows: (a
            .client
            .row_count(&a.collection.db, &a.collection.name)
            .await)
            .unwrap_or(0)
            .max(0) as u64,
    });
    let streams = opts.streams.max(1);
    // Digests first; then the differing ranges repaired, several at once.
    // Ranges to repair, with the keys that differ (none: stream it whole).
    let mut differing: Vec<(&PartRanges, usize, Option<KeyDiff>, u64)> = Vec::new();
    for r in &all {
        if out.created {
            // A target made by this run has no row: every range is streamed.
            differing.extend((0..r.count()).map(|i| (r, i, None, 0)));
            continue;
        }
        let mut outcomes = futures::stream::iter(0..r.count())
            .map(|i| compare_range(&la, &lb, r, i, false))
            .buffered(streams)
            .enumerate();
        while let Some((i, o)) = outcomes.next().await {
            let o = o?;
            out.rows_source += o.a.rows;
            out.rows_target += o.b.rows;
            events.emit(Event::RowsDone {
                collection: 0,
                rows: o.a.rows,
                bytes: 0,
            });
            if let Some(d) = o.diff {
                let keys = (o.b.rows > 0).then_some(d);
                differing.push((r, i, keys, o.b.rows));
            }
        }
    }
    out.ranges_differing = differing.len();
    let repairs: Vec<(u64, u64)> = futures::stream::iter(&mut differing)
        .map(|(r, i, keys, _)| repair(&la, &lb, r, *i, keys.take()))
        .buffer_unordered(streams)
        .try_collect()
        .await?;
    for (copied, deleted) in repairs {
        out.rows_copied += copied;
        out.rows_deleted += deleted;
    }
    if differing.is_empty() {
        out.identical = true;
        return Ok(());
    }
    // The repaired ranges again, both sides as of now: what still differs
    // was written meanwhile (the lag).
    let la = la.at_snapshot(travels(a)).await?;
    let lb = lb.at_snapshot(travels(b)).await?;
    let again: Vec<(RangeDigest, RangeDigest, u64)> = futures::stream::iter(&differing)
        .map(|&(r, i, _, before)| {
            let (la, lb) = (&la, &lb);
            async move {
                let (x, y) = futures::try_join!(range_digest(la, r, i), range_digest(lb, r, i))?;
                Ok::<_, Error>((x, y, before))
            }
        })
        .buffer_unordered(streams)
        .try_collect()
        .await?;
    for (x, y, before) in again {
        if out.created {
            out.rows_source += x.rows;
        }
        out.rows_target = out.rows_target - before + y.rows;
        if x != y {
            out.ranges_still_differing += 1;
        }
    }
    out.identical = out.ranges_still_differing == 0;
    Ok(())
}

/// Brings range `i` of the target to the source's rows: streamed over
/// when the target has none of it, else key by key. (copied, deleted).
async fn repair(
    la: &Live<'_>,
    lb: &Live<'_>,
    r: &PartRanges,
    i: usize,
    keys: Option<KeyDiff>,
) -> Result<(u64, u64)> {
    let Some(d) = keys else {
        return Ok((stream_range(la, lb, r, i).await?, 0));
    };
    let stale: Vec<Key> = d.only_b.iter().chain(&d.different).cloned().collect();
    let missing: Vec<Key> = d.only_a.into_iter().chain(d.different).collect();
    delete_keys(lb, r, &stale).await?;
    let copied = copy_keys(la, lb, r, &missing).await?;
    Ok((copied, d.only_b.len() as u64))
}

async fn range_digest(l: &Live<'_>, r: &PartRanges, i: usize) -> Result<RangeDigest> {
    l.digest_within(r.partition.as_deref(), r.limits(i)).await
}

/// The partition rows of `r` are inserted into: its own, or the
/// collection's choice (default partition, or the partition key).
fn partition_of(r: &PartRanges) -> &str {
    r.partition.as_deref().unwrap_or("")
}

/// Query answers as insert columns: no field ids of the source's server.
fn for_insert(mut cols: Vec<FieldData>) -> Vec<FieldData> {
    for c in &mut cols {
        c.field_id = 0;
    }
    cols
}

/// Copies range `i` of `a` into `b` page by page; the rows copied.
async fn stream_range(a: &Live<'_>, b: &Live<'_>, r: &PartRanges, i: usize) -> Result<u64> {
    let mut last = None;
    let mut copied = 0u64;
    while let Some((cols, n)) = a.next_page(r, i, &mut last).await? {
        insert_with_retry(b.client, b.collection, partition_of(r), for_insert(cols), n).await?;
        copied += n as u64;
    }
    Ok(copied)
}

/// Deletes `keys` from `b`.
async fn delete_keys(b: &Live<'_>, r: &PartRanges, keys: &[Key]) -> Result<()> {
    let pk = pk_name(b.fields)?;
    let c = b.collection;
    for chunk in keys.chunks(KEYS_PER_CALL) {
        b.client
            .delete(&c.db, &c.name, partition_of(r), &in_expr(pk, chunk))
            .await?;
    }
    Ok(())
}

/// Reads the rows with `keys` from `a` and inserts them into `b`.
async fn copy_keys(a: &Live<'_>, b: &Live<'_>, r: &PartRanges, keys: &[Key]) -> Result<u64> {
    let mut copied = 0u64;
    for chunk in keys.chunks(KEYS_PER_CALL) {
        let (cols, n) = a.rows_with_keys(chunk).await?;
        if n > 0 {
            insert_with_retry(b.client, b.collection, partition_of(r), for_insert(cols), n).await?;
            copied += n as u64;
        }
    }
    Ok(copied)
}

fn pk_name(fields: &[Field]) -> Result<&str> {
    fields
        .iter()
        .find(|f| f.is_primary)
        .map(|f| f.name.as_str())
        .ok_or_else(|| Error::invalid_input("the collection has no primary key"))
}

/// Points `alias` on the target at the migrated collection (moving it
/// from another collection when it named one): the cut-over.
pub async fn point_alias(b: &Context, target: &str, alias: &str) -> Result<()> {
    let t = CollectionRef::parse_checked(target)?;
    let client = b.milvus().await?;
    if let Err(e) = client.create_alias(&t.db, &t.name, alias).await {
        if e.kind() == ErrorKind::Unreachable {
            return Err(e);
        }
        client.drop_alias(&t.db, alias).await?;
        client.create_alias(&t.db, &t.name, alias).await?;
    }
    Ok(())
}
