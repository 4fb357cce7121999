//! The connections one operation works with: Milvus, Milvus's storage and
//! backup storage, all opened from one [`Config`] — or, in unit tests,
//! given directly (a fake Milvus, in-memory storages).

use std::sync::Arc;

use crate::config::settings::Settings;
use crate::config::{Config, MilvusConfig};
use crate::error::Result;
use crate::milvus::{Milvus, MilvusClient};
use crate::storage::{Storage, StorageSpec};

#[derive(Clone)]
pub struct Context {
    /// What the operations read of the settings, resolved once.
    pub settings: Settings,
    /// Where and how to reach Milvus.
    milvus_config: MilvusConfig,
    pub milvus_storage: Storage,
    pub backup_storage: Storage,
    milvus: MilvusSource,
}

#[derive(Clone)]
enum MilvusSource {
    /// Connect to `config.milvus` on every [`Context::milvus`].
    Configured,
    /// Always this one (tests).
    Given(Arc<dyn Milvus>),
}

/// What an operation connects to, resolved from the config: Milvus's
/// address and credentials, and both storages (a storage setting that
/// cannot be used is kept as its error, for `check` to report).
pub struct Endpoints {
    pub milvus: MilvusConfig,
    /// `None` when the config names no storage for Milvus's own files (the
    /// user guide's config): backups are then logical, and nothing reads it.
    pub milvus_storage: Option<Result<StorageSpec>>,
    pub backup_storage: Result<StorageSpec>,
}

impl Endpoints {
    pub fn from_config(config: &Config) -> Endpoints {
        Endpoints {
            milvus: config.milvus.clone(),
            milvus_storage: (!config.minio.no_milvus_storage)
                .then(|| StorageSpec::milvus(&config.minio)),
            backup_storage: StorageSpec::backup(&config.minio),
        }
    }
}

impl Context {
    /// Opens both storages (no request is made yet).
    pub fn open(config: &Config) -> Result<Context> {
        let endpoints = Endpoints::from_config(config);
        let mut backup_spec = endpoints.backup_storage?;
        // Opened all the same (a logical restore may stage files there when
        // the target shares backup storage); no request is made unless used.
        let milvus_spec = StorageSpec::milvus(&config.minio)?;
        if config.minio.cross_storage && backup_spec.provider == milvus_spec.provider {
            // Different services by declaration: never copy server-side.
            backup_spec.force_stream = true;
        }
        Ok(Context {
            settings: Settings::from_config(config),
            milvus_config: config.milvus.clone(),
            milvus_storage: Storage::open(milvus_spec)?,
            backup_storage: Storage::open(backup_spec)?.with_key(
                crate::codec::key::KeySource::from_config(&config.backup.encryption)?,
            ),
            milvus: MilvusSource::Configured,
        })
    }

    /// A context of given parts, for tests of the operations.
    pub fn with_parts(
        config: Config,
        milvus: Arc<dyn Milvus>,
        milvus_storage: Storage,
        backup_storage: Storage,
    ) -> Context {
        Context {
            settings: Settings::from_config(&config),
            milvus_config: config.milvus,
            milvus_storage,
            backup_storage,
            milvus: MilvusSource::Given(milvus),
        }
    }

    /// Connects to the configured Milvus (or hands out the given one).
    pub async fn milvus(&self) -> Result<Arc<dyn Milvus>> {
        match &self.milvus {
            MilvusSource::Configured => {
                Ok(Arc::new(MilvusClient::connect(&self.milvus_config).await?))
            }
            MilvusSource::Given(m) => Ok(m.clone()),
        }
    }
}
