//! What a collection's backup copies: its flushed segments, their insert
//! and delta logs (one listing of Milvus storage per collection), the
//! segment meta the backup records for them, and which files the base
//! already holds. Not here: copying them ([`super::copy`]).

use std::collections::{BTreeMap, HashMap};

use super::incremental::{share, BaseIndex};
use super::plan::{BackupPlan, CollectionPlan, FileCopy};
use crate::context::Context;
use crate::error::{Error, Result, ResultExt};
use crate::milvus::proto::milvus::PersistentSegmentInfo;
use crate::milvus::{segment_state, Milvus};
use crate::model::layout;
use crate::model::meta::{Binlog, FieldBinlog, SegmentBackupInfo};
use crate::storage::ObjectInfo;

/// Lists the collection's flushed segments and their files into `c`,
/// marking the files its base already holds.
pub(super) async fn list_segments(
    ctx: &Context,
    client: &dyn Milvus,
    plan: &BackupPlan,
    c: &mut CollectionPlan,
) -> Result<()> {
    let root = ctx.milvus_storage.spec().root.trim_matches('/').to_string();
    let coll = &c.source;
    let segments: Vec<_> = client
        .persistent_segments(&coll.db, &coll.name)
        .await?
        .into_iter()
        .filter(|s| s.state == segment_state::FLUSHED)
        .collect();
    let mut files = Vec::new();
    let mut by_partition: BTreeMap<i64, Vec<SegmentBackupInfo>> = BTreeMap::new();
    if !plan.meta_only && !segments.is_empty() {
        // One listing per collection (not per segment), grouped by segment.
        let listed = CollectionListing::read(ctx, segments[0].collection_id).await?;
        for seg in &segments {
            let (sinfo, seg_files) =
                segment_files(&listed, &root, &plan.name, seg).at("segment", seg.segment_id)?;
            files.extend(seg_files);
            by_partition
                .entry(seg.partition_id)
                .or_default()
                .push(sinfo);
        }
    }
    for part in &mut c.meta.partition_backups {
        part.segment_backups = by_partition.remove(&part.partition_id).unwrap_or_default();
        part.size = part.segment_backups.iter().map(|s| s.size).sum();
    }
    if !by_partition.is_empty() {
        let ids: Vec<String> = by_partition.keys().map(i64::to_string).collect();
        return Err(Error::remote(format!(
            "collection {coll}: segments belong to partitions {} that ShowPartitions did not list — retry the backup",
            ids.join(", ")
        )));
    }
    c.meta.size = c.meta.partition_backups.iter().map(|p| p.size).sum();
    c.segments = if plan.meta_only { 0 } else { segments.len() };
    if let (Some(base), Some(manifest)) = (&plan.base_backup, &plan.base_manifest) {
        let index = BaseIndex::new(manifest);
        for f in &mut files {
            f.shared_with = share(&plan.encoder, base, &index, f).map(|_| base.clone());
        }
    }
    c.files = files;
    Ok(())
}

/// A collection's insert and delta logs from one listing each, by segment
/// folder (`insert_log/c/p/s/`).
struct CollectionListing {
    by_dir: HashMap<String, Vec<ObjectInfo>>,
}

impl CollectionListing {
    async fn read(ctx: &Context, collection: i64) -> Result<CollectionListing> {
        let (insert_dir, delta_dir) = (
            format!("insert_log/{collection}/"),
            format!("delta_log/{collection}/"),
        );
        let (inserts, deltas) = futures::try_join!(
            ctx.milvus_storage.list(&insert_dir),
            ctx.milvus_storage.list(&delta_dir),
        )?;
        let mut by_dir: HashMap<String, Vec<ObjectInfo>> = HashMap::new();
        for obj in inserts.into_iter().chain(deltas) {
            // `kind/c/p/s/` is the first four segments of the key.
            let dir_len = obj
                .key
                .match_indices('/')
                .nth(3)
                .map(|(i, _)| i + 1)
                .unwrap_or(0);
            if dir_len > 0 {
                by_dir
                    .entry(obj.key[..dir_len].to_string())
                    .or_default()
                    .push(obj);
            }
        }
        Ok(CollectionListing { by_dir })
    }

    fn under(&self, dir: &str) -> &[ObjectInfo] {
        self.by_dir.get(dir).map(Vec::as_slice).unwrap_or_default()
    }
}

/// One segment's keys: where its logs are in Milvus storage and where
/// they go in the backup.
struct SegmentKeys<'a> {
    /// Milvus storage's root, without slashes.
    root: &'a str,
    /// The backup's name and folder.
    name: &'a str,
    backup_dir: String,
    /// Collection, partition, segment.
    c: i64,
    p: i64,
    s: i64,
}

impl SegmentKeys<'_> {
    /// A key as Milvus records it: with its storage's root.
    fn logical(&self, key: &str) -> String {
        if self.root.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.root)
        }
    }

    /// The copy of `obj`, `rest` of its key under `target_dir`.
    fn copy(&self, obj: &ObjectInfo, target_dir: &str, rest: &str) -> FileCopy {
        let target = layout::join(target_dir, rest);
        FileCopy {
            source: obj.key.clone(),
            target: target[self.backup_dir.len()..].to_string(),
            size: obj.size,
            etag: obj.etag.clone(),
            shared_with: None,
        }
    }

    /// The meta's record of a log file.
    fn binlog(&self, obj: &ObjectInfo) -> Binlog {
        Binlog {
            log_path: self.logical(&obj.key),
            log_size: obj.size as i64,
            log_id: obj
                .key
                .rsplit('/')
                .next()
                .and_then(|l| l.parse::<i64>().ok())
                .unwrap_or(0),
            ..Default::default()
        }
    }
}

/// Plans the copies of a segment's insert and delta logs.
fn segment_files(
    listed: &CollectionListing,
    root: &str,
    name: &str,
    seg: &PersistentSegmentInfo,
) -> Result<(SegmentBackupInfo, Vec<FileCopy>)> {
    let (c, p, s) = (seg.collection_id, seg.partition_id, seg.segment_id);
    let keys = SegmentKeys {
        root,
        name,
        backup_dir: layout::backup_dir(name),
        c,
        p,
        s,
    };
    let insert_dir = layout::milvus_insert_log_dir(c, p, s);
    let inserts = listed.under(&insert_dir);
    let deltas = listed.under(&layout::milvus_delta_log_dir(c, p, s));
    let mut files = Vec::new();
    let fields = insert_logs(&keys, &insert_dir, inserts, &mut files)?;
    check_fields(seg, &fields, &insert_dir)?;
    let delta_logs = delta_logs(&keys, deltas, &mut files);
    let size: u64 = inserts.iter().chain(deltas.iter()).map(|o| o.size).sum();
    let info = SegmentBackupInfo {
        segment_id: s,
        collection_id: c,
        partition_id: p,
        num_of_rows: seg.num_rows,
        binlogs: fields
            .into_iter()
            .map(|(field_id, binlogs)| FieldBinlog { field_id, binlogs })
            .collect(),
        deltalogs: if delta_logs.is_empty() {
            Vec::new()
        } else {
            vec![FieldBinlog {
                field_id: 0,
                binlogs: delta_logs,
            }]
        },
        statslogs: Vec::new(),
        size: size as i64,
        backuped: true,
        group_id: s,
        is_l0: seg.level == 1,
    };
    Ok((info, files))
}

/// The copies of a segment's insert logs into `files`, and their records
/// by field.
fn insert_logs(
    keys: &SegmentKeys,
    insert_dir: &str,
    inserts: &[ObjectInfo],
    files: &mut Vec<FileCopy>,
) -> Result<BTreeMap<i64, Vec<Binlog>>> {
    let target_dir = layout::backup_insert_log_dir(keys.name, keys.c, keys.p, keys.s);
    let mut fields: BTreeMap<i64, Vec<Binlog>> = BTreeMap::new();
    for obj in inserts {
        let rest = &obj.key[insert_dir.len()..];
        let Some((field, _)) = rest.split_once('/') else {
            continue;
        };
        let field: i64 = field.parse().map_err(|_| {
            Error::remote(format!(
                "unexpected object `{}` in segment {}'s insert logs",
                obj.key, keys.s
            ))
        })?;
        files.push(keys.copy(obj, &target_dir, rest));
        fields.entry(field).or_default().push(keys.binlog(obj));
    }
    Ok(fields)
}

/// A segment with rows has insert logs, as many for each field.
fn check_fields(
    seg: &PersistentSegmentInfo,
    fields: &BTreeMap<i64, Vec<Binlog>>,
    insert_dir: &str,
) -> Result<()> {
    let (c, s) = (seg.collection_id, seg.segment_id);
    if seg.num_rows > 0 && fields.is_empty() && seg.level != 1 {
        return Err(Error::remote(format!(
            "segment {s} of collection {c} has {} rows but no insert logs under `{insert_dir}` — check minio.rootPath matches Milvus's",
            seg.num_rows
        )));
    }
    let counts: Vec<(i64, usize)> = fields.iter().map(|(f, l)| (*f, l.len())).collect();
    if let Some(max) = counts.iter().map(|(_, n)| *n).max() {
        if let Some((field, n)) = counts.iter().find(|(_, n)| *n != max) {
            return Err(Error::remote(format!(
                "segment {s} of collection {c}: field {field} has {n} insert log(s) but other fields have {max} — orphaned or missing binlogs; compact or repair the collection before backing it up"
            )));
        }
    }
    Ok(())
}

/// The copies of a segment's delta logs into `files`, and their records.
fn delta_logs(keys: &SegmentKeys, deltas: &[ObjectInfo], files: &mut Vec<FileCopy>) -> Vec<Binlog> {
    let delta_dir = layout::milvus_delta_log_dir(keys.c, keys.p, keys.s);
    let target_dir = layout::backup_delta_log_dir(keys.name, keys.c, keys.p, keys.s);
    let mut logs = Vec::new();
    for obj in deltas {
        files.push(keys.copy(obj, &target_dir, &obj.key[delta_dir.len()..]));
        logs.push(keys.binlog(obj));
    }
    logs
}
