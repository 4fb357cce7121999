//! Milvus access over gRPC (`milvus-sdk-rust`'s generated client).
//!
//! Owns: the [`Milvus`] trait (every call the core makes, so operations
//! run against a fake in unit tests), server versions, and its parts:
//! the gRPC client ([`MilvusClient`]: connecting, auth, TLS, per-call
//! database, retries of transient failures), `status` (Milvus's answers
//! as typed errors), [`rbac_api`] (users and roles) and [`selection`]
//! (which collections a selection names on a server).
//! Does not own: what the calls are used for (backup, restore).

use async_trait::async_trait;
use milvus::proto::milvus as pb;

use crate::error::{Error, Result};

pub use milvus::proto;

/// Calls an RPC whose whole answer is a `Status`.
macro_rules! status_rpc {
    ($self:ident, $what:expr, $db:expr, $req:expr, $method:ident) => {{
        let what: String = $what;
        let status = $self
            .call(
                &what,
                $db,
                $req,
                |mut c, r| async move { c.$method(r).await },
            )
            .await?;
        check_status(Some(&status), &what)
    }};
}

pub mod capability;
mod client;
pub mod rbac_api;
pub mod selection;
mod status;

pub use client::MilvusClient;
pub use status::check_status;

/// The database Milvus uses when none is named, and the only one on 2.2.
pub use crate::model::selection::DEFAULT_DB;

/// The Milvus calls the core makes, so that operations can run against a
/// fake in unit tests. [`MilvusClient`] is the real one.
#[async_trait]
pub trait Milvus: Send + Sync {
    /// `host:port` of the server, for messages.
    fn address(&self) -> &str;
    fn version(&self) -> Option<Version>;
    /// The version as the server reports it, e.g. `v2.3.5-lite`.
    fn version_text(&self) -> &str;
    /// What the server holds, by its kind and version.
    fn capabilities(&self) -> capability::Capabilities {
        capability::Capabilities::of(self.version_text())
    }

    /// Database names; `["default"]` on servers without databases.
    async fn list_databases(&self) -> Result<Vec<String>>;
    /// Collection names in one database.
    async fn list_collections(&self, db: &str) -> Result<Vec<String>>;
    /// The collection's schema, ids, shards, consistency, properties, aliases.
    async fn describe_collection(
        &self,
        db: &str,
        name: &str,
    ) -> Result<pb::DescribeCollectionResponse>;
    /// (name, id) of every partition.
    async fn show_partitions(&self, db: &str, collection: &str) -> Result<Vec<(String, i64)>>;
    /// Every index; empty when the collection has none.
    async fn describe_indexes(
        &self,
        db: &str,
        collection: &str,
    ) -> Result<Vec<pb::IndexDescription>>;
    /// `Loaded`, `Loading`, `NotLoad` or `NotExist`.
    async fn load_state(&self, db: &str, collection: &str) -> Result<String>;
    /// The collection's row count as Milvus's statistics report it.
    async fn row_count(&self, db: &str, collection: &str) -> Result<i64>;
    /// Starts a flush; returns the sealed segments and the flush timestamp.
    async fn flush(&self, db: &str, collection: &str) -> Result<(Vec<i64>, u64)>;
    /// Starts the flush of several collections of one database in one
    /// call (Milvus's `Flush` takes a list); each one's sealed segments and
    /// flush timestamp, in the order given. Fails whole when one of them
    /// cannot be flushed (e.g. was dropped).
    async fn flush_many(&self, db: &str, collections: &[String]) -> Result<Vec<(Vec<i64>, u64)>> {
        let mut flushed = Vec::with_capacity(collections.len());
        for c in collections {
            flushed.push(self.flush(db, c).await?);
        }
        Ok(flushed)
    }
    async fn flush_done(
        &self,
        db: &str,
        collection: &str,
        segments: &[i64],
        flush_ts: u64,
    ) -> Result<bool>;
    async fn persistent_segments(
        &self,
        db: &str,
        collection: &str,
    ) -> Result<Vec<pb::PersistentSegmentInfo>>;
    /// A database's properties (replica number, resource groups, quotas,
    /// deny reading/writing); none on servers without `DescribeDatabase`.
    async fn database_properties(&self, db: &str) -> Result<Vec<proto::common::KeyValuePair>>;
    async fn create_database(
        &self,
        db: &str,
        properties: Vec<proto::common::KeyValuePair>,
    ) -> Result<()>;
    async fn create_collection(&self, req: pb::CreateCollectionRequest) -> Result<()>;
    async fn drop_collection(&self, db: &str, name: &str) -> Result<()>;
    async fn create_partition(&self, db: &str, collection: &str, partition: &str) -> Result<()>;
    async fn create_index(
        &self,
        db: &str,
        collection: &str,
        field: &str,
        index_name: &str,
        params: Vec<proto::common::KeyValuePair>,
    ) -> Result<()>;
    async fn drop_index(
        &self,
        db: &str,
        collection: &str,
        field: &str,
        index_name: &str,
    ) -> Result<()>;
    async fn load_collection(&self, db: &str, collection: &str) -> Result<()>;
    async fn create_alias(&self, db: &str, collection: &str, alias: &str) -> Result<()>;
    async fn drop_alias(&self, db: &str, alias: &str) -> Result<()>;
    /// Renames a collection within its database.
    async fn rename_collection(&self, db: &str, old: &str, new: &str) -> Result<()>;
    /// Starts a bulk import; returns the server's task ids.
    async fn import(&self, req: pb::ImportRequest) -> Result<Vec<i64>>;
    async fn import_state(&self, task: i64) -> Result<pb::GetImportStateResponse>;
    /// The import tasks Milvus knows for a collection (none where it cannot
    /// list them).
    async fn list_import_tasks(
        &self,
        _db: &str,
        _collection: &str,
    ) -> Result<Vec<pb::GetImportStateResponse>> {
        Ok(Vec::new())
    }
    /// Rows matching `expr` with strong consistency, as Milvus's columns;
    /// at most `limit` rows when given. The collection must be loaded.
    async fn query(
        &self,
        db: &str,
        collection: &str,
        expr: &str,
        output_fields: &[String],
        limit: Option<u64>,
    ) -> Result<Vec<proto::schema::FieldData>>;
    /// One page of rows for an export: `expr` in `partitions` (all when
    /// empty), at most `limit` rows in primary-key order (`iterator`), as of
    /// `ts` when non-zero (no limit when `limit` is 0) (guarantee and travel timestamp), else strongly
    /// consistent. Returns the columns and the server's session timestamp
    /// (0 when it sends none).
    async fn query_page(
        &self,
        _db: &str,
        _collection: &str,
        _page: &QueryPage,
    ) -> Result<(Vec<proto::schema::FieldData>, u64)> {
        Err(Error::unsupported("paged queries"))
    }
    /// Inserts rows given as columns; returns the number inserted.
    async fn insert(
        &self,
        _db: &str,
        _collection: &str,
        _partition: &str,
        _columns: Vec<proto::schema::FieldData>,
        _rows: u32,
    ) -> Result<i64> {
        Err(Error::unsupported("inserts"))
    }
    /// Deletes the rows matching `expr` (all partitions when `partition`
    /// is empty).
    async fn delete(
        &self,
        _db: &str,
        _collection: &str,
        _partition: &str,
        _expr: &str,
    ) -> Result<()> {
        Err(Error::unsupported("deletes"))
    }
    async fn release_collection(&self, _db: &str, _collection: &str) -> Result<()> {
        Err(Error::unsupported("releasing collections"))
    }
    /// Users, roles and grants (`--rbac`); `None` where not available.
    fn rbac(&self) -> Option<&dyn rbac_api::MilvusRbac> {
        None
    }
}

/// What [`Milvus::query_page`] asks for.
#[derive(Debug, Clone, Default)]
pub struct QueryPage {
    pub expr: String,
    pub output_fields: Vec<String>,
    pub partitions: Vec<String>,
    pub limit: u64,
    /// Hybrid timestamp to read at; 0 for strong consistency.
    pub ts: u64,
    /// Also as the travel timestamp (MVCC): rows as of `ts`, not later
    /// writes. Milvus 2.2 refuses it unless it keeps history
    /// (`common.retentionDuration`).
    pub travel: bool,
}

/// A parsed Milvus server version, e.g. `v2.3.5-lite` → 2.3.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim().trim_start_matches(['v', 'V']);
        let core = t.split(['-', '+', ' ']).next()?;
        let mut it = core.split('.').map(|p| p.parse::<u32>());
        Some(Version {
            major: it.next()?.ok()?,
            minor: it.next().unwrap_or(Ok(0)).ok()?,
            patch: it.next().unwrap_or(Ok(0)).ok()?,
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// `SegmentState` values of `PersistentSegmentInfo.state`.
pub mod segment_state {
    pub const SEALED: i32 = 3;
    pub const FLUSHED: i32 = 4;
    pub const FLUSHING: i32 = 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            Version::parse("v2.3.5-lite"),
            Some(Version {
                major: 2,
                minor: 3,
                patch: 5
            })
        );
        assert_eq!(
            Version::parse("2.2.16"),
            Some(Version {
                major: 2,
                minor: 2,
                patch: 16
            })
        );
        assert!(Version::parse("v2.2.16").unwrap() < Version::parse("v2.3.0").unwrap());
        assert_eq!(Version::parse("garbage"), None);
    }
}
