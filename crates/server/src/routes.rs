//! The Go tool's create and restore (`/api/v1/create`, `/api/v1/restore`,
//! `/api/v1/get_restore`), and what both APIs share to start them: each
//! handler maps its request onto the core's options, has the core plan the
//! operation (the core validates names, checks what exists and refuses
//! what it must), and either answers with the plan (`dry_run`) or runs the
//! core's execute as a task. No backup behaviour lives here: what is the
//! server's own is the task registry (names being created, task ids).
//! The other routes of `/api/v1` are in `backups` and `service`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use milvus_backup_core::model::selection::Selection;
use milvus_backup_core::ops::backup::{self, BackupOptions, BackupRequest};
use milvus_backup_core::ops::restore::{self, CollectionOverride, RestoreOptions};
use milvus_backup_core::repo::catalog;

use crate::api::*;
use crate::error::ApiError;
use crate::record::{TaskKind, TaskRecord, TaskState};
use crate::shared::{answer, ok, task_failure, task_of, IdQuery, JsonBody, Params, Rid, Shared};
use crate::tasks::{boxed, Task};
use crate::views::{backup_brief_of_info, backup_brief_of_task};

pub(crate) fn parse_db_collections(
    value: &serde_json::Value,
) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    match value {
        serde_json::Value::Null => Ok(BTreeMap::new()),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(BTreeMap::new()),
        v => Selection::parse_db_collections(&v.to_string())
            .map_err(|e| ApiError::bad_request(format!("db_collections: {e}"))),
    }
}

pub(crate) fn parse_list(value: &serde_json::Value, field: &str) -> Result<Vec<String>, ApiError> {
    let items: Vec<String> = match value {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::String(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::bad_request(format!("{field} must be a list of strings"))
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::bad_request(format!(
                "{field} must be a list of strings or a comma-separated string"
            )))
        }
    };
    Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Creates a backup: synchronously (the whole brief) or with `async: true`
/// (the task at once; poll `get_backup`).
#[utoipa::path(post, path = "/api/v1/create", tag = "backup", request_body = CreateRequest,
    params(("request_id" = Option<String>, Header, description = "Echoed as requestId")),
    responses((status = 200, description = "The backup (sync), its task (async) or the plan (dry_run)", body = CreateResponse), ErrorResponses))]
pub async fn create(
    State(s): State<Shared>,
    rid: Rid,
    JsonBody(req): JsonBody<CreateRequest>,
) -> Result<Response, ApiError> {
    let request = BackupRequest {
        name: Some(req.backup_name.clone()),
        blank_name_is_unset: true,
        selection: Selection {
            collections: req.collection_names.clone(),
            db_collections: parse_db_collections(&req.db_collections)?,
            databases: Vec::new(),
            filter: parse_list(&req.filter, "filter")?,
        },
        force: req.force,
        meta_only: req.meta_only,
        rbac: req.rbac,
        compress: req.compress.clone(),
        compress_level: req.compress_level,
        encrypt: req.encrypt,
        base_backup: req.base_backup.clone(),
        incremental: req.incremental,
        format: req.format.clone(),
        resume: req.resume,
        allow_unpersisted_deletes: req.allow_unpersisted_deletes,
        ..Default::default()
    };
    let opts = BackupOptions::from_request(request, &s.ctx.settings).map_err(s.core(&rid))?;
    let task = match start_create(&s, &rid, opts, req.dry_run, req.is_async).await? {
        Started::Plan(plan) => return Ok(ok(&rid, plan)),
        Started::Task(task) => task,
    };
    if req.is_async {
        return Ok(ok(&rid, backup_brief_of_task(&task.snapshot())));
    }
    task.wait_done().await;
    let r = task.snapshot();
    if r.state == TaskState::Success {
        let info = catalog::get(&s.ctx.backup_storage, &r.backup_name)
            .await
            .map_err(s.core(&rid))?;
        return Ok(ok(&rid, backup_brief_of_info(&info, Some(&r))));
    }
    Err(task_failure(&r)
        .with_data(backup_brief_of_task(&r))
        .with_request_id(&rid.0))
}

/// What a request to start work gets: the plan (a dry run) or the task.
pub(crate) enum Started {
    Plan(serde_json::Value),
    Task(Arc<Task>),
}

/// Has the core plan a create and, unless `dry_run`, runs it as a task;
/// the name is reserved while it runs (shared by both create routes).
pub(crate) async fn start_create(
    s: &Shared,
    rid: &Rid,
    opts: BackupOptions,
    dry_run: bool,
    is_async: bool,
) -> Result<Started, ApiError> {
    // A name being created by this server is taken, before storage says so.
    let early = match &opts.name {
        Some(name) if !dry_run => Some(s.tasks.reserve_name(name)?),
        _ => None,
    };
    let plan = backup::plan(&s.ctx, &opts).await.map_err(s.core(rid))?;
    if dry_run {
        return Ok(Started::Plan(
            serde_json::json!({ "dry_run": true, "plan": plan }),
        ));
    }
    let guard = match early {
        Some(guard) => guard,
        None => s.tasks.reserve_name(&plan.name)?,
    };
    let name = plan.name.clone();
    let mut record = TaskRecord::new(TaskKind::Create, uuid::Uuid::new_v4().to_string(), &name);
    record.apply(&plan.planned());
    record.options = serde_json::json!({
        "collection_names": opts.selection.collections,
        "db_collections": opts.selection.db_collections,
        "databases": opts.selection.databases,
        "filter": opts.selection.filter,
        "force": opts.force,
        "meta_only": opts.meta_only,
        "async": is_async,
        "resume_with": opts,
    });
    let task = s
        .tasks
        .spawn(record, Some(guard), move |ctx, events, cancel| {
            boxed(async move {
                let stats = backup::execute(&ctx, &plan, &events, &cancel).await?;
                let info = catalog::get(&ctx.backup_storage, &stats.name).await?;
                events.task.update(|r| {
                    r.backup_id = info.id.clone();
                    for (c, ci) in r.collections.iter_mut().zip(&info.collection_backups) {
                        c.size = ci.size;
                    }
                });
                let mut result = serde_json::to_value(&stats).unwrap_or_default();
                result["backup_timestamp"] = info.backup_timestamp.into();
                Ok(result)
            })
        });
    Ok(Started::Task(task))
}

fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Maps a restore request onto the core's request; the core normalises,
/// applies the `restorePlan` (renames, overrides by target, the filter by
/// target names, as the Go tool does) and validates.
fn restore_options(req: &RestoreRequest) -> Result<RestoreOptions, ApiError> {
    let request = restore::RestoreRequest {
        backup_name: req.backup_name.clone(),
        collections: req.collection_names.clone(),
        db_collections: parse_db_collections(&req.db_collections)?,
        suffix: req.collection_suffix.clone(),
        renames: req
            .collection_renames
            .iter()
            .map(|(a, b)| format!("{a}:{b}"))
            .collect(),
        mapping: req.restore_plan.as_ref().map(restore_mapping),
        drop_exist_collection: req.drop_exist_collection,
        skip_create_collection: req.skip_create_collection,
        meta_only: req.meta_only,
        restore_index: !req.no_index,
        use_auto_index: req.use_auto_index,
        drop_exist_index: req.drop_exist_index,
        load: !req.no_load,
        rbac: req.rbac,
        rbac_user_password_file: req.rbac_user_password_file.clone().map(Into::into),
        resume: req.resume,
        skip_unsupported: req.skip_unsupported,
        skip_aliases: req.skip_aliases,
        ..Default::default()
    };
    RestoreOptions::from_request(request).map_err(|e| ApiError::from_core(&e, &[]))
}

/// The Go tool's `restorePlan` in the core's terms.
fn restore_mapping(plan: &RestorePlan) -> restore::RestoreMapping {
    let collection = |c: &RestoreCollectionMapping| restore::CollectionMapping {
        source: c.source.clone(),
        target: c.target.clone(),
        overrides: c.overrides.as_ref().map(|o| CollectionOverride {
            shards_num: Some(o.shard_num),
            description: Some(o.description.clone()),
        }),
    };
    restore::RestoreMapping {
        databases: plan
            .mapping
            .iter()
            .map(|m| restore::DatabaseMapping {
                source: m.source.clone(),
                target: m.target.clone(),
                collections: m.colls.iter().map(collection).collect(),
            })
            .collect(),
        filter: plan
            .filter
            .iter()
            .map(|(db, f)| (db.clone(), f.colls.clone()))
            .collect(),
    }
}

/// Restores a backup into the configured Milvus; `data.id` is the task id
/// (poll `get_restore` with `async: true`).
#[utoipa::path(post, path = "/api/v1/restore", tag = "restore", request_body = RestoreRequest,
    params(("request_id" = Option<String>, Header, description = "Echoed as requestId")),
    responses((status = 200, description = "Success", body = StartRestoreResponse), ErrorResponses))]
pub async fn restore(
    State(s): State<Shared>,
    rid: Rid,
    JsonBody(req): JsonBody<RestoreRequest>,
) -> Result<Response, ApiError> {
    let opts = restore_options(&req).map_err(|e| e.with_request_id(&rid.0))?;
    match start_restore(&s, &rid, opts, &req.id, req.dry_run, req.is_async).await? {
        Started::Plan(plan) => Ok(ok(&rid, plan)),
        Started::Task(task) => answer(&rid, &task, req.is_async, RestoreTask::of).await,
    }
}

/// Has the core plan a restore and, unless `dry_run`, runs it as a task
/// with id `id` (a fresh one when empty); shared by both restore routes.
pub(crate) async fn start_restore(
    s: &Shared,
    rid: &Rid,
    opts: RestoreOptions,
    id: &str,
    dry_run: bool,
    is_async: bool,
) -> Result<Started, ApiError> {
    let err = s.core(rid);
    let id = match id.trim() {
        "" => uuid::Uuid::new_v4().to_string(),
        id if !valid_task_id(id) => {
            return Err(ApiError::bad_request(format!(
                "id `{id}` is not a valid task id — use letters, digits, `_` and `-`, at most 64"
            )))
        }
        id if s.tasks.id_taken(id) => {
            return Err(ApiError::conflict(format!(
                "a task with id `{id}` exists already"
            )))
        }
        id => id.to_string(),
    };
    let plan = restore::plan(&s.ctx, &opts).await.map_err(&err)?;
    if dry_run {
        return Ok(Started::Plan(
            serde_json::json!({ "dry_run": true, "plan": plan }),
        ));
    }
    plan.check().map_err(&err)?;
    let name = plan.backup.clone();
    let mut record = TaskRecord::new(TaskKind::Restore, id, &name);
    record.apply(&plan.planned());
    for (sub, t) in record.collections.iter_mut().zip(&plan.tasks) {
        sub.reuse_existing = t.reuse_existing;
    }
    record.options = serde_json::json!({
        "collection_names": opts.collections,
        "db_collections": opts.db_collections,
        "databases": opts.databases,
        "collection_suffix": opts.suffix,
        "renames": opts.renames,
        "overrides": opts.overrides,
        "metaOnly": opts.meta_only,
        "restoreIndex": opts.restore_index,
        "useAutoIndex": opts.use_auto_index,
        "dropExistCollection": opts.drop_exist_collection,
        "dropExistIndex": opts.drop_exist_index,
        "skipCreateCollection": opts.skip_create_collection,
        "async": is_async,
        "resume_with": opts,
    });
    let task = s.tasks.spawn(record, None, move |ctx, events, cancel| {
        boxed(async move {
            let stats = restore::execute(&ctx, &plan, &events, &cancel).await?;
            Ok(serde_json::to_value(&stats).unwrap_or_default())
        })
    });
    Ok(Started::Task(task))
}

/// A restore task of this server (also one from before a restart).
#[utoipa::path(get, path = "/api/v1/get_restore", tag = "restore", params(IdQuery),
    responses((status = 200, description = "Success", body = RestoreResponse), ErrorResponses))]
pub async fn get_restore(
    State(s): State<Shared>,
    rid: Rid,
    Params(q): Params<IdQuery>,
) -> Result<Response, ApiError> {
    let r = task_of(&s, &q.id, TaskKind::Restore)?;
    Ok(ok(&rid, RestoreTask::of(&r)))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use serde_json::json;

    #[test]
    fn db_collections_are_taken_as_object_or_string() {
        let want = BTreeMap::from([("db1".to_string(), vec!["c1".to_string()])]);
        assert_eq!(parse_db_collections(&json!({"db1": ["c1"]})).unwrap(), want);
        assert_eq!(
            parse_db_collections(&json!("{\"db1\": [\"c1\"]}")).unwrap(),
            want
        );
        assert!(parse_db_collections(&json!(null)).unwrap().is_empty());
        assert!(parse_db_collections(&json!("")).unwrap().is_empty());
        let e = parse_db_collections(&json!(5)).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn filters_are_a_list_or_a_comma_separated_string() {
        assert_eq!(
            parse_list(&json!("db1.*, default.docs"), "filter").unwrap(),
            vec!["db1.*", "default.docs"]
        );
        assert_eq!(
            parse_list(&json!(["db1.*"]), "filter").unwrap(),
            vec!["db1.*"]
        );
        assert!(parse_list(&json!([1]), "filter").is_err());
        assert!(parse_list(&json!({}), "filter").is_err());
    }

    #[test]
    fn restore_requests_map_onto_the_core_options() {
        let req: RestoreRequest = serde_json::from_value(json!({
            "backup_name": "b1",
            "collection_names": ["docs"],
            "collection_renames": {"docs": "docs_v2"},
            "metaOnly": true,
            "drop_exist_collection": true,
            "restoreIndex": true
        }))
        .unwrap();
        let o = restore_options(&req).unwrap();
        assert_eq!(o.backup_name, "b1");
        assert_eq!(o.renames, vec!["docs:docs_v2"]);
        assert!(o.meta_only && o.drop_exist_collection && o.restore_index && o.load);

        let plan: RestoreRequest = serde_json::from_value(json!({
            "backup_name": "b1",
            "restorePlan": {
                "mapping": [
                    {"source": "db1", "target": "db2", "colls": []},
                    {"source": "db3", "target": "db4", "colls": [{"source": "a", "target": "b"}]}
                ],
                "filter": {"db1": {"colls": ["x"]}}
            }
        }))
        .unwrap();
        let o = restore_options(&plan).unwrap();
        assert_eq!(o.renames, vec!["db1.*:db2.*", "db3.a:db4.b"]);
        assert_eq!(o.db_collections["db1"], vec!["x"]);

        let both: RestoreRequest = serde_json::from_value(json!({
            "backup_name": "b1", "collection_suffix": "_x", "restorePlan": {"mapping": []}
        }))
        .unwrap();
        assert!(restore_options(&both).is_err());
        // The Go tool's override test: overrides and the filter by target.
        let overrides: RestoreRequest = serde_json::from_value(json!({
            "backup_name": "b1",
            "restorePlan": {
                "mapping": [
                    {"source": "a", "target": "b", "colls": [
                        {"source": "c", "target": "d", "override": {"shardNum": 2, "description": "x"}},
                        {"source": "e", "target": "f", "override": {"shardNum": 0, "description": ""}}
                    ]},
                    {"source": "g", "target": "h", "colls": []}
                ],
                "filter": {"b": {"colls": ["d"]}, "h": {"colls": ["k"]}, "z": {"colls": ["*"]}}
            }
        }))
        .unwrap();
        let o = restore_options(&overrides).unwrap();
        assert_eq!(
            o.overrides,
            BTreeMap::from([(
                "b.d".to_string(),
                CollectionOverride {
                    shards_num: Some(2),
                    description: Some("x".into())
                }
            )])
        );
        assert_eq!(o.db_collections["a"], vec!["c"]);
        assert_eq!(o.db_collections["g"], vec!["k"]);
        assert!(o.db_collections["z"].is_empty());
        assert!(!o.db_collections.contains_key("b"));
    }

    #[test]
    fn task_ids_are_checked() {
        assert!(valid_task_id("abc-DEF_123"));
        assert!(!valid_task_id(""));
        assert!(!valid_task_id("a b"));
        assert!(!valid_task_id("../x"));
        assert!(!valid_task_id(&"a".repeat(65)));
    }

    #[test]
    fn core_errors_map_to_fitting_statuses() {
        use milvus_backup_core::Error;
        let secrets = vec!["hunter2".to_string()];
        let cases = [
            (Error::invalid_input("x"), StatusCode::BAD_REQUEST),
            (Error::not_found("x"), StatusCode::NOT_FOUND),
            (Error::already_exists("x"), StatusCode::CONFLICT),
            (Error::remote("x"), StatusCode::BAD_GATEWAY),
            (Error::internal("x"), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from_core(&e, &secrets).status, status);
        }
        let e = Error::remote("login with hunter2 refused");
        assert_eq!(
            ApiError::from_core(&e, &secrets).message,
            "login with **** refused"
        );
    }
}
