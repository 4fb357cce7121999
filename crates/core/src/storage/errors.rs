//! Storage failures as our errors: one line that names the object, the
//! storage and the config keys to check, with the kind (not found,
//! refused, throttled, unreachable, full) and whether a retry may help.
//! Not here: retrying ([`super::copy`]).

use opendal::ErrorKind as DalKind;

use super::s3copy;
use super::{Storage, SOURCE_CHANGED};
use crate::error::{Error, ErrorKind};

impl Storage {
    /// A failed signed upload into this storage as one of our errors.
    pub(super) fn put_error(&self, e: s3copy::CopyError, what: &str, key: &str) -> Error {
        let (_, _, cred_key) = self.spec.keys();
        let err = if e.status == 404 {
            Error::not_found(format!("{what} failed: {e} — check the bucket names"))
        } else if let Some(err) = signed_refusal(&e, what, &format!("check {cred_key}")) {
            err
        } else if matches!(
            e.code.as_str(),
            "QuotaExceeded"
                | "XMinioStorageFull"
                | "XMinioAdminBucketQuotaExceeded"
                | "StorageFull"
        ) || e.status == 507
        {
            self.quota_error(key, Some(&e.code))
        } else {
            Error::remote(format!("{what} failed: {e}")).temporary(e.is_temporary())
        };
        err.at("key", self.abs(key))
    }

    /// A failed signed copy as one of our errors.
    pub(super) fn copy_error(
        &self,
        e: s3copy::CopyError,
        src: &str,
        dst: &Storage,
        dst_key: &str,
    ) -> Error {
        let what = format!(
            "server-side copy of `{}` ({}) into `{}` ({})",
            self.abs(src),
            self.spec.describe(),
            dst.abs(dst_key),
            dst.spec.describe()
        );
        let err = if e.source_changed() {
            Error::remote(format!(
                "`{}` changed while it was copied (its ETag is no longer the listed one) — Milvus may be compacting; retry the backup",
                self.abs(src)
            ))
            .at(SOURCE_CHANGED, "etag")
        } else if e.not_found() && e.code == "NoSuchBucket" {
            Error::not_found(format!("{what} failed: {e} — check the bucket names"))
        } else if e.not_found() {
            Error::not_found(format!(
                "`{}` not found in {}",
                self.abs(src),
                self.spec.describe()
            ))
        } else if let Some(err) = signed_refusal(
            &e,
            &what,
            "the identity needs read access to the source bucket and write access to the target, or set minio.crossStorage: true to stream",
        ) {
            err
        } else {
            Error::remote(format!("{what} failed: {e}")).temporary(e.is_temporary())
        };
        err.at("key", self.abs(src))
    }

    /// An I/O error while streaming `key` of this storage (`doing` says
    /// what): the storage's own error when it is one (a full disk or quota
    /// keeps its message), else a temporary remote failure.
    pub fn io_error(&self, doing: &str, key: &str, e: std::io::Error) -> Error {
        if is_quota(&e, None) {
            return self.quota_error(key, None);
        }
        if e.kind() == std::io::ErrorKind::NotFound {
            // A read of a known size asks no HEAD: a vanished object shows
            // here.
            return Error::not_found(format!(
                "{doing}: `{}` not found in {}",
                self.abs(key),
                self.spec.describe()
            ))
            .at("key", self.abs(key));
        }
        Error::remote(format!("{doing}: {e} ({})", self.spec.describe()))
            .temporary(true)
            .at("key", key)
    }

    pub(super) fn quota_error(&self, key: &str, code: Option<&str>) -> Error {
        let free = match self.spec.provider {
            super::Provider::Local => free_space(std::path::Path::new(&self.spec.root))
                .map(|b| format!("; {} free", crate::human_bytes(b)))
                .unwrap_or_default(),
            _ => String::new(),
        };
        Error::remote(format!(
            "backup storage is full: {} has no room left for `{}` ({}{free}) — free space or raise the quota, or store less: compression (backup.compression: true, compressionAlgorithm: zstd, compressionLevel: 9), backup.maxBackupNum / retentionDays",
            self.spec.describe(),
            self.abs(key),
            code.unwrap_or("no space left on device")
        ))
        .at("key", self.abs(key))
    }

    /// Turns an OpenDAL error into one line that names the object, the
    /// storage and the config keys to check.
    ///
    /// OpenDAL keeps the HTTP status and the S3 error code only in its
    /// error text (the `response` context), so those two are read from it;
    /// every other decision uses OpenDAL's error kind.
    pub(super) fn map_err(&self, e: opendal::Error, op: &str, key: &str) -> Error {
        let (bucket_key, addr_key, cred_key) = self.spec.keys();
        let what = self.spec.describe();
        let text = e.to_string();
        let code = s3_code(&text);
        let status = http_status(&text);
        let err = if is_missing_bucket(&e) {
            Error::not_found(format!(
                "bucket `{}` not found at {} — create it or check {bucket_key}",
                self.spec.bucket,
                self.spec.endpoint()
            ))
        } else {
            match e.kind() {
                DalKind::NotFound => Error::not_found(format!("`{}` not found in {what}", self.abs(key))),
                DalKind::PermissionDenied => Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{what} refused the credentials ({}) — check {cred_key}", code.unwrap_or("access denied")),
                ),
                DalKind::ConfigInvalid => Error::invalid_input(format!("storage {what} is misconfigured: {text}")),
                DalKind::RateLimited => Error::new(
                    ErrorKind::Throttled,
                    format!("storage {what} keeps asking to slow down ({}) on {op} `{}` — retry later, or lower backup.parallelism.copydata", code.unwrap_or("rate limited"), self.abs(key)),
                )
                .temporary(true),
                _ if matches!(code, Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied")) => {
                    Error::new(
                        ErrorKind::PermissionDenied,
                        format!("{what} refused the credentials ({}) — check {cred_key}", code.unwrap_or_default()),
                    )
                }
                _ if is_quota(&e, code) => return self.quota_error(key, code).with_source(e),
                _ if status.is_some_and(|s| (500..600).contains(&s)) => Error::new(
                    ErrorKind::Unreachable,
                    format!(
                        "storage {what} is unavailable: it answered HTTP {} to {op} `{}`{} after retries — the service is down or overloaded; check it (and {addr_key}) and retry",
                        status.unwrap_or_default(),
                        self.abs(key),
                        code.map(|c| format!(" ({c})")).unwrap_or_default(),
                    ),
                )
                .temporary(true),
                _ if status.is_none() && is_connect_error(&text) => Error::new(
                    ErrorKind::Unreachable,
                    format!("cannot reach storage at {} — check {addr_key} and that the service is running", self.spec.endpoint()),
                )
                .temporary(true),
                _ => Error::remote(format!("{op} `{}` in {what} failed: {}", self.abs(key), first_line(&text)))
                    .temporary(e.is_temporary()),
            }
        };
        err.at("key", self.abs(key)).with_source(e)
    }
}

pub(super) fn is_missing_bucket(e: &opendal::Error) -> bool {
    let t = e.to_string();
    t.contains("NoSuchBucket") || t.contains("The specified bucket does not exist")
}

/// A signed request the service throttled (temporary) or refused for its
/// credentials (`fix` says what to do), as one of our errors.
pub(super) fn signed_refusal(e: &s3copy::CopyError, what: &str, fix: &str) -> Option<Error> {
    if e.is_throttle() {
        return Some(
            Error::new(
                ErrorKind::Throttled,
                format!("storage keeps asking to slow down ({e}) on {what} — retry later, or lower backup.parallelism.copydata"),
            )
            .temporary(true),
        );
    }
    matches!(
        e.code.as_str(),
        "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"
    )
    .then(|| {
        Error::new(
            ErrorKind::PermissionDenied,
            format!("{what} was refused ({e}) — {fix}"),
        )
    })
}

/// Bytes an unprivileged writer may still use on the file system of
/// `path` (or of its nearest existing parent).
fn free_space(path: &std::path::Path) -> Option<u64> {
    let dir = path.ancestors().find(|p| p.exists())?;
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The storage refused a write for want of space: a full disk or quota on
/// a local path (ENOSPC, EDQUOT), or an S3 service's quota error code.
pub(super) fn is_quota(e: &(dyn std::error::Error + 'static), code: Option<&str>) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    if matches!(
        code,
        Some(
            "QuotaExceeded"
                | "XMinioStorageFull"
                | "XMinioAdminBucketQuotaExceeded"
                | "StorageFull"
        )
    ) {
        return true;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::StorageFull
                || matches!(io.raw_os_error(), Some(ENOSPC | EDQUOT))
            {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

pub(super) fn is_connect_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("connection refused")
        || t.contains("error sending request")
        || t.contains("dns error")
        || t.contains("failed to lookup")
        || t.contains("tcp connect error")
}

/// The HTTP status of the response an OpenDAL error text describes, if any.
pub(super) fn http_status(text: &str) -> Option<u16> {
    let start = text.find("status: ")? + "status: ".len();
    text[start..].get(..3)?.parse().ok()
}

/// The S3 error code in an OpenDAL error text, if any.
pub(super) fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(&text[start..end])
}

pub(super) fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text);
    line.chars().take(300).collect()
}
