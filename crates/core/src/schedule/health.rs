//! Health of a strategy, from what is in storage: per collection the last
//! complete backup and its age against `rpo` (the guide's "No backup in
//! last 24 hours!"), its last verification, the secondary's lag, and the
//! recent failed runs. `GET /api/v1/health`, `milvus-backup status`, the
//! status page and the RPO alerts all read this one report.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::strategy::Strategy;
use crate::error::Result;
use crate::model::selection::CollectionRef;
use crate::ops::replicate;
use crate::repo::catalog::{self, BackupListing, BackupState};
use crate::schedule::state::{RunInfo, ScheduleState};
use crate::storage::Storage;

#[derive(Debug, Clone, Serialize)]
pub struct CollectionHealth {
    /// `db.coll`.
    pub collection: String,
    pub last_backup: Option<String>,
    /// Milliseconds since the epoch.
    pub last_backup_at: Option<u64>,
    pub age_s: Option<u64>,
    /// Within the RPO (true when no RPO is set and a backup exists).
    pub rpo_ok: bool,
    /// e.g. "No backup in last 24 hours!".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The last backup's verification.
    pub verified_ok: Option<bool>,
    pub last_verified_at: Option<u64>,
    /// green, amber or red.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecondaryHealth {
    pub target: String,
    /// Seconds since the oldest backup the secondary lacks was taken (0: none lacking).
    pub lag_s: u64,
    pub missing: Vec<String>,
    pub backups: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// ok, warning or critical.
    pub status: &'static str,
    pub checked_at: u64,
    pub rpo_s: Option<u64>,
    pub collections: Vec<CollectionHealth>,
    /// Backups whose last verification found damage (`storage:backup`).
    pub damaged: Vec<String>,
    pub last_verification_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secondary: Option<SecondaryHealth>,
    /// Failed runs within the last day (or RPO, when longer).
    pub failed_runs: Vec<RunInfo>,
    pub messages: Vec<String>,
}

/// "24 hours", "90 seconds", "2 minutes", "7 days".
pub fn human(secs: u64) -> String {
    let (n, unit) = if secs.is_multiple_of(86400) && secs >= 86400 && secs != 86400 {
        (secs / 86400, "day")
    } else if secs.is_multiple_of(3600) && secs >= 3600 {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) && secs >= 60 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The guide's message for an RPO breach.
pub fn rpo_message(rpo_s: u64) -> String {
    format!("No backup in last {}!", human(rpo_s))
}

/// Health now, from the primary (and secondary) storage and the scheduler's state.
pub async fn report(
    primary: &Storage,
    secondary: Option<&Storage>,
    strategy: &Strategy,
    state: &ScheduleState,
) -> Result<HealthReport> {
    let now = chrono::Utc::now().timestamp_millis() as u64;
    // The verdicts come with the listing (the catalog index): no read per backup.
    let listed = catalog::list_with_verdicts(primary).await?;
    let complete: Vec<&BackupListing> = listed
        .iter()
        .map(|(r, _)| r)
        .filter(|r| r.state == BackupState::Complete)
        .collect();
    let rpo_s = strategy.rpo.map(|d| d.as_secs());
    let newest = newest_per_collection(&complete, strategy);
    let mut messages = Vec::new();
    let mut collections = Vec::new();
    let mut last_verification_at = None;
    let mut damaged = Vec::new();
    let mut records = BTreeMap::new();
    for (r, rec) in &listed {
        let Some(rec) = rec.as_ref().filter(|_| r.state == BackupState::Complete) else {
            continue;
        };
        last_verification_at = last_verification_at.max(Some(rec.last_verified_at));
        if !rec.verified_ok {
            damaged.push(format!("primary:{}", r.name));
        }
        records.insert(r.name.clone(), rec);
    }
    for (collection, last) in newest {
        let c = collection_health(collection, last, &records, rpo_s, now);
        if let Some(m) = &c.message {
            messages.push(format!("{}: {m}", c.collection));
        }
        collections.push(c);
    }
    let secondary = match (secondary, &strategy.secondary) {
        (Some(to), Some(t)) => {
            Some(secondary_health(primary, to, strategy, &t.uri, now, &mut damaged).await)
        }
        _ => None,
    };
    let window = rpo_s.unwrap_or(0).max(86400) * 1000;
    let failed_runs: Vec<RunInfo> = state
        .failures
        .iter()
        .filter(|f| now.saturating_sub(f.ended_at.max(f.started_at)) <= window)
        .cloned()
        .collect();
    for d in &damaged {
        messages.push(format!(
            "backup {d} is damaged (its last verification failed)"
        ));
    }
    if let Some(s) = &secondary {
        if let Some(e) = &s.error {
            messages.push(format!("secondary: {e}"));
        } else if !s.missing.is_empty() {
            messages.push(format!(
                "secondary lags {} s: {} backup(s) not copied yet",
                s.lag_s,
                s.missing.len()
            ));
        }
    }
    for f in &failed_runs {
        messages.push(format!(
            "run {} ({}) {}: {}",
            f.name, f.policy, f.outcome, f.message
        ));
    }
    let lagging = secondary
        .as_ref()
        .is_some_and(|s| s.error.is_some() || rpo_s.is_some_and(|r| s.lag_s > r));
    let status = if collections.iter().any(|c| c.status == "red") || !damaged.is_empty() {
        "critical"
    } else if !failed_runs.is_empty() || lagging || collections.iter().any(|c| c.status == "amber")
    {
        "warning"
    } else {
        "ok"
    };
    Ok(HealthReport {
        status,
        checked_at: now,
        rpo_s,
        collections,
        damaged,
        last_verification_at,
        secondary,
        failed_runs,
        messages,
    })
}

/// The collections to report on — those the strategy names, and those
/// its backups hold — each with its newest complete backup (of any kind).
fn newest_per_collection<'a>(
    complete: &[&'a BackupListing],
    strategy: &Strategy,
) -> BTreeMap<String, Option<&'a BackupListing>> {
    let mut newest: BTreeMap<String, Option<&BackupListing>> = strategy
        .selection
        .collections
        .iter()
        .map(|c| (CollectionRef::parse(c).to_string(), None))
        .collect();
    for r in complete.iter().filter(|r| strategy.made(&r.name)) {
        for c in &r.collections {
            newest.entry(c.clone()).or_insert(None);
        }
    }
    for r in complete {
        for c in &r.collections {
            if let Some(slot) = newest.get_mut(c) {
                if slot.is_none_or(|b| b.backup_timestamp < r.backup_timestamp) {
                    *slot = Some(r);
                }
            }
        }
    }
    newest
}

/// One collection's health from its newest backup and that backup's
/// verification record.
fn collection_health(
    collection: String,
    last: Option<&BackupListing>,
    records: &BTreeMap<String, &crate::model::verification::VerificationRecord>,
    rpo_s: Option<u64>,
    now: u64,
) -> CollectionHealth {
    let age_s = last.map(|b| now.saturating_sub(b.backup_timestamp) / 1000);
    let rpo_ok = match (age_s, rpo_s) {
        (None, _) => false,
        (Some(a), Some(r)) => a <= r,
        (Some(_), None) => true,
    };
    let message = (!rpo_ok).then(|| match rpo_s {
        Some(r) => rpo_message(r),
        None => "No backup yet!".to_string(),
    });
    let rec = last.and_then(|b| records.get(&b.name));
    let status = if !rpo_ok || rec.is_some_and(|r| !r.verified_ok) {
        "red"
    } else if rec.is_none() {
        "amber"
    } else {
        "green"
    };
    CollectionHealth {
        collection,
        last_backup: last.map(|b| b.name.clone()),
        last_backup_at: last.map(|b| b.backup_timestamp),
        age_s,
        rpo_ok,
        message,
        verified_ok: rec.map(|r| r.verified_ok),
        last_verified_at: rec.map(|r| r.last_verified_at),
        status,
    }
}

async fn secondary_health(
    primary: &Storage,
    to: &Storage,
    strategy: &Strategy,
    uri: &str,
    now: u64,
    damaged: &mut Vec<String>,
) -> SecondaryHealth {
    let mut h = SecondaryHealth {
        target: uri.to_string(),
        lag_s: 0,
        missing: Vec::new(),
        backups: 0,
        error: None,
    };
    match replicate::missing(primary, to, |n| strategy.made(n)).await {
        Ok(missing) => {
            h.lag_s = missing
                .first()
                .map(|r| now.saturating_sub(r.backup_timestamp) / 1000)
                .unwrap_or(0);
            h.missing = missing.into_iter().map(|r| r.name).collect();
        }
        Err(e) => h.error = Some(e.to_string()),
    }
    if let Ok(rows) = catalog::list_with_verdicts(to).await {
        for (r, rec) in rows
            .iter()
            .filter(|(r, _)| r.state == BackupState::Complete)
        {
            h.backups += 1;
            if rec.as_ref().is_some_and(|rec| !rec.verified_ok) {
                damaged.push(format!("secondary:{}", r.name));
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_message() {
        assert_eq!(rpo_message(86400), "No backup in last 24 hours!");
        assert_eq!(rpo_message(90), "No backup in last 90 seconds!");
        assert_eq!(rpo_message(120), "No backup in last 2 minutes!");
        assert_eq!(rpo_message(7 * 86400), "No backup in last 7 days!");
        assert_eq!(rpo_message(3600), "No backup in last 1 hour!");
    }
}
