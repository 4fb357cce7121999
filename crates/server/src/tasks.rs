//! Long work (create, restore, verify) as tasks: each runs on its own tokio
//! task, reports progress into a [`TaskRecord`], can be cancelled, and is
//! persisted as JSON in backup storage (`storage::layout::task_record`), so
//! a restarted server still answers for it.
//!
//! Records are written on every state change and, while a transfer runs, at
//! most every [`PERSIST_EVERY`]. A record a previous process left
//! `initial`/`executing` is marked interrupted when the server starts; on
//! SIGTERM/Ctrl-C running tasks are stopped and marked interrupted before
//! the process exits.
//!
//! Progress is the core's typed events folded by its `Tracker`; nothing
//! here reads message text. Cancel: the task's cancellation token goes to
//! the core, which stops and cleans up itself (a create removes its partial
//! backup, a restore drops the collection it was filling and sweeps its
//! staging folder) and answers `ErrorKind::Cancelled`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;
use futures::StreamExt;
use milvus_backup_core::config::Config;
use milvus_backup_core::events::{CollectionState, Event, EventSink, Tracker};
use milvus_backup_core::model::layout;
use milvus_backup_core::storage::Storage;
use milvus_backup_core::{CancellationToken, Context, ErrorKind};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{scrub, ApiError};
use crate::metrics::Metrics;

/// Progress-only updates are written at most this often.
pub const PERSIST_EVERY: Duration = Duration::from_secs(2);
/// How long a cancel request waits for the task to stop and clean up.
const CANCEL_WAIT: Duration = Duration::from_secs(60);
/// How long shutdown waits for running tasks to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(20);
/// Records read at startup (newest kept).
const MAX_LOADED: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Create,
    Restore,
    Verify,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Create => "create",
            TaskKind::Restore => "restore",
            TaskKind::Verify => "verify",
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

/// A task in this process.
pub struct Task {
    record: Mutex<TaskRecord>,
    cancel: CancellationToken,
    /// Stopped by shutdown rather than by a cancel request.
    interrupted: AtomicBool,
    done: watch::Sender<bool>,
    persist_lock: tokio::sync::Mutex<()>,
    last_persist: Mutex<Instant>,
}

impl Task {
    fn new(record: TaskRecord, done: bool) -> Task {
        Task {
            record: Mutex::new(record),
            cancel: CancellationToken::new(),
            interrupted: AtomicBool::new(false),
            done: watch::channel(done).0,
            persist_lock: tokio::sync::Mutex::new(()),
            last_persist: Mutex::new(Instant::now()),
        }
    }

    pub fn snapshot(&self) -> TaskRecord {
        self.record.lock().unwrap().clone()
    }

    pub fn update<R>(&self, f: impl FnOnce(&mut TaskRecord) -> R) -> R {
        f(&mut self.record.lock().unwrap())
    }

    /// Waits until the task reached a final state.
    pub async fn wait_done(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }
}

/// Releases a reserved backup name when dropped.
pub struct NameGuard {
    manager: Arc<TaskManager>,
    name: String,
}

impl Drop for NameGuard {
    fn drop(&mut self) {
        self.manager.names.lock().unwrap().remove(&self.name);
    }
}

pub type Work = LocalBoxFuture<'static, milvus_backup_core::Result<serde_json::Value>>;

pub struct TaskManager {
    config: Config,
    /// The server's runtime: records are written and cleanups run there.
    main: tokio::runtime::Handle,
    storage: Storage,
    tasks: Mutex<HashMap<String, Arc<Task>>>,
    /// Backup names of creates running in this process.
    names: Mutex<HashSet<String>>,
    server_id: String,
    pub metrics: Arc<Metrics>,
    secrets: Vec<String>,
}

impl TaskManager {
    /// Reads the task records in backup storage; records a previous process
    /// left running are marked interrupted (and written back).
    pub async fn open(
        config: Config,
        storage: Storage,
        metrics: Arc<Metrics>,
        secrets: Vec<String>,
    ) -> Arc<Self> {
        let manager = Self::detached(config, storage, metrics, secrets);
        match manager.load().await {
            Ok(n) if n > 0 => tracing::info!("read {n} task record(s) from backup storage"),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                "could not read task records from backup storage ({}); earlier tasks are unknown to this server",
                scrub(&e.to_string(), &manager.secrets)
            ),
        }
        manager
    }

    /// A manager that does not read (nor mark interrupted) the records in
    /// storage: for runs in the foreground beside a running server.
    pub fn detached(
        config: Config,
        storage: Storage,
        metrics: Arc<Metrics>,
        secrets: Vec<String>,
    ) -> Arc<Self> {
        Arc::new(TaskManager {
            config,
            main: tokio::runtime::Handle::current(),
            storage,
            tasks: Mutex::new(HashMap::new()),
            names: Mutex::new(HashSet::new()),
            server_id: uuid::Uuid::new_v4().to_string(),
            metrics,
            secrets,
        })
    }

    async fn load(self: &Arc<Self>) -> milvus_backup_core::Result<usize> {
        let objects = self.storage.list(layout::TASKS_DIR).await?;
        let storage = &self.storage;
        let mut records: Vec<TaskRecord> =
            futures::stream::iter(objects.iter().filter(|o| o.key.ends_with(".json")).map(
                |o| async move {
                    match storage.read(&o.key).await {
                        Ok(bytes) => match serde_json::from_slice::<TaskRecord>(&bytes) {
                            Ok(r) if !r.id.is_empty() => Some(r),
                            _ => {
                                tracing::warn!("`{}` is not a task record; ignored", o.key);
                                None
                            }
                        },
                        Err(e) => {
                            tracing::warn!("cannot read task record `{}`: {e}", o.key);
                            None
                        }
                    }
                },
            ))
            .buffer_unordered(16)
            .filter_map(|r| async move { r })
            .collect()
            .await;
        records.sort_by_key(|r| std::cmp::Reverse(r.start_time));
        records.truncate(MAX_LOADED);
        let count = records.len();
        for mut r in records {
            let stale = !r.state.is_terminal();
            if stale {
                r.state = TaskState::Interrupted;
                r.end_time = now_ms();
                r.error_status = 500;
                r.error_message = match r.kind {
                    TaskKind::Create => format!(
                        "interrupted: the server stopped while this task was running — the incomplete backup `{}` it left can be finished with POST /api/v1/resume?id={}, or deleted",
                        r.backup_name, r.id
                    ),
                    TaskKind::Restore => format!(
                        "interrupted: the server stopped while this task was running — finish it with POST /api/v1/resume?id={}, or drop what it restored",
                        r.id
                    ),
                    _ => "interrupted: the server stopped while this task was running — run it again".to_string(),
                };
                for c in &mut r.collections {
                    if !c.state.is_terminal() {
                        c.state = TaskState::Interrupted;
                    }
                }
            }
            let task = Arc::new(Task::new(r, true));
            self.tasks
                .lock()
                .unwrap()
                .insert(task.snapshot().id, task.clone());
            if stale {
                self.persist(&task).await;
            }
        }
        Ok(count)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Task>> {
        self.tasks.lock().unwrap().get(id).cloned()
    }

    /// Every task, newest first.
    pub fn all(&self) -> Vec<TaskRecord> {
        let mut out: Vec<TaskRecord> = self
            .tasks
            .lock()
            .unwrap()
            .values()
            .map(|t| t.snapshot())
            .collect();
        out.sort_by(|a, b| b.start_time.cmp(&a.start_time).then(a.id.cmp(&b.id)));
        out
    }

    /// The newest create task of a backup name.
    pub fn latest_create(&self, name: &str) -> Option<TaskRecord> {
        self.all()
            .into_iter()
            .find(|r| r.kind == TaskKind::Create && r.backup_name == name)
    }

    /// Whether a task of this process that is still running uses the backup.
    pub fn running_on(&self, name: &str) -> Option<TaskRecord> {
        self.all()
            .into_iter()
            .find(|r| r.backup_name == name && !r.state.is_terminal())
    }

    /// Names of the backups this server's running creates are writing.
    pub fn creating(&self) -> HashSet<String> {
        self.all()
            .into_iter()
            .filter(|r| r.kind == TaskKind::Create && !r.state.is_terminal())
            .map(|r| r.backup_name)
            .collect()
    }

    pub fn running_counts(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for r in self.all().iter().filter(|r| !r.state.is_terminal()) {
            *out.entry(r.kind.as_str()).or_default() += 1;
        }
        out
    }

    /// Reserves a backup name for a create; refused while another create
    /// of this process holds it.
    pub fn reserve_name(self: &Arc<Self>, name: &str) -> Result<NameGuard, ApiError> {
        if !self.names.lock().unwrap().insert(name.to_string()) {
            return Err(ApiError::conflict(format!(
                "a backup named `{name}` is being created right now — wait for it (get_backup) or choose another name"
            )));
        }
        Ok(NameGuard {
            manager: self.clone(),
            name: name.to_string(),
        })
    }

    pub fn id_taken(&self, id: &str) -> bool {
        self.tasks.lock().unwrap().contains_key(id)
    }

    /// Starts `work` (a core operation) as a task; it gets the task's
    /// events and cancellation token. A cancelled operation cleans up after
    /// itself and fails with `ErrorKind::Cancelled`.
    ///
    /// Each task runs on its own thread and runtime, with its own
    /// connections (`work` gets a fresh [`Context`]): the core's futures are
    /// not `Send`, and connections must not outlive the runtime that made
    /// them. Records are written and cleanups run on the server's runtime.
    pub fn spawn(
        self: &Arc<Self>,
        record: TaskRecord,
        guard: Option<NameGuard>,
        work: impl FnOnce(Context, TaskEvents, CancellationToken) -> Work + Send + 'static,
    ) -> Arc<Task> {
        let mut record = record;
        record.server_id = self.server_id.clone();
        record.state = TaskState::Executing;
        let id = record.id.clone();
        let task = Arc::new(Task::new(record, false));
        self.tasks.lock().unwrap().insert(id.clone(), task.clone());
        {
            let (manager, task) = (self.clone(), task.clone());
            self.main.spawn(async move { manager.persist(&task).await });
        }
        let manager = self.clone();
        let t = task.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("task-{}", &id[..id.len().min(8)]))
            .spawn(move || {
                let started = Instant::now();
                let outcome = manager.run_work(&t, work);
                let (state, message, status) = match outcome {
                    Ok(result) => {
                        t.update(|r| r.result = Some(result));
                        (TaskState::Success, String::new(), 0)
                    }
                    Err(e) if e.kind() != ErrorKind::Cancelled => {
                        let api = ApiError::from_core(&e, &manager.secrets);
                        (TaskState::Failed, api.message, api.status.as_u16())
                    }
                    Err(_) => {
                        if t.interrupted.load(Ordering::SeqCst) {
                            (
                                TaskState::Interrupted,
                                "interrupted: the server shut down while this task was running — run it again".to_string(),
                                503,
                            )
                        } else {
                            (TaskState::Cancelled, "cancelled by request".to_string(), 409)
                        }
                    }
                };
                let seconds = started.elapsed().as_secs_f64();
                manager.finish(&t, state, message, status);
                manager.record_metrics(&t, seconds);
                manager.main.block_on(manager.persist(&t));
                drop(guard);
                t.done.send_replace(true);
            });
        if let Err(e) = spawned {
            self.finish(
                &task,
                TaskState::Failed,
                format!("cannot start a thread for the task: {e}"),
                500,
            );
            task.done.send_replace(true);
        }
        task
    }

    /// Runs `work` on a runtime of its own until it ends.
    fn run_work(
        self: &Arc<Self>,
        task: &Arc<Task>,
        work: impl FnOnce(Context, TaskEvents, CancellationToken) -> Work,
    ) -> milvus_backup_core::Result<serde_json::Value> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| {
                milvus_backup_core::Error::internal(format!(
                    "cannot start a runtime for the task: {e}"
                ))
            })?;
        let ctx = Context::open(&self.config)?;
        let events = TaskEvents {
            task: task.clone(),
            manager: self.clone(),
        };
        let cancel = task.cancel.clone();
        let outcome = rt.block_on(work(ctx, events, cancel));
        // Drops whatever the core left running (e.g. a GC-pause renewal).
        rt.shutdown_timeout(Duration::from_secs(5));
        outcome
    }

    fn finish(&self, task: &Task, state: TaskState, message: String, status: u16) {
        task.update(|r| {
            r.state = state;
            r.error_message = message.clone();
            r.error_status = status;
            r.end_time = now_ms();
            if state == TaskState::Success {
                r.tracker.finish();
                r.sync_from_tracker();
                r.progress = 100;
                r.step = "done".into();
            }
            for c in &mut r.collections {
                if !c.state.is_terminal() {
                    c.state = state;
                    c.end_time = r.end_time;
                    if state == TaskState::Success {
                        c.progress = 100;
                    } else if c.error_message.is_empty() {
                        c.error_message = message.clone();
                    }
                }
            }
        });
    }

    fn record_metrics(&self, task: &Task, seconds: f64) {
        let r = task.snapshot();
        self.metrics.task_finished(r.kind, r.state, seconds);
        if r.state != TaskState::Success {
            return;
        }
        let result = r.result.unwrap_or_default();
        let num = |k: &str| result.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        match r.kind {
            TaskKind::Create => {
                self.metrics.bytes_copied("backup", num("copied_bytes"));
                let ts = num("backup_timestamp");
                for c in &r.collections {
                    self.metrics.backup_succeeded(&c.source, ts);
                }
            }
            TaskKind::Restore => self.metrics.bytes_copied("restore", num("staged_bytes")),
            TaskKind::Verify => {}
        }
    }

    /// Writes the task's current record; failures are logged, not fatal.
    pub async fn persist(&self, task: &Task) {
        // The snapshot is taken under the lock, so the last write to land
        // is always the newest state.
        let _guard = task.persist_lock.lock().await;
        let record = task.snapshot();
        *task.last_persist.lock().unwrap() = Instant::now();
        let bytes = match serde_json::to_vec_pretty(&record) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot encode task record {}: {e}", record.id);
                return;
            }
        };
        if let Err(e) = self
            .storage
            .write(&layout::task_record(&record.id), bytes)
            .await
        {
            tracing::warn!(
                "could not write task record {}: {}",
                record.id,
                scrub(&e.to_string(), &self.secrets)
            );
        }
    }

    fn persist_soon(self: &Arc<Self>, task: &Arc<Task>) {
        {
            let mut last = task.last_persist.lock().unwrap();
            if last.elapsed() < PERSIST_EVERY {
                return;
            }
            *last = Instant::now();
        }
        let (manager, task) = (self.clone(), task.clone());
        self.main.spawn(async move { manager.persist(&task).await });
    }

    /// Stops a running task and waits (bounded) until it cleaned up.
    pub async fn cancel(&self, id: &str) -> Result<TaskRecord, ApiError> {
        let task = self.get(id).ok_or_else(|| {
            ApiError::not_found(format!("no task `{id}` — see GET /api/v1/tasks"))
        })?;
        let state = task.snapshot().state;
        if state.is_terminal() {
            return Err(ApiError::conflict(format!(
                "task `{id}` already finished ({}) — nothing to cancel",
                state.as_str()
            )));
        }
        task.cancel.cancel();
        if tokio::time::timeout(CANCEL_WAIT, task.wait_done())
            .await
            .is_err()
        {
            return Err(ApiError::conflict(format!(
                "task `{id}` is still stopping after {} s — poll it with GET /api/v1/tasks",
                CANCEL_WAIT.as_secs()
            )));
        }
        let record = task.snapshot();
        if record.state == TaskState::Success {
            return Err(ApiError::conflict(format!(
                "task `{id}` finished before it could be cancelled"
            ))
            .with_data(crate::api::TaskSummary::of(&record)));
        }
        Ok(record)
    }

    /// Stops every running task and records it as interrupted.
    pub async fn shutdown(&self) {
        let running: Vec<Arc<Task>> = self
            .tasks
            .lock()
            .unwrap()
            .values()
            .filter(|t| !t.snapshot().state.is_terminal())
            .cloned()
            .collect();
        if running.is_empty() {
            return;
        }
        tracing::info!("stopping {} running task(s)", running.len());
        for t in &running {
            t.interrupted.store(true, Ordering::SeqCst);
            t.cancel.cancel();
        }
        let all = futures::future::join_all(running.iter().map(|t| t.wait_done()));
        if tokio::time::timeout(SHUTDOWN_WAIT, all).await.is_err() {
            for t in running.iter().filter(|t| !t.snapshot().state.is_terminal()) {
                self.finish(
                    t,
                    TaskState::Interrupted,
                    "interrupted: the server shut down while this task was running — run it again"
                        .to_string(),
                    503,
                );
                self.persist(t).await;
            }
        }
    }
}

/// The core's events, folded into a task record.
pub struct TaskEvents {
    pub task: Arc<Task>,
    manager: Arc<TaskManager>,
}

impl EventSink for TaskEvents {
    fn emit(&self, event: Event) {
        let event = match event {
            Event::Warning { message } => {
                let message = scrub(&message, &self.manager.secrets);
                tracing::warn!("task {}: {message}", self.task.snapshot().id);
                Event::Warning { message }
            }
            Event::Note { message } => Event::Note {
                message: scrub(&message, &self.manager.secrets),
            },
            other => other,
        };
        self.task.update(|r| r.apply(&event));
        self.manager.persist_soon(&self.task);
    }
}

/// Boxes a future for [`TaskManager::spawn`].
pub fn boxed<F>(f: F) -> LocalBoxFuture<'static, F::Output>
where
    F: Future + 'static,
{
    Box::pin(f)
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
        assert_eq!(r.progress, 47);
        assert_eq!(r.step, "loading default.a_r");
        r.state = TaskState::Cancelled;
        let back: TaskRecord = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back.state, TaskState::Cancelled);
        assert_eq!(back.kind, TaskKind::Restore);
        assert_eq!(back.collections[0].done_bytes, 50);
    }
}
