//! Files generated from the code (the CLI and REST references in `docs/`)
//! are committed; a test regenerates each and fails when it differs, or
//! rewrites it when `UPDATE_DOCS` is set.

use std::path::Path;

/// Fails when `path` does not hold `generated`, naming `update` (the
/// command that rewrites it); with `UPDATE_DOCS` set, writes it instead.
pub fn assert_file_is_generated(path: &Path, generated: &str, update: &str) {
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path, generated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        stored == generated,
        "{} differs from what the code generates — if the change is intended, run `{update}` \
         and commit the file",
        path.display()
    );
}
