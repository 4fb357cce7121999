//! Restore staging folders in the target Milvus's storage
//! (`backup_staging/<backup>_<hex>/`): a restore that stages holds a lease
//! in its folder, rewritten every minute while it runs; a folder whose
//! lease has not been renewed for a while belongs to no running restore
//! (it was killed, or its machine died) and is swept — by every restore
//! before it stages, and by `milvus-backup gc --staging`.

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use crate::error::Result;
use crate::model::layout;
use crate::storage::Storage;

/// The lease object inside a staging folder: the Unix time it was renewed,
/// then the host and process id of its holder (see [`Holder`]).
const LEASE: &str = ".lease";
/// How often a running restore renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(60);
/// A lease older than this has no running restore behind it (ten missed
/// renewals).
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// A new staging folder for a restore of `backup`.
pub fn new_dir(backup: &str) -> String {
    new_dir_in(layout::STAGING_ROOT, backup)
}

/// A new folder for a restore of `backup` under `root`.
pub fn new_dir_in(root: &str, backup: &str) -> String {
    format!(
        "{root}{backup}_{}/",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Renews a staging folder's lease until dropped.
pub struct Lease(tokio::task::JoinHandle<()>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes `dir`'s lease now and renews it every minute until the returned
/// guard is dropped.
pub async fn hold(storage: &Storage, dir: &str) -> Result<Lease> {
    let key = layout::join(dir, LEASE);
    storage.write(&key, Holder::me().lease_text()).await?;
    let storage = storage.clone();
    Ok(Lease(tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            // A missed renewal is retried next minute; ten in a row make the
            // folder look abandoned.
            let _ = storage.write(&key, Holder::me().lease_text()).await;
        }
    })))
}

/// Whether the restore that held `dir`'s lease has gone: a lease of a
/// process of this host that no longer runs, or one not renewed for
/// `older_than`. A folder without a lease has no holder.
pub async fn abandoned(storage: &Storage, dir: &str, older_than: Duration) -> Result<bool> {
    match storage.read(&layout::join(dir, LEASE)).await {
        Ok(bytes) => {
            Ok(Holder::parse(&String::from_utf8_lossy(&bytes)).is_none_or(|h| h.gone(older_than)))
        }
        Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

pub(crate) fn now() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// Who holds a lease, and when it was last renewed. A lease on this host
/// names its process, so a killed holder is known at once instead of
/// after [`STALE_AFTER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Holder {
    /// Unix seconds.
    pub renewed: u64,
    pub host: String,
    pub pid: u32,
}

impl Holder {
    /// This process, now.
    pub fn me() -> Holder {
        Holder {
            renewed: now(),
            host: host_name(),
            pid: std::process::id(),
        }
    }

    /// `<renewed> <host> <pid>`, or a bare time (older leases).
    pub(crate) fn lease_text(&self) -> Vec<u8> {
        format!("{} {} {}", self.renewed, self.host, self.pid).into_bytes()
    }

    pub(crate) fn parse(text: &str) -> Option<Holder> {
        let mut parts = text.split_whitespace();
        let renewed = parts.next()?.parse().ok()?;
        Some(Holder {
            renewed,
            host: parts.next().unwrap_or_default().to_string(),
            pid: parts.next().and_then(|p| p.parse().ok()).unwrap_or(0),
        })
    }

    /// Whether the holder no longer works on what it holds. This process's
    /// own leases are gone unless `live` says a task of it still holds it.
    pub fn gone_unless(&self, older_than: Duration, live: impl FnOnce() -> bool) -> bool {
        if self.host == host_name() && self.pid != 0 {
            if self.pid == std::process::id() {
                return !live();
            }
            return !process_runs(self.pid);
        }
        now().saturating_sub(self.renewed) >= older_than.as_secs()
    }

    pub(crate) fn gone(&self, older_than: Duration) -> bool {
        // Staging folders of this process are held by running restores.
        self.gone_unless(older_than, || true)
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .unwrap_or_else(|| "unknown".into())
}

/// Whether process `pid` runs on this host (Linux `/proc`; elsewhere
/// assumed running, so only the lease's age decides).
fn process_runs(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    // A zombie has exited: its holder is gone.
    match std::fs::read_to_string(proc.join(pid.to_string()).join("stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A staging folder no running restore holds.
#[derive(Debug, Clone, Serialize)]
pub struct StaleDir {
    pub dir: String,
    pub objects: usize,
    pub bytes: u64,
    /// Seconds since its lease was renewed; `None` when it has no lease
    /// (left by a restore older than leases).
    pub idle_s: Option<u64>,
}

/// Marks a finished restore's folder as kept (`backup.keepTempFiles`):
/// restores leave it alone; only `gc --staging` removes it.
pub async fn keep(storage: &Storage, dir: &str) -> Result<()> {
    storage
        .write(&layout::join(dir, LEASE), KEPT.as_bytes().to_vec())
        .await
}

const KEPT: &str = "kept";

/// Removes everything of a restore's folder `dir` but its journal (the
/// lease too: nobody holds it any more), so `restore --resume` can
/// continue it; returns the objects removed.
pub async fn remove_staged(
    storage: &Storage,
    dir: &str,
) -> Result<Vec<crate::storage::ObjectInfo>> {
    let journal = layout::join(dir, layout::RESTORE_JOURNAL);
    let mut objects = storage.list(dir).await?;
    objects.retain(|o| o.key != journal);
    for o in &objects {
        storage.delete(&o.key).await?;
    }
    Ok(objects)
}

/// What sweeps remove.
#[derive(Debug, Clone, Copy)]
pub enum Sweep {
    /// Before a restore stages: abandoned folders, not kept ones.
    Abandoned,
    /// `gc --staging`: kept folders too.
    AlsoKept,
}

/// The staging folders whose lease is older than `older_than` (or that
/// have none), removed unless `dry_run`.
pub async fn sweep(
    storage: &Storage,
    older_than: Duration,
    which: Sweep,
    dry_run: bool,
) -> Result<Vec<StaleDir>> {
    let mut stale = Vec::new();
    let mut kept_journal = Vec::new();
    for name in storage.list_dirs(layout::STAGING_ROOT).await? {
        let dir = layout::staging_dir(&name);
        let lease = match storage.read(&layout::join(&dir, LEASE)).await {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).trim().to_string()),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if lease.as_deref() == Some(KEPT) && matches!(which, Sweep::Abandoned) {
            continue;
        }
        let renewed = lease.as_deref().and_then(Holder::parse).map(|h| h.renewed);
        let idle_s = renewed.map(|t| now().saturating_sub(t));
        if idle_s.is_some_and(|idle| idle < older_than.as_secs()) {
            continue;
        }
        let mut objects = storage.list(&dir).await?;
        if matches!(which, Sweep::Abandoned) {
            // An interrupted restore's journal stays for `restore --resume`
            // (gc --staging removes it); its staged files go.
            let journal = layout::join(&dir, layout::RESTORE_JOURNAL);
            if objects.iter().any(|o| o.key == journal) {
                let staged = if dry_run {
                    objects.retain(|o| o.key != journal);
                    objects
                } else {
                    remove_staged(storage, &dir).await?
                };
                if !staged.is_empty() {
                    stale.push(StaleDir {
                        objects: staged.len(),
                        bytes: staged.iter().map(|o| o.size).sum(),
                        dir: dir.clone(),
                        idle_s,
                    });
                    kept_journal.push(dir);
                }
                continue;
            }
        }
        stale.push(StaleDir {
            dir,
            objects: objects.len(),
            bytes: objects.iter().map(|o| o.size).sum(),
            idle_s,
        });
    }
    if !dry_run {
        let whole = stale.iter().filter(|s| !kept_journal.contains(&s.dir));
        let removed: Vec<Result<u64>> =
            futures::stream::iter(whole.map(|s| storage.delete_prefix(&s.dir)))
                .buffer_unordered(4)
                .collect()
                .await;
        removed.into_iter().collect::<Result<Vec<_>>>()?;
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Kit;

    #[tokio::test]
    async fn only_folders_without_a_fresh_lease_are_swept() {
        let kit = Kit::new();
        let storage = &kit.ctx.milvus_storage;
        let live = new_dir("b1");
        let old = new_dir("b1");
        let legacy = new_dir("b2");
        let _lease = hold(storage, &live).await.unwrap();
        for dir in [&live, &old, &legacy] {
            storage
                .write(&layout::join(dir, "1/insert_log/1/100/1"), vec![0; 10])
                .await
                .unwrap();
        }
        let an_hour_ago = (now() - 3600).to_string().into_bytes();
        storage
            .write(&layout::join(&old, LEASE), an_hour_ago)
            .await
            .unwrap();

        let planned = sweep(storage, STALE_AFTER, Sweep::Abandoned, true)
            .await
            .unwrap();
        let mut dirs: Vec<&str> = planned.iter().map(|s| s.dir.as_str()).collect();
        dirs.sort();
        let mut want = vec![old.as_str(), legacy.as_str()];
        want.sort();
        assert_eq!(dirs, want);
        assert_eq!(
            storage.list(&old).await.unwrap().len(),
            2,
            "a dry run removes nothing"
        );

        sweep(storage, STALE_AFTER, Sweep::Abandoned, false)
            .await
            .unwrap();
        assert!(storage.list(&old).await.unwrap().is_empty());
        assert!(storage.list(&legacy).await.unwrap().is_empty());
        assert_eq!(storage.list(&live).await.unwrap().len(), 2);

        // A kept folder stays until gc asks for it.
        let kept = new_dir("b3");
        storage
            .write(&layout::join(&kept, "x"), vec![1])
            .await
            .unwrap();
        keep(storage, &kept).await.unwrap();
        assert!(sweep(storage, STALE_AFTER, Sweep::Abandoned, false)
            .await
            .unwrap()
            .is_empty());
        let gone = sweep(storage, STALE_AFTER, Sweep::AlsoKept, false)
            .await
            .unwrap();
        assert_eq!(gone.len(), 1);
        assert!(storage.list(&kept).await.unwrap().is_empty());
    }
}
