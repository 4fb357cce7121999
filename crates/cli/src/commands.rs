//! The operation commands: `create`, `restore`, `verify`, `list`, `get`,
//! `delete`, `key passwd`. Each maps flags onto the core's options, drives the core's
//! plan and execute (printing the plan instead with `--dry-run`), and
//! prints the result. Ctrl-C cancels: the core removes what it wrote.

use std::io::IsTerminal;

use clap::Args;
use milvus_backup_core::config::{Config, Secret};
use milvus_backup_core::model::selection::Selection;
use milvus_backup_core::ops::backup::{self, BackupOptions, BackupPlan, BackupRequest};
use milvus_backup_core::ops::delete::{self, DeleteOptions, DeleteTarget, Retention};
use milvus_backup_core::ops::restore::{self, RestoreOptions, RestorePlan};
use milvus_backup_core::ops::verify::{self, VerifyOptions};
use milvus_backup_core::repo::catalog::{self, BackupState};
use milvus_backup_core::storage::root_key;
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
  milvus-backup --json create -n n6 --dry-run         # the plan as JSON";

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
  milvus-backup restore -n nightly -s _r --resume         # finish an interrupted restore";

pub const VERIFY_EXAMPLES: &str = "\
Examples:
  milvus-backup verify --backup-name backup_20260210
  milvus-backup verify -n nightly            # meta files, every file present with its size
  milvus-backup verify -n nightly --deep     # also read every file and compare its SHA-256
  milvus-backup verify --all
  milvus-backup --json verify --all --deep
  milvus-backup verify -n nightly --restore-test   # also restore, compare rows, drop

--restore-test restores every collection of the backup into the configured
Milvus as default.<name>_vrt_<8 hex>, compares each segment's row count and
the rows sampled when the backup was made, then drops those collections.

Exit code 9 when a backup is damaged; each bad file is named.";

pub const LIST_EXAMPLES: &str = "\
Examples:
  milvus-backup list
  milvus-backup list --collection docs
  milvus-backup list --verbose        # Backup Name, Collections, Entities, Size, Created At
  milvus-backup --json list";

pub const GET_EXAMPLES: &str = "\
Examples:
  milvus-backup get -n nightly
  milvus-backup --json get -n nightly > nightly.json";

pub const DELETE_EXAMPLES: &str = "\
Examples:
  milvus-backup delete --backup-name backup_20260208
  milvus-backup delete -n nightly
  milvus-backup delete --older-than 30d
  milvus-backup delete --all          # asks on a terminal
  milvus-backup delete --all --yes    # scripts
  milvus-backup delete --apply-retention --dry-run   # what backup.maxBackupNum / retentionDays remove
  milvus-backup delete --apply-retention

Files that incremental backups share are moved to a remaining backup, so
deleting backups in any order never breaks the others.";

pub const KEYGEN_EXAMPLES: &str = "\
Examples:
  milvus-backup keygen > backup-key.txt && chmod 600 backup-key.txt
  milvus-backup --set backup.encryption.keyFile=backup-key.txt create --encrypt -n nightly

Keep the key file safe and apart from the backups: without it, encrypted
backups cannot be restored.";

pub const PASSWD_EXAMPLES: &str = "\
Examples:
  MILVUS_BACKUP_PASSWORD=old milvus-backup key passwd              # asks twice for the new one
  MILVUS_BACKUP_PASSWORD=old milvus-backup key passwd --new-password-file new.txt
  MILVUS_BACKUP_PASSWORD=old MILVUS_BACKUP_NEW_PASSWORD=new milvus-backup key passwd

The current password comes from MILVUS_BACKUP_PASSWORD or
backup.encryption.password; afterwards only the new one opens the backups.";

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// File whose first line is the new password (else
    /// MILVUS_BACKUP_NEW_PASSWORD, else asked twice on a terminal).
    #[arg(long, value_name = "FILE")]
    new_password_file: Option<std::path::PathBuf>,
}

pub async fn passwd(config: &Config, args: PasswdArgs, out: &Output) -> Result<()> {
    let ctx = Context::open(config)?;
    let new = new_password(&args)?;
    let stats = root_key::change_password(&ctx.backup_storage, &Secret::new(new)).await?;
    if out.json {
        out.json_value(&stats);
    } else if !out.quiet {
        println!(
            "changed the password of the root key {} in {} (key {}, unchanged): set the new one in MILVUS_BACKUP_PASSWORD or backup.encryption.password",
            stats.object,
            ctx.backup_storage.spec().describe(),
            stats.recipient
        );
    }
    Ok(())
}

/// The new password: from the file, the environment, or asked twice.
fn new_password(args: &PasswdArgs) -> Result<String> {
    if let Some(file) = &args.new_password_file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::invalid_input(format!(
                "cannot read the new password file `{}`: {e}",
                file.display()
            ))
        })?;
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    if let Ok(p) = std::env::var("MILVUS_BACKUP_NEW_PASSWORD") {
        return Ok(p);
    }
    let term = console::Term::stderr();
    if !term.is_term() || !std::io::stdin().is_terminal() {
        return Err(Error::invalid_input(
            "no new password: give it with --new-password-file FILE or MILVUS_BACKUP_NEW_PASSWORD (or run on a terminal to be asked)",
        ));
    }
    let ask = |prompt: &str| {
        eprint!("{prompt}");
        term.read_secure_line()
            .map_err(|e| Error::internal(format!("reading the password: {e}")))
    };
    let first = ask("new password: ")?;
    if ask("new password again: ")? != first {
        return Err(Error::invalid_input(
            "the two new passwords differ — nothing was changed",
        ));
    }
    Ok(first)
}

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
    /// Backup name (letters, digits, `_`); default backup_<UTC time>.
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
    /// Print the plan (collections, segments, files, bytes, what is shared)
    /// and write nothing.
    #[arg(long = "dry-run", alias = "dry_run")]
    dry_run: bool,
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
    /// Recreate the backed-up indexes.
    #[arg(
        long = "restore_index",
        visible_alias = "rebuild_index",
        alias = "restore-index"
    )]
    restore_index: bool,
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
    /// How a logical backup's rows get in: `insert` (over gRPC, any
    /// server) or `bulk` (files staged into the target's storage and read
    /// by Milvus's import; needs its `minio:` settings).
    #[arg(
        long = "import-mode",
        alias = "import_mode",
        value_name = "insert|bulk",
        default_value = "insert"
    )]
    import_mode: String,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Backup name.
    #[arg(
        short = 'n',
        long,
        visible_alias = "backup-name",
        alias = "backup_name",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    name: Option<String>,
    /// Verify every complete backup.
    #[arg(long)]
    all: bool,
    /// Read every file and compare its checksum, not only its size.
    #[arg(long)]
    deep: bool,
    /// Also restore into throwaway collections on the configured Milvus,
    /// compare row counts and sampled rows, then drop them.
    #[arg(long = "restore-test", alias = "restore_test")]
    restore_test: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only backups that contain this collection (`coll` or `db.coll`).
    #[arg(long)]
    collection: Option<String>,
    /// The user guide's columns: name, the collections by name, entities,
    /// size, creation time.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Backup name.
    #[arg(
        short = 'n',
        long,
        visible_alias = "backup-name",
        alias = "backup_name"
    )]
    name: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Backup name.
    #[arg(short = 'n', long, visible_alias = "backup-name", alias = "backup_name", required_unless_present_any = ["all", "older_than", "apply_retention"])]
    name: Option<String>,
    /// Delete every backup older than this age (e.g. 30d, 12h, 2w).
    #[arg(long, conflicts_with_all = ["name", "all"])]
    older_than: Option<String>,
    /// Delete every backup (asks on a terminal; --yes elsewhere).
    #[arg(long, conflicts_with = "name")]
    all: bool,
    /// Confirm --all without asking.
    #[arg(long)]
    yes: bool,
    /// Delete what backup.maxBackupNum and backup.retentionDays say to.
    #[arg(long = "apply-retention", conflicts_with_all = ["name", "all", "older_than"])]
    apply_retention: bool,
    /// Only show what would be deleted.
    #[arg(long = "dry-run")]
    dry_run: bool,
}

pub async fn create(config: &Config, args: CreateArgs, out: &Output) -> Result<()> {
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
    };
    for warning in req.warnings() {
        out.warn(&warning);
    }
    let opts = BackupOptions::from_request(req, &config.backup)?;
    let progress = CliProgress::with_steps(out.quiet || args.dry_run, out.json, Steps::Create);
    progress.step(1);
    let ctx = Context::open(config)?;
    let plan = backup::plan(&ctx, &opts).await?;
    if args.dry_run {
        print_backup_plan(&plan, out);
        return Ok(());
    }
    let result = backup::execute(&ctx, &plan, &progress, &cancel_on_ctrl_c()).await;
    progress.finish();
    let stats = result?;
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
        println!("\n✅ Backup created successfully!");
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
    Ok(())
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
    let mut collections = args.collections;
    let mut renames = args.rename;
    if let Some(from) = args.collection {
        collections.push(from.clone());
        if let Some(to) = args.target_collection {
            renames.push(format!("{from}:{to}"));
        }
    }
    if args.all && (!collections.is_empty() || !args.filter.is_empty()) {
        out.warn(
            "--all restores every collection of the backup; -c/--collection/--filter are ignored",
        );
        collections.clear();
    }
    let filter = if args.all { Vec::new() } else { args.filter };
    tracing::debug!(
        use_v2_restore = args.use_v2_restore,
        "accepted for the Go tool's scripts"
    );
    let mut opts = RestoreOptions {
        backup_name: args.name,
        collections,
        db_collections: args.dbs.db_collections()?,
        databases: args.dbs.databases,
        suffix: args.suffix,
        renames,
        filter,
        drop_exist_collection: args.drop_exist_collection,
        skip_create_collection: args.skip_create_collection,
        meta_only: args.meta_only,
        restore_index: args.restore_index,
        use_auto_index: args.use_auto_index,
        drop_exist_index: args.drop_exist_index,
        load: !args.no_load,
        rbac: args.rbac,
        rbac_user_password_file: args.rbac_user_password_file,
        tuning: None,
        overrides: Default::default(),
        resume: args.resume,
        import_mode: args.import_mode.parse()?,
    };
    let ctx = Context::open(config)?;
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
    let mut progress = CliProgress::with_steps(out.quiet, out.json, Steps::Restore);
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
        if plan.logical.is_some() && plan.staging_dir.is_some() {
            println!(
                "  Format: {} (bulk mode: staged into Milvus's storage, read by its import)",
                plan.format
            );
        } else if plan.logical.is_some() {
            println!("  Format: {} (rows inserted over gRPC)", plan.format);
        } else {
            println!(
                "  Segments: {} ({} staged)",
                stats.segments,
                human_bytes(stats.staged_bytes)
            );
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

/// How a restore reads the backup, for its first three steps.
fn restore_notes(ctx: &Context, plan: &RestorePlan) -> RestoreNotes {
    let manifest = plan.manifest.as_ref();
    let compression = manifest.and_then(|m| m.compression.as_ref());
    let encrypted = manifest.is_some_and(|m| m.encryption.is_some());
    if let (Some(_), Some(dir)) = (&plan.logical, &plan.staging_dir) {
        return RestoreNotes {
            download: format!(
                "logical backup ({}), bulk mode: each file is read from backup storage, converted into a file Milvus's import reads (Parquet or row-based JSON) under `{dir}` of its storage, and imported by Milvus",
                plan.format
            ),
            decompress: "decoded as each file is read".to_string(),
            verify: "metadata checked; every file checked against its size and SHA-256 before it is staged".to_string(),
        };
    }
    if plan.logical.is_some() {
        return RestoreNotes {
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
        };
    }
    RestoreNotes {
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
            "  {} -> {}: {action}{}; {} import job(s), {}",
            t.source,
            t.target,
            if t.create_database {
                format!(" (creating database `{}`)", t.target.db)
            } else {
                String::new()
            },
            t.imports.len(),
            human_bytes(bytes)
        );
    }
    match &plan.staging_dir {
        Some(dir) => println!(
            "staging: segment files are copied to `{dir}` in {} first",
            ctx.milvus_storage.spec().describe()
        ),
        None => println!("staging: none, Milvus reads the backup's files in place"),
    }
    if let Some(rbac) = &plan.rbac {
        crate::rbac::print_plan(rbac, true);
    }
}

/// Returns whether every verified backup is whole; the problems are printed.
pub async fn verify(config: &Config, args: VerifyArgs, out: &Output) -> Result<VerifyOutcome> {
    let ctx = Context::open(config)?;
    let opts = VerifyOptions {
        backups: args.name.into_iter().collect(),
        deep: args.deep,
        restore_test: args.restore_test,
        tuning: None,
    };
    let plan = verify::plan(&ctx, &opts).await?;
    let progress = CliProgress::with_steps(out.quiet, out.json, Steps::Verify);
    let result = verify::execute(&ctx, &plan, &progress, &cancel_on_ctrl_c()).await;
    progress.finish();
    let reports = result?;
    if !out.json {
        for report in &reports {
            let name = &report.name;
            for p in &report.problems {
                println!("BAD  {name}: {}: {}", p.path, p.problem);
            }
            if let Some(why) = &report.skipped {
                println!("SKIP {name}: not checked: {why}");
            }
            if report.ok() && !out.quiet {
                println!(
                    "OK   {name}: {} files, {} {}",
                    report.files,
                    human_bytes(report.bytes),
                    if args.deep {
                        "read and checksummed"
                    } else {
                        "present with their sizes"
                    }
                );
            }
            if let Some(rt) = report.restore_test.as_ref().filter(|_| !out.quiet) {
                print_restore_test(name, rt);
            }
            if !out.quiet {
                print_verdict(report);
            }
        }
    }
    if out.json {
        out.json_value(&reports);
    }
    let bad: Vec<&str> = reports
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| r.name.as_str())
        .collect();
    let skipped: Vec<&str> = reports
        .iter()
        .filter(|r| r.skipped.is_some())
        .map(|r| r.name.as_str())
        .collect();
    // The report above is the result; these lines only say what to do.
    if !bad.is_empty() {
        eprintln!(
            "error: backup(s) {} failed verification — each damaged file is named above; restore from another backup",
            bad.join(", ")
        );
    }
    if !skipped.is_empty() {
        eprintln!(
            "error: backup(s) {} could not be checked — see the SKIP lines above",
            skipped.join(", ")
        );
    }
    Ok(if !bad.is_empty() {
        VerifyOutcome::Damaged
    } else if !skipped.is_empty() {
        VerifyOutcome::Skipped
    } else {
        VerifyOutcome::Sound
    })
}

/// What `verify` found, for the exit code: 0, 9 (damaged, incomplete) or
/// 2 (a backup could not be opened with this configuration).
pub enum VerifyOutcome {
    Sound,
    Damaged,
    Skipped,
}

/// The guide's verdict block for one verified backup.
fn print_verdict(report: &milvus_backup_core::ops::verify::VerifyReport) {
    let found = report.findings();
    let verdict = |bad: usize, ok: &str| {
        if bad == 0 {
            ok.to_string()
        } else {
            format!("FAILED ({bad} problem(s) above)")
        }
    };
    let restore_test = match found.restore_test {
        None => "skipped (--restore-test runs it)".to_string(),
        Some(bad) => verdict(bad, "OK"),
    };
    if report.skipped.is_some() {
        println!("\n⚠️  Backup not checked: {}", report.name);
        return;
    }
    if report.ok() {
        println!("\n✅ Backup is valid!");
    } else {
        println!("\n❌ Backup is corrupted!");
    }
    println!("  Backup name: {}", report.name);
    let checked = if report.deep {
        "OK"
    } else {
        "OK (sizes; --deep reads every byte and compares its SHA-256)"
    };
    println!("  Checksum: {}", verdict(found.files, checked));
    println!("  Metadata: {}", verdict(found.metadata, "OK"));
    println!("  Restore test: {restore_test}");
}

fn print_restore_test(
    name: &str,
    rt: &milvus_backup_core::ops::verify::rehearsal::RestoreTestStats,
) {
    for c in &rt.collections {
        let sample = if c.sample_compared {
            format!("{} sampled rows compared", c.sampled_rows)
        } else if c.sampled_rows > 0 {
            "sample not compared".to_string()
        } else {
            "no row sample".to_string()
        };
        println!(
            "{}  {name}: restore test of {} as {}: {}/{} segments, {} rows imported of {} backed up, {sample}{}",
            if c.problems == 0 { "OK " } else { "BAD" },
            c.collection,
            c.restored_as,
            c.segments - c.failed_segments,
            c.segments,
            c.imported_rows,
            c.backed_up_rows,
            if c.dropped { "" } else { " (NOT dropped)" }
        );
    }
}

pub async fn list(config: &Config, args: ListArgs, out: &Output) -> Result<()> {
    let ctx = Context::open(config)?;
    // With the scheduled verification's verdicts (`verified_ok`, `last_verified_at`).
    let (rows, verdicts): (Vec<_>, Vec<_>) = catalog::list_with_verdicts(&ctx.backup_storage)
        .await?
        .into_iter()
        .filter(|(r, _)| args.collection.as_ref().is_none_or(|c| r.holds(c)))
        .unzip();
    if out.json {
        let mut value = serde_json::to_value(&rows).unwrap_or_default();
        crate::schedule::add_verdicts(&mut value, &verdicts);
        out.json_value(&value);
        return Ok(());
    }
    if args.verbose {
        print_guide_table(&rows);
        if rows.is_empty() && !out.quiet {
            eprintln!("no backups in {}", ctx.backup_storage.spec().describe());
        }
        return Ok(());
    }
    println!(
        "{:<40} {:<10} {:<7} {:>11} {:>12} {:>10}  CREATED (UTC)",
        "NAME", "STATE", "FORMAT", "COLLECTIONS", "ENTITIES", "SIZE"
    );
    for (r, verdict) in rows.iter().zip(&verdicts) {
        let created = chrono::DateTime::from_timestamp_millis(r.backup_timestamp as i64)
            .filter(|_| r.backup_timestamp > 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into())
            + &crate::schedule::verdict_text(verdict.as_ref());
        let state = match r.state {
            BackupState::Complete => "complete",
            BackupState::Incomplete => "INCOMPLETE",
            BackupState::Damaged => "DAMAGED",
        };
        println!(
            "{:<40} {:<10} {:<7} {:>11} {:>12} {:>10}  {created}",
            r.name,
            state,
            if r.format.is_empty() { "-" } else { &r.format },
            r.collections.len(),
            r.entities,
            human_bytes(r.size_bytes.max(0) as u64)
        );
    }
    if rows.is_empty() && !out.quiet {
        eprintln!("no backups in {}", ctx.backup_storage.spec().describe());
    }
    Ok(())
}

/// `list --verbose`: the user guide's columns, collections by name (the
/// `default` database's without its prefix), state when not complete.
fn print_guide_table(rows: &[catalog::BackupListing]) {
    let collections = |r: &catalog::BackupListing| {
        let names: Vec<&str> = r
            .collections
            .iter()
            .map(|c| c.strip_prefix("default.").unwrap_or(c))
            .collect();
        match r.state {
            BackupState::Complete => names.join(","),
            BackupState::Incomplete => "(incomplete)".to_string(),
            BackupState::Damaged => "(damaged: run verify)".to_string(),
        }
    };
    let width = rows
        .iter()
        .map(|r| collections(r).len())
        .max()
        .unwrap_or(0)
        .clamp(11, 60);
    let name_width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(24);
    println!(
        "{:<name_width$} {:<width$} {:>11} {:>10}  Created At",
        "Backup Name", "Collections", "Entities", "Size"
    );
    for r in rows {
        let created = chrono::DateTime::from_timestamp_millis(r.backup_timestamp as i64)
            .filter(|_| r.backup_timestamp > 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<name_width$} {:<width$} {:>11} {:>10}  {created}",
            r.name,
            collections(r),
            r.entities,
            human_bytes(r.size_bytes.max(0) as u64)
        );
    }
}

pub async fn get(config: &Config, args: GetArgs, out: &Output) -> Result<()> {
    let ctx = Context::open(config)?;
    let info = catalog::get(&ctx.backup_storage, &args.name).await?;
    let verdict =
        milvus_backup_core::repo::verification::read(&ctx.backup_storage, &args.name).await?;
    if out.json {
        let mut value = serde_json::to_value(&info).unwrap_or_default();
        crate::schedule::add_verdicts(&mut value, &[verdict]);
        out.json_value(&value);
        return Ok(());
    }
    if let Some(v) = &verdict {
        println!(
            "verified:      {}",
            crate::schedule::verdict_text(Some(v)).trim()
        );
    }
    let created = chrono::DateTime::from_timestamp_millis(info.backup_timestamp as i64)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    println!("name:           {}", info.name);
    println!("id:             {}", info.id);
    println!("created:        {created}");
    println!("milvus version: {}", info.milvus_version);
    println!("format:         {}", info.data_format());
    println!("size:           {}", human_bytes(info.size.max(0) as u64));
    println!("entities:       {}", catalog::entities(&info));
    if let Some(m) = catalog::manifest(&ctx.backup_storage, &args.name).await? {
        let mut stored = Vec::new();
        if let Some(c) = &m.compression {
            stored.push(format!("{:?}-{}", c.algorithm, c.level).to_lowercase());
        }
        if let Some(e) = &m.encryption {
            stored.push(format!("encrypted for {}", e.recipient));
        }
        if !stored.is_empty() {
            println!("stored:         {}", stored.join(", "));
        }
        let shared = m.files.iter().filter(|f| f.stored_in.is_some()).count();
        if let Some(base) = &m.base_backup {
            println!(
                "incremental:    on `{base}`, {shared} of {} files shared",
                m.files.len()
            );
        }
    }
    println!("collections:");
    for c in &info.collection_backups {
        let segments: usize = c
            .partition_backups
            .iter()
            .map(|p| p.segment_backups.len())
            .sum();
        let rows: i64 = c
            .partition_backups
            .iter()
            .flat_map(|p| &p.segment_backups)
            .map(|s| s.num_of_rows)
            .sum();
        println!(
            "  {}.{}  fields: {}  partitions: {}  segments: {}  entities: {}  indexes: {}  load: {}",
            c.db_name,
            c.collection_name,
            c.schema.fields.len(),
            c.partition_backups.len(),
            segments,
            rows,
            c.index_infos.len(),
            c.load_state
        );
    }
    Ok(())
}

/// On a terminal, asks before `delete --all`; elsewhere the answer is no.
async fn ask_delete_all(ctx: &Context, out: &Output) -> Result<bool> {
    if out.json || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Ok(false);
    }
    let n = catalog::names(&ctx.backup_storage).await?.len();
    eprint!(
        "delete all {n} backup(s) in {}? [y/N] ",
        ctx.backup_storage.spec().describe()
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::internal(format!("reading the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub async fn delete(config: &Config, args: DeleteArgs, out: &Output) -> Result<()> {
    let ctx = Context::open(config)?;
    let target = if args.apply_retention {
        DeleteTarget::Retention(Retention::from_config(&ctx.config.backup))
    } else if let Some(name) = args.name {
        DeleteTarget::Names(vec![name])
    } else if args.all {
        if !args.yes && !args.dry_run && !ask_delete_all(&ctx, out).await? {
            return Err(Error::invalid_input(
                "delete --all removes every backup; add --yes to confirm",
            ));
        }
        DeleteTarget::All
    } else {
        DeleteTarget::OlderThan(delete::parse_age(
            args.older_than.as_deref().unwrap_or_default(),
        )?)
    };
    let opts = DeleteOptions {
        target,
        keep: Vec::new(),
    };
    let plan = delete::plan(&ctx.backup_storage, &opts).await?;
    if args.dry_run {
        if out.json {
            out.json_value(&serde_json::json!({ "would_delete": plan.backups }));
        } else {
            for name in &plan.backups {
                println!("would delete backup `{name}`");
            }
            if plan.backups.is_empty() && !out.quiet {
                println!("nothing to delete");
            }
        }
        return Ok(());
    }
    let progress = CliProgress::new(true, out.json);
    let stats = delete::execute(&ctx.backup_storage, &plan, &progress, &cancel_on_ctrl_c()).await?;
    if out.json {
        out.json_value(&serde_json::json!({ "deleted": stats.deleted }));
    } else if !out.quiet {
        for name in &stats.deleted {
            println!("deleted backup `{name}`");
        }
        if stats.deleted.is_empty() && std::io::stdout().is_terminal() {
            println!("nothing to delete");
        }
    }
    Ok(())
}

pub const GC_EXAMPLES: &str = "\
Examples:
  milvus-backup gc --staging --dry-run          # what interrupted restores left
  milvus-backup gc --staging                    # remove it
  milvus-backup gc --staging --older-than 6h    # only folders idle for 6 hours

A restore renews a lease in its staging folder every minute while it runs;
a folder whose lease is older than --older-than (default 10m) belongs to no
running restore. Restores sweep such folders themselves before staging;
folders kept by backup.keepTempFiles are removed only here.";

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Remove restore staging folders (`backup_staging/…` in Milvus's
    /// storage) that no running restore holds.
    #[arg(long, required = true)]
    staging: bool,
    /// Only folders whose lease is at least this old (e.g. 10m, 6h, 2d).
    #[arg(long, default_value = "10m")]
    older_than: String,
    /// Only show what would be removed.
    #[arg(long = "dry-run")]
    dry_run: bool,
}

pub async fn gc(config: &Config, args: GcArgs, out: &Output) -> Result<()> {
    use milvus_backup_core::repo::staging::{sweep, Sweep};
    let older_than = std::time::Duration::from_secs(milvus_backup_core::ops::delete::parse_age(
        &args.older_than,
    )?);
    let ctx = Context::open(config)?;
    let swept = sweep(
        &ctx.milvus_storage,
        older_than,
        Sweep::AlsoKept,
        args.dry_run,
    )
    .await?;
    if out.json {
        out.json_value(&serde_json::json!({ "dry_run": args.dry_run, "staging": swept }));
        return Ok(());
    }
    if !out.quiet {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for s in &swept {
            let idle = s
                .idle_s
                .map(|i| format!("idle {}", human_duration(i as f64)))
                .unwrap_or_else(|| "no lease".to_string());
            println!(
                "{verb} `{}`: {} object(s), {} ({idle})",
                s.dir,
                s.objects,
                human_bytes(s.bytes)
            );
        }
        if swept.is_empty() {
            println!("no staging folder is older than {}", args.older_than);
        }
    }
    Ok(())
}
