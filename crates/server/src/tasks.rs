//! The task registry: long work (create, restore, verify) as tasks; each
//! runs on its own thread, reports progress into a [`TaskRecord`]
//! (`record`), can be cancelled, and is
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
use milvus_backup_core::events::{Event, EventSink};
use milvus_backup_core::model::layout;
use milvus_backup_core::storage::Storage;
use milvus_backup_core::{CancellationToken, Context, ErrorKind};
use tokio::sync::watch;

use crate::error::{scrub, ApiError};
use crate::metrics::Metrics;
use crate::record::{now_ms, TaskKind, TaskRecord, TaskState};

/// Progress-only updates are written at most this often.
pub const PERSIST_EVERY: Duration = Duration::from_secs(2);
/// How long a cancel request waits for the task to stop and clean up.
const CANCEL_WAIT: Duration = Duration::from_secs(60);
/// How long shutdown waits for running tasks to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(20);
/// Records read at startup (newest kept).
const MAX_LOADED: usize = 2000;

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
        let caller = crate::error::caller();
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
                        let api = ApiError::from_core_for(&e, &manager.secrets, caller);
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
                r.complete();
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
            TaskKind::Verify | TaskKind::Compare | TaskKind::Migrate => {}
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

    /// Stops a running task and waits (bounded) until it cleaned up; its
    /// record then (which may say it succeeded before it could stop).
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
        // A task that succeeded meanwhile is answered too: the caller
        // tells it apart by its state.
        Ok(task.snapshot())
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
