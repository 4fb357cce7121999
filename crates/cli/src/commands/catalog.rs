//! `list`, `get` and `delete`: the backups in storage.

use std::io::IsTerminal;

use clap::Args;
use milvus_backup_core::config::Config;
use milvus_backup_core::ops::delete::{self, DeleteOptions, DeleteTarget};
use milvus_backup_core::ops::retention::Retention;
use milvus_backup_core::repo::catalog::{self, BackupState};
use milvus_backup_core::{Context, Error, Result};

use crate::commands::cancel_on_ctrl_c;
use crate::output::{human_bytes, Output};
use crate::progress::CliProgress;

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
    /// Delete a backup even while a restore, verify or replicate uses it
    /// (that operation then fails).
    #[arg(long)]
    force: bool,
}

pub async fn list(config: &Config, args: ListArgs, out: &Output) -> Result<()> {
    let ctx = Context::open(config)?;
    // With the scheduled verification's verdicts (`verified_ok`, `last_verified_at`).
    // A backup its last verification found damaged lists as damaged.
    let (rows, verdicts): (Vec<_>, Vec<_>) = catalog::list_as_shown(&ctx.backup_storage)
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
    let manifest = catalog::manifest(&ctx.backup_storage, &args.name).await?;
    if out.json {
        let mut value = serde_json::to_value(&info).unwrap_or_default();
        crate::schedule::add_verdicts(&mut value, &[verdict]);
        if let Some(m) = manifest.as_ref().filter(|m| !m.row_checks.is_empty()) {
            value["row_checks"] = serde_json::json!(m.row_checks);
            value["unpersisted_deletes"] = serde_json::json!(m.unpersisted_deletes());
        }
        out.json_value(&value);
        return Ok(());
    }
    let state = match &verdict {
        Some(v) if !v.verified_ok => "damaged",
        _ => "complete",
    };
    println!("state:          {state}");
    if let Some(v) = &verdict {
        println!(
            "verified:       {}",
            crate::schedule::verdict_text(Some(v)).trim()
        );
        for p in &v.problems {
            println!("  problem:      {p}");
        }
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
    if let Some(m) = &manifest {
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
        for c in m.row_checks.iter().filter(|c| c.unpersisted_deletes > 0) {
            println!(
                "UNPERSISTED DELETES: {} in {} — the files hold {} rows where Milvus served {}: a restore brings {} deleted rows back (made with --allow-unpersisted-deletes)",
                c.unpersisted_deletes, c.collection, c.file_rows, c.served_rows, c.unpersisted_deletes
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
    for l in &info.left_out {
        println!(
            "left out:       {} (schema only, no rows): {}",
            l.collection, l.reason
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
        DeleteTarget::Retention(Retention::from_settings(&ctx.settings))
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
        DeleteTarget::OlderThan(milvus_backup_core::config::age::parse_age(
            args.older_than.as_deref().unwrap_or_default(),
        )?)
    };
    let opts = DeleteOptions {
        target,
        keep: Vec::new(),
        force: args.force,
    };
    let plan = delete::plan(&ctx.backup_storage, &opts).await?;
    if args.dry_run {
        if out.json {
            let mut answer = serde_json::json!({ "would_delete": plan.backups });
            if let Some(v) = &plan.verdicts {
                answer["verdicts"] = serde_json::json!(v.decisions);
            }
            out.json_value(&answer);
        } else if let Some(v) = &plan.verdicts {
            for decision in &v.decisions {
                println!("would {decision}");
            }
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
    let progress = CliProgress::new(out, true);
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
