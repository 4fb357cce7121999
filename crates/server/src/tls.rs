//! HTTPS for the REST server (`http.tls.certFile`, `http.tls.keyFile`):
//! the PEM files loaded into a rustls configuration, and a listener that
//! hands `axum::serve` connections whose TLS handshake is done.
//!
//! rustls through tokio-rustls (both maintained by the rustls project, and
//! already in the tree under reqwest and OpenDAL, with the same aws-lc-rs
//! crypto): serving TLS takes one listener here rather than a second HTTP
//! server stack (axum-server), so the routes, graceful shutdown and
//! everything else run exactly as over plain HTTP.
//!
//! Handshakes run in their own tasks, so a slow or silent client never
//! holds up the others. A client that speaks plain HTTP to the TLS port is
//! answered `400` in plain text naming `https://`, instead of a closed
//! connection it cannot explain.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use milvus_backup_core::{Error, ErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to send its first byte and finish the
/// handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of every TLS record that opens a connection (handshake).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The rustls configuration for `cert_file` and `key_file`, or None when
/// both are empty (plain HTTP).
pub fn server_config(
    cert_file: &str,
    key_file: &str,
) -> Result<Option<Arc<rustls::ServerConfig>>, Error> {
    let (cert_file, key_file) = (cert_file.trim(), key_file.trim());
    match (cert_file.is_empty(), key_file.is_empty()) {
        (true, true) => return Ok(None),
        (false, true) => {
            return Err(invalid(
                "http.tls.certFile is set but http.tls.keyFile is not — set both (PEM files, \
                 or --tls-cert and --tls-key) to serve HTTPS, or neither for plain HTTP",
            ))
        }
        (true, false) => {
            return Err(invalid(
                "http.tls.keyFile is set but http.tls.certFile is not — set both (PEM files, \
                 or --tls-cert and --tls-key) to serve HTTPS, or neither for plain HTTP",
            ))
        }
        (false, false) => {}
    }
    let certs = read_certificates(Path::new(cert_file))?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        invalid(format!(
            "http.tls.keyFile `{key_file}` holds no usable private key ({e}) — name a PEM file \
             with the certificate's key (PKCS#8, PKCS#1 or SEC1)"
        ))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            invalid(format!(
                "the key in http.tls.keyFile `{key_file}` does not fit the certificate in \
                 http.tls.certFile `{cert_file}` ({e}) — name the key the certificate was issued for"
            ))
        })?;
    // axum serves HTTP/1.1 here (its http2 feature is off).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            invalid(format!(
                "cannot read http.tls.certFile `{shown}` ({e}) — name a PEM file with the \
                 server's certificate chain"
            ))
        })?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "http.tls.certFile `{shown}` holds no PEM certificate — name a file with \
             `-----BEGIN CERTIFICATE-----` blocks, the server's certificate first"
        )));
    }
    Ok(certs)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// Accepts TCP connections and yields them once their TLS handshake is
/// done; see the module documentation.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener` (it must be inside a Tokio runtime).
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, as
                        // axum's own accept loop does.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    break;
                }
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Some(tls) = handshake(&acceptor, stream, peer).await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != TLS_HANDSHAKE_RECORD => {
            refuse_plain_http(stream).await;
            return None;
        }
        Ok(Ok(1)) => {}
        _ => return None,
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake with {peer} failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake with {peer} timed out");
            None
        }
    }
}

/// Answers a plain-HTTP request on the TLS port with one clear line.
async fn refuse_plain_http(mut stream: TcpStream) {
    let body =
        "This port serves HTTPS (http.tls.certFile is set): use https:// instead of http://\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // Read the request first: closing with unread bytes would reset the
    // connection before the client sees the answer.
    let mut request = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut request)).await;
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_without_the_other_names_both_keys() {
        let e = server_config("cert.pem", "").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("http.tls.keyFile"), "{e}");
        let e = server_config("", "key.pem").unwrap_err();
        assert!(e.to_string().contains("http.tls.certFile"), "{e}");
        assert!(server_config(" ", "").unwrap().is_none());
    }

    #[test]
    fn a_missing_certificate_file_is_named() {
        let e = server_config("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
        assert!(e.to_string().contains("`/nonexistent/cert.pem`"), "{e}");
    }
}
