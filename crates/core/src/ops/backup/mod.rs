//! `create`: a physical backup of selected collections.
//!
//! Options → Plan → Stats: [`BackupOptions`] say what the user asked for
//! (made from a front end's [`BackupRequest`]); [`plan`] checks the name,
//! resolves the selection once, reads each collection's metadata and lists
//! its persisted segments and files, and decides what an incremental
//! backup shares with its base — without changing anything (`--dry-run`
//! prints it). [`execute`] samples rows, flushes and lists the segments
//! again (a flush makes new ones), compares the rows Milvus serves with
//! the files' rows (deletes Milvus has not persisted fail the backup
//! before any copy), copies the files, writes the meta files, then applies
//! the retention policy.
//!
//! Completeness: every binlog and the per-level meta files are written
//! first, `full_meta.json` last, then our `summary.json`. A backup without
//! `full_meta.json` is incomplete. When `execute` is cancelled it removes
//! what it wrote ([`crate::repo::catalog::remove`], completion marks
//! first); when it fails (or is killed) it leaves the files it stored and
//! their journal ([`crate::repo::journal`]), and `create --resume` copies
//! only the rest.
//!
//! Files, one concern each: `options` (what was asked), `plan` (what the
//! backup will hold), `planning` (making the plan), `listing` (segments
//! and their files),
//! `incremental` (the base and what it shares), `run` (executing a plan,
//! failure and retention), `flush` (sampling, flushing and listing the
//! collections again, several at once), `row_check` (rows Milvus serves against the
//! files' rows: deletes not yet persisted), `copy` (the copy phase), `rows` (live rows),
//! `meta` (the meta files); deletes in delta logs are read by
//! [`crate::ops::binlog`].

mod copy;
mod flush;
mod incremental;
mod listing;
mod meta;
mod options;
mod plan;
mod planning;
mod row_check;
mod rows;
mod run;
mod sharded;

pub use options::{BackupOptions, BackupRequest};
pub use plan::{BackupPlan, CollectionPlan, FileCopy, PlanTotals};
pub use planning::plan;
pub use run::{execute, BackupStats};
pub use sharded::{run_shard, seal, ShardStats};

use crate::context::Context;
use crate::error::Result;
use crate::events::EventSink;
use crate::CancellationToken;

/// Creates a backup: plan, then execute.
pub async fn create(
    ctx: &Context,
    opts: &BackupOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> Result<BackupStats> {
    let plan = plan(ctx, opts).await?;
    execute(ctx, &plan, events, cancel).await
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tuning::Tuning;
    use crate::error::ErrorKind;
    use crate::events::Event;
    use crate::events::{Collect, Tracker};
    use crate::model::layout;
    use crate::repo::catalog;
    use crate::testkit::Kit;

    fn opts(name: &str) -> BackupOptions {
        BackupOptions {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    async fn kit_with_docs() -> Kit {
        let kit = Kit::new();
        kit.milvus
            .add_collection("docs", &[100, 200, 300], 2, 1000)
            .await;
        kit
    }

    #[tokio::test]
    async fn a_collection_dropped_during_a_backup_of_everything_is_left_out() {
        use crate::milvus::Milvus;
        let kit = kit_with_docs().await;
        kit.milvus.add_collection("gone", &[100], 1, 10).await;
        let none = CancellationToken::new();
        let everything = plan(&kit.ctx, &opts("b1")).await.unwrap();
        assert_eq!(everything.totals.collections, 2);
        let mut named = opts("b2");
        named.selection.collections = vec!["docs".into(), "gone".into()];
        let named = plan(&kit.ctx, &named).await.unwrap();
        kit.milvus.drop_collection("default", "gone").await.unwrap();

        let events = Collect::default();
        let stats = execute(&kit.ctx, &everything, &events, &none)
            .await
            .unwrap();
        assert_eq!(stats.collections, 1);
        assert!(events.events().iter().any(|e| matches!(e,
            Event::Warning { message } if message.contains("default.gone was dropped during the backup"))));
        let info = catalog::get(&kit.ctx.backup_storage, "b1").await.unwrap();
        assert_eq!(info.collection_backups.len(), 1);
        assert_eq!(info.collection_backups[0].collection_name, "docs");

        // Named one by one, its loss fails the backup, which leaves nothing.
        let e = execute(&kit.ctx, &named, &Collect::default(), &none)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(kit.backup_keys("b2/").await.is_empty());
    }

    #[tokio::test]
    async fn a_plan_lists_the_work_and_writes_nothing() {
        let kit = kit_with_docs().await;
        let plan = plan(&kit.ctx, &opts("b1")).await.unwrap();
        assert_eq!(plan.totals.collections, 1);
        assert_eq!(plan.totals.segments, 3);
        // 3 segments × (2 fields × 2 insert logs + 1 delta log)
        assert_eq!(plan.totals.files, 15);
        assert_eq!(plan.totals.bytes, 3 * (4 * 1000 + 64));
        assert!(plan.flush);
        assert!(kit.backup_keys("").await.is_empty());
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json["collections"][0]["files"].as_array().unwrap().len(),
            5 * 3
        );
    }

    #[tokio::test]
    async fn execute_copies_everything_and_reports_rising_progress() {
        let kit = kit_with_docs().await;
        let plan = plan(&kit.ctx, &opts("b1")).await.unwrap();
        let events = Collect::default();
        let stats = execute(&kit.ctx, &plan, &events, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!((stats.files, stats.entities), (15, 600));
        let rows = catalog::list(&kit.ctx.backup_storage).await.unwrap();
        assert_eq!(rows[0].state, catalog::BackupState::Complete);
        let manifest = catalog::manifest(&kit.ctx.backup_storage, "b1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(manifest.files.len(), 15);
        // Progress, as the server folds it, only rises and passes 3+ values.
        let mut tracker = Tracker::new();
        let mut seen = Vec::new();
        for e in events.events() {
            tracker.apply(&e);
            seen.push(tracker.percent());
        }
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        seen.dedup();
        assert!(
            seen.iter().filter(|p| **p > 0 && **p < 100).count() >= 3,
            "{seen:?}"
        );
        let done = events
            .events()
            .iter()
            .filter(|e| matches!(e, Event::FileDone { .. }))
            .count();
        assert_eq!(done, 15);
    }

    #[tokio::test]
    async fn a_copy_failing_half_way_leaves_an_incomplete_backup_that_resumes() {
        let kit = kit_with_docs().await;
        let none = CancellationToken::new();
        // No flush, so execute copies what the plan listed.
        let forced = BackupOptions {
            force: true,
            tuning: Some(Tuning {
                copy_parallelism: 1,
                ..kit.ctx.settings.tuning
            }),
            ..opts("b1")
        };
        let plan1 = plan(&kit.ctx, &forced).await.unwrap();
        // A listed file vanishes before it is copied (Milvus compacted it).
        let victim = plan1.collections[0].files[7].source.clone();
        let bytes = kit.ctx.milvus_storage.read(&victim).await.unwrap();
        kit.ctx.milvus_storage.delete(&victim).await.unwrap();
        let err = execute(&kit.ctx, &plan1, &Collect::default(), &none)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert_eq!(err.operation(), Some("create"));
        assert!(err.to_string().contains("create -n b1 --resume"), "{err}");
        let rows = catalog::list(&kit.ctx.backup_storage).await.unwrap();
        assert_eq!(rows[0].state, catalog::BackupState::Incomplete);

        // Without --resume the name is refused, offering both ways out.
        let e = plan(&kit.ctx, &forced).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("--resume") && e.to_string().contains("delete -n b1"));

        kit.ctx.milvus_storage.write(&victim, bytes).await.unwrap();
        let resume = BackupOptions {
            resume: true,
            ..forced.clone()
        };
        let plan2 = plan(&kit.ctx, &resume).await.unwrap();
        // The files copied before the victim (the copy engine may have had
        // a second copy in flight when it failed).
        assert!(
            (6..=7).contains(&plan2.resumed_files),
            "{}",
            plan2.resumed_files
        );
        let stats = execute(&kit.ctx, &plan2, &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!(
            (stats.files, stats.resumed_files),
            (15, plan2.resumed_files)
        );
        assert!(kit
            .ctx
            .backup_storage
            .stat(&layout::create_journal("b1"))
            .await
            .unwrap()
            .is_none());

        // The same manifest as a backup that was never interrupted.
        let plain = BackupOptions {
            force: true,
            ..opts("b2")
        };
        create(&kit.ctx, &plain, &Collect::default(), &none)
            .await
            .unwrap();
        let files = |name: &'static str| {
            let kit = &kit;
            async move {
                catalog::manifest(&kit.ctx.backup_storage, name)
                    .await
                    .unwrap()
                    .unwrap()
                    .files
                    .into_iter()
                    .map(|f| (f.path, f.size, f.sha256, f.source))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(files("b1").await, files("b2").await);
        let again = plan(&kit.ctx, &resume).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::AlreadyExists);
    }

    #[tokio::test]
    async fn deletes_milvus_applied_but_the_files_lack_fail_the_backup_unless_allowed() {
        let kit = kit_with_docs().await;
        // One delete in each segment's delta log; Milvus serves 7 rows fewer.
        let plan1 = plan(&kit.ctx, &opts("b1")).await.unwrap();
        for f in plan1.collections[0].files.iter() {
            if f.source.starts_with("delta_log/") {
                let log = crate::ops::binlog::tests::delta_log(&["1,1".to_string()]);
                kit.ctx.milvus_storage.write(&f.source, log).await.unwrap();
            }
        }
        let served = 600 - 3 - 7;
        kit.milvus
            .state
            .lock()
            .unwrap()
            .served
            .insert("default.docs".into(), served);
        let none = CancellationToken::new();
        let e = create(&kit.ctx, &opts("b1"), &Collect::default(), &none)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        let text = e.to_string();
        assert!(
            text.contains("default.docs: 7 deletes are not yet persisted")
                && text.contains("--allow-unpersisted-deletes")
                && text.contains("--format parquet"),
            "{text}"
        );
        assert!(kit.backup_keys("").await.is_empty(), "nothing is left");

        // A JSON request reads its own field names.
        assert!(
            e.line(crate::Caller::Rest)
                .contains(r#""allow_unpersisted_deletes": true"#),
            "{e}"
        );

        let allowed = BackupOptions {
            allow_unpersisted_deletes: true,
            ..opts("b1")
        };
        let events = Collect::default();
        let stats = create(&kit.ctx, &allowed, &events, &none).await.unwrap();
        assert_eq!(stats.unpersisted_deletes, 7);
        assert_eq!(stats.entities, 597, "the rows the files hold");
        assert!(events.events().iter().any(|e| matches!(e,
            Event::Warning { message } if message.contains("7 deletes are not yet persisted"))));
        let m = catalog::manifest(&kit.ctx.backup_storage, "b1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            m.row_checks,
            vec![crate::model::meta::RowCheck {
                collection: "default.docs".into(),
                served_rows: served,
                file_rows: 597,
                unpersisted_deletes: 7,
                duplicate_rows: 0,
                counted_by: "count".into(),
            }]
        );
        let rows = catalog::list(&kit.ctx.backup_storage).await.unwrap();
        assert_eq!(rows[0].unpersisted_deletes, 7);

        // Served as many rows as the files hold: no record of a difference.
        kit.milvus
            .state
            .lock()
            .unwrap()
            .served
            .insert("default.docs".into(), 597);
        let stats = create(&kit.ctx, &opts("b2"), &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!(stats.unpersisted_deletes, 0);
    }

    #[tokio::test]
    async fn a_cancelled_backup_is_removed() {
        let kit = kit_with_docs().await;
        let plan = plan(&kit.ctx, &opts("b1")).await.unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = execute(&kit.ctx, &plan, &Collect::default(), &cancel)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert!(kit.backup_keys("").await.is_empty());
    }

    #[tokio::test]
    async fn names_taken_and_empty_selections_are_refused_before_any_write() {
        let kit = kit_with_docs().await;
        create(
            &kit.ctx,
            &opts("b1"),
            &Collect::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let e = plan(&kit.ctx, &opts("b1")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        // What a killed create leaves: files, no completion mark.
        kit.ctx
            .backup_storage
            .write("half/binlogs/insert_log/1/2/3/3/100/1", vec![1, 2, 3])
            .await
            .unwrap();
        let e = plan(&kit.ctx, &opts("half")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(
            e.to_string().contains("incomplete")
                && e.to_string().contains("delete -n half")
                && e.to_string().contains("create -n half --resume"),
            "{e}"
        );
        let e = plan(&kit.ctx, &opts("bad/name")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let mut o = opts("b2");
        o.selection.collections = vec!["nope".into()];
        assert_eq!(
            plan(&kit.ctx, &o).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn incremental_shares_unchanged_files_and_stops_when_the_base_goes() {
        let kit = kit_with_docs().await;
        let none = CancellationToken::new();
        create(&kit.ctx, &opts("base"), &Collect::default(), &none)
            .await
            .unwrap();
        let mut inc = opts("inc");
        inc.base_backup = Some("base".into());
        let p = plan(&kit.ctx, &inc).await.unwrap();
        assert_eq!(p.totals.shared_files, 15);
        let stats = execute(&kit.ctx, &p, &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!((stats.shared_files, stats.copied_bytes), (15, 0));

        // The base disappears between plan and execute.
        let mut inc2 = opts("inc2");
        inc2.base_backup = Some("inc".into());
        let p = plan(&kit.ctx, &inc2).await.unwrap();
        crate::ops::delete::delete_backup(&kit.ctx.backup_storage, "base")
            .await
            .unwrap();
        crate::ops::delete::delete_backup(&kit.ctx.backup_storage, "inc")
            .await
            .unwrap();
        let e = execute(&kit.ctx, &p, &Collect::default(), &none)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("was deleted"), "{e}");
        assert!(kit.backup_keys("inc2/").await.is_empty());
    }

    #[tokio::test]
    async fn retention_runs_after_a_backup_and_spares_it() {
        let mut kit = kit_with_docs().await;
        kit.ctx.settings.max_backup_num = 2;
        let none = CancellationToken::new();
        for name in ["r1", "r2"] {
            create(&kit.ctx, &opts(name), &Collect::default(), &none)
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let stats = create(&kit.ctx, &opts("r3"), &Collect::default(), &none)
            .await
            .unwrap();
        assert_eq!(stats.retention_deleted, vec!["r1"]);
        let names: Vec<String> = catalog::names(&kit.ctx.backup_storage).await.unwrap();
        assert_eq!(names, vec!["r2", "r3"]);
    }
    #[tokio::test]
    async fn collections_flushed_at_once_make_the_same_backup_as_one_at_a_time() {
        let kit = Kit::new();
        for name in ["c3", "c0", "c4", "c1", "c2"] {
            kit.milvus.add_collection(name, &[100, 200], 1, 100).await;
        }
        let none = CancellationToken::new();
        let with = |name: &str, width: usize| BackupOptions {
            tuning: Some(Tuning {
                backup_collections: width,
                ..kit.ctx.settings.tuning
            }),
            ..opts(name)
        };
        let events = Collect::default();
        create(&kit.ctx, &with("one", 1), &Collect::default(), &none)
            .await
            .unwrap();
        let stats = create(&kit.ctx, &with("many", 4), &events, &none)
            .await
            .unwrap();
        assert_eq!((stats.collections, stats.entities), (5, 1500));
        let order = |name: &'static str| {
            let kit = &kit;
            async move {
                let info = catalog::get(&kit.ctx.backup_storage, name).await.unwrap();
                (info.collection_backups.iter())
                    .map(|c| c.collection_name.clone())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(order("many").await, vec!["c0", "c1", "c2", "c3", "c4"]);
        assert_eq!(order("many").await, order("one").await);
        let done: Vec<(usize, usize)> = (events.events().iter())
            .filter_map(|e| match e {
                Event::Collections { done, current, .. } => Some((*done, current.len())),
                _ => None,
            })
            .collect();
        assert_eq!(done.last(), Some(&(5, 0)), "{done:?}");
        assert!(done.iter().all(|(_, now)| *now <= 4), "{done:?}");
    }
}
