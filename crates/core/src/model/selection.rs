//! Which collections an operation works on: the union of the Go tool's
//! selection forms (`-c`, `-d`, `-a`, `--filter`); nothing selected means
//! every collection of every database.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
/// The database of a collection named without one.
pub const DEFAULT_DB: &str = "default";

/// A collection's full name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CollectionRef {
    pub db: String,
    pub name: String,
}

impl std::fmt::Display for CollectionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.db, self.name)
    }
}

impl CollectionRef {
    /// Like [`CollectionRef::parse`], refusing text that names no collection
    /// (``, `.c`, `db.`).
    pub fn parse_checked(text: &str) -> Result<CollectionRef> {
        let r = CollectionRef::parse(text.trim());
        if r.name.is_empty() || r.db.is_empty() {
            return Err(Error::invalid_input(format!(
                "`{text}` is not a collection name — use `coll` or `db.coll`"
            )));
        }
        Ok(r)
    }

    /// `coll` (in the default database) or `db.coll`.
    pub fn parse(text: &str) -> CollectionRef {
        match text.split_once('.') {
            Some((db, name)) => CollectionRef {
                db: db.to_string(),
                name: name.to_string(),
            },
            None => CollectionRef {
                db: DEFAULT_DB.to_string(),
                name: text.to_string(),
            },
        }
    }
}

/// What a selection names that the collections it is picked from lack
/// ([`Selection::pick`]); the caller words the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// A `--filter` pattern that matches no collection.
    Filter(String),
    /// A whole database (`-d`) with no collection.
    Database(String),
    /// A collection named one by one (`-c`, or a list of `-a`).
    Collection(CollectionRef),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Selection {
    /// `coll` or `db.coll`.
    pub collections: Vec<String>,
    /// Whole databases.
    pub databases: Vec<String>,
    /// `{"db1": ["c1"], "db2": []}`; an empty list means the whole database.
    pub db_collections: BTreeMap<String, Vec<String>>,
    /// `db.coll` or `db.*` patterns.
    pub filter: Vec<String>,
}

impl Selection {
    /// Whether `c` is named one by one (`-c`, or a list of `-a`), not only
    /// reached through a whole database, a pattern or "everything". A
    /// collection dropped while it is backed up fails the backup only when
    /// it was named.
    pub fn names(&self, c: &CollectionRef) -> bool {
        self.collections
            .iter()
            .any(|n| CollectionRef::parse(n.trim()) == *c)
            || self
                .db_collections
                .get(&c.db)
                .is_some_and(|names| names.contains(&c.name))
    }

    /// Whether the selection picks `c`: named one by one, in a whole
    /// database (`-d`, or an empty list of `-a`), matching a `--filter`
    /// pattern, or nothing is selected at all. The one answer to "does
    /// this selection take this collection".
    pub fn selects(&self, c: &CollectionRef) -> bool {
        self.is_empty()
            || self.names(c)
            || self.databases.contains(&c.db)
            || self.db_collections.get(&c.db).is_some_and(Vec::is_empty)
            || self.filter.iter().any(|p| {
                let p = CollectionRef::parse(p.trim());
                p.db == c.db && glob_match(&p.name, &c.name)
            })
    }

    /// The collections of `available` (e.g. a backup's) the selection
    /// picks, sorted; all of them, in their order, when nothing is
    /// selected. Names that are not collection names are bad input; what
    /// the selection names and `available` lacks is worded by `missing`
    /// (checked in this order: patterns, databases, collections). As
    /// restore always did, a selection that picks nothing (only whole
    /// databases `available` lacks, through `-a`) picks everything.
    pub fn pick(
        &self,
        available: &[CollectionRef],
        missing: impl Fn(Missing) -> Error,
    ) -> Result<Vec<CollectionRef>> {
        let mut named: Vec<CollectionRef> = self
            .collections
            .iter()
            .map(|c| CollectionRef::parse_checked(c))
            .collect::<Result<_>>()?;
        for pattern in &self.filter {
            let p = CollectionRef::parse_checked(pattern)?;
            if !available
                .iter()
                .any(|c| c.db == p.db && glob_match(&p.name, &c.name))
            {
                return Err(missing(Missing::Filter(pattern.clone())));
            }
        }
        if let Some(db) = self
            .databases
            .iter()
            .find(|db| !available.iter().any(|c| &c.db == *db))
        {
            return Err(missing(Missing::Database(db.clone())));
        }
        for (db, colls) in &self.db_collections {
            named.extend(colls.iter().map(|c| CollectionRef {
                db: db.clone(),
                name: c.clone(),
            }));
        }
        if let Some(absent) = named.into_iter().find(|n| !available.contains(n)) {
            return Err(missing(Missing::Collection(absent)));
        }
        let mut picked: Vec<CollectionRef> = available
            .iter()
            .filter(|c| self.selects(c))
            .cloned()
            .collect();
        if picked.is_empty() {
            return Ok(available.to_vec());
        }
        picked.sort();
        picked.dedup();
        Ok(picked)
    }

    pub fn is_empty(&self) -> bool {
        self.collections.is_empty()
            && self.databases.is_empty()
            && self.db_collections.is_empty()
            && self.filter.is_empty()
    }

    /// Parses the `-a/--database_collections` JSON (an object, or a string
    /// holding one, as the Go tool's clients send it).
    pub fn parse_db_collections(text: &str) -> Result<BTreeMap<String, Vec<String>>> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            Error::invalid_input(format!(
                "database_collections is not valid JSON ({e}) — expected e.g. {{\"db1\":[\"c1\"],\"db2\":[]}}"
            ))
        })?;
        let value = match value {
            serde_json::Value::String(inner) => return Self::parse_db_collections(&inner),
            v => v,
        };
        serde_json::from_value(value).map_err(|e| {
            Error::invalid_input(format!(
                "database_collections must map database names to lists of collection names ({e})"
            ))
        })
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "abc"));
        assert!(glob_match("a*", "abc"));
        assert!(glob_match("*c", "abc"));
        assert!(glob_match("a*c", "abbbc"));
        assert!(!glob_match("a*d", "abc"));
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("ab", "abc"));
    }

    #[test]
    fn picks_from_a_list_and_words_what_it_lacks() {
        let have: Vec<CollectionRef> = ["db1.a", "db1.b", "db2.c", "default.d"]
            .iter()
            .map(|s| CollectionRef::parse(s))
            .collect();
        let words = |m: Missing| Error::not_found(format!("{m:?}"));
        let pick = |s: Selection| {
            s.pick(&have, words)
                .map(|v| v.iter().map(|c| c.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(pick(Selection::default()).unwrap().len(), 4);
        let s = Selection {
            collections: vec!["d".into()],
            filter: vec!["db1.*".into()],
            ..Default::default()
        };
        assert_eq!(pick(s).unwrap(), ["db1.a", "db1.b", "default.d"]);
        let s = Selection {
            databases: vec!["db2".into()],
            db_collections: BTreeMap::from([("db1".into(), vec!["b".into()])]),
            ..Default::default()
        };
        assert_eq!(pick(s).unwrap(), ["db1.b", "db2.c"]);
        let missing = |s: Selection| pick(s).unwrap_err().to_string();
        let s = Selection {
            filter: vec!["db9.*".into()],
            ..Default::default()
        };
        assert_eq!(missing(s), "Filter(\"db9.*\")");
        let s = Selection {
            databases: vec!["db9".into()],
            ..Default::default()
        };
        assert_eq!(missing(s), "Database(\"db9\")");
        let s = Selection {
            collections: vec!["db1.z".into()],
            ..Default::default()
        };
        assert!(missing(s).starts_with("Collection("));
        let bad = Selection {
            collections: vec!["db1.".into()],
            ..Default::default()
        };
        assert_eq!(
            bad.pick(&have, words).unwrap_err().kind(),
            crate::error::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn refs_and_db_collections_parse() {
        assert_eq!(CollectionRef::parse("db1.c").to_string(), "db1.c");
        assert_eq!(CollectionRef::parse("c").to_string(), "default.c");
        let m = Selection::parse_db_collections(r#"{"db1":["c1"],"db2":[]}"#).unwrap();
        assert_eq!(m["db1"], vec!["c1"]);
        let s = Selection::parse_db_collections(r#""{\"db1\":[\"c1\"]}""#).unwrap();
        assert_eq!(s["db1"], vec!["c1"]);
        assert!(Selection::parse_db_collections("[1]").is_err());
    }
}
