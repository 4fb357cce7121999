//! The data of a physical backup's collection into Milvus: each segment's
//! binlogs, staged into Milvus's storage when it cannot read them in place
//! (another bucket or service, encoded or shared files), imported with
//! `Import` in backup mode, the staged files removed again (unless
//! `backup.keepTempFiles`). With a journal, every import's start and
//! result are recorded, and `--resume` finishes or looks up an import the
//! interrupted run started, so no segment is imported twice.
//!
//! Does not own: creating the collection or the journal's lifetime
//! ([`super::run`]), or which segments there are ([`super::plan`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::{proto, Milvus};
use crate::model::layout;
use crate::model::meta::{self, SegmentBackupInfo};
use crate::model::selection::CollectionRef;
use crate::ops::collection::wait_imports;
use crate::ops::restore::order::{in_write_order, ImportOrder, Turn};
use crate::ops::restore::plan::RestorePlan;
use crate::ops::restore::tasks::{segments_with_files, CollectionTask};
use crate::phase_time::{self, Spans};
use crate::repo::journal::{RestoreJournal, SegmentProgress};

/// What restoring one collection's data took.
#[derive(Default)]
pub(crate) struct DataStats {
    pub keys_regenerated: bool,
    pub entities: i64,
    pub segments: usize,
    pub staged_bytes: u64,
    pub staging_s: f64,
    pub import_s: f64,
}

/// What restoring one segment took.
pub(crate) struct SegmentRestore {
    /// Rows Milvus imported.
    pub rows: i64,
    pub staged_bytes: u64,
    pub staging: Duration,
    pub import: Duration,
    /// When staging began (import followed it directly).
    pub started: Instant,
}

impl SegmentRestore {
    /// A segment the interrupted run imported, or whose import it started
    /// and Milvus finished.
    fn done_earlier(rows: i64, started: Instant) -> SegmentRestore {
        SegmentRestore {
            rows,
            staged_bytes: 0,
            staging: Duration::ZERO,
            import: started.elapsed(),
            started,
        }
    }
}

/// The journal of a running restore, as a segment sees it: the journal,
/// the target collection, and what an interrupted run did with the segment.
pub(crate) type SegmentJournal<'a> = Option<(&'a RestoreJournal, &'a str, Option<SegmentProgress>)>;

/// The binlog import of one collection of a plan: what its segments share.
pub(crate) struct Binlogs<'a> {
    pub ctx: &'a Context,
    pub client: &'a dyn Milvus,
    pub plan: &'a RestorePlan,
    /// The collection's index in the plan (for events).
    pub index: usize,
    pub task: &'a CollectionTask,
    pub events: &'a dyn EventSink,
}

/// The files of a segment folder `from_dir` of the plan's backup: (key in
/// backup storage, path under the folder, manifest entry) — as the
/// manifest lists them, or, for another tool's backup, whatever the folder
/// holds.
pub(crate) async fn files_under<'p>(
    ctx: &Context,
    plan: &'p RestorePlan,
    from_dir: &str,
) -> Result<Vec<(String, String, Option<&'p meta::ManifestFile>)>> {
    let name = &plan.backup;
    if let Some(m) = &plan.manifest {
        let rel = &from_dir[layout::backup_dir(name).len()..];
        return Ok(m
            .files
            .iter()
            .filter_map(|f| {
                let rest = f.path.strip_prefix(rel)?;
                let holder = layout::backup_dir(f.holder(name));
                Some((layout::join(&holder, &f.path), rest.to_string(), Some(f)))
            })
            .collect());
    }
    Ok(ctx
        .backup_storage
        .list(from_dir)
        .await?
        .into_iter()
        .map(|o| {
            let rest = o.key[from_dir.len()..].to_string();
            (o.key, rest, None)
        })
        .collect())
}

/// Bytes and times summed over a collection's segments.
#[derive(Default)]
struct Tally {
    staged: AtomicU64,
    staging_ns: AtomicU64,
    import_ns: AtomicU64,
}

impl Tally {
    fn add(&self, done: &SegmentRestore) {
        self.staged.fetch_add(done.staged_bytes, Ordering::Relaxed);
        let staging = done.staging.as_nanos() as u64;
        self.staging_ns.fetch_add(staging, Ordering::Relaxed);
        let import = done.import.as_nanos() as u64;
        self.import_ns.fetch_add(import, Ordering::Relaxed);
    }
}

impl Binlogs<'_> {
    /// Stages (when needed) and imports every segment of the collection,
    /// `import_parallelism` at a time, imports started in write order
    /// ([`super::order`]); segments the journal says were imported are
    /// skipped.
    pub(crate) async fn restore_all(
        &self,
        journal: &RestoreJournal,
        spans: &Spans,
    ) -> Result<DataStats> {
        let segments = in_write_order(segments_with_files(&self.task.meta));
        let order = ImportOrder::new();
        let target = self.task.target.to_string();
        let progress = journal.progress(&target).await.unwrap_or_default();
        self.events.phase(Phase::Importing {
            collection: target.clone(),
            segments: segments.len(),
            bytes: segments.iter().map(|(_, s)| s.size.max(0) as u64).sum(),
        });
        let tally = Tally::default();
        let rows: Vec<i64> =
            futures::stream::iter(segments.iter().enumerate().map(|(i, (partition, seg))| {
                let earlier = progress.segments.get(&seg.segment_id).cloned();
                let (tally, target) = (&tally, target.as_str());
                let turn = order.turn(i);
                async move {
                    let done = match earlier.as_ref().and_then(|p| p.rows) {
                        // Imported by the interrupted run.
                        Some(rows) => SegmentRestore {
                            import: Duration::ZERO,
                            ..SegmentRestore::done_earlier(rows, Instant::now())
                        },
                        None => {
                            let journal = Some((journal, target, earlier));
                            let done = self.restore_segment(partition, seg, journal, turn).await?;
                            record_spans(spans, &done);
                            done
                        }
                    };
                    tally.add(&done);
                    self.events.emit(Event::SegmentImported {
                        collection: self.index,
                        segment: seg.segment_id,
                        rows: done.rows,
                        bytes: seg.size.max(0) as u64,
                    });
                    Ok::<_, Error>(done.rows)
                }
            }))
            .buffer_unordered(self.plan.tuning.import_parallelism)
            .try_collect()
            .await?;
        Ok(DataStats {
            entities: rows.iter().sum(),
            segments: segments.len(),
            staged_bytes: tally.staged.into_inner(),
            staging_s: tally.staging_ns.into_inner() as f64 / 1e9,
            import_s: tally.import_ns.into_inner() as f64 / 1e9,
            keys_regenerated: false,
        })
    }

    /// Stages (when needed) and imports one segment, then removes what it
    /// staged. The import starts on the segment's `turn` and releases it
    /// once Milvus gave its rows their timestamp. The plan's staging folder
    /// is swept by whoever runs the plan (a failed staging may leave files).
    pub(crate) async fn restore_segment(
        &self,
        partition: &str,
        seg: &SegmentBackupInfo,
        journal: SegmentJournal<'_>,
        turn: Turn<'_>,
    ) -> Result<SegmentRestore> {
        let (ctx, plan, events) = (self.ctx, self.plan, self.events);
        let t0 = Instant::now();
        if let Some((j, target, Some(earlier))) = &journal {
            let path = self.import_insert_path(seg);
            if let Some(rows) = finish_started_import(self.client, self.task, earlier, &path)
                .await
                .at("segment", seg.segment_id)?
            {
                let s = seg.segment_id;
                j.update(target, |p| {
                    p.segments.entry(s).or_default().rows = Some(rows)
                })
                .await?;
                return Ok(SegmentRestore::done_earlier(rows, t0));
            }
        }
        let (paths, staged_dir, staged_bytes) =
            self.stage(seg).await.at("segment", seg.segment_id)?;
        let staging = t0.elapsed();
        turn.wait().await;
        let t1 = Instant::now();
        let imported = self.import(partition, seg, paths, &journal, turn).await;
        let import = t1.elapsed();
        if let Some(dir) = staged_dir.filter(|_| !plan.tuning.keep_temp_files) {
            if let Err(e) = ctx.milvus_storage.delete_prefix(&dir).await {
                events.warn(format!("could not remove staging files under `{dir}`: {e} — remove them with `milvus-backup gc --staging`"));
            }
        }
        Ok(SegmentRestore {
            rows: imported?,
            staged_bytes,
            staging,
            import,
            started: t0,
        })
    }

    /// Makes one segment's files readable by the target Milvus and returns
    /// the import paths, the staging folder to clean (if any) and the
    /// bytes staged.
    async fn stage(&self, seg: &SegmentBackupInfo) -> Result<(Vec<String>, Option<String>, u64)> {
        let (ctx, name) = (self.ctx, &self.plan.backup);
        let (c, p, s) = (
            self.task.meta.collection_id,
            seg.partition_id,
            seg.segment_id,
        );
        let insert_dir = layout::backup_insert_log_dir(name, c, p, s);
        let delta_dir = layout::backup_delta_log_dir(name, c, p, s);
        let has_deltas = seg.deltalogs.iter().any(|d| !d.binlogs.is_empty());
        // Milvus takes backup-mode imports only as exactly two paths, insert
        // and delta logs; an empty delta path means "no deletes".
        let Some(staging_dir) = self.plan.staging_dir.as_deref() else {
            let delta = match has_deltas {
                true => ctx.backup_storage.full_key(&delta_dir),
                false => String::new(),
            };
            let insert = ctx.backup_storage.full_key(&insert_dir);
            return Ok((vec![insert, delta], None, 0));
        };
        let stage = layout::join(staging_dir, &format!("{s}/"));
        let stage_insert = layout::join(&stage, &format!("insert_log/{s}/"));
        let stage_delta = layout::join(&stage, &format!("delta_log/{s}/"));
        let mut bytes = 0;
        for (from_dir, to_dir) in [(&insert_dir, &stage_insert), (&delta_dir, &stage_delta)] {
            for (key, rest, entry) in files_under(ctx, self.plan, from_dir).await? {
                let dst = layout::join(to_dir, &rest);
                let copied = self.stage_file(&key, entry, &dst, s).await?;
                bytes += copied;
                self.events.emit(Event::FileStaged {
                    collection: self.index,
                    bytes: copied,
                });
            }
        }
        let delta = match has_deltas {
            true => ctx.milvus_storage.full_key(&stage_delta),
            false => String::new(),
        };
        let insert = ctx.milvus_storage.full_key(&stage_insert);
        Ok((vec![insert, delta], Some(stage), bytes))
    }

    /// Copies one file of segment `s` to `dst` in Milvus's storage: checked
    /// and decoded on the way, or by the storage service; the bytes.
    async fn stage_file(
        &self,
        key: &str,
        entry: Option<&meta::ManifestFile>,
        dst: &str,
        s: i64,
    ) -> Result<u64> {
        let (ctx, name) = (self.ctx, &self.plan.backup);
        // A file the manifest lists and storage lacks: the backup is
        // damaged, whichever way it would have been copied.
        let missing = |e: Error| {
            if entry.is_some() && e.kind() == ErrorKind::NotFound {
                Error::corrupt(format!(
                    "backup file `{key}` that the manifest lists is missing — the backup is damaged; nothing of segment {s} was imported; run `milvus-backup verify -n {name}`"
                ))
                .at("key", key)
            } else {
                e
            }
        };
        match entry {
            // Checked (and decoded) on the way: damage stops the restore.
            Some(f) if !copied_server_side(ctx, entry) => crate::storage::encoded::decode_copy(
                &ctx.backup_storage,
                key,
                &f.expected(),
                Some((&ctx.milvus_storage, dst)),
            )
            .await
            .map_err(missing)?
            .map_err(|damage| {
                Error::corrupt(format!(
                    "backup file `{key}` is damaged: {damage} — nothing of segment {s} was imported; run `milvus-backup verify --deep -n {name}`"
                ))
                .at("key", key)
            }),
            Some(f) => crate::storage::copy::stage_checked(
                &ctx.backup_storage,
                key,
                f,
                crate::storage::copy::StageTarget {
                    to: &ctx.milvus_storage,
                    dst,
                    segment: s,
                    backup: name,
                },
            )
                .await
                .map_err(missing),
            None => Ok(ctx
                .backup_storage
                .copy_to(key, &ctx.milvus_storage, dst)
                .await
                .map_err(missing)?
                .bytes),
        }
    }

    /// The insert-log path a segment's import reads (staged or in place),
    /// by which an import Milvus started is found again.
    fn import_insert_path(&self, seg: &SegmentBackupInfo) -> String {
        let (ctx, plan, s) = (self.ctx, self.plan, seg.segment_id);
        match plan.staging_dir.as_deref() {
            Some(dir) => ctx
                .milvus_storage
                .full_key(&layout::join(dir, &format!("{s}/insert_log/{s}/"))),
            None => ctx.backup_storage.full_key(&layout::backup_insert_log_dir(
                &plan.backup,
                self.task.meta.collection_id,
                seg.partition_id,
                s,
            )),
        }
    }

    /// Imports one segment in backup mode and waits (bounded) for the
    /// result, releasing `turn` once the import has its timestamp. With a
    /// journal, the import's start and its task ids are recorded before
    /// waiting; a start whose answer was lost is looked up before it is
    /// tried again, so no segment is imported twice.
    async fn import(
        &self,
        partition: &str,
        seg: &SegmentBackupInfo,
        paths: Vec<String>,
        journal: &SegmentJournal<'_>,
        turn: Turn<'_>,
    ) -> Result<i64> {
        let (client, t, s) = (self.client, &self.task.target, seg.segment_id);
        let fail_as = |kind: ErrorKind, reason: String| {
            Error::new(
                kind,
                format!(
                    "import of segment {s} into {t} (partition `{partition}`) failed: {reason}"
                ),
            )
            .at("segment", s)
        };
        // A failed call keeps its kind (an unreachable Milvus stays unreachable).
        let failed_call = |e: Error| fail_as(e.kind(), e.to_string()).temporary(e.is_temporary());
        if let Some((j, target, _)) = journal {
            j.update(target, |p| {
                p.segments.insert(s, SegmentProgress::default());
            })
            .await?;
        }
        let tasks = start_import(client, t, partition, paths)
            .await
            .map_err(failed_call)?;
        if let Some((j, target, _)) = journal {
            let ids = tasks.clone();
            j.update(target, |p| p.segments.entry(s).or_default().tasks = ids)
                .await?;
        }
        wait_timestamped(client, &tasks)
            .await
            .map_err(failed_call)?;
        drop(turn);
        let rows = wait_imports(client, &tasks).await.map_err(failed_call)?;
        if rows == 0 && seg.num_of_rows > 0 {
            return Err(fail_as(ErrorKind::Remote, format!(
                "Milvus finished the import but loaded no rows of the {} backed up — it did not find the files; check that minio.bucketName/minio.rootPath match the target Milvus's own storage settings",
                seg.num_of_rows
            )));
        }
        if let Some((j, target, _)) = journal {
            j.update(target, |p| {
                p.segments.entry(s).or_default().rows = Some(rows)
            })
            .await?;
        }
        Ok(rows)
    }
}

/// Records a segment's staging and import in the run's wall time.
fn record_spans(spans: &Spans, done: &SegmentRestore) {
    let staged_at = done.started + done.staging;
    spans.record(phase_time::STAGING, done.started, staged_at);
    spans.record(phase_time::IMPORT, staged_at, staged_at + done.import);
}

/// Starts the backup-mode import of `paths` (insert logs, delta logs) into
/// `t`, retrying a few times when the call fails for a while; a retry
/// first looks for the import a lost answer may hide. The task ids.
async fn start_import(
    client: &dyn Milvus,
    t: &CollectionRef,
    partition: &str,
    paths: Vec<String>,
) -> Result<Vec<i64>> {
    let opt = |k: &str, v: &str| proto::common::KeyValuePair {
        key: k.into(),
        value: v.into(),
    };
    let insert_path = paths[0].clone();
    let request = proto::milvus::ImportRequest {
        db_name: t.db.clone(),
        collection_name: t.name.clone(),
        partition_name: partition.to_string(),
        files: paths,
        options: vec![opt("backup", "true"), opt("skip_disk_quota_check", "true")],
        ..Default::default()
    };
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match client.import(request.clone()).await {
            Ok(tasks) => return Ok(tasks),
            Err(e) if e.is_temporary() && attempt < 4 => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
                // The lost answer may hide a started import.
                let found = started_imports(client, t, &insert_path).await?;
                if !found.is_empty() {
                    return Ok(found);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits (bounded) until Milvus has given the rows of import `tasks` their
/// timestamp: the data node allocates it when it starts a task, before it
/// reports the task's first segment or persists it. A failed task is
/// reported by the wait for its result.
async fn wait_timestamped(client: &dyn Milvus, tasks: &[i64]) -> Result<()> {
    const LIMIT: Duration = Duration::from_secs(3600);
    let start = Instant::now();
    for &id in tasks {
        loop {
            let st = client.import_state(id).await?;
            // Failed (1, 7), persisted (5), completed (6), flushed (8).
            if !st.segment_ids.is_empty() || matches!(st.state, 1 | 5..=8) {
                break;
            }
            if start.elapsed() > LIMIT {
                return Err(Error::remote(format!(
                    "import task {id} did not start within {} s",
                    LIMIT.as_secs()
                ))
                .temporary(true));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Import tasks of `t` that read `insert_path` and have not failed.
async fn started_imports(
    client: &dyn Milvus,
    t: &CollectionRef,
    insert_path: &str,
) -> Result<Vec<i64>> {
    let path = insert_path.trim_end_matches('/');
    Ok(client
        .list_import_tasks(&t.db, &t.name)
        .await?
        .into_iter()
        .filter(|task| !matches!(task.state, 1 | 7))
        .filter(|task| task.infos.iter().any(|kv| kv.value.contains(path)))
        .map(|task| task.id)
        .collect())
}

/// `--resume`: the rows of a segment whose import the interrupted run
/// started and Milvus completed (waiting for it when it still runs);
/// `None` when it never started or failed, so it is imported again.
async fn finish_started_import(
    client: &dyn Milvus,
    task: &CollectionTask,
    earlier: &SegmentProgress,
    insert_path: &str,
) -> Result<Option<i64>> {
    const LIMIT: Duration = Duration::from_secs(3600);
    let ids = if earlier.tasks.is_empty() {
        started_imports(client, &task.target, insert_path).await?
    } else {
        earlier.tasks.clone()
    };
    if ids.is_empty() {
        return Ok(None);
    }
    let start = Instant::now();
    loop {
        let mut rows = 0;
        let mut running = false;
        for id in &ids {
            let st = client.import_state(*id).await?;
            match st.state {
                6 => rows += st.row_count,
                1 | 7 => return Ok(None),
                _ => running = true,
            }
        }
        if !running {
            return Ok(Some(rows));
        }
        if start.elapsed() > LIMIT {
            return Err(Error::remote(format!(
                "the import the interrupted restore started for segment into {} did not finish within {} s",
                task.target,
                LIMIT.as_secs()
            ))
            .temporary(true));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether a staged file is copied by the storage service (unchecked)
/// rather than streamed through the tool (decoded and checked against the
/// manifest on the way).
fn copied_server_side(ctx: &Context, entry: Option<&meta::ManifestFile>) -> bool {
    entry.is_none_or(|f| f.encoding.is_plain())
        && ctx.backup_storage.server_side_to(&ctx.milvus_storage)
}

impl RestorePlan {
    /// Whether every file is staged through the tool, and so checked
    /// against its manifest size and SHA-256 before any import.
    pub fn checks_every_file(&self, ctx: &Context) -> bool {
        self.staging_dir.is_some()
            && self
                .manifest
                .as_ref()
                .is_some_and(|m| m.files.iter().all(|f| !copied_server_side(ctx, Some(f))))
    }
}
