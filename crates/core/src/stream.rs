//! Streaming plumbing shared by storage copies and the codec: a [`Tally`]
//! (size and SHA-256) of the bytes passing a point, the [`Tallied`] wrapper
//! that keeps one for a reader or a writer, and [`pump`], the copy loop.
//! A leaf module: it knows nothing of storage or encodings.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use sha2::{Digest, Sha256};

/// Size and SHA-256 of the bytes that passed a point of a pipeline; cheap
/// to clone (clones share the count).
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<TallyState>>);

#[derive(Default)]
struct TallyState {
    hasher: Sha256,
    bytes: u64,
}

impl Tally {
    pub fn update(&self, bytes: &[u8]) {
        let mut t = self.0.lock().expect("tally");
        t.hasher.update(bytes);
        t.bytes += bytes.len() as u64;
    }

    /// The hex SHA-256 and the size of everything counted so far.
    pub fn finish(&self) -> (String, u64) {
        let t = self.0.lock().expect("tally");
        (hex::encode(t.hasher.clone().finalize()), t.bytes)
    }
}

/// A reader or writer that counts and hashes what passes through it.
pub struct Tallied<T> {
    inner: T,
    tally: Tally,
}

impl<T> Tallied<T> {
    pub fn new(inner: T, tally: &Tally) -> Tallied<T> {
        Tallied {
            inner,
            tally: tally.clone(),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Tallied<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.tally.update(&buf[..n]);
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Tallied<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.tally.update(&buf[..n]);
        }
        poll
    }
}

/// A reader whose own errors are marked, so that a pipeline reading
/// through it (decryptors, decompressors) can tell a failing source (an
/// outage) from bytes that do not decode (damage) by the error, not by
/// its text: see [`from_source`].
pub struct MarkErrors<R>(pub R);

/// An error of the reader inside a [`MarkErrors`].
#[derive(Debug)]
struct SourceError(std::io::Error);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {}

impl<R: AsyncRead + Unpin> AsyncRead for MarkErrors<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(std::io::Error::new(e.kind(), SourceError(e)))),
            other => other,
        }
    }
}

/// Whether `e` came from the reader inside a [`MarkErrors`].
pub fn from_source(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<SourceError>())
}

/// Bytes moved per read.
pub const BUF: usize = 256 * 1024;

/// Which side of a [`pump`] failed.
pub enum PumpError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies everything from `r` into `w` (without closing `w`); returns the
/// bytes copied. One buffer of [`BUF`] bytes, whatever the size.
pub async fn pump<R, W>(r: &mut R, w: &mut W) -> Result<u64, PumpError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await.map_err(PumpError::Read)?;
        if n == 0 {
            return Ok(total);
        }
        w.write_all(&buf[..n]).await.map_err(PumpError::Write)?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tallies_count_what_passes() {
        let (read, written) = (Tally::default(), Tally::default());
        let mut r = Tallied::new(&b"hello world"[..], &read);
        let mut w = Tallied::new(Vec::new(), &written);
        let n = pump(&mut r, &mut w).await.ok().unwrap();
        assert_eq!(n, 11);
        assert_eq!(read.finish(), written.finish());
        assert_eq!(
            read.finish().0,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(w.inner, b"hello world");
    }

    struct Failing;

    impl AsyncRead for Failing {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Err(std::io::Error::other("connection reset")))
        }
    }

    #[tokio::test]
    async fn marked_errors_are_told_from_others() {
        let mut r = MarkErrors(Failing);
        let e = r.read(&mut [0u8; 4]).await.unwrap_err();
        assert!(from_source(&e));
        assert_eq!(e.to_string(), "connection reset");
        assert!(!from_source(&std::io::Error::other("bad frame")));
    }
}
