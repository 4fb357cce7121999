//! What the user asked for: [`BackupOptions`], and [`BackupRequest`], the
//! inputs as a front end receives them (the CLI's flags, the REST and
//! guide routes' JSON, the scheduler's policy).
//!
//! [`BackupOptions::from_request`] is the one way a front end makes
//! options: it trims, turns empty strings into `None`, reconciles the
//! guide's `compression: bool` with `compress`, maps `--strategy`, and
//! validates what needs neither Milvus nor storage. Not here: anything that
//! does (the name's availability, the selection, the base backup, the key):
//! [`super::plan`] checks those.

use serde::Serialize;

use crate::config::settings::Settings;
use crate::config::tuning::Tuning;
use crate::error::{Error, Result, ResultExt};
use crate::model::naming::validate_backup_name;
use crate::model::selection::Selection;

/// What the user asked for.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct BackupOptions {
    /// Backup name; a time-based one when `None`.
    pub name: Option<String>,
    pub selection: Selection,
    /// Skip the flush (`-f/--force`).
    pub force: bool,
    /// Metadata only, no binlogs.
    pub meta_only: bool,
    /// Back up users and roles too.
    pub rbac: bool,
    /// `zstd`, `gzip` or `none`; from `backup.compression` and
    /// `backup.compressionAlgorithm` when `None`.
    pub compress: Option<String>,
    /// From `backup.compressionLevel` when `None`.
    pub compress_level: Option<i32>,
    /// Encrypt with the configured key (`backup.encryption.*`).
    pub encrypt: bool,
    /// `binlog` (physical), `parquet` or `json` (logical: rows over gRPC);
    /// `None`: binlog, or parquet when the config names no storage for
    /// Milvus's own files.
    #[serde(default)]
    pub format: Option<String>,
    /// Share unchanged files with this earlier backup.
    pub base_backup: Option<String>,
    /// Share unchanged files with the newest complete backup of the same
    /// collections, if there is one.
    pub incremental: bool,
    /// Parallelism; from `backup.*` when `None`.
    #[serde(default)]
    pub tuning: Option<Tuning>,
    /// Continue an interrupted create of the same name: files its journal
    /// lists, stored with their recorded size, are not copied again.
    #[serde(default)]
    pub resume: bool,
    /// Go on when Milvus serves fewer rows than a physical backup's files
    /// hold (deletes it has not written to delta logs yet, Milvus 2.2):
    /// warn and record it in the manifest instead of failing.
    #[serde(default)]
    pub allow_unpersisted_deletes: bool,
    /// One shard of a logical backup made by several processes
    /// (`--shard K/N`, see [`super::run_shard`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::model::shard::Shard>,
}

/// A create as a front end received it: strings as given (untrimmed,
/// possibly empty), flags, and the Go tool's spellings (`strategy`, the
/// guide's `compression: bool`).
#[derive(Debug, Clone, Default)]
pub struct BackupRequest {
    /// The name as given, trimmed; `None`: a time-based name. A blank one
    /// is refused (`-n ""`), unless `blank_name_is_unset`.
    pub name: Option<String>,
    /// A blank `name` means none was given (the REST routes' JSON, where
    /// `backup_name: ""` asks for a time-based name).
    pub blank_name_is_unset: bool,
    pub selection: Selection,
    /// Every collection: the rest of the selection is ignored (see
    /// [`BackupRequest::warnings`]).
    pub all: bool,
    /// The Go tool's `meta_only`, `skip_flush`, `serial_flush` or
    /// `bulk_flush` (the last two flush each collection, the default).
    pub strategy: Option<String>,
    pub force: bool,
    pub meta_only: bool,
    pub rbac: bool,
    /// The guide's switch: `false` stores plainly, `true` compresses with
    /// `compress` or else `backup.compressionAlgorithm` (zstd when none).
    pub compression: Option<bool>,
    /// `zstd`, `gzip` or `none`.
    pub compress: Option<String>,
    pub compress_level: Option<i32>,
    pub encrypt: bool,
    pub format: Option<String>,
    pub base_backup: Option<String>,
    pub incremental: bool,
    /// MB/s; the other tuning from `backup.*`.
    pub rate_limit: Option<u32>,
    pub resume: bool,
    pub allow_unpersisted_deletes: bool,
}

/// The Go tool's `--strategy` values.
const STRATEGIES: &[&str] = &["meta_only", "skip_flush", "bulk_flush", "serial_flush"];

impl BackupRequest {
    /// What the front end should tell the user about the request before it
    /// runs (e.g. that `--all` overrides the selection).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.all && !self.selection.is_empty() {
            out.push(
                "--all backs up every collection; the other selection flags are ignored".into(),
            );
        }
        out
    }
}

impl BackupOptions {
    /// The options of a request, defaults from the settings (`backup.*`);
    /// refuses what is invalid whatever Milvus holds.
    pub fn from_request(req: BackupRequest, settings: &Settings) -> Result<BackupOptions> {
        Self::build(req, settings).during("create")
    }

    fn build(req: BackupRequest, settings: &Settings) -> Result<BackupOptions> {
        let strategy = trimmed(req.strategy);
        if let Some(s) = strategy.as_deref().filter(|s| !STRATEGIES.contains(s)) {
            return Err(Error::invalid_input(format!(
                "unknown strategy `{s}`: use {}",
                STRATEGIES.join(", ")
            )));
        }
        let strategy = strategy.as_deref();
        let compress = reconcile_compression(
            req.compression,
            trimmed(req.compress),
            &settings.compression.algorithm,
        )?;
        let name = match req.name.map(|n| n.trim().to_string()) {
            Some(n) if n.is_empty() && req.blank_name_is_unset => None,
            name => name,
        };
        let opts = BackupOptions {
            name,
            selection: if req.all {
                Selection::default()
            } else {
                req.selection
            },
            force: req.force || strategy == Some("skip_flush"),
            meta_only: req.meta_only || strategy == Some("meta_only"),
            rbac: req.rbac,
            compress,
            compress_level: req.compress_level,
            encrypt: req.encrypt,
            format: trimmed(req.format),
            base_backup: trimmed(req.base_backup),
            incremental: req.incremental,
            tuning: req.rate_limit.map(|mb_s| Tuning {
                rate_limit_mb_s: mb_s,
                ..settings.tuning
            }),
            resume: req.resume,
            allow_unpersisted_deletes: req.allow_unpersisted_deletes,
            shard: None,
        };
        opts.validate()?;
        Ok(opts)
    }

    /// Checks what needs neither Milvus nor storage: the name.
    pub fn validate(&self) -> Result<()> {
        if let Some(name) = &self.name {
            validate_backup_name(name)?;
        }
        Ok(())
    }
}

/// The algorithm of `compress`, given the guide's `compression` switch and
/// the configured algorithm; `None`: as `backup.compression*` say.
fn reconcile_compression(
    compression: Option<bool>,
    compress: Option<String>,
    configured: &str,
) -> Result<Option<String>> {
    Ok(match (compression, compress.as_deref()) {
        (Some(false), Some(a)) if a != "none" => {
            return Err(Error::invalid_input(format!(
                "compression: false contradicts compress: `{a}` — drop one"
            )))
        }
        (Some(true), Some("none")) => {
            return Err(Error::invalid_input(
                "compression: true contradicts compress: `none` — drop one",
            ))
        }
        (Some(false), _) => Some("none".to_string()),
        (Some(true), None) => Some(match configured.trim() {
            "" | "none" => "zstd".to_string(),
            configured => configured.to_string(),
        }),
        (_, a) => a.map(str::to_string),
    })
}

/// `s` trimmed; `None` when empty.
fn trimmed(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(req: BackupRequest) -> Result<BackupOptions> {
        BackupOptions::from_request(
            req,
            &Settings::from_config(&crate::config::Config::default()),
        )
    }

    #[test]
    fn strings_are_trimmed_and_empty_ones_are_none() {
        let o = build(BackupRequest {
            name: Some("  b1 ".into()),
            base_backup: Some(" ".into()),
            format: Some(" parquet ".into()),
            compress: Some(String::new()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(o.name.as_deref(), Some("b1"));
        assert_eq!(o.base_backup, None);
        assert_eq!(o.format.as_deref(), Some("parquet"));
        assert_eq!(o.compress, None);
        assert!(build(BackupRequest {
            name: Some(" ".into()),
            blank_name_is_unset: true,
            ..Default::default()
        })
        .unwrap()
        .name
        .is_none());
        let blank = build(BackupRequest {
            name: Some(String::new()),
            ..Default::default()
        });
        assert!(blank
            .unwrap_err()
            .to_string()
            .contains("invalid backup name"));
    }

    #[test]
    fn strategies_set_the_flags_and_all_clears_the_selection() {
        let o = |s: &str| {
            build(BackupRequest {
                strategy: Some(s.into()),
                ..Default::default()
            })
        };
        assert!(o("skip_flush").unwrap().force);
        assert!(o("meta_only").unwrap().meta_only);
        let serial = o("serial_flush").unwrap();
        assert!(!serial.force && !serial.meta_only);
        assert!(o("fast")
            .unwrap_err()
            .to_string()
            .contains("unknown strategy"));
        let req = BackupRequest {
            all: true,
            selection: Selection {
                collections: vec!["a".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(req.warnings().len(), 1);
        assert!(build(req).unwrap().selection.is_empty());
    }

    #[test]
    fn the_compression_switch_is_reconciled_with_the_algorithm() {
        let o = |compression, compress: Option<&str>| {
            build(BackupRequest {
                compression,
                compress: compress.map(str::to_string),
                ..Default::default()
            })
            .map(|o| o.compress)
        };
        assert_eq!(o(Some(false), None).unwrap().as_deref(), Some("none"));
        assert_eq!(o(Some(true), None).unwrap().as_deref(), Some("zstd"));
        assert_eq!(
            o(Some(true), Some("gzip")).unwrap().as_deref(),
            Some("gzip")
        );
        assert_eq!(o(None, None).unwrap(), None);
        let e = o(Some(false), Some("zstd")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "compression: false contradicts compress: `zstd` — drop one"
        );
        assert!(o(Some(true), Some("none")).is_err());
    }

    #[test]
    fn a_rate_limit_sets_the_tuning_and_a_bad_name_is_refused() {
        let o = build(BackupRequest {
            rate_limit: Some(5),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(o.tuning.unwrap().rate_limit_mb_s, 5);
        assert!(build(BackupRequest {
            name: Some("bad/name".into()),
            ..Default::default()
        })
        .is_err());
    }
}
