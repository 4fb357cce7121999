//! How hard the copy loops push storage: adaptive concurrency (AIMD), a
//! bandwidth cap, and a memory budget for copies that stream through the
//! tool.
//!
//! - **Concurrency** starts at `backup.parallelism.copydata`. After each
//!   window of as many completions as the current limit, the limit grows by
//!   an eighth when throughput grew by more than 5 %, up to twice the
//!   configured value; a `SlowDown`/503/timeout halves it (at least 1).
//! - **Retries**: this module is where copies are retried, whole, on an
//!   operator without OpenDAL's retry layer (see `storage::open`): a
//!   temporary error is retried up to [`ATTEMPTS`] times with exponential
//!   backoff and jitter ([`retry`]; the engine's [`CopyEngine::run`] is the
//!   same loop inside its limits). One loop, so every throttle reaches the
//!   concurrency limit and attempts do not multiply.
//! - **Rate** (`--rate-limit MB/s`, `backup.rateLimit`): each file takes
//!   its size from a shared schedule before it starts, so over a run the
//!   bytes copied per second stay at the cap (server-side copies count too:
//!   the cap protects the storage service).
//! - **Memory**: a streamed copy holds up to four chunks (read-ahead and
//!   multipart upload), a file of one chunk twice its size; it takes that
//!   many bytes from a fixed budget before
//!   it starts, so streamed copies in flight never buffer more than
//!   [`STREAM_BUDGET`], whatever the parallelism and file sizes.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use crate::error::{Error, ErrorKind, Result};
use crate::model::meta::ManifestFile;
use crate::storage::{ObjectInfo, Storage, SOURCE_CHANGED};

/// Bytes that streamed copies in flight may buffer, all together.
pub const STREAM_BUDGET: u64 = 128 * 1024 * 1024;
/// Chunk of streamed reads and multipart writes (see `storage`).
pub const STREAM_CHUNK: u64 = 8 * 1024 * 1024;
/// Attempts of a copy that failed with a temporary error.
pub const ATTEMPTS: u32 = 6;

/// One copy loop's pacing; shared by its copies.
pub struct CopyEngine {
    gate: Mutex<Gate>,
    freed: Notify,
    max: usize,
    rate: Option<Mutex<Rate>>,
    budget: Semaphore,
}

struct Gate {
    limit: usize,
    running: usize,
    window_done: usize,
    window_bytes: u64,
    window_start: Instant,
    last_rate: f64,
    backoffs: u64,
}

struct Rate {
    bytes_per_s: f64,
    next_free: Instant,
}

/// What the engine did, for the stats.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineStats {
    /// The concurrency limit at the end.
    pub final_limit: usize,
    /// Times a throttle or timeout halved it.
    pub backoffs: u64,
}

/// Units of the memory budget: KiB (the semaphore counts in u32).
const UNIT: u64 = 1024;

impl CopyEngine {
    /// `parallelism` copies at once to start with; `rate_mb_s` > 0 caps
    /// the bandwidth in MB/s (10^6 bytes).
    pub fn new(parallelism: usize, rate_mb_s: f64) -> CopyEngine {
        let start = parallelism.max(1);
        CopyEngine {
            gate: Mutex::new(Gate {
                limit: start,
                running: 0,
                window_done: 0,
                window_bytes: 0,
                window_start: Instant::now(),
                last_rate: 0.0,
                backoffs: 0,
            }),
            freed: Notify::new(),
            max: (start * 2).clamp(start, 256.max(start)),
            rate: (rate_mb_s > 0.0).then(|| {
                Mutex::new(Rate {
                    bytes_per_s: rate_mb_s * 1e6,
                    next_free: Instant::now(),
                })
            }),
            budget: Semaphore::new((STREAM_BUDGET / UNIT) as usize),
        }
    }

    /// The most copies that can ever run at once: the width the copy loop
    /// should poll at (`buffer_unordered`).
    pub fn width(&self) -> usize {
        self.max
    }

    pub fn stats(&self) -> EngineStats {
        let g = self.gate.lock().expect("gate");
        EngineStats {
            final_limit: g.limit,
            backoffs: g.backoffs,
        }
    }

    /// The memory a streamed copy of `size` bytes may buffer: a file of
    /// one chunk is held at most twice (read, and the single PUT's body)
    /// plus the pump's buffer and an encoder's state; a larger one holds
    /// two chunks read ahead and two multipart parts in flight.
    pub fn stream_cost(size: u64) -> u64 {
        if size <= STREAM_CHUNK {
            2 * size + 1024 * 1024
        } else {
            (4 * STREAM_CHUNK).min(STREAM_BUDGET)
        }
    }

    /// Runs one copy of `size` bytes (`streamed`: through the tool) under
    /// the engine's limits, retrying it (see [`retry`]) when it fails for a
    /// while; a push-back halves the concurrency first.
    pub async fn run<T, F, Fut>(&self, size: u64, streamed: bool, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.pace(size).await;
        let _memory = if streamed {
            let units = Self::stream_cost(size).div_ceil(UNIT) as u32;
            Some(self.budget.acquire_many(units).await.expect("budget open"))
        } else {
            None
        };
        retry(|| {
            let attempt = op();
            async move {
                self.enter().await;
                let result = attempt.await;
                let pushed_back =
                    matches!(&result, Err(e) if pushback(e.kind()) && e.is_temporary());
                self.leave(size, result.is_ok(), pushed_back);
                result
            }
        })
        .await
    }

    /// Waits for the bandwidth schedule to have room for `size` bytes.
    async fn pace(&self, size: u64) {
        let Some(rate) = &self.rate else { return };
        let start = {
            let mut r = rate.lock().expect("rate");
            let now = Instant::now();
            let start = r.next_free.max(now);
            r.next_free = start + Duration::from_secs_f64(size as f64 / r.bytes_per_s);
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }

    async fn enter(&self) {
        loop {
            let notified = self.freed.notified();
            {
                let mut g = self.gate.lock().expect("gate");
                if g.running < g.limit {
                    g.running += 1;
                    return;
                }
            }
            notified.await;
        }
    }

    fn leave(&self, size: u64, ok: bool, pushed_back: bool) {
        let mut g = self.gate.lock().expect("gate");
        g.running -= 1;
        if pushed_back {
            g.limit = (g.limit / 2).max(1);
            g.backoffs += 1;
            g.window_done = 0;
            g.window_bytes = 0;
            g.window_start = Instant::now();
            g.last_rate = 0.0;
        } else if ok {
            g.window_done += 1;
            g.window_bytes += size;
            if g.window_done >= g.limit {
                let secs = g.window_start.elapsed().as_secs_f64().max(1e-6);
                let rate = g.window_bytes as f64 / secs;
                if rate > g.last_rate * 1.05 && g.limit < self.max && g.last_rate > 0.0 {
                    g.limit = (g.limit + (g.limit / 8).max(1)).min(self.max);
                }
                g.last_rate = rate;
                g.window_done = 0;
                g.window_bytes = 0;
                g.window_start = Instant::now();
            }
        }
        drop(g);
        self.freed.notify_waiters();
    }
}

/// Runs a copy, again after a backoff while it fails with a temporary
/// error, up to [`ATTEMPTS`] times: the one retry loop of copies.
pub async fn retry<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if e.is_temporary() && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                let jitter = u64::from(std::process::id() % 97) + u64::from(attempt) * 31;
                let delay = Duration::from_millis((200u64 << attempt.min(5)) + jitter);
                tracing::debug!("retrying in {delay:?} after: {e}");
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

/// Where a staged file goes: `dst` of `to` (Milvus's storage), for
/// `segment` of backup `backup` (named in the damage message).
pub struct StageTarget<'a> {
    pub to: &'a Storage,
    pub dst: &'a str,
    pub segment: i64,
    pub backup: &'a str,
}

/// Stages one backup file of a restore (`key` in `from`, the backup
/// storage, listed in the manifest as `f`) into the target, server-side
/// where it can: conditional on the ETag the backup recorded, and checked
/// against the manifest's SHA-256 where the service reports one. A file
/// changed since the backup was made is damage. Returns the bytes staged.
pub async fn stage_checked(
    from: &Storage,
    key: &str,
    f: &ManifestFile,
    target: StageTarget<'_>,
) -> Result<u64> {
    let StageTarget {
        to,
        dst,
        segment,
        backup,
    } = target;
    let damaged = |what: String| {
        Error::corrupt(format!(
            "backup file `{key}` is damaged: {what} — nothing of segment {segment} was imported; run `milvus-backup verify --deep -n {backup}`"
        ))
        .at("key", key)
    };
    let listed = ObjectInfo {
        key: key.to_string(),
        size: f.size,
        etag: f.etag.clone(),
    };
    let out = match from.copy_listed(&listed, to, dst).await {
        Err(e) if e.context().iter().any(|(k, _)| *k == SOURCE_CHANGED) => {
            return Err(damaged(
                "changed since the backup was made (its ETag is not the one recorded)".into(),
            ))
        }
        r => r?,
    };
    if let Some(got) = out.sha256.as_deref() {
        if !f.sha256.is_empty() && got != f.sha256 {
            return Err(damaged(format!(
                "SHA-256 {got}, manifest says {}",
                f.sha256
            )));
        }
    }
    if out.bytes != f.size {
        return Err(damaged(format!(
            "size {}, manifest says {}",
            out.bytes, f.size
        )));
    }
    Ok(out.bytes)
}

/// Errors that mean "too fast": throttling, an overloaded or timed-out service.
fn pushback(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Throttled | ErrorKind::Unreachable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_throttle_halves_the_limit_and_the_copy_is_retried() {
        let engine = CopyEngine::new(8, 0.0);
        let calls = AtomicUsize::new(0);
        let out = engine
            .run(10, false, || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(Error::new(ErrorKind::Throttled, "SlowDown").temporary(true))
                } else {
                    Ok(7)
                }
            })
            .await
            .unwrap();
        assert_eq!(out, 7);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(engine.stats().final_limit, 4);
        assert_eq!(engine.stats().backoffs, 1);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let engine = CopyEngine::new(2, 0.0);
        let calls = AtomicUsize::new(0);
        let err = engine
            .run(1, true, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::corrupt("bad"))
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn no_more_than_the_limit_run_at_once() {
        let engine = CopyEngine::new(3, 0.0);
        let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let runs = (0..20).map(|_| {
            engine.run(1, false, || async {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        });
        futures::future::try_join_all(runs).await.unwrap();
        assert!(peak.load(Ordering::SeqCst) <= engine.width());
        assert!(peak.load(Ordering::SeqCst) >= 2);
    }

    #[tokio::test]
    async fn the_rate_cap_spaces_files_by_their_size() {
        // 1 MB/s: three files of 50 kB start 50 ms apart.
        let engine = CopyEngine::new(4, 1.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            engine
                .run(50_000, false, || async { Ok(()) })
                .await
                .unwrap();
        }
        let took = t0.elapsed().as_secs_f64();
        assert!((0.095..0.2).contains(&took), "{took}");
    }

    #[test]
    fn streamed_copies_fit_the_budget_whatever_their_size() {
        assert_eq!(CopyEngine::stream_cost(1), 2 + 1024 * 1024);
        // Budget for at least a dozen one-chunk files at once.
        assert!(STREAM_BUDGET / CopyEngine::stream_cost(5 << 20) >= 11);
        assert_eq!(CopyEngine::stream_cost(u64::MAX), 4 * STREAM_CHUNK);
        assert!(STREAM_BUDGET / CopyEngine::stream_cost(u64::MAX) >= 4);
    }
}
