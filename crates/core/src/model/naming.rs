//! Name rules shared by every operation: which backup names are valid and
//! how a default one is made. A leaf module, so `catalog`, `backup` and the
//! front ends use one rule without depending on each other.
//!
//! A backup's name is the one folder segment of its object keys
//! (`<name>/meta/...`), so it must be a safe single key segment on every
//! storage (S3, Azure, GCS, a local directory): letters, digits, `_`, `-`
//! and `.`, starting with a letter, a digit or `_` — so never `.`, `..` or
//! a hidden name, which the tool keeps for its own folders
//! (`.milvus_backup_tasks`, ...) — and not ending with `.` (Azure and
//! Windows drop a trailing dot); no `/`, no spaces or control characters,
//! at most [`MAX_BACKUP_NAME`] characters. Every name the Go tool accepts
//! (`^[A-Za-z_][A-Za-z0-9_]*$`) is one; the user guide's
//! `rag_version_v1.0` is one too.

use crate::error::{Error, Result};

/// The longest backup name.
pub const MAX_BACKUP_NAME: usize = 128;

/// The rule, as `--help` and every refusal say it.
pub const BACKUP_NAME_RULE: &str = "letters, digits, `_`, `-` and `.`, starting with a letter, a digit or `_`, not ending with `.`, at most 128 characters (e.g. rag_version_v1.0)";

/// Checks a backup name against the rule; the refusal says the rule.
pub fn validate_backup_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_input(
            "invalid backup name: none given — name the backup (-n on the command line; backup_name is required in a request)",
        ));
    }
    if is_backup_name(name) {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "invalid backup name `{}` — a backup name is one folder of the backup storage: use {BACKUP_NAME_RULE}",
            name.escape_debug()
        )))
    }
}

/// Whether `name` could be a backup's (folders that cannot are not backups).
pub fn is_backup_name(name: &str) -> bool {
    name.len() <= MAX_BACKUP_NAME
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A database or collection name Milvus accepts (`^[A-Za-z_][A-Za-z0-9_]*$`,
/// at most 255 characters).
pub fn is_milvus_name(name: &str) -> bool {
    name.len() <= 255
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `backup_YYYY_MM_DD_HH_MM_SS_<nanos>` in UTC, like the Go tool.
pub fn default_backup_name() -> String {
    let now = chrono::Utc::now();
    format!(
        "backup_{}_{}",
        now.format("%Y_%m_%d_%H_%M_%S"),
        now.timestamp_subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_single_key_segments() {
        let longest = "a".repeat(128);
        for ok in [
            "a",
            "_x",
            "backup_2024_01_01",
            "rag_version_v1.0",
            "nightly-2026.02.10",
            "1st",
            "v1..2",
            &longest,
        ] {
            assert!(validate_backup_name(ok).is_ok(), "{ok}");
            assert!(is_backup_name(ok), "{ok}");
        }
        assert!(validate_backup_name("")
            .unwrap_err()
            .to_string()
            .contains("required"));
        let too_long = "a".repeat(129);
        for bad in [
            ".",
            "..",
            ".milvus_backup_tasks",
            "-rf",
            "a/b",
            "../x",
            "a b",
            "a\nb",
            "a\u{0}b",
            "a\\b",
            "a*",
            "v1.",
            "ä",
            &too_long,
        ] {
            let e = validate_backup_name(bad).unwrap_err().to_string();
            assert!(e.contains("invalid backup name"), "{bad}");
            assert!(e.contains(BACKUP_NAME_RULE), "{e}");
            // The refusal quotes the name on one line, control characters escaped.
            assert!(!e.contains('\n') && !e.contains('\u{0}'), "{e:?}");
        }
        assert!(validate_backup_name(&default_backup_name()).is_ok());
    }

    #[test]
    fn milvus_names_stay_identifiers() {
        assert!(is_milvus_name("docs_1"));
        for bad in ["1docs", "a.b", "a-b", ""] {
            assert!(!is_milvus_name(bad), "{bad}");
        }
    }
}
