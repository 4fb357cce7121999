//! `replicate`: a copy of a backup in another backup storage (the strategy's
//! secondary region), complete on its own.
//!
//! Options → Plan → Stats: [`plan`] reads the source's manifest and lists
//! what the destination already has; [`execute`] copies what is missing —
//! server-side when both storages are one bucket on one service, streamed
//! otherwise — and checks every copied file (and every file found already
//! there) against the manifest's SHA-256. Files an incremental backup
//! shares with its base are copied into the copy's own folder and its
//! manifest says so, so the destination never depends on another backup.
//! Completion marks (`full_meta.json`, then `summary.json`) are written
//! last: an interrupted copy is an incomplete backup there, and running
//! again copies only what is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, Event, EventSink, Operation, Phase, PlannedCollection};
use crate::model::layout;
use crate::model::meta::{Manifest, Summary};
use crate::model::naming::validate_backup_name;
use crate::repo::catalog;
use crate::storage::Storage;
use crate::{cancellable, CancellationToken};

/// Files copied at once.
const PARALLELISM: usize = 16;

/// Meta files that belong to one storage's copy only (not replicated).
pub const LOCAL_META: &[&str] = &[crate::repo::verification::RECORD];

#[derive(Debug, Clone, Serialize)]
pub struct ReplicateFile {
    /// Key in the source storage.
    pub source: String,
    /// Key relative to the backup folder (in both).
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Already at the destination with its size (checked, not copied).
    pub present: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicatePlan {
    pub backup: String,
    pub from: String,
    pub to: String,
    pub files: Vec<ReplicateFile>,
    /// Meta files copied as they are (after the data files).
    pub meta: Vec<String>,
    /// The destination already has the whole backup.
    pub complete_there: bool,
    #[serde(skip)]
    manifest: Manifest,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplicateStats {
    pub backup: String,
    pub files: u64,
    pub copied_files: u64,
    pub copied_bytes: u64,
    /// Files found at the destination already, with the right checksum.
    pub present_files: u64,
    /// Shared files of an incremental backup copied into its own folder.
    pub rehomed_files: u64,
    pub server_side: bool,
    pub duration_s: f64,
}

/// What to copy; changes nothing.
pub async fn plan(from: &Storage, to: &Storage, name: &str) -> Result<ReplicatePlan> {
    validate_backup_name(name)?;
    let info = catalog::row(from, name).await?;
    if info.state != catalog::BackupState::Complete {
        return Err(Error::conflict(format!(
            "backup `{name}` is not complete in {} — only complete backups are replicated",
            from.spec().describe()
        )));
    }
    let manifest = catalog::manifest(from, name).await?.ok_or_else(|| {
        Error::unsupported(format!(
            "backup `{name}` has no manifest (made by the Go tool?): it cannot be replicated with its checksums checked"
        ))
    })?;
    let there: BTreeMap<String, u64> = to
        .list(&layout::backup_dir(name))
        .await?
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    let complete_there = there.contains_key(&layout::backup_meta_file(name, layout::SUMMARY));
    let dir = layout::backup_dir(name);
    let files: Vec<ReplicateFile> = manifest
        .files
        .iter()
        .map(|f| {
            let dst = layout::join(&dir, &f.path);
            ReplicateFile {
                source: layout::join(&layout::backup_dir(f.holder(name)), &f.path),
                path: f.path.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
                present: there.get(&dst) == Some(&f.size),
            }
        })
        .collect();
    let data: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let meta: Vec<String> = from
        .list(&dir)
        .await?
        .into_iter()
        .filter_map(|o| o.key.strip_prefix(&dir).map(str::to_string))
        .filter(|p| !data.contains(p.as_str()))
        .filter(|p| {
            let file = p.strip_prefix("meta/").unwrap_or("");
            ![layout::MANIFEST, layout::FULL_META, layout::SUMMARY].contains(&file)
                && !LOCAL_META.contains(&file)
        })
        .collect();
    Ok(ReplicatePlan {
        backup: name.to_string(),
        from: from.spec().describe(),
        to: to.spec().describe(),
        files,
        meta,
        complete_there,
        manifest,
    })
}

/// Copies what is missing and checks every file; completion marks last.
pub async fn execute(
    from: &Storage,
    to: &Storage,
    plan: &ReplicatePlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<ReplicateStats> {
    let started = Instant::now();
    let name = plan.backup.as_str();
    let mut stats = ReplicateStats {
        backup: name.to_string(),
        files: plan.files.len() as u64,
        server_side: from.same_bucket_as(to),
        ..Default::default()
    };
    if plan.complete_there {
        stats.present_files = stats.files;
        return Ok(stats);
    }
    let in_use = crate::repo::lease::hold_or_warn(from, name, "replicate", events).await;
    events.emit(Event::Planned {
        operation: Operation::Create,
        collections: vec![PlannedCollection {
            name: name.to_string(),
            target: None,
            segments: 0,
            files: plan.files.len() as u64,
            bytes: plan.files.iter().map(|f| f.size).sum(),
        }],
    });
    events.emit(Event::CollectionStarted { index: 0 });
    events.phase(Phase::Copying {
        files: plan.files.iter().filter(|f| !f.present).count() as u64,
        bytes: plan
            .files
            .iter()
            .filter(|f| !f.present)
            .map(|f| f.size)
            .sum(),
        shared: 0,
    });
    let dir = layout::backup_dir(name);
    let results = futures::stream::iter(plan.files.iter().map(|f| {
        let dst = layout::join(&dir, &f.path);
        copy_checked(from, to, f, dst, name)
    }))
    .buffer_unordered(PARALLELISM);
    let mut results = std::pin::pin!(results);
    let work = async {
        while let Some(r) = results.next().await {
            let (copied, bytes) = r?;
            if copied {
                stats.copied_files += 1;
                stats.copied_bytes += bytes;
            } else {
                stats.present_files += 1;
            }
            events.emit(Event::FileDone {
                collection: Some(0),
                bytes,
            });
        }
        Ok::<_, Error>(())
    };
    cancellable(cancel, work)
        .await
        .map_err(|e| e.during("replicate").at("backup", name))?;
    stats.rehomed_files = plan
        .manifest
        .files
        .iter()
        .filter(|f| f.stored_in.is_some())
        .count() as u64;
    write_meta(from, to, plan).await?;
    copy_root_key(from, to).await?;
    events.emit(Event::CollectionFinished {
        index: 0,
        error: None,
    });
    stats.duration_s = started.elapsed().as_secs_f64();
    crate::repo::lease::release(in_use).await;
    Ok(stats)
}

/// One file into `dst` of `to`, unless it is there with the manifest's
/// SHA-256 already: whether it was copied, and its bytes. A copy that
/// does not match the manifest is removed and is damage.
async fn copy_checked(
    from: &Storage,
    to: &Storage,
    f: &ReplicateFile,
    dst: String,
    name: &str,
) -> Result<(bool, u64)> {
    if f.present {
        let (sha, _) = to.sha256(&dst).await?;
        if sha == f.sha256 {
            return Ok((false, 0u64));
        }
    }
    let outcome = from.copy_to(&f.source, to, &dst).await?;
    let sha = match outcome.sha256 {
        Some(s) => s,
        None => to.sha256(&dst).await?.0,
    };
    if sha != f.sha256 {
        let _ = to.delete(&dst).await;
        return Err(Error::corrupt(format!(
            "`{}` in {} does not match the manifest's SHA-256 of backup `{name}` (got {sha}, want {}) — run `milvus-backup verify -n {name} --deep`",
            f.source,
            from.spec().describe(),
            f.sha256
        ))
        .at("key", &f.source));
    }
    Ok((true, outcome.bytes))
}

/// The meta files as they are, the manifest saying every file is here,
/// `full_meta.json` and then the summary (the completion marks) last.
async fn write_meta(from: &Storage, to: &Storage, plan: &ReplicatePlan) -> Result<()> {
    let name = plan.backup.as_str();
    let dir = layout::backup_dir(name);
    for p in &plan.meta {
        let key = layout::join(&dir, p);
        from.copy_to(&key, to, &key).await?;
    }
    let mut manifest = plan.manifest.clone();
    for f in &mut manifest.files {
        f.stored_in = None;
    }
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::internal(format!("encoding the manifest of {name}: {e}")))?;
    let manifest_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    to.write(&layout::backup_meta_file(name, layout::MANIFEST), bytes)
        .await?;
    let full = layout::backup_meta_file(name, layout::FULL_META);
    from.copy_to(&full, to, &full).await?;
    let summary_key = layout::backup_meta_file(name, layout::SUMMARY);
    match crate::repo::meta_files::read_json::<Summary>(from, &summary_key).await? {
        Some(mut summary) => {
            if !summary.meta_sha256.is_empty() {
                summary
                    .meta_sha256
                    .insert(layout::MANIFEST.to_string(), manifest_sha);
            }
            summary.copied_bytes = summary.size_bytes;
            let bytes = serde_json::to_vec_pretty(&summary)
                .map_err(|e| Error::internal(format!("encoding the summary of {name}: {e}")))?;
            to.write(&summary_key, bytes).await?;
            crate::repo::catalog_index::added(to, catalog::from_summary(name, &summary)).await;
        }
        None => {
            return Err(Error::corrupt(format!(
                "backup `{name}` has no summary.json"
            )))
        }
    }
    Ok(())
}

/// Plan, then execute.
pub async fn replicate(
    from: &Storage,
    to: &Storage,
    name: &str,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<ReplicateStats> {
    let plan = plan(from, to, name).await?;
    execute(from, to, &plan, events, cancel).await
}

/// A password's root key goes along, so the copy opens with the password.
async fn copy_root_key(from: &Storage, to: &Storage) -> Result<()> {
    if from.stat(layout::ROOT_KEY).await?.is_some() && to.stat(layout::ROOT_KEY).await?.is_none() {
        from.copy_to(layout::ROOT_KEY, to, layout::ROOT_KEY).await?;
    }
    Ok(())
}

/// The complete backups of `from` (restricted by `wanted`) that `to` lacks
/// as complete backups, oldest first.
pub async fn missing(
    from: &Storage,
    to: &Storage,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<catalog::BackupListing>> {
    let there: BTreeSet<String> = match catalog::list(to).await {
        Ok(rows) => rows
            .into_iter()
            .filter(|r| r.state == catalog::BackupState::Complete)
            .map(|r| r.name)
            .collect(),
        Err(e) if e.kind() == ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => return Err(e),
    };
    let mut out: Vec<catalog::BackupListing> = catalog::list(from)
        .await?
        .into_iter()
        .filter(|r| r.state == catalog::BackupState::Complete)
        .filter(|r| wanted(&r.name) && !there.contains(&r.name))
        .collect();
    out.sort_by_key(|r| r.backup_timestamp);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Discard;
    use crate::storage::{Side, StorageSpec};

    async fn put(s: &Storage, key: &str, data: &[u8]) {
        s.write(key, data.to_vec()).await.unwrap();
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data))
    }

    /// A base backup and an incremental one sharing a file with it.
    async fn two_backups(s: &Storage) {
        for (name, base, own) in [("b1", None, "f1"), ("b2", Some("b1"), "f2")] {
            put(s, &format!("{name}/binlogs/{own}"), own.as_bytes()).await;
            let mut m = Manifest {
                backup_name: name.into(),
                ..Default::default()
            };
            m.files.push(crate::model::meta::ManifestFile {
                path: format!("binlogs/{own}"),
                size: 2,
                sha256: sha(own.as_bytes()),
                ..Default::default()
            });
            if let Some(b) = base {
                m.files.push(crate::model::meta::ManifestFile {
                    path: "binlogs/f1".into(),
                    size: 2,
                    sha256: sha(b"f1"),
                    stored_in: Some(b.into()),
                    ..Default::default()
                });
            }
            put(
                s,
                &format!("{name}/meta/manifest.json"),
                &serde_json::to_vec(&m).unwrap(),
            )
            .await;
            put(s, &format!("{name}/meta/backup_meta.json"), b"{}").await;
            let info = crate::model::meta::BackupInfo {
                name: name.into(),
                ..Default::default()
            };
            put(
                s,
                &format!("{name}/meta/full_meta.json"),
                &serde_json::to_vec(&info).unwrap(),
            )
            .await;
            let summary = Summary {
                name: name.into(),
                ..Default::default()
            };
            put(
                s,
                &format!("{name}/meta/summary.json"),
                &serde_json::to_vec(&summary).unwrap(),
            )
            .await;
        }
    }

    #[tokio::test]
    async fn an_incremental_copy_is_complete_on_its_own_and_reruns_copy_nothing() {
        let a = Storage::open(StorageSpec::memory(Side::Backup, "a")).unwrap();
        let b = Storage::open(StorageSpec::memory(Side::Backup, "b")).unwrap();
        two_backups(&a).await;
        let cancel = CancellationToken::new();
        let stats = replicate(&a, &b, "b2", &Discard, &cancel).await.unwrap();
        assert_eq!((stats.copied_files, stats.rehomed_files), (2, 1));
        assert_eq!(b.read("b2/binlogs/f1").await.unwrap(), b"f1");
        let m = catalog::manifest(&b, "b2").await.unwrap().unwrap();
        assert!(m.files.iter().all(|f| f.stored_in.is_none()));
        assert_eq!(
            catalog::row(&b, "b2").await.unwrap().state,
            catalog::BackupState::Complete
        );
        // Interrupted: the summary is gone and one file too; a rerun copies that one.
        b.delete("b2/meta/summary.json").await.unwrap();
        b.delete("b2/binlogs/f2").await.unwrap();
        let stats = replicate(&a, &b, "b2", &Discard, &cancel).await.unwrap();
        assert_eq!((stats.copied_files, stats.present_files), (1, 1));
        let missing = missing(&a, &b, |_| true).await.unwrap();
        assert_eq!(
            missing.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            vec!["b1"]
        );
    }

    #[tokio::test]
    async fn a_file_that_differs_from_its_checksum_is_not_copied() {
        let a = Storage::open(StorageSpec::memory(Side::Backup, "a")).unwrap();
        let b = Storage::open(StorageSpec::memory(Side::Backup, "b")).unwrap();
        two_backups(&a).await;
        put(&a, "b1/binlogs/f1", b"xx").await;
        let e = replicate(&a, &b, "b1", &Discard, &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.to_string().contains("b1/binlogs/f1"), "{e}");
        assert!(b.stat("b1/binlogs/f1").await.unwrap().is_none());
        assert!(b.stat("b1/meta/summary.json").await.unwrap().is_none());
    }
}
