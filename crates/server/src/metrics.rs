//! Prometheus metrics in the text exposition format (version 0.0.4),
//! written by hand: a few counters and gauges need no library.
//!
//! Counters count what this process did since it started; the last
//! successful backup per collection is also seeded from backup storage at
//! startup, so a restart does not make every collection look unprotected.
//! The scheduler's and health's lines are read from the core's
//! [`Scheduler`] ([`schedule`]). Label values are escaped by [`label`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use milvus_backup_core::schedule::health::HealthReport;
use milvus_backup_core::schedule::scheduler::Scheduler;

use crate::record::{TaskKind, TaskState};

#[derive(Default)]
struct Inner {
    /// (kind, outcome) → count.
    outcomes: BTreeMap<(&'static str, &'static str), u64>,
    /// kind → (sum of seconds, count).
    durations: BTreeMap<&'static str, (f64, u64)>,
    /// operation → bytes.
    bytes: BTreeMap<&'static str, u64>,
    /// `db.coll` → seconds since the epoch.
    last_success: BTreeMap<String, f64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// A task ended with `state` after `seconds`.
    pub fn task_finished(&self, kind: TaskKind, state: TaskState, seconds: f64) {
        let mut m = self.inner.lock().unwrap();
        *m.outcomes
            .entry((kind.as_str(), state.as_str()))
            .or_default() += 1;
        let d = m.durations.entry(kind.as_str()).or_default();
        d.0 += seconds;
        d.1 += 1;
    }

    /// Bytes copied by a backup (`backup`) or staged by a restore (`restore`).
    pub fn bytes_copied(&self, operation: &'static str, bytes: u64) {
        *self
            .inner
            .lock()
            .unwrap()
            .bytes
            .entry(operation)
            .or_default() += bytes;
    }

    /// A backup of `collection` (`db.coll`) completed at `millis`.
    pub fn backup_succeeded(&self, collection: &str, millis: u64) {
        let secs = millis as f64 / 1000.0;
        let mut m = self.inner.lock().unwrap();
        let e = m.last_success.entry(collection.to_string()).or_default();
        if secs > *e {
            *e = secs;
        }
    }

    /// The text exposition; `running` is the number of running tasks by kind.
    pub fn render(&self, running: &BTreeMap<&'static str, u64>) -> String {
        let m = self.inner.lock().unwrap();
        let mut out = String::new();
        let kinds = [
            ("backups", TaskKind::Create),
            ("restores", TaskKind::Restore),
            ("verifies", TaskKind::Verify),
        ];
        for (noun, kind) in kinds {
            let _ = writeln!(
                out,
                "# HELP milvus_backup_{noun}_total Finished {} tasks by outcome.\n# TYPE milvus_backup_{noun}_total counter",
                kind.as_str()
            );
            for outcome in TaskState::OUTCOMES {
                let n = m
                    .outcomes
                    .get(&(kind.as_str(), outcome.as_str()))
                    .copied()
                    .unwrap_or(0);
                let _ = writeln!(
                    out,
                    "milvus_backup_{noun}_total{{outcome=\"{}\"}} {n}",
                    outcome.as_str()
                );
            }
        }
        out.push_str("# HELP milvus_backup_task_duration_seconds Duration of finished tasks.\n# TYPE milvus_backup_task_duration_seconds summary\n");
        for (_, kind) in kinds {
            let (sum, count) = m.durations.get(kind.as_str()).copied().unwrap_or_default();
            let _ = writeln!(
                out,
                "milvus_backup_task_duration_seconds_sum{{kind=\"{}\"}} {sum}\nmilvus_backup_task_duration_seconds_count{{kind=\"{}\"}} {count}",
                kind.as_str(),
                kind.as_str()
            );
        }
        out.push_str("# HELP milvus_backup_copied_bytes_total Bytes copied into backup storage (backup) or staged into Milvus storage (restore).\n# TYPE milvus_backup_copied_bytes_total counter\n");
        for op in ["backup", "restore"] {
            let n = m.bytes.get(op).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "milvus_backup_copied_bytes_total{{operation=\"{op}\"}} {n}"
            );
        }
        out.push_str("# HELP milvus_backup_tasks_running Tasks running now.\n# TYPE milvus_backup_tasks_running gauge\n");
        for (_, kind) in kinds {
            let n = running.get(kind.as_str()).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "milvus_backup_tasks_running{{kind=\"{}\"}} {n}",
                kind.as_str()
            );
        }
        out.push_str("# HELP milvus_backup_last_success_timestamp_seconds When the newest complete backup of a collection was taken.\n# TYPE milvus_backup_last_success_timestamp_seconds gauge\n");
        for (coll, secs) in &m.last_success {
            let _ = writeln!(
                out,
                "milvus_backup_last_success_timestamp_seconds{{collection=\"{}\"}} {secs}",
                label(coll)
            );
        }
        out
    }
}

/// A label value in the text format: `\`, `"` and newlines escaped.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus lines of the scheduler and of health.
pub fn schedule(sched: &Scheduler) -> String {
    let mut out = String::new();
    let status = sched.status();
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
    if let Some(h) = sched.cached_health() {
        health(&mut out, &h);
    }
    out.push_str("# HELP milvus_backup_alerts_total Webhook alerts by event and result.\n# TYPE milvus_backup_alerts_total counter\n");
    for ((event, result), n) in sched.alert_counts() {
        let _ = writeln!(
            out,
            "milvus_backup_alerts_total{{event=\"{event}\",result=\"{result}\"}} {n}"
        );
    }
    out
}

/// Prometheus lines of the strategy's health.
fn health(out: &mut String, h: &HealthReport) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_outcomes_bytes_and_last_success() {
        let m = Metrics::default();
        m.task_finished(TaskKind::Create, TaskState::Success, 2.5);
        m.task_finished(TaskKind::Create, TaskState::Cancelled, 1.0);
        m.bytes_copied("backup", 1234);
        m.backup_succeeded("default.docs", 1_700_000_000_000);
        m.backup_succeeded("default.docs", 1_600_000_000_000);
        let text = m.render(&BTreeMap::from([("create", 1)]));
        assert!(text.contains("milvus_backup_backups_total{outcome=\"success\"} 1"));
        assert!(text.contains("milvus_backup_backups_total{outcome=\"cancelled\"} 1"));
        assert!(text.contains("milvus_backup_restores_total{outcome=\"success\"} 0"));
        assert!(text.contains("milvus_backup_task_duration_seconds_sum{kind=\"create\"} 3.5"));
        assert!(text.contains("milvus_backup_copied_bytes_total{operation=\"backup\"} 1234"));
        assert!(text.contains("milvus_backup_tasks_running{kind=\"create\"} 1"));
        assert!(text.contains(
            "milvus_backup_last_success_timestamp_seconds{collection=\"default.docs\"} 1700000000"
        ));
    }

    /// Every metric the shipped alert rules and dashboard use is one this
    /// server exports.
    #[test]
    fn the_shipped_alerts_and_dashboard_use_exported_metrics() {
        let exported = include_str!("metrics.rs");
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
