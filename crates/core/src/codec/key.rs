//! The key that seals backups: an age X25519 identity, where it comes from
//! (`backup.encryption.*`: a key, or a password that unlocks a root key),
//! wrapping a key with a password, and sealing of small files (meta files)
//! in memory. Streams of large files are encoded in [`crate::codec`]; the
//! root key object a password unlocks is read and written by
//! [`crate::storage::root_key`].
//!
//! A leaf module: storage keeps the key source beside the backup storage,
//! the codec and the catalog use it, and none of them depend on each other
//! for it.

use std::io::{Read, Write};

use crate::config::{EncryptionConfig, Secret};
use crate::error::{Error, ErrorKind, Result};

/// An age X25519 identity: opens backups sealed for its recipient.
#[derive(Clone)]
pub struct Key {
    pub(crate) identity: age::x25519::Identity,
    /// Unlocked by `backup.encryption.password` (only changes messages).
    pub(crate) from_password: bool,
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
            .map(|identity| Key {
                identity,
                from_password: false,
            })
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

/// What opens (and seals) the backups of one backup storage.
pub enum KeySource {
    /// `backup.encryption.key` or `backup.encryption.keyFile`, used as is.
    Key(Key),
    /// `backup.encryption.password`: unlocks the storage's root key
    /// (see [`crate::storage::root_key`]) once, on first need.
    Password {
        password: Secret,
        unlocked: tokio::sync::OnceCell<Key>,
    },
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Key(k) => write!(f, "{k:?}"),
            KeySource::Password { .. } => f.write_str("Password(****)"),
        }
    }
}

/// Names both settings when a key and a password are configured.
pub const BOTH_CONFIGURED: &str = "both a key (backup.encryption.key / keyFile, MILVUS_BACKUP_ENCRYPTION_KEY) and a password (backup.encryption.password, MILVUS_BACKUP_PASSWORD) are configured — set only one of them: the one the backups were made with";

impl KeySource {
    /// The source `backup.encryption.*` configures, if any. A key and a
    /// password together are refused: which one a backup needs is never
    /// guessed.
    pub fn from_config(cfg: &EncryptionConfig) -> Result<Option<KeySource>> {
        if cfg.password.is_empty() {
            return Ok(Key::from_config(cfg)?.map(KeySource::Key));
        }
        if !cfg.key.is_empty() || !cfg.key_file.is_empty() {
            return Err(Error::invalid_input(BOTH_CONFIGURED));
        }
        Ok(Some(KeySource::password(cfg.password.clone())))
    }

    pub fn password(password: Secret) -> KeySource {
        KeySource::Password {
            password,
            unlocked: tokio::sync::OnceCell::new(),
        }
    }
}

/// Seals `key` with age's scrypt recipient for `password`: the content of
/// a root key object. Takes about a second (age's default work factor,
/// picked for this machine); run it off the async threads.
pub fn wrap(key: &Key, password: &str) -> Vec<u8> {
    use age::secrecy::ExposeSecret;
    #[allow(unused_mut)]
    let mut recipient = age::scrypt::Recipient::new(password.to_string().into());
    // Unit tests only: age's ~1 s per wrap and unwrap adds up there.
    #[cfg(test)]
    recipient.set_work_factor(10);
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .expect("one recipient");
    let text = format!(
        "# milvus-backup root key; recipient: {}\n{}\n",
        key.recipient(),
        key.identity.to_string().expose_secret()
    );
    let mut out = Vec::new();
    let mut w = encryptor.wrap_output(&mut out).expect("writing to memory");
    Write::write_all(&mut w, text.as_bytes()).expect("writing to memory");
    w.finish().expect("writing to memory");
    out
}

/// The scrypt work factor (log2 N) a wrapped key may ask for: age's
/// default picks ~1 s here (about 18); 22 takes 4 GiB and ~16 s.
const MAX_WORK_FACTOR: u8 = 22;

/// Why a wrapped key does not open.
#[derive(Debug, PartialEq, Eq)]
pub enum UnwrapError {
    /// The password is not the one it was wrapped with.
    WrongPassword,
    /// It is not a wrapped key, or it was cut or changed.
    Damaged(String),
}

/// Opens a root key object made by [`wrap`] (as slow as wrapping).
pub fn unwrap(bytes: &[u8], password: &str) -> std::result::Result<Key, UnwrapError> {
    let damaged = |e: &dyn std::fmt::Display| UnwrapError::Damaged(e.to_string());
    let decryptor = age::Decryptor::new(bytes).map_err(|e| damaged(&e))?;
    if !decryptor.is_scrypt() {
        return Err(UnwrapError::Damaged(
            "it is not sealed with a password".into(),
        ));
    }
    let mut identity = age::scrypt::Identity::new(password.to_string().into());
    identity.set_max_work_factor(MAX_WORK_FACTOR);
    let mut reader = match decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)) {
        Ok(r) => r,
        // The stanza's tag did not check: another password (a changed
        // stanza looks the same, and age cannot tell them apart).
        Err(age::DecryptError::DecryptionFailed) => return Err(UnwrapError::WrongPassword),
        Err(e) => return Err(damaged(&e)),
    };
    let mut text = String::new();
    Read::read_to_string(&mut reader, &mut text).map_err(|e| damaged(&e))?;
    let mut key = Key::parse(&text, "the root key").map_err(|e| damaged(&e))?;
    key.from_password = true;
    Ok(key)
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
        "`{what}` is encrypted and no key or password is configured — set MILVUS_BACKUP_ENCRYPTION_KEY or backup.encryption.keyFile to the key the backup was made with, or MILVUS_BACKUP_PASSWORD (backup.encryption.password) to its password"
    ))
}

pub(crate) fn decrypt_error(e: age::DecryptError, what: &str, key: &Key) -> Error {
    match e {
        age::DecryptError::NoMatchingKeys if key.from_password => Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "`{what}` was encrypted with a different key than the root key the password unlocks ({}) — it was made with a key: set MILVUS_BACKUP_ENCRYPTION_KEY or backup.encryption.keyFile to it instead of the password",
                key.recipient()
            ),
        ),
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
        assert!(e.to_string().contains("no key or password"), "{e}");
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

    #[test]
    fn a_wrapped_key_opens_with_its_password_only() {
        let key = Key::parse(&Key::generate().0, "test").unwrap();
        let wrapped = wrap(&key, "correct horse");
        assert!(is_sealed(&wrapped));
        let secret = key.identity.to_string();
        let secret = age::secrecy::ExposeSecret::expose_secret(&secret).to_string();
        assert!(!String::from_utf8_lossy(&wrapped).contains(&secret[..20]));
        let opened = unwrap(&wrapped, "correct horse").unwrap();
        assert_eq!(opened.recipient(), key.recipient());
        assert!(opened.from_password);
        // Files sealed for the key open with the unwrapped one.
        assert_eq!(
            open(seal(b"meta", &key), Some(&opened), "m").unwrap(),
            b"meta"
        );
        assert_eq!(
            unwrap(&wrapped, "wrong horse").unwrap_err(),
            UnwrapError::WrongPassword
        );
        let cut = &wrapped[..wrapped.len() - 10];
        assert!(matches!(
            unwrap(cut, "correct horse"),
            Err(UnwrapError::Damaged(_))
        ));
        // A file sealed for a key is no wrapped key.
        assert!(matches!(
            unwrap(&seal(b"x", &key), "correct horse"),
            Err(UnwrapError::Damaged(_))
        ));
    }

    #[test]
    fn a_key_and_a_password_together_are_refused() {
        let mut cfg = EncryptionConfig {
            password: Secret::new("pw"),
            key_file: "k.txt".into(),
            ..Default::default()
        };
        let e = KeySource::from_config(&cfg).unwrap_err();
        assert!(e.to_string().contains("backup.encryption.password"), "{e}");
        assert!(e.to_string().contains("keyFile"), "{e}");
        cfg.key_file.clear();
        assert!(matches!(
            KeySource::from_config(&cfg).unwrap(),
            Some(KeySource::Password { .. })
        ));
        cfg.password = Secret::default();
        assert!(KeySource::from_config(&cfg).unwrap().is_none());
    }
}
