//! `restore`: collections from a backup back into a Milvus.
//!
//! Options → Plan → Stats. [`plan`] maps each backed-up collection to its
//! target name (suffix, renames, `--collection/--target-collection`),
//! checks every target (what exists, what would be refused), gives each
//! collection its overrides (shards, description), decides how its data
//! gets in ([`DataPath`]) and where segments are staged, and lists the
//! import jobs — changing nothing (`--dry-run` prints it). [`execute`]
//! refuses a plan with any refusal, then for each collection recreates the
//! database, collection (same schema, field order and ids, shards,
//! consistency level, properties, partition-key partitions — shards and
//! description as overridden), partitions and indexes, and ingests its
//! data: each segment with `Import` in backup mode, or a logical backup's
//! rows by inserts or Milvus's import of staged files.
//!
//! Milvus reads import files from its own storage. When the backup is in a
//! different bucket or service, or its files are encoded or shared, each
//! segment's files are first staged into the target's storage under the
//! plan's staging folder, and removed after the import (success or not)
//! unless `backup.keepTempFiles`. A collection whose restore is cancelled,
//! or fails on a damaged backup, is dropped again (unless it was reused),
//! and the staging folder is swept. Any other failure (or a kill) leaves
//! the collection partly restored, with a journal in the staging folder of
//! what finished ([`crate::repo::journal`]); `--resume` then imports only the
//! segments whose imports did not complete, and never one twice.
//!
//! The files, one concern each: [`request`] (a front end's input into
//! options), [`options`] (the options and their checks), `targets`
//! (target names), [`plan`](mod@plan) (planning), [`tasks`] (each
//! collection's task), [`run`] (execution),
//! `binlog` (segments staged and imported), `order` (imports started in
//! write order, so duplicate keys resolve as in the source), [`bulk`] (a
//! logical backup's files through Milvus's import), [`estimate`] (when
//! importing many small segments is far slower than inserting their rows),
//! `insert` (a physical backup's binlogs read here and their rows
//! inserted, `--import-mode insert`).

mod binlog;
pub mod bulk;
pub mod estimate;
mod insert;
pub mod options;
mod order;
pub mod plan;
pub mod request;
pub mod run;
pub mod sharded;
mod targets;
pub mod tasks;

pub use options::{CollectionOverride, ImportMode, RestoreOptions};
pub use plan::{plan, DataPath, RestorePlan};
pub use request::{CollectionMapping, DatabaseMapping, RestoreMapping, RestoreRequest};
pub use run::{execute, RestoreStats};
pub use tasks::{CollectionTask, ImportJob, Refusal};

pub(crate) use binlog::Binlogs;
pub(crate) use order::{in_write_order, ImportOrder};
pub(crate) use plan::plan_from;
pub(crate) use run::hold_staging;
pub(crate) use tasks::segments_with_files;

use crate::context::Context;
use crate::error::Result;
use crate::events::EventSink;
use crate::CancellationToken;

/// Restores a backup: plan, then execute.
pub async fn restore(
    ctx: &Context,
    opts: &RestoreOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<RestoreStats> {
    let plan = plan(ctx, opts).await?;
    execute(ctx, &plan, events, cancel).await
}

#[cfg(test)]
mod tests;
