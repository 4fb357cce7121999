//! Where a storage is: [`StorageSpec`], read from the config's `minio.*`
//! keys (the Milvus side) or their `minio.backup*` twins (the backup side,
//! each falling back to the Milvus side's value, as in the Go tool), and
//! how it is named in messages. Not here: opening it (`open`).

use crate::config::{MinioConfig, Provider, Secret};
use crate::error::Result;

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
    pub fn milvus(m: &MinioConfig) -> Result<StorageSpec> {
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
    pub fn backup(m: &MinioConfig) -> Result<StorageSpec> {
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

    pub(super) fn endpoint(&self) -> String {
        if self.address.contains("://") {
            self.address.clone()
        } else {
            let scheme = if self.use_ssl { "https" } else { "http" };
            format!("{scheme}://{}", self.address)
        }
    }

    /// Config keys the user should look at, for error hints.
    pub(super) fn keys(&self) -> (&'static str, &'static str, &'static str) {
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
