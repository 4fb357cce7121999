//! Name rules shared by every operation: which backup names are valid and
//! how a default one is made. A leaf module, so `catalog`, `backup` and the
//! front ends use one rule without depending on each other.

use crate::error::{Error, Result};

/// Backup names the Go tool accepts: `^[A-Za-z_][A-Za-z0-9_]*$`, ≤ 128 chars.
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
            "invalid backup name `{name}` — use letters, digits and `_`, starting with a letter or `_`, at most 128 characters"
        )))
    }
}

/// Whether `name` could be a backup's (folders that cannot are not backups).
pub fn is_backup_name(name: &str) -> bool {
    is_identifier(name, 128)
}

/// A database or collection name Milvus accepts (`^[A-Za-z_][A-Za-z0-9_]*$`,
/// at most 255 characters).
pub fn is_milvus_name(name: &str) -> bool {
    is_identifier(name, 255)
}

/// Letters, digits and `_`, not starting with a digit, at most `max` long.
fn is_identifier(name: &str, max: usize) -> bool {
    name.len() <= max
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
    fn names_are_validated_like_the_go_tool() {
        for ok in ["a", "_x", "backup_2024_01_01", &"a".repeat(128)] {
            assert!(validate_backup_name(ok).is_ok(), "{ok}");
        }
        assert!(validate_backup_name("")
            .unwrap_err()
            .to_string()
            .contains("required"));
        for bad in ["1abc", "a-b", "a b", "a.b", &"a".repeat(129), "ä"] {
            let e = validate_backup_name(bad).unwrap_err();
            assert!(e.to_string().contains("invalid backup name"), "{bad}");
        }
        assert!(validate_backup_name(&default_backup_name()).is_ok());
    }
}
