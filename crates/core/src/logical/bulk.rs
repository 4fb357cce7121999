//! `restore --import-mode bulk` of a logical backup: instead of inserting
//! rows over gRPC, each data file is staged into the target Milvus's own
//! storage (under the restore's staging folder, which holds a lease while
//! it runs and is removed afterwards, success or not) and Milvus's
//! `Import` reads it, one import job per file (so per partition), with
//! `backup.parallelism.importJob` jobs in flight.
//!
//! What the servers take (tried on the real ones): Milvus 2.2.16 imports
//! row-based JSON (`{"rows": [...]}`) and NumPy only; 2.3.5 also Parquet,
//! but only with vectors as variable-size lists and without
//! BYTE_STREAM_SPLIT — it refuses the backup's fixed-size-list vector
//! columns ("field schema is not match ... fixed_size_list") and misreads
//! BYTE_STREAM_SPLIT floats ("row count mismatch"). Both take the
//! row-based JSON this module writes, so every file is converted while it
//! is staged: read batch by batch (bounded memory) and written as
//! `{"rows": [...]}` with the fields by name, JSON fields and `$meta` as
//! JSON values. An autoID collection's primary keys are left out (Milvus's
//! import refuses them there): new keys are generated, as by inserts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{AsyncWriteExt, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::catalog::{self, RowsRestored};
use super::columns;
use super::fields::{fields_of, Field, Kind};
use super::files::{self, Format, Location, ReadSpec};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::format::BackupInfo;
use crate::milvus::{proto, Milvus, Version};
use crate::restore::{CollectionTask, RestorePlan};
use crate::storage::layout;

/// How a logical backup's rows get into Milvus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportMode {
    /// Inserts over gRPC, in byte-sized batches (any server, no storage).
    #[default]
    Insert,
    /// Milvus's own import, from files staged into its storage.
    Bulk,
}

impl std::str::FromStr for ImportMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<ImportMode> {
        match s.trim() {
            "insert" | "" => Ok(ImportMode::Insert),
            "bulk" => Ok(ImportMode::Bulk),
            other => Err(Error::invalid_input(format!(
                "unknown import mode `{other}`: use insert or bulk"
            ))),
        }
    }
}

impl std::fmt::Display for ImportMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImportMode::Insert => "insert",
            ImportMode::Bulk => "bulk",
        })
    }
}

/// Why Milvus `v`'s import cannot read a field of this kind (as the
/// row-based JSON written here), if it cannot.
fn unreadable(kind: Kind, v: Version) -> Option<&'static str> {
    let before = |minor: u32| v.major == 2 && v.minor < minor;
    match kind {
        Kind::Float16Vector(_) | Kind::BFloat16Vector(_) | Kind::SparseFloatVector if before(4) => {
            Some("a vector type its import does not know")
        }
        Kind::Array(_) if before(3) => Some("an array, which its import does not know"),
        _ => None,
    }
}

/// Refuses `--import-mode bulk` where it cannot work, before anything is
/// created: a physical backup, no storage of Milvus's in the config, a
/// field the target's import cannot read.
pub(crate) fn check(
    ctx: &Context,
    client: &dyn Milvus,
    info: &BackupInfo,
    tasks: &[CollectionTask],
) -> Result<()> {
    if info.logical.is_none() {
        return Err(Error::invalid_input(format!(
            "--import-mode bulk applies to logical backups (parquet or json); `{}` is a binlog backup, which restore always imports with Milvus's import — drop --import-mode",
            info.name
        )));
    }
    if ctx.config.minio.no_milvus_storage {
        return Err(Error::invalid_input(
            "--import-mode bulk stages files into the target Milvus's own storage, and the config names none (no `minio:` section) — add the target's `minio:` settings (storageType, address, port, bucketName, rootPath, keys), or restore with --import-mode insert",
        ));
    }
    let Some(v) = client.version() else {
        return Ok(());
    };
    for t in tasks {
        for f in fields_of(&t.meta.schema)? {
            if let Some(why) = unreadable(f.kind, v) {
                return Err(Error::invalid_input(format!(
                    "--import-mode bulk: field `{}` of {} is {}, {why} in Milvus {} — restore it with --import-mode insert",
                    f.name,
                    t.source,
                    f.kind,
                    client.version_text()
                )));
            }
        }
    }
    Ok(())
}

/// Stages every data file of `task`'s collection into the target's
/// storage as row-based JSON and imports it with Milvus's `Import`
/// (several jobs in flight); each staged file is removed once its job ends.
pub(crate) async fn restore_rows(
    ctx: &Context,
    client: &dyn Milvus,
    plan: &RestorePlan,
    (index, task): (usize, &CollectionTask),
    events: &dyn EventSink,
) -> Result<RowsRestored> {
    let (backup, target) = (&plan.backup, &task.target);
    let logical = plan
        .logical
        .as_ref()
        .ok_or_else(|| Error::internal("a bulk restore of a physical backup"))?;
    let staging = plan
        .staging_dir
        .as_deref()
        .ok_or_else(|| Error::internal("a bulk restore without a staging folder"))?;
    let coll = catalog::collection_of(logical, backup, &task.source)?;
    let (fields, has_partition_key) = catalog::target_fields(client, target).await?;
    if !has_partition_key {
        catalog::create_missing_partitions(client, coll, target, events).await?;
    }
    let keys_regenerated = fields.iter().any(|f| f.is_primary && f.auto_id);
    if keys_regenerated {
        events.warn(format!(
            "{target} makes its own primary keys (autoID) and Milvus's import takes none for it: the backup's keys are not kept, new ones are generated"
        ));
    }
    events.phase(Phase::BulkImporting {
        collection: target.to_string(),
        files: coll.files.len(),
        bytes: coll.files.iter().map(|f| f.size).sum(),
    });
    let tmp = tempfile::tempdir()
        .map_err(|e| Error::internal(format!("making a temporary folder: {e}")))?;
    let local = Location::open(&ctx.config, &tmp.path().to_string_lossy())?;
    let dir = layout::backup_dir(backup);
    let rows = AtomicU64::new(0);
    let jobs = futures::stream::iter(coll.files.iter().enumerate().map(|(i, f)| {
        let (local, dir, rows, fields, tmp) = (&local, &dir, &rows, &fields, &tmp);
        async move {
            let partition = match has_partition_key {
                true => "",
                false => f.partition.as_str(),
            };
            let what = format!(
                "bulk import of `{}` into {target} (partition `{}`)",
                f.path,
                if partition.is_empty() {
                    "_default"
                } else {
                    partition
                }
            );
            catalog::fetch_file(ctx, backup, plan.manifest.as_ref(), dir, &f.path, local).await?;
            let key = layout::join(
                staging,
                &format!("{}/{}/{i:06}.json", target.db, target.name),
            );
            let format = Format::of_file(&f.path).unwrap_or(logical.format);
            let staged = stage_json_rows(
                ctx,
                tmp.path().join(&f.path),
                format,
                (fields, &f.path, target.to_string()),
                &key,
            )
            .await;
            let _ = local.storage.delete(&f.path).await;
            let imported = match staged {
                Ok(bytes) => {
                    events.emit(Event::FileStaged {
                        collection: index,
                        bytes,
                    });
                    import_file(
                        client,
                        target,
                        partition,
                        &ctx.milvus_storage.full_key(&key),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            // The folder is swept at the end anyway; this keeps it small.
            if !plan.tuning.keep_temp_files {
                let _ = ctx.milvus_storage.delete(&key).await;
            }
            let n = imported.map_err(|e| {
                Error::new(e.kind(), format!("{what} failed: {e}")).temporary(e.is_temporary())
            })?;
            if n != f.rows as i64 {
                return Err(Error::remote(format!(
                    "{what}: Milvus imported {n} rows, the file holds {}",
                    f.rows
                )));
            }
            rows.fetch_add(n as u64, Ordering::Relaxed);
            events.emit(Event::SegmentImported {
                collection: index,
                segment: i as i64,
                rows: n,
                bytes: f.size,
            });
            Ok::<(), Error>(())
        }
    }))
    .buffer_unordered(plan.tuning.import_parallelism.max(1))
    .try_collect::<Vec<()>>()
    .await;
    jobs?;
    Ok(RowsRestored {
        rows: rows.into_inner(),
        keys_regenerated,
    })
}

/// Starts one import job for `path` (a key in Milvus's storage) and waits
/// for it; the rows Milvus imported.
async fn import_file(
    client: &dyn Milvus,
    target: &crate::selection::CollectionRef,
    partition: &str,
    path: &str,
) -> Result<i64> {
    let ids = client
        .import(proto::milvus::ImportRequest {
            db_name: target.db.clone(),
            collection_name: target.name.clone(),
            partition_name: partition.to_string(),
            files: vec![path.to_string()],
            ..Default::default()
        })
        .await?;
    crate::restore::wait_imports(client, &ids).await
}

/// Writes local data file `path` to `key` in Milvus's storage as
/// row-based JSON (`{"rows": [...]}`), batch by batch; the bytes written.
/// `(fields, file, collection)`: the target's fields and, for messages,
/// the file's name and the collection.
async fn stage_json_rows(
    ctx: &Context,
    path: PathBuf,
    format: Format,
    (fields, file, collection): (&[Field], &str, String),
    key: &str,
) -> Result<u64> {
    let drop_auto_id = fields.iter().any(|f| f.is_primary && f.auto_id);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>>>(4);
    let reader = {
        let (fields, file) = (fields.to_vec(), file.to_string());
        tokio::task::spawn_blocking(move || {
            let spec = ReadSpec {
                fields: &fields,
                file: &file,
                collection: &collection,
                batch_bytes: 4 << 20,
                drop_auto_id,
            };
            let written: Vec<Field> = fields
                .iter()
                .filter(|f| !(drop_auto_id && f.is_primary))
                .cloned()
                .collect();
            let mut first = true;
            let read = files::read_file(&path, format, &spec, |(cols, n, _)| {
                if n == 0 {
                    return Ok(());
                }
                let mut lines = Vec::new();
                columns::write_json_lines(&written, &cols, &mut lines)?;
                // One object per line, no raw newline inside: the line
                // breaks become the array's commas.
                lines.pop();
                for b in lines.iter_mut().filter(|b| **b == b'\n') {
                    *b = b',';
                }
                let mut chunk = Vec::with_capacity(lines.len() + 10);
                chunk.extend_from_slice(if first { b"{\"rows\":[" } else { b"," });
                chunk.extend_from_slice(&lines);
                first = false;
                tx.blocking_send(Ok(chunk)).map_err(|_| Error::cancelled())
            });
            let last = match read {
                Ok(()) if first => Ok(b"{\"rows\":[]}".to_vec()),
                Ok(()) => Ok(b"]}".to_vec()),
                Err(e) => Err(e),
            };
            let _ = tx.blocking_send(last);
        })
    };
    let written = async {
        let mut w = ctx.milvus_storage.open_write(key).await?;
        let mut bytes = 0u64;
        let failed = |e: std::io::Error| {
            Error::remote(format!("staging `{key}` in Milvus's storage: {e}")).temporary(true)
        };
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            w.write_all(&chunk).await.map_err(failed)?;
        }
        w.close().await.map_err(failed)?;
        Ok(bytes)
    }
    .await;
    reader.abort();
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_modes_parse_and_old_servers_refuse_what_they_cannot_read() {
        assert_eq!("bulk".parse::<ImportMode>().unwrap(), ImportMode::Bulk);
        assert_eq!("insert".parse::<ImportMode>().unwrap(), ImportMode::Insert);
        assert!("copy".parse::<ImportMode>().is_err());
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(unreadable(Kind::Array(super::super::fields::Elem::Int64), v("v2.2.16")).is_some());
        assert!(unreadable(Kind::Array(super::super::fields::Elem::Int64), v("v2.3.5")).is_none());
        assert!(unreadable(Kind::Float16Vector(8), v("v2.3.5")).is_some());
        assert!(unreadable(Kind::Float16Vector(8), v("v2.4.1")).is_none());
        assert!(unreadable(Kind::FloatVector(8), v("v2.2.16")).is_none());
    }
}
