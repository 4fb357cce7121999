//! How backup files are encoded: compressed (zstd or gzip) and/or
//! encrypted, always streamed. Pure byte transforms and keys: no storage.
//!
//! Encryption is the [age](https://age-encryption.org/v1) format with an
//! X25519 identity ([`key`]): each file gets a fresh file key wrapped for
//! the identity's recipient, and its payload is ChaCha20-Poly1305 in age's
//! STREAM construction, so any changed, cut or reordered byte fails to
//! decrypt. Compression runs before encryption (ciphertext does not
//! compress); zstd frames carry their own checksum, gzip its CRC.
//!
//! A stored file's encoding is recorded per file in the manifest
//! ([`crate::model::encoding`]), so one reader handles every backup, old or
//! new. Reading and writing encoded files in storage, and the root key a
//! password unlocks there, are [`crate::storage`]'s (`encoded`, `root_key`).

pub mod key;

use futures::io::{AsyncRead, AsyncWrite};

use key::Key;

pub use crate::model::encoding::{Compression, Encoding, Expected};

pub type DynWrite = Box<dyn AsyncWrite + Send + Unpin>;
pub type DynRead = Box<dyn AsyncRead + Send + Unpin>;

/// What to do to each file on its way into the backup.
#[derive(Debug, Clone, Default)]
pub struct Encoder {
    pub compression: Compression,
    pub level: i32,
    pub key: Option<Key>,
}

impl Encoder {
    /// How new files are stored, for people: `zstd level 3, encrypted`,
    /// `not compressed`.
    pub fn describe(&self) -> String {
        let mut text = match self.compression {
            Compression::None => "not compressed".to_string(),
            c => format!("{} level {}", format!("{c:?}").to_lowercase(), self.level),
        };
        if self.key.is_some() {
            text.push_str(", encrypted");
        }
        text
    }

    pub fn encoding(&self) -> Encoding {
        Encoding {
            compression: self.compression,
            encrypted: self.key.is_some(),
        }
    }
}

/// A stored file: its size and checksum as stored and as Milvus wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub size: u64,
    pub sha256: String,
    pub raw_size: u64,
    pub raw_sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_names_and_levels_are_checked() {
        assert!(Compression::parse("lz4").is_err());
        assert!(Compression::Gzip.check_level(12).is_err());
        assert!(Compression::Zstd.check_level(19).is_ok());
    }
}
