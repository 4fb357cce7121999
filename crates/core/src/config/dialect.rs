//! The other spellings of our settings that users bring, read as written:
//!
//! - **the user guide's `config.yaml`**: a top-level `storage:` block that
//!   describes *backup* storage (`storageType` local|minio|s3|oss|cos and one
//!   sub-block per type), `milvus.username`, `http.port`, `log.file` as a path;
//! - **the Go tool's v2 file** (`configVersion: v2`): `milvus.grpc`,
//!   `milvus.storage`, `backup.storage`, `backup.concurrency`, `restore`,
//!   `transfer`, …
//!
//! This module only *routes* each leaf of the file to one of our keys (see
//! `KEYS` in the parent module), converting the few values spelled
//! differently (`tlsMode: server` → `1`, `provider: oss` → `ali`, …). Type
//! checks, conflicts between two spellings, environment and `--set` stay in
//! the parent, so every dialect gets the same rules.

use serde_yaml::Value;

use crate::config::{find_key, is_ignored, scalar_text};
use crate::error::{Error, Result};

/// One file key routed to one of our keys.
#[derive(Debug)]
pub(super) struct Assignment {
    /// The key as the file spells it (or a note saying where it came from).
    pub source: String,
    /// Our key (a `KEYS` path).
    pub target: &'static str,
    /// The value converted to our spelling, not yet type-checked.
    pub value: Value,
}

/// What [`route`] makes of a file.
#[derive(Debug, Default)]
pub(super) struct Routed {
    pub assignments: Vec<Assignment>,
    /// Keys no dialect knows.
    pub unknown: Vec<String>,
    /// Keys a dialect knows, set to a value, with no counterpart here.
    pub unused: Vec<String>,
}

/// The top-level `configVersion` of a file: `v1` (or absent) or `v2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    V1,
    V2,
}

/// Reads and removes the top-level `configVersion`, so it is not taken for
/// a setting.
pub(super) fn take_version(file: &mut Value) -> Result<Version> {
    let Some(map) = file.as_mapping_mut() else {
        return Ok(Version::V1);
    };
    let Some(raw) = map.remove("configVersion") else {
        return Ok(Version::V1);
    };
    match scalar_text(&raw).unwrap_or_default().trim() {
        "" | "v1" | "V1" => Ok(Version::V1),
        "v2" | "V2" => Ok(Version::V2),
        other => Err(Error::invalid_input(format!(
            "config key `configVersion`: `{other}` is not valid — allowed: v1, v2"
        ))),
    }
}

/// How a value is respelled on its way to our key.
#[derive(Debug, Clone, Copy)]
enum Convert {
    Same,
    /// Storage providers: the guide's `oss` and `cos` are our `ali` and `tc`.
    Provider,
    /// A cloud endpoint given as a host name: HTTPS, whatever `useSSL` says.
    CloudEndpoint,
    /// v2 `tlsMode` names: disabled, server, mutual → 0, 1, 2.
    TlsName,
    /// v2 `auth.type` → `useIAM`.
    AuthType,
    /// v2 `transfer.mode` → `crossStorage` (streaming means never copy
    /// server-side).
    TransferMode,
}

use Convert::*;

/// Keys spelled differently from ours, outside the storage blocks.
const ALIASES: &[(&str, &str, Convert)] = &[
    // The guide.
    ("milvus.username", "milvus.user", Same),
    ("log.file", "log.file.rootPath", Same),
    // Collections at once, as the scale issue and the manual name it.
    (
        "backup.parallelism.collections",
        "backup.parallelism.backupCollection",
        Same,
    ),
    // The Go tool's v2 file.
    ("log.file.path", "log.file.rootPath", Same),
    ("milvus.grpc.address", "milvus.address", Same),
    ("milvus.grpc.port", "milvus.port", Same),
    ("milvus.grpc.tlsMode", "milvus.tlsMode", TlsName),
    ("milvus.grpc.caCertPath", "milvus.caCertPath", Same),
    ("milvus.grpc.serverName", "milvus.serverName", Same),
    ("milvus.grpc.mtlsCertPath", "milvus.mtlsCertPath", Same),
    ("milvus.grpc.mtlsKeyPath", "milvus.mtlsKeyPath", Same),
    ("milvus.management.endpoint", "backup.gcPause.address", Same),
    (
        "backup.concurrency.collections",
        "backup.parallelism.backupCollection",
        Same,
    ),
    ("backup.pauseGC", "backup.gcPause.enable", Same),
    (
        "restore.concurrency.collections",
        "backup.parallelism.restoreCollection",
        Same,
    ),
    (
        "restore.concurrency.importJobs",
        "backup.parallelism.importJob",
        Same,
    ),
    ("restore.keepTempFiles", "backup.keepTempFiles", Same),
    ("transfer.mode", "minio.crossStorage", TransferMode),
    ("transfer.concurrency", "backup.parallelism.copydata", Same),
];

/// v2 keys whose v1 counterparts we accept and do not use; no warning.
const IGNORED_V2: &[&str] = &[
    "log.file.maxSizeMiB",
    "log.file.maxDays",
    "log.file.maxBackups",
    "server.debugMode",
    "server.swaggerBasePath",
    "milvus.replicate.rpcChannelName",
    "milvus.etcd.endpoints",
    "milvus.etcd.rootPath",
    "backup.concurrency.segments",
    "transfer.multipartCopyThresholdMiB",
    "zillizCloud.endpoint",
    "zillizCloud.apiKey",
];

/// v2 keys with no counterpart here: a warning when set to something.
const UNUSED_V2: &[&str] = &[
    "milvus.rest.endpoint",
    "restore.maxSegmentsPerImportJob",
    "milvus.storage.localPath",
    "milvus.storage.milvusAddress",
    "milvus.storage.milvusPort",
    "backup.storage.localPath",
    "backup.storage.milvusAddress",
    "backup.storage.milvusPort",
];

/// v2 `milvus.storage.*` / `backup.storage.*`: (suffix, Milvus-side key,
/// backup-side key).
const V2_STORAGE: &[(&str, &str, &str, Convert)] = &[
    (
        "provider",
        "minio.storageType",
        "minio.backupStorageType",
        Provider,
    ),
    ("address", "minio.address", "minio.backupAddress", Same),
    ("port", "minio.port", "minio.backupPort", Same),
    ("region", "minio.region", "minio.backupRegion", Same),
    ("useSSL", "minio.useSSL", "minio.backupUseSSL", Same),
    (
        "bucketName",
        "minio.bucketName",
        "minio.backupBucketName",
        Same,
    ),
    ("rootPath", "minio.rootPath", "minio.backupRootPath", Same),
    // Azure: v1 (and we) keep the account name and key in the access key pair.
    (
        "accountName",
        "minio.accessKeyID",
        "minio.backupAccessKeyID",
        Same,
    ),
    ("auth.type", "minio.useIAM", "minio.backupUseIAM", AuthType),
    (
        "auth.accessKeyID",
        "minio.accessKeyID",
        "minio.backupAccessKeyID",
        Same,
    ),
    (
        "auth.secretAccessKey",
        "minio.secretAccessKey",
        "minio.backupSecretAccessKey",
        Same,
    ),
    (
        "auth.sessionToken",
        "minio.token",
        "minio.backupToken",
        Same,
    ),
    (
        "auth.accountKey",
        "minio.secretAccessKey",
        "minio.backupSecretAccessKey",
        Same,
    ),
    (
        "auth.credentialsFile",
        "minio.gcpCredentialJSON",
        "minio.backupGcpCredentialJSON",
        Same,
    ),
    (
        "auth.endpoint",
        "minio.iamEndpoint",
        "minio.backupIamEndpoint",
        Same,
    ),
];

/// v2: what `backup.storage` inherits from `milvus.storage` when it leaves
/// it out, beyond what our backup side already falls back to (type,
/// address, port, region, SSL, IAM).
pub(super) const V2_INHERITED: &[(&str, &str)] = &[
    ("minio.bucketName", "minio.backupBucketName"),
    ("minio.accessKeyID", "minio.backupAccessKeyID"),
    ("minio.secretAccessKey", "minio.backupSecretAccessKey"),
    ("minio.token", "minio.backupToken"),
];

/// The guide's storage types, each with the sub-block it reads.
const GUIDE_BLOCKS: &[&str] = &["local", "minio", "s3", "oss", "cos"];

/// Fields of the guide's `storage.<block>` (all but `local`), all of them
/// describing backup storage.
const GUIDE_FIELDS: &[(&str, &str, Convert)] = &[
    ("address", "minio.backupAddress", Same),
    ("endpoint", "minio.backupAddress", CloudEndpoint),
    ("port", "minio.backupPort", Same),
    ("region", "minio.backupRegion", Same),
    ("useSSL", "minio.backupUseSSL", Same),
    ("accessKeyID", "minio.backupAccessKeyID", Same),
    ("secretAccessKey", "minio.backupSecretAccessKey", Same),
    ("accessKeySecret", "minio.backupSecretAccessKey", Same),
    ("bucketName", "minio.backupBucketName", Same),
    ("rootPath", "minio.backupRootPath", Same),
];

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Our key for another spelling of it that needs no conversion (for
/// `--set`, which takes the same names a file does).
pub(super) fn plain_alias(key: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|(a, _, convert)| eq(a, key) && matches!(convert, Same))
        .map(|(_, ours, _)| *ours)
}

/// Routes every `(dotted.path, value)` leaf of a file to our keys.
pub(super) fn route(leaves: Vec<(String, Value)>, version: Version) -> Result<Routed> {
    let mut routed = Routed::default();
    let guide = GuideStorage::new(&leaves)?;
    if let Some(a) = guide.inferred_type() {
        routed.assignments.push(a);
    }
    for (path, value) in leaves {
        let mut assign = |target: &'static str, convert: Convert| -> Result<()> {
            let value = convert_value(convert, &path, value.clone())?;
            routed.assignments.push(Assignment {
                source: path.clone(),
                target,
                value,
            });
            Ok(())
        };
        if let Some(k) = find_key(&path) {
            assign(k.path, Same)?;
        } else if let Some((_, target, convert)) = ALIASES.iter().find(|(a, ..)| eq(a, &path)) {
            assign(target, *convert)?;
        } else if let Some(rest) = strip(&path, "storage.") {
            match guide.route(rest) {
                GuideRoute::To(target, convert) => assign(target, convert)?,
                GuideRoute::Inactive => {}
                GuideRoute::Unknown => routed.unknown.push(path),
            }
        } else if let Some((side, rest)) = strip(&path, "milvus.storage.")
            .map(|r| (Side::Milvus, r))
            .or_else(|| strip(&path, "backup.storage.").map(|r| (Side::Backup, r)))
        {
            match V2_STORAGE.iter().find(|(s, ..)| eq(s, rest)) {
                Some((_, milvus, backup, convert)) => match side {
                    Side::Milvus => assign(milvus, *convert)?,
                    Side::Backup => assign(backup, *convert)?,
                },
                None if UNUSED_V2.iter().any(|u| eq(u, &path)) => {
                    if is_set(&value) {
                        routed.unused.push(path)
                    }
                }
                None => routed.unknown.push(path),
            }
        } else if is_ignored(&path) || IGNORED_V2.iter().any(|k| eq(k, &path)) {
        } else if UNUSED_V2.iter().any(|u| eq(u, &path)) {
            if is_set(&value) {
                routed.unused.push(path);
            }
        } else {
            routed.unknown.push(path);
        }
    }
    if version == Version::V2 {
        inherit_backup_storage(&mut routed.assignments);
    }
    Ok(routed)
}

#[derive(Clone, Copy)]
enum Side {
    Milvus,
    Backup,
}

fn strip<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let head = path.get(..prefix.len())?;
    eq(head, prefix).then(|| &path[prefix.len()..])
}

fn is_set(v: &Value) -> bool {
    !matches!(scalar_text(v).as_deref().map(str::trim), Some("" | "0"))
}

/// In a v2 file, `backup.storage` inherits what it leaves out from
/// `milvus.storage`.
fn inherit_backup_storage(assignments: &mut Vec<Assignment>) {
    for (milvus, backup) in V2_INHERITED {
        if assignments.iter().any(|a| a.target == *backup) {
            continue;
        }
        if let Some(from) = assignments.iter().find(|a| a.target == *milvus) {
            let inherited = Assignment {
                source: format!("{} (inherited by backup.storage)", from.source),
                target: backup,
                value: from.value.clone(),
            };
            assignments.push(inherited);
        }
    }
}

/// The guide's `storage:` block: which sub-block is in effect.
struct GuideStorage {
    /// The block `storageType` selects (or the only one given).
    active: Option<&'static str>,
    /// Set when `storageType` was left out and inferred from the only block.
    inferred: Option<&'static str>,
}

enum GuideRoute {
    To(&'static str, Convert),
    /// A block the chosen `storageType` does not read.
    Inactive,
    Unknown,
}

impl GuideStorage {
    fn new(leaves: &[(String, Value)]) -> Result<GuideStorage> {
        let mut present: Vec<&'static str> = Vec::new();
        let mut storage_type = None;
        for (path, value) in leaves {
            let Some(rest) = strip(path, "storage.") else {
                continue;
            };
            if eq(rest, "storageType") {
                storage_type = Some(scalar_text(value).unwrap_or_default().to_ascii_lowercase());
            } else if let Some((block, _)) = rest.split_once('.') {
                if let Some(b) = GUIDE_BLOCKS.iter().find(|b| eq(b, block)) {
                    if !present.contains(b) {
                        present.push(b);
                    }
                }
            }
        }
        let (active, inferred) = match storage_type.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => {
                // S3 settings live under `storage.minio` in the guide.
                let block = if t == "s3" && !present.contains(&"s3") {
                    Some("minio")
                } else {
                    GUIDE_BLOCKS.iter().find(|b| **b == t).copied()
                };
                (block, None)
            }
            _ => match present.as_slice() {
                [] => (None, None),
                [only] => (Some(*only), Some(*only)),
                several => {
                    return Err(Error::invalid_input(format!(
                        "config key `storage.storageType` is missing and the storage block has several kinds ({}) — set storage.storageType to one of local, minio, s3, oss, cos",
                        several.join(", ")
                    )))
                }
            },
        };
        Ok(GuideStorage { active, inferred })
    }

    fn inferred_type(&self) -> Option<Assignment> {
        self.inferred.map(|block| Assignment {
            source: format!("storage.{block} (the only storage block)"),
            target: "minio.backupStorageType",
            value: Value::String(guide_provider(block).to_string()),
        })
    }

    fn route(&self, rest: &str) -> GuideRoute {
        if eq(rest, "storageType") {
            return GuideRoute::To("minio.backupStorageType", Provider);
        }
        let Some((block, field)) = rest.split_once('.') else {
            return GuideRoute::Unknown;
        };
        let Some(block) = GUIDE_BLOCKS.iter().find(|b| eq(b, block)).copied() else {
            return GuideRoute::Unknown;
        };
        let target = if block == "local" {
            eq(field, "path").then_some(("minio.backupRootPath", Same))
        } else {
            GUIDE_FIELDS
                .iter()
                .find(|(f, ..)| eq(f, field))
                .map(|(_, t, c)| (*t, *c))
        };
        match target {
            None => GuideRoute::Unknown,
            Some(_) if self.active != Some(block) => GuideRoute::Inactive,
            Some((t, c)) => GuideRoute::To(t, c),
        }
    }
}

/// The guide's storage type in our spelling.
fn guide_provider(t: &str) -> &str {
    match t {
        "oss" => "ali",
        "cos" => "tc",
        other => other,
    }
}

/// The effective settings (`v1`: our serialized, masked config) respelled
/// as the Go tool's v2 file: every key with a v2 spelling moves there (the
/// tables above, read backwards); ours that v2 lacks (compression,
/// retention, `http`, …) stay in their v1 spelling, which a mixed file may
/// keep and this tool reads back to the same settings.
pub(super) fn to_v2(v1: &Value) -> Value {
    let mut rest = v1.clone();
    let mut out = serde_yaml::Mapping::new();
    out.insert("configVersion".into(), "v2".into());
    let mut v2 = Value::Mapping(out);
    let mut take = |ours: &str| take_path(&mut rest, ours);
    let mut moves: Vec<(String, Value)> = Vec::new();
    for (from, ours, convert) in ALIASES {
        // The guide's spellings are not v2's.
        if matches!(
            *from,
            "milvus.username" | "log.file" | "backup.parallelism.collections"
        ) {
            continue;
        }
        if let Some(value) = take(ours) {
            moves.push((from.to_string(), unconvert(*convert, value)));
        }
    }
    for (suffix, milvus, backup, convert) in V2_STORAGE {
        // Azure's and GCP's spellings of the same keys: the generic one wins.
        if matches!(*suffix, "accountName" | "auth.accountKey") {
            continue;
        }
        for (side, ours) in [("milvus", milvus), ("backup", backup)] {
            if let Some(value) = take(ours).filter(|v| !v.is_null()) {
                moves.push((
                    format!("{side}.storage.{suffix}"),
                    unconvert(*convert, value),
                ));
            }
        }
    }
    for (path, value) in moves {
        set_path(&mut v2, &path, value);
    }
    merge(&mut v2, rest);
    v2
}

/// Our value spelled as v2 spells it.
fn unconvert(convert: Convert, value: Value) -> Value {
    let text = scalar_text(&value).unwrap_or_default();
    match convert {
        TlsName => match text.trim() {
            "1" => "server".into(),
            "2" => "mutual".into(),
            _ => "disabled".into(),
        },
        AuthType => if value.as_bool() == Some(true) {
            "iam"
        } else {
            "static"
        }
        .into(),
        TransferMode => if value.as_bool() == Some(true) {
            "streaming"
        } else {
            "auto"
        }
        .into(),
        Same | Provider | CloudEndpoint => value,
    }
}

/// Removes `a.b.c` from a mapping tree and returns its value; empty
/// mappings left behind go too.
fn take_path(tree: &mut Value, path: &str) -> Option<Value> {
    let (head, tail) = match path.split_once('.') {
        Some((h, t)) => (h, Some(t)),
        None => (path, None),
    };
    let map = tree.as_mapping_mut()?;
    let taken = match tail {
        None => map.remove(head),
        Some(tail) => {
            let child = map.get_mut(head)?;
            let taken = take_path(child, tail);
            if child.as_mapping().is_some_and(|m| m.is_empty()) {
                map.remove(head);
            }
            taken
        }
    };
    taken
}

fn set_path(tree: &mut Value, path: &str, value: Value) {
    let mut cur = tree;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let map = cur.as_mapping_mut().expect("a mapping");
        if i == parts.len() - 1 {
            map.insert((*part).into(), value);
            return;
        }
        cur = map
            .entry((*part).into())
            .or_insert_with(|| Value::Mapping(Default::default()));
    }
}

/// Adds every leaf of `from` to `into` where `into` has none.
fn merge(into: &mut Value, from: Value) {
    let (Some(into), Value::Mapping(from)) = (into.as_mapping_mut(), from) else {
        return;
    };
    for (k, v) in from {
        match into.get_mut(&k) {
            Some(existing) if existing.is_mapping() && v.is_mapping() => merge(existing, v),
            Some(_) => {}
            None => {
                into.insert(k, v);
            }
        }
    }
}

fn convert_value(convert: Convert, source: &str, value: Value) -> Result<Value> {
    let text = || scalar_text(&value).unwrap_or_default().trim().to_string();
    let bad = |allowed: &str| {
        Error::invalid_input(format!(
            "config key `{source}`: `{}` is not valid — allowed: {allowed}",
            text()
        ))
    };
    Ok(match convert {
        Same => value,
        Provider => {
            let t = text().to_ascii_lowercase();
            Value::String(guide_provider(&t).to_string())
        }
        CloudEndpoint => {
            let t = text();
            if t.is_empty() || t.contains("://") {
                Value::String(t)
            } else {
                Value::String(format!("https://{t}"))
            }
        }
        TlsName => match text().to_ascii_lowercase().as_str() {
            "disabled" | "0" => Value::Number(0.into()),
            "server" | "1" => Value::Number(1.into()),
            "mutual" | "2" => Value::Number(2.into()),
            _ => return Err(bad("disabled, server, mutual")),
        },
        AuthType => match text().to_ascii_lowercase().as_str() {
            "static" | "sharedkey" | "serviceaccount" => Value::Bool(false),
            "iam" | "default" => Value::Bool(true),
            _ => return Err(bad("static, iam, sharedKey, serviceAccount, default")),
        },
        TransferMode => match text().to_ascii_lowercase().as_str() {
            "auto" | "direct" => Value::Bool(false),
            "streaming" => Value::Bool(true),
            _ => return Err(bad("auto, direct, streaming")),
        },
    })
}
