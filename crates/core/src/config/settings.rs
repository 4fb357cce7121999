//! The settings operations use, resolved once from the config where a
//! front end opens a [`crate::Context`]: how hard to work ([`Tuning`]),
//! how new files are compressed by default, the retention limits, the GC
//! pause and whether Milvus's own storage is configured at all. Below the
//! context builder no module reads the raw [`Config`].

use crate::config::tuning::Tuning;
use crate::config::{Config, GcPauseConfig};

/// What `create` compresses with when its options say nothing
/// (`backup.compression`, `backup.compressionAlgorithm`,
/// `backup.compressionLevel`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompressionDefaults {
    pub enabled: bool,
    pub algorithm: String,
    pub level: i32,
}

#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub tuning: Tuning,
    pub compression: CompressionDefaults,
    /// `backup.maxBackupNum` (0: no limit).
    pub max_backup_num: u32,
    /// `backup.retentionDays` (0: no limit).
    pub retention_days: u32,
    pub gc_pause: GcPauseConfig,
    /// The config names no storage for Milvus's own files
    /// (`minio.*` absent): only logical backups and restores are possible.
    pub no_milvus_storage: bool,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let b = &config.backup;
        Settings {
            tuning: Tuning::from_config(b),
            compression: CompressionDefaults {
                enabled: b.compression,
                algorithm: b.compression_algorithm.clone(),
                level: b.compression_level,
            },
            max_backup_num: b.max_backup_num,
            retention_days: b.retention_days,
            gc_pause: b.gc_pause.clone(),
            no_milvus_storage: config.minio.no_milvus_storage,
        }
    }
}
