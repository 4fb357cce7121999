//! Planning a restore, changing nothing (`--dry-run` prints the plan):
//! which of the backup's collections are restored (the options'
//! [`Selection`](crate::model::selection::Selection)), under which names,
//! what exists in the target Milvus and would be refused, each
//! collection's overrides and import jobs, how its data gets in
//! ([`DataPath`], decided here once), where files are staged, and what an
//! interrupted restore left to resume.
//!
//! Does not own: the options' own checks ([`super::options`]), target
//! names ([`super::targets`]), or running the plan ([`super::run`]).

use serde::Serialize;

use crate::config::tuning::Tuning;
use crate::context::Context;
use crate::error::{Error, Result, ResultExt};
use crate::events::{Event, Operation, PlannedCollection};
use crate::milvus::Milvus;
use crate::model::layout;
use crate::model::meta::{BackupInfo, Manifest};
use crate::model::selection::{CollectionRef, Missing};
use crate::ops::logical::LogicalBackup;
use crate::ops::preflight::{self, Unsupported};
use crate::ops::rbac::RbacPlan;
use crate::ops::restore::bulk;
use crate::ops::restore::estimate::{self, SlowImport};
use crate::ops::restore::options::ImportMode;
use crate::ops::restore::options::RestoreOptions;
use crate::ops::restore::targets::{check_renames_match, target_of};
use crate::ops::restore::tasks::{
    apply_overrides, check_unique_targets, resume_tasks, CollectionTask, TargetMilvus,
};
use crate::repo::catalog;
use crate::repo::journal::RestoreRecord;

/// How a plan's data gets into Milvus; decided once, by [`plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataPath {
    /// A physical backup: each segment's binlogs imported by Milvus in
    /// backup mode (staged into its storage first when needed).
    BinlogImport,
    /// A logical backup's rows inserted over gRPC.
    RowInsert,
    /// A logical backup's files staged into Milvus's storage and read by
    /// its import (`--import-mode bulk`).
    BulkImport,
    /// A physical backup's binlogs read from backup storage by the tool,
    /// deletes applied, and their rows inserted over gRPC
    /// (`--import-mode insert`): no job per segment, no Milvus storage.
    BinlogInsert,
}

impl DataPath {
    fn of(info: &BackupInfo, mode: Option<ImportMode>) -> DataPath {
        match (&info.logical, mode) {
            (None, Some(ImportMode::Insert)) => DataPath::BinlogInsert,
            (None, _) => DataPath::BinlogImport,
            (Some(_), Some(ImportMode::Bulk)) => DataPath::BulkImport,
            (Some(_), _) => DataPath::RowInsert,
        }
    }

    /// How a collection's data gets in, in words (`restore --dry-run`).
    pub fn describe(self) -> &'static str {
        match self {
            DataPath::BinlogImport => "segments imported by Milvus (one job per segment)",
            DataPath::RowInsert => "rows inserted over gRPC",
            DataPath::BulkImport => "files staged and imported by Milvus (bulk)",
            DataPath::BinlogInsert => "binlogs read here, rows inserted over gRPC (insert mode)",
        }
    }

    /// Whether the rows go in by Insert calls (the target's storage unused).
    pub fn inserts(self) -> bool {
        matches!(self, DataPath::RowInsert | DataPath::BinlogInsert)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RestorePlan {
    pub backup: String,
    /// The Milvus restored into, e.g. `127.0.0.1:19530 (v2.3.5)`.
    pub milvus: String,
    pub tasks: Vec<CollectionTask>,
    /// How the data gets in.
    pub data_path: DataPath,
    /// Where segment files are copied for Milvus to read, in its storage:
    /// when it cannot read the backup's, or they are encoded or shared.
    pub staging_dir: Option<String>,
    pub options: RestoreOptions,
    pub tuning: Tuning,
    /// The backup's manifest: where each file is and how it is stored.
    #[serde(skip)]
    pub manifest: Option<Manifest>,
    /// Users, roles and grants to create, existing or skipped (`rbac`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbac: Option<RbacPlan>,
    /// The folder holding the restore's journal (and its staged files):
    /// in Milvus's storage, or in backup storage for a row insert
    /// ([`DataPath::journal_storage`]); the interrupted restore's with
    /// `--resume`.
    pub journal_dir: String,
    /// What the interrupted restore finished (`--resume`).
    #[serde(skip)]
    pub resumed: Option<RestoreRecord>,
    /// `binlog`, or `parquet`/`json` for a logical backup.
    pub format: String,
    /// Selected collections the target cannot hold, left out with
    /// `--skip-unsupported` (without it the plan is an error).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Unsupported>,
    /// Selected collections the backup holds without rows (left out when
    /// it was made): restored with their schema only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<crate::model::meta::LeftOut>,
    /// Collections whose segments Milvus would import far slower than
    /// their rows could be inserted (Milvus 2.2/2.3: one job per segment),
    /// with both estimates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slow_imports: Vec<SlowImport>,
    #[serde(skip)]
    pub logical: Option<LogicalBackup>,
}

impl RestorePlan {
    /// The first refusal of the plan, as the error `execute` gives.
    pub fn check(&self) -> Result<()> {
        match self.tasks.iter().find_map(|t| t.refused.as_ref()) {
            Some(r) => Err(r.error().during("restore")),
            None => Ok(()),
        }
    }

    /// The work ahead as an event: the bytes to import per collection.
    pub fn planned(&self) -> Event {
        Event::Planned {
            operation: Operation::Restore,
            collections: self
                .tasks
                .iter()
                .map(|t| PlannedCollection {
                    name: t.source.to_string(),
                    target: Some(t.target.to_string()),
                    segments: t.imports.len(),
                    files: 0,
                    bytes: t.imports.iter().map(|j| j.bytes).sum(),
                })
                .collect(),
        }
    }
}

/// Plans a restore of `opts.backup_name`; changes nothing. Refusals of
/// single collections are in the plan ([`RestorePlan::check`]); bad options
/// and an unreadable backup are errors.
pub async fn plan(ctx: &Context, opts: &RestoreOptions) -> Result<RestorePlan> {
    let info = catalog::get(&ctx.backup_storage, &opts.backup_name)
        .await
        .during("restore")?;
    check_meta_files_present(&ctx.backup_storage, &opts.backup_name)
        .await
        .during("restore")?;
    let client = ctx.milvus().await.during("restore")?;
    plan_from(ctx, client.as_ref(), &info, opts)
        .await
        .during("restore")
}

/// Every per-level meta file must be there, as `verify` requires: a backup
/// missing one is damaged (another tool could not read it), even though
/// `full_meta.json` alone would restore it.
async fn check_meta_files_present(storage: &crate::storage::Storage, name: &str) -> Result<()> {
    for file in [
        layout::BACKUP_META,
        layout::COLLECTION_META,
        layout::PARTITION_META,
        layout::SEGMENT_META,
    ] {
        let key = layout::backup_meta_file(name, file);
        if storage.stat(&key).await?.is_none() {
            return Err(Error::corrupt(format!(
                "backup `{name}` is damaged: meta/{file} is missing — run `milvus-backup verify -n {name}`, and restore from another backup"
            ))
            .at("key", key));
        }
    }
    if let Some((file, problem)) = catalog::changed_meta_files(storage, name).await?.pop() {
        return Err(Error::corrupt(format!(
            "backup `{name}` is damaged: meta/{file} {problem} — run `milvus-backup verify -n {name}`, and restore from another backup"
        ))
        .at("key", layout::backup_meta_file(name, &file)));
    }
    Ok(())
}

/// [`plan`] of a backup already read.
pub(crate) async fn plan_from(
    ctx: &Context,
    client: &dyn Milvus,
    info: &BackupInfo,
    opts: &RestoreOptions,
) -> Result<RestorePlan> {
    opts.validate()?;
    let renames = opts.rename_rules()?;
    let in_backup: Vec<CollectionRef> = info
        .collection_backups
        .iter()
        .map(|c| CollectionRef {
            db: c.db_name.clone(),
            name: c.collection_name.clone(),
        })
        .collect();
    check_renames_match(&renames, &in_backup, &info.name)?;
    let selected = opts
        .selection()
        .pick(&in_backup, |m| missing_from(info, &in_backup, m))?;
    let mut tasks = Vec::new();
    let mut milvus = TargetMilvus::read(client).await?;
    for source in selected {
        let target = target_of(&source, &opts.suffix, &renames);
        tasks.push(milvus.task(info, opts, source, target).await?);
    }
    let skipped = preflight(client, opts, &mut tasks)?;
    apply_overrides(&mut tasks, &opts.overrides)?;
    check_unique_targets(&tasks)?;
    let manifest = catalog::manifest(&ctx.backup_storage, &info.name).await?;
    let mode = opts.import_mode.filter(|_| !opts.meta_only);
    let data_path = DataPath::of(info, mode);
    if mode == Some(ImportMode::Bulk) {
        // A bulk restore of a logical backup stages its files as well.
        bulk::check(ctx, client, info, tasks.iter().map(|t| &t.meta))?;
    }
    if data_path == DataPath::BinlogInsert {
        for t in &tasks {
            check_insertable(&t.meta, &t.source)?;
        }
    }
    let staging = !tasks.is_empty()
        && match data_path {
            DataPath::BulkImport => true,
            DataPath::RowInsert | DataPath::BinlogInsert => false,
            DataPath::BinlogImport => {
                !ctx.backup_storage.same_bucket_as(&ctx.milvus_storage)
                    || manifest.as_ref().is_some_and(|m| !m.self_contained_plain())
            }
        };
    let rbac = plan_rbac(client, info, opts).await?;
    let (journal_dir, resumed) = journal_of(ctx, info, opts, data_path, &mut tasks).await?;
    let left_out = (info.left_out.iter())
        .filter(|l| tasks.iter().any(|t| t.source.to_string() == l.collection))
        .cloned()
        .collect();
    // Milvus 2.4 and later take many files per import job.
    let one_segment_per_job = client.version().is_none_or(|v| (v.major, v.minor) < (2, 4));
    let slow_imports = match data_path {
        DataPath::BinlogImport if one_segment_per_job => {
            tasks.iter().filter_map(estimate::slow_import).collect()
        }
        _ => Vec::new(),
    };
    Ok(RestorePlan {
        slow_imports,
        backup: info.name.clone(),
        milvus: format!("{} ({})", client.address(), client.version_text()),
        tasks,
        data_path,
        staging_dir: staging.then(|| journal_dir.clone()),
        options: opts.clone(),
        tuning: opts.tuning.unwrap_or(ctx.settings.tuning),
        manifest,
        rbac,
        journal_dir,
        resumed,
        format: info.data_format(),
        logical: info.logical.clone(),
        skipped,
        left_out,
    })
}

/// Refuses a collection whose insert logs `--import-mode insert` cannot read.
fn check_insertable(
    meta: &crate::model::meta::CollectionBackupInfo,
    source: &CollectionRef,
) -> Result<()> {
    let refuse = |why: String| {
        Error::unsupported(format!(
            "{source} cannot be restored with --import-mode insert: {why} — restore it without --import-mode (Milvus's import)"
        ))
    };
    let fields =
        crate::ops::logical::fields::fields_of(&meta.schema).map_err(|e| refuse(e.to_string()))?;
    for f in &fields {
        if let Some(why) = crate::ops::binlog::columns::unreadable(f.kind) {
            return Err(refuse(format!("field `{}` ({}): {why}", f.name, f.kind)));
        }
    }
    Ok(())
}

/// Compares what each collection to create needs with what the target
/// holds, before anything changes: any gap refuses the restore, naming
/// every field; with `--skip-unsupported` those collections are left out
/// (and returned).
fn preflight(
    client: &dyn Milvus,
    opts: &RestoreOptions,
    tasks: &mut Vec<CollectionTask>,
) -> Result<Vec<Unsupported>> {
    let caps = client.capabilities();
    let unsupported: Vec<Unsupported> = tasks
        .iter()
        .filter(|t| !t.reuse_existing)
        .filter_map(|t| preflight::check(&caps, &t.source, &t.meta.schema))
        .collect();
    if unsupported.is_empty() {
        return Ok(unsupported);
    }
    if !opts.skip_unsupported {
        let server = format!("{} ({})", client.address(), client.version_text());
        return Err(preflight::refusal(
            &server,
            &unsupported,
            tasks.len() - unsupported.len(),
        ));
    }
    tasks.retain(|t| {
        !unsupported
            .iter()
            .any(|u| u.collection == t.source.to_string())
    });
    Ok(unsupported)
}

/// Restore's words for what its selection names and the backup lacks.
fn missing_from(info: &BackupInfo, in_backup: &[CollectionRef], m: Missing) -> Error {
    let name = &info.name;
    match m {
        Missing::Filter(pattern) => Error::not_found(format!(
            "filter `{pattern}` matches no collection of backup `{name}`"
        )),
        Missing::Database(db) => {
            Error::not_found(format!("backup `{name}` has no database `{db}`"))
        }
        Missing::Collection(c) => Error::not_found(format!(
            "collection `{c}` is not in backup `{name}` — it has: {}",
            in_backup
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The users and roles to restore (`rbac`), which the backup must hold.
async fn plan_rbac(
    client: &dyn Milvus,
    info: &BackupInfo,
    opts: &RestoreOptions,
) -> Result<Option<RbacPlan>> {
    match (opts.rbac, &info.rbac_meta) {
        (false, _) => Ok(None),
        (true, Some(meta)) => Ok(Some(
            crate::ops::rbac::plan(client, meta, opts.rbac_user_password_file.as_deref()).await?,
        )),
        (true, None) => Err(Error::not_found(format!(
            "backup `{}` holds no users and roles (it was created without --rbac)",
            info.name
        ))),
    }
}

/// The restore's journal folder and, with `--resume`, what the
/// interrupted restore recorded; an interrupted restore's journal also
/// words the refusals of the targets it left.
async fn journal_of(
    ctx: &Context,
    info: &BackupInfo,
    opts: &RestoreOptions,
    data_path: DataPath,
    tasks: &mut [CollectionTask],
) -> Result<(String, Option<RestoreRecord>)> {
    use crate::repo::{journal, staging};
    // Named after the backup so leftovers are easy to attribute. A row
    // insert keeps its journal in backup storage: Milvus's may not even
    // be configured. A bulk import keeps none (its staged files go).
    let (fresh, journals) = match data_path {
        DataPath::BinlogImport => (
            staging::new_dir(&info.name),
            journal::interrupted_restore(&ctx.milvus_storage, &info.name).await,
        ),
        DataPath::RowInsert => {
            let root = crate::model::layout::ROW_RESTORES_ROOT;
            (
                staging::new_dir_in(root, &info.name),
                journal::interrupted_restore_in(&ctx.backup_storage, root, &info.name).await,
            )
        }
        // Neither keeps one: a failed insert-mode restore is run again.
        DataPath::BulkImport | DataPath::BinlogInsert => (staging::new_dir(&info.name), Ok(None)),
    };
    match journals {
        Ok(Some((dir, record))) => {
            resume_tasks(tasks, &record, opts.resume);
            match opts.resume {
                true => Ok((dir, Some(record))),
                false => Ok((fresh, None)),
            }
        }
        Ok(None) => Ok((fresh, None)),
        Err(e) if opts.resume => Err(e),
        Err(_) => Ok((fresh, None)),
    }
}
