//! Typed errors of the core: each says *what* failed, *where* (key, object,
//! collection) and what the user can do. Front ends print them in one line and
//! map [`Error::kind`] to exit codes or HTTP statuses.

use std::fmt;

/// Broad class of a failure, used by front ends to pick an exit code or an
/// HTTP status, and by retry logic to decide whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The user's input (flags, config, request body) is wrong.
    InvalidInput,
    /// A named object (backup, collection, bucket, key) does not exist.
    NotFound,
    /// A named object exists already.
    AlreadyExists,
    /// Credentials were refused.
    PermissionDenied,
    /// A server could not be reached.
    Unreachable,
    /// The remote service failed while doing what we asked.
    Remote,
    /// Not built yet.
    Unsupported,
    /// A backup is damaged: files missing, truncated or changed.
    Corrupt,
    /// Anything else.
    Internal,
}

impl ErrorKind {
    /// Process exit code for this kind of failure (0 is success).
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::InvalidInput => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::AlreadyExists => 4,
            ErrorKind::PermissionDenied => 5,
            ErrorKind::Unreachable => 6,
            ErrorKind::Remote => 7,
            ErrorKind::Unsupported => 8,
            ErrorKind::Corrupt => 9,
            ErrorKind::Internal => 1,
        }
    }
}

/// The one error type of the core library.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    temporary: bool,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            temporary: false,
            source: None,
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }

    pub fn remote(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Remote, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Marks the error as one that may go away when retried.
    pub fn temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_temporary(&self) -> bool {
        self.temporary
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
