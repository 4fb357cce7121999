//! The Go tool's routes on stored backups other than create and restore:
//! `list`, `get_backup`, `delete`, `verify` and `get_verify` (and the
//! delete and verify starters the guide's routes share). Each maps its
//! request onto a core call; the views of tasks are `views`'.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use milvus_backup_core::events::Discard;
use milvus_backup_core::model::selection::CollectionRef;
use milvus_backup_core::ops::delete::{self, DeleteOptions, DeleteTarget};
use milvus_backup_core::ops::verify::{self, VerifyOptions};
use milvus_backup_core::repo::catalog::{self, BackupState};
use milvus_backup_core::{CancellationToken, ErrorKind};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::*;
use crate::error::ApiError;
use crate::record::{TaskKind, TaskRecord, TaskState};
use crate::shared::{answer, ok, task_of, AppState, IdQuery, JsonBody, Params, Rid, Shared};
use crate::tasks::{boxed, Task};
use crate::views::{backup_brief_of_info, backup_brief_of_task};

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
    // A backup its last verification found damaged is `damaged`.
    let mut rows: Vec<_> = catalog::list_as_shown(&s.ctx.backup_storage)
        .await
        .map_err(s.core(&rid))?
        .into_iter()
        .map(|(row, _)| row)
        .collect();
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
                unpersisted_deletes: r.unpersisted_deletes,
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
        force: false,
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
