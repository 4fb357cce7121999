//! `import`: rows from Parquet or JSON files into a collection, over gRPC.
//!
//! The files are those of an `export` (listed in its `schema.json`, with
//! their partitions) or any `.parquet`, `.json` (bulk-writer `{"rows":
//! [...]}` or JSON Lines) and `.jsonl` files under the location, such as
//! pymilvus's `LocalBulkWriter` writes. Columns are matched to fields by
//! name. [`plan`] reads every file's schema, and the data too where the
//! schema cannot tell (JSON, variable-length vector lists), so that a
//! mismatched type, a wrong dimension or a missing field is refused before
//! anything is inserted. [`execute`] inserts in byte-sized batches with
//! several in flight, retrying only transient errors.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Emit, Event, EventSink, Operation, Phase, PlannedCollection};
use crate::milvus::proto::schema::FieldData;
use crate::milvus::Milvus;
use crate::model::meta;
use crate::model::meta::Format;
use crate::model::selection::CollectionRef;
use crate::ops::logical::columns::{self, Origin};
use crate::ops::logical::fields::{fields_of, Field};
use crate::ops::logical::files::{self, Location, ReadSpec};
use crate::ops::logical::resume::{BatchLog, Next};
use crate::ops::logical::{LogicalMeta, LEGACY_SCHEMA_FILE, SCHEMA_FILE};
use crate::CancellationToken;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// A local directory or `s3://bucket/prefix`.
    pub location: String,
    /// `coll` or `db.coll`.
    pub collection: String,
    /// Make the collection from `schema.json` (it must not exist).
    pub create: bool,
    /// Raw bytes per Insert.
    pub batch_bytes: usize,
    /// Inserts in flight.
    pub in_flight: usize,
}

/// Raw bytes per Insert by default: with at most 8 in flight and one read
/// ahead, rows in memory stay under ~80 MiB.
pub const INSERT_BATCH_BYTES: usize = 4 << 20;

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            location: String::new(),
            collection: String::new(),
            create: false,
            batch_bytes: INSERT_BATCH_BYTES,
            in_flight: 4,
        }
    }
}

/// One file to insert.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedFile {
    pub path: String,
    pub format: Format,
    /// Inserted into this partition; empty: the collection's default (or
    /// its partition key).
    pub partition: String,
    /// Rows, when `schema.json` lists them (0: unknown).
    pub rows: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportPlan {
    pub target: CollectionRef,
    pub location: String,
    pub create: bool,
    pub files: Vec<PlannedFile>,
    /// The target makes its own keys: the files' keys are left out.
    pub keys_regenerated: bool,
    /// Partitions the files name that the target lacks (made first).
    pub missing_partitions: Vec<String>,
    pub batch_bytes: usize,
    pub in_flight: usize,
    #[serde(skip)]
    pub meta: Option<LogicalMeta>,
    #[serde(skip)]
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportStats {
    pub format: String,
    pub rows: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub files: usize,
    pub duration_s: f64,
    pub rows_per_s: f64,
    pub keys_regenerated: bool,
    pub created: bool,
    pub collection: String,
}

/// Reads `_schema.json` (or an older export's `schema.json`) when the
/// location has one.
async fn read_meta(location: &Location) -> Result<Option<LogicalMeta>> {
    for name in [SCHEMA_FILE, LEGACY_SCHEMA_FILE] {
        if location.storage.stat(name).await?.is_none() {
            continue;
        }
        let bytes = location.storage.read(name).await?;
        return serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::corrupt(format!(
                "`{name}` in {} does not parse: {e}",
                location.display
            ))
        });
    }
    Ok(None)
}

/// The data files: those `schema.json` lists, else (no `schema.json`, or
/// one without files, e.g. beside bulk-writer output) every data file found.
async fn data_files(location: &Location, meta: Option<&LogicalMeta>) -> Result<Vec<PlannedFile>> {
    if let Some(m) = meta.filter(|m| !m.files.is_empty()) {
        return Ok(m
            .files
            .iter()
            .map(|f| PlannedFile {
                format: Format::of_file(&f.path).unwrap_or(m.format),
                path: f.path.clone(),
                partition: f.partition.clone(),
                rows: f.rows,
                size: f.size,
            })
            .collect());
    }
    let mut files: Vec<PlannedFile> = location
        .storage
        .list("")
        .await?
        .into_iter()
        .filter_map(|o| {
            Some(PlannedFile {
                format: Format::of_file(&o.key)?,
                path: o.key,
                partition: String::new(),
                rows: 0,
                size: o.size,
            })
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

pub async fn plan(ctx: &Context, opts: &ImportOptions) -> Result<ImportPlan> {
    let target = CollectionRef::parse_checked(&opts.collection)?;
    let location = Location::open(ctx.backup_storage.spec(), &opts.location)?;
    let meta = read_meta(&location).await?;
    let files = data_files(&location, meta.as_ref()).await?;
    if files.is_empty() {
        return Err(Error::not_found(format!(
            "no data files (.parquet, .json, .jsonl) in {}",
            location.display
        )));
    }
    let client = ctx.milvus().await?;
    // Existence by listing: Milvus 2.2 answers a Describe of a missing
    // collection with an unexpected-error code.
    let exists = match client.list_collections(&target.db).await {
        Ok(names) => names.contains(&target.name),
        // no such database: made with --create
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let existing = if exists {
        Some(client.describe_collection(&target.db, &target.name).await?)
    } else {
        None
    };
    let (schema, partitions) = match (&existing, opts.create) {
        (Some(_), true) => {
            return Err(Error::already_exists(format!(
                "{target} exists already — import into it without --create, or choose another name"
            )))
        }
        (Some(d), false) => {
            let s = d.schema.as_ref().ok_or_else(|| {
                Error::remote(format!("DescribeCollection of {target} returned no schema"))
            })?;
            let parts = client.show_partitions(&target.db, &target.name).await?;
            (
                meta::schema_from_proto(s),
                parts.into_iter().map(|p| p.0).collect::<Vec<_>>(),
            )
        }
        (None, true) => {
            let m = meta.as_ref().ok_or_else(|| {
                Error::invalid_input(format!(
                    "--create needs the collection's `{SCHEMA_FILE}`, and {} has none — create {target} first",
                    location.display
                ))
            })?;
            let caps = client.capabilities();
            if let Some(u) = crate::ops::preflight::check(&caps, &target, &m.collection.schema) {
                return Err(Error::unsupported(format!(
                    "Milvus {} ({}) cannot hold {target}: {} — nothing was changed; import into a Milvus that has them",
                    client.address(),
                    client.version_text(),
                    u.missing.join("; ")
                )));
            }
            let parts = m
                .collection
                .partition_backups
                .iter()
                .map(|p| p.partition_name.clone())
                .collect();
            (m.collection.schema.clone(), parts)
        }
        (None, false) => {
            return Err(Error::not_found(format!(
            "{target} does not exist — create it, or pass --create to make it from `{SCHEMA_FILE}`"
        )))
        }
    };
    let fields = fields_of(&schema)?;
    let has_partition_key = schema.fields.iter().any(|f| f.is_partition_key);
    let mut files = files;
    if has_partition_key {
        for f in &mut files {
            f.partition.clear();
        }
    }
    let mut missing_partitions: Vec<String> = files
        .iter()
        .map(|f| f.partition.clone())
        .filter(|p| !p.is_empty() && !partitions.contains(p))
        .collect();
    missing_partitions.sort();
    missing_partitions.dedup();
    let pk_auto = fields.iter().any(|f| f.is_primary && f.auto_id);
    let plan = ImportPlan {
        target,
        location: opts.location.clone(),
        create: opts.create,
        files,
        keys_regenerated: false,
        missing_partitions,
        batch_bytes: opts.batch_bytes,
        in_flight: opts.in_flight.max(1),
        meta,
        fields,
    };
    let keys_in_files = check_files(&plan, &location).await?;
    Ok(ImportPlan {
        keys_regenerated: pk_auto && keys_in_files,
        ..plan
    })
}

/// Checks every file against the target's fields before anything is
/// inserted; returns whether the files carry primary keys.
async fn check_files(plan: &ImportPlan, location: &Location) -> Result<bool> {
    let pk = plan
        .fields
        .iter()
        .find(|f| f.is_primary)
        .map(|f| f.name.clone());
    let mut keys = false;
    for f in &plan.files {
        let local = location.local_copy(&f.path).await?;
        let fields = plan.fields.clone();
        let (file, collection) = (f.path.clone(), plan.target.to_string());
        let (format, batch_bytes, pk) = (f.format, plan.batch_bytes, pk.clone());
        keys |= tokio::task::spawn_blocking(move || -> Result<bool> {
            let origin = Origin {
                file: &file,
                collection: &collection,
            };
            let mut has_pk = false;
            if format == Format::Parquet {
                let schema = files::parquet_schema(local.path())?;
                has_pk = pk
                    .as_ref()
                    .is_some_and(|p| schema.field_with_name(p).is_ok());
                if !columns::check_arrow_schema(&fields, &schema, origin)? {
                    return Ok(has_pk);
                }
            }
            let spec = ReadSpec {
                fields: &fields,
                file: &file,
                collection: &collection,
                batch_bytes,
                drop_auto_id: false,
            };
            files::read_file(local.path(), format, &spec, |(cols, _, _)| {
                has_pk |= pk
                    .as_ref()
                    .is_some_and(|p| cols.iter().any(|c| &c.field_name == p));
                Ok(())
            })?;
            Ok(has_pk)
        })
        .await
        .map_err(|e| Error::internal(format!("checking `{}`: {e}", f.path)))??;
    }
    Ok(keys)
}

/// Inserts as planned. Makes the collection first with `--create` (and
/// drops it again if the import fails), and the partitions it lacks.
pub async fn execute(
    ctx: &Context,
    plan: &ImportPlan,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<ImportStats> {
    let started = Instant::now();
    let t = &plan.target;
    let location = Location::open(ctx.backup_storage.spec(), &plan.location)?;
    let client = ctx.milvus().await?;
    let known_rows: u64 = plan.files.iter().map(|f| f.rows).sum();
    events.emit(Event::Planned {
        operation: Operation::Import,
        collections: vec![PlannedCollection {
            name: t.to_string(),
            files: known_rows,
            ..Default::default()
        }],
    });
    let created = AtomicBool::new(false);
    let result = crate::cancellable(cancel, async {
        prepare_target(&*client, plan, &created, events).await?;
        if plan.keys_regenerated {
            events.warn(format!(
                "{t} makes its own primary keys (autoID): the files' keys are not kept, new ones are generated"
            ));
        }
        insert_files(&*client, plan, &location, events).await
    })
    .await;
    let (rows, raw_bytes) = match result {
        Ok(r) => r,
        Err(e) => {
            if created.load(Ordering::SeqCst) {
                if let Err(d) = client.drop_collection(&t.db, &t.name).await {
                    events.warn(format!(
                        "{t} was made by this import and could not be dropped: {d}"
                    ));
                }
            }
            return Err(e);
        }
    };
    let duration_s = started.elapsed().as_secs_f64();
    let formats: std::collections::BTreeSet<String> =
        plan.files.iter().map(|f| f.format.to_string()).collect();
    Ok(ImportStats {
        format: formats.into_iter().collect::<Vec<_>>().join(","),
        rows,
        raw_bytes,
        stored_bytes: plan.files.iter().map(|f| f.size).sum(),
        files: plan.files.len(),
        duration_s,
        rows_per_s: rows as f64 / duration_s.max(1e-9),
        keys_regenerated: plan.keys_regenerated,
        created: plan.create,
        collection: t.to_string(),
    })
}

async fn prepare_target(
    client: &dyn Milvus,
    plan: &ImportPlan,
    created: &AtomicBool,
    events: &dyn EventSink,
) -> Result<()> {
    let t = &plan.target;
    if plan.create {
        let meta = plan
            .meta
            .as_ref()
            .expect("plan checked: --create has schema.json");
        if t.db != crate::milvus::DEFAULT_DB {
            crate::ops::collection::ensure_database(client, &t.db, &[]).await?;
        }
        let mut coll = meta.collection.clone();
        for note in complete_schema(&mut coll.schema) {
            events.note(note);
        }
        crate::ops::collection::create_like(client, &coll, t, false, created, events).await?;
        // An index type or metric the target lacks (2.2 has no COSINE) is
        // a warning: the rows go in anyway.
        crate::ops::collection::create_indexes(client, &coll, t, false, 0, events).await?;
        events.note(format!("created {t} from {SCHEMA_FILE}"));
    }
    for p in &plan.missing_partitions {
        if plan.create {
            continue; // made with the collection
        }
        client.create_partition(&t.db, &t.name, p).await?;
        events.note(format!("created partition `{p}` of {t}"));
    }
    Ok(())
}

/// What was inserted, for the message of a failed import.
#[derive(Default)]
pub(crate) struct Progress {
    done: std::sync::Mutex<Vec<(String, u64)>>,
    /// Rows inserted, of every file.
    pub(crate) rows: AtomicU64,
    /// Their raw bytes.
    pub(crate) raw: AtomicU64,
}

impl Progress {
    fn add(&self, file: &str, rows: u64, raw: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.raw.fetch_add(raw, Ordering::Relaxed);
        let mut d = self.done.lock().expect("progress");
        match d.iter_mut().find(|(f, _)| f == file) {
            Some(e) => e.1 += rows,
            None => d.push((file.to_string(), rows)),
        }
    }

    pub(crate) fn describe(&self) -> String {
        let d = self.done.lock().expect("progress");
        if d.is_empty() {
            return "nothing was inserted".into();
        }
        let parts: Vec<String> = d
            .iter()
            .map(|(f, n)| format!("{n} rows of `{f}`"))
            .collect();
        format!("inserted before the failure: {}", parts.join(", "))
    }
}

async fn insert_files(
    client: &dyn Milvus,
    plan: &ImportPlan,
    location: &Location,
    events: &dyn EventSink,
) -> Result<(u64, u64)> {
    let t = &plan.target;
    let known: u64 = plan.files.iter().map(|f| f.rows).sum();
    events.phase(Phase::Inserting {
        collection: t.to_string(),
        files: plan.files.len(),
        rows: known,
    });
    let progress = Progress::default();
    for f in &plan.files {
        if let Err(e) = insert_file(client, plan, location, f, &progress, None, events).await {
            return Err(
                Error::new(e.kind(), format!("{e} ({})", progress.describe()))
                    .temporary(e.is_temporary()),
            );
        }
    }
    Ok((progress.rows.into_inner(), progress.raw.into_inner()))
}

/// Inserts one file's rows, counting them in `progress`; with a `log`
/// (a restore's), each batch is recorded before it is sent and once it is
/// in, and those an interrupted run inserted are skipped.
pub(crate) async fn insert_file(
    client: &dyn Milvus,
    plan: &ImportPlan,
    location: &Location,
    f: &PlannedFile,
    progress: &Progress,
    log: Option<&BatchLog<'_>>,
    events: &dyn EventSink,
) -> Result<()> {
    let local = Arc::new(location.local_copy(&f.path).await?);
    // One batch read ahead: the inserts in flight hold the rest.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<files::Batch>>(1);
    let reader = {
        let fields = plan.fields.clone();
        let (file, collection, format) = (f.path.clone(), plan.target.to_string(), f.format);
        let (batch_bytes, drop_auto_id) = (
            plan.batch_bytes,
            plan.keys_regenerated || plan.fields.iter().any(|x| x.is_primary && x.auto_id),
        );
        let local = local.clone();
        tokio::task::spawn_blocking(move || {
            let spec = ReadSpec {
                fields: &fields,
                file: &file,
                collection: &collection,
                batch_bytes,
                drop_auto_id,
            };
            let r = files::read_file(local.path(), format, &spec, |b| {
                tx.blocking_send(Ok(b)).map_err(|_| Error::cancelled())
            });
            if let Err(e) = r {
                let _ = tx.blocking_send(Err(e));
            }
        })
    };
    let t = &plan.target;
    // Batches come in file order: each one's rows follow the last's.
    let mut next_row = 0u64;
    let result = tokio_stream_of(rx)
        .map(|batch| {
            let start = next_row;
            if let Ok((_, n, _)) = &batch {
                next_row += *n as u64;
            }
            async move {
                let (cols, n, bytes) = batch?;
                let range = (start, start + n as u64);
                match log {
                    None => insert_with_retry(client, t, &f.partition, cols, n).await?,
                    Some(log) => {
                        if let Next::Insert(cols, n) = log.before(&f.path, range, cols, n).await? {
                            insert_with_retry(client, t, &f.partition, cols, n).await?;
                            log.done(&f.path, range).await?;
                        }
                    }
                }
                progress.add(&f.path, n as u64, bytes);
                events.emit(Event::RowsDone {
                    collection: 0,
                    rows: n as u64,
                    bytes,
                });
                Ok::<(), Error>(())
            }
        })
        .buffer_unordered(plan.in_flight)
        .try_collect::<Vec<()>>()
        .await;
    reader.abort();
    result.map(|_| ())
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// One Insert, retried (with backoff) only when Milvus says the failure is
/// transient (rate limits, a busy or restarting node).
pub(crate) async fn insert_with_retry(
    client: &dyn Milvus,
    t: &CollectionRef,
    partition: &str,
    cols: Vec<FieldData>,
    n: usize,
) -> Result<()> {
    let mut delay = Duration::from_millis(500);
    for attempt in 1.. {
        match client
            .insert(&t.db, &t.name, partition, cols.clone(), n as u32)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if (e.is_temporary() || e.kind() == ErrorKind::Throttled) && attempt < 5 => {
                tracing::debug!("insert into {t} failed ({e}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

/// The longest VarChar Milvus takes, for schemas that give none.
const MAX_VARCHAR: &str = "65535";

/// Fills in what Milvus needs that another server's schema may lack:
/// Milvus Lite describes VarChar array elements without `max_length`.
/// Returns a note per change.
pub(crate) fn complete_schema(schema: &mut meta::CollectionSchema) -> Vec<String> {
    use crate::milvus::proto::schema::DataType;
    let varchar = |t: i32| t == DataType::VarChar as i32 || t == DataType::String as i32;
    let mut notes = Vec::new();
    for f in &mut schema.fields {
        let needs = varchar(f.data_type)
            || (f.data_type == DataType::Array as i32 && varchar(f.element_type));
        if needs && !f.type_params.iter().any(|p| p.key == "max_length") {
            f.type_params.push(meta::KeyValue {
                key: "max_length".into(),
                value: MAX_VARCHAR.into(),
            });
            notes.push(format!(
                "field `{}` has no max_length in schema.json: created with {MAX_VARCHAR}",
                f.name
            ));
        }
    }
    notes
}
