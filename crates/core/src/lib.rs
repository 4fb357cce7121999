//! milvus-backup core: everything the tool does, behind thin front ends
//! (the `milvus-backup` CLI and its REST server).
//!
//! Every operation has one shape: `XxxOptions` in, an inspectable `XxxPlan`
//! (what `--dry-run` prints), `execute(plan, events, cancel)` that reports
//! typed [`events`] and stops on a cancellation token, and `XxxStats` out.
//!
//! Layers, lowest first; a module imports only from its own layer and
//! those below it, and no two modules import each other (the test
//! `layers::tests` reads every `use crate::…` and fails otherwise):
//! 1. [`error`], [`events`], [`stream`], [`phase_time`]: error kinds,
//!    progress events, byte tallies, wall time per phase.
//! 2. [`model`]: the backup's types (meta files, layout, manifest,
//!    selections), no I/O.
//! 3. [`config`]: the settings as the user wrote them (the Go tool's
//!    `backup.yaml`, its v2 file, the user guide's `config.yaml`), and the
//!    typed [`config::tuning::Tuning`] a plan carries.
//! 4. [`codec`]: compression, encryption and keys, as byte transforms.
//! 5. [`milvus`]: the [`milvus::Milvus`] calls and their gRPC client.
//! 6. [`storage`]: OpenDAL operators, copies and their engine, encoded
//!    files, and the root key a password unlocks.
//! 7. [`context`]: the connections one operation uses.
//! 8. [`repo`]: the backups in a storage: catalog, index, journals, staging.
//! 9. [`ops`]: the operations.
//! 10. [`schedule`]: backups that run themselves, over the operations.

pub mod board;
pub mod codec;
pub mod config;
pub mod context;
pub mod error;
pub mod events;
pub mod milvus;
pub mod model;
pub mod ops;
pub mod phase_time;
pub mod repo;
pub mod schedule;
pub mod storage;
pub mod stream;

#[cfg(test)]
mod layers;
#[cfg(test)]
mod testkit;

pub use context::Context;
pub use error::{Caller, Error, ErrorKind, Opt, Remedy, Result, ResultExt};
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

/// `1.5 GiB`-style sizes for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
