//! What a restore is asked to do: [`RestoreOptions`] (the core's form,
//! also what a task records to resume with) and the checks every set of
//! options must pass ([`RestoreOptions::validate`]), with the rename rules
//! they carry ([`RestoreOptions::rename_rules`]).
//!
//! Does not own: turning a front end's input into options
//! ([`super::request`]), or what the options mean for a given backup and
//! Milvus ([`super::plan`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::tuning::Tuning;
use crate::error::{Caller, Error, Opt, Remedy, Result};
use crate::model::selection::{CollectionRef, Selection};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreOptions {
    pub backup_name: String,
    /// Collections of the backup to restore (`coll` or `db.coll`); all when empty.
    pub collections: Vec<String>,
    /// Databases of the backup to restore; all when empty.
    pub databases: Vec<String>,
    pub db_collections: BTreeMap<String, Vec<String>>,
    /// Appended to every target collection name.
    pub suffix: String,
    /// `db1.c1:db2.c1_new`, `c2:c2_new` or `db1.*:db2.*`.
    pub renames: Vec<String>,
    /// Patterns `db.coll` or `db.*` (`*` any run of characters) of the
    /// backup's collections to restore (the Go tool's `--filter`).
    #[serde(default)]
    pub filter: Vec<String>,
    pub drop_exist_collection: bool,
    pub skip_create_collection: bool,
    pub meta_only: bool,
    pub restore_index: bool,
    pub use_auto_index: bool,
    pub drop_exist_index: bool,
    /// Load collections that were loaded at backup time (needs an index).
    pub load: bool,
    /// Restore users and roles too.
    #[serde(default)]
    pub rbac: bool,
    /// `user:password` lines: the passwords of the users `rbac` creates
    /// (users it lacks are skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac_user_password_file: Option<std::path::PathBuf>,
    /// Parallelism and temp files; from `backup.*` when `None`.
    #[serde(default)]
    pub tuning: Option<Tuning>,
    /// Settings a restored collection gets instead of the backup's, by
    /// target collection (`coll` in `default`, or `db.coll`): the Go tool's
    /// `restorePlan` `override`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, CollectionOverride>,
    /// Continue an interrupted restore of this backup: collections and
    /// segments its journal says finished are skipped.
    #[serde(default)]
    pub resume: bool,
    /// Restore the collections the target can hold and report the others
    /// (`--skip-unsupported`), instead of refusing the whole restore.
    #[serde(default)]
    pub skip_unsupported: bool,
    /// Do not create the backed-up aliases (`--no-aliases`).
    #[serde(default)]
    pub skip_aliases: bool,
    /// How the rows get in (`--import-mode`); `None`: the backup's own way
    /// — a logical backup's rows inserted, a physical backup's segments
    /// imported by Milvus. `Insert` on a physical backup reads its binlogs
    /// and inserts their rows; `Bulk` on a logical backup stages its files
    /// for Milvus's import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_mode: Option<ImportMode>,
}

/// How a backup's rows get into Milvus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportMode {
    /// Inserts over gRPC, in byte-sized batches (any server, no storage):
    /// a logical backup's rows, or those a physical backup's binlogs hold.
    Insert,
    /// Milvus's own import: a physical backup's segments, or a logical
    /// backup's files staged into its storage.
    Bulk,
}

impl ImportMode {
    /// The mode a request names; `None` for an empty one (the backup's own way).
    pub fn parse_optional(s: &str) -> Result<Option<ImportMode>> {
        match s.trim() {
            "" => Ok(None),
            other => other.parse().map(Some),
        }
    }
}

impl std::str::FromStr for ImportMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<ImportMode> {
        match s.trim() {
            "insert" => Ok(ImportMode::Insert),
            "bulk" => Ok(ImportMode::Bulk),
            other => Err(Error::invalid_input(format!(
                "unknown import mode `{other}`: use insert or bulk"
            ))),
        }
    }
}

impl std::fmt::Display for ImportMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImportMode::Insert => "insert",
            ImportMode::Bulk => "bulk",
        })
    }
}

/// What a restored collection is created with instead of what the backup
/// recorded; `None` keeps the backup's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionOverride {
    /// Shards (virtual channels); at least 1. The data is spread over them
    /// by Milvus's import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards_num: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl CollectionOverride {
    pub fn is_empty(&self) -> bool {
        self.shards_num.is_none() && self.description.is_none()
    }
}

impl RestoreOptions {
    /// Refuses options no backup could be restored with: a suffix Milvus
    /// would not take, contradicting flags, malformed renames.
    pub fn validate(&self) -> Result<()> {
        if !self.suffix.is_empty()
            && !self
                .suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::invalid_input(format!(
                "suffix `{}` may only contain letters, digits and `_`",
                self.suffix
            ))
            .at("input", "suffix"));
        }
        if self.drop_exist_collection && self.skip_create_collection {
            return Err(Error::invalid_input(format!(
                "{} and {} contradict each other",
                Opt::DropExistCollection.spelled(Caller::Cli),
                Opt::SkipCreateCollection.spelled(Caller::Cli)
            ))
            .remedy(
                Remedy::text("pick one: ")
                    .opt(Opt::DropExistCollection)
                    .then(" replaces the collection, ")
                    .opt(Opt::SkipCreateCollection)
                    .then(" imports into it"),
            ));
        }
        self.rename_rules().map(|_| ())
    }

    /// The renames as (old, new) pairs, each checked.
    pub(crate) fn rename_rules(&self) -> Result<Vec<(String, String)>> {
        self.renames.iter().map(|r| parse_rename(r)).collect()
    }

    /// Which of the backup's collections the options select.
    pub(crate) fn selection(&self) -> Selection {
        Selection {
            collections: self.collections.clone(),
            databases: self.databases.clone(),
            db_collections: self.db_collections.clone(),
            filter: self.filter.clone(),
        }
    }
}

/// Parses one rename rule into (from, to) references; `*` renames a
/// database. Both sides must be names Milvus accepts (`db.*` on both
/// sides, or on neither).
pub(crate) fn parse_rename(rule: &str) -> Result<(String, String)> {
    let malformed = |why: &str| {
        Error::invalid_input(format!(
            "rename `{rule}`: {why} — write old:new, db1.old:db2.new or db1.*:db2.*"
        ))
        .at("input", "rename")
    };
    let (from, to) = rule
        .split_once(':')
        .map(|(a, b)| (a.trim(), b.trim()))
        .ok_or_else(|| malformed("no `:` between the old and the new name"))?;
    if from.is_empty() || to.is_empty() || to.contains(':') {
        return Err(malformed("it needs exactly one old and one new name"));
    }
    let (f, t) = (CollectionRef::parse(from), CollectionRef::parse(to));
    if (f.name == "*") != (t.name == "*") {
        return Err(malformed(
            "`*` renames a whole database and goes on both sides",
        ));
    }
    for (side, r) in [("old", &f), ("new", &t)] {
        let names = [("database", r.db.as_str()), ("collection", r.name.as_str())];
        for (what, name) in names {
            let wildcard = name == "*" && what == "collection";
            if !wildcard && !crate::model::naming::is_milvus_name(name) {
                return Err(malformed(&format!(
                    "the {side} {what} name `{name}` is not valid (letters, digits and `_`, not starting with a digit, at most 255)"
                )));
            }
        }
    }
    Ok((from.to_string(), to.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn malformed_or_invalid_renames_are_refused() {
        for bad in [
            "a:b:c",
            "x:bad:name",
            "a",
            ":b",
            "a:",
            "a:b-c",
            "db.*:other",
            "1a:b",
            "a:db.x y",
        ] {
            let err = parse_rename(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(
                err.to_string().contains(&format!("rename `{bad}`")),
                "{err}"
            );
        }
        for good in ["a:b", "db1.a:db2.b", "db1.*:db2.*", "a:db2.b"] {
            parse_rename(good).unwrap();
        }
        assert!(parse_rename("nocolon").is_err());
    }

    #[test]
    fn contradictions_and_bad_suffixes_are_refused() {
        let both = RestoreOptions {
            drop_exist_collection: true,
            skip_create_collection: true,
            ..Default::default()
        };
        assert!(both
            .validate()
            .unwrap_err()
            .to_string()
            .contains("contradict"));
        let suffix = RestoreOptions {
            suffix: "-x".into(),
            ..Default::default()
        };
        let e = suffix.validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "suffix `-x` may only contain letters, digits and `_`"
        );
        assert_eq!(e.context(), [("input", "suffix".to_string())]);
    }
}
