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

use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::proto::schema::FieldData;
use crate::milvus::{proto, Milvus, Version};
use crate::model::layout;
use crate::model::meta::{BackupInfo, CollectionBackupInfo, DataFile, Format, Manifest};
use crate::model::selection::CollectionRef;
use crate::ops::logical::columns;
use crate::ops::logical::fields::{fields_of, Field, Kind};
use crate::ops::logical::files::{self, Location, ReadSpec};
use crate::ops::logical::in_backup::{self, RowsRestored};
use crate::ops::logical::{LogicalBackup, LogicalCollection};
pub use crate::ops::restore::options::ImportMode;

/// Encoded bytes of a staged Parquet row group: a few MiB, so that the
/// files staged at once stay within the memory bound.
const ROW_GROUP_BYTES: usize = 4 << 20;

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
/// field the target's import cannot read (of the collections to restore,
/// with their schemas as they will be created).
pub(crate) fn check<'a>(
    ctx: &Context,
    client: &dyn Milvus,
    info: &BackupInfo,
    collections: impl IntoIterator<Item = &'a CollectionBackupInfo>,
) -> Result<()> {
    if info.logical.is_none() {
        return Err(Error::invalid_input(format!(
            "--import-mode bulk applies to logical backups (parquet or json); `{}` is a binlog backup, whose segments Milvus imports by default — drop --import-mode, or read its binlogs and insert the rows with --import-mode insert",
            info.name
        )));
    }
    if ctx.settings.no_milvus_storage {
        return Err(Error::invalid_input(
            "--import-mode bulk stages files into the target Milvus's own storage, and the config names none (no `minio:` section) — add the target's `minio:` settings (storageType, address, port, bucketName, rootPath, keys), or restore with --import-mode insert",
        ));
    }
    let Some(v) = client.version() else {
        return Ok(());
    };
    for c in collections {
        for f in fields_of(&c.schema)? {
            if let Some(why) = unreadable(f.kind, v) {
                return Err(Error::invalid_input(format!(
                    "--import-mode bulk: field `{}` of {}.{} is {}, {why} in Milvus {} — restore it with --import-mode insert",
                    f.name,
                    c.db_name,
                    c.collection_name,
                    f.kind,
                    client.version_text()
                )));
            }
        }
    }
    Ok(())
}

/// One collection's bulk restore, as a run hands it over.
pub(crate) struct BulkJob<'a> {
    pub ctx: &'a Context,
    pub client: &'a dyn Milvus,
    pub backup: &'a str,
    pub logical: &'a LogicalBackup,
    pub manifest: Option<&'a Manifest>,
    /// The plan's staging folder in Milvus's storage.
    pub staging: &'a str,
    /// Import jobs in flight.
    pub parallelism: usize,
    /// The collection's index in the plan (for events).
    pub index: usize,
    pub source: &'a CollectionRef,
    pub target: &'a CollectionRef,
    pub events: &'a dyn EventSink,
}

/// What every file of one collection's bulk restore shares.
struct Prepared {
    fields: Vec<Field>,
    has_partition_key: bool,
    staged_as: Staged,
    /// A temporary folder the files are fetched into.
    tmp: tempfile::TempDir,
    local: Location,
    /// Only two files are fetched and converted at a time.
    converting: tokio::sync::Semaphore,
}

impl BulkJob<'_> {
    /// Stages every data file of the collection into the target's storage
    /// (as Parquet or row-based JSON, see [`Staged`]) and imports it with
    /// Milvus's `Import` (several jobs in flight); each staged file is
    /// removed once its job ends.
    pub(crate) async fn run(&self) -> Result<RowsRestored> {
        let coll = in_backup::collection_of(self.logical, self.backup, self.source)?;
        let prepared = self.prepare(coll).await?;
        let rows = AtomicU64::new(0);
        futures::stream::iter(coll.files.iter().enumerate().map(|(i, f)| {
            let (prepared, rows) = (&prepared, &rows);
            async move {
                let n = self.restore_file(prepared, i, f).await?;
                rows.fetch_add(n, Ordering::Relaxed);
                Ok::<(), Error>(())
            }
        }))
        .buffer_unordered(self.parallelism.max(1))
        .try_collect::<Vec<()>>()
        .await?;
        Ok(RowsRestored {
            rows: rows.into_inner(),
            keys_regenerated: prepared.fields.iter().any(|f| f.is_primary && f.auto_id),
        })
    }

    /// Reads the target's fields, makes the partitions it lacks, says what
    /// the restore does, and makes the temporary folder files are fetched
    /// into.
    async fn prepare(&self, coll: &LogicalCollection) -> Result<Prepared> {
        let (client, target, events) = (self.client, self.target, self.events);
        let (fields, has_partition_key) = in_backup::target_fields(client, target).await?;
        if !has_partition_key {
            in_backup::create_missing_partitions(client, coll, target, events).await?;
        }
        let files = &coll.files;
        if fields.iter().any(|f| f.is_primary && f.auto_id) {
            events.warn(format!(
                "{target} makes its own primary keys (autoID) and Milvus's import takes none for it: the backup's keys are not kept, new ones are generated"
            ));
        }
        events.phase(Phase::BulkImporting {
            collection: target.to_string(),
            files: files.len(),
            bytes: files.iter().map(|f| f.size).sum(),
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
        let local = Location::open(
            self.ctx.backup_storage.spec(),
            &tmp.path().to_string_lossy(),
        )?;
        Ok(Prepared {
            fields,
            has_partition_key,
            staged_as,
            tmp,
            local,
            // Imports run `importJob` at once, but only two files are
            // fetched and converted at a time: each holds buffers, an
            // import holds none.
            converting: tokio::sync::Semaphore::new(2),
        })
    }

    /// Fetches, converts, stages and imports file `i`; the rows imported.
    async fn restore_file(&self, prepared: &Prepared, i: usize, f: &DataFile) -> Result<u64> {
        let (ctx, target) = (self.ctx, self.target);
        let partition = match prepared.has_partition_key {
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
        let key = layout::join(
            self.staging,
            &format!(
                "{}/{}/{i:06}.{}",
                target.db,
                target.name,
                prepared.staged_as.extension()
            ),
        );
        let staged = self.fetch_and_stage(prepared, f, &key).await;
        let imported = match staged {
            Ok(bytes) => {
                self.events.emit(Event::FileStaged {
                    collection: self.index,
                    bytes,
                });
                let path = ctx.milvus_storage.full_key(&key);
                import_file(self.client, target, partition, &path).await
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
        self.events.emit(Event::SegmentImported {
            collection: self.index,
            segment: i as i64,
            rows: n,
            bytes: f.size,
        });
        Ok(n as u64)
    }

    /// Fetches file `f` into the temporary folder (two at a time) and
    /// stages it at `key`, converted; the bytes staged.
    async fn fetch_and_stage(&self, prepared: &Prepared, f: &DataFile, key: &str) -> Result<u64> {
        let _permit = prepared.converting.acquire().await.expect("never closed");
        let (ctx, local) = (self.ctx, &prepared.local);
        in_backup::fetch_file(ctx, self.backup, self.manifest, &f.path, local).await?;
        let format = Format::of_file(&f.path).unwrap_or(self.logical.format);
        let staged = stage_file(
            ctx,
            prepared.tmp.path().join(&f.path),
            (format, prepared.staged_as),
            (&prepared.fields, &f.path, self.target.to_string()),
            key,
        )
        .await;
        let _ = local.storage.delete(&f.path).await;
        staged
    }
}

/// Starts one import job for `path` (a key in Milvus's storage) and waits
/// for it; the rows Milvus imported.
async fn import_file(
    client: &dyn Milvus,
    target: &CollectionRef,
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
    // One encoded chunk ahead of the upload: memory stays at a few MiB
    // per file staged, whatever the files' sizes.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>>>(1);
    let reader = {
        let (fields, file) = (fields.to_vec(), file.to_string());
        tokio::task::spawn_blocking(move || {
            let source = (path.as_path(), format);
            convert(source, staged_as, (&fields, &file, &collection), &tx)
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

/// Reads local data file `path` (in `format`) batch by batch and sends it
/// converted to `staged_as`, chunk by chunk, the last chunk or the error
/// ending it; blocking. An autoID primary key is left out.
fn convert(
    (path, format): (&std::path::Path, Format),
    staged_as: Staged,
    (fields, file, collection): (&[Field], &str, &str),
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>>>,
) {
    let drop_auto_id = fields.iter().any(|f| f.is_primary && f.auto_id);
    let spec = ReadSpec {
        fields,
        file,
        collection,
        batch_bytes: 4 << 20,
        drop_auto_id,
    };
    let written: Vec<Field> = fields
        .iter()
        .filter(|f| !(drop_auto_id && f.is_primary))
        .cloned()
        .collect();
    let send = |chunk: Result<Vec<u8>>| tx.blocking_send(chunk).map_err(|_| Error::cancelled());
    let last = match staged_as {
        Staged::Parquet => ParquetOut::new(&written).and_then(|mut out| {
            files::read_file(path, format, &spec, |(cols, n, _)| match n {
                0 => Ok(()),
                _ => send(Ok(out.write(columns::to_record_batch(&written, &cols)?)?)),
            })?;
            out.finish()
        }),
        Staged::JsonRows => {
            let mut first = true;
            files::read_file(path, format, &spec, |(cols, n, _)| match n {
                0 => Ok(()),
                _ => send(Ok(json_rows_chunk(
                    &written,
                    &cols,
                    std::mem::take(&mut first),
                )?)),
            })
            .map(|()| match first {
                true => b"{\"rows\":[]}".to_vec(),
                false => b"]}".to_vec(),
            })
        }
    };
    let _ = tx.blocking_send(last);
}

/// One batch of rows as a piece of `{"rows": [...]}`: the opening of the
/// array before the first batch, a comma before every other.
fn json_rows_chunk(written: &[Field], cols: &[FieldData], first: bool) -> Result<Vec<u8>> {
    let mut lines = Vec::new();
    columns::write_json_lines(written, cols, &mut lines)?;
    // One object per line, no raw newline inside: the line breaks become
    // the array's commas.
    lines.pop();
    for b in lines.iter_mut().filter(|b| **b == b'\n') {
        *b = b',';
    }
    let mut chunk = Vec::with_capacity(lines.len() + 10);
    chunk.extend_from_slice(if first { b"{\"rows\":[" } else { b"," });
    chunk.extend_from_slice(&lines);
    Ok(chunk)
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
        assert_eq!(ImportMode::parse_optional(" ").unwrap(), None);
        assert_eq!(
            ImportMode::parse_optional("insert").unwrap(),
            Some(ImportMode::Insert)
        );
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
            has_default: false,
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
