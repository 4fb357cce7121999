//! The catalog index: one object holding what `list` shows of each complete
//! backup (its row and its last verification's verdict), so that `list` of
//! a thousand backups is one listing and one read instead of a thousand.
//!
//! It lives beside the backup root, never inside it
//! ([`layout::catalog_index_root`]): the Go tool takes every entry of the
//! root for a backup. Local storage (cheap to read) and a bucket-level
//! root (no outside) have none, and list as before.
//!
//! The index is only a cache, and never the authority on what exists:
//! - `list` lists the backup folders (one listing) and trusts the index
//!   only for names that listing shows; a backup deleted by any means
//!   vanishes from `list` even while the index still has it.
//! - Every listed name the index lacks (made by the Go tool, by an older
//!   build, or by a writer that crashed before updating the index) is read
//!   the old way and added, when complete. Incomplete and damaged backups
//!   are never indexed: they are read on every `list`.
//! - Rows come only from unsealed meta files (`summary.json` is never
//!   sealed), so the index tells nothing an encrypted backup's own
//!   `summary.json` does not.
//! - Writers: a completed create or replicate adds its backup, `delete`
//!   removes it once its completion marks are gone, a recorded
//!   verification sets its verdict, `verify` forgets a backup it found
//!   damaged, and [`crate::repo::catalog::list_fresh`] rebuilds the whole index.
//!   Every update is best effort: a failed index write (a read-only
//!   credential, a full quota) never fails the operation, and the next
//!   `list` repairs what is missing.
//! - Concurrent writers update by read-modify-write, conditional on the
//!   ETag read (S3's `If-Match` / `If-None-Match`), retried a few times;
//!   where the service cannot write conditionally, or the retries run out,
//!   an update can be lost. A lost row only costs speed (the next `list`
//!   reads that backup and adds it again); a lost removal is harmless once
//!   the folder is gone (the listing decides), and a lost verdict shows the
//!   previous one until the next verification.
//!
//! What the listing cannot prove: that a listed backup's meta files are
//! unchanged since it was indexed. A backup that another tool deletes and
//! recreates under the same name, or whose `summary.json` is edited or
//! damaged in place, keeps its indexed row (and a verdict recorded by an
//! older build, which knows no index, is not seen) until `verify` (which
//! reads every backup and rebuilds the index) or a delete. Checking more
//! per backup (a HEAD of its `summary.json`) would cost what the index
//! saves: one request per backup.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::layout;
use crate::model::listing::BackupListing;
use crate::repo::verification::{self, VerificationRecord};
use crate::storage::Storage;

/// Version of the index's format; another version is ignored (rebuilt).
const FORMAT_VERSION: u32 = 1;

/// Conditional writes tried before an update is given up (and left to the
/// next `list` to repair).
const ATTEMPTS: u32 = 10;

/// What the index keeps of one complete backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub row: BackupListing,
    /// Its `meta/verification.json` when indexed (none: never verified).
    #[serde(default)]
    pub verification: Option<VerificationRecord>,
}

/// The index's stored form.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    format_version: u32,
    backups: BTreeMap<String, Entry>,
}

/// The storage holding `storage`'s index (and its [`crate::repo::refs`]),
/// beside the backup root; `None` where there is no such place.
pub(crate) fn location(storage: &Storage) -> Option<Storage> {
    let root = layout::catalog_index_root(&storage.spec().root)?;
    storage.rerooted(&root)
}

fn parse(bytes: &[u8]) -> Option<BTreeMap<String, Entry>> {
    let index: Index = serde_json::from_slice(bytes).ok()?;
    (index.format_version == FORMAT_VERSION).then_some(index.backups)
}

/// The indexed entries by name; `None` when the storage has no index, or
/// it cannot be read or parsed (then `list` reads every backup, and
/// rewrites it).
pub async fn load(storage: &Storage) -> Option<BTreeMap<String, Entry>> {
    let at = location(storage)?;
    match at.read(layout::CATALOG_INDEX).await {
        Ok(bytes) => {
            let parsed = parse(&bytes);
            if parsed.is_none() {
                tracing::debug!(
                    "the catalog index of {} does not parse: rebuilding it",
                    storage.spec().describe()
                );
            }
            parsed
        }
        Err(e) => {
            if e.kind() != crate::ErrorKind::NotFound {
                tracing::debug!("reading the catalog index failed: {e}");
            }
            None
        }
    }
}

/// Applies `change` to the stored index (an unreadable one counts as
/// empty) and writes it back if `change` says it changed, conditional on
/// the version read; best effort.
async fn update(storage: &Storage, mut change: impl FnMut(&mut BTreeMap<String, Entry>) -> bool) {
    let Some(at) = location(storage) else {
        return;
    };
    for attempt in 0..ATTEMPTS {
        // `read`: `None` when there is no index; `Some(None)` when the
        // service gives no ETag to write conditionally on.
        let (mut backups, read) = match at.read_versioned(layout::CATALOG_INDEX).await {
            Ok(Some((bytes, etag))) => (parse(&bytes).unwrap_or_default(), Some(etag)),
            Ok(None) => (BTreeMap::new(), None),
            Err(e) => {
                tracing::debug!("reading the catalog index failed: {e}");
                return;
            }
        };
        if !change(&mut backups) {
            return;
        }
        if backups.is_empty() {
            // No backups, no index: a storage emptied by `delete` keeps
            // nothing of ours beside its root (a backup added meanwhile is
            // only read again by the next `list`).
            if let Err(e) = at.delete(layout::CATALOG_INDEX).await {
                tracing::debug!("deleting the empty catalog index failed: {e}");
            }
            return;
        }
        let bytes = match serde_json::to_vec(&Index {
            format_version: FORMAT_VERSION,
            backups,
        }) {
            Ok(b) => b,
            Err(_) => return,
        };
        let written = match read {
            Some(None) => at.write(layout::CATALOG_INDEX, bytes).await.map(|_| true),
            Some(Some(etag)) => {
                at.write_if_unchanged(layout::CATALOG_INDEX, bytes, Some(&etag))
                    .await
            }
            None => {
                at.write_if_unchanged(layout::CATALOG_INDEX, bytes, None)
                    .await
            }
        };
        match written {
            Ok(true) => return,
            // Another writer came first: read its version and apply again.
            Ok(false) => {
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 50);
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt + 1) + jitter))
                    .await;
            }
            Err(e) => {
                tracing::debug!("writing the catalog index failed: {e}");
                return;
            }
        }
    }
}

/// Puts `new` in place of the entry of its name, keeping the newer of
/// the two verdicts when both are of the same backup (same id).
fn put(backups: &mut BTreeMap<String, Entry>, mut new: Entry) -> bool {
    if let Some(old) = backups.get(&new.row.name) {
        if old.row.id == new.row.id && newer(&old.verification, &new.verification) {
            new.verification = old.verification.clone();
        }
        if *old == new {
            return false;
        }
    }
    backups.insert(new.row.name.clone(), new);
    true
}

fn newer(a: &Option<VerificationRecord>, b: &Option<VerificationRecord>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.last_verified_at > b.last_verified_at,
        (Some(_), None) => true,
        _ => false,
    }
}

/// `list` read these complete backups the index lacked, and listed `names`
/// (sorted): adds them, and drops entries of backups no longer listed.
pub(crate) async fn repair(storage: &Storage, found: Vec<Entry>, names: &[String]) {
    update(storage, |backups| {
        let before = backups.len();
        backups.retain(|n, _| names.binary_search(n).is_ok());
        let mut changed = backups.len() != before;
        for e in &found {
            // An entry written meanwhile (a create that finished) is as new.
            if !backups.contains_key(&e.row.name) {
                changed |= put(backups, e.clone());
            }
        }
        // A missing or unreadable index is rewritten (removed when empty).
        changed || before == 0
    })
    .await;
}

/// `list_fresh` read every backup: the index becomes what it read.
pub(crate) async fn rebuild(storage: &Storage, entries: Vec<Entry>) {
    let fresh: BTreeSet<String> = entries.iter().map(|e| e.row.name.clone()).collect();
    update(storage, |backups| {
        let before = backups.len();
        backups.retain(|n, _| fresh.contains(n));
        let mut changed = backups.len() != before;
        for e in &entries {
            changed |= put(backups, e.clone());
        }
        changed || before == 0
    })
    .await;
}

/// Deletes the index (for whoever clears a whole backup root by prefix,
/// which leaves the index beside it): best effort.
pub async fn discard(storage: &Storage) {
    if let Some(at) = location(storage) {
        let _ = at.delete(layout::CATALOG_INDEX).await;
    }
}

/// A backup was completed in `storage` (created, or replicated there).
pub async fn added(storage: &Storage, row: BackupListing) {
    if location(storage).is_none() {
        return;
    }
    let Ok(record) = verification::read(storage, &row.name).await else {
        return;
    };
    let entry = Entry {
        row,
        verification: record,
    };
    update(storage, |backups| put(backups, entry.clone())).await;
}

/// A backup is being removed (its completion marks are gone).
pub async fn remove(storage: &Storage, name: &str) {
    update(storage, |backups| backups.remove(name).is_some()).await;
}

/// Backups about to be removed, in one update (a delete of many).
pub async fn remove_many(storage: &Storage, names: &[String]) {
    update(storage, |backups| {
        let before = backups.len();
        for n in names {
            backups.remove(n);
        }
        backups.len() != before
    })
    .await;
}

/// `verify` found the backup damaged: `list` reads it again, and shows
/// what it finds.
pub async fn forget(storage: &Storage, name: &str) {
    remove(storage, name).await;
}

/// A verification of the backup was recorded: its verdict changes. A
/// backup the index lacks is added with the row `fresh` gives (a future,
/// awaited only then; `None`: not a complete backup).
pub async fn verified(
    storage: &Storage,
    name: &str,
    record: &VerificationRecord,
    fresh: impl std::future::Future<Output = Option<BackupListing>>,
) {
    if location(storage).is_none() {
        return;
    }
    let mut fresh_row: Option<BackupListing> = None;
    if !load(storage).await.is_some_and(|b| b.contains_key(name)) {
        match fresh.await {
            Some(r) => fresh_row = Some(r),
            None => return,
        }
    }
    update(storage, |backups| {
        let row = match (backups.get(name), &fresh_row) {
            (Some(e), _) => e.row.clone(),
            (None, Some(r)) => r.clone(),
            (None, None) => return false,
        };
        put(
            backups,
            Entry {
                row,
                verification: Some(record.clone()),
            },
        )
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::catalog::{self, BackupState};
    use crate::testkit::Kit;

    async fn kit_with(names: &[&str]) -> Kit {
        let kit = Kit::new();
        kit.milvus.add_collection("docs", &[10, 20], 1, 300).await;
        for n in names {
            kit.create_backup(n).await;
        }
        kit
    }

    fn index_storage(kit: &Kit) -> Storage {
        location(&kit.ctx.backup_storage).unwrap()
    }

    async fn stored(kit: &Kit) -> Option<BTreeMap<String, Entry>> {
        load(&kit.ctx.backup_storage).await
    }

    fn names(rows: &[BackupListing]) -> Vec<&str> {
        let mut n: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        n.sort();
        n
    }

    #[tokio::test]
    async fn a_create_indexes_its_backup_outside_the_backup_root() {
        let kit = kit_with(&["b1"]).await;
        let index = stored(&kit).await.expect("create wrote the index");
        assert_eq!(index["b1"].row.state, BackupState::Complete);
        assert_eq!(index["b1"].row.entities, 30);
        // Beside the root, where the Go tool never looks for backups.
        let at = index_storage(&kit);
        assert_eq!(at.spec().root, ".milvus-backup/backup");
        let in_root = kit.ctx.backup_storage.list("").await.unwrap();
        assert!(
            in_root.iter().all(|o| o.key.starts_with("b1/")),
            "{in_root:?}"
        );
        assert_eq!(
            catalog::names(&kit.ctx.backup_storage).await.unwrap(),
            ["b1"]
        );
    }

    #[tokio::test]
    async fn list_takes_indexed_rows_from_the_index() {
        let kit = kit_with(&["b1", "b2"]).await;
        // Mark b1's indexed row so that a row read from the index shows.
        let mut index = stored(&kit).await.unwrap();
        index.get_mut("b1").unwrap().row.entities = 4242;
        let bytes = serde_json::to_vec(&Index {
            format_version: FORMAT_VERSION,
            backups: index,
        })
        .unwrap();
        index_storage(&kit)
            .write(layout::CATALOG_INDEX, bytes)
            .await
            .unwrap();
        let rows = catalog::list(&kit.ctx.backup_storage).await.unwrap();
        let b1 = rows.iter().find(|r| r.name == "b1").unwrap();
        assert_eq!(b1.entities, 4242);
        // Reading afresh shows the backup's own summary, and rebuilds.
        let fresh = catalog::list_fresh(&kit.ctx.backup_storage).await.unwrap();
        assert_eq!(fresh.iter().find(|r| r.name == "b1").unwrap().entities, 30);
        assert_eq!(stored(&kit).await.unwrap()["b1"].row.entities, 30);
    }

    #[tokio::test]
    async fn a_backup_the_index_lacks_is_read_and_added() {
        let kit = kit_with(&["b1"]).await;
        let s = &kit.ctx.backup_storage;
        // b1's completion mark, written into another backup's folder.
        let complete = |name: &'static str| async move {
            let full = s
                .read(&layout::backup_meta_file("b1", layout::FULL_META))
                .await
                .unwrap();
            s.write(&layout::backup_meta_file(name, layout::FULL_META), full)
                .await
                .unwrap();
        };
        // As the Go tool makes one: the Go tool's meta files, no summary, no index entry.
        complete("go1").await;
        // And one still being written: listed, never indexed.
        s.write(
            &layout::backup_meta_file("wip", layout::BACKUP_META),
            b"{}".to_vec(),
        )
        .await
        .unwrap();
        assert!(!stored(&kit).await.unwrap().contains_key("go1"));
        let rows = catalog::list(s).await.unwrap();
        assert_eq!(names(&rows), ["b1", "go1", "wip"]);
        let go1 = rows.iter().find(|r| r.name == "go1").unwrap();
        assert_eq!((go1.state, go1.entities), (BackupState::Complete, 30));
        let index = stored(&kit).await.unwrap();
        assert_eq!(index["go1"].row, *go1);
        assert!(!index.contains_key("wip"));
        // Its completion is seen: the next list reads it again.
        complete("wip").await;
        let rows = catalog::list(s).await.unwrap();
        let wip = rows.iter().find(|r| r.name == "wip").unwrap();
        assert_eq!(wip.state, BackupState::Complete);
        assert!(stored(&kit).await.unwrap().contains_key("wip"));
    }

    #[tokio::test]
    async fn a_backup_deleted_behind_the_index_vanishes_from_list() {
        let kit = kit_with(&["b1", "b2"]).await;
        let s = &kit.ctx.backup_storage;
        // Deleted as the Go tool does: its folder goes, the index is not told.
        s.delete_prefix(&layout::backup_dir("b2")).await.unwrap();
        assert!(stored(&kit).await.unwrap().contains_key("b2"));
        let rows = catalog::list(s).await.unwrap();
        assert_eq!(names(&rows), ["b1"]);
        // ... and the index drops it.
        assert!(!stored(&kit).await.unwrap().contains_key("b2"));
        // Our delete takes it out of the index itself; the last one leaves
        // no index behind.
        catalog::remove(s, "b1").await.unwrap();
        assert!(stored(&kit).await.is_none());
        // (What is left there is the record of references, which
        // `delete` removes with its backup.)
        assert!(index_storage(&kit)
            .list("")
            .await
            .unwrap()
            .iter()
            .all(|o| o.key.starts_with(layout::REFS)));
        assert!(catalog::list(s).await.unwrap().is_empty());
        assert!(stored(&kit).await.is_none());
    }

    #[tokio::test]
    async fn a_corrupt_or_missing_index_is_ignored_and_rebuilt() {
        let kit = kit_with(&["b1", "b2"]).await;
        let want = catalog::list_fresh(&kit.ctx.backup_storage).await.unwrap();
        let at = index_storage(&kit);
        for damage in [
            Some(b"{\"format_version\": 1, \"backups\": {\"b1".to_vec()),
            None,
        ] {
            match damage {
                Some(bytes) => at.write(layout::CATALOG_INDEX, bytes).await.unwrap(),
                None => at.delete(layout::CATALOG_INDEX).await.unwrap(),
            }
            assert!(stored(&kit).await.is_none());
            let rows = catalog::list(&kit.ctx.backup_storage).await.unwrap();
            assert_eq!(rows, want);
            let index = stored(&kit).await.expect("list rewrote the index");
            assert_eq!(index.len(), 2);
            assert_eq!(
                index["b2"].row,
                *want.iter().find(|r| r.name == "b2").unwrap()
            );
        }
    }

    #[tokio::test]
    async fn a_recorded_verification_shows_in_list_from_the_index() {
        let kit = kit_with(&["b1"]).await;
        let s = &kit.ctx.backup_storage;
        let record = VerificationRecord {
            last_verified_at: 1_700_000_000_000,
            verified_ok: true,
            ..Default::default()
        };
        crate::repo::catalog::record_verification(s, "b1", &record)
            .await
            .unwrap();
        assert_eq!(
            stored(&kit).await.unwrap()["b1"].verification,
            Some(record.clone())
        );
        let rows = catalog::list_with_verdicts(s).await.unwrap();
        assert_eq!(rows[0].1, Some(record.clone()));
        // An older verdict (a writer that read before) never replaces a newer one.
        let mut index = stored(&kit).await.unwrap();
        let mut older = index["b1"].clone();
        older.verification = Some(VerificationRecord {
            last_verified_at: 1,
            ..Default::default()
        });
        assert!(!put(&mut index, older));
        assert_eq!(index["b1"].verification, Some(record));
    }

    #[tokio::test]
    async fn a_storage_without_a_root_lists_without_an_index() {
        let kit = Kit::new();
        kit.milvus.add_collection("docs", &[10], 1, 100).await;
        let bare = crate::storage::Storage::open(crate::storage::StorageSpec::memory(
            crate::storage::Side::Backup,
            "bare",
        ))
        .unwrap();
        assert!(location(&bare).is_none());
        assert!(load(&bare).await.is_none());
        repair(&bare, Vec::new(), &[]).await;
        assert!(catalog::list(&bare).await.unwrap().is_empty());
        assert!(bare.list("").await.unwrap().is_empty());
    }
}
