//! How a file is copied from one storage into another, decided once per
//! file: [`Storage::route`] gives a [`CopyRoute`], [`Storage::copy_routed`]
//! follows it (one `match`, every route), and the copy engine's memory
//! budget reads [`CopyRoute::buffers`] of the same value.
//!
//! Retries: a copy is retried whole, never request by request (see
//! [`super::copy`]): [`Storage::copy_routed`] is one attempt, for the copy
//! engine, which retries it; [`Storage::copy_to`] and
//! [`Storage::copy_listed`] retry with the same backoff. Not here: the
//! routes' mechanics (`transfer`, [`super::encoded`]).

use super::{copy, encoded, CopyOutcome, ObjectInfo, Provider, Storage, PIPE_MAX};
use crate::codec::{Encoded, Encoder, Encoding};
use crate::error::{Error, Result};
use crate::model::meta::Check;

/// How one object travels into another storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyRoute {
    /// The same bucket (or local directory) with the same identity and no
    /// signer: the service copies it (OpenDAL's copy); checked by size.
    SameBucket,
    /// S3 with static credentials, any bucket of the same endpoint and
    /// identity: a signed `CopyObject` conditional on the listed ETag, with
    /// the service's SHA-256 where it gives one. Nothing through the tool.
    SignedServerSide,
    /// Through the tool as one upload whose body is the download as it
    /// arrives (an S3 target, a listed object of at most 1 GiB): nothing
    /// is buffered, the SHA-256 is computed on the way.
    Piped,
    /// Through the tool in chunks (read ahead, multipart parts): buffered.
    Streamed,
    /// Through the tool, compressed and/or encrypted on the way: buffered.
    Encoded,
}

impl CopyRoute {
    /// Whether the storage service copies it, nothing passing the tool.
    pub fn server_side(self) -> bool {
        match self {
            CopyRoute::SameBucket | CopyRoute::SignedServerSide => true,
            CopyRoute::Piped | CopyRoute::Streamed | CopyRoute::Encoded => false,
        }
    }

    /// Whether it holds chunks in memory while it runs (the copy engine's
    /// memory budget bounds those).
    pub fn buffers(self) -> bool {
        match self {
            CopyRoute::SameBucket | CopyRoute::SignedServerSide | CopyRoute::Piped => false,
            CopyRoute::Streamed | CopyRoute::Encoded => true,
        }
    }
}

impl CopyOutcome {
    /// What an encoded copy did.
    fn encoded(e: Encoded) -> CopyOutcome {
        CopyOutcome {
            bytes: e.size,
            sha256: Some(e.sha256),
            server_side: false,
            etag: None,
            check: Check::Sha256,
            raw: Some((e.raw_size, e.raw_sha256)),
        }
    }
}

impl Storage {
    /// Whether `other` is the same bucket on the same service with the same
    /// identity, so objects can be copied between them server-side.
    pub fn same_bucket_as(&self, other: &Storage) -> bool {
        let (a, b) = (&self.spec, &other.spec);
        !a.force_stream
            && !b.force_stream
            && a.provider == b.provider
            && match a.provider {
                // Each local operator is rooted at its own directory.
                Provider::Local => a.root == b.root,
                // Each in-memory operator is a store of its own.
                Provider::Memory => false,
                _ => {
                    a.endpoint() == b.endpoint()
                        && a.bucket == b.bucket
                        && a.access_key_id == b.access_key_id
                        && a.secret_access_key == b.secret_access_key
                }
            }
    }

    /// Whether objects of this storage copy into `other` server-side: the
    /// same bucket, or (S3 with static credentials) any bucket of the same
    /// endpoint with the same identity.
    pub fn server_side_to(&self, other: &Storage) -> bool {
        if self.same_bucket_as(other) {
            return true;
        }
        let (a, b) = (&self.spec, &other.spec);
        self.copier.is_some()
            && other.copier.is_some()
            && !a.force_stream
            && !b.force_stream
            && a.endpoint() == b.endpoint()
            && a.access_key_id == b.access_key_id
            && a.secret_access_key == b.secret_access_key
            && a.token == b.token
    }

    /// How an object of this storage (of `size` bytes, when a listing gave
    /// it) is copied into `dst`, stored with `encoding`.
    pub fn route(&self, dst: &Storage, size: Option<u64>, encoding: Encoding) -> CopyRoute {
        if !encoding.is_plain() {
            return CopyRoute::Encoded;
        }
        if self.server_side_to(dst) {
            // Without a signer, only within the bucket.
            return match self.copier {
                Some(_) => CopyRoute::SignedServerSide,
                None => CopyRoute::SameBucket,
            };
        }
        match size {
            Some(n) if dst.copier.is_some() && n > 0 && n <= PIPE_MAX => CopyRoute::Piped,
            _ => CopyRoute::Streamed,
        }
    }

    /// How [`Storage::copy_listed`] copies a listed object of `size` bytes
    /// into `dst`, stored as it is.
    pub fn route_to(&self, dst: &Storage, size: u64) -> CopyRoute {
        self.route(dst, Some(size), Encoding::default())
    }

    /// Copies `src` of this storage to `dst_key` of `dst`, as it is:
    /// server-side where [`Storage::server_side_to`] (a signed S3 copy
    /// first asks the source's size), streamed through the tool (hashing
    /// on the way) otherwise. Retried whole when the service pushes back.
    pub async fn copy_to(&self, src: &str, dst: &Storage, dst_key: &str) -> Result<CopyOutcome> {
        let route = self.route(dst, None, Encoding::default());
        let plain = Encoder::default();
        copy::retry(|| self.copy_via(route, src, None, dst, dst_key, &plain)).await
    }

    /// Copies a listed object (its size and ETag as the listing gave them)
    /// as it is: server-side when [`Storage::server_side_to`], and then
    /// checked without reading it back — the S3 copy is conditional on the
    /// listed ETag, its ETag must equal the source's, and the service's
    /// SHA-256 is kept where it gives one ([`Check`] says which held).
    /// Retried whole when the service pushes back.
    pub async fn copy_listed(
        &self,
        src: &ObjectInfo,
        dst: &Storage,
        dst_key: &str,
    ) -> Result<CopyOutcome> {
        let route = self.route_to(dst, src.size);
        let plain = Encoder::default();
        copy::retry(|| self.copy_via(route, &src.key, Some(src), dst, dst_key, &plain)).await
    }

    /// Copies a listed object the way `route` says (from [`Storage::route`]
    /// with `encoder`'s encoding), once: the caller retries.
    pub async fn copy_routed(
        &self,
        route: CopyRoute,
        src: &ObjectInfo,
        dst: &Storage,
        dst_key: &str,
        encoder: &Encoder,
    ) -> Result<CopyOutcome> {
        self.copy_via(route, &src.key, Some(src), dst, dst_key, encoder)
            .await
    }

    /// One attempt of a copy along `route`, with no request retried.
    async fn copy_via(
        &self,
        route: CopyRoute,
        src: &str,
        listed: Option<&ObjectInfo>,
        dst: &Storage,
        dst_key: &str,
        encoder: &Encoder,
    ) -> Result<CopyOutcome> {
        let (from, to) = (self.unretried(), dst.unretried());
        match route {
            CopyRoute::SameBucket => from.bucket_copy(src, &to, dst_key).await,
            CopyRoute::SignedServerSide => {
                let listed = match listed {
                    Some(l) => l.clone(),
                    None => from.stat_listed(src).await?,
                };
                from.signed_copy(&listed, &to, dst_key).await
            }
            CopyRoute::Piped => match listed {
                Some(l) => from.pipe_to(l, &to, dst_key).await,
                None => Err(Error::internal("a piped copy needs the listed size")),
            },
            CopyRoute::Streamed => {
                from.stream_sized(src, listed.map(|l| l.size), &to, dst_key)
                    .await
            }
            CopyRoute::Encoded => encoded::encode_copy(&from, src, &to, dst_key, encoder)
                .await
                .map(CopyOutcome::encoded),
        }
    }

    /// The size and ETag of `src`, which must exist.
    async fn stat_listed(&self, src: &str) -> Result<ObjectInfo> {
        self.stat_object(src).await?.ok_or_else(|| {
            Error::not_found(format!(
                "`{}` not found in {}",
                self.abs(src),
                self.spec.describe()
            ))
            .at("key", self.abs(src))
        })
    }
}
