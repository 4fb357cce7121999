//! The API's views of the task records: a task record (`record`) as the
//! Go tool's task, restore task, verify task or backup brief (`api`). What
//! a record holds is `record`'s; the wire shapes are `api`'s.

use crate::api::*;
use crate::record::{SubTask, TaskRecord, TaskState};

impl From<TaskState> for StateName {
    fn from(s: TaskState) -> StateName {
        match s {
            TaskState::Initial => StateName::Initial,
            TaskState::Executing => StateName::Executing,
            TaskState::Success => StateName::Success,
            TaskState::Failed => StateName::Failed,
            TaskState::Cancelled => StateName::Cancelled,
            TaskState::Interrupted => StateName::Interrupted,
        }
    }
}

impl TaskSummary {
    pub fn of(r: &TaskRecord) -> TaskSummary {
        TaskSummary {
            id: r.id.clone(),
            kind: r.kind.as_str().to_string(),
            backup_name: r.backup_name.clone(),
            state_code: r.state.code(),
            state: r.state.into(),
            progress: r.progress,
            error_message: r.error_message.clone(),
            start_time: r.start_time,
            end_time: r.end_time,
            step: r.step.clone(),
        }
    }
}

impl RestoreTask {
    pub fn of(r: &TaskRecord) -> RestoreTask {
        RestoreTask {
            id: r.id.clone(),
            backup_name: r.backup_name.clone(),
            state_code: r.state.code(),
            state: Some(r.state.into()),
            progress: r.progress,
            error_message: r.error_message.clone(),
            start_time: r.start_time,
            end_time: r.end_time,
            restored_size: r.collections.iter().map(|c| c.done_bytes as i64).sum(),
            to_restore_size: r.collections.iter().map(|c| c.size).sum(),
            step: r.step.clone(),
            collection_restore_tasks: r
                .collections
                .iter()
                .map(|c| collection_restore_task(&r.id, c))
                .collect(),
        }
    }
}

fn split(full: &str) -> (String, String) {
    match full.split_once('.') {
        Some((db, name)) => (db.to_string(), name.to_string()),
        None => ("default".to_string(), full.to_string()),
    }
}

fn collection_restore_task(task: &str, c: &SubTask) -> CollectionRestoreTask {
    let (source_db_name, source_collection_name) = split(&c.source);
    let (target_db_name, target_collection_name) = split(&c.target);
    CollectionRestoreTask {
        id: format!("{task}/{}", c.target),
        state_code: c.state.code(),
        state: Some(c.state.into()),
        progress: c.progress,
        error_message: c.error_message.clone(),
        start_time: c.start_time,
        end_time: c.end_time,
        source_db_name,
        source_collection_name,
        target_db_name,
        target_collection_name,
        restored_size: c.done_bytes as i64,
        to_restore_size: c.size,
    }
}

impl VerifyTask {
    pub fn of(r: &TaskRecord) -> VerifyTask {
        let result = r.result.as_ref();
        let get_u64 = |k: &str| {
            result
                .and_then(|v| v.get(k))
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
        };
        VerifyTask {
            id: r.id.clone(),
            backup_name: r.backup_name.clone(),
            deep: r
                .options
                .get("deep")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            state_code: r.state.code(),
            state: Some(r.state.into()),
            progress: r.progress,
            error_message: r.error_message.clone(),
            start_time: r.start_time,
            end_time: r.end_time,
            ok: result.map(|v| {
                v.get("problems")
                    .and_then(|p| p.as_array())
                    .is_none_or(|p| p.is_empty())
            }),
            files: get_u64("files"),
            bytes: get_u64("bytes"),
            restore_test: result.and_then(|v| v.get("restore_test")).cloned(),
            problems: result
                .and_then(|v| v.get("problems"))
                .and_then(|p| serde_json::from_value(p.clone()).ok())
                .unwrap_or_default(),
        }
    }
}

/// A create task's view, before (or instead of) the stored backup.
pub fn backup_brief_of_task(r: &TaskRecord) -> BackupBrief {
    BackupBrief {
        id: if r.backup_id.is_empty() {
            r.id.clone()
        } else {
            r.backup_id.clone()
        },
        task_id: r.id.clone(),
        name: r.backup_name.clone(),
        state_code: r.state.code(),
        state: Some(r.state.into()),
        progress: r.progress,
        error_message: r.error_message.clone(),
        start_time: r.start_time,
        end_time: r.end_time,
        backup_timestamp: 0,
        size: r.collections.iter().map(|c| c.size).sum(),
        milvus_version: String::new(),
        step: r.step.clone(),
        collection_backups: r
            .collections
            .iter()
            .map(|c| {
                let (db_name, collection_name) = split(&c.source);
                CollectionBrief {
                    db_name,
                    collection_name,
                    state_code: c.state.code(),
                    state: Some(c.state.into()),
                    progress: c.progress,
                    error_message: c.error_message.clone(),
                    start_time: c.start_time,
                    end_time: c.end_time,
                    size: c.size,
                    ..Default::default()
                }
            })
            .collect(),
    }
}

/// A complete backup from storage (state 2), merged with its task when known.
pub fn backup_brief_of_info(
    info: &milvus_backup_core::model::meta::BackupInfo,
    task: Option<&TaskRecord>,
) -> BackupBrief {
    let done = StateName::Success;
    BackupBrief {
        id: info.id.clone(),
        task_id: task.map(|t| t.id.clone()).unwrap_or_default(),
        name: info.name.clone(),
        state_code: 2,
        state: Some(done),
        progress: 100,
        error_message: String::new(),
        start_time: task.map(|t| t.start_time).unwrap_or(info.start_time),
        end_time: task.map(|t| t.end_time).unwrap_or(info.end_time),
        backup_timestamp: info.backup_timestamp,
        size: info.size,
        milvus_version: info.milvus_version.clone(),
        step: String::new(),
        collection_backups: info
            .collection_backups
            .iter()
            .map(|c| CollectionBrief {
                id: c.id.clone(),
                collection_id: c.collection_id,
                db_name: c.db_name.clone(),
                collection_name: c.collection_name.clone(),
                state_code: 2,
                state: Some(done),
                progress: 100,
                error_message: String::new(),
                start_time: c.start_time,
                end_time: c.end_time,
                backup_timestamp: c.backup_timestamp,
                size: c.size,
                shards_num: c.shards_num,
                consistency_level: c.consistency_level,
                has_index: c.has_index,
                index_infos: c
                    .index_infos
                    .iter()
                    .map(|i| IndexInfo {
                        field_name: i.field_name.clone(),
                        index_name: i.index_name.clone(),
                        index_type: i.index_type.clone(),
                        params: i.params.clone(),
                    })
                    .collect(),
                load_state: c.load_state.clone(),
                schema: serde_json::to_value(&c.schema).ok(),
                partition_backups: c
                    .partition_backups
                    .iter()
                    .map(|p| PartitionBrief {
                        partition_id: p.partition_id,
                        partition_name: p.partition_name.clone(),
                        size: p.size,
                        load_state: p.load_state.clone(),
                        segments: p.segment_backups.len() as i64,
                        entities: p.segment_backups.iter().map(|s| s.num_of_rows).sum(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

impl LiveTask {
    pub fn of(r: &TaskRecord) -> LiveTask {
        LiveTask {
            id: r.id.clone(),
            kind: r.kind.as_str().to_string(),
            collection_name: r.backup_name.clone(),
            state_code: r.state.code(),
            state: Some(r.state.into()),
            progress: r.progress,
            error_message: r.error_message.clone(),
            start_time: r.start_time,
            end_time: r.end_time,
            result: r.result.clone(),
        }
    }
}
