//! Before any copy, each collection of a physical backup is sampled,
//! flushed, listed again, and its rows compared with Milvus's
//! ([`super::row_check`]). First every collection is sampled and every
//! flush started, a database's collections in one `Flush` call
//! ([`FLUSH_BATCH`] at most), so the flushes of different collections
//! overlap; then each is waited for, listed and checked,
//! `backup.parallelism.backupCollection` collections at a time
//! ([`crate::config::tuning::Tuning::backup_collections`]). At `1`, each
//! collection is flushed on its own turn, one after another. A batch Milvus
//! refuses (one of its collections was dropped) is flushed again one
//! collection at a time. What each found is applied to the plan in plan
//! order, whatever order they finish in. The first failure stops the
//! others (their futures are dropped: a flush changes nothing a rerun
//! minds) and names its collection.
//!
//! Not here: the copies ([`super::copy`]), which one engine does for every
//! collection after this stage.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::listing::list_segments;
use super::plan::CollectionPlan;
use super::planning::vanished;
use super::row_check;
use super::run::BackupRun;
use crate::board::Board;
use crate::error::{Error, Result};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::Milvus;
use crate::model::meta::RowCheck;
use crate::model::selection::CollectionRef;
use crate::ops::verify::sample::{self, CollectionSample};

/// Collections of one database flushed by one `Flush` call, at most.
const FLUSH_BATCH: usize = 64;

/// A flush's sealed segments and timestamp.
type FlushStarted = (Vec<i64>, u64);

/// A collection before its wait: its sample (taken before the flush) and
/// its flush's segments and timestamp, when a batch started it.
#[derive(Default)]
struct Started {
    sample: Option<CollectionSample>,
    flush: Option<FlushStarted>,
}

/// What the flush of one collection found.
struct Flushed {
    index: usize,
    /// Listed again after the flush; `None`: dropped meanwhile (it was
    /// not named one by one), left out.
    listed: Option<CollectionPlan>,
    sample: Option<CollectionSample>,
    check: Option<RowCheck>,
}

impl BackupRun<'_> {
    /// Announces each collection; when the plan flushes, samples, flushes,
    /// lists and checks the collections, several at once. Returns the
    /// samples, in plan order.
    pub(super) async fn flush_all(&mut self, client: &dyn Milvus) -> Result<Vec<CollectionSample>> {
        let n = self.plan.collections.len();
        if !self.plan.flush {
            for (index, c) in self.plan.collections.iter().enumerate() {
                self.events.emit(Event::CollectionStarted { index });
                self.events.phase(Phase::Reading {
                    index,
                    of: n,
                    collection: c.collection.clone(),
                });
            }
            return Ok(Vec::new());
        }
        let names = (self.plan.collections.iter())
            .map(|c| c.collection.clone())
            .collect();
        let board = Board::new(self.events, names, "flushed");
        let width = self.plan.tuning.backup_collections.max(1);
        let started = self.start_flushes(client, width).await;
        let mut found: Vec<Option<Flushed>> = (0..n).map(|_| None).collect();
        {
            let this = &*self;
            let board = &board;
            // Made in a loop, not in a stream's closure: rustc proves them Send.
            let mut each = Vec::with_capacity(n);
            for (i, started) in started.into_iter().enumerate() {
                each.push(async move {
                    board.start(i);
                    let flushed = this.flush_collection(client, i, started).await;
                    board.finish(i);
                    flushed
                });
            }
            let mut flushing = futures::stream::iter(each).buffer_unordered(width);
            // The first failure drops the stream: the others stop.
            while let Some(flushed) = flushing.next().await {
                let flushed = flushed?;
                let i = flushed.index;
                found[i] = Some(flushed);
            }
        }
        let mut samples = Vec::new();
        for f in found.into_iter().flatten() {
            let i = f.index;
            match f.listed {
                Some(c) => self.plan.collections[i] = c,
                None => {
                    let c = &mut self.plan.collections[i];
                    c.dropped = true;
                    c.files.clear();
                    c.segments = 0;
                }
            }
            samples.extend(f.sample);
            self.row_checks[i] = f.check;
        }
        self.plan.recount();
        self.events.emit(self.plan.planned());
        Ok(samples)
    }

    /// Samples every collection (before its flush, so every sampled row
    /// is in the flushed segments), then starts the flushes, a database's
    /// collections by one call; what each got, in plan order. A batch
    /// that fails is left to [`Self::flush_collection`], one by one.
    async fn start_flushes(&self, client: &dyn Milvus, width: usize) -> Vec<Started> {
        let colls = &self.plan.collections;
        // Made in loops, not in a stream's closure: rustc proves them Send.
        let mut sampling = Vec::with_capacity(colls.len());
        for c in colls {
            sampling.push(
                async move {
                    sample::take(client, &c.meta).await.unwrap_or_else(|e| {
                        self.events.warn(format!(
                            "no row sample of {} (verify --restore-test will compare row counts only): {e}",
                            c.source
                        ));
                        None
                    })
                }
            );
        }
        let samples: Vec<Option<CollectionSample>> = futures::stream::iter(sampling)
            .buffered(width)
            .collect()
            .await;
        let mut started: Vec<Started> = (samples.into_iter())
            .map(|sample| Started {
                sample,
                flush: None,
            })
            .collect();
        if width == 1 {
            // One collection at a time flushes one at a time, as before.
            return started;
        }
        let mut by_db: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, c) in colls.iter().enumerate() {
            by_db.entry(c.source.db.clone()).or_default().push(i);
        }
        let batches: Vec<(String, &[usize])> = (by_db.iter())
            .flat_map(|(db, ix)| ix.chunks(FLUSH_BATCH).map(move |b| (db.to_string(), b)))
            .collect();
        let mut flushing = Vec::with_capacity(batches.len());
        for (db, batch) in batches {
            let names: Vec<String> = (batch.iter())
                .map(|i| colls[*i].source.name.clone())
                .collect();
            flushing.push(async move { (batch, client.flush_many(&db, &names).await) });
        }
        let flushed: Vec<(&[usize], Result<Vec<FlushStarted>>)> = futures::stream::iter(flushing)
            .buffer_unordered(width)
            .collect()
            .await;
        for (batch, result) in flushed {
            match result {
                Ok(each) => {
                    for (i, f) in batch.iter().zip(each) {
                        started[*i].flush = Some(f);
                    }
                }
                Err(e) => tracing::debug!("a batch flush failed, flushing one by one: {e}"),
            }
        }
        started
    }

    /// Waits for collection `i`'s flush (or flushes it, when no batch
    /// did), lists it again and compares its rows.
    async fn flush_collection(
        &self,
        client: &dyn Milvus,
        i: usize,
        started: Started,
    ) -> Result<Flushed> {
        let planned = &self.plan.collections[i];
        let coll = &planned.source;
        self.events.phase(Phase::Reading {
            index: i,
            of: self.plan.collections.len(),
            collection: coll.to_string(),
        });
        let sample = started.sample;
        let mut c = planned.clone();
        let flushed = async {
            let (segments, ts) = match started.flush {
                Some(f) => f,
                None => client.flush(&coll.db, &coll.name).await?,
            };
            wait_flushed(client, coll, &segments, ts, self.events).await?;
            list_segments(self.ctx, client, &self.plan, &mut c).await?;
            Ok::<_, Error>(ts)
        }
        .await;
        let flush_ts = match flushed {
            Ok(ts) => ts,
            Err(e) if vanished(client, coll, &self.plan.selection).await => {
                self.events.warn(format!(
                    "{coll} was dropped during the backup: left out ({e})"
                ));
                return Ok(Flushed {
                    index: i,
                    listed: None,
                    sample: None,
                    check: None,
                });
            }
            Err(e) => return Err(e.at("collection", coll)),
        };
        let check = self.check_rows(client, &c, i, flush_ts).await?;
        Ok(Flushed {
            index: i,
            listed: Some(c),
            sample,
            check,
        })
    }

    /// Compares the rows Milvus serves of flushed collection `c` (plan
    /// index `i`) with its files' ([`row_check`]): deletes the files lack
    /// fail the backup before anything is copied, unless the options allow
    /// them (then a warning, and the manifest records them).
    async fn check_rows(
        &self,
        client: &dyn Milvus,
        c: &CollectionPlan,
        i: usize,
        flush_ts: u64,
    ) -> Result<Option<RowCheck>> {
        let Some(check) = row_check::compare(self.ctx, client, c, i, flush_ts, self.events).await
        else {
            return Ok(None);
        };
        if check.unpersisted_deletes > 0 {
            if !self.plan.allow_unpersisted_deletes {
                return Err(row_check::unpersisted_error(&check, client.version()));
            }
            self.events
                .warn(row_check::unpersisted_warning(&check, client.version()));
        }
        Ok(Some(check))
    }
}

/// Waits (bounded) until the segments of a collection's flush persist.
async fn wait_flushed(
    client: &dyn Milvus,
    coll: &CollectionRef,
    segments: &[i64],
    ts: u64,
    events: &dyn EventSink,
) -> Result<u64> {
    const LIMIT: Duration = Duration::from_secs(600);
    let start = Instant::now();
    let mut announced = false;
    while !client
        .flush_done(&coll.db, &coll.name, segments, ts)
        .await?
    {
        if start.elapsed() > LIMIT {
            return Err(Error::remote(format!(
                "flush of {coll} did not finish within {} s — check Milvus's data node, or use --force to back up without flushing",
                LIMIT.as_secs()
            ))
            .temporary(true));
        }
        if !announced {
            events.phase(Phase::Flushing {
                collection: coll.to_string(),
                segments: segments.len(),
            });
            announced = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(ts)
}
