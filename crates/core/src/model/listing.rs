//! What `list` shows of a backup: its state and its row. Types only; the
//! catalog ([`crate::repo::catalog`]) reads them.

use serde::{Deserialize, Serialize};

use crate::model::encoding::Compression;
use crate::model::meta::LeftOut;
use crate::model::selection::CollectionRef;
use crate::model::verification::VerificationRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupState {
    Complete,
    Incomplete,
    /// Its meta files exist but do not parse, or its last `verify` found
    /// damage ([`BackupListing::state_verified`]).
    Damaged,
}

/// One row of `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupListing {
    pub name: String,
    pub id: String,
    pub state: BackupState,
    pub collections: Vec<String>,
    pub entities: i64,
    pub size_bytes: i64,
    /// Milliseconds since the epoch (the Go tool's `backup_timestamp`).
    pub backup_timestamp: u64,
    pub milvus_version: String,
    /// The backup an incremental one shares files with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_backup: Option<String>,
    pub compression: Compression,
    pub encrypted: bool,
    /// `binlog` (physical), `parquet` or `json` (logical).
    pub format: String,
    /// Deletes Milvus had not persisted when the backup was made
    /// (`create --allow-unpersisted-deletes`): rows a restore brings back.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unpersisted_deletes: i64,
    /// Collections it holds without their rows, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl BackupListing {
    /// The state `list` shows, given the backup's last verification: a
    /// complete backup that `verify` found damaged is [`BackupState::Damaged`].
    pub fn state_verified(&self, verdict: Option<&VerificationRecord>) -> BackupState {
        match (self.state, verdict) {
            (BackupState::Complete, Some(v)) if !v.verified_ok => BackupState::Damaged,
            (state, _) => state,
        }
    }

    /// Whether the backup holds `collection` (`coll`: in any database, or
    /// `db.coll`).
    pub fn holds(&self, collection: &str) -> bool {
        let full = CollectionRef::parse(collection).to_string();
        self.collections.iter().any(|x| {
            x == &full || (!collection.contains('.') && x.ends_with(&format!(".{collection}")))
        })
    }
}
