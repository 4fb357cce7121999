//! A row restore's record of its batches, so that an interrupted restore
//! resumes without inserting any key twice.
//!
//! Before a batch of a data file is sent, its row range is recorded in the
//! restore's journal as sent; once Milvus answers, as done. A resumed
//! restore skips the batches done; a batch sent without a recorded answer
//! (the process was killed meanwhile) may or may not be in, so its keys
//! are looked up on the target first and only the missing rows go in.
//! Where the target makes its own keys (autoID), nothing can be looked up:
//! the restore says so and asks for a fresh one.
//!
//! Does not own: reading files or inserting ([`super::import`]), nor the
//! journal's storage ([`crate::repo::journal`]).

use std::collections::{BTreeMap, HashSet};

use crate::error::{Error, Opt, Remedy, Result};
use crate::milvus::proto::schema::{field_data, scalar_field, FieldData};
use crate::milvus::Milvus;
use crate::model::selection::CollectionRef;
use crate::ops::logical::columns;
use crate::ops::logical::fields::{Field, Kind};
use crate::repo::journal::{BatchFate, FileProgress, RestoreJournal, RowRange};

/// Keys per Query when a batch is checked.
const KEYS_PER_QUERY: usize = 1000;

/// What to do with one batch.
pub(crate) enum Next {
    /// All its rows are in already.
    Skip,
    /// Insert these (all the batch's rows, or those found missing).
    Insert(Vec<FieldData>, usize),
}

/// The batches of one target's restore, as recorded and as the
/// interrupted run left them.
pub(crate) struct BatchLog<'a> {
    pub journal: &'a RestoreJournal,
    pub client: &'a dyn Milvus,
    pub target: &'a CollectionRef,
    /// The target's primary key.
    pub pk: Option<Field>,
    /// The target makes its own keys: a sent batch cannot be checked.
    pub keys_regenerated: bool,
    /// Left loaded after a check (the restore loads it anyway).
    pub keep_loaded: bool,
    /// What the interrupted run recorded, by file.
    pub earlier: BTreeMap<String, FileProgress>,
    /// Set once the target was loaded for a check.
    loaded: tokio::sync::OnceCell<()>,
}

impl<'a> BatchLog<'a> {
    pub(crate) async fn new(
        journal: &'a RestoreJournal,
        client: &'a dyn Milvus,
        target: &'a CollectionRef,
        fields: &[Field],
        keep_loaded: bool,
    ) -> BatchLog<'a> {
        let progress = journal.progress(&target.to_string()).await;
        let pk = fields.iter().find(|f| f.is_primary).cloned();
        BatchLog {
            journal,
            client,
            target,
            keys_regenerated: pk.as_ref().is_some_and(|f| f.auto_id),
            pk,
            keep_loaded,
            earlier: progress.map(|p| p.files).unwrap_or_default(),
            loaded: tokio::sync::OnceCell::new(),
        }
    }

    /// Whether the interrupted run inserted every row of `file`.
    pub(crate) fn complete(&self, file: &str, rows: u64) -> bool {
        self.earlier.get(file).is_some_and(|p| p.complete(rows))
    }

    /// Rows of files the interrupted run inserted.
    pub(crate) fn rows_done(&self, file: &str) -> u64 {
        self.earlier.get(file).map_or(0, FileProgress::rows_done)
    }

    /// Decides on rows `range` of `file` (columns `cols`, `n` rows) and,
    /// unless they are all in, records them as sent.
    pub(crate) async fn before(
        &self,
        file: &str,
        range: RowRange,
        cols: Vec<FieldData>,
        n: usize,
    ) -> Result<Next> {
        let fate = self
            .earlier
            .get(file)
            .map_or(BatchFate::Insert, |p| p.fate(range));
        let (cols, n) = match fate {
            BatchFate::Skip => return Ok(Next::Skip),
            BatchFate::Insert => (cols, n),
            BatchFate::Check => self.missing(file, range, cols, n).await?,
        };
        if n == 0 {
            self.done(file, range).await?;
            return Ok(Next::Skip);
        }
        let t = self.target.to_string();
        self.journal
            .update(&t, |p| {
                p.files.entry(file.to_string()).or_default().sent(range)
            })
            .await?;
        Ok(Next::Insert(cols, n))
    }

    /// Records rows `range` of `file` as in.
    pub(crate) async fn done(&self, file: &str, range: RowRange) -> Result<()> {
        let t = self.target.to_string();
        self.journal
            .update(&t, |p| {
                p.files.entry(file.to_string()).or_default().done(range)
            })
            .await
    }

    /// Releases the target when it was loaded only for a check.
    pub(crate) async fn finish(&self) {
        if self.loaded.initialized() && !self.keep_loaded {
            let t = self.target;
            if let Err(e) = self.client.release_collection(&t.db, &t.name).await {
                tracing::debug!("release of {t} after the resume's checks failed: {e}");
            }
        }
    }

    /// The rows of a batch the interrupted run may have sent that the
    /// target lacks, by key.
    async fn missing(
        &self,
        file: &str,
        range: RowRange,
        cols: Vec<FieldData>,
        n: usize,
    ) -> Result<(Vec<FieldData>, usize)> {
        let t = self.target;
        let unknowable = |why: &str| {
            Error::conflict(format!(
                "{t} cannot be resumed: rows {}..{} of `{file}` were sent before the interruption and {why}, so whether they got in cannot be known",
                range.0, range.1
            ))
            .remedy(
                Remedy::text(format!("drop {t} and restore again without "))
                    .opt(Opt::Resume)
                    .then(", or pass ")
                    .opt(Opt::DropExistCollection)
                    .then(" to start over"),
            )
        };
        let pk = match &self.pk {
            Some(pk) if !self.keys_regenerated => pk,
            _ => return Err(unknowable("Milvus made their primary keys anew (autoID)")),
        };
        let keys = keys_of(&cols, pk).ok_or_else(|| unknowable("they carry no primary keys"))?;
        self.loaded
            .get_or_try_init(|| crate::ops::collection::load_and_wait(self.client, t))
            .await
            .map_err(|e| unknowable(&format!("{t} cannot be loaded to look them up ({e})")))?;
        let mut found = HashSet::new();
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let expr = format!("{} in [{}]", pk.name, chunk.join(","));
            let cols = self
                .client
                .query(&t.db, &t.name, &expr, std::slice::from_ref(&pk.name), None)
                .await?;
            if let Some(have) = keys_of(&cols, pk) {
                found.extend(have);
            }
        }
        let keep: Vec<bool> = keys.iter().map(|k| !found.contains(k)).collect();
        let missing = keep.iter().filter(|k| **k).count();
        tracing::debug!(
            "--resume: {} of rows {}..{} of `{file}` were in {t} already",
            n - missing,
            range.0,
            range.1
        );
        if missing == n {
            return Ok((cols, n));
        }
        let cols = cols.iter().map(|c| select_rows(c, &keep)).collect();
        Ok((cols, missing))
    }
}

/// The column with only the rows `keep` marks (one entry per row); a
/// nullable column keeps its validity, and its values (one per row, or one
/// per valid row) follow it.
fn select_rows(fd: &FieldData, keep: &[bool]) -> FieldData {
    if fd.valid_data.is_empty() {
        return columns::keep_rows(fd, keep);
    }
    let valid = &fd.valid_data;
    let values_keep: Vec<bool> = match columns::values_len(fd) == valid.len() {
        true => keep.to_vec(),
        false => valid
            .iter()
            .zip(keep)
            .filter(|(v, _)| **v)
            .map(|(_, k)| *k)
            .collect(),
    };
    let mut out = columns::keep_rows(fd, &values_keep);
    out.valid_data = valid
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(v, _)| *v)
        .collect();
    out
}

/// The primary keys of a batch's rows as Milvus's expressions write them
/// (`7`, `"a\"b"`), when the batch carries them.
fn keys_of(cols: &[FieldData], pk: &Field) -> Option<Vec<String>> {
    let col = cols.iter().find(|c| c.field_name == pk.name)?;
    let Some(field_data::Field::Scalars(s)) = &col.field else {
        return None;
    };
    match (&s.data, &pk.kind) {
        (Some(scalar_field::Data::LongData(a)), Kind::Int64) => {
            Some(a.data.iter().map(|k| k.to_string()).collect())
        }
        (Some(scalar_field::Data::StringData(a)), Kind::VarChar) => Some(
            a.data
                .iter()
                .map(|k| serde_json::Value::from(k.as_str()).to_string())
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::proto::schema::{LongArray, StringArray};
    use crate::testkit::scalar_column as column;

    #[test]
    fn keys_are_written_as_expressions_take_them() {
        let ints = column(
            "id",
            scalar_field::Data::LongData(LongArray { data: vec![3, -1] }),
        );
        let pk = Field::plain("id", Kind::Int64);
        assert_eq!(keys_of(&[ints], &pk), Some(vec!["3".into(), "-1".into()]));
        let strings = column(
            "id",
            scalar_field::Data::StringData(StringArray {
                data: vec!["a\"b".into(), "c\\d".into()],
            }),
        );
        let pk = Field::plain("id", Kind::VarChar);
        assert_eq!(
            keys_of(std::slice::from_ref(&strings), &pk),
            Some(vec![r#""a\"b""#.into(), r#""c\\d""#.into()])
        );
        let other = Field::plain("key", Kind::VarChar);
        assert_eq!(keys_of(&[strings], &other), None);
    }

    #[test]
    fn rows_are_picked_with_their_validity() {
        let longs = |c: &FieldData| match &c.field {
            Some(field_data::Field::Scalars(s)) => match &s.data {
                Some(scalar_field::Data::LongData(a)) => a.data.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        let plain = column(
            "x",
            scalar_field::Data::LongData(LongArray {
                data: vec![5, 6, 7],
            }),
        );
        assert_eq!(
            longs(&select_rows(&plain, &[true, false, true])),
            vec![5, 7]
        );
        // one value per valid row
        let mut nullable = column(
            "x",
            scalar_field::Data::LongData(LongArray {
                data: vec![1, 2, 3],
            }),
        );
        nullable.valid_data = vec![true, false, true, true];
        let picked = select_rows(&nullable, &[false, true, true, false]);
        assert_eq!(picked.valid_data, vec![false, true]);
        assert_eq!(longs(&picked), vec![2]);
    }
}
