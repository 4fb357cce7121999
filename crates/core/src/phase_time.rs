//! Wall-clock time per phase of an operation whose parts run in parallel:
//! the union of the intervals each phase was busy, not their sum (four
//! imports of 10 s at once are 10 s of import, not 40).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// Intervals per phase, recorded from any task.
#[derive(Default)]
pub struct Spans(Mutex<BTreeMap<&'static str, Vec<(Instant, Instant)>>>);

impl Spans {
    pub fn record(&self, phase: &'static str, start: Instant, end: Instant) {
        self.0
            .lock()
            .expect("spans")
            .entry(phase)
            .or_default()
            .push((start, end.max(start)));
    }

    /// Seconds of wall time each phase was busy.
    pub fn wall(&self) -> WallSplit {
        let spans = self.0.lock().expect("spans");
        let get = |p: &str| spans.get(p).map(|v| union_s(v)).unwrap_or(0.0);
        WallSplit {
            create_s: get(CREATE),
            staging_s: get(STAGING),
            import_s: get(IMPORT),
            load_s: get(LOAD),
        }
    }
}

pub const CREATE: &str = "create";
pub const STAGING: &str = "staging";
pub const IMPORT: &str = "import";
pub const LOAD: &str = "load";

/// A restore's wall time by phase (phases may overlap each other: staging
/// of one segment runs while another imports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct WallSplit {
    /// Creating collections, partitions and indexes.
    pub create_s: f64,
    pub staging_s: f64,
    /// Milvus importing (and building what the import builds).
    pub import_s: f64,
    pub load_s: f64,
}

fn union_s(spans: &[(Instant, Instant)]) -> f64 {
    let mut v = spans.to_vec();
    v.sort();
    let mut total = 0.0;
    let mut cur: Option<(Instant, Instant)> = None;
    for (s, e) in v {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += (ce - cs).as_secs_f64();
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = cur {
        total += (ce - cs).as_secs_f64();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn overlapping_intervals_count_once() {
        let t = Instant::now();
        let s = |a: u64| t + Duration::from_secs(a);
        let spans = Spans::default();
        spans.record(IMPORT, s(0), s(10));
        spans.record(IMPORT, s(2), s(8));
        spans.record(IMPORT, s(9), s(12));
        spans.record(IMPORT, s(20), s(21));
        spans.record(STAGING, s(0), s(1));
        let w = spans.wall();
        assert_eq!(w.import_s, 13.0);
        assert_eq!(w.staging_s, 1.0);
        assert_eq!(w.load_s, 0.0);
    }
}
