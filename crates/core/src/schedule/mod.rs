//! Backups that run themselves (the user guide's `backup_strategy:`,
//! parsed and checked as settings by [`crate::config::strategy`]): [`run`]
//! is one scheduled run
//! over the core operations (create, retention with delete, replicate,
//! verify); [`lease`] lets one scheduler act per backup root; [`state`] is
//! what the scheduler remembers; [`health`] reports RPO, verification and the secondary's lag;
//! [`alerts`] posts to a webhook; [`scheduler`] is the loop that starts the
//! runs on time (inside `milvus-backup server` and `milvus-backup schedule
//! run`, which execute and show them).

pub mod alerts;
pub mod health;
pub mod lease;
pub mod run;
pub mod scheduler;
pub mod state;

pub use crate::config::strategy::{config_for_storage, PolicyKind, Strategy};
