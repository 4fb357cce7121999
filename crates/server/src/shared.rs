//! What every handler shares: the state ([`AppState`]), the extractors
//! (request id, a JSON body whatever its `Content-Type`, query parameters,
//! errors in the envelope), the success envelope of the Go tool's routes,
//! and the answer to a request that started a task. No route is here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use milvus_backup_core::config::Config;
use milvus_backup_core::schedule::scheduler::Scheduler;
use milvus_backup_core::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::error::{code, ApiError};
use crate::record::{TaskKind, TaskRecord, TaskState};
use crate::tasks::{Task, TaskManager};

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    pub ctx: Context,
    pub tasks: Arc<TaskManager>,
    pub token: Option<String>,
    pub secrets: Vec<String>,
    /// The `backup_strategy` scheduler, when configured.
    pub scheduler: Option<Arc<Scheduler>>,
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
        let mut unknown = Vec::new();
        let parsed: T = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()))
            .map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))?;
        match unknown
            .iter()
            .find(|f| !GO_TOOL_FIELDS.contains(&f.as_str()))
        {
            Some(field) => Err(ApiError::bad_request(unknown_field::<T>(field))),
            None => Ok(JsonBody(parsed)),
        }
    }
}

/// Fields the Go tool's clients send that no route here reads: accepted
/// (and ignored) so that those clients keep working.
const GO_TOOL_FIELDS: &[&str] = &[
    "requestId",
    "gc_pause_enable",
    "gc_pause_seconds",
    "gc_pause_address",
    "backup_root_path",
    "strategy",
    "with_index_extra",
    "bucket_name",
    "path",
    "backup_id",
    "without_detail",
    "skipImportDiskQuotaCheck",
    "maxShardNum",
    "skipParams",
    "truncateBinlogByTs",
    "db_collections_after_rename",
    "ezkMapping",
    "useV2Restore",
];

/// The refusal of a field `T` does not have, naming the nearest one it has.
fn unknown_field<T: DeserializeOwned>(field: &str) -> String {
    let known = field_names::<T>();
    let nearest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(field, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 3))
        .min();
    match nearest {
        Some((_, k)) => {
            format!("unknown field `{field}` in the request body — did you mean `{k}`?")
        }
        None => format!(
            "unknown field `{field}` in the request body — the fields are: {}",
            known.join(", ")
        ),
    }
}

/// The field names (aliases included) `T`'s derived `Deserialize` accepts
/// at the top level, read from what it passes to `deserialize_struct`.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Stop {
            Stop
        }
    }
    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
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
pub(crate) async fn answer<V: Serialize>(
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdQuery {
    /// Task id.
    pub(crate) id: String,
}

pub(crate) fn task_of(s: &AppState, id: &str, kind: TaskKind) -> Result<TaskRecord, ApiError> {
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
