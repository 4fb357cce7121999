//! The copy phase of a physical backup: which planned files are shared
//! with the base, kept from an interrupted run or copied; the copies
//! themselves, paced by the [`CopyEngine`] with Milvus's garbage collection
//! paused; and each copied file's manifest entry.
//!
//! How one file travels (server-side, piped, streamed, encoded) is
//! storage's decision ([`crate::storage::CopyRoute`]), not this module's.
//! Not here: choosing what is shared ([`super::incremental`]), the
//! manifest itself ([`super::meta`]).

use std::collections::BTreeMap;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};

use super::incremental::{check_base_holds, share, BaseIndex};
use super::plan::{BackupPlan, FileCopy};
use super::run::{BackupRun, Copied};
use crate::cancellable;
use crate::codec::Encoder;
use crate::context::Context;
use crate::error::{Error, Result, ResultExt};
use crate::events::{Emit, Event, Phase};
use crate::model::layout;
use crate::model::meta::{Check, ManifestFile};
use crate::ops::gc_pause::GcPause;
use crate::storage::copy::CopyEngine;
use crate::storage::{CopyRoute, ObjectInfo};

impl BackupRun<'_> {
    /// Copies the files not shared with the base (checking the base still
    /// holds the shared ones), with Milvus's garbage collection paused.
    pub(super) async fn copy_phase(&self) -> Result<Copied> {
        let (ctx, plan, events) = (self.ctx, &self.plan, self.events);
        let resumed = if plan.resume {
            keep_stored(ctx, plan).await?
        } else {
            BTreeMap::new()
        };
        let (shared, to_copy) = self.sort_out(&resumed);
        let total: u64 = to_copy.iter().map(|(_, f)| f.size).sum();
        events.phase(Phase::Copying {
            files: to_copy.len() as u64,
            bytes: total,
            shared: shared.len() as u64,
        });
        check_base_holds(ctx, plan, &shared).await?;
        // Milvus must not collect the files while they are copied.
        let gc = if plan.gc_pause.enable && !to_copy.is_empty() {
            Some(GcPause::start(&plan.gc_pause, &plan.info.milvus_version, events).await)
        } else {
            None
        };
        let copy_started = Instant::now();
        let copied = cancellable(self.cancel, self.copy_all(&to_copy)).await;
        if let Some(gc) = gc {
            gc.resume().await;
        }
        let copied = copied?;
        let copied_now: u64 = copied.iter().map(|f| f.size).sum();
        let resumed: Vec<ManifestFile> = resumed.into_values().collect();
        let copied_bytes = copied_now + resumed.iter().map(|f| f.size).sum::<u64>();
        events.emit(Event::Copied {
            raw_bytes: total,
            stored_bytes: copied_now,
            seconds: copy_started.elapsed().as_secs_f64(),
            encoding: plan.encoder.describe(),
        });
        let shared_files = shared.len() as u64;
        let shared_bytes = shared.iter().map(|f| f.size).sum();
        let mut files: Vec<ManifestFile> = copied
            .into_iter()
            .chain(shared)
            .chain(resumed.iter().cloned())
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Copied {
            files,
            copied_bytes,
            shared_files,
            shared_bytes,
            resumed,
        })
    }

    /// The planned files the base holds (their manifest entries), and those
    /// to copy (by collection, largest first); files an interrupted run
    /// stored are done already.
    fn sort_out(
        &self,
        resumed: &BTreeMap<String, ManifestFile>,
    ) -> (Vec<ManifestFile>, Vec<(usize, &FileCopy)>) {
        let plan = &self.plan;
        let mut shared: Vec<ManifestFile> = Vec::new();
        let mut to_copy: Vec<(usize, &FileCopy)> = Vec::new();
        let index = plan.base_manifest.as_ref().map(BaseIndex::new);
        for (i, c) in plan.collections.iter().enumerate() {
            for f in &c.files {
                let entry = match (&f.shared_with, &index) {
                    (Some(base), Some(m)) => share(&plan.encoder, base, m, f),
                    _ => None,
                };
                match entry {
                    Some(e) => shared.push(e),
                    None if resumed.contains_key(&f.target) => {
                        // Stored by the interrupted run: done already.
                        self.events.emit(Event::FileDone {
                            collection: Some(i),
                            bytes: f.size,
                        });
                    }
                    None => to_copy.push((i, f)),
                }
            }
        }
        // Largest first: the last copies to finish are small ones, so the run
        // does not end waiting on one big file while the others sit idle.
        to_copy.sort_by_key(|(_, f)| std::cmp::Reverse(f.size));
        (shared, to_copy)
    }

    /// Copies files concurrently, encoding them as the plan says.
    async fn copy_all(&self, files: &[(usize, &FileCopy)]) -> Result<Vec<ManifestFile>> {
        let (ctx, plan) = (self.ctx, &self.plan);
        let backup_dir = layout::backup_dir(&plan.name);
        let engine = &CopyEngine::new(
            plan.tuning.copy_parallelism,
            plan.tuning.rate_limit_mb_s as f64,
        );
        let encoding = plan.encoder.encoding();
        futures::stream::iter(files.iter().map(|(collection, f)| {
            let target = format!("{backup_dir}{}", f.target);
            // Decided once: how the file is copied, and so whether it takes
            // from the memory budget.
            let route = ctx
                .milvus_storage
                .route(&ctx.backup_storage, Some(f.size), encoding);
            async move {
                let entry = engine
                    .run(f.size, route.buffers(), || {
                        copy_file(ctx, route, &plan.encoder, f, &target)
                    })
                    .await
                    .at("key", &f.source)?;
                self.journal.stored(&entry);
                self.events.emit(Event::FileDone {
                    collection: Some(*collection),
                    bytes: f.size,
                });
                Ok(entry)
            }
        }))
        .buffer_unordered(engine.width())
        .try_collect()
        .await
    }
}

/// `--resume`: the planned files an interrupted run stored completely (its
/// journal lists them, and storage holds them at the recorded size), by
/// target; every other binlog in the backup's folder is removed, so the
/// result holds exactly what an uninterrupted run would.
async fn keep_stored(ctx: &Context, plan: &BackupPlan) -> Result<BTreeMap<String, ManifestFile>> {
    let backup_dir = layout::backup_dir(&plan.name);
    let present: BTreeMap<String, u64> = ctx
        .backup_storage
        .list(&layout::join(&backup_dir, "binlogs/"))
        .await?
        .into_iter()
        .map(|o| (o.key[backup_dir.len()..].to_string(), o.size))
        .collect();
    let mut kept = BTreeMap::new();
    for f in plan.collections.iter().flat_map(|c| &c.files) {
        if f.shared_with.is_some() {
            continue;
        }
        if let Some(entry) = plan.stored.reusable(&f.target, &f.source, f.size) {
            if present.get(&f.target) == Some(&entry.size) {
                kept.insert(f.target.clone(), entry.clone());
            }
        }
    }
    let stray = present.keys().filter(|k| {
        !kept.contains_key(*k)
            && !plan
                .collections
                .iter()
                .flat_map(|c| &c.files)
                .any(|f| &f.target == *k && f.shared_with.is_none())
    });
    for key in stray {
        ctx.backup_storage
            .delete(&layout::join(&backup_dir, key))
            .await?;
    }
    Ok(kept)
}

/// Copies one file along `route`, once (the engine retries); its manifest
/// entry says how the copy was checked: the SHA-256 of the bytes streamed
/// or the service's SHA-256 of a server-side copy, else the copy's ETag
/// against the listed one (see [`Check`]). Only a server-side copy the
/// service reports nothing of is read back.
async fn copy_file(
    ctx: &Context,
    route: CopyRoute,
    encoder: &Encoder,
    f: &FileCopy,
    target: &str,
) -> Result<ManifestFile> {
    let listed = ObjectInfo {
        key: f.source.clone(),
        size: f.size,
        etag: f.etag.clone(),
    };
    let outcome = ctx
        .milvus_storage
        .copy_routed(route, &listed, &ctx.backup_storage, target, encoder)
        .await?;
    if let Some((raw_size, raw_sha256)) = outcome.raw {
        check_unchanged(&f.source, f.size, raw_size)?;
        return Ok(ManifestFile {
            path: f.target.clone(),
            size: outcome.bytes,
            sha256: outcome.sha256.unwrap_or_default(),
            source: f.source.clone(),
            encoding: encoder.encoding(),
            raw_size: Some(raw_size),
            raw_sha256: (!encoder.encoding().encrypted).then_some(raw_sha256),
            stored_in: None,
            check: Some(Check::Sha256),
            etag: None,
            source_etag: f.etag.clone(),
            rows: None,
        });
    }
    let (sha256, size, check) = match outcome.sha256 {
        Some(sha) => (sha, outcome.bytes, outcome.check),
        None if outcome.etag.is_some() => (String::new(), outcome.bytes, outcome.check),
        None => {
            let (sha, size) = ctx.backup_storage.sha256(target).await?;
            (sha, size, Check::ReadBack)
        }
    };
    check_unchanged(&f.source, f.size, size)?;
    Ok(ManifestFile {
        path: f.target.clone(),
        size,
        sha256,
        source: f.source.clone(),
        check: Some(check),
        etag: outcome.etag,
        source_etag: f.etag.clone(),
        ..Default::default()
    })
}

fn check_unchanged(source: &str, expected: u64, size: u64) -> Result<()> {
    if size != expected {
        return Err(Error::remote(format!(
            "`{source}` changed while it was copied ({expected} bytes listed, {size} copied) — Milvus may be compacting; retry the backup"
        )));
    }
    Ok(())
}
