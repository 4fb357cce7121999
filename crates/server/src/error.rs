//! How failures become HTTP answers: one exhaustive `match` from the core's
//! [`ErrorKind`] to a status and a response code of the Go tool, and the
//! `{requestId, code, msg, data}` envelope every error is sent in (the
//! user guide's routes: `message` for `msg`).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use milvus_backup_core::{Caller, Error, ErrorKind};

use crate::api::{ErrorResponse, GuideErrorResponse};

/// The Go tool's response codes (`backuppb.ResponseCode`).
pub mod code {
    pub const SUCCESS: i32 = 0;
    pub const NOT_SUPPORT: i32 = 1;
    pub const NO_PERMISSION: i32 = 2;
    pub const FAIL: i32 = 3;
    pub const PARAMETER_ERROR: i32 = 400;
    pub const NOT_FOUND: i32 = 404;
}

/// An error on its way to the client: status, the Go tool's code, message and
/// (sometimes) the task record it concerns.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: i32,
    pub message: String,
    pub data: Option<serde_json::Value>,
    pub request_id: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: i32, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            data: None,
            request_id: String::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code::PARAMETER_ERROR, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code::FAIL, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code::NO_PERMISSION, message)
    }

    /// Maps a core error, its remedy in the words of the request's caller;
    /// `secrets` are scrubbed from the message.
    pub fn from_core(err: &Error, secrets: &[String]) -> ApiError {
        ApiError::from_core_for(err, secrets, caller())
    }

    /// [`from_core`](Self::from_core) for a known caller (a task's, on its
    /// own thread).
    pub fn from_core_for(err: &Error, secrets: &[String], caller: Caller) -> ApiError {
        let (status, code) = match err.kind() {
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, code::PARAMETER_ERROR),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, code::NOT_FOUND),
            ErrorKind::AlreadyExists => (StatusCode::CONFLICT, code::FAIL),
            // The backup is incomplete or in use.
            ErrorKind::Conflict => (StatusCode::CONFLICT, code::FAIL),
            // Stopped on request (a task's answer, never a route's).
            ErrorKind::Cancelled => (StatusCode::CONFLICT, code::FAIL),
            // The request asks for something this build cannot do.
            ErrorKind::Unsupported => (StatusCode::BAD_REQUEST, code::NOT_SUPPORT),
            // A damaged backup cannot be used for what was asked.
            ErrorKind::Corrupt => (StatusCode::UNPROCESSABLE_ENTITY, code::FAIL),
            // Milvus or storage refused our credentials or failed: the fault
            // is upstream of this server.
            ErrorKind::PermissionDenied | ErrorKind::Remote => {
                (StatusCode::BAD_GATEWAY, code::FAIL)
            }
            ErrorKind::Unreachable | ErrorKind::Throttled => {
                (StatusCode::SERVICE_UNAVAILABLE, code::FAIL)
            }
            ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, code::FAIL),
        };
        if status.is_server_error() {
            tracing::error!("{}", scrub(&format!("{err:#}"), secrets));
        }
        ApiError::new(status, code, scrub(&err.line(caller), secrets))
    }

    pub fn with_data(mut self, data: impl serde::Serialize) -> ApiError {
        self.data = serde_json::to_value(data).ok();
        self
    }

    pub fn with_request_id(mut self, id: &str) -> ApiError {
        self.request_id = id.to_string();
        self
    }
}

tokio::task_local! {
    static CALLER: Caller;
}

/// Who sent the request being answered: the Python SDK (by its
/// User-Agent), a user guide route, or a Go tool route. Outside a request:
/// the Go tool's REST spelling.
pub fn caller() -> Caller {
    CALLER.try_with(|c| *c).unwrap_or(Caller::Rest)
}

/// Runs the request with its [`caller`] known, so that errors name options
/// in its words.
pub async fn with_caller(req: Request, next: Next) -> axum::response::Response {
    let sdk = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("milvus-backup-sdk"));
    let caller = if sdk {
        Caller::Sdk
    } else if crate::guide::is_guide_path(req.uri().path()) {
        Caller::Guide
    } else {
        Caller::Rest
    };
    CALLER.scope(caller, next.run(req)).await
}

/// `text` on one line with every secret value masked as `****`.
pub use milvus_backup_core::config::scrub::one_line as scrub;

/// An error of the user guide's routes (`/api/v1/backup/*`): the same
/// status and code, in the guide's envelope (`message`, not `msg`).
#[derive(Debug)]
pub struct GuideError(pub ApiError);

impl From<ApiError> for GuideError {
    fn from(e: ApiError) -> GuideError {
        GuideError(e)
    }
}

impl IntoResponse for GuideError {
    fn into_response(self) -> Response {
        self.0.respond(true)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(false)
    }
}

impl ApiError {
    /// The response, in the guide's envelope when `guide`.
    fn respond(self, guide: bool) -> Response {
        let request_id = if self.request_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            self.request_id
        };
        let body = if guide {
            serde_json::to_value(GuideErrorResponse {
                request_id,
                code: self.code,
                message: self.message,
                data: self.data,
            })
        } else {
            serde_json::to_value(ErrorResponse {
                request_id,
                code: self.code,
                msg: self.message,
                data: self.data,
            })
        }
        .unwrap_or_default();
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
