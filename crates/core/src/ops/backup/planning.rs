//! Making the plan of a backup, changing nothing.
//!
//! [`plan`] checks the name is free (or resumable), resolves the selection
//! once, reads each collection's metadata, has [`super::listing`] list its
//! persisted segments and files, and has [`super::incremental`] decide what
//! is shared with a base (`--dry-run` prints the result). Not here: the
//! plan's types ([`super::plan`]) or running it ([`super::run`]).

use std::time::Instant;

use futures::StreamExt;

use super::listing::list_segments;
use super::options::BackupOptions;
use super::plan::{BackupPlan, CollectionPlan, PlanTotals};
use crate::codec::{Compression, Encoder};
use crate::context::Context;
use crate::error::{Error, Result, ResultExt};
use crate::milvus::Milvus;
use crate::model::layout;
use crate::model::meta::{BackupInfo, DatabaseBackupInfo};
use crate::model::naming::{default_backup_name, validate_backup_name};
use crate::model::selection::{CollectionRef, Selection};
use crate::ops::collection::collection_meta;
use crate::ops::retention::Retention;
use crate::repo::journal;
use crate::storage::root_key;

/// Plans a backup; changes nothing.
pub async fn plan(ctx: &Context, opts: &BackupOptions) -> Result<BackupPlan> {
    make_plan(ctx, opts).await.during("create")
}

async fn make_plan(ctx: &Context, opts: &BackupOptions) -> Result<BackupPlan> {
    let started = Instant::now();
    let name = opts.name.clone().unwrap_or_else(default_backup_name);
    validate_backup_name(&name)?;
    check_name_free(ctx, &name, opts.resume || opts.shard.is_some()).await?;
    let (encoder, new_root_key) = encoder(ctx, opts).await?;
    let stored = if opts.resume {
        let recipient = encoder.key.as_ref().map(|k| k.recipient());
        journal::interrupted_create(&ctx.backup_storage, &name, encoder.encoding(), recipient)
            .await?
    } else {
        journal::Stored::default()
    };
    let mut notes = Vec::new();
    let logical = logical_format(ctx, opts, &mut notes)?;
    let client = ctx.milvus().await?;
    let client = client.as_ref();
    let selected = opts.selection.resolve(client).await?;
    // `--rbac` alone on a Milvus without collections: users and roles only.
    if selected.is_empty() && !opts.rbac {
        return Err(Error::not_found(format!(
            "Milvus at {} has no collections to back up",
            client.address()
        )));
    }
    let base = super::incremental::base_backup(ctx, opts, &selected, &mut notes).await?;
    let (base, base_logical) = match (logical, base) {
        (Some(format), Some(base)) => {
            super::incremental::logical_base(ctx, opts, format, base, &mut notes).await?
        }
        (_, base) => (base, None),
    };
    let info = brief(client, &name, &selected, opts.rbac).await?;
    let mut plan = BackupPlan {
        name: name.clone(),
        milvus: format!("{} ({})", client.address(), client.version_text()),
        collections: Vec::new(),
        totals: PlanTotals::default(),
        flush: !opts.force && !opts.meta_only && logical.is_none(),
        meta_only: opts.meta_only,
        encoding: encoder.encoding(),
        compression_level: encoder.level,
        base_backup: base.as_ref().map(|(b, _)| b.clone()),
        notes,
        tuning: opts.tuning.unwrap_or(ctx.settings.tuning),
        retention: Retention::from_settings(&ctx.settings),
        new_root_key,
        rbac: info.rbac_meta.as_ref().map(|m| m.counts()),
        resume: opts.resume,
        resumed_files: 0,
        stored,
        format: logical.map_or("binlog".into(), |f| f.to_string()),
        allow_unpersisted_deletes: opts.allow_unpersisted_deletes,
        logical,
        encoder,
        base_manifest: base.map(|(_, m)| m),
        base_logical,
        info,
        gc_pause: ctx.settings.gc_pause.clone(),
        selection: opts.selection.clone(),
        started: Some(started),
    };
    plan_collections(ctx, client, &selected, &mut plan).await?;
    plan.recount();
    if opts.resume {
        note_resumed(&mut plan);
    }
    Ok(plan)
}

/// Refuses a name a complete backup has, or an incomplete one unless the
/// create resumes it.
async fn check_name_free(ctx: &Context, name: &str, resume: bool) -> Result<()> {
    let storage = &ctx.backup_storage;
    if !storage.has_objects(&layout::backup_dir(name)).await? {
        return Ok(());
    }
    let complete = storage
        .stat(&layout::backup_meta_file(name, layout::FULL_META))
        .await?
        .is_some();
    let where_ = storage.spec().describe();
    if complete {
        return Err(Error::already_exists(format!(
            "backup `{name}` already exists in {where_} and is complete — choose another name or delete it first"
        )));
    }
    if !resume {
        // A create that was killed, failed or lost its storage left it.
        return Err(Error::conflict(format!(
            "backup `{name}` in {where_} is incomplete (an earlier create of it did not finish) — finish it with `milvus-backup create -n {name} --resume` (same options), or delete it with `milvus-backup delete -n {name}`"
        )));
    }
    Ok(())
}

/// The backup's brief: who made it, from which Milvus, when, with which
/// databases (and users and roles with `--rbac`); no collections yet.
async fn brief(
    client: &dyn Milvus,
    name: &str,
    selected: &[CollectionRef],
    rbac: bool,
) -> Result<BackupInfo> {
    let now = chrono::Utc::now();
    let rbac_meta = match rbac {
        true => Some(crate::ops::rbac::collect(client).await?),
        false => None,
    };
    // The selection was resolved against the server's databases already.
    let mut database_backups = Vec::new();
    let dbs: std::collections::BTreeSet<&str> = selected.iter().map(|c| c.db.as_str()).collect();
    for db_name in dbs {
        database_backups.push(DatabaseBackupInfo {
            db_name: db_name.to_string(),
            properties: crate::model::meta::kvs(&client.database_properties(db_name).await?),
            ..Default::default()
        });
    }
    Ok(BackupInfo {
        rbac_meta,
        id: uuid::Uuid::new_v4().to_string(),
        state_code: 2,
        name: name.to_string(),
        backup_timestamp: now.timestamp_millis() as u64,
        start_time: now.timestamp_millis(),
        progress: 100,
        milvus_version: client.version_text().to_string(),
        format: "milvus-backup-rs".into(),
        database_backups,
        ..Default::default()
    })
}

/// Reads each selected collection's metadata and (for a physical backup)
/// lists its files into the plan, `backup_collections` collections at a
/// time, in the selection's order; one dropped meanwhile that was not
/// named one by one is skipped with a note.
async fn plan_collections(
    ctx: &Context,
    client: &dyn Milvus,
    selected: &[CollectionRef],
    plan: &mut BackupPlan,
) -> Result<()> {
    let width = plan.tuning.backup_collections.max(1);
    let planned: Vec<(&CollectionRef, Result<CollectionPlan>)> = {
        let plan = &*plan;
        // Made in a loop, not in a stream's closure: rustc proves them Send.
        let mut planning = Vec::with_capacity(selected.len());
        for coll in selected {
            planning.push(async move { (coll, plan_collection(ctx, client, coll, plan).await) });
        }
        futures::stream::iter(planning)
            .buffered(width)
            .collect()
            .await
    };
    for (coll, planned) in planned {
        match planned {
            Ok(c) => plan.collections.push(c),
            Err(e) if vanished(client, coll, &plan.selection).await => {
                plan.notes.push(format!(
                    "{coll} was dropped while the backup was planned: skipped ({e})"
                ));
            }
            Err(e) => return Err(e.at("collection", coll)),
        }
    }
    if plan.collections.is_empty() && !selected.is_empty() {
        return Err(Error::not_found(format!(
            "nothing to back up: every selected collection was dropped meanwhile ({})",
            plan.notes.join("; ")
        )));
    }
    Ok(())
}

/// One collection's metadata and (for a physical backup) files.
async fn plan_collection(
    ctx: &Context,
    client: &dyn Milvus,
    coll: &CollectionRef,
    plan: &BackupPlan,
) -> Result<CollectionPlan> {
    let meta = collection_meta(client, coll).await?;
    let mut c = CollectionPlan {
        collection: coll.to_string(),
        segments: 0,
        bytes: 0,
        files: Vec::new(),
        source: coll.clone(),
        meta,
        dropped: false,
    };
    if plan.logical.is_none() {
        list_segments(ctx, client, plan, &mut c).await?;
    }
    Ok(c)
}

/// `--resume`: counts the files the interrupted create stored, and says so.
fn note_resumed(plan: &mut BackupPlan) {
    plan.resumed_files = plan.count_stored();
    let note = if plan.stored.files.is_empty() {
        format!(
            "--resume: no files of an interrupted create of `{}` to keep: copying everything",
            plan.name
        )
    } else {
        format!(
            "--resume: {} file(s) the interrupted create stored are kept (checked by size before copying)",
            plan.resumed_files
        )
    };
    plan.notes.push(note);
}

/// The logical format of the backup, `None` for a physical one: as asked,
/// else parquet when the config names no storage for Milvus's own files
/// (the user guide's config), else binlog.
fn logical_format(
    ctx: &Context,
    opts: &BackupOptions,
    notes: &mut Vec<String>,
) -> Result<Option<crate::ops::logical::Format>> {
    let format = match opts.format.as_deref().map(str::trim) {
        Some("binlog") => return Ok(None),
        Some(f) if !f.is_empty() => f.parse::<crate::ops::logical::Format>().map_err(|_| {
            Error::invalid_input(format!(
                "unknown backup format `{f}`: use binlog, parquet or json"
            ))
        })?,
        _ if ctx.settings.no_milvus_storage && !opts.meta_only => {
            notes.push(
                "the config names no storage for Milvus's own files: making a logical backup (rows read over gRPC, stored as Parquet); --format binlog makes a physical one".into(),
            );
            crate::ops::logical::Format::Parquet
        }
        _ => return Ok(None),
    };
    if opts.meta_only {
        return Ok(None);
    }
    Ok(Some(format))
}

/// How new files are stored, from the options and the settings.
pub(super) async fn encoder(ctx: &Context, opts: &BackupOptions) -> Result<(Encoder, bool)> {
    let defaults = &ctx.settings.compression;
    let compression = match &opts.compress {
        Some(name) => Compression::parse(name)?,
        None if defaults.enabled => Compression::parse(&defaults.algorithm)?,
        None => Compression::None,
    };
    let level = opts.compress_level.unwrap_or(defaults.level);
    compression.check_level(level)?;
    let (key, new_root_key) = if opts.encrypt {
        let sealing = root_key::sealing_key(&ctx.backup_storage).await?.ok_or_else(|| {
            Error::invalid_input(
                "--encrypt needs a key or a password: set MILVUS_BACKUP_ENCRYPTION_KEY or backup.encryption.keyFile (generate one with `milvus-backup keygen`), or MILVUS_BACKUP_PASSWORD (backup.encryption.password)",
            )
        })?;
        (Some(sealing.key), sealing.new_root)
    } else {
        (None, false)
    };
    Ok((
        Encoder {
            compression,
            level,
            key,
        },
        new_root_key,
    ))
}

/// Whether a collection that failed is gone from Milvus and was not named
/// one by one: such a collection is left out with a note, not an error
/// (`--all` while other clients drop collections).
pub(super) async fn vanished(
    client: &dyn Milvus,
    coll: &CollectionRef,
    selection: &Selection,
) -> bool {
    !selection.names(coll)
        && client
            .list_collections(&coll.db)
            .await
            .is_ok_and(|names| !names.contains(&coll.name))
}
