//! Typed errors of the core: each says *what* failed (a message that tells
//! the user what to do), during which *operation*, and *where* (collection,
//! segment, object key) as structured fields. Front ends print them in one
//! line and map [`Error::kind`] to exit codes or HTTP statuses; retry logic
//! asks [`Error::is_temporary`]. Nothing decides by searching message text.

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
    /// The object is not in a state that allows the operation (an
    /// incomplete backup, one in use).
    Conflict,
    /// Credentials were refused.
    PermissionDenied,
    /// A server could not be reached or said it is unavailable.
    Unreachable,
    /// A service asked us to slow down (rate limits, `SlowDown`).
    Throttled,
    /// The remote service failed while doing what we asked.
    Remote,
    /// Not built yet.
    Unsupported,
    /// The backup's own bytes are wrong: files missing, truncated, changed,
    /// or meta files that do not parse. Never a guess from a failed read.
    Corrupt,
    /// The operation was cancelled (a cancel request, Ctrl-C, shutdown).
    Cancelled,
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
            // Like bad input to a script: the request cannot be done as asked.
            ErrorKind::Conflict => 2,
            ErrorKind::PermissionDenied => 5,
            ErrorKind::Unreachable => 6,
            ErrorKind::Remote => 7,
            ErrorKind::Unsupported => 8,
            ErrorKind::Corrupt => 9,
            ErrorKind::Throttled => 10,
            ErrorKind::Cancelled => 130,
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
    /// The operation that failed (`create`, `restore`, `verify`, ...).
    operation: Option<&'static str>,
    /// Where it failed: `("collection", "db.c")`, `("segment", "42")`,
    /// `("key", "b1/meta/manifest.json")`.
    context: Vec<(&'static str, String)>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// What the user can do about it, after the message and context.
    guidance: Option<Remedy>,
}

/// Who asked, so that a remedy names the option the way they write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Caller {
    /// Command-line flags: `--drop_exist_collection`.
    #[default]
    Cli,
    /// The Go tool's REST routes: `"dropExistCollection": true`.
    Rest,
    /// The user guide's REST routes: `"drop_existing": true`.
    Guide,
    /// The Python SDK's arguments: `drop_existing=True`.
    Sdk,
}

/// An option a remedy can name; each front end spells it its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    /// Replace a collection that exists.
    DropExistCollection,
    /// Import into a collection that exists.
    SkipCreateCollection,
    /// Restore under a suffixed name.
    Suffix,
    /// Restore under other names.
    Rename,
    /// Finish an interrupted run.
    Resume,
    /// A physical backup.
    FormatBinlog,
    /// A logical backup in Parquet.
    FormatParquet,
    /// Back up despite deletes Milvus has not persisted.
    AllowUnpersistedDeletes,
    /// Restore the collections the target can take.
    SkipUnsupported,
    /// Let Milvus pick the index.
    UseAutoIndex,
    /// An incremental backup's base.
    BaseBackup,
    /// Insert rows instead of bulk import.
    ImportModeInsert,
}

impl Opt {
    /// `self` as `caller` writes it.
    pub fn spelled(self, caller: Caller) -> &'static str {
        use Caller::*;
        use Opt::*;
        match (self, caller) {
            (DropExistCollection, Cli) => "--drop_exist_collection",
            (DropExistCollection, Rest) => "\"dropExistCollection\": true",
            (DropExistCollection, Guide) => "\"drop_existing\": true",
            (DropExistCollection, Sdk) => "drop_existing=True",
            (SkipCreateCollection, Cli) => "--skip_create_collection",
            (SkipCreateCollection, Rest) => "\"skipCreateCollection\": true",
            (SkipCreateCollection, Guide) => "\"skip_create_collection\": true",
            (SkipCreateCollection, Sdk) => "skip_create_collection=True",
            (Suffix, Cli) => "-s/--suffix",
            (Suffix, Rest) => "\"collection_suffix\"",
            (Suffix, Guide) => "\"suffix\"",
            (Suffix, Sdk) => "suffix=",
            (Rename, Cli) => "-r/--rename",
            (Rename, Rest) => "\"collection_renames\"",
            (Rename, Guide) => "\"target_collection\" or \"renames\"",
            (Rename, Sdk) => "target_collection= or renames=",
            (Resume, Cli) => "--resume",
            (Resume, Rest | Guide) => "\"resume\": true",
            (Resume, Sdk) => "resume=True",
            (FormatBinlog, Cli) => "--format binlog",
            (FormatBinlog, Rest | Guide) => "\"format\": \"binlog\"",
            (FormatBinlog, Sdk) => "format=\"binlog\"",
            (FormatParquet, Cli) => "--format parquet",
            (FormatParquet, Rest | Guide) => "\"format\": \"parquet\"",
            (FormatParquet, Sdk) => "format=\"parquet\"",
            (AllowUnpersistedDeletes, Cli) => "--allow-unpersisted-deletes",
            (AllowUnpersistedDeletes, Rest | Guide) => "\"allow_unpersisted_deletes\": true",
            (AllowUnpersistedDeletes, Sdk) => "allow_unpersisted_deletes=True",
            (SkipUnsupported, Cli) => "--skip-unsupported",
            (SkipUnsupported, Rest) => "\"skipUnsupported\": true",
            (SkipUnsupported, Guide) => "\"skip_unsupported\": true",
            (SkipUnsupported, Sdk) => "skip_unsupported=True",
            (UseAutoIndex, Cli) => "--use_auto_index",
            (UseAutoIndex, Rest) => "\"useAutoIndex\": true",
            (UseAutoIndex, Guide) => "\"use_auto_index\": true",
            (UseAutoIndex, Sdk) => "use_auto_index=True",
            (BaseBackup, Cli) => "--base-backup",
            (BaseBackup, Rest | Guide) => "\"base_backup\"",
            (BaseBackup, Sdk) => "create_incremental_backup(base_backup=…)",
            (ImportModeInsert, Cli) => "--import-mode insert",
            (ImportModeInsert, Rest | Guide) => "\"import_mode\": \"insert\"",
            (ImportModeInsert, Sdk) => "import_mode=\"insert\"",
        }
    }
}

/// What the user can do, as text and [`Opt`]s that each front end renders
/// in its caller's words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remedy(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Opt(Opt),
}

impl Remedy {
    /// A remedy that starts with `text`.
    pub fn text(text: impl Into<String>) -> Remedy {
        Remedy(vec![Part::Text(text.into())])
    }

    /// Adds text.
    pub fn then(mut self, text: impl Into<String>) -> Remedy {
        self.0.push(Part::Text(text.into()));
        self
    }

    /// Adds an option.
    pub fn opt(mut self, opt: Opt) -> Remedy {
        self.0.push(Part::Opt(opt));
        self
    }

    pub fn render(&self, caller: Caller) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Opt(o) => o.spelled(caller),
            })
            .collect()
    }
}

impl fmt::Display for Error {
    /// One line: the message, then the context fields it does not already
    /// name. The alternate form (`{:#}`) also names the operation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            if let Some(op) = self.operation {
                write!(f, "{op}: ")?;
            }
        }
        f.write_str(&self.line(Caller::Cli))
    }
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            temporary: false,
            operation: None,
            context: Vec::new(),
            source: None,
            guidance: None,
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

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    pub fn remote(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Remote, message)
    }

    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The operation stopped because it was asked to.
    pub fn cancelled() -> Self {
        Self::new(
            ErrorKind::Cancelled,
            "cancelled: the operation was stopped and what it had written was removed",
        )
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

    /// Says what the user can do (e.g. resume what was left), after the
    /// message and its context.
    pub fn guidance(self, text: impl Into<String>) -> Self {
        self.remedy(Remedy::text(text))
    }

    /// Says what the user can do, naming options in the caller's words.
    pub fn remedy(mut self, remedy: Remedy) -> Self {
        self.guidance = Some(remedy);
        self
    }

    /// One line, as `caller` writes options: the message, the context
    /// fields it does not already name, then the remedy. `Display` is the
    /// command line's.
    pub fn line(&self, caller: Caller) -> String {
        let mut line = self.message.clone();
        let extra: Vec<String> = self
            .context
            .iter()
            .filter(|(_, v)| !self.message.contains(v.as_str()))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !extra.is_empty() {
            line.push_str(&format!(" ({})", extra.join(", ")));
        }
        if let Some(g) = &self.guidance {
            line.push_str(" — ");
            line.push_str(&g.render(caller));
        }
        line
    }

    /// Names the operation that failed, unless an inner step already did.
    pub fn during(mut self, operation: &'static str) -> Self {
        self.operation.get_or_insert(operation);
        self
    }

    /// Adds a context field (`collection`, `segment`, `key`, `backup`).
    pub fn at(mut self, field: &'static str, value: impl fmt::Display) -> Self {
        if !self.context.iter().any(|(k, _)| *k == field) {
            self.context.push((field, value.to_string()));
        }
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    pub fn operation(&self) -> Option<&'static str> {
        self.operation
    }

    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }

    /// The message alone, without the context fields.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Adds operation and context to the error of a `Result`.
pub trait ResultExt<T> {
    fn during(self, operation: &'static str) -> Result<T>;
    fn at(self, field: &'static str, value: impl fmt::Display) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn during(self, operation: &'static str) -> Result<T> {
        self.map_err(|e| e.during(operation))
    }
    fn at(self, field: &'static str, value: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.at(field, value))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_rendered_once_in_one_line() {
        let e = Error::remote("import of segment 7 failed")
            .at("segment", 7)
            .at("collection", "default.docs")
            .during("restore")
            .during("outer");
        assert_eq!(
            e.to_string(),
            "import of segment 7 failed (collection default.docs)"
        );
        assert_eq!(
            format!("{e:#}"),
            "restore: import of segment 7 failed (collection default.docs)"
        );
        assert_eq!(e.operation(), Some("restore"));
        assert_eq!(e.context().len(), 2);
        assert_eq!(ErrorKind::Corrupt.exit_code(), 9);
    }
}
