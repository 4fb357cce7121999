//! Progress on the terminal: an indicatif bar (files, bytes, rate, ETA) when
//! stderr is a terminal, plain step lines otherwise, nothing with `--quiet`
//! or `--json`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use milvus_backup::progress::Progress;

pub struct CliProgress {
    bar: Mutex<Option<ProgressBar>>,
    interactive: bool,
    silent: bool,
    /// For plain output: when the last line was printed, items done, items in all.
    plain: Mutex<(Instant, u64, u64)>,
    unit: Mutex<String>,
}

impl CliProgress {
    pub fn new(quiet: bool, json: bool) -> CliProgress {
        CliProgress {
            bar: Mutex::new(None),
            interactive: std::io::stderr().is_terminal(),
            silent: quiet || json,
            plain: Mutex::new((Instant::now(), 0, 0)),
            unit: Mutex::new(String::new()),
        }
    }
}

impl Progress for CliProgress {
    fn step(&self, message: &str) {
        if self.silent {
            return;
        }
        match self.bar.lock().unwrap().as_ref() {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    fn transfer_start(&self, items: u64, unit: &str, bytes: u64) {
        if self.silent || items == 0 {
            return;
        }
        *self.unit.lock().unwrap() = unit.to_string();
        if self.interactive {
            let bar = ProgressBar::new(bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(format!("0/{items} {unit}"));
            bar.enable_steady_tick(Duration::from_millis(200));
            *self.bar.lock().unwrap() = Some(bar);
        }
        *self.plain.lock().unwrap() = (Instant::now(), 0, items);
    }

    fn transfer_advance(&self, bytes: u64) {
        if self.silent {
            return;
        }
        let mut plain = self.plain.lock().unwrap();
        plain.1 += 1;
        let done = plain.1;
        let unit = self.unit.lock().unwrap();
        if let Some(bar) = self.bar.lock().unwrap().as_ref() {
            bar.inc(bytes);
            bar.set_message(format!("{done}/{} {unit}", plain.2));
            return;
        }
        // Plain output: a line at most every 5 s, and at the end.
        if plain.0.elapsed() >= Duration::from_secs(5) || done == plain.2 {
            plain.0 = Instant::now();
            eprintln!("  {done}/{} {unit} done", plain.2);
        }
    }

    fn transfer_end(&self) {
        if let Some(bar) = self.bar.lock().unwrap().take() {
            bar.finish_and_clear();
        }
    }

    fn warn(&self, message: &str) {
        match self.bar.lock().unwrap().as_ref() {
            Some(bar) => bar.println(format!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }
}
