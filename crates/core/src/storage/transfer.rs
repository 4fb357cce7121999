//! The ways one object travels between storages, each a
//! [`super::CopyRoute`]: copied by the service in its bucket, by a signed
//! cross-bucket `CopyObject`, piped as one upload whose body is the
//! download, or streamed through the tool in chunks. One attempt each:
//! retries are the caller's ([`super::copy`]). Not here: choosing the
//! route ([`super::route`]) or encoding on the way ([`super::encoded`]).

use futures::TryStreamExt;

use super::{s3copy, CopyOutcome, ObjectInfo, Storage, SOURCE_CHANGED};
use crate::error::{Error, Result};
use crate::model::meta::Check;
use crate::stream::{pump, PumpError, Tallied, Tally};

impl Storage {
    /// Copies within one bucket (or local directory): the service's copy.
    pub(super) async fn bucket_copy(
        &self,
        src: &str,
        dst: &Storage,
        dst_key: &str,
    ) -> Result<CopyOutcome> {
        let meta = self
            .op
            .copy(&self.abs(src), &dst.abs(dst_key))
            .await
            .map_err(|e| self.map_err(e, "copy", src))?;
        let bytes = match meta.content_length() {
            0 => dst.stat(dst_key).await?.unwrap_or(0),
            n => n,
        };
        Ok(CopyOutcome {
            bytes,
            sha256: None,
            server_side: true,
            etag: None,
            check: Check::Size,
            raw: None,
        })
    }

    /// Streams a listed object into an S3 target as one `PutObject` whose
    /// body is the source's answer as it arrives (as `rclone copy
    /// --disable copy` does): download and upload overlap, no part is
    /// buffered, and the SHA-256 is computed on the way.
    pub(super) async fn pipe_to(
        &self,
        src: &ObjectInfo,
        dst: &Storage,
        dst_key: &str,
    ) -> Result<CopyOutcome> {
        let copier = dst.copier.as_ref().expect("CopyRoute::Piped");
        let tally = Tally::default();
        let stream = self
            .op
            .reader_with(&self.abs(&src.key))
            .await
            .map_err(|e| self.map_err(e, "read", &src.key))?
            .into_bytes_stream(0..src.size)
            .await
            .map_err(|e| self.map_err(e, "read", &src.key))?;
        let counted = tally.clone();
        let body = reqwest::Body::wrap_stream(stream.inspect_ok(move |b| counted.update(b)));
        let etag = match copier
            .put_stream(&dst.spec.bucket, &dst.abs(dst_key), src.size, body)
            .await
        {
            Ok(etag) => etag,
            // The read side fails inside the upload: a vanished source
            // (Milvus compacted it) is told as such.
            Err(_) if matches!(self.stat_object(&src.key).await, Ok(None)) => {
                return Err(Error::not_found(format!(
                    "`{}` not found in {}",
                    self.abs(&src.key),
                    self.spec.describe()
                ))
                .at("key", self.abs(&src.key)));
            }
            Err(e) => {
                let what = format!(
                    "copying `{}` ({}) into `{}` ({})",
                    self.abs(&src.key),
                    self.spec.describe(),
                    dst.abs(dst_key),
                    dst.spec.describe()
                );
                return Err(dst.put_error(e, &what, dst_key));
            }
        };
        let (sha256, bytes) = tally.finish();
        if bytes != src.size {
            return Err(Error::remote(format!(
                "copying `{}`: {bytes} of its {} bytes arrived — retry",
                self.abs(&src.key),
                src.size
            ))
            .temporary(true)
            .at("key", self.abs(&src.key)));
        }
        Ok(CopyOutcome {
            bytes,
            sha256: Some(sha256),
            server_side: false,
            etag: Some(etag).filter(|e| !e.is_empty()),
            check: Check::Sha256,
            raw: None,
        })
    }

    pub(super) async fn signed_copy(
        &self,
        src: &ObjectInfo,
        dst: &Storage,
        dst_key: &str,
    ) -> Result<CopyOutcome> {
        let copier = self.copier.as_ref().expect("CopyRoute::SignedServerSide");
        let if_match = src.etag.as_deref().filter(|e| !e.is_empty());
        let copied = copier
            .copy(
                (&self.spec.bucket, &self.abs(&src.key)),
                (&dst.spec.bucket, &dst.abs(dst_key)),
                src.size,
                if_match,
            )
            .await
            .map_err(|e| self.copy_error(e, &src.key, dst, dst_key))?;
        let md5_source = if_match.is_some_and(s3copy::etag_is_md5);
        if md5_source && !copied.multipart && copied.etag != src.etag.as_deref().unwrap_or_default()
        {
            // A service that ignores `x-amz-copy-source-if-match` copied
            // whatever the source holds now.
            return Err(Error::remote(format!(
                "`{}` changed while it was copied (the copy's ETag {} is not the listed {}) — Milvus may be compacting; retry the backup",
                self.abs(&src.key),
                copied.etag,
                src.etag.as_deref().unwrap_or_default()
            ))
            .at(SOURCE_CHANGED, "etag")
            .at("key", dst.abs(dst_key)));
        }
        // Without a source ETag the copy was unconditional: its size is
        // the object's, not necessarily the listed one.
        let bytes = if if_match.is_some() {
            src.size
        } else {
            dst.stat(dst_key).await?.unwrap_or(0)
        };
        let check = if copied.sha256.is_some() {
            Check::ServiceSha256
        } else if md5_source && !copied.multipart {
            Check::Etag
        } else {
            Check::Size
        };
        Ok(CopyOutcome {
            bytes,
            sha256: copied.sha256,
            server_side: true,
            etag: Some(copied.etag).filter(|e| !e.is_empty()),
            check,
            raw: None,
        })
    }

    /// Copies through the tool, computing SHA-256 of the bytes as they pass.
    pub async fn stream_to(&self, src: &str, dst: &Storage, dst_key: &str) -> Result<CopyOutcome> {
        self.stream_sized(src, None, dst, dst_key).await
    }

    /// [`Storage::stream_to`] of an object whose size a listing gave: the
    /// read asks no HEAD first.
    pub(super) async fn stream_sized(
        &self,
        src: &str,
        size: Option<u64>,
        dst: &Storage,
        dst_key: &str,
    ) -> Result<CopyOutcome> {
        let tally = Tally::default();
        let mut reader = self.open_read_sized(src, size).await?;
        let mut writer = Tallied::new(dst.open_write(dst_key).await?, &tally);
        let io = |storage: &Storage, key: &str, e: std::io::Error| {
            storage.io_error(&format!("copying `{src}` into `{dst_key}`"), key, e)
        };
        match pump(&mut reader, &mut writer).await {
            Ok(_) => {}
            Err(PumpError::Read(e)) => return Err(io(self, src, e)),
            Err(PumpError::Write(e)) => return Err(io(dst, dst_key, e)),
        }
        futures::AsyncWriteExt::close(&mut writer)
            .await
            .map_err(|e| io(dst, dst_key, e))?;
        let (sha256, bytes) = tally.finish();
        Ok(CopyOutcome {
            bytes,
            sha256: Some(sha256),
            server_side: false,
            etag: None,
            check: Check::Sha256,
            raw: None,
        })
    }
}
