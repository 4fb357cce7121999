//! The operations, one module each, shaped Options → Plan →
//! execute(plan, events, cancel) → Stats: [`backup`] (`create`),
//! [`restore`], [`verify`], [`logical`] (`export`, `import`, and the rows of
//! logical backups), [`delete`] and [`retention`] (which backups a policy keeps, and why),
//! [`replicate`], [`check`], [`rbac`] (users
//! and roles in a backup), with what several of them share:
//! [`collection`] (creating a collection like a backed-up one, its
//! indexes, Milvus's import jobs) and [`gc_pause`] (pausing Milvus's
//! garbage collection during copies).
//!
//! Operations use every layer below ([`crate::repo`], [`crate::context`],
//! storage, Milvus, the model) and may use each other without cycles.

pub mod backup;
pub mod binlog;
pub mod check;
pub mod collection;
pub mod compare;
pub mod compare_backup;
pub mod delete;
pub mod gc_pause;
pub mod logical;
pub mod migrate;
pub mod preflight;
pub mod rbac;
pub mod replicate;
pub mod restore;
pub mod retention;
pub mod verify;
