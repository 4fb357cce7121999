//! How backup files are stored: compressed (zstd or gzip) and/or encrypted,
//! always streamed.
//!
//! Encryption is the [age](https://age-encryption.org/v1) format with an
//! X25519 identity ([`crate::key`]): each file gets a fresh file key wrapped
//! for the identity's recipient, and its payload is ChaCha20-Poly1305 in
//! age's STREAM construction, so any changed, cut or reordered byte fails to
//! decrypt. Compression runs before encryption (ciphertext does not
//! compress); zstd frames carry their own checksum, gzip its CRC.
//!
//! A stored file's encoding is recorded per file in the manifest, so one
//! reader handles every backup, old or new. Depends on `storage` (to read
//! and write) and `stream` (tallies and the copy loop); storage does not
//! depend on it.

use async_compression::futures::{bufread, write};
use async_compression::Level;
use futures::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::key::{self, Key};
use crate::keyring;
use crate::storage::Storage;
use crate::stream::{from_source, pump, MarkErrors, PumpError, Tallied, Tally};

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

pub type DynWrite = Box<dyn AsyncWrite + Send + Unpin>;
type DynRead = Box<dyn AsyncRead + Send + Unpin>;

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

/// Streams `src` of `from` into `dst_key` of `to`, encoding it on the way.
/// A plain encoder is the same as [`Storage::stream_to`].
pub async fn encode_copy(
    from: &Storage,
    src: &str,
    to: &Storage,
    dst_key: &str,
    enc: &Encoder,
) -> Result<Encoded> {
    if enc.encoding().is_plain() {
        let copied = from.stream_to(src, to, dst_key).await?;
        let sha256 = copied.sha256.unwrap_or_default();
        return Ok(Encoded {
            size: copied.bytes,
            raw_size: copied.bytes,
            raw_sha256: sha256.clone(),
            sha256,
        });
    }
    let raw = Tally::default();
    let io =
        |e: std::io::Error| to.io_error(&format!("copying `{src}` into `{dst_key}`"), dst_key, e);
    let (mut w, stored) = encoding_writer(to, dst_key, enc).await?;
    let mut reader = Tallied::new(from.open_read(src).await?, &raw);
    match pump(&mut reader, &mut w).await {
        Ok(_) => {}
        Err(PumpError::Read(e) | PumpError::Write(e)) => return Err(io(e)),
    }
    w.close().await.map_err(io)?;
    let (sha256, size) = stored.finish();
    let (raw_sha256, raw_size) = raw.finish();
    Ok(Encoded {
        size,
        sha256,
        raw_size,
        raw_sha256,
    })
}

/// A writer that encodes what it is given into `dst_key` of `to`, and the
/// tally (size and SHA-256) of the bytes as stored. Close it to finish.
pub async fn encoding_writer(
    to: &Storage,
    dst_key: &str,
    enc: &Encoder,
) -> Result<(DynWrite, Tally)> {
    let stored = Tally::default();
    let io = |e: std::io::Error| to.io_error(&format!("writing `{dst_key}`"), dst_key, e);
    let mut w: DynWrite = Box::new(Tallied::new(to.open_write(dst_key).await?, &stored));
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
    Ok((w, stored))
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
/// never completed. A read error from storage is told from one of the
/// decoders by [`MarkErrors`]: only the latter is damage.
pub async fn decode_copy(
    from: &Storage,
    src: &str,
    expected: &Expected<'_>,
    to: Option<(&Storage, &str)>,
) -> Result<std::result::Result<u64, String>> {
    let (stored, raw) = (Tally::default(), Tally::default());
    let source = MarkErrors(from.open_read(src).await?);
    let mut r: DynRead = Box::new(Tallied::new(source, &stored));
    if expected.encoding.encrypted {
        let key = &keyring::opening_key(from, src).await?;
        let opened = match age::Decryptor::new_async_buffered(BufReader::new(r)).await {
            Ok(d) => d.decrypt_async(std::iter::once(&key.identity as &dyn age::Identity)),
            Err(e) => Err(e),
        };
        r = match opened {
            Ok(reader) => Box::new(reader),
            Err(age::DecryptError::Io(e)) if from_source(&e) => return Err(io_error(from, src, e)),
            // A header cut short or garbled.
            Err(age::DecryptError::Io(e)) => return Ok(Err(format!("does not decrypt: {e}"))),
            Err(e) => match key::decrypt_error(e, src, key) {
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
    let mut sink: DynWrite = match to {
        Some((storage, key)) => Box::new(Tallied::new(storage.open_write(key).await?, &raw)),
        None => Box::new(Tallied::new(futures::io::sink(), &raw)),
    };
    match pump(&mut r, &mut sink).await {
        Ok(_) => {}
        Err(PumpError::Read(e)) if from_source(&e) => return Err(io_error(from, src, e)),
        // Every other read error is a decoder's (age's tag check, zstd's
        // checksum, gzip's CRC): the bytes are bad.
        Err(PumpError::Read(e)) => return Ok(Err(format!("does not decode: {e}"))),
        Err(PumpError::Write(e)) => return Err(io_error(to.map_or(from, |(s, _)| s), src, e)),
    }
    let (sha, size) = stored.finish();
    let (raw_sha, raw_size) = raw.finish();
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
    if let Some((storage, _)) = to {
        sink.close().await.map_err(|e| io_error(storage, src, e))?;
    }
    Ok(Ok(raw_size))
}

fn io_error(storage: &Storage, key: &str, e: std::io::Error) -> Error {
    storage.io_error(&format!("copying `{key}`"), key, e)
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
