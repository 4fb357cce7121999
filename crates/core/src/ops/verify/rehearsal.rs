//! The restore test (`verify --restore-test`), a rehearsal of a restore:
//! restore a backup into throwaway collections on the configured Milvus,
//! check what came back, drop them again.
//!
//! Each backed-up collection is recreated in the `default` database as
//! `<name>_vrt_<8 hex>` (the same tag for the whole run, so leftovers are
//! easy to find; a name already taken stops the test before anything is
//! created) with its schema and partitions but without aliases. Every
//! segment is staged and imported like a real restore, one problem per
//! failed import, so one bad segment does not hide another. Then:
//! - row counts: each segment's imported rows against the `num_of_rows`
//!   the backup recorded (equal without deletes, never more with them),
//!   and the collection's against the rows Milvus served when the backup
//!   was made, where the backup compared them (its manifest's
//!   `row_checks`): more means deleted rows came back;
//! - the row sample (`meta/sample.json`), when the backup has one for the
//!   collection: the collection is restored with its indexes, loaded, and
//!   the sampled rows are read back and compared field by field.
//!
//! A logical backup (rows as Parquet or JSON Lines files) is restored the
//! way `restore` does it — every file read, decoded and checked against
//! the manifest, its rows inserted — into a copy that keeps the backup's
//! primary keys (autoID off), so the sample taken when the backup was made
//! finds its rows. Its rows restored must equal the rows it recorded.
//!
//! A restore test that restored nothing — no collection, or no row of a
//! collection that had rows — is a problem, never a pass.
//!
//! The throwaway collection is dropped whatever happened; a failed drop is
//! a warning that names it. Problems name the segment's files (failed
//! import, wrong count) or the collection's data folder (sample mismatch).
//! Does not own: importing (`restore`) or what a sample holds (`sample`).

use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use crate::board::Board;
use crate::config::tuning::Tuning;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, Event, EventSink, Phase, Quiet};
use crate::milvus::{Milvus, DEFAULT_DB};
use crate::model::layout;
use crate::model::meta::{BackupInfo, CollectionBackupInfo, RowCheck, SegmentBackupInfo};
use crate::ops::restore::{self, Binlogs, RestoreOptions, RestorePlan};
use crate::ops::verify::sample::{self, CollectionSample};
use crate::repo::catalog::{self, Problem};
use crate::CancellationToken;

/// Marks throwaway collections: `<name>_vrt_<tag>`.
pub const THROWAWAY_MARK: &str = "_vrt_";
/// Sample differences reported per collection; the rest are counted.
const MAX_SAMPLE_PROBLEMS: usize = 10;

/// What the restore test did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreTestStats {
    /// The Milvus the test restored into, e.g. `127.0.0.1:19530 (v2.3.5)`.
    pub milvus: String,
    /// The backup's format: `binlog` (segments imported), `parquet` or
    /// `json` (rows inserted from its files).
    pub format: String,
    pub collections: Vec<CollectionTest>,
    pub duration_s: f64,
}

/// The restore test of one collection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CollectionTest {
    /// `db.collection` in the backup.
    pub collection: String,
    /// The throwaway collection, `default.<name>_vrt_<tag>`.
    pub restored_as: String,
    pub segments: usize,
    pub failed_segments: usize,
    /// A logical backup's data files restored (0 for a physical backup).
    #[serde(skip_serializing_if = "is_zero")]
    pub files: usize,
    /// Rows the backup recorded (before deletes).
    pub backed_up_rows: i64,
    /// Rows Milvus imported (after deletes).
    pub imported_rows: i64,
    /// Rows of the sample; 0 when the backup has none for the collection.
    pub sampled_rows: usize,
    pub sample_compared: bool,
    /// Problems this collection's test found.
    pub problems: usize,
    /// The throwaway collection was (or may have been) created.
    #[serde(skip)]
    pub created: bool,
    pub dropped: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Runs the restore test of backup `name`; `Err` only when it cannot run
/// at all (backup unreadable, Milvus unreachable, a throwaway name taken).
pub async fn run(
    ctx: &Context,
    name: &str,
    tuning: Tuning,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<(RestoreTestStats, Vec<Problem>)> {
    let started = Instant::now();
    let info = catalog::get(&ctx.backup_storage, name).await?;
    let samples = crate::ops::verify::sample::read(&ctx.backup_storage, name)
        .await
        .unwrap_or_else(|e| {
            events.warn(format!(
                "the row sample of `{name}` cannot be read ({e}); comparing row counts only"
            ));
            None
        })
        .unwrap_or_default();
    let client = ctx.milvus().await?;
    // Collections tested at once share the import jobs.
    let width = tuning
        .backup_collections
        .min(tuning.import_parallelism)
        .max(1);
    // The user's cancel, or the first test that failed: stops the others.
    let stop = cancel.child_token();
    let rehearsal = Rehearsal {
        ctx,
        client: client.as_ref(),
        info: &info,
        tuning: tuning.share_imports(width),
        events,
        cancel: &stop,
    };
    let mut stats = RestoreTestStats {
        milvus: format!("{} ({})", client.address(), client.version_text()),
        format: info.data_format(),
        ..Default::default()
    };
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut used: Vec<String> = Vec::new();
    for coll in &info.collection_backups {
        used.push(throwaway_name(&coll.collection_name, tag, &used));
    }
    let subjects: Vec<Subject> = (info.collection_backups.iter().zip(&used))
        .map(|(coll, target)| Subject {
            coll,
            source: format!("{}.{}", coll.db_name, coll.collection_name),
            target,
            sample: samples.of(&coll.db_name, &coll.collection_name),
        })
        .collect();
    let names = subjects.iter().map(|s| s.source.clone()).collect();
    let board = Board::new(events, names, "tested");
    let (rehearsal, board) = (&rehearsal, &board);
    // Made in a loop, not in a stream's closure: rustc proves them Send.
    let mut each = Vec::with_capacity(subjects.len());
    for (i, subject) in subjects.iter().enumerate() {
        each.push(async move {
            if rehearsal.cancel.is_cancelled() {
                return None;
            }
            board.start(i);
            let mut found = Vec::new();
            let (test, result) = rehearsal.test(i, subject, &mut found).await;
            board.finish(i);
            Some((i, test, found, result))
        });
    }
    let mut testing = futures::stream::iter(each).buffer_unordered(width);
    let (mut done, mut failure) = (Vec::new(), None);
    // The first failure of the environment stops the tests in flight;
    // each still drops its throwaway collection.
    while let Some(tested) = testing.next().await {
        let Some((i, test, found, result)) = tested else {
            continue;
        };
        match result {
            Err(e) if failure.is_none() => {
                stop.cancel();
                failure = Some(e.at("collection", &test.collection));
            }
            _ => done.push((i, test, found)),
        }
    }
    drop(testing);
    if let Some(e) = failure {
        return Err(e);
    }
    // In the backup's order, whatever order they finished in.
    done.sort_by_key(|(i, _, _)| *i);
    let mut problems = Vec::new();
    for (_, test, found) in done {
        stats.collections.push(test);
        problems.extend(found);
    }
    if stats.collections.is_empty() {
        problems.push(Problem {
            path: format!("meta/{}", layout::FULL_META),
            problem: "restore test: the backup holds no collection, so nothing was restored".into(),
        });
    }
    stats.duration_s = started.elapsed().as_secs_f64();
    Ok((stats, problems))
}

/// `<name>_vrt_<tag>`, unique within the run and short enough for Milvus.
fn throwaway_name(collection: &str, tag: &str, used: &[String]) -> String {
    let stem: String = collection.chars().take(200).collect();
    let base = format!("{stem}{THROWAWAY_MARK}{tag}");
    let mut name = base.clone();
    let mut n = 1;
    while used.contains(&name) {
        n += 1;
        name = format!("{base}_{n}");
    }
    name
}

/// One restore test run: what the tests of its collections share.
struct Rehearsal<'a> {
    ctx: &'a Context,
    client: &'a dyn Milvus,
    info: &'a BackupInfo,
    tuning: Tuning,
    events: &'a dyn EventSink,
    cancel: &'a CancellationToken,
}

/// The collection one test restores: as backed up, its throwaway name
/// (in the default database) and its row sample.
struct Subject<'a> {
    coll: &'a CollectionBackupInfo,
    /// `db.collection` in the backup.
    source: String,
    target: &'a str,
    sample: Option<&'a CollectionSample>,
}

impl Rehearsal<'_> {
    /// Tests collection `i` and drops its throwaway copy, whatever
    /// happened; the test, and `Err` for trouble of the environment.
    async fn test(
        &self,
        i: usize,
        subject: &Subject<'_>,
        problems: &mut Vec<Problem>,
    ) -> (CollectionTest, Result<()>) {
        let (target, sample) = (subject.target, subject.sample);
        self.events.phase(Phase::RestoreTest {
            index: i,
            of: self.info.collection_backups.len(),
            source: subject.source.clone(),
            target: format!("{DEFAULT_DB}.{target}"),
            sampled_rows: sample.map(|s| s.rows.len()),
        });
        let mut test = CollectionTest {
            collection: subject.source.clone(),
            restored_as: format!("{DEFAULT_DB}.{target}"),
            sampled_rows: sample.map_or(0, |s| s.rows.len()),
            ..Default::default()
        };
        let before = problems.len();
        let result = self.test_collection(subject, &mut test, problems).await;
        if result.is_ok() && problems.len() == before {
            if let Some(p) = nothing_restored(self.info, subject, &test) {
                problems.push(p);
            }
        }
        test.problems = problems.len() - before;
        // Always drop what we created, also after a failure — and never a
        // collection that was there before (the plan refuses those).
        test.dropped = !test.created
            || match self.client.drop_collection(DEFAULT_DB, target).await {
                Ok(()) => true,
                Err(e) if e.kind() == ErrorKind::NotFound => true,
                Err(e) => {
                    self.events.warn(format!(
                        "could not drop the throwaway collection {DEFAULT_DB}.{target}: {e} — drop it by hand"
                    ));
                    false
                }
            };
        (test, result)
    }

    /// Restores one collection under its throwaway name and checks it.
    /// Problems of the backup go to `problems`; `Err` only for trouble of
    /// the environment.
    async fn test_collection(
        &self,
        subject: &Subject<'_>,
        test: &mut CollectionTest,
        problems: &mut Vec<Problem>,
    ) -> Result<()> {
        if self.info.logical.is_some() {
            if !self.restore_rows(subject, test, problems).await? {
                return Ok(());
            }
        } else {
            let Some(plan) = self.recreate(subject, test, problems).await? else {
                return Ok(());
            };
            self.import_segments(subject, &plan, test, problems).await?;
        }
        match subject.sample {
            Some(sample) => self.compare_sample(subject, sample, test, problems).await,
            None => Ok(()),
        }
    }

    /// Creates the throwaway collection (schema, partitions, and indexes
    /// when a sample is to be compared) by a meta-only restore; its plan,
    /// or `None` (and a problem) when the backup's metadata cannot make it.
    async fn recreate(
        &self,
        subject: &Subject<'_>,
        test: &mut CollectionTest,
        problems: &mut Vec<Problem>,
    ) -> Result<Option<RestorePlan>> {
        let source = &subject.source;
        let mut plan = self.plan_copy(subject, true).await?;
        test.created = true;
        // Its own lines would repeat ours.
        let quiet = Quiet(self.events);
        if let Err(e) = restore::execute(self.ctx, &plan, &quiet, self.cancel).await {
            if matches!(e.kind(), ErrorKind::Unreachable | ErrorKind::Cancelled) {
                return Err(e);
            }
            problems.push(Problem {
                path: format!("meta/{}", layout::COLLECTION_META),
                problem: format!("restore test: {source} could not be recreated: {e}"),
            });
            return Ok(None);
        }
        // The data plan: the same targets, now with the segments, staged
        // in a folder of their own: the meta-only run removed its folder,
        // and a test running beside this one may have seen it without its
        // lease and be about to sweep it.
        plan.options.meta_only = false;
        let fresh = crate::repo::staging::new_dir(&self.info.name);
        if plan.staging_dir.is_some() {
            plan.staging_dir = Some(fresh.clone());
        }
        plan.journal_dir = fresh;
        Ok(Some(plan))
    }

    /// The restore of the throwaway copy: the collection under its
    /// throwaway name, without aliases (they belong to the real one), with
    /// indexes when a sample is to be compared (loading needs them), not
    /// loaded; a logical backup's copy keeps the backup's primary keys.
    async fn plan_copy(&self, subject: &Subject<'_>, meta_only: bool) -> Result<RestorePlan> {
        let source = &subject.source;
        let opts = RestoreOptions {
            backup_name: self.info.name.clone(),
            collections: vec![source.clone()],
            renames: vec![format!("{source}:{DEFAULT_DB}.{}", subject.target)],
            restore_index: subject.sample.is_some(),
            meta_only,
            load: false,
            // Aliases belong to the real collection.
            skip_aliases: true,
            tuning: Some(self.tuning),
            ..Default::default()
        };
        let mut plan = restore::plan_from(self.ctx, self.client, self.info, &opts).await?;
        for task in &mut plan.tasks {
            task.meta.aliases.clear();
            if self.info.logical.is_some() {
                keep_primary_keys(&mut task.meta.schema);
            }
        }
        Ok(plan)
    }

    /// A logical backup's collection restored whole, rows and all, by the
    /// restore itself, into a copy that keeps the backup's keys; its rows
    /// counted against the backup's. Whether it was restored (`false`, and
    /// a problem, when the restore failed on the backup).
    async fn restore_rows(
        &self,
        subject: &Subject<'_>,
        test: &mut CollectionTest,
        problems: &mut Vec<Problem>,
    ) -> Result<bool> {
        let source = &subject.source;
        let recorded = self.info.logical.as_ref().and_then(|l| {
            l.collections.iter().find(|c| {
                c.db_name == subject.coll.db_name
                    && c.collection_name == subject.coll.collection_name
            })
        });
        test.files = recorded.map_or(0, |c| c.files.len());
        test.backed_up_rows = recorded.map_or(0, |c| c.rows as i64);
        let data_dir = collection_data_dir(self.info, subject.coll);
        let plan = self.plan_copy(subject, false).await?;
        test.created = true;
        self.events.phase(Phase::Importing {
            collection: format!("{DEFAULT_DB}.{}", subject.target),
            segments: 0,
            bytes: recorded.map_or(0, |c| c.files.iter().map(|f| f.size).sum()),
        });
        match restore::execute(self.ctx, &plan, &Quiet(self.events), self.cancel).await {
            Ok(stats) => test.imported_rows = stats.entities,
            Err(e) if matches!(e.kind(), ErrorKind::Unreachable | ErrorKind::Cancelled) => {
                return Err(e)
            }
            Err(e) => {
                // The file the restore named, relative to the backup folder.
                let dir = layout::backup_dir(&self.info.name);
                let path = e
                    .context()
                    .iter()
                    .find(|(field, _)| *field == "key")
                    .and_then(|(_, key)| key.strip_prefix(&dir))
                    .map_or(data_dir, str::to_string);
                problems.push(Problem {
                    path,
                    problem: format!("restore test: {source} did not restore: {e}"),
                });
                return Ok(false);
            }
        }
        if test.imported_rows != test.backed_up_rows {
            problems.push(Problem {
                path: data_dir,
                problem: format!(
                    "restore test of {source}: {} rows restored but the backup recorded {}",
                    test.imported_rows, test.backed_up_rows
                ),
            });
        }
        Ok(true)
    }

    /// Stages and imports every segment like a real restore, one problem
    /// per failed import or wrong count.
    async fn import_segments(
        &self,
        subject: &Subject<'_>,
        plan: &RestorePlan,
        test: &mut CollectionTest,
        problems: &mut Vec<Problem>,
    ) -> Result<()> {
        let (ctx, events) = (self.ctx, self.events);
        // Imported like a restore: in write order, so duplicate keys
        // resolve as in the source and the sample compares equal.
        let segments = restore::in_write_order(restore::segments_with_files(subject.coll));
        let order = restore::ImportOrder::new();
        test.segments = segments.len();
        test.backed_up_rows = segments.iter().map(|(_, s)| s.num_of_rows).sum();
        events.phase(Phase::Importing {
            collection: format!("{DEFAULT_DB}.{}", subject.target),
            segments: segments.len(),
            bytes: segments.iter().map(|(_, s)| s.size.max(0) as u64).sum(),
        });
        let lease = match plan.staging_dir.as_deref() {
            Some(dir) => Some(restore::hold_staging(ctx, dir, events).await?),
            None => None,
        };
        let binlogs = Binlogs {
            ctx,
            client: self.client,
            plan,
            index: 0,
            task: &plan.tasks[0],
            events,
        };
        let mut outcomes: Vec<(&SegmentBackupInfo, Result<i64>)> =
            futures::stream::iter(segments.iter().enumerate().map(|(i, (partition, seg))| {
                let binlogs = &binlogs;
                let turn = order.turn(i);
                async move {
                    let r = binlogs.restore_segment(partition, seg, None, turn).await;
                    let r = r.map(|done| done.rows);
                    events.emit(Event::SegmentImported {
                        collection: 0,
                        segment: seg.segment_id,
                        rows: *r.as_ref().unwrap_or(&0),
                        bytes: seg.size.max(0) as u64,
                    });
                    (*seg, r)
                }
            }))
            .buffer_unordered(plan.tuning.import_parallelism)
            .collect()
            .await;
        drop(lease);
        if let Some(dir) = plan
            .staging_dir
            .as_deref()
            .filter(|_| !self.tuning.keep_temp_files)
        {
            // Failed stagings may leave files; sweep the plan's folder.
            let _ = ctx.milvus_storage.delete_prefix(dir).await;
        }
        outcomes.sort_by_key(|(s, _)| s.segment_id);
        for (seg, outcome) in outcomes {
            self.tally(subject, seg, outcome, test, problems)?;
        }
        let check = plan
            .manifest
            .as_ref()
            .and_then(|m| m.row_checks.iter().find(|c| c.collection == subject.source));
        if let Some(p) = check.and_then(|c| served_problem(subject, c, test)) {
            problems.push(p);
        }
        Ok(())
    }

    /// Counts one segment's import into the test; a failed import or a
    /// wrong count is a problem, an unreachable Milvus an error.
    fn tally(
        &self,
        subject: &Subject<'_>,
        seg: &SegmentBackupInfo,
        outcome: Result<i64>,
        test: &mut CollectionTest,
        problems: &mut Vec<Problem>,
    ) -> Result<()> {
        let (name, source) = (&self.info.name, &subject.source);
        match outcome {
            Ok(rows) => {
                tracing::debug!(
                    segment = seg.segment_id,
                    backed_up = seg.num_of_rows,
                    imported = rows,
                    delta_logs = seg.deltalogs.iter().map(|d| d.binlogs.len()).sum::<usize>(),
                    "restore test: segment imported"
                );
                test.imported_rows += rows;
                if let Some(p) = count_problem(name, source, seg, rows) {
                    test.failed_segments += 1;
                    problems.push(p);
                }
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::Unreachable | ErrorKind::Cancelled) => Err(e),
            Err(e) => {
                test.failed_segments += 1;
                problems.push(import_problem(name, source, seg, &e));
                Ok(())
            }
        }
    }

    /// Loads the copy and compares the sampled rows field by field; at
    /// most [`MAX_SAMPLE_PROBLEMS`] differences are problems of their own.
    async fn compare_sample(
        &self,
        subject: &Subject<'_>,
        sample: &CollectionSample,
        test: &mut CollectionTest,
        problems: &mut Vec<Problem>,
    ) -> Result<()> {
        let (client, target, source) = (self.client, subject.target, &subject.source);
        self.events.phase(Phase::ComparingSample {
            collection: format!("{DEFAULT_DB}.{target}"),
            rows: sample.rows.len(),
        });
        let data_dir = collection_data_dir(self.info, subject.coll);
        if let Err(e) = crate::ops::collection::load_and_wait(
            client,
            &crate::model::selection::CollectionRef {
                db: DEFAULT_DB.into(),
                name: target.to_string(),
            },
        )
        .await
        {
            problems.push(Problem {
                path: data_dir,
                problem: format!(
                    "restore test: the restored copy of {source} could not be loaded to compare the row sample: {e}"
                ),
            });
            return Ok(());
        }
        let differences = match sample::check(client, DEFAULT_DB, target, sample).await {
            // Rows of segments that did not import are missing for a reason
            // already reported; the rows that did import are still compared.
            Ok(d) if test.failed_segments > 0 => d
                .into_iter()
                .filter(|d| !d.ends_with(sample::MISSING))
                .collect(),
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::Unreachable => return Err(e),
            Err(e) => vec![format!("the sampled rows could not be read back: {e}")],
        };
        test.sample_compared = true;
        let more = differences.len().saturating_sub(MAX_SAMPLE_PROBLEMS);
        for d in differences.into_iter().take(MAX_SAMPLE_PROBLEMS) {
            problems.push(Problem {
                path: data_dir.clone(),
                problem: format!("restore test of {source}: {d}"),
            });
        }
        if more > 0 {
            problems.push(Problem {
                path: data_dir,
                problem: format!("restore test of {source}: {more} more sample difference(s)"),
            });
        }
        Ok(())
    }
}

/// A restore test of a collection that had rows and restored none, with no
/// other problem to say why: a problem of its own, never a pass. (Segments
/// with delete logs may rightly restore nothing: every row deleted.)
fn nothing_restored(
    info: &BackupInfo,
    subject: &Subject<'_>,
    test: &CollectionTest,
) -> Option<Problem> {
    let segments = || {
        subject
            .coll
            .partition_backups
            .iter()
            .flat_map(|p| &p.segment_backups)
    };
    if segments().any(|s| s.deltalogs.iter().any(|d| !d.binlogs.is_empty())) {
        return None;
    }
    let recorded = segments()
        .map(|s| s.num_of_rows)
        .sum::<i64>()
        .max(test.backed_up_rows);
    (recorded > 0 && test.imported_rows == 0).then(|| Problem {
        path: collection_data_dir(info, subject.coll),
        problem: format!(
            "restore test of {}: nothing was restored, but the backup recorded {recorded} rows",
            subject.source
        ),
    })
}

/// The copy keeps the backup's primary keys (an autoID collection would
/// make new ones), so the sampled rows are found by their keys.
fn keep_primary_keys(schema: &mut crate::model::meta::CollectionSchema) {
    schema.auto_id = false;
    for f in schema.fields.iter_mut().filter(|f| f.is_primary_key) {
        f.auto_id = false;
    }
}

/// A segment whose imported rows contradict the backed-up row count:
/// without deletes they must be equal, with deletes there can be fewer.
fn count_problem(name: &str, source: &str, seg: &SegmentBackupInfo, rows: i64) -> Option<Problem> {
    let has_deletes = seg.deltalogs.iter().any(|d| !d.binlogs.is_empty());
    let wrong = if has_deletes {
        rows > seg.num_of_rows
    } else {
        rows != seg.num_of_rows
    };
    wrong.then(|| Problem {
        path: segment_dir(name, seg),
        problem: format!(
            "restore test of {source}: segment {} imported {rows} rows but the backup recorded {}{} — its files: {}",
            seg.segment_id,
            seg.num_of_rows,
            if has_deletes { " before deletes" } else { "" },
            segment_files(name, seg).join(", ")
        ),
    })
}

/// A collection whose restored rows differ from the rows Milvus served
/// when the backup was made (the backup's row check): deleted rows that
/// came back because their deletes were not yet persisted, or rows lost.
/// Only when every segment imported (failed ones are problems already).
fn served_problem(
    subject: &Subject<'_>,
    check: &RowCheck,
    test: &CollectionTest,
) -> Option<Problem> {
    let expected = check.expected_rows();
    let restored = test.imported_rows;
    if test.failed_segments > 0 || restored == expected {
        return None;
    }
    let source = &subject.source;
    let why = if restored > expected {
        let pending = if check.unpersisted_deletes > 0 {
            format!(
                ", as the backup recorded: {} deletes were not yet persisted when it was made (--allow-unpersisted-deletes)",
                check.unpersisted_deletes
            )
        } else {
            String::new()
        };
        format!("{} deleted rows came back{pending}", restored - expected)
    } else {
        format!("{} rows are missing", expected - restored)
    };
    Some(Problem {
        // a row check is made of physical backups only
        path: format!("binlogs/insert_log/{}/", subject.coll.collection_id),
        problem: format!(
            "restore test of {source}: {restored} rows restored but {expected} expected (Milvus served {} when the backup was made) — {why}",
            check.served_rows
        ),
    })
}

/// A failed import, naming the segment's files (or the one Milvus named).
fn import_problem(name: &str, source: &str, seg: &SegmentBackupInfo, e: &Error) -> Problem {
    let reason = e.to_string();
    let files = segment_files(name, seg);
    // Milvus's reason names the binlog it could not read by its log id.
    let named: Vec<&String> = files
        .iter()
        .filter(|f| {
            f.rsplit('/')
                .next()
                .is_some_and(|id| reason.contains(&format!("/{id}")))
        })
        .collect();
    match named.as_slice() {
        [file] => Problem {
            path: (*file).clone(),
            problem: format!(
                "restore test of {source}: segment {} did not import: {reason}",
                seg.segment_id
            ),
        },
        _ => Problem {
            path: segment_dir(name, seg),
            problem: format!(
                "restore test of {source}: segment {} did not import: {reason} — its files: {}",
                seg.segment_id,
                files.join(", ")
            ),
        },
    }
}

/// The segment's insert-log folder, relative to the backup folder.
fn segment_dir(name: &str, seg: &SegmentBackupInfo) -> String {
    relative(
        name,
        &layout::backup_insert_log_dir(name, seg.collection_id, seg.partition_id, seg.segment_id),
    )
}

/// The collection's insert-log folder, relative to the backup folder.
fn collection_data_dir(info: &BackupInfo, coll: &CollectionBackupInfo) -> String {
    match info.logical {
        Some(_) => format!("data/{}/{}/", coll.db_name, coll.collection_name),
        None => format!("binlogs/insert_log/{}/", coll.collection_id),
    }
}

/// The segment's files, relative to the backup folder.
fn segment_files(name: &str, seg: &SegmentBackupInfo) -> Vec<String> {
    let (c, p, s) = (seg.collection_id, seg.partition_id, seg.segment_id);
    let insert = layout::backup_insert_log_dir(name, c, p, s);
    let delta = layout::backup_delta_log_dir(name, c, p, s);
    let mut files: Vec<String> = seg
        .binlogs
        .iter()
        .flat_map(|f| {
            f.binlogs
                .iter()
                .map(|b| format!("{insert}{}/{}", f.field_id, b.log_id))
                .collect::<Vec<_>>()
        })
        .chain(
            seg.deltalogs
                .iter()
                .flat_map(|f| &f.binlogs)
                .map(|b| format!("{delta}{}", b.log_id)),
        )
        .map(|k| relative(name, &k))
        .collect();
    files.sort();
    files
}

fn relative(name: &str, key: &str) -> String {
    key.strip_prefix(&layout::backup_dir(name))
        .unwrap_or(key)
        .to_string()
}

#[cfg(test)]
mod tests;
