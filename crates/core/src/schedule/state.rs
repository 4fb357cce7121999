//! What the scheduler remembers across restarts, in backup storage
//! (`.milvus_backup_schedule/state.json`): each policy's last run and its
//! outcome, the last schedule time it handled (for catchup), counts, and
//! the recent runs that failed or left collections out. Written by the
//! scheduler that holds the lease.

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
    /// `running`, `success`, `partial` (made, with collections left out),
    /// `failed`, `cancelled`, `interrupted`, `skipped`.
    pub outcome: String,
    pub message: String,
}

impl RunInfo {
    /// A run made by hand (`trigger` e.g. `cli`) of `kind` (`create`,
    /// `replicate`), started at `started_at`, as it ended: done (with what
    /// it left out, if anything) or failed.
    pub fn by_hand(
        kind: &str,
        name: &str,
        trigger: &str,
        started_at: u64,
        ended: std::result::Result<Option<String>, &Error>,
    ) -> RunInfo {
        let (outcome, message) = match ended {
            Ok(None) => ("success", String::new()),
            Ok(Some(left_out)) => ("partial", left_out),
            Err(e) if e.kind() == crate::ErrorKind::Cancelled => ("cancelled", e.to_string()),
            Err(e) => ("failed", e.to_string()),
        };
        RunInfo {
            policy: kind.into(),
            name: name.into(),
            trigger: trigger.into(),
            started_at,
            ended_at: chrono::Utc::now().timestamp_millis() as u64,
            outcome: outcome.into(),
            message,
            ..Default::default()
        }
    }
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
    /// Backups made with collections left out (also in `runs`).
    pub partial: u64,
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
            // Made, so the newest backup; and kept with the failures, so
            // health warns about what it lacks.
            "partial" => {
                p.runs += 1;
                p.partial += 1;
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

impl ScheduleState {
    /// Takes in what another writer recorded in `stored` (the file as read
    /// now): a run-now or a command from the command line while this
    /// process held the state. A policy whose last run there is newer is
    /// taken whole; failures are joined.
    pub fn merge(&mut self, stored: ScheduleState) {
        let key = |r: &RunInfo| {
            (
                r.policy.clone(),
                r.name.clone(),
                r.task_id.clone(),
                r.started_at,
            )
        };
        for (name, theirs) in stored.policies {
            let ours = self.policy(&name);
            let when = |p: &PolicyState| p.last_run.as_ref().map(|r| r.started_at.max(r.ended_at));
            if when(&theirs) > when(ours) {
                let fired = ours.last_fired_at.max(theirs.last_fired_at);
                *ours = PolicyState {
                    last_fired_at: fired,
                    ..theirs
                };
            }
        }
        let known: std::collections::HashSet<_> = self.failures.iter().map(key).collect();
        let theirs: Vec<RunInfo> = stored
            .failures
            .into_iter()
            .filter(|r| !known.contains(&key(r)))
            .collect();
        if !theirs.is_empty() {
            self.failures.extend(theirs);
            self.failures.sort_by_key(|r| r.ended_at.max(r.started_at));
            let excess = self.failures.len().saturating_sub(FAILURES_KEPT);
            self.failures.drain(..excess);
        }
    }
}

/// Records one run a front end made outside a scheduler (a command of the
/// command line under a strategy): read, add, write.
pub async fn record_run(storage: &Storage, run: RunInfo) -> Result<()> {
    let mut state = read(storage).await?;
    state.record(run);
    write(storage, &state).await
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
        s.record(run("partial"));
        s.record(run("failed"));
        let p = &s.policies["full"];
        assert_eq!((p.runs, p.failed, p.skipped, p.partial), (3, 1, 1, 1));
        assert_eq!(p.last_run.as_ref().unwrap().outcome, "failed");
        assert_eq!(p.last_success.as_ref().unwrap().outcome, "partial");
        let kept: Vec<&str> = s.failures.iter().map(|f| f.outcome.as_str()).collect();
        assert_eq!(kept, ["partial", "failed"]);
    }

    #[test]
    fn a_merge_keeps_what_another_writer_recorded() {
        let run = |policy: &str, name: &str, at: u64, outcome: &str| RunInfo {
            policy: policy.into(),
            name: name.into(),
            started_at: at,
            ended_at: at + 1,
            outcome: outcome.into(),
            ..Default::default()
        };
        let mut ours = ScheduleState::default();
        ours.record(run("full", "full_1", 10, "failed"));
        ours.policy("full").last_fired_at = 50;
        // Another process read the same file, then recorded two runs.
        let mut stored = ours.clone();
        stored.record(run("full", "full_2", 20, "failed"));
        stored.record(run("create", "nightly", 30, "failed"));
        ours.merge(stored.clone());
        assert_eq!(
            ours.policies["full"].last_run.as_ref().unwrap().name,
            "full_2"
        );
        assert_eq!(ours.policies["full"].failed, 2);
        assert_eq!(ours.policies["full"].last_fired_at, 50);
        assert_eq!(ours.policies["create"].failed, 1);
        let names: Vec<&str> = ours.failures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["full_1", "full_2", "nightly"]);
        // Merging again changes nothing; an older stored run loses.
        let before = ours.clone();
        ours.merge(stored);
        assert_eq!(ours, before);
        let mut older = ScheduleState::default();
        older.record(run("full", "full_0", 1, "success"));
        ours.merge(older);
        assert_eq!(
            ours.policies["full"].last_run.as_ref().unwrap().name,
            "full_2"
        );
    }
}
