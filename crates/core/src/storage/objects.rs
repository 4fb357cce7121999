//! Single requests on a storage's objects: listing, stat, read, write
//! (plain, conditional, streaming), delete, and hashing an object. Each
//! goes through the operator's retry layer (see [`super::open`]).

use futures::{StreamExt, TryStreamExt};
use opendal::ErrorKind as DalKind;

use super::errors::is_missing_bucket;
use super::{s3copy, ObjectInfo, Provider, Storage, CHUNK};
use crate::error::{Error, Result};
use crate::stream::{pump, PumpError, Tallied, Tally};

impl Storage {
    /// A lister of `prefix`, or `None` when there is nothing there (a
    /// missing folder; a missing bucket stays an error).
    pub(super) async fn lister(
        &self,
        prefix: &str,
        recursive: bool,
    ) -> Result<Option<opendal::Lister>> {
        match self
            .op
            .lister_with(&self.abs(prefix))
            .recursive(recursive)
            .await
        {
            Ok(l) => Ok(Some(l)),
            Err(e) if e.kind() == DalKind::NotFound && !is_missing_bucket(&e) => Ok(None),
            Err(e) => Err(self.map_err(e, "list", prefix)),
        }
    }

    /// Every entry of a listing, following pagination.
    pub(super) async fn entries(
        &self,
        prefix: &str,
        recursive: bool,
    ) -> Result<Vec<opendal::Entry>> {
        match self.lister(prefix, recursive).await? {
            Some(l) => l
                .try_collect()
                .await
                .map_err(|e| self.map_err(e, "list", prefix)),
            None => Ok(Vec::new()),
        }
    }

    /// Lists every object under `prefix` (a folder ending in `/`, or a key
    /// prefix), recursively, following pagination.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let entries = self.entries(prefix, true).await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            if !entry.metadata().is_file() {
                continue;
            }
            let key = entry
                .path()
                .strip_prefix(&self.prefix)
                .unwrap_or(entry.path())
                .to_string();
            let size = match self.spec.provider {
                // Directory listings carry no sizes; ask the filesystem.
                Provider::Local | Provider::Memory => self.stat(&key).await?.unwrap_or(0),
                _ => entry.metadata().content_length(),
            };
            let etag = entry.metadata().etag().map(s3copy::unquote);
            out.push(ObjectInfo { key, size, etag });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Whether anything is stored under `prefix`; reads one listing page only.
    pub async fn has_objects(&self, prefix: &str) -> Result<bool> {
        let abs = self.abs(prefix);
        let Some(mut lister) = self.lister(prefix, false).await? else {
            return Ok(false);
        };
        while let Some(entry) = lister.next().await {
            let entry = entry.map_err(|e| self.map_err(e, "list", prefix))?;
            if entry.path() != abs {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Names of the immediate sub-folders of a folder key (`""` for the root).
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let abs = self.abs(prefix);
        let mut out: Vec<String> = self
            .entries(prefix, false)
            .await?
            .iter()
            .filter(|e| e.metadata().is_dir() && e.path() != abs)
            .filter_map(|e| {
                e.path()
                    .strip_prefix(&abs)
                    .map(|n| n.trim_end_matches('/').to_string())
            })
            .filter(|n| !n.is_empty())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Size of an object, or `None` when it does not exist.
    pub async fn stat(&self, key: &str) -> Result<Option<u64>> {
        Ok(self.stat_object(key).await?.map(|o| o.size))
    }

    /// Size and ETag of an object, or `None` when it does not exist.
    pub async fn stat_object(&self, key: &str) -> Result<Option<ObjectInfo>> {
        match self.op.stat(&self.abs(key)).await {
            Ok(m) => Ok(Some(ObjectInfo {
                key: key.to_string(),
                size: m.content_length(),
                etag: m.etag().map(s3copy::unquote),
            })),
            Err(e) if e.kind() == DalKind::NotFound && !is_missing_bucket(&e) => Ok(None),
            Err(e) => Err(self.map_err(e, "stat", key)),
        }
    }

    pub async fn read(&self, key: &str) -> Result<Vec<u8>> {
        self.op
            .read(&self.abs(key))
            .await
            .map(|b| b.to_vec())
            .map_err(|e| self.map_err(e, "read", key))
    }

    pub async fn write(&self, key: &str, data: Vec<u8>) -> Result<()> {
        self.op
            .write(&self.abs(key), data)
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(e, "write", key))
    }

    /// Writes an object unless one exists; `false` when it did. Where the
    /// service cannot write conditionally this is a plain write: read the
    /// object back to learn which write won.
    pub async fn write_if_absent(&self, key: &str, data: Vec<u8>) -> Result<bool> {
        let conditional = self.op.info().capability().write_with_if_not_exists;
        match self
            .op
            .write_with(&self.abs(key), data)
            .if_not_exists(conditional)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == DalKind::ConditionNotMatch => Ok(false),
            Err(e) => Err(self.map_err(e, "write", key)),
        }
    }

    /// An object's bytes and its ETag as the service gave it (quoted), or
    /// `None` when it does not exist. The ETag is read first, so a write
    /// conditional on it fails when the object changed in between.
    pub async fn read_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Option<String>)>> {
        let etag = match self.op.stat(&self.abs(key)).await {
            Ok(m) => m.etag().map(str::to_string),
            Err(e) if e.kind() == DalKind::NotFound && !is_missing_bucket(&e) => return Ok(None),
            Err(e) => return Err(self.map_err(e, "stat", key)),
        };
        match self.op.read(&self.abs(key)).await {
            Ok(b) => Ok(Some((b.to_vec(), etag))),
            Err(e) if e.kind() == DalKind::NotFound && !is_missing_bucket(&e) => Ok(None),
            Err(e) => Err(self.map_err(e, "read", key)),
        }
    }

    /// Replaces an object only if it is still the version read (`etag`
    /// from [`Storage::read_versioned`]; `None`: only if it does not
    /// exist); `false` when another write came first. Where the service
    /// cannot write conditionally this is a plain write.
    pub async fn write_if_unchanged(
        &self,
        key: &str,
        data: Vec<u8>,
        etag: Option<&str>,
    ) -> Result<bool> {
        let cap = self.op.info().capability();
        let path = self.abs(key);
        let mut w = self.op.write_with(&path, data);
        match etag {
            Some(tag) if cap.write_with_if_match => w = w.if_match(tag),
            None if cap.write_with_if_not_exists => w = w.if_not_exists(true),
            _ => {}
        }
        match w.await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == DalKind::ConditionNotMatch => Ok(false),
            Err(e) => Err(self.map_err(e, "write", key)),
        }
    }

    /// Deletes one object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.op
            .delete(&self.abs(key))
            .await
            .map_err(|e| self.map_err(e, "delete", key))
    }

    /// Deletes every object under a folder key (ending in `/`).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let objects = self.list(prefix).await?;
        let count = objects.len() as u64;
        let keys = objects.into_iter().map(|o| self.abs(&o.key));
        self.op
            .delete_iter(keys)
            .await
            .map_err(|e| self.map_err(e, "delete", prefix))?;
        if self.spec.provider == Provider::Local {
            // Leave no empty folders behind on a filesystem.
            let _ = self.op.delete_with(&self.abs(prefix)).recursive(true).await;
        }
        Ok(count)
    }

    /// A streaming reader of a whole object.
    pub async fn open_read(&self, key: &str) -> Result<opendal::FuturesAsyncReader> {
        self.open_read_sized(key, None).await
    }

    /// A streaming reader of a whole object of a known size (no HEAD).
    pub(super) async fn open_read_sized(
        &self,
        key: &str,
        size: Option<u64>,
    ) -> Result<opendal::FuturesAsyncReader> {
        let reader = self
            .op
            .reader_with(&self.abs(key))
            .chunk(CHUNK)
            .concurrent(2)
            .await
            .map_err(|e| self.map_err(e, "read", key))?;
        match size {
            Some(n) => reader.into_futures_async_read(0..n).await,
            None => reader.into_futures_async_read(..).await,
        }
        .map_err(|e| self.map_err(e, "read", key))
    }

    /// A streaming writer of an object; it exists once the writer is closed.
    pub async fn open_write(&self, key: &str) -> Result<opendal::FuturesAsyncWriter> {
        self.op
            .writer_with(&self.abs(key))
            .chunk(CHUNK)
            .concurrent(2)
            .await
            .map(|w| w.into_futures_async_write())
            .map_err(|e| self.map_err(e, "write", key))
    }

    /// [`Storage::open_write`] buffering one part of the smallest size S3
    /// takes (5 MiB) at a time: for writers that are many at once.
    pub async fn open_write_lean(&self, key: &str) -> Result<opendal::FuturesAsyncWriter> {
        self.op
            .writer_with(&self.abs(key))
            .chunk(5 << 20)
            .await
            .map(|w| w.into_futures_async_write())
            .map_err(|e| self.map_err(e, "write", key))
    }

    /// SHA-256 and size of an object, read in full.
    pub async fn sha256(&self, key: &str) -> Result<(String, u64)> {
        let tally = Tally::default();
        let mut reader = self.open_read(key).await?;
        let mut sink = Tallied::new(futures::io::sink(), &tally);
        if let Err(PumpError::Read(e) | PumpError::Write(e)) = pump(&mut reader, &mut sink).await {
            return Err(Error::remote(format!(
                "reading `{key}` from {}: {e}",
                self.spec.describe()
            ))
            .temporary(true)
            .at("key", key));
        }
        Ok(tally.finish())
    }
}
