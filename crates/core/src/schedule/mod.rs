//! Backups that run themselves (the user guide's `backup_strategy:`):
//! [`strategy`] parses and checks the block; [`run`] is one scheduled run
//! over the core operations (create, retention with delete, replicate,
//! verify); [`lease`] lets one scheduler act per backup root; [`state`] is
//! what the scheduler remembers; [`health`] reports RPO, verification and the secondary's lag;
//! [`alerts`] posts to a webhook. The scheduler loop itself lives with the
//! server (`milvus-backup server`, `milvus-backup schedule run`).

pub mod alerts;
pub mod health;
pub mod lease;
pub mod run;
pub mod state;
pub mod strategy;

pub use strategy::{config_for_storage, PolicyKind, Strategy};
