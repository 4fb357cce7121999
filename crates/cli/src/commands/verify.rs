//! `verify`: checking backups, and how its verdicts are shown.

use clap::Args;
use milvus_backup_core::config::Config;
use milvus_backup_core::ops::verify::{self, VerifyOptions};
use milvus_backup_core::{Context, Result};

use crate::commands::cancel_on_ctrl_c;
use crate::output::{human_bytes, Output};
use crate::progress::{CliProgress, Steps};

pub const VERIFY_EXAMPLES: &str = "\
Examples:
  milvus-backup verify --backup-name backup_20260210
  milvus-backup verify -n nightly            # meta files, every file present with its size
  milvus-backup verify -n nightly --deep     # also read every file and compare its SHA-256
  milvus-backup verify --all
  milvus-backup --json verify --all --deep
  milvus-backup verify -n nightly --restore-test   # also restore, compare rows, drop

--restore-test restores every collection of the backup into the configured
Milvus as default.<name>_vrt_<8 hex>, compares the row counts (each
segment's; a logical backup's rows, restored from its Parquet or JSON files)
and the rows sampled when the backup was made, then drops those collections.
A restore test that restored nothing fails.

The verdict is kept with the backup: `list` shows a damaged backup as
DAMAGED, and `get` and `status` show the last verification.

Exit code 9 when a backup is damaged; each bad file is named.";

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
    let progress = CliProgress::with_steps(out, false, Steps::Verify);
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
    } else if found.files == 0 && found.metadata == 0 {
        // Sound files that do not restore to what Milvus served (e.g.
        // deletes not yet persisted when the backup was made).
        println!("\n❌ Backup failed its restore test!");
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
        let data = if rt.format != "binlog" {
            format!("{} data file(s)", c.files)
        } else {
            format!("{}/{} segments", c.segments - c.failed_segments, c.segments)
        };
        println!(
            "{}  {name}: restore test of {} as {}: {data}, {} rows imported of {} backed up, {sample}{}",
            if c.problems == 0 { "OK " } else { "BAD" },
            c.collection,
            c.restored_as,
            c.imported_rows,
            c.backed_up_rows,
            if c.dropped { "" } else { " (NOT dropped)" }
        );
    }
}
