//! How backup files are stored: compressed (zstd or gzip) and/or encrypted,
//! always streamed, and the key that opens them.
//!
//! Encryption is the [age](https://age-encryption.org/v1) format with an
//! X25519 identity: each file gets a fresh file key wrapped for the
//! identity's recipient, and its payload is ChaCha20-Poly1305 in age's
//! STREAM construction, so any changed, cut or reordered byte fails to
//! decrypt. Compression runs before encryption (ciphertext does not
//! compress); zstd frames carry their own checksum, gzip its CRC.
//!
//! A stored file's encoding is recorded per file in the manifest, so one
//! reader handles every backup, old or new. Meta files that hold schemas
//! are sealed with the same key (`seal`/`open`); readers recognise a sealed
//! file by age's header.

use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use async_compression::futures::{bufread, write};
use async_compression::Level;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::EncryptionConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::Storage;

/// Compression of stored files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Zstd,
    Gzip,
}

impl Compression {
    pub fn parse(name: &str) -> Result<Compression> {
        match name.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Compression::None),
            "zstd" => Ok(Compression::Zstd),
            "gzip" => Ok(Compression::Gzip),
            _ => Err(Error::invalid_input(format!(
                "unknown compression `{name}` — use zstd, gzip or none"
            ))),
        }
    }

    pub fn is_none(&self) -> bool {
        *self == Compression::None
    }

    /// Levels each algorithm accepts.
    pub fn check_level(&self, level: i32) -> Result<()> {
        let (lo, hi) = match self {
            Compression::None => return Ok(()),
            Compression::Zstd => (-7, 22),
            Compression::Gzip => (1, 9),
        };
        if (lo..=hi).contains(&level) {
            Ok(())
        } else {
            Err(Error::invalid_input(format!(
                "compression level {level} is out of range for {self:?} ({lo}..={hi})"
            )))
        }
    }
}

/// How one stored file is encoded; the default is "as Milvus wrote it".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Encoding {
    #[serde(skip_serializing_if = "Compression::is_none")]
    pub compression: Compression,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
}

impl Encoding {
    pub fn is_plain(&self) -> bool {
        self.compression.is_none() && !self.encrypted
    }
}

/// An age X25519 identity: opens backups sealed for its recipient.
#[derive(Clone)]
pub struct Key {
    identity: age::x25519::Identity,
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

    fn encryptor(&self) -> age::Encryptor {
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

fn missing_key(what: &str) -> Error {
    Error::invalid_input(format!(
        "`{what}` is encrypted and no key is configured — set MILVUS_BACKUP_ENCRYPTION_KEY or backup.encryption.keyFile to the key the backup was made with"
    ))
}

fn decrypt_error(e: age::DecryptError, what: &str, key: &Key) -> Error {
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

/// Size and SHA-256 of the bytes that passed a point of a pipeline.
#[derive(Default)]
struct Tally {
    hasher: Sha256,
    bytes: u64,
}

type SharedTally = Arc<Mutex<Tally>>;

fn finish(t: &SharedTally) -> (String, u64) {
    let t = t.lock().expect("tally");
    (hex::encode(t.hasher.clone().finalize()), t.bytes)
}

/// Counts and hashes what is written through it.
struct TallyWriter<W> {
    inner: W,
    tally: SharedTally,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for TallyWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            let mut t = self.tally.lock().expect("tally");
            t.hasher.update(&buf[..n]);
            t.bytes += n as u64;
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Counts and hashes what is read through it.
struct TallyReader<R> {
    inner: R,
    tally: SharedTally,
}

impl<R: AsyncRead + Unpin> AsyncRead for TallyReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            let mut t = self.tally.lock().expect("tally");
            t.hasher.update(&buf[..n]);
            t.bytes += n as u64;
        }
        poll
    }
}

type DynWrite = Box<dyn AsyncWrite + Send + Unpin>;
type DynRead = Box<dyn AsyncRead + Send + Unpin>;

const BUF: usize = 256 * 1024;

/// What to do to each file on its way into the backup.
#[derive(Debug, Clone, Default)]
pub struct Encoder {
    pub compression: Compression,
    pub level: i32,
    pub key: Option<Key>,
}

impl Encoder {
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

/// Streams `src` of `from` into `dst_key` of `to`, encoding it on the way.
pub async fn encode_copy(
    from: &Storage,
    src: &str,
    to: &Storage,
    dst_key: &str,
    enc: &Encoder,
) -> Result<Encoded> {
    let stored = SharedTally::default();
    let raw = SharedTally::default();
    let sink = TallyWriter {
        inner: to.open_write(dst_key).await?,
        tally: stored.clone(),
    };
    let io = |e: std::io::Error| {
        Error::remote(format!(
            "copying `{src}` into `{dst_key}` of {}: {e}",
            to.spec().describe()
        ))
        .temporary(true)
    };
    let mut w: DynWrite = Box::new(sink);
    if let Some(key) = &enc.key {
        w = Box::new(key.encryptor().wrap_async_output(w).await.map_err(io)?);
    }
    match enc.compression {
        Compression::None => {}
        Compression::Zstd => {
            w = Box::new(write::ZstdEncoder::with_quality_and_params(
                w,
                Level::Precise(enc.level),
                &[async_compression::zstd::CParameter::checksum_flag(true)],
            ))
        }
        Compression::Gzip => {
            w = Box::new(write::GzipEncoder::with_quality(
                w,
                Level::Precise(enc.level),
            ))
        }
    }
    // A plain copy's raw bytes are its stored bytes: hash them once.
    let plain = enc.encoding().is_plain();
    let mut reader: DynRead = if plain {
        Box::new(from.open_read(src).await?)
    } else {
        Box::new(TallyReader {
            inner: from.open_read(src).await?,
            tally: raw.clone(),
        })
    };
    let mut buf = vec![0u8; BUF];
    loop {
        let n = reader.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).await.map_err(io)?;
    }
    w.close().await.map_err(io)?;
    let (sha256, size) = finish(&stored);
    let (raw_sha256, raw_size) = if plain {
        (sha256.clone(), size)
    } else {
        finish(&raw)
    };
    Ok(Encoded {
        size,
        sha256,
        raw_size,
        raw_sha256,
    })
}

/// What a stored file should be, from the manifest.
#[derive(Debug, Clone, Default)]
pub struct Expected<'a> {
    pub size: u64,
    pub sha256: &'a str,
    pub encoding: Encoding,
    pub raw_size: Option<u64>,
    pub raw_sha256: Option<&'a str>,
}

/// Streams a stored file of `from`, decoding it, into `dst_key` of `to`
/// (or nowhere, to check it). The outer error is trouble reaching the
/// file; the inner one says how the file is not what the manifest recorded
/// or does not decrypt or decompress, in which case anything written was
/// never completed.
pub async fn decode_copy(
    from: &Storage,
    src: &str,
    expected: &Expected<'_>,
    to: Option<(&Storage, &str)>,
) -> Result<std::result::Result<u64, String>> {
    let stored = SharedTally::default();
    let raw = SharedTally::default();
    let mut r: DynRead = Box::new(TallyReader {
        inner: from.open_read(src).await?,
        tally: stored.clone(),
    });
    if expected.encoding.encrypted {
        let key = from.key().ok_or_else(|| missing_key(src))?;
        let opened = match age::Decryptor::new_async_buffered(BufReader::new(r)).await {
            Ok(d) => d.decrypt_async(std::iter::once(&key.identity as &dyn age::Identity)),
            Err(e) => Err(e),
        };
        r = match opened {
            Ok(reader) => Box::new(reader),
            Err(age::DecryptError::Io(e)) => return Err(io_error(from, src, e)),
            Err(e) => match decrypt_error(e, src, key) {
                e if e.kind() == ErrorKind::Corrupt => return Ok(Err(e.to_string())),
                e => return Err(e),
            },
        };
    }
    match expected.encoding.compression {
        Compression::None => {}
        Compression::Zstd => {
            let mut d = bufread::ZstdDecoder::new(BufReader::new(r));
            d.multiple_members(true);
            r = Box::new(d);
        }
        Compression::Gzip => {
            let mut d = bufread::GzipDecoder::new(BufReader::new(r));
            d.multiple_members(true);
            r = Box::new(d);
        }
    }
    let mut sink: Option<DynWrite> = match to {
        Some((storage, key)) => Some(Box::new(TallyWriter {
            inner: storage.open_write(key).await?,
            tally: raw.clone(),
        })),
        None => None,
    };
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(n) => n,
            // Decoders and age's tag check report bad input this way.
            Err(e) if is_bad_data(&e) => return Ok(Err(format!("does not decode: {e}"))),
            Err(e) => return Err(io_error(from, src, e)),
        };
        if n == 0 {
            break;
        }
        match sink.as_mut() {
            Some(w) => w
                .write_all(&buf[..n])
                .await
                .map_err(|e| io_error(to.expect("sink").0, src, e))?,
            None => {
                let mut t = raw.lock().expect("tally");
                t.hasher.update(&buf[..n]);
                t.bytes += n as u64;
            }
        }
    }
    let (sha, size) = finish(&stored);
    let (raw_sha, raw_size) = finish(&raw);
    let problem = if size != expected.size {
        Some(format!("size {size}, the manifest says {}", expected.size))
    } else if !expected.sha256.is_empty() && sha != expected.sha256 {
        Some(format!(
            "checksum {sha} differs from the manifest's {} — the file was changed or damaged",
            expected.sha256
        ))
    } else if let Some(n) = expected.raw_size.filter(|n| *n != raw_size) {
        Some(format!(
            "decodes to {raw_size} bytes, the manifest says {n}"
        ))
    } else if expected.raw_sha256.is_some_and(|s| s != raw_sha) {
        Some("decoded content differs from the manifest's checksum".to_string())
    } else {
        None
    };
    if let Some(p) = problem {
        return Ok(Err(p));
    }
    // Only now, with every check passed, does the copy become visible.
    if let (Some(mut w), Some((storage, _))) = (sink, to) {
        w.close().await.map_err(|e| io_error(storage, src, e))?;
    }
    Ok(Ok(raw_size))
}

fn is_bad_data(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
    )
}

fn io_error(storage: &Storage, key: &str, e: std::io::Error) -> Error {
    Error::remote(format!(
        "copying `{key}` ({}): {e}",
        storage.spec().describe()
    ))
    .temporary(true)
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
        assert!(Compression::parse("lz4").is_err());
        assert!(Compression::Gzip.check_level(12).is_err());
        assert!(Compression::Zstd.check_level(19).is_ok());
    }
}
