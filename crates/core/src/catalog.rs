//! The backups in backup storage: `list`, `get`, `delete`.
//!
//! `list` reads one small file per backup (our `summary.json`), concurrently;
//! for a backup the anchor made it falls back to `full_meta.json`. A backup
//! without `full_meta.json` is listed as incomplete and can only be deleted.

use futures::StreamExt;
use serde::Serialize;

use std::collections::BTreeSet;

use crate::codec;
use crate::config::BackupConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{BackupInfo, Manifest, Summary};
use crate::progress::Progress;
use crate::storage::{layout, Storage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupState {
    Complete,
    Incomplete,
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupListing {
    pub name: String,
    pub id: String,
    pub state: BackupState,
    pub collections: Vec<String>,
    pub entities: i64,
    pub size_bytes: i64,
    /// Milliseconds since the epoch (the anchor's `backup_timestamp`).
    pub backup_timestamp: u64,
    pub milvus_version: String,
    /// The backup an incremental one shares files with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_backup: Option<String>,
    pub compression: codec::Compression,
    pub encrypted: bool,
}

/// Every backup (complete or not), newest first.
pub async fn list(storage: &Storage) -> Result<Vec<BackupListing>> {
    // Folders whose names no backup can have (e.g. `check`'s probes) are not backups.
    let names: Vec<String> = storage
        .list_dirs("")
        .await?
        .into_iter()
        .filter(|n| crate::backup::validate_name(n).is_ok())
        .collect();
    let mut rows: Vec<BackupListing> = futures::stream::iter(
        names
            .into_iter()
            .map(|name| async move { listing(storage, &name).await }),
    )
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<Vec<_>>>()?
    .into_iter()
    .flatten()
    .collect();
    rows.sort_by(|a, b| {
        b.backup_timestamp
            .cmp(&a.backup_timestamp)
            .then(a.name.cmp(&b.name))
    });
    Ok(rows)
}

/// Reads a meta file, opening it with the storage's key when it is sealed.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    storage: &Storage,
    key: &str,
) -> Result<Option<T>> {
    match storage.read(key).await {
        Ok(bytes) => serde_json::from_slice(&codec::open(bytes, storage.key(), key)?)
            .map(Some)
            .map_err(|e| Error::remote(format!("`{key}` is not a valid backup meta file: {e}"))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn listing(storage: &Storage, name: &str) -> Result<Option<BackupListing>> {
    if let Some(s) =
        read_json::<Summary>(storage, &layout::backup_meta_file(name, layout::SUMMARY)).await?
    {
        return Ok(Some(BackupListing {
            name: name.to_string(),
            id: s.id,
            state: BackupState::Complete,
            collections: s.collections,
            entities: s.entities,
            size_bytes: s.size_bytes,
            backup_timestamp: s.backup_timestamp,
            milvus_version: s.milvus_version,
            base_backup: s.base_backup,
            compression: s.compression,
            encrypted: s.encrypted,
        }));
    }
    // The anchor's backups, and ours interrupted before the summary.
    if let Some(info) =
        read_json::<BackupInfo>(storage, &layout::backup_meta_file(name, layout::FULL_META)).await?
    {
        return Ok(Some(BackupListing {
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
            milvus_version: info.milvus_version,
            ..incomplete(name)
        }));
    }
    Ok(Some(incomplete(name)))
}

fn incomplete(name: &str) -> BackupListing {
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
        compression: codec::Compression::None,
        encrypted: false,
    }
}

/// Rows of every segment of a backup.
pub fn entities(info: &BackupInfo) -> i64 {
    info.collection_backups
        .iter()
        .flat_map(|c| &c.partition_backups)
        .flat_map(|p| &p.segment_backups)
        .map(|s| s.num_of_rows)
        .sum()
}

/// A complete backup's whole meta tree; refuses incomplete ones.
pub async fn get(storage: &Storage, name: &str) -> Result<BackupInfo> {
    crate::backup::validate_name(name)?;
    match read_json::<BackupInfo>(storage, &layout::backup_meta_file(name, layout::FULL_META)).await? {
        Some(info) => Ok(info),
        None if storage.has_objects(&layout::backup_dir(name)).await? => Err(Error::invalid_input(format!(
            "backup `{name}` is incomplete (it has no meta/full_meta.json: it was interrupted or is still being written) — delete it with `milvus-backup delete -n {name}`"
        ))),
        None => Err(not_found(storage, name)),
    }
}

/// The backup's manifest (files, sizes, checksums), when it has one.
pub async fn manifest(storage: &Storage, name: &str) -> Result<Option<Manifest>> {
    read_json(storage, &layout::backup_meta_file(name, layout::MANIFEST)).await
}

/// The rows sampled when the backup was made (`meta/sample.json`), when it has them.
pub async fn read_sample(storage: &Storage, name: &str) -> Result<Option<crate::sample::Sample>> {
    read_json(storage, &layout::backup_meta_file(name, layout::SAMPLE)).await
}

fn not_found(storage: &Storage, name: &str) -> Error {
    Error::not_found(format!(
        "backup `{name}` not found in {} — see `milvus-backup list`",
        storage.spec().describe()
    ))
}

/// Deletes one backup, complete or not; returns the number of objects removed.
pub async fn delete(storage: &Storage, name: &str) -> Result<u64> {
    crate::backup::validate_name(name)?;
    let dir = layout::backup_dir(name);
    if !storage.has_objects(&dir).await? {
        return Err(not_found(storage, name));
    }
    rehome_shared_files(storage, name).await?;
    // Remove the completion marks first, so a delete interrupted midway
    // leaves an incomplete backup, never a complete-looking broken one.
    for f in [layout::SUMMARY, layout::FULL_META] {
        storage.delete(&layout::backup_meta_file(name, f)).await?;
    }
    storage.delete_prefix(&dir).await
}

/// Every backup folder name but `except`, with its manifest if it has one.
async fn manifests(storage: &Storage, except: &str) -> Result<Vec<(String, Manifest)>> {
    let names: Vec<String> = storage
        .list_dirs("")
        .await?
        .into_iter()
        .filter(|n| n != except && crate::backup::validate_name(n).is_ok())
        .collect();
    let found = futures::stream::iter(
        names
            .into_iter()
            .map(|n| async move { manifest(storage, &n).await.map(|m| m.map(|m| (n, m))) }),
    )
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await;
    Ok(found
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect())
}

/// Before `name` is deleted, moves the files other (incremental) backups
/// share from it into the oldest of them, and points every reference
/// there. Copies first, manifests second: an interruption at any point
/// leaves every backup readable.
async fn rehome_shared_files(storage: &Storage, name: &str) -> Result<()> {
    let mut referrers: Vec<(String, Manifest)> = manifests(storage, name)
        .await?
        .into_iter()
        .filter(|(_, m)| m.referenced_backups().contains(name))
        .collect();
    if referrers.is_empty() {
        return Ok(());
    }
    referrers.sort_by(|a, b| a.1.created_at.cmp(&b.1.created_at).then(a.0.cmp(&b.0)));
    let heir = referrers[0].0.clone();
    let paths: BTreeSet<String> = referrers
        .iter()
        .flat_map(|(_, m)| &m.files)
        .filter(|f| f.stored_in.as_deref() == Some(name))
        .map(|f| f.path.clone())
        .collect();
    let (from, to) = (layout::backup_dir(name), layout::backup_dir(&heir));
    let copies: Vec<(String, String)> = paths
        .iter()
        .map(|p| (layout::join(&from, p), layout::join(&to, p)))
        .collect();
    futures::stream::iter(copies)
        .map(|(src, dst)| async move { storage.copy_to(&src, storage, &dst).await.map(|_| ()) })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    for (backup, mut m) in referrers {
        for f in m
            .files
            .iter_mut()
            .filter(|f| f.stored_in.as_deref() == Some(name))
        {
            f.stored_in = (backup != heir).then(|| heir.clone());
        }
        let bytes = serde_json::to_vec_pretty(&m)
            .map_err(|e| Error::internal(format!("encoding the manifest of {backup}: {e}")))?;
        storage
            .write(&layout::backup_meta_file(&backup, layout::MANIFEST), bytes)
            .await?;
    }
    Ok(())
}

/// Which backups to keep: `backup.maxBackupNum` and `backup.retentionDays`
/// (0 = no limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    pub max_backups: u32,
    pub max_age_days: u32,
}

impl Retention {
    pub fn from_config(cfg: &BackupConfig) -> Retention {
        Retention {
            max_backups: cfg.max_backup_num,
            max_age_days: cfg.retention_days,
        }
    }

    pub fn is_active(&self) -> bool {
        self.max_backups > 0 || self.max_age_days > 0
    }

    /// The complete backups the policy removes, oldest first: those beyond
    /// the newest `max_backups`, and those older than `max_age_days`.
    /// Incomplete backups and those in `keep` are never chosen.
    pub fn victims(&self, backups: &[BackupListing], now_ms: u64, keep: &[&str]) -> Vec<String> {
        let mut complete: Vec<&BackupListing> = backups
            .iter()
            .filter(|b| b.state == BackupState::Complete)
            .collect();
        complete.sort_by(|a, b| {
            b.backup_timestamp
                .cmp(&a.backup_timestamp)
                .then(b.name.cmp(&a.name))
        });
        let cutoff = now_ms.saturating_sub(u64::from(self.max_age_days) * 86_400_000);
        let mut out: Vec<String> = complete
            .iter()
            .enumerate()
            .filter(|(i, b)| {
                (self.max_backups > 0 && *i >= self.max_backups as usize)
                    || (self.max_age_days > 0 && b.backup_timestamp < cutoff)
            })
            .map(|(_, b)| b.name.clone())
            .filter(|n| !keep.contains(&n.as_str()))
            .collect();
        out.reverse();
        out
    }
}

/// Deletes (or with `dry_run` only names) what the policy removes.
pub async fn apply_retention(
    storage: &Storage,
    policy: &Retention,
    keep: &[&str],
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<Vec<String>> {
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let victims = policy.victims(&list(storage).await?, now, keep);
    if !dry_run {
        for name in &victims {
            progress.step(&format!("retention: deleting `{name}`"));
            delete(storage, name).await?;
        }
    }
    Ok(victims)
}

/// Parses `30d`, `12h`, `45m`, `90s`, `2w` into seconds.
pub fn parse_age(text: &str) -> Result<u64> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().map_err(|_| bad_age(text))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" | "" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad_age(text)),
    };
    Ok(n * mult)
}

fn bad_age(text: &str) -> Error {
    Error::invalid_input(format!(
        "`{text}` is not an age — use e.g. 30d, 12h, 45m or 2w"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_age("12h").unwrap(), 12 * 3600);
        assert_eq!(parse_age("2w").unwrap(), 14 * 86_400);
        assert_eq!(parse_age("7").unwrap(), 7 * 86_400);
        assert!(parse_age("soon").is_err());
        assert!(parse_age("5y").is_err());
    }

    fn backup(name: &str, days_old: u64, state: BackupState) -> BackupListing {
        BackupListing {
            state,
            backup_timestamp: NOW - days_old * 86_400_000,
            ..incomplete(name)
        }
    }

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn retention_keeps_the_newest_and_the_young() {
        use BackupState::*;
        let all = vec![
            backup("d0", 0, Complete),
            backup("d1", 1, Complete),
            backup("d2", 2, Incomplete),
            backup("d3", 3, Complete),
            backup("d9", 9, Complete),
        ];
        let by_count = Retention {
            max_backups: 2,
            max_age_days: 0,
        };
        assert_eq!(by_count.victims(&all, NOW, &[]), ["d9", "d3"]);
        let by_age = Retention {
            max_backups: 0,
            max_age_days: 2,
        };
        assert_eq!(by_age.victims(&all, NOW, &[]), ["d9", "d3"]);
        let both = Retention {
            max_backups: 3,
            max_age_days: 5,
        };
        assert_eq!(both.victims(&all, NOW, &[]), ["d9"]);
        assert_eq!(both.victims(&all, NOW, &["d9"]), Vec::<String>::new());
        assert!(Retention::default().victims(&all, NOW, &[]).is_empty());
    }
}
