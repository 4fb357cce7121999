//! The router at the top of the crate: every route registered once with
//! `utoipa-axum` (each handler's `#[utoipa::path]` gives both its axum
//! route and its operation in the OpenAPI document, so the two cannot
//! drift), the document's header (info, tags, bearer security), the docs
//! UI, the fallbacks for unknown routes and methods, the bearer-token
//! check and the request log. The handlers are in their own modules.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::SecurityRequirement;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use milvus_backup_core::Caller;

use crate::api;
use crate::error::{self, ApiError};
use crate::shared::Shared;
use crate::{backups, guide, live, page, resume, routes, schedule_routes, service};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "milvus-backup REST API",
        description = "Backup and restore for Milvus, compatible with zilliztech/milvus-backup's /api/v1. Every response is `{requestId, code, msg, data}`; `code` is 0 on success. The user guide's routes under /api/v1/backup/ answer `{requestId, code, message, data}` instead. When `http.authToken` is set, every route but /api/v1/healthz needs `Authorization: Bearer <token>`.",
    ),
    components(schemas(api::ErrorResponse, api::GuideErrorResponse)),
    tags(
        (name = "backup", description = "Create, list, get, delete and verify backups"),
        (name = "restore", description = "Restore backups into Milvus"),
        (name = "tasks", description = "Tasks, health and metrics"),
        (name = "live", description = "Compare two live collections, and migrate one into another Milvus while it is in use"),
        (name = "schedule", description = "The backup_strategy's schedules and health: present when the config has a backup_strategy"),
        (name = "guide", description = "The user guide's API: create, list, get, restore, delete, status and verify under /api/v1/backup/, in the envelope `{requestId, code, message, data}`"),
    ),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
        // The token is optional: required only when the server has one.
        openapi.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
    }
}

/// Every route of the API, each registered once: `routes!` reads the
/// handler's `#[utoipa::path]` for both its axum route and its operation
/// in the document.
fn api() -> OpenApiRouter<Shared> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(service::hello))
        .routes(routes!(routes::create))
        .routes(routes!(backups::list))
        .routes(routes!(backups::get_backup))
        .routes(routes!(backups::delete))
        .routes(routes!(routes::restore))
        .routes(routes!(routes::get_restore))
        .routes(routes!(backups::verify))
        .routes(routes!(backups::get_verify))
        .routes(routes!(service::cancel))
        .routes(routes!(resume::resume))
        .routes(routes!(service::tasks))
        .routes(routes!(service::check))
        .routes(routes!(live::compare))
        .routes(routes!(live::migrate))
        .routes(routes!(live::get_compare))
        .routes(routes!(live::get_migrate))
        .routes(routes!(service::healthz))
        .routes(routes!(service::metrics))
        .routes(routes!(guide::create))
        .routes(routes!(guide::list))
        .routes(routes!(guide::get))
        .routes(routes!(guide::restore))
        .routes(routes!(guide::delete))
        .routes(routes!(guide::status))
        .routes(routes!(guide::verify))
        .routes(routes!(schedule_routes::schedule))
        .routes(routes!(schedule_routes::run_now))
        .routes(routes!(schedule_routes::health))
        // Outside the document: the short health alias and the status page.
        .route("/healthz", get(service::healthz))
        .route("/", get(page::status_page))
}

/// The OpenAPI document of the API, generated from the code.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// The routes, with the docs UI, auth and request logging.
pub fn router(state: Shared) -> Router {
    let (api, doc) = api().split_for_parts();
    Router::new()
        .merge(SwaggerUi::new("/api/v1/docs").url("/api/v1/docs/openapi.json", doc))
        .merge(api.with_state(state.clone()))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
        .layer(axum::middleware::from_fn(log_request))
        .layer(axum::middleware::from_fn(with_caller))
}

/// Runs the request with its caller known, so that errors name options in
/// its words: the Python SDK (by its User-Agent), a user guide route, or a
/// Go tool route.
async fn with_caller(req: Request, next: Next) -> Response {
    let sdk = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("milvus-backup-sdk"));
    let caller = if sdk {
        Caller::Sdk
    } else if guide::is_guide_path(req.uri().path()) {
        Caller::Guide
    } else {
        Caller::Rest
    };
    error::as_caller(caller, next.run(req)).await
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> Response {
    let e = ApiError::not_found(format!(
        "no route {method} {} — see /api/v1/docs/index.html",
        uri.path()
    ));
    guide::error_for(uri.path(), e)
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    let e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        error::code::PARAMETER_ERROR,
        format!(
            "{method} is not allowed on {} — see /api/v1/docs/index.html",
            uri.path()
        ),
    );
    guide::error_for(uri.path(), e)
}

/// Requires `Authorization: Bearer <token>` on every route but the health
/// checks when a token is configured; compared in constant time.
async fn authenticate(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let Some(token) = s.token.as_deref() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path == "/healthz" || path == "/api/v1/healthz" {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let refused = match given {
        Some(g) if bool::from(g.as_bytes().ct_eq(token.as_bytes())) => return next.run(req).await,
        Some(_) => ApiError::unauthorized("the bearer token is wrong"),
        None => ApiError::unauthorized(
            "this server requires `Authorization: Bearer <token>` (http.authToken)",
        ),
    };
    guide::error_for(req.uri().path(), refused)
}

/// One log line per request: method, path, status, milliseconds (never
/// headers or bodies, so no token or secret reaches the log).
async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        "{method} {path} {} {} ms",
        resp.status().as_u16(),
        started.elapsed().as_millis()
    );
    resp
}
