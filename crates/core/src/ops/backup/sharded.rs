//! A logical backup made by N processes: `create --shard K/N` exports
//! shard K's key ranges into the backup's folder, and `create --seal`
//! writes the meta files and the completion mark once every shard
//! finished. Kubernetes runs the shards as an Indexed Job
//! (`deploy/kubernetes/`); nothing here schedules anything.
//!
//! The first shard to start records the plan (`shards/plan.json`,
//! written only if absent): each collection's metadata, the snapshot
//! timestamp every shard reads at, and its key ranges. Every other shard
//! reads that plan, so any process can run any shard, and a shard run
//! again rewrites the same files (or, once it finished, does nothing).
//! Each shard records what it wrote in `shards/done-<K>.json`. Until the
//! seal, the backup has no `full_meta.json`: it is listed as incomplete,
//! like any interrupted create. The seal checks each collection's rows
//! against Milvus's count at the snapshot, releases what the plan loaded,
//! and removes `shards/`.

use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::options::BackupOptions;
use super::plan::{BackupPlan, CollectionPlan, PlanTotals};
use super::run::{BackupRun, BackupStats, Copied};
use crate::codec::{key, Encoding};
use crate::context::Context;
use crate::error::{Error, Result, ResultExt};
use crate::events::{Emit, EventSink};
use crate::milvus::Milvus;
use crate::model::layout;
use crate::model::meta::{
    BackupInfo, CollectionBackupInfo, DataFile, LogicalBackup, LogicalCollection, LogicalRange,
    ManifestFile,
};
use crate::model::naming::validate_backup_name;
use crate::model::selection::CollectionRef;
use crate::model::shard::Shard;
use crate::ops::logical::by_range::{self, Unit};
use crate::ops::logical::export::{self, ExportOptions};
use crate::ops::logical::export_plan::ExportPlan;
use crate::ops::logical::fields::fields_of;
use crate::ops::logical::files::Location;
use crate::ops::logical::in_backup;
use crate::ops::retention::Retention;
use crate::repo::journal::{self, CreateJournal};
use crate::repo::meta_files::read_json;
use crate::repo::staging::{self, Holder};
use crate::storage::root_key;
use crate::{cancellable, CancellationToken};

/// The plan every shard of one backup follows, written by the first.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardPlan {
    /// Tells this plan's shard records from a plan written by a shard
    /// that lost the race to write it (storage without conditional writes).
    id: String,
    shards: usize,
    /// `parquet` or `json`.
    format: String,
    encoding: Encoding,
    recipient: Option<String>,
    /// The backup's brief, without collections.
    info: BackupInfo,
    collections: Vec<PlannedCollection>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlannedCollection {
    meta: CollectionBackupInfo,
    /// Every shard reads as of this hybrid timestamp.
    ts: u64,
    /// It was not loaded: the first shard loaded it, the seal releases it.
    loaded_for_export: bool,
    /// Its key ranges; unit `i` of the backup (counting across the
    /// collections in order) is shard `i mod N`'s.
    units: Vec<Unit>,
}

/// What one shard exported.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ShardDone {
    plan: String,
    /// Per collection of the plan, in order.
    collections: Vec<DoneCollection>,
    raw_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct DoneCollection {
    ranges: Vec<LogicalRange>,
    files: Vec<DataFile>,
    manifest: Vec<ManifestFile>,
}

/// What `create --shard` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShardStats {
    pub name: String,
    /// `K/N`.
    pub shard: String,
    pub collections: usize,
    /// Key ranges this shard exported, and the backup's in all.
    pub ranges: usize,
    pub ranges_total: usize,
    pub rows: u64,
    pub files: u64,
    pub copied_bytes: u64,
    /// It had finished before: nothing was done again.
    pub already_done: bool,
    /// This run wrote the plan every shard follows.
    pub planned: bool,
    pub duration_s: f64,
}

fn plan_key(name: &str) -> String {
    layout::join(&layout::create_shards_dir(name), "plan.json")
}

fn done_key(name: &str, k: usize) -> String {
    layout::join(&layout::create_shards_dir(name), &format!("done-{k}.json"))
}

/// `create --shard K/N`: exports shard K's key ranges of the plan (made
/// and recorded first when no shard has yet).
pub async fn run_shard(
    ctx: &Context,
    opts: &BackupOptions,
    shard: Shard,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<ShardStats> {
    let started = Instant::now();
    let plan = super::planning::plan(ctx, opts).await?;
    cancellable(cancel, shard_of(ctx, &plan, shard, events, cancel))
        .await
        .during("create")
        .map_err(|e| e.at("backup", &plan.name))
        .map(|mut s| {
            s.duration_s = started.elapsed().as_secs_f64();
            s
        })
}

async fn shard_of(
    ctx: &Context,
    plan: &BackupPlan,
    shard: Shard,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<ShardStats> {
    let name = plan.name.as_str();
    let Some(format) = plan.logical else {
        return Err(Error::invalid_input(
            "--shard: only a logical backup is made in shards — add --format parquet (or json)",
        ));
    };
    if plan.base_backup.is_some() {
        return Err(Error::invalid_input(
            "--shard: a backup made in shards cannot be incremental — drop --base-backup/--incremental",
        ));
    }
    let client = ctx.milvus().await?;
    let client = client.as_ref();
    if !client.capabilities().reads_at_timestamp() {
        return Err(Error::unsupported(format!(
            "--shard: Milvus {} cannot read as of one timestamp, so shards would each read another state of the collection — back up without --shard (Milvus 2.3 or later can)",
            client.version_text()
        )));
    }
    if let (true, Some(key)) = (plan.new_root_key, &plan.encoder.key) {
        root_key::store_root_key(&ctx.backup_storage, key).await?;
    }
    let storage = &ctx.backup_storage;
    let leftover = storage.has_objects(&layout::backup_dir(name)).await?
        && !storage
            .has_objects(&layout::create_shards_dir(name))
            .await?;
    if leftover {
        return Err(Error::conflict(format!(
            "backup `{name}` is incomplete from an earlier create that was not made in shards — delete it with `milvus-backup delete -n {name}`, or choose another name"
        )));
    }
    let (record, planned) = plan_once(ctx, client, plan, shard, events).await?;
    check_matches(&record, plan, shard)?;
    if planned {
        events.note(format!(
            "recorded the plan of `{name}`: {} collection(s), {} key range(s) as of one timestamp, in {} shard(s)",
            record.collections.len(),
            record.collections.iter().map(|c| c.units.len()).sum::<usize>(),
            record.shards
        ));
    }
    let ranges_total = record.collections.iter().map(|c| c.units.len()).sum();
    let mut stats = ShardStats {
        name: name.to_string(),
        shard: shard.to_string(),
        collections: record.collections.len(),
        ranges_total,
        planned,
        ..Default::default()
    };
    if let Some(done) = read_json::<ShardDone>(storage, &done_key(name, shard.index)).await? {
        if done.plan == record.id {
            events.note(format!(
                "shard {shard} of `{name}` finished before: nothing to do"
            ));
            stats.already_done = true;
            add_up(&mut stats, &done);
            return Ok(stats);
        }
    }
    let done = export_shard(ctx, client, plan, (&record, format), shard, events, cancel).await?;
    storage
        .write(&done_key(name, shard.index), seal_json(&done, plan)?)
        .await?;
    add_up(&mut stats, &done);
    events.note(format!(
        "shard {shard} of `{name}` exported {} key range(s) of {ranges_total}; seal the backup with `milvus-backup create -n {name} --seal` once every shard finished",
        stats.ranges
    ));
    Ok(stats)
}

/// A claim on planning older than this is taken for a shard that died
/// while planning: a waiting shard plans instead.
const PLANNING_STALE_S: u64 = 600;

/// The recorded plan, and whether this shard wrote it. Only the shard
/// that claims the planning (`shards/planning.json`, written if absent)
/// reads the key ranges; the others wait for its plan, so N shards
/// starting together scan the keys once, not N times.
async fn plan_once(
    ctx: &Context,
    client: &dyn Milvus,
    plan: &BackupPlan,
    shard: Shard,
    events: &dyn EventSink,
) -> Result<(ShardPlan, bool)> {
    let (storage, name) = (&ctx.backup_storage, plan.name.as_str());
    let claim = layout::join(&layout::create_shards_dir(name), "planning.json");
    let mut waiting = false;
    loop {
        if let Some(p) = read_json::<ShardPlan>(storage, &plan_key(name)).await? {
            return Ok((p, false));
        }
        let me = serde_json::to_vec(&Holder::me())
            .map_err(|e| Error::internal(format!("encoding a claim: {e}")))?;
        let stale = match read_json::<Holder>(storage, &claim).await? {
            Some(h) => staging::now().saturating_sub(h.renewed) > PLANNING_STALE_S,
            None => false,
        };
        if stale || storage.write_if_absent(&claim, me).await? {
            let made = make_plan(ctx, client, plan, shard.count, events).await?;
            let won = (storage.write_if_absent(&plan_key(name), seal_json(&made, plan)?)).await?;
            let stored = read_json::<ShardPlan>(storage, &plan_key(name))
                .await?
                .ok_or_else(|| Error::remote(format!("`{}` vanished", plan_key(name))))?;
            return Ok((stored, won));
        }
        if !waiting {
            waiting = true;
            events.note(format!(
                "another shard is planning `{name}`: waiting for its plan"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

fn add_up(stats: &mut ShardStats, done: &ShardDone) {
    for c in &done.collections {
        stats.ranges += c.ranges.len();
        stats.rows += c.ranges.iter().map(|r| r.rows).sum::<u64>();
        stats.files += c.files.len() as u64;
        stats.copied_bytes += c.manifest.iter().map(|f| f.size).sum::<u64>();
    }
}

/// A record sealed like the backup's schemas: it holds key values.
fn seal_json<T: Serialize>(value: &T, plan: &BackupPlan) -> Result<Vec<u8>> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::internal(format!("encoding a shard record: {e}")))?;
    Ok(match &plan.encoder.key {
        Some(k) => key::seal(&bytes, k),
        None => bytes,
    })
}

/// The plan of every shard: each collection loaded (the seal releases
/// those it loaded), its snapshot and key ranges.
async fn make_plan(
    ctx: &Context,
    client: &dyn Milvus,
    plan: &BackupPlan,
    shards: usize,
    events: &dyn EventSink,
) -> Result<ShardPlan> {
    let mut collections = Vec::with_capacity(plan.collections.len());
    for c in &plan.collections {
        let export = export_plan(ctx, &c.source, plan, None).await?;
        if export.load_for_export {
            events.note(format!(
                "{} is not loaded: loading it for the shards (the seal releases it)",
                c.source
            ));
            crate::ops::collection::load_and_wait(client, &c.source).await?;
        }
        let (ts, units) = by_range::plan_units(client, &export).await?;
        collections.push(PlannedCollection {
            meta: export.meta.clone(),
            ts,
            loaded_for_export: export.load_for_export,
            units,
        });
    }
    Ok(ShardPlan {
        id: uuid::Uuid::new_v4().to_string(),
        shards,
        format: plan.format.clone(),
        encoding: plan.encoder.encoding(),
        recipient: plan.encoder.key.as_ref().map(|k| k.recipient()),
        info: plan.info.clone(),
        collections,
    })
}

/// The export plan of one collection; with `meta`, the recorded schema
/// (every shard writes the same columns).
async fn export_plan(
    ctx: &Context,
    source: &CollectionRef,
    plan: &BackupPlan,
    meta: Option<&CollectionBackupInfo>,
) -> Result<ExportPlan> {
    let opts = ExportOptions {
        collection: source.to_string(),
        format: plan.logical.unwrap_or_default(),
        ..Default::default()
    };
    let mut export = export::plan(ctx, &opts).await?;
    export.settings.compression_level = plan.encoder.level.clamp(1, 22);
    if let Some(meta) = meta {
        export.fields = fields_of(&meta.schema)?;
        export.meta = meta.clone();
    }
    Ok(export)
}

/// Refuses a shard whose options differ from the recorded plan's.
fn check_matches(record: &ShardPlan, plan: &BackupPlan, shard: Shard) -> Result<()> {
    let name = &plan.name;
    if record.shards != shard.count {
        return Err(Error::invalid_input(format!(
            "--shard {shard}: backup `{name}` is planned in {n} shards — run it as --shard K/{n} (K from 0 to {})",
            record.shards - 1,
            n = record.shards
        )));
    }
    if record.format != plan.format {
        return Err(Error::invalid_input(format!(
            "--format {}: backup `{name}` is planned as {} — give every shard the same --format",
            plan.format, record.format
        )));
    }
    let recipient = plan.encoder.key.as_ref().map(|k| k.recipient());
    if record.encoding != plan.encoder.encoding() || record.recipient != recipient {
        return Err(Error::invalid_input(format!(
            "backup `{name}` is planned with other compression or encryption settings than this shard's — give every shard the same --compress, --encrypt and config"
        )));
    }
    let planned: Vec<String> = (record.collections.iter())
        .map(|c| format!("{}.{}", c.meta.db_name, c.meta.collection_name))
        .collect();
    let asked: Vec<String> = plan
        .collections
        .iter()
        .map(|c| c.collection.clone())
        .collect();
    if planned != asked {
        return Err(Error::invalid_input(format!(
            "the collections selected ({}) are not those backup `{name}` is planned with ({}) — give every shard the same selection",
            asked.join(", "),
            planned.join(", ")
        )));
    }
    Ok(())
}

/// Exports shard K's units of every collection of the plan. A failure
/// leaves the files written: a rerun writes the same ones again.
async fn export_shard(
    ctx: &Context,
    client: &dyn Milvus,
    plan: &BackupPlan,
    (record, format): (&ShardPlan, crate::ops::logical::Format),
    shard: Shard,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<ShardDone> {
    let dir = layout::backup_dir(&plan.name);
    let mut location = Location::on(ctx.backup_storage.clone(), &dir);
    location.encoder = Some(plan.encoder.clone());
    let mut done = ShardDone {
        plan: record.id.clone(),
        ..Default::default()
    };
    let mut ordinal = 0;
    for c in &record.collections {
        let source = CollectionRef {
            db: c.meta.db_name.clone(),
            name: c.meta.collection_name.clone(),
        };
        let mine: Vec<Unit> = (c.units.iter())
            .filter(|_| {
                ordinal += 1;
                shard.owns(ordinal - 1)
            })
            .cloned()
            .collect();
        if mine.is_empty() {
            done.collections.push(DoneCollection::default());
            continue;
        }
        let mut export = export_plan(ctx, &source, plan, Some(&c.meta)).await?;
        export.settings.format = format;
        // Loaded by the plan; a shard never releases it (others read it).
        if !is_loaded(client, &source).await {
            crate::ops::collection::load_and_wait(client, &source).await?;
        }
        let prefix = format!("{dir}data/{}/{}/", source.db, source.name);
        let written = Mutex::new(Vec::new());
        let exported = cancellable(
            cancel,
            by_range::export_units(
                client,
                &export,
                c.ts,
                mine,
                (&location, &prefix),
                &written,
                events,
            ),
        )
        .await
        .map_err(|e| e.at("collection", &source))?;
        let mut out = DoneCollection::default();
        for (mut range, files) in exported {
            for p in &mut range.files {
                *p = p.strip_prefix(&dir).unwrap_or(p).to_string();
            }
            for mut f in files {
                f.path = f.path.strip_prefix(&dir).unwrap_or(&f.path).to_string();
                done.raw_bytes += f.plain.as_ref().map_or(f.size, |p| p.0);
                out.manifest.push(in_backup::manifest_entry(&f));
                out.files.push(f);
            }
            out.ranges.push(range);
        }
        done.collections.push(out);
    }
    Ok(done)
}

async fn is_loaded(client: &dyn Milvus, c: &CollectionRef) -> bool {
    client
        .load_state(&c.db, &c.name)
        .await
        .is_ok_and(|s| s == "Loaded")
}

/// `create -n NAME --seal`: once every shard finished, the backup's meta
/// files and completion mark; otherwise an error naming the shards to
/// run, and nothing written.
pub async fn seal(
    ctx: &Context,
    opts: &BackupOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<BackupStats> {
    let started = Instant::now();
    let name = opts
        .name
        .clone()
        .ok_or_else(|| Error::invalid_input("--seal: name the backup to seal with -n NAME"))?;
    validate_backup_name(&name)?;
    let sealed = seal_of(ctx, &name, opts, events, cancel)
        .await
        .during("create")
        .map_err(|e| e.at("backup", &name))?;
    Ok(BackupStats {
        duration_s: started.elapsed().as_secs_f64(),
        ..sealed
    })
}

async fn seal_of(
    ctx: &Context,
    name: &str,
    opts: &BackupOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<BackupStats> {
    let storage = &ctx.backup_storage;
    if storage
        .stat(&layout::backup_meta_file(name, layout::FULL_META))
        .await?
        .is_some()
    {
        return Err(Error::already_exists(format!(
            "backup `{name}` is complete already: there is nothing to seal"
        )));
    }
    let record = read_json::<ShardPlan>(storage, &plan_key(name))
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "backup `{name}` has no shard plan: no `milvus-backup create -n {name} --format parquet --shard K/N` has started — run the shards first"
            ))
        })?;
    let mut dones = Vec::with_capacity(record.shards);
    let mut missing = Vec::new();
    for k in 0..record.shards {
        match read_json::<ShardDone>(storage, &done_key(name, k)).await? {
            Some(d) if d.plan == record.id => dones.push(d),
            _ => missing.push(k),
        }
    }
    if let Some(first) = missing.first() {
        let n = record.shards;
        let runs: Vec<String> = missing.iter().map(|k| format!("{k}/{n}")).collect();
        return Err(Error::conflict(format!(
            "{} of {n} shard(s) of backup `{name}` have not finished ({}) — run `milvus-backup create -n {name} --format {} --shard {first}/{n}` (same options) for each, or wait for those running; nothing was sealed",
            missing.len(),
            runs.join(", "),
            record.format,
        )));
    }
    let client = ctx.milvus().await?;
    let client = client.as_ref();
    let mut plan = seal_plan(ctx, name, &record, opts, client).await?;
    let (logical, copied) = assemble(&record, &dones, plan.logical.unwrap_or_default());
    for (c, l) in record.collections.iter().zip(&logical.collections) {
        let source = CollectionRef {
            db: c.meta.db_name.clone(),
            name: c.meta.collection_name.clone(),
        };
        let fields = fields_of(&c.meta.schema)?;
        by_range::check_rows(client, &source, &fields, c.ts, l.rows, events).await?;
    }
    for (c, l) in plan.collections.iter_mut().zip(&logical.collections) {
        c.meta.size = l.files.iter().map(|f| f.size as i64).sum();
    }
    let live = logical
        .collections
        .iter()
        .map(|l| Some(l.rows as i64))
        .collect();
    plan.info.logical = Some(logical);
    let journal = CreateJournal::start(
        storage,
        name,
        plan.encoder.encoding(),
        plan.encoder.key.as_ref().map(|k| k.recipient()),
        Vec::new(),
    )
    .await?;
    let run = BackupRun {
        ctx,
        plan,
        journal: &journal,
        events,
        cancel,
        live,
        row_checks: Vec::new(),
        started: Instant::now(),
    };
    let mut stats = cancellable(cancel, run.write_meta(copied, Vec::new())).await?;
    if let Err(e) = journal.finish().await {
        events.warn(format!(
            "backup sealed, but its journal was not removed: {e}"
        ));
    }
    for c in record.collections.iter().filter(|c| c.loaded_for_export) {
        let (db, coll) = (&c.meta.db_name, &c.meta.collection_name);
        match client.release_collection(db, coll).await {
            Ok(()) => events.note(format!("released {db}.{coll} again")),
            Err(e) => events.warn(format!(
                "{db}.{coll} was loaded for the shards and could not be released: {e}"
            )),
        }
    }
    if let Err(e) = storage
        .delete_prefix(&layout::create_shards_dir(name))
        .await
    {
        events.warn(format!("backup sealed, but its shard records stay: {e}"));
    }
    stats.retention_deleted = super::run::apply_retention(ctx, &run.plan, events, cancel).await;
    Ok(stats)
}

/// The plan the seal writes the meta files of: the recorded brief and
/// collections, stored as the shards stored their files.
async fn seal_plan(
    ctx: &Context,
    name: &str,
    record: &ShardPlan,
    opts: &BackupOptions,
    client: &dyn Milvus,
) -> Result<BackupPlan> {
    let (encoder, _) = super::planning::encoder(ctx, opts).await?;
    let recipient = encoder.key.as_ref().map(|k| k.recipient());
    if record.encoding != encoder.encoding() || record.recipient != recipient {
        return Err(Error::invalid_input(format!(
            "backup `{name}` was exported with other compression or encryption settings than this seal's — give --seal the same --compress, --encrypt and config as the shards"
        )));
    }
    let format: crate::ops::logical::Format = record.format.parse()?;
    let collections = (record.collections.iter())
        .map(|c| CollectionPlan {
            collection: format!("{}.{}", c.meta.db_name, c.meta.collection_name),
            segments: 0,
            bytes: 0,
            files: Vec::new(),
            source: CollectionRef {
                db: c.meta.db_name.clone(),
                name: c.meta.collection_name.clone(),
            },
            meta: c.meta.clone(),
            dropped: false,
        })
        .collect();
    Ok(BackupPlan {
        name: name.to_string(),
        milvus: format!("{} ({})", client.address(), client.version_text()),
        collections,
        totals: PlanTotals::default(),
        flush: false,
        meta_only: false,
        encoding: encoder.encoding(),
        compression_level: encoder.level,
        base_backup: None,
        notes: Vec::new(),
        tuning: opts.tuning.unwrap_or(ctx.settings.tuning),
        retention: Retention::from_settings(&ctx.settings),
        new_root_key: false,
        rbac: record.info.rbac_meta.as_ref().map(|m| m.counts()),
        resume: false,
        resumed_files: 0,
        stored: journal::Stored::default(),
        format: record.format.clone(),
        allow_unpersisted_deletes: false,
        logical: Some(format),
        encoder,
        base_manifest: None,
        base_logical: None,
        info: record.info.clone(),
        gc_pause: ctx.settings.gc_pause.clone(),
        selection: opts.selection.clone(),
        started: None,
    })
}

/// Every shard's ranges and files, per collection in key order, and the
/// manifest entries.
fn assemble(
    record: &ShardPlan,
    dones: &[ShardDone],
    format: crate::ops::logical::Format,
) -> (LogicalBackup, Copied) {
    let mut files = Vec::new();
    let mut collections = Vec::with_capacity(record.collections.len());
    for (i, c) in record.collections.iter().enumerate() {
        let mut coll = LogicalCollection {
            db_name: c.meta.db_name.clone(),
            collection_name: c.meta.collection_name.clone(),
            snapshot_ts: c.ts,
            ..Default::default()
        };
        for d in dones.iter().filter_map(|d| d.collections.get(i)) {
            coll.ranges.extend(d.ranges.iter().cloned());
            coll.files.extend(d.files.iter().cloned());
            files.extend(d.manifest.iter().cloned());
        }
        coll.ranges.sort_by(|a, b| {
            (&a.partition, a.from.is_some(), &a.from).cmp(&(
                &b.partition,
                b.from.is_some(),
                &b.from,
            ))
        });
        coll.files.sort_by(|a, b| a.path.cmp(&b.path));
        coll.rows = coll.ranges.iter().map(|r| r.rows).sum();
        collections.push(coll);
    }
    files.sort_by(|a: &ManifestFile, b| a.path.cmp(&b.path));
    let copied = Copied {
        copied_bytes: files.iter().map(|f| f.size).sum(),
        shared_files: 0,
        shared_bytes: 0,
        files,
        resumed: Vec::new(),
    };
    (
        LogicalBackup {
            format,
            collections,
        },
        copied,
    )
}
