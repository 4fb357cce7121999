//! How long a physical restore's imports would take against inserting the
//! same rows, so that a plan can say when Milvus's import is the slow way.
//!
//! Milvus 2.2 and 2.3 import one segment per job, and a standalone server
//! runs one job at a time, each for a few seconds however small the
//! segment: a partition-key collection with 1,024 partitions of a few rows
//! each took 2,406 s to import on 2.3.5, where inserting its 6,000 rows
//! took 4 s. The figures here are those measurements, not promises.
//!
//! Does not own: planning ([`super::plan`]), running the imports
//! ([`super::binlog`]) or the inserts (`super::insert`, which the warning
//! offers).

use serde::Serialize;

use crate::ops::restore::tasks::{CollectionTask, ImportJob};

/// Seconds one import job takes on Milvus 2.2/2.3, whatever its size
/// (2,406 s for 1,024 segments measured on 2.3.5).
const SECONDS_PER_IMPORT_JOB: f64 = 2.35;
/// Raw bytes a second Milvus imports, beyond the per-job cost.
const IMPORT_BYTES_PER_S: f64 = 100e6;
/// Rows a second inserted in batches (6,000 rows with 1,024 partitions in
/// 4 s, 1,500 rows per second at worst; larger rows go by bytes).
const INSERT_BYTES_PER_S: f64 = 20e6;
const INSERT_SECONDS_PER_FILE: f64 = 1.0;

/// A collection whose imports would be far slower than inserting its rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowImport {
    /// The target, `db.coll`.
    pub collection: String,
    pub segments: usize,
    pub rows: i64,
    /// Estimated seconds of Milvus's imports (one job per segment).
    pub import_s: f64,
    /// Estimated seconds of inserting the rows.
    pub insert_s: f64,
}

impl SlowImport {
    /// One line for the plan's warnings.
    pub fn describe(&self) -> String {
        format!(
            "{}: {} segment(s) of {} rows in all — Milvus imports one segment per job, about {:.0} s here, where inserting the rows would take about {:.0} s; for a faster restore add --import-mode insert (the binlogs are read here and their rows inserted)",
            self.collection, self.segments, self.rows, self.import_s, self.insert_s
        )
    }
}

/// The estimate for one collection of a physical restore, when importing
/// would take more than a minute and over five times as long as inserting.
pub(crate) fn slow_import(task: &CollectionTask) -> Option<SlowImport> {
    let mut s = slow_jobs(&task.imports)?;
    s.collection = task.target.to_string();
    Some(s)
}

fn slow_jobs(imports: &[ImportJob]) -> Option<SlowImport> {
    let segments = imports.len();
    let rows: i64 = imports.iter().map(|j| j.rows).sum();
    let bytes: u64 = imports.iter().map(|j| j.bytes).sum();
    let import_s = segments as f64 * SECONDS_PER_IMPORT_JOB + bytes as f64 / IMPORT_BYTES_PER_S;
    let insert_s = INSERT_SECONDS_PER_FILE + bytes as f64 / INSERT_BYTES_PER_S;
    (import_s > 60.0 && import_s > 5.0 * insert_s).then(|| SlowImport {
        collection: String::new(),
        segments,
        rows,
        import_s,
        insert_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_segments(n: usize, bytes: u64) -> Vec<ImportJob> {
        (0..n)
            .map(|i| ImportJob {
                partition: format!("p{i}"),
                segment: i as i64,
                file: None,
                rows: 6,
                bytes,
            })
            .collect()
    }

    #[test]
    fn many_tiny_segments_are_slow_to_import_and_few_large_ones_are_not() {
        let slow = slow_jobs(&with_segments(1024, 400)).expect("1,024 tiny segments");
        assert_eq!((slow.segments, slow.rows), (1024, 6144));
        assert!(slow.import_s > 2000.0 && slow.insert_s < 5.0, "{slow:?}");
        assert!(slow.describe().contains("--import-mode insert"));
        assert_eq!(slow_jobs(&with_segments(10, 400)), None, "ten segments");
        assert_eq!(
            slow_jobs(&with_segments(40, 512 << 20)),
            None,
            "large segments"
        );
    }
}
