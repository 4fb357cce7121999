//! Milvus's answers as typed errors: an in-band `Status` (the 2.3+ `code`
//! with its retriable flag, or the 2.2 legacy enum) or a transport failure
//! becomes an [`Error`] of the right kind that keeps the server's reason.
//! Decided by code, never by the text.

use milvus::proto::common::Status;

use crate::error::{Error, ErrorKind, Result};
use crate::milvus::{proto, rbac_api};

pub(super) fn unreachable_error(address: &str, e: &tonic::transport::Error) -> Error {
    let detail = error_chain(e);
    // Wording only; the kind is Unreachable whatever the reason.
    let reason = match io_kind(e) {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused",
        Some(std::io::ErrorKind::TimedOut) => "connection timeout",
        _ if detail.contains("timed out") => "connection timeout",
        _ => "cannot reach it",
    };
    let (host, port) = address.rsplit_once(':').unwrap_or((address, ""));
    Error::new(
        ErrorKind::Unreachable,
        format!("Failed to connect to Milvus at {address}: {reason} ({detail}) — check that Milvus is running and reachable (`telnet {host} {port}`), and milvus.address and milvus.port in the config file"),
    )
    .temporary(true)
}

/// The I/O error kind at the root of a transport error, if any.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Maps a gRPC status to an error; transport-level trouble is temporary.
pub(super) fn status_error(address: &str, what: &str, status: &tonic::Status) -> Error {
    use tonic::Code;
    let msg = &*without_stack_trace(status.message(), what);
    match status.code() {
        Code::Unavailable | Code::Unknown if msg.contains("connect") || msg.contains("transport") => Error::new(
            ErrorKind::Unreachable,
            format!("Failed to connect to Milvus at {address} during {what} ({msg}) — check that Milvus is running and reachable, and milvus.address and milvus.port in the config file"),
        )
        .temporary(true),
        Code::Unavailable | Code::ResourceExhausted | Code::Aborted => {
            Error::remote(format!("Milvus {what} failed: {msg}")).temporary(true)
        }
        Code::DeadlineExceeded => Error::remote(format!(
            "Milvus {what} timed out at {address} — raise milvus.requestTimeout or check the server's load"
        ))
        .temporary(true),
        Code::PermissionDenied => Error::new(
            ErrorKind::PermissionDenied,
            match rbac_api::privilege_hint(what) {
                Some(hint) => format!("Milvus at {address} refused {what}: {msg} — {hint} (or connect as a user that has it: milvus.user)"),
                None => format!("Milvus at {address} refused {what}: {msg} — check milvus.user/milvus.password and milvus.authorizationEnabled"),
            },
        ),
        Code::Unauthenticated => Error::new(
            ErrorKind::PermissionDenied,
            format!("Milvus at {address} refused {what}: {msg} — check milvus.user/milvus.password and milvus.authorizationEnabled"),
        ),
        Code::Unimplemented => Error::new(ErrorKind::Unsupported, format!("Milvus at {address} does not support {what}")),
        _ => Error::remote(format!("Milvus {what} failed: {} ({msg})", status.code())),
    }
}

/// Turns Milvus's in-band status into an error that keeps the server's
/// reason. The kind comes from the server's codes: `code` (Milvus ≥ 2.3's
/// error codes, `merr`) when set, else the legacy `error_code` enum. A
/// legacy `UnexpectedError` carries no kind, so it stays `Remote`.
pub fn check_status(status: Option<&Status>, what: &str) -> Result<()> {
    let Some(s) = status else { return Ok(()) };
    #[allow(deprecated)] // 2.2/2.3 servers fill `error_code` (2.3 also `code`)
    let legacy = s.error_code;
    if legacy == 0 && s.code == 0 {
        return Ok(());
    }
    let reason = if s.reason.is_empty() {
        "no reason given".into()
    } else {
        without_stack_trace(&s.reason, what)
    };
    let kind = if s.code != 0 {
        kind_of_code(s.code)
    } else {
        kind_of_legacy_code(legacy)
    };
    let temporary = s.retriable || s.code & RETRIABLE_FLAG != 0;
    let hint = match (kind, rbac_api::privilege_hint(what)) {
        (ErrorKind::PermissionDenied, Some(hint)) => format!(" — {hint}"),
        _ => String::new(),
    };
    Err(Error::new(kind, format!("Milvus {what} failed: {reason}{hint}")).temporary(temporary))
}

/// Milvus's text without the Go stack trace some answers carry
/// (`goroutine 7 [running]:`, `\t/go/src/…/impl.go:123 +0x45` frames,
/// `-- stack trace:` blocks of wrapped errors), in one line: the lines of
/// the message before the first frame, joined by `; `. The whole text goes
/// to the debug log.
pub(crate) fn without_stack_trace<'a>(text: &'a str, what: &str) -> std::borrow::Cow<'a, str> {
    if !text.contains('\n') {
        return text.into();
    }
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        if is_stack_line(line) {
            break;
        }
        let line = line.trim();
        if !line.is_empty() {
            kept.push(line);
        }
    }
    tracing::debug!(what, "Milvus's whole answer: {text}");
    let one = kept.join("; ");
    if one.is_empty() {
        "no reason given (only a stack trace; see the debug log)".into()
    } else {
        one.into()
    }
}

/// Whether a line starts a Go stack trace or is one of its frames.
fn is_stack_line(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t', '|']);
    let frame_file = || {
        t.split_whitespace().next().is_some_and(|word| {
            word.rsplit_once(".go:")
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    t.starts_with("goroutine ")
        || t.starts_with("-- stack trace")
        || t.starts_with("stack trace:")
        || t.starts_with("panic: ")
        || t.contains("attached stack trace")
        || (line.starts_with(['\t', ' ', '|']) && frame_file())
        || (t.starts_with('/') && frame_file())
}

/// Milvus marks retriable `merr` codes with this bit.
const RETRIABLE_FLAG: i32 = 1 << 20;

/// The kind of a Milvus ≥ 2.3 error code (`pkg/util/merr`).
fn kind_of_code(code: i32) -> ErrorKind {
    match code & 0xFFFF {
        1 | 2 => ErrorKind::Unreachable, // service not ready / unavailable
        4 | 8 => ErrorKind::Throttled,   // request / rate limit exceeded
        10 => ErrorKind::Unsupported,    // service unimplemented
        100 | 200 | 202 | 300 | 400 | 600 | 700 | 800 | 901 | 1000 | 1600 | 1700 => {
            ErrorKind::NotFound // collection, partition, ..., alias, field not found
        }
        802 | 1100 | 1701 => ErrorKind::InvalidInput, // invalid names, parameters
        1400 | 1401 => ErrorKind::PermissionDenied,   // not authenticated / permitted
        1602 => ErrorKind::AlreadyExists,             // alias already exists
        _ => ErrorKind::Remote,
    }
}

/// The kind of a legacy `commonpb.ErrorCode`.
fn kind_of_legacy_code(code: i32) -> ErrorKind {
    use proto::common::ErrorCode as C;
    match C::try_from(code) {
        Ok(C::ConnectFailed | C::NotReadyServe | C::NotReadyCoordActivating) => {
            ErrorKind::Unreachable
        }
        Ok(C::PermissionDenied) => ErrorKind::PermissionDenied,
        Ok(C::CollectionNotExists | C::CollectionNameNotFound | C::IndexNotExist) => {
            ErrorKind::NotFound
        }
        Ok(C::SegmentNotFound) => ErrorKind::NotFound,
        Ok(C::IllegalArgument | C::IllegalCollectionName) => ErrorKind::InvalidInput,
        Ok(C::RateLimit | C::ForceDeny) => ErrorKind::Throttled,
        _ => ErrorKind::Remote,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(deprecated)]
    fn status_kinds_come_from_codes_and_keep_the_reason() {
        let status = |error_code, code, reason: &str| Status {
            error_code,
            code,
            reason: reason.into(),
            ..Default::default()
        };
        // Milvus 2.3: merr code 100, whatever the text says.
        let e = check_status(
            Some(&status(1, 100, "can't find collection[x]")),
            "Describe",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("can't find collection[x]"));
        let e = check_status(Some(&status(1, 2 | RETRIABLE_FLAG, "busy")), "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unreachable);
        assert!(e.is_temporary());
        // Milvus 2.2: only the legacy enum.
        let e = check_status(Some(&status(25, 0, "index doesn't exist")), "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = check_status(Some(&status(4, 0, "collection not found")), "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        // An unexpected error's text decides nothing.
        let e = check_status(Some(&status(1, 0, "collection not found")), "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Remote);
        assert!(check_status(Some(&Status::default()), "x").is_ok());
    }

    #[test]
    fn a_stack_trace_in_milvus_text_is_left_out_of_the_one_line() {
        let trace = "failed to get load state: context deadline exceeded\n\
            goroutine 4242 [running]:\n\
            github.com/milvus-io/milvus/internal/proxy.(*Proxy).GetLoadState(0xc000a1)\n\
            \t/go/src/github.com/milvus-io/milvus/internal/proxy/impl.go:1234 +0x45\n\
            github.com/milvus-io/milvus/internal/util.Wrap(...)\n\
            \t/go/src/github.com/milvus-io/milvus/internal/util/wrap.go:56 +0x1b\n";
        let status = Status {
            code: 65535,
            reason: trace.into(),
            ..Default::default()
        };
        let e = check_status(Some(&status), "GetLoadState").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Milvus GetLoadState failed: failed to get load state: context deadline exceeded"
        );
        assert_eq!(e.kind(), ErrorKind::Remote);
        // A wrapped error's trace (cockroachdb/errors), after two lines of message.
        let wrapped = "collection not loaded\nwhile loading partitions\n(1) attached stack trace\n  -- stack trace:\n  | github.com/milvus-io/milvus/pkg/util/merr.WrapErr\n  | \t/go/src/merr/utils.go:88";
        assert_eq!(
            without_stack_trace(wrapped, "x"),
            "collection not loaded; while loading partitions"
        );
        // Over gRPC, the same.
        let e = status_error(
            "127.0.0.1:19530",
            "Query",
            &tonic::Status::internal(trace.to_string()),
        );
        assert!(!e.to_string().contains("goroutine"), "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");
        assert!(e.to_string().contains("context deadline exceeded"), "{e}");
        // Text without a trace is kept as it is, line breaks and all joined.
        assert_eq!(without_stack_trace("a\nb", "x"), "a; b");
        assert_eq!(without_stack_trace("plain", "x"), "plain");
    }
}
