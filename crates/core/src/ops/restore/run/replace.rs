//! A restore that replaces an existing collection (`--drop_exist_collection`)
//! atomically: the backup is restored under a side name first, checked,
//! then swapped in. Part of [`super`]'s run.

use super::{RestoreRun, RestoreStats};
use crate::error::{Error, Result};
use crate::events::Emit;
use crate::model::selection::CollectionRef;
use crate::ops::restore::tasks::CollectionTask;

/// `<name>_mbr_<what>`: where a replacing restore puts the new collection
/// (`restoring`) and the original while they are swapped (`replaced`).
fn side_name(t: &CollectionRef, what: &str) -> CollectionRef {
    let suffix = format!("_mbr_{what}");
    let mut name = t.name.clone();
    // Milvus names are at most 255 characters (ASCII)
    name.truncate(255 - suffix.len());
    CollectionRef {
        db: t.db.clone(),
        name: name + &suffix,
    }
}

impl RestoreRun<'_> {
    /// Replaces an existing collection atomically: the backup is restored
    /// under a side name (`<name>_mbr_restoring`) in full (data, indexes,
    /// load) and checked; only then the original is renamed aside, the new
    /// one renamed in (with the original's aliases) and the original
    /// dropped. A failure before the swap leaves the original untouched
    /// (and the side collection dropped, unless `--resume` can finish it);
    /// a failed rename puts the original back.
    pub(super) async fn replace(
        &self,
        i: usize,
        task: &CollectionTask,
        stats: &mut RestoreStats,
    ) -> Result<()> {
        let t = &task.target;
        let side = side_name(t, "restoring");
        let side_exists = self
            .client
            .list_collections(&t.db)
            .await?
            .contains(&side.name);
        let mut staged = task.clone();
        staged.target = side.clone();
        // a side collection left by an earlier run: resumed by its journal
        // entry, else made again
        staged.exists = side_exists;
        staged.drop_existing = side_exists;
        staged.replacing = true;
        self.events.note(format!(
            "{t} exists: the backup is restored as {side} first, then swapped in"
        ));
        self.restore_into(i, &staged, stats).await?;
        self.check_before_swap(&staged).await?;
        self.swap(task, &side).await
    }

    /// What the swap waits for: the side collection holds the indexes and
    /// the load state the restore promised.
    async fn check_before_swap(&self, staged: &CollectionTask) -> Result<()> {
        let (client, s) = (self.client, &staged.target);
        let opts = &self.plan.options;
        let fail = |what: String| {
            Error::remote(format!(
                "{s} was restored but {what}; {} is left as it was",
                staged.source
            ))
        };
        if opts.restore_index && !staged.meta.index_infos.is_empty() {
            let built = client.describe_indexes(&s.db, &s.name).await?;
            if built.len() < staged.meta.index_infos.len() {
                return Err(fail(format!(
                    "has {} of its {} indexes",
                    built.len(),
                    staged.meta.index_infos.len()
                )));
            }
        }
        if self.loads(staged) {
            let state = client.load_state(&s.db, &s.name).await?;
            if state != "Loaded" {
                return Err(fail(format!("is {state}, not loaded")));
            }
        }
        Ok(())
    }

    /// Swaps the restored side collection in for the original: aliases
    /// off the original, original renamed aside, side renamed in, aliases
    /// (the original's and the backup's) onto it, original dropped.
    async fn swap(&self, task: &CollectionTask, side: &CollectionRef) -> Result<()> {
        let (client, t, events) = (self.client, &task.target, self.events);
        let aside = side_name(t, "replaced");
        let mut aliases = client.describe_collection(&t.db, &t.name).await?.aliases;
        if client.list_collections(&t.db).await?.contains(&aside.name) {
            client.drop_collection(&aside.db, &aside.name).await?;
        }
        for a in &aliases {
            client.drop_alias(&t.db, a).await?;
        }
        let put_back_aliases = |on: &CollectionRef| {
            let aliases = aliases.clone();
            let on = on.clone();
            async move {
                for a in &aliases {
                    if let Err(e) = client.create_alias(&on.db, &on.name, a).await {
                        events.warn(format!("alias `{a}` of {on} not put back: {e}"));
                    }
                }
            }
        };
        if let Err(e) = client.rename_collection(&t.db, &t.name, &aside.name).await {
            put_back_aliases(t).await;
            return Err(e);
        }
        if let Err(e) = client.rename_collection(&t.db, &side.name, &t.name).await {
            if let Err(back) = client.rename_collection(&t.db, &aside.name, &t.name).await {
                events.warn(format!(
                    "{t} was renamed to {aside} and could not be put back: {back} — rename it back by hand"
                ));
            } else {
                put_back_aliases(t).await;
            }
            return Err(e);
        }
        if !self.plan.options.skip_aliases {
            for a in &task.meta.aliases {
                if !aliases.contains(a) {
                    aliases.push(a.clone());
                }
            }
        }
        for a in &aliases {
            if let Err(e) = client.create_alias(&t.db, &t.name, a).await {
                events.warn(format!("alias `{a}` not restored for {t}: {e}"));
            }
        }
        if let Err(e) = client.drop_collection(&aside.db, &aside.name).await {
            events.warn(format!(
                "{t} was replaced; the collection it replaced is kept as {aside}: {e} — drop it by hand"
            ));
        }
        events.note(format!("{t} replaced"));
        Ok(())
    }
}
