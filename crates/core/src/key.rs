//! The key that seals backups: an age X25519 identity, where it comes from
//! (`backup.encryption.*`), and sealing of small files (meta files) in
//! memory. Streams of large files are encoded in [`crate::codec`].
//!
//! A leaf module: storage keeps the key beside the backup storage, the codec
//! and the catalog use it, and none of them depend on each other for it.

use std::io::{Read, Write};

use crate::config::EncryptionConfig;
use crate::error::{Error, ErrorKind, Result};

/// An age X25519 identity: opens backups sealed for its recipient.
#[derive(Clone)]
pub struct Key {
    pub(crate) identity: age::x25519::Identity,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.recipient())
    }
}

const KEY_HELP: &str = "generate one with `milvus-backup keygen`";

impl Key {
    /// Parses the first line of `text` that is not blank or a `#` comment.
    pub fn parse(text: &str, origin: &str) -> Result<Key> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        line.parse::<age::x25519::Identity>()
            .map(|identity| Key { identity })
            .map_err(|_| {
                Error::invalid_input(format!(
                    "{origin} does not hold an age identity (a line starting AGE-SECRET-KEY-1) — {KEY_HELP}"
                ))
            })
    }

    /// The key configured by `backup.encryption.key`
    /// (`MILVUS_BACKUP_ENCRYPTION_KEY`) or `backup.encryption.keyFile`.
    pub fn from_config(cfg: &EncryptionConfig) -> Result<Option<Key>> {
        if !cfg.key.is_empty() {
            return Key::parse(
                cfg.key.expose(),
                "backup.encryption.key (MILVUS_BACKUP_ENCRYPTION_KEY)",
            )
            .map(Some);
        }
        if cfg.key_file.is_empty() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&cfg.key_file).map_err(|e| {
            Error::invalid_input(format!(
                "cannot read the key file `{}` (backup.encryption.keyFile): {e}",
                cfg.key_file
            ))
        })?;
        Key::parse(
            &text,
            &format!("key file `{}` (backup.encryption.keyFile)", cfg.key_file),
        )
        .map(Some)
    }

    /// A new random identity, as the text of a key file.
    pub fn generate() -> (String, String) {
        use age::secrecy::ExposeSecret;
        let identity = age::x25519::Identity::generate();
        let public = identity.to_public().to_string();
        (identity.to_string().expose_secret().to_string(), public)
    }

    /// The public half (`age1...`), recorded in manifests to name the key.
    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    pub(crate) fn encryptor(&self) -> age::Encryptor {
        let recipient = self.identity.to_public();
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .expect("one recipient")
    }
}

const AGE_MAGIC: &[u8] = b"age-encryption.org/";

/// Whether bytes are an age file.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(AGE_MAGIC)
}

/// Encrypts a small file (a meta file) in memory.
pub fn seal(bytes: &[u8], key: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 256);
    let mut w = key
        .encryptor()
        .wrap_output(&mut out)
        .expect("writing to memory");
    Write::write_all(&mut w, bytes).expect("writing to memory");
    w.finish().expect("writing to memory");
    out
}

/// Decrypts a meta file when it is sealed; `what` names it in errors.
pub fn open(bytes: Vec<u8>, key: Option<&Key>, what: &str) -> Result<Vec<u8>> {
    if !is_sealed(&bytes) {
        return Ok(bytes);
    }
    let key = key.ok_or_else(|| missing_key(what))?;
    let decryptor = age::Decryptor::new(&bytes[..]).map_err(|e| decrypt_error(e, what, key))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(&key.identity as &dyn age::Identity))
        .map_err(|e| decrypt_error(e, what, key))?;
    let mut out = Vec::new();
    Read::read_to_end(&mut reader, &mut out).map_err(|e| damaged(what, &e.to_string()))?;
    Ok(out)
}

pub(crate) fn missing_key(what: &str) -> Error {
    Error::invalid_input(format!(
        "`{what}` is encrypted and no key is configured — set MILVUS_BACKUP_ENCRYPTION_KEY or backup.encryption.keyFile to the key the backup was made with"
    ))
}

pub(crate) fn decrypt_error(e: age::DecryptError, what: &str, key: &Key) -> Error {
    match e {
        age::DecryptError::NoMatchingKeys => Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "`{what}` was encrypted with a different key than the configured one ({}) — set MILVUS_BACKUP_ENCRYPTION_KEY or backup.encryption.keyFile to the key the backup was made with",
                key.recipient()
            ),
        ),
        other => damaged(what, &other.to_string()),
    }
}

fn damaged(what: &str, detail: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!(
            "`{what}` is damaged or was tampered with ({detail}) — restore from another backup"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_meta_round_trips_and_refuses_other_keys() {
        let (secret, public) = Key::generate();
        let key = Key::parse(&format!("# public key: {public}\n{secret}\n"), "test").unwrap();
        assert_eq!(key.recipient(), public);
        let sealed = seal(b"{\"schema\":1}", &key);
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|w| w == b"schema"));
        assert_eq!(
            open(sealed.clone(), Some(&key), "m").unwrap(),
            b"{\"schema\":1}"
        );
        // Plain files pass through untouched.
        assert_eq!(open(b"{}".to_vec(), None, "m").unwrap(), b"{}");

        let e = open(sealed.clone(), None, "meta/full_meta.json").unwrap_err();
        assert!(e.to_string().contains("no key is configured"), "{e}");
        let other = Key::parse(&Key::generate().0, "test").unwrap();
        let e = open(sealed.clone(), Some(&other), "m").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("different key"), "{e}");
        let mut tampered = sealed;
        let last = tampered.len() - 3;
        tampered[last] ^= 1;
        let e = open(tampered, Some(&key), "m").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    }

    #[test]
    fn keys_are_checked() {
        let e = Key::parse("not a key", "MILVUS_BACKUP_ENCRYPTION_KEY").unwrap_err();
        assert!(e.to_string().contains("keygen"), "{e}");
    }
}
