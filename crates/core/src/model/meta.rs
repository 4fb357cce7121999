//! The on-disk backup format: the Go tool's meta files (protobuf-JSON of its
//! messages: snake_case, integer enums) and our own `manifest.json` and
//! `summary.json`, which the Go tool ignores.
//!
//! The Go tool reads its meta files with Go's `encoding/json`, which skips
//! fields it does not know; the few we add to its messages (a field's
//! clustering key and element nullability) are left out when unset. Every
//! field of theirs has a default so we read theirs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use milvus::proto::common::KeyValuePair;
use milvus::proto::schema as pbs;

/// Version of our additions (`manifest.json`, `summary.json`).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

pub fn kvs(pairs: &[KeyValuePair]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|p| KeyValue {
            key: p.key.clone(),
            value: p.value.clone(),
        })
        .collect()
}

pub fn to_pairs(kvs: &[KeyValue]) -> Vec<KeyValuePair> {
    kvs.iter()
        .map(|kv| KeyValuePair {
            key: kv.key.clone(),
            value: kv.value.clone(),
        })
        .collect()
}

/// The whole backup (`full_meta.json`); `backup_meta.json` is this with
/// `collection_backups` emptied.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupInfo {
    pub id: String,
    pub state_code: i32,
    pub error_message: String,
    pub start_time: i64,
    pub end_time: i64,
    pub progress: i32,
    pub name: String,
    pub backup_timestamp: u64,
    pub collection_backups: Vec<CollectionBackupInfo>,
    pub size: i64,
    pub milvus_version: String,
    pub database_backups: Vec<DatabaseBackupInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbac_meta: Option<crate::model::rbac::RbacMeta>,
    pub format: String,
    /// Ours: a logical backup's rows as Parquet or JSON files (`None`: a
    /// physical backup of binlogs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical: Option<LogicalBackup>,
    /// Ours: collections of a backup of everything that hold their schema
    /// but no rows, because Milvus could not give them (the Go tool ignores it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
}

/// A collection a backup holds without its rows, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeftOut {
    /// `db.collection`.
    pub collection: String,
    pub reason: String,
}

impl LeftOut {
    /// One line naming every collection left out and why; `None` when
    /// none was.
    pub fn describe(left_out: &[LeftOut]) -> Option<String> {
        (!left_out.is_empty()).then(|| {
            format!(
                "completed with {} collection(s) left out (schema only, no rows): {}",
                left_out.len(),
                left_out
                    .iter()
                    .map(|l| format!("{} ({})", l.collection, l.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }
}

impl BackupInfo {
    /// `binlog`, `parquet` or `json`.
    pub fn data_format(&self) -> String {
        match &self.logical {
            Some(l) => l.format.to_string(),
            None => "binlog".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseBackupInfo {
    pub db_name: String,
    pub db_id: i64,
    pub properties: Vec<KeyValue>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionBackupInfo {
    pub id: String,
    pub state_code: i32,
    pub error_message: String,
    pub start_time: i64,
    pub end_time: i64,
    pub progress: i32,
    pub collection_id: i64,
    pub db_name: String,
    pub collection_name: String,
    pub schema: CollectionSchema,
    pub shards_num: i32,
    pub consistency_level: i32,
    pub partition_backups: Vec<PartitionBackupInfo>,
    pub backup_timestamp: u64,
    pub size: i64,
    pub has_index: bool,
    pub index_infos: Vec<IndexInfo>,
    pub load_state: String,
    pub backup_physical_timestamp: u64,
    pub properties: Vec<KeyValue>,
    pub num_partitions: i64,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionSchema {
    pub name: String,
    pub description: String,
    #[serde(rename = "autoID")]
    pub auto_id: bool,
    pub fields: Vec<FieldSchema>,
    pub enable_dynamic_field: bool,
    pub properties: Vec<KeyValue>,
    /// Functions (BM25, text embedding, MinHash...) from input fields into
    /// output fields the server computes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionSchema>,
    /// Arrays of structs: each a field whose rows are lists of structs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub struct_array_fields: Vec<StructArrayFieldSchema>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FunctionSchema {
    pub name: String,
    pub id: i64,
    pub description: String,
    /// Milvus's `FunctionType`: 1 BM25, 2 text embedding, 3 rerank, 4 MinHash...
    #[serde(rename = "type")]
    pub function_type: i32,
    pub input_field_names: Vec<String>,
    pub input_field_ids: Vec<i64>,
    pub output_field_names: Vec<String>,
    pub output_field_ids: Vec<i64>,
    pub params: Vec<KeyValue>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StructArrayFieldSchema {
    #[serde(rename = "fieldID")]
    pub field_id: i64,
    pub name: String,
    pub description: String,
    pub fields: Vec<FieldSchema>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub type_params: Vec<KeyValue>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nullable: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FieldSchema {
    #[serde(rename = "fieldID")]
    pub field_id: i64,
    pub name: String,
    pub is_primary_key: bool,
    pub description: String,
    pub data_type: i32,
    pub type_params: Vec<KeyValue>,
    pub index_params: Vec<KeyValue>,
    #[serde(rename = "autoID")]
    pub auto_id: bool,
    pub state: i32,
    pub element_type: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_value: Option<serde_json::Value>,
    /// The default value as the Go tool keeps it: base64 of the protobuf
    /// `ValueField`. Read first; covers every type the server has.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_value_base64: String,
    pub is_dynamic: bool,
    pub is_partition_key: bool,
    pub nullable: bool,
    /// Computed by one of the collection's functions: never inserted.
    pub is_function_output: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_clustering_key: bool,
    /// An array whose elements may be null.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub element_nullable: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexInfo {
    pub field_name: String,
    pub index_name: String,
    pub index_type: String,
    pub params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PartitionBackupInfo {
    pub partition_id: i64,
    pub partition_name: String,
    pub collection_id: i64,
    pub segment_backups: Vec<SegmentBackupInfo>,
    pub size: i64,
    pub load_state: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SegmentBackupInfo {
    pub segment_id: i64,
    pub collection_id: i64,
    pub partition_id: i64,
    pub num_of_rows: i64,
    pub binlogs: Vec<FieldBinlog>,
    pub deltalogs: Vec<FieldBinlog>,
    pub statslogs: Vec<FieldBinlog>,
    pub size: i64,
    pub backuped: bool,
    pub group_id: i64,
    pub is_l0: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FieldBinlog {
    #[serde(rename = "fieldID")]
    pub field_id: i64,
    pub binlogs: Vec<Binlog>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Binlog {
    pub entries_num: i64,
    pub timestamp_from: u64,
    pub timestamp_to: u64,
    pub log_path: String,
    pub log_size: i64,
    pub log_id: i64,
}

/// `{"infos": [...]}`, the shape of the per-level meta files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Infos<T> {
    #[serde(default = "Vec::new")]
    pub infos: Vec<T>,
}

/// Ours: every stored file with its size and content checksum.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    pub format_version: u32,
    pub tool: String,
    pub tool_version: String,
    pub backup_name: String,
    pub created_at: String,
    /// Compression of the files this backup wrote (`none` when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionInfo>,
    /// Encryption of files and schema-bearing meta files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionInfo>,
    /// The backup this one was made incrementally from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_backup: Option<String>,
    /// Files by key relative to the backup folder.
    pub files: Vec<ManifestFile>,
    /// The rows Milvus served of each collection when the backup was made,
    /// against the rows its files hold; absent where they were not
    /// compared (logical backups, `--force`, collections not loaded,
    /// backups of earlier versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub row_checks: Vec<RowCheck>,
}

/// Ours: a physical backup's files against what Milvus served. Milvus 2.2
/// writes the deletes of flushed segments to delta logs only every
/// `dataNode.segment.syncPeriod`, so files can hold rows already deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RowCheck {
    /// `db.collection`.
    pub collection: String,
    /// Rows Milvus served right after the flush.
    pub served_rows: i64,
    /// Rows of the backed-up segments minus the deletes their delta logs
    /// record: exact where the keys were read (`key_scan`), else at least
    /// as many as this (Milvus may record one delete in several segments).
    pub file_rows: i64,
    /// Deletes Milvus applied but had not written to delta logs: rows a
    /// restore brings back (`create --allow-unpersisted-deletes`).
    #[serde(skip_serializing_if = "is_zero")]
    pub unpersisted_deletes: i64,
    /// Rows of the files that share their key with another row: a key scan
    /// counts such a key once.
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicate_rows: i64,
    /// `count` (`count(*)`) or `key_scan` (servers without `count(*)`).
    pub counted_by: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl RowCheck {
    /// Rows a restore of the backup should give: what Milvus served, with
    /// every copy of a key written twice.
    pub fn expected_rows(&self) -> i64 {
        self.served_rows + self.duplicate_rows
    }

    /// Rows the backup's files hold (and a restore gives): the expected
    /// ones and those whose deletes were not persisted.
    pub fn held_rows(&self) -> i64 {
        self.expected_rows() + self.unpersisted_deletes
    }
}

impl Manifest {
    /// Deletes the backup's files lack, over all collections.
    pub fn unpersisted_deletes(&self) -> i64 {
        self.row_checks.iter().map(|c| c.unpersisted_deletes).sum()
    }
}

impl Manifest {
    /// Whether every file is stored plainly inside this backup's own
    /// folder, so Milvus could import it in place.
    pub fn self_contained_plain(&self) -> bool {
        self.files
            .iter()
            .all(|f| f.encoding.is_plain() && f.stored_in.is_none())
    }

    /// The backups whose folders hold files this one refers to.
    pub fn referenced_backups(&self) -> std::collections::BTreeSet<&str> {
        self.files
            .iter()
            .filter_map(|f| f.stored_in.as_deref())
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompressionInfo {
    pub algorithm: crate::model::encoding::Compression,
    pub level: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EncryptionInfo {
    /// `age-x25519`: age files for one X25519 recipient.
    pub scheme: String,
    /// The recipient (public key) the files were sealed for.
    pub recipient: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManifestFile {
    /// Key relative to the backup folder, e.g. `binlogs/insert_log/...`.
    pub path: String,
    /// Bytes as stored.
    pub size: u64,
    /// SHA-256 of the bytes as stored.
    pub sha256: String,
    /// Where the file came from in Milvus storage (relative to its root).
    pub source: String,
    /// How the bytes are stored; absent for files as Milvus wrote them.
    #[serde(skip_serializing_if = "crate::model::encoding::Encoding::is_plain")]
    pub encoding: crate::model::encoding::Encoding,
    /// Size of the file as Milvus wrote it, when stored encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_size: Option<u64>,
    /// SHA-256 of the file as Milvus wrote it, when stored compressed but
    /// not encrypted (a plaintext checksum would leak through a sealed one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_sha256: Option<String>,
    /// Another backup whose folder holds the bytes, at the same `path`
    /// (incremental backups); absent when this backup holds them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_in: Option<String>,
    /// How the copy was checked when it was made; absent in manifests of
    /// earlier versions (whose files were all hashed: `sha256`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    /// ETag of the stored object when it was made (server-side copies);
    /// an MD5 of the bytes unless it has a `-parts` suffix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// ETag of the Milvus file when it was copied: an incremental backup
    /// shares the file when its listing shows the same key, size and ETag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_etag: Option<String>,
    /// Rows of a logical backup's data file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

impl ManifestFile {
    /// The backup whose folder holds this file's bytes.
    pub fn holder<'a>(&'a self, backup: &'a str) -> &'a str {
        self.stored_in.as_deref().unwrap_or(backup)
    }

    /// What reading the stored file must find.
    pub fn expected(&self) -> crate::model::encoding::Expected<'_> {
        crate::model::encoding::Expected {
            size: self.size,
            sha256: &self.sha256,
            encoding: self.encoding,
            raw_size: self.raw_size,
            raw_sha256: self.raw_sha256.as_deref(),
        }
    }
}

/// Ours: what `list` shows, written right after `full_meta.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub format_version: u32,
    pub name: String,
    pub id: String,
    pub created_at: String,
    pub backup_timestamp: u64,
    pub milvus_version: String,
    pub collections: Vec<String>,
    /// Live rows (deleted rows not counted).
    pub entities: i64,
    /// Rows of the segments that deletes remove.
    pub deleted_entities: i64,
    pub size_bytes: i64,
    pub files: u64,
    /// Bytes this backup stored itself (the rest it shares with its base).
    pub copied_bytes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_backup: Option<String>,
    pub compression: crate::model::encoding::Compression,
    pub encrypted: bool,
    /// `parquet` or `json` for a logical backup; absent: `binlog`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_format: Option<String>,
    /// Deletes Milvus had not persisted when the backup was made: rows a
    /// restore brings back (see [`Manifest::row_checks`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub unpersisted_deletes: i64,
    /// SHA-256 of each meta file as stored (`full_meta.json` → hex), so an
    /// edit of one after the backup was made is found. Empty in backups
    /// made before this was recorded.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub meta_sha256: std::collections::BTreeMap<String, String>,
    /// Collections held without their rows ([`BackupInfo::left_out`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
}

/// Our fields of a schema in the Go tool's format, from the server's protobuf schema.
#[allow(deprecated)] // collection-level auto_id is what 2.2/2.3 servers use
pub fn schema_from_proto(s: &pbs::CollectionSchema) -> CollectionSchema {
    CollectionSchema {
        name: s.name.clone(),
        description: s.description.clone(),
        auto_id: s.auto_id,
        enable_dynamic_field: s.enable_dynamic_field,
        properties: kvs(&s.properties),
        fields: s.fields.iter().map(field_from_proto).collect(),
        functions: s
            .functions
            .iter()
            .map(|f| FunctionSchema {
                name: f.name.clone(),
                id: f.id,
                description: f.description.clone(),
                function_type: f.r#type,
                input_field_names: f.input_field_names.clone(),
                input_field_ids: f.input_field_ids.clone(),
                output_field_names: f.output_field_names.clone(),
                output_field_ids: f.output_field_ids.clone(),
                params: kvs(&f.params),
            })
            .collect(),
        struct_array_fields: s
            .struct_array_fields
            .iter()
            .map(|f| StructArrayFieldSchema {
                field_id: f.field_id,
                name: f.name.clone(),
                description: f.description.clone(),
                fields: f.fields.iter().map(field_from_proto).collect(),
                type_params: kvs(&f.type_params),
                nullable: f.nullable,
            })
            .collect(),
    }
}

fn field_from_proto(f: &pbs::FieldSchema) -> FieldSchema {
    use base64::Engine as _;
    use prost::Message as _;
    FieldSchema {
        field_id: f.field_id,
        name: f.name.clone(),
        is_primary_key: f.is_primary_key,
        description: f.description.clone(),
        data_type: f.data_type,
        type_params: kvs(&f.type_params),
        index_params: kvs(&f.index_params),
        auto_id: f.auto_id,
        state: f.state,
        element_type: f.element_type,
        default_value: f.default_value.as_ref().and_then(default_to_json),
        default_value_base64: f
            .default_value
            .as_ref()
            .map(|v| base64::engine::general_purpose::STANDARD.encode(v.encode_to_vec()))
            .unwrap_or_default(),
        is_dynamic: f.is_dynamic,
        is_partition_key: f.is_partition_key,
        nullable: f.nullable,
        is_function_output: f.is_function_output,
        is_clustering_key: f.is_clustering_key,
        element_nullable: f.element_nullable,
    }
}

fn field_to_proto(f: &FieldSchema) -> pbs::FieldSchema {
    pbs::FieldSchema {
        field_id: f.field_id,
        name: f.name.clone(),
        is_primary_key: f.is_primary_key,
        description: f.description.clone(),
        data_type: f.data_type,
        type_params: to_pairs(&f.type_params),
        index_params: to_pairs(&f.index_params),
        auto_id: f.auto_id,
        element_type: f.element_type,
        default_value: f.default_value(),
        is_dynamic: f.is_dynamic,
        is_partition_key: f.is_partition_key,
        nullable: f.nullable,
        is_function_output: f.is_function_output,
        is_clustering_key: f.is_clustering_key,
        element_nullable: f.element_nullable,
        ..Default::default()
    }
}

impl FieldSchema {
    /// The field's default value: from `default_value_base64` (the Go
    /// tool's and ours), else from `default_value` (our older backups).
    pub fn default_value(&self) -> Option<pbs::ValueField> {
        use base64::Engine as _;
        use prost::Message as _;
        if !self.default_value_base64.is_empty() {
            if let Some(v) = base64::engine::general_purpose::STANDARD
                .decode(&self.default_value_base64)
                .ok()
                .and_then(|b| pbs::ValueField::decode(b.as_slice()).ok())
            {
                return Some(v);
            }
        }
        self.default_value.as_ref().and_then(default_from_json)
    }
}

/// The server's protobuf schema for a backed-up schema.
#[allow(deprecated)] // collection-level auto_id is what 2.2/2.3 servers use
pub fn schema_to_proto(s: &CollectionSchema) -> pbs::CollectionSchema {
    pbs::CollectionSchema {
        name: s.name.clone(),
        description: s.description.clone(),
        auto_id: s.auto_id,
        enable_dynamic_field: s.enable_dynamic_field,
        properties: to_pairs(&s.properties),
        fields: s.fields.iter().map(field_to_proto).collect(),
        functions: s
            .functions
            .iter()
            .map(|f| pbs::FunctionSchema {
                name: f.name.clone(),
                id: f.id,
                description: f.description.clone(),
                r#type: f.function_type,
                input_field_names: f.input_field_names.clone(),
                input_field_ids: f.input_field_ids.clone(),
                output_field_names: f.output_field_names.clone(),
                output_field_ids: f.output_field_ids.clone(),
                params: to_pairs(&f.params),
            })
            .collect(),
        struct_array_fields: s
            .struct_array_fields
            .iter()
            .map(|f| pbs::StructArrayFieldSchema {
                field_id: f.field_id,
                name: f.name.clone(),
                description: f.description.clone(),
                fields: f.fields.iter().map(field_to_proto).collect(),
                type_params: to_pairs(&f.type_params),
                nullable: f.nullable,
            })
            .collect(),
        ..Default::default()
    }
}

fn default_to_json(v: &pbs::ValueField) -> Option<serde_json::Value> {
    use pbs::value_field::Data;
    let (k, v) = match v.data.as_ref()? {
        Data::BoolData(b) => ("bool_data", serde_json::json!(b)),
        Data::IntData(i) => ("int_data", serde_json::json!(i)),
        Data::LongData(i) => ("long_data", serde_json::json!(i)),
        Data::FloatData(f) => ("float_data", serde_json::json!(f)),
        Data::DoubleData(f) => ("double_data", serde_json::json!(f)),
        Data::StringData(s) => ("string_data", serde_json::json!(s)),
        _ => return None,
    };
    Some(serde_json::json!({ k: v }))
}

fn default_from_json(v: &serde_json::Value) -> Option<pbs::ValueField> {
    use pbs::value_field::Data;
    let (k, v) = v.as_object()?.iter().next()?;
    let data = match k.as_str() {
        "bool_data" => Data::BoolData(v.as_bool()?),
        "int_data" => Data::IntData(v.as_i64()? as i32),
        "long_data" => Data::LongData(v.as_i64()?),
        "float_data" => Data::FloatData(v.as_f64()? as f32),
        "double_data" => Data::DoubleData(v.as_f64()?),
        "string_data" => Data::StringData(v.as_str()?.to_string()),
        _ => return None,
    };
    Some(pbs::ValueField { data: Some(data) })
}

/// How a copy's content was checked; recorded per file in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// Streamed through the tool and hashed on the way (SHA-256).
    Sha256,
    /// Copied by the service, which returned the copy's SHA-256; the copy
    /// was conditional on the source's listed ETag.
    ServiceSha256,
    /// Copied by the service; the copy's ETag (an MD5 of the bytes) equals
    /// the source's listed ETag. `verify --deep` adds the SHA-256.
    Etag,
    /// Copied by the service; only the size is known to match (a
    /// multipart source or copy, whose ETag is no plain MD5).
    /// `verify --deep` adds the SHA-256.
    Size,
    /// Copied by the service, then read back in full to hash it.
    ReadBack,
}

// A logical backup: `_schema.json` beside an export's files, the
// `logical` block of the meta files, and each data file.

/// The collection's description beside an export's data files. Its name
/// starts with `_`, which pandas, pyarrow and DuckDB skip when they read
/// the directory.
pub const SCHEMA_FILE: &str = "_schema.json";
/// Its name in exports of versions before 0.8, still read.
pub const LEGACY_SCHEMA_FILE: &str = "schema.json";

/// `_schema.json`: the collection as a physical backup describes it
/// (schema, partitions, indexes, aliases, properties), the format, the
/// timestamp the rows were read at, and every data file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LogicalMeta {
    pub format_version: u32,
    pub format: Format,
    pub collection: CollectionBackupInfo,
    /// Milvus hybrid timestamp every query read at (0: strong consistency
    /// per query, when the server takes no timestamps).
    pub snapshot_ts: u64,
    /// The source server's version, e.g. `v2.3.5-lite`.
    pub server_version: String,
    pub rows: u64,
    pub files: Vec<DataFile>,
}

pub const LOGICAL_FORMAT_VERSION: u32 = 1;

/// A logical backup's data, in its `full_meta.json` and
/// `backup_meta.json` (`logical`): the format and, per collection, the
/// timestamp its rows were read at and every data file with its partition
/// and rows. Physical backups have none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogicalBackup {
    pub format: Format,
    pub collections: Vec<LogicalCollection>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogicalCollection {
    pub db_name: String,
    pub collection_name: String,
    /// Milvus hybrid timestamp every query read at.
    pub snapshot_ts: u64,
    pub rows: u64,
    /// Paths relative to the backup's folder.
    pub files: Vec<DataFile>,
    /// The primary-key ranges the rows were read in, each with its rows'
    /// digest and files: what an incremental backup compares with the
    /// live collection. Absent in backups of earlier versions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<LogicalRange>,
}

/// A primary key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Key {
    Int(i64),
    Str(String),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Int(v) => write!(f, "{v}"),
            Key::Str(s) => write!(f, "{}", serde_json::Value::from(s.as_str())),
        }
    }
}

/// One primary-key range of a logical backup's collection: keys from
/// `from` (inclusive; none: no lower bound) up to `to` (exclusive; none:
/// no upper bound) of `partition` (none: every partition).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogicalRange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    pub from: Option<Key>,
    pub to: Option<Key>,
    pub rows: u64,
    /// The sum of the rows' canonical hashes (32 hex digits).
    pub digest: String,
    /// Its data files (paths as in `files`).
    pub files: Vec<String>,
}

/// The data file format of a logical backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Parquet,
    /// JSON Lines: one object per row.
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Json => "jsonl",
        }
    }

    /// The format of a data file by its name; `None` for other files.
    pub fn of_file(key: &str) -> Option<Format> {
        let k = key.to_ascii_lowercase();
        let name = k.rsplit('/').next().unwrap_or(&k);
        if name.starts_with(['_', '.']) || name == LEGACY_SCHEMA_FILE {
            // ours, or hidden: what other readers skip too
            return None;
        }
        if k.ends_with(".parquet") {
            Some(Format::Parquet)
        } else if k.ends_with(".jsonl") || k.ends_with(".ndjson") {
            Some(Format::Json)
        } else if k.ends_with(".json") {
            // bulk-writer JSON (`{"rows": [...]}`) or JSON Lines
            Some(Format::Json)
        } else {
            None
        }
    }
}

impl std::str::FromStr for Format {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> crate::error::Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "parquet" => Ok(Format::Parquet),
            "json" | "jsonl" => Ok(Format::Json),
            other => Err(crate::error::Error::invalid_input(format!(
                "unknown format `{other}`: use parquet or json"
            ))),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Parquet => "parquet",
            Format::Json => "json",
        })
    }
}

/// One data file, as `schema.json` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataFile {
    /// Relative to the export's directory.
    pub path: String,
    /// The partition its rows belong to; empty: the collection's choice
    /// (default partition, or the partition key).
    pub partition: String,
    pub rows: u64,
    /// Stored size in bytes.
    pub size: u64,
    pub sha256: String,
    /// Raw size of its rows (what Milvus holds in memory), an estimate.
    pub raw_bytes: u64,
    /// The file's own bytes (its size and SHA-256) when it is stored
    /// encoded (compressed or encrypted in a backup); `size` and `sha256`
    /// are then those of the stored bytes.
    #[serde(skip)]
    pub plain: Option<(u64, String)>,
    #[serde(skip)]
    pub encoding: crate::model::encoding::Encoding,
}

impl DataFile {
    /// What reading the stored file must find (sizes, SHA-256s, encoding).
    pub fn expected(&self) -> crate::model::encoding::Expected<'_> {
        crate::model::encoding::Expected {
            size: self.size,
            sha256: &self.sha256,
            encoding: self.encoding,
            raw_size: self.plain.as_ref().map(|p| p.0),
            raw_sha256: self
                .plain
                .as_ref()
                .filter(|_| !self.encoding.encrypted)
                .map(|p| p.1.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_round_trips_through_proto() {
        let proto = pbs::CollectionSchema {
            name: "c".into(),
            description: "d".into(),
            enable_dynamic_field: true,
            fields: vec![pbs::FieldSchema {
                field_id: 100,
                name: "pk".into(),
                is_primary_key: true,
                data_type: 5,
                type_params: vec![KeyValuePair {
                    key: "k".into(),
                    value: "v".into(),
                }],
                default_value: Some(pbs::ValueField {
                    data: Some(pbs::value_field::Data::LongData(7)),
                }),
                is_partition_key: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        let ours = schema_from_proto(&proto);
        assert_eq!(schema_to_proto(&ours), proto);
    }

    #[test]
    fn field_names_match_the_go_tool() {
        let f = FieldSchema {
            field_id: 101,
            auto_id: true,
            ..Default::default()
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["fieldID"], 101);
        assert_eq!(v["autoID"], true);
        assert!(v.get("data_type").is_some());
        // The Go tool's files read with missing fields defaulted.
        let seg: SegmentBackupInfo = serde_json::from_str(r#"{"segment_id": 5, "binlogs": [{"fieldID": 0, "binlogs": [{"log_path": "p", "log_size": 3}]}]}"#).unwrap();
        assert_eq!(seg.binlogs[0].binlogs[0].log_size, 3);
    }
}
