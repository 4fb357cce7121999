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
    let mut found: Option<(String, RestoreRecord, u64)> = None;
    let mut running = None;
    for name in storage.list_dirs(layout::STAGING_ROOT).await? {
        let Some(rest) = name.strip_prefix(backup) else {
            continue;
        };
        if !rest.starts_with('_') {
            continue;
        }
        let dir = layout::staging_dir(&name);
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
