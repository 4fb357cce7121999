//! milvus-backup core: everything the tool does, behind thin front ends
//! (the `milvus-backup` CLI and its REST server).
//!
//! Modules, one concept each:
//! - [`config`]: the anchor-compatible `backup.yaml`, environment and `--set`.
//! - [`milvus`]: the gRPC client wrapper and version features.
//! - [`storage`]: OpenDAL operators, copy, and every object key ([`storage::layout`]).
//! - [`check`]: the `check` command's probe of Milvus and both storages.

pub mod check;
pub mod config;
pub mod error;
pub mod milvus;
pub mod storage;

pub use error::{Error, ErrorKind, Result};
