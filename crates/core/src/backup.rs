//! `create`: a physical backup of selected collections.
//!
//! Options → Plan → Stats: [`BackupOptions`] say what the user asked for,
//! [`plan`] reads metadata and segment file lists from Milvus into a
//! [`BackupPlan`] (which `--dry-run` could print), and [`execute`] copies
//! the files and writes the meta, returning [`BackupStats`].
//!
//! Completeness: every binlog and the per-level meta files are written
//! first, `full_meta.json` last, then our `summary.json`. A backup without
//! `full_meta.json` is incomplete, and on any failure the tool removes what
//! it wrote.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::catalog;
use crate::codec::{self, Compression, Encoder};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::format::{self, *};
use crate::gc::GcPause;
use crate::milvus::{segment_state, MilvusClient};
use crate::progress::Progress;
use crate::sample::{self, CollectionSample, Sample};
use crate::selection::{CollectionRef, Selection};
use crate::storage::layout;

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
    /// Share unchanged files with this earlier backup.
    pub base_backup: Option<String>,
    /// Share unchanged files with the newest complete backup of the same
    /// collections, if there is one.
    pub incremental: bool,
}

/// One file to copy from Milvus storage into the backup.
#[derive(Debug, Clone, Serialize)]
pub struct FileCopy {
    /// Key in Milvus storage, relative to its root.
    pub source: String,
    /// Key relative to the backup folder.
    pub target: String,
    pub size: u64,
}

/// Everything the backup will contain, before anything is copied.
#[derive(Debug, Clone, Serialize)]
pub struct BackupPlan {
    pub name: String,
    pub info: BackupInfo,
    pub files: Vec<FileCopy>,
    /// How new files are stored.
    #[serde(skip)]
    pub encoder: Encoder,
    /// The base of an incremental backup and its manifest.
    #[serde(skip)]
    pub base: Option<(String, Manifest)>,
    #[serde(skip)]
    pub started: Option<Instant>,
    /// Rows sampled before the flush, for `verify --restore-test`.
    #[serde(skip)]
    pub samples: Vec<CollectionSample>,
}

/// What a finished backup did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupStats {
    pub name: String,
    pub collections: usize,
    pub entities: i64,
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
}

/// Backup names the anchor accepts: `^[A-Za-z_][A-Za-z0-9_]*$`, ≤ 128 chars.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "invalid backup name `{name}` — use letters, digits and `_`, starting with a letter or `_`, at most 128 characters"
        )))
    }
}

/// `backup_YYYY_MM_DD_HH_MM_SS_<nanos>` in UTC, like the anchor.
pub fn default_name() -> String {
    let now = chrono::Utc::now();
    format!(
        "backup_{}_{}",
        now.format("%Y_%m_%d_%H_%M_%S"),
        now.timestamp_subsec_nanos()
    )
}

/// Creates a backup: plan, then execute.
pub async fn create(
    ctx: &Context,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupStats> {
    let started = Instant::now();
    let name = opts.name.clone().unwrap_or_else(default_name);
    validate_name(&name)?;
    if ctx
        .backup_storage
        .has_objects(&layout::backup_dir(&name))
        .await?
    {
        return Err(Error::already_exists(format!(
            "backup `{name}` already exists in {} — choose another name or delete it first",
            ctx.backup_storage.spec().describe()
        )));
    }
    if opts.rbac {
        return Err(Error::new(
            crate::ErrorKind::Unsupported,
            "--rbac is not supported yet: users and roles are not backed up",
        ));
    }
    let client = ctx.milvus().await?;
    let collections = opts.selection.resolve(&client).await?;
    if collections.is_empty() {
        return Err(Error::not_found(format!(
            "Milvus at {} has no collections to back up",
            client.address()
        )));
    }
    let encoder = encoder(ctx, opts)?;
    let base = base_backup(ctx, opts, &collections, progress).await?;
    let mut plan = plan(ctx, &client, &name, &collections, opts, progress).await?;
    plan.started = Some(started);
    plan.encoder = encoder;
    plan.base = base;
    let result = execute(ctx, &plan, progress).await;
    if result.is_err() {
        // Leave nothing that could be mistaken for a backup.
        if let Err(e) = ctx
            .backup_storage
            .delete_prefix(&layout::backup_dir(&name))
            .await
        {
            progress.warn(&format!(
                "could not remove the partial backup `{name}`: {e}"
            ));
        }
    }
    let mut stats = result?;
    let policy = catalog::Retention::from_config(&ctx.config.backup);
    if policy.is_active() {
        match catalog::apply_retention(&ctx.backup_storage, &policy, &[&name], false, progress)
            .await
        {
            Ok(gone) => stats.retention_deleted = gone,
            Err(e) => progress.warn(&format!("retention policy not applied: {e}")),
        }
    }
    Ok(stats)
}

/// How new files are stored, from the options and the config.
fn encoder(ctx: &Context, opts: &BackupOptions) -> Result<Encoder> {
    let cfg = &ctx.config.backup;
    let compression = match &opts.compress {
        Some(name) => Compression::parse(name)?,
        None if cfg.compression => Compression::parse(&cfg.compression_algorithm)?,
        None => Compression::None,
    };
    let level = opts.compress_level.unwrap_or(cfg.compression_level);
    compression.check_level(level)?;
    let key = if opts.encrypt {
        Some(ctx.backup_storage.key().cloned().ok_or_else(|| {
            Error::invalid_input(
                "--encrypt needs a key: set MILVUS_BACKUP_ENCRYPTION_KEY or backup.encryption.keyFile (generate one with `milvus-backup keygen`)",
            )
        })?)
    } else {
        None
    };
    Ok(Encoder {
        compression,
        level,
        key,
    })
}

/// The base of an incremental backup: the one named, or with
/// `--incremental` the newest complete backup of the same collections.
async fn base_backup(
    ctx: &Context,
    opts: &BackupOptions,
    collections: &[CollectionRef],
    progress: &dyn Progress,
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
                    progress
                        .step("no earlier backup of the same collections: making a full backup");
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
    progress.step(&format!(
        "incremental: sharing unchanged files with `{name}`"
    ));
    Ok(Some((name, manifest)))
}

/// Reads metadata and segment files; flushes first unless `force`.
pub async fn plan(
    ctx: &Context,
    client: &MilvusClient,
    name: &str,
    collections: &[CollectionRef],
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupPlan> {
    let now = chrono::Utc::now();
    let mut info = BackupInfo {
        id: uuid::Uuid::new_v4().to_string(),
        state_code: 2,
        name: name.to_string(),
        backup_timestamp: now.timestamp_millis() as u64,
        start_time: now.timestamp_millis(),
        progress: 100,
        milvus_version: client.version_text.clone(),
        format: "milvus-backup-rs".into(),
        ..Default::default()
    };
    let mut files = Vec::new();
    let mut samples = Vec::new();
    let root = ctx.milvus_storage.spec().root.trim_matches('/').to_string();

    for (i, coll) in collections.iter().enumerate() {
        progress.step(&format!("[{}/{}] reading {coll}", i + 1, collections.len()));
        let mut cinfo = collection_meta(client, coll).await?;
        // Before the flush, so every sampled row is in the flushed segments.
        if !opts.force && !opts.meta_only {
            match sample::take(client, &cinfo).await {
                Ok(s) => samples.extend(s),
                Err(e) => progress.warn(&format!(
                    "no row sample of {coll} (verify --restore-test will compare row counts only): {e}"
                )),
            }
        }
        if !opts.force && !opts.meta_only {
            flush_and_wait(client, coll, progress).await?;
        }
        let segments: Vec<_> = client
            .persistent_segments(&coll.db, &coll.name)
            .await?
            .into_iter()
            .filter(|s| s.state == segment_state::FLUSHED)
            .collect();
        let mut by_partition: BTreeMap<i64, Vec<SegmentBackupInfo>> = BTreeMap::new();
        if !opts.meta_only {
            for seg in &segments {
                let (sinfo, seg_files) = segment_files(ctx, &root, name, seg).await?;
                files.extend(seg_files);
                by_partition
                    .entry(seg.partition_id)
                    .or_default()
                    .push(sinfo);
            }
        }
        for part in &mut cinfo.partition_backups {
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
        cinfo.size = cinfo.partition_backups.iter().map(|p| p.size).sum();
        info.size += cinfo.size;
        info.collection_backups.push(cinfo);
    }
    // The selection was resolved against the server's databases already.
    let dbs: std::collections::BTreeSet<&str> = collections.iter().map(|c| c.db.as_str()).collect();
    info.database_backups = dbs
        .into_iter()
        .map(|db_name| DatabaseBackupInfo {
            db_name: db_name.to_string(),
            ..Default::default()
        })
        .collect();
    Ok(BackupPlan {
        name: name.to_string(),
        info,
        files,
        encoder: Encoder::default(),
        base: None,
        started: None,
        samples,
    })
}

async fn collection_meta(
    client: &MilvusClient,
    coll: &CollectionRef,
) -> Result<CollectionBackupInfo> {
    let desc = client.describe_collection(&coll.db, &coll.name).await?;
    let schema = desc
        .schema
        .as_ref()
        .ok_or_else(|| Error::remote(format!("DescribeCollection of {coll} returned no schema")))?;
    let indexes = client.describe_indexes(&coll.db, &coll.name).await?;
    let partitions = client.show_partitions(&coll.db, &coll.name).await?;
    let load_state = client.load_state(&coll.db, &coll.name).await?;
    Ok(CollectionBackupInfo {
        id: uuid::Uuid::new_v4().to_string(),
        state_code: 2,
        progress: 100,
        collection_id: desc.collection_id,
        db_name: coll.db.clone(),
        collection_name: coll.name.clone(),
        schema: format::schema_from_proto(schema),
        shards_num: desc.shards_num,
        consistency_level: desc.consistency_level,
        backup_timestamp: chrono::Utc::now().timestamp_millis() as u64,
        has_index: !indexes.is_empty(),
        index_infos: indexes
            .iter()
            .map(|ix| IndexInfo {
                field_name: ix.field_name.clone(),
                index_name: ix.index_name.clone(),
                index_type: ix
                    .params
                    .iter()
                    .find(|p| p.key == "index_type")
                    .map(|p| p.value.clone())
                    .unwrap_or_default(),
                params: ix
                    .params
                    .iter()
                    .map(|p| (p.key.clone(), p.value.clone()))
                    .collect(),
            })
            .collect(),
        load_state: load_state.clone(),
        properties: kvs(&desc.properties),
        num_partitions: desc.num_partitions,
        aliases: desc.aliases.clone(),
        partition_backups: partitions
            .into_iter()
            .map(|(partition_name, partition_id)| PartitionBackupInfo {
                partition_id,
                partition_name,
                collection_id: desc.collection_id,
                load_state: load_state.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

/// Flushes one collection and waits (bounded) until its segments persist.
async fn flush_and_wait(
    client: &MilvusClient,
    coll: &CollectionRef,
    progress: &dyn Progress,
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
            progress.step(&format!(
                "waiting for {coll} to flush {} segment(s)",
                segments.len()
            ));
            announced = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Lists a segment's insert and delta logs and plans their copies.
async fn segment_files(
    ctx: &Context,
    root: &str,
    name: &str,
    seg: &milvus::proto::milvus::PersistentSegmentInfo,
) -> Result<(SegmentBackupInfo, Vec<FileCopy>)> {
    let (c, p, s) = (seg.collection_id, seg.partition_id, seg.segment_id);
    let insert_dir = layout::milvus_insert_log_dir(c, p, s);
    let delta_dir = layout::milvus_delta_log_dir(c, p, s);
    let inserts = ctx.milvus_storage.list(&insert_dir).await?;
    let deltas = ctx.milvus_storage.list(&delta_dir).await?;
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
    for obj in &inserts {
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
    for obj in &deltas {
        let rest = &obj.key[delta_dir.len()..];
        let target = layout::join(&layout::backup_delta_log_dir(name, c, p, s), rest);
        files.push(FileCopy {
            source: obj.key.clone(),
            target: target[backup_dir.len()..].to_string(),
            size: obj.size,
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

/// Copies the planned files and writes the meta files, `full_meta.json` last.
pub async fn execute(
    ctx: &Context,
    plan: &BackupPlan,
    progress: &dyn Progress,
) -> Result<BackupStats> {
    let started = plan.started.unwrap_or_else(Instant::now);
    let name = &plan.name;
    // Files unchanged since the base are referenced, the rest copied.
    let shared: BTreeMap<&str, ManifestFile> = match &plan.base {
        Some((base, manifest)) => plan
            .files
            .iter()
            .filter_map(|f| Some((f.source.as_str(), share(plan, base, manifest, f)?)))
            .collect(),
        None => BTreeMap::new(),
    };
    let to_copy: Vec<&FileCopy> = plan
        .files
        .iter()
        .filter(|f| !shared.contains_key(f.source.as_str()))
        .collect();
    let total: u64 = to_copy.iter().map(|f| f.size).sum();
    progress.step(&format!(
        "copying {} files ({} bytes){}",
        to_copy.len(),
        total,
        if shared.is_empty() {
            String::new()
        } else {
            format!(", sharing {} unchanged files with the base", shared.len())
        }
    ));
    // A shared file must still be where the base says, at its size.
    let missing = futures::stream::iter(shared.values().map(|f| async move {
        let key = layout::join(&layout::backup_dir(f.holder(name)), &f.path);
        match ctx.backup_storage.stat(&key).await {
            Ok(Some(n)) if n == f.size => Ok(None),
            Ok(_) => Ok(Some(key)),
            Err(e) => Err(e),
        }
    }))
    .buffer_unordered(32)
    .try_filter_map(|k| async move { Ok(k) })
    .try_collect::<Vec<String>>()
    .await?;
    if let Some(key) = missing.first() {
        return Err(Error::new(
            crate::ErrorKind::Corrupt,
            format!(
                "the base backup's file `{key}` is missing or has the wrong size — run `milvus-backup verify` on the base, or make a full backup"
            ),
        ));
    }
    // Milvus must not collect the files while they are copied.
    let gc = if ctx.config.backup.gc_pause.enable && !to_copy.is_empty() {
        Some(GcPause::start(&ctx.config.backup.gc_pause, progress).await)
    } else {
        None
    };
    progress.transfer_start(to_copy.len() as u64, "files", total);
    let copied = copy_all(ctx, plan, &to_copy, progress).await;
    progress.transfer_end();
    if let Some(gc) = gc {
        gc.resume().await;
    }
    finish_execute(ctx, plan, shared, copied?, started, progress).await
}

/// The manifest entry of `f` referring to the base's copy, when the base
/// holds the same Milvus file stored the same way.
fn share(plan: &BackupPlan, base: &str, manifest: &Manifest, f: &FileCopy) -> Option<ManifestFile> {
    let b = manifest.files.iter().find(|b| b.source == f.source)?;
    let same_key = match (&manifest.encryption, &plan.encoder.key) {
        (None, None) => true,
        (Some(e), Some(k)) => e.recipient == k.recipient(),
        _ => false,
    };
    let same = b.path == f.target
        && b.raw_size.unwrap_or(b.size) == f.size
        && b.encoding == plan.encoder.encoding()
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
    files: &[&FileCopy],
    progress: &dyn Progress,
) -> Result<Vec<ManifestFile>> {
    let backup_dir = layout::backup_dir(&plan.name);
    let parallel = ctx.config.backup.parallelism.copydata.max(1) as usize;
    futures::stream::iter(files.iter().map(|f| {
        let target = format!("{backup_dir}{}", f.target);
        async move {
            let entry = if plan.encoder.encoding().is_plain() {
                let (sha256, size) = copy_file(ctx, &f.source, &target, f.size).await?;
                ManifestFile {
                    path: f.target.clone(),
                    size,
                    sha256,
                    source: f.source.clone(),
                    ..Default::default()
                }
            } else {
                let e = codec::encode_copy(
                    &ctx.milvus_storage,
                    &f.source,
                    &ctx.backup_storage,
                    &target,
                    &plan.encoder,
                )
                .await?;
                check_unchanged(&f.source, f.size, e.raw_size)?;
                ManifestFile {
                    path: f.target.clone(),
                    size: e.size,
                    sha256: e.sha256,
                    source: f.source.clone(),
                    encoding: plan.encoder.encoding(),
                    raw_size: Some(e.raw_size),
                    raw_sha256: (!plan.encoder.encoding().encrypted).then_some(e.raw_sha256),
                    stored_in: None,
                }
            };
            progress.transfer_advance(f.size);
            Ok(entry)
        }
    }))
    .buffer_unordered(parallel)
    .try_collect()
    .await
}

async fn finish_execute(
    ctx: &Context,
    plan: &BackupPlan,
    shared: BTreeMap<&str, ManifestFile>,
    copied: Vec<ManifestFile>,
    started: Instant,
    progress: &dyn Progress,
) -> Result<BackupStats> {
    let copied_bytes: u64 = copied.iter().map(|f| f.size).sum();
    let shared_files = shared.len() as u64;
    let mut manifest_files: Vec<ManifestFile> =
        copied.into_iter().chain(shared.into_values()).collect();
    manifest_files.sort_by(|a, b| a.path.cmp(&b.path));
    progress.step("writing metadata");
    if !plan.samples.is_empty() {
        // Sampled rows are data: sealed like the binlogs.
        let sample = Sample::new(plan.samples.clone());
        write_json(
            ctx,
            &layout::backup_meta_file(&plan.name, layout::SAMPLE),
            &sample,
            plan.encoder.key.as_ref(),
        )
        .await?;
    }
    let mut info = plan.info.clone();
    info.end_time = chrono::Utc::now().timestamp_millis();
    let mut stats = write_meta(ctx, plan, &info, manifest_files, copied_bytes, started).await?;
    stats.shared_files = shared_files;
    Ok(stats)
}

fn check_unchanged(source: &str, expected: u64, size: u64) -> Result<()> {
    if size != expected {
        return Err(Error::remote(format!(
            "`{source}` changed while it was copied ({expected} bytes listed, {size} copied) — Milvus may be compacting; retry the backup"
        )));
    }
    Ok(())
}

/// Copies one file; returns its SHA-256 and size as stored. A server-side
/// copy is read back once so the manifest's checksum is of the stored bytes.
async fn copy_file(
    ctx: &Context,
    source: &str,
    target: &str,
    expected: u64,
) -> Result<(String, u64)> {
    let outcome = ctx
        .milvus_storage
        .copy_to(source, &ctx.backup_storage, target)
        .await?;
    let (sha, size) = match outcome.sha256 {
        Some(sha) => (sha, outcome.bytes),
        None => ctx.backup_storage.sha256(target).await?,
    };
    check_unchanged(source, expected, size)?;
    Ok((sha, size))
}

/// Writes a meta file; sealed with `seal`'s key when given.
async fn write_json<T: Serialize>(
    ctx: &Context,
    key: &str,
    value: &T,
    seal: Option<&codec::Key>,
) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::internal(format!("encoding {key}: {e}")))?;
    let bytes = match seal {
        Some(k) => codec::seal(&bytes, k),
        None => bytes,
    };
    ctx.backup_storage.write(key, bytes).await
}

async fn write_meta(
    ctx: &Context,
    plan: &BackupPlan,
    info: &BackupInfo,
    files: Vec<ManifestFile>,
    copied_bytes: u64,
    started: Instant,
) -> Result<BackupStats> {
    let name = plan.name.as_str();
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
    let entities: i64 = segments.iter().map(|s| s.num_of_rows).sum();
    let size_bytes: u64 = files.iter().map(|f| f.size).sum();
    let file_count = files.len() as u64;
    let created_at = chrono::Utc::now().to_rfc3339();

    write_json(
        ctx,
        &meta(layout::SEGMENT_META),
        &Infos { infos: segments },
        seal,
    )
    .await?;
    write_json(
        ctx,
        &meta(layout::PARTITION_META),
        &Infos { infos: partitions },
        seal,
    )
    .await?;
    write_json(
        ctx,
        &meta(layout::COLLECTION_META),
        &Infos { infos: collections },
        seal,
    )
    .await?;
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
        base_backup: plan.base.as_ref().map(|(b, _)| b.clone()),
        files,
    };
    write_json(ctx, &meta(layout::MANIFEST), &manifest, None).await?;
    write_json(
        ctx,
        &meta(layout::BACKUP_META),
        &BackupInfo {
            collection_backups: Vec::new(),
            ..info.clone()
        },
        None,
    )
    .await?;
    // The completion mark: nothing may be written before it that a reader
    // of a complete backup needs.
    write_json(ctx, &meta(layout::FULL_META), info, seal).await?;
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
        size_bytes: size_bytes as i64,
        files: file_count,
        copied_bytes: copied_bytes as i64,
        base_backup: manifest.base_backup.clone(),
        compression: plan.encoder.compression,
        encrypted: seal.is_some(),
    };
    write_json(ctx, &meta(layout::SUMMARY), &summary, None).await?;
    Ok(BackupStats {
        name: name.to_string(),
        collections: info.collection_backups.len(),
        entities,
        size_bytes,
        copied_bytes,
        files: file_count,
        base_backup: manifest.base_backup.clone(),
        duration_s: started.elapsed().as_secs_f64(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_like_the_anchor() {
        for ok in ["a", "_x", "backup_2024_01_01", &"a".repeat(128)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "a-b", "a b", "a.b", &"a".repeat(129), "ä"] {
            let e = validate_name(bad).unwrap_err();
            assert!(e.to_string().contains("invalid backup name"), "{bad}");
        }
        assert!(validate_name(&default_name()).is_ok());
    }
}
