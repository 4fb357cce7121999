//! Object storage: one [`Storage`] for Milvus's own files and one for the
//! backups, both over OpenDAL.
//!
//! Each `Storage` is an OpenDAL operator on the whole bucket (or, for local
//! storage, on the base directory) plus the root path that every key is
//! relative to. Keeping the operator at bucket level lets two `Storage`s in
//! the same bucket copy server-side, whatever their roots.
//!
//! Layers, inside out: the service, then timeouts (a stuck request fails
//! instead of hanging), then retries with jittered backoff (OpenDAL retries
//! only errors it marks temporary).
//!
//! Object keys are built in [`layout`], nowhere else.

pub mod copy;
pub mod encoded;
pub mod root_key;
pub mod s3copy;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{services, ErrorKind as DalKind, Operator};

use crate::codec::key::KeySource;
use crate::config::{Config, MinioConfig, Secret};
use crate::error::{Error, ErrorKind, Result};
use crate::model::meta::Check;
use crate::stream::{pump, PumpError, Tallied, Tally};

/// The storage services a config can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Local,
    S3,
    Gcs,
    Azure,
    Oss,
    Cos,
    /// OpenDAL's in-memory service: for unit tests of the operations.
    Memory,
}

impl Provider {
    /// Maps the Go tool's `storageType` names to a provider.
    pub fn from_storage_type(name: &str) -> Result<Provider> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "local" => Provider::Local,
            "minio" | "s3" | "aws" => Provider::S3,
            "gcp" | "gcpnative" => Provider::Gcs,
            "azure" => Provider::Azure,
            "ali" | "aliyun" => Provider::Oss,
            "tc" | "tencent" => Provider::Cos,
            other => {
                return Err(Error::invalid_input(format!(
                    "storage type `{other}` is not supported — use one of {}",
                    crate::config::STORAGE_TYPES.join(", ")
                )))
            }
        })
    }
}

/// Which side of the tool a storage is; named in messages and config hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Milvus,
    Backup,
}

/// Everything needed to open one storage.
#[derive(Debug, Clone)]
pub struct StorageSpec {
    pub side: Side,
    pub provider: Provider,
    /// `host:port` for network services; unused for local.
    pub address: String,
    pub use_ssl: bool,
    pub region: String,
    pub bucket: String,
    /// Key prefix (or base directory for local storage).
    pub root: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub token: Secret,
    pub use_iam: bool,
    pub iam_endpoint: String,
    pub gcp_credential_json: String,
    /// Never copy server-side to or from this storage (`minio.crossStorage`).
    pub force_stream: bool,
}

impl StorageSpec {
    /// The storage where Milvus keeps its binlogs (`minio.*`).
    pub fn milvus(config: &Config) -> Result<StorageSpec> {
        let m = &config.minio;
        Ok(StorageSpec {
            side: Side::Milvus,
            provider: Provider::from_storage_type(&m.storage_type)?,
            address: host_port(&m.address, m.port),
            use_ssl: m.use_ssl,
            region: m.region.clone(),
            bucket: m.bucket_name.clone(),
            root: m.root_path.clone(),
            access_key_id: m.access_key_id.clone(),
            secret_access_key: m.secret_access_key.clone(),
            token: m.token.clone(),
            use_iam: m.use_iam,
            iam_endpoint: m.iam_endpoint.clone(),
            gcp_credential_json: m.gcp_credential_json.clone(),
            force_stream: false,
        })
    }

    /// The storage where backups live (`minio.backup*`, each falling back to
    /// the Milvus-side value when empty, as in the Go tool).
    pub fn backup(config: &Config) -> Result<StorageSpec> {
        let m: &MinioConfig = &config.minio;
        let storage_type = or(&m.backup_storage_type, &m.storage_type);
        let address = or(&m.backup_address, &m.address);
        let port = if m.backup_port == 0 {
            m.port
        } else {
            m.backup_port
        };
        Ok(StorageSpec {
            side: Side::Backup,
            provider: Provider::from_storage_type(storage_type)?,
            address: host_port(address, port),
            use_ssl: m.backup_use_ssl.unwrap_or(m.use_ssl),
            region: or(&m.backup_region, &m.region).to_string(),
            bucket: m.backup_bucket_name.clone(),
            root: m.backup_root_path.clone(),
            access_key_id: m.backup_access_key_id.clone(),
            secret_access_key: m.backup_secret_access_key.clone(),
            token: m.backup_token.clone(),
            use_iam: m.backup_use_iam.unwrap_or(m.use_iam),
            iam_endpoint: or(&m.backup_iam_endpoint, &m.iam_endpoint).to_string(),
            gcp_credential_json: or(&m.backup_gcp_credential_json, &m.gcp_credential_json)
                .to_string(),
            force_stream: false,
        })
    }

    /// An in-memory storage (OpenDAL's memory service), empty, for tests of
    /// the operations without servers. `name` tells it apart in messages.
    pub fn memory(side: Side, name: &str) -> StorageSpec {
        StorageSpec {
            side,
            provider: Provider::Memory,
            address: String::new(),
            use_ssl: false,
            region: String::new(),
            bucket: name.to_string(),
            root: String::new(),
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            token: Secret::default(),
            use_iam: false,
            iam_endpoint: String::new(),
            gcp_credential_json: String::new(),
            force_stream: false,
        }
    }

    fn endpoint(&self) -> String {
        if self.address.contains("://") {
            self.address.clone()
        } else {
            let scheme = if self.use_ssl { "https" } else { "http" };
            format!("{scheme}://{}", self.address)
        }
    }

    /// Config keys the user should look at, for error hints.
    fn keys(&self) -> (&'static str, &'static str, &'static str) {
        match self.side {
            Side::Milvus => (
                "minio.bucketName",
                "minio.address/minio.port",
                "minio.accessKeyID/minio.secretAccessKey",
            ),
            Side::Backup => (
                "minio.backupBucketName",
                "minio.backupAddress/minio.backupPort",
                "minio.backupAccessKeyID/minio.backupSecretAccessKey",
            ),
        }
    }

    /// A short human description, e.g. `s3 bucket a-bucket at http://h:9000`.
    pub fn describe(&self) -> String {
        match self.provider {
            Provider::Local => format!("local directory {}", self.root),
            Provider::Memory => format!("memory store `{}`", self.bucket),
            _ => format!("bucket `{}` at {}", self.bucket, self.endpoint()),
        }
    }
}

fn or<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

fn host_port(address: &str, port: u16) -> String {
    // An address that already carries a port or a scheme is used as given.
    if address.contains("://")
        || address
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        address.to_string()
    } else {
        format!("{address}:{port}")
    }
}

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
    pub bytes: u64,
    /// SHA-256 of the content: hashed as it passed through the tool, or
    /// computed by the service on a server-side copy.
    pub sha256: Option<String>,
    pub server_side: bool,
    /// ETag of the new object, where the service reported one.
    pub etag: Option<String>,
    pub check: Check,
}

/// One side's object storage.
#[derive(Clone)]
pub struct Storage {
    op: Operator,
    spec: StorageSpec,
    /// Prefix joined before every key (`root/`), empty for local storage.
    prefix: String,
    /// The key that opens encrypted backups (backup storage only).
    key: Option<std::sync::Arc<KeySource>>,
    /// Signed server-side copies into other buckets of the same endpoint
    /// (S3 with static credentials).
    copier: Option<std::sync::Arc<s3copy::S3Copier>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("spec", &self.spec).finish()
    }
}

const CHUNK: usize = crate::storage::copy::STREAM_CHUNK as usize;
/// Largest object piped in one `PutObject` (one request must finish
/// within the copier's timeout even on a slow link); larger ones stream
/// in multipart chunks.
const PIPE_MAX: u64 = 1 << 30;

/// How a listed object is copied between two storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// By the storage service, nothing through the tool.
    ServerSide,
    /// Through the tool as one upload whose body is the download as it
    /// arrives: nothing is buffered ([`Storage::pipe_to`]).
    Piped,
    /// Through the tool in chunks: read ahead and multipart parts are
    /// buffered (the copy engine's memory budget bounds them).
    Buffered,
}

/// Context field of the error of a server-side copy whose source no longer
/// had the ETag it was listed with.
pub const SOURCE_CHANGED: &str = "source_changed";

impl Storage {
    /// Opens a storage; makes no request yet.
    pub fn open(spec: StorageSpec) -> Result<Storage> {
        static INIT: std::sync::Once = std::sync::Once::new();
        INIT.call_once(opendal::install_default);

        let s = &spec;
        let invalid = |e: opendal::Error| {
            Error::invalid_input(format!("cannot configure storage {}: {e}", s.describe()))
        };
        let (op, prefix) = match s.provider {
            Provider::Local => {
                if s.root.is_empty() {
                    return Err(Error::invalid_input(
                        "local storage needs a directory: set minio.rootPath (Milvus side) or minio.backupRootPath (backup side)",
                    ));
                }
                let b = services::Fs::default().root(&s.root);
                (Operator::new(b).map_err(invalid)?, String::new())
            }
            Provider::S3 => {
                let mut b = services::S3::default()
                    .root("/")
                    .bucket(&s.bucket)
                    .endpoint(&s.endpoint())
                    .region(if s.region.is_empty() {
                        "us-east-1"
                    } else {
                        &s.region
                    });
                if s.use_iam {
                    // Credentials come from the environment / instance metadata.
                } else {
                    b = b
                        .access_key_id(&s.access_key_id)
                        .secret_access_key(s.secret_access_key.expose())
                        .disable_config_load()
                        .disable_ec2_metadata();
                    if !s.token.is_empty() {
                        b = b.session_token(s.token.expose());
                    }
                }
                (Operator::new(b).map_err(invalid)?, root_prefix(&s.root))
            }
            Provider::Gcs => {
                let mut b = services::Gcs::default().root("/").bucket(&s.bucket);
                if !s.gcp_credential_json.is_empty() {
                    b = b.credential_path(&s.gcp_credential_json);
                }
                (Operator::new(b).map_err(invalid)?, root_prefix(&s.root))
            }
            Provider::Azure => {
                let b = services::Azblob::default()
                    .root("/")
                    .container(&s.bucket)
                    .endpoint(&s.endpoint())
                    .account_name(&s.access_key_id)
                    .account_key(s.secret_access_key.expose());
                (Operator::new(b).map_err(invalid)?, root_prefix(&s.root))
            }
            Provider::Oss => {
                let b = services::Oss::default()
                    .root("/")
                    .bucket(&s.bucket)
                    .endpoint(&s.endpoint())
                    .access_key_id(&s.access_key_id)
                    .access_key_secret(s.secret_access_key.expose());
                (Operator::new(b).map_err(invalid)?, root_prefix(&s.root))
            }
            Provider::Memory => {
                let b = services::Memory::default().root("/");
                (Operator::new(b).map_err(invalid)?, root_prefix(&s.root))
            }
            Provider::Cos => {
                let b = services::Cos::default()
                    .root("/")
                    .bucket(&s.bucket)
                    .endpoint(&s.endpoint())
                    .secret_id(&s.access_key_id)
                    .secret_key(s.secret_access_key.expose());
                (Operator::new(b).map_err(invalid)?, root_prefix(&s.root))
            }
        };
        let op = op
            .layer(
                TimeoutLayer::new()
                    .with_timeout(Duration::from_secs(120))
                    .with_io_timeout(Duration::from_secs(60)),
            )
            .layer(
                RetryLayer::new()
                    .with_max_times(3)
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(5))
                    .with_jitter(),
            );
        let copier = (spec.provider == Provider::S3 && !spec.use_iam).then(|| {
            std::sync::Arc::new(s3copy::S3Copier::new(
                &spec.endpoint(),
                &spec.region,
                &spec.access_key_id,
                spec.secret_access_key.expose(),
                spec.token.expose(),
            ))
        });
        Ok(Storage {
            op,
            spec,
            prefix,
            key: None,
            copier,
        })
    }

    /// This storage with what opens (and seals) its encrypted backups: a
    /// key, or a password for its root key (see [`crate::storage::root_key`]).
    pub fn with_key(mut self, key: Option<KeySource>) -> Storage {
        self.key = key.map(std::sync::Arc::new);
        self
    }

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

    /// A lister of `prefix`, or `None` when there is nothing there (a
    /// missing folder; a missing bucket stays an error).
    async fn lister(&self, prefix: &str, recursive: bool) -> Result<Option<opendal::Lister>> {
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
    async fn entries(&self, prefix: &str, recursive: bool) -> Result<Vec<opendal::Entry>> {
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

    /// Copies `src` of this storage to `dst_key` of `dst`: server-side when
    /// [`Storage::server_side_to`], streamed through the tool (hashing on
    /// the way) otherwise. A signed S3 copy first asks the source's size.
    pub async fn copy_to(&self, src: &str, dst: &Storage, dst_key: &str) -> Result<CopyOutcome> {
        if self.copier.is_some() && self.server_side_to(dst) {
            let Some(listed) = self.stat_object(src).await? else {
                return Err(Error::not_found(format!(
                    "`{}` not found in {}",
                    self.abs(src),
                    self.spec.describe()
                ))
                .at("key", self.abs(src)));
            };
            return self.copy_listed(&listed, dst, dst_key).await;
        }
        self.copy_object(src, None, dst, dst_key).await
    }

    /// Copies a listed object (its size and ETag as the listing gave them):
    /// server-side when [`Storage::server_side_to`], and then checked
    /// without reading it back — the S3 copy is conditional on the listed
    /// ETag, its ETag must equal the source's, and the service's SHA-256
    /// is kept where it gives one ([`Check`] says which held).
    pub async fn copy_listed(
        &self,
        src: &ObjectInfo,
        dst: &Storage,
        dst_key: &str,
    ) -> Result<CopyOutcome> {
        self.copy_object(&src.key, Some(src), dst, dst_key).await
    }

    async fn copy_object(
        &self,
        src: &str,
        listed: Option<&ObjectInfo>,
        dst: &Storage,
        dst_key: &str,
    ) -> Result<CopyOutcome> {
        let route = listed.map(|l| (l, self.route_to(dst, l.size)));
        if let (Some(copier), Some((listed, Route::ServerSide))) = (&self.copier, route) {
            return self.signed_copy(copier, listed, dst, dst_key).await;
        }
        if self.same_bucket_as(dst) {
            let meta = self
                .op
                .copy(&self.abs(src), &dst.abs(dst_key))
                .await
                .map_err(|e| self.map_err(e, "copy", src))?;
            let bytes = match meta.content_length() {
                0 => dst.stat(dst_key).await?.unwrap_or(0),
                n => n,
            };
            return Ok(CopyOutcome {
                bytes,
                sha256: None,
                server_side: true,
                etag: None,
                check: Check::Size,
            });
        }
        if let Some((listed, Route::Piped)) = route {
            return self.pipe_to(listed, dst, dst_key).await;
        }
        self.stream_sized(src, listed.map(|l| l.size), dst, dst_key)
            .await
    }

    /// How [`Storage::copy_listed`] copies an object of `size` bytes into
    /// `dst`; decided here once, for the copy and for the memory budget.
    pub fn route_to(&self, dst: &Storage, size: u64) -> Route {
        if self.server_side_to(dst) {
            Route::ServerSide
        } else if dst.copier.is_some() && size > 0 && size <= PIPE_MAX {
            Route::Piped
        } else {
            Route::Buffered
        }
    }

    /// Streams a listed object into an S3 target as one `PutObject` whose
    /// body is the source's answer as it arrives (as `rclone copy
    /// --disable copy` does): download and upload overlap, no part is
    /// buffered, and the SHA-256 is computed on the way.
    async fn pipe_to(&self, src: &ObjectInfo, dst: &Storage, dst_key: &str) -> Result<CopyOutcome> {
        use futures::TryStreamExt;
        let copier = dst.copier.as_ref().expect("Route::Piped");
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
        })
    }

    /// A failed signed upload into this storage as one of our errors.
    fn put_error(&self, e: s3copy::CopyError, what: &str, key: &str) -> Error {
        let (_, _, cred_key) = self.spec.keys();
        let err = if e.status == 404 {
            Error::not_found(format!("{what} failed: {e} — check the bucket names"))
        } else if let Some(err) = signed_refusal(&e, what, &format!("check {cred_key}")) {
            err
        } else if matches!(
            e.code.as_str(),
            "QuotaExceeded"
                | "XMinioStorageFull"
                | "XMinioAdminBucketQuotaExceeded"
                | "StorageFull"
        ) || e.status == 507
        {
            self.quota_error(key, Some(&e.code))
        } else {
            Error::remote(format!("{what} failed: {e}")).temporary(e.is_temporary())
        };
        err.at("key", self.abs(key))
    }

    async fn signed_copy(
        &self,
        copier: &s3copy::S3Copier,
        src: &ObjectInfo,
        dst: &Storage,
        dst_key: &str,
    ) -> Result<CopyOutcome> {
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
        })
    }

    /// A failed signed copy as one of our errors.
    fn copy_error(&self, e: s3copy::CopyError, src: &str, dst: &Storage, dst_key: &str) -> Error {
        let what = format!(
            "server-side copy of `{}` ({}) into `{}` ({})",
            self.abs(src),
            self.spec.describe(),
            dst.abs(dst_key),
            dst.spec.describe()
        );
        let err = if e.source_changed() {
            Error::remote(format!(
                "`{}` changed while it was copied (its ETag is no longer the listed one) — Milvus may be compacting; retry the backup",
                self.abs(src)
            ))
            .at(SOURCE_CHANGED, "etag")
        } else if e.not_found() && e.code == "NoSuchBucket" {
            Error::not_found(format!("{what} failed: {e} — check the bucket names"))
        } else if e.not_found() {
            Error::not_found(format!(
                "`{}` not found in {}",
                self.abs(src),
                self.spec.describe()
            ))
        } else if let Some(err) = signed_refusal(
            &e,
            &what,
            "the identity needs read access to the source bucket and write access to the target, or set minio.crossStorage: true to stream",
        ) {
            err
        } else {
            Error::remote(format!("{what} failed: {e}")).temporary(e.is_temporary())
        };
        err.at("key", self.abs(src))
    }

    /// Copies through the tool, computing SHA-256 of the bytes as they pass.
    pub async fn stream_to(&self, src: &str, dst: &Storage, dst_key: &str) -> Result<CopyOutcome> {
        self.stream_sized(src, None, dst, dst_key).await
    }

    /// [`Storage::stream_to`] of an object whose size a listing gave: the
    /// read asks no HEAD first.
    async fn stream_sized(
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
        })
    }

    /// A streaming reader of a whole object.
    pub async fn open_read(&self, key: &str) -> Result<opendal::FuturesAsyncReader> {
        self.open_read_sized(key, None).await
    }

    /// A streaming reader of a whole object of a known size (no HEAD).
    async fn open_read_sized(
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

    /// An I/O error while streaming `key` of this storage (`doing` says
    /// what): the storage's own error when it is one (a full disk or quota
    /// keeps its message), else a temporary remote failure.
    pub fn io_error(&self, doing: &str, key: &str, e: std::io::Error) -> Error {
        if is_quota(&e, None) {
            return self.quota_error(key, None);
        }
        if e.kind() == std::io::ErrorKind::NotFound {
            // A read of a known size asks no HEAD: a vanished object shows
            // here.
            return Error::not_found(format!(
                "{doing}: `{}` not found in {}",
                self.abs(key),
                self.spec.describe()
            ))
            .at("key", self.abs(key));
        }
        Error::remote(format!("{doing}: {e} ({})", self.spec.describe()))
            .temporary(true)
            .at("key", key)
    }

    fn quota_error(&self, key: &str, code: Option<&str>) -> Error {
        Error::remote(format!(
            "backup storage is full: {} has no room left for `{}` ({}) — free space or raise the quota, or store less: compression (backup.compression: true, compressionAlgorithm: zstd, compressionLevel: 9), backup.maxBackupNum / retentionDays",
            self.spec.describe(),
            self.abs(key),
            code.unwrap_or("no space left on device")
        ))
        .at("key", self.abs(key))
    }

    /// Turns an OpenDAL error into one line that names the object, the
    /// storage and the config keys to check.
    ///
    /// OpenDAL keeps the HTTP status and the S3 error code only in its
    /// error text (the `response` context), so those two are read from it;
    /// every other decision uses OpenDAL's error kind.
    fn map_err(&self, e: opendal::Error, op: &str, key: &str) -> Error {
        let (bucket_key, addr_key, cred_key) = self.spec.keys();
        let what = self.spec.describe();
        let text = e.to_string();
        let code = s3_code(&text);
        let status = http_status(&text);
        let err = if is_missing_bucket(&e) {
            Error::not_found(format!(
                "bucket `{}` not found at {} — create it or check {bucket_key}",
                self.spec.bucket,
                self.spec.endpoint()
            ))
        } else {
            match e.kind() {
                DalKind::NotFound => Error::not_found(format!("`{}` not found in {what}", self.abs(key))),
                DalKind::PermissionDenied => Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{what} refused the credentials ({}) — check {cred_key}", code.unwrap_or("access denied")),
                ),
                DalKind::ConfigInvalid => Error::invalid_input(format!("storage {what} is misconfigured: {text}")),
                DalKind::RateLimited => Error::new(
                    ErrorKind::Throttled,
                    format!("storage {what} keeps asking to slow down ({}) on {op} `{}` — retry later, or lower backup.parallelism.copydata", code.unwrap_or("rate limited"), self.abs(key)),
                )
                .temporary(true),
                _ if matches!(code, Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied")) => {
                    Error::new(
                        ErrorKind::PermissionDenied,
                        format!("{what} refused the credentials ({}) — check {cred_key}", code.unwrap_or_default()),
                    )
                }
                _ if is_quota(&e, code) => return self.quota_error(key, code).with_source(e),
                _ if status.is_some_and(|s| (500..600).contains(&s)) => Error::new(
                    ErrorKind::Unreachable,
                    format!(
                        "storage {what} is unavailable: it answered HTTP {} to {op} `{}`{} after retries — the service is down or overloaded; check it (and {addr_key}) and retry",
                        status.unwrap_or_default(),
                        self.abs(key),
                        code.map(|c| format!(" ({c})")).unwrap_or_default(),
                    ),
                )
                .temporary(true),
                _ if status.is_none() && is_connect_error(&text) => Error::new(
                    ErrorKind::Unreachable,
                    format!("cannot reach storage at {} — check {addr_key} and that the service is running", self.spec.endpoint()),
                )
                .temporary(true),
                _ => Error::remote(format!("{op} `{}` in {what} failed: {}", self.abs(key), first_line(&text)))
                    .temporary(e.is_temporary()),
            }
        };
        err.at("key", self.abs(key)).with_source(e)
    }
}

fn root_prefix(root: &str) -> String {
    let r = root.trim_matches('/');
    if r.is_empty() {
        String::new()
    } else {
        format!("{r}/")
    }
}

fn is_missing_bucket(e: &opendal::Error) -> bool {
    let t = e.to_string();
    t.contains("NoSuchBucket") || t.contains("The specified bucket does not exist")
}

/// A signed request the service throttled (temporary) or refused for its
/// credentials (`fix` says what to do), as one of our errors.
fn signed_refusal(e: &s3copy::CopyError, what: &str, fix: &str) -> Option<Error> {
    if e.is_throttle() {
        return Some(
            Error::new(
                ErrorKind::Throttled,
                format!("storage keeps asking to slow down ({e}) on {what} — retry later, or lower backup.parallelism.copydata"),
            )
            .temporary(true),
        );
    }
    matches!(
        e.code.as_str(),
        "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"
    )
    .then(|| {
        Error::new(
            ErrorKind::PermissionDenied,
            format!("{what} was refused ({e}) — {fix}"),
        )
    })
}

/// The storage refused a write for want of space: a full disk or quota on
/// a local path (ENOSPC, EDQUOT), or an S3 service's quota error code.
fn is_quota(e: &(dyn std::error::Error + 'static), code: Option<&str>) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    if matches!(
        code,
        Some(
            "QuotaExceeded"
                | "XMinioStorageFull"
                | "XMinioAdminBucketQuotaExceeded"
                | "StorageFull"
        )
    ) {
        return true;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::StorageFull
                || matches!(io.raw_os_error(), Some(ENOSPC | EDQUOT))
            {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

fn is_connect_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("connection refused")
        || t.contains("error sending request")
        || t.contains("dns error")
        || t.contains("failed to lookup")
        || t.contains("tcp connect error")
}

/// The HTTP status of the response an OpenDAL error text describes, if any.
fn http_status(text: &str) -> Option<u16> {
    let start = text.find("status: ")? + "status: ".len();
    text[start..].get(..3)?.parse().ok()
}

/// The S3 error code in an OpenDAL error text, if any.
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(&text[start..end])
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text);
    line.chars().take(300).collect()
}
