//! What long work tells its front ends while it runs: typed [`Event`]s sent
//! to an [`EventSink`]. The CLI renders them as bars and lines, the server
//! folds them into a task record with a [`Tracker`]; nobody parses text.
//!
//! Every operation sends, in order: [`Event::Planned`] with its totals per
//! collection (again if a flush changed them), then phases, collection
//! starts and ends, and units of work done ([`Event::FileDone`],
//! [`Event::SegmentImported`]). Warnings never stop the work.

use std::fmt;

use serde::Serialize;

/// Which operation sends the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Restore,
    Verify,
    RestoreTest,
    Delete,
    /// Rows of a collection written as Parquet or JSON files.
    Export,
    /// Rows read from files and inserted.
    Import,
}

/// One collection of a plan, with the work it stands for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlannedCollection {
    /// `db.coll` in Milvus (create) or in the backup.
    pub name: String,
    /// `db.coll` restored into (restore, restore test).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub segments: usize,
    pub files: u64,
    pub bytes: u64,
}

/// A stage of an operation; its `Display` is the line a person reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Reading one collection's metadata and segments (create).
    Reading {
        index: usize,
        of: usize,
        collection: String,
    },
    /// Waiting for a flush (create).
    Flushing { collection: String, segments: usize },
    /// Counting the rows Milvus serves by their keys, where it has no
    /// `count(*)` (create, Milvus 2.2): a transfer of about `rows`.
    CountingRows { collection: String, rows: u64 },
    /// Copying files into the backup (create): a transfer of `files`.
    Copying { files: u64, bytes: u64, shared: u64 },
    /// Writing the meta files, the completion mark last (create).
    WritingMeta,
    /// Recreating one collection (restore).
    Restoring {
        index: usize,
        of: usize,
        source: String,
        target: String,
    },
    /// Importing one collection's segments: a transfer of `segments`.
    Importing {
        collection: String,
        segments: usize,
        bytes: u64,
    },
    /// Staging a logical backup's files into Milvus's storage and
    /// importing them, one job per file (`restore --import-mode bulk`): a
    /// transfer of `files`.
    BulkImporting {
        collection: String,
        files: usize,
        bytes: u64,
    },
    /// Loading a restored collection.
    Loading { collection: String },
    /// Checking one backup's files: a transfer of `files`.
    Checking {
        backup: String,
        files: u64,
        bytes: u64,
        deep: bool,
    },
    /// Restoring one collection into a throwaway one (restore test).
    RestoreTest {
        index: usize,
        of: usize,
        source: String,
        target: String,
        sampled_rows: Option<usize>,
    },
    /// Loading a throwaway collection to compare the sample.
    ComparingSample { collection: String, rows: usize },
    /// Deleting one backup (delete, retention).
    Deleting { backup: String, retention: bool },
    /// Reading a collection's rows into files: a transfer of `rows`
    /// (an estimate: Milvus's row count before deletes).
    Exporting {
        collection: String,
        rows: u64,
        streams: usize,
    },
    /// Inserting the rows of `files` files: a transfer of `rows`.
    Inserting {
        collection: String,
        files: usize,
        rows: u64,
    },
    /// Digesting two collections' rows range by range (compare, a
    /// migration's reconcile): a transfer of the source's `rows`.
    Comparing {
        source: String,
        target: String,
        ranges: usize,
        rows: u64,
    },
    /// Streaming rows from one collection into another (migrate): a
    /// transfer of `rows`.
    Streaming {
        source: String,
        target: String,
        rows: u64,
    },
}

impl Phase {
    /// A transfer this phase starts: (items, unit, bytes).
    pub fn transfer(&self) -> Option<(u64, &'static str, u64)> {
        match self {
            Phase::Copying { files, bytes, .. } => Some((*files, "files", *bytes)),
            Phase::Importing {
                segments, bytes, ..
            } => Some((*segments as u64, "segments", *bytes)),
            Phase::BulkImporting { files, bytes, .. } => {
                Some((*files as u64, "import jobs", *bytes))
            }
            Phase::Checking {
                files, bytes, deep, ..
            } => Some((*files, "files", if *deep { *bytes } else { 0 })),
            Phase::Exporting { rows, .. }
            | Phase::Inserting { rows, .. }
            | Phase::Comparing { rows, .. }
            | Phase::Streaming { rows, .. }
            | Phase::CountingRows { rows, .. } => Some((*rows, "rows", 0)),
            _ => None,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Reading {
                index,
                of,
                collection,
            } => write!(f, "reading {collection} (collection {} of {of})", index + 1),
            Phase::Flushing {
                collection,
                segments,
            } => write!(f, "waiting for {collection} to flush {segments} segment(s)"),
            Phase::CountingRows { collection, rows } => write!(
                f,
                "counting the rows Milvus serves of {collection} by primary key (about {rows}; the server has no count(*)), to find deletes it has not persisted"
            ),
            Phase::Copying {
                files,
                bytes,
                shared,
            } => {
                write!(f, "copying {files} files ({bytes} bytes)")?;
                if *shared > 0 {
                    write!(f, ", sharing {shared} unchanged files with the base")?;
                }
                Ok(())
            }
            Phase::WritingMeta => f.write_str("writing metadata"),
            Phase::Restoring {
                index,
                of,
                source,
                target,
            } => write!(
                f,
                "restoring {source} as {target} (collection {} of {of})",
                index + 1
            ),
            Phase::Importing {
                collection,
                segments,
                ..
            } => write!(f, "importing {segments} segment(s) into {collection}"),
            Phase::BulkImporting {
                collection, files, ..
            } => write!(
                f,
                "bulk-importing {files} file(s) into {collection} (staged into its storage, read by Milvus's import)"
            ),
            Phase::Loading { collection } => write!(f, "loading {collection}"),
            Phase::Checking {
                backup,
                files,
                bytes,
                deep,
            } => write!(
                f,
                "{} {files} files ({bytes} bytes) of `{backup}`",
                if *deep { "reading" } else { "checking" }
            ),
            Phase::RestoreTest {
                index,
                of,
                source,
                target,
                sampled_rows,
            } => {
                write!(
                    f,
                    "[{}/{of}] restore test of {source} as {target}",
                    index + 1
                )?;
                match sampled_rows {
                    Some(n) => write!(f, " ({n} sampled rows)"),
                    None => f.write_str(" (no row sample: row counts only)"),
                }
            }
            Phase::ComparingSample { collection, rows } => {
                write!(f, "  loading {collection} to compare {rows} sampled rows")
            }
            Phase::Exporting {
                collection,
                rows,
                streams,
            } => write!(
                f,
                "exporting about {rows} rows of {collection} ({streams} key range(s) in flight)"
            ),
            Phase::Inserting {
                collection,
                files,
                rows: 0,
            } => write!(f, "inserting the rows of {files} file(s) into {collection}"),
            Phase::Inserting {
                collection,
                files,
                rows,
            } => write!(
                f,
                "inserting {rows} rows from {files} file(s) into {collection}"
            ),
            Phase::Comparing {
                source,
                target,
                ranges,
                rows,
            } => write!(
                f,
                "comparing {source} with {target}: {ranges} key range(s), about {rows} rows"
            ),
            Phase::Streaming {
                source,
                target,
                rows,
            } => write!(f, "copying about {rows} rows of {source} into {target}"),
            Phase::Deleting { backup, retention } => {
                if *retention {
                    write!(f, "retention: deleting `{backup}`")
                } else {
                    write!(f, "deleting `{backup}`")
                }
            }
        }
    }
}

/// Something an operation reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The work ahead, per collection (sent again when a flush changed it).
    Planned {
        operation: Operation,
        collections: Vec<PlannedCollection>,
    },
    /// A stage begins.
    Phase(Phase),
    /// Work on collection `index` of the plan begins.
    CollectionStarted { index: usize },
    /// Collection `index` is done, or failed with `error`.
    CollectionFinished { index: usize, error: Option<String> },
    /// Where a stage that works on several collections at once is
    /// ([`crate::board::Board`]): `done` of `of` collections `verb`
    /// (e.g. `flushed`), and the ones in flight, in plan order. Sent
    /// whenever one starts or ends.
    Collections {
        verb: &'static str,
        done: usize,
        of: usize,
        current: Vec<String>,
    },
    /// One file of `bytes` bytes was copied or checked.
    FileDone {
        collection: Option<usize>,
        bytes: u64,
    },
    /// The copy phase of a create ended: `raw_bytes` read from Milvus,
    /// `stored_bytes` written (after compression and encryption) in
    /// `seconds`; `encoding` says how, e.g. `zstd level 3, encrypted`.
    Copied {
        raw_bytes: u64,
        stored_bytes: u64,
        seconds: f64,
        encoding: String,
    },
    /// One file of a segment was staged for import (restore).
    FileStaged { collection: usize, bytes: u64 },
    /// One segment was imported.
    SegmentImported {
        collection: usize,
        segment: i64,
        rows: i64,
        bytes: u64,
    },
    /// An index was created on a restored collection.
    IndexBuilt {
        collection: usize,
        field: String,
        index: String,
        /// e.g. `HNSW`, `AUTOINDEX`.
        index_type: String,
    },
    /// Rows exported or inserted (a batch), with their raw bytes.
    RowsDone {
        collection: usize,
        rows: u64,
        bytes: u64,
    },
    /// Something worth a line that is not a stage.
    Note { message: String },
    /// Something the user should know that does not stop the work.
    Warning { message: String },
}

/// [`Event::Collections`] as a person reads it:
/// `12/300 collections flushed (now: db1.a, db2.b, +2 more)`.
pub fn collections_line(verb: &str, done: usize, of: usize, current: &[String]) -> String {
    const NAMED: usize = 4;
    let mut line = format!("{done}/{of} collections {verb}");
    if !current.is_empty() {
        let mut now = current[..current.len().min(NAMED)].join(", ");
        if current.len() > NAMED {
            now.push_str(&format!(", +{} more", current.len() - NAMED));
        }
        line.push_str(&format!(" (now: {now})"));
    }
    line
}

/// Receives events. Implementations must be cheap and thread-safe.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Shorthands for sending events, on every sink (`&dyn EventSink` too).
pub trait Emit {
    fn phase(&self, phase: Phase);
    fn note(&self, message: impl Into<String>);
    fn warn(&self, message: impl Into<String>);
}

impl<T: EventSink + ?Sized> Emit for T {
    fn phase(&self, phase: Phase) {
        self.emit(Event::Phase(phase));
    }
    fn note(&self, message: impl Into<String>) {
        self.emit(Event::Note {
            message: message.into(),
        });
    }
    fn warn(&self, message: impl Into<String>) {
        self.emit(Event::Warning {
            message: message.into(),
        });
    }
}

/// Discards every event but warnings, which go to the log.
pub struct Discard;

impl EventSink for Discard {
    fn emit(&self, event: Event) {
        if let Event::Warning { message } = event {
            tracing::warn!("{message}");
        }
    }
}

/// Keeps every event (for tests and for callers that render later).
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        self.0.lock().expect("events").push(event);
    }
}

impl Collect {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().expect("events").clone()
    }
}

/// Passes on everything but stage lines and notes: an operation run inside
/// another (restore inside the restore test) must not repeat its lines.
pub struct Quiet<'a>(pub &'a dyn EventSink);

impl EventSink for Quiet<'_> {
    fn emit(&self, event: Event) {
        match event {
            Event::Phase(p) if p.transfer().is_none() => {}
            Event::Note { .. } | Event::Planned { .. } => {}
            Event::CollectionStarted { .. } | Event::CollectionFinished { .. } => {}
            Event::Collections { .. } => {}
            other => self.0.emit(other),
        }
    }
}

/// How far one collection of a tracked operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionState {
    #[default]
    Pending,
    Running,
    Done,
    Failed,
}

/// One collection as a [`Tracker`] sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrackedCollection {
    pub name: String,
    pub target: Option<String>,
    pub state: CollectionState,
    pub total_bytes: u64,
    pub done_bytes: u64,
    pub total_items: u64,
    pub done_items: u64,
    /// Bytes staged for import (restore): the first half of a staged
    /// restore's work, imports the second.
    pub staged_bytes: u64,
    /// A restore's collection: its index and load are work too.
    #[serde(skip)]
    pub restored: bool,
    /// An index of the restored collection was built: what follows is
    /// its load (the last tenth of a restore's work).
    #[serde(skip)]
    pub indexed: bool,
    pub error: Option<String>,
}

impl TrackedCollection {
    /// 0..=100; 100 only once the collection is done.
    pub fn percent(&self) -> u8 {
        match self.state {
            CollectionState::Done => 100,
            CollectionState::Pending => 0,
            _ => (99.0 * self.fraction()) as u8,
        }
    }

    /// 0..=1 of the collection's work; a staged restore counts staging and
    /// importing as one half each, and a restore keeps its last tenth for
    /// building the index and loading.
    fn fraction(&self) -> f64 {
        let data = if self.staged_bytes > 0 && self.total_bytes > 0 {
            let work = (self.staged_bytes + self.done_bytes) as f64;
            (work / (2 * self.total_bytes) as f64).clamp(0.0, 1.0)
        } else {
            fraction(
                self.done_bytes,
                self.total_bytes,
                self.done_items,
                self.total_items,
            )
        };
        match self.restored {
            true => 0.9 * data + if self.indexed { 0.05 } else { 0.0 },
            false => data,
        }
    }
}

fn fraction(done_bytes: u64, total_bytes: u64, done_items: u64, total_items: u64) -> f64 {
    let f = if total_bytes > 0 {
        done_bytes as f64 / total_bytes as f64
    } else if total_items > 0 {
        done_items as f64 / total_items as f64
    } else {
        0.0
    };
    f.clamp(0.0, 1.0)
}

/// Folds events into progress: per collection, and overall as a percent
/// that never goes down and reaches 100 only through [`Tracker::finish`].
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    pub operation: Option<Operation>,
    pub collections: Vec<TrackedCollection>,
    /// The current stage, as a person reads it.
    pub phase: String,
    percent: u8,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Overall progress, 0..=100.
    pub fn percent(&self) -> u8 {
        self.percent
    }

    /// The operation succeeded.
    pub fn finish(&mut self) {
        self.percent = 100;
        for c in &mut self.collections {
            if c.state != CollectionState::Failed {
                c.state = CollectionState::Done;
            }
        }
    }

    /// The whole operation's fraction done: collections weighted by their
    /// bytes (or items), or counted when none has any.
    fn overall(&self) -> f64 {
        let weight = |c: &TrackedCollection| {
            if c.total_bytes > 0 {
                c.total_bytes as f64
            } else {
                c.total_items as f64
            }
        };
        let total: f64 = self.collections.iter().map(weight).sum();
        if total == 0.0 {
            if self.collections.is_empty() {
                return 0.0;
            }
            let finished = self
                .collections
                .iter()
                .filter(|c| matches!(c.state, CollectionState::Done | CollectionState::Failed))
                .count();
            return finished as f64 / self.collections.len() as f64;
        }
        let done: f64 = self
            .collections
            .iter()
            .map(|c| {
                let f = if matches!(c.state, CollectionState::Done) {
                    1.0
                } else {
                    c.fraction()
                };
                weight(c) * f
            })
            .sum();
        (done / total).clamp(0.0, 1.0)
    }

    fn unit_done(&mut self, collection: Option<usize>, bytes: u64) {
        let index = collection.or_else(|| (self.collections.len() == 1).then_some(0));
        match index.and_then(|i| self.collections.get_mut(i)) {
            Some(c) => {
                c.done_bytes += bytes;
                c.done_items += 1;
            }
            // Not attributed to a collection: spread over the whole.
            None => {
                if let Some(c) = self.collections.first_mut() {
                    c.done_bytes += bytes;
                    c.done_items += 1;
                }
            }
        }
    }

    /// Applies one event.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Planned {
                operation,
                collections,
            } => {
                self.operation = Some(*operation);
                let old = std::mem::take(&mut self.collections);
                let restored = matches!(operation, Operation::Restore | Operation::RestoreTest);
                self.collections = collections
                    .iter()
                    .map(|p| {
                        let prev = old.iter().find(|o| o.name == p.name);
                        TrackedCollection {
                            name: p.name.clone(),
                            target: p.target.clone(),
                            state: prev.map(|o| o.state).unwrap_or_default(),
                            total_bytes: p.bytes,
                            total_items: if restored { p.segments as u64 } else { p.files },
                            done_bytes: prev.map_or(0, |o| o.done_bytes),
                            done_items: prev.map_or(0, |o| o.done_items),
                            staged_bytes: prev.map_or(0, |o| o.staged_bytes),
                            restored,
                            indexed: prev.is_some_and(|o| o.indexed),
                            error: None,
                        }
                    })
                    .collect();
            }
            Event::Phase(p) => {
                self.phase = p.to_string();
                if *p == Phase::WritingMeta {
                    self.percent = self.percent.max(95);
                }
            }
            Event::CollectionStarted { index } => {
                if let Some(c) = self.collections.get_mut(*index) {
                    c.state = CollectionState::Running;
                }
            }
            Event::CollectionFinished { index, error } => {
                if let Some(c) = self.collections.get_mut(*index) {
                    c.state = if error.is_some() {
                        CollectionState::Failed
                    } else {
                        CollectionState::Done
                    };
                    c.error = error.clone();
                    if error.is_none() {
                        c.done_bytes = c.total_bytes;
                        c.done_items = c.total_items;
                    }
                }
            }
            Event::FileDone { collection, bytes } => self.unit_done(*collection, *bytes),
            Event::SegmentImported {
                collection, bytes, ..
            } => self.unit_done(Some(*collection), *bytes),
            Event::FileStaged { collection, bytes } => {
                if let Some(c) = self.collections.get_mut(*collection) {
                    c.staged_bytes += bytes;
                }
            }
            Event::RowsDone {
                collection, rows, ..
            } => {
                if let Some(c) = self.collections.get_mut(*collection) {
                    c.done_items += rows;
                }
            }
            Event::IndexBuilt { collection, .. } => {
                if let Some(c) = self.collections.get_mut(*collection) {
                    c.indexed = true;
                }
            }
            Event::Collections {
                verb,
                done,
                of,
                current,
            } => self.phase = collections_line(verb, *done, *of, current),
            Event::Copied { .. } | Event::Note { .. } | Event::Warning { .. } => {}
        }
        self.percent = self.percent.max((95.0 * self.overall()) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(op: Operation, bytes: &[u64]) -> Event {
        Event::Planned {
            operation: op,
            collections: bytes
                .iter()
                .enumerate()
                .map(|(i, b)| PlannedCollection {
                    name: format!("default.c{i}"),
                    segments: 2,
                    files: 4,
                    bytes: *b,
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn progress_rises_with_bytes_and_never_falls() {
        let mut t = Tracker::new();
        t.apply(&planned(Operation::Create, &[100, 300]));
        assert_eq!(t.percent(), 0);
        t.apply(&Event::CollectionStarted { index: 0 });
        t.apply(&Event::FileDone {
            collection: Some(1),
            bytes: 200,
        });
        assert_eq!(t.percent(), 47);
        assert_eq!(t.collections[1].percent(), 0, "pending until started");
        // A re-plan with bigger totals keeps what was done and the percent.
        t.apply(&planned(Operation::Create, &[100, 700]));
        assert_eq!(t.percent(), 47);
        assert_eq!(t.collections[1].done_bytes, 200);
        t.apply(&Event::Phase(Phase::WritingMeta));
        assert_eq!(t.percent(), 95);
        t.finish();
        assert_eq!(t.percent(), 100);
        assert!(t.collections.iter().all(|c| c.percent() == 100));
    }

    #[test]
    fn restores_count_segments_and_collections_without_data() {
        let mut t = Tracker::new();
        t.apply(&planned(Operation::Restore, &[0, 0]));
        t.apply(&Event::CollectionStarted { index: 0 });
        t.apply(&Event::SegmentImported {
            collection: 0,
            segment: 1,
            rows: 10,
            bytes: 0,
        });
        // Half the segments, before the index and the load: 0.9 × 0.5.
        assert_eq!(t.collections[0].percent(), 44);
        t.apply(&Event::CollectionFinished {
            index: 0,
            error: None,
        });
        assert_eq!(t.percent(), 47);
        t.apply(&Event::CollectionFinished {
            index: 1,
            error: Some("boom".into()),
        });
        assert_eq!(t.collections[1].state, CollectionState::Failed);
        let mut meta_only = Tracker::new();
        meta_only.apply(&Event::Planned {
            operation: Operation::Restore,
            collections: vec![PlannedCollection::default(), PlannedCollection::default()],
        });
        meta_only.apply(&Event::CollectionFinished {
            index: 0,
            error: None,
        });
        assert_eq!(meta_only.percent(), 47);
    }

    #[test]
    fn staging_is_half_of_a_staged_restore() {
        let mut t = Tracker::new();
        t.apply(&planned(Operation::Restore, &[100]));
        t.apply(&Event::CollectionStarted { index: 0 });
        t.apply(&Event::FileStaged {
            collection: 0,
            bytes: 50,
        });
        assert_eq!(t.percent(), 21);
        t.apply(&Event::SegmentImported {
            collection: 0,
            segment: 1,
            rows: 1,
            bytes: 50,
        });
        assert_eq!(t.percent(), 42);
        assert_eq!(
            t.collections[0].done_bytes, 50,
            "done bytes are imported bytes"
        );
        // Every segment imported; then the index is built; then the load.
        t.apply(&Event::FileStaged {
            collection: 0,
            bytes: 50,
        });
        t.apply(&Event::SegmentImported {
            collection: 0,
            segment: 2,
            rows: 1,
            bytes: 50,
        });
        assert_eq!(t.percent(), 85);
        t.apply(&Event::IndexBuilt {
            collection: 0,
            field: "v".into(),
            index: "v".into(),
            index_type: "HNSW".into(),
        });
        assert_eq!(t.percent(), 90);
    }

    #[test]
    fn phases_read_as_lines_and_quiet_keeps_transfers() {
        let p = Phase::Copying {
            files: 3,
            bytes: 10,
            shared: 2,
        };
        assert_eq!(
            p.to_string(),
            "copying 3 files (10 bytes), sharing 2 unchanged files with the base"
        );
        assert_eq!(p.transfer(), Some((3, "files", 10)));
        let all = Collect::default();
        let quiet = Quiet(&all);
        quiet.phase(Phase::WritingMeta);
        quiet.phase(p.clone());
        (&quiet as &dyn EventSink).warn("w");
        assert_eq!(all.events().len(), 2);
    }
}
