//! Logical backups: a collection's rows as plain Parquet or JSON files,
//! read and written over Milvus's gRPC API alone — no access to Milvus's
//! storage, any server version (2.2, 2.3, Milvus Lite) on either side.
//!
//! - [`fields`]: the collection's fields and their Arrow types;
//! - [`columns`]: rows between Milvus's columns and Arrow/JSON, with the
//!   checks that name file, column and field;
//! - [`files`]: where files go, writing and reading them;
//! - [`export`]: `export` (rows of one collection, by primary-key ranges,
//!   as of one timestamp) → data files + `schema.json`;
//! - [`import`]: `import` (our files or pymilvus bulk-writer files, all
//!   checked before the first insert) → inserts in byte-sized batches;
//! - [`bulk`]: `restore --import-mode bulk`: files staged into Milvus's
//!   storage (as row-based JSON) and read by its own import;
//! - [`catalog`]: logical backups in the backup catalog (`create --format
//!   parquet|json` and their restore), driven by [`crate::backup`] and
//!   [`crate::restore`].

pub mod bulk;
pub mod catalog;
pub mod columns;
pub mod export;
pub mod fields;
pub mod files;
pub mod import;

use serde::{Deserialize, Serialize};

pub use files::{DataFile, FileSettings, Format};

use crate::format::CollectionBackupInfo;

/// The description an export writes beside its data files.
pub const SCHEMA_FILE: &str = "schema.json";

/// `schema.json`: the collection as a physical backup describes it
/// (schema, partitions, indexes, aliases, properties), the format, the
/// timestamp the rows were read at, and every data file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LogicalMeta {
    pub format_version: u32,
    pub format: Format,
    pub collection: CollectionBackupInfo,
    /// Milvus hybrid timestamp every query read at (0: strong consistency
    /// per query, when the server takes no timestamps).
    pub snapshot_ts: u64,
    /// The source server's version, e.g. `v2.3.5-lite`.
    pub server_version: String,
    pub rows: u64,
    pub files: Vec<DataFile>,
}

pub const FORMAT_VERSION: u32 = 1;

/// A logical backup's data, in its `full_meta.json` and
/// `backup_meta.json` (`logical`): the format and, per collection, the
/// timestamp its rows were read at and every data file with its partition
/// and rows. Physical backups have none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogicalBackup {
    pub format: Format,
    pub collections: Vec<LogicalCollection>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogicalCollection {
    pub db_name: String,
    pub collection_name: String,
    /// Milvus hybrid timestamp every query read at.
    pub snapshot_ts: u64,
    pub rows: u64,
    /// Paths relative to the backup's folder.
    pub files: Vec<DataFile>,
}
