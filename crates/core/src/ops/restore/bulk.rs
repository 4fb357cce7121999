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
//! BYTE_STREAM_SPLIT floats ("row count mismatch"). So every file is
//! converted while it is staged, read batch by batch (bounded memory):
//! for 2.3.4 and later 2.3 releases into Parquet as 2.3 reads it (vectors
//! as `list<float>`/`list<uint8>`, plain encodings, JSON and `$meta` as
//! strings); for every other server into row-based JSON (`{"rows":
//! [...]}`, fields by name, JSON fields and `$meta` as JSON values), which
//! 2.2 and 2.3 both import. An autoID collection's primary keys are left
//! out (Milvus's import refuses them there): new keys are generated, as by
//! inserts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, FixedSizeBinaryArray, FixedSizeListArray, ListArray, RecordBatch, UInt8Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType as ArrowType, Field as ArrowField, Schema as ArrowSchema};
use futures::{AsyncWriteExt, StreamExt, TryStreamExt};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::{proto, Milvus, Version};
use crate::model::layout;
use crate::model::meta::BackupInfo;
use crate::model::meta::Format;
use crate::ops::logical::columns;
use crate::ops::logical::fields::{fields_of, Field, Kind};
use crate::ops::logical::files::{self, Location, ReadSpec};
use crate::ops::logical::in_backup::{self, RowsRestored};
use crate::ops::restore::{CollectionTask, RestorePlan};

/// Encoded bytes of a staged Parquet row group: a few MiB, so that the
/// files staged at once stay within the memory bound.
const ROW_GROUP_BYTES: usize = 4 << 20;

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

/// What a file is staged as for the target's import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Staged {
    /// Row-based JSON, `{"rows": [...]}`: 2.2 and later.
    JsonRows,
    /// Parquet as Milvus 2.3's import reads it (2.3.4 added it).
    Parquet,
}

impl Staged {
    fn for_server(v: Option<Version>) -> Staged {
        match v {
            Some(v) if v.major == 2 && v.minor == 3 && v.patch >= 4 => Staged::Parquet,
            _ => Staged::JsonRows,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Staged::JsonRows => "json",
            Staged::Parquet => "parquet",
        }
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
/// storage (as Parquet or row-based JSON, see [`Staged`]) and imports it
/// with Milvus's `Import` (several jobs in flight); each staged file is
/// removed once its job ends.
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
    let coll = in_backup::collection_of(logical, backup, &task.source)?;
    let (fields, has_partition_key) = in_backup::target_fields(client, target).await?;
    if !has_partition_key {
        in_backup::create_missing_partitions(client, coll, target, events).await?;
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
    let staged_as = Staged::for_server(client.version());
    events.note(format!(
        "files are staged as {} for Milvus {}'s import",
        match staged_as {
            Staged::JsonRows => "row-based JSON",
            Staged::Parquet => "Parquet (vectors as lists)",
        },
        client.version_text()
    ));
    let tmp = tempfile::tempdir()
        .map_err(|e| Error::internal(format!("making a temporary folder: {e}")))?;
    let local = Location::open(ctx.backup_storage.spec(), &tmp.path().to_string_lossy())?;
    let dir = layout::backup_dir(backup);
    let rows = AtomicU64::new(0);
    // Imports run `importJob` at once, but only two files are fetched and
    // converted at a time: each holds buffers, an import holds none.
    let converting = &tokio::sync::Semaphore::new(2);
    let jobs = futures::stream::iter(coll.files.iter().enumerate().map(|(i, f)| {
        let (local, dir, rows, fields, tmp) = (&local, &dir, &rows, &fields, &tmp);
        async move {
            let permit = converting.acquire().await.expect("never closed");
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
            in_backup::fetch_file(ctx, backup, plan.manifest.as_ref(), dir, &f.path, local).await?;
            let key = layout::join(
                staging,
                &format!(
                    "{}/{}/{i:06}.{}",
                    target.db,
                    target.name,
                    staged_as.extension()
                ),
            );
            let format = Format::of_file(&f.path).unwrap_or(logical.format);
            let staged = stage_file(
                ctx,
                tmp.path().join(&f.path),
                (format, staged_as),
                (fields, &f.path, target.to_string()),
                &key,
            )
            .await;
            let _ = local.storage.delete(&f.path).await;
            drop(permit);
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
            let _ = ctx.milvus_storage.delete(&key).await;
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
    target: &crate::model::selection::CollectionRef,
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
    crate::ops::collection::wait_imports(client, &ids).await
}

/// Writes local data file `path` (in `format`) to `key` in Milvus's
/// storage as `staged_as`, batch by batch; the bytes written.
/// `(fields, file, collection)`: the target's fields and, for messages,
/// the file's name and the collection.
async fn stage_file(
    ctx: &Context,
    path: PathBuf,
    (format, staged_as): (Format, Staged),
    (fields, file, collection): (&[Field], &str, String),
    key: &str,
) -> Result<u64> {
    let drop_auto_id = fields.iter().any(|f| f.is_primary && f.auto_id);
    // One encoded chunk ahead of the upload: memory stays at a few MiB
    // per file staged, whatever the files' sizes.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>>>(1);
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
            if staged_as == Staged::Parquet {
                let mut out = match ParquetOut::new(&written) {
                    Ok(out) => out,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                let read = files::read_file(&path, format, &spec, |(cols, n, _)| {
                    if n == 0 {
                        return Ok(());
                    }
                    let chunk = out.write(columns::to_record_batch(&written, &cols)?)?;
                    tx.blocking_send(Ok(chunk)).map_err(|_| Error::cancelled())
                });
                let _ = tx.blocking_send(read.and_then(|()| out.finish()));
                return;
            }
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
        let mut w = ctx.milvus_storage.open_write_lean(key).await?;
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

/// A Parquet file as Milvus 2.3's import reads it, written batch by batch:
/// fixed-size vector columns become variable-size lists (float vectors
/// `list<float>`, binary vectors `list<uint8>`), no compression or
/// special encodings, row groups of about 16 MiB.
struct ParquetOut {
    writer: ArrowWriter<Vec<u8>>,
}

impl ParquetOut {
    fn new(fields: &[Field]) -> Result<ParquetOut> {
        let empty =
            RecordBatch::new_empty(Arc::new(crate::ops::logical::fields::arrow_schema(fields)));
        let schema = milvus_23_batch(empty)?.schema();
        let props = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .build();
        let writer =
            ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(parquet_error)?;
        Ok(ParquetOut { writer })
    }

    /// Appends a batch; the bytes ready to go out.
    fn write(&mut self, batch: RecordBatch) -> Result<Vec<u8>> {
        let w = &mut self.writer;
        w.write(&milvus_23_batch(batch)?).map_err(parquet_error)?;
        if w.in_progress_size() >= ROW_GROUP_BYTES {
            w.flush().map_err(parquet_error)?;
        }
        Ok(std::mem::take(w.inner_mut()))
    }

    /// The rest of the file (last row group, footer).
    fn finish(self) -> Result<Vec<u8>> {
        self.writer.into_inner().map_err(parquet_error)
    }
}

fn parquet_error(e: parquet::errors::ParquetError) -> Error {
    Error::internal(format!("writing Parquet for Milvus's import: {e}"))
}

/// `batch` with its fixed-size vector columns as variable-size lists.
fn milvus_23_batch(batch: RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        let lengths =
            |width: usize| OffsetBuffer::from_lengths(std::iter::repeat_n(width, c.len()));
        let (item, list) = match f.data_type() {
            ArrowType::FixedSizeList(item, dim) => {
                let a = c
                    .as_any()
                    .downcast_ref::<FixedSizeListArray>()
                    .ok_or_else(|| Error::internal("a vector column of another type"))?;
                let item = Arc::new(ArrowField::new("item", item.data_type().clone(), true));
                let values = a
                    .values()
                    .slice(a.offset() * *dim as usize, a.len() * *dim as usize);
                (
                    item.clone(),
                    ListArray::try_new(item, lengths(*dim as usize), values, a.nulls().cloned()),
                )
            }
            ArrowType::FixedSizeBinary(width) => {
                let a = c
                    .as_any()
                    .downcast_ref::<FixedSizeBinaryArray>()
                    .ok_or_else(|| Error::internal("a vector column of another type"))?;
                let item = Arc::new(ArrowField::new("item", ArrowType::UInt8, true));
                let values: ArrayRef = Arc::new(UInt8Array::from(a.value_data().to_vec()));
                (
                    item.clone(),
                    ListArray::try_new(item, lengths(*width as usize), values, a.nulls().cloned()),
                )
            }
            _ => {
                fields.push(f.as_ref().clone());
                columns.push(c.clone());
                continue;
            }
        };
        let list =
            list.map_err(|e| Error::internal(format!("vector column `{}`: {e}", f.name())))?;
        fields.push(ArrowField::new(
            f.name(),
            ArrowType::List(item),
            f.is_nullable(),
        ));
        columns.push(Arc::new(list));
    }
    RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), columns)
        .map_err(|e| Error::internal(format!("building a record batch: {e}")))
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
        assert!(unreadable(
            Kind::Array(crate::ops::logical::fields::Elem::Int64),
            v("v2.2.16")
        )
        .is_some());
        assert!(unreadable(
            Kind::Array(crate::ops::logical::fields::Elem::Int64),
            v("v2.3.5")
        )
        .is_none());
        assert!(unreadable(Kind::Float16Vector(8), v("v2.3.5")).is_some());
        assert!(unreadable(Kind::Float16Vector(8), v("v2.4.1")).is_none());
        assert!(unreadable(Kind::FloatVector(8), v("v2.2.16")).is_none());
        assert_eq!(Staged::for_server(Some(v("v2.3.5"))), Staged::Parquet);
        assert_eq!(Staged::for_server(Some(v("v2.3.3"))), Staged::JsonRows);
        assert_eq!(Staged::for_server(Some(v("v2.2.16"))), Staged::JsonRows);
    }

    #[test]
    fn vectors_become_variable_size_lists_for_milvus_2_3() {
        use crate::ops::logical::fields::Elem;
        let f = |name: &str, kind| Field {
            name: name.into(),
            kind,
            is_primary: false,
            auto_id: false,
            is_dynamic: false,
            nullable: false,
        };
        let fields = [
            f("v", Kind::FloatVector(2)),
            f("b", Kind::BinaryVector(16)),
            f("a", Kind::Array(Elem::Int64)),
        ];
        let schema = Arc::new(crate::ops::logical::fields::arrow_schema(&fields));
        let fl = FixedSizeListArray::try_new(
            Arc::new(ArrowField::new("item", ArrowType::Float32, false)),
            2,
            Arc::new(arrow_array::Float32Array::from(vec![1.0, 2.0, 3.0, 4.0])),
            None,
        )
        .unwrap();
        let bin = FixedSizeBinaryArray::try_from_iter([[1u8, 2], [3, 4]].into_iter()).unwrap();
        let arr = ListArray::from_iter_primitive::<arrow_array::types::Int64Type, _, _>([
            Some(vec![Some(1)]),
            Some(vec![]),
        ]);
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(fl), Arc::new(bin), Arc::new(arr)]).unwrap();
        let out = milvus_23_batch(batch).unwrap();
        let types: Vec<String> = out
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect();
        assert_eq!(
            types,
            ["List(Float32)", "List(UInt8)", "List(Int64)"],
            "{types:?}"
        );
        let v = out.column(0).as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(v.value_offsets(), &[0, 2, 4]);
        let b = out.column(1).as_any().downcast_ref::<ListArray>().unwrap();
        let bytes = b.values().as_any().downcast_ref::<UInt8Array>().unwrap();
        assert_eq!(bytes.values().as_ref(), &[1, 2, 3, 4]);
        let mut p = ParquetOut::new(&fields).unwrap();
        let mut file = p.write(out.slice(0, 2)).unwrap_or_default();
        // A batch already converted is converted again harmlessly.
        file.extend(p.finish().unwrap());
        assert!(file.starts_with(b"PAR1") && file.ends_with(b"PAR1"));
    }
}
