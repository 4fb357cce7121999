//! milvus-backup core: everything the tool does, behind thin front ends
//! (the `milvus-backup` CLI and its REST server).
//!
//! Modules, one concept each:
//! - [`config`]: the anchor-compatible `backup.yaml`, environment and `--set`.
//! - [`milvus`]: the gRPC client wrapper and version features.
//! - [`storage`]: OpenDAL operators, copy, and every object key ([`storage::layout`]).
//! - [`codec`]: compression and encryption of stored files, and the key.
//! - [`format`]: the on-disk meta files (the anchor's) and our manifest.
//! - [`selection`]: which collections an operation covers.
//! - [`backup`]: `create`; [`catalog`]: `list`, `get`, `delete`.
//! - [`verify`]: meta consistency, file presence, sizes and checksums.
//! - [`sample`], [`restore_test`]: `verify --restore-test`, a throwaway
//!   restore compared with rows sampled at backup time.
//! - [`check`]: the `check` command's probe of Milvus and both storages.
//! - [`gc`]: pausing Milvus's garbage collection during copies.
//! - [`progress`]: progress events for the front ends.

pub mod backup;
pub mod catalog;
pub mod check;
pub mod codec;
pub mod config;
pub mod context;
pub mod error;
pub mod format;
pub mod gc;
pub mod milvus;
pub mod progress;
pub mod restore;
pub mod restore_test;
pub mod sample;
pub mod selection;
pub mod storage;
pub mod verify;

pub use context::Context;
pub use error::{Error, ErrorKind, Result};
