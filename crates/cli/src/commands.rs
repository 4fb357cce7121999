//! The operation commands. Each maps flags onto the core's options, drives
//! the core's plan and execute (printing the plan instead with
//! `--dry-run`), and prints the result. Ctrl-C cancels: the core removes
//! what it wrote. This file: `create` and `restore`, and what every command
//! shares; the others live in [`verify`], [`catalog`] (`list`, `get`,
//! `delete`), [`passwd`] and [`gc`].

mod catalog;
mod gc;
mod passwd;
mod verify;

pub use catalog::{
    delete, get, list, DeleteArgs, GetArgs, ListArgs, DELETE_EXAMPLES, GET_EXAMPLES, LIST_EXAMPLES,
};
pub use gc::{gc, GcArgs, GC_EXAMPLES};
pub use passwd::{passwd, PasswdArgs, KEYGEN_EXAMPLES, PASSWD_EXAMPLES};
pub use verify::{verify, VerifyArgs, VerifyOutcome, VERIFY_EXAMPLES};

use std::io::IsTerminal;

use clap::Args;
use milvus_backup_core::config::settings::Settings;
use milvus_backup_core::config::Config;
use milvus_backup_core::model::selection::Selection;
use milvus_backup_core::model::shard::Shard;
use milvus_backup_core::ops::backup::{self, BackupOptions, BackupPlan, BackupRequest};
use milvus_backup_core::ops::restore::{
    self, DataPath, RestoreOptions, RestorePlan, RestoreRequest,
};
use milvus_backup_core::{CancellationToken, Context, Error, Result};

use crate::output::{human_bytes, human_duration, Output};
use crate::progress::{CliProgress, RestoreNotes, Steps};

/// A token that Ctrl-C cancels.
pub fn cancel_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "cancelling: stopping and removing what was written (Ctrl-C again to quit at once)"
            );
            t.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    token
}

pub const CREATE_EXAMPLES: &str = "\
Examples:
  milvus-backup create --collection my_collection --backup-name backup_20260210
  milvus-backup create --all --backup-name backup_20260210
  milvus-backup create                                  # every collection of every database
  milvus-backup create -n nightly -c docs,images        # two collections of `default`
  milvus-backup create -n kb -c db1.docs -d db2         # db1.docs plus all of db2
  milvus-backup create -a '{\"db1\":[\"c1\"],\"db2\":[]}'
  milvus-backup create --filter 'db1.*,default.docs'
  milvus-backup --json create -n nightly               # one JSON object for scripts
  milvus-backup create -n n2 --compress zstd --compress-level 9
  MILVUS_BACKUP_ENCRYPTION_KEY=$(cat key.txt) milvus-backup create -n n3 --encrypt
  MILVUS_BACKUP_PASSWORD=s3cret milvus-backup create -n n3 --encrypt   # or with a password
  milvus-backup create -n n4 --base-backup nightly    # share unchanged files with `nightly`
  milvus-backup create -n n5 --incremental            # base: newest backup of the same collections
  milvus-backup create -n n6 -c docs --dry-run        # what would be copied; writes nothing
  milvus-backup create -n n7 -c docs --resume         # finish an interrupted create of n7
  milvus-backup --json create -n n6 --dry-run         # the plan as JSON
  milvus-backup create -n big -c db1.big --format parquet --shard 0/4   # shard 0 of 4 (any order, any machine)
  milvus-backup create -n big --seal                  # once all 4 finished: meta files, complete";

pub const RESTORE_EXAMPLES: &str = "\
Examples:
  milvus-backup restore --backup-name backup_20260210 --collection my_collection --target-collection my_collection_restored
  milvus-backup restore --backup-name backup_20260210 --all -s _restored
  milvus-backup restore --backup-name backup_20260210 --collection my_collection   # replaces it: asks, or needs --drop_exist_collection
  milvus-backup restore -n nightly -s _restored           # every collection, renamed c -> c_restored
  milvus-backup restore -n nightly -c docs --drop_exist_collection --restore_index
  milvus-backup restore -n nightly -r db1.docs:db2.docs_v2,images:images_old
  milvus-backup restore -n nightly --collection docs --target-collection docs_copy
  milvus-backup --json restore -n nightly -s _r
  milvus-backup restore -n nightly -s _r --dry-run        # targets, refusals, staging, import jobs
  milvus-backup restore -n nightly -s _r --resume         # finish an interrupted restore
  milvus-backup restore -n big -s _r --shard 0/4          # shard 0 of 4 inserts its files (any order)
  milvus-backup restore -n big -s _r --seal               # once all 4 finished: load, aliases, counts";

/// The database-level selection flags shared by `create` and `restore`.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Whole databases, comma-separated.
    #[arg(short = 'd', long = "databases", value_delimiter = ',')]
    databases: Vec<String>,
    /// JSON map of database to collections, e.g. '{"db1":["c1"],"db2":[]}'.
    #[arg(
        short = 'a',
        long = "database_collections",
        alias = "database-collections"
    )]
    database_collections: Option<String>,
}

impl DatabaseArgs {
    fn db_collections(&self) -> Result<std::collections::BTreeMap<String, Vec<String>>> {
        match &self.database_collections {
            Some(text) => Selection::parse_db_collections(text),
            None => Ok(Default::default()),
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Backup name: letters, digits, `_`, `-` and `.`, starting with a
    /// letter, a digit or `_`, not ending with `.`, at most 128 characters
    /// (e.g. rag_version_v1.0); default backup_<UTC time>.
    #[arg(
        short = 'n',
        long,
        visible_alias = "backup-name",
        alias = "backup_name"
    )]
    name: Option<String>,
    /// Collections, `coll` or `db.coll`, comma-separated.
    #[arg(
        short = 'c',
        long = "colls",
        visible_alias = "collection",
        alias = "collections",
        value_delimiter = ','
    )]
    colls: Vec<String>,
    /// Every collection of every database (the default when nothing is
    /// selected); any other selection given with it is ignored, and said so.
    #[arg(long)]
    all: bool,
    /// The Go tool's strategies: meta_only (= --meta_only), skip_flush
    /// (= -f), serial_flush (flush each collection, the default), bulk_flush
    /// (accepted; flushes each collection like serial_flush).
    #[arg(long, value_parser = ["meta_only", "skip_flush", "bulk_flush", "serial_flush"])]
    strategy: Option<String>,
    #[command(flatten)]
    dbs: DatabaseArgs,
    /// Patterns `db.coll` or `db.*`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    filter: Vec<String>,
    /// Skip the flush: back up only what Milvus has already persisted.
    #[arg(short = 'f', long)]
    force: bool,
    /// Back up metadata only, no data files.
    #[arg(long = "meta_only", alias = "meta-only")]
    meta_only: bool,
    /// Also back up users and roles.
    #[arg(long)]
    rbac: bool,
    /// Compress stored files: zstd, gzip or none (default: backup.compression
    /// and backup.compressionAlgorithm).
    #[arg(long, value_name = "ALGORITHM", value_parser = ["zstd", "gzip", "none"])]
    compress: Option<String>,
    /// Compression level (zstd -7..22, gzip 1..9; default: backup.compressionLevel).
    #[arg(
        long = "compress-level",
        value_name = "N",
        allow_negative_numbers = true
    )]
    compress_level: Option<i32>,
    /// Encrypt files and schemas with the key in MILVUS_BACKUP_ENCRYPTION_KEY
    /// or backup.encryption.keyFile (see `milvus-backup keygen`), or with the
    /// root key that MILVUS_BACKUP_PASSWORD (backup.encryption.password) unlocks.
    #[arg(long)]
    encrypt: bool,
    /// Incremental: share files unchanged since this backup instead of copying them.
    #[arg(long = "base-backup", alias = "base_backup", value_name = "NAME")]
    base_backup: Option<String>,
    /// Incremental on the newest complete backup of the same collections.
    #[arg(long, conflicts_with = "base_backup")]
    incremental: bool,
    /// Cap the copy bandwidth in MB/s (default: backup.rateLimit; 0: none).
    #[arg(long = "rate-limit", value_name = "MB/s")]
    rate_limit: Option<u32>,
    /// Finish an interrupted create of this name (-n): files it stored
    /// completely are kept, the rest is copied. Give the same options.
    #[arg(long, requires = "name")]
    resume: bool,
    /// binlog: copy Milvus's files (physical); parquet or json: read the
    /// rows over gRPC (logical, restores into any Milvus version). Default:
    /// binlog, or parquet when the config names no storage for Milvus's
    /// own files.
    #[arg(long, value_parser = ["binlog", "parquet", "json"])]
    format: Option<String>,
    /// Back up even when Milvus serves fewer rows than the files hold
    /// (deletes Milvus 2.2 has not written to delta logs yet): warn and
    /// record it in the backup instead of failing. A restore brings those
    /// rows back.
    #[arg(
        long = "allow-unpersisted-deletes",
        alias = "allow_unpersisted_deletes"
    )]
    allow_unpersisted_deletes: bool,
    /// Print the plan (collections, segments, files, bytes, what is shared)
    /// and write nothing.
    #[arg(long = "dry-run", alias = "dry_run")]
    dry_run: bool,
    /// Export only shard K of N of a logical backup made by N processes
    /// (K from 0, as Kubernetes's JOB_COMPLETION_INDEX counts): the first
    /// shard to start records the plan, every shard follows it, and a
    /// shard run again does nothing more. Then --seal. Needs -n, the same
    /// options in every shard, and Milvus 2.3 or later.
    #[arg(
        long,
        value_name = "K/N",
        value_parser = parse_shard,
        requires = "name",
        conflicts_with_all = ["base_backup", "incremental", "resume", "dry_run", "meta_only", "seal"]
    )]
    shard: Option<Shard>,
    /// Complete a backup made with --shard once every shard finished: its
    /// meta files and completion mark (until then it is incomplete).
    /// Refused, naming the shards left, while any has not finished.
    #[arg(
        long,
        requires = "name",
        conflicts_with_all = ["base_backup", "incremental", "resume", "dry_run", "meta_only"]
    )]
    seal: bool,
}

/// `--shard K/N` as the core reads it.
fn parse_shard(s: &str) -> std::result::Result<Shard, String> {
    s.parse::<Shard>().map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Backup to restore.
    #[arg(
        short = 'n',
        long,
        visible_alias = "backup-name",
        alias = "backup_name"
    )]
    name: String,
    /// Collections of the backup, `coll` or `db.coll`, comma-separated (default: all).
    #[arg(
        short = 'c',
        long = "collections",
        alias = "colls",
        value_delimiter = ','
    )]
    collections: Vec<String>,
    #[command(flatten)]
    dbs: DatabaseArgs,
    /// Suffix appended to every restored collection's name.
    #[arg(short = 's', long, default_value = "")]
    suffix: String,
    /// Renames, comma-separated: db1.c1:db2.c1_new, c2:c2_new, db1.*:db2.*
    #[arg(short = 'r', long, value_delimiter = ',')]
    rename: Vec<String>,
    /// One collection to restore: under its own name, or with
    /// --target-collection under another. Replacing an existing collection
    /// needs --drop_exist_collection (on a terminal you are asked).
    #[arg(long)]
    collection: Option<String>,
    /// New name for --collection.
    #[arg(
        long = "target-collection",
        alias = "target_collection",
        requires = "collection"
    )]
    target_collection: Option<String>,
    /// Every collection of the backup (the default when none is named).
    #[arg(long)]
    all: bool,
    /// Patterns `db.coll` or `db.*` of the backup's collections, comma-separated.
    #[arg(long, value_delimiter = ',')]
    filter: Vec<String>,
    /// Accepted for the Go tool's scripts; segments are imported one per job.
    #[arg(long = "use_v2_restore", alias = "use-v2-restore")]
    use_v2_restore: bool,
    /// Finish an interrupted restore of this backup (same options):
    /// collections and segments it finished are skipped, the rest imported.
    #[arg(long)]
    resume: bool,
    /// Drop a target collection that already exists, then restore.
    #[arg(long = "drop_exist_collection", alias = "drop-exist-collection")]
    drop_exist_collection: bool,
    /// Import into target collections that already exist.
    #[arg(long = "skip_create_collection", alias = "skip-create-collection")]
    skip_create_collection: bool,
    /// Recreate collections, partitions and indexes but no data.
    #[arg(long = "meta_only", alias = "meta-only")]
    meta_only: bool,
    /// Accepted for the Go tool's scripts: the backed-up indexes are
    /// rebuilt by default (--no-index skips them).
    #[arg(
        long = "restore_index",
        visible_alias = "rebuild_index",
        alias = "restore-index"
    )]
    restore_index: bool,
    /// Do not build the backed-up indexes (nor load: Milvus cannot load a
    /// collection without its vector index).
    #[arg(
        long = "no-index",
        alias = "no_index",
        conflicts_with = "restore_index"
    )]
    no_index: bool,
    /// Use AUTOINDEX for vector indexes (keeps the metric type).
    #[arg(long = "use_auto_index", alias = "use-auto-index")]
    use_auto_index: bool,
    /// With --skip_create_collection: drop the target's indexes first.
    #[arg(long = "drop_exist_index", alias = "drop-exist-index")]
    drop_exist_index: bool,
    /// Do not load collections that were loaded at backup time.
    #[arg(long = "no-load")]
    no_load: bool,
    /// Restore users and roles too: missing roles, grants, users and their
    /// roles are created; existing ones are left as they are.
    #[arg(long)]
    rbac: bool,
    /// With --rbac: `user:password` per line, the passwords of the users
    /// to create (users it lacks are reported and skipped).
    #[arg(
        long = "rbac-user-password-file",
        alias = "rbac_user_password_file",
        value_name = "FILE",
        requires = "rbac"
    )]
    rbac_user_password_file: Option<std::path::PathBuf>,
    /// Print the plan (targets, what exists and would be refused, staging,
    /// import jobs) and change nothing.
    #[arg(long = "dry-run", alias = "dry_run")]
    dry_run: bool,
    /// How the rows get in. By default a logical backup's rows are
    /// inserted over gRPC and a physical backup's segments imported by
    /// Milvus. `insert` on a physical backup reads its binlogs here and
    /// inserts their rows (much faster for many small segments on Milvus
    /// 2.2/2.3, no access to Milvus's storage needed); `bulk` on a logical
    /// backup stages its files into the target's storage for Milvus's
    /// import (needs its `minio:` settings).
    #[arg(
        long = "import-mode",
        alias = "import_mode",
        value_name = "insert|bulk"
    )]
    import_mode: Option<String>,
    /// Restore the collections the target Milvus can hold and report the
    /// others (e.g. nullable fields or BM25 functions on Milvus 2.3),
    /// instead of refusing the whole restore.
    #[arg(long = "skip-unsupported", alias = "skip_unsupported")]
    skip_unsupported: bool,
    /// Do not create the backed-up aliases (they are restored by default,
    /// unlike the Go tool's restore).
    #[arg(long = "no-aliases", alias = "no_aliases")]
    no_aliases: bool,
    /// Insert only shard K of N of a logical backup's files (K from 0, as
    /// Kubernetes's JOB_COMPLETION_INDEX counts), making the target
    /// collections when missing; a shard run again inserts only what is
    /// missing. Then --seal with the same options.
    #[arg(
        long,
        value_name = "K/N",
        value_parser = parse_shard,
        conflicts_with_all = ["dry_run", "resume", "seal", "drop_exist_collection", "skip_create_collection", "meta_only", "rbac"]
    )]
    shard: Option<Shard>,
    /// Finish a restore made with --shard once every shard finished:
    /// indexes, load and aliases, and each collection's rows checked.
    /// Refused, naming the shards left, while any has not finished.
    #[arg(long, conflicts_with_all = ["dry_run", "resume", "drop_exist_collection", "skip_create_collection", "meta_only", "rbac"])]
    seal: bool,
}

/// How a `create` that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Complete,
    /// Complete, with collections of a backup of everything kept without
    /// their rows (exit code 11).
    LeftOut,
}

/// `create`; under a `backup_strategy`, the run is recorded where
/// `status` reads runs.
pub async fn create(config: &Config, args: CreateArgs, out: &Output) -> Result<CreateOutcome> {
    let started = crate::schedule::now_ms();
    let asked = args.name.clone();
    let result = create_backup(config, args, out).await;
    let (name, ended) = match &result {
        Ok((Some(stats), _)) => (
            stats.name.clone(),
            Ok(milvus_backup_core::model::meta::LeftOut::describe(
                &stats.left_out,
            )),
        ),
        Ok((None, _)) => return result.map(|(_, outcome)| outcome),
        Err(e) => (asked.unwrap_or_else(|| "-".into()), Err(e)),
    };
    crate::schedule::record_by_hand(config, "create", &name, started, ended).await;
    result.map(|(_, outcome)| outcome)
}

/// Makes the backup; its stats, or none for a dry run.
async fn create_backup(
    config: &Config,
    args: CreateArgs,
    out: &Output,
) -> Result<(Option<backup::BackupStats>, CreateOutcome)> {
    let req = BackupRequest {
        name: args.name,
        blank_name_is_unset: false,
        selection: Selection {
            collections: args.colls,
            db_collections: args.dbs.db_collections()?,
            databases: args.dbs.databases,
            filter: args.filter,
        },
        all: args.all,
        strategy: args.strategy,
        force: args.force,
        meta_only: args.meta_only,
        rbac: args.rbac,
        compression: None,
        compress: args.compress,
        compress_level: args.compress_level,
        encrypt: args.encrypt,
        format: args.format,
        base_backup: args.base_backup,
        incremental: args.incremental,
        rate_limit: args.rate_limit,
        resume: args.resume,
        allow_unpersisted_deletes: args.allow_unpersisted_deletes,
    };
    for warning in req.warnings() {
        out.warn(&warning);
    }
    let mut opts = BackupOptions::from_request(req, &Settings::from_config(config))?;
    if args.seal || args.shard.is_some() {
        opts.shard = args.shard;
        return sharded_create(config, &opts, args.seal, out)
            .await
            .map(|stats| (stats, CreateOutcome::Complete));
    }
    let progress = CliProgress::with_steps(out, args.dry_run, Steps::Create);
    progress.step(1);
    let ctx = Context::open(config)?;
    let plan = backup::plan(&ctx, &opts).await?;
    if args.dry_run {
        print_backup_plan(&plan, out);
        return Ok((None, CreateOutcome::Complete));
    }
    let result = backup::execute(&ctx, &plan, &progress, &cancel_on_ctrl_c()).await;
    progress.finish();
    let stats = result?;
    let outcome = left_out_warning(&stats.name, &stats.left_out);
    if out.json {
        out.json_value(&stats);
    } else if !out.quiet {
        let names: Vec<&str> = plan
            .collections
            .iter()
            .map(|c| c.collection.as_str())
            .collect();
        let stored = match (plan.encoding.compression.is_none(), plan.encoding.encrypted) {
            (true, false) => "",
            (false, false) => " (compressed)",
            (true, true) => " (encrypted)",
            (false, true) => " (compressed, encrypted)",
        };
        match outcome {
            CreateOutcome::Complete => println!("\n✅ Backup created successfully!"),
            CreateOutcome::LeftOut => println!(
                "\n⚠️  Backup created with {} collection(s) left out (schema only, no rows)",
                stats.left_out.len()
            ),
        }
        println!("  Backup name: {}", stats.name);
        if stats.format != "binlog" {
            println!("  Format: {} (logical: rows read over gRPC)", stats.format);
        }
        println!("  Collections: {}", names.join(", "));
        println!(
            "  Total entities: {}{}",
            stats.entities,
            deleted_note(stats.deleted_entities)
        );
        if stats.unpersisted_deletes > 0 {
            println!(
                "  Unpersisted deletes: {} (a restore brings these deleted rows back)",
                stats.unpersisted_deletes
            );
        }
        println!("  Backup size: {}{stored}", human_bytes(stats.size_bytes));
        println!("  Files: {}", stats.files);
        println!("  Duration: {}", human_duration(stats.duration_s));
        if let Some(rbac) = &stats.rbac {
            println!("{}", crate::rbac::counts_line(rbac));
        }
        if let Some(base) = &stats.base_backup {
            println!(
                "incremental on `{base}`: {} file(s) shared, {} copied",
                stats.shared_files,
                human_bytes(stats.copied_bytes)
            );
        }
        for gone in &stats.retention_deleted {
            println!("retention: deleted backup `{gone}`");
        }
        if args.resume {
            println!(
                "resumed: {} file(s) ({}) the interrupted create stored were kept; {} copied now",
                stats.resumed_files,
                human_bytes(stats.resumed_bytes),
                human_bytes(stats.copied_bytes - stats.resumed_bytes)
            );
        }
    }
    Ok((Some(stats), outcome))
}

/// `create --shard K/N` (no stats: the backup is not complete) or
/// `create --seal` (the complete backup's stats).
async fn sharded_create(
    config: &Config,
    opts: &BackupOptions,
    seal: bool,
    out: &Output,
) -> Result<Option<backup::BackupStats>> {
    let ctx = Context::open(config)?;
    let progress = CliProgress::new(out, false);
    let cancel = cancel_on_ctrl_c();
    if seal {
        let result = backup::seal(&ctx, opts, &progress, &cancel).await;
        progress.finish();
        let stats = result?;
        if out.json {
            out.json_value(&stats);
        } else if !out.quiet {
            println!("\n✅ Backup sealed: it is complete");
            println!("  Backup name: {}", stats.name);
            println!("  Format: {} (logical, made in shards)", stats.format);
            println!("  Collections: {}", stats.collections);
            println!("  Total entities: {}", stats.entities);
            println!("  Backup size: {}", human_bytes(stats.size_bytes));
            println!("  Files: {}", stats.files);
        }
        return Ok(Some(stats));
    }
    let shard = opts.shard.expect("--shard");
    let result = backup::run_shard(&ctx, opts, shard, &progress, &cancel).await;
    progress.finish();
    let stats = result?;
    if out.json {
        out.json_value(&stats);
    } else if !out.quiet {
        match stats.already_done {
            true => println!("\n✅ Shard {} finished before: nothing to do", stats.shard),
            false => println!("\n✅ Shard {} exported", stats.shard),
        }
        println!("  Backup name: {} (incomplete until `--seal`)", stats.name);
        println!("  Key ranges: {} of {}", stats.ranges, stats.ranges_total);
        println!("  Rows: {}", stats.rows);
        println!(
            "  Files: {} ({})",
            stats.files,
            human_bytes(stats.copied_bytes)
        );
        println!("  Duration: {}", human_duration(stats.duration_s));
    }
    Ok(None)
}

/// The closing warning of a backup that completed with collections left
/// out, naming each and why (on stderr, also with `--json`).
fn left_out_warning(
    name: &str,
    left_out: &[milvus_backup_core::model::meta::LeftOut],
) -> CreateOutcome {
    if left_out.is_empty() {
        return CreateOutcome::Complete;
    }
    eprintln!(
        "warning: backup `{name}` completed with {} collection(s) left out (their schema is kept, without rows):",
        left_out.len()
    );
    for l in left_out {
        eprintln!("  {}: {}", l.collection, l.reason);
    }
    CreateOutcome::LeftOut
}

fn print_backup_plan(plan: &BackupPlan, out: &Output) {
    if out.json {
        out.json_value(&serde_json::json!({ "dry_run": true, "plan": plan }));
        return;
    }
    println!(
        "dry run: backup `{}` of Milvus {} — nothing was written",
        plan.name, plan.milvus
    );
    for c in &plan.collections {
        let shared = c.files.iter().filter(|f| f.shared_with.is_some()).count();
        println!(
            "  {}: {} segment(s), {} file(s), {}{}",
            c.collection,
            c.segments,
            c.files.len(),
            human_bytes(c.bytes),
            if shared > 0 {
                format!(" ({shared} shared with the base)")
            } else {
                String::new()
            }
        );
    }
    let t = &plan.totals;
    println!(
        "total: {} collection(s), {} segment(s), {} file(s), {}; copies {} file(s) ({})",
        t.collections,
        t.segments,
        t.files,
        human_bytes(t.bytes),
        t.files - t.shared_files,
        human_bytes(t.bytes - t.shared_bytes)
    );
    if let Some(rbac) = &plan.rbac {
        println!("{}", crate::rbac::counts_line(rbac));
    }
    if let Some(base) = &plan.base_backup {
        println!(
            "incremental on `{base}`: shares {} file(s) ({})",
            t.shared_files,
            human_bytes(t.shared_bytes)
        );
    }
    if plan.flush {
        println!("a flush runs first, so the segments and files may grow");
    }
    if plan.format != "binlog" {
        println!(
            "logical backup: each collection's rows are read over gRPC and stored as {} files",
            plan.format
        );
    }
    for note in &plan.notes {
        println!("{note}");
    }
}

pub async fn restore(config: &Config, args: RestoreArgs, out: &Output) -> Result<()> {
    tracing::debug!(
        use_v2_restore = args.use_v2_restore,
        restore_index = args.restore_index,
        "accepted for the Go tool's scripts"
    );
    let req = RestoreRequest {
        backup_name: args.name,
        collections: args.collections,
        collection: args.collection,
        target_collection: args.target_collection,
        all: args.all,
        db_collections: args.dbs.db_collections()?,
        databases: args.dbs.databases,
        filter: args.filter,
        suffix: args.suffix,
        renames: args.rename,
        mapping: None,
        drop_exist_collection: args.drop_exist_collection,
        skip_create_collection: args.skip_create_collection,
        meta_only: args.meta_only,
        restore_index: !args.no_index,
        use_auto_index: args.use_auto_index,
        drop_exist_index: args.drop_exist_index,
        load: !args.no_load,
        rbac: args.rbac,
        rbac_user_password_file: args.rbac_user_password_file,
        resume: args.resume,
        import_mode: args.import_mode.unwrap_or_default(),
        skip_unsupported: args.skip_unsupported,
        skip_aliases: args.no_aliases,
    };
    if req.all_ignores_names() {
        out.warn(
            "--all restores every collection of the backup; -c/--collection/--filter are ignored",
        );
    }
    let mut opts = RestoreOptions::from_request(req)?;
    let ctx = Context::open(config)?;
    if args.seal || args.shard.is_some() {
        return sharded_restore(&ctx, &opts, args.shard, out).await;
    }
    let mut plan = restore::plan(&ctx, &opts).await?;
    if !args.dry_run && confirm_overwrite(&ctx, &plan, out).await? {
        opts.drop_exist_collection = true;
        plan = restore::plan(&ctx, &opts).await?;
    }
    if args.dry_run {
        print_restore_plan(&plan, &ctx, out);
        // A plan that would be refused fails like the restore would.
        return plan.check();
    }
    let mut progress = CliProgress::with_steps(out, false, Steps::Restore);
    progress.set_restore_notes(restore_notes(&ctx, &plan));
    let result = restore::execute(&ctx, &plan, &progress, &cancel_on_ctrl_c()).await;
    progress.finish();
    let stats = result?;
    if out.json {
        out.json_value(&stats);
    } else if !out.quiet {
        let targets: Vec<String> = plan.tasks.iter().map(|t| t.target.to_string()).collect();
        println!("\n✅ Backup restored successfully!");
        println!("  Backup name: {}", stats.backup);
        println!("  Collection: {}", targets.join(", "));
        println!("  Total entities: {}", stats.entities);
        match plan.data_path {
            DataPath::BulkImport => println!(
                "  Format: {} (bulk mode: staged into Milvus's storage, read by its import)",
                plan.format
            ),
            DataPath::RowInsert => {
                println!("  Format: {} (rows inserted over gRPC)", plan.format)
            }
            DataPath::BinlogInsert => println!(
                "  Segments: {} (binlogs read, rows inserted over gRPC)",
                stats.segments
            ),
            DataPath::BinlogImport => println!(
                "  Segments: {} ({} staged)",
                stats.segments,
                human_bytes(stats.staged_bytes)
            ),
        }
        for t in &stats.keys_regenerated {
            println!("  {t}: autoID keys regenerated (the backup's keys were not kept)");
        }
        println!("  Duration: {}", human_duration(stats.duration_s));
        if let Some(rbac) = &stats.rbac {
            crate::rbac::print_plan(rbac, false);
        }
    }
    Ok(())
}

/// `restore --shard K/N`, or `restore --seal` without a shard.
async fn sharded_restore(
    ctx: &Context,
    opts: &RestoreOptions,
    shard: Option<Shard>,
    out: &Output,
) -> Result<()> {
    let progress = CliProgress::new(out, false);
    let cancel = cancel_on_ctrl_c();
    let Some(shard) = shard else {
        let result = restore::sharded::seal(ctx, opts, &progress, &cancel).await;
        progress.finish();
        let stats = result?;
        if out.json {
            out.json_value(&stats);
        } else if !out.quiet {
            println!("\n✅ Restore sealed: indexed, loaded and counted");
            println!("  Backup name: {}", stats.backup);
            println!("  Collections: {}", stats.collections);
            println!("  Total entities: {}", stats.entities);
            println!("  Duration: {}", human_duration(stats.duration_s));
        }
        return Ok(());
    };
    let result = restore::sharded::run_shard(ctx, opts, shard, &progress, &cancel).await;
    progress.finish();
    let stats = result?;
    if out.json {
        out.json_value(&stats);
    } else if !out.quiet {
        match stats.already_done {
            true => println!("\n✅ Shard {} finished before: nothing to do", stats.shard),
            false => println!("\n✅ Shard {} restored", stats.shard),
        }
        println!("  Backup name: {} (finish with `--seal`)", stats.backup);
        println!("  Files: {} of {}", stats.files, stats.files_total);
        println!("  Rows: {}", stats.rows);
        println!("  Duration: {}", human_duration(stats.duration_s));
    }
    Ok(())
}

/// How a restore reads the backup, for its first three steps.
fn restore_notes(ctx: &Context, plan: &RestorePlan) -> RestoreNotes {
    let manifest = plan.manifest.as_ref();
    let compression = manifest.and_then(|m| m.compression.as_ref());
    let encrypted = manifest.is_some_and(|m| m.encryption.is_some());
    match plan.data_path {
        DataPath::BulkImport => RestoreNotes {
            download: format!(
                "logical backup ({}), bulk mode: each file is read from backup storage, converted into a file Milvus's import reads (Parquet or row-based JSON) under `{}` of its storage, and imported by Milvus",
                plan.format,
                plan.staging_dir.as_deref().unwrap_or_default()
            ),
            decompress: "decoded as each file is read".to_string(),
            verify: "metadata checked; every file checked against its size and SHA-256 before it is staged".to_string(),
        },
        DataPath::RowInsert => RestoreNotes {
            download: format!(
                "logical backup ({}): each file is read from backup storage and its rows inserted over gRPC",
                plan.format
            ),
            decompress: if encrypted {
                "decrypted (and decompressed) as each file is read".to_string()
            } else {
                "Parquet decompresses itself; JSON Lines decoded as read".to_string()
            },
            verify: "metadata checked; every file checked against its size and SHA-256 before its rows are inserted".to_string(),
        },
        DataPath::BinlogInsert => RestoreNotes {
            download: "physical backup, insert mode: each segment's binlogs are read from backup storage, deletes applied, and the rows inserted over gRPC".to_string(),
            decompress: match (compression, encrypted) {
                (None, false) => "not compressed".to_string(),
                _ => "decoded as each file is read".to_string(),
            },
            verify: if manifest.is_none() {
                "another tool's backup: no checksums to check (metadata read)".to_string()
            } else {
                "metadata checked; every file checked against its size and SHA-256 as it is read".to_string()
            },
        },
        DataPath::BinlogImport => RestoreNotes {
            download: match &plan.staging_dir {
                Some(dir) => format!(
                    "staged into the target's storage under `{dir}`, segment by segment as they are imported"
                ),
                None => "read in place: the target Milvus reads the backup's files".to_string(),
            },
            decompress: match (compression, encrypted) {
                (None, false) => "not compressed".to_string(),
                (Some(c), false) => format!("{:?}: decoded as each file is staged", c.algorithm),
                (None, true) => "encrypted: decrypted as each file is staged".to_string(),
                (Some(c), true) => format!(
                    "{:?}, encrypted: decoded as each file is staged",
                    c.algorithm
                ),
            },
            verify: if manifest.is_none() {
                "another tool's backup: no checksums to check (metadata read)".to_string()
            } else if plan.checks_every_file(ctx) {
                "metadata checked; every file checked against its size and SHA-256 as it is staged"
                    .to_string()
            } else {
                "metadata checked; files copied by the storage service (`verify --deep` reads every byte)"
                    .to_string()
            },
        },
    }
}

/// `(596 deleted rows not counted)` when rows were deleted.
fn deleted_note(deleted: i64) -> String {
    if deleted > 0 {
        format!(" ({deleted} deleted rows not counted)")
    } else {
        String::new()
    }
}

/// Whether the user, asked on a terminal, agreed to replace the existing
/// targets the plan refuses. Without a terminal nobody is asked: the plan's
/// refusal (naming --drop_exist_collection) stands.
async fn confirm_overwrite(ctx: &Context, plan: &RestorePlan, out: &Output) -> Result<bool> {
    let existing: Vec<&restore::CollectionTask> = plan
        .tasks
        .iter()
        .filter(|t| {
            t.refused
                .as_ref()
                .is_some_and(|r| r.kind == milvus_backup_core::ErrorKind::AlreadyExists)
        })
        .collect();
    if existing.is_empty()
        || existing.len() < plan.tasks.iter().filter(|t| t.refused.is_some()).count()
        || out.json
        || !std::io::stdin().is_terminal()
        || !std::io::stderr().is_terminal()
    {
        return Ok(false);
    }
    let client = ctx.milvus().await?;
    for t in &existing {
        let rows = client.row_count(&t.target.db, &t.target.name).await?;
        eprint!(
            "collection `{}` exists with {rows} rows — drop it and restore it from `{}`? [y/N] ",
            t.target, plan.backup
        );
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(|e| Error::internal(format!("reading the answer: {e}")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(false);
        }
    }
    Ok(true)
}

fn print_restore_plan(plan: &RestorePlan, ctx: &Context, out: &Output) {
    if out.json {
        out.json_value(&serde_json::json!({ "dry_run": true, "plan": plan }));
        return;
    }
    println!(
        "dry run: restore `{}` into Milvus {} — nothing was changed",
        plan.backup, plan.milvus
    );
    for t in &plan.tasks {
        let action = match &t.refused {
            Some(r) => format!("REFUSED: {}", r.reason),
            None if t.reuse_existing => "import into the existing collection".to_string(),
            None if t.drop_existing => "drop the existing collection, recreate".to_string(),
            None => "create".to_string(),
        };
        let bytes: u64 = t.imports.iter().map(|j| j.bytes).sum();
        println!(
            "  {} -> {}: {action}{}; {} import job(s), {}; data: {}",
            t.source,
            t.target,
            if t.create_database {
                format!(" (creating database `{}`)", t.target.db)
            } else {
                String::new()
            },
            t.imports.len(),
            human_bytes(bytes),
            plan.data_path.describe()
        );
    }
    match &plan.staging_dir {
        Some(dir) => println!(
            "staging: segment files are copied to `{dir}` in {} first",
            ctx.milvus_storage.spec().describe()
        ),
        None if plan.data_path.inserts() => {
            println!("staging: none, the rows are inserted over gRPC")
        }
        None => println!("staging: none, Milvus reads the backup's files in place"),
    }
    for s in &plan.slow_imports {
        println!("slow: {}", s.describe());
    }
    if let Some(rbac) = &plan.rbac {
        crate::rbac::print_plan(rbac, true);
    }
}
