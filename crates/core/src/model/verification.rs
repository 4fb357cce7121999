//! What the last verification of a backup found, kept beside the backup
//! (`<backup>/meta/verification.json`, one per storage: a replicated copy
//! has its own). Types only; [`crate::repo::verification`] reads and
//! writes it.

use serde::{Deserialize, Serialize};

/// The record's file name in the backup's `meta/`.
pub const RECORD: &str = "verification.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerificationRecord {
    /// Milliseconds since the epoch.
    pub last_verified_at: u64,
    pub verified_ok: bool,
    pub deep: bool,
    pub restore_test: bool,
    /// The first problems found (path: problem).
    pub problems: Vec<String>,
    /// What the backup looked like when verified.
    pub fingerprint: String,
}
