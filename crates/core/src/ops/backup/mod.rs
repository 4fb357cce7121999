//! `create`: a physical backup of selected collections.
//!
//! Options → Plan → Stats: [`BackupOptions`] say what the user asked for;
//! [`plan`] checks the name, resolves the selection once, reads each
//! collection's metadata and lists its persisted segments and files, and
//! decides what an incremental backup shares with its base — without
//! changing anything (`--dry-run` prints it). [`execute`] samples rows,
//! flushes and lists the segments again (a flush makes new ones), copies
//! the files, writes the meta files, then applies the retention policy.
//!
//! Completeness: every binlog and the per-level meta files are written
//! first, `full_meta.json` last, then our `summary.json`. A backup without
//! `full_meta.json` is incomplete. When `execute` is cancelled it removes
//! what it wrote ([`catalog::remove`], completion marks first); when it
//! fails (or is killed) it leaves the files it stored and their journal
//! ([`crate::repo::journal`]), and `create --resume` copies only the rest.

pub mod deltalog;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::codec::key;
use crate::codec::{Compression, Encoder, Encoding};
use crate::config::tuning::Tuning;
use crate::config::GcPauseConfig;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::events::{Emit, Event, EventSink, Operation, Phase, PlannedCollection};
use crate::milvus::{segment_state, Milvus};
use crate::model::layout;
use crate::model::meta::Check;
use crate::model::meta::*;
use crate::model::naming::{default_backup_name, validate_backup_name};
use crate::model::selection::{CollectionRef, Selection};
use crate::ops::collection::collection_meta;
use crate::ops::delete::{self, DeleteOptions, DeleteTarget, Retention};
use crate::ops::gc_pause::GcPause;
use crate::ops::verify::sample::{self, Sample};
use crate::repo::catalog;
use crate::repo::journal::{self, CreateJournal};
use crate::storage::copy::CopyEngine;
use crate::storage::root_key;
use crate::storage::{ObjectInfo, Route};
use crate::{cancellable, CancellationToken};

/// What the user asked for.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct BackupOptions {
    /// Backup name; a time-based one when `None`.
    pub name: Option<String>,
    pub selection: Selection,
    /// Skip the flush (`-f/--force`).
    pub force: bool,
    /// Metadata only, no binlogs.
    pub meta_only: bool,
    /// Back up users and roles too.
    pub rbac: bool,
    /// `zstd`, `gzip` or `none`; from `backup.compression` and
    /// `backup.compressionAlgorithm` when `None`.
    pub compress: Option<String>,
    /// From `backup.compressionLevel` when `None`.
    pub compress_level: Option<i32>,
    /// Encrypt with the configured key (`backup.encryption.*`).
    pub encrypt: bool,
    /// `binlog` (physical), `parquet` or `json` (logical: rows over gRPC);
    /// `None`: binlog, or parquet when the config names no storage for
    /// Milvus's own files.
    #[serde(default)]
    pub format: Option<String>,
    /// Share unchanged files with this earlier backup.
    pub base_backup: Option<String>,
    /// Share unchanged files with the newest complete backup of the same
    /// collections, if there is one.
    pub incremental: bool,
    /// Parallelism; from `backup.*` when `None`.
    #[serde(default)]
    pub tuning: Option<Tuning>,
    /// Continue an interrupted create of the same name: files its journal
    /// lists, stored with their recorded size, are not copied again.
    #[serde(default)]
    pub resume: bool,
}

/// One file to copy from Milvus storage into the backup.
#[derive(Debug, Clone, Serialize)]
pub struct FileCopy {
    /// Key in Milvus storage, relative to its root.
    pub source: String,
    /// Key relative to the backup folder.
    pub target: String,
    pub size: u64,
    /// The source's ETag from the listing: the server-side copy is
    /// conditional on it and checked against it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The base backup that holds the same file already: it is shared, not
    /// copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<String>,
}

/// One collection of a backup plan.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionPlan {
    /// `db.coll`.
    pub collection: String,
    pub segments: usize,
    /// Bytes of its files.
    pub bytes: u64,
    pub files: Vec<FileCopy>,
    #[serde(skip)]
    source: CollectionRef,
    /// Its metadata, with the segments attached to the partitions.
    #[serde(skip)]
    meta: CollectionBackupInfo,
    /// Dropped from Milvus during the backup (it was not named one by
    /// one): left out of the backup.
    #[serde(skip)]
    dropped: bool,
}

/// Totals of a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlanTotals {
    pub collections: usize,
    pub segments: usize,
    pub files: u64,
    pub bytes: u64,
    /// Files (and their bytes) shared with the base instead of copied.
    pub shared_files: u64,
    pub shared_bytes: u64,
}

/// Everything the backup will contain, before anything is copied.
#[derive(Debug, Clone, Serialize)]
pub struct BackupPlan {
    pub name: String,
    /// The Milvus backed up, e.g. `127.0.0.1:19530 (v2.3.5)`.
    pub milvus: String,
    pub collections: Vec<CollectionPlan>,
    pub totals: PlanTotals,
    /// Whether `execute` samples and flushes first (then lists again).
    pub flush: bool,
    pub meta_only: bool,
    /// How new files are stored.
    pub encoding: Encoding,
    pub compression_level: i32,
    /// The backup unchanged files are shared with.
    pub base_backup: Option<String>,
    /// Things the user should know about the plan (e.g. why it is full).
    pub notes: Vec<String>,
    pub tuning: Tuning,
    /// Applied after a successful backup (never to it).
    pub retention: Retention,
    /// The password's root key is made (first encrypted backup there).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub new_root_key: bool,
    /// Users, roles, grants and privilege groups it records (`--rbac`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbac: Option<crate::ops::rbac::RbacCounts>,
    /// Continues an interrupted create: `resumed_files` of its files are
    /// stored already (when they are still what Milvus holds).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub resumed_files: u64,
    #[serde(skip)]
    stored: journal::Stored,
    /// `binlog`, `parquet` or `json`.
    pub format: String,
    /// Rows exported over gRPC in this format instead of binlogs copied.
    #[serde(skip)]
    logical: Option<crate::ops::logical::Format>,
    #[serde(skip)]
    encoder: Encoder,
    #[serde(skip)]
    base_manifest: Option<Manifest>,
    /// The backup's brief (no collections: those are in `collections`).
    #[serde(skip)]
    info: BackupInfo,
    #[serde(skip)]
    gc_pause: GcPauseConfig,
    /// What was asked for (which collections were named one by one).
    #[serde(skip)]
    selection: Selection,
    #[serde(skip)]
    started: Option<Instant>,
}

/// What a finished backup did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupStats {
    pub name: String,
    /// `binlog`, `parquet` or `json`.
    pub format: String,
    pub collections: usize,
    /// Live rows: deleted rows are not counted.
    pub entities: i64,
    /// Rows the backup's segments hold that deletes remove.
    pub deleted_entities: i64,
    pub size_bytes: u64,
    /// Bytes written by this backup; files shared with the base are not counted.
    pub copied_bytes: u64,
    pub files: u64,
    /// Files shared with the base backup instead of copied.
    pub shared_files: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_backup: Option<String>,
    pub duration_s: f64,
    /// Backups removed by the retention policy afterwards.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retention_deleted: Vec<String>,
    /// Users, roles, grants and privilege groups recorded (`--rbac`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbac: Option<crate::ops::rbac::RbacCounts>,
    /// Files (and their bytes) an interrupted run had stored that this
    /// `--resume` run kept instead of copying; `copied_bytes` counts them.
    #[serde(skip_serializing_if = "is_zero")]
    pub resumed_files: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub resumed_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl BackupPlan {
    fn recount(&mut self) {
        let mut t = PlanTotals {
            collections: self.collections.len(),
            ..Default::default()
        };
        for c in &mut self.collections {
            c.bytes = c.files.iter().map(|f| f.size).sum();
            t.segments += c.segments;
            t.files += c.files.len() as u64;
            t.bytes += c.bytes;
            for f in c.files.iter().filter(|f| f.shared_with.is_some()) {
                t.shared_files += 1;
                t.shared_bytes += f.size;
            }
        }
        self.totals = t;
    }

    /// The work ahead as an event: the bytes to copy per collection.
    pub fn planned(&self) -> Event {
        Event::Planned {
            operation: Operation::Create,
            collections: self
                .collections
                .iter()
                .map(|c| {
                    let copied = c.files.iter().filter(|f| f.shared_with.is_none());
                    PlannedCollection {
                        name: c.collection.clone(),
                        target: None,
                        segments: c.segments,
                        files: copied.clone().count() as u64,
                        bytes: copied.map(|f| f.size).sum(),
                    }
                })
                .collect(),
        }
    }
}

/// Creates a backup: plan, then execute.
pub async fn create(
    ctx: &Context,
    opts: &BackupOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<BackupStats> {
    let plan = plan(ctx, opts).await?;
    execute(ctx, &plan, events, cancel).await
}

/// Plans a backup; changes nothing.
pub async fn plan(ctx: &Context, opts: &BackupOptions) -> Result<BackupPlan> {
    make_plan(ctx, opts).await.during("create")
}

async fn make_plan(ctx: &Context, opts: &BackupOptions) -> Result<BackupPlan> {
    let started = Instant::now();
    let name = opts.name.clone().unwrap_or_else(default_backup_name);
    validate_backup_name(&name)?;
    if ctx
        .backup_storage
        .has_objects(&layout::backup_dir(&name))
        .await?
    {
        let complete = ctx
            .backup_storage
            .stat(&layout::backup_meta_file(&name, layout::FULL_META))
            .await?
            .is_some();
        let where_ = ctx.backup_storage.spec().describe();
        if complete || !opts.resume {
            return Err(if complete {
                Error::already_exists(format!(
                    "backup `{name}` already exists in {where_} and is complete — choose another name or delete it first"
                ))
            } else {
                // A create that was killed, failed or lost its storage left it.
                Error::conflict(format!(
                    "backup `{name}` in {where_} is incomplete (an earlier create of it did not finish) — finish it with `milvus-backup create -n {name} --resume` (same options), or delete it with `milvus-backup delete -n {name}`"
                ))
            });
        }
    }
    let (encoder, new_root_key) = encoder(ctx, opts).await?;
    let stored = if opts.resume {
        let recipient = encoder.key.as_ref().map(|k| k.recipient());
        journal::interrupted_create(&ctx.backup_storage, &name, encoder.encoding(), recipient)
            .await?
    } else {
        journal::Stored::default()
    };
    let mut notes = Vec::new();
    let logical = logical_format(ctx, opts, &mut notes)?;
    let client = ctx.milvus().await?;
    let client = client.as_ref();
    let selected = opts.selection.resolve(client).await?;
    // `--rbac` alone on a Milvus without collections: users and roles only.
    if selected.is_empty() && !opts.rbac {
        return Err(Error::not_found(format!(
            "Milvus at {} has no collections to back up",
            client.address()
        )));
    }
    let base = base_backup(ctx, opts, &selected, &mut notes).await?;
    let now = chrono::Utc::now();
    let rbac_meta = match opts.rbac {
        true => Some(crate::ops::rbac::collect(client).await?),
        false => None,
    };
    let info = BackupInfo {
        rbac_meta,
        id: uuid::Uuid::new_v4().to_string(),
        state_code: 2,
        name: name.clone(),
        backup_timestamp: now.timestamp_millis() as u64,
        start_time: now.timestamp_millis(),
        progress: 100,
        milvus_version: client.version_text().to_string(),
        format: "milvus-backup-rs".into(),
        // The selection was resolved against the server's databases already.
        database_backups: selected
            .iter()
            .map(|c| c.db.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|db_name| DatabaseBackupInfo {
                db_name: db_name.to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut plan = BackupPlan {
        name: name.clone(),
        milvus: format!("{} ({})", client.address(), client.version_text()),
        collections: Vec::new(),
        totals: PlanTotals::default(),
        flush: !opts.force && !opts.meta_only && logical.is_none(),
        meta_only: opts.meta_only,
        encoding: encoder.encoding(),
        compression_level: encoder.level,
        base_backup: base.as_ref().map(|(b, _)| b.clone()),
        notes,
        tuning: opts
            .tuning
            .unwrap_or_else(|| Tuning::from_config(&ctx.config.backup)),
        retention: Retention::from_config(&ctx.config.backup),
        new_root_key,
        rbac: info.rbac_meta.as_ref().map(|m| m.counts()),
        resume: opts.resume,
        resumed_files: 0,
        stored,
        format: logical.map_or("binlog".into(), |f| f.to_string()),
        logical,
        encoder,
        base_manifest: base.map(|(_, m)| m),
        info,
        gc_pause: ctx.config.backup.gc_pause.clone(),
        selection: opts.selection.clone(),
        started: Some(started),
    };
    for coll in &selected {
        let planned = async {
            let meta = collection_meta(client, coll).await?;
            let mut c = CollectionPlan {
                collection: coll.to_string(),
                segments: 0,
                bytes: 0,
                files: Vec::new(),
                source: coll.clone(),
                meta,
                dropped: false,
            };
            if plan.logical.is_none() {
                list_segments(ctx, client, &plan, &mut c).await?;
            }
            Ok::<_, Error>(c)
        }
        .await;
        match planned {
            Ok(c) => plan.collections.push(c),
            Err(e) if vanished(client, coll, &opts.selection).await => {
                plan.notes.push(format!(
                    "{coll} was dropped while the backup was planned: skipped ({e})"
                ));
            }
            Err(e) => return Err(e.at("collection", coll)),
        }
    }
    if plan.collections.is_empty() && !selected.is_empty() {
        return Err(Error::not_found(format!(
            "nothing to back up: every selected collection was dropped meanwhile ({})",
            plan.notes.join("; ")
        )));
    }
    plan.recount();
    if opts.resume {
        plan.resumed_files = plan.count_stored();
        plan.notes.push(if plan.stored.files.is_empty() {
            format!("--resume: no files of an interrupted create of `{name}` to keep: copying everything")
        } else {
            format!(
                "--resume: {} file(s) the interrupted create stored are kept (checked by size before copying)",
                plan.resumed_files
            )
        });
    }
    Ok(plan)
}

impl BackupPlan {
    /// Planned files an interrupted run stored already (by its journal).
    fn count_stored(&self) -> u64 {
        self.collections
            .iter()
            .flat_map(|c| &c.files)
            .filter(|f| f.shared_with.is_none())
            .filter(|f| self.stored.reusable(&f.target, &f.source, f.size).is_some())
            .count() as u64
    }
}

/// The logical format of the backup, `None` for a physical one: as asked,
/// else parquet when the config names no storage for Milvus's own files
/// (the user guide's config), else binlog.
fn logical_format(
    ctx: &Context,
    opts: &BackupOptions,
    notes: &mut Vec<String>,
) -> Result<Option<crate::ops::logical::Format>> {
    let format = match opts.format.as_deref().map(str::trim) {
        Some("binlog") => return Ok(None),
        Some(f) if !f.is_empty() => f.parse::<crate::ops::logical::Format>().map_err(|_| {
            Error::invalid_input(format!(
                "unknown backup format `{f}`: use binlog, parquet or json"
            ))
        })?,
        _ if ctx.config.minio.no_milvus_storage && !opts.meta_only => {
            notes.push(
                "the config names no storage for Milvus's own files: making a logical backup (rows read over gRPC, stored as Parquet); --format binlog makes a physical one".into(),
            );
            crate::ops::logical::Format::Parquet
        }
        _ => return Ok(None),
    };
    if opts.meta_only {
        return Ok(None);
    }
    if opts.base_backup.is_some() || opts.incremental {
        return Err(Error::invalid_input(format!(
            "a {format} backup cannot be incremental (only binlog backups share files with a base) — drop --base-backup/--incremental, or use --format binlog"
        )));
    }
    Ok(Some(format))
}

/// How new files are stored, from the options and the config.
async fn encoder(ctx: &Context, opts: &BackupOptions) -> Result<(Encoder, bool)> {
    let cfg = &ctx.config.backup;
    let compression = match &opts.compress {
        Some(name) => Compression::parse(name)?,
        None if cfg.compression => Compression::parse(&cfg.compression_algorithm)?,
        None => Compression::None,
    };
    let level = opts.compress_level.unwrap_or(cfg.compression_level);
    compression.check_level(level)?;
    let (key, new_root_key) = if opts.encrypt {
        let sealing = root_key::sealing_key(&ctx.backup_storage).await?.ok_or_else(|| {
            Error::invalid_input(
                "--encrypt needs a key or a password: set MILVUS_BACKUP_ENCRYPTION_KEY or backup.encryption.keyFile (generate one with `milvus-backup keygen`), or MILVUS_BACKUP_PASSWORD (backup.encryption.password)",
            )
        })?;
        (Some(sealing.key), sealing.new_root)
    } else {
        (None, false)
    };
    Ok((
        Encoder {
            compression,
            level,
            key,
        },
        new_root_key,
    ))
}

/// The base of an incremental backup: the one named, or with
/// `--incremental` the newest complete backup of the same collections.
async fn base_backup(
    ctx: &Context,
    opts: &BackupOptions,
    collections: &[CollectionRef],
    notes: &mut Vec<String>,
) -> Result<Option<(String, Manifest)>> {
    let storage = &ctx.backup_storage;
    let name = match &opts.base_backup {
        Some(name) => {
            catalog::get(storage, name).await?;
            name.clone()
        }
        None if opts.incremental => {
            let mut wanted: Vec<String> = collections.iter().map(|c| c.to_string()).collect();
            wanted.sort();
            let found = catalog::list(storage).await?.into_iter().find(|b| {
                let mut have = b.collections.clone();
                have.sort();
                b.state == catalog::BackupState::Complete && have == wanted
            });
            match found {
                Some(b) => b.name,
                None => {
                    notes.push(
                        "no earlier backup of the same collections: making a full backup".into(),
                    );
                    return Ok(None);
                }
            }
        }
        None => return Ok(None),
    };
    let manifest = catalog::manifest(storage, &name).await?.ok_or_else(|| {
        Error::invalid_input(format!(
            "base backup `{name}` has no manifest (it was made by another tool), so its files cannot be shared — make a full backup instead"
        ))
    })?;
    notes.push(format!(
        "incremental: sharing unchanged files with `{name}`"
    ));
    Ok(Some((name, manifest)))
}

/// Whether a collection that failed is gone from Milvus and was not named
/// one by one: such a collection is left out with a note, not an error
/// (`--all` while other clients drop collections).
async fn vanished(client: &dyn Milvus, coll: &CollectionRef, selection: &Selection) -> bool {
    !selection.names(coll)
        && client
            .list_collections(&coll.db)
            .await
            .is_ok_and(|names| !names.contains(&coll.name))
}

/// Lists the collection's flushed segments and their files into `c`,
/// marking the files its base already holds.
async fn list_segments(
    ctx: &Context,
    client: &dyn Milvus,
    plan: &BackupPlan,
    c: &mut CollectionPlan,
) -> Result<()> {
    let root = ctx.milvus_storage.spec().root.trim_matches('/').to_string();
    let coll = &c.source;
    let segments: Vec<_> = client
        .persistent_segments(&coll.db, &coll.name)
        .await?
        .into_iter()
        .filter(|s| s.state == segment_state::FLUSHED)
        .collect();
    let mut files = Vec::new();
    let mut by_partition: BTreeMap<i64, Vec<SegmentBackupInfo>> = BTreeMap::new();
    if !plan.meta_only && !segments.is_empty() {
        // One listing per collection (not per segment), grouped by segment.
        let listed = CollectionListing::read(ctx, segments[0].collection_id).await?;
        for seg in &segments {
            let (sinfo, seg_files) =
                segment_files(&listed, &root, &plan.name, seg).at("segment", seg.segment_id)?;
            files.extend(seg_files);
            by_partition
                .entry(seg.partition_id)
                .or_default()
                .push(sinfo);
        }
    }
    for part in &mut c.meta.partition_backups {
        part.segment_backups = by_partition.remove(&part.partition_id).unwrap_or_default();
        part.size = part.segment_backups.iter().map(|s| s.size).sum();
    }
    if !by_partition.is_empty() {
        let ids: Vec<String> = by_partition.keys().map(i64::to_string).collect();
        return Err(Error::remote(format!(
            "collection {coll}: segments belong to partitions {} that ShowPartitions did not list — retry the backup",
            ids.join(", ")
        )));
    }
    c.meta.size = c.meta.partition_backups.iter().map(|p| p.size).sum();
    c.segments = if plan.meta_only { 0 } else { segments.len() };
    if let (Some(base), Some(manifest)) = (&plan.base_backup, &plan.base_manifest) {
        let index = BaseIndex::new(manifest);
        for f in &mut files {
            f.shared_with = share(&plan.encoder, base, &index, f).map(|_| base.clone());
        }
    }
    c.files = files;
    Ok(())
}

/// Flushes one collection and waits (bounded) until its segments persist.
async fn flush_and_wait(
    client: &dyn Milvus,
    coll: &CollectionRef,
    events: &dyn EventSink,
) -> Result<()> {
    const LIMIT: Duration = Duration::from_secs(600);
    let (segments, ts) = client.flush(&coll.db, &coll.name).await?;
    let start = Instant::now();
    let mut announced = false;
    while !client
        .flush_done(&coll.db, &coll.name, &segments, ts)
        .await?
    {
        if start.elapsed() > LIMIT {
            return Err(Error::remote(format!(
                "flush of {coll} did not finish within {} s — check Milvus's data node, or use --force to back up without flushing",
                LIMIT.as_secs()
            ))
            .temporary(true));
        }
        if !announced {
            events.phase(Phase::Flushing {
                collection: coll.to_string(),
                segments: segments.len(),
            });
            announced = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// A collection's insert and delta logs from one listing each, by segment
/// folder (`insert_log/c/p/s/`).
struct CollectionListing {
    by_dir: HashMap<String, Vec<ObjectInfo>>,
}

impl CollectionListing {
    async fn read(ctx: &Context, collection: i64) -> Result<CollectionListing> {
        let (insert_dir, delta_dir) = (
            format!("insert_log/{collection}/"),
            format!("delta_log/{collection}/"),
        );
        let (inserts, deltas) = futures::try_join!(
            ctx.milvus_storage.list(&insert_dir),
            ctx.milvus_storage.list(&delta_dir),
        )?;
        let mut by_dir: HashMap<String, Vec<ObjectInfo>> = HashMap::new();
        for obj in inserts.into_iter().chain(deltas) {
            // `kind/c/p/s/` is the first four segments of the key.
            let dir_len = obj
                .key
                .match_indices('/')
                .nth(3)
                .map(|(i, _)| i + 1)
                .unwrap_or(0);
            if dir_len > 0 {
                by_dir
                    .entry(obj.key[..dir_len].to_string())
                    .or_default()
                    .push(obj);
            }
        }
        Ok(CollectionListing { by_dir })
    }

    fn under(&self, dir: &str) -> &[ObjectInfo] {
        self.by_dir.get(dir).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Plans the copies of a segment's insert and delta logs.
fn segment_files(
    listed: &CollectionListing,
    root: &str,
    name: &str,
    seg: &crate::milvus::proto::milvus::PersistentSegmentInfo,
) -> Result<(SegmentBackupInfo, Vec<FileCopy>)> {
    let (c, p, s) = (seg.collection_id, seg.partition_id, seg.segment_id);
    let insert_dir = layout::milvus_insert_log_dir(c, p, s);
    let delta_dir = layout::milvus_delta_log_dir(c, p, s);
    let inserts = listed.under(&insert_dir);
    let deltas = listed.under(&delta_dir);
    let backup_dir = layout::backup_dir(name);
    let logical = |key: &str| {
        if root.is_empty() {
            key.to_string()
        } else {
            format!("{root}/{key}")
        }
    };
    let log_id = |key: &str| {
        key.rsplit('/')
            .next()
            .and_then(|l| l.parse::<i64>().ok())
            .unwrap_or(0)
    };

    let mut files = Vec::new();
    let mut fields: BTreeMap<i64, Vec<Binlog>> = BTreeMap::new();
    for obj in inserts {
        let rest = &obj.key[insert_dir.len()..];
        let Some((field, _)) = rest.split_once('/') else {
            continue;
        };
        let field: i64 = field.parse().map_err(|_| {
            Error::remote(format!(
                "unexpected object `{}` in segment {s}'s insert logs",
                obj.key
            ))
        })?;
        let target = layout::join(&layout::backup_insert_log_dir(name, c, p, s), rest);
        files.push(FileCopy {
            source: obj.key.clone(),
            target: target[backup_dir.len()..].to_string(),
            size: obj.size,
            etag: obj.etag.clone(),
            shared_with: None,
        });
        fields.entry(field).or_default().push(Binlog {
            log_path: logical(&obj.key),
            log_size: obj.size as i64,
            log_id: log_id(&obj.key),
            entries_num: 0,
            ..Default::default()
        });
    }
    if seg.num_rows > 0 && fields.is_empty() && seg.level != 1 {
        return Err(Error::remote(format!(
            "segment {s} of collection {c} has {} rows but no insert logs under `{insert_dir}` — check minio.rootPath matches Milvus's",
            seg.num_rows
        )));
    }
    let counts: Vec<(i64, usize)> = fields.iter().map(|(f, l)| (*f, l.len())).collect();
    if let Some(max) = counts.iter().map(|(_, n)| *n).max() {
        if let Some((field, n)) = counts.iter().find(|(_, n)| *n != max) {
            return Err(Error::remote(format!(
                "segment {s} of collection {c}: field {field} has {n} insert log(s) but other fields have {max} — orphaned or missing binlogs; compact or repair the collection before backing it up"
            )));
        }
    }
    let mut delta_logs = Vec::new();
    for obj in deltas {
        let rest = &obj.key[delta_dir.len()..];
        let target = layout::join(&layout::backup_delta_log_dir(name, c, p, s), rest);
        files.push(FileCopy {
            source: obj.key.clone(),
            target: target[backup_dir.len()..].to_string(),
            size: obj.size,
            etag: obj.etag.clone(),
            shared_with: None,
        });
        delta_logs.push(Binlog {
            log_path: logical(&obj.key),
            log_size: obj.size as i64,
            log_id: log_id(&obj.key),
            ..Default::default()
        });
    }
    let size: u64 = inserts.iter().chain(deltas.iter()).map(|o| o.size).sum();
    let info = SegmentBackupInfo {
        segment_id: s,
        collection_id: c,
        partition_id: p,
        num_of_rows: seg.num_rows,
        binlogs: fields
            .into_iter()
            .map(|(field_id, binlogs)| FieldBinlog { field_id, binlogs })
            .collect(),
        deltalogs: if delta_logs.is_empty() {
            Vec::new()
        } else {
            vec![FieldBinlog {
                field_id: 0,
                binlogs: delta_logs,
            }]
        },
        statslogs: Vec::new(),
        size: size as i64,
        backuped: true,
        group_id: s,
        is_l0: seg.level == 1,
    };
    Ok((info, files))
}

/// Runs a plan: sample and flush (then list again), copy, write the meta
/// files, apply retention. On failure or cancel, nothing of the backup is
/// left.
pub async fn execute(
    ctx: &Context,
    plan: &BackupPlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<BackupStats> {
    let started = plan.started.unwrap_or_else(Instant::now);
    let journal = CreateJournal::start(
        &ctx.backup_storage,
        &plan.name,
        plan.encoder.encoding(),
        plan.encoder.key.as_ref().map(|k| k.recipient()),
        plan.stored.files.values().cloned().collect(),
    )
    .await
    .during("create")?;
    let result = cancellable(cancel, run(ctx, plan, &journal, events, cancel)).await;
    let mut stats = match result {
        Ok(stats) => stats,
        Err(e) => return Err(leave_failed(ctx, plan, journal, e, events).await),
    };
    if plan.retention.is_active() {
        let opts = DeleteOptions {
            target: DeleteTarget::Retention(plan.retention),
            keep: vec![plan.name.clone()],
        };
        match delete::delete(&ctx.backup_storage, &opts, events, cancel).await {
            Ok(done) => stats.retention_deleted = done.deleted,
            Err(e) => events.warn(format!("retention policy not applied: {e}")),
        }
    }
    stats.duration_s = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// What a failed create leaves: nothing when it was cancelled or had
/// stored no binlog yet; otherwise the files it stored and their journal,
/// for `create --resume` (the backup is listed as incomplete meanwhile).
async fn leave_failed(
    ctx: &Context,
    plan: &BackupPlan,
    journal: CreateJournal,
    e: Error,
    events: &dyn EventSink,
) -> Error {
    let name = &plan.name;
    let e = e.during("create").at("backup", name);
    let binlogs = layout::join(&layout::backup_dir(name), "binlogs/");
    let keep = e.kind() != ErrorKind::Cancelled
        && ctx
            .backup_storage
            .has_objects(&binlogs)
            .await
            .unwrap_or(true)
        && journal.flush().await.is_ok();
    drop(journal);
    if keep {
        return e.guidance(format!(
            "the files stored so far are kept: finish the backup with `milvus-backup create -n {name} --resume` (same options), or remove it with `milvus-backup delete -n {name}`"
        ));
    }
    // Leave nothing that could be mistaken for a backup.
    if let Err(removal) = catalog::remove(&ctx.backup_storage, name).await {
        events.warn(format!(
            "could not remove the partial backup `{name}`: {removal} — remove it with `milvus-backup delete -n {name}`"
        ));
    }
    e
}

async fn run(
    ctx: &Context,
    plan: &BackupPlan,
    journal: &CreateJournal,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<BackupStats> {
    let started = Instant::now();
    for note in &plan.notes {
        events.note(note.clone());
    }
    let mut plan = plan.clone();
    if let (true, Some(key)) = (plan.new_root_key, &plan.encoder.key) {
        root_key::store_root_key(&ctx.backup_storage, key).await?;
        events.note(format!(
            "made the root key {} that the password unlocks (keep the password: without it these backups cannot be read)",
            layout::ROOT_KEY
        ));
    }
    events.emit(plan.planned());
    let client = ctx.milvus().await?;
    let client = client.as_ref();
    let mut samples = Vec::new();
    let n = plan.collections.len();
    for i in 0..n {
        let coll = plan.collections[i].source.clone();
        events.emit(Event::CollectionStarted { index: i });
        events.phase(Phase::Reading {
            index: i,
            of: n,
            collection: coll.to_string(),
        });
        if !plan.flush {
            continue;
        }
        // Right before the flush, so every sampled row is in the flushed segments.
        match sample::take(client, &plan.collections[i].meta).await {
            Ok(s) => samples.extend(s),
            Err(e) => events.warn(format!(
                "no row sample of {coll} (verify --restore-test will compare row counts only): {e}"
            )),
        }
        let mut c = plan.collections[i].clone();
        let flushed = async {
            flush_and_wait(client, &coll, events).await?;
            list_segments(ctx, client, &plan, &mut c).await
        }
        .await;
        match flushed {
            Ok(()) => plan.collections[i] = c,
            Err(e) if vanished(client, &coll, &plan.selection).await => {
                events.warn(format!(
                    "{coll} was dropped during the backup: left out ({e})"
                ));
                plan.collections[i].dropped = true;
                plan.collections[i].files.clear();
                plan.collections[i].segments = 0;
            }
            Err(e) => return Err(e.at("collection", &coll)),
        }
    }
    if plan.flush {
        plan.recount();
        events.emit(plan.planned());
    }
    let mut live = Vec::with_capacity(n);
    let copied = match plan.logical {
        Some(format) => {
            let colls: Vec<&CollectionRef> = plan.collections.iter().map(|c| &c.source).collect();
            let e = crate::ops::logical::in_backup::export_collections(
                ctx,
                &plan.name,
                &colls,
                format,
                &plan.encoder,
                events,
                cancel,
            )
            .await?;
            for (c, l) in plan.collections.iter_mut().zip(&e.logical.collections) {
                c.meta.size = l.files.iter().map(|f| f.size as i64).sum();
                live.push(Some(l.rows as i64));
            }
            plan.info.logical = Some(e.logical);
            Copied {
                copied_bytes: e.files.iter().map(|f| f.size).sum(),
                shared_files: 0,
                files: e.files,
                resumed: Vec::new(),
            }
        }
        None => {
            // Live rows are counted while the files are copied.
            let counts = async {
                let mut live = Vec::with_capacity(n);
                for c in plan.collections.iter().filter(|c| !c.dropped) {
                    live.push(
                        live_rows(ctx, client, c, plan.tuning.meta_parallelism, events).await,
                    );
                }
                live
            };
            let (counted, copied) =
                futures::join!(counts, copy_phase(ctx, &plan, journal, events, cancel));
            live = counted;
            copied?
        }
    };
    events.phase(Phase::WritingMeta);
    let stats = write_meta(ctx, &plan, copied, samples, &live, started).await?;
    // Complete: nothing is left to resume.
    if let Err(e) = journal.finish().await {
        events.warn(format!(
            "backup complete, but its journal was not removed: {e}"
        ));
    }
    for index in 0..n {
        events.emit(Event::CollectionFinished { index, error: None });
    }
    Ok(stats)
}

/// Live rows of one collection as backed up: a `count(*)` query where it is
/// loaded, else its segments' rows minus the deletes their delta logs
/// record. `None` (with a warning) when neither could be read; the
/// segments' rows, deleted ones included, then stand in.
async fn live_rows(
    ctx: &Context,
    client: &dyn Milvus,
    c: &CollectionPlan,
    parallelism: usize,
    events: &dyn EventSink,
) -> Option<i64> {
    let (db, name) = (&c.source.db, &c.source.name);
    if c.meta.load_state == "Loaded" {
        let counted = client
            .query(db, name, "", &["count(*)".to_string()], None)
            .await
            .ok()
            .and_then(|cols| cols.first().and_then(count_value));
        if counted.is_some() {
            return counted;
        }
    }
    let inserted = segment_rows(&c.meta);
    let deltas = c.files.iter().filter(|f| f.target.contains("delta_log/"));
    let counted = futures::stream::iter(deltas.map(|f| async move {
        let bytes = ctx.milvus_storage.read(&f.source).await?;
        crate::ops::backup::deltalog::count_deletes(&bytes)
    }))
    .buffer_unordered(parallelism)
    .try_fold(0u64, |sum, n| async move { Ok(sum + n) })
    .await;
    match counted {
        Ok(deleted) => Some((inserted - deleted as i64).max(0)),
        Err(e) => {
            events.warn(format!(
                "{}: deleted rows not counted, its entities include them: {e}",
                c.collection
            ));
            None
        }
    }
}

/// The value of a `count(*)` column.
fn count_value(column: &crate::milvus::proto::schema::FieldData) -> Option<i64> {
    use crate::milvus::proto::schema::{field_data::Field, scalar_field::Data};
    match column.field.as_ref()? {
        Field::Scalars(s) => match s.data.as_ref()? {
            Data::LongData(d) => d.data.first().copied(),
            _ => None,
        },
        _ => None,
    }
}

/// Rows of a collection's segments, deleted ones included.
fn segment_rows(c: &CollectionBackupInfo) -> i64 {
    c.partition_backups
        .iter()
        .flat_map(|p| &p.segment_backups)
        .map(|s| s.num_of_rows)
        .sum()
}

/// The manifest entries of a backup's files: copied, or shared with the base.
struct Copied {
    files: Vec<ManifestFile>,
    copied_bytes: u64,
    shared_files: u64,
    /// Kept from an interrupted run (`--resume`); in `files` and
    /// `copied_bytes` too.
    resumed: Vec<ManifestFile>,
}

/// Copies the files not shared with the base (checking the base still holds
/// the shared ones), with Milvus's garbage collection paused.
async fn copy_phase(
    ctx: &Context,
    plan: &BackupPlan,
    journal: &CreateJournal,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<Copied> {
    let resumed = if plan.resume {
        keep_stored(ctx, plan).await?
    } else {
        BTreeMap::new()
    };
    let mut shared: Vec<ManifestFile> = Vec::new();
    let mut to_copy: Vec<(usize, &FileCopy)> = Vec::new();
    let index = plan.base_manifest.as_ref().map(BaseIndex::new);
    for (i, c) in plan.collections.iter().enumerate() {
        for f in &c.files {
            let entry = match (&f.shared_with, &index) {
                (Some(base), Some(m)) => share(&plan.encoder, base, m, f),
                _ => None,
            };
            match entry {
                Some(e) => shared.push(e),
                None if resumed.contains_key(&f.target) => {
                    // Stored by the interrupted run: done already.
                    events.emit(Event::FileDone {
                        collection: Some(i),
                        bytes: f.size,
                    });
                }
                None => to_copy.push((i, f)),
            }
        }
    }
    // Largest first: the last copies to finish are small ones, so the run
    // does not end waiting on one big file while the others sit idle.
    to_copy.sort_by_key(|(_, f)| std::cmp::Reverse(f.size));
    let total: u64 = to_copy.iter().map(|(_, f)| f.size).sum();
    events.phase(Phase::Copying {
        files: to_copy.len() as u64,
        bytes: total,
        shared: shared.len() as u64,
    });
    check_base_holds(ctx, plan, &shared).await?;
    // Milvus must not collect the files while they are copied.
    let gc = if plan.gc_pause.enable && !to_copy.is_empty() {
        Some(GcPause::start(&plan.gc_pause, events).await)
    } else {
        None
    };
    let copy_started = Instant::now();
    let copied = cancellable(cancel, copy_all(ctx, plan, &to_copy, journal, events)).await;
    if let Some(gc) = gc {
        gc.resume().await;
    }
    let copied = copied?;
    let copied_now: u64 = copied.iter().map(|f| f.size).sum();
    let resumed: Vec<ManifestFile> = resumed.into_values().collect();
    let copied_bytes = copied_now + resumed.iter().map(|f| f.size).sum::<u64>();
    events.emit(Event::Copied {
        raw_bytes: total,
        stored_bytes: copied_now,
        seconds: copy_started.elapsed().as_secs_f64(),
        encoding: plan.encoder.describe(),
    });
    let shared_files = shared.len() as u64;
    let mut files: Vec<ManifestFile> = copied
        .into_iter()
        .chain(shared)
        .chain(resumed.iter().cloned())
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Copied {
        files,
        copied_bytes,
        shared_files,
        resumed,
    })
}

/// `--resume`: the planned files an interrupted run stored completely (its
/// journal lists them, and storage holds them at the recorded size), by
/// target; every other binlog in the backup's folder is removed, so the
/// result holds exactly what an uninterrupted run would.
async fn keep_stored(ctx: &Context, plan: &BackupPlan) -> Result<BTreeMap<String, ManifestFile>> {
    let backup_dir = layout::backup_dir(&plan.name);
    let present: BTreeMap<String, u64> = ctx
        .backup_storage
        .list(&layout::join(&backup_dir, "binlogs/"))
        .await?
        .into_iter()
        .map(|o| (o.key[backup_dir.len()..].to_string(), o.size))
        .collect();
    let mut kept = BTreeMap::new();
    for f in plan.collections.iter().flat_map(|c| &c.files) {
        if f.shared_with.is_some() {
            continue;
        }
        if let Some(entry) = plan.stored.reusable(&f.target, &f.source, f.size) {
            if present.get(&f.target) == Some(&entry.size) {
                kept.insert(f.target.clone(), entry.clone());
            }
        }
    }
    let stray = present.keys().filter(|k| {
        !kept.contains_key(*k)
            && !plan
                .collections
                .iter()
                .flat_map(|c| &c.files)
                .any(|f| &f.target == *k && f.shared_with.is_none())
    });
    for key in stray {
        ctx.backup_storage
            .delete(&layout::join(&backup_dir, key))
            .await?;
    }
    Ok(kept)
}

/// A shared file must still be where the base says, at its size (and
/// ETag, where recorded): checked against one listing of each holder's
/// folder per collection, not one request per file.
async fn check_base_holds(ctx: &Context, plan: &BackupPlan, shared: &[ManifestFile]) -> Result<()> {
    let name = &plan.name;
    // `binlogs/insert_log/<collection>/` of each holder.
    let mut folders: BTreeMap<String, Vec<&ManifestFile>> = BTreeMap::new();
    for f in shared {
        let dir_len = f
            .path
            .match_indices('/')
            .nth(2)
            .map(|(i, _)| i + 1)
            .unwrap_or(0);
        let folder = layout::join(&layout::backup_dir(f.holder(name)), &f.path[..dir_len]);
        folders.entry(folder).or_default().push(f);
    }
    let listings = futures::stream::iter(folders.keys().map(|folder| async move {
        ctx.backup_storage.list(folder).await.map(|l| {
            l.into_iter()
                .map(|o| (o.key.clone(), o))
                .collect::<HashMap<String, ObjectInfo>>()
        })
    }))
    .buffered(plan.tuning.meta_parallelism)
    .try_collect::<Vec<_>>()
    .await?;
    let mut missing = None;
    'folders: for (files, listing) in folders.values().zip(&listings) {
        for f in files {
            let key = layout::join(&layout::backup_dir(f.holder(name)), &f.path);
            let holds = listing.get(&key).is_some_and(|o| {
                o.size == f.size
                    && match (&f.etag, &o.etag) {
                        (Some(want), Some(got)) => want == got,
                        _ => true,
                    }
            });
            if !holds {
                missing = Some((f.holder(name).to_string(), key));
                break 'folders;
            }
        }
    }
    let Some((base, key)) = missing else {
        return Ok(());
    };
    match catalog::get(&ctx.backup_storage, &base).await {
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::not_found(format!(
            "base backup `{base}` was deleted while this backup was being made — make a full backup, or choose another base"
        ))),
        _ => Err(Error::corrupt(format!(
            "the base backup's file `{key}` is missing or has the wrong size — run `milvus-backup verify -n {base}`, or make a full backup"
        ))
        .at("key", key)),
    }
}

/// A base manifest's files by their Milvus source key.
struct BaseIndex<'a> {
    manifest: &'a Manifest,
    by_source: HashMap<&'a str, &'a ManifestFile>,
}

impl<'a> BaseIndex<'a> {
    fn new(manifest: &'a Manifest) -> BaseIndex<'a> {
        BaseIndex {
            manifest,
            by_source: manifest
                .files
                .iter()
                .map(|f| (f.source.as_str(), f))
                .collect(),
        }
    }
}

/// The manifest entry of `f` referring to the base's copy, when the base
/// holds the same Milvus file stored the same way: same key and size, and
/// the same ETag where both listings gave one (the listing proves it; no
/// request per file).
fn share(encoder: &Encoder, base: &str, index: &BaseIndex, f: &FileCopy) -> Option<ManifestFile> {
    let manifest = index.manifest;
    let b = *index.by_source.get(f.source.as_str())?;
    let same_etag = match (&b.source_etag, &f.etag) {
        (Some(was), Some(is)) => was == is,
        _ => true,
    };
    let same_key = match (&manifest.encryption, &encoder.key) {
        (None, None) => true,
        (Some(e), Some(k)) => e.recipient == k.recipient(),
        _ => false,
    };
    let same = b.path == f.target
        && same_etag
        && b.raw_size.unwrap_or(b.size) == f.size
        && b.encoding == encoder.encoding()
        && same_key;
    same.then(|| ManifestFile {
        stored_in: Some(b.holder(base).to_string()),
        ..b.clone()
    })
}

/// Copies files concurrently, encoding them as the plan says.
async fn copy_all(
    ctx: &Context,
    plan: &BackupPlan,
    files: &[(usize, &FileCopy)],
    journal: &CreateJournal,
    events: &dyn EventSink,
) -> Result<Vec<ManifestFile>> {
    let backup_dir = layout::backup_dir(&plan.name);
    let engine = &CopyEngine::new(
        plan.tuning.copy_parallelism,
        plan.tuning.rate_limit_mb_s as f64,
    );
    let plain = plan.encoder.encoding().is_plain();
    futures::stream::iter(files.iter().map(|(collection, f)| {
        let target = format!("{backup_dir}{}", f.target);
        // Server-side and piped copies buffer nothing: only the others
        // (and every encoded copy) take from the memory budget.
        let buffered =
            !plain || ctx.milvus_storage.route_to(&ctx.backup_storage, f.size) == Route::Buffered;
        async move {
            let entry = engine
                .run(f.size, buffered, || {
                    copy_file(ctx, &plan.encoder, f, &target)
                })
                .await
                .at("key", &f.source)?;
            journal.stored(&entry);
            events.emit(Event::FileDone {
                collection: Some(*collection),
                bytes: f.size,
            });
            Ok(entry)
        }
    }))
    .buffer_unordered(engine.width())
    .try_collect()
    .await
}

/// Copies one file; its manifest entry says how the copy was checked: the
/// SHA-256 of the bytes streamed or the service's SHA-256 of a server-side
/// copy, else the copy's ETag against the listed one (see [`Check`]). Only
/// a server-side copy the service reports nothing of is read back.
async fn copy_file(
    ctx: &Context,
    encoder: &Encoder,
    f: &FileCopy,
    target: &str,
) -> Result<ManifestFile> {
    if encoder.encoding().is_plain() {
        let listed = ObjectInfo {
            key: f.source.clone(),
            size: f.size,
            etag: f.etag.clone(),
        };
        let outcome = ctx
            .milvus_storage
            .copy_listed(&listed, &ctx.backup_storage, target)
            .await?;
        let (sha256, size, check) = match outcome.sha256 {
            Some(sha) => (sha, outcome.bytes, outcome.check),
            None if outcome.etag.is_some() => (String::new(), outcome.bytes, outcome.check),
            None => {
                let (sha, size) = ctx.backup_storage.sha256(target).await?;
                (sha, size, Check::ReadBack)
            }
        };
        check_unchanged(&f.source, f.size, size)?;
        return Ok(ManifestFile {
            path: f.target.clone(),
            size,
            sha256,
            source: f.source.clone(),
            check: Some(check),
            etag: outcome.etag,
            source_etag: f.etag.clone(),
            ..Default::default()
        });
    }
    let e = crate::storage::encoded::encode_copy(
        &ctx.milvus_storage,
        &f.source,
        &ctx.backup_storage,
        target,
        encoder,
    )
    .await?;
    check_unchanged(&f.source, f.size, e.raw_size)?;
    Ok(ManifestFile {
        path: f.target.clone(),
        size: e.size,
        sha256: e.sha256,
        source: f.source.clone(),
        encoding: encoder.encoding(),
        raw_size: Some(e.raw_size),
        raw_sha256: (!encoder.encoding().encrypted).then_some(e.raw_sha256),
        stored_in: None,
        check: Some(Check::Sha256),
        etag: None,
        source_etag: f.etag.clone(),
        rows: None,
    })
}

fn check_unchanged(source: &str, expected: u64, size: u64) -> Result<()> {
    if size != expected {
        return Err(Error::remote(format!(
            "`{source}` changed while it was copied ({expected} bytes listed, {size} copied) — Milvus may be compacting; retry the backup"
        )));
    }
    Ok(())
}

/// Writes a meta file; sealed with `seal`'s key when given.
/// Returns the SHA-256 of the stored bytes, for `summary.json`.
async fn write_json<T: Serialize>(
    ctx: &Context,
    key: &str,
    value: &T,
    seal: Option<&key::Key>,
) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::internal(format!("encoding {key}: {e}")))?;
    let bytes = match seal {
        Some(k) => key::seal(&bytes, k),
        None => bytes,
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    ctx.backup_storage.write(key, bytes).await?;
    Ok(sha256)
}

/// Writes the sample and the meta files, `full_meta.json` (the completion
/// mark) and then `summary.json` last.
async fn write_meta(
    ctx: &Context,
    plan: &BackupPlan,
    copied: Copied,
    samples: Vec<sample::CollectionSample>,
    live: &[Option<i64>],
    started: Instant,
) -> Result<BackupStats> {
    let name = plan.name.as_str();
    let Copied {
        files,
        copied_bytes,
        shared_files,
        resumed,
    } = copied;
    // SHA-256 of every meta file as stored, kept in summary.json (written
    // last), so any later edit of one is found by verify and restore.
    let mut meta_sha256 = BTreeMap::new();
    if !samples.is_empty() {
        // Sampled rows are data: sealed like the binlogs.
        let sha = write_json(
            ctx,
            &layout::backup_meta_file(name, layout::SAMPLE),
            &Sample::new(samples),
            plan.encoder.key.as_ref(),
        )
        .await?;
        meta_sha256.insert(layout::SAMPLE.to_string(), sha);
    }
    let mut info = plan.info.clone();
    info.end_time = chrono::Utc::now().timestamp_millis();
    info.collection_backups = plan
        .collections
        .iter()
        .filter(|c| !c.dropped)
        .map(|c| c.meta.clone())
        .collect();
    info.size = info.collection_backups.iter().map(|c| c.size).sum();
    let info = &info;
    // Schemas are as private as the data; the brief, manifest and summary
    // stay readable so backups can be listed and checked without the key.
    let seal = plan.encoder.key.as_ref();
    let meta = |f: &str| layout::backup_meta_file(name, f);
    let mut segments = Vec::new();
    let mut partitions = Vec::new();
    let mut collections = Vec::new();
    for c in &info.collection_backups {
        for p in &c.partition_backups {
            segments.extend(p.segment_backups.iter().cloned());
            partitions.push(PartitionBackupInfo {
                segment_backups: Vec::new(),
                ..p.clone()
            });
        }
        collections.push(CollectionBackupInfo {
            partition_backups: Vec::new(),
            ..c.clone()
        });
    }
    let inserted: i64 = segments.iter().map(|s| s.num_of_rows).sum();
    let entities: i64 = info
        .collection_backups
        .iter()
        .zip(live)
        .map(|(c, live)| live.unwrap_or_else(|| segment_rows(c)))
        .sum();
    let deleted_entities = (inserted - entities).max(0);
    let size_bytes: u64 = files.iter().map(|f| f.size).sum();
    let file_count = files.len() as u64;
    let created_at = chrono::Utc::now().to_rfc3339();

    let brief = BackupInfo {
        collection_backups: Vec::new(),
        ..info.clone()
    };
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        tool: "milvus-backup-rs".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        backup_name: name.to_string(),
        created_at: created_at.clone(),
        compression: (!plan.encoder.compression.is_none()).then_some(CompressionInfo {
            algorithm: plan.encoder.compression,
            level: plan.encoder.level,
        }),
        encryption: seal.map(|k| EncryptionInfo {
            scheme: "age-x25519".into(),
            recipient: k.recipient(),
        }),
        base_backup: plan.base_backup.clone(),
        files,
    };
    // The per-level files, the manifest and the brief at once; the
    // completion mark after them.
    let keys = [
        layout::SEGMENT_META,
        layout::PARTITION_META,
        layout::COLLECTION_META,
        layout::MANIFEST,
        layout::BACKUP_META,
    ]
    .map(|f| (f, meta(f)));
    let (segments, partitions, collections) = (
        Infos { infos: segments },
        Infos { infos: partitions },
        Infos { infos: collections },
    );
    let (segment_sha, partition_sha, collection_sha, manifest_sha, brief_sha) = futures::try_join!(
        write_json(ctx, &keys[0].1, &segments, seal),
        write_json(ctx, &keys[1].1, &partitions, seal),
        write_json(ctx, &keys[2].1, &collections, seal),
        write_json(ctx, &keys[3].1, &manifest, None),
        write_json(ctx, &keys[4].1, &brief, None),
    )?;
    let shas = [
        segment_sha,
        partition_sha,
        collection_sha,
        manifest_sha,
        brief_sha,
    ];
    for ((file, _), sha) in keys.iter().zip(shas) {
        meta_sha256.insert(file.to_string(), sha);
    }
    // The completion mark: nothing may be written before it that a reader
    // of a complete backup needs.
    let sha = write_json(ctx, &meta(layout::FULL_META), info, seal).await?;
    meta_sha256.insert(layout::FULL_META.to_string(), sha);
    let summary = Summary {
        format_version: FORMAT_VERSION,
        name: name.to_string(),
        id: info.id.clone(),
        created_at,
        backup_timestamp: info.backup_timestamp,
        milvus_version: info.milvus_version.clone(),
        collections: info
            .collection_backups
            .iter()
            .map(|c| format!("{}.{}", c.db_name, c.collection_name))
            .collect(),
        entities,
        deleted_entities,
        size_bytes: size_bytes as i64,
        files: file_count,
        copied_bytes: copied_bytes as i64,
        base_backup: manifest.base_backup.clone(),
        compression: plan.encoder.compression,
        encrypted: seal.is_some(),
        data_format: info.logical.as_ref().map(|l| l.format.to_string()),
        meta_sha256,
    };
    write_json(ctx, &meta(layout::SUMMARY), &summary, None).await?;
    crate::repo::catalog_index::added(&ctx.backup_storage, catalog::from_summary(name, &summary))
        .await;
    Ok(BackupStats {
        name: name.to_string(),
        format: plan.format.clone(),
        collections: info.collection_backups.len(),
        entities,
        deleted_entities,
        size_bytes,
        copied_bytes,
        files: file_count,
        shared_files,
        base_backup: manifest.base_backup.clone(),
        duration_s: started.elapsed().as_secs_f64(),
        rbac: plan.rbac,
        resumed_files: resumed.len() as u64,
        resumed_bytes: resumed.iter().map(|f| f.size).sum(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Collect, Tracker};
    use crate::testkit::Kit;

    fn opts(name: &str) -> BackupOptions {
        BackupOptions {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    async fn kit_with_docs() -> Kit {
        let kit = Kit::new();
        kit.milvus
            .add_collection("docs", &[100, 200, 300], 2, 1000)
            .await;
        kit
    }

    #[tokio::test]
    async fn a_collection_dropped_during_a_backup_of_everything_is_left_out() {
        use crate::milvus::Milvus;
        let kit = kit_with_docs().await;
        kit.milvus.add_collection("gone", &[100], 1, 10).await;
        let none = CancellationToken::new();
        let everything = plan(&kit.ctx, &opts("b1")).await.unwrap();
        assert_eq!(everything.totals.collections, 2);
        let mut named = opts("b2");
        named.selection.collections = vec!["docs".into(), "gone".into()];
        let named = plan(&kit.ctx, &named).await.unwrap();
        kit.milvus.drop_collection("default", "gone").await.unwrap();

        let events = Collect::default();
        let stats = execute(&kit.ctx, &everything, &events, &none)
            .await
            .unwrap();
        assert_eq!(stats.collections, 1);
        assert!(events.events().iter().any(|e| matches!(e,
            Event::Warning { message } if message.contains("default.gone was dropped during the backup"))));
        let info = catalog::get(&kit.ctx.backup_storage, "b1").await.unwrap();
        assert_eq!(info.collection_backups.len(), 1);
        assert_eq!(info.collection_backups[0].collection_name, "docs");

        // Named one by one, its loss fails the backup, which leaves nothing.
        let e = execute(&kit.ctx, &named, &Collect::default(), &none)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(kit.backup_keys("b2/").await.is_empty());
    }

    #[tokio::test]
    async fn a_plan_lists_the_work_and_writes_nothing() {
        let kit = kit_with_docs().await;
        let plan = plan(&kit.ctx, &opts("b1")).await.unwrap();
        assert_eq!(plan.totals.collections, 1);
        assert_eq!(plan.totals.segments, 3);
        // 3 segments × (2 fields × 2 insert logs + 1 delta log)
        assert_eq!(plan.totals.files, 15);
        assert_eq!(plan.totals.bytes, 3 * (4 * 1000 + 64));
        assert!(plan.flush);
        assert!(kit.backup_keys("").await.is_empty());
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json["collections"][0]["files"].as_array().unwrap().len(),
            5 * 3
        );
    }

    #[tokio::test]
    async fn execute_copies_everything_and_reports_rising_progress() {
        let kit = kit_with_docs().await;
        let plan = plan(&kit.ctx, &opts("b1")).await.unwrap();
        let events = Collect::default();
        let stats = execute(&kit.ctx, &plan, &events, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!((stats.files, stats.entities), (15, 600));
        let rows = catalog::list(&kit.ctx.backup_storage).await.unwrap();
        assert_eq!(rows[0].state, catalog::BackupState::Complete);
        let manifest = catalog::manifest(&kit.ctx.backup_storage, "b1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(manifest.files.len(), 15);
        // Progress, as the server folds it, only rises and passes 3+ values.
        let mut tracker = Tracker::new();
        let mut seen = Vec::new();
        for e in events.events() {
            tracker.apply(&e);
            seen.push(tracker.percent());
        }
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        seen.dedup();
        assert!(
            seen.iter().filter(|p| **p > 0 && **p < 100).count() >= 3,
            "{seen:?}"
        );
        let done = events
            .events()
            .iter()
            .filter(|e| matches!(e, Event::FileDone { .. }))
            .count();
        assert_eq!(done, 15);
    }

    #[tokio::test]
    async fn a_copy_failing_half_way_leaves_an_incomplete_backup_that_resumes() {
        let kit = kit_with_docs().await;
        let none = CancellationToken::new();
        // No flush, so execute copies what the plan listed.
        let forced = BackupOptions {
            force: true,
            tuning: Some(Tuning {
                copy_parallelism: 1,
                ..Tuning::from_config(&kit.ctx.config.backup)
            }),
            ..opts("b1")
        };
        let plan1 = plan(&kit.ctx, &forced).await.unwrap();
        // A listed file vanishes before it is copied (Milvus compacted it).
        let victim = plan1.collections[0].files[7].source.clone();
        let bytes = kit.ctx.milvus_storage.read(&victim).await.unwrap();
        kit.ctx.milvus_storage.delete(&victim).await.unwrap();
        let err = execute(&kit.ctx, &plan1, &Collect::default(), &none)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert_eq!(err.operation(), Some("create"));
        assert!(err.to_string().contains("create -n b1 --resume"), "{err}");
        let rows = catalog::list(&kit.ctx.backup_storage).await.unwrap();
        assert_eq!(rows[0].state, catalog::BackupState::Incomplete);

        // Without --resume the name is refused, offering both ways out.
        let e = plan(&kit.ctx, &forced).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("--resume") && e.to_string().contains("delete -n b1"));

        kit.ctx.milvus_storage.write(&victim, bytes).await.unwrap();
        let resume = BackupOptions {
            resume: true,
            ..forced.clone()
        };
        let plan2 = plan(&kit.ctx, &resume).await.unwrap();
        // The files copied before the victim (the copy engine may have had
        // a second copy in flight when it failed).
        assert!(
            (6..=7).contains(&plan2.resumed_files),
            "{}",
            plan2.resumed_files
        );
        let stats = execute(&kit.ctx, &plan2, &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!(
            (stats.files, stats.resumed_files),
            (15, plan2.resumed_files)
        );
        assert!(kit
            .ctx
            .backup_storage
            .stat(&layout::create_journal("b1"))
            .await
            .unwrap()
            .is_none());

        // The same manifest as a backup that was never interrupted.
        let plain = BackupOptions {
            force: true,
            ..opts("b2")
        };
        create(&kit.ctx, &plain, &Collect::default(), &none)
            .await
            .unwrap();
        let files = |name: &'static str| {
            let kit = &kit;
            async move {
                catalog::manifest(&kit.ctx.backup_storage, name)
                    .await
                    .unwrap()
                    .unwrap()
                    .files
                    .into_iter()
                    .map(|f| (f.path, f.size, f.sha256, f.source))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(files("b1").await, files("b2").await);
        let again = plan(&kit.ctx, &resume).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::AlreadyExists);
    }

    #[tokio::test]
    async fn a_cancelled_backup_is_removed() {
        let kit = kit_with_docs().await;
        let plan = plan(&kit.ctx, &opts("b1")).await.unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = execute(&kit.ctx, &plan, &Collect::default(), &cancel)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert!(kit.backup_keys("").await.is_empty());
    }

    #[tokio::test]
    async fn names_taken_and_empty_selections_are_refused_before_any_write() {
        let kit = kit_with_docs().await;
        create(
            &kit.ctx,
            &opts("b1"),
            &Collect::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let e = plan(&kit.ctx, &opts("b1")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        // What a killed create leaves: files, no completion mark.
        kit.ctx
            .backup_storage
            .write("half/binlogs/insert_log/1/2/3/3/100/1", vec![1, 2, 3])
            .await
            .unwrap();
        let e = plan(&kit.ctx, &opts("half")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(
            e.to_string().contains("incomplete")
                && e.to_string().contains("delete -n half")
                && e.to_string().contains("create -n half --resume"),
            "{e}"
        );
        let e = plan(&kit.ctx, &opts("bad-name")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let mut o = opts("b2");
        o.selection.collections = vec!["nope".into()];
        assert_eq!(
            plan(&kit.ctx, &o).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn incremental_shares_unchanged_files_and_stops_when_the_base_goes() {
        let kit = kit_with_docs().await;
        let none = CancellationToken::new();
        create(&kit.ctx, &opts("base"), &Collect::default(), &none)
            .await
            .unwrap();
        let mut inc = opts("inc");
        inc.base_backup = Some("base".into());
        let p = plan(&kit.ctx, &inc).await.unwrap();
        assert_eq!(p.totals.shared_files, 15);
        let stats = execute(&kit.ctx, &p, &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!((stats.shared_files, stats.copied_bytes), (15, 0));

        // The base disappears between plan and execute.
        let mut inc2 = opts("inc2");
        inc2.base_backup = Some("inc".into());
        let p = plan(&kit.ctx, &inc2).await.unwrap();
        crate::ops::delete::delete_backup(&kit.ctx.backup_storage, "base")
            .await
            .unwrap();
        crate::ops::delete::delete_backup(&kit.ctx.backup_storage, "inc")
            .await
            .unwrap();
        let e = execute(&kit.ctx, &p, &Collect::default(), &none)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("was deleted"), "{e}");
        assert!(kit.backup_keys("inc2/").await.is_empty());
    }

    #[tokio::test]
    async fn retention_runs_after_a_backup_and_spares_it() {
        let mut kit = kit_with_docs().await;
        kit.ctx.config.backup.max_backup_num = 2;
        let none = CancellationToken::new();
        for name in ["r1", "r2"] {
            create(&kit.ctx, &opts(name), &Collect::default(), &none)
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let stats = create(&kit.ctx, &opts("r3"), &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!(stats.retention_deleted, vec!["r1"]);
        let names: Vec<String> = catalog::names(&kit.ctx.backup_storage).await.unwrap();
        assert_eq!(names, vec!["r2", "r3"]);
    }
}
