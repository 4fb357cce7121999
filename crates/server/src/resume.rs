//! `POST /api/v1/resume?id=`: continues a create or restore task that
//! failed or was interrupted (its server stopped) as a new task, with the
//! options the task recorded and the core's `resume` set — the create keeps
//! the files the first run stored, the restore skips what it imported.

use axum::extract::State;
use axum::response::Response;
use milvus_backup_core::ops::backup::BackupOptions;
use milvus_backup_core::ops::restore::RestoreOptions;

use crate::api::TaskSummary;
use crate::error::ApiError;
use crate::record::{TaskKind, TaskRecord, TaskState};
use crate::routes::{start_create, start_restore, Started};
use crate::shared::{ok, IdQuery, Params, Rid, Shared};

/// Key of a task record's `options` holding the core options to resume with.
pub(crate) const RESUME_WITH: &str = "resume_with";

/// Resumes a failed or interrupted create or restore task as a new task
/// (answered at once, like an async request; poll it by its new id).
#[utoipa::path(post, path = "/api/v1/resume", tag = "tasks", params(IdQuery),
    responses((status = 200, description = "The new task", body = crate::api::CancelResponse), crate::api::ErrorResponses))]
pub async fn resume(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<IdQuery>,
) -> Result<Response, ApiError> {
    let id = q.id.trim();
    let Some(task) = s.tasks.get(id) else {
        return Err(ApiError::not_found(format!(
            "no task `{id}` on this server"
        )));
    };
    let r = task.snapshot();
    if !matches!(r.state, TaskState::Failed | TaskState::Interrupted) {
        return Err(ApiError::conflict(format!(
            "task `{id}` is {}: only a failed or interrupted create or restore can be resumed",
            r.state.as_str()
        )));
    }
    let started = match r.kind {
        TaskKind::Create => {
            let mut opts: BackupOptions = recorded(&r)?;
            opts.name = Some(r.backup_name.clone());
            opts.resume = true;
            start_create(&s, &rid, opts, false, true).await?
        }
        TaskKind::Restore => {
            let mut opts: RestoreOptions = recorded(&r)?;
            opts.resume = true;
            start_restore(&s, &rid, opts, "", false, true).await?
        }
        TaskKind::Verify | TaskKind::Compare => {
            return Err(ApiError::bad_request(format!(
                "a {} task has nothing to resume — run it again",
                r.kind.as_str()
            )))
        }
        TaskKind::Migrate => {
            return Err(ApiError::bad_request(
                "a migrate round has nothing to resume — POST /api/v1/migrate again: the next round repairs what this one left",
            ))
        }
    };
    match started {
        Started::Task(t) => Ok(ok(&rid, TaskSummary::of(&t.snapshot()))),
        Started::Plan(_) => Err(ApiError::bad_request("a resume is never a dry run")),
    }
}

fn recorded<T: serde::de::DeserializeOwned>(r: &TaskRecord) -> Result<T, ApiError> {
    r.options
        .get(RESUME_WITH)
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "task `{}` did not record its options (made by an older server) — run it again with resume set",
                r.id
            ))
        })
}
