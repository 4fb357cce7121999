//! How hard an operation works: parallelism and what it leaves behind. Read
//! from the config once, when a plan is made, and carried by the plan, so
//! nothing deeper reads settings.

use serde::{Deserialize, Serialize};

use crate::config::BackupConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tuning {
    /// Files copied at once (`backup.parallelism.copydata`).
    pub copy_parallelism: usize,
    /// Segments imported at once (`backup.parallelism.importJob`).
    pub import_parallelism: usize,
    /// Small objects (meta files, stats) read or checked at once.
    pub meta_parallelism: usize,
    /// Keep staged files after a restore (`backup.keepTempFiles`).
    pub keep_temp_files: bool,
    /// Bandwidth cap of copies in MB/s, 0 for none (`backup.rateLimit`,
    /// `--rate-limit`).
    #[serde(default)]
    pub rate_limit_mb_s: u32,
    /// Collections `create` and `verify --restore-test` work on at once
    /// (`backup.parallelism.backupCollection`, the v2 file's
    /// `backup.concurrency.collections`).
    #[serde(default = "one")]
    pub backup_collections: usize,
    /// Collections a restore works on at once
    /// (`backup.parallelism.restoreCollection`, the v2 file's
    /// `restore.concurrency.collections`).
    #[serde(default = "one")]
    pub restore_collections: usize,
}

fn one() -> usize {
    1
}

impl Tuning {
    pub fn from_config(cfg: &BackupConfig) -> Tuning {
        Tuning {
            copy_parallelism: cfg.parallelism.copydata.max(1) as usize,
            import_parallelism: cfg.parallelism.import_job.max(1) as usize,
            meta_parallelism: 32,
            keep_temp_files: cfg.keep_temp_files,
            rate_limit_mb_s: cfg.rate_limit,
            backup_collections: cfg.parallelism.backup_collection.max(1) as usize,
            restore_collections: cfg.parallelism.restore_collection.max(1) as usize,
        }
    }

    /// The tuning each of `collections` collections worked on at once
    /// gets: they share the import jobs (`backup.parallelism.importJob`),
    /// so together they never have more in flight than one collection
    /// alone would. Copies need no share: one copy engine serves them all.
    pub fn share_imports(self, collections: usize) -> Tuning {
        Tuning {
            import_parallelism: (self.import_parallelism / collections.max(1)).max(1),
            ..self
        }
    }

    /// How many collections a restore works on at once: the configured
    /// number, but never more than the import jobs they share, nor more
    /// than there are.
    pub fn restore_width(&self, collections: usize) -> usize {
        (self.restore_collections.min(self.import_parallelism))
            .min(collections)
            .max(1)
    }
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning::from_config(&BackupConfig::default())
    }
}
