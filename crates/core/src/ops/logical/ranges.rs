//! Primary-key ranges chosen from the data, and the digests of the rows
//! in each, read from a live collection.
//!
//! A collection (each partition of it, or the whole of a partition-key
//! collection) is split at boundary keys: every [`RANGE_ROWS`]th key in
//! key order, found by a scan of the keys alone. Range `i` holds the keys
//! from boundary `i - 1` (inclusive) up to boundary `i` (exclusive); the
//! first has no lower bound and the last no upper one, so keys written
//! later always fall in some range. The same boundaries applied to another
//! collection (a restore, a migration's target, a backup) split it the
//! same way, so ranges compare one by one.

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::milvus::proto::schema::{field_data, scalar_field, FieldData};
use crate::milvus::{Milvus, QueryPage};
use crate::model::selection::CollectionRef;
use crate::ops::logical::columns::row_count;
use crate::ops::logical::digest::{self, RangeDigest, RowHash};
use crate::ops::logical::fields::{row_bytes, Field, Kind};

/// Rows per range, about.
pub const RANGE_ROWS: usize = 65_536;
/// Milvus refuses a query `limit` above this.
const MAX_LIMIT: u64 = 16_384;
/// Bytes of rows per query, about.
const PAGE_BYTES: usize = 4 << 20;

pub use crate::model::meta::Key;

/// The boundaries of one partition's ranges (or the whole collection's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartRanges {
    /// `None`: every partition at once (a partition-key collection, or
    /// one with the default partition only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Ascending; `bounds.len() + 1` ranges.
    pub bounds: Vec<Key>,
}

impl PartRanges {
    pub fn count(&self) -> usize {
        self.bounds.len() + 1
    }

    /// The range holding `key`.
    pub fn of(&self, key: &Key) -> usize {
        self.bounds.partition_point(|b| b <= key)
    }

    /// `[from, to)` of range `i`, for messages: `None` is open.
    pub fn limits(&self, i: usize) -> (Option<&Key>, Option<&Key>) {
        (
            i.checked_sub(1).and_then(|j| self.bounds.get(j)),
            self.bounds.get(i),
        )
    }
}

/// One side of a comparison or migration: a live collection, read as of
/// one timestamp where the server allows it.
#[derive(Clone, Copy)]
pub struct Live<'a> {
    pub client: &'a dyn Milvus,
    pub collection: &'a CollectionRef,
    pub fields: &'a [Field],
    /// The key is part of each row's hash (not with `--ignore-key`, where
    /// one side made its own keys).
    pub hash_key: bool,
    /// 0: strongly consistent reads.
    pub ts: u64,
    pub travel: bool,
}

impl Live<'_> {
    fn pk(&self) -> Result<&Field> {
        self.fields
            .iter()
            .find(|f| f.is_primary)
            .ok_or_else(|| Error::invalid_input(format!("{} has no primary key", self.collection)))
    }

    /// Pages of rows of `partition` with keys in `[from, to)` (either
    /// open), in key order, `output` fields only; `each` gets every page.
    async fn pages(
        &self,
        partition: Option<&str>,
        limits: (Option<&Key>, Option<&Key>),
        output: &[String],
        per_row: usize,
        mut each: impl FnMut(Vec<FieldData>, usize) -> Result<()>,
    ) -> Result<()> {
        let mut last = None;
        while let Some((cols, n)) = self
            .page(partition, limits, output, per_row, &mut last)
            .await?
        {
            each(cols, n)?;
        }
        Ok(())
    }

    /// The page after key `last` (moved past it), or `None` at the end.
    async fn page(
        &self,
        partition: Option<&str>,
        (from, to): (Option<&Key>, Option<&Key>),
        output: &[String],
        per_row: usize,
        last: &mut Option<Key>,
    ) -> Result<Option<(Vec<FieldData>, usize)>> {
        let pk = self.pk()?;
        let page = QueryPage {
            expr: range_expr(&pk.name, pk.kind, last.as_ref(), from, to),
            output_fields: output.to_vec(),
            partitions: partition.iter().map(|p| p.to_string()).collect(),
            limit: ((PAGE_BYTES / per_row.max(1)) as u64).clamp(1, MAX_LIMIT),
            ts: self.ts,
            travel: self.travel,
        };
        let c = self.collection;
        let (cols, _) = self.client.query_page(&c.db, &c.name, &page).await?;
        let n = row_count(&cols);
        if n == 0 {
            return Ok(None);
        }
        *last = keys_of(&cols, &pk.name)?.into_iter().max();
        Ok(Some((cols, n)))
    }

    /// The next page of range `i` (every field) after `last`, or `None`.
    pub async fn next_page(
        &self,
        ranges: &PartRanges,
        i: usize,
        last: &mut Option<Key>,
    ) -> Result<Option<(Vec<FieldData>, usize)>> {
        self.next_page_within(ranges.partition.as_deref(), ranges.limits(i), last)
            .await
    }

    /// The next page of `partition`'s rows within `limits` (every field)
    /// after `last`, or `None`.
    pub async fn next_page_within(
        &self,
        partition: Option<&str>,
        limits: (Option<&Key>, Option<&Key>),
        last: &mut Option<Key>,
    ) -> Result<Option<(Vec<FieldData>, usize)>> {
        let output: Vec<String> = self.fields.iter().map(|f| f.name.clone()).collect();
        let per_row = row_bytes(self.fields, 64);
        self.page(partition, limits, &output, per_row, last).await
    }

    /// This side read as of now, one timestamp for every later read: a
    /// strongly consistent probe's session timestamp, or now where the
    /// server sends none (Milvus 2.3 does not). Reads after it wait for
    /// nothing, and on servers that read at a timestamp they see one
    /// snapshot. Reads left strongly consistent would each wait for the
    /// server's next time tick, about 200 ms a page.
    pub async fn at_snapshot(self, travel: bool) -> Result<Self> {
        let pk = self.pk()?;
        let c = self.collection;
        let probe = QueryPage {
            expr: range_expr(&pk.name, pk.kind, None, None, None),
            output_fields: vec![pk.name.clone()],
            partitions: Vec::new(),
            limit: 1,
            ts: 0,
            travel: false,
        };
        let (_, ts) = self.client.query_page(&c.db, &c.name, &probe).await?;
        let ts = if ts == 0 { hybrid_now() } else { ts };
        Ok(Live { ts, travel, ..self })
    }

    /// Every `every`th key of `partition`: its boundaries, from a scan of
    /// the keys alone.
    pub async fn boundaries(&self, partition: Option<&str>, every: usize) -> Result<PartRanges> {
        Ok(PartRanges {
            partition: partition.map(str::to_string),
            bounds: self
                .boundaries_within(partition, (None, None), every)
                .await?,
        })
    }

    /// Every `every`th key of `partition` within `limits` (after the
    /// first), in key order.
    pub async fn boundaries_within(
        &self,
        partition: Option<&str>,
        limits: (Option<&Key>, Option<&Key>),
        every: usize,
    ) -> Result<Vec<Key>> {
        let pk = self.pk()?.name.clone();
        let mut seen = 0usize;
        let mut bounds = Vec::new();
        self.pages(
            partition,
            limits,
            std::slice::from_ref(&pk),
            16,
            |cols, _| {
                let mut keys = keys_of(&cols, &pk)?;
                keys.sort();
                for k in keys {
                    if seen > 0 && seen.is_multiple_of(every.max(1)) {
                        bounds.push(k);
                    }
                    seen += 1;
                }
                Ok(())
            },
        )
        .await?;
        Ok(bounds)
    }

    /// The digest of each range of `ranges`, `streams` ranges at once.
    pub async fn digests(&self, ranges: &PartRanges, streams: usize) -> Result<Vec<RangeDigest>> {
        futures::stream::iter(0..ranges.count())
            .map(|i| async move {
                let mut d = RangeDigest::default();
                self.each_row(ranges, i, |_, h| d.add(h)).await?;
                Ok::<_, Error>(d)
            })
            .buffered(streams.max(1))
            .try_collect()
            .await
    }

    /// The key and hash of every row of range `i`, and their digest.
    pub async fn range_rows(
        &self,
        ranges: &PartRanges,
        i: usize,
    ) -> Result<(RangeDigest, Vec<(Key, RowHash)>)> {
        let mut d = RangeDigest::default();
        let mut rows = Vec::new();
        self.each_row(ranges, i, |k, h| {
            d.add(h);
            rows.push((k, h));
        })
        .await?;
        Ok((d, rows))
    }

    /// Each row of range `i`: its key and hash.
    pub async fn each_row(
        &self,
        ranges: &PartRanges,
        i: usize,
        each: impl FnMut(Key, RowHash),
    ) -> Result<()> {
        self.each_row_within(ranges.partition.as_deref(), ranges.limits(i), each)
            .await
    }

    /// The digest of `partition`'s rows within `limits`.
    pub async fn digest_within(
        &self,
        partition: Option<&str>,
        limits: (Option<&Key>, Option<&Key>),
    ) -> Result<RangeDigest> {
        let mut d = RangeDigest::default();
        self.each_row_within(partition, limits, |_, h| d.add(h))
            .await?;
        Ok(d)
    }

    /// Each row of `partition` within `limits`: its key and hash.
    pub async fn each_row_within(
        &self,
        partition: Option<&str>,
        limits: (Option<&Key>, Option<&Key>),
        mut each: impl FnMut(Key, RowHash),
    ) -> Result<()> {
        let pk = self.pk()?.name.clone();
        let hashed: Vec<Field> = (self.fields.iter())
            .filter(|f| self.hash_key || !f.is_primary)
            .cloned()
            .collect();
        let output: Vec<String> = self.fields.iter().map(|f| f.name.clone()).collect();
        let per_row = row_bytes(self.fields, 64);
        self.pages(partition, limits, &output, per_row, |cols, n| {
            let keys = keys_of(&cols, &pk)?;
            let hashes = digest::row_hashes(&hashed, &cols, n)?;
            keys.into_iter().zip(hashes).for_each(|(k, h)| each(k, h));
            Ok(())
        })
        .await
    }

    /// The rows with `keys` (all fields), as Milvus's columns.
    pub async fn rows_with_keys(&self, keys: &[Key]) -> Result<(Vec<FieldData>, usize)> {
        let pk = self.pk()?;
        let output: Vec<String> = self.fields.iter().map(|f| f.name.clone()).collect();
        let c = self.collection;
        let page = QueryPage {
            expr: in_expr(&pk.name, keys),
            output_fields: output,
            partitions: Vec::new(),
            limit: 0,
            ts: self.ts,
            travel: self.travel,
        };
        let (cols, _) = self.client.query_page(&c.db, &c.name, &page).await?;
        let n = row_count(&cols);
        Ok((cols, n))
    }
}

/// `pk in [k1, k2, ...]`.
/// Hybrid timestamp of now (physical milliseconds << 18).
fn hybrid_now() -> u64 {
    (chrono::Utc::now().timestamp_millis() as u64) << 18
}

pub fn in_expr(pk: &str, keys: &[Key]) -> String {
    let list: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    format!("{pk} in [{}]", list.join(", "))
}

/// The filter of keys after `last` (or from `from`, inclusive) and below
/// `to`. Milvus's parser reads the digits after a minus as a positive
/// int64, so -2^63 is never written: `> -2^63` is `>= -2^63+1`.
fn range_expr(
    pk: &str,
    kind: Kind,
    last: Option<&Key>,
    from: Option<&Key>,
    to: Option<&Key>,
) -> String {
    let mut parts = Vec::new();
    match (last, from) {
        (Some(Key::Int(i64::MIN)), _) => parts.push(format!("{pk} >= {}", i64::MIN + 1)),
        (Some(k), _) => parts.push(format!("{pk} > {k}")),
        (None, Some(Key::Int(i64::MIN))) => {}
        (None, Some(k)) => parts.push(format!("{pk} >= {k}")),
        (None, None) => {}
    }
    match to {
        Some(Key::Int(i64::MIN)) => parts.push(format!("{pk} < {}", i64::MIN + 1)),
        Some(k) => parts.push(format!("{pk} < {k}")),
        None => {}
    }
    if parts.is_empty() {
        // Every key (-2^63 included; 2^63-1 Milvus returns to no query).
        parts.push(match kind {
            Kind::VarChar | Kind::Text => format!("{pk} >= \"\""),
            _ => format!("{pk} <= {}", i64::MAX),
        });
    }
    parts.join(" && ")
}

/// The primary keys of a page, in row order.
pub fn keys_of(cols: &[FieldData], pk: &str) -> Result<Vec<Key>> {
    let col = cols.iter().find(|c| c.field_name == pk);
    match col.and_then(|c| c.field.as_ref()) {
        Some(field_data::Field::Scalars(s)) => match &s.data {
            Some(scalar_field::Data::LongData(a)) => {
                Ok(a.data.iter().map(|v| Key::Int(*v)).collect())
            }
            Some(scalar_field::Data::StringData(a)) => {
                Ok(a.data.iter().map(|v| Key::Str(v.clone())).collect())
            }
            _ => Err(Error::remote(format!(
                "Milvus answered primary key `{pk}` with no keys"
            ))),
        },
        _ => Err(Error::remote(format!(
            "Milvus's answer has no primary key column `{pk}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Kit;

    #[tokio::test]
    async fn reads_after_a_snapshot_are_not_strongly_consistent_where_the_server_sends_no_timestamp(
    ) {
        // Strongly consistent pages each wait for the server's next time
        // tick (about 200 ms on Milvus 2.3): every read after the probe
        // names the snapshot's timestamp instead.
        let kit = Kit::new();
        let c = CollectionRef::parse_checked("default.c").unwrap();
        let fields = [Field::plain("id", Kind::Int64)];
        let live = Live {
            client: &*kit.milvus,
            collection: &c,
            fields: &fields,
            hash_key: true,
            ts: 0,
            travel: false,
        }
        .at_snapshot(true)
        .await
        .unwrap();
        assert!(live.ts > 0 && live.travel);
        live.boundaries(None, 10).await.unwrap();
        let queries = kit.milvus.state.lock().unwrap().queries.clone();
        assert_eq!(queries.len(), 2, "{queries:?}");
        assert_eq!(queries[0].ts, 0, "the probe is strongly consistent");
        assert_eq!((queries[1].ts, queries[1].travel), (live.ts, true));
    }

    #[test]
    fn ranges_place_every_key_once() {
        let r = PartRanges {
            partition: None,
            bounds: vec![Key::Int(10), Key::Int(20)],
        };
        assert_eq!(r.count(), 3);
        assert_eq!(r.of(&Key::Int(i64::MIN)), 0);
        assert_eq!(r.of(&Key::Int(9)), 0);
        assert_eq!(r.of(&Key::Int(10)), 1);
        assert_eq!(r.of(&Key::Int(19)), 1);
        assert_eq!(r.of(&Key::Int(20)), 2);
        assert_eq!(r.of(&Key::Int(i64::MAX)), 2);
        assert_eq!(r.limits(0), (None, Some(&Key::Int(10))));
        assert_eq!(r.limits(2), (Some(&Key::Int(20)), None));
    }

    #[test]
    fn range_filters_are_ones_milvus_parses() {
        let i = |v| Key::Int(v);
        assert_eq!(
            range_expr("id", Kind::Int64, None, None, None),
            format!("id <= {}", i64::MAX)
        );
        assert_eq!(
            range_expr("id", Kind::Int64, None, Some(&i(-5)), Some(&i(7))),
            "id >= -5 && id < 7"
        );
        assert_eq!(
            range_expr("id", Kind::Int64, Some(&i(i64::MIN)), None, None),
            format!("id >= {}", i64::MIN + 1)
        );
        assert_eq!(
            range_expr("id", Kind::Int64, Some(&i(3)), Some(&i(1)), Some(&i(9))),
            "id > 3 && id < 9"
        );
        let s = Key::Str("a\"b".into());
        assert_eq!(
            range_expr("k", Kind::VarChar, None, Some(&s), None),
            r#"k >= "a\"b""#
        );
        assert_eq!(
            range_expr("k", Kind::VarChar, None, None, None),
            r#"k >= """#
        );
        assert_eq!(
            in_expr("k", &[s, Key::Str("x".into())]),
            r#"k in ["a\"b", "x"]"#
        );
    }
}
