//! Fakes for unit tests of the operations: a [`FakeMilvus`] that keeps its
//! collections in memory and its binlogs in an in-memory [`Storage`], and
//! [`Kit`], a [`Context`] wired to it and to an in-memory backup storage.
//!
//! The fake is honest where the operations depend on it: a segment's files
//! exist in its storage, `Import` fails when the paths it is given hold no
//! insert logs, and dropped or created collections are recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::config::Config;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::milvus::proto::common::KeyValuePair;
use crate::milvus::proto::milvus as pb;
use crate::milvus::proto::schema as pbs;
use crate::milvus::{segment_state, Milvus, QueryPage, Version};
use crate::model::layout;
use crate::storage::{Side, Storage, StorageSpec};

pub struct FakeCollection {
    pub db: String,
    pub name: String,
    pub id: i64,
    pub partition_id: i64,
    /// (segment id, rows)
    pub segments: Vec<(i64, i64)>,
}

#[derive(Default)]
pub struct FakeState {
    pub collections: Vec<FakeCollection>,
    /// `db.coll` of every collection created by a restore.
    pub created: Vec<String>,
    pub dropped: Vec<String>,
    /// `db.old->new` of every rename.
    pub renamed: Vec<String>,
    /// (target `db.coll`, partition, paths) of every import.
    pub imports: Vec<(String, String, Vec<String>)>,
    /// Rows of each started import task, `None` when it fails.
    pub tasks: BTreeMap<i64, Option<i64>>,
    /// Segments whose import fails.
    pub failing_segments: Vec<i64>,
    /// Segments whose Import call finds Milvus unreachable (nothing starts).
    pub unreachable_imports: Vec<i64>,
    /// Rows a loaded collection (`db.coll`) serves: its `count(*)`. Those
    /// not listed are not loaded.
    pub served: BTreeMap<String, i64>,
    /// `db.coll` of every release.
    pub released: Vec<String>,
    /// Every query asked, in order.
    pub queries: Vec<QueryPage>,
    next_id: i64,
}

pub struct FakeMilvus {
    pub state: Mutex<FakeState>,
    /// Milvus's own storage, where its binlogs are.
    pub storage: Storage,
}

impl FakeMilvus {
    pub fn new(storage: Storage) -> FakeMilvus {
        FakeMilvus {
            state: Mutex::new(FakeState {
                next_id: 1000,
                ..Default::default()
            }),
            storage,
        }
    }

    /// Adds a flushed collection in `default` with one segment per entry of
    /// `rows`, each with two fields of `files_per_field` insert logs of
    /// `file_size` bytes, and a delete log.
    pub async fn add_collection(
        &self,
        name: &str,
        rows: &[i64],
        files_per_field: usize,
        file_size: usize,
    ) {
        let (id, partition_id, segments) = {
            let mut st = self.state.lock().unwrap();
            st.next_id += 10;
            let id = st.next_id;
            let segments: Vec<(i64, i64)> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (id * 100 + i as i64, *r))
                .collect();
            st.collections.push(FakeCollection {
                db: "default".into(),
                name: name.into(),
                id,
                partition_id: id + 1,
                segments: segments.clone(),
            });
            (id, id + 1, segments)
        };
        for (s, _) in segments {
            let insert = layout::milvus_insert_log_dir(id, partition_id, s);
            for field in [100, 101] {
                for log in 0..files_per_field {
                    let bytes: Vec<u8> = (0..file_size)
                        .map(|i| (i + log + s as usize) as u8)
                        .collect();
                    self.storage
                        .write(&format!("{insert}{field}/{}", 9000 + log), bytes)
                        .await
                        .unwrap();
                }
            }
            let delta = layout::milvus_delta_log_dir(id, partition_id, s);
            self.storage
                .write(&format!("{delta}9999"), vec![7u8; 64])
                .await
                .unwrap();
        }
    }

    fn find<'a>(st: &'a FakeState, db: &str, name: &str) -> Result<&'a FakeCollection> {
        st.collections
            .iter()
            .find(|c| c.db == db && c.name == name)
            .ok_or_else(|| Error::not_found(format!("collection {db}.{name} not found")))
    }
}

fn schema(name: &str) -> pbs::CollectionSchema {
    pbs::CollectionSchema {
        name: name.into(),
        fields: vec![
            pbs::FieldSchema {
                field_id: 100,
                name: "pk".into(),
                is_primary_key: true,
                data_type: pbs::DataType::Int64 as i32,
                ..Default::default()
            },
            pbs::FieldSchema {
                field_id: 101,
                name: "vec".into(),
                data_type: pbs::DataType::FloatVector as i32,
                type_params: vec![KeyValuePair {
                    key: "dim".into(),
                    value: "4".into(),
                }],
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

#[async_trait]
impl Milvus for FakeMilvus {
    fn address(&self) -> &str {
        "fake:19530"
    }
    fn version(&self) -> Option<Version> {
        Version::parse("v2.3.5")
    }
    fn version_text(&self) -> &str {
        "v2.3.5-fake"
    }
    async fn list_databases(&self) -> Result<Vec<String>> {
        Ok(vec!["default".into()])
    }
    async fn list_collections(&self, db: &str) -> Result<Vec<String>> {
        let st = self.state.lock().unwrap();
        Ok(st
            .collections
            .iter()
            .filter(|c| c.db == db)
            .map(|c| c.name.clone())
            .collect())
    }
    async fn describe_collection(
        &self,
        db: &str,
        name: &str,
    ) -> Result<pb::DescribeCollectionResponse> {
        let st = self.state.lock().unwrap();
        let c = Self::find(&st, db, name)?;
        Ok(pb::DescribeCollectionResponse {
            schema: Some(schema(name)),
            collection_id: c.id,
            shards_num: 1,
            collection_name: name.into(),
            db_name: db.into(),
            ..Default::default()
        })
    }
    async fn show_partitions(&self, db: &str, collection: &str) -> Result<Vec<(String, i64)>> {
        let st = self.state.lock().unwrap();
        let c = Self::find(&st, db, collection)?;
        Ok(vec![("_default".into(), c.partition_id)])
    }
    async fn describe_indexes(&self, _: &str, _: &str) -> Result<Vec<pb::IndexDescription>> {
        Ok(Vec::new())
    }
    async fn load_state(&self, db: &str, collection: &str) -> Result<String> {
        let st = self.state.lock().unwrap();
        let loaded = st.served.contains_key(&format!("{db}.{collection}"));
        Ok(if loaded { "Loaded" } else { "NotLoad" }.into())
    }
    async fn row_count(&self, db: &str, collection: &str) -> Result<i64> {
        let st = self.state.lock().unwrap();
        Ok(Self::find(&st, db, collection)?
            .segments
            .iter()
            .map(|(_, r)| r)
            .sum())
    }
    async fn flush(&self, db: &str, collection: &str) -> Result<(Vec<i64>, u64)> {
        let st = self.state.lock().unwrap();
        let c = Self::find(&st, db, collection)?;
        Ok((c.segments.iter().map(|(s, _)| *s).collect(), 1))
    }
    async fn flush_done(&self, _: &str, _: &str, _: &[i64], _: u64) -> Result<bool> {
        Ok(true)
    }
    async fn persistent_segments(
        &self,
        db: &str,
        collection: &str,
    ) -> Result<Vec<pb::PersistentSegmentInfo>> {
        let st = self.state.lock().unwrap();
        let c = Self::find(&st, db, collection)?;
        Ok(c.segments
            .iter()
            .map(|(s, rows)| pb::PersistentSegmentInfo {
                segment_id: *s,
                collection_id: c.id,
                partition_id: c.partition_id,
                num_rows: *rows,
                state: segment_state::FLUSHED,
                ..Default::default()
            })
            .collect())
    }
    async fn database_properties(&self, _: &str) -> Result<Vec<KeyValuePair>> {
        Ok(Vec::new())
    }
    async fn create_database(&self, _: &str, _: Vec<KeyValuePair>) -> Result<()> {
        Ok(())
    }
    async fn create_collection(&self, req: pb::CreateCollectionRequest) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        if Self::find(&st, &req.db_name, &req.collection_name).is_ok() {
            return Err(Error::already_exists(format!(
                "collection {}.{} already exists",
                req.db_name, req.collection_name
            )));
        }
        st.next_id += 10;
        let id = st.next_id;
        st.created
            .push(format!("{}.{}", req.db_name, req.collection_name));
        st.collections.push(FakeCollection {
            db: req.db_name,
            name: req.collection_name,
            id,
            partition_id: id + 1,
            segments: Vec::new(),
        });
        Ok(())
    }
    async fn drop_collection(&self, db: &str, name: &str) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        Self::find(&st, db, name)?;
        st.collections.retain(|c| !(c.db == db && c.name == name));
        st.dropped.push(format!("{db}.{name}"));
        Ok(())
    }
    async fn create_partition(&self, _: &str, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn create_index(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
        _: Vec<KeyValuePair>,
    ) -> Result<()> {
        Ok(())
    }
    async fn drop_index(&self, _: &str, _: &str, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn load_collection(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn release_collection(&self, db: &str, collection: &str) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        st.served.remove(&format!("{db}.{collection}"));
        st.released.push(format!("{db}.{collection}"));
        Ok(())
    }
    async fn create_alias(&self, _: &str, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn drop_alias(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn rename_collection(&self, db: &str, old: &str, new: &str) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        if Self::find(&st, db, new).is_ok() {
            return Err(Error::already_exists(format!(
                "collection {db}.{new} already exists"
            )));
        }
        Self::find(&st, db, old)?;
        for c in st
            .collections
            .iter_mut()
            .filter(|c| c.db == db && c.name == old)
        {
            c.name = new.to_string();
        }
        st.renamed.push(format!("{db}.{old}->{new}"));
        Ok(())
    }
    /// Backup-mode import: the insert-log path must hold files, and its
    /// last folder names the segment.
    async fn import(&self, req: pb::ImportRequest) -> Result<Vec<i64>> {
        let insert = req.files.first().cloned().unwrap_or_default();
        let has_files = !self.storage.list(&insert).await?.is_empty();
        let segment: i64 = insert
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        let mut st = self.state.lock().unwrap();
        if st.unreachable_imports.contains(&segment) {
            return Err(
                Error::new(crate::ErrorKind::Unreachable, "Milvus is unreachable").temporary(true),
            );
        }
        let rows = st
            .collections
            .iter()
            .flat_map(|c| &c.segments)
            .find(|(s, _)| *s == segment)
            .map(|(_, r)| *r);
        let outcome = rows.filter(|_| has_files && !st.failing_segments.contains(&segment));
        st.imports.push((
            format!("{}.{}", req.db_name, req.collection_name),
            req.partition_name,
            req.files,
        ));
        st.next_id += 1;
        let task = st.next_id;
        st.tasks.insert(task, outcome);
        Ok(vec![task])
    }
    async fn import_state(&self, task: i64) -> Result<pb::GetImportStateResponse> {
        let st = self.state.lock().unwrap();
        Ok(match st.tasks.get(&task).copied().flatten() {
            Some(rows) => pb::GetImportStateResponse {
                state: 6,
                row_count: rows,
                ..Default::default()
            },
            None => pb::GetImportStateResponse {
                state: 7,
                infos: vec![KeyValuePair {
                    key: "failed_reason".into(),
                    value: "no binlog to import".into(),
                }],
                ..Default::default()
            },
        })
    }
    async fn query(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &[String],
        _: Option<u64>,
    ) -> Result<Vec<pbs::FieldData>> {
        Ok(Vec::new())
    }
    async fn query_page(
        &self,
        db: &str,
        collection: &str,
        page: &QueryPage,
    ) -> Result<(Vec<pbs::FieldData>, u64)> {
        self.state.lock().unwrap().queries.push(page.clone());
        // A collection of no rows, whose server sends no session timestamp
        // (as Milvus 2.3 does not).
        match page.output_fields.as_slice() {
            [f] if f == "count(*)" => Ok((self.count(db, collection, page)?, 0)),
            _ => Ok((Vec::new(), 0)),
        }
    }
}

impl FakeMilvus {
    /// `count(*)` of a loaded collection, as [`FakeState::served`] says.
    fn count(&self, db: &str, collection: &str, page: &QueryPage) -> Result<Vec<pbs::FieldData>> {
        let st = self.state.lock().unwrap();
        let served = st.served.get(&format!("{db}.{collection}"));
        match (served, page.output_fields.as_slice()) {
            (Some(n), [f]) if f == "count(*)" => Ok(vec![pbs::FieldData {
                field_name: "count(*)".into(),
                field: Some(pbs::field_data::Field::Scalars(pbs::ScalarField {
                    data: Some(pbs::scalar_field::Data::LongData(pbs::LongArray {
                        data: vec![*n],
                    })),
                    ..Default::default()
                })),
                ..Default::default()
            }]),
            _ => Err(Error::unsupported("this query in the fake")),
        }
    }
}

/// A context over a fake Milvus and two in-memory storages.
pub struct Kit {
    pub ctx: Context,
    pub milvus: Arc<FakeMilvus>,
}

impl Kit {
    pub fn new() -> Kit {
        let mut config = Config::default();
        config.backup.gc_pause.enable = false;
        let milvus_storage = Storage::open(StorageSpec::memory(Side::Milvus, "milvus")).unwrap();
        // A root, as backup storages have: the catalog index lives beside it.
        let backup_storage = Storage::open(StorageSpec {
            root: "backup".into(),
            ..StorageSpec::memory(Side::Backup, "backups")
        })
        .unwrap();
        let milvus = Arc::new(FakeMilvus::new(milvus_storage.clone()));
        Kit {
            ctx: Context::with_parts(config, milvus.clone(), milvus_storage, backup_storage),
            milvus,
        }
    }

    /// Makes a backup of every collection (it must succeed).
    pub async fn create_backup(&self, name: &str) -> crate::ops::backup::BackupStats {
        self.create_with(name, None).await
    }

    /// Makes an incremental backup on `base` of every collection.
    pub async fn create_incremental(
        &self,
        name: &str,
        base: &str,
    ) -> crate::ops::backup::BackupStats {
        self.create_with(name, Some(base)).await
    }

    async fn create_with(&self, name: &str, base: Option<&str>) -> crate::ops::backup::BackupStats {
        let opts = crate::ops::backup::BackupOptions {
            name: Some(name.into()),
            base_backup: base.map(String::from),
            ..Default::default()
        };
        crate::ops::backup::create(
            &self.ctx,
            &opts,
            &crate::events::Collect::default(),
            &crate::CancellationToken::new(),
        )
        .await
        .unwrap()
    }

    /// Every object key in backup storage under `prefix`.
    pub async fn backup_keys(&self, prefix: &str) -> Vec<String> {
        self.ctx
            .backup_storage
            .list(prefix)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }
}

/// A scalar column named `name` holding `data`.
pub fn scalar_column(name: &str, data: pbs::scalar_field::Data) -> pbs::FieldData {
    pbs::FieldData {
        field_name: name.into(),
        field: Some(pbs::field_data::Field::Scalars(pbs::ScalarField {
            data: Some(data),
            ..Default::default()
        })),
        ..Default::default()
    }
}
