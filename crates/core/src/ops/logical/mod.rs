//! Logical backups: a collection's rows as plain Parquet or JSON files,
//! read and written over Milvus's gRPC API alone — no access to Milvus's
//! storage, any server version (2.2, 2.3, Milvus Lite) on either side.
//!
//! - [`fields`]: the collection's fields and their Arrow types;
//! - [`columns`]: rows between Milvus's columns and Arrow/JSON, with the
//!   checks that name file, column and field;
//! - [`files`]: where files go, writing and reading them;
//! - [`export`]: `export` (rows of one collection, by primary-key ranges,
//!   as of one timestamp) → data files + `_schema.json`;
//! - [`import`]: `import` (our files or pymilvus bulk-writer files, all
//!   checked before the first insert) → inserts in byte-sized batches;
//! - [`read_back`]: each data file read back as a restore reads it, right
//!   after it is written, its rows and values checked;
//! - [`resume`]: a restore's record of each batch inserted, and what a
//!   resumed restore does with a batch an interrupted run may have sent;
//! - [`in_backup`]: logical backups in the backup catalog (`create --format
//!   parquet|json` and their restore), driven by [`crate::ops::backup`] and
//!   [`crate::ops::restore`].

pub mod by_range;
pub mod columns;
pub mod digest;
pub mod export;
pub mod export_plan;
pub mod fields;
pub mod files;
pub mod import;
pub mod in_backup;
pub mod ranges;
pub mod read_back;
pub mod resume;

pub use crate::model::meta::{
    DataFile, Format, LogicalBackup, LogicalCollection, LogicalMeta, LEGACY_SCHEMA_FILE,
    LOGICAL_FORMAT_VERSION, SCHEMA_FILE,
};
pub use files::FileSettings;
