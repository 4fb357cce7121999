//! The real [`Milvus`]: a gRPC client (`milvus-sdk-rust`'s generated
//! one) with connecting (auth, TLS modes 0/1/2, timeouts), per-call
//! database selection (the `dbname` header) and retries with backoff on
//! transient failures only. Does not own turning a `Status` into an error
//! ([`super::status`]).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use milvus::proto::milvus as pb;
use milvus::proto::milvus::milvus_service_client::MilvusServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::MilvusConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::milvus::capability::Feature;
use crate::milvus::rbac_api;
use crate::milvus::status::{check_status, status_error, unreachable_error};
use crate::milvus::{proto, Milvus, QueryPage, Version, DEFAULT_DB};

/// A connected Milvus client. Cheap to clone.
#[derive(Clone)]
pub struct MilvusClient {
    inner: MilvusServiceClient<Channel>,
    auth: Option<MetadataValue<tonic::metadata::Ascii>>,
    address: String,
    /// The server's version string as it reports it, e.g. `v2.3.5-lite`.
    pub version_text: String,
    pub version: Option<Version>,
}

const ATTEMPTS: u32 = 4;

impl MilvusClient {
    /// Connects and asks the server for its version, within
    /// `milvus.connectTimeout`: a server that accepts connections and never
    /// answers fails fast, and a port that speaks HTTP is named as such.
    pub async fn connect(cfg: &MilvusConfig) -> Result<MilvusClient> {
        let address = format!("{}:{}", cfg.address, cfg.port);
        let wait = Duration::from_secs(cfg.connect_timeout.max(1));
        match tokio::time::timeout(wait, Self::handshake(cfg, &address)).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) if e.kind() == ErrorKind::Unreachable || e.kind() == ErrorKind::Remote => {
                if cfg.tls_mode == 0 && answers_http(&address).await {
                    Err(Error::new(
                        ErrorKind::Unreachable,
                        format!("{address} answers HTTP, not Milvus's gRPC: is this Milvus's gRPC port (19530)? Check milvus.address and milvus.port in the config file"),
                    ))
                } else {
                    Err(e)
                }
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::new(
                ErrorKind::Unreachable,
                format!("Milvus at {address} did not answer within {} s (connection timeout) — check that Milvus is running and healthy there, that milvus.address and milvus.port name its gRPC port (19530), and no firewall holds the connection; raise milvus.connectTimeout for a slow link", wait.as_secs()),
            )),
        }
    }

    async fn handshake(cfg: &MilvusConfig, address: &str) -> Result<MilvusClient> {
        let scheme = if cfg.tls_mode == 0 { "http" } else { "https" };
        let uri = format!("{scheme}://{address}");
        let mut endpoint = Endpoint::from_shared(uri)
            .map_err(|e| {
                Error::invalid_input(format!(
                    "milvus.address `{}` is not a valid host: {e}",
                    cfg.address
                ))
            })?
            .connect_timeout(Duration::from_secs(cfg.connect_timeout.max(1)))
            .timeout(Duration::from_secs(cfg.request_timeout))
            .tcp_nodelay(true);
        if cfg.tls_mode > 0 {
            endpoint = endpoint.tls_config(tls_config(cfg)?).map_err(|e| {
                Error::invalid_input(format!("TLS settings for Milvus at {address}: {e}"))
            })?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| unreachable_error(address, &e))?;
        let inner = MilvusServiceClient::new(channel)
            .max_decoding_message_size(512 * 1024 * 1024)
            .max_encoding_message_size(512 * 1024 * 1024);
        let auth = if cfg.authorization_enabled {
            let token = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                cfg.user,
                cfg.password.expose()
            ));
            Some(MetadataValue::try_from(token).map_err(|_| {
                Error::invalid_input(
                    "milvus.user/milvus.password contain characters that cannot be sent",
                )
            })?)
        } else {
            None
        };
        let mut client = MilvusClient {
            inner,
            auth,
            address: address.to_string(),
            version_text: String::new(),
            version: None,
        };
        let resp = client
            .call(
                "GetVersion",
                "",
                pb::GetVersionRequest {},
                |mut c, r| async move { c.get_version(r).await },
            )
            .await?;
        check_status(resp.status.as_ref(), "GetVersion")?;
        client.version = Version::parse(&resp.version);
        client.version_text = resp.version;
        Ok(client)
    }

    /// Runs one RPC with the auth and database headers, retrying transient
    /// transport failures with backoff.
    pub async fn call<Req, Resp, F, Fut>(
        &self,
        what: &str,
        db: &str,
        msg: Req,
        f: F,
    ) -> Result<Resp>
    where
        Req: Clone,
        F: Fn(MilvusServiceClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<Resp>, tonic::Status>>,
    {
        self.call_attempts(ATTEMPTS, what, db, msg, f).await
    }

    /// [`call`](Self::call) with at most `attempts` tries: 1 for a call that
    /// must not run twice (an import), whose caller checks before retrying.
    async fn call_attempts<Req, Resp, F, Fut>(
        &self,
        attempts: u32,
        what: &str,
        db: &str,
        msg: Req,
        f: F,
    ) -> Result<Resp>
    where
        Req: Clone,
        F: Fn(MilvusServiceClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let mut delay = Duration::from_millis(300);
        let mut attempt = 1;
        loop {
            let mut req = tonic::Request::new(msg.clone());
            if let Some(auth) = &self.auth {
                req.metadata_mut().insert("authorization", auth.clone());
            }
            if !db.is_empty() {
                if let Ok(v) = MetadataValue::try_from(db) {
                    req.metadata_mut().insert("dbname", v);
                }
            }
            match f(self.inner.clone(), req).await {
                Ok(resp) => return Ok(resp.into_inner()),
                Err(status) => {
                    let err = status_error(&self.address, what, &status);
                    if !err.is_temporary() || attempt >= attempts {
                        return Err(err);
                    }
                    tracing::debug!(what, attempt, "retrying after transient error: {status}");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }
}

// After `status_rpc!`, which it uses.

/// Writes: what restore needs.

#[async_trait]
impl Milvus for MilvusClient {
    fn address(&self) -> &str {
        &self.address
    }

    fn version(&self) -> Option<Version> {
        self.version
    }

    fn version_text(&self) -> &str {
        &self.version_text
    }
    fn rbac(&self) -> Option<&dyn rbac_api::MilvusRbac> {
        Some(self)
    }
    /// Database names; `["default"]` on servers without databases.
    async fn list_databases(&self) -> Result<Vec<String>> {
        if !self.capabilities().has(Feature::Databases) {
            return Ok(vec![DEFAULT_DB.to_string()]);
        }
        let resp = self
            .call(
                "ListDatabases",
                "",
                pb::ListDatabasesRequest::default(),
                |mut c, r| async move { c.list_databases(r).await },
            )
            .await;
        match resp {
            Ok(resp) => {
                check_status(resp.status.as_ref(), "ListDatabases")?;
                Ok(resp.db_names)
            }
            Err(e) if e.kind() == ErrorKind::Unsupported => Ok(vec![DEFAULT_DB.to_string()]),
            Err(e) => Err(e),
        }
    }

    /// Collection names in one database.
    async fn list_collections(&self, db: &str) -> Result<Vec<String>> {
        let req = pb::ShowCollectionsRequest {
            db_name: db.to_string(),
            ..Default::default()
        };
        let resp = self
            .call("ShowCollections", db, req, |mut c, r| async move {
                c.show_collections(r).await
            })
            .await?;
        check_status(
            resp.status.as_ref(),
            &format!("ShowCollections in database `{db}`"),
        )?;
        Ok(resp.collection_names)
    }

    /// The collection's schema, ids, shards, consistency, properties, aliases.
    async fn describe_collection(
        &self,
        db: &str,
        name: &str,
    ) -> Result<pb::DescribeCollectionResponse> {
        let req = pb::DescribeCollectionRequest {
            db_name: db.to_string(),
            collection_name: name.to_string(),
            ..Default::default()
        };
        let resp = self
            .call("DescribeCollection", db, req, |mut c, r| async move {
                c.describe_collection(r).await
            })
            .await?;
        check_status(
            resp.status.as_ref(),
            &format!("DescribeCollection of `{db}.{name}`"),
        )?;
        Ok(resp)
    }

    /// (partition name, partition id) pairs.
    async fn show_partitions(&self, db: &str, collection: &str) -> Result<Vec<(String, i64)>> {
        let req = pb::ShowPartitionsRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            ..Default::default()
        };
        let resp = self
            .call("ShowPartitions", db, req, |mut c, r| async move {
                c.show_partitions(r).await
            })
            .await?;
        check_status(
            resp.status.as_ref(),
            &format!("ShowPartitions of `{db}.{collection}`"),
        )?;
        // Milvus Lite names the partitions but gives no ids (0 here).
        let ids = resp.partition_i_ds;
        Ok(resp
            .partition_names
            .into_iter()
            .enumerate()
            .map(|(i, name)| (name, ids.get(i).copied().unwrap_or(0)))
            .collect())
    }

    /// The collection's indexes; empty when it has none.
    async fn describe_indexes(
        &self,
        db: &str,
        collection: &str,
    ) -> Result<Vec<pb::IndexDescription>> {
        let req = pb::DescribeIndexRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            ..Default::default()
        };
        let resp = self
            .call("DescribeIndex", db, req, |mut c, r| async move {
                c.describe_index(r).await
            })
            .await?;
        match check_status(
            resp.status.as_ref(),
            &format!("DescribeIndex of `{db}.{collection}`"),
        ) {
            Ok(()) => Ok(resp.index_descriptions),
            // "index not found" is how a collection without index answers.
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `Loaded`, `NotLoad`, `Loading` or `NotExist`, as the Go tool records it.
    async fn load_state(&self, db: &str, collection: &str) -> Result<String> {
        let req = pb::GetLoadStateRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            ..Default::default()
        };
        let resp = self
            .call("GetLoadState", db, req, |mut c, r| async move {
                c.get_load_state(r).await
            })
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::Unsupported => return Ok("NotLoad".into()),
            Err(e) => return Err(e),
        };
        check_status(
            resp.status.as_ref(),
            &format!("GetLoadState of `{db}.{collection}`"),
        )?;
        Ok(match resp.state {
            3 => "Loaded",
            2 => "Loading",
            0 => "NotExist",
            _ => "NotLoad",
        }
        .to_string())
    }

    async fn row_count(&self, db: &str, collection: &str) -> Result<i64> {
        let req = pb::GetCollectionStatisticsRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            ..Default::default()
        };
        let what = format!("GetCollectionStatistics of `{db}.{collection}`");
        let resp = self
            .call(&what, db, req, |mut c, r| async move {
                c.get_collection_statistics(r).await
            })
            .await?;
        check_status(resp.status.as_ref(), &what)?;
        Ok(resp
            .stats
            .iter()
            .find(|kv| kv.key == "row_count")
            .and_then(|kv| kv.value.parse().ok())
            .unwrap_or(0))
    }

    /// Seals and persists the collection's growing data; returns the segment
    /// ids and flush timestamp to wait on.
    async fn flush(&self, db: &str, collection: &str) -> Result<(Vec<i64>, u64)> {
        let mut flushed = self.flush_many(db, &[collection.to_string()]).await?;
        Ok(flushed.remove(0))
    }

    async fn flush_many(&self, db: &str, collections: &[String]) -> Result<Vec<(Vec<i64>, u64)>> {
        let req = pb::FlushRequest {
            db_name: db.to_string(),
            collection_names: collections.to_vec(),
            ..Default::default()
        };
        let resp = self
            .call("Flush", db, req, |mut c, r| async move { c.flush(r).await })
            .await?;
        let what = match collections {
            [one] => format!("Flush of `{db}.{one}`"),
            _ => format!("Flush of {} collections of `{db}`", collections.len()),
        };
        check_status(resp.status.as_ref(), &what)?;
        let flushed = collections.iter().map(|collection| {
            let mut segments: Vec<i64> = resp
                .coll_seg_i_ds
                .get(collection)
                .map(|l| l.data.clone())
                .unwrap_or_default();
            if let Some(l) = resp.flush_coll_seg_i_ds.get(collection) {
                segments.extend(l.data.iter().copied());
            }
            segments.sort_unstable();
            segments.dedup();
            let ts = resp.coll_flush_ts.get(collection).copied().unwrap_or(0);
            (segments, ts)
        });
        Ok(flushed.collect())
    }

    /// Whether the segments of a flush are persisted.
    async fn flush_done(
        &self,
        db: &str,
        collection: &str,
        segments: &[i64],
        flush_ts: u64,
    ) -> Result<bool> {
        let req = pb::GetFlushStateRequest {
            segment_i_ds: segments.to_vec(),
            flush_ts,
            db_name: db.to_string(),
            collection_name: collection.to_string(),
        };
        let resp = self
            .call("GetFlushState", db, req, |mut c, r| async move {
                c.get_flush_state(r).await
            })
            .await?;
        check_status(
            resp.status.as_ref(),
            &format!("GetFlushState of `{db}.{collection}`"),
        )?;
        Ok(resp.flushed)
    }

    /// The collection's persisted segments (all states).
    async fn persistent_segments(
        &self,
        db: &str,
        collection: &str,
    ) -> Result<Vec<pb::PersistentSegmentInfo>> {
        let req = pb::GetPersistentSegmentInfoRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            ..Default::default()
        };
        let resp = self
            .call("GetPersistentSegmentInfo", db, req, |mut c, r| async move {
                c.get_persistent_segment_info(r).await
            })
            .await?;
        check_status(
            resp.status.as_ref(),
            &format!("GetPersistentSegmentInfo of `{db}.{collection}`"),
        )?;
        Ok(resp.infos)
    }

    async fn database_properties(&self, db: &str) -> Result<Vec<proto::common::KeyValuePair>> {
        if !self.capabilities().has(Feature::Databases) {
            return Ok(Vec::new());
        }
        let resp = self
            .call(
                &format!("DescribeDatabase `{db}`"),
                "",
                pb::DescribeDatabaseRequest {
                    db_name: db.to_string(),
                    ..Default::default()
                },
                |mut c, r| async move { c.describe_database(r).await },
            )
            .await;
        match resp {
            Ok(resp) => {
                check_status(resp.status.as_ref(), &format!("DescribeDatabase `{db}`"))?;
                Ok(resp.properties)
            }
            // Milvus 2.3 has databases but no DescribeDatabase
            Err(e) if e.kind() == ErrorKind::Unsupported => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn create_database(
        &self,
        db: &str,
        properties: Vec<proto::common::KeyValuePair>,
    ) -> Result<()> {
        let req = pb::CreateDatabaseRequest {
            db_name: db.to_string(),
            properties,
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("CreateDatabase `{db}`"),
            "",
            req,
            create_database
        )
    }

    async fn create_collection(&self, req: pb::CreateCollectionRequest) -> Result<()> {
        let db = req.db_name.clone();
        status_rpc!(
            self,
            format!("CreateCollection `{db}.{}`", req.collection_name),
            &db,
            req,
            create_collection
        )
    }

    async fn drop_collection(&self, db: &str, name: &str) -> Result<()> {
        let req = pb::DropCollectionRequest {
            db_name: db.to_string(),
            collection_name: name.to_string(),
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("DropCollection `{db}.{name}`"),
            db,
            req,
            drop_collection
        )
    }

    async fn create_partition(&self, db: &str, collection: &str, partition: &str) -> Result<()> {
        let req = pb::CreatePartitionRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            partition_name: partition.to_string(),
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("CreatePartition `{partition}` of `{db}.{collection}`"),
            db,
            req,
            create_partition
        )
    }

    async fn create_index(
        &self,
        db: &str,
        collection: &str,
        field: &str,
        index_name: &str,
        params: Vec<proto::common::KeyValuePair>,
    ) -> Result<()> {
        let req = pb::CreateIndexRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            field_name: field.to_string(),
            index_name: index_name.to_string(),
            extra_params: params,
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("CreateIndex `{index_name}` on `{db}.{collection}.{field}`"),
            db,
            req,
            create_index
        )
    }

    async fn drop_index(
        &self,
        db: &str,
        collection: &str,
        field: &str,
        index_name: &str,
    ) -> Result<()> {
        let req = pb::DropIndexRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            field_name: field.to_string(),
            index_name: index_name.to_string(),
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("DropIndex `{index_name}` on `{db}.{collection}`"),
            db,
            req,
            drop_index
        )
    }

    async fn load_collection(&self, db: &str, collection: &str) -> Result<()> {
        let req = pb::LoadCollectionRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            replica_number: 1,
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("LoadCollection `{db}.{collection}`"),
            db,
            req,
            load_collection
        )
    }

    async fn create_alias(&self, db: &str, collection: &str, alias: &str) -> Result<()> {
        let req = pb::CreateAliasRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            alias: alias.to_string(),
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("CreateAlias `{alias}` for `{db}.{collection}`"),
            db,
            req,
            create_alias
        )
    }

    async fn drop_alias(&self, db: &str, alias: &str) -> Result<()> {
        let req = pb::DropAliasRequest {
            db_name: db.to_string(),
            alias: alias.to_string(),
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("DropAlias `{db}.{alias}`"),
            db,
            req,
            drop_alias
        )
    }

    async fn rename_collection(&self, db: &str, old: &str, new: &str) -> Result<()> {
        let req = pb::RenameCollectionRequest {
            db_name: db.to_string(),
            old_name: old.to_string(),
            new_name: new.to_string(),
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("RenameCollection `{db}.{old}` to `{new}`"),
            db,
            req,
            rename_collection
        )
    }

    /// Starts a bulk import; returns the server's task ids. Tried once: a
    /// lost answer may hide a started import (see `list_import_tasks`).
    async fn import(&self, req: pb::ImportRequest) -> Result<Vec<i64>> {
        let db = req.db_name.clone();
        let what = format!("Import into `{db}.{}`", req.collection_name);
        let resp = self
            .call_attempts(
                1,
                &what,
                &db,
                req,
                |mut c, r| async move { c.import(r).await },
            )
            .await?;
        check_status(resp.status.as_ref(), &what)?;
        Ok(resp.tasks)
    }

    /// The import tasks Milvus knows for a collection.
    async fn list_import_tasks(
        &self,
        db: &str,
        collection: &str,
    ) -> Result<Vec<pb::GetImportStateResponse>> {
        let what = format!("ListImportTasks of `{db}.{collection}`");
        let req = pb::ListImportTasksRequest {
            collection_name: collection.to_string(),
            db_name: db.to_string(),
            limit: 0,
        };
        let resp = self
            .call(&what, db, req, |mut c, r| async move {
                c.list_import_tasks(r).await
            })
            .await?;
        check_status(resp.status.as_ref(), &what)?;
        Ok(resp.tasks)
    }

    /// The state of one import task. The call runs to completion even when
    /// the caller is dropped (a cancelled task): Milvus 2.3.5's proxy
    /// crashes on a GetImportState whose client went away mid-call.
    async fn import_state(&self, task: i64) -> Result<pb::GetImportStateResponse> {
        let req = pb::GetImportStateRequest { task };
        let this = self.clone();
        let resp = tokio::spawn(async move {
            this.call("GetImportState", "", req, |mut c, r| async move {
                c.get_import_state(r).await
            })
            .await
        })
        .await
        .map_err(|e| Error::internal(format!("GetImportState of task {task}: {e}")))??;
        check_status(
            resp.status.as_ref(),
            &format!("GetImportState of task {task}"),
        )?;
        Ok(resp)
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
    ) -> Result<Vec<proto::schema::FieldData>> {
        let req = pb::QueryRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            expr: expr.to_string(),
            output_fields: output_fields.to_vec(),
            query_params: limit
                .map(|n| proto::common::KeyValuePair {
                    key: "limit".into(),
                    value: n.to_string(),
                })
                .into_iter()
                .collect(),
            consistency_level: proto::common::ConsistencyLevel::Strong as i32,
            ..Default::default()
        };
        let what = format!("Query of `{db}.{collection}`");
        let resp = self
            .call(&what, db, req, |mut c, r| async move { c.query(r).await })
            .await?;
        check_status(resp.status.as_ref(), &what)?;
        Ok(resp.fields_data)
    }

    async fn query_page(
        &self,
        db: &str,
        collection: &str,
        page: &QueryPage,
    ) -> Result<(Vec<proto::schema::FieldData>, u64)> {
        use proto::common::{ConsistencyLevel, KeyValuePair};
        let kv = |k: &str, v: String| KeyValuePair {
            key: k.into(),
            value: v,
        };
        let req = pb::QueryRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            expr: page.expr.clone(),
            output_fields: page.output_fields.clone(),
            partition_names: page.partitions.clone(),
            // `iterator`: rows in primary-key order (Milvus Lite needs it
            // asked; Milvus merges segment results by key anyway).
            query_params: if page.limit == 0 {
                Vec::new()
            } else {
                vec![
                    kv("limit", page.limit.to_string()),
                    kv("iterator", "True".into()),
                ]
            },
            travel_timestamp: if page.travel { page.ts } else { 0 },
            guarantee_timestamp: page.ts,
            consistency_level: if page.ts == 0 {
                ConsistencyLevel::Strong as i32
            } else {
                ConsistencyLevel::Customized as i32
            },
            ..Default::default()
        };
        let what = format!("Query of `{db}.{collection}`");
        let resp = self
            .call(&what, db, req, |mut c, r| async move { c.query(r).await })
            .await?;
        check_status(resp.status.as_ref(), &what)?;
        Ok((resp.fields_data, resp.session_ts))
    }

    async fn insert(
        &self,
        db: &str,
        collection: &str,
        partition: &str,
        columns: Vec<proto::schema::FieldData>,
        rows: u32,
    ) -> Result<i64> {
        let req = pb::InsertRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            partition_name: partition.to_string(),
            fields_data: columns,
            num_rows: rows,
            ..Default::default()
        };
        let what = format!("Insert into `{db}.{collection}`");
        let resp = self
            .call(&what, db, req, |mut c, r| async move { c.insert(r).await })
            .await?;
        check_status(resp.status.as_ref(), &what)?;
        Ok(resp.insert_cnt)
    }

    async fn delete(&self, db: &str, collection: &str, partition: &str, expr: &str) -> Result<()> {
        let req = pb::DeleteRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            partition_name: partition.to_string(),
            expr: expr.to_string(),
            ..Default::default()
        };
        let what = format!("Delete from `{db}.{collection}`");
        let resp = self
            .call(&what, db, req, |mut c, r| async move { c.delete(r).await })
            .await?;
        check_status(resp.status.as_ref(), &what)
    }

    async fn release_collection(&self, db: &str, collection: &str) -> Result<()> {
        let req = pb::ReleaseCollectionRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("ReleaseCollection `{db}.{collection}`"),
            db,
            req,
            release_collection
        )
    }
}

fn tls_config(cfg: &MilvusConfig) -> Result<ClientTlsConfig> {
    let mut tls = ClientTlsConfig::new();
    if !cfg.server_name.is_empty() {
        tls = tls.domain_name(cfg.server_name.clone());
    }
    if cfg.ca_cert_path.is_empty() {
        tls = tls.with_native_roots();
    } else {
        let pem = read_file(&cfg.ca_cert_path, "milvus.caCertPath")?;
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    if cfg.tls_mode == 2 {
        if cfg.mtls_cert_path.is_empty() || cfg.mtls_key_path.is_empty() {
            return Err(Error::invalid_input(
                "milvus.tlsMode 2 (mutual TLS) needs milvus.mtlsCertPath and milvus.mtlsKeyPath",
            ));
        }
        let cert = read_file(&cfg.mtls_cert_path, "milvus.mtlsCertPath")?;
        let key = read_file(&cfg.mtls_key_path, "milvus.mtlsKeyPath")?;
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Ok(tls)
}

fn read_file(path: &str, key: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::invalid_input(format!("cannot read {key} `{path}`: {e}")))
}

/// Whether `address` answers a plain HTTP/1 request: a gRPC client pointed
/// at Milvus's HTTP port (9091) or a web server sees only a protocol error.
async fn answers_http(address: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
        stream
            .write_all(format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.ok()?;
        Some(&head == b"HTTP/")
    };
    tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
