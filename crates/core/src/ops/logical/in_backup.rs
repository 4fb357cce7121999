//! Logical backups in the backup catalog: `create --format parquet|json`
//! exports each collection's rows into the backup's folder (the export
//! engine of [`crate::ops::logical::export`], files encoded as the backup says), and a
//! restore of such a backup inserts them (the insert engine of
//! [`crate::ops::logical::import`]). [`crate::ops::backup`] and [`crate::ops::restore`] own the
//! operations (plan, meta files, collections); this module owns the rows.
//!
//! Layout: `<backup>/data/<db>/<collection>/<partition>/part-<range>-<n>.<ext>`
//! (`all/` for a partition-key collection), each file in the manifest with
//! its size, SHA-256 and rows, and in `full_meta.json`'s `logical` with its
//! partition.

use std::sync::Mutex;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};

use crate::board::Board;
use crate::codec::Encoder;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::Milvus;
use crate::model::layout;
use crate::model::meta::Format;
use crate::model::meta::{self, CollectionBackupInfo, LeftOut, ManifestFile};
use crate::model::selection::CollectionRef;
use crate::ops::logical::by_range::{self, ExportedRows};
use crate::ops::logical::export::{self, ExportOptions};
use crate::ops::logical::fields::fields_of;
use crate::ops::logical::files::Location;
use crate::ops::logical::import::{self, ImportPlan, PlannedFile};
use crate::ops::logical::resume::BatchLog;
use crate::ops::logical::{LogicalBackup, LogicalCollection};
use crate::ops::verify::sample::{self, CollectionSample};
use crate::repo::journal::RestoreJournal;
use crate::CancellationToken;

/// What exporting a backup's collections made.
pub(crate) struct Exported {
    pub files: Vec<ManifestFile>,
    /// Rows per collection, in the order given.
    pub rows: Vec<u64>,
    pub logical: LogicalBackup,
    /// Rows sampled from each collection while it was loaded for the
    /// export, for `verify --restore-test`.
    pub samples: Vec<CollectionSample>,
    /// Collections kept without their rows, and why.
    pub left_out: Vec<LeftOut>,
    /// Files of the base backup kept for unchanged ranges, and their bytes.
    pub shared_files: u64,
    pub shared_bytes: u64,
}

/// The base of an incremental logical backup: its name, manifest and
/// logical meta (its ranges and files).
pub(crate) struct Base<'a> {
    pub name: &'a str,
    pub manifest: &'a meta::Manifest,
    pub logical: &'a LogicalBackup,
}

/// One collection to export.
pub(crate) struct ToExport<'a> {
    pub source: &'a CollectionRef,
    /// As planned (its load state and indexes decide whether Milvus can
    /// give its rows).
    pub meta: &'a CollectionBackupInfo,
    /// It was not named one by one: when Milvus cannot give its rows, it
    /// is kept without them (and said so) instead of failing the backup.
    pub may_leave_out: bool,
}

/// The backup a logical export writes into: its name, how its files are
/// stored, and its base (an incremental backup).
pub(crate) struct Destination<'a> {
    pub name: &'a str,
    pub format: Format,
    pub encoder: &'a Encoder,
    pub base: Option<&'a Base<'a>>,
}

/// Exports every collection's rows into backup `into.name`'s folder,
/// `width` collections at a time (each with several key ranges in
/// flight), and samples each one's rows while it is loaded; the results
/// are in the order given, whatever order they finish in. A collection
/// whose rows Milvus cannot give ([`export::unreadable`]) fails the backup
/// when it was named, and is left out (schema without rows) otherwise.
/// The first failure stops the others and names its collection; it
/// leaves files behind: the caller removes the whole backup.
pub(crate) async fn export_collections(
    ctx: &Context,
    into: Destination<'_>,
    collections: &[ToExport<'_>],
    width: usize,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<Exported> {
    let started = Instant::now();
    let client = ctx.milvus().await?;
    let dir = layout::backup_dir(into.name);
    let mut location = Location::on(ctx.backup_storage.clone(), &dir);
    location.encoder = Some(into.encoder.clone());
    let mut out = Exported {
        files: Vec::new(),
        rows: Vec::new(),
        logical: LogicalBackup {
            format: into.format,
            collections: Vec::new(),
        },
        samples: Vec::new(),
        left_out: Vec::new(),
        shared_files: 0,
        shared_bytes: 0,
    };
    let names = collections.iter().map(|c| c.source.to_string()).collect();
    let board = Board::new(events, names, "exported");
    let one = OneExport {
        ctx,
        client: &*client,
        into: &into,
        location: &location,
        dir: &dir,
        events,
        cancel,
    };
    let mut done: Vec<Option<Collection>> = (0..collections.len()).map(|_| None).collect();
    {
        let (one, board) = (&one, &board);
        // Made in a loop, not in a stream's closure: rustc proves them Send.
        let mut each = Vec::with_capacity(collections.len());
        for (i, c) in collections.iter().enumerate() {
            each.push(async move {
                board.start(i);
                let exported = one
                    .export(c)
                    .await
                    .map_err(|e| e.at("collection", c.source));
                board.finish(i);
                exported.map(|e| (i, e))
            });
        }
        let mut exporting = futures::stream::iter(each).buffer_unordered(width.max(1));
        // The first failure drops the stream: the others stop.
        while let Some(exported) = exporting.next().await {
            let (i, e) = exported?;
            done[i] = Some(e);
        }
    }
    let (mut raw, mut stored) = (0, 0);
    for c in done.into_iter().flatten() {
        raw += c.raw;
        stored += c.stored;
        out.shared_files += c.shared_files;
        out.shared_bytes += c.shared_bytes;
        out.files.extend(c.files);
        out.samples.extend(c.sample);
        out.left_out.extend(c.left_out);
        out.rows.push(c.logical.rows);
        out.logical.collections.push(c.logical);
    }
    let (format, encoder) = (into.format, into.encoder);
    let mut how = format!("{format}");
    if format == Format::Parquet {
        how.push_str(&format!(
            " (zstd level {} inside)",
            encoder.level.clamp(1, 22)
        ));
    } else if !encoder.compression.is_none() {
        how.push_str(&format!(", {}", encoder.describe()));
    }
    if encoder.key.is_some() && !how.contains("encrypted") {
        how.push_str(", encrypted");
    }
    events.emit(Event::Copied {
        raw_bytes: raw,
        stored_bytes: stored,
        seconds: started.elapsed().as_secs_f64(),
        encoding: how,
    });
    Ok(out)
}

/// What exporting one collection made.
#[derive(Default)]
struct Collection {
    files: Vec<ManifestFile>,
    logical: LogicalCollection,
    sample: Option<CollectionSample>,
    left_out: Option<LeftOut>,
    shared_files: u64,
    shared_bytes: u64,
    /// Bytes before and after encoding of the files it wrote.
    raw: u64,
    stored: u64,
}

/// What the exports of one backup's collections share.
struct OneExport<'a> {
    ctx: &'a Context,
    client: &'a dyn Milvus,
    into: &'a Destination<'a>,
    location: &'a Location,
    /// The backup's folder.
    dir: &'a str,
    events: &'a dyn EventSink,
    cancel: &'a CancellationToken,
}

impl OneExport<'_> {
    /// Exports one collection's rows (or leaves it out).
    async fn export(&self, to: &ToExport<'_>) -> Result<Collection> {
        let (c, events) = (to.source, self.events);
        let empty = LogicalCollection {
            db_name: c.db.clone(),
            collection_name: c.name.clone(),
            ..Default::default()
        };
        if let (true, Some(why)) = (to.may_leave_out, export::unreadable(to.meta)) {
            events.warn(format!(
                "{c} left out: its schema is backed up without rows — it {why}"
            ));
            return Ok(Collection {
                logical: empty,
                left_out: Some(LeftOut {
                    collection: c.to_string(),
                    reason: why,
                }),
                ..Default::default()
            });
        }
        let Destination {
            format,
            encoder,
            base,
            ..
        } = self.into;
        let opts = ExportOptions {
            collection: c.to_string(),
            format: *format,
            ..Default::default()
        };
        let mut plan = export::plan(self.ctx, &opts).await?;
        plan.settings.compression_level = encoder.level.clamp(1, 22);
        let dir = self.dir;
        let prefix = format!("{dir}data/{}/{}/", c.db, c.name);
        let written = Mutex::new(Vec::new());
        let client = self.client;
        let of_base = base.and_then(|b| {
            (b.logical.collections.iter())
                .find(|l| l.db_name == c.db && l.collection_name == c.name && !l.ranges.is_empty())
        });
        let location = self.location;
        let (rows, sample) = export::with_loaded(client, &plan, events, self.cancel, async {
            // Before the rows, like a physical backup's sample before its
            // flush; the copy of a later write would differ.
            let sample = sample::take_loaded(client, &plan.meta).await;
            let rows =
                by_range::export_rows(client, &plan, location, &prefix, &written, of_base, events)
                    .await?;
            Ok((rows, sample))
        })
        .await?;
        let ExportedRows {
            files,
            shared,
            mut ranges,
            ts,
        } = rows;
        let mut out = Collection::default();
        match sample {
            Ok(s) => out.sample = s,
            Err(e) => events.warn(format!(
                "no row sample of {c} (verify --restore-test will compare row counts only): {e}"
            )),
        }
        for r in &mut ranges {
            for p in &mut r.files {
                if let Some(rel) = p.strip_prefix(dir) {
                    *p = rel.to_string();
                }
            }
        }
        let mut coll = LogicalCollection {
            snapshot_ts: ts,
            ranges,
            ..empty
        };
        if let Some(b) = base {
            for f in shared {
                let entry = (b.manifest.files.iter())
                    .find(|e| e.path == f.path)
                    .ok_or_else(|| {
                        Error::corrupt(format!(
                            "base backup `{}` does not list `{}` in its manifest — run `milvus-backup verify -n {}`",
                            b.name, f.path, b.name
                        ))
                    })?;
                out.shared_files += 1;
                out.shared_bytes += entry.size;
                coll.rows += f.rows;
                out.files.push(ManifestFile {
                    stored_in: Some(entry.holder(b.name).to_string()),
                    ..entry.clone()
                });
                coll.files.push(f);
            }
        }
        for mut f in files {
            f.path = f.path[dir.len()..].to_string();
            out.raw += f.plain.as_ref().map_or(f.size, |p| p.0);
            out.stored += f.size;
            coll.rows += f.rows;
            out.files.push(manifest_entry(&f));
            coll.files.push(f);
        }
        out.logical = coll;
        Ok(out)
    }
}

/// The manifest entry of a data file a logical export wrote.
pub(crate) fn manifest_entry(f: &crate::model::meta::DataFile) -> ManifestFile {
    ManifestFile {
        path: f.path.clone(),
        size: f.size,
        sha256: f.sha256.clone(),
        encoding: f.encoding,
        raw_size: f.expected().raw_size,
        raw_sha256: f.expected().raw_sha256.map(str::to_string),
        rows: Some(f.rows),
        ..Default::default()
    }
}

/// What restoring one collection's rows did.
#[derive(Debug, Default)]
pub(crate) struct RowsRestored {
    pub rows: u64,
    /// The target made new primary keys (autoID).
    pub keys_regenerated: bool,
}

/// Says, when dropped before the rows are all in (Ctrl-C), which files
/// (and so partitions) were inserted.
struct InterruptReport<'a> {
    target: &'a CollectionRef,
    progress: &'a import::Progress,
    events: &'a dyn EventSink,
    done: bool,
}

impl Drop for InterruptReport<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.events.warn(format!(
                "the restore of {} stopped: {}",
                self.target,
                self.progress.describe()
            ));
        }
    }
}

/// The collection `source` of a logical backup.
pub(crate) fn collection_of<'a>(
    logical: &'a LogicalBackup,
    backup: &str,
    source: &CollectionRef,
) -> Result<&'a LogicalCollection> {
    logical
        .collections
        .iter()
        .find(|c| c.db_name == source.db && c.collection_name == source.name)
        .ok_or_else(|| {
            Error::corrupt(format!(
                "backup `{backup}` lists no data files for {source} — run `milvus-backup verify -n {backup}`"
            ))
        })
}

/// The fields of `target` as Milvus describes it, and whether it has a
/// partition key.
pub(crate) async fn target_fields(
    client: &dyn Milvus,
    target: &CollectionRef,
) -> Result<(Vec<crate::ops::logical::fields::Field>, bool)> {
    let described = client.describe_collection(&target.db, &target.name).await?;
    let schema = described.schema.as_ref().ok_or_else(|| {
        Error::remote(format!("DescribeCollection of {target} returned no schema"))
    })?;
    let schema = meta::schema_from_proto(schema);
    let has_partition_key = schema.fields.iter().any(|f| f.is_partition_key);
    Ok((fields_of(&schema)?, has_partition_key))
}

/// Creates the partitions `coll`'s files name that `target` lacks.
pub(crate) async fn create_missing_partitions(
    client: &dyn Milvus,
    coll: &LogicalCollection,
    target: &CollectionRef,
    events: &dyn EventSink,
) -> Result<()> {
    let have: Vec<String> = client
        .show_partitions(&target.db, &target.name)
        .await?
        .into_iter()
        .map(|p| p.0)
        .collect();
    let mut missing: Vec<&str> = coll
        .files
        .iter()
        .map(|f| f.partition.as_str())
        .filter(|p| !p.is_empty() && *p != "_default" && !have.iter().any(|h| h == p))
        .collect();
    missing.sort();
    missing.dedup();
    for p in missing {
        if let Err(e) = client.create_partition(&target.db, &target.name, p).await {
            // Made meanwhile by another process (a shard of the same restore)?
            let now = client.show_partitions(&target.db, &target.name).await?;
            if !now.iter().any(|(name, _)| name == p) {
                return Err(e);
            }
            continue;
        }
        events.note(format!("created partition `{p}` of {target}"));
    }
    Ok(())
}

/// Copies data file `path` of backup `backup` to `local` (from the folder
/// of the backup that holds it: an incremental backup shares its base's),
/// decoded and checked against its manifest entry on the way.
pub(crate) async fn fetch_file(
    ctx: &Context,
    backup: &str,
    manifest: Option<&meta::Manifest>,
    path: &str,
    local: &Location,
) -> Result<()> {
    let entry = manifest
        .and_then(|m| m.files.iter().find(|e| e.path == path))
        .ok_or_else(|| {
            Error::corrupt(format!(
                "backup `{backup}` is damaged: its manifest does not list `{path}` — run `milvus-backup verify -n {backup}`"
            ))
        })?;
    let key = layout::join(&layout::backup_dir(entry.holder(backup)), path);
    match crate::storage::encoded::decode_copy(
        &ctx.backup_storage,
        &key,
        &entry.expected(),
        Some((&local.storage, path)),
    )
    .await?
    {
        Ok(_) => Ok(()),
        Err(damage) => Err(Error::corrupt(format!(
            "backup file `{key}` is damaged: {damage} — run `milvus-backup verify --deep -n {backup}`"
        ))
        .at("key", &key)),
    }
}

/// Raw bytes per Insert of a restore of `bytes` of files: at least 64
/// batches (each recorded in the journal, so a resume redoes little) of
/// 256 KiB to [`import::INSERT_BATCH_BYTES`].
fn batch_bytes(bytes: u64) -> usize {
    let floor = 256 << 10;
    ((bytes / 64) as usize).clamp(floor, import::INSERT_BATCH_BYTES)
}

/// The logical backup whose rows a restore inserts.
#[derive(Clone, Copy)]
pub(crate) struct RowsSource<'a> {
    /// The backup's name.
    pub backup: &'a str,
    pub logical: &'a LogicalBackup,
    /// Its manifest (each file's size and SHA-256), when it has one.
    pub manifest: Option<&'a meta::Manifest>,
}

/// The restore's journal, where each batch is recorded ([`resume`]).
pub(crate) struct RowsJournal<'a> {
    pub journal: &'a RestoreJournal,
    /// The restore loads the target afterwards: a resume that loads it to
    /// check keys leaves it loaded.
    pub keep_loaded: bool,
}

/// Inserts the rows of `source`'s files into `target` (which exists):
/// each file is read from the backup, decoded and checked against the
/// manifest into a temporary folder (the next while one is inserted), then
/// inserted in byte-sized batches, several in flight, each recorded in the
/// journal; what an interrupted run inserted is skipped.
pub(crate) async fn restore_rows(
    ctx: &Context,
    client: &dyn Milvus,
    from: RowsSource<'_>,
    source: &CollectionRef,
    target: &CollectionRef,
    journal: &RowsJournal<'_>,
    events: &dyn EventSink,
) -> Result<RowsRestored> {
    let RowsSource {
        backup,
        logical,
        manifest,
    } = from;
    let coll = collection_of(logical, backup, source)?;
    let (fields, has_partition_key) = target_fields(client, target).await?;
    let keys_regenerated = fields.iter().any(|f| f.is_primary && f.auto_id);
    if !has_partition_key {
        create_missing_partitions(client, coll, target, events).await?;
    }
    if keys_regenerated {
        events.warn(format!(
            "{target} makes its own primary keys (autoID) and this Milvus takes none from a client: the backup's keys are not kept, new ones are generated"
        ));
    }
    let tmp = tempfile::tempdir()
        .map_err(|e| Error::internal(format!("making a temporary folder: {e}")))?;
    let local = Location::open(ctx.backup_storage.spec(), &tmp.path().to_string_lossy())?;
    let tuning = ctx.settings.tuning;
    let plan = ImportPlan {
        target: target.clone(),
        location: tmp.path().to_string_lossy().into_owned(),
        create: false,
        files: coll
            .files
            .iter()
            .map(|f| PlannedFile {
                path: f.path.clone(),
                format: Format::of_file(&f.path).unwrap_or(logical.format),
                partition: if has_partition_key {
                    String::new()
                } else {
                    f.partition.clone()
                },
                rows: f.rows,
                size: f.size,
            })
            .collect(),
        keys_regenerated,
        missing_partitions: Vec::new(),
        batch_bytes: batch_bytes(coll.files.iter().map(|f| f.size).sum()),
        in_flight: tuning.import_parallelism.clamp(2, 8),
        meta: None,
        fields,
    };
    events.phase(Phase::Inserting {
        collection: target.to_string(),
        files: plan.files.len(),
        rows: coll.rows,
    });
    let log = BatchLog::new(
        journal.journal,
        client,
        target,
        &plan.fields,
        journal.keep_loaded,
    )
    .await;
    let progress = import::Progress::default();
    // Files the interrupted run inserted whole are not even read.
    let (done, files): (Vec<&PlannedFile>, Vec<&PlannedFile>) = plan
        .files
        .iter()
        .partition(|f| log.complete(&f.path, f.rows));
    if !done.is_empty() {
        let rows: u64 = done.iter().map(|f| log.rows_done(&f.path)).sum();
        events.note(format!(
            "--resume: {} of {} file(s) of {target} ({rows} rows) were inserted by the interrupted run: skipped",
            done.len(),
            plan.files.len()
        ));
        progress
            .rows
            .fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
        events.emit(Event::RowsDone {
            collection: 0,
            rows,
            bytes: 0,
        });
    }
    let mut report = InterruptReport {
        target,
        progress: &progress,
        events,
        done: false,
    };
    let fetched = futures::stream::iter(files.into_iter().map(|f| {
        let local = &local;
        async move {
            fetch_file(ctx, backup, manifest, &f.path, local).await?;
            Ok::<_, Error>(f)
        }
    }))
    .buffered(2);
    let result = fetched
        .and_then(|f| {
            let (plan, local, progress, log) = (&plan, &local, &progress, &log);
            async move {
                let inserted =
                    import::insert_file(client, plan, local, f, progress, Some(log), events).await;
                let _ = local.storage.delete(&f.path).await;
                inserted
            }
        })
        .try_collect::<Vec<()>>()
        .await;
    report.done = true;
    log.finish().await;
    if let Err(e) = result {
        return Err(
            Error::new(e.kind(), format!("{e} ({})", progress.describe()))
                .temporary(e.is_temporary()),
        );
    }
    Ok(RowsRestored {
        rows: progress.rows.load(std::sync::atomic::Ordering::Relaxed),
        keys_regenerated,
    })
}
