//! Server-side copies between buckets of one S3 endpoint.
//!
//! OpenDAL copies only inside its operator's bucket, so a copy into another
//! bucket (or a backup root in another bucket) is one signed request of our
//! own: `CopyObject` with `x-amz-copy-source: /<bucket>/<key>`, or, over
//! 5 GiB, `UploadPartCopy` parts of a multipart upload. Requests are signed
//! with `reqsign-aws-v4` (already in the tree under OpenDAL, the same signer
//! OpenDAL uses) and sent with `reqwest`: a few dozen lines instead of
//! `aws-sdk-s3`'s whole SDK and a second HTTP stack.
//!
//! Integrity: the copy is conditional on the source's ETag from the listing
//! (`x-amz-copy-source-if-match`), so it copies exactly the listed bytes,
//! and asks the service for a SHA-256 of the copy
//! (`x-amz-checksum-algorithm: SHA256`) which it returns where supported.

use std::time::Duration;

use base64::Engine;
use reqsign_aws_v4::{RequestSigner, StaticCredentialProvider};
use reqsign_core::{Context, Signer};
use reqwest::Method;
use sha2::{Digest, Sha256};

/// Largest object one `CopyObject` may copy.
pub const SINGLE_COPY_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Part size of multipart copies.
pub const PART_SIZE: u64 = 512 * 1024 * 1024;

/// When a copy goes in parts, and how large they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// Largest object copied in one `CopyObject`.
    pub single_max: u64,
    /// Part size of larger ones.
    pub part_size: u64,
}

impl Parts {
    /// S3's limits: 5 GiB in one request, else 512 MiB parts.
    pub const DEFAULT: Parts = Parts {
        single_max: SINGLE_COPY_MAX,
        part_size: PART_SIZE,
    };
}

/// Where a request goes: bucket, key and query string.
#[derive(Debug, Clone, Copy)]
struct At<'a> {
    bucket: &'a str,
    key: &'a str,
    query: &'a str,
}

/// What the service said of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// ETag of the new object, without quotes.
    pub etag: String,
    /// Hex SHA-256 of the whole new object, when the service computed one.
    pub sha256: Option<String>,
    /// Whether it was copied in parts (its ETag is then `<md5>-<parts>`).
    pub multipart: bool,
}

/// Why a copy failed: the HTTP status (0: no answer), the S3 error code and
/// the message.
#[derive(Debug, Clone)]
pub struct CopyError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.status == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "HTTP {} {}: {}", self.status, self.code, self.message)
        }
    }
}

impl CopyError {
    /// The service asked to slow down or was briefly unavailable.
    pub fn is_throttle(&self) -> bool {
        matches!(self.status, 429 | 503) || self.code == "SlowDown"
    }
    /// The source no longer has the listed ETag, or is gone.
    pub fn source_changed(&self) -> bool {
        self.status == 412 || self.code == "PreconditionFailed"
    }
    pub fn not_found(&self) -> bool {
        self.status == 404
    }
    pub fn is_temporary(&self) -> bool {
        self.status == 0 || self.status >= 500 || self.is_throttle()
    }
}

/// Copies objects between buckets of one endpoint with one identity.
#[derive(Clone)]
pub struct S3Copier {
    endpoint: String,
    client: reqwest::Client,
    signer: Signer<reqsign_aws_v4::Credential>,
}

impl std::fmt::Debug for S3Copier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Copier")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl S3Copier {
    pub fn new(
        endpoint: &str,
        region: &str,
        access_key: &str,
        secret_key: &str,
        token: &str,
    ) -> S3Copier {
        let mut creds = StaticCredentialProvider::new(access_key, secret_key);
        if !token.is_empty() {
            creds = creds.with_session_token(token);
        }
        let region = if region.is_empty() {
            "us-east-1"
        } else {
            region
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .pool_max_idle_per_host(256)
            .build()
            .unwrap_or_default();
        S3Copier {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            client,
            signer: Signer::new(Context::new(), creds, RequestSigner::new("s3", region)),
        }
    }

    /// Copies `src_bucket/src_key` (`size` bytes, ETag `if_match` when
    /// known) to `dst_bucket/dst_key`.
    pub async fn copy(
        &self,
        src: (&str, &str),
        dst: (&str, &str),
        size: u64,
        if_match: Option<&str>,
    ) -> Result<Copied, CopyError> {
        self.copy_in_parts_over(src, dst, size, if_match, Parts::DEFAULT)
            .await
    }

    /// [`S3Copier::copy`] with the thresholds given (tests use small parts).
    pub async fn copy_in_parts_over(
        &self,
        (src_bucket, src_key): (&str, &str),
        (dst_bucket, dst_key): (&str, &str),
        size: u64,
        if_match: Option<&str>,
        parts: Parts,
    ) -> Result<Copied, CopyError> {
        let Parts {
            single_max,
            part_size,
        } = parts;
        let source = format!("/{src_bucket}/{}", encode_key(src_key));
        let mut headers = vec![("x-amz-copy-source", source.clone())];
        if let Some(etag) = if_match {
            headers.push(("x-amz-copy-source-if-match", quoted(etag)));
        }
        if size <= single_max {
            headers.push(("x-amz-checksum-algorithm", "SHA256".to_string()));
            let body = self
                .send(
                    Method::PUT,
                    at(dst_bucket, dst_key, ""),
                    &headers,
                    Vec::new(),
                )
                .await?;
            return Ok(Copied {
                etag: unquote(&xml_tag(&body, "ETag").unwrap_or_default()),
                sha256: xml_tag(&body, "ChecksumSHA256").and_then(|b| b64_hex(&b)),
                multipart: false,
            });
        }
        let started = self
            .send(
                Method::POST,
                at(dst_bucket, dst_key, "uploads="),
                &[],
                Vec::new(),
            )
            .await?;
        let upload = xml_tag(&started, "UploadId").ok_or_else(|| CopyError {
            status: 200,
            code: String::new(),
            message: "CreateMultipartUpload answered without an UploadId".into(),
        })?;
        let result = self
            .copy_parts(&headers, dst_bucket, dst_key, &upload, size, part_size)
            .await;
        match result {
            Ok(etag) => Ok(Copied {
                etag,
                sha256: None,
                multipart: true,
            }),
            Err(e) => {
                let q = format!("uploadId={}", encode_query(&upload));
                let _ = self
                    .send(Method::DELETE, at(dst_bucket, dst_key, &q), &[], Vec::new())
                    .await;
                Err(e)
            }
        }
    }

    async fn copy_parts(
        &self,
        headers: &[(&'static str, String)],
        bucket: &str,
        key: &str,
        upload: &str,
        size: u64,
        part_size: u64,
    ) -> Result<String, CopyError> {
        let parts: Vec<(u64, u64)> = (0..size)
            .step_by(part_size as usize)
            .map(|start| (start, (start + part_size).min(size) - 1))
            .collect();
        let etags = futures::future::try_join_all(parts.iter().enumerate().map(
            |(i, (first, last))| async move {
                let mut h = headers.to_vec();
                h.push(("x-amz-copy-source-range", format!("bytes={first}-{last}")));
                let q = format!("partNumber={}&uploadId={}", i + 1, encode_query(upload));
                let body = self
                    .send(Method::PUT, at(bucket, key, &q), &h, Vec::new())
                    .await?;
                Ok::<_, CopyError>(xml_tag(&body, "ETag").unwrap_or_default())
            },
        ))
        .await?;
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, etag) in etags.iter().enumerate() {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                etag
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let q = format!("uploadId={}", encode_query(upload));
        let body = self
            .send(Method::POST, at(bucket, key, &q), &[], xml.into_bytes())
            .await?;
        Ok(unquote(&xml_tag(&body, "ETag").unwrap_or_default()))
    }

    /// Uploads `size` bytes that arrive as a stream to `bucket/key` in one
    /// `PutObject` whose body is sent as it comes (unsigned payload: the
    /// caller hashes the bytes); returns the new object's ETag.
    pub async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
        body: reqwest::Body,
    ) -> Result<String, CopyError> {
        let headers = [("content-length", size.to_string())];
        let (_, etag) = self
            .send_body(
                Method::PUT,
                at(bucket, key, ""),
                &headers,
                "UNSIGNED-PAYLOAD".into(),
                body,
            )
            .await?;
        Ok(unquote(&etag))
    }

    /// Sends one signed request; the answer's body, or the service's error
    /// (also when it came inside a 200, as `CopyObject` may send it).
    async fn send(
        &self,
        method: Method,
        at: At<'_>,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<String, CopyError> {
        let sha = hex::encode(Sha256::digest(&body));
        self.send_body(method, at, headers, sha, body.into())
            .await
            .map(|(text, _)| text)
    }

    /// [`S3Copier::send`] of any body whose SHA-256 (or `UNSIGNED-PAYLOAD`)
    /// is `payload_sha`; the answer's body and ETag header.
    async fn send_body(
        &self,
        method: Method,
        At { bucket, key, query }: At<'_>,
        headers: &[(&'static str, String)],
        payload_sha: String,
        body: reqwest::Body,
    ) -> Result<(String, String), CopyError> {
        let mut url = format!("{}/{bucket}/{}", self.endpoint, encode_key(key));
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        let transport = |message: String| CopyError {
            status: 0,
            code: String::new(),
            message,
        };
        let mut builder = http::Request::builder()
            .method(method.as_str())
            .uri(&url)
            .header("x-amz-content-sha256", payload_sha);
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let (mut parts, ()) = builder
            .body(())
            .map_err(|e| transport(format!("building the request: {e}")))?
            .into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| transport(format!("signing the request: {e}")))?;
        let response = self
            .client
            .request(method, &url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| transport(format!("sending the request to {}: {e}", self.endpoint)))?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = response
            .text()
            .await
            .map_err(|e| transport(format!("reading the answer of {}: {e}", self.endpoint)))?;
        if status >= 300 || text.contains("<Error>") {
            return Err(CopyError {
                status,
                code: xml_tag(&text, "Code").unwrap_or_default(),
                message: xml_tag(&text, "Message")
                    .unwrap_or_else(|| text.chars().take(200).collect()),
            });
        }
        Ok((text, etag))
    }
}

fn at<'a>(bucket: &'a str, key: &'a str, query: &'a str) -> At<'a> {
    At { bucket, key, query }
}

/// AWS's URI encoding of a key: everything but unreserved characters and `/`.
fn encode_key(key: &str) -> String {
    encode(key, true)
}

fn encode_query(value: &str) -> String {
    encode(value, false)
}

fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The text of the first `<tag>` of an XML answer, entities decoded.
fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(
        xml[start..end]
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&amp;", "&"),
    )
}

/// An ETag without its quotes.
pub fn unquote(etag: &str) -> String {
    etag.trim().trim_matches('"').to_string()
}

fn quoted(etag: &str) -> String {
    format!("\"{}\"", unquote(etag))
}

fn b64_hex(b64: &str) -> Option<String> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .map(hex::encode)
}

/// Whether an ETag is the MD5 of the object's bytes (a single-part upload
/// or copy), so reading the object back can check it.
pub fn etag_is_md5(etag: &str) -> bool {
    let e = unquote(etag);
    e.len() == 32 && e.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_aws_signs_them() {
        assert_eq!(encode_key("a b/c+d/é"), "a%20b/c%2Bd/%C3%A9");
        assert_eq!(encode_query("x/y="), "x%2Fy%3D");
    }

    #[test]
    fn copy_answers_are_read() {
        let xml = r#"<?xml version="1.0"?><CopyObjectResult><ETag>&quot;5125f635a5a93bdaa271ed5c999aaed4&quot;</ETag><ChecksumSHA256>pmcZu5ROl3TrBWGE4LkE3KjKzeGexM4xBkQ3OZVKYzY=</ChecksumSHA256></CopyObjectResult>"#;
        assert_eq!(
            unquote(&xml_tag(xml, "ETag").unwrap()),
            "5125f635a5a93bdaa271ed5c999aaed4"
        );
        assert_eq!(
            b64_hex(&xml_tag(xml, "ChecksumSHA256").unwrap()).unwrap(),
            "a66719bb944e9774eb056184e0b904dca8cacde19ec4ce3106443739954a6336"
        );
        assert!(etag_is_md5("\"5125f635a5a93bdaa271ed5c999aaed4\""));
        assert!(!etag_is_md5("08ef1b9dfa96680c6d513d500d188f72-2"));
    }
}
