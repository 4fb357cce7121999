//! The wire format of `/api/v1`: request bodies and the `{requestId, code,
//! msg, data}` envelopes, with the Go tool's field names (snake_case, plus
//! its camelCase `errorMessage`, `requestId` and restore flags). Every type
//! here derives its OpenAPI schema; nothing here does any work, and
//! nothing here knows the task records (their views are `views`). The user
//! guide's types are in [`guide`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

/// An envelope type: `{requestId, code, <message field>, data}`; the Go
/// tool's routes name the message `msg`, the guide's `message`.
macro_rules! envelope {
    ($msg:ident, $(#[$doc:meta])* $name:ident, $data:ty) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            /// Echo of the `request_id` header, or a fresh UUID.
            #[serde(rename = "requestId")]
            pub request_id: String,
            /// 0 success, 400 bad parameter, 404 not found, 1 not supported,
            /// 2 no permission, 3 failure.
            pub code: i32,
            /// `success`, or what went wrong and what to do.
            pub $msg: String,
            pub data: Option<$data>,
        }
    };
}

envelope!(
    msg,
    /// Any failure: the message says what went wrong; `data` may hold the
    /// task the failure concerns.
    ErrorResponse,
    serde_json::Value
);
envelope!(
    msg,
    /// A greeting.
    HelloResponse,
    String
);
envelope!(
    msg,
    /// One backup, or the task making it.
    BackupResponse,
    BackupBrief
);
envelope!(
    msg,
    /// The backup (sync), its task (async) or the plan (`dry_run`).
    CreateResponse,
    CreateAnswer
);
envelope!(
    msg,
    /// The restore task, or the plan (`dry_run`).
    StartRestoreResponse,
    RestoreAnswer
);
envelope!(
    msg,
    /// Every backup in backup storage, newest first.
    ListResponse,
    Vec<BackupListItem>
);
envelope!(
    msg,
    /// The outcome of a delete.
    DeleteResponse,
    DeleteResult
);
envelope!(
    msg,
    /// A restore task.
    RestoreResponse,
    RestoreTask
);
envelope!(
    msg,
    /// A verify task.
    VerifyResponse,
    VerifyTask
);
envelope!(
    msg,
    /// A compare or migrate task.
    LiveTaskResponse,
    LiveTask
);
envelope!(
    msg,
    /// The tasks this server knows (its own and those recorded in storage).
    TasksResponse,
    Vec<TaskSummary>
);
envelope!(
    msg,
    /// A task after a cancel request.
    CancelResponse,
    TaskSummary
);
envelope!(
    msg,
    /// Each policy of `backup_strategy`: its schedule, next and last runs,
    /// and whether this server holds the lease that starts them.
    ScheduleResponse,
    milvus_backup_core::schedule::scheduler::ScheduleStatus
);
envelope!(
    msg,
    /// Health of the backup strategy: `status` (ok, warning, critical),
    /// per collection the newest backup, its age against the RPO and its
    /// verification; damaged backups, the secondary's lag, failed runs and
    /// `messages` (what `milvus-backup status --json` prints).
    StrategyHealthResponse,
    serde_json::Value
);
envelope!(
    msg,
    /// The probe of Milvus and both storages.
    CheckResponse,
    CheckResult
);
envelope!(
    msg,
    /// Liveness.
    HealthResponse,
    Health
);

/// The answer to `dry_run: true`: the core's plan; nothing was done.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRun {
    pub dry_run: bool,
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
}

/// A route's answer, or the plan when `dry_run` (schema only).
macro_rules! or_plan {
    ($(#[$doc:meta])* $name:ident, $answer:ty) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, ToSchema)]
        #[serde(untagged)]
        #[allow(dead_code)] // schema only
        pub enum $name {
            Answer($answer),
            Plan(DryRun),
        }
    };
}

or_plan!(
    /// A backup or its task, or the plan.
    CreateAnswer,
    BackupBrief
);
or_plan!(
    /// A restore task, or the plan.
    RestoreAnswer,
    RestoreTask
);

/// `POST /create`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct CreateRequest {
    /// Backup name (one folder of the backup storage: letters, digits, `_`,
    /// `-` and `.`, starting with a letter, a digit or `_`, not ending with
    /// `.`, at most 128 characters, e.g. `rag_version_v1.0`);
    /// `backup_<UTC time>` when empty.
    pub backup_name: String,
    /// Collections, `coll` (database `default`) or `db.coll`; every
    /// collection of every database when nothing is selected.
    pub collection_names: Vec<String>,
    /// `{"db1": ["c1"], "db2": []}` (an empty list means the whole
    /// database), as a JSON object or a string holding one.
    #[schema(value_type = Option<DbCollections>)]
    pub db_collections: serde_json::Value,
    /// Return at once with the task; poll `get_backup`.
    #[serde(rename = "async")]
    pub is_async: bool,
    /// Skip the flush: back up what Milvus has persisted already.
    pub force: bool,
    /// Metadata only, no data files.
    pub meta_only: bool,
    /// Users, roles, grants and privilege groups too (`rbac_meta`).
    pub rbac: bool,
    /// Patterns `db.coll` or `db.*`, as a list or a comma-separated string.
    #[schema(value_type = Option<StringList>)]
    pub filter: serde_json::Value,
    /// Ours: `zstd`, `gzip` or `none`; `backup.compression*` when absent.
    pub compress: Option<String>,
    /// Ours: compression level (zstd -7..22, gzip 1..9).
    pub compress_level: Option<i32>,
    /// Ours: encrypt with the server's configured key, or the root key its password unlocks (`backup.encryption.*`).
    pub encrypt: bool,
    /// Ours: `binlog` (physical), `parquet` or `json` (logical: rows read
    /// over gRPC); default binlog, or parquet when the config names no
    /// storage for Milvus's own files.
    pub format: Option<String>,
    /// Ours: share files unchanged since this backup (incremental).
    pub base_backup: Option<String>,
    /// Ours: incremental on the newest complete backup of the same collections.
    pub incremental: bool,
    /// Ours: answer with the plan (`data.plan`: collections, segments,
    /// files, bytes, what is shared with the base) and write nothing.
    pub dry_run: bool,
    /// Ours: finish an interrupted create of `backup_name` (same options):
    /// files it stored completely are kept, the rest is copied.
    pub resume: bool,
    /// Ours: back up even when Milvus serves fewer rows than the files hold
    /// (deletes Milvus 2.2 has not written to delta logs yet): the backup
    /// records it and a restore brings those rows back. Without it such a
    /// physical backup fails, naming the deletes.
    pub allow_unpersisted_deletes: bool,
}

/// A map of database to collections, or a JSON string holding one.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // schema only
pub enum DbCollections {
    Map(BTreeMap<String, Vec<String>>),
    Text(String),
}

/// A list of strings, or one comma-separated string.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // schema only
pub enum StringList {
    List(Vec<String>),
    Text(String),
}

/// `POST /restore`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct RestoreRequest {
    /// The backup to restore.
    pub backup_name: String,
    /// Collections of the backup (`coll` or `db.coll`); all when empty.
    pub collection_names: Vec<String>,
    /// `{"db1": ["c1"], "db2": []}`, as an object or a string holding one.
    #[schema(value_type = Option<DbCollections>)]
    pub db_collections: serde_json::Value,
    /// Appended to every target collection name.
    pub collection_suffix: String,
    /// `{"old": "new", "db1.old": "db2.new", "db1.*": "db2.*"}`.
    pub collection_renames: BTreeMap<String, String>,
    /// Return at once with the task; poll `get_restore`.
    #[serde(rename = "async")]
    pub is_async: bool,
    /// Task id to use (letters, digits, `_`, `-`; at most 64); generated when empty.
    pub id: String,
    #[serde(rename = "metaOnly", alias = "meta_only")]
    pub meta_only: bool,
    /// Accepted for the Go tool's clients: the backed-up indexes are
    /// rebuilt by default (`noIndex` skips them).
    #[serde(rename = "restoreIndex", alias = "restore_index")]
    pub restore_index: bool,
    /// Ours: do not build the backed-up indexes (nor load).
    #[serde(rename = "noIndex", alias = "no_index")]
    pub no_index: bool,
    /// Ours: do not load the collections that were loaded at backup time.
    #[serde(rename = "noLoad", alias = "no_load")]
    pub no_load: bool,
    #[serde(rename = "useAutoIndex", alias = "use_auto_index")]
    pub use_auto_index: bool,
    #[serde(rename = "dropExistCollection", alias = "drop_exist_collection")]
    pub drop_exist_collection: bool,
    #[serde(rename = "dropExistIndex", alias = "drop_exist_index")]
    pub drop_exist_index: bool,
    #[serde(rename = "skipCreateCollection", alias = "skip_create_collection")]
    pub skip_create_collection: bool,
    /// Ours: restore the collections the target Milvus can hold and report
    /// the others (`data.skipped`), instead of refusing the whole restore.
    #[serde(rename = "skipUnsupported", alias = "skip_unsupported")]
    pub skip_unsupported: bool,
    /// Ours: do not create the backed-up aliases (restored by default).
    #[serde(rename = "skipAliases", alias = "skip_aliases")]
    pub skip_aliases: bool,
    /// Users, roles and grants too: missing ones are created, existing
    /// ones left as they are.
    pub rbac: bool,
    /// Ours, with `rbac`: a file on the server's machine with one
    /// `user:password` per line, the passwords of the users to create
    /// (users it lacks are reported and skipped).
    #[serde(rename = "rbacUserPasswordFile", alias = "rbac_user_password_file")]
    pub rbac_user_password_file: Option<String>,
    /// Accepted for compatibility; segments are imported one per job.
    #[serde(rename = "useV2Restore")]
    pub use_v2_restore: bool,
    /// Database/collection mapping; not combined with suffix or renames.
    #[serde(rename = "restorePlan")]
    pub restore_plan: Option<RestorePlan>,
    /// Ours: answer with the plan (`data.plan`: targets, what exists and
    /// would be refused, staging, import jobs) and change nothing.
    #[serde(alias = "dryRun")]
    pub dry_run: bool,
    /// Ours: finish an interrupted restore of this backup (same options):
    /// collections and segments it finished are skipped.
    pub resume: bool,
}

/// The Go tool's `restorePlan`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RestorePlan {
    pub mapping: Vec<RestoreMapping>,
    /// Target database → the collections to restore into it, by their
    /// names after the mapping (`["*"]`: all).
    pub filter: BTreeMap<String, RestoreFilter>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RestoreFilter {
    pub colls: Vec<String>,
}

/// One source database restored into a target database.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RestoreMapping {
    pub source: String,
    pub target: String,
    /// Collections renamed on the way; the whole database when empty.
    pub colls: Vec<RestoreCollectionMapping>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RestoreCollectionMapping {
    pub source: String,
    pub target: String,
    /// What the restored collection is created with instead of the backup's.
    #[serde(rename = "override")]
    pub overrides: Option<RestoreCollectionOverride>,
}

/// The Go tool's collection override.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RestoreCollectionOverride {
    /// Shards of the restored collection; 0 keeps the backup's.
    #[serde(rename = "shardNum")]
    pub shard_num: i32,
    /// Its description; empty keeps the backup's.
    pub description: String,
}

/// `POST /verify`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct VerifyRequest {
    pub backup_name: String,
    /// Also read every file and compare its SHA-256.
    pub deep: bool,
    /// Also restore the backup into throwaway collections on the server's
    /// Milvus, compare row counts and the row sample, and drop them.
    pub restore_test: bool,
    /// Return at once with the task; poll `get_verify`.
    #[serde(rename = "async")]
    pub is_async: bool,
}

/// Task states: `state_code` keeps the Go tool's 0–3 for its clients;
/// `state` tells cancelled and interrupted apart from failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    Initial,
    Executing,
    Success,
    Failed,
    Cancelled,
    Interrupted,
}

/// A backup: complete in storage, or the task making it.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct BackupBrief {
    /// The backup's id (the creating task's id until the backup is written).
    pub id: String,
    /// The task that made (or makes) this backup, when this server ran it.
    pub task_id: String,
    pub name: String,
    /// 0 initial, 1 executing, 2 success, 3 failed (also cancelled, interrupted).
    pub state_code: i32,
    pub state: Option<StateName>,
    /// 0–100.
    pub progress: i32,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    /// Milliseconds since the epoch.
    pub start_time: i64,
    pub end_time: i64,
    pub backup_timestamp: u64,
    /// Bytes of data files.
    pub size: i64,
    pub milvus_version: String,
    /// What the task is doing now.
    pub step: String,
    pub collection_backups: Vec<CollectionBrief>,
}

/// One collection of a backup (segments left out).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct CollectionBrief {
    pub id: String,
    pub collection_id: i64,
    pub db_name: String,
    pub collection_name: String,
    pub state_code: i32,
    pub state: Option<StateName>,
    pub progress: i32,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    pub start_time: i64,
    pub end_time: i64,
    pub backup_timestamp: u64,
    pub size: i64,
    pub shards_num: i32,
    pub consistency_level: i32,
    pub has_index: bool,
    pub index_infos: Vec<IndexInfo>,
    /// `Loaded` or `NotLoad`.
    pub load_state: String,
    /// The collection schema as stored in the backup.
    #[schema(value_type = Option<Object>)]
    pub schema: Option<serde_json::Value>,
    pub partition_backups: Vec<PartitionBrief>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct IndexInfo {
    pub field_name: String,
    pub index_name: String,
    pub index_type: String,
    pub params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct PartitionBrief {
    pub partition_id: i64,
    pub partition_name: String,
    pub size: i64,
    pub load_state: String,
    pub segments: i64,
    pub entities: i64,
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupListItem {
    pub id: String,
    pub name: String,
    /// 2 complete; 1 being written by this server; 3 incomplete (interrupted).
    pub state_code: i32,
    /// `complete` or `incomplete`.
    pub state: String,
    pub size: i64,
    pub entities: i64,
    pub milvus_version: String,
    pub backup_timestamp: u64,
    pub collection_backups: Vec<CollectionName>,
    /// Ours: deletes Milvus had not persisted when the backup was made
    /// (`allow_unpersisted_deletes`): rows a restore brings back.
    #[serde(skip_serializing_if = "is_zero")]
    pub unpersisted_deletes: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectionName {
    pub db_name: String,
    pub collection_name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeleteResult {
    pub backup_name: String,
    /// Objects removed from backup storage.
    pub deleted_objects: u64,
}

/// A restore task (the Go tool's `RestoreBackupTask`).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RestoreTask {
    pub id: String,
    pub backup_name: String,
    pub state_code: i32,
    pub state: Option<StateName>,
    pub progress: i32,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    pub start_time: i64,
    pub end_time: i64,
    pub restored_size: i64,
    pub to_restore_size: i64,
    pub step: String,
    pub collection_restore_tasks: Vec<CollectionRestoreTask>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct CollectionRestoreTask {
    pub id: String,
    pub state_code: i32,
    pub state: Option<StateName>,
    pub progress: i32,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    pub start_time: i64,
    pub end_time: i64,
    pub source_db_name: String,
    pub source_collection_name: String,
    pub target_db_name: String,
    pub target_collection_name: String,
    pub restored_size: i64,
    pub to_restore_size: i64,
}

/// A verify task and, once done, its verdict.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct VerifyTask {
    pub id: String,
    pub backup_name: String,
    pub deep: bool,
    pub state_code: i32,
    pub state: Option<StateName>,
    pub progress: i32,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    pub start_time: i64,
    pub end_time: i64,
    /// Whether the backup is whole (once the task succeeded).
    pub ok: Option<bool>,
    pub files: u64,
    pub bytes: u64,
    pub problems: Vec<VerifyProblem>,
    /// With `restore_test`: per collection, the throwaway name, segments,
    /// rows backed up and imported, sampled rows compared.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyProblem {
    pub path: String,
    pub problem: String,
}

/// A compare or migrate task and, once done, its result (the CLI's
/// `--json` answer).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct LiveTask {
    pub id: String,
    /// `compare` or `migrate`.
    pub kind: String,
    pub collection_name: String,
    pub state_code: i32,
    pub state: Option<StateName>,
    pub progress: i32,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    pub start_time: i64,
    pub end_time: i64,
    /// compare: `{identical, rows_source, rows_target, ranges,
    /// ranges_differing, differing_ranges, only_in_source, only_in_target,
    /// different, schema_differences}`; migrate: `{rows_source,
    /// rows_target, ranges, ranges_differing, rows_copied, rows_deleted,
    /// identical, ranges_still_differing, created}`.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
}

/// Any task, briefly.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskSummary {
    pub id: String,
    /// `create`, `restore`, `verify`, `compare` or `migrate`.
    pub kind: String,
    pub backup_name: String,
    pub state_code: i32,
    pub state: StateName,
    pub progress: i32,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    pub start_time: i64,
    pub end_time: i64,
    pub step: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckResult {
    pub passed: bool,
    pub milvus_version: Option<String>,
    pub steps: Vec<CheckStep>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckStep {
    pub name: String,
    /// OK, WARN, FAIL or SKIP.
    pub status: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// Every error a route may answer with.
#[derive(IntoResponses)]
#[allow(dead_code)] // schema only
pub enum ErrorResponses {
    /// Invalid input: bad JSON, a bad name, a missing parameter.
    #[response(status = 400)]
    BadRequest(ErrorResponse),
    /// `http.authToken` is set and the bearer token is missing or wrong.
    #[response(status = 401)]
    Unauthorized(ErrorResponse),
    /// Unknown backup, collection or task.
    #[response(status = 404)]
    NotFound(ErrorResponse),
    /// The name is taken, the backup is incomplete or in use, or the task finished.
    #[response(status = 409)]
    Conflict(ErrorResponse),
    /// The backup is damaged.
    #[response(status = 422)]
    Unprocessable(ErrorResponse),
    /// A fault of this server.
    #[response(status = 500)]
    Internal(ErrorResponse),
    /// Milvus or storage failed or refused the credentials.
    #[response(status = 502)]
    BadGateway(ErrorResponse),
    /// Milvus or storage cannot be reached, or the server is shutting down.
    #[response(status = 503)]
    Unavailable(ErrorResponse),
}

pub mod guide;
pub use guide::*;
