//! curl as the user guide runs it, for tests that check what a user's own
//! HTTP client sees (the container's API, HTTPS).

use std::process::Command;

/// Runs `curl -sS` with `args` (no proxy, at most 300 s); whether it
/// succeeded, and its stdout followed by its stderr.
pub fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "300", "--noproxy", "*"])
        .args(args)
        .output()
        .expect("curl runs (install curl)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
