//! The collections of a restore plan, one [`CollectionTask`] each: the
//! target Milvus read once (databases, the collections targets fall in),
//! each task's refusal (what exists, what the flags allow), its import
//! jobs, its overrides, and what an interrupted restore left of it.
//!
//! Does not own: which collections or under which names
//! ([`crate::model::selection`], `targets`), or the plan as a whole
//! ([`super::plan`](mod@super::plan)).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Opt, Remedy, Result};
use crate::milvus::capability::Feature;
use crate::milvus::Milvus;
use crate::model::meta::{BackupInfo, CollectionBackupInfo, KeyValue, SegmentBackupInfo};
use crate::model::selection::CollectionRef;
use crate::ops::restore::options::{CollectionOverride, RestoreOptions};
use crate::repo::journal::RestoreRecord;

/// Why a planned collection would not be restored.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub kind: ErrorKind,
    pub reason: String,
    /// The ways out, in the caller's words when the refusal is an error.
    #[serde(skip)]
    pub remedy: Option<Remedy>,
}

impl Refusal {
    fn new(kind: ErrorKind, reason: String) -> Refusal {
        Refusal {
            kind,
            reason,
            remedy: None,
        }
    }

    /// The refusal as the error a restore gives.
    pub fn error(&self) -> Error {
        let e = Error::new(self.kind, self.reason.clone());
        match &self.remedy {
            Some(r) => e.remedy(r.clone()),
            None => e,
        }
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
    /// Restored under a side name to replace `target` (its aliases are
    /// set when it is swapped in).
    #[serde(skip)]
    pub replacing: bool,
    /// The backed-up properties of the source's database, which a
    /// database created for the target gets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub database_properties: Vec<KeyValue>,
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

/// What the target Milvus has, read as the tasks are planned: its
/// databases, and the collections of those that targets fall in.
pub(crate) struct TargetMilvus<'a> {
    client: &'a dyn Milvus,
    databases: Vec<String>,
    collections: BTreeMap<String, Vec<String>>,
}

impl<'a> TargetMilvus<'a> {
    pub(crate) async fn read(client: &'a dyn Milvus) -> Result<TargetMilvus<'a>> {
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
    pub(crate) async fn task(
        &mut self,
        info: &BackupInfo,
        opts: &RestoreOptions,
        source: CollectionRef,
        target: CollectionRef,
    ) -> Result<CollectionTask> {
        let client = self.client;
        let has_databases = client.capabilities().has(Feature::Databases);
        let db_exists = self.databases.contains(&target.db);
        let exists = self.exists(&target).await?;
        // Rows an existing target holds: importing into it would add the
        // backup's rows again, so no refusal then suggests it.
        let rows = match exists && !opts.drop_exist_collection && !opts.skip_create_collection {
            true => client.row_count(&target.db, &target.name).await.ok(),
            false => None,
        };
        let exists = exists.then_some(rows);
        let refused = refusal_of(client, opts, (&source, &target), exists, db_exists);
        let exists = exists.is_some();
        let mut meta = info
            .collection_backups
            .iter()
            .find(|c| c.db_name == source.db && c.collection_name == source.name)
            .cloned()
            .expect("selected from the backup");
        let imports = imports_of(info, opts, &source, &mut meta);
        let database_properties = info
            .database_backups
            .iter()
            .find(|d| d.db_name == source.db)
            .map(|d| d.properties.clone())
            .unwrap_or_default();
        Ok(CollectionTask {
            create_database: has_databases && !db_exists,
            database_properties,
            replacing: false,
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
/// `existing`: the target exists, with its rows when they were counted.
fn refusal_of(
    client: &dyn Milvus,
    opts: &RestoreOptions,
    (source, target): (&CollectionRef, &CollectionRef),
    existing: Option<Option<i64>>,
    db_exists: bool,
) -> Option<Refusal> {
    let exists = existing.is_some();
    let has_databases = client.capabilities().has(Feature::Databases);
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
        let remedy = Remedy::text("restore under another name (")
            .opt(Opt::Suffix)
            .then(" or ")
            .opt(Opt::Rename)
            .then("), or pass ")
            .opt(Opt::DropExistCollection)
            .then(" to replace it");
        // Importing into a collection that holds rows (perhaps some of
        // the backup's) would insert them again.
        let (holds, remedy) = match existing.flatten() {
            Some(0) => (
                String::new(),
                remedy
                    .then(" or ")
                    .opt(Opt::SkipCreateCollection)
                    .then(" to import into it"),
            ),
            Some(n) => (format!(" and holds {n} entities"), remedy),
            None => (String::new(), remedy),
        };
        let resume = match opts.resume {
            true => " (no interrupted restore of this backup recorded it, so there is nothing to resume)",
            false => "",
        };
        return Some(Refusal {
            remedy: Some(remedy),
            ..Refusal::new(
                ErrorKind::AlreadyExists,
                format!(
                    "collection `{target}` already exists in Milvus at {}{holds}{resume}",
                    client.address()
                ),
            )
        });
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
pub(crate) fn check_unique_targets(tasks: &[CollectionTask]) -> Result<()> {
    let mut targets: Vec<&CollectionRef> = tasks.iter().map(|t| &t.target).collect();
    targets.sort();
    if targets.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid_input(
            "two collections would be restored under the same name; adjust -r/--rename",
        ));
    }
    Ok(())
}

/// Applies an interrupted restore's journal to the plan: a target it made
/// and did not finish is resumed (with `--resume`), or its refusal says
/// how to resume it.
pub(crate) fn resume_tasks(tasks: &mut [CollectionTask], record: &RestoreRecord, resume: bool) {
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
            let done = match p.files.is_empty() {
                true => format!(
                    "{} of {} segment(s) imported",
                    p.segments.values().filter(|s| s.rows.is_some()).count(),
                    t.imports.len()
                ),
                false => format!("{} rows inserted", p.rows()),
            };
            r.reason = format!(
                "collection `{}` is what an interrupted restore of this backup left ({done})",
                t.target,
            );
            r.remedy = Some(
                Remedy::text("finish it by rerunning the same restore with ")
                    .opt(Opt::Resume)
                    .then(", or drop it"),
            );
        }
    }
}

/// Gives each override to the task restoring into its target. An override
/// naming no target, or asking for fewer than one shard, is bad input; one
/// for a collection that is reused rather than created is a refusal.
pub(crate) fn apply_overrides(
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
