//! What the scheduler remembers across restarts, in backup storage
//! (`.milvus_backup_schedule/state.json`): each policy's last run and its
//! outcome, the last schedule time it handled (for catchup), counts, and
//! the recent failed runs. Written by the scheduler that holds the lease.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::Storage;

pub const STATE: &str = ".milvus_backup_schedule/state.json";
/// Failed runs kept.
const FAILURES_KEPT: usize = 50;

/// One run of a policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunInfo {
    pub policy: String,
    /// `<policy>_<YYYYMMDD_HHMMSS>`.
    pub name: String,
    pub task_id: String,
    /// `schedule`, `catchup` or `run-now`.
    pub trigger: String,
    /// Milliseconds since the epoch.
    pub started_at: u64,
    pub ended_at: u64,
    /// `running`, `success`, `failed`, `cancelled`, `interrupted`, `skipped`.
    pub outcome: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyState {
    pub last_run: Option<RunInfo>,
    pub last_success: Option<RunInfo>,
    /// The schedule time (ms) last handled: run, skipped or caught up.
    pub last_fired_at: u64,
    pub runs: u64,
    pub failed: u64,
    /// Runs skipped because the previous one was still going.
    pub skipped: u64,
    pub last_skipped_at: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleState {
    pub policies: BTreeMap<String, PolicyState>,
    /// Recent failed runs, oldest first.
    pub failures: Vec<RunInfo>,
    pub updated_at: u64,
}

impl ScheduleState {
    pub fn policy(&mut self, name: &str) -> &mut PolicyState {
        self.policies.entry(name.to_string()).or_default()
    }

    /// Records the end (or the start) of a run.
    pub fn record(&mut self, run: RunInfo) {
        let p = self.policy(&run.policy);
        match run.outcome.as_str() {
            "running" => {}
            "success" => {
                p.runs += 1;
                p.last_success = Some(run.clone());
            }
            "skipped" => {
                p.skipped += 1;
                p.last_skipped_at = run.started_at;
            }
            _ => {
                p.runs += 1;
                p.failed += 1;
            }
        }
        if run.outcome != "skipped" {
            p.last_run = Some(run.clone());
        }
        if !["running", "success", "skipped"].contains(&run.outcome.as_str()) {
            self.failures.push(run);
            let excess = self.failures.len().saturating_sub(FAILURES_KEPT);
            self.failures.drain(..excess);
        }
    }
}

pub async fn read(storage: &Storage) -> Result<ScheduleState> {
    match crate::repo::meta_files::read_json::<ScheduleState>(storage, STATE).await {
        Ok(s) => Ok(s.unwrap_or_default()),
        Err(e) if e.kind() == crate::ErrorKind::Corrupt => Ok(ScheduleState::default()),
        Err(e) => Err(e),
    }
}

pub async fn write(storage: &Storage, state: &ScheduleState) -> Result<()> {
    let mut state = state.clone();
    state.updated_at = chrono::Utc::now().timestamp_millis() as u64;
    let bytes = serde_json::to_vec_pretty(&state)
        .map_err(|e| Error::internal(format!("encoding the schedule state: {e}")))?;
    storage.write(STATE, bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_and_failures_kept() {
        let mut s = ScheduleState::default();
        let run = |outcome: &str| RunInfo {
            policy: "full".into(),
            name: "full_20261202_100000".into(),
            outcome: outcome.into(),
            ..Default::default()
        };
        s.record(run("running"));
        s.record(run("success"));
        s.record(run("skipped"));
        s.record(run("failed"));
        let p = &s.policies["full"];
        assert_eq!((p.runs, p.failed, p.skipped), (2, 1, 1));
        assert_eq!(p.last_run.as_ref().unwrap().outcome, "failed");
        assert_eq!(p.last_success.as_ref().unwrap().outcome, "success");
        assert_eq!(s.failures.len(), 1);
    }
}
