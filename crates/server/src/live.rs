//! `POST /api/v1/compare` and `POST /api/v1/migrate`: the CLI's `compare`
//! and one `migrate` round, as durable tasks with progress and cancel. The
//! other Milvus is named by `to_config`, a config file on the server's
//! host (that file alone, as the CLI's `--to-config`); without it, the
//! server's own Milvus (then `target_collection` is needed).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use milvus_backup_core::config::{Config, LoadOptions};
use milvus_backup_core::ops::compare::{self, CompareOptions};
use milvus_backup_core::ops::logical::ranges::RANGE_ROWS;
use milvus_backup_core::ops::migrate::{self, MigrateOptions};
use milvus_backup_core::{Context, Error};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{ErrorResponses, LiveTask, LiveTaskResponse};
use crate::error::ApiError;
use crate::record::{TaskKind, TaskRecord};
use crate::shared::{answer, task_of, IdQuery, JsonBody, Params, Rid, Shared};
use crate::tasks::boxed;

/// `POST /compare`.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CompareRequest {
    /// The source collection, `coll` or `db.coll`, on the server's Milvus.
    pub collection_name: String,
    /// The other collection (default: the source's name).
    pub target_collection: Option<String>,
    /// A config file on the server's host naming the other Milvus.
    pub to_config: Option<String>,
    /// Compare rows without their primary keys, as multisets.
    pub ignore_key: bool,
    /// Keys listed of each kind of difference (default 10).
    pub show: Option<usize>,
    /// Return at once with the task; poll `get_compare`.
    #[serde(rename = "async")]
    pub is_async: bool,
}

/// `POST /migrate`: one round.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct MigrateRequest {
    /// The source collection, `coll` or `db.coll`, on the server's Milvus.
    pub collection_name: String,
    /// The target collection (default: the source's name).
    pub target_collection: Option<String>,
    /// A config file on the server's host naming the target Milvus.
    pub to_config: Option<String>,
    /// Write into an existing `target_collection` this tool did not create.
    pub reconcile_existing: bool,
    /// Point this alias on the target at the migrated collection when the
    /// round finds it identical (the cut-over).
    pub alias: Option<String>,
    /// Return at once with the task; poll `get_migrate`.
    #[serde(rename = "async")]
    pub is_async: bool,
}

/// The other Milvus's context: `to_config`'s, or the server's own.
fn other(
    s: &Shared,
    rid: &Rid,
    to_config: Option<&str>,
    target: Option<&str>,
) -> Result<Option<Context>, ApiError> {
    let Some(file) = to_config.map(str::trim).filter(|f| !f.is_empty()) else {
        if target.is_none_or(|t| t.trim().is_empty()) {
            return Err(ApiError::bad_request(
                "give to_config (a config file on the server's host naming the other Milvus), target_collection, or both",
            ));
        }
        return Ok(None);
    };
    let path = std::path::Path::new(file);
    if !path.is_file() {
        return Err(ApiError::bad_request(format!(
            "to_config `{file}`: no such file on the server's host — name the config file of the other Milvus"
        )));
    }
    let loaded = Config::load(&LoadOptions {
        file: Some(path),
        file_required: true,
        sets: &[],
        env: BTreeMap::new(),
    })
    .and_then(|(c, _)| Context::open(&c));
    loaded.map(Some).map_err(|e: Error| s.core(rid)(e))
}

/// Compares two live collections; `data.result` holds `identical`, the
/// differing ranges and keys.
#[utoipa::path(post, path = "/api/v1/compare", tag = "live", request_body = CompareRequest,
    responses((status = 200, description = "Success", body = LiveTaskResponse), ErrorResponses))]
pub async fn compare(
    State(s): State<Shared>,
    rid: Rid,
    JsonBody(req): JsonBody<CompareRequest>,
) -> Result<Response, ApiError> {
    let b = other(
        &s,
        &rid,
        req.to_config.as_deref(),
        req.target_collection.as_deref(),
    )?;
    let opts = CompareOptions {
        source: req.collection_name.trim().to_string(),
        target: req.target_collection.clone(),
        ignore_key: req.ignore_key,
        show: req.show.unwrap_or(10),
        streams: 4,
        range_rows: RANGE_ROWS,
    };
    let mut record = TaskRecord::new(
        TaskKind::Compare,
        uuid::Uuid::new_v4().to_string(),
        &opts.source,
    );
    record.options = serde_json::to_value(&req).unwrap_or_default();
    let task = s.tasks.spawn(record, None, move |ctx, events, cancel| {
        boxed(async move {
            let b = b.as_ref().unwrap_or(&ctx);
            let c = compare::compare(&ctx, b, &opts, &events, &cancel).await?;
            Ok(serde_json::to_value(c).unwrap_or_default())
        })
    });
    answer(&rid, &task, req.is_async, LiveTask::of).await
}

/// One round of a migration: creates the target when missing, then
/// brings it to the source's rows; `data.result` holds the round's
/// `{rows_source, rows_target, ranges, ranges_differing, rows_copied,
/// rows_deleted, identical}`.
#[utoipa::path(post, path = "/api/v1/migrate", tag = "live", request_body = MigrateRequest,
    responses((status = 200, description = "Success", body = LiveTaskResponse), ErrorResponses))]
pub async fn migrate(
    State(s): State<Shared>,
    rid: Rid,
    JsonBody(req): JsonBody<MigrateRequest>,
) -> Result<Response, ApiError> {
    let b = other(
        &s,
        &rid,
        req.to_config.as_deref(),
        req.target_collection.as_deref(),
    )?;
    if req.reconcile_existing && req.target_collection.is_none() {
        return Err(ApiError::bad_request(
            "reconcile_existing needs target_collection naming the existing collection to write into",
        ));
    }
    let opts = MigrateOptions {
        source: req.collection_name.trim().to_string(),
        target: req.target_collection.clone(),
        reconcile_existing: req.reconcile_existing,
        streams: 4,
        range_rows: RANGE_ROWS,
    };
    let mut record = TaskRecord::new(
        TaskKind::Migrate,
        uuid::Uuid::new_v4().to_string(),
        &opts.source,
    );
    record.options = serde_json::to_value(&req).unwrap_or_default();
    let alias = req.alias.clone();
    let task = s.tasks.spawn(record, None, move |ctx, events, cancel| {
        boxed(async move {
            let b = b.as_ref().unwrap_or(&ctx);
            let round = migrate::round(&ctx, b, &opts, &events);
            let stats = milvus_backup_core::cancellable(&cancel, round).await?;
            let mut v = serde_json::to_value(&stats).unwrap_or_default();
            if let (Some(alias), true) = (alias, stats.identical && stats.ranges_differing == 0) {
                migrate::point_alias(b, &stats.target, &alias).await?;
                v["alias"] = alias.into();
            }
            Ok(v)
        })
    });
    answer(&rid, &task, req.is_async, LiveTask::of).await
}

/// A compare task.
#[utoipa::path(get, path = "/api/v1/get_compare", tag = "live", params(IdQuery),
    responses((status = 200, description = "Success", body = LiveTaskResponse), ErrorResponses))]
pub async fn get_compare(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<IdQuery>,
) -> Result<Response, ApiError> {
    let r = task_of(&s, &q.id, TaskKind::Compare)?;
    Ok(crate::shared::ok(&rid, LiveTask::of(&r)))
}

/// A migrate task.
#[utoipa::path(get, path = "/api/v1/get_migrate", tag = "live", params(IdQuery),
    responses((status = 200, description = "Success", body = LiveTaskResponse), ErrorResponses))]
pub async fn get_migrate(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<IdQuery>,
) -> Result<Response, ApiError> {
    let r = task_of(&s, &q.id, TaskKind::Migrate)?;
    Ok(crate::shared::ok(&rid, LiveTask::of(&r)))
}
