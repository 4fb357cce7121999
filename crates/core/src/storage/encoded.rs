//! Stored files encoded on their way into storage and decoded on their
//! way out: the [`crate::codec`] encoders wrapped around storage readers
//! and writers, with the size and SHA-256 of both sides.

use async_compression::futures::{bufread, write};
use async_compression::Level;
use futures::io::{AsyncWriteExt, BufReader};

use crate::codec::key;
use crate::codec::{DynRead, DynWrite, Encoded, Encoder};
use crate::error::{Error, ErrorKind, Result};
use crate::model::encoding::{Compression, Expected};
use crate::storage::root_key;
use crate::storage::Storage;
use crate::stream::{from_source, pump, MarkErrors, PumpError, Tallied, Tally};

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
    decode_into(from, src, expected, to, None).await
}

/// Reads a stored file of `from` into memory, decoded and checked against
/// the manifest as [`decode_copy`] checks it (the inner error: damage).
pub async fn decode_read(
    from: &Storage,
    src: &str,
    expected: &Expected<'_>,
) -> Result<std::result::Result<Vec<u8>, String>> {
    let buf = SharedBuf::default();
    Ok(decode_into(from, src, expected, None, Some(buf.clone()))
        .await?
        .map(|_| buf.take()))
}

/// A growing buffer that a writer fills and its owner then takes.
#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("buffer"))
    }
}

impl futures::io::AsyncWrite for SharedBuf {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// [`decode_copy`], into storage, memory or nowhere.
async fn decode_into(
    from: &Storage,
    src: &str,
    expected: &Expected<'_>,
    to: Option<(&Storage, &str)>,
    memory: Option<SharedBuf>,
) -> Result<std::result::Result<u64, String>> {
    let (stored, raw) = (Tally::default(), Tally::default());
    let source = MarkErrors(from.open_read(src).await?);
    let mut r: DynRead = Box::new(Tallied::new(source, &stored));
    if expected.encoding.encrypted {
        let key = &root_key::opening_key(from, src).await?;
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
    let mut sink: DynWrite = match (to, memory) {
        (Some((storage, key)), _) => Box::new(Tallied::new(storage.open_write(key).await?, &raw)),
        (None, Some(buf)) => Box::new(Tallied::new(buf, &raw)),
        (None, None) => Box::new(Tallied::new(futures::io::sink(), &raw)),
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
