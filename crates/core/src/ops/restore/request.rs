//! A restore as the front ends receive it ([`RestoreRequest`]: names as
//! strings, optional fields, flags, the Go tool's `restorePlan` mapping),
//! and the one way to turn it into [`RestoreOptions`]:
//! [`RestoreOptions::from_request`], which trims, drops empty values,
//! applies the one-collection rename and the mapping, refuses
//! contradictions and validates. The CLI, the REST API and the user
//! guide's routes only map their input into a request.
//!
//! Does not own: decoding a front end's own encodings (JSON text of
//! `-a/--database_collections`, comma-separated lists), or what the
//! options mean for a backup ([`super::plan`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::ops::restore::options::{CollectionOverride, ImportMode, RestoreOptions};

/// A restore as a front end was asked for it; see the fields of
/// [`RestoreOptions`] for what each means there.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub backup_name: String,
    /// Collections of the backup (`coll` or `db.coll`); all when empty.
    pub collections: Vec<String>,
    /// One more collection to restore (the CLI's `--collection`).
    pub collection: Option<String>,
    /// The new name of `collection`, or, without it, of the one
    /// collection of `collections`; empty: none.
    pub target_collection: Option<String>,
    /// Every collection of the backup: `collections` and `filter` are
    /// ignored ([`RestoreRequest::all_ignores_names`]).
    pub all: bool,
    pub databases: Vec<String>,
    pub db_collections: BTreeMap<String, Vec<String>>,
    pub filter: Vec<String>,
    pub suffix: String,
    /// `old:new` rules.
    pub renames: Vec<String>,
    /// The Go tool's `restorePlan`; not combined with a suffix or renames.
    pub mapping: Option<RestoreMapping>,
    pub drop_exist_collection: bool,
    pub skip_create_collection: bool,
    pub meta_only: bool,
    pub restore_index: bool,
    pub use_auto_index: bool,
    pub drop_exist_index: bool,
    pub load: bool,
    pub rbac: bool,
    /// Empty: none.
    pub rbac_user_password_file: Option<PathBuf>,
    pub resume: bool,
    /// `insert` or `bulk`; empty: the backup's own way (a logical backup's
    /// rows inserted, a physical backup's segments imported by Milvus).
    pub import_mode: String,
    /// Restore the collections the target can hold and report the others,
    /// instead of refusing the whole restore.
    pub skip_unsupported: bool,
    /// Do not create the backed-up aliases.
    pub skip_aliases: bool,
}

/// The Go tool's `restorePlan`: source databases restored into target
/// databases, and which of the restored collections to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreMapping {
    pub databases: Vec<DatabaseMapping>,
    /// Target database → the collections to restore into it, by their
    /// names after the mapping (empty or `*`: all).
    pub filter: BTreeMap<String, Vec<String>>,
}

/// One source database restored into a target database.
#[derive(Debug, Clone, Default)]
pub struct DatabaseMapping {
    pub source: String,
    pub target: String,
    /// Collections renamed on the way; the whole database when empty.
    pub collections: Vec<CollectionMapping>,
}

/// One collection restored under another name.
#[derive(Debug, Clone, Default)]
pub struct CollectionMapping {
    pub source: String,
    pub target: String,
    /// What it is created with instead of the backup's; 0 shards and an
    /// empty description keep the backup's, as in the Go tool.
    pub overrides: Option<CollectionOverride>,
}

impl RestoreRequest {
    /// Whether `all` makes the request ignore collections or patterns it
    /// names (a front end may say so).
    pub fn all_ignores_names(&self) -> bool {
        self.all
            && (!self.collections.is_empty()
                || self.collection.is_some()
                || !self.filter.is_empty())
    }
}

/// The input a refused request got wrong, as an error field.
const INPUT: &str = "input";

impl RestoreOptions {
    /// The options a front end's request asks for, normalised and
    /// validated ([`RestoreOptions::validate`]).
    pub fn from_request(req: RestoreRequest) -> Result<RestoreOptions> {
        let mut collections = req.collections;
        let mut renames = req.renames;
        let target = req
            .target_collection
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match (&req.collection, target) {
            (Some(from), to) => {
                collections.push(from.clone());
                if let Some(to) = to {
                    renames.push(format!("{from}:{to}"));
                }
            }
            (None, Some(to)) => match collections.as_slice() {
                [one] => renames.push(format!("{}:{to}", one.trim())),
                _ => {
                    return Err(Error::invalid_input(format!(
                    "target_collection names the new name of one collection: give exactly one in collections (got {}), e.g. {{\"collections\": [\"docs\"], \"target_collection\": \"docs_restored\"}}",
                    collections.len()
                )).at(INPUT, "target_collection"))
                }
            },
            (None, None) => {}
        }
        let mut filter = req.filter;
        if req.all {
            collections.clear();
            filter.clear();
        }
        let mut db_collections = req.db_collections;
        let mut overrides = BTreeMap::new();
        if let Some(mapping) = &req.mapping {
            if !req.suffix.is_empty() || !renames.is_empty() {
                return Err(Error::invalid_input(
                    "restorePlan cannot be combined with collection_suffix or collection_renames",
                )
                .at(INPUT, "restorePlan"));
            }
            renames = mapping.renames_and_overrides(&mut overrides)?;
            mapping.select_sources(&mut db_collections);
        }
        let opts = RestoreOptions {
            backup_name: req.backup_name.trim().to_string(),
            collections,
            databases: req.databases,
            db_collections,
            suffix: req.suffix,
            renames,
            filter,
            drop_exist_collection: req.drop_exist_collection,
            skip_create_collection: req.skip_create_collection,
            meta_only: req.meta_only,
            restore_index: req.restore_index,
            use_auto_index: req.use_auto_index,
            drop_exist_index: req.drop_exist_index,
            load: req.load,
            rbac: req.rbac,
            rbac_user_password_file: req
                .rbac_user_password_file
                .filter(|p| !p.as_os_str().is_empty()),
            tuning: None,
            overrides,
            resume: req.resume,
            import_mode: ImportMode::parse_optional(&req.import_mode)?,
            skip_unsupported: req.skip_unsupported,
            skip_aliases: req.skip_aliases,
        };
        opts.validate()?;
        Ok(opts)
    }
}

impl RestoreMapping {
    /// The mapping as rename rules (`db1.*:db2.*`, `db1.a:db2.b`), and the
    /// overrides of the collections it renames, by target.
    fn renames_and_overrides(
        &self,
        overrides: &mut BTreeMap<String, CollectionOverride>,
    ) -> Result<Vec<String>> {
        let mut renames = Vec::new();
        for m in &self.databases {
            if m.source.is_empty() || m.target.is_empty() {
                return Err(Error::invalid_input(
                    "restorePlan.mapping entries need a source and a target database",
                )
                .at(INPUT, "restorePlan.mapping"));
            }
            if m.collections.is_empty() {
                renames.push(format!("{}.*:{}.*", m.source, m.target));
            }
            for c in &m.collections {
                if c.source.is_empty() || c.target.is_empty() {
                    return Err(Error::invalid_input(
                        "restorePlan.mapping.colls entries need a source and a target collection",
                    )
                    .at(INPUT, "restorePlan.mapping.colls"));
                }
                renames.push(format!(
                    "{}.{}:{}.{}",
                    m.source, c.source, m.target, c.target
                ));
                // 0 and "" keep the backup's, as in the Go tool.
                let o = c.overrides.as_ref().map(|o| CollectionOverride {
                    shards_num: o.shards_num.filter(|n| *n != 0),
                    description: o.description.clone().filter(|d| !d.is_empty()),
                });
                if let Some(o) = o.filter(|o| !o.is_empty()) {
                    overrides.insert(format!("{}.{}", m.target, c.target), o);
                }
            }
        }
        Ok(renames)
    }

    /// Adds the backup's collections the filter selects to
    /// `db_collections` (an empty list is the whole database).
    fn select_sources(&self, db_collections: &mut BTreeMap<String, Vec<String>>) {
        for (db, colls) in self.filter_sources() {
            match (colls, db_collections.get_mut(&db)) {
                (None, _) => {
                    db_collections.insert(db, Vec::new());
                }
                (Some(_), Some(listed)) if listed.is_empty() => {}
                (Some(colls), Some(listed)) => listed.extend(colls),
                (Some(colls), None) => {
                    db_collections.insert(db, colls);
                }
            }
        }
    }

    /// The backup's collections the filter selects: the filter names
    /// targets (`db` → collections after the mapping, `*` or none for the
    /// whole database), mapped back to their sources here. `None` is a
    /// whole source database.
    fn filter_sources(&self) -> BTreeMap<String, Option<Vec<String>>> {
        let mut out: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        let mut add = |db: &str, coll: Option<&str>| {
            let entry = out
                .entry(db.to_string())
                .or_insert_with(|| Some(Vec::new()));
            match (entry.as_mut(), coll) {
                (Some(list), Some(c)) => list.push(c.to_string()),
                (Some(_), None) => *entry = None,
                (None, _) => {}
            }
        };
        for (db, colls) in &self.filter {
            if colls.is_empty() || colls.iter().any(|c| c == "*") {
                for (source_db, source) in self.sources_of_database(db) {
                    add(source_db, source);
                }
                continue;
            }
            for name in colls {
                let (source_db, source) = self.source_of(db, name);
                add(source_db, Some(source));
            }
        }
        out
    }

    /// What restores into the whole target database `db`: the source
    /// databases and collections mapped into it, and `db` itself unless
    /// it is mapped elsewhere.
    fn sources_of_database<'a>(&'a self, db: &'a str) -> Vec<(&'a str, Option<&'a str>)> {
        let mut out = Vec::new();
        for m in self.databases.iter().filter(|m| m.target == db) {
            if m.collections.is_empty() {
                out.push((m.source.as_str(), None));
            }
            for c in &m.collections {
                out.push((m.source.as_str(), Some(c.source.as_str())));
            }
        }
        let moved_away = self
            .databases
            .iter()
            .any(|m| m.source == db && m.target != db);
        if !moved_away {
            out.push((db, None));
        }
        out
    }

    /// The source (database, collection) restored as `db`.`name`.
    fn source_of<'a>(&'a self, db: &'a str, name: &'a str) -> (&'a str, &'a str) {
        let renamed = self.databases.iter().find_map(|m| {
            (m.target == db)
                .then(|| m.collections.iter().find(|c| c.target == name))
                .flatten()
                .map(|c| (m.source.as_str(), c.source.as_str()))
        });
        let whole_db = self
            .databases
            .iter()
            .find(|m| m.target == db && m.collections.is_empty())
            .map(|m| (m.source.as_str(), name));
        renamed.or(whole_db).unwrap_or((db, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn one_collection_renamed_and_all_and_empty_values() {
        let req = RestoreRequest {
            backup_name: " b1 ".into(),
            collections: vec!["a".into()],
            collection: Some("x".into()),
            target_collection: Some("y".into()),
            renames: vec!["c:d".into()],
            rbac_user_password_file: Some(PathBuf::new()),
            ..Default::default()
        };
        assert!(!req.all_ignores_names());
        let o = RestoreOptions::from_request(req).unwrap();
        assert_eq!(o.backup_name, "b1");
        assert_eq!(o.collections, ["a", "x"]);
        assert_eq!(o.renames, ["c:d", "x:y"]);
        assert!(o.rbac_user_password_file.is_none());

        let one = RestoreRequest {
            collections: vec![" docs ".into()],
            target_collection: Some(" docs_2 ".into()),
            ..Default::default()
        };
        assert_eq!(
            RestoreOptions::from_request(one).unwrap().renames,
            ["docs:docs_2"]
        );
        let two = RestoreRequest {
            collections: vec!["a".into(), "b".into()],
            target_collection: Some("t".into()),
            ..Default::default()
        };
        let e = RestoreOptions::from_request(two).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("exactly one"), "{e}");
        assert!(!e.to_string().contains("(input"), "{e}");

        let all = RestoreRequest {
            all: true,
            collections: vec!["a".into()],
            filter: vec!["db.*".into()],
            ..Default::default()
        };
        assert!(all.all_ignores_names());
        let o = RestoreOptions::from_request(all).unwrap();
        assert!(o.collections.is_empty() && o.filter.is_empty());
    }

    #[test]
    fn contradictions_are_refused_in_their_own_words() {
        let both = RestoreRequest {
            drop_exist_collection: true,
            skip_create_collection: true,
            ..Default::default()
        };
        assert!(RestoreOptions::from_request(both).is_err());
        let mapped = RestoreRequest {
            suffix: "_x".into(),
            mapping: Some(RestoreMapping::default()),
            ..Default::default()
        };
        let e = RestoreOptions::from_request(mapped).unwrap_err();
        assert_eq!(
            e.to_string(),
            "restorePlan cannot be combined with collection_suffix or collection_renames"
        );
        let mode = RestoreRequest {
            import_mode: "copy".into(),
            ..Default::default()
        };
        assert!(RestoreOptions::from_request(mode).is_err());
    }
}
