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
//! Cancel: a task's future runs under `select!` with a cancellation token;
//! cancelling drops the core call at its next await point, then the task's
//! cleanup runs (a create removes its partial backup, completion marks
//! first; a restore drops the collection it was filling and its staging
//! files).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;
use futures::StreamExt;
use milvus_backup::config::Config;
use milvus_backup::progress::Progress;
use milvus_backup::storage::{layout, Storage};
use milvus_backup::Context;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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

    /// The anchor's state code: 0 initial, 1 executing, 2 success, 3 fail.
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
    #[serde(skip)]
    transfer: Transfer,
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
            transfer: Transfer::default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Transfer {
    total_bytes: u64,
    done_bytes: u64,
    total_items: u64,
    done_items: u64,
}

impl Transfer {
    fn fraction(&self) -> f64 {
        let f = if self.total_bytes > 0 {
            self.done_bytes as f64 / self.total_bytes as f64
        } else if self.total_items > 0 {
            self.done_items as f64 / self.total_items as f64
        } else {
            0.0
        };
        f.clamp(0.0, 1.0)
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
    /// Index of the collection being worked on (restore).
    pub current: AtomicUsize,
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
            current: AtomicUsize::new(0),
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

pub type Work = LocalBoxFuture<'static, milvus_backup::Result<serde_json::Value>>;
pub type Cleanup = LocalBoxFuture<'static, ()>;

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
        let manager = Arc::new(TaskManager {
            config,
            main: tokio::runtime::Handle::current(),
            storage,
            tasks: Mutex::new(HashMap::new()),
            names: Mutex::new(HashSet::new()),
            server_id: uuid::Uuid::new_v4().to_string(),
            metrics,
            secrets,
        });
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

    async fn load(self: &Arc<Self>) -> milvus_backup::Result<usize> {
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
                        "interrupted: the server stopped while this task was running — an incomplete backup `{}` may remain; delete it and create the backup again",
                        r.backup_name
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

    /// Starts `work` as a task. `cleanup` runs when the task is cancelled or
    /// interrupted, after `work` has been dropped.
    ///
    /// Each task runs on its own thread and runtime, with its own
    /// connections (`work` gets a fresh [`Context`]): the core's futures are
    /// not `Send`, and connections must not outlive the runtime that made
    /// them. Records are written and cleanups run on the server's runtime.
    pub fn spawn(
        self: &Arc<Self>,
        record: TaskRecord,
        guard: Option<NameGuard>,
        work: impl FnOnce(Context, Arc<Task>, TaskProgress) -> Work + Send + 'static,
        cleanup: impl FnOnce(Arc<Task>) -> Cleanup + Send + 'static,
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
                    Some(Ok(result)) => {
                        t.update(|r| r.result = Some(result));
                        (TaskState::Success, String::new(), 0)
                    }
                    Some(Err(e)) => {
                        let api = ApiError::from_core(&e, &manager.secrets);
                        (TaskState::Failed, api.message, api.status.as_u16())
                    }
                    None => {
                        manager.main.block_on(cleanup(t.clone()));
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

    /// Runs `work` on a runtime of its own until it ends or is cancelled
    /// (`None`).
    fn run_work(
        self: &Arc<Self>,
        task: &Arc<Task>,
        work: impl FnOnce(Context, Arc<Task>, TaskProgress) -> Work,
    ) -> Option<milvus_backup::Result<serde_json::Value>> {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                return Some(Err(milvus_backup::Error::internal(format!(
                    "cannot start a runtime for the task: {e}"
                ))))
            }
        };
        let ctx = match Context::open(&self.config) {
            Ok(ctx) => ctx,
            Err(e) => return Some(Err(e)),
        };
        let progress = TaskProgress {
            task: task.clone(),
            manager: self.clone(),
        };
        let cancel = task.cancel.clone();
        let outcome = rt.block_on(async move {
            let fut = work(ctx, task.clone(), progress);
            tokio::select! {
                biased;
                r = fut => Some(r),
                _ = cancel.cancelled() => None,
            }
        });
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

/// The core's progress events, written into a task record.
pub struct TaskProgress {
    task: Arc<Task>,
    manager: Arc<TaskManager>,
}

impl TaskProgress {
    fn changed(&self) {
        self.manager.persist_soon(&self.task);
    }
}

impl Progress for TaskProgress {
    fn step(&self, message: &str) {
        let message = scrub(message, &self.manager.secrets);
        self.task.update(|r| {
            r.step = message.clone();
            if r.kind == TaskKind::Create {
                let n = r.collections.len().max(1);
                if let Some(i) = r
                    .collections
                    .iter()
                    .position(|c| message.ends_with(&format!("reading {}", c.source)))
                {
                    let c = &mut r.collections[i];
                    c.state = TaskState::Executing;
                    c.start_time = now_ms();
                    r.progress = r.progress.max((10 * i / n) as i32);
                } else if message.starts_with("writing metadata") {
                    r.progress = r.progress.max(95);
                }
            }
        });
        self.changed();
    }

    fn transfer_start(&self, items: u64, _unit: &str, bytes: u64) {
        let current = self.task.current.load(Ordering::SeqCst);
        self.task.update(|r| {
            r.transfer = Transfer {
                total_bytes: bytes,
                total_items: items,
                ..Default::default()
            };
            if r.kind == TaskKind::Restore {
                if let Some(c) = r.collections.get_mut(current) {
                    c.size = c.size.max(bytes as i64);
                }
            }
        });
    }

    fn transfer_advance(&self, bytes: u64) {
        let current = self.task.current.load(Ordering::SeqCst);
        self.task.update(|r| {
            r.transfer.done_bytes += bytes;
            r.transfer.done_items += 1;
            let f = r.transfer.fraction();
            match r.kind {
                TaskKind::Create => {
                    r.progress = r.progress.max(10 + (85.0 * f) as i32);
                    for c in &mut r.collections {
                        if c.state == TaskState::Executing {
                            c.progress = (100.0 * f) as i32;
                        }
                    }
                }
                TaskKind::Restore => {
                    let n = r.collections.len().max(1) as f64;
                    if let Some(c) = r.collections.get_mut(current) {
                        c.done_bytes += bytes;
                        c.progress = (100.0 * f).min(99.0) as i32;
                    }
                    r.progress = (100.0 * (current as f64 + f) / n).min(99.0) as i32;
                }
                TaskKind::Verify => r.progress = (99.0 * f) as i32,
            }
        });
        self.changed();
    }

    fn transfer_end(&self) {}

    fn warn(&self, message: &str) {
        let message = scrub(message, &self.manager.secrets);
        tracing::warn!("task {}: {message}", self.task.snapshot().id);
        self.task.update(|r| {
            if r.warnings.len() < 50 {
                r.warnings.push(message);
            }
        });
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
    fn states_keep_the_anchor_codes() {
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
    fn records_round_trip_and_fractions_use_bytes_then_items() {
        let mut r = TaskRecord::new(TaskKind::Restore, "t1".into(), "b1");
        r.state = TaskState::Cancelled;
        let back: TaskRecord = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back.state, TaskState::Cancelled);
        assert_eq!(back.kind, TaskKind::Restore);
        let t = Transfer {
            total_bytes: 200,
            done_bytes: 50,
            total_items: 4,
            done_items: 3,
        };
        assert_eq!(t.fraction(), 0.25);
        let t = Transfer {
            total_items: 4,
            done_items: 3,
            ..Default::default()
        };
        assert_eq!(t.fraction(), 0.75);
    }
}
