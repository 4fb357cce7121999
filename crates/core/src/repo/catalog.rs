//! The backups in backup storage, as read: `list`, `get`, the manifest and
//! the sample, and [`remove`], the one way a backup's files go away
//! (completion marks first).
//!
//! `list` lists the backup folders (one listing) and takes the rows of
//! the complete backups it knows from the [`catalog_index`] (one read);
//! every other backup is read: one small file (our `summary.json`),
//! concurrently; for a backup the Go tool made it falls back to
//! `full_meta.json`. A backup without `full_meta.json` is listed as
//! incomplete and can only be deleted; one whose meta files do not parse
//! is listed as damaged. [`list_fresh`] reads every backup, for decisions
//! that delete (age, retention) and for `verify`.
//!
//! A meta file that exists but does not parse (or decrypt) is
//! [`ErrorKind::Corrupt`]; a storage that fails is never reported as that.

use futures::StreamExt;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::model::layout;
pub use crate::model::listing::{BackupListing, BackupState};
use crate::model::meta::{BackupInfo, Manifest, Summary};
use crate::model::naming::{is_backup_name, validate_backup_name};
use crate::repo::catalog_index;
use crate::repo::meta_files::{read_json, read_json_sealed};
use crate::repo::verification::{self, VerificationRecord};
use crate::storage::Storage;

/// Meta files read at once by `list`.
const LIST_PARALLELISM: usize = 32;

/// Something wrong found in a backup: the file (relative to the backup
/// folder) or meta file concerned, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub problem: String,
}

/// Records a verification of the backup beside it and in the catalog
/// index (which adds the backup when it lacked it and it is complete).
pub async fn record_verification(
    storage: &Storage,
    name: &str,
    record: &VerificationRecord,
) -> Result<()> {
    verification::write_file(storage, name, record).await?;
    let fresh = async {
        match listing_sealed(storage, name).await {
            Ok((r, false)) if r.state == BackupState::Complete => Some(r),
            _ => None,
        }
    };
    catalog_index::verified(storage, name, record, fresh).await;
    Ok(())
}

/// Every backup (complete or not), newest first.
pub async fn list(storage: &Storage) -> Result<Vec<BackupListing>> {
    Ok(list_with_verdicts(storage)
        .await?
        .into_iter()
        .map(|(row, _)| row)
        .collect())
}

/// Every backup (complete or not), newest first, with what its last
/// scheduled verification found (`meta/verification.json`).
///
/// The listing decides which backups exist; the index gives the rows of
/// the complete ones it holds, and every other backup is read (and, when
/// complete, added to the index: best effort, a failed index write never
/// fails a list).
pub async fn list_with_verdicts(
    storage: &Storage,
) -> Result<Vec<(BackupListing, Option<VerificationRecord>)>> {
    // Folders whose names no backup can have (e.g. `check`'s probes) are not backups.
    let names = names(storage).await?;
    let index = catalog_index::load(storage).await;
    let mut out = Vec::with_capacity(names.len());
    let mut unknown = Vec::new();
    for name in &names {
        match index.as_ref().and_then(|i| i.get(name)) {
            Some(e) => out.push((e.row.clone(), e.verification.clone())),
            None => unknown.push(name.clone()),
        }
    }
    let read = read_rows(storage, unknown).await?;
    let stale = index
        .as_ref()
        .is_some_and(|i| i.keys().any(|n| names.binary_search(n).is_err()));
    let found: Vec<catalog_index::Entry> = read.iter().filter_map(|r| r.entry.clone()).collect();
    if !found.is_empty() || stale || (index.is_none() && !names.is_empty()) {
        catalog_index::repair(storage, found, &names).await;
    }
    out.extend(read.into_iter().map(|r| (r.row, r.verification)));
    Ok(sorted(out))
}

/// Every backup as `list` shows it, newest first, with its last
/// verification: one that verification found damaged is
/// [`BackupState::Damaged`] ([`BackupListing::state_verified`]).
pub async fn list_as_shown(
    storage: &Storage,
) -> Result<Vec<(BackupListing, Option<VerificationRecord>)>> {
    Ok(list_with_verdicts(storage)
        .await?
        .into_iter()
        .map(|(mut row, v)| {
            row.state = row.state_verified(v.as_ref());
            (row, v)
        })
        .collect())
}

/// One backup's row as `list` shows it ([`list_as_shown`]); not found
/// when it has no files at all.
pub async fn row_as_shown(storage: &Storage, name: &str) -> Result<BackupListing> {
    let mut row = row(storage, name).await?;
    row.state = row.state_verified(verification::read(storage, name).await?.as_ref());
    Ok(row)
}

/// Every backup, read from its own meta files (the index is not trusted,
/// and is rebuilt from what was read): for decisions that delete and for
/// `verify`.
pub async fn list_fresh(storage: &Storage) -> Result<Vec<BackupListing>> {
    let names = names(storage).await?;
    let read = read_rows(storage, names).await?;
    let entries = read.iter().filter_map(|r| r.entry.clone()).collect();
    catalog_index::rebuild(storage, entries).await;
    Ok(
        sorted(read.into_iter().map(|r| (r.row, r.verification)).collect())
            .into_iter()
            .map(|(row, _)| row)
            .collect(),
    )
}

fn sorted(
    mut rows: Vec<(BackupListing, Option<VerificationRecord>)>,
) -> Vec<(BackupListing, Option<VerificationRecord>)> {
    rows.sort_by(|(a, _), (b, _)| {
        b.backup_timestamp
            .cmp(&a.backup_timestamp)
            .then(a.name.cmp(&b.name))
    });
    rows
}

/// One backup as read from its meta files, for `list`.
struct ReadRow {
    row: BackupListing,
    /// As the old `list` showed it: a record that cannot be read is none.
    verification: Option<VerificationRecord>,
    /// What the index may hold of it: complete, read from unsealed files,
    /// and its verification record read.
    entry: Option<catalog_index::Entry>,
}

async fn read_rows(storage: &Storage, names: Vec<String>) -> Result<Vec<ReadRow>> {
    futures::stream::iter(names.into_iter().map(|name| async move {
        let (row, sealed) = listing_sealed(storage, &name).await?;
        let record = verification::read(storage, &name).await;
        let entry = match &record {
            Ok(v) if row.state == BackupState::Complete && !sealed => Some(catalog_index::Entry {
                row: row.clone(),
                verification: v.clone(),
            }),
            _ => None,
        };
        Ok(ReadRow {
            row,
            verification: record.ok().flatten(),
            entry,
        })
    }))
    .buffer_unordered(LIST_PARALLELISM)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect()
}

/// A meta file for `list`: a damaged one is no error there, only a state.
async fn read_for_listing<T: serde::de::DeserializeOwned>(
    storage: &Storage,
    key: &str,
) -> Result<Result<Option<(T, bool)>, Error>> {
    match read_json_sealed(storage, key).await {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.kind() == ErrorKind::Corrupt => Ok(Err(e)),
        Err(e) => Err(e),
    }
}

async fn listing(storage: &Storage, name: &str) -> Result<BackupListing> {
    Ok(listing_sealed(storage, name).await?.0)
}

/// The row of a complete backup, from its `summary.json`.
pub(crate) fn from_summary(name: &str, s: &Summary) -> BackupListing {
    BackupListing {
        name: name.to_string(),
        id: s.id.clone(),
        state: BackupState::Complete,
        collections: s.collections.clone(),
        entities: s.entities,
        size_bytes: s.size_bytes,
        backup_timestamp: s.backup_timestamp,
        milvus_version: s.milvus_version.clone(),
        base_backup: s.base_backup.clone(),
        compression: s.compression,
        encrypted: s.encrypted,
        format: s.data_format.clone().unwrap_or_else(|| "binlog".into()),
        unpersisted_deletes: s.unpersisted_deletes,
        left_out: s.left_out.clone(),
    }
}

/// The row, and whether the file it came from was sealed (the index must
/// not keep in the clear what a backup keeps encrypted).
pub(crate) async fn listing_sealed(storage: &Storage, name: &str) -> Result<(BackupListing, bool)> {
    let summary =
        read_for_listing::<Summary>(storage, &layout::backup_meta_file(name, layout::SUMMARY))
            .await?;
    if let Ok(Some((s, sealed))) = &summary {
        return Ok((from_summary(name, s), *sealed));
    }
    // The Go tool's backups, and ours interrupted before the summary.
    let full =
        read_for_listing::<BackupInfo>(storage, &layout::backup_meta_file(name, layout::FULL_META))
            .await?;
    if let Ok(Some((info, sealed))) = full {
        return Ok((
            BackupListing {
                name: name.to_string(),
                id: info.id.clone(),
                state: BackupState::Complete,
                collections: info
                    .collection_backups
                    .iter()
                    .map(|c| format!("{}.{}", c.db_name, c.collection_name))
                    .collect(),
                entities: entities(&info),
                size_bytes: info.size,
                backup_timestamp: info.backup_timestamp,
                format: info.data_format(),
                left_out: info.left_out.clone(),
                milvus_version: info.milvus_version,
                ..incomplete(name)
            },
            sealed,
        ));
    }
    if summary.is_err() || full.is_err() {
        return Ok((
            BackupListing {
                state: BackupState::Damaged,
                ..incomplete(name)
            },
            false,
        ));
    }
    Ok((incomplete(name), false))
}

/// A listing row of `state` taken at `ms` (tests of the policies that pick
/// backups by age).
#[cfg(test)]
pub(crate) fn listed_at(name: &str, ms: u64, state: BackupState) -> BackupListing {
    BackupListing {
        state,
        backup_timestamp: ms,
        ..incomplete(name)
    }
}

pub(crate) fn incomplete(name: &str) -> BackupListing {
    BackupListing {
        name: name.to_string(),
        id: String::new(),
        state: BackupState::Incomplete,
        collections: Vec::new(),
        entities: 0,
        size_bytes: 0,
        backup_timestamp: 0,
        milvus_version: String::new(),
        base_backup: None,
        compression: crate::model::encoding::Compression::None,
        encrypted: false,
        format: String::new(),
        unpersisted_deletes: 0,
        left_out: Vec::new(),
    }
}

/// The `list` row of one backup (complete, incomplete or damaged); not
/// found when it has no files at all.
pub async fn row(storage: &Storage, name: &str) -> Result<BackupListing> {
    validate_backup_name(name)?;
    let row = listing(storage, name).await?;
    if row.state == BackupState::Incomplete
        && !storage.has_objects(&layout::backup_dir(name)).await?
    {
        return Err(not_found(storage, name));
    }
    Ok(row)
}

/// Rows of every segment of a backup (a logical backup: the rows exported).
pub fn entities(info: &BackupInfo) -> i64 {
    if let Some(l) = &info.logical {
        return l.collections.iter().map(|c| c.rows as i64).sum();
    }
    info.collection_backups
        .iter()
        .flat_map(|c| &c.partition_backups)
        .flat_map(|p| &p.segment_backups)
        .map(|s| s.num_of_rows)
        .sum()
}

/// A complete backup's whole meta tree; refuses incomplete ones.
pub async fn get(storage: &Storage, name: &str) -> Result<BackupInfo> {
    validate_backup_name(name)?;
    match read_json::<BackupInfo>(storage, &layout::backup_meta_file(name, layout::FULL_META)).await? {
        Some(info) => Ok(info),
        None if storage.has_objects(&layout::backup_dir(name)).await? => Err(Error::conflict(format!(
            "backup `{name}` is incomplete (it has no meta/full_meta.json: it was interrupted or is still being written) — delete it with `milvus-backup delete -n {name}`"
        ))),
        None => Err(not_found(storage, name)),
    }
}

/// Meta files changed since the backup was made: `(file, what is wrong)`
/// for each whose SHA-256 differs from the one `summary.json` recorded (or
/// that is gone). Empty for backups without recorded checksums.
pub async fn changed_meta_files(storage: &Storage, name: &str) -> Result<Vec<(String, String)>> {
    let summary: Option<crate::model::meta::Summary> =
        match read_json(storage, &layout::backup_meta_file(name, layout::SUMMARY)).await {
            Ok(s) => s,
            // A damaged summary is reported by list and verify themselves.
            Err(e) if e.kind() == ErrorKind::Corrupt => None,
            Err(e) => return Err(e),
        };
    let mut changed = Vec::new();
    for (file, want) in summary.map(|s| s.meta_sha256).unwrap_or_default() {
        let key = layout::backup_meta_file(name, &file);
        match storage.sha256(&key).await {
            Ok((got, _)) if got == want => {}
            Ok(_) => changed.push((
                file,
                "changed since the backup was made (its SHA-256 differs from the one in summary.json)".to_string(),
            )),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                changed.push((file, "missing".to_string()))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(changed)
}

/// The backup's manifest (files, sizes, checksums), when it has one.
pub async fn manifest(storage: &Storage, name: &str) -> Result<Option<Manifest>> {
    read_json(storage, &layout::backup_meta_file(name, layout::MANIFEST)).await
}

pub(crate) fn not_found(storage: &Storage, name: &str) -> Error {
    Error::not_found(format!(
        "backup `{name}` not found in {} — see `milvus-backup list`",
        storage.spec().describe()
    ))
}

/// Removes every file of backup `name`: the completion marks first, so an
/// interrupted removal leaves an incomplete backup, never a complete-looking
/// broken one. Returns the number of objects removed. The only way a
/// backup's files are deleted (by `delete` and by a failed `create`).
pub async fn remove(storage: &Storage, name: &str) -> Result<u64> {
    remove_marks(storage, name).await?;
    // Incomplete from here on: an interrupted removal must not stay listed
    // as complete from the index.
    catalog_index::remove(storage, name).await;
    storage.delete_prefix(&layout::backup_dir(name)).await
}

/// [`remove`] for a caller that took the backup out of the catalog index
/// already (with others, in one update).
pub async fn remove_unindexed(storage: &Storage, name: &str) -> Result<u64> {
    remove_marks(storage, name).await?;
    storage.delete_prefix(&layout::backup_dir(name)).await
}

async fn remove_marks(storage: &Storage, name: &str) -> Result<()> {
    for f in [layout::SUMMARY, layout::FULL_META] {
        storage.delete(&layout::backup_meta_file(name, f)).await?;
    }
    Ok(())
}

/// Every backup folder name (complete or not), sorted.
pub async fn names(storage: &Storage) -> Result<Vec<String>> {
    Ok(storage
        .list_dirs("")
        .await?
        .into_iter()
        .filter(|n| is_backup_name(n))
        .collect())
}
