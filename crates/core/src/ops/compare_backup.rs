//! `compare -n BACKUP`: a live collection against its copy in a logical
//! backup. The backup recorded each key range's row count and digest when
//! it was made, so only the live side is read: each range is digested on
//! the backup's limits and compared with the record; a range that differs
//! is narrowed to keys by reading that range's files from the backup.

use std::collections::HashMap;
use std::time::Instant;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::{Emit, Event, EventSink, Phase};
use crate::model::meta::LogicalRange;
use crate::ops::compare::{
    common_fields, describe, live, named, travels, CompareOptions, Comparison, RangeDiff, Side,
};
use crate::ops::logical::digest::{self, RowHash};
use crate::ops::logical::fields::{fields_of, Field};
use crate::ops::logical::files::{self, Location, ReadSpec};
use crate::ops::logical::in_backup::fetch_file;
use crate::ops::logical::ranges::{keys_of, Key, Live};
use crate::repo::catalog;
use crate::CancellationToken;

/// Compares `opts.source` as backup `backup` (in `a`'s backup storage)
/// holds it with the live `opts.target` (default: the same name) on `b`.
pub async fn compare_with_backup(
    a: &Context,
    b: &Context,
    backup: &str,
    opts: &CompareOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<Comparison> {
    let started = Instant::now();
    if opts.ignore_key {
        return Err(Error::invalid_input(
            "--ignore-key compares two live collections: restore the backup and compare the restored collection",
        ));
    }
    let (source, target) = named(&opts.source, opts.target.as_deref())?;
    let info = catalog::get(&a.backup_storage, backup).await?;
    let manifest = catalog::manifest(&a.backup_storage, backup).await?;
    let meta = (info.collection_backups.iter())
        .find(|c| c.db_name == source.db && c.collection_name == source.name)
        .ok_or_else(|| {
            Error::not_found(format!("backup `{backup}` holds no collection {source}"))
        })?;
    let recorded = (info.logical.as_ref())
        .and_then(|l| {
            l.collections
                .iter()
                .find(|c| c.db_name == source.db && c.collection_name == source.name)
        })
        .filter(|c| !c.ranges.is_empty())
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "backup `{backup}` records no key ranges of {source} (a binlog backup, or one made by an earlier version): restore it and compare the restored collection"
            ))
        })?;
    let client = b.milvus().await?;
    let side = Side::of(&*client, target);
    let (fb, load, _, _) = describe(&side).await?;
    let fa = fields_of(&meta.schema)?;
    let (fields, schema_differences) = common_fields(&fa, &fb);
    let mut out = Comparison {
        source: format!("backup `{backup}`: {source}"),
        target: side.collection.to_string(),
        ranges: recorded.ranges.len(),
        ..Default::default()
    };
    events.phase(Phase::Comparing {
        source: out.source.clone(),
        target: out.target.clone(),
        ranges: out.ranges,
        rows: recorded.rows,
    });
    // Digests are comparable only over the same fields in the same order.
    let same_fields = schema_differences.is_empty() && fa == fields;
    let work = async {
        let l = live(&side, &fields, false)
            .at_snapshot(travels(&side))
            .await?;
        for r in &recorded.ranges {
            let limits = (r.from.as_ref(), r.to.as_ref());
            let now = l.digest_within(r.partition.as_deref(), limits).await?;
            out.rows_source += r.rows;
            out.rows_target += now.rows;
            events.emit(Event::RowsDone {
                collection: 0,
                rows: r.rows,
                bytes: 0,
            });
            if same_fields && now.rows == r.rows && now.hex() == r.digest {
                continue;
            }
            out.ranges_differing += 1;
            if out.differing_ranges.len() < opts.show {
                out.differing_ranges.push(RangeDiff {
                    partition: r.partition.clone(),
                    from: r.from.clone(),
                    to: r.to.clone(),
                    rows_source: r.rows,
                    rows_target: now.rows,
                });
            }
            let file_rows =
                rows_in_files(a, backup, manifest.as_ref(), recorded, r, &fields).await?;
            narrow(&l, r, file_rows, opts.show, &mut out).await?;
        }
        Ok::<_, Error>(())
    };
    crate::ops::logical::export::loaded_for(&*client, &side.collection, load, events, cancel, work)
        .await?;
    out.identical = out.ranges_differing == 0 && schema_differences.is_empty();
    out.schema_differences = schema_differences;
    out.duration_s = started.elapsed().as_secs_f64();
    out.rows_per_s = out.rows_target as f64 / out.duration_s.max(1e-9);
    Ok(out)
}

/// The key and hash of every row of range `r`'s files in the backup.
async fn rows_in_files(
    ctx: &Context,
    backup: &str,
    manifest: Option<&crate::model::meta::Manifest>,
    recorded: &crate::model::meta::LogicalCollection,
    r: &LogicalRange,
    fields: &[Field],
) -> Result<HashMap<Key, RowHash>> {
    let tmp = tempfile::tempdir()
        .map_err(|e| Error::internal(format!("making a temporary folder: {e}")))?;
    let local = Location::open(ctx.backup_storage.spec(), &tmp.path().to_string_lossy())?;
    let pk = fields
        .iter()
        .find(|f| f.is_primary)
        .map(|f| f.name.clone())
        .ok_or_else(|| Error::invalid_input("the collection has no primary key"))?;
    let mut rows = HashMap::new();
    for path in &r.files {
        fetch_file(ctx, backup, manifest, path, &local).await?;
        let format = crate::model::meta::Format::of_file(path).unwrap_or_default();
        let file = tmp.path().join(path);
        let (fields, pk, name) = (fields.to_vec(), pk.clone(), path.clone());
        let coll = format!("{}.{}", recorded.db_name, recorded.collection_name);
        let got = tokio::task::spawn_blocking(move || {
            let spec = ReadSpec {
                fields: &fields,
                file: &name,
                collection: &coll,
                batch_bytes: 4 << 20,
                drop_auto_id: false,
            };
            let mut out = Vec::new();
            files::read_file(&file, format, &spec, |(cols, n, _)| {
                let keys = keys_of(&cols, &pk)?;
                let hashes = digest::row_hashes(&fields, &cols, n)?;
                out.extend(keys.into_iter().zip(hashes));
                Ok(())
            })
            .map(|()| out)
        })
        .await
        .map_err(|e| Error::internal(format!("reading `{path}`: {e}")))??;
        rows.extend(got);
        let _ = local.storage.delete(path).await;
    }
    Ok(rows)
}

/// Records the keys of range `r` that differ between the backup's rows
/// and the live ones.
async fn narrow(
    l: &Live<'_>,
    r: &LogicalRange,
    mut left: HashMap<Key, RowHash>,
    show: usize,
    out: &mut Comparison,
) -> Result<()> {
    let (mut only_live, mut different) = (Vec::new(), Vec::new());
    let limits = (r.from.as_ref(), r.to.as_ref());
    l.each_row_within(r.partition.as_deref(), limits, |k, h| {
        match left.remove(&k) {
            Some(was) if was == h => {}
            Some(_) => different.push(k),
            None => only_live.push(k),
        }
    })
    .await?;
    let mut only_backup: Vec<Key> = left.into_keys().collect();
    for list in [&mut only_backup, &mut only_live, &mut different] {
        list.sort();
    }
    for (keys, list) in [
        (only_backup, &mut out.only_in_source),
        (only_live, &mut out.only_in_target),
        (different, &mut out.different),
    ] {
        keys.into_iter().for_each(|k| list.push(k, show));
    }
    Ok(())
}
