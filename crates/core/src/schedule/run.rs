//! One scheduled run: the same core operations a user runs by hand.
//!
//! A backup run ([`backup_run`]) is `backup::plan` + `backup::execute`
//! (incremental for the incremental policy, full instead when
//! `auto_full_ratio` says so), then the policy's retention with
//! `delete::execute` (which rehomes files a kept incremental shares), then
//! `replicate` to the secondary (this backup and any other of the
//! strategy's the secondary lacks) and the same retention there. A
//! verification run ([`verification_run`]) is `verify` (deep, plus the
//! restore test when asked) of every backup that changed since it was
//! last verified, on both storages, recording each verdict.

use std::time::Instant;

use serde::Serialize;

use crate::config::strategy::{PolicyKind, Strategy};
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, EventSink, Quiet};
use crate::ops::backup::{self, BackupOptions, BackupRequest, BackupStats};
use crate::ops::delete::{self, DeletePlan};
use crate::ops::replicate::{self, ReplicateStats};
use crate::ops::retention::Retention;
use crate::ops::verify::{self, VerifyOptions};
use crate::repo::catalog::{self, BackupListing, BackupState};
use crate::repo::verification;
use crate::storage::Storage;
use crate::CancellationToken;

/// Backups of other runs the secondary lacks, copied per run at most.
const CATCH_UP_COPIES: usize = 8;
/// The message of a run whose backup was made but not copied.
pub const SECONDARY_FAILED: &str = "copying it to the secondary failed";

/// `auto_full_ratio`'s decision.
#[derive(Debug, Clone, Serialize)]
pub struct AutoFull {
    pub base: String,
    pub base_bytes: u64,
    pub changed_bytes: u64,
    pub ratio: f64,
    pub threshold: f64,
    /// A full backup was taken instead of an incremental one.
    pub took_full: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SecondaryRun {
    pub copied: Vec<ReplicateStats>,
    pub retention_deleted: Vec<String>,
    /// Seconds from the end of the backup to the end of its copy.
    pub copy_lag_s: f64,
}

/// What a backup run did (the run's task result).
#[derive(Debug, Clone, Serialize)]
pub struct BackupRun {
    pub policy: &'static str,
    /// `full` or `incremental`: what was actually taken.
    pub taken: &'static str,
    #[serde(flatten)]
    pub backup: BackupStats,
    pub backup_timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_full: Option<AutoFull>,
    /// The policy's backups its retention deleted (primary).
    pub policy_retention_deleted: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secondary: Option<SecondaryRun>,
}

/// Runs the backup policy `kind` as backup `name`.
pub async fn backup_run(
    ctx: &Context,
    strategy: &Strategy,
    kind: PolicyKind,
    name: &str,
    secondary: Option<&Storage>,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<BackupRun> {
    let policy = strategy.backup_policy(kind).ok_or_else(|| {
        Error::invalid_input(format!("backup_strategy.{} is not configured", kind.key()))
    })?;
    let request = BackupRequest {
        name: Some(name.to_string()),
        selection: strategy.selection.clone(),
        incremental: kind == PolicyKind::Incremental,
        ..Default::default()
    };
    let mut opts = BackupOptions::from_request(request, &ctx.settings)?;
    let mut plan = backup::plan(ctx, &opts).await?;
    let mut auto_full = None;
    if let (Some(threshold), Some(base)) = (policy.auto_full_ratio, plan.base_backup.clone()) {
        let decided = auto_full_of(ctx, &plan, base, threshold).await?;
        if decided.took_full {
            events.note(format!(
                "{} bytes changed since `{}` ({:.0} % of its {} bytes, over auto_full_ratio {threshold}): taking a full backup",
                decided.changed_bytes,
                decided.base,
                decided.ratio * 100.0,
                decided.base_bytes
            ));
            opts.incremental = false;
            plan = backup::plan(ctx, &opts).await?;
        }
        auto_full = Some(AutoFull {
            ratio: if decided.ratio.is_finite() {
                decided.ratio
            } else {
                -1.0
            },
            ..decided
        });
    }
    // The policy's retention replaces the global one.
    plan.retention = Retention::default();
    let taken = if plan.base_backup.is_some() {
        "incremental"
    } else {
        "full"
    };
    let stats = backup::execute(ctx, &plan, events, cancel).await?;
    let backup_timestamp = catalog::row(&ctx.backup_storage, name)
        .await
        .map(|r| r.backup_timestamp)
        .unwrap_or_default();
    let backup_end = Instant::now();
    let policy_retention_deleted = apply_retention(
        &ctx.backup_storage,
        kind,
        policy.retention,
        name,
        events,
        cancel,
    )
    .await?;
    let mut run = BackupRun {
        policy: kind.as_str(),
        taken,
        backup: stats,
        backup_timestamp,
        auto_full,
        policy_retention_deleted,
        secondary: None,
    };
    if let Some(to) = secondary {
        let mut sec = SecondaryRun::default();
        let copied = replicate::replicate(&ctx.backup_storage, to, name, &Quiet(events), cancel)
            .await
            .map_err(|e| secondary_failed(name, e))?;
        sec.copy_lag_s = backup_end.elapsed().as_secs_f64();
        sec.copied.push(copied);
        let others = replicate::missing(&ctx.backup_storage, to, |n| strategy.made(n) && n != name)
            .await
            .map_err(|e| secondary_failed(name, e))?;
        for r in others.iter().rev().take(CATCH_UP_COPIES) {
            let s = replicate::replicate(&ctx.backup_storage, to, &r.name, &Quiet(events), cancel)
                .await
                .map_err(|e| secondary_failed(&r.name, e))?;
            sec.copied.push(s);
        }
        sec.retention_deleted = apply_retention(to, kind, policy.retention, name, events, cancel)
            .await
            .map_err(|e| secondary_failed(name, e))?;
        run.secondary = Some(sec);
    }
    Ok(run)
}

/// Whether an incremental plan changes so much of its base (over
/// `auto_full_ratio`) that a full backup is taken instead.
async fn auto_full_of(
    ctx: &Context,
    plan: &backup::BackupPlan,
    base: String,
    threshold: f64,
) -> Result<AutoFull> {
    let base_bytes = catalog::row(&ctx.backup_storage, &base)
        .await?
        .size_bytes
        .max(0) as u64;
    let changed_bytes = plan.totals.bytes.saturating_sub(plan.totals.shared_bytes);
    let ratio = if base_bytes == 0 {
        f64::INFINITY
    } else {
        changed_bytes as f64 / base_bytes as f64
    };
    Ok(AutoFull {
        base,
        base_bytes,
        changed_bytes,
        ratio,
        threshold,
        took_full: ratio > threshold,
    })
}

fn secondary_failed(name: &str, e: Error) -> Error {
    if e.kind() == ErrorKind::Cancelled {
        return e;
    }
    Error::new(
        e.kind(),
        format!("backup `{name}` was made, but {SECONDARY_FAILED}: {e}"),
    )
}

/// The policy's complete backups beyond its newest `keep` (never `made`),
/// oldest first: [`Retention`] over the backups this policy made.
pub fn retention_victims(
    rows: &[BackupListing],
    kind: PolicyKind,
    keep: u32,
    made: &str,
) -> Vec<String> {
    let mine: Vec<BackupListing> = rows
        .iter()
        .filter(|r| kind.made(&r.name))
        .cloned()
        .collect();
    Retention::newest(keep).plan(&mine, 0, &[made]).deleted()
}

/// Deletes the policy's backups beyond its count with `delete::execute`.
async fn apply_retention(
    storage: &Storage,
    kind: PolicyKind,
    keep: u32,
    made: &str,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<Vec<String>> {
    // What deletes reads the backups themselves, not the catalog index.
    let victims = retention_victims(&catalog::list_fresh(storage).await?, kind, keep, made);
    if victims.is_empty() {
        return Ok(victims);
    }
    let plan = DeletePlan {
        backups: victims,
        retention: true,
        verdicts: None,
        force: false,
        // A backup in use stays until a later run.
        keep_in_use: true,
    };
    Ok(delete::execute(storage, &plan, events, cancel)
        .await?
        .deleted)
}

/// One backup's verdict in a verification run.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// `primary` or `secondary`.
    pub storage: &'static str,
    pub backup: String,
    pub ok: bool,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VerificationRun {
    pub checked: Vec<Checked>,
    /// Verified before and unchanged since: not read again.
    pub unchanged: u64,
    /// `storage:backup` of every backup found damaged.
    pub damaged: Vec<String>,
}

/// Verifies (deep) every complete backup on the primary and the secondary
/// that changed since its last verification; records each verdict.
pub async fn verification_run(
    ctx: &Context,
    strategy: &Strategy,
    secondary: Option<&Context>,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<VerificationRun> {
    let policy = strategy
        .verification
        .as_ref()
        .ok_or_else(|| Error::invalid_input("backup_strategy.verification is not configured"))?;
    let mut run = VerificationRun::default();
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let sides = std::iter::once(("primary", ctx)).chain(secondary.map(|c| ("secondary", c)));
    for (side, c) in sides {
        let storage = &c.backup_storage;
        let rows = catalog::list(storage).await?;
        for r in rows.iter().filter(|r| r.state == BackupState::Complete) {
            if cancel.is_cancelled() {
                return Err(Error::cancelled());
            }
            let fingerprint = verification::fingerprint(storage, &r.name).await?;
            if let Some(rec) = verification::read(storage, &r.name).await? {
                let fresh = now.saturating_sub(rec.last_verified_at)
                    < policy.reverify_after.as_millis() as u64;
                if rec.fingerprint == fingerprint && fresh {
                    run.unchanged += 1;
                    continue;
                }
            }
            let opts = VerifyOptions {
                backups: vec![r.name.clone()],
                deep: true,
                restore_test: policy.restore_test && side == "primary",
                tuning: None,
            };
            let plan = verify::plan(c, &opts).await?;
            let reports = verify::execute(c, &plan, events, cancel).await?;
            let Some(report) = reports.into_iter().next() else {
                continue;
            };
            if report.skipped.is_some() {
                continue;
            }
            // `verify` recorded the verdict.
            let problems: Vec<String> = report
                .problems
                .iter()
                .take(verify::RECORDED_PROBLEMS)
                .map(|p| format!("{}: {}", p.path, p.problem))
                .collect();
            let ok = report.ok();
            if !ok {
                run.damaged.push(format!("{side}:{}", r.name));
            }
            run.checked.push(Checked {
                storage: side,
                backup: r.name.clone(),
                ok,
                problems,
            });
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, minute: u64, state: BackupState) -> BackupListing {
        catalog::listed_at(name, 1_800_000_000_000 + minute * 60_000, state)
    }

    #[test]
    fn retention_counts_the_policys_own_complete_backups_only() {
        use BackupState::*;
        let rows = vec![
            row("full_20261201_020000", 0, Complete),
            row("incremental_20261201_030000", 1, Complete),
            row("incremental_20261201_040000", 2, Complete),
            row("incremental_20261201_050000", 3, Incomplete),
            row("incremental_20261201_060000", 4, Complete),
            row("nightly", 5, Complete),
        ];
        let inc = |keep| {
            retention_victims(
                &rows,
                PolicyKind::Incremental,
                keep,
                "incremental_20261201_060000",
            )
        };
        assert_eq!(inc(2), vec!["incremental_20261201_030000"]);
        assert_eq!(
            inc(1),
            vec!["incremental_20261201_030000", "incremental_20261201_040000"]
        );
        assert!(inc(0).is_empty(), "0 keeps all");
        assert!(retention_victims(&rows, PolicyKind::Full, 1, "x").is_empty());
    }
}
