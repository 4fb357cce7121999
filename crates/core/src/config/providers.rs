//! The storage services a config can name: one table, [`PROVIDERS`], of
//! each provider's `minio.storageType` names (the first is its own, the
//! rest the Go tool's aliases) and the config keys its storage reads.
//!
//! Pure data, so the config (which checks `minio.storageType` against
//! [`STORAGE_TYPES`]) and [`crate::storage`] (which builds each provider's
//! OpenDAL service) read the same table. Not here: the builders.

use crate::error::{Error, Result};

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

/// One row of the provider table.
#[derive(Debug, Clone, Copy)]
pub struct ProviderInfo {
    pub provider: Provider,
    /// Its `minio.storageType` names, compared case-insensitively.
    pub names: &'static [&'static str],
    /// The Milvus side's config keys its storage reads (the backup side
    /// reads the `minio.backup*` twin of each, falling back to these).
    pub keys: &'static [&'static str],
}

/// Keys of an S3-style service at an address with static credentials.
const ENDPOINT_KEYS: &[&str] = &[
    "minio.address",
    "minio.port",
    "minio.useSSL",
    "minio.bucketName",
    "minio.rootPath",
    "minio.accessKeyID",
    "minio.secretAccessKey",
];

/// Every provider, in the order their names are listed to the user.
pub const PROVIDERS: &[ProviderInfo] = &[
    ProviderInfo {
        provider: Provider::Local,
        names: &["local"],
        keys: &["minio.rootPath"],
    },
    ProviderInfo {
        provider: Provider::S3,
        names: &["minio", "s3", "aws"],
        keys: &[
            "minio.address",
            "minio.port",
            "minio.useSSL",
            "minio.region",
            "minio.bucketName",
            "minio.rootPath",
            "minio.accessKeyID",
            "minio.secretAccessKey",
            "minio.token",
            "minio.useIAM",
        ],
    },
    ProviderInfo {
        provider: Provider::Gcs,
        names: &["gcp", "gcpnative"],
        keys: &[
            "minio.bucketName",
            "minio.rootPath",
            "minio.gcpCredentialJSON",
        ],
    },
    ProviderInfo {
        provider: Provider::Oss,
        names: &["ali", "aliyun"],
        keys: ENDPOINT_KEYS,
    },
    ProviderInfo {
        provider: Provider::Azure,
        names: &["azure"],
        keys: ENDPOINT_KEYS,
    },
    ProviderInfo {
        provider: Provider::Cos,
        names: &["tc", "tencent"],
        keys: ENDPOINT_KEYS,
    },
    ProviderInfo {
        provider: Provider::Memory,
        names: &[],
        keys: &[],
    },
];

const fn name_count() -> usize {
    let (mut n, mut i) = (0, 0);
    while i < PROVIDERS.len() {
        n += PROVIDERS[i].names.len();
        i += 1;
    }
    n
}

/// `""` (when `empty`) then every name of [`PROVIDERS`], in order.
const fn names<const N: usize>(empty: bool) -> [&'static str; N] {
    let mut out = [""; N];
    let mut at = if empty { 1 } else { 0 };
    let mut i = 0;
    while i < PROVIDERS.len() {
        let mut j = 0;
        while j < PROVIDERS[i].names.len() {
            out[at] = PROVIDERS[i].names[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

const NAMES: [&str; name_count()] = names(false);
const NAMES_OR_EMPTY: [&str; name_count() + 1] = names(true);

/// The storage providers the Go tool accepts in `minio.storageType`: every
/// name of [`PROVIDERS`], in order.
pub const STORAGE_TYPES: &[&str] = &NAMES;

/// [`STORAGE_TYPES`] and `""`: `minio.backupStorageType` may be empty (the
/// Milvus side's type then).
pub const STORAGE_TYPES_OR_EMPTY: &[&str] = &NAMES_OR_EMPTY;

impl Provider {
    /// Maps the Go tool's `storageType` names to a provider.
    pub fn from_storage_type(name: &str) -> Result<Provider> {
        let lower = name.to_ascii_lowercase();
        PROVIDERS
            .iter()
            .find(|p| p.names.contains(&lower.as_str()))
            .map(|p| p.provider)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "storage type `{lower}` is not supported — use one of {}",
                    STORAGE_TYPES.join(", ")
                ))
            })
    }

    /// Its row of [`PROVIDERS`].
    pub fn info(self) -> &'static ProviderInfo {
        PROVIDERS
            .iter()
            .find(|p| p.provider == self)
            .expect("every provider has a row")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_are_the_go_tools_in_order() {
        assert_eq!(
            STORAGE_TYPES,
            [
                "local",
                "minio",
                "s3",
                "aws",
                "gcp",
                "gcpnative",
                "ali",
                "aliyun",
                "azure",
                "tc",
                "tencent"
            ]
        );
        assert_eq!(STORAGE_TYPES_OR_EMPTY[0], "");
        assert_eq!(&STORAGE_TYPES_OR_EMPTY[1..], STORAGE_TYPES);
        assert_eq!(Provider::from_storage_type("AWS").unwrap(), Provider::S3);
        assert_eq!(
            Provider::from_storage_type("tencent").unwrap(),
            Provider::Cos
        );
        let e = Provider::from_storage_type("ftp").unwrap_err().to_string();
        assert!(
            e.contains("`ftp` is not supported — use one of local, minio"),
            "{e}"
        );
        assert!(Provider::from_storage_type("memory").is_err());
    }

    #[test]
    fn every_provider_has_one_row_and_reads_known_keys() {
        for p in PROVIDERS {
            assert_eq!(p.provider.info().names, p.names);
            for key in p.keys {
                assert!(crate::config::is_known_key(key), "{key}");
            }
        }
    }
}
