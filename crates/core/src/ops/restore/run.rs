//! Running a restore plan ([`execute`]): refuses a plan with refusals,
//! restores users and roles, then each collection in turn — its database,
//! the collection itself (schema, shards, properties, partitions, indexes,
//! as overridden), its data by the plan's [`DataPath`], and a load — with
//! a journal of what finished. A collection whose restore is cancelled or
//! fails on a damaged backup is dropped again (unless it was reused);
//! after any other failure it is kept with the journal, for `--resume`.
//! The staging folder is leased while the run lasts and swept after it.
//!
//! Does not own: deciding anything about the restore ([`super::plan`]),
//! moving segments ([`super::binlog`]) or logical rows ([`super::bulk`],
//! [`crate::ops::logical::in_backup`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use crate::board::Board;
use crate::config::tuning::Tuning;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Opt, Remedy, Result, ResultExt};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::Milvus;
use crate::ops::collection::{create_indexes, create_like, ensure_database};
use crate::ops::logical::in_backup::{self, RowsRestored};
use crate::ops::preflight::Unsupported;
use crate::ops::rbac::RbacPlan;
use crate::ops::restore::binlog::{Binlogs, DataStats};
use crate::ops::restore::bulk::BulkJob;
use crate::ops::restore::insert::BinlogRows;
use crate::ops::restore::options::ImportMode;
use crate::ops::restore::plan::{DataPath, RestorePlan};
use crate::ops::restore::tasks::CollectionTask;
use crate::phase_time::{self, Spans, WallSplit};
use crate::repo::journal::{CollectionProgress, RestoreJournal, RestoreRecord};
use crate::repo::staging;
use crate::{cancellable, CancellationToken};

mod replace;

#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreStats {
    pub backup: String,
    pub collections: usize,
    pub entities: i64,
    pub segments: usize,
    pub staged_bytes: u64,
    pub duration_s: f64,
    pub staging_s: f64,
    pub import_s: f64,
    /// Wall time per phase (parallel jobs counted once; `staging_s` and
    /// `import_s` above are sums over jobs).
    #[serde(default)]
    pub wall: WallSplit,
    /// Users, roles and grants created, existing or skipped (`rbac`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbac: Option<RbacPlan>,
    /// Restored collections (targets) whose autoID keys the target made
    /// anew: a logical backup's keys are not kept there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys_regenerated: Vec<String>,
    /// How the rows got in when not as the backup's own way: `insert` for
    /// a logical backup or a physical one's binlogs (`--import-mode
    /// insert`), `bulk` for a logical one; none for a physical backup's
    /// segments imported by Milvus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_mode: Option<ImportMode>,
    /// Collections left out because the target cannot hold them
    /// (`--skip-unsupported`), with what each lacks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Unsupported>,
}

impl RestoreStats {
    fn add(&mut self, task: &CollectionTask, done: DataStats) {
        self.entities += done.entities;
        if done.keys_regenerated {
            self.keys_regenerated.push(task.target.to_string());
        }
        self.segments += done.segments;
        self.staged_bytes += done.staged_bytes;
        self.staging_s += done.staging_s;
        self.import_s += done.import_s;
    }
}

impl From<RowsRestored> for DataStats {
    fn from(done: RowsRestored) -> DataStats {
        DataStats {
            entities: done.rows as i64,
            keys_regenerated: done.keys_regenerated,
            ..Default::default()
        }
    }
}

/// Runs a plan, several collections at a time
/// (`backup.parallelism.restoreCollection`, sharing the import jobs);
/// refuses a plan with refusals.
pub async fn execute(
    ctx: &Context,
    plan: &RestorePlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<RestoreStats> {
    let started = Instant::now();
    plan.check()?;
    events.emit(plan.planned());
    // Collections restored at once share the import jobs.
    let width = plan.tuning.restore_width(plan.tasks.len());
    let shared;
    let plan = match width {
        1 => plan,
        _ => {
            shared = RestorePlan {
                tuning: Tuning {
                    restore_collections: width,
                    ..plan.tuning.share_imports(width)
                },
                ..plan.clone()
            };
            &shared
        }
    };
    for u in &plan.skipped {
        events.warn(format!(
            "{} not restored (--skip-unsupported): {}",
            u.collection,
            u.missing.join("; ")
        ));
    }
    for s in &plan.slow_imports {
        events.warn(s.describe());
    }
    for l in &plan.left_out {
        events.warn(format!(
            "{} has no rows in backup `{}`: it was left out when the backup was made ({}) — it is restored with its schema only",
            l.collection, plan.backup, l.reason
        ));
    }
    let client = ctx.milvus().await.during("restore")?;
    let in_use =
        crate::repo::lease::hold_or_warn(&ctx.backup_storage, &plan.backup, "restore", events)
            .await;
    let mut run = RestoreRun::new(ctx, client.as_ref(), plan, events, cancel);
    run.width = width;
    let dir = plan.journal_dir.as_str();
    // A row insert keeps its journal (and lease) in backup storage: it
    // touches no storage of Milvus's; a bulk import stages files there.
    let lease = match plan.data_path {
        DataPath::RowInsert => Some(
            staging::hold(&ctx.backup_storage, dir)
                .await
                .during("restore")?,
        ),
        _ if run.keeps_journal() || plan.staging_dir.is_some() => {
            Some(hold_staging(ctx, dir, events).await.during("restore")?)
        }
        _ => None,
    };
    let mut stats = RestoreStats {
        backup: plan.backup.clone(),
        collections: plan.tasks.len(),
        skipped: plan.skipped.clone(),
        import_mode: match plan.data_path {
            DataPath::BinlogImport => None,
            DataPath::RowInsert | DataPath::BinlogInsert => Some(ImportMode::Insert),
            DataPath::BulkImport => Some(ImportMode::Bulk),
        },
        ..Default::default()
    };
    let result = match run.run(&mut stats).await {
        Err(e)
            if in_use.is_some()
                && crate::repo::lease::deleted(&ctx.backup_storage, &plan.backup).await =>
        {
            tracing::debug!("restore of a backup deleted meanwhile failed: {e}");
            Err(Error::conflict(format!(
                "backup `{}` was deleted while in use: a `delete --force` removed it during this restore, so its files are gone — what was restored so far stays; restore from another backup",
                plan.backup
            )))
        }
        r => r,
    };
    crate::repo::lease::release(in_use).await;
    stats.wall = run.spans.wall();
    // No renewal may rewrite the lease after the folder is swept.
    drop(lease);
    let resumable = run.keeps_journal() && result.as_ref().is_err_and(leaves_resumable);
    run.clean_up(result.is_ok(), resumable).await;
    let storage = match plan.data_path {
        DataPath::RowInsert => "backup storage",
        _ => "Milvus's storage",
    };
    result.during("restore").map_err(|e| match resumable {
        true => e.remedy(
            Remedy::text(format!(
                "what was restored is kept, with a journal in `{dir}` of {storage}: finish it by rerunning the same restore with "
            ))
            .opt(Opt::Resume)
            .then(", or drop the partly restored collection"),
        ),
        false => e,
    })?;
    stats.duration_s = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// Sweeps staging folders no running restore holds (killed restores'
/// leftovers), then leases this restore's folder while it runs.
pub(crate) async fn hold_staging(
    ctx: &Context,
    dir: &str,
    events: &dyn EventSink,
) -> Result<staging::Lease> {
    use crate::repo::staging::{sweep, Sweep, STALE_AFTER};
    match sweep(&ctx.milvus_storage, STALE_AFTER, Sweep::Abandoned, false).await {
        Ok(swept) => {
            for s in swept {
                events.note(format!(
                    "removed `{}`: {} object(s) an interrupted restore left behind",
                    s.dir, s.objects
                ));
            }
        }
        Err(e) => events.warn(format!("could not sweep old staging folders: {e}")),
    }
    staging::hold(&ctx.milvus_storage, dir).await
}

/// Whether a failed restore keeps what it did for `--resume`: when what
/// stopped it can go away (Milvus or storage unreachable, throttled, a
/// transient failure), not when it was cancelled, the backup is damaged or
/// Milvus refused the data (a rerun would fail the same way).
fn leaves_resumable(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::Cancelled | ErrorKind::Corrupt => false,
        ErrorKind::Unreachable | ErrorKind::Throttled => true,
        _ => e.is_temporary(),
    }
}

/// One run of a plan: what its steps share.
struct RestoreRun<'a> {
    ctx: &'a Context,
    client: &'a dyn Milvus,
    plan: &'a RestorePlan,
    /// What finished: in Milvus's storage for a binlog import, in memory
    /// otherwise.
    journal: RestoreJournal,
    events: &'a dyn EventSink,
    /// Stops the collections in flight: the user's cancel, or the first
    /// collection that failed.
    stop: CancellationToken,
    /// Collections restored at once ([`Tuning::restore_width`]).
    width: usize,
    spans: Spans,
}

impl<'a> RestoreRun<'a> {
    fn new(
        ctx: &'a Context,
        client: &'a dyn Milvus,
        plan: &'a RestorePlan,
        events: &'a dyn EventSink,
        cancel: &'a CancellationToken,
    ) -> RestoreRun<'a> {
        let record = plan.resumed.clone().unwrap_or_else(|| RestoreRecord {
            backup: plan.backup.clone(),
            ..Default::default()
        });
        let journal = match plan.data_path {
            DataPath::BinlogImport => {
                RestoreJournal::new(&ctx.milvus_storage, &plan.journal_dir, record)
            }
            DataPath::RowInsert => {
                RestoreJournal::new(&ctx.backup_storage, &plan.journal_dir, record)
            }
            DataPath::BulkImport | DataPath::BinlogInsert => RestoreJournal::in_memory(record),
        };
        RestoreRun {
            ctx,
            client,
            plan,
            journal,
            events,
            stop: cancel.child_token(),
            width: 1,
            spans: Spans::default(),
        }
    }

    /// Whether the run keeps a journal (for `--resume`).
    fn keeps_journal(&self) -> bool {
        match self.plan.data_path {
            DataPath::BinlogImport | DataPath::RowInsert => true,
            DataPath::BulkImport | DataPath::BinlogInsert => false,
        }
    }

    /// Users and roles, then every collection, `width` at a time. The
    /// first failure stops the collections in flight (each cleans up as a
    /// cancelled one) and is the run's error; the stats add up in plan
    /// order, whatever order the collections finish in.
    async fn run(&self, stats: &mut RestoreStats) -> Result<()> {
        if let Some(rbac) = &self.plan.rbac {
            self.restore_rbac(rbac, stats).await?;
        }
        let tasks = &self.plan.tasks;
        let names = tasks.iter().map(|t| t.target.to_string()).collect();
        let board = Board::new(self.events, names, "restored");
        let board = &board;
        // Made in a loop, not in a stream's closure: rustc proves them Send.
        let mut each = Vec::with_capacity(tasks.len());
        for (i, task) in tasks.iter().enumerate() {
            each.push(async move {
                let mut one = RestoreStats::default();
                if self.stop.is_cancelled() {
                    // Not begun: nothing to stop or clean up.
                    return (i, one, Err(Error::cancelled()));
                }
                board.start(i);
                let restored = self.restore_task(i, task, &mut one).await;
                board.finish(i);
                (i, one, restored)
            });
        }
        let mut restoring = futures::stream::iter(each).buffer_unordered(self.width);
        let mut done: Vec<Option<RestoreStats>> = tasks.iter().map(|_| None).collect();
        let mut failure = None;
        while let Some((i, one, restored)) = restoring.next().await {
            match restored {
                Ok(()) => done[i] = Some(one),
                Err(e) if failure.is_none() => {
                    self.stop.cancel();
                    failure = Some(e);
                }
                Err(e) => tracing::debug!("stopped with the run: {e}"),
            }
        }
        if let Some(e) = failure.as_ref().filter(|e| !self.resumable(e)) {
            let finished = (0..tasks.len()).filter(|&i| done[i].is_some());
            self.drop_finished(finished.collect(), e).await;
        }
        for one in done.into_iter().flatten() {
            stats.entities += one.entities;
            stats.segments += one.segments;
            stats.staged_bytes += one.staged_bytes;
            stats.staging_s += one.staging_s;
            stats.import_s += one.import_s;
            stats.keys_regenerated.extend(one.keys_regenerated);
        }
        failure.map_or(Ok(()), Err)
    }

    /// Creates the missing users, roles and grants; reports the skipped ones.
    async fn restore_rbac(&self, plan: &RbacPlan, stats: &mut RestoreStats) -> Result<()> {
        let done = crate::ops::rbac::execute(self.client, plan).await?;
        for item in done.skipped_items() {
            self.events.warn(format!(
                "{} `{}` not restored: {}",
                item.kind.label(),
                item.name,
                item.reason.as_deref().unwrap_or("")
            ));
        }
        stats.rbac = Some(done);
        Ok(())
    }

    /// Restores collection `i` of the plan: one that replaces an existing
    /// collection by way of a side name ([`Self::replace`]), any other
    /// straight into its target.
    async fn restore_task(
        &self,
        i: usize,
        task: &CollectionTask,
        stats: &mut RestoreStats,
    ) -> Result<()> {
        match task.drop_existing && !task.reuse_existing {
            true => self.replace(i, task, stats).await,
            false => self.restore_into(i, task, stats).await,
        }
    }

    /// Restores collection `i` of the plan into its target, unless the
    /// interrupted run finished it, and loads it when it was loaded at
    /// backup time.
    async fn restore_into(
        &self,
        i: usize,
        task: &CollectionTask,
        stats: &mut RestoreStats,
    ) -> Result<()> {
        let (events, target) = (self.events, task.target.to_string());
        let mut progress = self.journal.progress(&target).await.unwrap_or_default();
        if progress.created && !task.exists {
            // Dropped since the interrupted run: start it over.
            progress = CollectionProgress::default();
        }
        events.emit(Event::CollectionStarted { index: i });
        if progress.done {
            let rows = progress.rows() as i64;
            events.note(format!(
                "--resume: {target} was restored by the interrupted run ({rows} entities): skipped"
            ));
            stats.entities += rows;
            stats.segments += progress.segments.len();
            events.emit(Event::CollectionFinished {
                index: i,
                error: None,
            });
            return Ok(());
        }
        events.phase(Phase::Restoring {
            index: i,
            of: self.plan.tasks.len(),
            source: task.source.to_string(),
            target: target.clone(),
        });
        // Set once the target is this restore's: created by it, or an
        // existing one it dropped on purpose (--drop_exist_collection).
        let ours = AtomicBool::new(progress.created);
        let outcome = self
            .restore_collection(i, task, progress, &ours)
            .await
            .at("collection", &task.target);
        let done = match outcome {
            Ok(done) => done,
            Err(e) => {
                self.after_failure(task, &ours, &e).await;
                events.emit(Event::CollectionFinished {
                    index: i,
                    error: Some(e.to_string()),
                });
                return Err(e);
            }
        };
        stats.add(task, done);
        self.load(task).await;
        self.journal.update(&target, |p| p.done = true).await?;
        events.emit(Event::CollectionFinished {
            index: i,
            error: None,
        });
        Ok(())
    }

    /// Whether `e` leaves a collection for `--resume`; insert mode keeps
    /// no journal: what it inserted cannot be resumed.
    fn resumable(&self, e: &Error) -> bool {
        leaves_resumable(e) && self.plan.data_path != DataPath::BinlogInsert
    }

    /// After a failure a rerun cannot mend, the collections this run
    /// created and finished while others were in flight go too: a restore
    /// that cannot be carried out whole leaves nothing of itself. A
    /// replaced collection stays (its original is gone).
    async fn drop_finished(&self, finished: Vec<usize>, failure: &Error) {
        for i in finished {
            let task = &self.plan.tasks[i];
            let progress = self.journal.progress(&task.target.to_string()).await;
            let created = progress.is_some_and(|p| p.created);
            if !created || task.exists || task.drop_existing || task.reuse_existing {
                continue;
            }
            if self.drop_again(task).await {
                self.events.warn(format!(
                    "dropped {} again: this restore made it, but cannot finish ({})",
                    task.target,
                    failure.message()
                ));
            }
        }
    }

    /// A half-filled collection we created would block a retry unless it
    /// is resumed: dropped then; one we did not create (someone made it
    /// since the plan) is never dropped.
    async fn after_failure(&self, task: &CollectionTask, ours: &AtomicBool, e: &Error) {
        if ours.load(Ordering::SeqCst) && !self.resumable(e) {
            self.drop_again(task).await;
        }
    }

    /// Forgets `task`'s progress and drops its target; whether it was
    /// there to drop (a failed drop is a warning).
    async fn drop_again(&self, task: &CollectionTask) -> bool {
        let _ = self
            .journal
            .update(&task.target.to_string(), |p| {
                *p = CollectionProgress::default()
            })
            .await;
        let t = &task.target;
        match self.client.drop_collection(&t.db, &t.name).await {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => {
                self.events
                    .warn(format!("could not drop the partly restored {t}: {e}"));
                false
            }
        }
    }

    /// Whether the restore loads `task`'s collection: it was loaded at
    /// backup time, and has its indexes.
    fn loads(&self, task: &CollectionTask) -> bool {
        let opts = &self.plan.options;
        opts.load && task.meta.load_state == "Loaded" && (opts.restore_index || task.reuse_existing)
    }

    /// Loads a restored collection that was loaded at backup time (it
    /// needs its indexes); a failed load is a warning.
    async fn load(&self, task: &CollectionTask) {
        if !self.loads(task) {
            return;
        }
        let t = &task.target;
        self.events.phase(Phase::Loading {
            collection: t.to_string(),
        });
        let start = Instant::now();
        if let Err(e) = crate::ops::collection::load_and_wait(self.client, t).await {
            self.events
                .warn(format!("{t} restored but not loaded: {e}"));
        }
        self.spans.record(phase_time::LOAD, start, Instant::now());
    }

    /// Recreates one collection (unless the interrupted run did) and,
    /// unless meta only, brings in its data by the plan's path. A stop
    /// (the user's, or another collection's failure) ends the data phase,
    /// never a creation half-way: a collection Milvus made is always known
    /// as this run's, so a failure can drop it again.
    async fn restore_collection(
        &self,
        index: usize,
        task: &CollectionTask,
        progress: CollectionProgress,
        ours: &AtomicBool,
    ) -> Result<DataStats> {
        if !progress.ready {
            self.create(index, task, &progress, ours).await?;
        } else {
            let what = match self.plan.data_path {
                DataPath::RowInsert | DataPath::BinlogInsert => "inserting the rows",
                _ => "importing the segments",
            };
            self.events.note(format!(
                "--resume: {} was created by the interrupted run; {what} it did not finish",
                task.target
            ));
        }
        if self.stop.is_cancelled() {
            return Err(Error::cancelled());
        }
        if self.plan.options.meta_only {
            return Ok(DataStats::default());
        }
        cancellable(&self.stop, self.fill(index, task)).await
    }

    /// The data of collection `index`, made ready: its segments imported
    /// or its rows inserted.
    async fn fill(&self, index: usize, task: &CollectionTask) -> Result<DataStats> {
        let (ctx, client, plan, events) = (self.ctx, self.client, self.plan, self.events);
        match plan.data_path {
            DataPath::BinlogImport => {
                let binlogs = Binlogs {
                    ctx,
                    client,
                    plan,
                    index,
                    task,
                    events,
                };
                binlogs.restore_all(&self.journal, &self.spans).await
            }
            DataPath::BulkImport => Ok(self.bulk_job(index, task)?.run().await?.into()),
            DataPath::BinlogInsert => {
                let rows = BinlogRows {
                    ctx,
                    client,
                    plan,
                    task,
                    events,
                };
                rows.insert_all().await
            }
            DataPath::RowInsert => {
                let logical = plan
                    .logical
                    .as_ref()
                    .ok_or_else(|| Error::internal("a row insert of a physical backup"))?;
                let (source, target) = (&task.source, &task.target);
                let manifest = plan.manifest.as_ref();
                let from = in_backup::RowsSource {
                    backup: &plan.backup,
                    logical,
                    manifest,
                };
                let journal = in_backup::RowsJournal {
                    journal: &self.journal,
                    keep_loaded: self.loads(task),
                };
                let done =
                    in_backup::restore_rows(ctx, client, from, source, target, &journal, events);
                Ok(done.await?.into())
            }
        }
    }

    /// The bulk import of one collection of the plan.
    fn bulk_job<'t>(&'t self, index: usize, task: &'t CollectionTask) -> Result<BulkJob<'t>> {
        let plan = self.plan;
        Ok(BulkJob {
            ctx: self.ctx,
            client: self.client,
            backup: &plan.backup,
            logical: plan
                .logical
                .as_ref()
                .ok_or_else(|| Error::internal("a bulk restore of a physical backup"))?,
            manifest: plan.manifest.as_ref(),
            staging: plan
                .staging_dir
                .as_deref()
                .ok_or_else(|| Error::internal("a bulk restore without a staging folder"))?,
            parallelism: plan.tuning.import_parallelism,
            index,
            source: &task.source,
            target: &task.target,
            events: self.events,
        })
    }

    /// Makes the target collection: its database, the collection (again,
    /// when an interrupted run made it only in part), partitions and
    /// indexes; recorded in the journal before and after.
    async fn create(
        &self,
        index: usize,
        task: &CollectionTask,
        progress: &CollectionProgress,
        ours: &AtomicBool,
    ) -> Result<()> {
        let t = Instant::now();
        let target = task.target.to_string();
        let mut task = task.clone();
        if progress.created && task.exists {
            // Interrupted before its schema, partitions and indexes were
            // all made (so before any import): made again.
            self.client
                .drop_collection(&task.target.db, &task.target.name)
                .await?;
            task.exists = false;
            task.drop_existing = false;
        }
        let source = task.source.to_string();
        let created = !task.reuse_existing;
        self.journal
            .update(&target, |p| {
                *p = CollectionProgress {
                    source,
                    created,
                    ..Default::default()
                }
            })
            .await?;
        if task.create_database {
            ensure_database(self.client, &task.target.db, &task.database_properties).await?;
        }
        self.recreate(index, &task, ours).await?;
        self.journal.update(&target, |p| p.ready = true).await?;
        self.spans.record(phase_time::CREATE, t, Instant::now());
        Ok(())
    }

    /// Drops an existing target (when asked), creates the collection like
    /// the backed-up one (with the overrides), and its indexes.
    async fn recreate(&self, index: usize, task: &CollectionTask, ours: &AtomicBool) -> Result<()> {
        let (client, opts, events) = (self.client, &self.plan.options, self.events);
        let (t, meta) = (&task.target, &task.meta);
        if task.drop_existing {
            client.drop_collection(&t.db, &t.name).await?;
            ours.store(true, Ordering::SeqCst);
        }
        if !task.reuse_existing {
            // The Go tool's restorePlan overrides: shards and description.
            let o = task.overrides.clone().unwrap_or_default();
            let mut meta = meta.clone();
            if let Some(description) = o.description {
                meta.schema.description = description;
            }
            meta.shards_num = o.shards_num.unwrap_or(meta.shards_num);
            // a side collection gets its aliases when it is swapped in
            let aliases = !task.replacing && !opts.skip_aliases;
            create_like(client, &meta, t, aliases, ours, events).await?;
        }
        if opts.restore_index {
            if opts.drop_exist_index && task.reuse_existing {
                for ix in client.describe_indexes(&t.db, &t.name).await? {
                    client
                        .drop_index(&t.db, &t.name, &ix.field_name, &ix.index_name)
                        .await?;
                }
            }
            create_indexes(client, meta, t, opts.use_auto_index, index, events).await?;
        }
        Ok(())
    }

    /// After the run: the journal removed (success) or kept (resumable),
    /// and the staged files swept unless `keepTempFiles`.
    async fn clean_up(&self, succeeded: bool, resumable: bool) {
        let (storage, plan) = (&self.ctx.milvus_storage, self.plan);
        let dir = plan.journal_dir.as_str();
        let tell = |what: &str, dir: &str, e: Error| {
            self.events.warn(format!("could not remove {what} under `{dir}`: {e} — remove them with `milvus-backup gc --staging`"));
        };
        if plan.data_path == DataPath::RowInsert {
            // The journal and lease, in backup storage: kept for --resume.
            if !resumable {
                if let Err(e) = self.ctx.backup_storage.delete_prefix(dir).await {
                    self.events.warn(format!("could not remove the restore's journal under `{dir}` of backup storage: {e}"));
                }
            }
            return;
        }
        if !self.keeps_journal() {
            // A bulk restore's staged files (and lease): always removed.
            if let Some(dir) = plan.staging_dir.as_deref() {
                if let Err(e) = storage.delete_prefix(dir).await {
                    tell("staging files", dir, e);
                }
            }
            return;
        }
        if succeeded {
            if let Err(e) = self.journal.finish().await {
                self.events.warn(format!("restore finished, but its journal in `{dir}` was not removed: {e} — remove it with `milvus-backup gc --staging`"));
            }
        }
        if resumable {
            // The journal stays for --resume; the staged files go.
            if let Err(e) = staging::remove_staged(storage, dir).await {
                tell("staging files", dir, e);
            }
        } else if let Some(dir) = plan.staging_dir.as_deref() {
            self.sweep_staging(dir).await;
        } else if let Err(e) = storage.delete_prefix(dir).await {
            self.events.warn(format!("could not remove the restore's journal under `{dir}`: {e} — remove it with `milvus-backup gc --staging`"));
        }
    }

    /// Removes the staging folder, or marks it kept (`keepTempFiles`);
    /// failed or cancelled imports may have left files in it.
    async fn sweep_staging(&self, dir: &str) {
        let storage = &self.ctx.milvus_storage;
        if self.plan.tuning.keep_temp_files {
            if let Err(e) = staging::keep(storage, dir).await {
                self.events.warn(format!(
                    "staging files under `{dir}` kept but not marked as kept: {e}"
                ));
            }
        } else if let Err(e) = storage.delete_prefix(dir).await {
            self.events.warn(format!("could not remove staging files under `{dir}`: {e} — remove them with `milvus-backup gc --staging`"));
        }
    }
}
