//! Retention: which backups a policy keeps, which it deletes, and why — in
//! the manner of rustic's `forget`, every backup gets a verdict with its
//! reason. One policy shape serves every caller: `create`'s retention and
//! `delete --apply-retention [--dry-run]` (`backup.maxBackupNum`,
//! `backup.retentionDays` over every backup), and the scheduler's
//! per-policy retention (`retention: N` over that policy's own backups).
//!
//! Owns: the decision. Does not own the deleting ([`crate::ops::delete`]
//! removes the chosen backups, moving the files a kept incremental shares
//! from one into that incremental first) nor which backups a caller
//! passes in (the scheduler passes only its policy's).
//!
//! Only complete backups are counted and chosen: an incomplete one is
//! kept (`delete -n` removes it), and so is one the caller protects (the
//! backup a run just made).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::settings::Settings;
use crate::model::listing::{BackupListing, BackupState};

const DAY_MS: u64 = 86_400_000;

/// A retention policy: keep the newest `max_backups` complete backups and
/// those younger than `max_age_days` (0 = no limit on that side).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub max_backups: u32,
    pub max_age_days: u32,
}

/// Why a backup is kept or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// Within the count and the age the policy keeps.
    Within { rank: usize, age_days: u64 },
    /// Named by the caller to be kept (the backup a run just made).
    Protected,
    /// Not complete: retention never chooses it.
    Incomplete,
    /// Beyond the newest `max` complete backups (`rank` counts from 1).
    BeyondCount { rank: usize, max: u32 },
    /// Older than `max` days.
    TooOld { age_days: u64, max: u32 },
}

/// One backup's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub backup: String,
    pub delete: bool,
    #[serde(flatten)]
    pub reason: Reason,
    /// Kept incrementals that share files from this (deleted) backup:
    /// the files move into the oldest of them before it goes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
}

/// Every backup's verdict, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionPlan {
    pub decisions: Vec<Decision>,
}

impl Retention {
    /// `backup.maxBackupNum` and `backup.retentionDays`.
    pub fn from_settings(settings: &Settings) -> Retention {
        Retention {
            max_backups: settings.max_backup_num,
            max_age_days: settings.retention_days,
        }
    }

    /// Keep the newest `n` only (the scheduler's `retention: n`).
    pub fn newest(n: u32) -> Retention {
        Retention {
            max_backups: n,
            max_age_days: 0,
        }
    }

    pub fn is_active(&self) -> bool {
        self.max_backups > 0 || self.max_age_days > 0
    }

    /// The verdict on each of `backups` at `now_ms`; those in `protect`
    /// are kept whatever their rank or age.
    pub fn plan(&self, backups: &[BackupListing], now_ms: u64, protect: &[&str]) -> RetentionPlan {
        let mut sorted: Vec<&BackupListing> = backups.iter().collect();
        sorted.sort_by(|a, b| {
            b.backup_timestamp
                .cmp(&a.backup_timestamp)
                .then(b.name.cmp(&a.name))
        });
        let mut rank = 0;
        let mut decisions: Vec<Decision> = sorted
            .iter()
            .map(|b| {
                let complete = b.state == BackupState::Complete;
                if complete {
                    rank += 1;
                }
                let reason = if !complete {
                    Reason::Incomplete
                } else if protect.contains(&b.name.as_str()) {
                    Reason::Protected
                } else {
                    self.verdict(rank, now_ms.saturating_sub(b.backup_timestamp))
                };
                Decision {
                    backup: b.name.clone(),
                    delete: matches!(reason, Reason::BeyondCount { .. } | Reason::TooOld { .. }),
                    reason,
                    shared_with: Vec::new(),
                }
            })
            .collect();
        let kept_bases: Vec<(String, String)> = sorted
            .iter()
            .zip(&decisions)
            .filter(|(_, d)| !d.delete)
            .filter_map(|(b, d)| Some((b.base_backup.clone()?, d.backup.clone())))
            .collect();
        for d in decisions.iter_mut().filter(|d| d.delete) {
            d.shared_with = kept_bases
                .iter()
                .filter(|(base, _)| *base == d.backup)
                .map(|(_, inc)| inc.clone())
                .collect();
        }
        RetentionPlan { decisions }
    }

    fn verdict(&self, rank: usize, age_ms: u64) -> Reason {
        let age_days = age_ms / DAY_MS;
        if self.max_backups > 0 && rank > self.max_backups as usize {
            Reason::BeyondCount {
                rank,
                max: self.max_backups,
            }
        } else if self.max_age_days > 0 && age_ms > u64::from(self.max_age_days) * DAY_MS {
            Reason::TooOld {
                age_days,
                max: self.max_age_days,
            }
        } else {
            Reason::Within { rank, age_days }
        }
    }
}

impl RetentionPlan {
    /// The backups to delete, oldest first (the order they are deleted in).
    pub fn deleted(&self) -> Vec<String> {
        self.decisions
            .iter()
            .rev()
            .filter(|d| d.delete)
            .map(|d| d.backup.clone())
            .collect()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Within { rank, age_days } => {
                write!(f, "newest #{rank}, {age_days} days old: within the policy")
            }
            Reason::Protected => write!(f, "just made by this run"),
            Reason::Incomplete => {
                write!(
                    f,
                    "incomplete: retention never deletes it (`delete -n` does)"
                )
            }
            Reason::BeyondCount { rank, max } => {
                write!(f, "newest #{rank}: beyond the {max} newest kept")
            }
            Reason::TooOld { age_days, max } => {
                write!(f, "{age_days} days old: older than {max} days")
            }
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.delete { "delete" } else { "keep" };
        write!(f, "{verb} `{}`: {}", self.backup, self.reason)?;
        if !self.shared_with.is_empty() {
            write!(
                f,
                " (the files it shares with {} move there first)",
                self.shared_with.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::catalog::listed_at;

    const NOW: u64 = 100 * DAY_MS;

    fn day(n: u64) -> u64 {
        NOW - n * DAY_MS
    }

    fn reasons(plan: &RetentionPlan) -> Vec<(String, bool)> {
        plan.decisions
            .iter()
            .map(|d| (d.backup.clone(), d.delete))
            .collect()
    }

    #[test]
    fn count_and_age_each_delete_and_say_why() {
        let all = vec![
            listed_at("d0", day(0), BackupState::Complete),
            listed_at("d5", day(5), BackupState::Complete),
            listed_at("d9", day(9), BackupState::Incomplete),
            listed_at("d10", day(10), BackupState::Complete),
            listed_at("d40", day(40), BackupState::Complete),
        ];
        let by_count = Retention::newest(2).plan(&all, NOW, &[]);
        assert_eq!(by_count.deleted(), vec!["d40", "d10"]);
        assert_eq!(
            by_count.decisions[2],
            Decision {
                backup: "d9".into(),
                delete: false,
                reason: Reason::Incomplete,
                shared_with: vec![],
            }
        );
        assert_eq!(
            by_count.decisions[3].reason,
            Reason::BeyondCount { rank: 3, max: 2 }
        );
        let by_age = Retention {
            max_backups: 0,
            max_age_days: 30,
        }
        .plan(&all, NOW, &[]);
        assert_eq!(by_age.deleted(), vec!["d40"]);
        assert_eq!(
            by_age.decisions[4].reason,
            Reason::TooOld {
                age_days: 40,
                max: 30
            }
        );
        assert_eq!(
            by_age.decisions[1].reason,
            Reason::Within {
                rank: 2,
                age_days: 5
            }
        );
        assert!(Retention::default()
            .plan(&all, NOW, &[])
            .deleted()
            .is_empty());
    }

    #[test]
    fn a_protected_backup_is_kept_and_still_counted() {
        let all = vec![
            listed_at("new", day(0), BackupState::Complete),
            listed_at("old", day(1), BackupState::Complete),
        ];
        let plan = Retention::newest(1).plan(&all, NOW, &["new"]);
        assert_eq!(
            reasons(&plan),
            vec![("new".into(), false), ("old".into(), true)]
        );
        assert_eq!(plan.decisions[0].reason, Reason::Protected);
    }

    #[test]
    fn a_deleted_base_names_the_kept_incrementals_that_share_its_files() {
        let mut inc = listed_at("inc", day(0), BackupState::Complete);
        inc.base_backup = Some("base".into());
        let all = vec![inc, listed_at("base", day(3), BackupState::Complete)];
        let plan = Retention::newest(1).plan(&all, NOW, &[]);
        assert_eq!(plan.deleted(), vec!["base"]);
        assert_eq!(plan.decisions[1].shared_with, vec!["inc"]);
        assert_eq!(
            plan.decisions[1].to_string(),
            "delete `base`: newest #2: beyond the 1 newest kept (the files it shares with inc move there first)"
        );
    }

    fn backup_days_old(name: &str, days_old: u64, state: BackupState) -> BackupListing {
        listed_at(name, NOW - days_old * DAY_MS, state)
    }

    #[test]
    fn retention_keeps_the_newest_and_the_young() {
        use BackupState::*;
        let all = vec![
            backup_days_old("d0", 0, Complete),
            backup_days_old("d1", 1, Complete),
            backup_days_old("d2", 2, Incomplete),
            backup_days_old("d3", 3, Complete),
            backup_days_old("d9", 9, Complete),
        ];
        let by_count = Retention {
            max_backups: 2,
            max_age_days: 0,
        };
        assert_eq!(by_count.plan(&all, NOW, &[]).deleted(), ["d9", "d3"]);
        let by_age = Retention {
            max_backups: 0,
            max_age_days: 2,
        };
        assert_eq!(by_age.plan(&all, NOW, &[]).deleted(), ["d9", "d3"]);
        let both = Retention {
            max_backups: 3,
            max_age_days: 5,
        };
        assert_eq!(both.plan(&all, NOW, &[]).deleted(), ["d9"]);
        assert_eq!(
            both.plan(&all, NOW, &["d9"]).deleted(),
            Vec::<String>::new()
        );
        assert!(Retention::default()
            .plan(&all, NOW, &[])
            .deleted()
            .is_empty());
    }
}
