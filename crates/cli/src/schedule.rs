//! `schedule status|run-now|run`, `replicate` and `status`: the
//! `backup_strategy` front ends. The scheduler and its runs are the
//! server crate's and the core's; this prints them.

use clap::Subcommand;
use milvus_backup_core::config::Config;
use milvus_backup_core::events::Discard;
use milvus_backup_core::repo::verification::VerificationRecord;
use milvus_backup_core::schedule::state::RunInfo;
use milvus_backup_core::{ops::replicate, CancellationToken, Context, Error, Result};
use milvus_backup_server::scheduler;

use crate::output::{human_bytes, Output};

pub const SCHEDULE_EXAMPLES: &str = "\
Examples:
  milvus-backup schedule status              # each policy's last run, next run and outcome
  milvus-backup schedule run-now full        # or incremental, verification: one run now
  milvus-backup schedule run                 # the scheduler in the foreground (no HTTP)";

pub const REPLICATE_EXAMPLES: &str = "\
Examples:
  milvus-backup replicate -n full_20260210_020000 --to secondary
  milvus-backup --storage secondary list     # what the secondary holds";

pub const STATUS_EXAMPLES: &str = "\
Examples:
  milvus-backup status                       # RPO, verification, secondary lag, failed runs
  milvus-backup --json status";

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Each policy's schedule, last run, next run and outcome.
    Status,
    /// Start one run now (full, incremental or verification) and wait for it.
    RunNow {
        /// full, incremental or verification.
        policy: String,
    },
    /// Run the scheduler in the foreground until Ctrl-C.
    Run,
}

#[derive(Debug, clap::Args)]
pub struct ReplicateArgs {
    /// The backup to copy.
    #[arg(short = 'n', long = "name", alias = "backup-name")]
    pub name: String,
    /// Where to: the strategy's `secondary` storage.
    #[arg(long, default_value = "secondary", value_parser = ["secondary"])]
    pub to: String,
}

pub fn verdict_text(v: Option<&VerificationRecord>) -> String {
    match v {
        None => String::new(),
        Some(v) => {
            let at = chrono::DateTime::from_timestamp_millis(v.last_verified_at as i64)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default();
            format!(
                "  verified {} at {at}",
                if v.verified_ok { "ok" } else { "DAMAGED" }
            )
        }
    }
}

/// Adds `verified_ok` and `last_verified_at` to each JSON object (a list
/// of rows, or one document).
pub fn add_verdicts(value: &mut serde_json::Value, verdicts: &[Option<VerificationRecord>]) {
    let objects: Vec<&mut serde_json::Value> = match value {
        serde_json::Value::Array(items) => items.iter_mut().collect(),
        other => vec![other],
    };
    for (o, v) in objects.into_iter().zip(verdicts) {
        if let (Some(map), Some(v)) = (o.as_object_mut(), v) {
            map.insert("verified_ok".into(), v.verified_ok.into());
            map.insert("last_verified_at".into(), v.last_verified_at.into());
        }
    }
}

pub fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis() as u64
}

/// Records a command run by hand (`create`, `replicate`) under the
/// config's backup_strategy, so `status` and the health endpoint count it;
/// a record that cannot be written is a warning.
pub async fn record_by_hand(
    config: &Config,
    kind: &str,
    name: &str,
    started_at: u64,
    ended: std::result::Result<Option<String>, &Error>,
) {
    let run = RunInfo::by_hand(kind, name, "cli", started_at, ended);
    if let Err(e) = milvus_backup_core::schedule::scheduler::record_by_hand(config, run).await {
        eprintln!("warning: this run is not recorded for `milvus-backup status`: {e}");
    }
}

fn when(ms: Option<u64>) -> String {
    ms.filter(|m| *m > 0)
        .and_then(|m| chrono::DateTime::from_timestamp_millis(m as i64))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

pub async fn schedule(
    config: &Config,
    cmd: ScheduleCommand,
    out: &Output,
) -> Result<crate::commands::CreateOutcome> {
    use crate::commands::CreateOutcome;
    match cmd {
        ScheduleCommand::Status => {
            let s = scheduler::status_offline(config).await?;
            if out.json {
                out.json_value(&s);
                return Ok(CreateOutcome::Complete);
            }
            println!(
                "scheduler: {} (timezone {})",
                s.lease_holder
                    .as_deref()
                    .unwrap_or("no server holds the lease"),
                s.timezone
            );
            println!(
                "{:<13} {:<14} {:<20} {:<32} {:<12} RUNS/FAILED/SKIPPED",
                "POLICY", "SCHEDULE", "NEXT RUN (UTC)", "LAST RUN", "OUTCOME"
            );
            for p in &s.policies {
                let last = p.last_run.as_ref();
                println!(
                    "{:<13} {:<14} {:<20} {:<32} {:<12} {}/{}/{}",
                    p.policy,
                    p.schedule,
                    when(p.next_run_at.map(|t| t as u64)),
                    last.map(|l| l.name.as_str()).unwrap_or("-"),
                    last.map(|l| l.outcome.as_str()).unwrap_or("-"),
                    p.runs,
                    p.failed,
                    p.skipped
                );
            }
            Ok(CreateOutcome::Complete)
        }
        ScheduleCommand::RunNow { policy } => {
            let r = scheduler::run_now_foreground(config, &policy).await?;
            let success = r.state.as_str() == "success";
            // A backup of everything that left collections out (partial).
            let left_out = milvus_backup_core::schedule::scheduler::left_out_of(r.result.as_ref());
            if out.json {
                out.json_value(&serde_json::json!({
                    "task": r.id, "name": r.backup_name, "state": r.state.as_str(),
                    "error": r.error_message, "result": r.result,
                }));
            } else if success && left_out.is_empty() {
                println!("run {} ({policy}) succeeded; task {}", r.backup_name, r.id);
            } else if success {
                println!("run {} ({policy}) partial; task {}", r.backup_name, r.id);
            }
            if let (true, Some(what)) = (
                success,
                milvus_backup_core::model::meta::LeftOut::describe(&left_out),
            ) {
                eprintln!("warning: run {} ({policy}) {what}", r.backup_name);
                return Ok(CreateOutcome::LeftOut);
            }
            if !success {
                return Err(Error::remote(format!(
                    "run {} ({policy}) {}: {}",
                    r.backup_name,
                    r.state.as_str(),
                    r.error_message
                )));
            }
            Ok(CreateOutcome::Complete)
        }
        ScheduleCommand::Run => {
            scheduler::run_foreground(config.clone()).await?;
            Ok(CreateOutcome::Complete)
        }
    }
}

/// `replicate`, recorded where `status` reads runs.
pub async fn replicate_cmd(config: &Config, args: ReplicateArgs, out: &Output) -> Result<()> {
    let started = now_ms();
    let name = args.name.clone();
    let result = replicate_backup(config, args, out).await;
    record_by_hand(
        config,
        "replicate",
        &name,
        started,
        result.as_ref().map(|_| None),
    )
    .await;
    result
}

async fn replicate_backup(config: &Config, args: ReplicateArgs, out: &Output) -> Result<()> {
    let strategy =
        milvus_backup_core::schedule::Strategy::from_config(config)?.ok_or_else(|| {
            Error::invalid_input(
                "replicate needs backup_strategy.storage.secondary in the config file",
            )
        })?;
    let to_config = strategy.secondary_config(config).ok_or_else(|| {
        Error::invalid_input(
            "replicate --to secondary: backup_strategy.storage.secondary is not set",
        )
    })?;
    let from = Context::open(&strategy.primary_config(config))?.backup_storage;
    let to = Context::open(&to_config)?.backup_storage;
    let stats =
        replicate::replicate(&from, &to, &args.name, &Discard, &CancellationToken::new()).await?;
    if out.json {
        out.json_value(&stats);
    } else if !out.quiet {
        println!(
            "✅ `{}` replicated to the secondary: {} file(s) copied ({}), {} already there and checked{}",
            stats.backup,
            stats.copied_files,
            human_bytes(stats.copied_bytes),
            stats.present_files,
            if stats.rehomed_files > 0 {
                format!(", {} shared file(s) of its base copied in", stats.rehomed_files)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

pub async fn status(config: &Config, out: &Output) -> Result<bool> {
    let h = scheduler::health_offline(config).await?;
    if out.json {
        out.json_value(&h);
        return Ok(h.status != "critical");
    }
    println!("health: {}", h.status.to_uppercase());
    for c in &h.collections {
        println!(
            "  {:<6} {:<30} last backup {} ({}){}{}",
            c.status,
            c.collection,
            c.last_backup.as_deref().unwrap_or("none"),
            c.age_s
                .map(|a| format!("{a} s ago"))
                .unwrap_or_else(|| "-".into()),
            match c.verified_ok {
                Some(true) => ", verified ok",
                Some(false) => ", verification FAILED",
                None => ", not verified",
            },
            c.message
                .as_deref()
                .map(|m| format!(" — {m}"))
                .unwrap_or_default()
        );
    }
    if let Some(s) = &h.secondary {
        println!(
            "  secondary {}: {} backup(s), lag {} s, {} missing",
            s.target,
            s.backups,
            s.lag_s,
            s.missing.len()
        );
    }
    println!("  last verification: {}", when(h.last_verification_at));
    for m in &h.messages {
        println!("  ! {m}");
    }
    Ok(h.status != "critical")
}
