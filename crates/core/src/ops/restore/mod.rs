//! `restore`: collections from a backup back into a Milvus.
//!
//! Options → Plan → Stats. [`plan`] maps each backed-up collection to its
//! target name (suffix, renames, `--collection/--target-collection`),
//! checks every target (what exists, what would be refused), gives each
//! collection its overrides (shards, description), decides where
//! segments are staged and lists the import jobs — changing nothing
//! (`--dry-run` prints it). [`execute`] refuses a plan with any refusal,
//! then for each collection recreates the database, collection (same
//! schema, field order and ids, shards, consistency level, properties,
//! partition-key partitions — shards and description as overridden),
//! partitions and indexes, and ingests each
//! segment with `Import` in backup mode.
//!
//! Milvus reads import files from its own storage. When the backup is in a
//! different bucket or service, or its files are encoded or shared, each
//! segment's files are first staged into the target's storage under the
//! plan's staging folder, and removed after the import (success or not)
//! unless `backup.keepTempFiles`. A collection whose restore is cancelled,
//! or fails on a damaged backup, is dropped again (unless it was reused),
//! and the staging folder is swept. Any other failure (or a kill) leaves
//! the collection partly restored, with a journal in the staging folder of
//! what finished ([`crate::repo::journal`]); `--resume` then imports only the
//! segments whose imports did not complete, and never one twice.

pub mod bulk;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::config::tuning::Tuning;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::events::{Emit, Event, EventSink, Operation, Phase, PlannedCollection};
use crate::milvus::{proto, Milvus};
use crate::model::layout;
use crate::model::meta::{self, BackupInfo, CollectionBackupInfo, Manifest, SegmentBackupInfo};
use crate::model::selection::CollectionRef;
use crate::ops::collection::{create_indexes, create_like, ensure_database, wait_imports};
use crate::repo::catalog;
use crate::repo::journal::{CollectionProgress, RestoreJournal, RestoreRecord, SegmentProgress};
use crate::{cancellable, CancellationToken};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreOptions {
    pub backup_name: String,
    /// Collections of the backup to restore (`coll` or `db.coll`); all when empty.
    pub collections: Vec<String>,
    /// Databases of the backup to restore; all when empty.
    pub databases: Vec<String>,
    pub db_collections: BTreeMap<String, Vec<String>>,
    /// Appended to every target collection name.
    pub suffix: String,
    /// `db1.c1:db2.c1_new`, `c2:c2_new` or `db1.*:db2.*`.
    pub renames: Vec<String>,
    /// Patterns `db.coll` or `db.*` (`*` any run of characters) of the
    /// backup's collections to restore (the Go tool's `--filter`).
    #[serde(default)]
    pub filter: Vec<String>,
    pub drop_exist_collection: bool,
    pub skip_create_collection: bool,
    pub meta_only: bool,
    pub restore_index: bool,
    pub use_auto_index: bool,
    pub drop_exist_index: bool,
    /// Load collections that were loaded at backup time (needs an index).
    pub load: bool,
    /// Restore users and roles too.
    #[serde(default)]
    pub rbac: bool,
    /// `user:password` lines: the passwords of the users `rbac` creates
    /// (users it lacks are skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac_user_password_file: Option<std::path::PathBuf>,
    /// Parallelism and temp files; from `backup.*` when `None`.
    #[serde(default)]
    pub tuning: Option<Tuning>,
    /// Settings a restored collection gets instead of the backup's, by
    /// target collection (`coll` in `default`, or `db.coll`): the Go tool's
    /// `restorePlan` `override`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, CollectionOverride>,
    /// Continue an interrupted restore of this backup: collections and
    /// segments its journal says finished are skipped.
    #[serde(default)]
    pub resume: bool,
    /// How a logical backup's rows get in: inserts over gRPC, or Milvus's
    /// import of files staged into its storage (`--import-mode bulk`).
    #[serde(default)]
    pub import_mode: crate::ops::restore::bulk::ImportMode,
}

/// What a restored collection is created with instead of what the backup
/// recorded; `None` keeps the backup's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionOverride {
    /// Shards (virtual channels); at least 1. The data is spread over them
    /// by Milvus's import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards_num: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl CollectionOverride {
    pub fn is_empty(&self) -> bool {
        self.shards_num.is_none() && self.description.is_none()
    }
}

/// Why a planned collection would not be restored.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub kind: ErrorKind,
    pub reason: String,
}

impl Refusal {
    fn new(kind: ErrorKind, reason: String) -> Refusal {
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
    pub rbac: Option<crate::ops::rbac::RbacPlan>,
    /// The folder in Milvus's storage holding the restore's journal (and
    /// its staged files): the interrupted restore's with `--resume`.
    pub journal_dir: String,
    /// What the interrupted restore finished (`--resume`).
    #[serde(skip)]
    pub resumed: Option<crate::repo::journal::RestoreRecord>,
    /// `binlog`, or `parquet`/`json` for a logical backup, whose rows are
    /// inserted over gRPC instead of imported.
    pub format: String,
    #[serde(skip)]
    pub logical: Option<crate::ops::logical::LogicalBackup>,
}

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
    pub wall: crate::phase_time::WallSplit,
    /// Users, roles and grants created, existing or skipped (`rbac`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbac: Option<crate::ops::rbac::RbacPlan>,
    /// Restored collections (targets) whose autoID keys the target made
    /// anew: a logical backup's keys are not kept there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys_regenerated: Vec<String>,
    /// How a logical backup's rows got in (`insert` or `bulk`); none for a
    /// physical backup (always Milvus's import).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_mode: Option<crate::ops::restore::bulk::ImportMode>,
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

/// Restores a backup: plan, then execute.
pub async fn restore(
    ctx: &Context,
    opts: &RestoreOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<RestoreStats> {
    let plan = plan(ctx, opts).await?;
    execute(ctx, &plan, events, cancel).await
}

/// Parses one rename rule into (from, to) references; `*` renames a
/// database. Both sides must be names Milvus accepts (`db.*` on both
/// sides, or on neither).
fn parse_rename(rule: &str) -> Result<(String, String)> {
    let malformed = |why: &str| {
        Error::invalid_input(format!(
            "rename `{rule}`: {why} — write old:new, db1.old:db2.new or db1.*:db2.*"
        ))
    };
    let (from, to) = rule
        .split_once(':')
        .map(|(a, b)| (a.trim(), b.trim()))
        .ok_or_else(|| malformed("no `:` between the old and the new name"))?;
    if from.is_empty() || to.is_empty() || to.contains(':') {
        return Err(malformed("it needs exactly one old and one new name"));
    }
    let (f, t) = (CollectionRef::parse(from), CollectionRef::parse(to));
    if (f.name == "*") != (t.name == "*") {
        return Err(malformed(
            "`*` renames a whole database and goes on both sides",
        ));
    }
    for (side, r) in [("old", &f), ("new", &t)] {
        let names = [("database", r.db.as_str()), ("collection", r.name.as_str())];
        for (what, name) in names {
            let wildcard = name == "*" && what == "collection";
            if !wildcard && !crate::model::naming::is_milvus_name(name) {
                return Err(malformed(&format!(
                    "the {side} {what} name `{name}` is not valid (letters, digits and `_`, not starting with a digit, at most 255)"
                )));
            }
        }
    }
    Ok((from.to_string(), to.to_string()))
}

/// Refuses a rename whose old name matches nothing in the backup.
fn check_renames_match(
    renames: &[(String, String)],
    in_backup: &[CollectionRef],
    backup: &str,
) -> Result<()> {
    for (from, to) in renames {
        let f = CollectionRef::parse(from);
        let matches = in_backup.iter().any(|c| {
            if f.name == "*" {
                c.db == f.db
            } else {
                *c == f || (!from.contains('.') && c.name == f.name)
            }
        });
        if !matches {
            let has: Vec<String> = in_backup.iter().map(|c| c.to_string()).collect();
            return Err(Error::not_found(format!(
                "rename `{from}:{to}`: backup `{backup}` has no {} `{from}` — it has: {}",
                if f.name == "*" {
                    "database"
                } else {
                    "collection"
                },
                has.join(", ")
            )));
        }
    }
    Ok(())
}

/// The target name of a backed-up collection under the options.
fn target_of(
    source: &CollectionRef,
    opts: &RestoreOptions,
    renames: &[(String, String)],
) -> CollectionRef {
    for (from, to) in renames {
        let (f, t) = (CollectionRef::parse(from), CollectionRef::parse(to));
        if f.name == "*" && f.db == source.db {
            return CollectionRef {
                db: t.db,
                name: format!("{}{}", source.name, opts.suffix),
            };
        }
        if f == *source || (!from.contains('.') && f.name == source.name) {
            let db = if to.contains('.') {
                t.db
            } else {
                source.db.clone()
            };
            return CollectionRef { db, name: t.name };
        }
    }
    CollectionRef {
        db: source.db.clone(),
        name: format!("{}{}", source.name, opts.suffix),
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
    if !opts.suffix.is_empty()
        && !opts
            .suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::invalid_input(format!(
            "suffix `{}` may only contain letters, digits and `_`",
            opts.suffix
        )));
    }
    if opts.drop_exist_collection && opts.skip_create_collection {
        return Err(Error::invalid_input(
            "--drop_exist_collection and --skip_create_collection contradict each other; pick one",
        ));
    }
    let renames: Vec<(String, String)> = opts
        .renames
        .iter()
        .map(|r| parse_rename(r))
        .collect::<Result<_>>()?;
    let in_backup: Vec<CollectionRef> = info
        .collection_backups
        .iter()
        .map(|c| CollectionRef {
            db: c.db_name.clone(),
            name: c.collection_name.clone(),
        })
        .collect();
    check_renames_match(&renames, &in_backup, &info.name)?;
    let mut wanted: Vec<CollectionRef> = opts
        .collections
        .iter()
        .map(|c| CollectionRef::parse_checked(c))
        .collect::<Result<_>>()?;
    for (db, colls) in &opts.db_collections {
        if colls.is_empty() {
            wanted.extend(in_backup.iter().filter(|c| &c.db == db).cloned());
        }
        wanted.extend(colls.iter().map(|c| CollectionRef {
            db: db.clone(),
            name: c.clone(),
        }));
    }
    for pattern in &opts.filter {
        let p = CollectionRef::parse_checked(pattern)?;
        let matched: Vec<CollectionRef> = in_backup
            .iter()
            .filter(|c| c.db == p.db && crate::model::selection::glob_match(&p.name, &c.name))
            .cloned()
            .collect();
        if matched.is_empty() {
            return Err(Error::not_found(format!(
                "filter `{pattern}` matches no collection of backup `{}`",
                info.name
            )));
        }
        wanted.extend(matched);
    }
    for db in &opts.databases {
        if !in_backup.iter().any(|c| &c.db == db) {
            return Err(Error::not_found(format!(
                "backup `{}` has no database `{db}`",
                info.name
            )));
        }
        wanted.extend(in_backup.iter().filter(|c| &c.db == db).cloned());
    }
    let selected = if wanted.is_empty() {
        in_backup.clone()
    } else {
        for w in &wanted {
            if !in_backup.contains(w) {
                return Err(Error::not_found(format!(
                    "collection `{w}` is not in backup `{}` — it has: {}",
                    info.name,
                    in_backup
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let mut w = wanted;
        w.sort();
        w.dedup();
        w
    };

    let mut existing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let databases = client.list_databases().await?;
    let mut tasks = Vec::new();
    for source in selected {
        let target = target_of(&source, opts, &renames);
        let mut refused = None;
        let has_databases = client.version().is_some_and(|v| v.has_databases());
        if !databases.contains(&target.db) && !has_databases {
            refused = Some(Refusal::new(
                ErrorKind::InvalidInput,
                format!(
                "Milvus {} has no databases; restore into `default` (e.g. -r {source}:default.{})",
                client.version_text(), target.name
            ),
            ));
        }
        let exists = if databases.contains(&target.db) {
            if !existing.contains_key(&target.db) {
                existing.insert(
                    target.db.clone(),
                    client.list_collections(&target.db).await?,
                );
            }
            existing[&target.db].contains(&target.name)
        } else {
            false
        };
        if exists && !opts.drop_exist_collection && !opts.skip_create_collection {
            refused.get_or_insert(Refusal::new(ErrorKind::AlreadyExists, format!(
                "collection `{target}` already exists in Milvus at {} — restore under another name (-s/--suffix or -r/--rename), or pass --drop_exist_collection to replace it or --skip_create_collection to import into it",
                client.address()
            )));
        }
        if !exists && opts.skip_create_collection {
            refused.get_or_insert(Refusal::new(
                ErrorKind::NotFound,
                format!(
                "--skip_create_collection: collection `{target}` does not exist in Milvus at {}",
                client.address()
            ),
            ));
        }
        let meta = info
            .collection_backups
            .iter()
            .find(|c| c.db_name == source.db && c.collection_name == source.name)
            .cloned()
            .expect("selected from the backup");
        let mut meta = meta;
        let imports: Vec<ImportJob> = if opts.meta_only {
            Vec::new()
        } else if let Some(l) = &info.logical {
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
        } else {
            segments_with_files(&meta)
                .into_iter()
                .map(|(partition, s)| ImportJob {
                    partition: partition.to_string(),
                    segment: s.segment_id,
                    file: None,
                    rows: s.num_of_rows,
                    bytes: s.size.max(0) as u64,
                })
                .collect()
        };
        tasks.push(CollectionTask {
            create_database: has_databases && !databases.contains(&target.db),
            source,
            target,
            exists,
            drop_existing: exists && opts.drop_exist_collection,
            reuse_existing: exists && opts.skip_create_collection,
            refused,
            overrides: None,
            imports,
            meta,
        });
    }
    apply_overrides(&mut tasks, &opts.overrides)?;
    let mut targets: Vec<&CollectionRef> = tasks.iter().map(|t| &t.target).collect();
    targets.sort();
    if targets.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid_input(
            "two collections would be restored under the same name; adjust -r/--rename",
        ));
    }
    let manifest = catalog::manifest(&ctx.backup_storage, &info.name).await?;
    // A bulk restore of a logical backup stages its files as well.
    let bulk = opts.import_mode == crate::ops::restore::bulk::ImportMode::Bulk && !opts.meta_only;
    if bulk {
        crate::ops::restore::bulk::check(ctx, client, info, &tasks)?;
    }
    let staging = !tasks.is_empty()
        && (bulk
            || info.logical.is_none()
                && (!ctx.backup_storage.same_bucket_as(&ctx.milvus_storage)
                    || manifest.as_ref().is_some_and(|m| !m.self_contained_plain())));
    let rbac = match (opts.rbac, &info.rbac_meta) {
        (false, _) => None,
        (true, Some(meta)) => Some(
            crate::ops::rbac::plan(client, meta, opts.rbac_user_password_file.as_deref()).await?,
        ),
        (true, None) => {
            return Err(Error::not_found(format!(
                "backup `{}` holds no users and roles (it was created without --rbac)",
                info.name
            )))
        }
    };
    // Named after the backup so leftovers are easy to attribute.
    let mut journal_dir = crate::repo::staging::new_dir(&info.name);
    // A logical restore only inserts over gRPC: Milvus's storage (where
    // journals live) may not even be configured.
    let journals = match info.logical {
        None => crate::repo::journal::interrupted_restore(&ctx.milvus_storage, &info.name).await,
        Some(_) => Ok(None),
    };
    let resumed = match journals {
        Ok(Some((dir, record))) => {
            resume_tasks(&mut tasks, &record, opts.resume);
            if opts.resume {
                journal_dir = dir;
                Some(record)
            } else {
                None
            }
        }
        Ok(None) => None,
        Err(e) if opts.resume => return Err(e),
        Err(_) => None,
    };
    let staging_dir = staging.then(|| journal_dir.clone());
    Ok(RestorePlan {
        backup: info.name.clone(),
        milvus: format!("{} ({})", client.address(), client.version_text()),
        tasks,
        staging_dir,
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

/// Applies an interrupted restore's journal to the plan: a target it made
/// and did not finish is resumed (with `--resume`), or its refusal says
/// how to resume it.
fn resume_tasks(
    tasks: &mut [CollectionTask],
    record: &crate::repo::journal::RestoreRecord,
    resume: bool,
) {
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

/// Runs a plan, one collection at a time; refuses a plan with refusals.
pub async fn execute(
    ctx: &Context,
    plan: &RestorePlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<RestoreStats> {
    let started = Instant::now();
    plan.check()?;
    events.emit(plan.planned());
    let client = ctx.milvus().await.during("restore")?;
    let client = client.as_ref();
    let dir = plan.journal_dir.as_str();
    // A logical restore touches no storage of Milvus's (no lease, no
    // journal), unless it stages files for a bulk import.
    let physical = plan.logical.is_none();
    let lease = match physical || plan.staging_dir.is_some() {
        true => Some(hold_staging(ctx, dir, events).await.during("restore")?),
        false => None,
    };
    let record = plan.resumed.clone().unwrap_or_else(|| RestoreRecord {
        backup: plan.backup.clone(),
        ..Default::default()
    });
    let journal = match physical {
        true => RestoreJournal::new(&ctx.milvus_storage, dir, record),
        false => RestoreJournal::in_memory(record),
    };
    let mut stats = RestoreStats {
        backup: plan.backup.clone(),
        collections: plan.tasks.len(),
        import_mode: plan.logical.as_ref().map(|_| plan.options.import_mode),
        ..Default::default()
    };
    let spans = crate::phase_time::Spans::default();
    let result = match &plan.rbac {
        Some(rbac) => restore_rbac(client, rbac, events, &mut stats).await,
        None => Ok(()),
    };
    let result = match result {
        Ok(()) => {
            restore_all(
                ctx, client, plan, &journal, events, cancel, &mut stats, &spans,
            )
            .await
        }
        Err(e) => Err(e),
    };
    stats.wall = spans.wall();
    // No renewal may rewrite the lease after the folder is swept.
    drop(lease);
    let resumable = physical && result.as_ref().is_err_and(leaves_resumable);
    if physical {
        if result.is_ok() {
            if let Err(e) = journal.finish().await {
                events.warn(format!("restore finished, but its journal in `{dir}` was not removed: {e} — remove it with `milvus-backup gc --staging`"));
            }
        }
        if resumable {
            // The journal stays for --resume; the staged files go.
            if let Err(e) = crate::repo::staging::remove_staged(&ctx.milvus_storage, dir).await {
                events.warn(format!("could not remove staging files under `{dir}`: {e} — remove them with `milvus-backup gc --staging`"));
            }
        } else if plan.staging_dir.is_none() {
            if let Err(e) = ctx.milvus_storage.delete_prefix(dir).await {
                events.warn(format!("could not remove the restore's journal under `{dir}`: {e} — remove it with `milvus-backup gc --staging`"));
            }
        } else if let Some(dir) = plan.staging_dir.as_deref() {
            if plan.tuning.keep_temp_files {
                if let Err(e) = crate::repo::staging::keep(&ctx.milvus_storage, dir).await {
                    events.warn(format!(
                        "staging files under `{dir}` kept but not marked as kept: {e}"
                    ));
                }
            } else {
                // Failed or cancelled imports may leave files; sweep the folder.
                if let Err(e) = ctx.milvus_storage.delete_prefix(dir).await {
                    events.warn(format!("could not remove staging files under `{dir}`: {e} — remove them with `milvus-backup gc --staging`"));
                }
            }
        }
    } else if let Some(dir) = plan.staging_dir.as_deref() {
        // A bulk restore's staged files (and lease): always removed.
        if let Err(e) = ctx.milvus_storage.delete_prefix(dir).await {
            events.warn(format!("could not remove staging files under `{dir}`: {e} — remove them with `milvus-backup gc --staging`"));
        }
    }
    result.during("restore").map_err(|e| {
        if resumable {
            e.guidance(format!(
                "what was restored is kept, with a journal in `{dir}` of Milvus's storage: finish it by rerunning the same restore with --resume, or drop the partly restored collection"
            ))
        } else {
            e
        }
    })?;
    stats.duration_s = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// Creates the missing users, roles and grants; reports the skipped ones.
async fn restore_rbac(
    client: &dyn Milvus,
    plan: &crate::ops::rbac::RbacPlan,
    events: &dyn EventSink,
    stats: &mut RestoreStats,
) -> Result<()> {
    let done = crate::ops::rbac::execute(client, plan).await?;
    for item in done.skipped_items() {
        events.warn(format!(
            "{} `{}` not restored: {}",
            item.kind.label(),
            item.name,
            item.reason.as_deref().unwrap_or("")
        ));
    }
    stats.rbac = Some(done);
    Ok(())
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

/// Sweeps staging folders no running restore holds (killed restores'
/// leftovers), then leases this restore's folder while it runs.
pub(crate) async fn hold_staging(
    ctx: &Context,
    dir: &str,
    events: &dyn EventSink,
) -> Result<crate::repo::staging::Lease> {
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
    crate::repo::staging::hold(&ctx.milvus_storage, dir).await
}

#[allow(clippy::too_many_arguments)]
async fn restore_all(
    ctx: &Context,
    client: &dyn Milvus,
    plan: &RestorePlan,
    journal: &RestoreJournal,
    events: &dyn EventSink,
    cancel: &CancellationToken,
    stats: &mut RestoreStats,
    spans: &crate::phase_time::Spans,
) -> Result<()> {
    let opts = &plan.options;
    for (i, task) in plan.tasks.iter().enumerate() {
        let target = task.target.to_string();
        let mut progress = journal.progress(&target).await.unwrap_or_default();
        if progress.created && !task.exists {
            // Dropped since the interrupted run: start it over.
            progress = CollectionProgress::default();
        }
        events.emit(Event::CollectionStarted { index: i });
        if progress.done {
            let rows: i64 = progress.segments.values().filter_map(|s| s.rows).sum();
            events.note(format!(
                "--resume: {target} was restored by the interrupted run ({rows} entities): skipped"
            ));
            stats.entities += rows;
            stats.segments += progress.segments.len();
            events.emit(Event::CollectionFinished {
                index: i,
                error: None,
            });
            continue;
        }
        events.phase(Phase::Restoring {
            index: i,
            of: plan.tasks.len(),
            source: task.source.to_string(),
            target: task.target.to_string(),
        });
        // Set once the target is this restore's: created by it, or an
        // existing one it dropped on purpose (--drop_exist_collection).
        let ours = AtomicBool::new(progress.created);
        let outcome = cancellable(
            cancel,
            restore_collection(
                ctx,
                client,
                plan,
                (i, task),
                (journal, progress),
                events,
                &ours,
                spans,
            ),
        )
        .await
        .at("collection", &task.target);
        let done = match outcome {
            Ok(done) => done,
            Err(e) => {
                // A half-filled collection we created would block a retry
                // unless it is resumed; one we did not create (someone made
                // it since the plan) is never dropped.
                if ours.load(Ordering::SeqCst) && !leaves_resumable(&e) {
                    let _ = journal
                        .update(&target, |p| *p = CollectionProgress::default())
                        .await;
                    if let Err(drop_err) = client
                        .drop_collection(&task.target.db, &task.target.name)
                        .await
                    {
                        if drop_err.kind() != ErrorKind::NotFound {
                            events.warn(format!(
                                "could not drop the partly restored {}: {drop_err}",
                                task.target
                            ));
                        }
                    }
                }
                events.emit(Event::CollectionFinished {
                    index: i,
                    error: Some(e.to_string()),
                });
                return Err(e);
            }
        };
        stats.entities += done.entities;
        if done.keys_regenerated {
            stats.keys_regenerated.push(task.target.to_string());
        }
        stats.segments += done.segments;
        stats.staged_bytes += done.staged_bytes;
        stats.staging_s += done.staging_s;
        stats.import_s += done.import_s;
        if opts.load
            && task.meta.load_state == "Loaded"
            && (opts.restore_index || task.reuse_existing)
        {
            events.phase(Phase::Loading {
                collection: task.target.to_string(),
            });
            let t = Instant::now();
            if let Err(e) = client
                .load_collection(&task.target.db, &task.target.name)
                .await
            {
                events.warn(format!("{} restored but not loaded: {e}", task.target));
            }
            spans.record(crate::phase_time::LOAD, t, Instant::now());
        }
        journal.update(&target, |p| p.done = true).await?;
        events.emit(Event::CollectionFinished {
            index: i,
            error: None,
        });
    }
    Ok(())
}

/// Recreates one collection and (unless meta only) imports its segments.
#[allow(clippy::too_many_arguments)]
async fn restore_collection(
    ctx: &Context,
    client: &dyn Milvus,
    plan: &RestorePlan,
    (index, task): (usize, &CollectionTask),
    (journal, progress): (&RestoreJournal, CollectionProgress),
    events: &dyn EventSink,
    ours: &AtomicBool,
    spans: &crate::phase_time::Spans,
) -> Result<DataStats> {
    let t = Instant::now();
    let target = task.target.to_string();
    if !progress.ready {
        let mut task = task.clone();
        if progress.created && task.exists {
            // Interrupted before its schema, partitions and indexes were
            // all made (so before any import): made again.
            client
                .drop_collection(&task.target.db, &task.target.name)
                .await?;
            task.exists = false;
            task.drop_existing = false;
        }
        let source = task.source.to_string();
        let created = !task.reuse_existing;
        journal
            .update(&target, |p| {
                *p = CollectionProgress {
                    source,
                    created,
                    ..Default::default()
                }
            })
            .await?;
        if task.create_database {
            ensure_database(client, &task.target.db).await?;
        }
        recreate_collection(client, index, &task, &plan.options, events, ours).await?;
        journal.update(&target, |p| p.ready = true).await?;
        spans.record(crate::phase_time::CREATE, t, Instant::now());
    } else {
        events.note(format!(
            "--resume: {target} was created by the interrupted run; importing the segments it did not finish"
        ));
    }
    if plan.options.meta_only {
        return Ok(DataStats::default());
    }
    if plan.logical.is_some() && plan.staging_dir.is_some() {
        let done =
            crate::ops::restore::bulk::restore_rows(ctx, client, plan, (index, task), events)
                .await?;
        return Ok(DataStats {
            entities: done.rows as i64,
            keys_regenerated: done.keys_regenerated,
            ..Default::default()
        });
    }
    if let Some(logical) = &plan.logical {
        let done = crate::ops::logical::in_backup::restore_rows(
            ctx,
            client,
            &plan.backup,
            logical,
            plan.manifest.as_ref(),
            &task.source,
            &task.target,
            events,
        )
        .await?;
        return Ok(DataStats {
            entities: done.rows as i64,
            keys_regenerated: done.keys_regenerated,
            ..Default::default()
        });
    }
    restore_data(ctx, client, plan, index, task, journal, events, spans).await
}

async fn recreate_collection(
    client: &dyn Milvus,
    index: usize,
    task: &CollectionTask,
    opts: &RestoreOptions,
    events: &dyn EventSink,
    ours: &AtomicBool,
) -> Result<()> {
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
        create_like(client, &meta, t, true, ours, events).await?;
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

#[derive(Default)]
struct DataStats {
    keys_regenerated: bool,
    entities: i64,
    segments: usize,
    staged_bytes: u64,
    staging_s: f64,
    import_s: f64,
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

/// Stages (when needed) and imports every segment of one collection.
#[allow(clippy::too_many_arguments)]
async fn restore_data(
    ctx: &Context,
    client: &dyn Milvus,
    plan: &RestorePlan,
    index: usize,
    task: &CollectionTask,
    journal: &RestoreJournal,
    events: &dyn EventSink,
    spans: &crate::phase_time::Spans,
) -> Result<DataStats> {
    let segments = segments_with_files(&task.meta);
    let target = task.target.to_string();
    let progress = journal.progress(&target).await.unwrap_or_default();
    let total_bytes: u64 = segments.iter().map(|(_, s)| s.size.max(0) as u64).sum();
    events.phase(Phase::Importing {
        collection: task.target.to_string(),
        segments: segments.len(),
        bytes: total_bytes,
    });
    let staged = AtomicU64::new(0);
    let staging_ns = AtomicU64::new(0);
    let import_ns = AtomicU64::new(0);
    let rows: Vec<i64> = futures::stream::iter(segments.iter().map(|(partition, seg)| {
        let (staged, staging_ns, import_ns) = (&staged, &staging_ns, &import_ns);
        let earlier = progress.segments.get(&seg.segment_id).cloned();
        let target = target.as_str();
        async move {
            let done = match earlier.as_ref().and_then(|p| p.rows) {
                // Imported by the interrupted run.
                Some(rows) => SegmentRestore {
                    rows,
                    staged_bytes: 0,
                    started: Instant::now(),
                    staging: Duration::ZERO,
                    import: Duration::ZERO,
                },
                None => {
                    let journal = Some((journal, target, earlier));
                    let done = restore_segment(
                        ctx, client, plan, index, task, partition, seg, journal, events,
                    )
                    .await?;
                    let staged_at = done.started + done.staging;
                    spans.record(crate::phase_time::STAGING, done.started, staged_at);
                    spans.record(
                        crate::phase_time::IMPORT,
                        staged_at,
                        staged_at + done.import,
                    );
                    done
                }
            };
            staged.fetch_add(done.staged_bytes, Ordering::Relaxed);
            staging_ns.fetch_add(done.staging.as_nanos() as u64, Ordering::Relaxed);
            import_ns.fetch_add(done.import.as_nanos() as u64, Ordering::Relaxed);
            events.emit(Event::SegmentImported {
                collection: index,
                segment: seg.segment_id,
                rows: done.rows,
                bytes: seg.size.max(0) as u64,
            });
            Ok::<_, Error>(done.rows)
        }
    }))
    .buffer_unordered(plan.tuning.import_parallelism)
    .try_collect()
    .await?;
    Ok(DataStats {
        entities: rows.iter().sum(),
        segments: segments.len(),
        staged_bytes: staged.load(Ordering::Relaxed),
        staging_s: staging_ns.load(Ordering::Relaxed) as f64 / 1e9,
        import_s: import_ns.load(Ordering::Relaxed) as f64 / 1e9,
        keys_regenerated: false,
    })
}

/// Makes one segment's files readable by the target Milvus and returns the
/// import paths, the staging folder to clean (if any) and the bytes staged.
async fn stage_segment_for_import(
    ctx: &Context,
    plan: &RestorePlan,
    (index, coll): (usize, &CollectionBackupInfo),
    seg: &SegmentBackupInfo,
    events: &dyn EventSink,
) -> Result<(Vec<String>, Option<String>, u64)> {
    let name = &plan.backup;
    let (c, p, s) = (coll.collection_id, seg.partition_id, seg.segment_id);
    let insert_dir = layout::backup_insert_log_dir(name, c, p, s);
    let delta_dir = layout::backup_delta_log_dir(name, c, p, s);
    let has_deltas = seg.deltalogs.iter().any(|d| !d.binlogs.is_empty());
    // Milvus takes backup-mode imports only as exactly two paths, insert
    // and delta logs; an empty delta path means "no deletes".
    let Some(staging_dir) = plan.staging_dir.as_deref() else {
        let delta = if has_deltas {
            ctx.backup_storage.full_key(&delta_dir)
        } else {
            String::new()
        };
        return Ok((
            vec![ctx.backup_storage.full_key(&insert_dir), delta],
            None,
            0,
        ));
    };
    let stage = layout::join(staging_dir, &format!("{s}/"));
    let stage_insert = layout::join(&stage, &format!("insert_log/{s}/"));
    let stage_delta = layout::join(&stage, &format!("delta_log/{s}/"));
    let backup_dir = layout::backup_dir(name);
    let mut bytes = 0;
    for (from_dir, to_dir) in [(&insert_dir, &stage_insert), (&delta_dir, &stage_delta)] {
        // (key in backup storage, path under the segment folder, manifest entry)
        let files: Vec<(String, String, Option<&meta::ManifestFile>)> = match &plan.manifest {
            Some(m) => {
                let rel = &from_dir[backup_dir.len()..];
                m.files
                    .iter()
                    .filter_map(|f| {
                        let rest = f.path.strip_prefix(rel)?;
                        let holder = layout::backup_dir(f.holder(name));
                        Some((layout::join(&holder, &f.path), rest.to_string(), Some(f)))
                    })
                    .collect()
            }
            // Another tool's backup: whatever the folder holds, as is.
            None => ctx
                .backup_storage
                .list(from_dir)
                .await?
                .into_iter()
                .map(|o| {
                    let rest = o.key[from_dir.len()..].to_string();
                    (o.key, rest, None)
                })
                .collect(),
        };
        for (key, rest, entry) in files {
            let dst = layout::join(to_dir, &rest);
            let server_side = copied_server_side(ctx, entry);
            // A file the manifest lists and storage lacks: the backup is
            // damaged, whichever way it would have been copied.
            let missing = |e: Error| {
                if entry.is_some() && e.kind() == ErrorKind::NotFound {
                    Error::corrupt(format!(
                        "backup file `{key}` that the manifest lists is missing — the backup is damaged; nothing of segment {s} was imported; run `milvus-backup verify -n {name}`"
                    ))
                    .at("key", &key)
                } else {
                    e
                }
            };
            let copied = match entry {
                // Checked (and decoded) on the way: damage stops the restore.
                Some(f) if !server_side => crate::storage::encoded::decode_copy(
                    &ctx.backup_storage,
                    &key,
                    &f.expected(),
                    Some((&ctx.milvus_storage, &dst)),
                )
                .await
                .map_err(missing)?
                .map_err(|damage| {
                    Error::corrupt(format!(
                        "backup file `{key}` is damaged: {damage} — nothing of segment {s} was imported; run `milvus-backup verify --deep -n {name}`"
                    ))
                    .at("key", &key)
                })?,
                Some(f) => crate::storage::copy::stage_checked(
                    &ctx.backup_storage,
                    &key,
                    f,
                    crate::storage::copy::StageTarget {
                        to: &ctx.milvus_storage,
                        dst: &dst,
                        segment: s,
                        backup: name,
                    },
                )
                    .await
                    .map_err(missing)?,
                None => {
                    ctx.backup_storage
                        .copy_to(&key, &ctx.milvus_storage, &dst)
                        .await
                        .map_err(missing)?
                        .bytes
                }
            };
            bytes += copied;
            events.emit(Event::FileStaged {
                collection: index,
                bytes: copied,
            });
        }
    }
    let delta = if has_deltas {
        ctx.milvus_storage.full_key(&stage_delta)
    } else {
        String::new()
    };
    Ok((
        vec![ctx.milvus_storage.full_key(&stage_insert), delta],
        Some(stage),
        bytes,
    ))
}

/// The insert-log path a segment's import reads (staged or in place), by
/// which an import Milvus started is found again.
fn import_insert_path(
    ctx: &Context,
    plan: &RestorePlan,
    coll: &CollectionBackupInfo,
    seg: &SegmentBackupInfo,
) -> String {
    let s = seg.segment_id;
    match plan.staging_dir.as_deref() {
        Some(dir) => ctx
            .milvus_storage
            .full_key(&layout::join(dir, &format!("{s}/insert_log/{s}/"))),
        None => ctx.backup_storage.full_key(&layout::backup_insert_log_dir(
            &plan.backup,
            coll.collection_id,
            seg.partition_id,
            s,
        )),
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

/// The journal of a running restore, as a segment sees it: the journal,
/// the target collection, and what an interrupted run did with the segment.
type SegmentJournal<'a> = Option<(&'a RestoreJournal, &'a str, Option<SegmentProgress>)>;

/// Imports one segment in backup mode and waits (bounded) for the result.
/// With a journal, the import's start and its task ids are recorded before
/// waiting; a start whose answer was lost is looked up before it is tried
/// again, so no segment is imported twice.
async fn import_segment(
    client: &dyn Milvus,
    task: &CollectionTask,
    partition: &str,
    seg: &SegmentBackupInfo,
    paths: Vec<String>,
    journal: &SegmentJournal<'_>,
) -> Result<i64> {
    let t = &task.target;
    let fail_as = |kind: ErrorKind, reason: String| {
        Error::new(
            kind,
            format!(
                "import of segment {} into {t} (partition `{partition}`) failed: {reason}",
                seg.segment_id
            ),
        )
        .at("segment", seg.segment_id)
    };
    let fail = |reason: String| fail_as(ErrorKind::Remote, reason);
    // A failed call keeps its kind (an unreachable Milvus stays unreachable).
    let failed_call = |e: Error| fail_as(e.kind(), e.to_string()).temporary(e.is_temporary());
    let opt = |k: &str, v: &str| proto::common::KeyValuePair {
        key: k.into(),
        value: v.into(),
    };
    let s = seg.segment_id;
    if let Some((j, target, _)) = journal {
        j.update(target, |p| {
            p.segments.insert(s, SegmentProgress::default());
        })
        .await?;
    }
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
    let tasks = loop {
        match client.import(request.clone()).await {
            Ok(tasks) => break tasks,
            Err(e) if e.is_temporary() && attempt < 4 => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
                // The lost answer may hide a started import.
                let found = started_imports(client, t, &insert_path)
                    .await
                    .map_err(failed_call)?;
                if !found.is_empty() {
                    break found;
                }
            }
            Err(e) => return Err(failed_call(e)),
        }
    };
    if let Some((j, target, _)) = journal {
        let ids = tasks.clone();
        j.update(target, |p| p.segments.entry(s).or_default().tasks = ids)
            .await?;
    }
    let rows = wait_imports(client, &tasks).await.map_err(failed_call)?;
    if rows == 0 && seg.num_of_rows > 0 {
        return Err(fail(format!(
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

/// Stages (when needed) and imports one segment of a planned task, then
/// removes what it staged. The plan's staging folder is swept by whoever
/// runs the plan (a failed staging may leave files).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn restore_segment(
    ctx: &Context,
    client: &dyn Milvus,
    plan: &RestorePlan,
    index: usize,
    task: &CollectionTask,
    partition: &str,
    seg: &SegmentBackupInfo,
    journal: SegmentJournal<'_>,
    events: &dyn EventSink,
) -> Result<SegmentRestore> {
    let t0 = Instant::now();
    if let Some((j, target, Some(earlier))) = &journal {
        let path = import_insert_path(ctx, plan, &task.meta, seg);
        if let Some(rows) = finish_started_import(client, task, earlier, &path)
            .await
            .at("segment", seg.segment_id)?
        {
            let s = seg.segment_id;
            j.update(target, |p| {
                p.segments.entry(s).or_default().rows = Some(rows)
            })
            .await?;
            return Ok(SegmentRestore {
                rows,
                staged_bytes: 0,
                staging: Duration::ZERO,
                import: t0.elapsed(),
                started: t0,
            });
        }
    }
    let (paths, staged_dir, staged_bytes) =
        stage_segment_for_import(ctx, plan, (index, &task.meta), seg, events)
            .await
            .at("segment", seg.segment_id)?;
    let staging = t0.elapsed();
    let t1 = Instant::now();
    let imported = import_segment(client, task, partition, seg, paths, &journal).await;
    let import = t1.elapsed();
    if let Some(dir) = staged_dir {
        if !plan.tuning.keep_temp_files {
            if let Err(e) = ctx.milvus_storage.delete_prefix(&dir).await {
                events.warn(format!("could not remove staging files under `{dir}`: {e} — remove them with `milvus-backup gc --staging`"));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> CollectionRef {
        CollectionRef::parse(s)
    }

    #[test]
    fn malformed_or_invalid_renames_are_refused() {
        for bad in [
            "a:b:c",
            "x:bad:name",
            "a",
            ":b",
            "a:",
            "a:b-c",
            "db.*:other",
            "1a:b",
            "a:db.x y",
        ] {
            let err = parse_rename(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(
                err.to_string().contains(&format!("rename `{bad}`")),
                "{err}"
            );
        }
        for good in ["a:b", "db1.a:db2.b", "db1.*:db2.*", "a:db2.b"] {
            parse_rename(good).unwrap();
        }
        let in_backup = vec![
            CollectionRef::parse("default.c1"),
            CollectionRef::parse("db1.c2"),
        ];
        let rules = |r: &str| vec![parse_rename(r).unwrap()];
        assert!(check_renames_match(&rules("c1:x"), &in_backup, "b").is_ok());
        assert!(check_renames_match(&rules("db1.*:db9.*"), &in_backup, "b").is_ok());
        let err = check_renames_match(&rules("rel_nosuch:rel_zz"), &in_backup, "b").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            err.to_string().contains("rename `rel_nosuch:rel_zz`"),
            "{err}"
        );
        assert!(check_renames_match(&rules("db7.*:db9.*"), &in_backup, "b").is_err());
    }

    #[test]
    fn targets_follow_suffix_and_renames() {
        let opts = RestoreOptions {
            suffix: "_bak".into(),
            ..Default::default()
        };
        assert_eq!(
            target_of(&r("c1"), &opts, &[]).to_string(),
            "default.c1_bak"
        );
        let renames = vec![
            parse_rename("db1.c1:db2.n1").unwrap(),
            parse_rename("c2:n2").unwrap(),
            parse_rename("db3.*:db4.*").unwrap(),
        ];
        let opts = RestoreOptions::default();
        assert_eq!(
            target_of(&r("db1.c1"), &opts, &renames).to_string(),
            "db2.n1"
        );
        assert_eq!(
            target_of(&r("c2"), &opts, &renames).to_string(),
            "default.n2"
        );
        assert_eq!(target_of(&r("db3.x"), &opts, &renames).to_string(), "db4.x");
        assert_eq!(target_of(&r("db9.x"), &opts, &renames).to_string(), "db9.x");
        assert!(parse_rename("nocolon").is_err());
    }
}

#[cfg(test)]
mod operation_tests {
    use super::*;
    use crate::events::{Collect, Tracker};
    use crate::testkit::Kit;

    async fn kit_with_backup() -> Kit {
        let kit = Kit::new();
        kit.milvus
            .add_collection("docs", &[10, 20, 30], 1, 300)
            .await;
        kit.create_backup("b1").await;
        kit
    }

    fn opts(suffix: &str) -> RestoreOptions {
        RestoreOptions {
            backup_name: "b1".into(),
            suffix: suffix.into(),
            ..Default::default()
        }
    }

    async fn staged_objects(kit: &Kit) -> usize {
        kit.ctx
            .milvus_storage
            .list(layout::STAGING_ROOT)
            .await
            .unwrap()
            .len()
    }

    #[tokio::test]
    async fn a_missing_binlog_or_meta_file_is_damage_not_not_found() {
        let kit = kit_with_backup().await;
        let none = CancellationToken::new();
        let m = catalog::manifest(&kit.ctx.backup_storage, "b1")
            .await
            .unwrap()
            .unwrap();
        let victim = m
            .files
            .iter()
            .find(|f| f.path.contains("insert_log/"))
            .unwrap();
        let key = layout::join(&layout::backup_dir("b1"), &victim.path);
        kit.ctx.backup_storage.delete(&key).await.unwrap();
        let p = plan(&kit.ctx, &opts("_r")).await.unwrap();
        let e = execute(&kit.ctx, &p, &Collect::default(), &none)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(e.to_string().contains("verify -n b1"), "{e}");

        // A valid-JSON edit of full_meta.json (a vector's dim) is found.
        let full = layout::backup_meta_file("b1", layout::FULL_META);
        let text = String::from_utf8(kit.ctx.backup_storage.read(&full).await.unwrap()).unwrap();
        let edited = text.replacen("\"backup_timestamp\"", "\"backup_timestamp\" ", 1);
        assert_ne!(edited, text);
        kit.ctx
            .backup_storage
            .write(&full, edited.into_bytes())
            .await
            .unwrap();
        let e = plan(&kit.ctx, &opts("_r1")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(
            e.to_string()
                .contains("full_meta.json changed since the backup was made"),
            "{e}"
        );
        kit.ctx
            .backup_storage
            .write(&full, text.into_bytes())
            .await
            .unwrap();

        let seg_meta = layout::backup_meta_file("b1", layout::SEGMENT_META);
        kit.ctx.backup_storage.delete(&seg_meta).await.unwrap();
        let e = plan(&kit.ctx, &opts("_r2")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(
            e.to_string().contains("meta/segment_meta.json is missing"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_plan_names_targets_refusals_staging_and_jobs_and_changes_nothing() {
        let kit = kit_with_backup().await;
        let p = plan(&kit.ctx, &opts("")).await.unwrap();
        let t = &p.tasks[0];
        assert!(t.exists);
        assert_eq!(t.refused.as_ref().unwrap().kind, ErrorKind::AlreadyExists);
        assert_eq!(p.check().unwrap_err().kind(), ErrorKind::AlreadyExists);
        assert_eq!(t.imports.len(), 3);
        assert!(p
            .staging_dir
            .as_deref()
            .unwrap()
            .starts_with("backup_staging/b1_"));
        let p = plan(&kit.ctx, &opts("_r")).await.unwrap();
        assert!(p.check().is_ok());
        assert_eq!(p.tasks[0].target.to_string(), "default.docs_r");
        let st = kit.milvus.state.lock().unwrap();
        assert!(st.created.is_empty() && st.imports.is_empty());
    }

    #[tokio::test]
    async fn overrides_go_to_their_target_and_bad_ones_are_refused() {
        let kit = kit_with_backup().await;
        let with = |key: &str, shards: Option<i32>| RestoreOptions {
            overrides: BTreeMap::from([(
                key.to_string(),
                CollectionOverride {
                    shards_num: shards,
                    description: Some("moved".into()),
                },
            )]),
            ..opts("_r")
        };
        let p = plan(&kit.ctx, &with("docs_r", Some(3))).await.unwrap();
        let o = p.tasks[0].overrides.as_ref().unwrap();
        assert_eq!(o.shards_num, Some(3));
        assert_eq!(o.description.as_deref(), Some("moved"));
        assert!(p.check().is_ok());
        // The source's name is not a target of this restore.
        let e = plan(&kit.ctx, &with("docs", Some(3))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("default.docs_r"), "{e}");
        let e = plan(&kit.ctx, &with("default.docs_r", Some(0)))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        // A reused collection is not created: its settings cannot change.
        let reuse = RestoreOptions {
            skip_create_collection: true,
            ..with("docs", None)
        };
        let reuse = RestoreOptions {
            suffix: String::new(),
            ..reuse
        };
        let p = plan(&kit.ctx, &reuse).await.unwrap();
        assert_eq!(p.check().unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn execute_stages_imports_every_segment_and_sweeps() {
        let kit = kit_with_backup().await;
        let p = plan(&kit.ctx, &opts("_r")).await.unwrap();
        let events = Collect::default();
        let stats = execute(&kit.ctx, &p, &events, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!((stats.entities, stats.segments), (60, 3));
        assert!(stats.staged_bytes > 0);
        {
            let st = kit.milvus.state.lock().unwrap();
            assert_eq!(st.created, vec!["default.docs_r"]);
            assert_eq!(st.imports.len(), 3);
            assert!(st.imports.iter().all(|(t, _, paths)| t == "default.docs_r"
                && paths[0].starts_with(p.staging_dir.as_deref().unwrap())));
        }
        assert_eq!(staged_objects(&kit).await, 0, "staging left behind");
        let mut tracker = Tracker::new();
        let mut seen = Vec::new();
        for e in events.events() {
            tracker.apply(&e);
            seen.push(tracker.percent());
        }
        seen.dedup();
        assert!(
            seen.iter().filter(|p| **p > 0 && **p < 100).count() >= 3,
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_import_keeps_the_collection_and_resume_imports_only_the_rest() {
        let kit = kit_with_backup().await;
        let none = CancellationToken::new();
        let p = plan(&kit.ctx, &opts("_r")).await.unwrap();
        let failing = p.tasks[0].imports[1].segment;
        kit.milvus
            .state
            .lock()
            .unwrap()
            .unreachable_imports
            .push(failing);
        let e = execute(&kit.ctx, &p, &Collect::default(), &none)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unreachable);
        assert!(e.to_string().contains(&failing.to_string()), "{e}");
        assert!(e.to_string().contains("--resume"), "{e}");
        assert!(e.to_string().contains(&p.journal_dir), "{e}");
        assert_eq!(e.operation(), Some("restore"));
        assert!(kit.milvus.state.lock().unwrap().dropped.is_empty());
        // Only the journal is left in the staging folder.
        let left = kit.ctx.milvus_storage.list(&p.journal_dir).await.unwrap();
        assert_eq!(left.len(), 1, "{left:?}");

        // A plain rerun is refused and says how to finish it.
        let again = plan(&kit.ctx, &opts("_r")).await.unwrap();
        let refusal = again.check().unwrap_err();
        assert_eq!(refusal.kind(), ErrorKind::AlreadyExists);
        assert!(refusal.to_string().contains("--resume"), "{refusal}");

        kit.milvus.state.lock().unwrap().unreachable_imports.clear();
        let resumed = plan(
            &kit.ctx,
            &RestoreOptions {
                resume: true,
                ..opts("_r")
            },
        )
        .await
        .unwrap();
        assert_eq!(resumed.journal_dir, p.journal_dir);
        let stats = execute(&kit.ctx, &resumed, &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!(stats.entities, 60);
        // Every segment imported successfully exactly once.
        let tasks = kit.milvus.state.lock().unwrap().tasks.clone();
        let succeeded = tasks.values().filter(|t| t.is_some()).count();
        assert_eq!(succeeded, 3, "{tasks:?}");
        assert_eq!(staged_objects(&kit).await, 0, "journal or staging left");
    }

    #[tokio::test]
    async fn a_target_made_by_someone_else_since_the_plan_is_never_dropped() {
        let kit = kit_with_backup().await;
        let p = plan(&kit.ctx, &opts("_r")).await.unwrap();
        // Someone creates the target between plan and execute.
        kit.milvus.add_collection("docs_r", &[5], 1, 10).await;
        let e = execute(&kit.ctx, &p, &Collect::default(), &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        let st = kit.milvus.state.lock().unwrap();
        assert!(st.dropped.is_empty(), "dropped {:?}", st.dropped);
        assert!(st.collections.iter().any(|c| c.name == "docs_r"));
    }

    #[tokio::test]
    async fn a_damaged_file_is_corrupt_and_nothing_is_imported() {
        let kit = kit_with_backup().await;
        let m = catalog::manifest(&kit.ctx.backup_storage, "b1")
            .await
            .unwrap()
            .unwrap();
        let key = layout::join(&layout::backup_dir("b1"), &m.files[0].path);
        let mut bytes = kit.ctx.backup_storage.read(&key).await.unwrap();
        bytes[0] ^= 0xff;
        kit.ctx.backup_storage.write(&key, bytes).await.unwrap();
        let p = plan(
            &kit.ctx,
            &RestoreOptions {
                tuning: Some(Tuning {
                    import_parallelism: 1,
                    ..Tuning::default()
                }),
                ..opts("_r")
            },
        )
        .await
        .unwrap();
        let e = execute(&kit.ctx, &p, &Collect::default(), &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert_eq!(
            kit.milvus.state.lock().unwrap().dropped,
            vec!["default.docs_r"]
        );
    }

    #[tokio::test]
    async fn a_truncated_manifest_stops_the_plan_as_damage() {
        let kit = kit_with_backup().await;
        let key = layout::backup_meta_file("b1", layout::MANIFEST);
        let bytes = kit.ctx.backup_storage.read(&key).await.unwrap();
        kit.ctx
            .backup_storage
            .write(&key, bytes[..10].to_vec())
            .await
            .unwrap();
        let e = plan(&kit.ctx, &opts("_r")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    }
}
