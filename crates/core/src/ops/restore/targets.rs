//! The names restored collections get: a backed-up collection's target
//! under the suffix and the rename rules, and the check that every rule
//! names something in the backup.
//!
//! Does not own: parsing the rules ([`super::options`]) or which
//! collections are restored ([`crate::model::selection`]).

use crate::error::{Error, Result};
use crate::model::selection::CollectionRef;

/// Refuses a rename whose old name matches nothing in the backup.
pub(crate) fn check_renames_match(
    renames: &[(String, String)],
    in_backup: &[CollectionRef],
    backup: &str,
) -> Result<()> {
    for (from, to) in renames {
        let f = CollectionRef::parse(from);
        let matches = in_backup.iter().any(|c| {
            if f.name == "*" {
                c.db == f.db
            } else {
                *c == f || (!from.contains('.') && c.name == f.name)
            }
        });
        if !matches {
            let has: Vec<String> = in_backup.iter().map(|c| c.to_string()).collect();
            return Err(Error::not_found(format!(
                "rename `{from}:{to}`: backup `{backup}` has no {} `{from}` — it has: {}",
                if f.name == "*" {
                    "database"
                } else {
                    "collection"
                },
                has.join(", ")
            )));
        }
    }
    Ok(())
}

/// The target name of a backed-up collection under the suffix and renames.
pub(crate) fn target_of(
    source: &CollectionRef,
    suffix: &str,
    renames: &[(String, String)],
) -> CollectionRef {
    for (from, to) in renames {
        let (f, t) = (CollectionRef::parse(from), CollectionRef::parse(to));
        if f.name == "*" && f.db == source.db {
            return CollectionRef {
                db: t.db,
                name: format!("{}{suffix}", source.name),
            };
        }
        if f == *source || (!from.contains('.') && f.name == source.name) {
            let db = if to.contains('.') {
                t.db
            } else {
                source.db.clone()
            };
            return CollectionRef { db, name: t.name };
        }
    }
    CollectionRef {
        db: source.db.clone(),
        name: format!("{}{suffix}", source.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::ops::restore::options::parse_rename;

    fn r(s: &str) -> CollectionRef {
        CollectionRef::parse(s)
    }

    #[test]
    fn renames_must_match_the_backup() {
        let in_backup = vec![r("default.c1"), r("db1.c2")];
        let rules = |r: &str| vec![parse_rename(r).unwrap()];
        assert!(check_renames_match(&rules("c1:x"), &in_backup, "b").is_ok());
        assert!(check_renames_match(&rules("db1.*:db9.*"), &in_backup, "b").is_ok());
        let err = check_renames_match(&rules("rel_nosuch:rel_zz"), &in_backup, "b").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            err.to_string().contains("rename `rel_nosuch:rel_zz`"),
            "{err}"
        );
        assert!(check_renames_match(&rules("db7.*:db9.*"), &in_backup, "b").is_err());
    }

    #[test]
    fn targets_follow_suffix_and_renames() {
        assert_eq!(
            target_of(&r("c1"), "_bak", &[]).to_string(),
            "default.c1_bak"
        );
        let renames = vec![
            parse_rename("db1.c1:db2.n1").unwrap(),
            parse_rename("c2:n2").unwrap(),
            parse_rename("db3.*:db4.*").unwrap(),
        ];
        assert_eq!(target_of(&r("db1.c1"), "", &renames).to_string(), "db2.n1");
        assert_eq!(target_of(&r("c2"), "", &renames).to_string(), "default.n2");
        assert_eq!(target_of(&r("db3.x"), "", &renames).to_string(), "db4.x");
        assert_eq!(target_of(&r("db9.x"), "", &renames).to_string(), "db9.x");
    }
}
