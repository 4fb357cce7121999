//! How results reach the user: text lines on a terminal or in a pipe, or one
//! JSON object with `--json`. Errors are always one line on stderr, scrubbed
//! of secret values.

use milvus_backup_core::config::scrub;
use milvus_backup_core::ops::check::{CheckReport, StepStatus};
use milvus_backup_core::Error;
use serde::Serialize;

pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

impl Output {
    pub fn new(json: bool, quiet: bool) -> Output {
        Output { json, quiet }
    }

    pub fn warn(&self, message: &str) {
        if !self.quiet {
            eprintln!("warning: {message}");
        }
    }

    /// Prints an error as one line; with `--json` also as an object on stdout.
    pub fn error(&self, err: &Error, secrets: &[String]) {
        let message = scrub::one_line(&err.to_string(), secrets);
        if self.json {
            let context: serde_json::Map<String, serde_json::Value> = err
                .context()
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone().into()))
                .collect();
            self.json_value(&serde_json::json!({
                "ok": false,
                "error": {
                    "kind": err.kind(),
                    "message": message,
                    "operation": err.operation(),
                    "context": context,
                },
            }));
        }
        eprintln!("error: {message}");
    }

    pub fn json_value<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
        }
    }

    pub fn check_report(&self, report: &CheckReport) {
        if self.json {
            self.json_value(&serde_json::json!({
                "ok": report.passed(),
                "milvus_version": report.milvus_version,
                "steps": report.steps,
            }));
            return;
        }
        for step in &report.steps {
            if self.quiet && step.status != StepStatus::Fail {
                continue;
            }
            let tag = match step.status {
                StepStatus::Ok => "OK  ",
                StepStatus::Warn => "WARN",
                StepStatus::Fail => "FAIL",
                StepStatus::Skip => "SKIP",
            };
            println!("{tag} {} — {}", step.name, step.detail);
        }
        if !self.quiet {
            println!(
                "{}",
                if report.passed() {
                    "check passed"
                } else {
                    "check FAILED"
                }
            );
        }
    }
}

pub use milvus_backup_core::human_bytes;

/// `5m 30s`, `1h 2m 3s`, `4.2s` durations for people.
pub fn human_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds.round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, s) => format!("{h}h {m}m {s}s"),
    }
}
