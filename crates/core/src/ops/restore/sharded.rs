//! A logical backup restored by N processes: `restore --shard K/N`
//! inserts shard K's files, `restore --seal` then loads, makes the aliases
//! and checks the rows. Kubernetes runs the
//! shards as an Indexed Job (`deploy/kubernetes/`).
//!
//! The first shard to start records the restore (`plan.json` in a folder
//! beside the row restores' journals, named by the backup and the options
//! that name the targets): its shard count and targets, which must not
//! exist then. Every shard makes a target it finds missing, with its
//! indexes (two racing shards: one makes it, the other finds it made),
//! then inserts its files
//! (file `i` of the restore, counting across the collections in order, is
//! shard `i mod N`'s), each batch in its own journal, so a shard run again
//! after a kill inserts only what is missing; once finished it writes
//! `done-<K>.json`, and a run again does nothing.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::options::{ImportMode, RestoreOptions};
use super::plan::RestorePlan;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::events::{Emit, EventSink};
use crate::milvus::Milvus;
use crate::model::layout;
use crate::model::selection::CollectionRef;
use crate::model::shard::Shard;
use crate::ops::collection::{create_indexes, create_like, ensure_database};
use crate::ops::logical::in_backup::{self, RowsJournal, RowsSource};
use crate::repo::journal::{RestoreJournal, RestoreRecord};
use crate::repo::meta_files::read_json;
use crate::{cancellable, CancellationToken};

/// The restore every shard follows, written by the first.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    shards: usize,
    /// `db.coll`, in the plan's order.
    targets: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Done {
    record: String,
    rows: u64,
    files: usize,
}

/// What `restore --shard` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShardRestoreStats {
    pub backup: String,
    /// `K/N`.
    pub shard: String,
    pub collections: usize,
    /// Files this shard inserted, and the restore's in all.
    pub files: usize,
    pub files_total: usize,
    pub rows: u64,
    /// It had finished before: nothing was done again.
    pub already_done: bool,
    pub duration_s: f64,
}

/// The folder of a sharded restore's records: by backup and by the
/// options that choose and name the targets.
fn records_dir(opts: &RestoreOptions) -> String {
    let naming = serde_json::json!([
        opts.collections,
        opts.databases,
        opts.db_collections,
        opts.suffix,
        opts.renames,
        opts.filter,
    ]);
    let hex = hex::encode(&Sha256::digest(naming.to_string().as_bytes())[..6]);
    layout::restore_shards_dir(&opts.backup_name, &hex)
}

fn record_key(dir: &str) -> String {
    layout::join(dir, "plan.json")
}

fn done_key(dir: &str, k: usize) -> String {
    layout::join(dir, &format!("done-{k}.json"))
}

/// The options of one shard's plan: rows only, no index or load yet.
fn shard_options(opts: &RestoreOptions) -> Result<RestoreOptions> {
    if opts.import_mode == Some(ImportMode::Bulk) {
        return Err(Error::invalid_input(
            "--shard inserts rows: drop --import-mode bulk",
        ));
    }
    if opts.drop_exist_collection || opts.skip_create_collection || opts.meta_only {
        return Err(Error::invalid_input(
            "--shard restores into new collections only: drop --drop_exist_collection, --skip_create_collection and --meta_only",
        ));
    }
    Ok(RestoreOptions {
        restore_index: false,
        load: false,
        skip_aliases: true,
        resume: false,
        rbac: false,
        ..opts.clone()
    })
}

/// `restore --shard K/N`: inserts shard K's files of a logical backup.
pub async fn run_shard(
    ctx: &Context,
    opts: &RestoreOptions,
    shard: Shard,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<ShardRestoreStats> {
    let started = Instant::now();
    let mut stats = cancellable(cancel, shard_of(ctx, opts, shard, events))
        .await
        .during("restore")
        .map_err(|e| e.at("backup", &opts.backup_name))?;
    stats.duration_s = started.elapsed().as_secs_f64();
    Ok(stats)
}

async fn shard_of(
    ctx: &Context,
    opts: &RestoreOptions,
    shard: Shard,
    events: &dyn EventSink,
) -> Result<ShardRestoreStats> {
    let storage = &ctx.backup_storage;
    let backup = opts.backup_name.as_str();
    let dir = records_dir(opts);
    let mut plan = super::plan(ctx, &shard_options(opts)?).await?;
    let logical = plan.logical.clone().ok_or_else(|| {
        Error::invalid_input(format!(
            "--shard: backup `{backup}` is physical ({}): only a logical backup (parquet or json) is restored in shards — restore it without --shard",
            plan.format
        ))
    })?;
    let targets: Vec<String> = plan.tasks.iter().map(|t| t.target.to_string()).collect();
    let record = match read_json::<Record>(storage, &record_key(&dir)).await? {
        Some(r) => r,
        None => match plan.check() {
            Ok(()) => {
                let made = Record {
                    id: uuid::Uuid::new_v4().to_string(),
                    shards: shard.count,
                    targets: targets.clone(),
                };
                let bytes = serde_json::to_vec_pretty(&made)
                    .map_err(|e| Error::internal(format!("encoding {dir}plan.json: {e}")))?;
                if storage.write_if_absent(&record_key(&dir), bytes).await? {
                    events.note(format!(
                        "recorded the restore of `{backup}` in {} shard(s) into {}",
                        shard.count,
                        targets.join(", ")
                    ));
                }
                read_json::<Record>(storage, &record_key(&dir))
                    .await?
                    .ok_or_else(|| Error::remote(format!("`{dir}plan.json` vanished")))?
            }
            // A target another shard made meanwhile: its record is there now.
            Err(e) => read_json::<Record>(storage, &record_key(&dir))
                .await?
                .ok_or(e)?,
        },
    };
    if record.shards != shard.count {
        return Err(Error::invalid_input(format!(
            "--shard {shard}: this restore of `{backup}` is recorded in {n} shards — run it as --shard K/{n} (K from 0 to {})",
            record.shards - 1,
            n = record.shards
        )));
    }
    if record.targets != targets {
        return Err(Error::invalid_input(format!(
            "this shard restores into {} but the restore of `{backup}` is recorded into {} — give every shard the same options",
            targets.join(", "),
            record.targets.join(", ")
        )));
    }
    // The targets are this restore's: made by a shard, not the user's.
    for t in &mut plan.tasks {
        if t.refused
            .as_ref()
            .is_some_and(|r| r.kind == ErrorKind::AlreadyExists)
        {
            t.refused = None;
        }
    }
    plan.check()?;
    let files_total = (plan.tasks.iter())
        .filter_map(|t| in_backup::collection_of(&logical, backup, &t.source).ok())
        .map(|c| c.files.len())
        .sum();
    let mut stats = ShardRestoreStats {
        backup: backup.to_string(),
        shard: shard.to_string(),
        collections: plan.tasks.len(),
        files_total,
        ..Default::default()
    };
    if let Some(done) = read_json::<Done>(storage, &done_key(&dir, shard.index)).await? {
        if done.record == record.id {
            events.note(format!(
                "shard {shard} of the restore of `{backup}` finished before: nothing to do"
            ));
            stats.already_done = true;
            stats.rows = done.rows;
            stats.files = done.files;
            return Ok(stats);
        }
    }
    let client = ctx.milvus().await?;
    let client = client.as_ref();
    let journal_dir = layout::join(&dir, &format!("journal-{}/", shard.index));
    let journal_key = layout::join(&journal_dir, layout::RESTORE_JOURNAL);
    let past = read_json::<RestoreRecord>(storage, &journal_key)
        .await?
        .unwrap_or_else(|| RestoreRecord {
            backup: backup.to_string(),
            ..Default::default()
        });
    let journal = RestoreJournal::new(storage, &journal_dir, past);
    let mut ordinal = 0;
    for task in &plan.tasks {
        let mut mine = logical.clone();
        let coll = (mine.collections.iter_mut())
            .find(|c| c.db_name == task.source.db && c.collection_name == task.source.name);
        if let Some(coll) = coll {
            coll.files.retain(|_| {
                ordinal += 1;
                shard.owns(ordinal - 1)
            });
            coll.rows = coll.files.iter().map(|f| f.rows).sum();
            stats.files += coll.files.len();
        }
        make_target(client, &plan, task, opts, events).await?;
        let from = RowsSource {
            backup,
            logical: &mine,
            manifest: plan.manifest.as_ref(),
        };
        let rows = RowsJournal {
            journal: &journal,
            keep_loaded: false,
        };
        let (source, target) = (&task.source, &task.target);
        let done = in_backup::restore_rows(ctx, client, from, source, target, &rows, events)
            .await
            .map_err(|e| e.at("collection", target))?;
        stats.rows += done.rows;
    }
    let done = Done {
        record: record.id,
        rows: stats.rows,
        files: stats.files,
    };
    let bytes = serde_json::to_vec_pretty(&done)
        .map_err(|e| Error::internal(format!("encoding a shard record: {e}")))?;
    storage.write(&done_key(&dir, shard.index), bytes).await?;
    let _ = storage.delete_prefix(&journal_dir).await;
    events.note(format!(
        "shard {shard} of the restore of `{backup}` inserted {} file(s) of {files_total}; finish with `milvus-backup restore -n {backup} --seal` (same options) once every shard finished",
        stats.files
    ));
    Ok(stats)
}

/// Makes `task`'s target unless it exists (another shard may be making
/// it at the same time: then the one whose create fails finds it made),
/// with its indexes, as a restore makes them before the rows (so a shard
/// run again after a kill can load it to look up keys).
async fn make_target(
    client: &dyn Milvus,
    plan: &RestorePlan,
    task: &super::CollectionTask,
    opts: &RestoreOptions,
    events: &dyn EventSink,
) -> Result<()> {
    let t = &task.target;
    if exists(client, t).await? {
        return Ok(());
    }
    if task.create_database {
        ensure_database(client, &t.db, &task.database_properties).await?;
    }
    let o = task.overrides.clone().unwrap_or_default();
    let mut meta = task.meta.clone();
    if let Some(description) = o.description {
        meta.schema.description = description;
    }
    meta.shards_num = o.shards_num.unwrap_or(meta.shards_num);
    let made = AtomicBool::new(false);
    match create_like(client, &meta, t, false, &made, events).await {
        Ok(()) => {
            events.note(format!("created {t} for the restore of `{}`", plan.backup));
            if opts.restore_index {
                create_indexes(client, &meta, t, opts.use_auto_index, 0, events).await?;
            }
            Ok(())
        }
        Err(e) if exists(client, t).await? => {
            tracing::debug!("{t} was made by another shard: {e}");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Whether `t` exists; its database may not exist yet (a shard makes it).
async fn exists(client: &dyn Milvus, t: &CollectionRef) -> Result<bool> {
    let listed = client.list_collections(&t.db).await.unwrap_or_default();
    Ok(listed.contains(&t.name))
}

/// `restore -n NAME --seal` (the shards' options): once every shard
/// finished, the indexes, load and aliases, and each target's rows
/// checked against the backup's; otherwise an error naming the shards to
/// run, and nothing changed.
pub async fn seal(
    ctx: &Context,
    opts: &RestoreOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<super::RestoreStats> {
    let started = Instant::now();
    let mut stats = seal_of(ctx, opts, events, cancel)
        .await
        .during("restore")
        .map_err(|e| e.at("backup", &opts.backup_name))?;
    stats.duration_s = started.elapsed().as_secs_f64();
    Ok(stats)
}

async fn seal_of(
    ctx: &Context,
    opts: &RestoreOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<super::RestoreStats> {
    let storage = &ctx.backup_storage;
    let backup = opts.backup_name.as_str();
    let dir = records_dir(opts);
    let record = read_json::<Record>(storage, &record_key(&dir))
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "no restore of `{backup}` in shards with these options has started — run `milvus-backup restore -n {backup} --shard K/N` first, with the same options as --seal"
            ))
        })?;
    let mut missing = Vec::new();
    let mut rows = 0;
    for k in 0..record.shards {
        match read_json::<Done>(storage, &done_key(&dir, k)).await? {
            Some(d) if d.record == record.id => rows += d.rows,
            _ => missing.push(k),
        }
    }
    if let Some(first) = missing.first() {
        let n = record.shards;
        let runs: Vec<String> = missing.iter().map(|k| format!("{k}/{n}")).collect();
        return Err(Error::conflict(format!(
            "{} of {n} shard(s) of the restore of `{backup}` have not finished ({}) — run `milvus-backup restore -n {backup} --shard {first}/{n}` (same options) for each, or wait for those running; nothing was changed",
            missing.len(),
            runs.join(", ")
        )));
    }
    // The targets exist: indexes (a shard made them with the target; made
    // again they stay as they are), load and aliases only.
    let finish = RestoreOptions {
        skip_create_collection: true,
        meta_only: true,
        resume: false,
        ..opts.clone()
    };
    let plan = super::plan(ctx, &finish).await?;
    let logical = plan.logical.clone().unwrap_or_default();
    let mut stats = super::execute(ctx, &plan, events, cancel).await?;
    let client = ctx.milvus().await?;
    let client = client.as_ref();
    for task in &plan.tasks {
        let t = &task.target;
        if !opts.skip_aliases {
            for alias in &task.meta.aliases {
                if let Err(e) = client.create_alias(&t.db, &t.name, alias).await {
                    events.warn(format!("alias `{alias}` not restored for {t}: {e}"));
                }
            }
        }
        let want = in_backup::collection_of(&logical, backup, &task.source)?.rows;
        match crate::ops::logical::by_range::count_now(client, t).await {
            Some(n) if n as u64 != want => {
                return Err(Error::remote(format!(
                    "{t} holds {n} rows after the shards but backup `{backup}` has {want} — the shard records stay in `{dir}`: drop {t} and restore again"
                )))
            }
            Some(_) => {}
            None => events.note(format!(
                "{t} is not loaded: its rows were not counted ({want} inserted by the shards)"
            )),
        }
    }
    if let Err(e) = storage.delete_prefix(&dir).await {
        events.warn(format!("restore finished, but its shard records stay: {e}"));
    }
    stats.entities = rows as i64;
    Ok(stats)
}
