//! `delete`: removing backups — by name, by age, all of them, or those the
//! retention policy (`backup.maxBackupNum`, `backup.retentionDays`) names.
//!
//! Options → Plan → Stats: [`plan`] picks the backups (and checks that
//! named ones exist), [`execute`] deletes them one at a time. Before a
//! backup goes, the files other (incremental) backups share from it are
//! moved into the oldest of them and every reference is repointed; then its
//! files are removed with [`catalog::remove`], completion marks first. An
//! interruption at any point leaves every backup readable.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, EventSink, Phase};
use crate::model::layout;
use crate::model::meta::Manifest;
use crate::model::naming::validate_backup_name;
use crate::ops::retention::{Retention, RetentionPlan};
use crate::repo::catalog::{self, BackupState};
use crate::repo::lease;
use crate::storage::Storage;
use crate::{cancellable, CancellationToken};

/// Which backups to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteTarget {
    /// These backups, complete or not; each must exist.
    Names(Vec<String>),
    /// Complete backups older than this many seconds.
    OlderThan(u64),
    /// Every backup, complete or not.
    All,
    /// What the retention policy removes.
    Retention(Retention),
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DeleteOptions {
    pub target: DeleteTarget,
    /// Never chosen by age or retention (e.g. the backup just made).
    #[serde(default)]
    pub keep: Vec<String>,
    /// Delete backups in use too (a restore, verify or replicate holds a
    /// lease on them), with a warning; else a named one is refused and
    /// one chosen by age or retention is kept.
    #[serde(default)]
    pub force: bool,
}

/// The backups a delete removes, oldest first for age and retention.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeletePlan {
    pub backups: Vec<String>,
    /// Chosen by the retention policy.
    pub retention: bool,
    /// With retention: every backup's verdict and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdicts: Option<RetentionPlan>,
    /// Backups in use are deleted too (`--force`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// Chosen by age or retention: one in use is kept (not an error).
    #[serde(skip)]
    pub keep_in_use: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeleteStats {
    pub deleted: Vec<String>,
    /// Objects removed in all.
    pub objects: u64,
}

/// Picks the backups to delete.
pub async fn plan(storage: &Storage, opts: &DeleteOptions) -> Result<DeletePlan> {
    let keep: Vec<&str> = opts.keep.iter().map(String::as_str).collect();
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let backups = match &opts.target {
        DeleteTarget::Names(names) => {
            for name in names {
                validate_backup_name(name)?;
                if !storage.has_objects(&layout::backup_dir(name)).await? {
                    return Err(catalog::not_found(storage, name));
                }
            }
            names.clone()
        }
        DeleteTarget::All => catalog::names(storage).await?,
        DeleteTarget::OlderThan(seconds) => {
            let cutoff = now.saturating_sub(seconds * 1000);
            // What deletes reads the backups themselves, not the catalog index.
            catalog::list_fresh(storage)
                .await?
                .into_iter()
                .filter(|r| r.state == BackupState::Complete && r.backup_timestamp < cutoff)
                .filter(|r| !keep.contains(&r.name.as_str()))
                .map(|r| r.name)
                .collect()
        }
        DeleteTarget::Retention(policy) => {
            if !policy.is_active() {
                return Err(Error::invalid_input(
                    "no retention policy is set — set backup.maxBackupNum and/or backup.retentionDays (e.g. --set backup.maxBackupNum=7)",
                ));
            }
            let verdicts = policy.plan(&catalog::list_fresh(storage).await?, now, &keep);
            return Ok(DeletePlan {
                backups: verdicts.deleted(),
                retention: true,
                verdicts: Some(verdicts),
                force: opts.force,
                keep_in_use: true,
            });
        }
    };
    Ok(DeletePlan {
        backups,
        force: opts.force,
        keep_in_use: !matches!(opts.target, DeleteTarget::Names(_)),
        ..Default::default()
    })
}

/// Deletes the planned backups, one at a time; a cancel stops between two.
/// The other backups' manifests are read once for all of them (and those
/// of backups that appear meanwhile, before each delete).
pub async fn execute(
    storage: &Storage,
    plan: &DeletePlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<DeleteStats> {
    let mut stats = DeleteStats::default();
    let mut others = Manifests::default();
    for name in &plan.backups {
        if cancel.is_cancelled() {
            return Err(Error::cancelled().during("delete"));
        }
        let users = lease::users(storage, name).await?;
        if !users.is_empty() {
            let who = lease::describe(&users);
            if plan.force {
                events.warn(format!(
                    "deleting backup `{name}` while {who} uses it (--force): that will fail, reporting the backup deleted while in use"
                ));
            } else if plan.keep_in_use {
                events.warn(format!(
                    "kept backup `{name}`: {who} uses it; it goes at the next run after that ends"
                ));
                continue;
            } else {
                return Err(Error::conflict(format!(
                    "backup `{name}` is in use by {who} — wait until that ends, or delete it anyway with --force"
                ))
                .at("backup", name));
            }
        }
        events.phase(Phase::Deleting {
            backup: name.clone(),
            retention: plan.retention,
        });
        let one = async {
            others.refresh(storage).await?;
            delete_with(storage, name, &mut others).await
        };
        stats.objects += cancellable(cancel, one)
            .await
            .map_err(|e| e.during("delete").at("backup", name))?;
        stats.deleted.push(name.clone());
    }
    Ok(stats)
}

/// Plan, then execute.
pub async fn delete(
    storage: &Storage,
    opts: &DeleteOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<DeleteStats> {
    let plan = plan(storage, opts).await?;
    execute(storage, &plan, events, cancel).await
}

/// Deletes one backup, complete or not (no plan, no events); returns the
/// number of objects removed.
pub async fn delete_backup(storage: &Storage, name: &str) -> Result<u64> {
    let mut others = Manifests::default();
    others.refresh(storage).await?;
    delete_with(storage, name, &mut others).await
}

async fn delete_with(storage: &Storage, name: &str, others: &mut Manifests) -> Result<u64> {
    if !storage.has_objects(&layout::backup_dir(name)).await? {
        return Err(catalog::not_found(storage, name));
    }
    rehome_shared_files(storage, name, others).await?;
    let removed = catalog::remove(storage, name).await?;
    others.0.remove(name);
    Ok(removed)
}

/// Every backup's manifest as read, by name (`None`: it has none yet),
/// kept up to date as a delete rewrites and removes them. A damaged one is
/// kept as its error: it blocks the delete of any other backup (it may
/// share files from it), not of itself.
#[derive(Default)]
struct Manifests(BTreeMap<String, std::result::Result<Option<Manifest>, String>>);

impl Manifests {
    /// Reads the manifests of the backups not read yet (all, the first
    /// time), and forgets those gone.
    async fn refresh(&mut self, storage: &Storage) -> Result<()> {
        let names: BTreeSet<String> = catalog::names(storage).await?.into_iter().collect();
        self.0.retain(|n, _| names.contains(n));
        let new = names.into_iter().filter(|n| !self.0.contains_key(n));
        let found = futures::stream::iter(new.map(|n| async move {
            let m = catalog::manifest(storage, &n).await;
            (n, m)
        }))
        .buffer_unordered(REHOME_PARALLELISM)
        .collect::<Vec<_>>()
        .await;
        for (name, m) in found {
            let m = match m {
                Ok(m) => Ok(m),
                Err(e) if e.kind() == ErrorKind::Corrupt => Err(e.message().to_string()),
                Err(e) => return Err(e),
            };
            self.0.insert(name, m);
        }
        Ok(())
    }

    /// The manifests that name `victim` as holding some of their files;
    /// an error when another backup's manifest is damaged.
    fn referring_to(&self, victim: &str) -> Result<Vec<(String, Manifest)>> {
        let mut out = Vec::new();
        for (name, m) in self.0.iter().filter(|(n, _)| *n != victim) {
            match m {
                Err(damaged) => return Err(Error::corrupt(damaged.clone())),
                Ok(Some(m)) if m.referenced_backups().contains(victim) => {
                    out.push((name.clone(), m.clone()))
                }
                Ok(_) => {}
            }
        }
        Ok(out)
    }
}

/// Manifests read, and shared files copied, at once.
const REHOME_PARALLELISM: usize = 16;

/// Before `name` is deleted, moves the files other (incremental) backups
/// share from it into the oldest of them, and points every reference
/// there. Copies first, manifests second: an interruption at any point
/// leaves every backup readable.
async fn rehome_shared_files(storage: &Storage, name: &str, others: &mut Manifests) -> Result<()> {
    let mut referrers = others.referring_to(name)?;
    if referrers.is_empty() {
        return Ok(());
    }
    referrers.sort_by(|a, b| a.1.created_at.cmp(&b.1.created_at).then(a.0.cmp(&b.0)));
    let heir = referrers[0].0.clone();
    let paths: BTreeSet<String> = referrers
        .iter()
        .flat_map(|(_, m)| &m.files)
        .filter(|f| f.stored_in.as_deref() == Some(name))
        .map(|f| f.path.clone())
        .collect();
    let (from, to) = (layout::backup_dir(name), layout::backup_dir(&heir));
    let copies: Vec<(String, String)> = paths
        .iter()
        .map(|p| (layout::join(&from, p), layout::join(&to, p)))
        .collect();
    futures::stream::iter(copies)
        .map(|(src, dst)| async move { storage.copy_to(&src, storage, &dst).await.map(|_| ()) })
        .buffer_unordered(REHOME_PARALLELISM)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    for (backup, mut m) in referrers {
        for f in m
            .files
            .iter_mut()
            .filter(|f| f.stored_in.as_deref() == Some(name))
        {
            f.stored_in = (backup != heir).then(|| heir.clone());
        }
        let bytes = serde_json::to_vec_pretty(&m)
            .map_err(|e| Error::internal(format!("encoding the manifest of {backup}: {e}")))?;
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        storage
            .write(&layout::backup_meta_file(&backup, layout::MANIFEST), bytes)
            .await?;
        record_manifest_checksum(storage, &backup, sha).await?;
        others.0.insert(backup, Ok(Some(m)));
    }
    Ok(())
}

/// Keeps `summary.json`'s checksum of a rewritten manifest true.
async fn record_manifest_checksum(storage: &Storage, backup: &str, sha: String) -> Result<()> {
    let key = layout::backup_meta_file(backup, layout::SUMMARY);
    let Some(mut summary) =
        crate::repo::meta_files::read_json::<crate::model::meta::Summary>(storage, &key).await?
    else {
        return Ok(());
    };
    if summary.meta_sha256.is_empty() {
        return Ok(());
    }
    summary
        .meta_sha256
        .insert(layout::MANIFEST.to_string(), sha);
    let bytes = serde_json::to_vec_pretty(&summary)
        .map_err(|e| Error::internal(format!("encoding the summary of {backup}: {e}")))?;
    storage.write(&key, bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(target: DeleteTarget) -> DeleteOptions {
        DeleteOptions {
            target,
            keep: Vec::new(),
            force: false,
        }
    }

    /// A fake Milvus with one collection and backups `a` and `b` of it.
    async fn two_backups() -> crate::testkit::Kit {
        let kit = crate::testkit::Kit::new();
        kit.milvus.add_collection("docs", &[5], 1, 100).await;
        for name in ["a", "b"] {
            kit.create_backup(name).await;
        }
        kit
    }

    #[tokio::test]
    async fn a_backup_in_use_is_refused_kept_by_retention_and_deleted_with_force() {
        use crate::events::{Collect, Event};
        let kit = two_backups().await;
        let none = CancellationToken::new();
        let storage = &kit.ctx.backup_storage;
        let lease = lease::hold(storage, "a", "restore").await.unwrap();
        // By name: refused, naming the holder and the way out.
        let e = delete(
            storage,
            &options(DeleteTarget::Names(vec!["a".into()])),
            &Collect::default(),
            &none,
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        let msg = e.to_string();
        assert!(
            msg.contains("backup `a` is in use by a restore (process") && msg.contains("--force"),
            "{msg}"
        );
        // By age (or retention): kept, with a warning; the other one goes.
        let events = Collect::default();
        let stats = delete(
            storage,
            &options(DeleteTarget::OlderThan(0)),
            &events,
            &none,
        )
        .await
        .unwrap();
        assert_eq!(stats.deleted, ["b"]);
        assert!(
            events.events().iter().any(
                |e| matches!(e, Event::Warning { message } if message.contains("kept backup `a`"))
            ),
            "{:?}",
            events.events()
        );
        // --force: deleted, with a warning naming the user.
        let forced = DeleteOptions {
            force: true,
            ..options(DeleteTarget::Names(vec!["a".into()]))
        };
        let events = Collect::default();
        let stats = delete(storage, &forced, &events, &none).await.unwrap();
        assert_eq!(stats.deleted, ["a"]);
        assert!(
            events.events().iter().any(
                |e| matches!(e, Event::Warning { message } if message.contains("while a restore"))
            ),
            "{:?}",
            events.events()
        );
        assert!(lease::deleted(storage, "a").await);
        lease.release().await;
        assert!(lease::users(storage, "a").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn one_run_deletes_a_chain_of_bases_and_the_last_backup_stays_whole() {
        use crate::events::Collect;
        use crate::ops::backup::{create, BackupOptions};
        use crate::ops::verify::{verify, VerifyOptions};
        let kit = crate::testkit::Kit::new();
        kit.milvus.add_collection("docs", &[5, 7], 1, 100).await;
        let none = CancellationToken::new();
        kit.create_backup("base").await;
        for (name, base) in [("inc1", "base"), ("inc2", "inc1")] {
            let opts = BackupOptions {
                name: Some(name.into()),
                base_backup: Some(base.into()),
                ..Default::default()
            };
            create(&kit.ctx, &opts, &Collect::default(), &none)
                .await
                .unwrap();
        }
        let storage = &kit.ctx.backup_storage;
        // The manifests are read once: the second delete must see what the
        // first one rewrote (inc1 became the heir of base's files).
        let both = options(DeleteTarget::Names(vec!["base".into(), "inc1".into()]));
        let stats = delete(storage, &both, &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!(stats.deleted, ["base", "inc1"]);
        assert_eq!(catalog::names(storage).await.unwrap(), ["inc2"]);
        let m = catalog::manifest(storage, "inc2").await.unwrap().unwrap();
        assert!(m.files.iter().all(|f| f.stored_in.is_none()), "{m:?}");
        let opts = VerifyOptions {
            backups: vec!["inc2".into()],
            deep: true,
            restore_test: false,
            tuning: None,
        };
        let reports = verify(&kit.ctx, &opts, &Collect::default(), &none)
            .await
            .unwrap();
        assert!(reports[0].problems.is_empty(), "{:?}", reports[0].problems);
        assert!(reports[0].files > 0);
    }

    #[tokio::test]
    async fn deletes_named_backups_and_refuses_unknown_ones() {
        use crate::events::Collect;
        let kit = two_backups().await;
        let none = CancellationToken::new();
        let storage = &kit.ctx.backup_storage;
        let missing = options(DeleteTarget::Names(vec!["a".into(), "zz".into()]));
        let e = delete(storage, &missing, &Collect::default(), &none)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);
        assert_eq!(
            catalog::names(storage).await.unwrap(),
            ["a", "b"],
            "nothing deleted"
        );
        let all = options(DeleteTarget::All);
        let stats = delete(storage, &all, &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!(stats.deleted, ["a", "b"]);
        assert!(kit.backup_keys("").await.is_empty());
        let retention = options(DeleteTarget::Retention(Retention::default()));
        let e = plan(storage, &retention).await.unwrap_err();
        assert!(e.to_string().contains("no retention policy"), "{e}");
    }
}
