//! The user guide's REST API, `/api/v1/backup/*`: its field names and its
//! `{code, message, data}` envelope, over the same core calls and tasks as
//! the Go tool's routes (`routes`). Each handler maps its request onto the
//! core's options, starts the work with the starters `routes` shares, and
//! maps the task or the stored backup onto the guide's view. Errors keep
//! the statuses and codes of `/api/v1/*`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use milvus_backup_core::model::selection::{CollectionRef, Selection};
use milvus_backup_core::ops::backup::{BackupOptions, BackupRequest};
use milvus_backup_core::ops::restore::{RestoreOptions, RestoreRequest};
use milvus_backup_core::repo::catalog::{self, BackupListing, BackupState};
use milvus_backup_core::ErrorKind;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::api::*;
use crate::backups::{delete_backup, start_verify};
use crate::error::{code, ApiError, GuideError};
use crate::record::{TaskKind, TaskRecord, TaskState};
use crate::routes::{parse_db_collections, parse_list, start_create, start_restore, Started};
use crate::shared::{outcome, IdQuery, JsonBody, Params, Rid, Shared};

type Answer = Result<Response, GuideError>;

/// Whether `path` is one of the guide's routes (errors in its envelope).
pub fn is_guide_path(path: &str) -> bool {
    path.starts_with("/api/v1/backup/")
}

fn ok<T: Serialize>(rid: &Rid, data: T) -> Response {
    Json(serde_json::json!({
        "requestId": rid.0,
        "code": code::SUCCESS,
        "message": "success",
        "data": data,
    }))
    .into_response()
}

/// The guide's task status: running, completed, failed or cancelled.
fn status_of(state: TaskState) -> &'static str {
    match state {
        TaskState::Initial | TaskState::Executing => "running",
        TaskState::Success => "completed",
        TaskState::Cancelled => "cancelled",
        TaskState::Failed | TaskState::Interrupted => "failed",
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC); `None` for 0.
fn rfc3339(ms: i64) -> Option<String> {
    (ms > 0)
        .then(|| chrono::DateTime::from_timestamp_millis(ms))
        .flatten()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// `coll` for a collection of database `default`, `db.coll` otherwise.
fn display_name(full: &str) -> String {
    let c = CollectionRef::parse(full);
    if c.db == "default" {
        c.name
    } else {
        c.to_string()
    }
}

fn seconds(r: &TaskRecord) -> Option<f64> {
    (r.state.is_terminal() && r.end_time >= r.start_time)
        .then(|| (r.end_time - r.start_time) as f64 / 1000.0)
}

/// A create task, with its backup's `list` row once written.
fn created(r: &TaskRecord, row: Option<&BackupListing>) -> GuideCreated {
    let task_view = || r.collections.iter().map(|c| display_name(&c.source));
    GuideCreated {
        backup_id: match row {
            Some(row) if !row.id.is_empty() => row.id.clone(),
            _ if !r.backup_id.is_empty() => r.backup_id.clone(),
            _ => r.id.clone(),
        },
        backup_name: r.backup_name.clone(),
        task_id: r.id.clone(),
        status: status_of(r.state).into(),
        progress: r.progress,
        collections: match row {
            Some(row) => row.collections.iter().map(|c| display_name(c)).collect(),
            None => task_view().collect(),
        },
        total_entities: row.map_or(0, |row| row.entities),
        backup_size: row.map_or_else(
            || r.collections.iter().map(|c| c.size).sum(),
            |row| row.size_bytes,
        ),
        created_at: row.and_then(|row| rfc3339(row.backup_timestamp as i64)),
        duration: seconds(r),
        error: r.error_message.clone(),
    }
}

/// Creates a backup: synchronously (the summary of the backup made) or
/// with `async: true` (at once, `status: running`; poll `status?id=`).
#[utoipa::path(post, path = "/api/v1/backup/create", tag = "guide", request_body = GuideCreateRequest,
    responses((status = 200, description = "The backup made (sync) or being made (async)", body = GuideCreateResponse), GuideErrorResponses))]
pub async fn create(
    State(s): State<Shared>,
    rid: Rid,
    body: Result<JsonBody<GuideCreateRequest>, ApiError>,
) -> Answer {
    let JsonBody(req) = body?;
    let request = BackupRequest {
        name: Some(req.backup_name.clone()),
        blank_name_is_unset: true,
        selection: Selection {
            collections: req.collections,
            db_collections: parse_db_collections(&req.db_collections)?,
            databases: req.databases,
            filter: parse_list(&req.filter, "filter")?,
        },
        force: req.force,
        meta_only: req.meta_only,
        compression: req.compression,
        compress: req.compress,
        compress_level: req.compress_level,
        encrypt: req.encrypt,
        base_backup: req.base_backup,
        incremental: req.incremental,
        format: req.format,
        allow_unpersisted_deletes: req.allow_unpersisted_deletes,
        ..Default::default()
    };
    let opts = BackupOptions::from_request(request, &s.ctx.settings).map_err(s.core(&rid))?;
    let task = match start_create(&s, &rid, opts, req.dry_run, req.is_async).await? {
        Started::Plan(plan) => return Ok(ok(&rid, plan)),
        Started::Task(task) => task,
    };
    let r = outcome(&rid, &task, req.is_async, |r| created(r, None)).await?;
    if r.status != "completed" {
        return Ok(ok(&rid, r));
    }
    let record = task.snapshot();
    let row = catalog::row(&s.ctx.backup_storage, &record.backup_name)
        .await
        .map_err(s.core(&rid))?;
    Ok(ok(&rid, created(&record, Some(&row))))
}

/// A `list` row; `task` is this server's newest create of it, if any.
fn listed(row: &BackupListing, task: Option<&TaskRecord>) -> GuideBackup {
    let (status, progress, error) = match (row.state, task) {
        (BackupState::Complete, _) => ("completed", 100, String::new()),
        (BackupState::Damaged, _) => ("damaged", 0, String::new()),
        (BackupState::Incomplete, Some(t)) => {
            (status_of(t.state), t.progress, t.error_message.clone())
        }
        (BackupState::Incomplete, None) => ("incomplete", 0, String::new()),
    };
    GuideBackup {
        name: row.name.clone(),
        backup_id: row.id.clone(),
        collections: row.collections.iter().map(|c| display_name(c)).collect(),
        total_entities: row.entities,
        size: row.size_bytes,
        created_at: rfc3339(row.backup_timestamp as i64).unwrap_or_default(),
        status: status.into(),
        progress,
        error,
    }
}

/// A backup this server is making, or failed to make.
fn of_task(t: &TaskRecord) -> GuideBackup {
    GuideBackup {
        name: t.backup_name.clone(),
        backup_id: t.backup_id.clone(),
        collections: t
            .collections
            .iter()
            .map(|c| display_name(&c.source))
            .collect(),
        total_entities: 0,
        size: t.collections.iter().map(|c| c.size).sum(),
        created_at: String::new(),
        status: status_of(t.state).into(),
        progress: t.progress,
        error: t.error_message.clone(),
    }
}

/// Every backup in backup storage, newest first.
#[utoipa::path(get, path = "/api/v1/backup/list", tag = "guide",
    responses((status = 200, description = "Success", body = GuideListResponse), GuideErrorResponses))]
pub async fn list(State(s): State<Shared>, rid: Rid) -> Answer {
    // A backup its last verification found damaged is `damaged`.
    let rows: Vec<BackupListing> = catalog::list_as_shown(&s.ctx.backup_storage)
        .await
        .map_err(s.core(&rid))?
        .into_iter()
        .map(|(row, _)| row)
        .collect();
    let tasks: Vec<TaskRecord> = s.tasks.all();
    // The newest create task of each name (`all` is newest first).
    let mut newest: BTreeMap<&str, &TaskRecord> = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.kind == TaskKind::Create) {
        newest.entry(t.backup_name.as_str()).or_insert(t);
    }
    let items: Vec<GuideBackup> = rows
        .iter()
        .map(|row| listed(row, newest.get(row.name.as_str()).copied()))
        .collect();
    Ok(ok(&rid, items))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GuideGetQuery {
    /// The backup's name.
    backup_name: String,
}

/// One backup: stored (whoever made it), or being made by this server.
#[utoipa::path(get, path = "/api/v1/backup/get", tag = "guide", params(GuideGetQuery),
    responses((status = 200, description = "Success", body = GuideBackupResponse), GuideErrorResponses))]
pub async fn get(
    State(s): State<Shared>,
    rid: Rid,
    query: Result<Params<GuideGetQuery>, ApiError>,
) -> Answer {
    let Params(q) = query?;
    let name = q.backup_name.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "backup_name is required, e.g. /api/v1/backup/get?backup_name=nightly",
        )
        .into());
    }
    let task = s.tasks.latest_create(name);
    if let Some(t) = task.as_ref().filter(|t| !t.state.is_terminal()) {
        return Ok(ok(&rid, of_task(t)));
    }
    match catalog::row_as_shown(&s.ctx.backup_storage, name).await {
        Ok(row) => Ok(ok(&rid, listed(&row, task.as_ref()))),
        // This server's failed or cancelled attempt left nothing behind.
        Err(e)
            if e.kind() == ErrorKind::NotFound
                && task.as_ref().is_some_and(|t| t.state != TaskState::Success) =>
        {
            Ok(ok(&rid, of_task(&task.unwrap())))
        }
        Err(e) => Err(s.core(&rid)(e).into()),
    }
}

/// A restore task.
fn restored(r: &TaskRecord) -> GuideRestore {
    GuideRestore {
        task_id: r.id.clone(),
        backup_name: r.backup_name.clone(),
        status: status_of(r.state).into(),
        progress: r.progress,
        collections: r
            .collections
            .iter()
            .map(|c| GuideRestoredCollection {
                source: c.source.clone(),
                target: c.target.clone(),
                status: status_of(c.state).into(),
                progress: c.progress,
            })
            .collect(),
        total_entities: r
            .result
            .as_ref()
            .and_then(|v| v.get("entities"))
            .and_then(|v| v.as_i64())
            .unwrap_or(0),
        duration: seconds(r),
        error: r.error_message.clone(),
    }
}

/// Restores collections of a backup; `target_collection` names the one
/// collection of `collections` restored under a new name.
#[utoipa::path(post, path = "/api/v1/backup/restore", tag = "guide", request_body = GuideRestoreRequest,
    responses((status = 200, description = "The restore done (sync) or under way (async)", body = GuideRestoreResponse), GuideErrorResponses))]
pub async fn restore(
    State(s): State<Shared>,
    rid: Rid,
    body: Result<JsonBody<GuideRestoreRequest>, ApiError>,
) -> Answer {
    let JsonBody(req) = body?;
    let own_names =
        req.target_collection.trim().is_empty() && req.suffix.is_empty() && req.renames.is_empty();
    let request = RestoreRequest {
        backup_name: req.backup_name,
        collections: req.collections,
        target_collection: Some(req.target_collection),
        databases: req.databases,
        suffix: req.suffix,
        renames: req
            .renames
            .iter()
            .map(|(a, b)| format!("{a}:{b}"))
            .collect(),
        drop_exist_collection: req
            .drop_existing
            .unwrap_or(own_names && !req.skip_create_collection),
        skip_create_collection: req.skip_create_collection,
        meta_only: req.meta_only,
        restore_index: req.restore_index.unwrap_or(true),
        use_auto_index: req.use_auto_index,
        drop_exist_index: req.drop_exist_index,
        load: true,
        skip_unsupported: req.skip_unsupported,
        ..Default::default()
    };
    let opts = RestoreOptions::from_request(request).map_err(s.core(&rid))?;
    match start_restore(&s, &rid, opts, &req.id, req.dry_run, req.is_async).await? {
        Started::Plan(plan) => Ok(ok(&rid, plan)),
        Started::Task(task) => Ok(ok(
            &rid,
            outcome(&rid, &task, req.is_async, restored).await?,
        )),
    }
}

/// Deletes a backup (JSON body `{"backup_name": …}`).
#[utoipa::path(delete, path = "/api/v1/backup/delete", tag = "guide", request_body = GuideDeleteRequest,
    responses((status = 200, description = "Success", body = GuideDeleteResponse), GuideErrorResponses))]
pub async fn delete(
    State(s): State<Shared>,
    rid: Rid,
    body: Result<JsonBody<GuideDeleteRequest>, ApiError>,
) -> Answer {
    let JsonBody(req) = body?;
    let deleted = delete_backup(&s, &rid, req.backup_name.trim()).await?;
    Ok(ok(&rid, deleted))
}

/// A task of any kind.
fn task_status(r: &TaskRecord) -> GuideStatus {
    GuideStatus {
        id: r.id.clone(),
        kind: r.kind.as_str().into(),
        backup_name: r.backup_name.clone(),
        status: status_of(r.state).into(),
        progress: r.progress,
        step: r.step.clone(),
        error: r.error_message.clone(),
        started_at: rfc3339(r.start_time).unwrap_or_default(),
        finished_at: r.state.is_terminal().then(|| rfc3339(r.end_time)).flatten(),
    }
}

/// A task of this server (create, restore or verify) by its id, or a
/// create by the id of the backup it made.
#[utoipa::path(get, path = "/api/v1/backup/status", tag = "guide", params(IdQuery),
    responses((status = 200, description = "Success", body = GuideStatusResponse), GuideErrorResponses))]
pub async fn status(
    State(s): State<Shared>,
    rid: Rid,
    query: Result<Params<IdQuery>, ApiError>,
) -> Answer {
    let Params(q) = query?;
    let id = q.id.trim();
    if id.is_empty() {
        return Err(ApiError::bad_request(
            "id is required, e.g. /api/v1/backup/status?id=<task_id>",
        )
        .into());
    }
    let record = s.tasks.get(id).map(|t| t.snapshot()).or_else(|| {
        s.tasks
            .all()
            .into_iter()
            .find(|r| r.kind == TaskKind::Create && r.backup_id == id)
    });
    match record {
        Some(r) => Ok(ok(&rid, task_status(&r))),
        None => Err(ApiError::not_found(format!(
            "no task `{id}` on this server — the task_id of create, restore and verify answers"
        ))
        .into()),
    }
}

/// A verify task and, once done, its verdict per check.
fn verified(r: &TaskRecord) -> GuideVerify {
    let result = r.result.as_ref();
    let findings = result.and_then(|v| v.get("findings"));
    let count = |k: &str| findings.and_then(|f| f.get(k)).and_then(|v| v.as_u64());
    let deep = r.options.get("deep").and_then(|v| v.as_bool()) == Some(true);
    let verdict = |ok: bool| if ok { "OK" } else { "FAILED" }.to_string();
    let problems: Vec<VerifyProblem> = result
        .and_then(|v| v.get("problems"))
        .and_then(|p| serde_json::from_value(p.clone()).ok())
        .unwrap_or_default();
    let num = |k: &str| result.and_then(|v| v.get(k)).and_then(|v| v.as_u64());
    GuideVerify {
        task_id: r.id.clone(),
        backup_name: r.backup_name.clone(),
        status: status_of(r.state).into(),
        valid: findings.map(|_| problems.is_empty()),
        checksum: count("files").map(|n| match (n, deep) {
            (0, false) => "skipped".to_string(),
            (n, _) => verdict(n == 0),
        }),
        metadata: count("metadata").map(|n| verdict(n == 0)),
        restore_test: findings.map(|f| match f.get("restore_test").and_then(|v| v.as_u64()) {
            None => "skipped".to_string(),
            Some(n) => verdict(n == 0),
        }),
        files: num("files").unwrap_or(0),
        bytes: num("bytes").unwrap_or(0),
        problems,
        error: r.error_message.clone(),
    }
}

/// Verifies a backup: its meta files, every file's size (`deep`: its
/// checksum) and, with `restore_test`, a restore into throwaway
/// collections. `valid` is the verdict; a damaged backup is still a 200.
#[utoipa::path(post, path = "/api/v1/backup/verify", tag = "guide", request_body = GuideVerifyRequest,
    responses((status = 200, description = "The verdict (sync) or the verify under way (async)", body = GuideVerifyResponse), GuideErrorResponses))]
pub async fn verify(
    State(s): State<Shared>,
    rid: Rid,
    body: Result<JsonBody<GuideVerifyRequest>, ApiError>,
) -> Answer {
    let JsonBody(req) = body?;
    let task = start_verify(
        &s,
        &rid,
        &req.backup_name,
        req.deep,
        req.restore_test,
        req.is_async,
    )
    .await?;
    Ok(ok(
        &rid,
        outcome(&rid, &task, req.is_async, verified).await?,
    ))
}

/// An error of a route outside the handlers (auth, unknown route), in the
/// envelope of the path's API.
pub fn error_for(path: &str, e: ApiError) -> Response {
    if is_guide_path(path) {
        GuideError(e).into_response()
    } else {
        e.into_response()
    }
}
