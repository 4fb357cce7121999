//! Live rows of the collections backed up: a `count(*)` where a
//! collection is loaded, else its segments' rows minus the deletes their
//! delta logs record ([`crate::ops::binlog`]). Not here: where they are
//! written ([`super::meta`]).

use futures::{StreamExt, TryStreamExt};

use super::plan::CollectionPlan;
use crate::context::Context;
use crate::events::{Emit, EventSink};
use crate::milvus::Milvus;
use crate::model::meta::CollectionBackupInfo;

/// Live rows of one collection as backed up: a `count(*)` query where it is
/// loaded, else its segments' rows minus the deletes their delta logs
/// record. `None` (with a warning) when neither could be read; the
/// segments' rows, deleted ones included, then stand in.
pub(super) async fn live_rows(
    ctx: &Context,
    client: &dyn Milvus,
    c: &CollectionPlan,
    parallelism: usize,
    events: &dyn EventSink,
) -> Option<i64> {
    let (db, name) = (&c.source.db, &c.source.name);
    if c.meta.load_state == "Loaded" {
        let counted = client
            .query(db, name, "", &["count(*)".to_string()], None)
            .await
            .ok()
            .and_then(|cols| cols.first().and_then(count_value));
        if counted.is_some() {
            return counted;
        }
    }
    match file_rows(ctx, c, parallelism).await {
        Ok(rows) => Some(rows),
        Err(e) => {
            events.warn(format!(
                "{}: deleted rows not counted, its entities include them: {e}",
                c.collection
            ));
            None
        }
    }
}

/// Rows of a collection's backed-up segments minus the deletes their
/// delta logs record (read from Milvus storage, `parallelism` at a time).
pub(super) async fn file_rows(
    ctx: &Context,
    c: &CollectionPlan,
    parallelism: usize,
) -> crate::error::Result<i64> {
    let deltas = c.files.iter().filter(|f| f.target.contains("delta_log/"));
    let deleted = futures::stream::iter(deltas.map(|f| async move {
        let bytes = ctx.milvus_storage.read(&f.source).await?;
        crate::ops::binlog::count_deletes(&bytes)
    }))
    .buffer_unordered(parallelism.max(1))
    .try_fold(0u64, |sum, n| async move { Ok(sum + n) })
    .await?;
    Ok((segment_rows(&c.meta) - deleted as i64).max(0))
}

/// The value of a `count(*)` column.
pub(super) fn count_value(column: &crate::milvus::proto::schema::FieldData) -> Option<i64> {
    use crate::milvus::proto::schema::{field_data::Field, scalar_field::Data};
    match column.field.as_ref()? {
        Field::Scalars(s) => match s.data.as_ref()? {
            Data::LongData(d) => d.data.first().copied(),
            _ => None,
        },
        _ => None,
    }
}

/// Rows of a collection's segments, deleted ones included.
pub(super) fn segment_rows(c: &CollectionBackupInfo) -> i64 {
    c.partition_backups
        .iter()
        .flat_map(|p| &p.segment_backups)
        .map(|s| s.num_of_rows)
        .sum()
}
