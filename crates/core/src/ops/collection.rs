//! What backup, restore and the logical engine do to a collection alike:
//! read its description into the backup's meta ([`collection_meta`]),
//! create one like a backed-up one ([`create_like`], with its database
//! [`ensure_database`]) and its indexes ([`create_indexes`]), and wait on
//! Milvus's import jobs ([`wait_imports`]). Does not own when they are
//! called: the operations do.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prost::Message;

use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, Event, EventSink};
use crate::milvus::{proto, Milvus};
use crate::model::meta::{self, kvs, CollectionBackupInfo, IndexInfo, PartitionBackupInfo};
use crate::model::selection::CollectionRef;

pub async fn collection_meta(
    client: &dyn Milvus,
    coll: &CollectionRef,
) -> Result<CollectionBackupInfo> {
    let desc = client.describe_collection(&coll.db, &coll.name).await?;
    let schema = desc
        .schema
        .as_ref()
        .ok_or_else(|| Error::remote(format!("DescribeCollection of {coll} returned no schema")))?;
    let indexes = client.describe_indexes(&coll.db, &coll.name).await?;
    let partitions = client.show_partitions(&coll.db, &coll.name).await?;
    let load_state = client.load_state(&coll.db, &coll.name).await?;
    Ok(CollectionBackupInfo {
        id: uuid::Uuid::new_v4().to_string(),
        state_code: 2,
        progress: 100,
        collection_id: desc.collection_id,
        db_name: coll.db.clone(),
        collection_name: coll.name.clone(),
        schema: meta::schema_from_proto(schema),
        shards_num: desc.shards_num,
        consistency_level: desc.consistency_level,
        backup_timestamp: chrono::Utc::now().timestamp_millis() as u64,
        has_index: !indexes.is_empty(),
        index_infos: indexes
            .iter()
            .map(|ix| IndexInfo {
                field_name: ix.field_name.clone(),
                index_name: ix.index_name.clone(),
                index_type: ix
                    .params
                    .iter()
                    .find(|p| p.key == "index_type")
                    .map(|p| p.value.clone())
                    .unwrap_or_default(),
                params: ix
                    .params
                    .iter()
                    .map(|p| (p.key.clone(), p.value.clone()))
                    .collect(),
            })
            .collect(),
        load_state: load_state.clone(),
        properties: kvs(&desc.properties),
        num_partitions: desc.num_partitions,
        aliases: desc.aliases.clone(),
        partition_backups: partitions
            .into_iter()
            .map(|(partition_name, partition_id)| PartitionBackupInfo {
                partition_id,
                partition_name,
                collection_id: desc.collection_id,
                load_state: load_state.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

/// Creates a database with its backed-up properties unless it exists by
/// now (an earlier collection of the plan, or another client, may have
/// made it).
pub async fn ensure_database(
    client: &dyn Milvus,
    db: &str,
    properties: &[meta::KeyValue],
) -> Result<()> {
    match client.create_database(db, meta::to_pairs(properties)).await {
        Ok(()) => Ok(()),
        Err(e) => {
            if client.list_databases().await?.iter().any(|d| d == db) {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// Creates `t` as the backed-up collection was: schema, shards,
/// consistency, properties, partitions (or partition-key partitions), and
/// its aliases when `aliases` (a failed alias is a warning). `created` is
/// set as soon as the collection exists.
pub async fn create_like(
    client: &dyn Milvus,
    meta: &CollectionBackupInfo,
    t: &CollectionRef,
    aliases: bool,
    created: &AtomicBool,
    events: &dyn EventSink,
) -> Result<()> {
    let mut schema = meta::schema_to_proto(&meta.schema);
    schema.name = t.name.clone();
    let has_partition_key = meta.schema.fields.iter().any(|f| f.is_partition_key);
    client
        .create_collection(proto::milvus::CreateCollectionRequest {
            db_name: t.db.clone(),
            collection_name: t.name.clone(),
            schema: schema.encode_to_vec(),
            shards_num: meta.shards_num,
            consistency_level: meta.consistency_level,
            properties: meta::to_pairs(&meta.properties),
            num_partitions: if has_partition_key {
                meta.num_partitions
            } else {
                0
            },
            ..Default::default()
        })
        .await?;
    created.store(true, Ordering::SeqCst);
    if !has_partition_key {
        for p in &meta.partition_backups {
            if p.partition_name != "_default" {
                client
                    .create_partition(&t.db, &t.name, &p.partition_name)
                    .await?;
            }
        }
    }
    if aliases {
        for alias in &meta.aliases {
            if let Err(e) = client.create_alias(&t.db, &t.name, alias).await {
                events.warn(format!("alias `{alias}` not restored for {t}: {e}"));
            }
        }
    }
    Ok(())
}

/// Creates the backed-up indexes on `t` (vector indexes as AUTOINDEX with
/// `use_auto_index`); `index` is the collection's place in the plan.
pub async fn create_indexes(
    client: &dyn Milvus,
    meta: &CollectionBackupInfo,
    t: &CollectionRef,
    use_auto_index: bool,
    index: usize,
    events: &dyn EventSink,
) -> Result<()> {
    for ix in &meta.index_infos {
        let mut params: BTreeMap<String, String> = ix.params.clone();
        let mut index_type = ix.index_type.clone();
        if use_auto_index && is_vector_index(&ix.index_type) {
            params.retain(|k, _| k == "metric_type");
            params.insert("index_type".into(), "AUTOINDEX".into());
            index_type = "AUTOINDEX".into();
        }
        let pairs = params
            .into_iter()
            .map(|(key, value)| proto::common::KeyValuePair { key, value })
            .collect();
        let made = client
            .create_index(&t.db, &t.name, &ix.field_name, &ix.index_name, pairs)
            .await;
        match made {
            Ok(()) => {}
            // The target's own refusal (an index or metric type it lacks,
            // e.g. COSINE on 2.2) leaves the collection without that index:
            // said, not fatal. A Milvus that cannot be reached still is.
            Err(e) if !matches!(e.kind(), ErrorKind::Unreachable | ErrorKind::Cancelled) => {
                events.warn(format!(
                    "index `{}` ({index_type}) on `{}` of {t} not built: {e} — create one the target takes (e.g. restore with --use_auto_index)",
                    ix.index_name, ix.field_name
                ));
                continue;
            }
            Err(e) => return Err(e),
        }
        events.emit(Event::IndexBuilt {
            collection: index,
            field: ix.field_name.clone(),
            index: ix.index_name.clone(),
            index_type,
        });
    }
    Ok(())
}

/// How long [`load_and_wait`] waits for a collection to be loaded.
pub const LOAD_LIMIT: Duration = Duration::from_secs(600);

/// Loads a collection and waits (at most [`LOAD_LIMIT`]) until Milvus
/// says it is loaded: `LoadCollection` only starts the load.
pub async fn load_and_wait(client: &dyn Milvus, c: &CollectionRef) -> Result<()> {
    client.load_collection(&c.db, &c.name).await?;
    let start = Instant::now();
    loop {
        if client.load_state(&c.db, &c.name).await? == "Loaded" {
            return Ok(());
        }
        if start.elapsed() > LOAD_LIMIT {
            return Err(Error::remote(format!(
                "{c} did not finish loading within {} s — check the query nodes' memory",
                LOAD_LIMIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits (bounded) for Milvus's import tasks `ids` to finish; the rows
/// they imported. A failed task is a remote error with Milvus's reason.
pub async fn wait_imports(client: &dyn Milvus, ids: &[i64]) -> Result<i64> {
    const LIMIT: Duration = Duration::from_secs(3600);
    let start = Instant::now();
    let mut rows = 0;
    for &id in ids {
        loop {
            let st = client.import_state(id).await?;
            match st.state {
                6 => {
                    rows += st.row_count;
                    break;
                }
                1 | 7 => {
                    let reason = st
                        .infos
                        .iter()
                        .find(|kv| kv.key == "failed_reason")
                        .map(|kv| kv.value.clone())
                        .unwrap_or_else(|| "no reason given".into());
                    return Err(Error::remote(format!("Milvus says: {reason}")));
                }
                _ if start.elapsed() > LIMIT => {
                    return Err(
                        Error::remote(format!("not finished after {} s", LIMIT.as_secs()))
                            .temporary(true),
                    );
                }
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }
    Ok(rows)
}

fn is_vector_index(index_type: &str) -> bool {
    !matches!(
        index_type,
        "" | "STL_SORT" | "Trie" | "TRIE" | "INVERTED" | "BITMAP"
    )
}
