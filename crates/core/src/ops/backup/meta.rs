//! The meta files a backup ends with, in the order that makes it
//! complete: the row sample, the per-level files (segments, partitions,
//! collections), the manifest and the brief; then `full_meta.json`, the
//! completion mark; then our `summary.json` with every meta file's
//! SHA-256. Schemas and samples are sealed with the backup's key; the
//! brief, manifest and summary stay readable so backups can be listed and
//! checked without it. Not here: the data files ([`super::copy`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::rows::segment_rows;
use super::run::{BackupRun, BackupStats, Copied};
use crate::codec::key;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::model::layout;
use crate::model::meta::*;
use crate::ops::verify::sample::{CollectionSample, Sample};
use crate::repo::catalog;

/// Writes a meta file; sealed with `seal`'s key when given.
/// Returns the SHA-256 of the stored bytes, for `summary.json`.
async fn write_json<T: Serialize>(
    ctx: &Context,
    key: &str,
    value: &T,
    seal: Option<&key::Key>,
) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::internal(format!("encoding {key}: {e}")))?;
    let bytes = match seal {
        Some(k) => key::seal(&bytes, k),
        None => bytes,
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    ctx.backup_storage.write(key, bytes).await?;
    Ok(sha256)
}

/// Rows and files of a finished backup.
struct Counts {
    /// Live rows.
    entities: i64,
    deleted_entities: i64,
    size_bytes: u64,
    files: u64,
    /// Bytes this backup stored (resumed files too), not the base's.
    copied_bytes: u64,
}

impl BackupRun<'_> {
    /// Writes the sample and the meta files, `full_meta.json` (the
    /// completion mark) and then `summary.json` last.
    pub(super) async fn write_meta(
        &self,
        copied: Copied,
        samples: Vec<CollectionSample>,
    ) -> Result<BackupStats> {
        let (ctx, plan) = (self.ctx, &self.plan);
        let name = plan.name.as_str();
        let seal = plan.encoder.key.as_ref();
        // SHA-256 of every meta file as stored, kept in summary.json (written
        // last), so any later edit of one is found by verify and restore.
        let mut meta_sha256 = BTreeMap::new();
        if !samples.is_empty() {
            // Sampled rows are data: sealed like the binlogs.
            let key = layout::backup_meta_file(name, layout::SAMPLE);
            let sha = write_json(ctx, &key, &Sample::new(samples), seal).await?;
            meta_sha256.insert(layout::SAMPLE.to_string(), sha);
        }
        let info = self.final_info();
        let counts = self.counts(&info, &copied);
        let created_at = chrono::Utc::now().to_rfc3339();
        let Copied {
            files,
            shared_files,
            shared_bytes,
            resumed,
            ..
        } = copied;
        let manifest = self.manifest(created_at.clone(), files);
        // Before the manifest names them: the backups holding its files.
        crate::repo::refs::record(&ctx.backup_storage, name, manifest.referenced_backups()).await;
        self.write_levels(&info, &manifest, &mut meta_sha256)
            .await?;
        // The completion mark: nothing may be written before it that a reader
        // of a complete backup needs.
        let key = layout::backup_meta_file(name, layout::FULL_META);
        let sha = write_json(ctx, &key, &info, seal).await?;
        meta_sha256.insert(layout::FULL_META.to_string(), sha);
        let summary = self.summary(&info, &manifest, &counts, created_at, meta_sha256);
        let key = layout::backup_meta_file(name, layout::SUMMARY);
        write_json(ctx, &key, &summary, None).await?;
        crate::repo::catalog_index::added(
            &ctx.backup_storage,
            catalog::from_summary(name, &summary),
        )
        .await;
        Ok(BackupStats {
            name: name.to_string(),
            format: plan.format.clone(),
            collections: info.collection_backups.len(),
            entities: counts.entities,
            deleted_entities: counts.deleted_entities,
            unpersisted_deletes: manifest.unpersisted_deletes(),
            size_bytes: counts.size_bytes,
            copied_bytes: counts.copied_bytes,
            files: counts.files,
            shared_files,
            shared_bytes,
            base_backup: manifest.base_backup.clone(),
            duration_s: self.started.elapsed().as_secs_f64(),
            rbac: plan.rbac,
            resumed_files: resumed.len() as u64,
            resumed_bytes: resumed.iter().map(|f| f.size).sum(),
            left_out: info.left_out.clone(),
            ..Default::default()
        })
    }

    /// The backup's `full_meta.json`: the brief with the collections
    /// backed up (dropped ones left out) and its end time.
    fn final_info(&self) -> BackupInfo {
        let mut info = self.plan.info.clone();
        info.end_time = chrono::Utc::now().timestamp_millis();
        info.collection_backups = self
            .plan
            .collections
            .iter()
            .filter(|c| !c.dropped)
            .map(|c| c.meta.clone())
            .collect();
        info.size = info.collection_backups.iter().map(|c| c.size).sum();
        info
    }

    /// Live and deleted rows (the segments' rows where live ones were not
    /// counted), bytes and files.
    fn counts(&self, info: &BackupInfo, copied: &Copied) -> Counts {
        let inserted: i64 = info.collection_backups.iter().map(segment_rows).sum();
        let entities: i64 = info
            .collection_backups
            .iter()
            .zip(&self.live)
            .map(|(c, live)| live.unwrap_or_else(|| segment_rows(c)))
            .sum();
        Counts {
            entities,
            deleted_entities: (inserted - entities).max(0),
            size_bytes: copied.files.iter().map(|f| f.size).sum(),
            files: copied.files.len() as u64,
            copied_bytes: copied.copied_bytes,
        }
    }

    fn manifest(&self, created_at: String, files: Vec<ManifestFile>) -> Manifest {
        let encoder = &self.plan.encoder;
        Manifest {
            format_version: FORMAT_VERSION,
            tool: "milvus-backup-rs".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            backup_name: self.plan.name.clone(),
            created_at,
            compression: (!encoder.compression.is_none()).then_some(CompressionInfo {
                algorithm: encoder.compression,
                level: encoder.level,
            }),
            encryption: encoder.key.as_ref().map(|k| EncryptionInfo {
                scheme: "age-x25519".into(),
                recipient: k.recipient(),
            }),
            base_backup: self.plan.base_backup.clone(),
            files,
            row_checks: self
                .plan
                .collections
                .iter()
                .zip(&self.row_checks)
                .filter(|(c, _)| !c.dropped)
                .filter_map(|(_, check)| check.clone())
                .collect(),
        }
    }

    /// The per-level files, the manifest and the brief, at once; their
    /// SHA-256 into `meta_sha256`.
    async fn write_levels(
        &self,
        info: &BackupInfo,
        manifest: &Manifest,
        meta_sha256: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        let (ctx, seal) = (self.ctx, self.plan.encoder.key.as_ref());
        let (segments, partitions, collections) = levels(info);
        let brief = BackupInfo {
            collection_backups: Vec::new(),
            ..info.clone()
        };
        let files = [
            layout::SEGMENT_META,
            layout::PARTITION_META,
            layout::COLLECTION_META,
            layout::MANIFEST,
            layout::BACKUP_META,
        ];
        let keys = files.map(|f| layout::backup_meta_file(&self.plan.name, f));
        let shas = futures::try_join!(
            write_json(ctx, &keys[0], &segments, seal),
            write_json(ctx, &keys[1], &partitions, seal),
            write_json(ctx, &keys[2], &collections, seal),
            write_json(ctx, &keys[3], manifest, None),
            write_json(ctx, &keys[4], &brief, None),
        )?;
        let shas = [shas.0, shas.1, shas.2, shas.3, shas.4];
        for (file, sha) in files.iter().zip(shas) {
            meta_sha256.insert(file.to_string(), sha);
        }
        Ok(())
    }

    fn summary(
        &self,
        info: &BackupInfo,
        manifest: &Manifest,
        counts: &Counts,
        created_at: String,
        meta_sha256: BTreeMap<String, String>,
    ) -> Summary {
        Summary {
            format_version: FORMAT_VERSION,
            name: self.plan.name.clone(),
            id: info.id.clone(),
            created_at,
            backup_timestamp: info.backup_timestamp,
            milvus_version: info.milvus_version.clone(),
            collections: info
                .collection_backups
                .iter()
                .map(|c| format!("{}.{}", c.db_name, c.collection_name))
                .collect(),
            entities: counts.entities,
            deleted_entities: counts.deleted_entities,
            size_bytes: counts.size_bytes as i64,
            files: counts.files,
            copied_bytes: counts.copied_bytes as i64,
            base_backup: manifest.base_backup.clone(),
            compression: self.plan.encoder.compression,
            encrypted: self.plan.encoder.key.is_some(),
            data_format: info.logical.as_ref().map(|l| l.format.to_string()),
            unpersisted_deletes: manifest.unpersisted_deletes(),
            meta_sha256,
            left_out: info.left_out.clone(),
        }
    }
}

/// The backup's segments, partitions (without segments) and collections
/// (without partitions), as the per-level meta files hold them.
fn levels(
    info: &BackupInfo,
) -> (
    Infos<SegmentBackupInfo>,
    Infos<PartitionBackupInfo>,
    Infos<CollectionBackupInfo>,
) {
    let mut segments = Vec::new();
    let mut partitions = Vec::new();
    let mut collections = Vec::new();
    for c in &info.collection_backups {
        for p in &c.partition_backups {
            segments.extend(p.segment_backups.iter().cloned());
            partitions.push(PartitionBackupInfo {
                segment_backups: Vec::new(),
                ..p.clone()
            });
        }
        collections.push(CollectionBackupInfo {
            partition_backups: Vec::new(),
            ..c.clone()
        });
    }
    (
        Infos { infos: segments },
        Infos { infos: partitions },
        Infos { infos: collections },
    )
}
