//! Every object key the tool reads or writes is built here, and only here.
//!
//! Keys are relative to a [`Storage`](crate::storage::Storage)'s root (Milvus's
//! `minio.rootPath`, or the backup side's `minio.backupRootPath`).
//!
//! Milvus storage (written by Milvus, read by us):
//! ```text
//! insert_log/<collID>/<partID>/<segID>/<fieldID>/<logID>
//! delta_log/<collID>/<partID>/<segID>/<logID>
//! stats_log/<collID>/<partID>/<segID>/<fieldID>/<logID>      (not backed up)
//! ```
//!
//! Backup storage (the Go tool's layout, so both tools read each other's):
//! ```text
//! <backup>/meta/backup_meta.json       brief: id, name, timestamp, size, version
//! <backup>/meta/collection_meta.json   {"infos": [CollectionBackupInfo]}
//! <backup>/meta/partition_meta.json    {"infos": [PartitionBackupInfo]}
//! <backup>/meta/segment_meta.json      {"infos": [SegmentBackupInfo]}
//! <backup>/meta/manifest.json          ours: per-file size and checksum, encodings
//! <backup>/meta/sample.json            ours: rows sampled for `verify --restore-test`
//! <backup>/meta/full_meta.json         the whole tree; written last of the Go tool's files — a backup
//!                                      without it is incomplete
//! <backup>/meta/summary.json           ours: what `list` shows; written after full_meta.json
//! <backup>/binlogs/insert_log/<coll>/<part>/<group>/<seg>/<field>/<logID>
//! <backup>/binlogs/delta_log/<coll>/<part>/<group>/<seg>/<logID>
//! ```
//! `group` is the segment id; older backups of the Go tool have no group level, and
//! readers accept both.
//!
//! Restore staging, in the *target* Milvus's storage:
//! ```text
//! backup_staging/<task>/insert_log/<coll>/<part>/<seg>/<field>/<logID>
//! backup_staging/<task>/delta_log/<coll>/<part>/<seg>/<logID>
//! backup_staging/<task>/.lease          renewal time, host and pid of the restore
//! backup_staging/<task>/journal.json    the collections and segments it finished
//! ```
//!
//! Restores that insert a logical backup's rows keep their journal in
//! backup storage: `.milvus_backup_restores/<backup>_<hex>/journal.json`
//! (per data file, the row ranges inserted) and its `.lease`.
//!
//! `<backup>/meta/journal.json` exists only while a create runs (or after
//! one was interrupted): the files stored so far, for `create --resume`.
//!
//! Probe objects of `check`: `.milvus_backup_check/<uuid>` on both sides.
//!
//! Leases on backups in use (a restore, verify or replicate running):
//! `.milvus_backup_leases/<backup>/<uuid>`, renewal time, host, pid and
//! operation of the holder.
//!
//! The root key that `backup.encryption.password` unlocks, in backup
//! storage: `.milvus_backup_key`, and `.milvus_backup_key.new` while
//! `key passwd` replaces it (objects, not folders, and no valid backup
//! names: `list` never shows them).
//!
//! The catalog index, beside (never inside) the backup root:
//! `<parent>/.milvus-backup/<root name>/catalog.json` ([`catalog_index_root`]),
//! and the references between backups there, `refs/<backup>/<holder>`.
//!
//! Task records of the REST server, in backup storage:
//! `.milvus_backup_tasks/<task id>.json` (the folder's name is no valid
//! backup name, so `list` never shows it).

/// Folder of all files of one segment's insert logs in Milvus storage.
pub fn milvus_insert_log_dir(collection: i64, partition: i64, segment: i64) -> String {
    format!("insert_log/{collection}/{partition}/{segment}/")
}

/// Folder of one segment's delete logs in Milvus storage.
pub fn milvus_delta_log_dir(collection: i64, partition: i64, segment: i64) -> String {
    format!("delta_log/{collection}/{partition}/{segment}/")
}

/// The password-wrapped root key of a backup storage.
pub const ROOT_KEY: &str = ".milvus_backup_key";
/// The rewrapped root key, while `key passwd` replaces [`ROOT_KEY`].
pub const ROOT_KEY_NEXT: &str = ".milvus_backup_key.new";

/// Leases on backups in use ([`crate::repo::lease`]):
/// `.milvus_backup_leases/<backup>/<holder id>` (not a backup name, so
/// `list` never shows it).
pub const LEASES: &str = ".milvus_backup_leases/";

/// Folder of the leases on one backup; ends with `/`.
pub fn backup_lease_dir(name: &str) -> String {
    format!("{LEASES}{name}/")
}

/// Folder of one backup; ends with `/`.
pub fn backup_dir(name: &str) -> String {
    format!("{name}/")
}

pub const BACKUP_META: &str = "backup_meta.json";
pub const COLLECTION_META: &str = "collection_meta.json";
pub const PARTITION_META: &str = "partition_meta.json";
pub const SEGMENT_META: &str = "segment_meta.json";
pub const FULL_META: &str = "full_meta.json";
pub const MANIFEST: &str = "manifest.json";
pub const SUMMARY: &str = "summary.json";
/// Ours: rows sampled at backup time for `verify --restore-test`.
pub const SAMPLE: &str = "sample.json";

/// One of the backup's meta files (`BACKUP_META`, `FULL_META`, ...).
pub fn backup_meta_file(name: &str, file: &str) -> String {
    format!("{name}/meta/{file}")
}

/// Where a segment's insert-log folder goes inside a backup.
pub fn backup_insert_log_dir(name: &str, collection: i64, partition: i64, segment: i64) -> String {
    format!("{name}/binlogs/insert_log/{collection}/{partition}/{segment}/{segment}/")
}

/// Where a segment's delta-log folder goes inside a backup.
pub fn backup_delta_log_dir(name: &str, collection: i64, partition: i64, segment: i64) -> String {
    format!("{name}/binlogs/delta_log/{collection}/{partition}/{segment}/{segment}/")
}

/// A staging folder for one restore task in the target Milvus's storage.
pub fn staging_dir(task: &str) -> String {
    format!("{STAGING_ROOT}{task}/")
}

/// The journal of a restore, in its staging folder: what `--resume` skips.
pub const RESTORE_JOURNAL: &str = "journal.json";

/// The journal of a create, in the backup's folder while it is made: the
/// files stored so far, for `create --resume`.
pub fn create_journal(name: &str) -> String {
    backup_meta_file(name, "journal.json")
}

/// The folder of a sharded create's records, inside the backup's folder
/// until the seal removes it: `plan.json` (written by the first shard to
/// start) and `done-<K>.json` (what shard K exported).
pub fn create_shards_dir(name: &str) -> String {
    format!("{name}/shards/")
}

/// The folder of a sharded restore's records, beside the row restores'
/// journals: `<backup>_shards_<hex>/plan.json`, `done-<K>.json` and each
/// shard's `journal-<K>` folder (`hex`: of the options that name the
/// targets, so two sharded restores of one backup under other names
/// keep apart).
pub fn restore_shards_dir(backup: &str, hex: &str) -> String {
    format!("{ROW_RESTORES_ROOT}{backup}_shards_{hex}/")
}

/// Parent of every restore's staging folder.
pub const STAGING_ROOT: &str = "backup_staging/";

/// Journals of restores that insert a logical backup's rows, in *backup*
/// storage (such a restore may have no access to Milvus's):
/// `.milvus_backup_restores/<backup>_<hex>/journal.json` and `.lease`.
/// The folder's name is no valid backup name, so `list` never shows it.
pub const ROW_RESTORES_ROOT: &str = ".milvus_backup_restores/";

/// A probe object used by `check`. The folder's name is not a valid backup
/// name, so `list` never mistakes it (or its empty directory on a local
/// filesystem) for a backup.
pub fn probe_key(id: &str) -> String {
    format!(".milvus_backup_check/{id}")
}

/// Folder of the REST server's task records in backup storage.
pub const TASKS_DIR: &str = ".milvus_backup_tasks/";

/// The record of one REST server task.
pub fn task_record(id: &str) -> String {
    format!("{TASKS_DIR}{id}.json")
}

/// The catalog index of a backup storage (what `list` shows of each
/// complete backup, see [`crate::repo::catalog_index`]) lives beside the backup
/// root, never inside it, where the Go tool would take any entry for a
/// backup: root `a/backup` → `a/.milvus-backup/backup/catalog.json`. This
/// gives the root (bucket-relative) of the storage holding it; `None` for
/// an empty root (the bucket itself), which has no outside.
pub fn catalog_index_root(backup_root: &str) -> Option<String> {
    let root = backup_root.trim_matches('/');
    if root.is_empty() {
        return None;
    }
    Some(match root.rsplit_once('/') {
        Some((parent, base)) => format!("{parent}/{INDEX_DIR}/{base}"),
        None => format!("{INDEX_DIR}/{root}"),
    })
}

/// The folder, beside backup roots, of what the tool keeps about them.
pub const INDEX_DIR: &str = ".milvus-backup";
/// The catalog index, relative to [`catalog_index_root`].
pub const CATALOG_INDEX: &str = "catalog.json";
/// Which backups keep files in which ([`crate::repo::refs`]), relative to
/// [`catalog_index_root`]: `refs/<backup>/<holder>` for each backup whose
/// folder holds files of `<backup>`, and `refs/<backup>/.recorded` once
/// they are all written.
pub const REFS: &str = "refs/";

/// Joins a folder (ending in `/` or empty) and a name.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_go_tool_layout() {
        assert_eq!(milvus_insert_log_dir(1, 2, 3), "insert_log/1/2/3/");
        assert_eq!(milvus_delta_log_dir(1, 2, 3), "delta_log/1/2/3/");
        assert_eq!(backup_meta_file("b1", FULL_META), "b1/meta/full_meta.json");
        assert_eq!(
            backup_insert_log_dir("b1", 1, 2, 3),
            "b1/binlogs/insert_log/1/2/3/3/"
        );
        assert_eq!(
            backup_delta_log_dir("b1", 1, 2, 3),
            "b1/binlogs/delta_log/1/2/3/3/"
        );
        assert_eq!(join("a/", "b"), "a/b");
        assert_eq!(join("a", "b"), "a/b");
        assert_eq!(join("", "b"), "b");
        assert_eq!(task_record("t1"), ".milvus_backup_tasks/t1.json");
        assert_eq!(
            catalog_index_root("backup").as_deref(),
            Some(".milvus-backup/backup")
        );
        assert_eq!(
            catalog_index_root("/a/b/backup/").as_deref(),
            Some("a/b/.milvus-backup/backup")
        );
        assert_eq!(catalog_index_root("/"), None);
        // `list` skips folders whose names no backup can have.
        assert!(
            crate::model::naming::validate_backup_name(TASKS_DIR.trim_end_matches('/')).is_err()
        );
    }
}
