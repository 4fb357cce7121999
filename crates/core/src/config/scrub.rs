//! Secrets out of text: every secret value of the configuration
//! ([`Config::secrets`](super::Config::secrets)) is masked as `****` before
//! text leaves the process — error lines of the CLI and the server, task
//! records, log lines, webhook alerts. Which values are secrets is the
//! configuration's business (its key table); this only masks them.

/// What a secret is shown as.
pub const MASK: &str = "****";

/// `text` with every non-empty secret replaced by [`MASK`].
pub fn mask<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().map(AsRef::as_ref).filter(|s| !s.is_empty()) {
        out = out.replace(s, MASK);
    }
    out
}

/// `text` on one line (newlines as spaces), every secret masked: how an
/// error is shown.
pub fn one_line<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    mask(&text.replace('\n', " "), secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_empty_ones_ignored() {
        let secrets = ["hunter2".to_string(), String::new()];
        assert_eq!(
            mask("login with hunter2 refused\nagain hunter2", &secrets),
            "login with **** refused\nagain ****"
        );
        assert_eq!(
            one_line("login with hunter2 refused\nagain", &secrets),
            "login with **** refused again"
        );
        assert_eq!(mask("nothing", &[] as &[&str]), "nothing");
    }
}
