//! `milvus-backup server`: the Go tool's REST API (`/api/v1`) over the core
//! library, plus what the Go tool lacks — persistent async tasks with
//! cancel, `verify`, `/tasks`, `/healthz`, Prometheus `/metrics`, an
//! optional bearer token and graceful shutdown.
//!
//! All backup behaviour is in `milvus_backup_core`, the scheduler's loop
//! too. Layers, lowest first; a module imports only from its own layer and
//! those below it, and no two modules import each other (the test
//! `layers::tests` reads every `use crate::…` and fails otherwise):
//! 1. [`api`] (the wire types and their OpenAPI schemas, the user guide's
//!    in `api::guide`), `record` (a task's record: kind, state, progress),
//!    `tls` (HTTPS: the certificate and the listener).
//! 2. `error` (core error kinds → HTTP statuses and the envelopes),
//!    `metrics` (Prometheus text).
//! 3. `tasks`: the task registry (running, persisting, cancelling tasks).
//! 4. `views` (records as the API's views), `shared` (state, extractors,
//!    envelopes of answers), [`scheduler`] (the core's scheduler with its
//!    runs as tasks, and the CLI's foreground scheduler).
//! 5. The handlers: `routes` (the Go tool's create and restore, and the
//!    starters both APIs share), `backups` (list, get, delete, verify),
//!    `service` (hello, tasks, cancel, check, health, metrics), `resume`,
//!    `guide` (the user guide's `/api/v1/backup/*`), `schedule_routes`,
//!    `live` (compare and migrate, between live collections), `page` (the
//!    status page at `/`).
//! 6. `router`: every route registered once, auth, logging.

pub mod api;
mod backups;
mod error;
mod guide;
mod live;
mod metrics;
mod page;
mod record;
mod resume;
mod router;
mod routes;
mod schedule_routes;
pub mod scheduler;
mod service;
mod shared;
mod tasks;
mod tls;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use milvus_backup_core::config::Config;
use milvus_backup_core::schedule::scheduler::Scheduler;
use milvus_backup_core::{repo::catalog, Context, Error, Result};

use crate::shared::AppState;

/// Where and how to serve.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Port (`-p`); default 8080, or the port in `http.address` when it has one.
    pub port: Option<u16>,
}

pub const DEFAULT_PORT: u16 = 8080;

/// The OpenAPI document of the API, generated from the code.
pub fn openapi() -> utoipa::openapi::OpenApi {
    router::openapi()
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
    // A bad certificate stops the server before it listens, too.
    let tls = tls::server_config(&config.http.tls.cert_file, &config.http.tls.key_file)?;
    // Bind first: a taken port fails at once, before storage is read.
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::new(
            milvus_backup_core::ErrorKind::Unreachable,
            format!("cannot listen on {addr}: {e} — choose another port with -p or http.address"),
        )
    })?;
    milvus_backup_core::config::scrub::speak_as_the_file(config.key_spellings.clone());
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
        let runner = Arc::new(scheduler::TaskRunner(tasks.clone()));
        let sched = Scheduler::new(s, &config, runner, ctx.backup_storage.clone());
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
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        "serving the REST API on {scheme}://{addr}/api/v1 (docs at /api/v1/docs/index.html){}",
        if state.token.is_some() {
            "; bearer token required"
        } else {
            ""
        }
    );
    eprintln!("milvus-backup server listening on {scheme}://{addr}/api/v1");
    let app = router::router(state);
    let shutdown = shutdown_signal(tasks, stop);
    let served = match tls {
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls)
                .map_err(|e| Error::internal(format!("cannot serve HTTPS on {addr}: {e}")))?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    served.map_err(|e| Error::internal(format!("the HTTP server stopped: {e}")))?;
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
mod layers;
#[cfg(test)]
mod rest_docs;

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
