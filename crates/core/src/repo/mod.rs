//! The backups in a backup storage, as stored: the catalog (`list`, `get`,
//! removal) and its index, meta files read and opened, verification
//! records, resume journals, leases on backups in use, and restore
//! staging folders with their leases. Does not own what an operation does with them ([`crate::ops`]).

pub mod catalog;
pub mod catalog_index;
pub mod journal;
pub mod lease;
pub mod meta_files;
pub mod refs;
pub mod staging;
pub mod verification;
