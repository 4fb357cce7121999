//! Progress on the terminal, rendered from the core's typed events as the
//! user guide shows it: numbered steps (`[1/5] Connecting to Milvus...`),
//! the core's phases as indented lines under them, and for transfers an
//! indicatif bar (items, bytes, rate, ETA) when stderr is a terminal or a
//! `Progress:` line every few seconds otherwise. Nothing but warnings with
//! `--json`, and nothing at all with `--quiet` (errors only). The steps say what the work does; where the core
//! does several at once (a streamed copy reads, compresses and uploads),
//! a step's line says so and carries what was measured.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use milvus_backup_core::events::{Event, EventSink, Phase};

use crate::output::{human_bytes, Output};

/// The log target of progress lines: written to the log file (when
/// `log.file` names one), never to the console, which shows them already.
pub const LOG_TARGET: &str = "milvus_backup_progress";

/// Which operation's steps to show.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// Phases only (delete, the restore test inside verify, …).
    Plain,
    Create,
    Restore,
    Verify,
}

impl Steps {
    /// Title, then the steps in the guide's words.
    fn labels(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Steps::Plain => ("", &[]),
            Steps::Create => (
                "Creating backup...",
                &[
                    "Connecting to Milvus...",
                    "Reading collection metadata...",
                    "Exporting data...",
                    "Compressing backup...",
                    "Uploading to storage...",
                ],
            ),
            Steps::Restore => (
                "Restoring backup...",
                &[
                    "Downloading backup from storage...",
                    "Decompressing backup...",
                    "Verifying backup integrity...",
                    "Creating collection...",
                    "Importing data...",
                    "Building index...",
                ],
            ),
            Steps::Verify => (
                "Verifying backup...",
                &[
                    "Checking backup metadata...",
                    "Verifying checksum...",
                    "Testing restore...",
                ],
            ),
        }
    }
}

/// How a restore reads the backup, for the lines of its first three steps
/// (the command knows it from the plan; the events do not say it).
#[derive(Default, Clone)]
pub struct RestoreNotes {
    pub download: String,
    pub decompress: String,
    pub verify: String,
}

pub struct CliProgress {
    interactive: bool,
    silent: bool,
    /// Warnings too are left out (`--quiet`: errors only).
    quiet: bool,
    steps: Steps,
    restore_notes: RestoreNotes,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    transfer: Option<Transfer>,
    /// The step shown last (1-based; 0: none yet).
    step: usize,
    /// Rows imported so far (restore).
    rows: i64,
    /// Index types created on the collection being restored, to show.
    indexes: Vec<String>,
    /// Indexes created on it.
    index_count: usize,
    /// When the last line of collections done was shown.
    collections_line: Option<Instant>,
}

/// The transfer shown now.
struct Transfer {
    bar: Option<ProgressBar>,
    /// The bar counts items, not bytes (a transfer without byte totals).
    by_items: bool,
    unit: &'static str,
    total: u64,
    done: u64,
    last_line: Instant,
    started: Instant,
}

impl CliProgress {
    /// Phases only, no numbered steps; `silent`: warnings only (and none
    /// with `--quiet`).
    pub fn new(out: &Output, silent: bool) -> CliProgress {
        CliProgress::with_steps(out, silent, Steps::Plain)
    }

    /// The guide's numbered steps for `steps`; prints its title at once.
    pub fn with_steps(out: &Output, silent: bool, steps: Steps) -> CliProgress {
        let p = CliProgress {
            interactive: std::io::stderr().is_terminal(),
            silent: silent || out.quiet || out.json,
            quiet: out.quiet,
            steps,
            restore_notes: RestoreNotes::default(),
            state: Mutex::new(State::default()),
        };
        let (title, _) = steps.labels();
        if !p.silent && !title.is_empty() {
            eprintln!("{title}");
        }
        p
    }

    pub fn set_restore_notes(&mut self, notes: RestoreNotes) {
        self.restore_notes = notes;
    }

    /// Shows step `n` (1-based) unless it or a later one is shown already.
    pub fn step(&self, n: usize) {
        let mut state = self.state.lock().unwrap();
        self.step_locked(&mut state, n);
    }

    fn step_locked(&self, state: &mut State, n: usize) {
        let (_, labels) = self.steps.labels();
        if self.silent || n == 0 || n > labels.len() || state.step >= n {
            return;
        }
        state.step = n;
        let text = format!("[{n}/{}] {}", labels.len(), labels[n - 1]);
        self.line(state, &text);
    }

    /// Starts the steps again from the first (the next collection of a
    /// restore goes through them all).
    fn restart_steps(state: &mut State) {
        state.step = 0;
        state.rows = 0;
        state.indexes.clear();
        state.index_count = 0;
    }

    fn line(&self, state: &State, text: &str) {
        match state.transfer.as_ref().and_then(|t| t.bar.as_ref()) {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// A line under the current step.
    fn detail(&self, state: &State, text: &str) {
        if self.steps == Steps::Plain {
            self.line(state, text);
        } else {
            self.line(state, &format!("  {text}"));
        }
    }

    /// Ends the bar shown now, if any.
    pub fn finish(&self) {
        if let Some(t) = self.state.lock().unwrap().transfer.take() {
            if let Some(bar) = t.bar {
                bar.finish_and_clear();
            }
        }
    }

    fn end_transfer(state: &mut State) {
        if let Some(bar) = state.transfer.take().and_then(|t| t.bar) {
            bar.finish_and_clear();
        }
    }

    fn start_transfer(&self, items: u64, unit: &'static str, bytes: u64) -> Option<Transfer> {
        if items == 0 && unit != "rows" {
            return None;
        }
        let bar = self.interactive.then(|| {
            let bar = ProgressBar::new(if bytes > 0 { bytes } else { items });
            let template = if unit == "rows" {
                "  {spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows {per_sec} ETA {eta}"
            } else if bytes > 0 {
                "  {spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
            } else {
                "  {spinner} [{elapsed_precise}] {wide_bar} {msg}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            if unit == "rows" {
                bar.set_length(items);
            } else {
                bar.set_message(format!("0/{items} {unit}"));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Some(Transfer {
            bar,
            by_items: bytes == 0,
            unit,
            total: items,
            done: 0,
            last_line: Instant::now(),
            started: Instant::now(),
        })
    }

    /// The step a phase belongs to, for the guide's numbering.
    fn step_of(&self, phase: &Phase) -> usize {
        match (self.steps, phase) {
            (
                Steps::Create,
                Phase::Reading { .. } | Phase::Flushing { .. } | Phase::CountingRows { .. },
            ) => 2,
            (Steps::Create, Phase::Copying { .. } | Phase::Exporting { .. }) => 3,
            (Steps::Restore, Phase::Loading { .. }) => 6,
            (Steps::Verify, Phase::RestoreTest { .. }) => 3,
            _ => 0,
        }
    }

    fn unit_done(&self, state: &mut State, bytes: u64) {
        let Some(t) = state.transfer.as_mut() else {
            return;
        };
        t.done += 1;
        let rows = (self.steps == Steps::Restore).then_some(state.rows);
        let message = match rows {
            Some(rows) => format!("{}/{} {}, {rows} entities", t.done, t.total, t.unit),
            None => format!("{}/{} {}", t.done, t.total, t.unit),
        };
        match &t.bar {
            Some(bar) => {
                bar.inc(if t.by_items { 1 } else { bytes });
                bar.set_message(message);
            }
            // Plain output: a line at most every 5 s, and at the end.
            None if t.last_line.elapsed() >= Duration::from_secs(5) || t.done == t.total => {
                t.last_line = Instant::now();
                let percent = t.done * 100 / t.total.max(1);
                eprintln!("  Progress: {percent}% ({message})");
            }
            None => {}
        }
    }

    /// Collections done out of the total, with the ones in flight: a line
    /// at most every 2 s (5 s without a terminal), and the last one; none
    /// for a single collection.
    fn collections(&self, state: &mut State, verb: &str, done: usize, of: usize, now: &[String]) {
        let every = Duration::from_secs(if self.interactive { 2 } else { 5 });
        let due = state.collections_line.is_none_or(|t| t.elapsed() >= every);
        if of < 2 || !(due || done == of) {
            return;
        }
        state.collections_line = Some(Instant::now());
        let line = milvus_backup_core::events::collections_line(verb, done, of, now);
        self.detail(state, &line);
    }

    fn phase(&self, state: &mut State, phase: Phase) {
        Self::end_transfer(state);
        if let Phase::Restoring { .. } = phase {
            // Every collection goes through the steps. Its files are read,
            // decoded and checked segment by segment on their way into the
            // import; the notes of steps 1-3 say how.
            Self::restart_steps(state);
            self.line(state, &phase.to_string());
            let notes = self.restore_notes.clone();
            for (n, note) in [
                (1, notes.download),
                (2, notes.decompress),
                (3, notes.verify),
            ] {
                self.step_locked(state, n);
                if !note.is_empty() {
                    self.detail(state, &note);
                }
            }
            self.step_locked(state, 4);
            return;
        }
        if let (Steps::Verify, Phase::Checking { .. }) = (self.steps, &phase) {
            // One pass per backup checks the meta files, then every file.
            Self::restart_steps(state);
            self.step_locked(state, 1);
            self.step_locked(state, 2);
        } else if let (
            Steps::Restore,
            Phase::Importing { .. } | Phase::Inserting { .. } | Phase::BulkImporting { .. },
        ) = (self.steps, &phase)
        {
            for ix in std::mem::take(&mut state.indexes) {
                self.detail(
                    state,
                    &format!("Index type: {ix} (Milvus builds it as the data arrives)"),
                );
            }
            self.step_locked(state, 5);
        } else {
            let n = self.step_of(&phase);
            self.step_locked(state, n);
        }
        self.detail(state, &phase.to_string());
        if let Some((items, unit, bytes)) = phase.transfer() {
            state.transfer = self.start_transfer(items, unit, bytes);
        }
    }
}

impl EventSink for CliProgress {
    fn emit(&self, event: Event) {
        match &event {
            Event::Warning { message } => tracing::warn!(target: LOG_TARGET, "{message}"),
            Event::Phase(phase) => tracing::info!(target: LOG_TARGET, "{phase}"),
            Event::Note { message } => tracing::info!(target: LOG_TARGET, "{message}"),
            _ => {}
        }
        let mut state = self.state.lock().unwrap();
        if let Event::Warning { message } = &event {
            if !self.quiet {
                self.line(&state, &format!("warning: {message}"));
            }
            return;
        }
        if self.silent {
            return;
        }
        match event {
            Event::Phase(phase) => self.phase(&mut state, phase),
            Event::Note { message } => self.detail(&state, &message),
            Event::FileDone { bytes, .. } => self.unit_done(&mut state, bytes),
            Event::SegmentImported { bytes, rows, .. } => {
                state.rows += rows;
                self.unit_done(&mut state, bytes);
            }
            Event::Collections {
                verb,
                done,
                of,
                current,
            } => self.collections(&mut state, verb, done, of, &current),
            Event::IndexBuilt {
                field, index_type, ..
            } => {
                state.indexes.push(format!("{index_type} on `{field}`"));
                state.index_count += 1;
            }
            Event::CollectionFinished { error: None, .. } if self.steps == Steps::Restore => {
                Self::end_transfer(&mut state);
                let loaded = state.step == 6;
                self.step_locked(&mut state, 6);
                let text = match (state.index_count, loaded) {
                    (0, _) => "no index to build (--restore_index builds the backup's)",
                    (_, true) => "Progress: 100% (index built, collection loaded)",
                    (_, false) => "Milvus builds the index in the background (the collection was not loaded at backup time)",
                };
                self.detail(&state, text);
            }
            Event::Copied {
                raw_bytes,
                stored_bytes,
                seconds,
                encoding,
            } => {
                Self::end_transfer(&mut state);
                self.step_locked(&mut state, 4);
                let ratio = if raw_bytes > 0 {
                    format!("{:.0}%", stored_bytes as f64 * 100.0 / raw_bytes as f64)
                } else {
                    "-".to_string()
                };
                self.detail(
                    &state,
                    &format!(
                        "Compression ratio: {ratio} ({} → {}, {encoding})",
                        human_bytes(raw_bytes),
                        human_bytes(stored_bytes)
                    ),
                );
                self.step_locked(&mut state, 5);
                let speed = if seconds > 0.0 {
                    stored_bytes as f64 / seconds / 1e6
                } else {
                    0.0
                };
                self.detail(
                    &state,
                    &format!(
                        "Upload speed: {speed:.1} MB/s ({} in {seconds:.1} s, streamed with the export)",
                        human_bytes(stored_bytes)
                    ),
                );
            }
            Event::RowsDone { rows, .. } => {
                let Some(t) = state.transfer.as_mut() else {
                    return;
                };
                t.done += rows;
                match &t.bar {
                    Some(bar) => bar.inc(rows),
                    // Plain output: a line at most every 5 s.
                    None if t.last_line.elapsed() >= Duration::from_secs(5) => {
                        let secs = t.started.elapsed().as_secs_f64().max(1e-3);
                        let rate = t.done as f64 / secs;
                        let eta = (t.total.saturating_sub(t.done)) as f64 / rate.max(1e-9);
                        t.last_line = Instant::now();
                        eprintln!(
                            "  Progress: {}/~{} rows ({rate:.0} rows/s, ETA {eta:.0} s)",
                            t.done, t.total
                        );
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }
}
