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
}

impl Tuning {
    pub fn from_config(cfg: &BackupConfig) -> Tuning {
        Tuning {
            copy_parallelism: cfg.parallelism.copydata.max(1) as usize,
            import_parallelism: cfg.parallelism.import_job.max(1) as usize,
            meta_parallelism: 32,
            keep_temp_files: cfg.keep_temp_files,
            rate_limit_mb_s: cfg.rate_limit,
        }
    }
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning::from_config(&BackupConfig::default())
    }
}
