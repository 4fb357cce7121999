//! The plan of a backup: what it will contain before anything is copied
//! (the collections, their segments and files, what is shared with a
//! base, how files are stored), as `--dry-run` prints it. Not here: making
//! it ([`super::planning`]) or running it ([`super::run`]).

use std::time::Instant;

use serde::Serialize;

use crate::codec::{Encoder, Encoding};
use crate::config::tuning::Tuning;
use crate::config::GcPauseConfig;
use crate::events::{Event, Operation, PlannedCollection};
use crate::model::meta::{BackupInfo, CollectionBackupInfo, Manifest};
use crate::model::selection::{CollectionRef, Selection};
use crate::ops::retention::Retention;
use crate::repo::journal;

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
    pub(super) source: CollectionRef,
    /// Its metadata, with the segments attached to the partitions.
    #[serde(skip)]
    pub(super) meta: CollectionBackupInfo,
    /// Dropped from Milvus during the backup (it was not named one by
    /// one): left out of the backup.
    #[serde(skip)]
    pub(super) dropped: bool,
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
    #[serde(skip_serializing_if = "super::is_zero")]
    pub resumed_files: u64,
    #[serde(skip)]
    pub(super) stored: journal::Stored,
    /// `binlog`, `parquet` or `json`.
    pub format: String,
    /// Goes on, with a warning it records, when Milvus serves fewer rows
    /// than the files hold (deletes not yet persisted).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_unpersisted_deletes: bool,
    /// Rows exported over gRPC in this format instead of binlogs copied.
    #[serde(skip)]
    pub(super) logical: Option<crate::ops::logical::Format>,
    #[serde(skip)]
    pub(super) encoder: Encoder,
    #[serde(skip)]
    pub(super) base_manifest: Option<Manifest>,
    /// The base's ranges and files (an incremental logical backup).
    #[serde(skip)]
    pub(super) base_logical: Option<crate::model::meta::LogicalBackup>,
    /// The backup's brief (no collections: those are in `collections`).
    #[serde(skip)]
    pub(super) info: BackupInfo,
    #[serde(skip)]
    pub(super) gc_pause: GcPauseConfig,
    /// What was asked for (which collections were named one by one).
    #[serde(skip)]
    pub(super) selection: Selection,
    #[serde(skip)]
    pub(super) started: Option<Instant>,
}

impl BackupPlan {
    pub(super) fn recount(&mut self) {
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

    /// Planned files an interrupted run stored already (by its journal).
    pub(super) fn count_stored(&self) -> u64 {
        self.collections
            .iter()
            .flat_map(|c| &c.files)
            .filter(|f| f.shared_with.is_none())
            .filter(|f| self.stored.reusable(&f.target, &f.source, f.size).is_some())
            .count() as u64
    }
}
