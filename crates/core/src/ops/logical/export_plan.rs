//! What an export will do ([`ExportPlan`]) and where its files go: shared
//! by [`crate::ops::logical::export`] (which makes the plan) and
//! [`crate::ops::logical::by_range`] (which reads the rows).

use serde::Serialize;

use crate::model::meta::CollectionBackupInfo;
use crate::model::selection::CollectionRef;
use crate::ops::logical::fields::Field;
use crate::ops::logical::files::FileSettings;

/// What an export will do.
#[derive(Debug, Clone, Serialize)]
pub struct ExportPlan {
    pub collection: CollectionRef,
    pub location: String,
    pub settings: FileSettings,
    /// Milvus's row count (deleted rows may still be counted).
    pub estimated_rows: i64,
    pub batch_rows: usize,
    pub streams: usize,
    /// Partitions read one by one; empty: the whole collection at once
    /// (a partition-key collection, whose partitions follow the key).
    pub partitions: Vec<String>,
    /// Not loaded: loaded for the export, released afterwards.
    pub load_for_export: bool,
    pub server_version: String,
    /// Every query reads as of the snapshot timestamp (MVCC), not only at
    /// least that recent: Milvus ≥ 2.3 (2.2 refuses travel timestamps
    /// unless it keeps history).
    pub travel: bool,
    #[serde(skip)]
    pub meta: CollectionBackupInfo,
    #[serde(skip)]
    pub fields: Vec<Field>,
}

/// The folder of a partition's files. pandas and pyarrow skip folders
/// whose names start with `_` (`_default`), so those get `part-` in
/// front (Milvus names have no `-`, so no other partition has that name).
pub(crate) fn partition_dir(partition: Option<&str>) -> String {
    match partition {
        None => "all".to_string(),
        Some(p) if p.starts_with('_') => format!("part-{p}"),
        Some(p) => p.to_string(),
    }
}
