//! Resume journals: what an interrupted `create` or `restore` had finished,
//! so `--resume` does only the rest.
//!
//! - A create keeps `<backup>/meta/journal.json` while it runs: its holder
//!   (host, pid, renewal time) and the manifest entry of every file stored
//!   so far. It is rewritten at most every 250 ms as files finish (a kill
//!   loses at most that: those files are copied again) and removed
//!   once the backup is complete.
//! - A restore keeps `journal.json` in its staging folder (see
//!   [`crate::repo::staging`]; the folder's lease says who holds it): per target
//!   collection whether it was created, finished, and which segments'
//!   imports completed or were started (with Milvus's import task ids). It
//!   is rewritten on every change, before the next step, so a started
//!   import is never started twice.
//!
//! A journal's holder that is gone (a killed process of this host, or no
//! renewal for [`crate::repo::staging::STALE_AFTER`]) leaves it to `--resume`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::Encoding;
use crate::error::{Error, ErrorKind, Result};
use crate::model::layout;
use crate::model::meta::ManifestFile;
use crate::repo::staging::{Holder, STALE_AFTER};
use crate::storage::Storage;

/// Runs (by their journal's `run` id) of this process that hold a journal:
/// a server runs many.
fn held() -> &'static Mutex<HashSet<String>> {
    static HELD: std::sync::OnceLock<Mutex<HashSet<String>>> = std::sync::OnceLock::new();
    HELD.get_or_init(Default::default)
}

/// How often a running create rewrites its journal (when files finished).
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// How often the holder renews it even when nothing finished.
const RENEW_EVERY: Duration = Duration::from_secs(60);

/// The journal of a create, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateRecord {
    pub holder: Option<Holder>,
    /// Tells this run's journal from another's of the same process.
    #[serde(default)]
    pub run: String,
    /// How the files are stored, and for whom they are sealed: a resume
    /// that stores differently copies everything again.
    pub encoding: Encoding,
    #[serde(default)]
    pub recipient: Option<String>,
    pub files: Vec<ManifestFile>,
}

/// What an earlier, interrupted create of the same backup stored.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// By path in the backup folder.
    pub files: BTreeMap<String, ManifestFile>,
}

impl Stored {
    /// The earlier copy of `target` from `source` (`raw_size` bytes as
    /// Milvus holds them), if it was stored the way this run stores.
    pub fn reusable(&self, target: &str, source: &str, raw_size: u64) -> Option<&ManifestFile> {
        self.files
            .get(target)
            .filter(|f| f.source == source && f.raw_size.unwrap_or(f.size) == raw_size)
    }
}

/// Reads the journal of an interrupted create of `name`. `Conflict` when
/// its holder still runs; empty when there is none, or it was made for
/// another encoding or key.
pub async fn interrupted_create(
    storage: &Storage,
    name: &str,
    encoding: Encoding,
    recipient: Option<String>,
) -> Result<Stored> {
    let key = layout::create_journal(name);
    let record: CreateRecord = match storage.read(&key).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Stored::default()),
        Err(e) => return Err(e),
    };
    if let Some(h) = &record.holder {
        if !h.gone_unless(STALE_AFTER, || held().lock().unwrap().contains(&record.run)) {
            return Err(Error::conflict(format!(
                "backup `{name}` is being created right now (process {} on {}) — wait for it, or stop that process first",
                h.pid, h.host
            )));
        }
    }
    if record.encoding != encoding || record.recipient != recipient {
        return Ok(Stored::default());
    }
    Ok(Stored {
        files: record
            .files
            .into_iter()
            .map(|f| (f.path.clone(), f))
            .collect(),
    })
}

struct CreateState {
    record: CreateRecord,
    dirty: bool,
}

/// Serialises the journal's writes; `true` once it was removed.
type WriteGate = Arc<tokio::sync::Mutex<bool>>;

/// A running create's journal: held (and renewed) until dropped.
pub struct CreateJournal {
    storage: Storage,
    key: String,
    state: Arc<Mutex<CreateState>>,
    run: String,
    gate: WriteGate,
    writer: tokio::task::JoinHandle<()>,
}

impl CreateJournal {
    /// Starts the journal of `name` with the files an earlier run stored.
    pub async fn start(
        storage: &Storage,
        name: &str,
        encoding: Encoding,
        recipient: Option<String>,
        stored: Vec<ManifestFile>,
    ) -> Result<CreateJournal> {
        let key = layout::create_journal(name);
        let run = uuid::Uuid::new_v4().simple().to_string();
        held().lock().unwrap().insert(run.clone());
        let state = Arc::new(Mutex::new(CreateState {
            record: CreateRecord {
                holder: Some(Holder::me()),
                run: run.clone(),
                encoding,
                recipient,
                files: stored,
            },
            dirty: false,
        }));
        let gate = WriteGate::default();
        let journal = CreateJournal {
            storage: storage.clone(),
            key: key.clone(),
            state: state.clone(),
            run,
            gate: gate.clone(),
            writer: tokio::spawn({
                let storage = storage.clone();
                async move {
                    let mut since_write = Duration::ZERO;
                    loop {
                        tokio::time::sleep(FLUSH_EVERY).await;
                        since_write += FLUSH_EVERY;
                        let due = state.lock().unwrap().dirty || since_write >= RENEW_EVERY;
                        if due {
                            // A failed write is retried next time round.
                            if write_create(&storage, &key, &state, &gate).await.is_ok() {
                                since_write = Duration::ZERO;
                            }
                        }
                    }
                }
            }),
        };
        write_create(storage, &journal.key, &journal.state, &journal.gate).await?;
        Ok(journal)
    }

    /// Records a file stored completely.
    pub fn stored(&self, file: &ManifestFile) {
        let mut s = self.state.lock().unwrap();
        s.record.files.push(file.clone());
        s.dirty = true;
    }

    /// Writes what is recorded now (before leaving a failed create).
    pub async fn flush(&self) -> Result<()> {
        write_create(&self.storage, &self.key, &self.state, &self.gate).await
    }

    /// The backup is complete: the journal goes, and is never written again.
    pub async fn finish(&self) -> Result<()> {
        let mut removed = self.gate.lock().await;
        self.writer.abort();
        *removed = true;
        self.storage.delete(&self.key).await
    }
}

impl Drop for CreateJournal {
    fn drop(&mut self) {
        self.writer.abort();
        held().lock().unwrap().remove(&self.run);
    }
}

async fn write_create(
    storage: &Storage,
    key: &str,
    state: &Mutex<CreateState>,
    gate: &WriteGate,
) -> Result<()> {
    let removed = gate.lock().await;
    if *removed {
        return Ok(());
    }
    let bytes = {
        let mut s = state.lock().unwrap();
        s.record.holder = Some(Holder::me());
        s.dirty = false;
        serde_json::to_vec(&s.record).map_err(|e| Error::internal(format!("journal: {e}")))?
    };
    storage.write(key, bytes).await
}

/// How far a restore got with one target collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionProgress {
    /// `db.coll` in the backup.
    pub source: String,
    /// The restore made (or is making) the target: it may drop and redo it.
    pub created: bool,
    /// Schema, partitions and indexes are in place: only data is left.
    pub ready: bool,
    /// Every segment imported (and the collection loaded when asked).
    pub done: bool,
    /// By segment id.
    #[serde(default)]
    pub segments: BTreeMap<i64, SegmentProgress>,
    /// A logical backup's rows, by data file (its path in the backup).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, FileProgress>,
}

impl CollectionProgress {
    /// Rows the journal says are in: imported segments' and inserted
    /// files' rows.
    pub fn rows(&self) -> u64 {
        let segments: i64 = self.segments.values().filter_map(|s| s.rows).sum();
        let files: u64 = self.files.values().map(FileProgress::rows_done).sum();
        segments.max(0) as u64 + files
    }
}

/// Rows `[start, end)` of a data file, by their order in it.
pub type RowRange = (u64, u64);

/// The batches of one data file a logical restore inserted: `done` once
/// Milvus answered, `sent` while the answer is awaited. A batch in `sent`
/// after an interruption may or may not be in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    #[serde(default)]
    pub done: Vec<RowRange>,
    #[serde(default)]
    pub sent: Vec<RowRange>,
}

/// What a resumed restore does with one batch of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFate {
    /// Inserted before: skipped.
    Skip,
    /// Perhaps inserted (sent, no answer recorded): its keys are looked
    /// up first and only the missing rows go in.
    Check,
    /// Never sent.
    Insert,
}

impl FileProgress {
    pub fn rows_done(&self) -> u64 {
        self.done.iter().map(|(a, b)| b - a).sum()
    }

    /// Whether rows `0..rows` are all in.
    pub fn complete(&self, rows: u64) -> bool {
        rows > 0 && covered(&self.done, (0, rows))
    }

    /// What to do with `batch`, as an interrupted run left the file.
    pub fn fate(&self, batch: RowRange) -> BatchFate {
        if covered(&self.done, batch) {
            BatchFate::Skip
        } else if overlaps(&self.done, batch) || overlaps(&self.sent, batch) {
            BatchFate::Check
        } else {
            BatchFate::Insert
        }
    }

    pub fn sent(&mut self, batch: RowRange) {
        add(&mut self.sent, batch);
    }

    /// `batch` is in: no longer awaited.
    pub fn done(&mut self, batch: RowRange) {
        remove(&mut self.sent, batch);
        add(&mut self.done, batch);
    }
}

fn covered(ranges: &[RowRange], (a, b): RowRange) -> bool {
    a >= b || ranges.iter().any(|&(s, e)| s <= a && b <= e)
}

fn overlaps(ranges: &[RowRange], (a, b): RowRange) -> bool {
    ranges.iter().any(|&(s, e)| s < b && a < e)
}

/// Adds a range, merging it with those it touches (kept sorted).
fn add(ranges: &mut Vec<RowRange>, (mut a, mut b): RowRange) {
    if a >= b {
        return;
    }
    ranges.retain(|&(s, e)| {
        let touches = s <= b && a <= e;
        if touches {
            a = a.min(s);
            b = b.max(e);
        }
        !touches
    });
    let at = ranges.partition_point(|&(s, _)| s < a);
    ranges.insert(at, (a, b));
}

/// Takes a range out, splitting the ranges it cuts.
fn remove(ranges: &mut Vec<RowRange>, (a, b): RowRange) {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for &(s, e) in ranges.iter() {
        if e <= a || b <= s {
            out.push((s, e));
            continue;
        }
        if s < a {
            out.push((s, a));
        }
        if b < e {
            out.push((b, e));
        }
    }
    *ranges = out;
}

/// One segment's import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentProgress {
    /// Milvus's import task ids, once it answered.
    #[serde(default)]
    pub tasks: Vec<i64>,
    /// Rows imported, once Milvus said the import completed.
    #[serde(default)]
    pub rows: Option<i64>,
}

/// The journal of a restore, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreRecord {
    pub backup: String,
    /// Unix seconds of the last change.
    #[serde(default)]
    pub updated: u64,
    /// By target collection (`db.coll`).
    pub collections: BTreeMap<String, CollectionProgress>,
}

/// A restore's journal in its staging folder; every change is written
/// before the step that follows it.
pub struct RestoreJournal {
    /// `None`: kept in memory only (a logical restore).
    storage: Option<Storage>,
    key: String,
    record: tokio::sync::Mutex<RestoreRecord>,
}

impl RestoreJournal {
    pub fn new(storage: &Storage, dir: &str, record: RestoreRecord) -> RestoreJournal {
        RestoreJournal {
            storage: Some(storage.clone()),
            key: layout::join(dir, layout::RESTORE_JOURNAL),
            record: tokio::sync::Mutex::new(record),
        }
    }

    /// A journal that writes nothing (a logical restore, which uses no
    /// storage of Milvus's).
    pub fn in_memory(record: RestoreRecord) -> RestoreJournal {
        RestoreJournal {
            storage: None,
            key: String::new(),
            record: tokio::sync::Mutex::new(record),
        }
    }

    /// The recorded progress of `target`.
    pub async fn progress(&self, target: &str) -> Option<CollectionProgress> {
        self.record.lock().await.collections.get(target).cloned()
    }

    /// Changes `target`'s progress and writes the journal.
    pub async fn update(
        &self,
        target: &str,
        change: impl FnOnce(&mut CollectionProgress),
    ) -> Result<()> {
        let mut record = self.record.lock().await;
        change(record.collections.entry(target.to_string()).or_default());
        record.updated = crate::repo::staging::now();
        let Some(storage) = &self.storage else {
            return Ok(());
        };
        let bytes =
            serde_json::to_vec(&*record).map_err(|e| Error::internal(format!("journal: {e}")))?;
        storage.write(&self.key, bytes).await
    }

    /// The restore finished: the journal goes.
    pub async fn finish(&self) -> Result<()> {
        match &self.storage {
            Some(storage) => storage.delete(&self.key).await,
            None => Ok(()),
        }
    }
}

/// An interrupted restore of `backup` that `--resume` can continue: its
/// staging folder and journal. Folders still held by a running restore
/// are passed over; the newest abandoned one wins.
pub async fn interrupted_restore(
    storage: &Storage,
    backup: &str,
) -> Result<Option<(String, RestoreRecord)>> {
    interrupted_restore_in(storage, layout::STAGING_ROOT, backup).await
}

/// [`interrupted_restore`] among the folders under `root` (the staging
/// root of Milvus's storage, or [`layout::ROW_RESTORES_ROOT`] of backup
/// storage).
pub async fn interrupted_restore_in(
    storage: &Storage,
    root: &str,
    backup: &str,
) -> Result<Option<(String, RestoreRecord)>> {
    let mut found: Option<(String, RestoreRecord, u64)> = None;
    let mut running = None;
    for name in storage.list_dirs(root).await? {
        let Some(rest) = name.strip_prefix(backup) else {
            continue;
        };
        if !rest.starts_with('_') {
            continue;
        }
        let dir = layout::join(root, &name) + "/";
        let record: RestoreRecord = match storage
            .read(&layout::join(&dir, layout::RESTORE_JOURNAL))
            .await
        {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(r) => r,
                Err(_) => continue,
            },
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if record.backup != backup {
            continue;
        }
        if !crate::repo::staging::abandoned(storage, &dir, STALE_AFTER).await? {
            running = Some(dir);
            continue;
        }
        let modified = record.updated;
        if found.as_ref().is_none_or(|(_, _, t)| modified >= *t) {
            found = Some((dir, record, modified));
        }
    }
    match (found, running) {
        (Some((dir, record, _)), _) => Ok(Some((dir, record))),
        (None, Some(dir)) => Err(Error::conflict(format!(
            "a restore of `{backup}` is running right now (staging folder `{dir}`) — wait for it, or stop it first"
        ))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_sent_without_an_answer_are_checked_and_done_ones_skipped() {
        let mut f = FileProgress::default();
        for b in [(0, 10), (10, 20), (20, 30), (30, 40)] {
            f.sent(b);
        }
        f.done((0, 10));
        f.done((20, 30));
        assert_eq!(f.done, vec![(0, 10), (20, 30)]);
        assert_eq!(f.sent, vec![(10, 20), (30, 40)]);
        assert_eq!(f.fate((0, 10)), BatchFate::Skip);
        assert_eq!(f.fate((10, 20)), BatchFate::Check);
        assert_eq!(f.fate((40, 50)), BatchFate::Insert);
        // batches cut differently on resume: a part of one done is checked
        assert_eq!(f.fate((5, 15)), BatchFate::Check);
        f.done((10, 20));
        f.done((30, 40));
        assert_eq!(f.done, vec![(0, 40)]);
        assert!(f.sent.is_empty());
        assert!(f.complete(40));
        assert!(!f.complete(41));
        assert_eq!(f.rows_done(), 40);
    }
}
