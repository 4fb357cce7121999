//! Opening a storage: the provider's service ([`super::providers`]) under
//! one OpenDAL layer stack, documented here.
//!
//! The stack, inside out:
//! 1. the service, on the whole bucket (so two storages in one bucket copy
//!    server-side, whatever their roots);
//! 2. `TimeoutLayer`: a request taking over 120 s, or an I/O step over
//!    60 s, fails instead of hanging;
//! 3. `RetryLayer` (3 retries, 200 ms – 5 s jittered backoff, only errors
//!    OpenDAL marks temporary) — for single requests only.
//!
//! Copies use the stack without the retry layer ([`Storage::unretried`]):
//! a copy is retried whole by its caller ([`super::copy`]), which must see
//! each throttle to halve its concurrency; retrying its requests inside
//! would multiply the attempts and hide the throttles.

use std::sync::Arc;
use std::time::Duration;

use opendal::layers::{RetryLayer, TimeoutLayer};

use super::providers::{root_prefix, service};
use super::{s3copy, Provider, Storage, StorageSpec};
use crate::codec::key::KeySource;
use crate::error::Result;

impl Storage {
    /// Opens a storage; makes no request yet.
    pub fn open(spec: StorageSpec) -> Result<Storage> {
        static INIT: std::sync::Once = std::sync::Once::new();
        INIT.call_once(opendal::install_default);

        let (op, prefix) = service(&spec)?;
        let once = op.layer(
            TimeoutLayer::new()
                .with_timeout(Duration::from_secs(120))
                .with_io_timeout(Duration::from_secs(60)),
        );
        let op = once.clone().layer(
            RetryLayer::new()
                .with_max_times(3)
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_jitter(),
        );
        let copier = (spec.provider == Provider::S3 && !spec.use_iam).then(|| {
            Arc::new(s3copy::S3Copier::new(
                &spec.endpoint(),
                &spec.region,
                &spec.access_key_id,
                spec.secret_access_key.expose(),
                spec.token.expose(),
            ))
        });
        Ok(Storage {
            op,
            once,
            spec,
            prefix,
            key: None,
            copier,
        })
    }

    /// This storage with no request retried (the same service and
    /// connections): what a copy runs on.
    pub(super) fn unretried(&self) -> Storage {
        Storage {
            op: self.once.clone(),
            ..self.clone()
        }
    }

    /// This storage with what opens (and seals) its encrypted backups: a
    /// key, or a password for its root key (see [`crate::storage::root_key`]).
    pub fn with_key(mut self, key: Option<KeySource>) -> Storage {
        self.key = key.map(Arc::new);
        self
    }

    /// This storage's service and bucket with another root (an object
    /// store's key prefix); `None` for local storage, whose operator is
    /// rooted at its directory.
    pub fn rerooted(&self, root: &str) -> Option<Storage> {
        if self.spec.provider == Provider::Local {
            return None;
        }
        let mut s = self.clone();
        s.spec.root = root.to_string();
        s.prefix = root_prefix(root);
        Some(s)
    }
}
