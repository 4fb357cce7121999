//! The scheduler of `backup_strategy`: the loop inside `milvus-backup
//! server` and `milvus-backup schedule run`.
//!
//! Every second it compares the clock with each policy's next cron time.
//! A due run is handed to the front end's [`Runner`] — the server's task
//! registry, so it is listed in `/api/v1/tasks` with the same progress and
//! cancel as a manual one — running [`run`] (create + retention +
//! replicate, or verify). A policy whose previous run is still going is
//! skipped, and the skip recorded. Only the holder of the [`lease`] in
//! backup storage starts runs; the others keep going and take over when
//! the lease expires. What it remembers (last runs, outcomes, catchup) is
//! [`state`] in backup storage. Health is recomputed every few seconds for
//! the metrics, the status page and the RPO alerts.
//!
//! This owns when runs start and what is remembered of them; not how a
//! run is executed, recorded and shown (the [`Runner`]), nor HTTP.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, LocalBoxFuture};
use serde::Serialize;

use super::alerts::{Alert, AlertEvent, Alerter};
use super::health::{self, HealthReport};
use super::state::{self, RunInfo, ScheduleState};
use super::{lease, run, PolicyKind, Strategy};
use crate::config::Config;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventSink;
use crate::storage::Storage;
use crate::CancellationToken;

/// How often health is recomputed (at most).
const HEALTH_EVERY: Duration = Duration::from_secs(10);
/// How long a run in the foreground waits for its alert to be delivered.
const ALERT_FLUSH: Duration = Duration::from_secs(20);

// One policy in the scheduler's status (no doc comment: it would be
// the schema's description in the server's OpenAPI document).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyStatus {
    pub policy: &'static str,
    pub schedule: String,
    pub next_run: Option<String>,
    pub next_run_at: Option<i64>,
    pub retention: Option<u32>,
    /// The task of the run going now.
    pub running: Option<String>,
    /// `{policy, name, task_id, trigger, started_at, ended_at, outcome, message}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub last_run: Option<RunInfo>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub last_success: Option<RunInfo>,
    pub runs: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Backups made with collections left out.
    pub partial: u64,
}

// What the scheduler does: each policy, and who holds the lease.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleStatus {
    /// This server starts the runs (it holds the lease).
    pub leader: bool,
    /// Who holds the lease (host and pid), when known.
    pub lease_holder: Option<String>,
    pub timezone: String,
    pub policies: Vec<PolicyStatus>,
    pub secondary: Option<String>,
}

/// The work of one run: gets its own connections, the sink of its events
/// and its cancellation token; its result is the run's report as JSON.
pub type RunWork = Box<
    dyn FnOnce(
            Context,
            Arc<dyn EventSink>,
            CancellationToken,
        ) -> LocalBoxFuture<'static, Result<serde_json::Value>>
        + Send,
>;

/// A run to start.
pub struct RunStart {
    pub policy: PolicyKind,
    /// The run's name (the backup it creates, unless a verification).
    pub name: String,
    /// `schedule`, `catchup` or `run-now`.
    pub trigger: String,
    pub work: RunWork,
}

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub struct RunEnd {
    /// `success`, `partial` (a backup with collections left out, see
    /// [`partial`]), `failed`, `cancelled` or `interrupted`.
    pub outcome: String,
    pub message: String,
    /// The run's report, when it succeeded.
    pub result: Option<serde_json::Value>,
}

/// Executes runs for the scheduler (the server's task registry).
pub trait Runner: Send + Sync {
    /// Starts `run` and answers its id; `ErrorKind::Conflict` when its
    /// backup name is being created right now.
    fn start(&self, run: RunStart) -> Result<String>;
    /// Whether run `id` still runs.
    fn is_running(&self, id: &str) -> bool;
    /// Waits until run `id` ended.
    fn wait(&self, id: &str) -> BoxFuture<'static, RunEnd>;
}

/// The runner of a scheduler that only reports (no run starts).
struct NoRuns;

impl Runner for NoRuns {
    fn start(&self, _: RunStart) -> Result<String> {
        Err(Error::invalid_input("this scheduler only reports"))
    }
    fn is_running(&self, _: &str) -> bool {
        false
    }
    fn wait(&self, _: &str) -> BoxFuture<'static, RunEnd> {
        Box::pin(async { RunEnd::default() })
    }
}

pub struct Scheduler {
    strategy: Arc<Strategy>,
    runner: Arc<dyn Runner>,
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
    /// A scheduler of `strategy` over `config` (its primary storage), whose
    /// runs `runner` executes.
    pub fn new(
        strategy: Strategy,
        config: &Config,
        runner: Arc<dyn Runner>,
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
            runner,
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

    /// A scheduler that starts nothing, over the primary storage of
    /// `config` (for `schedule status` and `status` without a server).
    fn reporting(strategy: Strategy, config: &Config) -> Result<Arc<Scheduler>> {
        let config = strategy.primary_config(config);
        let storage = Context::open(&config)?.backup_storage;
        Ok(Scheduler::new(strategy, &config, Arc::new(NoRuns), storage))
    }

    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// Webhook alerts by (event, result), for the metrics.
    pub fn alert_counts(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        self.alerter.counts.lock().unwrap().clone()
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
            let due = self.due(Utc::now());
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

    /// The policies due at `now` (with the time they were due); their next
    /// times move on.
    fn due(&self, now: DateTime<Utc>) -> Vec<(PolicyKind, DateTime<Utc>)> {
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
            if e.kind() == ErrorKind::Conflict {
                let now = Utc::now().timestamp_millis() as u64;
                tracing::warn!("scheduler: {} run skipped: {}", kind.as_str(), e.message());
                self.state.lock().unwrap().record(RunInfo {
                    policy: kind.as_str().into(),
                    name: kind.run_name(Utc::now()),
                    trigger: trigger.into(),
                    started_at: now,
                    ended_at: now,
                    outcome: "skipped".into(),
                    message: e.message().to_string(),
                    ..Default::default()
                });
            } else {
                tracing::warn!(
                    "scheduler: {} run not started: {}",
                    kind.as_str(),
                    e.message()
                );
            }
        }
        self.save_state().await;
    }

    /// Starts a run of `kind` and answers its id; `ErrorKind::Conflict`
    /// while one is running, `InvalidInput` when the policy is not
    /// configured.
    pub fn launch(self: &Arc<Self>, kind: PolicyKind, trigger: &str) -> Result<String> {
        self.start(kind, trigger).map(|(id, _)| id)
    }

    /// [`Scheduler::launch`], with the task that records the run's end
    /// (state, alert, health) once it ended.
    fn start(
        self: &Arc<Self>,
        kind: PolicyKind,
        trigger: &str,
    ) -> Result<(String, tokio::task::JoinHandle<()>)> {
        if self.strategy.schedule(kind).is_none() {
            return Err(Error::invalid_input(format!(
                "backup_strategy.{} is not configured",
                kind.key()
            )));
        }
        if let Some(id) = self.running.lock().unwrap().get(&kind) {
            if self.runner.is_running(id) {
                return Err(Error::conflict(format!(
                    "the previous {} run (task {id}) is still going — runs never overlap",
                    kind.as_str()
                )));
            }
        }
        let name = kind.run_name(Utc::now());
        let id = self.runner.start(RunStart {
            policy: kind,
            name: name.clone(),
            trigger: trigger.into(),
            work: self.work(kind, name.clone()),
        })?;
        self.running.lock().unwrap().insert(kind, id.clone());
        let info = RunInfo {
            policy: kind.as_str().into(),
            name,
            task_id: id.clone(),
            trigger: trigger.into(),
            started_at: Utc::now().timestamp_millis() as u64,
            outcome: "running".into(),
            ..Default::default()
        };
        self.state.lock().unwrap().record(info.clone());
        let (me, ended) = (self.clone(), self.runner.wait(&id));
        let recorded = tokio::spawn(async move {
            let end = ended.await;
            me.finished(kind, info, end).await;
        });
        Ok((id, recorded))
    }

    /// What a run of `kind` named `name` does.
    fn work(&self, kind: PolicyKind, name: String) -> RunWork {
        let strategy = self.strategy.clone();
        let secondary = self.secondary.clone();
        Box::new(move |ctx, events, cancel| {
            Box::pin(async move {
                let sec = match &secondary {
                    Some(c) => Some(Context::open(c)?),
                    None => None,
                };
                let events = events.as_ref();
                let value = if kind == PolicyKind::Verification {
                    let r = run::verification_run(&ctx, &strategy, sec.as_ref(), events, &cancel)
                        .await?;
                    serde_json::to_value(r)
                } else {
                    let secondary = sec.as_ref().map(|c| &c.backup_storage);
                    let r =
                        run::backup_run(&ctx, &strategy, kind, &name, secondary, events, &cancel)
                            .await?;
                    serde_json::to_value(r)
                };
                value.map_err(|e| Error::internal(format!("encoding the run's result: {e}")))
            })
        })
    }

    async fn finished(self: &Arc<Self>, kind: PolicyKind, mut info: RunInfo, end: RunEnd) {
        let end = partial(end);
        info.ended_at = Utc::now().timestamp_millis() as u64;
        info.outcome = end.outcome.clone();
        info.message = end.message.clone();
        self.state.lock().unwrap().record(info.clone());
        self.save_state().await;
        if let Some(alert) = alert_of(kind, &info, &end) {
            self.alerter.send(alert);
        }
        self.refresh_health().await;
    }

    async fn save_state(&self) {
        if !self.is_leader() {
            return;
        }
        let _g = self.state_lock.lock().await;
        // Keep what others recorded meanwhile (the command line's runs).
        if let Ok(stored) = state::read(&self.storage).await {
            self.state.lock().unwrap().merge(stored);
        }
        let s = self.state.lock().unwrap().clone();
        if let Err(e) = state::write(&self.storage, &s).await {
            tracing::warn!("scheduler: cannot write its state: {e}");
        }
    }

    /// Health now (and the RPO alerts on a change), with the runs other
    /// processes recorded (the command line's) taken in.
    pub async fn refresh_health(&self) -> Option<HealthReport> {
        let secondary = match &self.secondary {
            Some(c) => Context::open(c).ok().map(|c| c.backup_storage),
            None => None,
        };
        if let Ok(stored) = state::read(&self.storage).await {
            self.state.lock().unwrap().merge(stored);
        }
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
            self.alert_rpo(&report, rpo);
        }
        *self.health.lock().unwrap() = Some(report.clone());
        Some(report)
    }

    /// An alert for each collection that newly breached the RPO.
    fn alert_rpo(&self, report: &HealthReport, rpo: Duration) {
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
                        .filter(|id| self.runner.is_running(id))
                        .cloned(),
                    last_run: p.last_run,
                    last_success: p.last_success,
                    runs: p.runs,
                    failed: p.failed,
                    skipped: p.skipped,
                    partial: p.partial,
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

    /// One run of `kind` now, as the holder of the lease (`milvus-backup
    /// schedule run-now`): its id once it ended and its outcome is
    /// recorded in the state.
    pub async fn run_once(self: &Arc<Self>, kind: PolicyKind) -> Result<String> {
        // Read the state so that the run is added to it.
        if let Ok(s) = state::read(&self.storage).await {
            *self.state.lock().unwrap() = s;
        }
        self.leader.store(true, Ordering::SeqCst);
        let (id, recorded) = self
            .start(kind, "run-now")
            .map_err(|e| Error::invalid_input(e.message()))?;
        // Until the end is in storage and its alert sent: a process that
        // exits sooner (the command line) would lose both.
        let _ = recorded.await;
        self.alerter.flush(ALERT_FLUSH).await;
        Ok(id)
    }
}

/// A backup run that succeeded with collections left out (kept without
/// their rows) ended `partial`, naming them.
fn partial(mut end: RunEnd) -> RunEnd {
    use crate::model::meta::LeftOut;
    let left_out = left_out_of(end.result.as_ref());
    if let (true, Some(message)) = (end.outcome == "success", LeftOut::describe(&left_out)) {
        end.outcome = "partial".into();
        end.message = message;
    }
    end
}

/// The collections a backup run's result (its task's) left out.
pub fn left_out_of(result: Option<&serde_json::Value>) -> Vec<crate::model::meta::LeftOut> {
    listed(result, "left_out")
}

/// The list `key` of a run's result; empty when it has none.
fn listed<T: serde::de::DeserializeOwned>(result: Option<&serde_json::Value>, key: &str) -> Vec<T> {
    result
        .and_then(|v| v.get(key))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The alert a finished run raises, if any.
fn alert_of(kind: PolicyKind, info: &RunInfo, end: &RunEnd) -> Option<Alert> {
    let base = |event, text: String| {
        Alert::new(event, text)
            .field("policy", kind.as_str())
            .field("run", &info.name)
            .field("task", &info.task_id)
    };
    let failed = end.outcome == "failed";
    match kind {
        PolicyKind::Verification if failed => Some(base(
            AlertEvent::VerificationFailed,
            format!("Verification run {} failed: {}", info.name, end.message),
        )),
        PolicyKind::Verification if end.outcome == "success" => {
            let damaged: Vec<String> = listed(end.result.as_ref(), "damaged");
            (!damaged.is_empty()).then(|| {
                base(
                    AlertEvent::BackupCorrupt,
                    format!(
                        "Backup corrupted: verification of {} found damage",
                        damaged.join(", ")
                    ),
                )
                .field("backups", damaged.join(","))
            })
        }
        _ if failed && end.message.contains(run::SECONDARY_FAILED) => Some(base(
            AlertEvent::SecondaryCopyFailed,
            format!("Secondary copy failed for {}: {}", info.name, end.message),
        )),
        _ if end.outcome == "partial" => Some(
            base(
                AlertEvent::BackupPartial,
                format!("Backup {} ({}) {}", info.name, kind.as_str(), end.message),
            )
            .field("backup", &info.name),
        ),
        _ if failed => Some(base(
            AlertEvent::BackupFailed,
            format!(
                "Backup {} ({}) failed: {}",
                info.name,
                kind.as_str(),
                end.message
            ),
        )),
        _ => None,
    }
}

/// `milvus-backup schedule status` without a server: the state in storage
/// and the next runs from the configuration.
pub async fn status_offline(strategy: Strategy, config: &Config) -> Result<ScheduleStatus> {
    let sched = Scheduler::reporting(strategy, config)?;
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

/// Records a run a front end made by hand under `config`'s strategy (the
/// command line's `create` or `replicate`) in the scheduler's state, where
/// `status` and the health endpoint read runs: a failed one makes health
/// warn, as a failed scheduled run does. Nothing without a strategy.
pub async fn record_by_hand(config: &Config, run: RunInfo) -> Result<()> {
    let Some(strategy) = Strategy::from_config(config)? else {
        return Ok(());
    };
    let storage = Context::open(&strategy.primary_config(config))?.backup_storage;
    state::record_run(&storage, run).await
}

/// `milvus-backup status`: health from storage.
pub async fn health_offline(strategy: Strategy, config: &Config) -> Result<HealthReport> {
    let sched = Scheduler::reporting(strategy, config)?;
    let st = state::read(&sched.storage).await?;
    let secondary = match &sched.secondary {
        Some(c) => Some(Context::open(c)?.backup_storage),
        None => None,
    };
    health::report(&sched.storage, secondary.as_ref(), &sched.strategy, &st).await
}
