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
