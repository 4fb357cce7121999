//! The files of a logical export: where they go (a local directory or a
//! storage URI), writing them (Parquet or JSON Lines, streamed to storage
//! one row group at a time, with size, SHA-256 and row count), and reading
//! them back (ours, and pymilvus bulk-writer Parquet and JSON) as batches of
//! Milvus columns.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::AsyncWriteExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, Type as PhysicalType, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::milvus::proto::schema::FieldData;
use crate::model::meta::{DataFile, Format};
use crate::ops::logical::columns::{self, Origin};
use crate::ops::logical::fields::{arrow_schema, Field};
use crate::storage::{Provider, Side, Storage, StorageSpec};

/// Where an export goes or an import reads from.
#[derive(Clone)]
pub struct Location {
    pub storage: Storage,
    /// As the user wrote it, for messages.
    pub display: String,
    /// The directory, when local: data files are read in place.
    local_dir: Option<PathBuf>,
    /// How files written here are stored (a backup's compression and
    /// encryption); plain when `None`.
    pub encoder: Option<crate::codec::Encoder>,
}

impl Location {
    /// A local directory, or `s3://bucket/prefix` on the backup storage's
    /// service and credentials (`minio.backup*`, as `backup` says).
    pub fn open(backup: &StorageSpec, location: &str) -> Result<Location> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::invalid_input(format!(
                    "`{location}` names no bucket: use s3://bucket/prefix"
                )));
            }
            let mut spec = backup.clone();
            spec.force_stream = false;
            if !matches!(spec.provider, Provider::S3) {
                spec.provider = Provider::S3;
            }
            spec.bucket = bucket.to_string();
            spec.root = prefix.trim_end_matches('/').to_string();
            return Ok(Location {
                storage: Storage::open(spec)?,
                display: location.to_string(),
                local_dir: None,
                encoder: None,
            });
        }
        if location.contains("://") {
            return Err(Error::unsupported(format!(
                "`{location}`: only local directories and s3://bucket/prefix are supported"
            )));
        }
        let dir = std::path::absolute(location)
            .map_err(|e| Error::invalid_input(format!("directory `{location}`: {e}")))?;
        let mut spec = StorageSpec::memory(Side::Backup, location);
        spec.provider = Provider::Local;
        spec.root = dir.to_string_lossy().into_owned();
        Ok(Location {
            storage: Storage::open(spec)?,
            display: location.to_string(),
            local_dir: Some(dir),
            encoder: None,
        })
    }

    /// A location on an already opened storage (a backup's directory).
    pub fn on(storage: Storage, display: &str) -> Location {
        Location {
            storage,
            display: display.to_string(),
            local_dir: None,
            encoder: None,
        }
    }

    /// A readable local file with the object's bytes: the file itself for a
    /// local directory, else a temporary download (deleted on drop).
    pub async fn local_copy(&self, key: &str) -> Result<LocalFile> {
        if let Some(dir) = &self.local_dir {
            return Ok(LocalFile::InPlace(dir.join(key)));
        }
        let tmp = tempfile::NamedTempFile::new()
            .map_err(|e| Error::internal(format!("creating a temporary file: {e}")))?;
        let mut reader = self.storage.open_read(key).await?;
        let mut out = futures::io::AllowStdIo::new(
            tmp.reopen()
                .map_err(|e| Error::internal(format!("temporary file: {e}")))?,
        );
        futures::io::copy(&mut reader, &mut out)
            .await
            .map_err(|e| {
                Error::remote(format!("reading `{key}` from {}: {e}", self.display)).temporary(true)
            })?;
        Ok(LocalFile::Temp(tmp))
    }
}

/// A data file on local disk.
pub enum LocalFile {
    InPlace(PathBuf),
    Temp(tempfile::NamedTempFile),
}

impl LocalFile {
    pub fn path(&self) -> &Path {
        match self {
            LocalFile::InPlace(p) => p,
            LocalFile::Temp(t) => t.path(),
        }
    }
}

// ------------------------------------------------------------ writing

/// Settings of the data files an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileSettings {
    pub format: Format,
    /// zstd level (`backup.compressionLevel`).
    pub compression_level: i32,
    /// A new file after this many raw bytes.
    pub file_bytes: u64,
    /// A Parquet row group is closed after this many encoded bytes.
    pub row_group_bytes: usize,
    /// BYTE_STREAM_SPLIT encoding on float columns (Parquet).
    pub byte_stream_split: bool,
}

impl Default for FileSettings {
    fn default() -> FileSettings {
        FileSettings {
            format: Format::Parquet,
            compression_level: 3,
            file_bytes: 128 << 20,
            row_group_bytes: 16 << 20,
            byte_stream_split: true,
        }
    }
}

enum Encoder {
    Parquet(Box<ArrowWriter<Vec<u8>>>),
    Json(Vec<u8>),
}

/// One data file being written: encoded rows go to storage as they come.
pub struct FileWriter {
    encoder: Encoder,
    upload: crate::codec::DynWrite,
    /// Where `upload` goes, for its errors (a full disk, a quota).
    storage: Storage,
    /// The stored bytes, when they are encoded on their way.
    stored: Option<crate::stream::Tally>,
    hasher: Sha256,
    settings: FileSettings,
    /// An emptied buffer of encoded bytes, kept for the next batch.
    spare: Vec<u8>,
    pub file: DataFile,
}

impl FileWriter {
    pub async fn create(
        location: &Location,
        path: &str,
        partition: &str,
        fields: &[Field],
        settings: FileSettings,
    ) -> Result<FileWriter> {
        let encoder = match settings.format {
            Format::Json => Encoder::Json(Vec::new()),
            Format::Parquet => {
                let schema = Arc::new(arrow_schema(fields));
                let props = parquet_properties(&schema, settings)?;
                Encoder::Parquet(Box::new(
                    ArrowWriter::try_new(Vec::new(), schema, Some(props))
                        .map_err(|e| Error::internal(format!("Parquet writer: {e}")))?,
                ))
            }
        };
        // Parquet compresses itself: a backup's compression applies to
        // JSON Lines only (encryption to both).
        let enc = location.encoder.clone().map(|mut e| {
            if settings.format == Format::Parquet {
                e.compression = crate::codec::Compression::None;
            }
            e
        });
        let (upload, stored, encoding): (crate::codec::DynWrite, _, _) = match enc {
            Some(e) if !e.encoding().is_plain() => {
                let (w, tally) =
                    crate::storage::encoded::encoding_writer(&location.storage, path, &e).await?;
                (w, Some(tally), e.encoding())
            }
            _ => (
                Box::new(location.storage.open_write_lean(path).await?),
                None,
                Default::default(),
            ),
        };
        Ok(FileWriter {
            encoder,
            upload,
            storage: location.storage.clone(),
            stored,
            hasher: Sha256::new(),
            settings,
            spare: Vec::new(),
            file: DataFile {
                path: path.to_string(),
                partition: partition.to_string(),
                encoding,
                ..Default::default()
            },
        })
    }

    /// Appends one query answer (`rows` rows of about `raw` bytes).
    pub async fn write(
        &mut self,
        fields: &[Field],
        cols: &[FieldData],
        rows: usize,
        raw: u64,
    ) -> Result<()> {
        let ready = match &mut self.encoder {
            Encoder::Json(buf) => {
                columns::write_json_lines(fields, cols, buf)?;
                std::mem::replace(buf, std::mem::take(&mut self.spare))
            }
            Encoder::Parquet(w) => {
                let batch = columns::to_record_batch(fields, cols)?;
                w.write(&batch).map_err(parquet_error)?;
                if w.in_progress_size() >= self.settings.row_group_bytes {
                    w.flush().map_err(parquet_error)?;
                }
                // The encoded bytes go; the writer goes on in last time's
                // buffer, already grown (and its pages touched) to a row
                // group's size.
                std::mem::replace(w.inner_mut(), std::mem::take(&mut self.spare))
            }
        };
        self.file.rows += rows as u64;
        self.file.raw_bytes += raw;
        self.send(&ready).await?;
        self.spare = ready;
        self.spare.clear();
        Ok(())
    }

    /// Whether the file holds its share of raw bytes.
    pub fn is_full(&self) -> bool {
        self.file.raw_bytes >= self.settings.file_bytes
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.hasher.update(bytes);
        self.file.size += bytes.len() as u64;
        let (storage, path) = (&self.storage, &self.file.path);
        (self.upload.write_all(bytes).await).map_err(|e| storage.io_error("writing", path, e))
    }

    /// Closes the file: the Parquet footer, then the upload.
    pub async fn finish(mut self) -> Result<DataFile> {
        let rest = match std::mem::replace(&mut self.encoder, Encoder::Json(Vec::new())) {
            Encoder::Json(buf) => buf,
            Encoder::Parquet(w) => w.into_inner().map_err(parquet_error)?,
        };
        self.send(&rest).await?;
        let (storage, path) = (&self.storage, &self.file.path);
        (self.upload.close().await).map_err(|e| storage.io_error("writing", path, e))?;
        self.file.sha256 = hex::encode(self.hasher.finalize());
        if let Some(stored) = self.stored.take() {
            let (sha256, size) = stored.finish();
            let plain_size = std::mem::replace(&mut self.file.size, size);
            let plain_sha = std::mem::replace(&mut self.file.sha256, sha256);
            self.file.plain = Some((plain_size, plain_sha));
        }
        Ok(self.file)
    }
}

fn parquet_error(e: parquet::errors::ParquetError) -> Error {
    Error::internal(format!("Parquet: {e}"))
}

/// zstd at the configured level; BYTE_STREAM_SPLIT (without dictionary) on
/// float and double leaf columns, which splits each value's bytes into
/// streams that zstd compresses better. No min/max statistics on the
/// elements of vectors and arrays: no reader prunes by them, and they cost
/// a pass over every element.
pub(crate) fn parquet_properties(
    schema: &arrow_schema::Schema,
    s: FileSettings,
) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(s.compression_level.clamp(1, 22))
        .map_err(|e| Error::invalid_input(format!("backup.compressionLevel: {e}")))?;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(1 << 20));
    let descr = ArrowSchemaConverter::new()
        .convert(schema)
        .map_err(parquet_error)?;
    for col in descr.columns() {
        let path = ColumnPath::new(col.path().parts().to_vec());
        if col.path().parts().len() > 1 {
            b = b.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
        }
        let float = matches!(
            col.physical_type(),
            PhysicalType::FLOAT | PhysicalType::DOUBLE
        );
        if s.byte_stream_split && float {
            b = b
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::BYTE_STREAM_SPLIT);
        }
    }
    Ok(b.build())
}

// ------------------------------------------------------------ reading

/// Rows of one data file, sent as Milvus columns in batches of about
/// `batch_bytes` raw bytes. Runs on a blocking thread; stops when the
/// receiver is gone. Each item: (columns, rows, raw bytes).
pub type Batch = (Vec<FieldData>, usize, u64);

/// What reading one file needs.
pub struct ReadSpec<'a> {
    pub fields: &'a [Field],
    pub file: &'a str,
    pub collection: &'a str,
    pub batch_bytes: usize,
    /// Leave out auto-ID primary keys (the target makes new ones).
    pub drop_auto_id: bool,
}

/// The Arrow schema of a local Parquet file (its footer only).
pub fn parquet_schema(path: &Path) -> Result<arrow_schema::SchemaRef> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::not_found(format!("opening `{}`: {e}", path.display())))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| {
        Error::invalid_input(format!("`{}` is not a Parquet file: {e}", path.display()))
    })?;
    Ok(b.schema().clone())
}

/// Reads a local data file batch by batch, calling `each` with every batch.
pub fn read_file(
    path: &Path,
    format: Format,
    spec: &ReadSpec<'_>,
    mut each: impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    let origin = Origin {
        file: spec.file,
        collection: spec.collection,
    };
    let row_bytes = crate::ops::logical::fields::row_bytes(spec.fields, 64);
    let batch_rows = (spec.batch_bytes / row_bytes).clamp(1, 65_536);
    let f = std::fs::File::open(path)
        .map_err(|e| Error::not_found(format!("opening `{}`: {e}", spec.file)))?;
    match format {
        Format::Parquet => {
            let reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .map_err(|e| {
                    Error::invalid_input(format!("`{}` is not a Parquet file: {e}", spec.file))
                })?
                .with_batch_size(batch_rows)
                .build()
                .map_err(|e| Error::invalid_input(format!("reading `{}`: {e}", spec.file)))?;
            for batch in reader {
                let batch = batch
                    .map_err(|e| Error::invalid_input(format!("reading `{}`: {e}", spec.file)))?;
                let cols =
                    columns::from_record_batch(spec.fields, &batch, origin, spec.drop_auto_id)?;
                let n = batch.num_rows();
                each((cols, n, (n * row_bytes) as u64))?;
            }
        }
        Format::Json => {
            let mut r = BufReader::new(f);
            let first = first_char(&mut r)
                .map_err(|e| Error::invalid_input(format!("reading `{}`: {e}", spec.file)))?;
            let mut rows = Vec::with_capacity(batch_rows);
            let mut flush = |rows: &mut Vec<columns::JsonRow>| {
                if rows.is_empty() {
                    return Ok(());
                }
                let cols = columns::from_json_rows(spec.fields, rows, origin, spec.drop_auto_id)?;
                let n = rows.len();
                rows.clear();
                each((cols, n, (n * row_bytes) as u64))
            };
            let bad = |i: usize, e: &dyn std::fmt::Display| {
                Error::invalid_input(format!(
                    "file `{}`, row {i}: not a JSON object ({e})",
                    spec.file
                ))
            };
            if first == Some(b'{') && !is_json_lines(path)? {
                // bulk-writer JSON: {"rows": [...]} (read whole)
                #[derive(Deserialize)]
                struct Rows {
                    rows: Vec<columns::JsonRow>,
                }
                let all: Rows = serde_json::from_reader(r).map_err(|e| {
                    Error::invalid_input(format!(
                        "file `{}` is neither JSON Lines nor {{\"rows\": [...]}}: {e}",
                        spec.file
                    ))
                })?;
                for chunk in all.rows.chunks(batch_rows) {
                    rows.extend_from_slice(chunk);
                    flush(&mut rows)?;
                }
            } else {
                for (i, line) in r.lines().enumerate() {
                    let line = line.map_err(|e| bad(i, &e))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    rows.push(
                        serde_json::from_str::<columns::JsonRow>(&line).map_err(|e| bad(i, &e))?,
                    );
                    if rows.len() >= batch_rows {
                        flush(&mut rows)?;
                    }
                }
                flush(&mut rows)?;
            }
        }
    }
    Ok(())
}

fn first_char(r: &mut BufReader<std::fs::File>) -> std::io::Result<Option<u8>> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => return Ok(Some(buf[i])),
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

/// Whether the first line of a JSON file is a whole object (JSON Lines)
/// rather than the start of one document.
fn is_json_lines(path: &Path) -> Result<bool> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::not_found(format!("opening `{}`: {e}", path.display())))?;
    let mut line = String::new();
    BufReader::new(f)
        .take(64 << 20)
        .read_line(&mut line)
        .map_err(|e| Error::invalid_input(format!("reading `{}`: {e}", path.display())))?;
    // Keys and their values' text only: a deep value is not parsed.
    Ok(serde_json::from_str::<columns::JsonRow>(&line)
        .map(|o| !(o.len() == 1 && o.contains_key("rows")))
        .unwrap_or(false))
}
