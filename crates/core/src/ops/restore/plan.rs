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

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::tuning::Tuning;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::events::{Event, Operation, PlannedCollection};
use crate::milvus::Milvus;
use crate::model::layout;
use crate::model::meta::{BackupInfo, CollectionBackupInfo, Manifest, SegmentBackupInfo};
use crate::model::selection::{CollectionRef, Missing};
use crate::ops::logical::LogicalBackup;
use crate::ops::rbac::RbacPlan;
use crate::ops::restore::bulk::{self, ImportMode};
use crate::ops::restore::options::{CollectionOverride, RestoreOptions};
use crate::ops::restore::targets::{check_renames_match, target_of};
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
}

impl DataPath {
    fn of(info: &BackupInfo, bulk: bool) -> DataPath {
        match (&info.logical, bulk) {
            (None, _) => DataPath::BinlogImport,
            (Some(_), true) => DataPath::BulkImport,
            (Some(_), false) => DataPath::RowInsert,
        }
    }
}

/// Why a planned collection would not be restored.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub kind: ErrorKind,
    pub reason: String,
}

impl Refusal {
    pub(crate) fn new(kind: ErrorKind, reason: String) -> Refusal {
        Refusal { kind, reason }
    }
}

/// One segment to import.
#[derive(Debug, Clone, Serialize)]
pub struct ImportJob {
    pub partition: String,
    pub segment: i64,
    /// A logical backup's data file (its rows are inserted); `segment` is 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Rows the backup recorded (before deletes).
    pub rows: i64,
    pub bytes: u64,
}

/// One collection to restore.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionTask {
    pub source: CollectionRef,
    pub target: CollectionRef,
    /// The target exists in Milvus now.
    pub exists: bool,
    /// The target exists and will be dropped (`--drop_exist_collection`).
    pub drop_existing: bool,
    /// The target exists and is reused (`--skip_create_collection`).
    pub reuse_existing: bool,
    /// The target's database will be created.
    pub create_database: bool,
    /// Why this collection would not be restored; `execute` refuses then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// Created with these settings instead of the backup's.
    #[serde(rename = "override", skip_serializing_if = "Option::is_none")]
    pub overrides: Option<CollectionOverride>,
    pub imports: Vec<ImportJob>,
    #[serde(skip)]
    pub meta: CollectionBackupInfo,
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
    /// The folder in Milvus's storage holding the restore's journal (and
    /// its staged files): the interrupted restore's with `--resume`.
    pub journal_dir: String,
    /// What the interrupted restore finished (`--resume`).
    #[serde(skip)]
    pub resumed: Option<RestoreRecord>,
    /// `binlog`, or `parquet`/`json` for a logical backup.
    pub format: String,
    #[serde(skip)]
    pub logical: Option<LogicalBackup>,
}

impl RestorePlan {
    /// The first refusal of the plan, as the error `execute` gives.
    pub fn check(&self) -> Result<()> {
        match self.tasks.iter().find_map(|t| t.refused.as_ref()) {
            Some(r) => Err(Error::new(r.kind, r.reason.clone()).during("restore")),
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
    apply_overrides(&mut tasks, &opts.overrides)?;
    check_unique_targets(&tasks)?;
    let manifest = catalog::manifest(&ctx.backup_storage, &info.name).await?;
    // A bulk restore of a logical backup stages its files as well.
    let bulk = opts.import_mode == ImportMode::Bulk && !opts.meta_only;
    if bulk {
        bulk::check(ctx, client, info, tasks.iter().map(|t| &t.meta))?;
    }
    let data_path = DataPath::of(info, bulk);
    let staging = !tasks.is_empty()
        && match data_path {
            DataPath::BulkImport => true,
            DataPath::RowInsert => false,
            DataPath::BinlogImport => {
                !ctx.backup_storage.same_bucket_as(&ctx.milvus_storage)
                    || manifest.as_ref().is_some_and(|m| !m.self_contained_plain())
            }
        };
    let rbac = plan_rbac(client, info, opts).await?;
    let (journal_dir, resumed) = journal_of(ctx, info, opts, data_path, &mut tasks).await?;
    Ok(RestorePlan {
        backup: info.name.clone(),
        milvus: format!("{} ({})", client.address(), client.version_text()),
        tasks,
        data_path,
        staging_dir: staging.then(|| journal_dir.clone()),
        options: opts.clone(),
        tuning: opts
            .tuning
            .unwrap_or_else(|| Tuning::from_config(&ctx.config.backup)),
        manifest,
        rbac,
        journal_dir,
        resumed,
        format: info.data_format(),
        logical: info.logical.clone(),
    })
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

/// What the target Milvus has, read as the tasks are planned: its
/// databases, and the collections of those that targets fall in.
struct TargetMilvus<'a> {
    client: &'a dyn Milvus,
    databases: Vec<String>,
    collections: BTreeMap<String, Vec<String>>,
}

impl<'a> TargetMilvus<'a> {
    async fn read(client: &'a dyn Milvus) -> Result<TargetMilvus<'a>> {
        Ok(TargetMilvus {
            client,
            databases: client.list_databases().await?,
            collections: BTreeMap::new(),
        })
    }

    /// Whether `target` exists now.
    async fn exists(&mut self, target: &CollectionRef) -> Result<bool> {
        if !self.databases.contains(&target.db) {
            return Ok(false);
        }
        if !self.collections.contains_key(&target.db) {
            let list = self.client.list_collections(&target.db).await?;
            self.collections.insert(target.db.clone(), list);
        }
        Ok(self.collections[&target.db].contains(&target.name))
    }

    /// The task restoring `source` into `target`, with its refusal if any.
    async fn task(
        &mut self,
        info: &BackupInfo,
        opts: &RestoreOptions,
        source: CollectionRef,
        target: CollectionRef,
    ) -> Result<CollectionTask> {
        let client = self.client;
        let has_databases = client.version().is_some_and(|v| v.has_databases());
        let db_exists = self.databases.contains(&target.db);
        let exists = self.exists(&target).await?;
        let refused = refusal_of(client, opts, (&source, &target), exists, db_exists);
        let mut meta = info
            .collection_backups
            .iter()
            .find(|c| c.db_name == source.db && c.collection_name == source.name)
            .cloned()
            .expect("selected from the backup");
        let imports = imports_of(info, opts, &source, &mut meta);
        Ok(CollectionTask {
            create_database: has_databases && !db_exists,
            source,
            target,
            exists,
            drop_existing: exists && opts.drop_exist_collection,
            reuse_existing: exists && opts.skip_create_collection,
            refused,
            overrides: None,
            imports,
            meta,
        })
    }
}

/// Why restoring `source` into `target` would be refused, if it would.
fn refusal_of(
    client: &dyn Milvus,
    opts: &RestoreOptions,
    (source, target): (&CollectionRef, &CollectionRef),
    exists: bool,
    db_exists: bool,
) -> Option<Refusal> {
    let has_databases = client.version().is_some_and(|v| v.has_databases());
    if !db_exists && !has_databases {
        return Some(Refusal::new(
            ErrorKind::InvalidInput,
            format!(
                "Milvus {} has no databases; restore into `default` (e.g. -r {source}:default.{})",
                client.version_text(),
                target.name
            ),
        ));
    }
    if exists && !opts.drop_exist_collection && !opts.skip_create_collection {
        return Some(Refusal::new(ErrorKind::AlreadyExists, format!(
            "collection `{target}` already exists in Milvus at {} — restore under another name (-s/--suffix or -r/--rename), or pass --drop_exist_collection to replace it or --skip_create_collection to import into it",
            client.address()
        )));
    }
    if !exists && opts.skip_create_collection {
        return Some(Refusal::new(
            ErrorKind::NotFound,
            format!(
                "--skip_create_collection: collection `{target}` does not exist in Milvus at {}",
                client.address()
            ),
        ));
    }
    None
}

/// The import jobs of one collection: a logical backup's files, or a
/// physical one's segments; none with `--meta_only`.
fn imports_of(
    info: &BackupInfo,
    opts: &RestoreOptions,
    source: &CollectionRef,
    meta: &mut CollectionBackupInfo,
) -> Vec<ImportJob> {
    if opts.meta_only {
        return Vec::new();
    }
    let Some(l) = &info.logical else {
        return segments_with_files(meta)
            .into_iter()
            .map(|(partition, s)| ImportJob {
                partition: partition.to_string(),
                segment: s.segment_id,
                file: None,
                rows: s.num_of_rows,
                bytes: s.size.max(0) as u64,
            })
            .collect();
    };
    // Another server's schema may lack what this one needs.
    crate::ops::logical::import::complete_schema(&mut meta.schema);
    l.collections
        .iter()
        .filter(|c| c.db_name == source.db && c.collection_name == source.name)
        .flat_map(|c| &c.files)
        .map(|f| ImportJob {
            partition: f.partition.clone(),
            segment: 0,
            file: Some(f.path.clone()),
            rows: f.rows as i64,
            bytes: f.size,
        })
        .collect()
}

/// The segments of a backed-up collection that have files to import, with
/// their partition's name.
pub(crate) fn segments_with_files(coll: &CollectionBackupInfo) -> Vec<(&str, &SegmentBackupInfo)> {
    coll.partition_backups
        .iter()
        .flat_map(|p| {
            p.segment_backups
                .iter()
                .map(move |s| (p.partition_name.as_str(), s))
        })
        .filter(|(_, s)| !s.binlogs.is_empty() || !s.deltalogs.is_empty())
        .collect()
}

/// Refuses two collections restored under the same name.
fn check_unique_targets(tasks: &[CollectionTask]) -> Result<()> {
    let mut targets: Vec<&CollectionRef> = tasks.iter().map(|t| &t.target).collect();
    targets.sort();
    if targets.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid_input(
            "two collections would be restored under the same name; adjust -r/--rename",
        ));
    }
    Ok(())
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
    // Named after the backup so leftovers are easy to attribute.
    let fresh = crate::repo::staging::new_dir(&info.name);
    // Only a binlog import keeps a journal: a logical restore's storage
    // of Milvus's (where journals live) may not even be configured.
    let journals = match data_path {
        DataPath::BinlogImport => {
            crate::repo::journal::interrupted_restore(&ctx.milvus_storage, &info.name).await
        }
        DataPath::RowInsert | DataPath::BulkImport => Ok(None),
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

/// Applies an interrupted restore's journal to the plan: a target it made
/// and did not finish is resumed (with `--resume`), or its refusal says
/// how to resume it.
fn resume_tasks(tasks: &mut [CollectionTask], record: &RestoreRecord, resume: bool) {
    for t in tasks.iter_mut() {
        let Some(p) = record.collections.get(&t.target.to_string()) else {
            continue;
        };
        if !p.created || !t.exists {
            continue;
        }
        let Some(r) = t
            .refused
            .as_mut()
            .filter(|r| r.kind == ErrorKind::AlreadyExists)
        else {
            continue;
        };
        if resume {
            t.refused = None;
        } else if !p.done {
            r.reason = format!(
                "collection `{}` is what an interrupted restore of this backup left ({} of {} segment(s) imported) — finish it by rerunning the same restore with --resume, or drop it",
                t.target,
                p.segments.values().filter(|s| s.rows.is_some()).count(),
                t.imports.len()
            );
        }
    }
}

/// Gives each override to the task restoring into its target. An override
/// naming no target, or asking for fewer than one shard, is bad input; one
/// for a collection that is reused rather than created is a refusal.
fn apply_overrides(
    tasks: &mut [CollectionTask],
    overrides: &BTreeMap<String, CollectionOverride>,
) -> Result<()> {
    for (key, o) in overrides.iter().filter(|(_, o)| !o.is_empty()) {
        let target = CollectionRef::parse_checked(key)?;
        if let Some(n) = o.shards_num.filter(|n| *n < 1) {
            return Err(Error::invalid_input(format!(
                "override of `{target}`: {n} shards — a collection needs at least 1"
            )));
        }
        let Some(task) = tasks.iter_mut().find(|t| t.target == target) else {
            return Err(Error::invalid_input(format!(
                "override of `{target}`: this restore creates no such collection — it restores into: {}",
                tasks
                    .iter()
                    .map(|t| t.target.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if task.reuse_existing {
            task.refused.get_or_insert(Refusal::new(
                ErrorKind::InvalidInput,
                format!(
                    "override of `{target}`: the existing collection is reused (--skip_create_collection), so its shards and description cannot change — drop the override or restore under another name"
                ),
            ));
        }
        task.overrides = Some(o.clone());
    }
    Ok(())
}
