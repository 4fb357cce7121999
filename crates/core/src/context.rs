//! The connections one operation works with: Milvus, Milvus's storage and
//! backup storage, all opened from one [`Config`].

use crate::config::Config;
use crate::error::Result;
use crate::milvus::MilvusClient;
use crate::storage::{Storage, StorageSpec};

#[derive(Clone)]
pub struct Context {
    pub config: Config,
    pub milvus_storage: Storage,
    pub backup_storage: Storage,
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
            backup_storage: Storage::open(backup_spec)?
                .with_key(crate::codec::Key::from_config(&config.backup.encryption)?),
        })
    }

    /// Connects to the configured Milvus.
    pub async fn milvus(&self) -> Result<MilvusClient> {
        MilvusClient::connect(&self.config.milvus).await
    }
}
