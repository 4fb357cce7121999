//! Object storage: one [`Storage`] for Milvus's own files and one for the
//! backups, both over OpenDAL.
//!
//! Each `Storage` is an OpenDAL operator on the whole bucket (or, for local
//! storage, on the base directory) plus the root path that every key is
//! relative to. Keeping the operator at bucket level lets two `Storage`s in
//! the same bucket copy server-side, whatever their roots.
//!
//! Files, one concern each: `spec` (where a storage is, from the config),
//! `providers` (each provider's OpenDAL service; the names are the
//! config's [`crate::config::providers`] table), `open` (the one layer
//! stack: timeouts, and retries of single requests), `objects` (single
//! requests: list, stat, read, write, delete), `route` (how a file is
//! copied: [`CopyRoute`], decided once), `transfer` (each route's
//! mechanics), [`copy`] (the copy engine: concurrency, rate, memory, and
//! the retries of copies), [`encoded`] (compressed and encrypted files),
//! [`s3copy`] (signed S3 requests), [`root_key`] (the key a password
//! unlocks), `errors` (failures as our errors).
//!
//! Retries live in one place per kind of work: a single request is
//! retried by OpenDAL's retry layer (`open`); a copy is retried whole by
//! [`copy`] (the engine's AIMD loop for a backup's copies, [`copy::retry`]
//! otherwise), on an operator without the retry layer.
//!
//! Object keys are built in [`crate::model::layout`], nowhere else.

pub mod copy;
pub mod encoded;
mod errors;
mod objects;
mod open;
mod providers;
pub mod root_key;
mod route;
pub mod s3copy;
mod spec;
mod transfer;

use std::sync::Arc;

use opendal::Operator;

use crate::codec::key::KeySource;
use crate::model::meta::Check;

pub use crate::config::Provider;
pub use route::CopyRoute;
pub use spec::{Side, StorageSpec};

/// A listed object: key relative to the storage root, size in bytes, and
/// the ETag the listing gave (without quotes), where the service has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
}

/// What one copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOutcome {
    /// Bytes stored.
    pub bytes: u64,
    /// SHA-256 of the content stored: hashed as it passed through the
    /// tool, or computed by the service on a server-side copy.
    pub sha256: Option<String>,
    pub server_side: bool,
    /// ETag of the new object, where the service reported one.
    pub etag: Option<String>,
    pub check: Check,
    /// Size and SHA-256 of the source's bytes, when they were stored
    /// encoded ([`CopyRoute::Encoded`]).
    pub raw: Option<(u64, String)>,
}

/// One side's object storage.
#[derive(Clone)]
pub struct Storage {
    /// The service under the whole layer stack: for single requests.
    op: Operator,
    /// The same without the retry layer: for copies, retried whole.
    once: Operator,
    spec: StorageSpec,
    /// Prefix joined before every key (`root/`), empty for local storage.
    prefix: String,
    /// The key that opens encrypted backups (backup storage only).
    key: Option<Arc<KeySource>>,
    /// Signed server-side copies into other buckets of the same endpoint
    /// (S3 with static credentials).
    copier: Option<Arc<s3copy::S3Copier>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("spec", &self.spec).finish()
    }
}

const CHUNK: usize = copy::STREAM_CHUNK as usize;
/// Largest object piped in one `PutObject` (one request must finish
/// within the copier's timeout even on a slow link); larger ones stream
/// in multipart chunks.
const PIPE_MAX: u64 = 1 << 30;

/// Context field of the error of a server-side copy whose source no longer
/// had the ETag it was listed with.
pub const SOURCE_CHANGED: &str = "source_changed";

impl Storage {
    /// The configured key or password, if any; clones share the key a
    /// password unlocks.
    pub fn key_source(&self) -> Option<&KeySource> {
        self.key.as_deref()
    }

    pub fn spec(&self) -> &StorageSpec {
        &self.spec
    }

    /// The full object key within the bucket (for local storage: the
    /// absolute path) of a root-relative key. Milvus's `Import` takes paths
    /// in this form.
    pub fn full_key(&self, key: &str) -> String {
        match self.spec.provider {
            // Milvus's local chunk manager takes absolute paths.
            Provider::Local => {
                format!("{}/{}", self.spec.root.trim_end_matches('/'), self.abs(key))
            }
            _ => self.abs(key),
        }
    }

    fn abs(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key.trim_start_matches('/'))
    }
}
