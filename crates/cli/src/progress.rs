//! Progress on the terminal, rendered from the core's typed events: stage
//! lines, and for transfers an indicatif bar (items, bytes, rate, ETA) when
//! stderr is a terminal or a line every few seconds otherwise; nothing but
//! warnings with `--quiet` or `--json`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use milvus_backup_core::events::{Event, EventSink};

pub struct CliProgress {
    interactive: bool,
    silent: bool,
    transfer: Mutex<Option<Transfer>>,
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
    pub fn new(quiet: bool, json: bool) -> CliProgress {
        CliProgress {
            interactive: std::io::stderr().is_terminal(),
            silent: quiet || json,
            transfer: Mutex::new(None),
        }
    }

    fn line(&self, transfer: &Option<Transfer>, text: &str) {
        match transfer.as_ref().and_then(|t| t.bar.as_ref()) {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Ends the bar shown now, if any.
    pub fn finish(&self) {
        if let Some(t) = self.transfer.lock().unwrap().take() {
            if let Some(bar) = t.bar {
                bar.finish_and_clear();
            }
        }
    }

    fn start_transfer(&self, items: u64, unit: &'static str, bytes: u64) -> Option<Transfer> {
        if items == 0 && unit != "rows" {
            return None;
        }
        let bar = self.interactive.then(|| {
            let bar = ProgressBar::new(if bytes > 0 { bytes } else { items });
            let template = if unit == "rows" {
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows {per_sec} ETA {eta}"
            } else if bytes > 0 {
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
            } else {
                "{spinner} [{elapsed_precise}] {wide_bar} {msg}"
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
}

impl EventSink for CliProgress {
    fn emit(&self, event: Event) {
        let mut transfer = self.transfer.lock().unwrap();
        if let Event::Warning { message } = &event {
            self.line(&transfer, &format!("warning: {message}"));
            return;
        }
        if self.silent {
            return;
        }
        match event {
            Event::Phase(phase) => {
                if let Some(bar) = transfer.take().and_then(|t| t.bar) {
                    bar.finish_and_clear();
                }
                eprintln!("{phase}");
                if let Some((items, unit, bytes)) = phase.transfer() {
                    *transfer = self.start_transfer(items, unit, bytes);
                }
            }
            Event::Note { message } => self.line(&transfer, &message),
            Event::RowsDone { rows, .. } => {
                let Some(t) = transfer.as_mut() else { return };
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
                            "  {}/~{} rows ({rate:.0} rows/s, ETA {eta:.0} s)",
                            t.done, t.total
                        );
                    }
                    None => {}
                }
            }
            Event::FileDone { bytes, .. } | Event::SegmentImported { bytes, .. } => {
                let Some(t) = transfer.as_mut() else { return };
                t.done += 1;
                match &t.bar {
                    Some(bar) => {
                        bar.inc(if t.by_items { 1 } else { bytes });
                        bar.set_message(format!("{}/{} {}", t.done, t.total, t.unit));
                    }
                    // Plain output: a line at most every 5 s, and at the end.
                    None if t.last_line.elapsed() >= Duration::from_secs(5)
                        || t.done == t.total =>
                    {
                        t.last_line = Instant::now();
                        eprintln!("  {}/{} {} done", t.done, t.total, t.unit);
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }
}
