//! What is known of a task, and persisted: its kind, state (with the Go
//! tool's state codes), progress per collection folded from the core's
//! typed events, error, options and result. Plain data: running tasks,
//! persisting and cancelling them is `tasks`'.

use milvus_backup_core::events::{CollectionState, Event, Tracker};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Create,
    Restore,
    Verify,
    Compare,
    Migrate,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Create => "create",
            TaskKind::Restore => "restore",
            TaskKind::Verify => "verify",
            TaskKind::Compare => "compare",
            TaskKind::Migrate => "migrate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    #[default]
    Initial,
    Executing,
    Success,
    Failed,
    Cancelled,
    Interrupted,
}

impl TaskState {
    pub const OUTCOMES: [TaskState; 4] = [
        TaskState::Success,
        TaskState::Failed,
        TaskState::Cancelled,
        TaskState::Interrupted,
    ];

    /// The Go tool's state code: 0 initial, 1 executing, 2 success, 3 fail.
    pub fn code(self) -> i32 {
        match self {
            TaskState::Initial => 0,
            TaskState::Executing => 1,
            TaskState::Success => 2,
            TaskState::Failed | TaskState::Cancelled | TaskState::Interrupted => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Initial => "initial",
            TaskState::Executing => "executing",
            TaskState::Success => "success",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
            TaskState::Interrupted => "interrupted",
        }
    }

    pub fn is_terminal(self) -> bool {
        self.code() >= 2
    }
}

/// One collection of a task.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SubTask {
    /// `db.coll` in Milvus (create) or in the backup (restore).
    pub source: String,
    /// `db.coll` restored into (restore only).
    pub target: String,
    pub state: TaskState,
    pub progress: i32,
    pub error_message: String,
    pub start_time: i64,
    pub end_time: i64,
    /// Bytes of the collection's data files.
    pub size: i64,
    pub done_bytes: u64,
    /// The target existed and is reused (restore, `skipCreateCollection`).
    pub reuse_existing: bool,
}

/// What is persisted of a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskRecord {
    pub format_version: u32,
    pub id: String,
    pub kind: TaskKind,
    pub state: TaskState,
    pub progress: i32,
    pub error_message: String,
    /// HTTP status the failure maps to (for synchronous answers).
    pub error_status: u16,
    pub start_time: i64,
    pub end_time: i64,
    pub backup_name: String,
    /// The backup's own id, once it is written.
    pub backup_id: String,
    /// What the task does now.
    pub step: String,
    pub warnings: Vec<String>,
    pub collections: Vec<SubTask>,
    /// The request's options (never secrets).
    pub options: serde_json::Value,
    /// The core's statistics or report, once done.
    pub result: Option<serde_json::Value>,
    /// The server process that ran the task.
    pub server_id: String,
    /// The core's events folded into progress (not persisted: the fields
    /// above are its persisted view).
    #[serde(skip)]
    tracker: Tracker,
}

impl Default for TaskRecord {
    fn default() -> Self {
        TaskRecord {
            format_version: 1,
            id: String::new(),
            kind: TaskKind::Create,
            state: TaskState::Initial,
            progress: 0,
            error_message: String::new(),
            error_status: 0,
            start_time: 0,
            end_time: 0,
            backup_name: String::new(),
            backup_id: String::new(),
            step: String::new(),
            warnings: Vec::new(),
            collections: Vec::new(),
            options: serde_json::Value::Null,
            result: None,
            server_id: String::new(),
            tracker: Tracker::default(),
        }
    }
}

impl TaskRecord {
    pub fn new(kind: TaskKind, id: String, backup_name: &str) -> TaskRecord {
        TaskRecord {
            id,
            kind,
            backup_name: backup_name.to_string(),
            start_time: now_ms(),
            ..Default::default()
        }
    }

    /// Folds one of the core's events into the record: overall progress,
    /// the current step, one sub-task per planned collection, warnings.
    pub fn apply(&mut self, event: &Event) {
        if let Event::Warning { message } = event {
            if self.warnings.len() < 50 {
                self.warnings.push(message.clone());
            }
        }
        self.tracker.apply(event);
        self.sync_from_tracker();
    }

    /// The record of a task that succeeded: every collection done, 100 %.
    pub(crate) fn complete(&mut self) {
        self.tracker.finish();
        self.sync_from_tracker();
        self.progress = 100;
        self.step = "done".into();
    }

    fn sync_from_tracker(&mut self) {
        let t = &self.tracker;
        self.progress = self.progress.max(i32::from(t.percent()));
        if !t.phase.is_empty() {
            self.step = t.phase.clone();
        }
        let now = now_ms();
        for (i, c) in t.collections.iter().enumerate() {
            if self.collections.len() <= i {
                self.collections.push(SubTask::default());
            }
            let sub = &mut self.collections[i];
            sub.source = c.name.clone();
            sub.target = c.target.clone().unwrap_or_default();
            sub.size = sub.size.max(c.total_bytes as i64);
            sub.done_bytes = c.done_bytes;
            sub.progress = i32::from(c.percent());
            let state = match c.state {
                CollectionState::Pending => TaskState::Initial,
                CollectionState::Running => TaskState::Executing,
                CollectionState::Done => TaskState::Success,
                CollectionState::Failed => TaskState::Failed,
            };
            if state != TaskState::Initial && sub.start_time == 0 {
                sub.start_time = now;
            }
            if state.is_terminal() && !sub.state.is_terminal() {
                sub.end_time = now;
            }
            sub.state = state;
            if let Some(e) = &c.error {
                sub.error_message = e.clone();
            }
        }
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_the_go_tool_codes() {
        assert_eq!(TaskState::Initial.code(), 0);
        assert_eq!(TaskState::Executing.code(), 1);
        assert_eq!(TaskState::Success.code(), 2);
        for s in [
            TaskState::Failed,
            TaskState::Cancelled,
            TaskState::Interrupted,
        ] {
            assert_eq!(s.code(), 3);
            assert!(s.is_terminal());
        }
        assert!(!TaskState::Executing.is_terminal());
    }

    #[test]
    fn records_round_trip_and_follow_the_core_events() {
        use milvus_backup_core::events::{Operation, Phase, PlannedCollection};
        let mut r = TaskRecord::new(TaskKind::Restore, "t1".into(), "b1");
        r.apply(&Event::Planned {
            operation: Operation::Restore,
            collections: vec![PlannedCollection {
                name: "default.a".into(),
                target: Some("default.a_r".into()),
                segments: 2,
                files: 0,
                bytes: 100,
            }],
        });
        assert_eq!(r.collections[0].target, "default.a_r");
        assert_eq!(r.collections[0].size, 100);
        r.apply(&Event::CollectionStarted { index: 0 });
        r.apply(&Event::Phase(Phase::Loading {
            collection: "default.a_r".into(),
        }));
        r.apply(&Event::SegmentImported {
            collection: 0,
            segment: 7,
            rows: 5,
            bytes: 50,
        });
        assert_eq!(r.collections[0].state, TaskState::Executing);
        assert_eq!(r.collections[0].done_bytes, 50);
        assert_eq!(r.progress, 42);
        assert_eq!(r.step, "loading default.a_r");
        r.state = TaskState::Cancelled;
        let back: TaskRecord = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back.state, TaskState::Cancelled);
        assert_eq!(back.kind, TaskKind::Restore);
        assert_eq!(back.collections[0].done_bytes, 50);
    }
}
