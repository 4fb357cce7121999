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
use crate::repo::catalog_index;
use crate::repo::lease;
use crate::repo::refs::{self, Refs};
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

/// Deletes the planned backups in turn; a cancel stops between two. A
/// backup that others among them share files from goes after them (its
/// files then need no moving). Before each one, only the manifests of
/// backups that may refer to it are read (the recorded references,
/// [`refs`], listed again at most every [`REFS_FRESH_FOR`], and backups
/// without a record), each once for the whole run; its shared files are
/// moved, then its record of references and its files are removed while
/// the next ones are prepared, [`REMOVE_PARALLELISM`] at a time. Leases
/// are read only for backups that have lease objects (one listing, made
/// again with the references).
pub async fn execute(
    storage: &Storage,
    plan: &DeletePlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<DeleteStats> {
    let mut others = Manifests {
        going: plan.backups.iter().cloned().collect(),
        ..Default::default()
    };
    others.refresh(storage).await?;
    let mut order = plan.backups.clone();
    let many = order.len() > 1;
    if many {
        others.read_unknown(storage).await?;
        order = others.dependents_first(order);
        // One update of the catalog index for all of them: it is a cache,
        // and `list` reads a backup it lacks the slow way.
        catalog_index::remove_many(storage, &order).await;
    }
    let mut removing = futures::stream::FuturesUnordered::new();
    let mut removed: Vec<(String, Result<u64>)> = Vec::new();
    // Only the backups with lease objects can be in use: one listing, made
    // again with the references'.
    let mut leased = lease::leased(storage).await?;
    let mut refreshed = std::time::Instant::now();
    let mut stopped = None;
    for name in &order {
        if removed.iter().any(|(_, r)| r.is_err()) {
            break;
        }
        if cancel.is_cancelled() {
            stopped = Some(Error::cancelled().during("delete"));
            break;
        }
        if refreshed.elapsed() > REFS_FRESH_FOR {
            let fresh = async {
                others.refs = refs::load(storage).await?;
                leased = lease::leased(storage).await?;
                Ok::<_, Error>(())
            };
            if let Err(e) = fresh.await {
                stopped = Some(e.during("delete"));
                break;
            }
            refreshed = std::time::Instant::now();
        }
        let leased_now = leased.contains(name.as_str());
        match in_use(storage, plan, name, leased_now, events).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
        events.phase(Phase::Deleting {
            backup: name.clone(),
            retention: plan.retention,
        });
        let prepare = prepare_removal(storage, name, &mut others);
        if let Err(e) = cancellable(cancel, prepare).await {
            stopped = Some(e.during("delete").at("backup", name));
            break;
        }
        removing.push(async move { (name.clone(), remove(storage, name, !many).await) });
        while removing.len() >= REMOVE_PARALLELISM {
            removed.extend(removing.next().await);
        }
    }
    // Removals under way are finished, whatever stopped the run.
    while let Some(one) = removing.next().await {
        removed.push(one);
    }
    let mut stats = DeleteStats::default();
    removed.sort_by_key(|(n, _)| order.iter().position(|o| o == n));
    for (name, objects) in removed {
        match objects {
            Ok(n) => {
                stats.objects += n;
                stats.deleted.push(name);
            }
            Err(e) => {
                stopped.get_or_insert(e.during("delete").at("backup", &name));
            }
        }
    }
    match stopped {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

/// Whether `name` is kept because a restore, verify or replicate uses it
/// (chosen by age or retention); an error when it was named and is in use.
/// `leased`: it has lease objects ([`lease::leased`]); else it is not read.
async fn in_use(
    storage: &Storage,
    plan: &DeletePlan,
    name: &str,
    leased: bool,
    events: &dyn EventSink,
) -> Result<bool> {
    if !leased {
        return Ok(false);
    }
    let users = lease::users(storage, name).await?;
    if users.is_empty() {
        return Ok(false);
    }
    let who = lease::describe(&users);
    if plan.force {
        events.warn(format!(
            "deleting backup `{name}` while {who} uses it (--force): that will fail, reporting the backup deleted while in use"
        ));
        Ok(false)
    } else if plan.keep_in_use {
        events.warn(format!(
            "kept backup `{name}`: {who} uses it; it goes at the next run after that ends"
        ));
        Ok(true)
    } else {
        Err(Error::conflict(format!(
            "backup `{name}` is in use by {who} — wait until that ends, or delete it anyway with --force"
        ))
        .at("backup", name))
    }
}

/// How long a listing of the recorded references serves a delete run: a
/// backup completed meanwhile is seen within this.
const REFS_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Backups whose files are removed at once (each its record of
/// references, its completion marks, a listing and a batch delete).
const REMOVE_PARALLELISM: usize = 16;

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
    prepare_removal(storage, name, others).await?;
    remove(storage, name, true).await
}

/// Everything before `name`'s files go: it must exist (listed when the run
/// began, or found now), and the files other backups share from it are
/// moved. From here on the run knows it as gone.
async fn prepare_removal(storage: &Storage, name: &str, others: &mut Manifests) -> Result<()> {
    if !others.names.contains(name) && !storage.has_objects(&layout::backup_dir(name)).await? {
        return Err(catalog::not_found(storage, name));
    }
    rehome_shared_files(storage, name, others).await?;
    others.names.remove(name);
    others.read.remove(name);
    Ok(())
}

/// What a delete knows of the other backups: their names, the recorded
/// references, and the manifests it had to read (`None`: it has none yet),
/// kept up to date as a delete rewrites and removes them. A damaged one is
/// kept as its error: it blocks the delete of any backup it may refer to,
/// not of itself.
#[derive(Default)]
struct Manifests {
    names: BTreeSet<String>,
    refs: Refs,
    /// The backups this run deletes: what is read of them is not recorded.
    going: BTreeSet<String>,
    read: BTreeMap<String, std::result::Result<Option<Manifest>, String>>,
}

impl Manifests {
    /// Lists the backups and the recorded references (two listings),
    /// forgets the manifests of backups gone, and removes the records of
    /// backups that are no more.
    async fn refresh(&mut self, storage: &Storage) -> Result<()> {
        self.names = catalog::names(storage).await?.into_iter().collect();
        let names = &self.names;
        self.read.retain(|n, _| names.contains(n));
        self.refs = refs::load(storage).await?;
        // Records of backups deleted by other means (the Go tool, by hand).
        let stale: Vec<String> = self
            .refs
            .backups()
            .filter(|b| !names.contains(*b))
            .map(String::from)
            .collect();
        futures::stream::iter(stale.into_iter().map(|b| async move {
            if let Err(e) = refs::forget(storage, &b).await {
                tracing::debug!("removing the stale record of references of {b} failed: {e}");
            }
        }))
        .buffer_unordered(REHOME_PARALLELISM)
        .collect::<Vec<()>>()
        .await;
        Ok(())
    }

    /// Backups whose references are not recorded (the Go tool's, older
    /// builds', replicated ones): any of them may refer to anything.
    fn unknown(&self) -> Vec<String> {
        let refs = &self.refs;
        self.names
            .iter()
            .filter(|n| !refs.is_recorded(n))
            .cloned()
            .collect()
    }

    async fn read_unknown(&mut self, storage: &Storage) -> Result<()> {
        let unknown = self.unknown();
        self.read_manifests(storage, unknown).await
    }

    /// Reads the manifests of `names` not read yet, and records the
    /// references of those that have one and were not recorded, so that the
    /// next delete need not read them.
    async fn read_manifests(&mut self, storage: &Storage, names: Vec<String>) -> Result<()> {
        let new = names.into_iter().filter(|n| !self.read.contains_key(n));
        let found = futures::stream::iter(new.map(|n| async move {
            let m = catalog::manifest(storage, &n).await;
            (n, m)
        }))
        .buffer_unordered(REHOME_PARALLELISM)
        .collect::<Vec<_>>()
        .await;
        let mut learnt = Vec::new();
        for (name, m) in found {
            let m = match m {
                Ok(m) => Ok(m),
                Err(e) if e.kind() == ErrorKind::Corrupt => Err(e.message().to_string()),
                Err(e) => return Err(e),
            };
            if let Ok(Some(m)) = &m {
                if !self.refs.is_recorded(&name) && !self.going.contains(&name) {
                    learnt.push((name.clone(), m.clone()));
                }
            }
            self.read.insert(name, m);
        }
        futures::stream::iter(learnt.into_iter().map(|(name, m)| async move {
            refs::learn(storage, &name, m.referenced_backups()).await
        }))
        .buffer_unordered(REHOME_PARALLELISM)
        .collect::<Vec<()>>()
        .await;
        Ok(())
    }

    /// The backups a backup keeps files in, as known so far.
    fn holders_of(&self, name: &str) -> BTreeSet<String> {
        match self.read.get(name) {
            Some(Ok(Some(m))) => m
                .referenced_backups()
                .into_iter()
                .map(String::from)
                .collect(),
            _ => self.refs.holders(name).cloned().unwrap_or_default(),
        }
    }

    /// `victims` reordered so that a backup goes after those among them
    /// that keep files in it (otherwise in their given order).
    fn dependents_first(&self, victims: Vec<String>) -> Vec<String> {
        let holders: Vec<BTreeSet<String>> = victims.iter().map(|v| self.holders_of(v)).collect();
        // For each victim, how many other remaining victims keep files in it.
        let mut kept_in: BTreeMap<&str, usize> = victims.iter().map(|v| (v.as_str(), 0)).collect();
        for (d, hs) in victims.iter().zip(&holders) {
            for h in hs.iter().filter(|h| *h != d) {
                if let Some(n) = kept_in.get_mut(h.as_str()) {
                    *n += 1;
                }
            }
        }
        let mut left: Vec<usize> = (0..victims.len()).collect();
        let mut out = Vec::with_capacity(victims.len());
        while !left.is_empty() {
            // The first victim no other remaining victim keeps files in;
            // with a cycle (never made by this tool), the first one.
            let at = left
                .iter()
                .position(|&i| kept_in[victims[i].as_str()] == 0)
                .unwrap_or(0);
            let i = left.remove(at);
            for h in holders[i].iter().filter(|h| **h != victims[i]) {
                if let Some(n) = kept_in.get_mut(h.as_str()) {
                    *n = n.saturating_sub(1);
                }
            }
            out.push(victims[i].clone());
        }
        out
    }

    /// The manifests that name `victim` as holding some of their files;
    /// an error when one that may is damaged.
    async fn referring_to(
        &mut self,
        storage: &Storage,
        victim: &str,
    ) -> Result<Vec<(String, Manifest)>> {
        let mut candidates = self.unknown();
        // A backup completed since the run listed the names counts too; a
        // victim already prepared does not.
        candidates.extend(
            self.refs
                .dependents_of(victim)
                .filter(|d| self.names.contains(*d) || !self.going.contains(*d))
                .map(String::from),
        );
        candidates.sort();
        candidates.dedup();
        candidates.retain(|n| n != victim);
        self.read_manifests(storage, candidates.clone()).await?;
        let mut out = Vec::new();
        for name in candidates {
            match &self.read[&name] {
                Err(damaged) => return Err(Error::corrupt(damaged.clone())),
                Ok(Some(m)) if m.referenced_backups().contains(victim) => {
                    out.push((name, m.clone()))
                }
                Ok(_) => {}
            }
        }
        Ok(out)
    }
}

/// Removes a prepared backup: its record of references (a stale one left
/// by an interruption only costs a later delete one read), then its files,
/// completion marks first. `indexed`: it is still in the catalog index.
async fn remove(storage: &Storage, name: &str, indexed: bool) -> Result<u64> {
    refs::forget(storage, name).await?;
    if indexed {
        catalog::remove(storage, name).await
    } else {
        catalog::remove_unindexed(storage, name).await
    }
}

/// Manifests read, and shared files copied, at once.
const REHOME_PARALLELISM: usize = 16;

/// Before `name` is deleted, moves the files other (incremental) backups
/// share from it into the oldest of them, and points every reference
/// there. Copies first, manifests second: an interruption at any point
/// leaves every backup readable.
async fn rehome_shared_files(storage: &Storage, name: &str, others: &mut Manifests) -> Result<()> {
    let mut referrers = others.referring_to(storage, name).await?;
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
    // The heir is recorded as a holder before any manifest names it.
    for (backup, _) in referrers.iter().filter(|(b, _)| *b != heir) {
        refs::add_holder(storage, backup, &heir).await?;
    }
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
        refs::drop_holder(storage, &backup, name).await;
        others.read.insert(backup, Ok(Some(m)));
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
        use crate::ops::verify::{verify, VerifyOptions};
        let kit = crate::testkit::Kit::new();
        kit.milvus.add_collection("docs", &[5, 7], 1, 100).await;
        let none = CancellationToken::new();
        kit.create_backup("base").await;
        for (name, base) in [("inc1", "base"), ("inc2", "inc1")] {
            kit.create_incremental(name, base).await;
        }
        let storage = &kit.ctx.backup_storage;
        // inc1 keeps files in base, so it goes first; the manifests are
        // read once: the second delete must see what the first one
        // rewrote (inc2 became the heir of inc1's files).
        let both = options(DeleteTarget::Names(vec!["base".into(), "inc1".into()]));
        let stats = delete(storage, &both, &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!(stats.deleted, ["inc1", "base"]);
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

    /// base, and inc keeping files in it.
    async fn base_and_incremental() -> crate::testkit::Kit {
        let kit = crate::testkit::Kit::new();
        kit.milvus.add_collection("docs", &[5, 7], 1, 100).await;
        kit.create_backup("base").await;
        kit.create_incremental("inc", "base").await;
        kit
    }

    async fn deep_problems(kit: &crate::testkit::Kit, name: &str) -> Vec<String> {
        use crate::ops::verify::{verify, VerifyOptions};
        let opts = VerifyOptions {
            backups: vec![name.into()],
            deep: true,
            restore_test: false,
            tuning: None,
        };
        let events = crate::events::Collect::default();
        let reports = verify(&kit.ctx, &opts, &events, &CancellationToken::new())
            .await
            .unwrap();
        reports[0]
            .problems
            .iter()
            .map(|p| format!("{p:?}"))
            .collect()
    }

    #[tokio::test]
    async fn only_the_manifests_of_backups_recorded_as_referring_are_read() {
        let kit = base_and_incremental().await;
        let storage = &kit.ctx.backup_storage;
        kit.create_backup("other").await;
        let recorded = refs::load(storage).await.unwrap();
        assert_eq!(recorded.dependents_of("base").collect::<Vec<_>>(), ["inc"]);
        assert!(recorded.is_recorded("other"));
        // A damaged manifest of a backup recorded as sharing nothing is
        // never read, so it does not stop the delete of another.
        storage
            .write(
                &layout::backup_meta_file("other", layout::MANIFEST),
                b"{".to_vec(),
            )
            .await
            .unwrap();
        delete_backup(storage, "base").await.unwrap();
        assert!(deep_problems(&kit, "inc").await.is_empty());
        let recorded = refs::load(storage).await.unwrap();
        assert!(!recorded.is_recorded("base"));
        assert_eq!(
            recorded.holders("inc").map(|h| h.len()),
            Some(0),
            "{recorded:?}"
        );
    }

    #[tokio::test]
    async fn backups_without_records_are_read_and_recorded_for_the_next_delete() {
        let kit = base_and_incremental().await;
        let storage = &kit.ctx.backup_storage;
        // As an older build leaves them: no records at all.
        let at = crate::repo::catalog_index::location(storage).unwrap();
        at.delete_prefix(layout::REFS).await.unwrap();
        delete_backup(storage, "base").await.unwrap();
        assert!(
            deep_problems(&kit, "inc").await.is_empty(),
            "files moved into inc"
        );
        let recorded = refs::load(storage).await.unwrap();
        assert!(recorded.is_recorded("inc"), "learnt from its manifest");
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
