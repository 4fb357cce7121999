//! `compare`: whether two live collections hold the same rows (exit 0
//! identical, 10 different), and `migrate`: moving a collection into
//! another Milvus while it keeps taking writes. Both read the second
//! Milvus from `--to-config` (that file alone: no environment variables,
//! which name the first).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use milvus_backup_core::config::{Config, LoadOptions};
use milvus_backup_core::ops::compare::{self, CompareOptions, Comparison, KeyList};
use milvus_backup_core::ops::compare_backup;
use milvus_backup_core::ops::logical::ranges::RANGE_ROWS;
use milvus_backup_core::{Context, Error, ErrorKind, Result};

use crate::commands::cancel_on_ctrl_c;
use crate::output::Output;
use crate::progress::CliProgress;

/// Exit code of `compare` when the collections differ.
pub const EXIT_DIFFERENT: u8 = 10;

pub const COMPARE_EXAMPLES: &str = "\
Examples:
  milvus-backup compare -c db1.docs --to-config other.yaml             # same name on another Milvus
  milvus-backup compare -c docs --to-config other.yaml --target db2.docs_copy
  milvus-backup compare -c docs --target docs_restored                 # two collections of one Milvus
  milvus-backup compare -c docs --target docs_copy --ignore-key        # the copy made its own keys (autoID)
  milvus-backup compare -c docs -n backup_20260209                     # the live collection against a logical backup
  milvus-backup --json compare -c docs --to-config other.yaml          # {identical, ranges_differing, ...}

Exit 0 when the two hold the same rows (every field of every row, nulls
included; BM25 outputs left out), 10 when they differ, other codes for
errors. Rows are digested in primary-key ranges of about 65,536 rows of
the source; only differing ranges are read again row by row, to name the
keys only in one side and the keys whose values differ (--show of each).";

/// The two collections of `compare` and `migrate`.
#[derive(Debug, Args)]
pub struct Pair {
    /// The source collection, `coll` or `db.coll`.
    #[arg(short = 'c', long)]
    collection: String,
    /// The config file of the other (target) Milvus; without it, the same
    /// Milvus (then --target is needed).
    #[arg(long = "to-config", value_name = "FILE")]
    to_config: Option<PathBuf>,
    /// The other collection, `coll` or `db.coll` (default: the source's name).
    #[arg(long)]
    target: Option<String>,
}

impl Pair {
    /// The source's context and the target's: `--to-config`'s, or the same.
    /// `alone`: the command names its other side some other way.
    fn contexts(
        &self,
        config: &Config,
        command: &str,
        alone: bool,
    ) -> Result<(Context, Option<Context>)> {
        if self.to_config.is_none() && self.target.is_none() && !alone {
            return Err(Error::invalid_input(format!(
                "{command} needs the other collection: give --to-config FILE (another Milvus), --target db.coll, or both"
            )));
        }
        let other = match &self.to_config {
            Some(file) => Some(Context::open(&other_config(file, "--to-config")?)?),
            None => None,
        };
        Ok((Context::open(config)?, other))
    }
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pair: Pair,
    /// Compare the live collection with its copy in this logical backup
    /// (in backup storage) instead: only the live side is read.
    #[arg(
        short = 'n',
        long = "name",
        visible_alias = "backup-name",
        value_name = "BACKUP"
    )]
    name: Option<String>,
    /// Compare rows without their primary keys, as multisets (a side
    /// whose keys were generated anew, autoID).
    #[arg(long = "ignore-key")]
    ignore_key: bool,
    /// Keys listed of each kind of difference.
    #[arg(long, default_value_t = 10)]
    show: usize,
    /// Key ranges digested at once on each side.
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// Rows per key range, about (smaller ranges narrow differences faster
    /// and cost more queries).
    #[arg(long = "range-rows", default_value_t = RANGE_ROWS)]
    range_rows: usize,
}

/// The other Milvus's configuration, from `file` alone.
pub fn other_config(file: &std::path::Path, flag: &str) -> Result<Config> {
    if !file.exists() {
        return Err(Error::invalid_input(format!(
            "{flag} {}: no such file — name the config file of the other Milvus",
            file.display()
        )));
    }
    let (config, _) = Config::load(&LoadOptions {
        file: Some(file),
        file_required: true,
        sets: &[],
        env: BTreeMap::new(),
    })?;
    Ok(config)
}

pub async fn compare(config: &Config, args: CompareArgs, out: &Output) -> Result<bool> {
    let (a, other) = args.pair.contexts(config, "compare", args.name.is_some())?;
    let b = other.as_ref().unwrap_or(&a);
    let opts = CompareOptions {
        source: args.pair.collection,
        target: args.pair.target,
        ignore_key: args.ignore_key,
        show: args.show,
        streams: args.streams.clamp(1, 8),
        range_rows: args.range_rows.max(1),
    };
    let progress = CliProgress::new(out, false);
    let cancel = cancel_on_ctrl_c();
    let result = match &args.name {
        Some(backup) => {
            compare_backup::compare_with_backup(&a, b, backup, &opts, &progress, &cancel).await
        }
        None => compare::compare(&a, b, &opts, &progress, &cancel).await,
    };
    progress.finish();
    // Exit 10 says "different" here: a service that keeps asking to slow
    // down is an outage (6).
    let c = result.map_err(|e| match e.kind() {
        ErrorKind::Throttled => Error::new(ErrorKind::Unreachable, e.to_string()),
        _ => e,
    })?;
    if out.json {
        out.json_value(&c);
    } else if !out.quiet {
        print_comparison(&c);
    }
    Ok(c.identical)
}

fn keys(list: &KeyList) -> String {
    let shown: Vec<String> = list.keys.iter().map(|k| k.to_string()).collect();
    let more = list.count.saturating_sub(list.keys.len() as u64);
    match more {
        0 => shown.join(", "),
        n => format!("{} and {n} more", shown.join(", ")),
    }
}

pub fn print_comparison(c: &Comparison) {
    let how = if c.ignore_key { ", keys ignored" } else { "" };
    if c.identical {
        println!(
            "{} and {} are identical: {} rows in {} key range(s){how}, {:.1} s ({:.0} rows/s)",
            c.source, c.target, c.rows_source, c.ranges, c.duration_s, c.rows_per_s
        );
        return;
    }
    println!(
        "{} and {} differ: {} of {} key range(s){how}; {} rows against {}",
        c.source, c.target, c.ranges_differing, c.ranges, c.rows_source, c.rows_target
    );
    for d in &c.schema_differences {
        println!("  schema: {d}");
    }
    for (what, list) in [
        ("only in the source", &c.only_in_source),
        ("only in the target", &c.only_in_target),
        ("with other values", &c.different),
    ] {
        if list.count > 0 {
            println!("  {} key(s) {what}: {}", list.count, keys(list));
        }
    }
    let all_keys_differ = c.only_in_source.count == c.rows_source
        && c.only_in_target.count == c.rows_target
        && c.rows_source > 0;
    if all_keys_differ && !c.ignore_key {
        println!("  no key is on both sides: if the target made its own keys (autoID), compare with --ignore-key");
    }
}

pub const MIGRATE_EXAMPLES: &str = "\
Examples:
  milvus-backup migrate -c db1.docs --to-config target.yaml             # create, copy, reconcile once
  milvus-backup migrate -c db1.docs --to-config target.yaml --follow    # a round every --interval until Ctrl-C
  milvus-backup migrate -c docs --to-config target.yaml --target db2.docs --alias docs_live
  milvus-backup --json migrate -c docs --to-config target.yaml          # {rows_copied, rows_deleted, identical, ...}

The first run creates the target like a restore (schema, partitions,
indexes, properties; the target says it was made by this migration in the
property milvus_backup.migrated_from), streams the rows across and
reconciles. Every later run (and every --follow round) compares both sides
range by range and repairs only what differs: keys the source lacks are
deleted, missing or changed rows copied. Nothing on the source is changed;
a target this tool did not create is refused unless named with --target
and --reconcile-existing. Cut-over: stop writes (or dual-write), run once
more, check `compare` exits 0, then point the application (or --alias) at
the target. See docs/migrate.md.";

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pair: Pair,
    /// Repeat rounds until Ctrl-C (or SIGTERM), which ends after the round.
    #[arg(long)]
    follow: bool,
    /// Seconds between --follow rounds.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// Point this alias on the target at the migrated collection once a
    /// round finds it identical (the cut-over); then stop.
    #[arg(long)]
    alias: Option<String>,
    /// Write into an existing --target this tool did not create.
    #[arg(long = "reconcile-existing")]
    reconcile_existing: bool,
    /// Key ranges worked on at once on each side.
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// Rows per key range, about (smaller ranges copy less around each
    /// change and cost more queries).
    #[arg(long = "range-rows", default_value_t = RANGE_ROWS)]
    range_rows: usize,
}

/// A token that the first Ctrl-C or SIGTERM cancels: `--follow` ends after
/// the round in progress.
fn stop_after_round() -> milvus_backup_core::CancellationToken {
    let token = milvus_backup_core::CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        eprintln!("stopping after this round (Ctrl-C again to quit at once)");
        t.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    token
}

pub async fn migrate(config: &Config, args: MigrateArgs, out: &Output) -> Result<bool> {
    use milvus_backup_core::ops::migrate::{self, MigrateOptions};
    if args.reconcile_existing && args.pair.target.is_none() {
        return Err(Error::invalid_input(
            "--reconcile-existing needs --target naming the existing collection to write into",
        ));
    }
    let (a, other) = args.pair.contexts(config, "migrate", false)?;
    let b = other.as_ref().unwrap_or(&a);
    let opts = MigrateOptions {
        source: args.pair.collection,
        target: args.pair.target,
        reconcile_existing: args.reconcile_existing,
        streams: args.streams.clamp(1, 8),
        range_rows: args.range_rows.max(1),
    };
    let stop = stop_after_round();
    let mut n = 0;
    loop {
        n += 1;
        let progress = CliProgress::new(out, false);
        let result = migrate::round(&a, b, &opts, &progress).await;
        progress.finish();
        let s = result?;
        let cut_over = match (&args.alias, s.identical && s.ranges_differing == 0) {
            (Some(alias), true) => {
                migrate::point_alias(b, &s.target, alias).await?;
                Some(alias.clone())
            }
            _ => None,
        };
        if out.json {
            let mut v = serde_json::to_value(&s).expect("stats serialize");
            v["round"] = n.into();
            v["alias"] = cut_over.clone().into();
            // One object per line with --follow.
            println!("{v}");
        } else if !out.quiet {
            println!(
                "round {n}: {} → {}: {} rows against {} in {} range(s); {} differed: {} rows copied, {} deleted{}; {:.1} s",
                s.source,
                s.target,
                s.rows_source,
                s.rows_target,
                s.ranges,
                s.ranges_differing,
                s.rows_copied,
                s.rows_deleted,
                match s.ranges_still_differing {
                    0 => String::new(),
                    k => format!("; {k} range(s) changed again meanwhile"),
                },
                s.duration_s
            );
            if let Some(alias) = &cut_over {
                println!("cut over: alias `{alias}` now points at {}", s.target);
            }
        }
        if cut_over.is_some() || !args.follow || stop.is_cancelled() {
            return Ok(s.identical);
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(s.identical),
            _ = tokio::time::sleep(std::time::Duration::from_secs(args.interval)) => {}
        }
    }
}
