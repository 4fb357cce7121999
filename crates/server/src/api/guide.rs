//! The wire format of the user guide's routes (`/api/v1/backup/*`): its
//! field names, and its `{requestId, code, message, data}` envelope. Every
//! type here derives its OpenAPI schema; nothing here does any work.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

use super::{DbCollections, DeleteResult, DryRun, StringList, VerifyProblem};

envelope!(
    message,
    /// Any failure of a guide route (the same statuses as `/api/v1/*`).
    GuideErrorResponse,
    serde_json::Value
);
envelope!(
    message,
    /// The backup made (sync), being made (async), or the plan (`dry_run`).
    GuideCreateResponse,
    GuideCreateAnswer
);
envelope!(
    message,
    /// Every backup in backup storage, newest first.
    GuideListResponse,
    Vec<GuideBackup>
);
envelope!(
    message,
    /// One backup.
    GuideBackupResponse,
    GuideBackup
);
envelope!(
    message,
    /// The restore done (sync), or under way (async).
    GuideRestoreResponse,
    GuideRestoreAnswer
);
envelope!(
    message,
    /// The outcome of a delete.
    GuideDeleteResponse,
    DeleteResult
);
envelope!(
    message,
    /// A task of this server.
    GuideStatusResponse,
    GuideStatus
);
envelope!(
    message,
    /// The verdict (sync), or the verify under way (async).
    GuideVerifyResponse,
    GuideVerify
);

/// `POST /api/v1/backup/create`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct GuideCreateRequest {
    /// Backup name (one folder of the backup storage: letters, digits, `_`,
    /// `-` and `.`, starting with a letter, a digit or `_`, not ending with
    /// `.`, at most 128 characters, e.g. `rag_version_v1.0`);
    /// `backup_<UTC time>` when empty.
    pub backup_name: String,
    /// Collections, `coll` (database `default`) or `db.coll`; every
    /// collection when nothing is selected.
    pub collections: Vec<String>,
    /// Whole databases.
    pub databases: Vec<String>,
    /// `{"db1": ["c1"], "db2": []}`, as an object or a string holding one.
    #[schema(value_type = Option<DbCollections>)]
    pub db_collections: serde_json::Value,
    /// Patterns `db.coll` or `db.*`, as a list or a comma-separated string.
    #[schema(value_type = Option<StringList>)]
    pub filter: serde_json::Value,
    /// Compress the data files: `true` with `compress` or the configured
    /// algorithm (`backup.compressionAlgorithm`), `false` not at all;
    /// `backup.compression` when absent.
    pub compression: Option<bool>,
    /// `zstd`, `gzip` or `none`.
    pub compress: Option<String>,
    /// Compression level (zstd -7..22, gzip 1..9).
    pub compress_level: Option<i32>,
    /// Encrypt with the server's configured key (`backup.encryption.*`).
    pub encrypt: bool,
    /// `binlog` (physical), `parquet` or `json` (logical: rows read over
    /// gRPC); default binlog, or parquet when the config names no storage
    /// for Milvus's own files.
    pub format: Option<String>,
    /// Share files unchanged since this backup (incremental).
    pub base_backup: Option<String>,
    /// Incremental on the newest complete backup of the same collections.
    pub incremental: bool,
    /// Skip the flush: back up what Milvus has persisted already.
    pub force: bool,
    /// Metadata only, no data files.
    pub meta_only: bool,
    /// Back up even when Milvus serves fewer rows than the files hold
    /// (deletes Milvus 2.2 has not written to delta logs yet): the backup
    /// records it and a restore brings those rows back. Without it such a
    /// physical backup fails, naming the deletes.
    pub allow_unpersisted_deletes: bool,
    /// Answer at once with `status: running`; poll `status?id=<task_id>`.
    #[serde(rename = "async")]
    pub is_async: bool,
    /// Answer with the plan (`data.plan`) and write nothing.
    pub dry_run: bool,
}

/// A backup made, or being made, by `create`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct GuideCreated {
    /// The backup's id; the task's id until the backup is written.
    pub backup_id: String,
    pub backup_name: String,
    /// Poll `GET /api/v1/backup/status?id=<task_id>`.
    pub task_id: String,
    /// `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// 0–100.
    pub progress: i32,
    /// `coll` (database `default`) or `db.coll`.
    pub collections: Vec<String>,
    /// Entities of the backup, as the backup's summary counts them.
    pub total_entities: i64,
    /// Bytes of the backup in backup storage.
    pub backup_size: i64,
    /// RFC 3339, UTC; absent until the backup is written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Seconds the backup took; absent while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// One backup of `list` and `get`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct GuideBackup {
    pub name: String,
    /// The backup's id (empty while it is being written).
    pub backup_id: String,
    /// `coll` (database `default`) or `db.coll`.
    pub collections: Vec<String>,
    /// Entities of the backup, as the backup's summary counts them.
    pub total_entities: i64,
    /// Bytes in backup storage.
    pub size: i64,
    /// RFC 3339, UTC (empty while it is being written).
    pub created_at: String,
    /// `completed`, `running` (being made by this server), `failed` or
    /// `cancelled` (this server's attempt), `incomplete` (interrupted) or
    /// `damaged` (see `verify`).
    pub status: String,
    /// 0–100.
    pub progress: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// `POST /api/v1/backup/restore`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct GuideRestoreRequest {
    /// The backup to restore.
    pub backup_name: String,
    /// Collections of the backup (`coll` or `db.coll`); all when empty.
    pub collections: Vec<String>,
    /// The name to restore the one collection of `collections` under
    /// (`coll`, same database, or `db.coll`).
    pub target_collection: String,
    /// Databases of the backup; all when empty.
    pub databases: Vec<String>,
    /// Appended to every target collection name.
    #[serde(alias = "collection_suffix")]
    pub suffix: String,
    /// `{"old": "new", "db1.old": "db2.new", "db1.*": "db2.*"}`.
    #[serde(alias = "collection_renames")]
    pub renames: BTreeMap<String, String>,
    /// Replace a target that exists (atomically: restored under a side
    /// name, then swapped in). Default: true when the collections are
    /// restored under their own names (no target name, suffix or renames),
    /// as the guide's restore replaces them; false otherwise.
    #[serde(alias = "drop_exist_collection", alias = "dropExistCollection")]
    pub drop_existing: Option<bool>,
    /// Import into a target that exists.
    #[serde(alias = "skipCreateCollection")]
    pub skip_create_collection: bool,
    #[serde(alias = "metaOnly")]
    pub meta_only: bool,
    /// Recreate the backup's indexes (and load what was loaded), as the
    /// guide's restore does; default true.
    #[serde(alias = "restoreIndex")]
    pub restore_index: Option<bool>,
    #[serde(alias = "useAutoIndex")]
    pub use_auto_index: bool,
    #[serde(alias = "dropExistIndex")]
    pub drop_exist_index: bool,
    /// Restore the collections the target can hold and report the others.
    #[serde(alias = "skipUnsupported")]
    pub skip_unsupported: bool,
    /// Answer at once with `status: running`; poll `status?id=<task_id>`.
    #[serde(rename = "async")]
    pub is_async: bool,
    /// Task id to use (letters, digits, `_`, `-`; at most 64).
    pub id: String,
    /// Answer with the plan (`data.plan`) and change nothing.
    pub dry_run: bool,
}

/// A restore done or under way.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct GuideRestore {
    pub task_id: String,
    pub backup_name: String,
    /// `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    pub progress: i32,
    pub collections: Vec<GuideRestoredCollection>,
    /// Entities imported (once completed).
    pub total_entities: i64,
    /// Seconds the restore took; absent while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct GuideRestoredCollection {
    /// `db.coll` in the backup.
    pub source: String,
    /// `db.coll` restored into.
    pub target: String,
    pub status: String,
    pub progress: i32,
}

/// `DELETE /api/v1/backup/delete`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct GuideDeleteRequest {
    pub backup_name: String,
}

/// `POST /api/v1/backup/verify`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct GuideVerifyRequest {
    pub backup_name: String,
    /// Read every file and compare its checksum, not only its size.
    pub deep: bool,
    /// Also restore into throwaway collections, compare rows, drop them.
    pub restore_test: bool,
    /// Answer at once; poll `status?id=<task_id>`.
    #[serde(rename = "async")]
    pub is_async: bool,
}

/// A verify's verdict: `OK`, `FAILED` or `skipped` per check (absent while
/// it runs).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct GuideVerify {
    pub task_id: String,
    pub backup_name: String,
    pub status: String,
    /// Whether every check passed (absent while it runs).
    pub valid: Option<bool>,
    /// The data files: checksums (`deep`), else `skipped` when every file
    /// is there with its size.
    pub checksum: Option<String>,
    /// The meta files agree with each other and name every file.
    pub metadata: Option<String>,
    /// The backup restored into throwaway collections with its rows.
    pub restore_test: Option<String>,
    pub files: u64,
    pub bytes: u64,
    pub problems: Vec<VerifyProblem>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// A task of this server: create, restore or verify.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct GuideStatus {
    pub id: String,
    /// `create`, `restore` or `verify`.
    pub kind: String,
    pub backup_name: String,
    /// `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// 0–100.
    pub progress: i32,
    /// What it does now.
    pub step: String,
    /// Why it failed (empty otherwise).
    pub error: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC; absent while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

or_plan!(
    /// The guide's create answer, or the plan.
    GuideCreateAnswer,
    GuideCreated
);
or_plan!(
    /// The guide's restore answer, or the plan.
    GuideRestoreAnswer,
    GuideRestore
);

/// Every error a guide route may answer with.
#[derive(IntoResponses)]
#[allow(dead_code)] // schema only
pub enum GuideErrorResponses {
    /// Invalid input: bad JSON, a bad name, a missing parameter.
    #[response(status = 400)]
    BadRequest(GuideErrorResponse),
    /// `http.authToken` is set and the bearer token is missing or wrong.
    #[response(status = 401)]
    Unauthorized(GuideErrorResponse),
    /// Unknown backup, collection or task.
    #[response(status = 404)]
    NotFound(GuideErrorResponse),
    /// The name is taken, the backup is incomplete or in use.
    #[response(status = 409)]
    Conflict(GuideErrorResponse),
    /// The backup is damaged.
    #[response(status = 422)]
    Unprocessable(GuideErrorResponse),
    /// A fault of this server.
    #[response(status = 500)]
    Internal(GuideErrorResponse),
    /// Milvus or storage failed or refused the credentials.
    #[response(status = 502)]
    BadGateway(GuideErrorResponse),
    /// Milvus or storage cannot be reached, or the server is shutting down.
    #[response(status = 503)]
    Unavailable(GuideErrorResponse),
}
