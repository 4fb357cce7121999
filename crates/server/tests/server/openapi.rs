//! The OpenAPI document is generated from the code; this snapshot makes
//! every change to the API's shape deliberate. Rewrite it with
//! `UPDATE_SNAPSHOTS=1 cargo test -p milvus-backup-server --test server`.

use std::path::PathBuf;

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[test]
fn openapi_document_matches_the_snapshot() {
    let generated = milvus_backup_server::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    let path = snapshot_path();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, format!("{generated}\n")).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored.trim_end() == generated.trim_end(),
        "the generated OpenAPI document differs from {} — if the API change is intended, run \
         `UPDATE_SNAPSHOTS=1 cargo test -p milvus-backup-server --test server` and commit the file",
        path.display()
    );
}

#[test]
fn every_route_is_documented_with_the_envelope() {
    let doc: serde_json::Value =
        serde_json::from_str(&milvus_backup_server::openapi().to_json().unwrap()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/hello", "get"),
        ("/api/v1/create", "post"),
        ("/api/v1/list", "get"),
        ("/api/v1/get_backup", "get"),
        ("/api/v1/delete", "delete"),
        ("/api/v1/restore", "post"),
        ("/api/v1/get_restore", "get"),
        ("/api/v1/check", "get"),
        ("/api/v1/verify", "post"),
        ("/api/v1/get_verify", "get"),
        ("/api/v1/cancel", "post"),
        ("/api/v1/resume", "post"),
        ("/api/v1/tasks", "get"),
        ("/api/v1/healthz", "get"),
        ("/api/v1/metrics", "get"),
        ("/api/v1/backup/create", "post"),
        ("/api/v1/backup/list", "get"),
        ("/api/v1/backup/get", "get"),
        ("/api/v1/backup/restore", "post"),
        ("/api/v1/backup/delete", "delete"),
        ("/api/v1/backup/status", "get"),
        ("/api/v1/backup/verify", "post"),
        ("/api/v1/schedule", "get"),
        ("/api/v1/schedule/run_now", "post"),
        ("/api/v1/health", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in the OpenAPI document"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for envelope in ["BackupResponse", "RestoreResponse", "ErrorResponse"] {
        let props = schemas[envelope]["properties"].as_object().unwrap();
        for field in ["requestId", "code", "msg", "data"] {
            assert!(props.contains_key(field), "{envelope} lacks {field}");
        }
    }
    for envelope in [
        "GuideCreateResponse",
        "GuideListResponse",
        "GuideRestoreResponse",
        "GuideErrorResponse",
    ] {
        let props = schemas[envelope]["properties"].as_object().unwrap();
        for field in ["code", "message", "data"] {
            assert!(props.contains_key(field), "{envelope} lacks {field}");
        }
    }
    let created = schemas["GuideCreated"]["properties"].as_object().unwrap();
    for field in [
        "backup_id",
        "status",
        "collections",
        "total_entities",
        "backup_size",
        "created_at",
        "duration",
    ] {
        assert!(created.contains_key(field), "GuideCreated lacks {field}");
    }
    let create = schemas["CreateRequest"]["properties"].as_object().unwrap();
    for field in [
        "backup_name",
        "collection_names",
        "db_collections",
        "async",
        "force",
        "meta_only",
        "rbac",
        "filter",
    ] {
        assert!(create.contains_key(field), "CreateRequest lacks {field}");
    }
    let restore = schemas["RestoreRequest"]["properties"].as_object().unwrap();
    for field in [
        "backup_name",
        "collection_suffix",
        "collection_renames",
        "metaOnly",
        "restoreIndex",
        "useAutoIndex",
        "dropExistCollection",
        "dropExistIndex",
        "skipCreateCollection",
        "restorePlan",
        "useV2Restore",
    ] {
        assert!(restore.contains_key(field), "RestoreRequest lacks {field}");
    }
}
