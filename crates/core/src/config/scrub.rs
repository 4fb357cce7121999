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

/// `text` on one line (newlines as spaces), every secret masked and every
/// config key as the user's file spells it: how an error is shown.
pub fn one_line<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    in_users_words(&mask(&text.replace('\n', " "), secrets))
}

/// Our config keys as the process's config file spells them (the user
/// guide's `storage.minio.address` for our `minio.backupAddress`), set
/// once by the front end that loaded it.
static SPELLINGS: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();

/// Makes [`one_line`] name config keys as `spellings` (our key, the
/// file's key) say; the first call wins.
pub fn speak_as_the_file(spellings: Vec<(&'static str, String)>) {
    let _ = SPELLINGS.set(spellings);
}

fn in_users_words(text: &str) -> String {
    match SPELLINGS.get() {
        Some(s) if !s.is_empty() => respell(text, s),
        _ => text.to_string(),
    }
}

/// `text` with each whole config key `ours` replaced by `theirs`.
fn respell(text: &str, spellings: &[(&'static str, String)]) -> String {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| is_key_char(c)) {
        let end = rest[start..]
            .find(|c: char| !is_key_char(c))
            .map_or(rest.len(), |e| start + e);
        out.push_str(&rest[..start]);
        let token = &rest[start..end];
        // A key at the end of a sentence keeps its full stop.
        let (key, stop) = match token.strip_suffix('.') {
            Some(k) => (k, "."),
            None => (token, ""),
        };
        match spellings.iter().find(|(ours, _)| *ours == key) {
            Some((_, theirs)) => {
                out.push_str(theirs);
                out.push_str(stop);
            }
            None => out.push_str(token),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
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

    #[test]
    fn keys_are_respelled_whole_and_only_whole() {
        let s = [("minio.backupAddress", "storage.minio.address".to_string())];
        assert_eq!(
            respell("check minio.backupAddress/minio.backupPort.", &s),
            "check storage.minio.address/minio.backupPort."
        );
        assert_eq!(
            respell("check minio.backupAddress.", &s),
            "check storage.minio.address."
        );
        assert_eq!(
            respell("xminio.backupAddress and minio.backupAddressY stay", &s),
            "xminio.backupAddress and minio.backupAddressY stay"
        );
    }
}
