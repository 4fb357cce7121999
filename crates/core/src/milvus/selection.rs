//! Resolving a [`Selection`] against a server: which of the named and
//! matched databases and collections exist. The selection itself is
//! [`crate::model::selection`].

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::milvus::Milvus;
use crate::model::selection::{glob_match, CollectionRef, Selection};

impl Selection {
    /// Resolves the selection against the server, checking that every named
    /// database and collection exists.
    pub async fn resolve(&self, client: &dyn Milvus) -> Result<Vec<CollectionRef>> {
        let databases = client.list_databases().await?;
        let mut cache: BTreeMap<String, Vec<String>> = BTreeMap::new();
        async fn collections_of<'a>(
            client: &dyn Milvus,
            databases: &[String],
            cache: &'a mut BTreeMap<String, Vec<String>>,
            db: &str,
        ) -> Result<&'a Vec<String>> {
            if !databases.iter().any(|d| d == db) {
                return Err(Error::not_found(format!(
                    "database `{db}` not found in Milvus at {} — it has: {}",
                    client.address(),
                    databases.join(", ")
                )));
            }
            if !cache.contains_key(db) {
                let list = client.list_collections(db).await?;
                cache.insert(db.to_string(), list);
            }
            Ok(&cache[db])
        }

        let mut out = BTreeSet::new();
        let mut named: Vec<CollectionRef> = self
            .collections
            .iter()
            .map(|c| CollectionRef::parse_checked(c))
            .collect::<Result<_>>()?;
        // Nothing selected means every database, whole.
        let mut whole_dbs: Vec<String> = if self.is_empty() {
            databases.clone()
        } else {
            self.databases.clone()
        };
        for (db, colls) in &self.db_collections {
            if colls.is_empty() {
                whole_dbs.push(db.clone());
            }
            named.extend(colls.iter().map(|c| CollectionRef {
                db: db.clone(),
                name: c.clone(),
            }));
        }
        for db in &whole_dbs {
            for c in collections_of(client, &databases, &mut cache, db)
                .await?
                .clone()
            {
                out.insert(CollectionRef {
                    db: db.clone(),
                    name: c,
                });
            }
        }
        for r in named {
            let list = collections_of(client, &databases, &mut cache, &r.db).await?;
            if !list.contains(&r.name) {
                return Err(Error::not_found(format!(
                    "collection `{r}` not found in Milvus at {} — check the collection and database names",
                    client.address()
                )));
            }
            out.insert(r);
        }
        for pattern in &self.filter {
            let p = CollectionRef::parse(pattern);
            let list = collections_of(client, &databases, &mut cache, &p.db)
                .await?
                .clone();
            let matched: Vec<String> = list
                .into_iter()
                .filter(|c| glob_match(&p.name, c))
                .collect();
            if matched.is_empty() {
                return Err(Error::not_found(format!(
                    "filter `{pattern}` matches no collection"
                )));
            }
            out.extend(matched.into_iter().map(|name| CollectionRef {
                db: p.db.clone(),
                name,
            }));
        }
        Ok(out.into_iter().collect())
    }
}
