//! `milvus-backup server`: the Go tool's REST API (`/api/v1`) over the core
//! library, plus what the Go tool lacks — persistent async tasks with
//! cancel, `verify`, `/tasks`, `/healthz`, Prometheus `/metrics`, an
//! optional bearer token and graceful shutdown.
//!
//! Modules: [`api`] (wire types and their OpenAPI schemas), `routes`
//! (handlers: request → core call → response), `guide` (the user guide's
//! `/api/v1/backup/*` over the same calls and tasks), `tasks` (async tasks,
//! progress, persistence, cancel), `error` (core error kinds → HTTP
//! statuses), `metrics` (Prometheus text). All backup behaviour is in
//! `milvus_backup_core`.

pub mod api;
mod error;
mod guide;
mod metrics;
mod page;
mod resume;
mod routes;
pub mod scheduler;
mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use milvus_backup_core::config::Config;
use milvus_backup_core::{repo::catalog, Context, Error, Result};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::SecurityRequirement;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::routes::{AppState, Shared};

/// Where and how to serve.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Port (`-p`); default 8080, or the port in `http.address` when it has one.
    pub port: Option<u16>,
}

pub const DEFAULT_PORT: u16 = 8080;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "milvus-backup REST API",
        description = "Backup and restore for Milvus, compatible with zilliztech/milvus-backup's /api/v1. Every response is `{requestId, code, msg, data}`; `code` is 0 on success. The user guide's routes under /api/v1/backup/ answer `{requestId, code, message, data}` instead. When `http.authToken` is set, every route but /api/v1/healthz needs `Authorization: Bearer <token>`.",
    ),
    paths(
        routes::hello,
        routes::create,
        routes::list,
        routes::get_backup,
        routes::delete,
        routes::restore,
        routes::get_restore,
        routes::verify,
        routes::get_verify,
        routes::cancel,
        resume::resume,
        routes::tasks,
        routes::check,
        routes::healthz,
        routes::metrics,
        guide::create,
        guide::list,
        guide::get,
        guide::restore,
        guide::delete,
        guide::status,
        guide::verify,
        scheduler::schedule,
        scheduler::run_now,
        scheduler::health,
    ),
    components(schemas(api::ErrorResponse, api::GuideErrorResponse)),
    tags(
        (name = "backup", description = "Create, list, get, delete and verify backups"),
        (name = "restore", description = "Restore backups into Milvus"),
        (name = "tasks", description = "Tasks, health and metrics"),
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

/// The OpenAPI document of the API, generated from the code.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The routes, with auth and request logging.
fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/api/v1/hello", get(routes::hello))
        .route("/api/v1/create", post(routes::create))
        .route("/api/v1/list", get(routes::list))
        .route("/api/v1/get_backup", get(routes::get_backup))
        .route("/api/v1/delete", delete(routes::delete))
        .route("/api/v1/restore", post(routes::restore))
        .route("/api/v1/get_restore", get(routes::get_restore))
        .route("/api/v1/verify", post(routes::verify))
        .route("/api/v1/get_verify", get(routes::get_verify))
        .route("/api/v1/cancel", post(routes::cancel))
        .route("/api/v1/resume", post(resume::resume))
        .route("/api/v1/tasks", get(routes::tasks))
        .route("/api/v1/check", get(routes::check))
        .route("/api/v1/healthz", get(routes::healthz))
        .route("/healthz", get(routes::healthz))
        .route("/api/v1/metrics", get(routes::metrics))
        .route("/api/v1/backup/create", post(guide::create))
        .route("/api/v1/backup/list", get(guide::list))
        .route("/api/v1/backup/get", get(guide::get))
        .route("/api/v1/backup/restore", post(guide::restore))
        .route("/api/v1/backup/delete", delete(guide::delete))
        .route("/api/v1/backup/status", get(guide::status))
        .route("/api/v1/backup/verify", post(guide::verify))
        .route("/api/v1/schedule", get(scheduler::schedule))
        .route("/api/v1/schedule/run_now", post(scheduler::run_now))
        .route("/api/v1/health", get(scheduler::health))
        .route("/", get(page::status_page))
        .with_state(state.clone());
    Router::new()
        .merge(SwaggerUi::new("/api/v1/docs").url("/api/v1/docs/openapi.json", openapi()))
        .merge(api)
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
        .layer(axum::middleware::from_fn(log_request))
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

/// The address to bind: `http.address` (default `0.0.0.0`) with the port
/// from `opts`, from the address itself, or 8080.
pub fn bind_address(config: &Config, opts: &ServeOptions) -> Result<SocketAddr> {
    let address = match config.http.address.trim() {
        "" => "0.0.0.0",
        a => a,
    };
    if let Ok(mut addr) = address.parse::<SocketAddr>() {
        if let Some(p) = opts.port {
            addr.set_port(p);
        }
        return Ok(addr);
    }
    let host = address.trim_start_matches('[').trim_end_matches(']');
    let port = opts.port.unwrap_or(config.http.port);
    format!("{host}:{port}")
        .parse::<SocketAddr>()
        .or_else(|_| format!("[{host}]:{port}").parse::<SocketAddr>())
        .map_err(|_| {
            Error::invalid_input(format!(
                "http.address `{address}` is not an IP address — use e.g. 0.0.0.0 or 127.0.0.1"
            ))
        })
}

/// Serves the API until SIGTERM or Ctrl-C; running tasks are then stopped
/// and recorded as interrupted.
pub async fn serve(config: Config, opts: ServeOptions) -> Result<()> {
    // A bad backup_strategy stops the server before it listens.
    let strategy = scheduler::strategy_of(&config)?;
    let config = match &strategy {
        Some(s) => s.primary_config(&config),
        None => config,
    };
    let addr = bind_address(&config, &opts)?;
    // Bind first: a taken port fails at once, before storage is read.
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::new(
            milvus_backup_core::ErrorKind::Unreachable,
            format!("cannot listen on {addr}: {e} — choose another port with -p or http.address"),
        )
    })?;
    let ctx = Context::open(&config)?;
    let secrets: Vec<String> = config
        .secrets()
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let metrics = Arc::new(metrics::Metrics::default());
    let tasks = tasks::TaskManager::open(
        config.clone(),
        ctx.backup_storage.clone(),
        metrics.clone(),
        secrets.clone(),
    )
    .await;
    seed_metrics(&ctx, &metrics).await;
    let token = Some(config.http.auth_token.expose().to_string()).filter(|t| !t.is_empty());
    let stop = milvus_backup_core::CancellationToken::new();
    let scheduler = strategy.map(|s| {
        let sched =
            scheduler::Scheduler::new(s, &config, tasks.clone(), ctx.backup_storage.clone());
        tokio::spawn(sched.clone().run(stop.clone()));
        sched
    });
    let state = Arc::new(AppState {
        scheduler,
        config,
        ctx,
        tasks: tasks.clone(),
        token,
        secrets,
    });
    tracing::info!(
        "serving the REST API on http://{addr}/api/v1 (docs at /api/v1/docs/index.html){}",
        if state.token.is_some() {
            "; bearer token required"
        } else {
            ""
        }
    );
    eprintln!("milvus-backup server listening on http://{addr}/api/v1");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal(tasks, stop))
        .await
        .map_err(|e| Error::internal(format!("the HTTP server stopped: {e}")))?;
    Ok(())
}

/// Last successful backup per collection, from what is in storage now.
async fn seed_metrics(ctx: &Context, metrics: &metrics::Metrics) {
    match catalog::list(&ctx.backup_storage).await {
        Ok(rows) => {
            for r in rows
                .iter()
                .filter(|r| r.state == catalog::BackupState::Complete)
            {
                for c in &r.collections {
                    metrics.backup_succeeded(c, r.backup_timestamp);
                }
            }
        }
        Err(e) => tracing::warn!("could not list backups for the metrics: {e}"),
    }
}

async fn shutdown_signal(
    tasks: Arc<tasks::TaskManager>,
    stop: milvus_backup_core::CancellationToken,
) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("milvus-backup server: shutting down; running tasks are stopped and recorded as interrupted");
    stop.cancel();
    tasks.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_address_defaults_to_all_interfaces_and_8080() {
        let mut c = Config::default();
        assert_eq!(
            bind_address(&c, &ServeOptions::default()).unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        );
        c.http.address = "127.0.0.1".into();
        let opts = ServeOptions { port: Some(9001) };
        assert_eq!(
            bind_address(&c, &opts).unwrap(),
            "127.0.0.1:9001".parse().unwrap()
        );
        c.http.address = "127.0.0.1:7000".into();
        assert_eq!(
            bind_address(&c, &ServeOptions::default()).unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        c.http.address = "not an address".into();
        assert!(bind_address(&c, &ServeOptions::default()).is_err());
    }
}
