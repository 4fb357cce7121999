//! `compare`: whether two live collections hold the same rows, on one
//! Milvus or two of any versions (2.2, 2.3, Milvus Lite).
//!
//! The source's keys are split into ranges ([`ranges`]); both sides digest
//! each range (row count and the sum of canonical row hashes, every field
//! but function outputs); only ranges whose digests differ are read again
//! row by row, to name the keys only in one side and the keys whose values
//! differ. With `ignore_key` (a side that made its own keys, autoID), rows
//! are compared as multisets of their values without the key.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::milvus::Milvus;
use crate::model::selection::CollectionRef;
use crate::ops::logical::digest::{RangeDigest, RowHash};
use crate::ops::logical::export;
use crate::ops::logical::fields::{fields_of, Field};
use crate::ops::logical::ranges::{Key, Live, PartRanges, RANGE_ROWS};
use crate::CancellationToken;
use futures::StreamExt;

#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// `coll` or `db.coll` on the first Milvus.
    pub source: String,
    /// On the second Milvus; the source's name when absent.
    pub target: Option<String>,
    /// Compare rows without their primary keys (as multisets).
    pub ignore_key: bool,
    /// Keys listed of each kind of difference, at most.
    pub show: usize,
    /// Ranges digested at once on each side.
    pub streams: usize,
    /// Rows per key range, about.
    pub range_rows: usize,
}

impl Default for CompareOptions {
    fn default() -> CompareOptions {
        CompareOptions {
            source: String::new(),
            target: None,
            ignore_key: false,
            show: 10,
            streams: 4,
            range_rows: RANGE_ROWS,
        }
    }
}

/// Some keys of one kind of difference, and how many there are.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyList {
    pub count: u64,
    /// The first of them, at most `show`.
    pub keys: Vec<Key>,
}

impl KeyList {
    pub(crate) fn push(&mut self, key: Key, show: usize) {
        self.count += 1;
        if self.keys.len() < show {
            self.keys.push(key);
        }
    }
}

/// One range whose digests differ.
#[derive(Debug, Clone, Serialize)]
pub struct RangeDiff {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// First key of the range (inclusive); none: no lower bound.
    pub from: Option<Key>,
    /// End of the range (exclusive); none: no upper bound.
    pub to: Option<Key>,
    pub rows_source: u64,
    pub rows_target: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Comparison {
    pub source: String,
    pub target: String,
    pub identical: bool,
    pub rows_source: u64,
    pub rows_target: u64,
    pub ranges: usize,
    pub ranges_differing: usize,
    /// The first differing ranges, at most `show`.
    pub differing_ranges: Vec<RangeDiff>,
    pub only_in_source: KeyList,
    pub only_in_target: KeyList,
    /// Keys on both sides with other values.
    pub different: KeyList,
    /// Fields that differ between the two schemas (rows are compared on
    /// the fields both have alike).
    pub schema_differences: Vec<String>,
    pub ignore_key: bool,
    pub duration_s: f64,
    pub rows_per_s: f64,
}

/// One side: its client and collection.
pub struct Side<'a> {
    pub client: &'a dyn Milvus,
    pub collection: CollectionRef,
}

impl<'a> Side<'a> {
    pub fn of(client: &'a dyn Milvus, collection: CollectionRef) -> Side<'a> {
        Side { client, collection }
    }
}

/// The source and the target named (the source's name when none is).
pub(crate) fn named(source: &str, target: Option<&str>) -> Result<(CollectionRef, CollectionRef)> {
    let source = CollectionRef::parse_checked(source)?;
    let target = match target {
        Some(t) => CollectionRef::parse_checked(t)?,
        None => source.clone(),
    };
    Ok((source, target))
}

/// Compares `opts.source` on `a` with its target on `b` (which may be the
/// same Milvus).
pub async fn compare(
    a: &Context,
    b: &Context,
    opts: &CompareOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<Comparison> {
    let (source, target) = named(&opts.source, opts.target.as_deref())?;
    let (ca, cb) = (a.milvus().await?, b.milvus().await?);
    let (sa, sb) = (Side::of(&*ca, source), Side::of(&*cb, target));
    compare_sides(&sa, &sb, opts, events, cancel).await
}

/// The fields of a collection and whether it must be loaded to be read.
pub(crate) async fn describe(side: &Side<'_>) -> Result<(Vec<Field>, bool, bool, Vec<String>)> {
    let c = &side.collection;
    let meta = crate::ops::collection::collection_meta(side.client, c)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::not_found(format!(
                "collection {c} does not exist on {} — check the name (db.collection) and the config",
                side.client.version_text()
            )),
            _ => e,
        })?;
    if let Some(why) = export::unreadable(&meta) {
        return Err(Error::new(ErrorKind::Conflict, format!("{c} {why}")));
    }
    let partition_key = meta.schema.fields.iter().any(|f| f.is_partition_key);
    let partitions = meta
        .partition_backups
        .iter()
        .map(|p| p.partition_name.clone())
        .collect();
    Ok((
        fields_of(&meta.schema)?,
        meta.load_state != "Loaded",
        partition_key,
        partitions,
    ))
}

/// The fields both schemas have alike, and the differences.
pub(crate) fn common_fields(a: &[Field], b: &[Field]) -> (Vec<Field>, Vec<String>) {
    let mut common = Vec::new();
    let mut diffs = Vec::new();
    for f in a {
        match b.iter().find(|g| g.name == f.name) {
            None => diffs.push(format!("field `{}` is only in the source", f.name)),
            Some(g) if g.kind != f.kind => diffs.push(format!(
                "field `{}` is {} in the source and {} in the target",
                f.name, f.kind, g.kind
            )),
            Some(g) if g.is_primary != f.is_primary => diffs.push(format!(
                "field `{}` is the primary key on one side only",
                f.name
            )),
            Some(_) => common.push(f.clone()),
        }
    }
    for g in b.iter().filter(|g| !a.iter().any(|f| f.name == g.name)) {
        diffs.push(format!("field `{}` is only in the target", g.name));
    }
    (common, diffs)
}

/// A side, read strongly consistent until [`Live::at_snapshot`] names the
/// timestamp every later read is at.
pub(crate) fn live<'a>(s: &'a Side<'_>, fields: &'a [Field], ignore_key: bool) -> Live<'a> {
    Live {
        client: s.client,
        collection: &s.collection,
        fields,
        hash_key: !ignore_key,
        ts: 0,
        travel: false,
    }
}

/// Whether reads of `s` may name the timestamp they read as of (Milvus
/// 2.3 and later, Lite).
pub(crate) fn travels(s: &Side<'_>) -> bool {
    s.client.capabilities().reads_at_timestamp()
}

/// The units ranges are chosen in: each partition, or the whole
/// collection (partition key, or the default partition alone).
pub(crate) fn units(partition_key: bool, partitions: &[String]) -> Vec<Option<String>> {
    if partition_key || partitions.iter().all(|p| p == "_default") {
        vec![None]
    } else {
        partitions.iter().cloned().map(Some).collect()
    }
}

pub(crate) async fn compare_sides(
    a: &Side<'_>,
    b: &Side<'_>,
    opts: &CompareOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<Comparison> {
    let started = Instant::now();
    let (fa, load_a, pkey, parts_a) = describe(a).await?;
    let (fb, load_b, _, parts_b) = describe(b).await?;
    let (fields, mut schema_differences) = common_fields(&fa, &fb);
    if !fields.iter().any(|f| f.is_primary) {
        return Err(Error::invalid_input(format!(
            "{} and {} have no primary key field in common — they cannot be compared",
            a.collection, b.collection
        )));
    }
    let mut units = units(pkey, &parts_a);
    units.retain(|u| match u {
        Some(p) if !parts_b.contains(p) => {
            schema_differences.push(format!("partition `{p}` is only in the source"));
            false
        }
        _ => true,
    });
    let work = async {
        let la = live(a, &fields, opts.ignore_key)
            .at_snapshot(travels(a))
            .await?;
        let lb = live(b, &fields, opts.ignore_key)
            .at_snapshot(travels(b))
            .await?;
        let mut out = Comparison {
            source: a.collection.to_string(),
            target: b.collection.to_string(),
            ignore_key: opts.ignore_key,
            ..Default::default()
        };
        let mut all = Vec::new();
        for u in &units {
            let every = if opts.ignore_key {
                usize::MAX
            } else {
                RANGE_ROWS
            };
            all.push(la.boundaries(u.as_deref(), every).await?);
        }
        let ranges: usize = all.iter().map(PartRanges::count).sum();
        let rows_estimate = a
            .client
            .row_count(&a.collection.db, &a.collection.name)
            .await
            .unwrap_or(0);
        events.phase(Phase::Comparing {
            source: out.source.clone(),
            target: out.target.clone(),
            ranges,
            rows: rows_estimate.max(0) as u64,
        });
        out.ranges = ranges;
        for r in &all {
            // Each range's outcome as it comes (in order), for progress.
            let mut outcomes = futures::stream::iter(0..r.count())
                .map(|i| compare_range(&la, &lb, r, i, opts.ignore_key))
                .buffered(opts.streams.max(1))
                .enumerate();
            while let Some((i, o)) = outcomes.next().await {
                let o = o?;
                out.rows_source += o.a.rows;
                out.rows_target += o.b.rows;
                events.emit(Event::RowsDone {
                    collection: 0,
                    rows: o.a.rows,
                    bytes: 0,
                });
                let Some(diff) = o.diff else { continue };
                out.ranges_differing += 1;
                let (from, to) = r.limits(i);
                if out.differing_ranges.len() < opts.show {
                    out.differing_ranges.push(RangeDiff {
                        partition: r.partition.clone(),
                        from: from.cloned(),
                        to: to.cloned(),
                        rows_source: o.a.rows,
                        rows_target: o.b.rows,
                    });
                }
                record(diff, opts.show, &mut out);
            }
        }
        Ok::<_, Error>(out)
    };
    let loaded_b = export::loaded_for(b.client, &b.collection, load_b, events, cancel, work);
    let mut out =
        export::loaded_for(a.client, &a.collection, load_a, events, cancel, loaded_b).await?;
    out.identical = out.ranges_differing == 0 && schema_differences.is_empty();
    out.schema_differences = schema_differences;
    out.duration_s = started.elapsed().as_secs_f64();
    out.rows_per_s = (out.rows_source + out.rows_target) as f64 / out.duration_s.max(1e-9);
    Ok(out)
}

/// The keys of one range that differ between two sides, each sorted.
#[derive(Debug, Default)]
pub(crate) struct KeyDiff {
    pub only_a: Vec<Key>,
    pub only_b: Vec<Key>,
    /// On both sides with other values (never with `ignore_key`).
    pub different: Vec<Key>,
}

/// One range read on both sides: its digests and, when they differ, the
/// keys that do.
pub(crate) struct RangeOutcome {
    pub a: RangeDigest,
    pub b: RangeDigest,
    pub diff: Option<KeyDiff>,
}

/// Reads range `i` of both sides at once (each row's key and hash, one
/// range in memory per side) and, when the digests differ, finds the keys
/// that do from what was read: no second read.
pub(crate) async fn compare_range(
    a: &Live<'_>,
    b: &Live<'_>,
    r: &PartRanges,
    i: usize,
    ignore_key: bool,
) -> Result<RangeOutcome> {
    let ((da, ra), (db, rb)) = futures::try_join!(a.range_rows(r, i), b.range_rows(r, i))?;
    let diff = (da != db).then(|| diff_rows(ra, rb, ignore_key));
    Ok(RangeOutcome { a: da, b: db, diff })
}

/// The keys that differ between two sides' rows (key, hash), each list
/// sorted. With `ignore_key`, rows are matched by their hash (without the
/// key) as multisets, and the keys are those of the rows left unmatched.
pub(crate) fn diff_rows(
    a: Vec<(Key, RowHash)>,
    b: Vec<(Key, RowHash)>,
    ignore_key: bool,
) -> KeyDiff {
    let mut d = KeyDiff::default();
    if ignore_key {
        let mut left: HashMap<RowHash, Vec<Key>> = HashMap::new();
        for (k, h) in a {
            left.entry(h).or_default().push(k);
        }
        for (k, h) in b {
            if left.get_mut(&h).and_then(Vec::pop).is_none() {
                d.only_b.push(k)
            }
        }
        d.only_a = left.into_values().flatten().collect();
    } else {
        let mut left: HashMap<Key, RowHash> = a.into_iter().collect();
        for (k, h) in b {
            match left.remove(&k) {
                Some(ha) if ha == h => {}
                Some(_) => d.different.push(k),
                None => d.only_b.push(k),
            }
        }
        d.only_a = left.into_keys().collect();
    }
    for list in [&mut d.only_a, &mut d.only_b, &mut d.different] {
        list.sort();
    }
    d
}

/// Records the keys of one differing range.
fn record(d: KeyDiff, show: usize, out: &mut Comparison) {
    for (keys, list) in [
        (d.only_a, &mut out.only_in_source),
        (d.only_b, &mut out.only_in_target),
        (d.different, &mut out.different),
    ] {
        keys.into_iter().for_each(|k| list.push(k, show));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(list: &[(i64, u128)]) -> Vec<(Key, RowHash)> {
        list.iter().map(|&(k, h)| (Key::Int(k), h)).collect()
    }

    #[test]
    fn differing_rows_are_named_by_key_or_as_multisets() {
        let a = rows(&[(1, 10), (2, 20), (3, 30), (4, 40)]);
        let b = rows(&[(4, 40), (2, 21), (5, 50), (1, 10)]);
        let d = diff_rows(a.clone(), b.clone(), false);
        assert_eq!(d.only_a, vec![Key::Int(3)]);
        assert_eq!(d.only_b, vec![Key::Int(5)]);
        assert_eq!(d.different, vec![Key::Int(2)]);
        // Keys made anew: rows match by value, one each way is left.
        let renumbered = rows(&[(14, 40), (12, 20), (11, 10), (13, 31)]);
        let d = diff_rows(a, renumbered, true);
        assert_eq!(
            (d.only_a, d.only_b),
            (vec![Key::Int(3)], vec![Key::Int(13)])
        );
        assert!(d.different.is_empty());
        // Equal rows twice on one side, once on the other.
        let d = diff_rows(rows(&[(1, 7), (2, 7)]), rows(&[(9, 7)]), true);
        assert_eq!(d.only_a.len() + d.only_b.len(), 1);
    }
}
