//! The rows of an export, read in primary-key ranges chosen from the data
//! ([`ranges`]: about [`RANGE_ROWS`] rows each, int64 or varchar keys),
//! several ranges at once, each into its own files with its row count and
//! digest (recorded in a logical backup's meta as [`LogicalRange`]s).
//!
//! Given the ranges of a base backup (an incremental backup), the live
//! collection is digested on the base's boundaries first: a range whose
//! digest equals the base's keeps the base's files (shared, not read
//! again), a changed one is exported anew — split in new ranges when it
//! grew past one and a half ranges' rows, so that new key space gets
//! ranges of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::proto::schema::{field_data, scalar_field};
use crate::milvus::{Milvus, QueryPage};
use crate::model::meta::{DataFile, LogicalCollection, LogicalRange};
use crate::model::selection::CollectionRef;
use crate::ops::logical::digest::{self, RangeDigest};
use crate::ops::logical::export_plan::{partition_dir, ExportPlan};
use crate::ops::logical::fields::{row_bytes, Kind};
use crate::ops::logical::files::{FileWriter, Location};
use crate::ops::logical::ranges::{Key, Live, PartRanges, RANGE_ROWS};
use crate::ops::logical::read_back::{self, ValueDigest};

/// What an export read: its own new files, the base's files it keeps,
/// every range, and the timestamp the rows were read at.
pub(crate) struct ExportedRows {
    pub files: Vec<DataFile>,
    /// Files of the base backup whose ranges did not change.
    pub shared: Vec<DataFile>,
    pub ranges: Vec<LogicalRange>,
    pub ts: u64,
}

/// One range to export: a partition (or all) and its key limits; `index`
/// names its files (`part-<index>-`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Unit {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    pub from: Option<Key>,
    pub to: Option<Key>,
}

/// Reads every row into files under `prefix` (sharing `base`'s files of
/// unchanged ranges). Each started file's path is pushed to `written`, so
/// a caller can remove them after a failure.
pub(crate) async fn export_rows(
    client: &dyn Milvus,
    plan: &ExportPlan,
    location: &Location,
    prefix: &str,
    written: &Mutex<Vec<String>>,
    base: Option<&LogicalCollection>,
    events: &dyn EventSink,
) -> Result<ExportedRows> {
    let c = &plan.collection;
    let pk = plan
        .fields
        .iter()
        .find(|f| f.is_primary)
        .ok_or_else(|| Error::invalid_input(format!("{c} has no primary key")))?;
    let live = snapshot(client, plan).await?;
    let parts = parts(plan);
    let base_ranges: &[LogicalRange] = base.map_or(&[], |b| &b.ranges);
    let mut next_index = base.map_or(0, first_free_index);
    let mut units = Vec::new();
    let mut kept = Vec::new();
    for part in &parts {
        let of_part: Vec<&LogicalRange> = base_ranges
            .iter()
            .filter(|r| &r.partition == part)
            .collect();
        if of_part.is_empty() {
            units.extend(fresh_units(&live, part, &mut next_index).await?);
            continue;
        }
        let r = PartRanges {
            partition: part.clone(),
            bounds: of_part.iter().filter_map(|x| x.to.clone()).collect(),
        };
        let now = live.digests(&r, plan.streams).await?;
        for (i, (was, d)) in of_part.iter().zip(now).enumerate() {
            if was.rows == d.rows && was.digest == d.hex() {
                kept.push(*was);
                continue;
            }
            let (from, to) = r.limits(i);
            let mut cuts = Vec::new();
            if d.rows as usize > RANGE_ROWS * 3 / 2 {
                cuts = live
                    .boundaries_within(part.as_deref(), (from, to), RANGE_ROWS)
                    .await?;
            }
            let mut lower = from.cloned();
            for cut in cuts.into_iter().map(Some).chain([to.cloned()]) {
                units.push(unit(&mut next_index, part, lower.as_ref(), cut.as_ref()));
                lower = cut;
            }
        }
    }
    if !kept.is_empty() {
        events.note(format!(
            "{c}: {} of {} key range(s) unchanged since the base: their files are shared",
            kept.len(),
            kept.len() + units.len()
        ));
    }
    let read_back_us = AtomicU64::new(0);
    let done = run_units(
        &live,
        plan,
        units,
        (location, prefix),
        written,
        &read_back_us,
        events,
    )
    .await?;
    let mut files: Vec<DataFile> = Vec::new();
    let mut ranges: Vec<LogicalRange> = Vec::new();
    for (r, f) in done {
        ranges.push(r);
        files.extend(f);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let base_files: HashMap<&str, &DataFile> = base
        .map(|b| b.files.iter().map(|f| (f.path.as_str(), f)).collect())
        .unwrap_or_default();
    let mut shared = Vec::new();
    for r in &kept {
        for p in &r.files {
            let f = base_files.get(p.as_str()).ok_or_else(|| {
                Error::corrupt(format!(
                    "the base backup lists range file `{p}` of {c} among no data files — run `milvus-backup verify` on it"
                ))
            })?;
            shared.push((*f).clone());
        }
    }
    ranges.extend(kept.into_iter().cloned());
    ranges.sort_by(|a, b| {
        (&a.partition, a.from.is_some(), &a.from).cmp(&(&b.partition, b.from.is_some(), &b.from))
    });
    if !files.is_empty() {
        events.note(format!(
            "{c}: read back {} data file(s) as a restore reads them, rows and values as written ({:.2} s)",
            files.len(),
            read_back_us.load(Ordering::Relaxed) as f64 / 1e6
        ));
    }
    let all_rows: u64 = ranges.iter().map(|r| r.rows).sum();
    let int_pk = (pk.kind != Kind::VarChar).then_some(pk.name.as_str());
    check_count(client, c, live.ts, plan.travel, all_rows, int_pk, events).await?;
    Ok(ExportedRows {
        files,
        shared,
        ranges,
        ts: live.ts,
    })
}

/// The collection as of one strongly consistent probe: its session
/// timestamp (or now) is the one every later query reads at.
async fn snapshot<'a>(client: &'a dyn Milvus, plan: &'a ExportPlan) -> Result<Live<'a>> {
    Live {
        client,
        collection: &plan.collection,
        fields: &plan.fields,
        hash_key: true,
        ts: 0,
        travel: false,
    }
    .at_snapshot(plan.travel)
    .await
}

/// The partitions read one by one, or `None`: the whole collection.
fn parts(plan: &ExportPlan) -> Vec<Option<String>> {
    if plan.partitions.is_empty() {
        vec![None]
    } else {
        plan.partitions.iter().cloned().map(Some).collect()
    }
}

/// The query limit an export works within: every row read and decoded in
/// the key ranges and streams [`export_rows`] would use, then dropped
/// (no file, no digest). Returns the rows read.
pub(crate) async fn read_rows(
    client: &dyn Milvus,
    plan: &ExportPlan,
    events: &dyn EventSink,
) -> Result<u64> {
    let (live, units) = snapshot_units(client, plan).await?;
    exporting(plan, units.len(), events);
    let per_row = row_bytes(&plan.fields, 64) as u64;
    let live = &live;
    let counts: Vec<u64> = futures::stream::iter(units)
        .map(|u| async move {
            let (mut last, mut rows) = (None, 0u64);
            while let Some((_cols, n)) = live
                .next_page_within(
                    u.partition.as_deref(),
                    (u.from.as_ref(), u.to.as_ref()),
                    &mut last,
                )
                .await?
            {
                rows += n as u64;
                events.emit(Event::RowsDone {
                    collection: 0,
                    rows: n as u64,
                    bytes: per_row * n as u64,
                });
            }
            Ok::<_, Error>(rows)
        })
        .buffer_unordered(plan.streams)
        .try_collect()
        .await?;
    Ok(counts.iter().sum())
}

/// The work of a sharded export ([`crate::model::shard`]): the snapshot
/// timestamp every shard reads at and every range of every partition,
/// chosen from the data at that timestamp.
pub(crate) async fn plan_units(client: &dyn Milvus, plan: &ExportPlan) -> Result<(u64, Vec<Unit>)> {
    let (live, units) = snapshot_units(client, plan).await?;
    Ok((live.ts, units))
}

/// The collection at one snapshot, and every partition's ranges chosen
/// anew at it.
async fn snapshot_units<'a>(
    client: &'a dyn Milvus,
    plan: &'a ExportPlan,
) -> Result<(Live<'a>, Vec<Unit>)> {
    let live = snapshot(client, plan).await?;
    let mut units = Vec::new();
    let mut next_index = 0;
    for part in &parts(plan) {
        units.extend(fresh_units(&live, part, &mut next_index).await?);
    }
    Ok((live, units))
}

/// Exports `units` of a sharded export as of `ts` into files under
/// `prefix`, `plan.streams` at once: each range as recorded, with its
/// files. Started files are pushed to `written`.
pub(crate) async fn export_units(
    client: &dyn Milvus,
    plan: &ExportPlan,
    ts: u64,
    units: Vec<Unit>,
    (location, prefix): (&Location, &str),
    written: &Mutex<Vec<String>>,
    events: &dyn EventSink,
) -> Result<Vec<(LogicalRange, Vec<DataFile>)>> {
    let live = Live {
        client,
        collection: &plan.collection,
        fields: &plan.fields,
        hash_key: true,
        ts,
        travel: plan.travel,
    };
    let read_back_us = AtomicU64::new(0);
    run_units(
        &live,
        plan,
        units,
        (location, prefix),
        written,
        &read_back_us,
        events,
    )
    .await
}

/// Exports `units` from `live`, `plan.streams` at once; the time spent
/// reading files back is added to `read_back_us`.
async fn run_units(
    live: &Live<'_>,
    plan: &ExportPlan,
    units: Vec<Unit>,
    (location, prefix): (&Location, &str),
    written: &Mutex<Vec<String>>,
    read_back_us: &AtomicU64,
    events: &dyn EventSink,
) -> Result<Vec<(LogicalRange, Vec<DataFile>)>> {
    exporting(plan, units.len(), events);
    let rows = AtomicU64::new(0);
    let streams = Streams {
        live,
        plan,
        location,
        prefix,
        written,
        events,
        total: &rows,
        read_back: read_back_us,
    };
    futures::stream::iter(units)
        .map(|u| export_unit(streams, u))
        .buffer_unordered(plan.streams)
        .try_collect()
        .await
}

/// Compares the rows a sharded export wrote with Milvus's count at its
/// timestamp (see [`export_rows`]).
pub(crate) async fn check_rows(
    client: &dyn Milvus,
    c: &CollectionRef,
    fields: &[crate::ops::logical::fields::Field],
    ts: u64,
    written: u64,
    events: &dyn EventSink,
) -> Result<()> {
    let pk = fields.iter().find(|f| f.is_primary);
    let int_pk = pk
        .filter(|f| f.kind != Kind::VarChar)
        .map(|f| f.name.as_str());
    check_count(client, c, ts, true, written, int_pk, events).await
}

/// A partition's ranges chosen anew from its keys, about [`RANGE_ROWS`]
/// rows each.
async fn fresh_units(
    live: &Live<'_>,
    part: &Option<String>,
    next: &mut usize,
) -> Result<Vec<Unit>> {
    let r = live.boundaries(part.as_deref(), RANGE_ROWS).await?;
    Ok((0..r.count())
        .map(|i| {
            let (from, to) = r.limits(i);
            unit(next, part, from, to)
        })
        .collect())
}

/// Says the rows are being read: `units` ranges, the plan's streams.
fn exporting(plan: &ExportPlan, units: usize, events: &dyn EventSink) {
    events.phase(Phase::Exporting {
        collection: plan.collection.to_string(),
        rows: plan.estimated_rows.max(0) as u64,
        streams: plan.streams.min(units.max(1)),
    });
}

fn unit(next: &mut usize, part: &Option<String>, from: Option<&Key>, to: Option<&Key>) -> Unit {
    *next += 1;
    Unit {
        index: *next - 1,
        partition: part.clone(),
        from: from.cloned(),
        to: to.cloned(),
    }
}

/// An index above every `part-<index>-` of the base's files, so that new
/// files never take a shared file's name.
fn first_free_index(base: &LogicalCollection) -> usize {
    base.files
        .iter()
        .filter_map(|f| {
            let name = f.path.rsplit('/').next()?;
            name.strip_prefix("part-")?
                .split('-')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |m| m + 1)
}

/// Compares the rows exported with Milvus's `count(*)` at the same
/// timestamp, where the server counts (2.3+).
async fn check_count(
    client: &dyn Milvus,
    c: &CollectionRef,
    ts: u64,
    travel: bool,
    written: u64,
    int_pk: Option<&str>,
    events: &dyn EventSink,
) -> Result<()> {
    let counted = count(client, c, ts, travel, "").await;
    match counted {
        Some(n) if n as u64 != written => {
            if let Some(pk) = int_pk {
                let at_max = count(client, c, ts, travel, &format!("{pk} == {}", i64::MAX)).await;
                if at_max.is_some_and(|m| m > 0 && written + m as u64 == n as u64) {
                    return Err(Error::unsupported(format!(
                        "{c} has a row keyed {} (the largest int64), which Milvus counts but \
                         returns to no query, so a logical backup cannot read it — back {c} up with \
                         --format binlog, or give that row another key",
                        i64::MAX
                    )));
                }
            }
            Err(Error::remote(format!(
                "the export of {c} read {written} rows but Milvus counts {n} at the same timestamp — \
                 the key-order reads missed rows; nothing was kept"
            )))
        }
        Some(_) => Ok(()),
        None => {
            events.note(format!(
                "{c}: the server does not count rows; {written} rows exported"
            ));
            Ok(())
        }
    }
}

/// Milvus's `count(*)` of `c` now (strongly consistent); `None` where
/// the server does not count or `c` is not loaded.
pub(crate) async fn count_now(client: &dyn Milvus, c: &CollectionRef) -> Option<i64> {
    count(client, c, 0, false, "").await
}

/// Milvus's `count(*)` of the rows matching `expr` at `ts`; `None` where
/// the server does not count.
async fn count(
    client: &dyn Milvus,
    c: &CollectionRef,
    ts: u64,
    travel: bool,
    expr: &str,
) -> Option<i64> {
    let page = QueryPage {
        expr: expr.to_string(),
        output_fields: vec!["count(*)".into()],
        partitions: Vec::new(),
        limit: 0,
        ts,
        travel,
    };
    match client.query_page(&c.db, &c.name, &page).await {
        Ok((cols, _)) => match cols.first().and_then(|c| c.field.as_ref()) {
            Some(field_data::Field::Scalars(s)) => match &s.data {
                Some(scalar_field::Data::LongData(a)) => a.data.first().copied(),
                _ => None,
            },
            _ => None,
        },
        Err(_) => None,
    }
}

/// What the export streams of one collection share: where they read and
/// write, the files written so far (removed on failure) and the rows
/// exported.
#[derive(Clone, Copy)]
struct Streams<'a> {
    live: &'a Live<'a>,
    plan: &'a ExportPlan,
    location: &'a Location,
    prefix: &'a str,
    written: &'a Mutex<Vec<String>>,
    events: &'a dyn EventSink,
    total: &'a AtomicU64,
    /// Microseconds spent reading files back.
    read_back: &'a AtomicU64,
}

/// One stream: the rows of one range, into its own files; the range as
/// recorded (rows, digest, files).
async fn export_unit(streams: Streams<'_>, unit: Unit) -> Result<(LogicalRange, Vec<DataFile>)> {
    let Streams {
        live,
        plan,
        location,
        prefix,
        written,
        events,
        total,
        ..
    } = streams;
    let per_row = row_bytes(&plan.fields, 64) as u64;
    let dir = partition_dir(unit.partition.as_deref());
    let ext = plan.settings.format.extension();
    let limits = (unit.from.as_ref(), unit.to.as_ref());
    let mut last: Option<Key> = None;
    // The file being written and the digest of the rows written into it.
    let mut writer: Option<(FileWriter, ValueDigest)> = None;
    let mut files = Vec::new();
    let mut rows = RangeDigest::default();
    let mut seq = 0;
    while let Some((cols, n)) = live
        .next_page_within(unit.partition.as_deref(), limits, &mut last)
        .await?
    {
        if writer.is_none() {
            let path = format!("{prefix}{dir}/part-{:03}-{seq:05}.{ext}", unit.index);
            seq += 1;
            written.lock().expect("written").push(path.clone());
            let partition = unit.partition.clone().unwrap_or_default();
            writer = Some((
                FileWriter::create(location, &path, &partition, &plan.fields, plan.settings)
                    .await?,
                ValueDigest::new(&plan.fields),
            ));
        }
        let (w, digest) = writer.as_mut().expect("just made");
        let raw = per_row * n as u64;
        digest.add(&plan.fields, &cols, n)?;
        rows.add_all(&digest::row_hashes(&plan.fields, &cols, n)?);
        w.write(&plan.fields, &cols, n, raw).await?;
        total.fetch_add(n as u64, Ordering::Relaxed);
        events.emit(Event::RowsDone {
            collection: 0,
            rows: n as u64,
            bytes: raw,
        });
        if w.is_full() {
            let (w, digest) = writer.take().expect("open");
            files.push(close_and_check(streams, w, digest).await?);
        }
    }
    if let Some((w, digest)) = writer {
        files.push(close_and_check(streams, w, digest).await?);
    }
    let range = LogicalRange {
        partition: unit.partition,
        from: unit.from,
        to: unit.to,
        rows: rows.rows,
        digest: rows.hex(),
        files: files.iter().map(|f| f.path.clone()).collect(),
    };
    Ok((range, files))
}

/// Closes a data file, then reads it back as a restore would and checks
/// its rows and values against `digest` (what was written into it).
async fn close_and_check(
    streams: Streams<'_>,
    w: FileWriter,
    digest: ValueDigest,
) -> Result<DataFile> {
    let file = w.finish().await?;
    let collection = streams.plan.collection.to_string();
    let seconds = read_back::check(
        streams.location,
        read_back::Written {
            file: &file,
            digest,
            fields: &streams.plan.fields,
            collection: &collection,
        },
    )
    .await?;
    streams
        .read_back
        .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    Ok(file)
}
