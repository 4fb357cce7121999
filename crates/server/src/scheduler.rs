//! The scheduler of `backup_strategy` as the server runs it: the core's
//! [`Scheduler`] loop, whose runs are tasks of the [`TaskManager`] (listed
//! in `/api/v1/tasks`, with the same progress, persistence and cancel as a
//! manual one), and the CLI's `schedule run|run-now|status` and `status`
//! over the same. When runs start and what is remembered of them is the
//! core's (`milvus_backup_core::schedule::scheduler`); the HTTP routes are
//! in `schedule_routes`.

use std::sync::Arc;

use futures::future::BoxFuture;
use milvus_backup_core::config::Config;
use milvus_backup_core::schedule::health::HealthReport;
use milvus_backup_core::schedule::scheduler::{
    self, RunEnd, RunStart, Runner, ScheduleStatus, Scheduler,
};
use milvus_backup_core::schedule::{PolicyKind, Strategy};
use milvus_backup_core::{CancellationToken, Context, Error, Result};

use crate::metrics::Metrics;
use crate::record::{TaskKind, TaskRecord};
use crate::tasks::TaskManager;

/// The scheduler's runs as tasks of this process.
pub struct TaskRunner(pub Arc<TaskManager>);

impl Runner for TaskRunner {
    fn start(&self, run: RunStart) -> Result<String> {
        let kind = if run.policy == PolicyKind::Verification {
            TaskKind::Verify
        } else {
            TaskKind::Create
        };
        let id = uuid::Uuid::new_v4().to_string();
        let mut record = TaskRecord::new(kind, id.clone(), &run.name);
        record.options =
            serde_json::json!({ "schedule": run.policy.as_str(), "trigger": run.trigger });
        // A backup run's name is taken while another create holds it.
        let guard = match run.policy {
            PolicyKind::Verification => None,
            _ => Some(
                self.0
                    .reserve_name(&run.name)
                    .map_err(|e| Error::conflict(e.message))?,
            ),
        };
        let work = run.work;
        self.0.spawn(record, guard, move |ctx, events, cancel| {
            work(ctx, Arc::new(events), cancel)
        });
        Ok(id)
    }

    fn is_running(&self, id: &str) -> bool {
        self.0
            .get(id)
            .is_some_and(|t| !t.snapshot().state.is_terminal())
    }

    fn wait(&self, id: &str) -> BoxFuture<'static, RunEnd> {
        let task = self.0.get(id);
        Box::pin(async move {
            let Some(task) = task else {
                return RunEnd::default();
            };
            task.wait_done().await;
            let r = task.snapshot();
            RunEnd {
                outcome: r.state.as_str().to_string(),
                message: r.error_message,
                result: r.result,
            }
        })
    }
}

/// The strategy of a configuration, if it has one (checked: a bad
/// strategy is an error naming the key); its warnings are printed.
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

fn required_strategy(config: &Config) -> Result<Strategy> {
    strategy_of(config)?.ok_or_else(|| {
        Error::invalid_input(
            "the configuration has no backup_strategy — add one to the config file",
        )
    })
}

/// The scheduler over a task registry that does not read (nor mark
/// interrupted) the records in storage: for runs in the foreground beside
/// a running server.
async fn local(config: &Config) -> Result<(Arc<Scheduler>, Arc<TaskManager>)> {
    let strategy = required_strategy(config)?;
    let config = strategy.primary_config(config);
    let ctx = Context::open(&config)?;
    let secrets = config.secrets().into_iter().map(str::to_string).collect();
    let tasks = TaskManager::detached(
        config.clone(),
        ctx.backup_storage.clone(),
        Arc::new(Metrics::default()),
        secrets,
    );
    let runner = Arc::new(TaskRunner(tasks.clone()));
    let sched = Scheduler::new(strategy, &config, runner, ctx.backup_storage.clone());
    Ok((sched, tasks))
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

/// `milvus-backup schedule run-now POLICY`: one run in the foreground, as a
/// task recorded like the server's; the task record when it ended.
pub async fn run_now_foreground(config: &Config, policy: &str) -> Result<TaskRecord> {
    let kind = PolicyKind::parse(policy)?;
    let (sched, tasks) = local(config).await?;
    let id = sched.run_once(kind).await?;
    let task = tasks.get(&id).expect("the task just started");
    Ok(task.snapshot())
}

/// `milvus-backup schedule status` without a server.
pub async fn status_offline(config: &Config) -> Result<ScheduleStatus> {
    scheduler::status_offline(required_strategy(config)?, config).await
}

/// `milvus-backup status`: health from storage.
pub async fn health_offline(config: &Config) -> Result<HealthReport> {
    scheduler::health_offline(required_strategy(config)?, config).await
}
