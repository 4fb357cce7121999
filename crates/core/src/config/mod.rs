//! Configuration: the Go tool's v1 `backup.yaml`, read unchanged, plus our
//! extensions under `backup:`; the user guide's `config.yaml` and the Go
//! tool's v2 file are read as written too (see [`dialect`]).
//!
//! Layers, later wins: built-in defaults < config file < environment
//! (credentials and endpoints, the Go tool's variable names) < `--set key=value`
//! < command flags (applied by the front ends on the typed [`Config`]).
//!
//! Every known key is listed once in [`KEYS`] with its type, environment
//! variables and whether it is a secret. That table drives value checking
//! (one line naming the key and the allowed values), unknown-key warnings,
//! environment overrides and the masked `config show` output.
//!
//! One file may mix dialects; two keys that name the same setting with
//! different values stop the load with one line naming both.

pub mod age;
mod dialect;
pub mod providers;
pub mod scrub;
pub mod settings;
pub mod strategy;
pub mod tuning;

pub use providers::{Provider, STORAGE_TYPES};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::error::{Error, Result};

/// A string that never shows itself in `Debug`, `Display` or serialized
/// output; read it with [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"****\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "****" })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    pub log: LogConfig,
    pub http: HttpConfig,
    pub milvus: MilvusConfig,
    pub minio: MinioConfig,
    pub backup: BackupConfig,
    /// The user guide's top-level `backup_strategy:` block as written in
    /// the file; parsed and checked by `crate::schedule::Strategy`.
    #[serde(skip)]
    pub backup_strategy: Option<Value>,
    /// Our keys the file spells otherwise (our key, the file's key), so
    /// that messages name them as the user wrote them
    /// ([`scrub::speak_as_the_file`]).
    #[serde(skip)]
    pub key_spellings: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogConfig {
    pub level: String,
    pub console: bool,
    pub file: LogFileConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogFileConfig {
    pub root_path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpConfig {
    pub simple_response: bool,
    /// Address the REST server binds to.
    pub address: String,
    /// Port the REST server listens on when neither `-p` nor `http.address`
    /// names one (the user guide's `http.port`).
    pub port: u16,
    /// Bearer token required on every route but `/healthz` when non-empty.
    pub auth_token: Secret,
    /// HTTPS for the REST server; plain HTTP when both files are empty.
    pub tls: HttpTlsConfig,
}

/// `http.tls`: the PEM files the REST server answers HTTPS with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpTlsConfig {
    /// The certificate chain, leaf first (PEM).
    pub cert_file: String,
    /// The private key of the leaf certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MilvusConfig {
    pub address: String,
    pub port: u16,
    pub authorization_enabled: bool,
    pub tls_mode: u8,
    pub user: String,
    pub password: Secret,
    pub ca_cert_path: String,
    pub server_name: String,
    pub mtls_cert_path: String,
    pub mtls_key_path: String,
    /// Seconds a single gRPC call may take.
    pub request_timeout: u64,
    /// Seconds to connect and hear the server's version before giving up.
    pub connect_timeout: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MinioConfig {
    pub storage_type: String,
    pub address: String,
    pub port: u16,
    pub region: String,
    #[serde(rename = "accessKeyID")]
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub token: Secret,
    #[serde(rename = "gcpCredentialJSON")]
    pub gcp_credential_json: String,
    #[serde(rename = "useSSL")]
    pub use_ssl: bool,
    #[serde(rename = "useIAM")]
    pub use_iam: bool,
    pub iam_endpoint: String,
    pub bucket_name: String,
    pub root_path: String,

    pub backup_storage_type: String,
    pub backup_address: String,
    pub backup_port: u16,
    pub backup_region: String,
    #[serde(rename = "backupAccessKeyID")]
    pub backup_access_key_id: String,
    pub backup_secret_access_key: Secret,
    pub backup_token: Secret,
    #[serde(rename = "backupGcpCredentialJSON")]
    pub backup_gcp_credential_json: String,
    #[serde(rename = "backupUseSSL")]
    pub backup_use_ssl: Option<bool>,
    #[serde(rename = "backupUseIAM")]
    pub backup_use_iam: Option<bool>,
    pub backup_iam_endpoint: String,
    pub backup_bucket_name: String,
    pub backup_root_path: String,
    pub cross_storage: bool,
    /// Set when the configuration names backup storage but nothing of
    /// Milvus's own (the user guide's `config.yaml`): `create` then makes
    /// logical backups by default.
    #[serde(skip)]
    pub no_milvus_storage: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackupConfig {
    pub max_segment_num: u32,
    pub parallelism: ParallelismConfig,
    pub keep_temp_files: bool,
    pub gc_pause: GcPauseConfig,
    pub compression: bool,
    pub compression_algorithm: String,
    pub compression_level: i32,
    pub encryption: EncryptionConfig,
    pub max_backup_num: u32,
    pub retention_days: u32,
    /// Bandwidth cap of copies in MB/s (10^6 bytes); 0: none.
    pub rate_limit: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ParallelismConfig {
    pub backup_collection: u32,
    pub copydata: u32,
    pub restore_collection: u32,
    pub import_job: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GcPauseConfig {
    pub enable: bool,
    pub seconds: u64,
    pub address: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EncryptionConfig {
    /// Path of a file holding an age identity (`AGE-SECRET-KEY-1...`).
    pub key_file: String,
    /// The identity itself; wins over `key_file`.
    pub key: Secret,
    /// A password that unlocks the backup storage's root key (see
    /// `crate::storage::root_key`); refused together with `key` or `key_file`.
    pub password: Secret,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            console: true,
            file: LogFileConfig::default(),
        }
    }
}

/// No log file unless one is configured (the Go tool writes
/// `logs/backup.log` by default; a CLI should not litter the current
/// folder).
impl Default for LogFileConfig {
    fn default() -> Self {
        LogFileConfig {
            root_path: String::new(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            simple_response: true,
            address: "0.0.0.0".into(),
            port: 8080,
            auth_token: Secret::default(),
            tls: HttpTlsConfig::default(),
        }
    }
}

impl Default for MilvusConfig {
    fn default() -> Self {
        MilvusConfig {
            address: "localhost".into(),
            port: 19530,
            authorization_enabled: false,
            tls_mode: 0,
            user: "root".into(),
            password: Secret::new("Milvus"),
            ca_cert_path: String::new(),
            server_name: String::new(),
            mtls_cert_path: String::new(),
            mtls_key_path: String::new(),
            request_timeout: 60,
            connect_timeout: 10,
        }
    }
}

impl Default for MinioConfig {
    fn default() -> Self {
        MinioConfig {
            storage_type: "minio".into(),
            address: "localhost".into(),
            port: 9000,
            region: String::new(),
            access_key_id: "minioadmin".into(),
            secret_access_key: Secret::new("minioadmin"),
            token: Secret::default(),
            gcp_credential_json: String::new(),
            use_ssl: false,
            use_iam: false,
            iam_endpoint: String::new(),
            bucket_name: "a-bucket".into(),
            root_path: "files".into(),
            backup_storage_type: String::new(),
            backup_address: String::new(),
            backup_port: 0,
            backup_region: String::new(),
            backup_access_key_id: "minioadmin".into(),
            backup_secret_access_key: Secret::new("minioadmin"),
            backup_token: Secret::default(),
            backup_gcp_credential_json: String::new(),
            backup_use_ssl: None,
            backup_use_iam: None,
            backup_iam_endpoint: String::new(),
            backup_bucket_name: "a-bucket".into(),
            backup_root_path: "backup".into(),
            cross_storage: false,
            no_milvus_storage: false,
        }
    }
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            max_segment_num: 1000,
            parallelism: ParallelismConfig::default(),
            keep_temp_files: false,
            gc_pause: GcPauseConfig::default(),
            compression: false,
            compression_algorithm: "zstd".into(),
            compression_level: 3,
            encryption: EncryptionConfig::default(),
            max_backup_num: 0,
            retention_days: 0,
            rate_limit: 0,
        }
    }
}

impl Default for ParallelismConfig {
    fn default() -> Self {
        ParallelismConfig {
            backup_collection: 4,
            copydata: 128,
            restore_collection: 2,
            import_job: 4,
        }
    }
}

impl Default for GcPauseConfig {
    fn default() -> Self {
        GcPauseConfig {
            enable: true,
            seconds: 7200,
            address: "http://localhost:9091".into(),
        }
    }
}

/// How a key's value is checked and converted.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Bool,
    /// An integer within the inclusive range.
    Int(i64, i64),
    /// One of the listed strings (compared case-insensitively).
    OneOf(&'static [&'static str]),
    /// One of the listed integers.
    IntOneOf(&'static [i64]),
}

struct Key {
    path: &'static str,
    kind: Kind,
    env: &'static [&'static str],
    secret: bool,
}

const fn key(path: &'static str, kind: Kind, env: &'static [&'static str]) -> Key {
    Key {
        path,
        kind,
        env,
        secret: false,
    }
}

const fn secret(path: &'static str, env: &'static [&'static str]) -> Key {
    Key {
        path,
        kind: Kind::Str,
        env,
        secret: true,
    }
}

const PORT: Kind = Kind::Int(1, 65535);
const OPT_PORT: Kind = Kind::Int(0, 65535);
const COUNT: Kind = Kind::Int(1, 100_000);
const STORAGE: Kind = Kind::OneOf(STORAGE_TYPES);

/// Whether `path` is a configuration key we read.
#[cfg(test)]
pub(crate) fn is_known_key(path: &str) -> bool {
    KEYS.iter().any(|k| k.path == path)
}

/// Every configuration key we read, with the Go tool's environment variables.
const KEYS: &[Key] = &[
    key(
        "log.level",
        Kind::OneOf(&["debug", "info", "warn", "error"]),
        &["LOG_LEVEL"],
    ),
    key("log.console", Kind::Bool, &[]),
    key("log.file.rootPath", Kind::Str, &[]),
    key("http.simpleResponse", Kind::Bool, &[]),
    key("http.address", Kind::Str, &["HTTP_ADDRESS"]),
    key("http.port", PORT, &[]),
    secret("http.authToken", &["MILVUS_BACKUP_AUTH_TOKEN"]),
    key(
        "http.tls.certFile",
        Kind::Str,
        &["MILVUS_BACKUP_TLS_CERT_FILE"],
    ),
    key(
        "http.tls.keyFile",
        Kind::Str,
        &["MILVUS_BACKUP_TLS_KEY_FILE"],
    ),
    key("milvus.address", Kind::Str, &["MILVUS_ADDRESS"]),
    key("milvus.port", PORT, &["MILVUS_PORT"]),
    key(
        "milvus.authorizationEnabled",
        Kind::Bool,
        &["MILVUS_AUTHORIZATION_ENABLED"],
    ),
    key(
        "milvus.tlsMode",
        Kind::IntOneOf(&[0, 1, 2]),
        &["MILVUS_TLS_MODE"],
    ),
    key("milvus.user", Kind::Str, &["MILVUS_USER"]),
    secret("milvus.password", &["MILVUS_PASSWORD"]),
    key("milvus.caCertPath", Kind::Str, &["MILVUS_CA_CERT_PATH"]),
    key("milvus.serverName", Kind::Str, &["MILVUS_SERVER_NAME"]),
    key("milvus.mtlsCertPath", Kind::Str, &["MILVUS_MTLS_CERT_PATH"]),
    key("milvus.mtlsKeyPath", Kind::Str, &["MILVUS_MTLS_KEY_PATH"]),
    key("milvus.requestTimeout", COUNT, &[]),
    key("milvus.connectTimeout", COUNT, &["MILVUS_CONNECT_TIMEOUT"]),
    key(
        "minio.storageType",
        STORAGE,
        &["MINIO_STORAGE_TYPE", "STORAGE_TYPE"],
    ),
    key("minio.address", Kind::Str, &["MINIO_ADDRESS"]),
    key("minio.port", PORT, &["MINIO_PORT"]),
    key("minio.region", Kind::Str, &["MINIO_REGION"]),
    key(
        "minio.accessKeyID",
        Kind::Str,
        &["MINIO_ACCESS_KEY", "MILVUS_STORAGE_AUTH_ACCESS_KEY_ID"],
    ),
    secret(
        "minio.secretAccessKey",
        &["MINIO_SECRET_KEY", "MILVUS_STORAGE_AUTH_SECRET_ACCESS_KEY"],
    ),
    secret(
        "minio.token",
        &["MINIO_TOKEN", "MILVUS_STORAGE_AUTH_SESSION_TOKEN"],
    ),
    key("minio.gcpCredentialJSON", Kind::Str, &["GCP_KEY_JSON"]),
    key("minio.useSSL", Kind::Bool, &["MINIO_USE_SSL"]),
    key("minio.useIAM", Kind::Bool, &["MINIO_USE_IAM"]),
    key("minio.iamEndpoint", Kind::Str, &["MINIO_IAM_ENDPOINT"]),
    key("minio.bucketName", Kind::Str, &["MINIO_BUCKET_NAME"]),
    key("minio.rootPath", Kind::Str, &["MINIO_ROOT_PATH"]),
    key(
        "minio.backupStorageType",
        Kind::OneOf(providers::STORAGE_TYPES_OR_EMPTY),
        &["MINIO_BACKUP_STORAGE_TYPE", "BACKUP_STORAGE_TYPE"],
    ),
    key("minio.backupAddress", Kind::Str, &["MINIO_BACKUP_ADDRESS"]),
    key("minio.backupPort", OPT_PORT, &["MINIO_BACKUP_PORT"]),
    key("minio.backupRegion", Kind::Str, &["MINIO_BACKUP_REGION"]),
    key(
        "minio.backupAccessKeyID",
        Kind::Str,
        &[
            "MINIO_BACKUP_ACCESS_KEY",
            "BACKUP_STORAGE_AUTH_ACCESS_KEY_ID",
        ],
    ),
    secret(
        "minio.backupSecretAccessKey",
        &[
            "MINIO_BACKUP_SECRET_KEY",
            "BACKUP_STORAGE_AUTH_SECRET_ACCESS_KEY",
        ],
    ),
    secret(
        "minio.backupToken",
        &["MINIO_BACKUP_TOKEN", "BACKUP_STORAGE_AUTH_SESSION_TOKEN"],
    ),
    key(
        "minio.backupGcpCredentialJSON",
        Kind::Str,
        &["BACKUP_GCP_KEY_JSON"],
    ),
    key("minio.backupUseSSL", Kind::Bool, &["MINIO_BACKUP_USE_SSL"]),
    key("minio.backupUseIAM", Kind::Bool, &["MINIO_BACKUP_USE_IAM"]),
    key(
        "minio.backupIamEndpoint",
        Kind::Str,
        &["MINIO_BACKUP_IAM_ENDPOINT"],
    ),
    key(
        "minio.backupBucketName",
        Kind::Str,
        &["MINIO_BACKUP_BUCKET_NAME"],
    ),
    key(
        "minio.backupRootPath",
        Kind::Str,
        &["MINIO_BACKUP_ROOT_PATH"],
    ),
    key("minio.crossStorage", Kind::Bool, &["MINIO_CROSS_STORAGE"]),
    key("backup.maxSegmentNum", COUNT, &[]),
    key(
        "backup.parallelism.backupCollection",
        COUNT,
        &["BACKUP_PARALLELISM_BACKUP_COLLECTION"],
    ),
    key(
        "backup.parallelism.copydata",
        COUNT,
        &["BACKUP_PARALLELISM_COPYDATA"],
    ),
    key(
        "backup.parallelism.restoreCollection",
        COUNT,
        &["BACKUP_PARALLELISM_RESTORE_COLLECTION"],
    ),
    key(
        "backup.parallelism.importJob",
        COUNT,
        &["BACKUP_PARALLELISM_IMPORT_JOB"],
    ),
    key(
        "backup.rateLimit",
        Kind::Int(0, 1_000_000),
        &["BACKUP_RATE_LIMIT"],
    ),
    key(
        "backup.keepTempFiles",
        Kind::Bool,
        &["BACKUP_KEEP_TEMP_FILES"],
    ),
    key(
        "backup.gcPause.enable",
        Kind::Bool,
        &["BACKUP_GC_PAUSE_ENABLE"],
    ),
    key(
        "backup.gcPause.seconds",
        Kind::Int(1, 7 * 24 * 3600),
        &["BACKUP_GC_PAUSE_SECONDS"],
    ),
    key(
        "backup.gcPause.address",
        Kind::Str,
        &["BACKUP_GC_PAUSE_ADDRESS"],
    ),
    key("backup.compression", Kind::Bool, &["BACKUP_COMPRESSION"]),
    key(
        "backup.compressionAlgorithm",
        Kind::OneOf(&["zstd", "gzip", "none"]),
        &["BACKUP_COMPRESSION_ALGORITHM"],
    ),
    key(
        "backup.compressionLevel",
        Kind::Int(-7, 22),
        &["BACKUP_COMPRESSION_LEVEL"],
    ),
    key(
        "backup.encryption.keyFile",
        Kind::Str,
        &["BACKUP_ENCRYPTION_KEY_FILE"],
    ),
    secret("backup.encryption.key", &["MILVUS_BACKUP_ENCRYPTION_KEY"]),
    secret("backup.encryption.password", &["MILVUS_BACKUP_PASSWORD"]),
    key(
        "backup.maxBackupNum",
        Kind::Int(0, 1_000_000),
        &["BACKUP_MAX_BACKUP_NUM"],
    ),
    key(
        "backup.retentionDays",
        Kind::Int(0, 100_000),
        &["BACKUP_RETENTION_DAYS"],
    ),
];

/// Keys of the Go tool's file that we accept but do not use; no warning for them.
const IGNORED_KEYS: &[&str] = &[
    "log.format",
    "log.file.maxSize",
    "log.file.maxDays",
    "log.file.maxBackups",
    "log.file.filename",
    "http.enabled",
    "http.debugMode",
    "milvus.rpcChannelName",
    "minio.cloudProvider",
    "minio.multipartCopyThresholdMiB",
    "backup.parallelism.backupSegment",
    "cloud.address",
    "cloud.apikey",
];

/// Where the CLI looks for a config file when `--config` is not given, in
/// order: ours and the Go tool's, the user guide's, the guide's Docker path.
pub const SEARCH_ORDER: &[&str] = &[
    "configs/backup.yaml",
    "config.yaml",
    "/etc/milvus-backup/config.yaml",
];

/// The first of `candidates` that exists (see [`SEARCH_ORDER`]); `None`
/// means built-in defaults.
pub fn find_config_file<P: AsRef<Path>>(candidates: &[P]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(|p| p.as_ref())
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
}

/// Where a configuration was read from, plus the warnings met on the way.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The config file that was read; `None` when built-in defaults were used.
    pub file: Option<PathBuf>,
    pub warnings: Vec<String>,
    strategy: Option<Value>,
    spellings: Vec<(&'static str, String)>,
}

/// Whether the loaded settings name backup storage (`minio.backup*`) and
/// nothing of Milvus's own storage (the other `minio.*` keys).
fn names_only_backup_storage(tree: &Value) -> bool {
    let Some(minio) = tree.get("minio").and_then(Value::as_mapping) else {
        return false;
    };
    let keys: Vec<&str> = minio.keys().filter_map(Value::as_str).collect();
    let backup = |k: &&str| k.starts_with("backup") || *k == "crossStorage";
    keys.iter().any(backup) && !keys.iter().any(|k| !backup(k))
}

/// Inputs to [`Config::load`].
#[derive(Debug, Default)]
pub struct LoadOptions<'a> {
    /// The config file; `None` or a missing default file means built-in defaults.
    pub file: Option<&'a Path>,
    /// Whether `file` was named by the user (a missing named file is an error).
    pub file_required: bool,
    /// `key=value` pairs from `--set`.
    pub sets: &'a [String],
    /// Environment variables to consult (normally `std::env::vars()`).
    pub env: BTreeMap<String, String>,
}

impl Config {
    /// Builds the effective configuration from all layers.
    pub fn load(opts: &LoadOptions<'_>) -> Result<(Config, LoadReport)> {
        let mut report = LoadReport::default();
        // Only keys set by some layer go in; serde's defaults fill the rest.
        let mut tree = Value::Mapping(Mapping::new());

        if let Some(path) = opts.file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let file: Value = serde_yaml::from_str(&text).map_err(|e| {
                        Error::invalid_input(format!(
                            "config file {} is not valid YAML: {e}",
                            path.display()
                        ))
                    })?;
                    let mut file = normalize_legacy(file);
                    let strategy = file
                        .as_mapping_mut()
                        .and_then(|m| m.remove("backup_strategy"));
                    report.strategy = strategy;
                    let version = dialect::take_version(&mut file)?;
                    let mut leaves = Vec::new();
                    flatten(&file, "", &mut leaves);
                    let routed = dialect::route(leaves, version)?;
                    for path_key in routed.unknown {
                        report.warnings.push(format!(
                            "unknown config key `{path_key}` in {} is ignored",
                            path.display()
                        ));
                    }
                    for path_key in routed.unused {
                        report.warnings.push(format!(
                            "config key `{path_key}` in {} has no counterpart in this tool and is ignored",
                            path.display()
                        ));
                    }
                    for a in &routed.assignments {
                        if !a.source.eq_ignore_ascii_case(a.target)
                            && !a.source.contains(' ')
                            && !report.spellings.iter().any(|(t, _)| *t == a.target)
                        {
                            report.spellings.push((a.target, a.source.clone()));
                        }
                    }
                    for (target, v) in apply_file_assignments(routed.assignments)? {
                        set_path(&mut tree, target, v);
                    }
                    report.file = Some(path.to_path_buf());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !opts.file_required => {}
                Err(e) => {
                    return Err(Error::invalid_input(format!(
                        "cannot read config file {}: {e} — pass an existing file with --config",
                        path.display()
                    )))
                }
            }
        }

        for k in KEYS {
            for var in k.env {
                let Some(raw) = opts.env.get(*var) else {
                    continue;
                };
                if raw.is_empty() {
                    continue;
                }
                if matches!(k.kind, Kind::Int(..)) && raw.contains("://") {
                    // Kubernetes injects MILVUS_PORT=tcp://10.0.0.1:19530 for a
                    // service named `milvus`; that is not a port number.
                    report.warnings.push(format!(
                        "ignoring environment variable {var}={raw}: it looks like a Kubernetes service link, not a port; set {} in the config file instead",
                        k.path
                    ));
                    continue;
                }
                let v = check_value(
                    k,
                    &Value::String(raw.clone()),
                    &format!("environment variable {var}"),
                )?;
                set_path(&mut tree, k.path, v);
            }
        }

        for set in opts.sets {
            let (path_key, raw) = set.split_once('=').ok_or_else(|| {
                Error::invalid_input(format!(
                    "--set `{set}` must have the form key=value, e.g. --set milvus.port=19530"
                ))
            })?;
            let path_key = path_key.trim();
            let k = find_key(path_key)
                .or_else(|| dialect::plain_alias(path_key).and_then(find_key))
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "--set: unknown config key `{path_key}` — see `milvus-backup config show` for the keys"
                    ))
                })?;
            let v = check_value(k, &Value::String(raw.to_string()), "--set")?;
            set_path(&mut tree, k.path, v);
        }

        let no_milvus_storage = names_only_backup_storage(&tree);
        let mut config: Config = serde_yaml::from_value(tree)
            .map_err(|e| Error::invalid_input(format!("configuration: {e}")))?;
        config.backup_strategy = report.strategy.take();
        config.key_spellings = std::mem::take(&mut report.spellings);
        config.minio.no_milvus_storage = no_milvus_storage;
        Ok((config, report))
    }

    /// The effective configuration as YAML with every secret masked.
    pub fn to_masked_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }

    /// The effective configuration as the Go tool's v2 file (its
    /// `configVersion: v2` spellings; ours that v2 lacks stay as in v1),
    /// with every secret masked.
    pub fn to_masked_v2_yaml(&self) -> String {
        let v1 = serde_yaml::to_value(self).unwrap_or_default();
        serde_yaml::to_string(&dialect::to_v2(&v1)).unwrap_or_default()
    }

    /// The effective configuration as JSON with every secret masked.
    pub fn to_masked_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Every secret value, so log and error text can be scrubbed of them.
    pub fn secrets(&self) -> Vec<&str> {
        [
            self.http.auth_token.expose(),
            self.milvus.password.expose(),
            self.minio.secret_access_key.expose(),
            self.minio.token.expose(),
            self.minio.backup_secret_access_key.expose(),
            self.minio.backup_token.expose(),
            self.backup.encryption.key.expose(),
            self.backup.encryption.password.expose(),
        ]
        .into_iter()
        // The built-in defaults are public; scrubbing them would mangle
        // ordinary words ("Milvus") in messages.
        .filter(|s| s.len() >= 4 && !["Milvus", "minioadmin"].contains(s))
        .collect()
    }
}

/// Type-checks each file value against our key and refuses two file keys
/// that set one of ours to different values.
fn apply_file_assignments(
    assignments: Vec<dialect::Assignment>,
) -> Result<Vec<(&'static str, Value)>> {
    let mut seen: Vec<(&'static str, String, Value)> = Vec::new();
    for a in assignments {
        let k = find_key(a.target).expect("dialect routes only to known keys");
        let origin = if a.source.eq_ignore_ascii_case(k.path) {
            "config file".to_string()
        } else {
            format!("config file key `{}`", a.source)
        };
        let v = check_value(k, &a.value, &origin)?;
        match seen.iter().find(|(t, ..)| *t == k.path) {
            Some((_, other, before)) if *before != v => {
                let show = |v: &Value| {
                    if k.secret {
                        "****".to_string()
                    } else {
                        scalar_text(v).unwrap_or_default()
                    }
                };
                return Err(Error::invalid_input(format!(
                    "{other} (`{}`) and {} (`{}`) set the same thing differently — keep one",
                    show(before),
                    a.source,
                    show(&v)
                )));
            }
            Some(_) => {}
            None => seen.push((k.path, a.source, v)),
        }
    }
    Ok(seen.into_iter().map(|(t, _, v)| (t, v)).collect())
}

fn find_key(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path.eq_ignore_ascii_case(path))
}

fn is_ignored(path: &str) -> bool {
    IGNORED_KEYS.iter().any(|k| k.eq_ignore_ascii_case(path))
}

/// The Go tool's older files spell the provider `minio.cloudProvider`.
fn normalize_legacy(mut file: Value) -> Value {
    if let Some(minio) = file.get_mut("minio").and_then(Value::as_mapping_mut) {
        let has_type = minio.contains_key("storageType");
        if !has_type {
            if let Some(v) = minio.get("cloudProvider").cloned() {
                minio.insert(Value::String("storageType".into()), v);
            }
        }
    }
    file
}

/// Collects `(dotted.path, value)` for every leaf of a YAML tree.
fn flatten(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                let name = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                let path = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}.{name}")
                };
                // A mapping that is itself a known leaf cannot occur; recurse.
                flatten(child, &path, out);
            }
        }
        _ if prefix.is_empty() => {}
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn set_path(tree: &mut Value, path: &str, value: Value) {
    let mut node = tree;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        let map = node.as_mapping_mut().expect("mapping");
        let key = Value::String((*part).to_string());
        if i == parts.len() - 1 {
            map.insert(key, value);
            return;
        }
        node = map
            .entry(key)
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Checks one value against its key's kind and returns it in typed YAML form.
fn check_value(k: &Key, v: &Value, origin: &str) -> Result<Value> {
    let shown = |text: &str| {
        if k.secret {
            "****".to_string()
        } else {
            format!("`{text}`")
        }
    };
    let text = scalar_text(v).ok_or_else(|| {
        Error::invalid_input(format!(
            "config key `{}` ({origin}) must be a single value, not a list or a map",
            k.path
        ))
    })?;
    let text = text.trim();
    let bad = |allowed: String| {
        Error::invalid_input(format!(
            "config key `{}` ({origin}): {} is not valid — allowed: {allowed}",
            k.path,
            shown(text)
        ))
    };
    match k.kind {
        Kind::Str => Ok(Value::String(text.to_string())),
        Kind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err(bad("true or false".into())),
        },
        Kind::Int(min, max) => match text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Value::Number(n.into())),
            _ => Err(bad(format!("a whole number from {min} to {max}"))),
        },
        Kind::IntOneOf(allowed) => match text.parse::<i64>() {
            Ok(n) if allowed.contains(&n) => Ok(Value::Number(n.into())),
            _ => Err(bad(allowed
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", "))),
        },
        Kind::OneOf(allowed) => {
            let lower = text.to_ascii_lowercase();
            if allowed.contains(&lower.as_str()) {
                Ok(Value::String(lower))
            } else {
                Err(bad(allowed
                    .iter()
                    .filter(|a| !a.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const V1_EXAMPLE: &str = r#"
log: { level: info, console: true, file: { rootPath: "logs/backup.log" } }
http: { simpleResponse: true }
milvus:
  address: localhost
  port: 19530
  authorizationEnabled: false
  tlsMode: 0            # 0 off, 1 one-way, 2 mutual
  user: "root"
  password: "Milvus"
minio:
  storageType: "minio"  # local, minio, s3, aws, gcp, ali|aliyun, azure, tc|tencent
  address: localhost
  port: 9000
  accessKeyID: minioadmin
  secretAccessKey: minioadmin
  useSSL: false
  useIAM: false
  iamEndpoint: ""
  bucketName: "a-bucket"   # Milvus's bucket
  rootPath: "files"        # Milvus's root path (a directory for storageType local)
  backupStorageType: ""    # defaults to storageType
  backupAddress: ""        # defaults to address … likewise backupPort, backupUseSSL
  backupAccessKeyID: minioadmin
  backupSecretAccessKey: minioadmin
  backupBucketName: "a-bucket"
  backupRootPath: "backup"
  crossStorage: false      # true when Milvus storage and backup storage are different services
backup:
  maxSegmentNum: 1000
  parallelism: { backupCollection: 4, copydata: 128, restoreCollection: 2 }
  keepTempFiles: false
  gcPause: { enable: true, seconds: 7200, address: http://localhost:9091 }
"#;

    fn load_str(yaml: &str, env: &[(&str, &str)], sets: &[&str]) -> Result<(Config, LoadReport)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.yaml");
        std::fs::write(&path, yaml).unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Config::load(&LoadOptions {
            file: Some(&path),
            file_required: true,
            sets: &sets,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    #[test]
    fn v1_example_parses_to_expected_values() {
        let (c, report) = load_str(V1_EXAMPLE, &[], &[]).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(c.milvus.address, "localhost");
        assert_eq!(c.milvus.port, 19530);
        assert!(!c.milvus.authorization_enabled);
        assert_eq!(c.milvus.tls_mode, 0);
        assert_eq!(c.milvus.user, "root");
        assert_eq!(c.milvus.password.expose(), "Milvus");
        assert_eq!(c.minio.storage_type, "minio");
        assert_eq!(c.minio.port, 9000);
        assert_eq!(c.minio.access_key_id, "minioadmin");
        assert_eq!(c.minio.secret_access_key.expose(), "minioadmin");
        assert_eq!(c.minio.bucket_name, "a-bucket");
        assert_eq!(c.minio.root_path, "files");
        assert_eq!(c.minio.backup_storage_type, "");
        assert_eq!(c.minio.backup_bucket_name, "a-bucket");
        assert_eq!(c.minio.backup_root_path, "backup");
        assert!(!c.minio.cross_storage);
        assert_eq!(c.backup.max_segment_num, 1000);
        assert_eq!(c.backup.parallelism.backup_collection, 4);
        assert_eq!(c.backup.parallelism.copydata, 128);
        assert_eq!(c.backup.parallelism.restore_collection, 2);
        assert!(c.backup.gc_pause.enable);
        assert_eq!(c.backup.gc_pause.seconds, 7200);
        assert_eq!(c.backup.gc_pause.address, "http://localhost:9091");
        assert_eq!(c.log.level, "info");
    }

    #[test]
    fn defaults_apply_without_a_file() {
        let (c, report) = Config::load(&LoadOptions {
            file: Some(Path::new("/nonexistent/backup.yaml")),
            ..Default::default()
        })
        .unwrap();
        assert!(report.file.is_none());
        assert_eq!(c.milvus.port, 19530);
        assert_eq!(c.minio.backup_root_path, "backup");
    }

    #[test]
    fn a_named_missing_file_is_an_error() {
        let err = Config::load(&LoadOptions {
            file: Some(Path::new("/nonexistent/backup.yaml")),
            file_required: true,
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/backup.yaml"),
            "{err}"
        );
    }

    #[test]
    fn precedence_is_default_file_env_set() {
        let yaml =
            "milvus: { address: from-file, port: 1111 }\nminio: { bucketName: file-bucket }\n";
        // file beats default
        let (c, _) = load_str(yaml, &[], &[]).unwrap();
        assert_eq!(c.milvus.address, "from-file");
        assert_eq!(c.milvus.user, "root"); // default kept
                                           // env beats file
        let (c, _) = load_str(
            yaml,
            &[("MILVUS_ADDRESS", "from-env"), ("MILVUS_PORT", "2222")],
            &[],
        )
        .unwrap();
        assert_eq!(c.milvus.address, "from-env");
        assert_eq!(c.milvus.port, 2222);
        assert_eq!(c.minio.bucket_name, "file-bucket");
        // --set beats env
        let (c, _) = load_str(
            yaml,
            &[("MILVUS_ADDRESS", "from-env")],
            &["milvus.address=from-set", "minio.bucketName=set-bucket"],
        )
        .unwrap();
        assert_eq!(c.milvus.address, "from-set");
        assert_eq!(c.minio.bucket_name, "set-bucket");
    }

    #[test]
    fn kubernetes_service_link_port_is_ignored_with_a_warning() {
        let (c, report) = load_str(
            "milvus: { port: 19531 }",
            &[("MILVUS_PORT", "tcp://10.0.0.7:19530")],
            &[],
        )
        .unwrap();
        assert_eq!(c.milvus.port, 19531);
        assert!(
            report.warnings.iter().any(|w| w.contains("MILVUS_PORT")),
            "{:?}",
            report.warnings
        );
    }

    #[test]
    fn unknown_keys_warn_and_do_not_fail() {
        let (_, report) = load_str(
            "milvus: { port: 19530, colour: blue }\nextra: 1\n",
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("milvus.colour"));
    }

    #[rstest]
    #[case("milvus: { port: abc }", "milvus.port", "1 to 65535")]
    #[case("milvus: { tlsMode: 7 }", "milvus.tlsMode", "0, 1, 2")]
    #[case("minio: { storageType: ftp }", "minio.storageType", "local, minio, s3")]
    #[case("minio: { useSSL: maybe }", "minio.useSSL", "true or false")]
    #[case(
        "backup: { parallelism: { copydata: 0 } }",
        "backup.parallelism.copydata",
        "1 to"
    )]
    fn invalid_values_name_the_key_and_allowed_values(
        #[case] yaml: &str,
        #[case] key: &str,
        #[case] allowed: &str,
    ) {
        let err = load_str(yaml, &[], &[]).unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
        assert!(err.contains(allowed), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn invalid_set_is_rejected() {
        let err = load_str("", &[], &["milvus.port"]).unwrap_err().to_string();
        assert!(err.contains("key=value"), "{err}");
        let err = load_str("", &[], &["milvus.nope=1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("milvus.nope"), "{err}");
    }

    #[test]
    fn secrets_never_show() {
        let yaml = "milvus: { password: TopSecret1 }\nminio: { secretAccessKey: S3cretKey, backupSecretAccessKey: B4ckupKey, token: T0ken123 }\n";
        let (c, _) = load_str(yaml, &[("MILVUS_BACKUP_AUTH_TOKEN", "Bearer99")], &[]).unwrap();
        let shown = format!("{}{}{:?}", c.to_masked_yaml(), c.to_masked_json(), c);
        for s in [
            "TopSecret1",
            "S3cretKey",
            "B4ckupKey",
            "T0ken123",
            "Bearer99",
        ] {
            assert!(!shown.contains(s), "{s} leaked");
        }
        assert_eq!(c.milvus.password.expose(), "TopSecret1");
        assert_eq!(c.secrets().len(), 5);
        assert!(
            Config::default().secrets().is_empty(),
            "public defaults are not scrubbed"
        );
        // A bad secret value is not echoed in the error either.
        let err = load_str("milvus: { password: [a, b] }", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("milvus.password"), "{err}");
    }

    #[test]
    fn legacy_cloud_provider_sets_storage_type() {
        let (c, _) = load_str("minio: { cloudProvider: aws }", &[], &[]).unwrap();
        assert_eq!(c.minio.storage_type, "aws");
    }

    /// The user guide's `config.yaml`, verbatim (seed 000, "配置文件").
    const GUIDE_EXAMPLE: &str = r#"# Milvus è¿æ¥é…ç½®
milvus:
  address: localhost
  port: 19530
  username: ""
  password: ""
  authorizationEnabled: false

# å¤‡ä»½å˜å‚¨é…ç½®
storage:
  # å˜å‚¨ç±»å‹ï¼šlocal, minio, s3, oss, cos
  storageType: local

  # æœ¬åœ°å˜å‚¨é…ç½®
  local:
    path: /backup

  # MinIO/S3 é…ç½®
  minio:
    address: localhost
    port: 9000
    accessKeyID: minioadmin
    secretAccessKey: minioadmin
    useSSL: false
    bucketName: milvus-backup
    rootPath: backup

  # é˜¿é‡Œäº‘ OSS é…ç½®
  oss:
    endpoint: oss-cn-hangzhou.aliyuncs.com
    accessKeyID: your-access-key
    accessKeySecret: your-access-secret
    bucketName: milvus-backup
    rootPath: backup

# å¤‡ä»½é…ç½®
backup:
  # æœ€å¤§å¤‡ä»½æ•°é‡
  maxBackupNum: 10

  # å¤‡ä»½ä¿ç•™å¤©æ•°
  retentionDays: 30

  # æ˜¯å¦å‹ç¼©
  compression: true

  # å‹ç¼©ç®—æ³•ï¼šgzip, zstd
  compressionAlgorithm: zstd

  # å‹ç¼©çº§åˆ«ï¼š1-9
  compressionLevel: 3

# HTTP æœåŠ¡é…ç½®
http:
  # ç›‘å¬åœ°å€
  address: 0.0.0.0

  # ç›‘å¬ç«¯å£
  port: 8080

# æ—¥å¿—é…ç½®
log:
  # æ—¥å¿—çº§åˆ«ï¼šdebug, info, warn, error
  level: info

  # æ—¥å¿—æ–‡ä»¶è·¯å¾„
  file: /var/log/milvus-backup.log
"#;

    /// The Go tool's v2 `configs/backup.yaml` structure (its head, f81df44),
    /// with values changed so each mapping shows.
    const V2_EXAMPLE: &str = r#"
configVersion: v2
log:
  level: debug
  console: true
  file:
    path: "logs/v2.log"
server:
  debugMode: false
  swaggerBasePath: ""
milvus:
  user: "admin"
  password: "V2Passw0rd"
  grpc:
    address: milvus.example
    port: 19531
    tlsMode: server
    caCertPath: "/ca.pem"
    serverName: "milvus.example"
    mtlsCertPath: ""
    mtlsKeyPath: ""
  rest:
    endpoint: ""
  management:
    endpoint: http://milvus.example:9091
  replicate:
    rpcChannelName: "by-dev-replicate-msg"
  etcd:
    endpoints:
      - 127.0.0.1:2379
    rootPath: "by-dev"
  storage:
    provider: "aws"
    address: s3.example
    port: 443
    region: "eu-west-1"
    useSSL: true
    bucketName: "milvus-bucket"
    rootPath: "files"
    auth:
      type: static
      accessKeyID: AKIAMILVUS
      secretAccessKey: MilvusS3cret
backup:
  storage:
    provider: "minio"
    address: backup.example
    port: 9000
    region: ""
    useSSL: false
    rootPath: "backups"
  concurrency:
    collections: 6
    segments: 1024
  pauseGC: false
restore:
  concurrency:
    collections: 3
    importJobs: 768
  maxSegmentsPerImportJob: 256
  keepTempFiles: true
transfer:
  mode: streaming
  concurrency: 64
  multipartCopyThresholdMiB: 500
zillizCloud:
  endpoint: https://api.cloud.zilliz.com
  apiKey: <your-api-key>
"#;

    #[test]
    fn v2_form_reads_back_to_the_same_settings() {
        for file in [V2_EXAMPLE, GUIDE_EXAMPLE, ""] {
            let (c, _) = load_str(file, &[], &[]).unwrap();
            let v2 = c.to_masked_v2_yaml();
            assert!(v2.starts_with("configVersion: v2"), "{v2}");
            assert!(
                !v2.contains("V2Passw0rd") && !v2.contains("MilvusS3cret"),
                "{v2}"
            );
            let (back, report) = load_str(&v2, &[], &[]).unwrap();
            assert!(report.warnings.is_empty(), "{:?}\n{v2}", report.warnings);
            assert_eq!(back.to_masked_json(), c.to_masked_json(), "{v2}");
        }
        let (c, _) = load_str(V2_EXAMPLE, &[], &[]).unwrap();
        let v2: serde_yaml::Value = serde_yaml::from_str(&c.to_masked_v2_yaml()).unwrap();
        assert_eq!(v2["milvus"]["grpc"]["tlsMode"], "server");
        assert_eq!(v2["milvus"]["storage"]["bucketName"], "milvus-bucket");
        assert_eq!(v2["transfer"]["mode"], "streaming");
        assert_eq!(v2["restore"]["concurrency"]["collections"], 3);
    }

    #[test]
    fn collections_at_once_has_a_plain_name_too() {
        let yaml = "backup:\n  parallelism:\n    collections: 7\n";
        let (c, report) = load_str(yaml, &[], &[]).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(c.backup.parallelism.backup_collection, 7);
        let (c, _) = load_str("", &[], &["backup.parallelism.collections=5"]).unwrap();
        assert_eq!(c.backup.parallelism.backup_collection, 5);
        let (c, _) = load_str("", &[], &["restore.concurrency.collections=3"]).unwrap();
        assert_eq!(c.backup.parallelism.restore_collection, 3);
        // The v2 form keeps the Go tool's own names, not the plain one.
        let (c, _) = load_str("", &[], &["backup.parallelism.collections=5"]).unwrap();
        let v2: serde_yaml::Value = serde_yaml::from_str(&c.to_masked_v2_yaml()).unwrap();
        assert_eq!(v2["backup"]["concurrency"]["collections"], 5);
        assert!(v2["backup"].get("parallelism").is_none(), "{v2:?}");
    }

    #[test]
    fn guide_example_loads_as_written() {
        let (c, report) = load_str(GUIDE_EXAMPLE, &[], &[]).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(c.milvus.address, "localhost");
        assert_eq!(c.milvus.port, 19530);
        assert_eq!(c.milvus.user, "");
        assert_eq!(c.milvus.password.expose(), "");
        assert!(!c.milvus.authorization_enabled);
        // storageType local: the local block is backup storage; the minio
        // and oss blocks are alternatives the guide documents.
        assert_eq!(c.minio.backup_storage_type, "local");
        assert_eq!(c.minio.backup_root_path, "/backup");
        assert_eq!(c.minio.backup_bucket_name, "a-bucket");
        assert_eq!(c.minio.storage_type, "minio", "Milvus storage untouched");
        assert_eq!(c.backup.max_backup_num, 10);
        assert_eq!(c.backup.retention_days, 30);
        assert!(c.backup.compression);
        assert_eq!(c.backup.compression_algorithm, "zstd");
        assert_eq!(c.backup.compression_level, 3);
        assert_eq!(c.http.address, "0.0.0.0");
        assert_eq!(c.http.port, 8080);
        assert_eq!(c.log.level, "info");
        assert_eq!(c.log.file.root_path, "/var/log/milvus-backup.log");
    }

    #[rstest]
    #[case::minio("minio", "minio", "localhost", "milvus-backup", "backup", "minioadmin")]
    #[case::s3_reads_the_minio_block(
        "s3",
        "s3",
        "localhost",
        "milvus-backup",
        "backup",
        "minioadmin"
    )]
    #[case::oss(
        "oss",
        "ali",
        "https://oss-cn-hangzhou.aliyuncs.com",
        "milvus-backup",
        "backup",
        "your-access-secret"
    )]
    fn guide_storage_type_selects_its_block(
        #[case] storage_type: &str,
        #[case] ours: &str,
        #[case] address: &str,
        #[case] bucket: &str,
        #[case] root: &str,
        #[case] secret: &str,
    ) {
        let yaml = GUIDE_EXAMPLE.replace(
            "storageType: local",
            &format!("storageType: {storage_type}"),
        );
        let (c, report) = load_str(&yaml, &[], &[]).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(c.minio.backup_storage_type, ours);
        assert_eq!(c.minio.backup_address, address);
        assert_eq!(c.minio.backup_bucket_name, bucket);
        assert_eq!(c.minio.backup_root_path, root);
        assert_eq!(c.minio.backup_secret_access_key.expose(), secret);
    }

    #[rstest]
    #[case::only_block_gives_the_type(
        "storage: { cos: { endpoint: cos.ap-guangzhou.myqcloud.com, bucketName: b1 } }",
        Some(("tc", "b1"))
    )]
    #[case::cos_spelled_out(
        "storage: { storageType: COS, cos: { bucketName: b2 } }",
        Some(("tc", "b2"))
    )]
    #[case::several_blocks_need_a_type(
        "storage: { minio: { bucketName: a }, oss: { bucketName: b } }",
        None
    )]
    fn guide_storage_type_inference(#[case] yaml: &str, #[case] want: Option<(&str, &str)>) {
        match (load_str(yaml, &[], &[]), want) {
            (Ok((c, _)), Some((t, bucket))) => {
                assert_eq!(c.minio.backup_storage_type, t);
                assert_eq!(c.minio.backup_bucket_name, bucket);
            }
            (Err(e), None) => {
                let e = e.to_string();
                assert!(e.contains("storage.storageType"), "{e}");
                assert!(!e.contains('\n'), "{e}");
            }
            (got, want) => panic!("{got:?} vs {want:?}"),
        }
    }

    #[test]
    fn v2_file_loads_with_the_same_meaning() {
        let (c, report) = load_str(V2_EXAMPLE, &[], &[]).unwrap();
        // maxSegmentsPerImportJob has no counterpart here; nothing else warns.
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("restore.maxSegmentsPerImportJob"));
        assert_eq!(c.log.level, "debug");
        assert_eq!(c.log.file.root_path, "logs/v2.log");
        assert_eq!(c.milvus.user, "admin");
        assert_eq!(c.milvus.password.expose(), "V2Passw0rd");
        assert_eq!(c.milvus.address, "milvus.example");
        assert_eq!(c.milvus.port, 19531);
        assert_eq!(c.milvus.tls_mode, 1);
        assert_eq!(c.milvus.ca_cert_path, "/ca.pem");
        assert_eq!(c.milvus.server_name, "milvus.example");
        assert_eq!(c.backup.gc_pause.address, "http://milvus.example:9091");
        assert!(!c.backup.gc_pause.enable);
        assert_eq!(c.minio.storage_type, "aws");
        assert_eq!(c.minio.address, "s3.example");
        assert_eq!(c.minio.port, 443);
        assert_eq!(c.minio.region, "eu-west-1");
        assert!(c.minio.use_ssl);
        assert_eq!(c.minio.bucket_name, "milvus-bucket");
        assert_eq!(c.minio.root_path, "files");
        assert!(!c.minio.use_iam);
        assert_eq!(c.minio.access_key_id, "AKIAMILVUS");
        assert_eq!(c.minio.secret_access_key.expose(), "MilvusS3cret");
        assert_eq!(c.minio.backup_storage_type, "minio");
        assert_eq!(c.minio.backup_address, "backup.example");
        assert_eq!(c.minio.backup_port, 9000);
        assert_eq!(c.minio.backup_use_ssl, Some(false));
        assert_eq!(c.minio.backup_root_path, "backups");
        // Left out of backup.storage: inherited from milvus.storage.
        assert_eq!(c.minio.backup_bucket_name, "milvus-bucket");
        assert_eq!(c.minio.backup_access_key_id, "AKIAMILVUS");
        assert_eq!(c.minio.backup_secret_access_key.expose(), "MilvusS3cret");
        assert_eq!(c.backup.parallelism.backup_collection, 6);
        assert_eq!(c.backup.parallelism.restore_collection, 3);
        assert_eq!(c.backup.parallelism.import_job, 768);
        assert!(c.backup.keep_temp_files);
        assert!(c.minio.cross_storage, "transfer.mode streaming");
        assert_eq!(c.backup.parallelism.copydata, 64);
    }

    #[rstest]
    #[case("milvus: { grpc: { tlsMode: mutual } }", 2)]
    #[case("milvus: { grpc: { tlsMode: disabled } }", 0)]
    fn v2_tls_names(#[case] yaml: &str, #[case] mode: u8) {
        assert_eq!(load_str(yaml, &[], &[]).unwrap().0.milvus.tls_mode, mode);
    }

    #[test]
    fn v2_inheritance_needs_configversion_v2() {
        let yaml = "milvus: { storage: { bucketName: mb, auth: { accessKeyID: AK } } }";
        let (c, _) = load_str(yaml, &[], &[]).unwrap();
        assert_eq!(c.minio.bucket_name, "mb");
        assert_eq!(c.minio.backup_bucket_name, "a-bucket", "v1 rules");
        let (c, _) = load_str(&format!("configVersion: v2\n{yaml}"), &[], &[]).unwrap();
        assert_eq!(c.minio.backup_bucket_name, "mb");
        assert_eq!(c.minio.backup_access_key_id, "AK");
        let err = load_str("configVersion: v3", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("configVersion") && err.contains("v1, v2"),
            "{err}"
        );
    }

    #[rstest]
    #[case::guide_and_v1("storage: { storageType: minio, minio: { bucketName: same } }\nminio: { backupBucketName: same }")]
    #[case::v2_and_v1("milvus: { address: m1, grpc: { address: m1 } }")]
    #[case::guide_and_v1_user("milvus: { user: bob, username: bob }")]
    #[case::secret_twice("storage: { storageType: oss, oss: { accessKeySecret: Sx } }\nminio: { backupSecretAccessKey: Sx }")]
    fn mixing_dialects_with_equal_values_is_fine(#[case] yaml: &str) {
        let (_, report) = load_str(yaml, &[], &[]).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[rstest]
    #[case::guide_and_v1(
        "storage: { storageType: minio, minio: { bucketName: a } }\nminio: { backupBucketName: b }",
        "storage.minio.bucketName (`a`)",
        "minio.backupBucketName (`b`)"
    )]
    #[case::v2_and_v1(
        "milvus: { address: m1, grpc: { address: m2 } }",
        "milvus.address (`m1`)",
        "milvus.grpc.address (`m2`)"
    )]
    #[case::guide_and_v2(
        "storage: { storageType: minio, minio: { bucketName: g } }\nbackup: { storage: { bucketName: v } }",
        "storage.minio.bucketName (`g`)",
        "backup.storage.bucketName (`v`)"
    )]
    #[case::v2_tls_and_v1(
        "milvus: { tlsMode: 0, grpc: { tlsMode: server } }",
        "milvus.tlsMode (`0`)",
        "milvus.grpc.tlsMode (`1`)"
    )]
    #[case::secrets_stay_masked(
        "storage: { storageType: oss, oss: { accessKeySecret: SecretOne } }\nminio: { backupSecretAccessKey: SecretTwo }",
        "storage.oss.accessKeySecret (`****`)",
        "minio.backupSecretAccessKey (`****`)"
    )]
    fn different_values_stop_naming_both_keys(
        #[case] yaml: &str,
        #[case] first: &str,
        #[case] second: &str,
    ) {
        let err = load_str(yaml, &[], &[]).unwrap_err().to_string();
        assert!(err.contains(first), "{err}");
        assert!(err.contains(second), "{err}");
        assert!(err.contains("keep one"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(
            !err.contains("SecretOne") && !err.contains("SecretTwo"),
            "{err}"
        );
    }

    #[rstest]
    #[case::guide(
        "storage: { storageType: local, local: { path: /b, colour: red } }",
        "storage.local.colour"
    )]
    #[case::guide_block("storage: { ftp: { path: /b } }", "storage.ftp.path")]
    #[case::v2(
        "configVersion: v2\nmilvus: { grpc: { colour: red } }",
        "milvus.grpc.colour"
    )]
    #[case::v2_storage(
        "configVersion: v2\nbackup: { storage: { auth: { colour: red } } }",
        "backup.storage.auth.colour"
    )]
    #[case::v2_unused(
        "milvus: { rest: { endpoint: http://x:19530 } }",
        "milvus.rest.endpoint"
    )]
    fn unknown_keys_in_each_dialect_warn(#[case] yaml: &str, #[case] key: &str) {
        let (_, report) = load_str(yaml, &[], &[]).unwrap();
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].contains(key), "{:?}", report.warnings);
    }

    #[rstest]
    #[case("milvus: { grpc: { port: abc } }", "milvus.grpc.port", "1 to 65535")]
    #[case(
        "milvus: { grpc: { tlsMode: maybe } }",
        "milvus.grpc.tlsMode",
        "disabled, server, mutual"
    )]
    #[case("transfer: { mode: fast }", "transfer.mode", "auto, direct, streaming")]
    #[case(
        "storage: { storageType: ftp }",
        "storage.storageType",
        "local, minio, s3"
    )]
    fn invalid_dialect_values_name_the_file_key(
        #[case] yaml: &str,
        #[case] key: &str,
        #[case] allowed: &str,
    ) {
        let err = load_str(yaml, &[], &[]).unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
        assert!(err.contains(allowed), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn env_and_set_win_over_any_dialect() {
        let (c, _) = load_str(
            V2_EXAMPLE,
            &[
                ("MILVUS_ADDRESS", "from-env"),
                ("BACKUP_STORAGE_AUTH_SECRET_ACCESS_KEY", "EnvS3cret"),
            ],
            &["minio.backupBucketName=from-set", "http.port=9999"],
        )
        .unwrap();
        assert_eq!(c.milvus.address, "from-env");
        assert_eq!(c.minio.backup_secret_access_key.expose(), "EnvS3cret");
        assert_eq!(c.minio.backup_bucket_name, "from-set");
        assert_eq!(c.http.port, 9999);
    }

    #[test]
    fn dialect_secrets_never_show() {
        let guide = GUIDE_EXAMPLE
            .replace("storageType: local", "storageType: oss")
            .replace("your-access-secret", "OssS3cretValue");
        for yaml in [guide.as_str(), V2_EXAMPLE] {
            let (c, _) = load_str(yaml, &[], &[]).unwrap();
            let shown = format!("{}{}{:?}", c.to_masked_yaml(), c.to_masked_json(), c);
            for s in ["OssS3cretValue", "V2Passw0rd", "MilvusS3cret"] {
                assert!(!shown.contains(s), "{s} leaked");
            }
        }
    }

    #[test]
    fn search_order_takes_the_first_file_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b, c] =
            ["configs/backup.yaml", "config.yaml", "etc.yaml"].map(|p| dir.path().join(p));
        let candidates = [&a, &b, &c];
        assert_eq!(find_config_file(&candidates), None);
        std::fs::write(&c, "").unwrap();
        assert_eq!(find_config_file(&candidates).as_ref(), Some(&c));
        std::fs::write(&b, "").unwrap();
        assert_eq!(find_config_file(&candidates).as_ref(), Some(&b));
        std::fs::create_dir_all(a.parent().unwrap()).unwrap();
        std::fs::write(&a, "").unwrap();
        assert_eq!(find_config_file(&candidates).as_ref(), Some(&a));
        assert_eq!(SEARCH_ORDER[0], "configs/backup.yaml");
        assert_eq!(SEARCH_ORDER[2], "/etc/milvus-backup/config.yaml");
    }

    #[test]
    fn load_report_names_the_file_read() {
        let (_, report) = load_str(GUIDE_EXAMPLE, &[], &[]).unwrap();
        assert!(report.file.unwrap().ends_with("backup.yaml"));
    }
}
