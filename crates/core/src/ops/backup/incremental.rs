//! Incremental backups: which earlier backup is the base, which files it
//! already holds the same way (shared, not copied), and that it still
//! holds them when the copy starts. Not here: the copies themselves.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt};

use super::options::BackupOptions;
use super::plan::{BackupPlan, FileCopy};
use crate::codec::Encoder;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::layout;
use crate::model::meta::{Manifest, ManifestFile};
use crate::model::selection::CollectionRef;
use crate::repo::catalog;
use crate::storage::ObjectInfo;

/// The base of an incremental backup: the one named, or with
/// `--incremental` the newest complete backup of the same collections.
pub(super) async fn base_backup(
    ctx: &Context,
    opts: &BackupOptions,
    collections: &[CollectionRef],
    notes: &mut Vec<String>,
) -> Result<Option<(String, Manifest)>> {
    let storage = &ctx.backup_storage;
    let name = match &opts.base_backup {
        Some(name) => {
            catalog::get(storage, name).await?;
            name.clone()
        }
        None if opts.incremental => {
            let mut wanted: Vec<String> = collections.iter().map(|c| c.to_string()).collect();
            wanted.sort();
            let found = catalog::list(storage).await?.into_iter().find(|b| {
                let mut have = b.collections.clone();
                have.sort();
                b.state == catalog::BackupState::Complete && have == wanted
            });
            match found {
                Some(b) => b.name,
                None => {
                    notes.push(
                        "no earlier backup of the same collections: making a full backup".into(),
                    );
                    return Ok(None);
                }
            }
        }
        None => return Ok(None),
    };
    let manifest = catalog::manifest(storage, &name).await?.ok_or_else(|| {
        Error::invalid_input(format!(
            "base backup `{name}` has no manifest (it was made by another tool), so its files cannot be shared — make a full backup instead"
        ))
    })?;
    notes.push(format!(
        "incremental: sharing unchanged files with `{name}`"
    ));
    Ok(Some((name, manifest)))
}

/// The base of an incremental logical backup: a logical backup of the
/// same format whose ranges were recorded. With `--incremental` (no base
/// named) another base means a full backup, said in a note; a named one
/// is refused.
pub(super) async fn logical_base(
    ctx: &Context,
    opts: &BackupOptions,
    format: crate::ops::logical::Format,
    (name, manifest): (String, Manifest),
    notes: &mut Vec<String>,
) -> Result<(
    Option<(String, Manifest)>,
    Option<crate::model::meta::LogicalBackup>,
)> {
    let info = catalog::get(&ctx.backup_storage, &name).await?;
    let why = match &info.logical {
        None => Some("is a binlog backup (files of Milvus's own storage), not rows".to_string()),
        Some(l) if l.format != format => Some(format!("is a {} backup", l.format)),
        Some(l) if l.collections.iter().all(|c| c.ranges.is_empty()) => {
            Some("was made by a version that recorded no key ranges".to_string())
        }
        Some(_) => None,
    };
    match why {
        None => Ok((Some((name, manifest)), info.logical)),
        Some(why) if opts.base_backup.is_none() => {
            notes.retain(|n| !n.starts_with("incremental:"));
            notes.push(format!(
                "no earlier {format} backup with key ranges of the same collections (`{name}` {why}): making a full backup"
            ));
            Ok((None, None))
        }
        Some(why) => Err(Error::invalid_input(format!(
            "base backup `{name}` {why}, so a {format} backup cannot share its files — name a {format} backup made by this version as the base, or make a full backup"
        ))),
    }
}

/// A shared file must still be where the base says, at its size (and
/// ETag, where recorded): checked against one listing of each holder's
/// folder per collection, not one request per file.
pub(super) async fn check_base_holds(
    ctx: &Context,
    plan: &BackupPlan,
    shared: &[ManifestFile],
) -> Result<()> {
    let name = &plan.name;
    // `binlogs/insert_log/<collection>/` of each holder.
    let mut folders: BTreeMap<String, Vec<&ManifestFile>> = BTreeMap::new();
    for f in shared {
        let dir_len = f
            .path
            .match_indices('/')
            .nth(2)
            .map(|(i, _)| i + 1)
            .unwrap_or(0);
        let folder = layout::join(&layout::backup_dir(f.holder(name)), &f.path[..dir_len]);
        folders.entry(folder).or_default().push(f);
    }
    let listings = futures::stream::iter(folders.keys().map(|folder| async move {
        ctx.backup_storage.list(folder).await.map(|l| {
            l.into_iter()
                .map(|o| (o.key.clone(), o))
                .collect::<HashMap<String, ObjectInfo>>()
        })
    }))
    .buffered(plan.tuning.meta_parallelism)
    .try_collect::<Vec<_>>()
    .await?;
    let mut missing = None;
    'folders: for (files, listing) in folders.values().zip(&listings) {
        for f in files {
            let key = layout::join(&layout::backup_dir(f.holder(name)), &f.path);
            let holds = listing.get(&key).is_some_and(|o| {
                o.size == f.size
                    && match (&f.etag, &o.etag) {
                        (Some(want), Some(got)) => want == got,
                        _ => true,
                    }
            });
            if !holds {
                missing = Some((f.holder(name).to_string(), key));
                break 'folders;
            }
        }
    }
    let Some((base, key)) = missing else {
        return Ok(());
    };
    match catalog::get(&ctx.backup_storage, &base).await {
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::not_found(format!(
            "base backup `{base}` was deleted while this backup was being made — make a full backup, or choose another base"
        ))),
        _ => Err(Error::corrupt(format!(
            "the base backup's file `{key}` is missing or has the wrong size — run `milvus-backup verify -n {base}`, or make a full backup"
        ))
        .at("key", key)),
    }
}

/// A base manifest's files by their Milvus source key.
pub(super) struct BaseIndex<'a> {
    manifest: &'a Manifest,
    by_source: HashMap<&'a str, &'a ManifestFile>,
}

impl<'a> BaseIndex<'a> {
    pub(super) fn new(manifest: &'a Manifest) -> BaseIndex<'a> {
        BaseIndex {
            manifest,
            by_source: manifest
                .files
                .iter()
                .map(|f| (f.source.as_str(), f))
                .collect(),
        }
    }
}

/// The manifest entry of `f` referring to the base's copy, when the base
/// holds the same Milvus file stored the same way: same key and size, and
/// the same ETag where both listings gave one (the listing proves it; no
/// request per file).
pub(super) fn share(
    encoder: &Encoder,
    base: &str,
    index: &BaseIndex,
    f: &FileCopy,
) -> Option<ManifestFile> {
    let manifest = index.manifest;
    let b = *index.by_source.get(f.source.as_str())?;
    let same_etag = match (&b.source_etag, &f.etag) {
        (Some(was), Some(is)) => was == is,
        _ => true,
    };
    let same_key = match (&manifest.encryption, &encoder.key) {
        (None, None) => true,
        (Some(e), Some(k)) => e.recipient == k.recipient(),
        _ => false,
    };
    let same = b.path == f.target
        && same_etag
        && b.raw_size.unwrap_or(b.size) == f.size
        && b.encoding == encoder.encoding()
        && same_key;
    same.then(|| ManifestFile {
        stored_in: Some(b.holder(base).to_string()),
        ..b.clone()
    })
}
