//! `verify`: is a backup whole and unchanged?
//!
//! Plain: the meta files parse and agree with each other (the per-level
//! files with `full_meta.json`, the manifest with the segments' binlogs),
//! and every file of the manifest exists with its recorded size. `deep`
//! also reads every file and compares its SHA-256. Each problem names the
//! file; the caller turns any problem into a failure.

use std::collections::HashSet;

use futures::StreamExt;
use serde::Serialize;

use crate::catalog;
use crate::codec;
use crate::error::{Error, Result};
use crate::format::{CollectionBackupInfo, Infos, PartitionBackupInfo, SegmentBackupInfo};
use crate::progress::Progress;
use crate::storage::{layout, Storage};

#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub name: String,
    pub deep: bool,
    pub files: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    /// What `--restore-test` did, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<crate::restore_test::RestoreTestStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The file (relative to the backup folder) or meta file concerned.
    pub path: String,
    pub problem: String,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            problem: problem.into(),
        });
    }
}

async fn read_infos<T: serde::de::DeserializeOwned>(
    storage: &Storage,
    key: &str,
) -> Result<Option<Vec<T>>> {
    match catalog::read_json::<Infos<T>>(storage, key).await {
        Ok(infos) => Ok(infos.map(|i| i.infos)),
        Err(e) if e.kind() == crate::ErrorKind::Remote => Ok(None),
        Err(e) => Err(e),
    }
}

/// Verifies one backup; `Err` only when it cannot be read at all.
pub async fn verify(
    storage: &Storage,
    name: &str,
    deep: bool,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let info = catalog::get(storage, name).await?;
    let mut report = VerifyReport {
        name: name.to_string(),
        deep,
        ..Default::default()
    };
    let meta = |f: &str| layout::backup_meta_file(name, f);

    // The per-level files must describe the same tree as full_meta.json.
    let segments: Vec<&SegmentBackupInfo> = info
        .collection_backups
        .iter()
        .flat_map(|c| &c.partition_backups)
        .flat_map(|p| &p.segment_backups)
        .collect();
    let partitions = info
        .collection_backups
        .iter()
        .map(|c| c.partition_backups.len())
        .sum::<usize>();
    let levels = [
        (
            layout::COLLECTION_META,
            read_infos::<CollectionBackupInfo>(storage, &meta(layout::COLLECTION_META))
                .await?
                .map(|v| v.len()),
            info.collection_backups.len(),
        ),
        (
            layout::PARTITION_META,
            read_infos::<PartitionBackupInfo>(storage, &meta(layout::PARTITION_META))
                .await?
                .map(|v| v.len()),
            partitions,
        ),
        (
            layout::SEGMENT_META,
            read_infos::<SegmentBackupInfo>(storage, &meta(layout::SEGMENT_META))
                .await?
                .map(|v| v.len()),
            segments.len(),
        ),
    ];
    for (file, found, expected) in levels {
        match found {
            None => report.problem(format!("meta/{file}"), "missing or not valid JSON"),
            Some(n) if n != expected => report.problem(
                format!("meta/{file}"),
                format!("lists {n} entries but full_meta.json has {expected}"),
            ),
            Some(_) => {}
        }
    }

    let Some(manifest) = catalog::manifest(storage, name).await? else {
        report.problem(
            format!("meta/{}", layout::MANIFEST),
            "missing: this backup has no checksums (made by another tool?); only the meta files were checked",
        );
        return Ok(report);
    };
    // Every binlog the segments name must be in the manifest.
    let sources: HashSet<&str> = manifest.files.iter().map(|f| f.source.as_str()).collect();
    for seg in &segments {
        for log in seg
            .binlogs
            .iter()
            .chain(&seg.deltalogs)
            .flat_map(|f| &f.binlogs)
        {
            let rel = log
                .log_path
                .split_once("insert_log/")
                .map(|(_, r)| format!("insert_log/{r}"))
                .or_else(|| {
                    log.log_path
                        .split_once("delta_log/")
                        .map(|(_, r)| format!("delta_log/{r}"))
                })
                .unwrap_or_else(|| log.log_path.clone());
            if !sources.contains(rel.as_str()) {
                report.problem(
                    &log.log_path,
                    format!(
                        "segment {} names this binlog but the manifest does not",
                        seg.segment_id
                    ),
                );
            }
        }
    }

    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    progress.step(&format!(
        "{} {} files ({} bytes) of `{name}`",
        if deep { "reading" } else { "checking" },
        manifest.files.len(),
        total
    ));
    progress.transfer_start(
        manifest.files.len() as u64,
        "files",
        if deep { total } else { 0 },
    );
    let checks = futures::stream::iter(manifest.files.iter().map(|f| {
        async move {
            // Shared files of an incremental backup live in another backup's folder.
            let key = layout::join(&layout::backup_dir(f.holder(name)), &f.path);
            let found = if deep {
                // Reads every byte: checksum as stored, then decrypts and
                // decompresses where the file is encoded.
                match codec::decode_copy(storage, &key, &f.expected(), None).await {
                    Ok(Ok(_)) => None,
                    Ok(Err(damage)) => Some(damage),
                    Err(e) if e.kind() == crate::ErrorKind::NotFound => Some("missing".to_string()),
                    Err(e) => return Err(e),
                }
            } else {
                match storage.stat(&key).await? {
                    None => Some("missing".to_string()),
                    Some(size) if size != f.size => {
                        Some(format!("size {size}, manifest says {}", f.size))
                    }
                    Some(_) => None,
                }
            };
            progress.transfer_advance(if deep { f.size } else { 0 });
            Ok::<_, Error>((f, found))
        }
    }))
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await;
    progress.transfer_end();
    for result in checks {
        let (f, found) = result?;
        report.files += 1;
        report.bytes += f.size;
        if let Some(problem) = found {
            report.problem(&f.path, problem);
        }
    }
    report.problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

/// `--restore-test`: restores the backup into throwaway collections on the
/// configured Milvus, compares row counts and the row sample, drops them
/// (see [`crate::restore_test`]). Returns a report with only the restore
/// test's problems; [`VerifyReport::merge`] adds them to the file checks'.
/// `Err` only when the test cannot run (backup unreadable, Milvus
/// unreachable).
pub async fn restore_test(
    ctx: &crate::Context,
    name: &str,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let (stats, problems) = crate::restore_test::run(ctx, name, progress).await?;
    Ok(VerifyReport {
        name: name.to_string(),
        problems,
        restore_test: Some(stats),
        ..Default::default()
    })
}

impl VerifyReport {
    /// Adds the restore test's findings to this (file checks') report.
    pub fn merge(&mut self, restore_test: VerifyReport) {
        self.problems.extend(restore_test.problems);
        self.restore_test = restore_test.restore_test.or(self.restore_test.take());
    }
}
