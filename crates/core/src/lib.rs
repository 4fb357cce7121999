//! milvus-backup core: everything the tool does, behind thin front ends
//! (the `milvus-backup` CLI and its REST server).
//!
//! Every operation has one shape: `XxxOptions` in, an inspectable `XxxPlan`
//! (what `--dry-run` prints), `execute(plan, events, cancel)` that reports
//! typed [`events`] and stops on a cancellation token, and `XxxStats` out.
//!
//! Modules, one concept each, leaves first (no module depends on one
//! listed after it that depends on it back):
//! - [`error`], [`naming`], [`stream`], [`key`], [`events`]: leaves — error
//!   kinds, backup-name rules, byte tallies, the encryption key, progress.
//! - [`config`]: the anchor-compatible `backup.yaml`, environment and `--set`.
//! - [`milvus`]: the [`milvus::Milvus`] calls and their gRPC client.
//! - [`storage`]: OpenDAL operators, copy, and every object key ([`storage::layout`]).
//! - [`keyring`]: the key that opens a backup storage, and the root key a
//!   password unlocks there.
//! - [`codec`]: compression and encryption of stored files.
//! - [`format`]: the on-disk meta files (the anchor's) and our manifest.
//! - [`selection`]: which collections an operation covers.
//! - [`catalog`]: the backups in storage — `list`, `get`, reading meta
//!   ([`catalog_index`]: the cache that makes `list` one read);
//!   [`delete`]: deleting backups and retention.
//! - [`backup`]: `create`; [`restore`]: `restore`; [`rbac`]: users and
//!   roles in both (`--rbac`).
//! - [`logical`]: `export` and `import` of rows as Parquet or JSON files,
//!   over gRPC alone.
//! - [`verify`]: meta consistency, file presence, sizes and checksums, and
//!   [`rehearsal`] (`--restore-test`), a throwaway restore compared with
//!   rows [`sample`]d at backup time.
//! - [`check`]: the `check` command's probe of Milvus and both storages.
//! - [`replicate`]: a backup copied whole into another backup storage;
//!   [`schedule`]: the `backup_strategy` scheduler's runs, lease, health
//!   and alerts.
//! - [`gc`]: pausing Milvus's garbage collection during copies.
//! - [`context`]: the connections one operation uses; [`tuning`]: the
//!   parallelism and temp-file settings a plan carries.

pub mod backup;
pub mod catalog;
pub mod catalog_index;
pub mod check;
pub mod codec;
pub mod config;
pub mod context;
pub mod copy_engine;
pub mod deep_hash;
pub mod delete;
pub mod deltalog;
pub mod error;
pub mod events;
pub mod format;
pub mod gc;
pub mod journal;
pub mod key;
pub mod keyring;
pub mod logical;
pub mod milvus;
pub mod naming;
pub mod rbac;
pub mod rehearsal;
pub mod replicate;
pub mod restore;
pub mod sample;
pub mod schedule;
pub mod selection;
pub mod staging;
pub mod storage;
pub mod stream;
pub mod tuning;
pub mod verify;
pub mod wall;

#[cfg(test)]
mod testkit;

pub use context::Context;
pub use error::{Error, ErrorKind, Result, ResultExt};
pub use tokio_util::sync::CancellationToken;

/// Runs `work` until it ends or `cancel` fires (then `ErrorKind::Cancelled`).
pub async fn cancellable<T>(
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Error::cancelled()),
        r = work => r,
    }
}
