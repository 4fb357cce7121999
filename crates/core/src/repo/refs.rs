//! References between backups: which backups keep files in which other
//! backup's folder (an incremental shares its base's files; after a base is
//! deleted, they live in the oldest incremental). `delete` must move such
//! files before their holder goes, so it needs every backup that refers to
//! its victim. Reading every manifest for that costs one GET per backup;
//! these records answer it with one listing.
//!
//! For each backup whose references are recorded there are empty objects
//! [`layout::REFS`]`<backup>/<holder>`, one per holder, and then
//! `<backup>/.recorded` (no backup name starts with a dot), beside the
//! backup root with the catalog index (never inside it, where the Go tool
//! takes every entry for a backup). A storage with no such place (local
//! folders, a bucket-level root) records nothing, and a delete reads every
//! manifest there. The rules that keep the records safe to trust:
//! - A backup without `.recorded` (made by the Go tool, by an older build,
//!   replicated, or one whose record failed) is not known: a delete reads
//!   its manifest, and records what it read for the next one.
//! - A holder is recorded before any manifest names it, and removed only
//!   after none does: a record may name a holder too many (it costs one
//!   manifest read), never one too few.
//! - `.recorded` is written last and removed first, so a half-written or
//!   half-removed record is an unknown backup, read the slow way.
//!
//! Writes are best effort where a missing record only costs speed, and
//! errors where it could cost files (a delete that repoints references).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::model::layout;
use crate::repo::catalog_index::location;
use crate::storage::Storage;

const RECORDED: &str = ".recorded";

fn dir(backup: &str) -> String {
    format!("{}{backup}/", layout::REFS)
}

fn marker(backup: &str, holder: &str) -> String {
    format!("{}{holder}", dir(backup))
}

/// The recorded references of a backup storage, from one listing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Refs {
    /// Backups whose references are all recorded, with their holders.
    recorded: BTreeMap<String, BTreeSet<String>>,
}

impl Refs {
    /// Whether `backup`'s references are known without its manifest.
    pub fn is_recorded(&self, backup: &str) -> bool {
        self.recorded.contains_key(backup)
    }

    /// The backups whose references are recorded.
    pub fn backups(&self) -> impl Iterator<Item = &str> {
        self.recorded.keys().map(String::as_str)
    }

    /// The backups `backup` keeps files in, when recorded.
    pub fn holders(&self, backup: &str) -> Option<&BTreeSet<String>> {
        self.recorded.get(backup)
    }

    /// The recorded backups that keep files in `holder`'s folder (or may:
    /// a record can name a holder too many).
    pub fn dependents_of<'a>(&'a self, holder: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.recorded
            .iter()
            .filter(move |(_, holders)| holders.contains(holder))
            .map(|(b, _)| b.as_str())
    }

    /// Counts the markers of a listing into records.
    fn from_keys<'a>(keys: impl Iterator<Item = &'a str>) -> Refs {
        let mut holders: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut done = BTreeSet::new();
        for key in keys {
            let Some((backup, holder)) = key
                .strip_prefix(layout::REFS)
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            if holder == RECORDED {
                done.insert(backup);
            } else if !holder.is_empty() && !holder.contains('/') {
                holders
                    .entry(backup)
                    .or_default()
                    .insert(holder.to_string());
            }
        }
        Refs {
            recorded: done
                .into_iter()
                .map(|b| (b.to_string(), holders.remove(b).unwrap_or_default()))
                .collect(),
        }
    }
}

/// Every record of `storage`: one listing (paginated).
pub async fn load(storage: &Storage) -> Result<Refs> {
    let Some(at) = location(storage) else {
        return Ok(Refs::default());
    };
    let objects = at.list(layout::REFS).await?;
    Ok(Refs::from_keys(objects.iter().map(|o| o.key.as_str())))
}

/// Records that a backup being completed keeps files in each of
/// `holders` (none for a backup that shares nothing), replacing any record
/// of an earlier backup of its name. Best effort: a failure leaves the
/// backup unknown, which a delete reads.
pub async fn record<'a>(
    storage: &Storage,
    backup: &str,
    holders: impl IntoIterator<Item = &'a str>,
) {
    let Some(at) = location(storage) else {
        return;
    };
    let result = async {
        at.delete(&marker(backup, RECORDED)).await?;
        at.delete_prefix(&dir(backup)).await?;
        write(&at, backup, holders).await
    }
    .await;
    if let Err(e) = result {
        tracing::debug!("recording the references of backup {backup} failed: {e}");
    }
}

/// Records what a delete read in the manifest of an unknown backup (a
/// marker left by a half-written record only names a holder too many).
/// Best effort.
pub async fn learn<'a>(
    storage: &Storage,
    backup: &str,
    holders: impl IntoIterator<Item = &'a str>,
) {
    let Some(at) = location(storage) else {
        return;
    };
    if let Err(e) = write(&at, backup, holders).await {
        tracing::debug!("recording the references of backup {backup} failed: {e}");
    }
}

/// The holders first, `.recorded` last (`at`: the records' storage).
async fn write<'a>(
    at: &Storage,
    backup: &str,
    holders: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    for holder in holders {
        at.write(&marker(backup, holder), Vec::new()).await?;
    }
    at.write(&marker(backup, RECORDED), Vec::new()).await
}

/// `backup` is about to keep files in `holder`'s folder too: recorded
/// before its manifest says so (an error here must stop that change).
pub async fn add_holder(storage: &Storage, backup: &str, holder: &str) -> Result<()> {
    match location(storage) {
        Some(at) => at.write(&marker(backup, holder), Vec::new()).await,
        None => Ok(()),
    }
}

/// `backup` keeps nothing in `holder`'s folder any more (its manifest no
/// longer names it). Best effort: a marker left names a holder too many.
pub async fn drop_holder(storage: &Storage, backup: &str, holder: &str) {
    let Some(at) = location(storage) else {
        return;
    };
    if let Err(e) = at.delete(&marker(backup, holder)).await {
        tracing::debug!("removing a reference of backup {backup} failed: {e}");
    }
}

/// `backup` is going: its record is removed before its files (`.recorded`
/// first, so a removal cut short leaves it unknown, never wrongly known).
pub async fn forget(storage: &Storage, backup: &str) -> Result<()> {
    let Some(at) = location(storage) else {
        return Ok(());
    };
    at.delete(&marker(backup, RECORDED)).await?;
    at.delete_prefix(&dir(backup)).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_backups_with_their_mark_are_known_with_every_holder() {
        let keys = [
            "refs/full/.recorded",
            "refs/inc1/full",
            "refs/inc1/.recorded",
            "refs/inc2/full",
            "refs/inc2/inc1",
            "refs/inc2/.recorded",
            // Half-written: its holders are not all known.
            "refs/inc3/full",
        ];
        let refs = Refs::from_keys(keys.into_iter());
        assert!(refs.is_recorded("full") && refs.is_recorded("inc2"));
        assert!(!refs.is_recorded("inc3"));
        assert_eq!(
            refs.dependents_of("full").collect::<Vec<_>>(),
            ["inc1", "inc2"]
        );
        assert_eq!(refs.dependents_of("inc1").collect::<Vec<_>>(), ["inc2"]);
        assert_eq!(refs.dependents_of("inc2").count(), 0);
    }

    #[tokio::test]
    async fn a_record_is_written_whole_and_forgotten_mark_first() {
        let kit = crate::testkit::Kit::new();
        let s = &kit.ctx.backup_storage;
        record(s, "inc", ["base"]).await;
        record(s, "base", []).await;
        let refs = load(s).await.unwrap();
        assert_eq!(refs.dependents_of("base").collect::<Vec<_>>(), ["inc"]);
        assert!(refs.is_recorded("base"));

        // Recorded again (a new backup of the same name): only the new holders.
        record(s, "inc", ["other"]).await;
        let refs = load(s).await.unwrap();
        assert_eq!(refs.dependents_of("base").count(), 0);
        assert_eq!(refs.dependents_of("other").collect::<Vec<_>>(), ["inc"]);

        add_holder(s, "inc", "heir").await.unwrap();
        drop_holder(s, "inc", "other").await;
        let refs = load(s).await.unwrap();
        assert_eq!(refs.dependents_of("heir").collect::<Vec<_>>(), ["inc"]);

        forget(s, "inc").await.unwrap();
        let refs = load(s).await.unwrap();
        assert!(!refs.is_recorded("inc"));
        assert_eq!(refs.dependents_of("heir").count(), 0);
        let at = location(s).expect("beside the root");
        assert!(at
            .list(layout::REFS)
            .await
            .unwrap()
            .iter()
            .all(|o| !o.key.contains("/inc/")));
        // Nothing inside the backup root.
        assert!(s.list("").await.unwrap().is_empty());
    }
}
