//! Leases on backups in use: a restore, a verify or a replicate holds one
//! on its backup while it runs (an object under
//! [`layout::backup_lease_dir`], rewritten every minute, removed when the
//! operation ends); `delete`, retention and the scheduler read them to
//! refuse or skip a backup in use, naming who holds it. A lease of a
//! process of this host that no longer runs, or one not renewed for
//! [`staging::STALE_AFTER`], holds nothing.

use std::fmt;
use std::time::Duration;

use crate::error::{ErrorKind, Result};
use crate::model::layout;
use crate::repo::staging::{self, Holder};
use crate::storage::Storage;

const RENEW_EVERY: Duration = Duration::from_secs(60);

/// A lease held on a backup: renewed until dropped, then removed.
pub struct BackupLease {
    renew: tokio::task::JoinHandle<()>,
    storage: Storage,
    key: String,
}

impl Drop for BackupLease {
    fn drop(&mut self) {
        self.renew.abort();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (storage, key) = (self.storage.clone(), std::mem::take(&mut self.key));
            rt.spawn(async move {
                let _ = storage.delete(&key).await;
            });
        }
    }
}

/// Removes `lease`, if one is held, before going on: a drop's background
/// removal may never run when the runtime ends with the operation (a
/// server task's, the CLI's).
pub async fn release(lease: Option<BackupLease>) {
    if let Some(lease) = lease {
        lease.release().await;
    }
}

impl BackupLease {
    /// Removes the lease now (a drop removes it in the background).
    pub async fn release(mut self) {
        self.renew.abort();
        let key = std::mem::take(&mut self.key);
        let _ = self.storage.delete(&key).await;
    }
}

/// Who uses a backup: the holder of a live lease and what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub holder: Holder,
    /// `restore`, `verify`, `replicate`.
    pub operation: String,
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ago = staging::now().saturating_sub(self.holder.renewed);
        write!(
            f,
            "a {} (process {} on {}, lease renewed {ago} s ago)",
            self.operation, self.holder.pid, self.holder.host
        )
    }
}

/// The users of a backup, joined for a message.
pub fn describe(users: &[User]) -> String {
    users
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Takes a lease on `backup` for `operation` and renews it every minute
/// until the guard is dropped.
pub async fn hold(storage: &Storage, backup: &str, operation: &str) -> Result<BackupLease> {
    let key = format!(
        "{}{}",
        layout::backup_lease_dir(backup),
        uuid::Uuid::new_v4().simple()
    );
    let operation = operation.to_string();
    let text = move |h: Holder| {
        let mut t = h.lease_text();
        t.extend_from_slice(format!(" {operation}").as_bytes());
        t
    };
    storage.write(&key, text(Holder::me())).await?;
    let (s, k) = (storage.clone(), key.clone());
    let renew = tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let _ = s.write(&k, text(Holder::me())).await;
        }
    });
    Ok(BackupLease {
        renew,
        storage: storage.clone(),
        key,
    })
}

/// [`hold`] for an operation that works without it (read-only backup
/// storage): a lease that cannot be written is a warning, not a failure.
pub async fn hold_or_warn(
    storage: &Storage,
    backup: &str,
    operation: &str,
    events: &dyn crate::events::EventSink,
) -> Option<BackupLease> {
    use crate::events::Emit;
    match hold(storage, backup, operation).await {
        Ok(l) => Some(l),
        Err(e) => {
            events.warn(format!(
                "could not mark backup `{backup}` in use ({e}): a delete meanwhile is not held off"
            ));
            None
        }
    }
}

/// The live leases on `backup` (a process of this host that still runs, or
/// a lease renewed within [`staging::STALE_AFTER`]).
pub async fn users(storage: &Storage, backup: &str) -> Result<Vec<User>> {
    let dir = layout::backup_lease_dir(backup);
    let keys: Vec<String> = match storage.list(&dir).await {
        Ok(k) => k.into_iter().map(|o| o.key).collect(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for key in keys {
        let text = match storage.read(&key).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            // Released meanwhile.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let Some(holder) = Holder::parse(&text) else {
            continue;
        };
        if holder.gone(staging::STALE_AFTER) {
            continue;
        }
        let operation = text
            .split_whitespace()
            .nth(3)
            .unwrap_or("restore")
            .to_string();
        out.push(User { holder, operation });
    }
    Ok(out)
}

/// The backups that have lease objects, live or not: one listing, so that
/// a delete of many reads the leases of only these ([`users`]).
pub async fn leased(storage: &Storage) -> Result<std::collections::BTreeSet<String>> {
    match storage.list_dirs(layout::LEASES).await {
        Ok(dirs) => Ok(dirs.into_iter().collect()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(e),
    }
}

/// Whether `backup` is gone as a whole (no meta left): a file missing then
/// was deleted while in use, not lost from a backup that is still there.
pub async fn deleted(storage: &Storage, backup: &str) -> bool {
    matches!(
        storage
            .has_objects(&format!("{}meta/", layout::backup_dir(backup)))
            .await,
        Ok(false)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Side, StorageSpec};

    #[tokio::test]
    async fn a_held_lease_names_its_holder_until_released() {
        let storage = Storage::open(StorageSpec::memory(Side::Backup, "leases")).unwrap();
        assert!(users(&storage, "b1").await.unwrap().is_empty());
        let lease = hold(&storage, "b1", "restore").await.unwrap();
        let u = users(&storage, "b1").await.unwrap();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].operation, "restore");
        assert_eq!(u[0].holder.pid, std::process::id());
        assert!(
            describe(&u).starts_with(&format!("a restore (process {}", std::process::id())),
            "{}",
            describe(&u)
        );
        assert!(users(&storage, "b2").await.unwrap().is_empty());
        assert_eq!(leased(&storage).await.unwrap(), ["b1".to_string()].into());
        // The lease folder is no backup.
        assert!(!crate::repo::catalog::names(&storage)
            .await
            .unwrap()
            .iter()
            .any(|n| n.contains("lease")));
        lease.release().await;
        assert!(users(&storage, "b1").await.unwrap().is_empty());
    }
}
