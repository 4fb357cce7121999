//! The backups in backup storage: `list`, `get`, `delete`.
//!
//! `list` reads one small file per backup (our `summary.json`), concurrently;
//! for a backup the anchor made it falls back to `full_meta.json`. A backup
//! without `full_meta.json` is listed as incomplete and can only be deleted.

use futures::StreamExt;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::format::{BackupInfo, Manifest, Summary};
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

async fn read_json<T: serde::de::DeserializeOwned>(
    storage: &Storage,
    key: &str,
) -> Result<Option<T>> {
    match storage.read(key).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
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
        }));
    }
    Ok(Some(BackupListing {
        name: name.to_string(),
        id: String::new(),
        state: BackupState::Incomplete,
        collections: Vec::new(),
        entities: 0,
        size_bytes: 0,
        backup_timestamp: 0,
        milvus_version: String::new(),
    }))
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
    // Remove the completion marks first, so a delete interrupted midway
    // leaves an incomplete backup, never a complete-looking broken one.
    for f in [layout::SUMMARY, layout::FULL_META] {
        storage.delete(&layout::backup_meta_file(name, f)).await?;
    }
    storage.delete_prefix(&dir).await
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
}
