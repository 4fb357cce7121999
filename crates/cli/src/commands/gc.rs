//! `gc --staging`: sweeping restore staging folders no restore holds.

use milvus_backup_core::config::Config;
use milvus_backup_core::{Context, Result};

use crate::output::{human_bytes, human_duration, Output};

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
    let older_than = std::time::Duration::from_secs(milvus_backup_core::config::age::parse_age(
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
