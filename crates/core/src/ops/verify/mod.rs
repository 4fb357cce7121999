//! `verify`: is a backup whole and unchanged?
//!
//! Options → Plan → reports. [`plan`] names the backups (every complete one
//! when none is named) and counts their files; [`execute`] checks each.
//! Plain: the meta files parse and agree with each other (the per-level
//! files with `full_meta.json`, the manifest with the segments' binlogs),
//! and every file of the manifest exists with its recorded size. `deep`
//! also reads every file and compares its SHA-256 (decrypting and
//! decompressing encoded ones). `restore_test` also runs the
//! [`crate::ops::verify::rehearsal`]. Each problem names the file.
//!
//! A damaged meta file is a problem in the report; a storage that fails is
//! an error (never a problem), so an outage is never called damage.

pub mod deep_hash;
pub mod rehearsal;
pub mod sample;

use std::collections::HashSet;

use futures::StreamExt;
use serde::Serialize;

use crate::config::tuning::Tuning;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, Event, EventSink, Operation, Phase, PlannedCollection};
use crate::model::layout;
use crate::model::meta::{CollectionBackupInfo, Infos, PartitionBackupInfo, SegmentBackupInfo};
use crate::model::naming::validate_backup_name;
use crate::ops::verify::rehearsal::RestoreTestStats;
use crate::repo::catalog::{self, BackupState, Problem};
use crate::repo::verification::{self, VerificationRecord};
use crate::storage::Storage;
use crate::{cancellable, CancellationToken};

/// Problems a recorded verdict keeps (the report has them all).
pub const RECORDED_PROBLEMS: usize = 20;

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct VerifyOptions {
    /// Backups to verify; every complete backup when empty.
    pub backups: Vec<String>,
    /// Read every file and compare its checksum, not only its size.
    pub deep: bool,
    /// Also restore into throwaway collections and compare rows.
    pub restore_test: bool,
    #[serde(default)]
    pub tuning: Option<Tuning>,
}

/// One backup to verify, with what its manifest lists.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyTarget {
    pub name: String,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyPlan {
    pub backups: Vec<VerifyTarget>,
    /// Backups of `--all` whose create did not finish: reported, not read.
    pub incomplete: Vec<String>,
    pub deep: bool,
    pub restore_test: bool,
    pub tuning: Tuning,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub name: String,
    pub deep: bool,
    pub files: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    /// Files whose SHA-256 this deep check computed and stored in the
    /// manifest (server-side copies that recorded none).
    #[serde(skip_serializing_if = "is_zero")]
    pub hashed: u64,
    /// What `--restore-test` did, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<RestoreTestStats>,
    /// Why this backup of several could not be checked (no key for an
    /// encrypted one, a wrong key); the others are checked all the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// How many of `problems` the file checks found; the restore test's
    /// come after them.
    #[serde(skip)]
    file_problems: Option<usize>,
}

/// Problems per check of one backup: its meta files, its data files (sizes,
/// or checksums when deep) and, when it ran, the restore test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Findings {
    pub metadata: usize,
    pub files: usize,
    pub restore_test: Option<usize>,
}

impl VerifyReport {
    /// Checked and found sound.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.skipped.is_none()
    }

    /// The problems counted per check.
    pub fn findings(&self) -> Findings {
        let checked = self
            .file_problems
            .unwrap_or(self.problems.len())
            .min(self.problems.len());
        let metadata = self.problems[..checked]
            .iter()
            .filter(|p| p.path.starts_with("meta/"))
            .count();
        Findings {
            metadata,
            files: checked - metadata,
            restore_test: self
                .restore_test
                .as_ref()
                .map(|_| self.problems.len() - checked),
        }
    }

    fn problem(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            problem: problem.into(),
        });
    }
}

/// Names and counts the backups to verify; a named backup must exist and
/// be complete (its meta files may be damaged: that is for the report).
pub async fn plan(ctx: &Context, opts: &VerifyOptions) -> Result<VerifyPlan> {
    let storage = &ctx.backup_storage;
    let mut incomplete = Vec::new();
    let names: Vec<String> = if opts.backups.is_empty() {
        // Read afresh: the index's rows do not show damage done since.
        let listed = catalog::list_fresh(storage).await?;
        // Listed as unfinished, never checked as if complete.
        incomplete = listed
            .iter()
            .filter(|r| r.state == BackupState::Incomplete)
            .map(|r| r.name.clone())
            .collect();
        listed
            .into_iter()
            .filter(|r| r.state != BackupState::Incomplete)
            .map(|r| r.name)
            .collect()
    } else {
        for name in &opts.backups {
            validate_backup_name(name)?;
            let full_meta = layout::backup_meta_file(name, layout::FULL_META);
            if storage.stat(&full_meta).await?.is_none() {
                // Tells incomplete from missing, with the fix for each.
                catalog::get(storage, name).await?;
            }
        }
        opts.backups.clone()
    };
    let mut backups = Vec::new();
    for name in names {
        // A damaged manifest is found again (and reported) by the check.
        let manifest = match catalog::manifest(storage, &name).await {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::Corrupt => None,
            Err(e) => return Err(e.during("verify")),
        };
        backups.push(VerifyTarget {
            files: manifest.as_ref().map_or(0, |m| m.files.len() as u64),
            bytes: manifest.map_or(0, |m| m.files.iter().map(|f| f.size).sum()),
            name,
        });
    }
    Ok(VerifyPlan {
        backups,
        incomplete,
        deep: opts.deep,
        restore_test: opts.restore_test,
        tuning: opts.tuning.unwrap_or(ctx.settings.tuning),
    })
}

/// Verifies every planned backup; `Err` only when one cannot be read at all.
pub async fn execute(
    ctx: &Context,
    plan: &VerifyPlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<Vec<VerifyReport>> {
    events.emit(Event::Planned {
        operation: Operation::Verify,
        collections: plan
            .backups
            .iter()
            .map(|b| PlannedCollection {
                name: b.name.clone(),
                target: None,
                segments: 0,
                files: b.files,
                bytes: if plan.deep { b.bytes } else { 0 },
            })
            .collect(),
    });
    let mut reports = Vec::new();
    for (index, b) in plan.backups.iter().enumerate() {
        events.emit(Event::CollectionStarted { index });
        let in_use =
            crate::repo::lease::hold_or_warn(&ctx.backup_storage, &b.name, "verify", events).await;
        let work = async {
            let mut report = check_files(&ctx.backup_storage, &b.name, plan, index, events).await?;
            report.file_problems = Some(report.problems.len());
            if plan.restore_test {
                if !report.ok() {
                    events.note(format!(
                        "the file checks of `{}` found {} problem(s); running the restore test anyway to see what still restores",
                        b.name,
                        report.problems.len()
                    ));
                }
                let (stats, problems) =
                    rehearsal::run(ctx, &b.name, plan.tuning, events, cancel).await?;
                report.problems.extend(problems);
                report.restore_test = Some(stats);
            }
            Ok::<_, Error>(report)
        };
        let result = cancellable(cancel, work).await;
        crate::repo::lease::release(in_use).await;
        let report = match result {
            Ok(report) => report,
            // One backup the configuration cannot open (no key, another
            // key) must not hide the others.
            Err(e)
                if plan.backups.len() > 1
                    && matches!(
                        e.kind(),
                        ErrorKind::InvalidInput | ErrorKind::PermissionDenied
                    ) =>
            {
                VerifyReport {
                    name: b.name.clone(),
                    deep: plan.deep,
                    skipped: Some(e.to_string()),
                    ..Default::default()
                }
            }
            Err(e) => return Err(e.during("verify").at("backup", &b.name)),
        };
        events.emit(Event::CollectionFinished { index, error: None });
        if report.skipped.is_none() {
            record_verdict(&ctx.backup_storage, &report, plan.restore_test, events).await;
        }
        reports.push(report);
    }
    for name in &plan.incomplete {
        let mut report = VerifyReport {
            name: name.clone(),
            deep: plan.deep,
            ..Default::default()
        };
        report.problem(
            layout::join("meta", layout::FULL_META),
            format!("missing: the backup is incomplete (its create did not finish) — delete it with `milvus-backup delete -n {name}`"),
        );
        reports.push(report);
    }
    Ok(reports)
}

/// Keeps the verdict beside the backup and in the catalog index, where
/// `list`, `get` and `status` read it (a damaged backup lists as
/// `damaged`). Best effort: a verdict that cannot be kept is a warning,
/// never a changed result.
async fn record_verdict(
    storage: &Storage,
    report: &VerifyReport,
    restore_test: bool,
    events: &dyn EventSink,
) {
    let name = &report.name;
    if !report.ok() {
        // `list` reads it again: a damaged meta file shows as such.
        crate::repo::catalog_index::forget(storage, name).await;
    }
    let recorded = async {
        let record = VerificationRecord {
            last_verified_at: chrono::Utc::now().timestamp_millis() as u64,
            verified_ok: report.ok(),
            deep: report.deep,
            restore_test,
            problems: report
                .problems
                .iter()
                .take(RECORDED_PROBLEMS)
                .map(|p| format!("{}: {}", p.path, p.problem))
                .collect(),
            // After the check: a deep one may have added checksums to the manifest.
            fingerprint: verification::fingerprint(storage, name).await?,
        };
        catalog::record_verification(storage, name, &record).await
    };
    if let Err(e) = recorded.await {
        events.warn(format!(
            "the verdict on `{name}` was not recorded ({e}): `list` and `status` do not show it"
        ));
    }
}

/// Plan, then execute.
pub async fn verify(
    ctx: &Context,
    opts: &VerifyOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<Vec<VerifyReport>> {
    let plan = plan(ctx, opts).await?;
    execute(ctx, &plan, events, cancel).await
}

/// A meta file for verify: damaged is a finding (`Err(reason)`), absent is
/// `Ok(None)`, a failing storage is an error.
async fn read_meta<T: serde::de::DeserializeOwned>(
    storage: &Storage,
    key: &str,
) -> Result<std::result::Result<Option<T>, String>> {
    match crate::repo::meta_files::read_json::<T>(storage, key).await {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.kind() == ErrorKind::Corrupt => Ok(Err(e.message().to_string())),
        Err(e) => Err(e),
    }
}

/// How a per-level meta file (`level`) disagrees with `full_meta.json`
/// (`full`), entries matched by `key`: the entry counts, an entry only one
/// of them has, or the first field that differs. `None` when they agree.
fn level_differences<T: serde::Serialize>(
    level: &[T],
    full: &[T],
    key: impl Fn(&T) -> String,
) -> Option<String> {
    if level.len() != full.len() {
        return Some(format!(
            "lists {} entries but full_meta.json has {}",
            level.len(),
            full.len()
        ));
    }
    let full_by_key: std::collections::HashMap<String, &T> =
        full.iter().map(|e| (key(e), e)).collect();
    // Keys that repeat (Milvus Lite gives every partition id 0) can't pair
    // entries: then they pair by position, the order both files are written in.
    let by_position = full_by_key.len() != full.len();
    for (i, entry) in level.iter().enumerate() {
        let k = key(entry);
        let other = if by_position {
            full.get(i)
        } else {
            full_by_key.get(&k).copied()
        };
        let Some(other) = other else {
            return Some(format!("lists {k}, which full_meta.json does not have"));
        };
        let (a, b) = (
            serde_json::to_value(entry).ok()?,
            serde_json::to_value(other).ok()?,
        );
        if let Some(path) = first_difference(&a, &b, "") {
            return Some(format!(
                "disagrees with full_meta.json on {k}: `{path}` is {} here but {} there",
                short(lookup(&a, &path)),
                short(lookup(&b, &path))
            ));
        }
    }
    None
}

/// The path (`schema.fields[1].type_params[0].value`) of the first value
/// where `a` and `b` differ.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(va), Some(vb)) => first_difference(va, vb, &join(k)),
                _ => Some(join(k)),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(va, vb, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(path.to_string()),
    }
}

/// The value at a path [`first_difference`] gave.
fn lookup<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indexes.split('[').filter(|i| !i.is_empty()) {
            cur = cur.get(idx.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(cur)
}

fn short(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "absent".into(),
        Some(v) => {
            let text = v.to_string();
            if text.chars().count() > 60 {
                format!("{}…", text.chars().take(60).collect::<String>())
            } else {
                text
            }
        }
    }
}

/// The file checks of one backup.
async fn check_files(
    storage: &Storage,
    name: &str,
    plan: &VerifyPlan,
    index: usize,
    events: &dyn EventSink,
) -> Result<VerifyReport> {
    let mut report = check_contents(storage, name, plan, index, events).await?;
    // Every meta file as it was written (checksums in summary.json); one
    // found damaged already is not reported twice.
    for (file, problem) in catalog::changed_meta_files(storage, name).await? {
        let path = format!("meta/{file}");
        if !report.problems.iter().any(|p| p.path == path) {
            report.problem(path, problem);
        }
    }
    Ok(report)
}

async fn check_contents(
    storage: &Storage,
    name: &str,
    plan: &VerifyPlan,
    index: usize,
    events: &dyn EventSink,
) -> Result<VerifyReport> {
    let deep = plan.deep;
    let mut report = VerifyReport {
        name: name.to_string(),
        deep,
        ..Default::default()
    };
    let meta = |f: &str| layout::backup_meta_file(name, f);
    let info = match read_meta::<crate::model::meta::BackupInfo>(storage, &meta(layout::FULL_META))
        .await?
    {
        Ok(Some(info)) => info,
        Ok(None) => {
            // Gone since the plan was made, or incomplete: say which.
            catalog::get(storage, name).await?;
            return Ok(report);
        }
        Err(reason) => {
            report.problem(format!("meta/{}", layout::FULL_META), reason);
            return Ok(report);
        }
    };

    let segments: Vec<&SegmentBackupInfo> = info
        .collection_backups
        .iter()
        .flat_map(|c| &c.partition_backups)
        .flat_map(|p| &p.segment_backups)
        .collect();
    check_levels(storage, name, &info, &mut report).await?;

    let manifest = match read_meta::<crate::model::meta::Manifest>(storage, &meta(layout::MANIFEST))
        .await?
    {
        Ok(Some(m)) => m,
        Ok(None) => {
            report.problem(
                format!("meta/{}", layout::MANIFEST),
                "missing: this backup has no checksums (made by another tool?); only the meta files were checked",
            );
            return Ok(report);
        }
        Err(reason) => {
            report.problem(format!("meta/{}", layout::MANIFEST), reason);
            return Ok(report);
        }
    };
    manifest_lists_every_binlog(&segments, &manifest, &mut report);

    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    events.phase(Phase::Checking {
        backup: name.to_string(),
        files: manifest.files.len() as u64,
        bytes: total,
        deep,
    });
    let checks = futures::stream::iter(manifest.files.iter().map(|f| {
        async move {
            // Shared files of an incremental backup live in another backup's folder.
            let key = layout::join(&layout::backup_dir(f.holder(name)), &f.path);
            let (found, hashed) = check_file(storage, &key, f, deep).await?;
            events.emit(Event::FileDone {
                collection: Some(index),
                bytes: if deep { f.size } else { 0 },
            });
            Ok::<_, Error>((f, found, hashed))
        }
    }))
    .buffer_unordered(plan.tuning.meta_parallelism)
    .collect::<Vec<_>>()
    .await;
    let mut hashes = Vec::new();
    for result in checks {
        let (f, found, hashed) = result?;
        hashes.extend(hashed);
        report.files += 1;
        report.bytes += f.size;
        if let Some(problem) = found {
            report.problem(&f.path, problem);
        }
    }
    report.problems.sort_by(|a, b| a.path.cmp(&b.path));
    report.hashed = deep_hash::store_sha256s(storage, name, &hashes).await? as u64;
    Ok(report)
}

/// The per-level meta files must describe the same tree as
/// `full_meta.json`: each difference, missing or damaged file is a problem.
async fn check_levels(
    storage: &Storage,
    name: &str,
    info: &crate::model::meta::BackupInfo,
    report: &mut VerifyReport,
) -> Result<()> {
    let meta = |f: &str| layout::backup_meta_file(name, f);
    let full_segs: Vec<SegmentBackupInfo> = info
        .collection_backups
        .iter()
        .flat_map(|c| &c.partition_backups)
        .flat_map(|p| p.segment_backups.iter().cloned())
        .collect();
    let strip_coll = |c: &CollectionBackupInfo| CollectionBackupInfo {
        partition_backups: Vec::new(),
        ..c.clone()
    };
    let strip_part = |p: &PartitionBackupInfo| PartitionBackupInfo {
        segment_backups: Vec::new(),
        ..p.clone()
    };
    let full_colls: Vec<CollectionBackupInfo> =
        info.collection_backups.iter().map(strip_coll).collect();
    let full_parts: Vec<PartitionBackupInfo> = info
        .collection_backups
        .iter()
        .flat_map(|c| &c.partition_backups)
        .map(strip_part)
        .collect();
    let coll_key =
        |c: &CollectionBackupInfo| format!("collection {}.{}", c.db_name, c.collection_name);
    let part_key = |p: &PartitionBackupInfo| {
        format!(
            "partition {} ({}) of collection {}",
            p.partition_name, p.partition_id, p.collection_id
        )
    };
    let seg_key = |s: &SegmentBackupInfo| format!("segment {}", s.segment_id);
    let levels = [
        (
            layout::COLLECTION_META,
            read_meta::<Infos<CollectionBackupInfo>>(storage, &meta(layout::COLLECTION_META))
                .await?
                .map(|v| {
                    v.map(|i| {
                        let level: Vec<_> = i.infos.iter().map(strip_coll).collect();
                        level_differences(&level, &full_colls, coll_key)
                    })
                }),
        ),
        (
            layout::PARTITION_META,
            read_meta::<Infos<PartitionBackupInfo>>(storage, &meta(layout::PARTITION_META))
                .await?
                .map(|v| {
                    v.map(|i| {
                        let level: Vec<_> = i.infos.iter().map(strip_part).collect();
                        level_differences(&level, &full_parts, part_key)
                    })
                }),
        ),
        (
            layout::SEGMENT_META,
            read_meta::<Infos<SegmentBackupInfo>>(storage, &meta(layout::SEGMENT_META))
                .await?
                .map(|v| v.map(|i| level_differences(&i.infos, &full_segs, seg_key))),
        ),
    ];
    for (file, found) in levels {
        match found {
            Ok(None) => report.problem(format!("meta/{file}"), "missing"),
            Err(reason) => report.problem(format!("meta/{file}"), reason),
            Ok(Some(Some(difference))) => report.problem(format!("meta/{file}"), difference),
            Ok(Some(None)) => {}
        }
    }
    Ok(())
}

/// Every binlog the segments name must be in the manifest.
fn manifest_lists_every_binlog(
    segments: &[&SegmentBackupInfo],
    manifest: &crate::model::meta::Manifest,
    report: &mut VerifyReport,
) {
    let sources: HashSet<&str> = manifest.files.iter().map(|f| f.source.as_str()).collect();
    for seg in segments {
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
}

/// One file of the manifest: what is wrong with it (`None`: nothing), and
/// with `deep` the SHA-256 read from a server-side copy that had none.
async fn check_file(
    storage: &Storage,
    key: &str,
    f: &crate::model::meta::ManifestFile,
    deep: bool,
) -> Result<(Option<String>, Option<(String, String)>)> {
    let mut hashed = None;
    let found = if deep && deep_hash::lacks_sha256(f) {
        // A server-side copy without a SHA-256: read it, check it
        // against the copy's ETag, and keep its SHA-256.
        match deep_hash::hash_file(storage, key, f).await {
            Ok(Ok(sha)) => {
                hashed = Some((f.path.clone(), sha));
                None
            }
            Ok(Err(damage)) => Some(damage),
            Err(e) if e.kind() == ErrorKind::NotFound => Some("missing".to_string()),
            Err(e) => return Err(e),
        }
    } else if deep {
        // Reads every byte: checksum as stored, then decrypts and
        // decompresses where the file is encoded.
        match crate::storage::encoded::decode_copy(storage, key, &f.expected(), None).await {
            Ok(Ok(_)) => None,
            Ok(Err(damage)) => Some(damage),
            Err(e) if e.kind() == ErrorKind::NotFound => Some("missing".to_string()),
            Err(e) => return Err(e),
        }
    } else {
        match storage.stat_object(key).await? {
            None => Some("missing".to_string()),
            Some(o) if o.size != f.size => {
                Some(format!("size {}, manifest says {}", o.size, f.size))
            }
            Some(o) => deep_hash::etag_problem(f, o.etag.as_deref()),
        }
    };
    Ok((found, hashed))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Collect;
    use crate::testkit::Kit;

    async fn kit_with_backup(name: &str) -> Kit {
        let kit = Kit::new();
        kit.milvus.add_collection("docs", &[10, 20], 1, 500).await;
        kit.create_backup(name).await;
        kit
    }

    async fn verify_one(kit: &Kit, name: &str, deep: bool) -> Result<VerifyReport> {
        let opts = VerifyOptions {
            backups: vec![name.into()],
            deep,
            ..Default::default()
        };
        let mut reports = verify(
            &kit.ctx,
            &opts,
            &Collect::default(),
            &CancellationToken::new(),
        )
        .await?;
        Ok(reports.remove(0))
    }

    /// Cuts a stored file in half.
    async fn truncate(kit: &Kit, key: &str) {
        let bytes = kit.ctx.backup_storage.read(key).await.unwrap();
        kit.ctx
            .backup_storage
            .write(key, bytes[..bytes.len() / 2].to_vec())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_good_backup_passes_plain_and_deep() {
        let kit = kit_with_backup("b1").await;
        for deep in [false, true] {
            let r = verify_one(&kit, "b1", deep).await.unwrap();
            assert!(r.ok(), "{:?}", r.problems);
            assert_eq!(r.files, 6);
            assert_eq!(r.findings(), Findings::default());
        }
    }

    #[tokio::test]
    async fn truncated_meta_files_are_damage_not_errors() {
        for file in [layout::FULL_META, layout::MANIFEST, layout::SEGMENT_META] {
            let kit = kit_with_backup("b1").await;
            truncate(&kit, &layout::backup_meta_file("b1", file)).await;
            let r = verify_one(&kit, "b1", false).await.unwrap();
            assert_eq!(r.problems.len(), 1, "{file}: {:?}", r.problems);
            assert_eq!(r.problems[0].path, format!("meta/{file}"));
            assert_eq!((r.findings().metadata, r.findings().files), (1, 0));
            assert!(
                r.problems[0]
                    .problem
                    .contains("not a valid backup meta file"),
                "{:?}",
                r.problems
            );
            if file != layout::SEGMENT_META {
                // Reading it for anything else is Corrupt (exit 9), never Remote.
                let e = match file {
                    layout::FULL_META => catalog::get(&kit.ctx.backup_storage, "b1").await.err(),
                    _ => catalog::manifest(&kit.ctx.backup_storage, "b1").await.err(),
                }
                .unwrap();
                assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
            }
        }
    }

    #[tokio::test]
    async fn every_verdict_is_recorded_and_a_damaged_backup_lists_as_damaged() {
        let kit = kit_with_backup("b1").await;
        let storage = &kit.ctx.backup_storage;
        let verdict = || async {
            let rows = catalog::list_with_verdicts(storage).await.unwrap();
            let (row, v) = rows.into_iter().next().unwrap();
            let v = v.expect("a recorded verdict");
            (row.state_verified(Some(&v)), v)
        };
        assert!(verify_one(&kit, "b1", false).await.unwrap().ok());
        let (state, v) = verdict().await;
        assert!(v.verified_ok && !v.deep && v.problems.is_empty(), "{v:?}");
        assert_eq!(state, BackupState::Complete);
        // A data file cut short: found, and `list` shows the backup damaged.
        let manifest = catalog::manifest(storage, "b1").await.unwrap().unwrap();
        let file = &manifest.files[0].path;
        truncate(&kit, &layout::join(&layout::backup_dir("b1"), file)).await;
        assert!(!verify_one(&kit, "b1", true).await.unwrap().ok());
        let (state, v) = verdict().await;
        assert!(!v.verified_ok && v.deep, "{v:?}");
        assert!(
            v.problems.iter().any(|p| p.starts_with(file.as_str())),
            "{v:?}"
        );
        assert_eq!(state, BackupState::Damaged);
        assert_eq!(
            v.fingerprint,
            verification::fingerprint(storage, "b1").await.unwrap()
        );
    }

    #[tokio::test]
    async fn verify_all_includes_damaged_backups_and_list_then_shows_them() {
        let none = CancellationToken::new();
        for named in [false, true] {
            let kit = kit_with_backup("b1").await;
            // Damage done behind the catalog index: `list` may still show
            // the indexed row; verify reads the backup itself.
            for key in [layout::SUMMARY, layout::FULL_META] {
                truncate(&kit, &layout::backup_meta_file("b1", key)).await;
            }
            let opts = VerifyOptions {
                backups: if named { vec!["b1".into()] } else { vec![] },
                ..Default::default()
            };
            let reports = verify(&kit.ctx, &opts, &Collect::default(), &none)
                .await
                .unwrap();
            assert_eq!(reports.len(), 1);
            assert!(!reports[0].ok());
            let rows = catalog::list(&kit.ctx.backup_storage).await.unwrap();
            assert_eq!(rows[0].state, BackupState::Damaged, "named: {named}");
        }
    }

    #[tokio::test]
    async fn verify_all_reports_an_incomplete_backup_beside_the_good_ones() {
        let kit = kit_with_backup("b1").await;
        kit.ctx
            .backup_storage
            .write("half/binlogs/insert_log/1/2/3/3/100/1", vec![1])
            .await
            .unwrap();
        let reports = verify(
            &kit.ctx,
            &VerifyOptions::default(),
            &Collect::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b1", "half"]);
        assert!(reports[0].ok());
        assert!(!reports[1].ok());
        assert!(reports[1].problems[0].problem.contains("incomplete"));
    }

    #[tokio::test]
    async fn a_valid_json_edit_of_a_meta_file_is_found() {
        let kit = kit_with_backup("b1").await;
        let key = layout::backup_meta_file("b1", layout::COLLECTION_META);
        let text = String::from_utf8(kit.ctx.backup_storage.read(&key).await.unwrap()).unwrap();
        let edited = text
            .replacen("\"dim\"", "\"dim\" ", 1)
            .replacen("\n", "\n ", 1);
        assert_ne!(edited, text);
        kit.ctx
            .backup_storage
            .write(&key, edited.into_bytes())
            .await
            .unwrap();
        let r = verify_one(&kit, "b1", false).await.unwrap();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(r.problems[0].path, "meta/collection_meta.json");
        assert!(r.problems[0]
            .problem
            .contains("changed since the backup was made"));
    }

    /// A Go-made backup has no checksums: an edited field of
    /// full_meta.json is found because the per-level files disagree.
    #[tokio::test]
    async fn an_edited_field_without_checksums_is_found_across_meta_files() {
        let kit = kit_with_backup("b1").await;
        let st = &kit.ctx.backup_storage;
        for file in [layout::MANIFEST, layout::SUMMARY] {
            st.delete(&layout::backup_meta_file("b1", file))
                .await
                .unwrap();
        }
        let r = verify_one(&kit, "b1", false).await.unwrap();
        assert!(
            r.problems.iter().all(|p| p.path == "meta/manifest.json"),
            "an unedited backup without checksums agrees with itself: {:?}",
            r.problems
        );
        let key = layout::backup_meta_file("b1", layout::FULL_META);
        let mut full: serde_json::Value =
            serde_json::from_slice(&st.read(&key).await.unwrap()).unwrap();
        let dim = &mut full["collection_backups"][0]["schema"]["fields"][1]["type_params"][0];
        assert_eq!(dim["key"], "dim");
        assert_eq!(dim["value"], "4");
        dim["value"] = "5".into();
        st.write(&key, serde_json::to_vec_pretty(&full).unwrap())
            .await
            .unwrap();
        let r = verify_one(&kit, "b1", false).await.unwrap();
        let p = r
            .problems
            .iter()
            .find(|p| p.path == "meta/collection_meta.json")
            .unwrap_or_else(|| panic!("{:?}", r.problems));
        assert!(
            p.problem
                .contains("schema.fields[1].type_params[0].value` is \"4\" here but \"5\" there"),
            "{}",
            p.problem
        );
        assert!(!r.ok());
    }

    #[test]
    fn level_differences_name_counts_entries_and_fields() {
        let seg = |id: i64, rows: i64| SegmentBackupInfo {
            segment_id: id,
            num_of_rows: rows,
            ..Default::default()
        };
        let key = |s: &SegmentBackupInfo| format!("segment {}", s.segment_id);
        let full = vec![seg(1, 10), seg(2, 20)];
        assert_eq!(level_differences(&full.clone(), &full, key), None);
        assert_eq!(
            level_differences(&[seg(1, 10)], &full, key).unwrap(),
            "lists 1 entries but full_meta.json has 2"
        );
        assert_eq!(
            level_differences(&[seg(1, 10), seg(3, 20)], &full, key).unwrap(),
            "lists segment 3, which full_meta.json does not have"
        );
        assert_eq!(
            level_differences(&[seg(2, 20), seg(1, 11)], &full, key).unwrap(),
            "disagrees with full_meta.json on segment 1: `num_of_rows` is 11 here but 10 there"
        );
    }

    #[tokio::test]
    async fn a_flipped_byte_is_found_by_deep_only() {
        let kit = kit_with_backup("b1").await;
        let m = catalog::manifest(&kit.ctx.backup_storage, "b1")
            .await
            .unwrap()
            .unwrap();
        let key = layout::join(&layout::backup_dir("b1"), &m.files[0].path);
        let mut bytes = kit.ctx.backup_storage.read(&key).await.unwrap();
        bytes[3] ^= 1;
        kit.ctx.backup_storage.write(&key, bytes).await.unwrap();
        assert!(verify_one(&kit, "b1", false).await.unwrap().ok());
        let r = verify_one(&kit, "b1", true).await.unwrap();
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.problems[0].path, m.files[0].path);
        let f = r.findings();
        assert_eq!((f.metadata, f.files, f.restore_test), (0, 1, None));
    }

    #[tokio::test]
    async fn a_flipped_byte_in_a_compressed_file_is_a_problem_not_an_error() {
        let kit = Kit::new();
        kit.milvus.add_collection("docs", &[10], 1, 20_000).await;
        let opts = crate::ops::backup::BackupOptions {
            name: Some("z1".into()),
            compress: Some("zstd".into()),
            ..Default::default()
        };
        crate::ops::backup::create(
            &kit.ctx,
            &opts,
            &Collect::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let m = catalog::manifest(&kit.ctx.backup_storage, "z1")
            .await
            .unwrap()
            .unwrap();
        let f = m.files.iter().max_by_key(|f| f.size).unwrap();
        let key = layout::join(&layout::backup_dir("z1"), &f.path);
        let mut bytes = kit.ctx.backup_storage.read(&key).await.unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x10;
        kit.ctx.backup_storage.write(&key, bytes).await.unwrap();
        let r = verify_one(&kit, "z1", true).await.unwrap();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(r.problems[0].path, f.path);
    }

    #[tokio::test]
    async fn unknown_and_incomplete_backups_are_refused_by_the_plan() {
        let kit = kit_with_backup("b1").await;
        let e = verify_one(&kit, "nope", false).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        kit.ctx
            .backup_storage
            .delete(&layout::backup_meta_file("b1", layout::FULL_META))
            .await
            .unwrap();
        let e = verify_one(&kit, "b1", false).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        let e = verify_one(&kit, "", false).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
