//! Prometheus metrics in the text exposition format (version 0.0.4),
//! written by hand: a few counters and gauges need no library.
//!
//! Counters count what this process did since it started; the last
//! successful backup per collection is also seeded from backup storage at
//! startup, so a restart does not make every collection look unprotected.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::tasks::{TaskKind, TaskState};

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
                escape_label(coll)
            );
        }
        out
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
}
