//! The connections one operation works with: Milvus, Milvus's storage and
//! backup storage, all opened from one [`Config`] — or, in unit tests,
//! given directly (a fake Milvus, in-memory storages).

use std::sync::Arc;

use crate::config::Config;
use crate::error::Result;
use crate::milvus::{Milvus, MilvusClient};
use crate::storage::{Storage, StorageSpec};

#[derive(Clone)]
pub struct Context {
    pub config: Config,
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

impl Context {
    /// Opens both storages (no request is made yet).
    pub fn open(config: &Config) -> Result<Context> {
        let mut backup_spec = StorageSpec::backup(config)?;
        let milvus_spec = StorageSpec::milvus(config)?;
        if config.minio.cross_storage && backup_spec.provider == milvus_spec.provider {
            // Different services by declaration: never copy server-side.
            backup_spec.force_stream = true;
        }
        Ok(Context {
            config: config.clone(),
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
            config,
            milvus_storage,
            backup_storage,
            milvus: MilvusSource::Given(milvus),
        }
    }

    /// Connects to the configured Milvus (or hands out the given one).
    pub async fn milvus(&self) -> Result<Arc<dyn Milvus>> {
        match &self.milvus {
            MilvusSource::Configured => {
                Ok(Arc::new(MilvusClient::connect(&self.config.milvus).await?))
            }
            MilvusSource::Given(m) => Ok(m.clone()),
        }
    }
}
