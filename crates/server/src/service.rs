//! The routes about the server itself: `hello`, `tasks`, `cancel`,
//! `check` (Milvus and both storages probed), `healthz` and Prometheus
//! `metrics`. Backups are `routes`' and `backups`'.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use milvus_backup_core::ops::check;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::*;
use crate::error::{code, scrub, ApiError};
use crate::record::{TaskKind, TaskState};
use crate::shared::{ok, IdQuery, Params, Rid, Shared};

/// Says hello (liveness for the Go tool's clients).
#[utoipa::path(get, path = "/api/v1/hello", tag = "backup",
    responses((status = 200, description = "Success", body = HelloResponse), ErrorResponses))]
pub async fn hello(rid: Rid) -> Response {
    ok(&rid, "Hello, This is backup service")
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
    if r.state == TaskState::Success {
        return Err(ApiError::conflict(format!(
            "task `{id}` finished before it could be cancelled"
        ))
        .with_data(TaskSummary::of(&r))
        .with_request_id(&rid.0));
    }
    Ok(ok(&rid, TaskSummary::of(&r)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TasksQuery {
    /// `create`, `restore`, `verify`, `compare` or `migrate`.
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
        Some("compare") => Some(TaskKind::Compare),
        Some("migrate") => Some(TaskKind::Migrate),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
            "kind `{other}` is not a task kind — use create, restore, verify, compare or migrate"
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
            detail: scrub(&st.detail, &s.secrets),
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
        text.push_str(&crate::metrics::schedule(sched));
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
