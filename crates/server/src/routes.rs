//! The handlers of `/api/v1`: each maps its request onto the core's options,
//! has the core plan the operation (the core validates names, checks what
//! exists and refuses what it must), and either answers with the plan
//! (`dry_run`) or runs the core's execute as a task. Results and errors are
//! mapped onto the Go tool's response shape. No backup behaviour lives here:
//! what is the server's own is the task registry (names being created,
//! task ids, what runs on which backup).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use milvus_backup_core::config::Config;
use milvus_backup_core::events::Discard;
use milvus_backup_core::model::selection::{CollectionRef, Selection};
use milvus_backup_core::ops::backup::{self, BackupOptions, BackupRequest};
use milvus_backup_core::ops::delete::{self, DeleteOptions, DeleteTarget};
use milvus_backup_core::ops::restore::{self, CollectionOverride, RestoreOptions};
use milvus_backup_core::ops::verify::{self, VerifyOptions};
use milvus_backup_core::repo::catalog::{self, BackupState};
use milvus_backup_core::{ops::check, CancellationToken, Context, ErrorKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses};

use crate::api::*;
use crate::error::{code, ApiError};
use crate::tasks::{boxed, Task, TaskKind, TaskManager, TaskRecord, TaskState};

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    pub ctx: Context,
    pub tasks: Arc<TaskManager>,
    pub token: Option<String>,
    pub secrets: Vec<String>,
    /// The `backup_strategy` scheduler, when configured.
    pub scheduler: Option<Arc<crate::scheduler::Scheduler>>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub(crate) fn core(&self, rid: &Rid) -> impl Fn(milvus_backup_core::Error) -> ApiError + '_ {
        let rid = rid.0.clone();
        move |e| ApiError::from_core(&e, &self.secrets).with_request_id(&rid)
    }
}

/// The request id: the Go tool's `request_id` header, `X-Request-Id`, or a fresh UUID.
pub struct Rid(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Rid {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let given = ["request_id", "x-request-id"]
            .iter()
            .filter_map(|h| parts.headers.get(*h))
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.trim())
            .find(|v| !v.is_empty() && v.len() <= 128);
        Ok(Rid(given
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())))
    }
}

/// A JSON body, whatever the `Content-Type`; errors in the envelope.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "the request body is empty — send a JSON object, e.g. {\"backup_name\": \"nightly\"}",
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
        })?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object, e.g. {\"backup_name\": \"nightly\"}",
            ));
        }
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))
    }
}

/// Query parameters; errors in the envelope.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Params(q))
            .map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))
    }
}

pub(crate) fn ok<T: Serialize>(rid: &Rid, data: T) -> Response {
    Json(serde_json::json!({
        "requestId": rid.0,
        "code": code::SUCCESS,
        "msg": "success",
        "data": data,
    }))
    .into_response()
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

pub(crate) fn task_failure(r: &TaskRecord) -> ApiError {
    let status = StatusCode::from_u16(r.error_status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match status {
        StatusCode::BAD_REQUEST => code::PARAMETER_ERROR,
        StatusCode::NOT_FOUND => code::NOT_FOUND,
        _ => code::FAIL,
    };
    ApiError::new(status, code, r.error_message.clone())
}

/// The answer to a request that started `task`: its view at once when
/// `is_async`, else once it ended (a failure as its error status).
async fn answer<V: Serialize>(
    rid: &Rid,
    task: &Task,
    is_async: bool,
    view: impl Fn(&TaskRecord) -> V,
) -> Result<Response, ApiError> {
    outcome(rid, task, is_async, view).await.map(|v| ok(rid, v))
}

/// The view of `task` at once when `is_async`, else once it ended; a
/// failure is an error with its status and the view as data.
pub(crate) async fn outcome<V: Serialize>(
    rid: &Rid,
    task: &Task,
    is_async: bool,
    view: impl Fn(&TaskRecord) -> V,
) -> Result<V, ApiError> {
    if is_async {
        return Ok(view(&task.snapshot()));
    }
    task.wait_done().await;
    let r = task.snapshot();
    if r.state == TaskState::Success {
        return Ok(view(&r));
    }
    Err(task_failure(&r).with_data(view(&r)).with_request_id(&rid.0))
}

pub(crate) fn parse_db_collections(
    value: &serde_json::Value,
) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    match value {
        serde_json::Value::Null => Ok(BTreeMap::new()),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(BTreeMap::new()),
        v => Selection::parse_db_collections(&v.to_string())
            .map_err(|e| ApiError::bad_request(format!("db_collections: {e}"))),
    }
}

pub(crate) fn parse_list(value: &serde_json::Value, field: &str) -> Result<Vec<String>, ApiError> {
    let items: Vec<String> = match value {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::String(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::bad_request(format!("{field} must be a list of strings"))
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::bad_request(format!(
                "{field} must be a list of strings or a comma-separated string"
            )))
        }
    };
    Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Says hello (liveness for the Go tool's clients).
#[utoipa::path(get, path = "/api/v1/hello", tag = "backup",
    responses((status = 200, description = "Success", body = HelloResponse), ErrorResponses))]
pub async fn hello(rid: Rid) -> Response {
    ok(&rid, "Hello, This is backup service")
}

/// Creates a backup: synchronously (the whole brief) or with `async: true`
/// (the task at once; poll `get_backup`).
#[utoipa::path(post, path = "/api/v1/create", tag = "backup", request_body = CreateRequest,
    params(("request_id" = Option<String>, Header, description = "Echoed as requestId")),
    responses((status = 200, description = "The backup (sync), its task (async) or the plan (dry_run)", body = CreateResponse), ErrorResponses))]
pub async fn create(
    State(s): State<Shared>,
    rid: Rid,
    JsonBody(req): JsonBody<CreateRequest>,
) -> Result<Response, ApiError> {
    let request = BackupRequest {
        name: Some(req.backup_name.clone()),
        blank_name_is_unset: true,
        selection: Selection {
            collections: req.collection_names.clone(),
            db_collections: parse_db_collections(&req.db_collections)?,
            databases: Vec::new(),
            filter: parse_list(&req.filter, "filter")?,
        },
        force: req.force,
        meta_only: req.meta_only,
        rbac: req.rbac,
        compress: req.compress.clone(),
        compress_level: req.compress_level,
        encrypt: req.encrypt,
        base_backup: req.base_backup.clone(),
        incremental: req.incremental,
        format: req.format.clone(),
        resume: req.resume,
        ..Default::default()
    };
    let opts = BackupOptions::from_request(request, &s.config.backup).map_err(s.core(&rid))?;
    let task = match start_create(&s, &rid, opts, req.dry_run, req.is_async).await? {
        Started::Plan(plan) => return Ok(ok(&rid, plan)),
        Started::Task(task) => task,
    };
    if req.is_async {
        return Ok(ok(&rid, backup_brief_of_task(&task.snapshot())));
    }
    task.wait_done().await;
    let r = task.snapshot();
    if r.state == TaskState::Success {
        let info = catalog::get(&s.ctx.backup_storage, &r.backup_name)
            .await
            .map_err(s.core(&rid))?;
        return Ok(ok(&rid, backup_brief_of_info(&info, Some(&r))));
    }
    Err(task_failure(&r)
        .with_data(backup_brief_of_task(&r))
        .with_request_id(&rid.0))
}

/// What a request to start work gets: the plan (a dry run) or the task.
pub(crate) enum Started {
    Plan(serde_json::Value),
    Task(Arc<Task>),
}

/// Has the core plan a create and, unless `dry_run`, runs it as a task;
/// the name is reserved while it runs (shared by both create routes).
pub(crate) async fn start_create(
    s: &Shared,
    rid: &Rid,
    opts: BackupOptions,
    dry_run: bool,
    is_async: bool,
) -> Result<Started, ApiError> {
    // A name being created by this server is taken, before storage says so.
    let early = match &opts.name {
        Some(name) if !dry_run => Some(s.tasks.reserve_name(name)?),
        _ => None,
    };
    let plan = backup::plan(&s.ctx, &opts).await.map_err(s.core(rid))?;
    if dry_run {
        return Ok(Started::Plan(
            serde_json::json!({ "dry_run": true, "plan": plan }),
        ));
    }
    let guard = match early {
        Some(guard) => guard,
        None => s.tasks.reserve_name(&plan.name)?,
    };
    let name = plan.name.clone();
    let mut record = TaskRecord::new(TaskKind::Create, uuid::Uuid::new_v4().to_string(), &name);
    record.apply(&plan.planned());
    record.options = serde_json::json!({
        "collection_names": opts.selection.collections,
        "db_collections": opts.selection.db_collections,
        "databases": opts.selection.databases,
        "filter": opts.selection.filter,
        "force": opts.force,
        "meta_only": opts.meta_only,
        "async": is_async,
        "resume_with": opts,
    });
    let task = s
        .tasks
        .spawn(record, Some(guard), move |ctx, events, cancel| {
            boxed(async move {
                let stats = backup::execute(&ctx, &plan, &events, &cancel).await?;
                let info = catalog::get(&ctx.backup_storage, &stats.name).await?;
                events.task.update(|r| {
                    r.backup_id = info.id.clone();
                    for (c, ci) in r.collections.iter_mut().zip(&info.collection_backups) {
                        c.size = ci.size;
                    }
                });
                let mut result = serde_json::to_value(&stats).unwrap_or_default();
                result["backup_timestamp"] = info.backup_timestamp.into();
                Ok(result)
            })
        });
    Ok(Started::Task(task))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only backups holding this collection (`coll` or `db.coll`).
    collection_name: Option<String>,
}

/// Lists every backup in backup storage, newest first.
#[utoipa::path(get, path = "/api/v1/list", tag = "backup", params(ListQuery),
    responses((status = 200, description = "Success", body = ListResponse), ErrorResponses))]
pub async fn list(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<ListQuery>,
) -> Result<Response, ApiError> {
    let mut rows = catalog::list(&s.ctx.backup_storage)
        .await
        .map_err(s.core(&rid))?;
    if let Some(c) = q.collection_name.as_deref().filter(|c| !c.is_empty()) {
        rows.retain(|r| r.holds(c));
    }
    let creating = s.tasks.creating();
    let items: Vec<BackupListItem> = rows
        .into_iter()
        .map(|r| {
            let running = r.state == BackupState::Incomplete && creating.contains(&r.name);
            BackupListItem {
                state_code: match (r.state, running) {
                    (BackupState::Complete, _) => 2,
                    (_, true) => 1,
                    _ => 3,
                },
                state: match r.state {
                    BackupState::Complete => "complete".into(),
                    BackupState::Incomplete => "incomplete".into(),
                    BackupState::Damaged => "damaged".into(),
                },
                id: r.id,
                size: r.size_bytes,
                entities: r.entities,
                milvus_version: r.milvus_version,
                backup_timestamp: r.backup_timestamp,
                collection_backups: r
                    .collections
                    .iter()
                    .map(|c| {
                        let c = CollectionRef::parse(c);
                        CollectionName {
                            db_name: c.db,
                            collection_name: c.name,
                        }
                    })
                    .collect(),
                name: r.name,
            }
        })
        .collect();
    Ok(ok(&rid, items))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetBackupQuery {
    /// The backup's name.
    backup_name: Option<String>,
    /// The backup's id, or the id of the task creating it.
    backup_id: Option<String>,
}

/// One backup by name or id: a complete backup in storage (whoever made
/// it), or the task of this server making it (state, progress, error).
#[utoipa::path(get, path = "/api/v1/get_backup", tag = "backup", params(GetBackupQuery),
    responses((status = 200, description = "Success", body = BackupResponse), ErrorResponses))]
pub async fn get_backup(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<GetBackupQuery>,
) -> Result<Response, ApiError> {
    let err = s.core(&rid);
    let name = q.backup_name.unwrap_or_default().trim().to_string();
    let id = q.backup_id.unwrap_or_default().trim().to_string();
    if name.is_empty() && id.is_empty() {
        return Err(ApiError::bad_request(
            "give backup_name or backup_id, e.g. /api/v1/get_backup?backup_name=nightly",
        ));
    }
    let mut task = if id.is_empty() {
        None
    } else {
        s.tasks
            .get(&id)
            .map(|t| t.snapshot())
            .filter(|r| r.kind == TaskKind::Create)
    };
    let name = if !name.is_empty() {
        name
    } else if let Some(t) = &task {
        t.backup_name.clone()
    } else {
        let rows = catalog::list(&s.ctx.backup_storage).await.map_err(&err)?;
        match rows.into_iter().find(|r| r.id == id) {
            Some(r) => r.name,
            None => {
                return Err(ApiError::not_found(format!(
                    "no backup or create task with id `{id}` — see /api/v1/list"
                )))
            }
        }
    };
    if task.is_none() {
        task = s.tasks.latest_create(&name);
    }
    if let Some(t) = task.as_ref().filter(|t| !t.state.is_terminal()) {
        return Ok(ok(&rid, backup_brief_of_task(t)));
    }
    match catalog::get(&s.ctx.backup_storage, &name).await {
        Ok(info) => {
            let t = task.filter(|t| t.state == TaskState::Success);
            Ok(ok(&rid, backup_brief_of_info(&info, t.as_ref())))
        }
        // This server's failed, cancelled or interrupted attempt (a
        // successful one whose backup is gone is simply not found).
        Err(e)
            if e.kind() != ErrorKind::Unreachable
                && task.as_ref().is_some_and(|t| t.state != TaskState::Success) =>
        {
            Ok(ok(&rid, backup_brief_of_task(&task.unwrap())))
        }
        Err(e) => Err(err(e)),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// The backup to delete (complete or not).
    backup_name: String,
}

/// Deletes one backup, completion marks first.
#[utoipa::path(delete, path = "/api/v1/delete", tag = "backup", params(DeleteQuery),
    responses((status = 200, description = "Success", body = DeleteResponse), ErrorResponses))]
pub async fn delete(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<DeleteQuery>,
) -> Result<Response, ApiError> {
    let deleted = delete_backup(&s, &rid, q.backup_name.trim()).await?;
    Ok(ok(&rid, deleted))
}

/// Deletes one backup unless a task of this server uses it.
pub(crate) async fn delete_backup(
    s: &AppState,
    rid: &Rid,
    name: &str,
) -> Result<DeleteResult, ApiError> {
    if let Some(t) = s.tasks.running_on(name) {
        return Err(ApiError::conflict(format!(
            "backup `{name}` is in use by running {} task `{}` — wait for it or cancel it first",
            t.kind.as_str(),
            t.id
        )));
    }
    let opts = DeleteOptions {
        target: DeleteTarget::Names(vec![name.to_string()]),
        keep: Vec::new(),
    };
    let stats = delete::delete(
        &s.ctx.backup_storage,
        &opts,
        &Discard,
        &CancellationToken::new(),
    )
    .await
    .map_err(s.core(rid))?;
    Ok(DeleteResult {
        backup_name: name.to_string(),
        deleted_objects: stats.objects,
    })
}

fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Maps a restore request onto the core's request; the core normalises,
/// applies the `restorePlan` (renames, overrides by target, the filter by
/// target names, as the Go tool does) and validates.
fn restore_options(req: &RestoreRequest) -> Result<RestoreOptions, ApiError> {
    let request = restore::RestoreRequest {
        backup_name: req.backup_name.clone(),
        collections: req.collection_names.clone(),
        db_collections: parse_db_collections(&req.db_collections)?,
        suffix: req.collection_suffix.clone(),
        renames: req
            .collection_renames
            .iter()
            .map(|(a, b)| format!("{a}:{b}"))
            .collect(),
        mapping: req.restore_plan.as_ref().map(restore_mapping),
        drop_exist_collection: req.drop_exist_collection,
        skip_create_collection: req.skip_create_collection,
        meta_only: req.meta_only,
        restore_index: req.restore_index,
        use_auto_index: req.use_auto_index,
        drop_exist_index: req.drop_exist_index,
        load: true,
        rbac: req.rbac,
        rbac_user_password_file: req.rbac_user_password_file.clone().map(Into::into),
        resume: req.resume,
        ..Default::default()
    };
    RestoreOptions::from_request(request).map_err(|e| ApiError::from_core(&e, &[]))
}

/// The Go tool's `restorePlan` in the core's terms.
fn restore_mapping(plan: &RestorePlan) -> restore::RestoreMapping {
    let collection = |c: &RestoreCollectionMapping| restore::CollectionMapping {
        source: c.source.clone(),
        target: c.target.clone(),
        overrides: c.overrides.as_ref().map(|o| CollectionOverride {
            shards_num: Some(o.shard_num),
            description: Some(o.description.clone()),
        }),
    };
    restore::RestoreMapping {
        databases: plan
            .mapping
            .iter()
            .map(|m| restore::DatabaseMapping {
                source: m.source.clone(),
                target: m.target.clone(),
                collections: m.colls.iter().map(collection).collect(),
            })
            .collect(),
        filter: plan
            .filter
            .iter()
            .map(|(db, f)| (db.clone(), f.colls.clone()))
            .collect(),
    }
}

/// Restores a backup into the configured Milvus; `data.id` is the task id
/// (poll `get_restore` with `async: true`).
#[utoipa::path(post, path = "/api/v1/restore", tag = "restore", request_body = RestoreRequest,
    params(("request_id" = Option<String>, Header, description = "Echoed as requestId")),
    responses((status = 200, description = "Success", body = StartRestoreResponse), ErrorResponses))]
pub async fn restore(
    State(s): State<Shared>,
    rid: Rid,
    JsonBody(req): JsonBody<RestoreRequest>,
) -> Result<Response, ApiError> {
    let opts = restore_options(&req).map_err(|e| e.with_request_id(&rid.0))?;
    match start_restore(&s, &rid, opts, &req.id, req.dry_run, req.is_async).await? {
        Started::Plan(plan) => Ok(ok(&rid, plan)),
        Started::Task(task) => answer(&rid, &task, req.is_async, RestoreTask::of).await,
    }
}

/// Has the core plan a restore and, unless `dry_run`, runs it as a task
/// with id `id` (a fresh one when empty); shared by both restore routes.
pub(crate) async fn start_restore(
    s: &Shared,
    rid: &Rid,
    opts: RestoreOptions,
    id: &str,
    dry_run: bool,
    is_async: bool,
) -> Result<Started, ApiError> {
    let err = s.core(rid);
    let id = match id.trim() {
        "" => uuid::Uuid::new_v4().to_string(),
        id if !valid_task_id(id) => {
            return Err(ApiError::bad_request(format!(
                "id `{id}` is not a valid task id — use letters, digits, `_` and `-`, at most 64"
            )))
        }
        id if s.tasks.id_taken(id) => {
            return Err(ApiError::conflict(format!(
                "a task with id `{id}` exists already"
            )))
        }
        id => id.to_string(),
    };
    let plan = restore::plan(&s.ctx, &opts).await.map_err(&err)?;
    if dry_run {
        return Ok(Started::Plan(
            serde_json::json!({ "dry_run": true, "plan": plan }),
        ));
    }
    plan.check().map_err(&err)?;
    let name = plan.backup.clone();
    let mut record = TaskRecord::new(TaskKind::Restore, id, &name);
    record.apply(&plan.planned());
    for (sub, t) in record.collections.iter_mut().zip(&plan.tasks) {
        sub.reuse_existing = t.reuse_existing;
    }
    record.options = serde_json::json!({
        "collection_names": opts.collections,
        "db_collections": opts.db_collections,
        "databases": opts.databases,
        "collection_suffix": opts.suffix,
        "renames": opts.renames,
        "overrides": opts.overrides,
        "metaOnly": opts.meta_only,
        "restoreIndex": opts.restore_index,
        "useAutoIndex": opts.use_auto_index,
        "dropExistCollection": opts.drop_exist_collection,
        "dropExistIndex": opts.drop_exist_index,
        "skipCreateCollection": opts.skip_create_collection,
        "async": is_async,
        "resume_with": opts,
    });
    let task = s.tasks.spawn(record, None, move |ctx, events, cancel| {
        boxed(async move {
            let stats = restore::execute(&ctx, &plan, &events, &cancel).await?;
            Ok(serde_json::to_value(&stats).unwrap_or_default())
        })
    });
    Ok(Started::Task(task))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdQuery {
    /// Task id.
    pub(crate) id: String,
}

/// A restore task of this server (also one from before a restart).
#[utoipa::path(get, path = "/api/v1/get_restore", tag = "restore", params(IdQuery),
    responses((status = 200, description = "Success", body = RestoreResponse), ErrorResponses))]
pub async fn get_restore(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<IdQuery>,
) -> Result<Response, ApiError> {
    let r = task_of(&s, &q.id, TaskKind::Restore)?;
    Ok(ok(&rid, RestoreTask::of(&r)))
}

fn task_of(s: &AppState, id: &str, kind: TaskKind) -> Result<TaskRecord, ApiError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(ApiError::bad_request("id is required"));
    }
    s.tasks
        .get(id)
        .map(|t| t.snapshot())
        .filter(|r| r.kind == kind)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no {} task `{id}` — see /api/v1/tasks",
                kind.as_str()
            ))
        })
}

/// Verifies a backup: meta files agree, every file exists with its size
/// (`deep`: and its SHA-256; `restore_test`: and it restores with the
/// recorded rows). The verdict is `data.ok` and `data.problems`.
#[utoipa::path(post, path = "/api/v1/verify", tag = "backup", request_body = VerifyRequest,
    responses((status = 200, description = "Success", body = VerifyResponse), ErrorResponses))]
pub async fn verify(
    State(s): State<Shared>,
    rid: Rid,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> Result<Response, ApiError> {
    let task = start_verify(
        &s,
        &rid,
        &req.backup_name,
        req.deep,
        req.restore_test,
        req.is_async,
    )
    .await?;
    answer(&rid, &task, req.is_async, VerifyTask::of).await
}

/// Has the core plan a verify of one backup and runs it as a task; its
/// result is the core's report with `findings` (problems per check).
pub(crate) async fn start_verify(
    s: &Shared,
    rid: &Rid,
    backup_name: &str,
    deep: bool,
    restore_test: bool,
    is_async: bool,
) -> Result<Arc<Task>, ApiError> {
    let opts = VerifyOptions {
        // One named backup, never "all": an empty name is refused.
        backups: vec![backup_name.trim().to_string()],
        deep,
        restore_test,
        tuning: None,
    };
    let plan = verify::plan(&s.ctx, &opts).await.map_err(s.core(rid))?;
    let name = opts.backups[0].clone();
    let mut record = TaskRecord::new(TaskKind::Verify, uuid::Uuid::new_v4().to_string(), &name);
    record.options = serde_json::json!({
        "deep": deep,
        "restore_test": restore_test,
        "async": is_async,
    });
    Ok(s.tasks.spawn(record, None, move |ctx, events, cancel| {
        boxed(async move {
            let reports = verify::execute(&ctx, &plan, &events, &cancel).await?;
            let mut result = serde_json::to_value(reports.first()).unwrap_or_default();
            if let Some(r) = reports.first() {
                result["findings"] = serde_json::to_value(r.findings()).unwrap_or_default();
            }
            Ok(result)
        })
    }))
}

/// A verify task.
#[utoipa::path(get, path = "/api/v1/get_verify", tag = "backup", params(IdQuery),
    responses((status = 200, description = "Success", body = VerifyResponse), ErrorResponses))]
pub async fn get_verify(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<IdQuery>,
) -> Result<Response, ApiError> {
    let r = task_of(&s, &q.id, TaskKind::Verify)?;
    Ok(ok(&rid, VerifyTask::of(&r)))
}

/// Cancels a running task and waits until it stopped and cleaned up: a
/// cancelled create leaves no backup, a cancelled restore drops the
/// collection it was filling. 409 when the task already finished.
#[utoipa::path(post, path = "/api/v1/cancel", tag = "tasks", params(IdQuery),
    responses((status = 200, description = "Success", body = CancelResponse), ErrorResponses))]
pub async fn cancel(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<IdQuery>,
) -> Result<Response, ApiError> {
    let id = q.id.trim();
    if id.is_empty() {
        return Err(ApiError::bad_request("id is required"));
    }
    let r = s
        .tasks
        .cancel(id)
        .await
        .map_err(|e| e.with_request_id(&rid.0))?;
    Ok(ok(&rid, TaskSummary::of(&r)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TasksQuery {
    /// `create`, `restore` or `verify`.
    kind: Option<String>,
}

/// Every task this server knows, newest first.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(TasksQuery),
    responses((status = 200, description = "Success", body = TasksResponse), ErrorResponses))]
pub async fn tasks(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<TasksQuery>,
) -> Result<Response, ApiError> {
    let kind = match q.kind.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("create") => Some(TaskKind::Create),
        Some("restore") => Some(TaskKind::Restore),
        Some("verify") => Some(TaskKind::Verify),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "kind `{other}` is not a task kind — use create, restore or verify"
            )))
        }
    };
    let list: Vec<TaskSummary> = s
        .tasks
        .all()
        .iter()
        .filter(|r| kind.is_none_or(|k| r.kind == k))
        .map(TaskSummary::of)
        .collect();
    Ok(ok(&rid, list))
}

/// Probes Milvus and both storages (write, copy, read back, delete).
/// `code` is 0 when every step passed, 3 otherwise.
#[utoipa::path(get, path = "/api/v1/check", tag = "backup",
    responses((status = 200, description = "Success", body = CheckResponse), ErrorResponses))]
pub async fn check(State(s): State<Shared>, rid: Rid) -> Response {
    let report = check::run(milvus_backup_core::context::Endpoints::from_config(
        &s.config,
    ))
    .await;
    let passed = report.passed();
    let steps: Vec<CheckStep> = report
        .steps
        .iter()
        .map(|st| CheckStep {
            name: st.name.clone(),
            status: serde_json::to_value(st.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            detail: crate::error::scrub(&st.detail, &s.secrets),
        })
        .collect();
    let msg = if passed {
        "success".to_string()
    } else {
        let failed: Vec<String> = steps
            .iter()
            .filter(|st| st.status == "FAIL")
            .map(|st| format!("{}: {}", st.name, st.detail))
            .collect();
        format!("check failed — {}", failed.join("; "))
    };
    Json(serde_json::json!({
        "requestId": rid.0,
        "code": if passed { code::SUCCESS } else { code::FAIL },
        "msg": msg,
        "data": CheckResult { passed, milvus_version: report.milvus_version.clone(), steps },
    }))
    .into_response()
}

/// Liveness; never needs the token.
#[utoipa::path(get, path = "/api/v1/healthz", tag = "tasks", security(()),
    responses((status = 200, description = "Success", body = HealthResponse)))]
pub async fn healthz(rid: Rid) -> Response {
    ok(
        &rid,
        Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    )
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(get, path = "/api/v1/metrics", tag = "tasks",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain", body = String), ErrorResponses))]
pub async fn metrics(State(s): State<Shared>) -> Response {
    let mut text = s.tasks.metrics.render(&s.tasks.running_counts());
    if let Some(sched) = &s.scheduler {
        text.push_str(&sched.render_metrics());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn db_collections_are_taken_as_object_or_string() {
        let want = BTreeMap::from([("db1".to_string(), vec!["c1".to_string()])]);
        assert_eq!(parse_db_collections(&json!({"db1": ["c1"]})).unwrap(), want);
        assert_eq!(
            parse_db_collections(&json!("{\"db1\": [\"c1\"]}")).unwrap(),
            want
        );
        assert!(parse_db_collections(&json!(null)).unwrap().is_empty());
        assert!(parse_db_collections(&json!("")).unwrap().is_empty());
        let e = parse_db_collections(&json!(5)).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn filters_are_a_list_or_a_comma_separated_string() {
        assert_eq!(
            parse_list(&json!("db1.*, default.docs"), "filter").unwrap(),
            vec!["db1.*", "default.docs"]
        );
        assert_eq!(
            parse_list(&json!(["db1.*"]), "filter").unwrap(),
            vec!["db1.*"]
        );
        assert!(parse_list(&json!([1]), "filter").is_err());
        assert!(parse_list(&json!({}), "filter").is_err());
    }

    #[test]
    fn restore_requests_map_onto_the_core_options() {
        let req: RestoreRequest = serde_json::from_value(json!({
            "backup_name": "b1",
            "collection_names": ["docs"],
            "collection_renames": {"docs": "docs_v2"},
            "metaOnly": true,
            "drop_exist_collection": true,
            "restoreIndex": true
        }))
        .unwrap();
        let o = restore_options(&req).unwrap();
        assert_eq!(o.backup_name, "b1");
        assert_eq!(o.renames, vec!["docs:docs_v2"]);
        assert!(o.meta_only && o.drop_exist_collection && o.restore_index && o.load);

        let plan: RestoreRequest = serde_json::from_value(json!({
            "backup_name": "b1",
            "restorePlan": {
                "mapping": [
                    {"source": "db1", "target": "db2", "colls": []},
                    {"source": "db3", "target": "db4", "colls": [{"source": "a", "target": "b"}]}
                ],
                "filter": {"db1": {"colls": ["x"]}}
            }
        }))
        .unwrap();
        let o = restore_options(&plan).unwrap();
        assert_eq!(o.renames, vec!["db1.*:db2.*", "db3.a:db4.b"]);
        assert_eq!(o.db_collections["db1"], vec!["x"]);

        let both: RestoreRequest = serde_json::from_value(json!({
            "backup_name": "b1", "collection_suffix": "_x", "restorePlan": {"mapping": []}
        }))
        .unwrap();
        assert!(restore_options(&both).is_err());
        // The Go tool's override test: overrides and the filter by target.
        let overrides: RestoreRequest = serde_json::from_value(json!({
            "backup_name": "b1",
            "restorePlan": {
                "mapping": [
                    {"source": "a", "target": "b", "colls": [
                        {"source": "c", "target": "d", "override": {"shardNum": 2, "description": "x"}},
                        {"source": "e", "target": "f", "override": {"shardNum": 0, "description": ""}}
                    ]},
                    {"source": "g", "target": "h", "colls": []}
                ],
                "filter": {"b": {"colls": ["d"]}, "h": {"colls": ["k"]}, "z": {"colls": ["*"]}}
            }
        }))
        .unwrap();
        let o = restore_options(&overrides).unwrap();
        assert_eq!(
            o.overrides,
            BTreeMap::from([(
                "b.d".to_string(),
                CollectionOverride {
                    shards_num: Some(2),
                    description: Some("x".into())
                }
            )])
        );
        assert_eq!(o.db_collections["a"], vec!["c"]);
        assert_eq!(o.db_collections["g"], vec!["k"]);
        assert!(o.db_collections["z"].is_empty());
        assert!(!o.db_collections.contains_key("b"));
    }

    #[test]
    fn task_ids_are_checked() {
        assert!(valid_task_id("abc-DEF_123"));
        assert!(!valid_task_id(""));
        assert!(!valid_task_id("a b"));
        assert!(!valid_task_id("../x"));
        assert!(!valid_task_id(&"a".repeat(65)));
    }

    #[test]
    fn core_errors_map_to_fitting_statuses() {
        use milvus_backup_core::Error;
        let secrets = vec!["hunter2".to_string()];
        let cases = [
            (Error::invalid_input("x"), StatusCode::BAD_REQUEST),
            (Error::not_found("x"), StatusCode::NOT_FOUND),
            (Error::already_exists("x"), StatusCode::CONFLICT),
            (Error::remote("x"), StatusCode::BAD_GATEWAY),
            (Error::internal("x"), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from_core(&e, &secrets).status, status);
        }
        let e = Error::remote("login with hunter2 refused");
        assert_eq!(
            ApiError::from_core(&e, &secrets).message,
            "login with **** refused"
        );
    }
}
