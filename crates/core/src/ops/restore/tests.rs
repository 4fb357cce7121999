//! The restore operation's tests against the fakes: planning,
//! execution, resume, and damage found on the way.

use std::collections::BTreeMap;

use super::*;
use crate::config::tuning::Tuning;
use crate::error::ErrorKind;
use crate::events::{Collect, Tracker};
use crate::model::layout;
use crate::repo::catalog;
use crate::testkit::Kit;
use crate::CancellationToken;

async fn kit_with_backup() -> Kit {
    let kit = Kit::new();
    kit.milvus
        .add_collection("docs", &[10, 20, 30], 1, 300)
        .await;
    kit.create_backup("b1").await;
    kit
}

fn opts(suffix: &str) -> RestoreOptions {
    RestoreOptions {
        backup_name: "b1".into(),
        suffix: suffix.into(),
        ..Default::default()
    }
}

async fn manifest(kit: &Kit) -> crate::model::meta::Manifest {
    catalog::manifest(&kit.ctx.backup_storage, "b1")
        .await
        .unwrap()
        .unwrap()
}

async fn staged_objects(kit: &Kit) -> usize {
    kit.ctx
        .milvus_storage
        .list(layout::STAGING_ROOT)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_missing_binlog_or_meta_file_is_damage_not_not_found() {
    let kit = kit_with_backup().await;
    let none = CancellationToken::new();
    let m = manifest(&kit).await;
    let victim = m
        .files
        .iter()
        .find(|f| f.path.contains("insert_log/"))
        .unwrap();
    let key = layout::join(&layout::backup_dir("b1"), &victim.path);
    kit.ctx.backup_storage.delete(&key).await.unwrap();
    let p = plan(&kit.ctx, &opts("_r")).await.unwrap();
    let e = execute(&kit.ctx, &p, &Collect::default(), &none)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(e.to_string().contains("verify -n b1"), "{e}");

    // A valid-JSON edit of full_meta.json (a vector's dim) is found.
    let full = layout::backup_meta_file("b1", layout::FULL_META);
    let text = String::from_utf8(kit.ctx.backup_storage.read(&full).await.unwrap()).unwrap();
    let edited = text.replacen("\"backup_timestamp\"", "\"backup_timestamp\" ", 1);
    assert_ne!(edited, text);
    kit.ctx
        .backup_storage
        .write(&full, edited.into_bytes())
        .await
        .unwrap();
    let e = plan(&kit.ctx, &opts("_r1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(
        e.to_string()
            .contains("full_meta.json changed since the backup was made"),
        "{e}"
    );
    kit.ctx
        .backup_storage
        .write(&full, text.into_bytes())
        .await
        .unwrap();

    let seg_meta = layout::backup_meta_file("b1", layout::SEGMENT_META);
    kit.ctx.backup_storage.delete(&seg_meta).await.unwrap();
    let e = plan(&kit.ctx, &opts("_r2")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(
        e.to_string().contains("meta/segment_meta.json is missing"),
        "{e}"
    );
}

#[tokio::test]
async fn a_plan_names_targets_refusals_staging_and_jobs_and_changes_nothing() {
    let kit = kit_with_backup().await;
    let p = plan(&kit.ctx, &opts("")).await.unwrap();
    let t = &p.tasks[0];
    assert!(t.exists);
    assert_eq!(t.refused.as_ref().unwrap().kind, ErrorKind::AlreadyExists);
    assert_eq!(p.check().unwrap_err().kind(), ErrorKind::AlreadyExists);
    assert_eq!(t.imports.len(), 3);
    assert!(p
        .staging_dir
        .as_deref()
        .unwrap()
        .starts_with("backup_staging/b1_"));
    let p = plan(&kit.ctx, &opts("_r")).await.unwrap();
    assert!(p.check().is_ok());
    assert_eq!(p.tasks[0].target.to_string(), "default.docs_r");
    let st = kit.milvus.state.lock().unwrap();
    assert!(st.created.is_empty() && st.imports.is_empty());
}

#[tokio::test]
async fn overrides_go_to_their_target_and_bad_ones_are_refused() {
    let kit = kit_with_backup().await;
    let with = |key: &str, shards: Option<i32>| RestoreOptions {
        overrides: BTreeMap::from([(
            key.to_string(),
            CollectionOverride {
                shards_num: shards,
                description: Some("moved".into()),
            },
        )]),
        ..opts("_r")
    };
    let p = plan(&kit.ctx, &with("docs_r", Some(3))).await.unwrap();
    let o = p.tasks[0].overrides.as_ref().unwrap();
    assert_eq!(o.shards_num, Some(3));
    assert_eq!(o.description.as_deref(), Some("moved"));
    assert!(p.check().is_ok());
    // The source's name is not a target of this restore.
    let e = plan(&kit.ctx, &with("docs", Some(3))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("default.docs_r"), "{e}");
    let e = plan(&kit.ctx, &with("default.docs_r", Some(0)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // A reused collection is not created: its settings cannot change.
    let reuse = RestoreOptions {
        skip_create_collection: true,
        ..with("docs", None)
    };
    let reuse = RestoreOptions {
        suffix: String::new(),
        ..reuse
    };
    let p = plan(&kit.ctx, &reuse).await.unwrap();
    assert_eq!(p.check().unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn execute_stages_imports_every_segment_and_sweeps() {
    let kit = kit_with_backup().await;
    let p = plan(&kit.ctx, &opts("_r")).await.unwrap();
    let events = Collect::default();
    let stats = execute(&kit.ctx, &p, &events, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((stats.entities, stats.segments), (60, 3));
    assert!(stats.staged_bytes > 0);
    {
        let st = kit.milvus.state.lock().unwrap();
        assert_eq!(st.created, vec!["default.docs_r"]);
        assert_eq!(st.imports.len(), 3);
        assert!(st.imports.iter().all(|(t, _, paths)| t == "default.docs_r"
            && paths[0].starts_with(p.staging_dir.as_deref().unwrap())));
    }
    assert_eq!(staged_objects(&kit).await, 0, "staging left behind");
    let mut tracker = Tracker::new();
    let mut seen = Vec::new();
    for e in events.events() {
        tracker.apply(&e);
        seen.push(tracker.percent());
    }
    seen.dedup();
    assert!(
        seen.iter().filter(|p| **p > 0 && **p < 100).count() >= 3,
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_failed_import_keeps_the_collection_and_resume_imports_only_the_rest() {
    let kit = kit_with_backup().await;
    let none = CancellationToken::new();
    let p = plan(&kit.ctx, &opts("_r")).await.unwrap();
    let failing = p.tasks[0].imports[1].segment;
    kit.milvus
        .state
        .lock()
        .unwrap()
        .unreachable_imports
        .push(failing);
    let e = execute(&kit.ctx, &p, &Collect::default(), &none)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable);
    assert!(e.to_string().contains(&failing.to_string()), "{e}");
    assert!(e.to_string().contains("--resume"), "{e}");
    assert!(e.to_string().contains(&p.journal_dir), "{e}");
    assert_eq!(e.operation(), Some("restore"));
    assert!(kit.milvus.state.lock().unwrap().dropped.is_empty());
    // Only the journal is left in the staging folder.
    let left = kit.ctx.milvus_storage.list(&p.journal_dir).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");

    // A plain rerun is refused and says how to finish it.
    let again = plan(&kit.ctx, &opts("_r")).await.unwrap();
    let refusal = again.check().unwrap_err();
    assert_eq!(refusal.kind(), ErrorKind::AlreadyExists);
    assert!(refusal.to_string().contains("--resume"), "{refusal}");

    kit.milvus.state.lock().unwrap().unreachable_imports.clear();
    let resumed = plan(
        &kit.ctx,
        &RestoreOptions {
            resume: true,
            ..opts("_r")
        },
    )
    .await
    .unwrap();
    assert_eq!(resumed.journal_dir, p.journal_dir);
    let stats = execute(&kit.ctx, &resumed, &Collect::default(), &none)
        .await
        .unwrap();
    assert_eq!(stats.entities, 60);
    // Every segment imported successfully exactly once.
    let tasks = kit.milvus.state.lock().unwrap().tasks.clone();
    let succeeded = tasks.values().filter(|t| t.is_some()).count();
    assert_eq!(succeeded, 3, "{tasks:?}");
    assert_eq!(staged_objects(&kit).await, 0, "journal or staging left");
}

#[tokio::test]
async fn a_target_made_by_someone_else_since_the_plan_is_never_dropped() {
    let kit = kit_with_backup().await;
    let p = plan(&kit.ctx, &opts("_r")).await.unwrap();
    // Someone creates the target between plan and execute.
    kit.milvus.add_collection("docs_r", &[5], 1, 10).await;
    let e = execute(&kit.ctx, &p, &Collect::default(), &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    let st = kit.milvus.state.lock().unwrap();
    assert!(st.dropped.is_empty(), "dropped {:?}", st.dropped);
    assert!(st.collections.iter().any(|c| c.name == "docs_r"));
}

#[tokio::test]
async fn a_damaged_file_is_corrupt_and_nothing_is_imported() {
    let kit = kit_with_backup().await;
    let m = manifest(&kit).await;
    let key = layout::join(&layout::backup_dir("b1"), &m.files[0].path);
    let mut bytes = kit.ctx.backup_storage.read(&key).await.unwrap();
    bytes[0] ^= 0xff;
    kit.ctx.backup_storage.write(&key, bytes).await.unwrap();
    let p = plan(
        &kit.ctx,
        &RestoreOptions {
            tuning: Some(Tuning {
                import_parallelism: 1,
                ..Tuning::default()
            }),
            ..opts("_r")
        },
    )
    .await
    .unwrap();
    let e = execute(&kit.ctx, &p, &Collect::default(), &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert_eq!(
        kit.milvus.state.lock().unwrap().dropped,
        vec!["default.docs_r"]
    );
}

#[tokio::test]
async fn a_truncated_manifest_stops_the_plan_as_damage() {
    let kit = kit_with_backup().await;
    let key = layout::backup_meta_file("b1", layout::MANIFEST);
    let bytes = kit.ctx.backup_storage.read(&key).await.unwrap();
    kit.ctx
        .backup_storage
        .write(&key, bytes[..10].to_vec())
        .await
        .unwrap();
    let e = plan(&kit.ctx, &opts("_r")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
}

#[tokio::test]
async fn a_replacing_restore_swaps_in_a_finished_copy_and_a_failure_leaves_the_original() {
    let kit = kit_with_backup().await;
    let none = CancellationToken::new();
    let id_of = |kit: &Kit| {
        let st = kit.milvus.state.lock().unwrap();
        st.collections.iter().find(|c| c.name == "docs").unwrap().id
    };
    let original = id_of(&kit);
    let replace = RestoreOptions {
        drop_exist_collection: true,
        ..opts("")
    };

    // A failed import: the original stays, the side collection goes.
    let p = plan(&kit.ctx, &replace).await.unwrap();
    let failing = p.tasks[0].imports[1].segment;
    kit.milvus
        .state
        .lock()
        .unwrap()
        .failing_segments
        .push(failing);
    execute(&kit.ctx, &p, &Collect::default(), &none)
        .await
        .unwrap_err();
    {
        let st = kit.milvus.state.lock().unwrap();
        let names: Vec<&str> = st.collections.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["docs"], "the original alone is left");
        assert!(st.renamed.is_empty(), "{:?}", st.renamed);
        assert_eq!(st.dropped, ["default.docs_mbr_restoring"]);
    }
    assert_eq!(id_of(&kit), original);

    // Then it succeeds: restored aside, swapped in, the original dropped.
    kit.milvus.state.lock().unwrap().failing_segments.clear();
    let p = plan(&kit.ctx, &replace).await.unwrap();
    execute(&kit.ctx, &p, &Collect::default(), &none)
        .await
        .unwrap();
    let st = kit.milvus.state.lock().unwrap();
    assert_eq!(
        st.renamed,
        [
            "default.docs->docs_mbr_replaced",
            "default.docs_mbr_restoring->docs"
        ]
    );
    assert_eq!(st.dropped.last().unwrap(), "default.docs_mbr_replaced");
    let names: Vec<&str> = st.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["docs"]);
    drop(st);
    assert_ne!(id_of(&kit), original, "docs is the restored copy");
}

#[tokio::test]
async fn collections_restored_at_once_stop_at_the_first_failure_which_resume_finishes() {
    use crate::events::Event;
    let kit = Kit::new();
    for name in ["c0", "c1", "c2", "c3", "c4"] {
        kit.milvus.add_collection(name, &[10, 20], 1, 100).await;
    }
    kit.create_backup("b1").await;
    let none = CancellationToken::new();
    let tuning = Tuning {
        restore_collections: 3,
        import_parallelism: 6,
        ..kit.ctx.settings.tuning
    };
    let o = RestoreOptions {
        tuning: Some(tuning),
        ..opts("_r")
    };
    let p = plan(&kit.ctx, &o).await.unwrap();
    let victim = (p.tasks.iter().find(|t| t.target.name == "c2_r"))
        .unwrap()
        .imports[0]
        .segment;
    let state = || kit.milvus.state.lock().unwrap();
    state().unreachable_imports.push(victim);
    let events = Collect::default();
    let e = execute(&kit.ctx, &p, &events, &none).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.to_string().contains("default.c2_r"), "names it: {e}");
    assert!(e.to_string().contains("--resume"), "{e}");
    let in_flight: Vec<usize> = (events.events().iter())
        .filter_map(|e| match e {
            Event::Collections { current, .. } => Some(current.len()),
            _ => None,
        })
        .collect();
    let most = in_flight.iter().max().copied().unwrap_or(0);
    assert!((2..=3).contains(&most), "{in_flight:?}");

    state().unreachable_imports.clear();
    let resume = RestoreOptions {
        resume: true,
        ..o.clone()
    };
    let resumed = plan(&kit.ctx, &resume).await.unwrap();
    let stats = execute(&kit.ctx, &resumed, &Collect::default(), &none)
        .await
        .unwrap();
    assert_eq!((stats.collections, stats.entities), (5, 150));
    let imported = state().tasks.values().filter(|t| t.is_some()).count();
    assert_eq!(imported, 10, "every segment once");
}

#[tokio::test]
async fn damage_in_one_of_several_collections_at_once_leaves_none_of_them() {
    let kit = Kit::new();
    for name in ["c0", "c1", "c2", "c3"] {
        kit.milvus.add_collection(name, &[10, 20], 1, 100).await;
    }
    kit.create_backup("b1").await;
    let p = plan(
        &kit.ctx,
        &RestoreOptions {
            tuning: Some(Tuning {
                restore_collections: 2,
                ..kit.ctx.settings.tuning
            }),
            ..opts("_r")
        },
    )
    .await
    .unwrap();
    // The last collection's first file: the others finish before it fails.
    let last = p.tasks.iter().find(|t| t.target.name == "c3_r").unwrap();
    let m = manifest(&kit).await;
    let file = m
        .files
        .iter()
        .find(|f| f.path.contains(&format!("/{}/", last.imports[0].segment)))
        .unwrap();
    let key = layout::join(&layout::backup_dir("b1"), &file.path);
    let mut bytes = kit.ctx.backup_storage.read(&key).await.unwrap();
    bytes[0] ^= 0xff;
    kit.ctx.backup_storage.write(&key, bytes).await.unwrap();
    let events = Collect::default();
    let e = execute(&kit.ctx, &p, &events, &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    let mut dropped = kit.milvus.state.lock().unwrap().dropped.clone();
    dropped.sort();
    assert_eq!(
        dropped,
        [
            "default.c0_r",
            "default.c1_r",
            "default.c2_r",
            "default.c3_r"
        ]
    );
    let warned = events.events().iter().any(|e| {
        matches!(e, crate::events::Event::Warning { message } if message.contains("dropped default.c0_r again"))
    });
    assert!(warned, "the drop is said");
}
