//! Running a plan: [`execute`] opens the create's journal, runs a
//! [`BackupRun`] (sample and flush each collection, list it again, compare
//! its rows with Milvus's, store the data, write the meta files), decides
//! what a failure leaves, and applies the retention policy after a success.
//!
//! Not here: what is copied and how ([`super::copy`]), the meta files'
//! contents ([`super::meta`]), live-row counts ([`super::rows`]).

use std::time::Instant;

use serde::Serialize;

use super::plan::BackupPlan;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::Milvus;
use crate::model::layout;
use crate::model::meta::{LeftOut, ManifestFile, RowCheck};
use crate::ops::delete::{self, DeleteOptions, DeleteTarget};
use crate::ops::verify::sample::CollectionSample;
use crate::repo::catalog;
use crate::repo::journal::CreateJournal;
use crate::storage::root_key;
use crate::{cancellable, CancellationToken};

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
    /// Deletes Milvus had applied but not persisted
    /// (`--allow-unpersisted-deletes`): rows a restore brings back.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub unpersisted_deletes: i64,
    pub size_bytes: u64,
    /// Bytes written by this backup; files shared with the base are not counted.
    pub copied_bytes: u64,
    pub files: u64,
    /// Files shared with the base backup instead of copied, and their bytes.
    pub shared_files: u64,
    pub shared_bytes: u64,
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
    #[serde(skip_serializing_if = "super::is_zero")]
    pub resumed_files: u64,
    #[serde(skip_serializing_if = "super::is_zero")]
    pub resumed_bytes: u64,
    /// Collections of a backup of everything kept without their rows
    /// because Milvus could not give them (e.g. not loaded and no index):
    /// the backup completed with collections left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
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
    let run = BackupRun {
        ctx,
        plan: plan.clone(),
        journal: &journal,
        events,
        cancel,
        live: Vec::new(),
        row_checks: vec![None; plan.collections.len()],
        started: Instant::now(),
    };
    let mut stats = match cancellable(cancel, run.run()).await {
        Ok(stats) => stats,
        Err(e) => return Err(leave_failed(ctx, plan, journal, e, events).await),
    };
    stats.retention_deleted = apply_retention(ctx, plan, events, cancel).await;
    stats.duration_s = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// The retention policy after a successful backup (which it spares): the
/// backups it deleted. A failure is a warning; the backup stands.
pub(super) async fn apply_retention(
    ctx: &Context,
    plan: &BackupPlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Vec<String> {
    if !plan.retention.is_active() {
        return Vec::new();
    }
    let opts = DeleteOptions {
        target: DeleteTarget::Retention(plan.retention),
        keep: vec![plan.name.clone()],
        force: false,
    };
    match delete::delete(&ctx.backup_storage, &opts, events, cancel).await {
        Ok(done) => done.deleted,
        Err(e) => {
            events.warn(format!("retention policy not applied: {e}"));
            Vec::new()
        }
    }
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

/// The manifest entries of a backup's files: copied, or shared with the base.
pub(super) struct Copied {
    pub(super) files: Vec<ManifestFile>,
    pub(super) copied_bytes: u64,
    pub(super) shared_files: u64,
    pub(super) shared_bytes: u64,
    /// Kept from an interrupted run (`--resume`); in `files` and
    /// `copied_bytes` too.
    pub(super) resumed: Vec<ManifestFile>,
}

/// One run of a plan, and what it learns on the way.
pub(super) struct BackupRun<'a> {
    pub(super) ctx: &'a Context,
    /// The plan, updated as the run goes: listed again after the flush,
    /// collections dropped meanwhile marked, a logical export's meta.
    pub(super) plan: BackupPlan,
    /// Records each file stored, for `create --resume`.
    pub(super) journal: &'a CreateJournal,
    pub(super) events: &'a dyn EventSink,
    pub(super) cancel: &'a CancellationToken,
    /// Live rows of each collection backed up (dropped ones left out);
    /// `None` where they could not be counted.
    pub(super) live: Vec<Option<i64>>,
    /// Each planned collection's rows as Milvus served them against its
    /// files', where they were compared after its flush.
    pub(super) row_checks: Vec<Option<RowCheck>>,
    pub(super) started: Instant,
}

impl BackupRun<'_> {
    async fn run(mut self) -> Result<BackupStats> {
        for note in &self.plan.notes {
            self.events.note(note.clone());
        }
        self.store_root_key().await?;
        self.events.emit(self.plan.planned());
        let client = self.ctx.milvus().await?;
        let client = client.as_ref();
        let mut samples = self.flush_all(client).await?;
        let copied = match self.plan.logical {
            Some(format) => self.export_rows(format, &mut samples).await?,
            None => self.copy_files(client).await?,
        };
        self.events.phase(Phase::WritingMeta);
        let stats = self.write_meta(copied, samples).await?;
        // Complete: nothing is left to resume.
        if let Err(e) = self.journal.finish().await {
            self.events.warn(format!(
                "backup complete, but its journal was not removed: {e}"
            ));
        }
        for index in 0..self.plan.collections.len() {
            self.events
                .emit(Event::CollectionFinished { index, error: None });
        }
        Ok(stats)
    }

    /// The first encrypted backup under a password makes its root key.
    async fn store_root_key(&self) -> Result<()> {
        if let (true, Some(key)) = (self.plan.new_root_key, &self.plan.encoder.key) {
            root_key::store_root_key(&self.ctx.backup_storage, key).await?;
            self.events.note(format!(
                "made the root key {} that the password unlocks (keep the password: without it these backups cannot be read)",
                layout::ROOT_KEY
            ));
        }
        Ok(())
    }

    /// A logical backup: the rows exported over gRPC in `format`, and a
    /// sample of each collection's rows (into `samples`). A collection
    /// Milvus cannot give rows of is left out, unless it was named.
    async fn export_rows(
        &mut self,
        format: crate::ops::logical::Format,
        samples: &mut Vec<CollectionSample>,
    ) -> Result<Copied> {
        use crate::ops::logical::in_backup::{export_collections, Base, Destination, ToExport};
        let plan = &mut self.plan;
        let colls: Vec<ToExport> = plan
            .collections
            .iter()
            .map(|c| ToExport {
                source: &c.source,
                meta: &c.meta,
                may_leave_out: !plan.selection.names(&c.source),
            })
            .collect();
        let base = match (&plan.base_backup, &plan.base_manifest, &plan.base_logical) {
            (Some(name), Some(manifest), Some(logical)) => Some(Base {
                name,
                manifest,
                logical,
            }),
            _ => None,
        };
        let into = Destination {
            name: &plan.name,
            format,
            encoder: &plan.encoder,
            base: base.as_ref(),
        };
        let width = plan.tuning.backup_collections;
        let e = export_collections(self.ctx, into, &colls, width, self.events, self.cancel).await?;
        let shared: Vec<ManifestFile> = (e.files.iter())
            .filter(|f| f.stored_in.is_some())
            .cloned()
            .collect();
        super::incremental::check_base_holds(self.ctx, plan, &shared).await?;
        for (c, l) in plan.collections.iter_mut().zip(&e.logical.collections) {
            c.meta.size = l.files.iter().map(|f| f.size as i64).sum();
            self.live.push(Some(l.rows as i64));
        }
        plan.info.logical = Some(e.logical);
        plan.info.left_out = e.left_out;
        samples.extend(e.samples);
        Ok(Copied {
            copied_bytes: (e.files.iter())
                .filter(|f| f.stored_in.is_none())
                .map(|f| f.size)
                .sum(),
            shared_files: e.shared_files,
            shared_bytes: e.shared_bytes,
            files: e.files,
            resumed: Vec::new(),
        })
    }

    /// A physical backup: the files copied, live rows counted meanwhile
    /// (the files' rows where they were compared after the flush).
    async fn copy_files(&mut self, client: &dyn Milvus) -> Result<Copied> {
        let counts = async {
            let mut live = Vec::with_capacity(self.plan.collections.len());
            for (c, check) in self.plan.collections.iter().zip(&self.row_checks) {
                if c.dropped {
                    continue;
                }
                let parallelism = self.plan.tuning.meta_parallelism;
                live.push(match check {
                    Some(check) => Some(check.held_rows()),
                    None => {
                        super::rows::live_rows(self.ctx, client, c, parallelism, self.events).await
                    }
                });
            }
            live
        };
        let (counted, copied) = futures::join!(counts, self.copy_phase());
        self.live = counted;
        copied
    }
}
