//! `export` and `import`: a collection's rows as plain Parquet or JSON
//! files, outside the backup catalog. Maps flags onto the core's
//! `logical::{export, import}` options, drives plan and execute, prints the
//! result (`--json`: `{format, rows, raw_bytes, stored_bytes, files,
//! duration_s, rows_per_s, ...}`).

use clap::Args;
use milvus_backup_core::config::Config;
use milvus_backup_core::ops::logical::export::{self, ExportOptions};
use milvus_backup_core::ops::logical::import::{self, ImportOptions};
use milvus_backup_core::{Context, Result};

use crate::commands::cancel_on_ctrl_c;
use crate::output::{human_bytes, Output};
use crate::progress::CliProgress;

pub const EXPORT_EXAMPLES: &str = "\
Examples:
  milvus-backup export -c docs -o ./docs_export                 # Parquet + schema.json
  milvus-backup export -c db1.docs --format json -o ./docs_json  # JSON Lines
  milvus-backup export -c docs -o s3://my-bucket/exports/docs   # on backup storage's S3 service
  milvus-backup --json export -c docs -o ./out                  # {format, rows, raw_bytes, ...}
  milvus-backup export -c docs -o ./out --dry-run               # the plan; reads no rows

Rows are read with a primary-key cursor at one timestamp (recorded in
schema.json). A collection that is not loaded is loaded for the export and
released afterwards. Files: float vectors as fixed-size lists of float32,
binary vectors as fixed-size binary, JSON and $meta as JSON strings, arrays
as lists, zstd at backup.compressionLevel.";

pub const IMPORT_EXAMPLES: &str = "\
Examples:
  milvus-backup import -i ./docs_export -c docs_copy --create   # make it from schema.json
  milvus-backup import -i ./docs_export -c db2.docs             # into an existing collection
  milvus-backup import -i ./bulk_writer_out -c docs             # pymilvus LocalBulkWriter files
  milvus-backup import -i s3://my-bucket/exports/docs -c docs --create
  milvus-backup --json import -i ./out -c docs_copy --create

Every file is checked before the first insert: a column whose type or
vector dimension does not fit its field, or a missing required field, is
refused naming the file, the column and the field.";

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The collection, `coll` or `db.coll`.
    #[arg(short = 'c', long)]
    collection: String,
    /// parquet (default) or json (JSON Lines).
    #[arg(long, default_value = "parquet", value_parser = ["parquet", "json"])]
    format: String,
    /// A directory, or s3://bucket/prefix.
    #[arg(short = 'o', long, required_unless_present = "discard")]
    output: Option<String>,
    /// Key ranges read at once (at most 8; they share 64 MiB of rows).
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// MiB of rows per query, at most (each stream's share of memory may
    /// lower it).
    #[arg(long = "batch-mib", default_value_t = 8)]
    batch_mib: usize,
    /// MiB of raw rows per file.
    #[arg(long = "file-mib", default_value_t = 128)]
    file_mib: u64,
    /// Plain encoding on float columns instead of BYTE_STREAM_SPLIT.
    #[arg(long = "no-byte-stream-split")]
    no_byte_stream_split: bool,
    /// Print the plan and read no rows.
    #[arg(long = "dry-run", alias = "dry_run")]
    dry_run: bool,
    /// Read and decode every row as the export would, then drop it: no
    /// file is written, and --output is not needed. Its rows/s is the query
    /// limit the export works within (bench/logical.sh compares the two).
    #[arg(long, conflicts_with = "output")]
    discard: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A directory or s3://bucket/prefix with the files.
    #[arg(short = 'i', long)]
    input: String,
    /// The target collection, `coll` or `db.coll`.
    #[arg(short = 'c', long)]
    collection: String,
    /// Create the collection (and its partitions and indexes) from schema.json.
    #[arg(long)]
    create: bool,
    /// MiB of rows per insert.
    #[arg(long = "batch-mib", default_value_t = 4)]
    batch_mib: usize,
    /// Inserts in flight.
    #[arg(long = "in-flight", default_value_t = 4)]
    in_flight: usize,
    /// Check every file and print the plan; insert nothing.
    #[arg(long = "dry-run", alias = "dry_run")]
    dry_run: bool,
}

pub async fn export(config: &Config, args: ExportArgs, out: &Output) -> Result<()> {
    let opts = ExportOptions {
        collection: args.collection,
        location: args.output.unwrap_or_default(),
        format: args.format.parse()?,
        batch_bytes: args.batch_mib.max(1) << 20,
        streams: args.streams,
        byte_stream_split: !args.no_byte_stream_split,
        file_bytes: args.file_mib.max(1) << 20,
    };
    let ctx = Context::open(config)?;
    let plan = export::plan(&ctx, &opts).await?;
    if args.dry_run {
        if out.json {
            out.json_value(&serde_json::json!({ "dry_run": true, "plan": plan }));
        } else {
            println!(
                "dry run: export of {} (about {} rows) as {} to {}, {} rows per query, {} key range(s) at once{}",
                plan.collection,
                plan.estimated_rows,
                plan.settings.format,
                plan.location,
                plan.batch_rows,
                plan.streams,
                if plan.load_for_export { "; loads it first and releases it after" } else { "" }
            );
        }
        return Ok(());
    }
    let progress = CliProgress::new(out, false);
    let result = if args.discard {
        export::read_only(&ctx, &plan, &progress, &cancel_on_ctrl_c()).await
    } else {
        export::execute(&ctx, &plan, &progress, &cancel_on_ctrl_c()).await
    };
    progress.finish();
    let stats = result?;
    if out.json {
        out.json_value(&stats);
    } else if args.discard {
        if !out.quiet {
            println!(
                "read {} rows of {} and dropped them ({} raw), {:.1} s, {:.0} rows/s",
                stats.rows,
                plan.collection,
                human_bytes(stats.raw_bytes),
                stats.duration_s,
                stats.rows_per_s
            );
        }
    } else if !out.quiet {
        println!(
            "exported {} rows of {} to {}: {} file(s), {} stored ({} raw), {:.1} s, {:.0} rows/s",
            stats.rows,
            plan.collection,
            stats.location,
            stats.files,
            human_bytes(stats.stored_bytes),
            human_bytes(stats.raw_bytes),
            stats.duration_s,
            stats.rows_per_s
        );
    }
    Ok(())
}

pub async fn import(config: &Config, args: ImportArgs, out: &Output) -> Result<()> {
    let opts = ImportOptions {
        location: args.input,
        collection: args.collection,
        create: args.create,
        batch_bytes: args.batch_mib.max(1) << 20,
        in_flight: args.in_flight,
    };
    let ctx = Context::open(config)?;
    let plan = import::plan(&ctx, &opts).await?;
    if args.dry_run {
        if out.json {
            out.json_value(&serde_json::json!({ "dry_run": true, "plan": plan }));
        } else {
            println!(
                "dry run: {} file(s) checked; would insert them into {}{}",
                plan.files.len(),
                plan.target,
                if plan.create {
                    " (created from schema.json)"
                } else {
                    ""
                }
            );
        }
        return Ok(());
    }
    let progress = CliProgress::new(out, false);
    let result = import::execute(&ctx, &plan, &progress, &cancel_on_ctrl_c()).await;
    progress.finish();
    let stats = result?;
    if out.json {
        out.json_value(&stats);
    } else if !out.quiet {
        println!(
            "imported {} rows from {} file(s) into {}: {:.1} s, {:.0} rows/s{}",
            stats.rows,
            stats.files,
            stats.collection,
            stats.duration_s,
            stats.rows_per_s,
            if stats.keys_regenerated {
                "; primary keys regenerated (autoID target)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
