//! The scheduler of `backup_strategy` inside `server` (and in the
//! foreground with `milvus-backup schedule run`).
//!
//! Every second it compares the clock with each policy's next cron time.
//! A due run starts as a task of the [`TaskManager`] — so it is listed in
//! `/api/v1/tasks`, with the same progress and cancel as a manual one —
//! running the core's `schedule::run` (create + retention + replicate, or
//! verify). A policy whose previous run is still going is skipped, and
//! the skip recorded. Only the holder of the lease in backup storage
//! starts runs; the others keep serving and take over when the lease
//! expires. What it remembers (last runs, outcomes, catchup) is
//! `schedule::state` in backup storage. Health is recomputed every few
//! seconds for the metrics, the status page and the RPO alerts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use milvus_backup_core::config::Config;
use milvus_backup_core::schedule::alerts::{Alert, AlertEvent, Alerter};
use milvus_backup_core::schedule::health::{self, HealthReport};
use milvus_backup_core::schedule::state::{self, RunInfo, ScheduleState};
use milvus_backup_core::schedule::{lease, run, PolicyKind, Strategy};
use milvus_backup_core::storage::Storage;
use milvus_backup_core::{CancellationToken, Context, Error, Result};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::routes::{ok, ErrorResponses, Rid, Shared};
use crate::tasks::{boxed, TaskKind, TaskManager, TaskRecord, TaskState};

/// How often health is recomputed (at most).
const HEALTH_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyStatus {
    pub policy: &'static str,
    pub schedule: String,
    pub next_run: Option<String>,
    pub next_run_at: Option<i64>,
    pub retention: Option<u32>,
    /// The task of the run going now.
    pub running: Option<String>,
    /// `{policy, name, task_id, trigger, started_at, ended_at, outcome, message}`.
    #[schema(value_type = Option<Object>)]
    pub last_run: Option<RunInfo>,
    #[schema(value_type = Option<Object>)]
    pub last_success: Option<RunInfo>,
    pub runs: u64,
    pub failed: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScheduleStatus {
    /// This server starts the runs (it holds the lease).
    pub leader: bool,
    /// Who holds the lease (host and pid), when known.
    pub lease_holder: Option<String>,
    pub timezone: String,
    pub policies: Vec<PolicyStatus>,
    pub secondary: Option<String>,
}

pub struct Scheduler {
    strategy: Arc<Strategy>,
    tasks: Arc<TaskManager>,
    storage: Storage,
    secondary: Option<Config>,
    holder: String,
    leader: AtomicBool,
    lease_holder: Mutex<Option<String>>,
    state: Mutex<ScheduleState>,
    running: Mutex<HashMap<PolicyKind, String>>,
    next: Mutex<BTreeMap<PolicyKind, DateTime<Utc>>>,
    alerter: Alerter,
    health: Mutex<Option<HealthReport>>,
    breached: Mutex<BTreeSet<String>>,
    state_lock: tokio::sync::Mutex<()>,
    started: Instant,
}

impl Scheduler {
    pub fn new(
        strategy: Strategy,
        config: &Config,
        tasks: Arc<TaskManager>,
        storage: Storage,
    ) -> Arc<Scheduler> {
        let mut secrets: Vec<String> = config.secrets().into_iter().map(str::to_string).collect();
        if let Some(s) = &strategy.secondary {
            secrets.extend(s.secrets());
        }
        let now = Utc::now();
        let next = PolicyKind::ALL
            .into_iter()
            .filter_map(|k| {
                strategy
                    .schedule(k)
                    .and_then(|s| s.next_after(now))
                    .map(|t| (k, t))
            })
            .collect();
        Arc::new(Scheduler {
            secondary: strategy.secondary_config(config),
            alerter: Alerter::new(strategy.webhook.clone(), secrets),
            strategy: Arc::new(strategy),
            tasks,
            storage,
            holder: uuid::Uuid::new_v4().to_string(),
            leader: AtomicBool::new(false),
            lease_holder: Mutex::new(None),
            state: Mutex::new(ScheduleState::default()),
            running: Mutex::new(HashMap::new()),
            next: Mutex::new(next),
            health: Mutex::new(None),
            breached: Mutex::new(BTreeSet::new()),
            state_lock: tokio::sync::Mutex::new(()),
            started: Instant::now(),
        })
    }

    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// Runs until `stop` fires; then gives the lease up.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let renew_every = (self.strategy.lease / 3).max(Duration::from_secs(1));
        let mut last_lease: Option<Instant> = None;
        let mut last_health: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if last_lease.is_none_or(|t| t.elapsed() >= renew_every) {
                last_lease = Some(Instant::now());
                self.lease().await;
            }
            let now = Utc::now();
            let due: Vec<(PolicyKind, DateTime<Utc>)> = {
                let mut next = self.next.lock().unwrap();
                let mut due = Vec::new();
                for (kind, at) in next.iter_mut() {
                    if now >= *at {
                        due.push((*kind, *at));
                        if let Some(n) = self
                            .strategy
                            .schedule(*kind)
                            .and_then(|s| s.next_after(now))
                        {
                            *at = n;
                        }
                    }
                }
                due
            };
            if self.is_leader() {
                for (kind, at) in due {
                    self.fire(kind, "schedule", at).await;
                }
            }
            if last_health.is_none_or(|t| t.elapsed() >= HEALTH_EVERY) {
                last_health = Some(Instant::now());
                self.refresh_health().await;
            }
        }
        if self.is_leader() {
            let _ = lease::release(&self.storage, &self.holder).await;
        }
    }

    /// Takes, keeps or loses the lease; on taking it, reads the state and
    /// catches up a run missed while no scheduler ran.
    async fn lease(self: &Arc<Self>) {
        let held = match lease::acquire(&self.storage, &self.holder, self.strategy.lease).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("scheduler: cannot renew the lease: {e}");
                false
            }
        };
        if let Ok(l) = lease::read(&self.storage).await {
            *self.lease_holder.lock().unwrap() = l.map(|l| l.host);
        }
        let was = self.leader.swap(held, Ordering::SeqCst);
        if held && !was {
            tracing::info!("scheduler: this server holds the lease and schedules the backups");
            match state::read(&self.storage).await {
                Ok(s) => *self.state.lock().unwrap() = s,
                Err(e) => tracing::warn!("scheduler: cannot read its state: {e}"),
            }
            self.catch_up().await;
        } else if !held && was {
            tracing::warn!("scheduler: lost the lease; another server schedules now");
        }
    }

    async fn catch_up(self: &Arc<Self>) {
        let Some(window) = self.strategy.catchup else {
            return;
        };
        let now = Utc::now();
        for kind in PolicyKind::ALL {
            let Some(schedule) = self.strategy.schedule(kind) else {
                continue;
            };
            let Some(prev) = schedule.last_at_or_before(now) else {
                continue;
            };
            let last = {
                let s = self.state.lock().unwrap();
                s.policies.get(kind.as_str()).map(|p| p.last_fired_at)
            };
            let prev_ms = prev.timestamp_millis() as u64;
            // Only a scheduler that ran before can have missed a run.
            if let Some(last) = last.filter(|l| *l > 0) {
                let age = now.signed_duration_since(prev).to_std().unwrap_or_default();
                if prev_ms > last && age <= window {
                    tracing::info!(
                        "scheduler: {} run of {} was missed; running it now (catchup {})",
                        kind.as_str(),
                        prev.to_rfc3339(),
                        health::human(window.as_secs())
                    );
                    self.fire(kind, "catchup", prev).await;
                }
            }
        }
    }

    /// A due run: started, or skipped when the previous one still runs.
    async fn fire(self: &Arc<Self>, kind: PolicyKind, trigger: &str, at: DateTime<Utc>) {
        self.state
            .lock()
            .unwrap()
            .policy(kind.as_str())
            .last_fired_at = at.timestamp_millis() as u64;
        if let Err(e) = self.launch(kind, trigger) {
            if e.status == axum::http::StatusCode::CONFLICT {
                let now = Utc::now().timestamp_millis() as u64;
                tracing::warn!("scheduler: {} run skipped: {}", kind.as_str(), e.message);
                self.state.lock().unwrap().record(RunInfo {
                    policy: kind.as_str().into(),
                    name: kind.run_name(Utc::now()),
                    trigger: trigger.into(),
                    started_at: now,
                    ended_at: now,
                    outcome: "skipped".into(),
                    message: e.message,
                    ..Default::default()
                });
            } else {
                tracing::warn!(
                    "scheduler: {} run not started: {}",
                    kind.as_str(),
                    e.message
                );
            }
        }
        self.save_state().await;
    }

    /// Starts a run of `kind` as a task; 409 while one is running.
    pub fn launch(
        self: &Arc<Self>,
        kind: PolicyKind,
        trigger: &str,
    ) -> std::result::Result<TaskRecord, ApiError> {
        if self.strategy.schedule(kind).is_none() {
            return Err(ApiError::bad_request(format!(
                "backup_strategy.{} is not configured",
                kind.key()
            )));
        }
        {
            let running = self.running.lock().unwrap();
            if let Some(id) = running.get(&kind) {
                if self
                    .tasks
                    .get(id)
                    .is_some_and(|t| !t.snapshot().state.is_terminal())
                {
                    return Err(ApiError::conflict(format!(
                        "the previous {} run (task {id}) is still going — runs never overlap",
                        kind.as_str()
                    )));
                }
            }
        }
        let name = kind.run_name(Utc::now());
        let strategy = self.strategy.clone();
        let secondary = self.secondary.clone();
        let id = uuid::Uuid::new_v4().to_string();
        let task_kind = if kind == PolicyKind::Verification {
            TaskKind::Verify
        } else {
            TaskKind::Create
        };
        let mut record = TaskRecord::new(task_kind, id.clone(), &name);
        record.options = serde_json::json!({ "schedule": kind.as_str(), "trigger": trigger });
        let guard = match kind {
            PolicyKind::Verification => None,
            _ => Some(self.tasks.reserve_name(&name)?),
        };
        let run_name = name.clone();
        let task = self.tasks.spawn(record, guard, move |ctx, events, cancel| {
            boxed(async move {
                let sec = match &secondary {
                    Some(c) => Some(Context::open(c)?),
                    None => None,
                };
                let value = if kind == PolicyKind::Verification {
                    let r = run::verification_run(&ctx, &strategy, sec.as_ref(), &events, &cancel)
                        .await?;
                    serde_json::to_value(r)
                } else {
                    let r = run::backup_run(
                        &ctx,
                        &strategy,
                        kind,
                        &run_name,
                        sec.as_ref().map(|c| &c.backup_storage),
                        &events,
                        &cancel,
                    )
                    .await?;
                    serde_json::to_value(r)
                };
                value.map_err(|e| Error::internal(format!("encoding the run's result: {e}")))
            })
        });
        self.running.lock().unwrap().insert(kind, id.clone());
        let info = RunInfo {
            policy: kind.as_str().into(),
            name: name.clone(),
            task_id: id,
            trigger: trigger.into(),
            started_at: Utc::now().timestamp_millis() as u64,
            outcome: "running".into(),
            ..Default::default()
        };
        self.state.lock().unwrap().record(info.clone());
        let me = self.clone();
        let t = task.clone();
        tokio::spawn(async move {
            t.wait_done().await;
            me.finished(kind, info, t.snapshot()).await;
        });
        Ok(task.snapshot())
    }

    async fn finished(self: &Arc<Self>, kind: PolicyKind, mut info: RunInfo, r: TaskRecord) {
        info.ended_at = Utc::now().timestamp_millis() as u64;
        info.outcome = r.state.as_str().to_string();
        info.message = r.error_message.clone();
        self.state.lock().unwrap().record(info.clone());
        self.save_state().await;
        let base = |event, text: String| {
            Alert::new(event, text)
                .field("policy", kind.as_str())
                .field("run", &info.name)
                .field("task", &info.task_id)
        };
        match (kind, r.state) {
            (PolicyKind::Verification, TaskState::Failed) => self.alerter.send(base(
                AlertEvent::VerificationFailed,
                format!("Verification run {} failed: {}", info.name, r.error_message),
            )),
            (PolicyKind::Verification, TaskState::Success) => {
                let damaged: Vec<String> = r
                    .result
                    .as_ref()
                    .and_then(|v| v.get("damaged"))
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                if !damaged.is_empty() {
                    self.alerter.send(
                        base(
                            AlertEvent::BackupCorrupt,
                            format!(
                                "Backup corrupted: verification of {} found damage",
                                damaged.join(", ")
                            ),
                        )
                        .field("backups", damaged.join(",")),
                    );
                }
            }
            (_, TaskState::Failed) if r.error_message.contains(run::SECONDARY_FAILED) => {
                self.alerter.send(base(
                    AlertEvent::SecondaryCopyFailed,
                    format!(
                        "Secondary copy failed for {}: {}",
                        info.name, r.error_message
                    ),
                ))
            }
            (_, TaskState::Failed) => self.alerter.send(base(
                AlertEvent::BackupFailed,
                format!(
                    "Backup {} ({}) failed: {}",
                    info.name,
                    kind.as_str(),
                    r.error_message
                ),
            )),
            _ => {}
        }
        self.refresh_health().await;
    }

    async fn save_state(&self) {
        if !self.is_leader() {
            return;
        }
        let _g = self.state_lock.lock().await;
        let s = self.state.lock().unwrap().clone();
        if let Err(e) = state::write(&self.storage, &s).await {
            tracing::warn!("scheduler: cannot write its state: {e}");
        }
    }

    /// Health now (and the RPO alerts on a change).
    pub async fn refresh_health(&self) -> Option<HealthReport> {
        let secondary = match &self.secondary {
            Some(c) => Context::open(c).ok().map(|c| c.backup_storage),
            None => None,
        };
        let st = self.state.lock().unwrap().clone();
        let report =
            match health::report(&self.storage, secondary.as_ref(), &self.strategy, &st).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("scheduler: cannot compute health: {e}");
                    return None;
                }
            };
        if let (true, Some(rpo)) = (self.is_leader(), self.strategy.rpo) {
            let mut breached = self.breached.lock().unwrap();
            for c in &report.collections {
                // A collection never backed up is breached once the
                // scheduler has had one RPO to back it up.
                if c.rpo_ok || (c.age_s.is_none() && self.started.elapsed() < rpo) {
                    breached.remove(&c.collection);
                } else if breached.insert(c.collection.clone()) {
                    self.alerter.send(
                        Alert::new(
                            AlertEvent::RpoBreach,
                            format!(
                                "{}: {}",
                                c.collection,
                                c.message.clone().unwrap_or_default()
                            ),
                        )
                        .field("collection", &c.collection)
                        .field("last_backup", c.last_backup.clone().unwrap_or_default()),
                    );
                }
            }
        }
        *self.health.lock().unwrap() = Some(report.clone());
        Some(report)
    }

    pub fn cached_health(&self) -> Option<HealthReport> {
        self.health.lock().unwrap().clone()
    }

    pub fn status(&self) -> ScheduleStatus {
        let st = self.state.lock().unwrap().clone();
        let next = self.next.lock().unwrap().clone();
        let running = self.running.lock().unwrap().clone();
        let policies = PolicyKind::ALL
            .into_iter()
            .filter_map(|k| {
                let schedule = self.strategy.schedule(k)?;
                let p = st.policies.get(k.as_str()).cloned().unwrap_or_default();
                let at = next.get(&k);
                Some(PolicyStatus {
                    policy: k.as_str(),
                    schedule: schedule.expr.clone(),
                    next_run: at.map(|t| t.to_rfc3339()),
                    next_run_at: at.map(|t| t.timestamp_millis()),
                    retention: self.strategy.backup_policy(k).map(|p| p.retention),
                    running: running
                        .get(&k)
                        .filter(|id| {
                            self.tasks
                                .get(id)
                                .is_some_and(|t| !t.snapshot().state.is_terminal())
                        })
                        .cloned(),
                    last_run: p.last_run,
                    last_success: p.last_success,
                    runs: p.runs,
                    failed: p.failed,
                    skipped: p.skipped,
                })
            })
            .collect();
        ScheduleStatus {
            leader: self.is_leader(),
            lease_holder: self.lease_holder.lock().unwrap().clone(),
            timezone: self.strategy.timezone.clone(),
            policies,
            secondary: self.strategy.secondary.as_ref().map(|s| s.uri.clone()),
        }
    }

    /// Prometheus lines of the scheduler and of health.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        let status = self.status();
        let _ = writeln!(out, "# HELP milvus_backup_scheduler_leader 1 when this server holds the schedule lease.\n# TYPE milvus_backup_scheduler_leader gauge\nmilvus_backup_scheduler_leader {}", u8::from(status.leader));
        out.push_str("# HELP milvus_backup_schedule_runs_total Finished scheduled runs by policy and outcome.\n# TYPE milvus_backup_schedule_runs_total counter\n");
        for p in &status.policies {
            let _ = writeln!(
                out,
                "milvus_backup_schedule_runs_total{{policy=\"{}\",outcome=\"success\"}} {}",
                p.policy,
                p.runs - p.failed.min(p.runs)
            );
            let _ = writeln!(
                out,
                "milvus_backup_schedule_runs_total{{policy=\"{}\",outcome=\"failed\"}} {}",
                p.policy, p.failed
            );
            let _ = writeln!(
                out,
                "milvus_backup_schedule_runs_total{{policy=\"{}\",outcome=\"skipped\"}} {}",
                p.policy, p.skipped
            );
        }
        out.push_str("# HELP milvus_backup_schedule_next_run_timestamp_seconds When each policy runs next.\n# TYPE milvus_backup_schedule_next_run_timestamp_seconds gauge\n");
        for p in &status.policies {
            if let Some(at) = p.next_run_at {
                let _ = writeln!(
                    out,
                    "milvus_backup_schedule_next_run_timestamp_seconds{{policy=\"{}\"}} {}",
                    p.policy,
                    at / 1000
                );
            }
        }
        out.push_str("# HELP milvus_backup_schedule_last_success_timestamp_seconds When each policy's last successful run ended.\n# TYPE milvus_backup_schedule_last_success_timestamp_seconds gauge\n");
        for p in &status.policies {
            if let Some(r) = &p.last_success {
                let _ = writeln!(
                    out,
                    "milvus_backup_schedule_last_success_timestamp_seconds{{policy=\"{}\"}} {}",
                    p.policy,
                    r.ended_at / 1000
                );
            }
        }
        if let Some(h) = self.cached_health() {
            if let Some(rpo) = h.rpo_s {
                let _ = writeln!(out, "# HELP milvus_backup_rpo_seconds The strategy's recovery point objective.\n# TYPE milvus_backup_rpo_seconds gauge\nmilvus_backup_rpo_seconds {rpo}");
            }
            out.push_str("# HELP milvus_backup_last_backup_age_seconds Age of each collection's newest complete backup.\n# TYPE milvus_backup_last_backup_age_seconds gauge\n");
            for c in &h.collections {
                if let Some(a) = c.age_s {
                    let _ = writeln!(
                        out,
                        "milvus_backup_last_backup_age_seconds{{collection=\"{}\"}} {a}",
                        label(&c.collection)
                    );
                }
            }
            out.push_str("# HELP milvus_backup_rpo_breached 1 when a collection has no backup within the RPO.\n# TYPE milvus_backup_rpo_breached gauge\n");
            for c in &h.collections {
                let _ = writeln!(
                    out,
                    "milvus_backup_rpo_breached{{collection=\"{}\"}} {}",
                    label(&c.collection),
                    u8::from(!c.rpo_ok)
                );
            }
            out.push_str("# HELP milvus_backup_last_verification_ok 1 when the last verification of a collection's newest backup passed, 0 when it failed.\n# TYPE milvus_backup_last_verification_ok gauge\n");
            for c in &h.collections {
                if let Some(okv) = c.verified_ok {
                    let _ = writeln!(
                        out,
                        "milvus_backup_last_verification_ok{{collection=\"{}\"}} {}",
                        label(&c.collection),
                        u8::from(okv)
                    );
                }
            }
            let _ = writeln!(out, "# HELP milvus_backup_damaged_backups Backups whose last verification found damage.\n# TYPE milvus_backup_damaged_backups gauge\nmilvus_backup_damaged_backups {}", h.damaged.len());
            if let Some(at) = h.last_verification_at {
                let _ = writeln!(out, "# HELP milvus_backup_last_verification_timestamp_seconds When a backup was last verified.\n# TYPE milvus_backup_last_verification_timestamp_seconds gauge\nmilvus_backup_last_verification_timestamp_seconds {}", at / 1000);
            }
            if let Some(s) = &h.secondary {
                let _ = writeln!(out, "# HELP milvus_backup_secondary_lag_seconds Age of the oldest backup the secondary lacks (0: none).\n# TYPE milvus_backup_secondary_lag_seconds gauge\nmilvus_backup_secondary_lag_seconds {}", s.lag_s);
                let _ = writeln!(out, "# HELP milvus_backup_secondary_missing_backups Backups not yet copied to the secondary.\n# TYPE milvus_backup_secondary_missing_backups gauge\nmilvus_backup_secondary_missing_backups {}", s.missing.len());
            }
            let _ = writeln!(out, "# HELP milvus_backup_failed_runs_recent Scheduled runs that failed within the last day (or RPO).\n# TYPE milvus_backup_failed_runs_recent gauge\nmilvus_backup_failed_runs_recent {}", h.failed_runs.len());
        }
        out.push_str("# HELP milvus_backup_alerts_total Webhook alerts by event and result.\n# TYPE milvus_backup_alerts_total counter\n");
        for ((event, result), n) in self.alerter.counts.lock().unwrap().iter() {
            let _ = writeln!(
                out,
                "milvus_backup_alerts_total{{event=\"{event}\",result=\"{result}\"}} {n}"
            );
        }
        out
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn not_configured() -> ApiError {
    ApiError::not_found("this server has no backup_strategy — add one to the config file (see README: backup_strategy)")
}

/// `GET /api/v1/schedule`: each policy's last run, next run and outcome.
#[utoipa::path(get, path = "/api/v1/schedule", tag = "schedule",
    responses((status = 200, description = "Success", body = crate::api::ScheduleResponse), ErrorResponses))]
pub async fn schedule(
    State(s): State<Shared>,
    rid: Rid,
) -> std::result::Result<Response, ApiError> {
    let sched = s.scheduler.as_ref().ok_or_else(not_configured)?;
    Ok(ok(&rid, sched.status()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunNowQuery {
    /// `full`, `incremental` or `verification`.
    policy: String,
}

/// `POST /api/v1/schedule/run_now?policy=full|incremental|verification`:
/// starts one run now, as a task (see `/api/v1/tasks`).
#[utoipa::path(post, path = "/api/v1/schedule/run_now", tag = "schedule", params(RunNowQuery),
    responses((status = 200, description = "The run's task", body = crate::api::CancelResponse), ErrorResponses))]
pub async fn run_now(
    State(s): State<Shared>,
    rid: Rid,
    Query(q): Query<RunNowQuery>,
) -> std::result::Result<Response, ApiError> {
    let sched = s.scheduler.as_ref().ok_or_else(not_configured)?;
    let kind =
        PolicyKind::parse(&q.policy).map_err(|e| ApiError::bad_request(e.message().to_string()))?;
    let r = sched
        .launch(kind, "run-now")
        .map_err(|e| e.with_request_id(&rid.0))?;
    Ok(ok(&rid, crate::api::TaskSummary::of(&r)))
}

/// `GET /api/v1/health`: RPO, verification, secondary lag, failed runs
/// (what `milvus-backup status --json` prints).
#[utoipa::path(get, path = "/api/v1/health", tag = "schedule",
    responses((status = 200, description = "Success", body = crate::api::StrategyHealthResponse), ErrorResponses))]
pub async fn health(State(s): State<Shared>, rid: Rid) -> std::result::Result<Response, ApiError> {
    let sched = s.scheduler.as_ref().ok_or_else(not_configured)?;
    let report = sched.refresh_health().await.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            crate::error::code::FAIL,
            "health could not be computed: backup storage failed (see the server log)",
        )
    })?;
    Ok(ok(&rid, report))
}

/// The scheduler of a configuration, if it has a strategy (checked: a bad
/// strategy is an error naming the key).
pub fn strategy_of(config: &Config) -> Result<Option<Strategy>> {
    let s = Strategy::from_config(config)?;
    if let Some(s) = &s {
        for w in &s.warnings {
            tracing::warn!("{w}");
            eprintln!("warning: {w}");
        }
    }
    Ok(s)
}

/// `milvus-backup schedule run`: the scheduler in the foreground, no HTTP.
pub async fn run_foreground(config: Config) -> Result<()> {
    let (sched, _tasks) = local(&config).await?;
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        s.cancel();
    });
    eprintln!("milvus-backup: scheduling backup_strategy in the foreground (Ctrl-C stops)");
    sched.run(stop).await;
    Ok(())
}

async fn local(config: &Config) -> Result<(Arc<Scheduler>, Arc<TaskManager>)> {
    let strategy = strategy_of(config)?.ok_or_else(|| {
        Error::invalid_input(
            "the configuration has no backup_strategy — add one to the config file",
        )
    })?;
    let config = strategy.primary_config(config);
    let ctx = Context::open(&config)?;
    let secrets = config.secrets().into_iter().map(str::to_string).collect();
    let tasks = TaskManager::detached(
        config.clone(),
        ctx.backup_storage.clone(),
        Arc::new(crate::metrics::Metrics::default()),
        secrets,
    );
    Ok((
        Scheduler::new(strategy, &config, tasks.clone(), ctx.backup_storage.clone()),
        tasks,
    ))
}

/// `milvus-backup schedule run-now POLICY`: one run in the foreground, as a
/// task recorded like the server's; the task record when it ended.
pub async fn run_now_foreground(config: &Config, policy: &str) -> Result<TaskRecord> {
    let kind = PolicyKind::parse(policy)?;
    let (sched, tasks) = local(config).await?;
    // Read the state so that the run is added to it.
    if let Ok(s) = state::read(&sched.storage).await {
        *sched.state.lock().unwrap() = s;
    }
    sched.leader.store(true, Ordering::SeqCst);
    let r = sched
        .launch(kind, "run-now")
        .map_err(|e| Error::invalid_input(e.message))?;
    let task = tasks.get(&r.id).expect("the task just started");
    task.wait_done().await;
    // Let the watcher record the outcome.
    for _ in 0..50 {
        let st = sched.state.lock().unwrap().clone();
        if st
            .policies
            .get(kind.as_str())
            .and_then(|p| p.last_run.as_ref())
            .is_some_and(|l| l.task_id == r.id && l.outcome != "running")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(task.snapshot())
}

/// `milvus-backup schedule status` without a server: the state in storage
/// and the next runs from the configuration.
pub async fn status_offline(config: &Config) -> Result<ScheduleStatus> {
    let (sched, _tasks) = local(config).await?;
    *sched.state.lock().unwrap() = state::read(&sched.storage).await?;
    *sched.lease_holder.lock().unwrap() = lease::read(&sched.storage).await?.map(|l| {
        let now = Utc::now().timestamp_millis() as u64;
        if l.expires_at > now {
            l.host
        } else {
            format!("{} (expired)", l.host)
        }
    });
    Ok(sched.status())
}

/// `milvus-backup status`: health from storage.
pub async fn health_offline(config: &Config) -> Result<HealthReport> {
    let (sched, _tasks) = local(config).await?;
    *sched.state.lock().unwrap() = state::read(&sched.storage).await?;
    let secondary = match &sched.secondary {
        Some(c) => Some(Context::open(c)?.backup_storage),
        None => None,
    };
    let st = sched.state.lock().unwrap().clone();
    health::report(&sched.storage, secondary.as_ref(), &sched.strategy, &st).await
}

#[cfg(test)]
mod tests {
    /// Every metric the shipped alert rules and dashboard use is one this
    /// server exports.
    #[test]
    fn the_shipped_alerts_and_dashboard_use_exported_metrics() {
        let exported = [include_str!("scheduler.rs"), include_str!("metrics.rs")].concat();
        for doc in [
            include_str!("../../../docs/alerts.yml"),
            include_str!("../../../docs/grafana-dashboard.json"),
        ] {
            let mut rest = doc;
            while let Some(i) = rest.find("milvus_backup_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    exported.contains(&format!("{name} "))
                        || exported.contains(&format!("{name}{{")),
                    "{name} is not exported"
                );
                rest = &rest[i + name.len()..];
            }
        }
    }
}
