//! The order in which a collection's segments are imported, so that a
//! restored collection resolves duplicate primary keys as the source did.
//!
//! Milvus accepts the same primary key twice and a query returns the row
//! written last (the larger timestamp). A backup-mode import does not keep
//! the binlogs' timestamps: the data node gives every row of an import
//! task one timestamp, allocated when it starts the task (Milvus 2.2/2.3
//! `DataNode.Import`: `AllocTimestamp`, then `createBinLogsFunc(..., ts)`;
//! the binlog adapter reads the old timestamps only to apply deletes and
//! `end_ts`). So among duplicates the row of the segment whose import
//! *started* last wins. Root coord hands import tasks to data nodes in the
//! order it receives them, one task per data node at a time, and a
//! standalone Milvus has one data node; but with several data nodes, or
//! when staging makes a later segment ready first, the order is lost.
//!
//! Hence: segments are imported in write order — their binlogs' last
//! timestamp where the backup records it, else the segment id (Milvus
//! allocates ids in time order) — and each import is started only once
//! the import before it has its timestamp (its task reports a segment or
//! is persisted). Staging still runs ahead, up to the import parallelism,
//! and imports still finish in parallel; different collections do not
//! wait for each other. Not here: staging and importing ([`super::binlog`]).

use std::collections::BTreeSet;

use tokio::sync::watch;

use crate::model::meta::SegmentBackupInfo;

/// Segments sorted into the order their rows were written: by the last
/// timestamp their binlogs record (0 where the backup records none), then
/// by segment id.
pub(crate) fn in_write_order<'a>(
    mut segments: Vec<(&'a str, &'a SegmentBackupInfo)>,
) -> Vec<(&'a str, &'a SegmentBackupInfo)> {
    segments.sort_by_key(|(_, s)| (last_write(s), s.segment_id));
    segments
}

/// The largest `timestamp_to` of a segment's insert logs; 0 when unknown.
fn last_write(s: &SegmentBackupInfo) -> u64 {
    s.binlogs
        .iter()
        .flat_map(|f| &f.binlogs)
        .map(|b| b.timestamp_to)
        .max()
        .unwrap_or(0)
}

/// Turns to start imports, one per segment in write order: a segment's
/// import starts once every segment before it has released its turn.
pub(crate) struct ImportOrder {
    released: watch::Sender<Released>,
}

/// The turns released: all below `prefix`, and those in `beyond`.
#[derive(Default)]
struct Released {
    prefix: usize,
    beyond: BTreeSet<usize>,
}

impl ImportOrder {
    pub(crate) fn new() -> ImportOrder {
        ImportOrder {
            released: watch::Sender::new(Released::default()),
        }
    }

    /// The turn of the `index`-th segment in write order.
    pub(crate) fn turn(&self, index: usize) -> Turn<'_> {
        Turn { order: self, index }
    }

    fn release(&self, index: usize) {
        self.released.send_if_modified(|r| {
            if index < r.prefix || !r.beyond.insert(index) {
                return false;
            }
            while r.beyond.remove(&r.prefix) {
                r.prefix += 1;
            }
            true
        });
    }
}

/// One segment's turn. Dropping it releases it, so a segment that fails
/// or needs no import never holds up the ones after it.
pub(crate) struct Turn<'a> {
    order: &'a ImportOrder,
    index: usize,
}

impl Turn<'_> {
    /// Waits until every segment before this one has released its turn.
    pub(crate) async fn wait(&self) {
        let mut rx = self.order.released.subscribe();
        // The sender lives in `order`, which outlives this turn.
        let _ = rx.wait_for(|r| r.prefix >= self.index).await;
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.order.release(self.index);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;
    use crate::model::meta::{Binlog, FieldBinlog};

    #[tokio::test]
    async fn imports_start_in_turn_whatever_order_their_staging_ends() {
        let order = ImportOrder::new();
        let started = Mutex::new(Vec::new());
        // Staging that ends in reverse order; segment 3 fails before its turn.
        let n = 8usize;
        futures::stream::iter((0..n).map(|i| {
            let (order, started) = (&order, &started);
            async move {
                let turn = order.turn(i);
                tokio::time::sleep(Duration::from_millis(5 * (n - i) as u64)).await;
                if i == 3 {
                    return;
                }
                turn.wait().await;
                started.lock().unwrap().push(i);
                drop(turn);
                // The import then runs on while later ones start.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }))
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
        assert_eq!(*started.lock().unwrap(), vec![0, 1, 2, 4, 5, 6, 7]);
    }

    #[test]
    fn segments_go_by_their_last_write_then_by_id() {
        let seg = |id, ts| SegmentBackupInfo {
            segment_id: id,
            binlogs: vec![FieldBinlog {
                field_id: 1,
                binlogs: vec![Binlog {
                    timestamp_to: ts,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        let (a, b, c) = (seg(30, 0), seg(10, 0), seg(20, 0));
        let ids = |v: Vec<(&str, &SegmentBackupInfo)>| -> Vec<i64> {
            v.iter().map(|(_, s)| s.segment_id).collect()
        };
        assert_eq!(
            ids(in_write_order(vec![("p", &a), ("p", &b), ("p", &c)])),
            vec![10, 20, 30]
        );
        // A compacted segment (new id) of old rows goes before newer ones.
        let (old, new) = (seg(50, 100), seg(40, 200));
        assert_eq!(
            ids(in_write_order(vec![("p", &new), ("p", &old)])),
            vec![50, 40]
        );
    }
}
