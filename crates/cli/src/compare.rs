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
  milvus-backup --json compare -c docs --to-config other.yaml          # {identical, ranges_differing, ...}

Exit 0 when the two hold the same rows (every field of every row, nulls
included; BM25 outputs left out), 10 when they differ, other codes for
errors. Rows are digested in primary-key ranges of about 65,536 rows of
the source; only differing ranges are read again row by row, to name the
keys only in one side and the keys whose values differ (--show of each).";

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The source collection, `coll` or `db.coll`.
    #[arg(short = 'c', long)]
    collection: String,
    /// The config file of the other Milvus; without it, the same Milvus
    /// (then --target is needed).
    #[arg(long = "to-config", value_name = "FILE")]
    to_config: Option<PathBuf>,
    /// The other collection, `coll` or `db.coll` (default: the source's name).
    #[arg(long)]
    target: Option<String>,
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
    if args.to_config.is_none() && args.target.is_none() {
        return Err(Error::invalid_input(
            "compare needs the other collection: give --to-config FILE (another Milvus), --target db.coll, or both",
        ));
    }
    let a = Context::open(config)?;
    let b = match &args.to_config {
        Some(file) => Context::open(&other_config(file, "--to-config")?)?,
        None => Context::open(config)?,
    };
    let opts = CompareOptions {
        source: args.collection,
        target: args.target,
        ignore_key: args.ignore_key,
        show: args.show,
        streams: args.streams.clamp(1, 8),
    };
    let progress = CliProgress::new(out.quiet, out.json);
    let result = compare::compare(&a, &b, &opts, &progress, &cancel_on_ctrl_c()).await;
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
