//! The HTTP routes of `backup_strategy`: `/api/v1/schedule`,
//! `/api/v1/schedule/run_now` and `/api/v1/health`, over the core's
//! scheduler the server started (404 when the config has no strategy).
//! When runs start, the lease and the state are the core's.

use axum::extract::{Query, State};
use axum::response::Response;
use milvus_backup_core::schedule::PolicyKind;
use serde::Deserialize;

use crate::api::ErrorResponses;
use crate::error::ApiError;
use crate::shared::{ok, Rid, Shared};

fn not_configured() -> ApiError {
    ApiError::not_found("this server has no backup_strategy — add one to the config file (see README: backup_strategy)")
}

/// `GET /api/v1/schedule`: each policy's last run, next run and outcome.
#[utoipa::path(get, path = "/api/v1/schedule", tag = "schedule",
    responses((status = 200, description = "Success", body = crate::api::ScheduleResponse), ErrorResponses))]
pub async fn schedule(
    State(s): State<Shared>,
    rid: Rid,
) -> std::result::Result<Response, ApiError> {
    let sched = s.scheduler.as_ref().ok_or_else(not_configured)?;
    Ok(ok(&rid, sched.status()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunNowQuery {
    /// `full`, `incremental` or `verification`.
    policy: String,
}

/// `POST /api/v1/schedule/run_now?policy=full|incremental|verification`:
/// starts one run now, as a task (see `/api/v1/tasks`).
#[utoipa::path(post, path = "/api/v1/schedule/run_now", tag = "schedule", params(RunNowQuery),
    responses((status = 200, description = "The run's task", body = crate::api::CancelResponse), ErrorResponses))]
pub async fn run_now(
    State(s): State<Shared>,
    rid: Rid,
    Query(q): Query<RunNowQuery>,
) -> std::result::Result<Response, ApiError> {
    let sched = s.scheduler.as_ref().ok_or_else(not_configured)?;
    let kind =
        PolicyKind::parse(&q.policy).map_err(|e| ApiError::bad_request(e.message().to_string()))?;
    let id = sched.launch(kind, "run-now").map_err(s.core(&rid))?;
    let r = s.tasks.get(&id).map(|t| t.snapshot()).unwrap_or_default();
    Ok(ok(&rid, crate::api::TaskSummary::of(&r)))
}

/// `GET /api/v1/health`: RPO, verification, secondary lag, failed runs
/// (what `milvus-backup status --json` prints).
#[utoipa::path(get, path = "/api/v1/health", tag = "schedule",
    responses((status = 200, description = "Success", body = crate::api::StrategyHealthResponse), ErrorResponses))]
pub async fn health(State(s): State<Shared>, rid: Rid) -> std::result::Result<Response, ApiError> {
    let sched = s.scheduler.as_ref().ok_or_else(not_configured)?;
    let report = sched.refresh_health().await.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            crate::error::code::FAIL,
            "health could not be computed: backup storage failed (see the server log)",
        )
    })?;
    Ok(ok(&rid, report))
}
