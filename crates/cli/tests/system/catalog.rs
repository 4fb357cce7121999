//! The catalog index against the real S3 service: its conditional writes,
//! concurrent writers, and `list` repairing what the index lacks.

use milvus_backup_core::model::layout;
use milvus_backup_core::model::meta::BackupInfo;
use milvus_backup_core::repo::catalog::{self, BackupState};
use milvus_backup_core::repo::catalog_index;
use milvus_backup_core::storage::Storage;

use crate::env::unique;
use crate::storage::s3;

/// A complete backup as the Go tool leaves one: the Go tool's meta only.
async fn go_tool_backup(s: &Storage, name: &str, ts: u64) {
    let info = BackupInfo {
        id: format!("id-{name}"),
        name: name.into(),
        backup_timestamp: ts,
        ..Default::default()
    };
    s.write(
        &layout::backup_meta_file(name, layout::FULL_META),
        serde_json::to_vec(&info).unwrap(),
    )
    .await
    .unwrap();
}

fn names(rows: &[catalog::BackupListing]) -> Vec<String> {
    let mut n: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    n.sort();
    n
}

#[tokio::test]
async fn cat_index_on_s3_writes_conditionally_and_list_keeps_every_concurrent_backup() {
    let root = unique("cat_index");
    let s = s3("MBT_S3_ENDPOINT", "milvus-backup", &root);
    let at = s
        .rerooted(&layout::catalog_index_root(&root).unwrap())
        .unwrap();

    // Backups the index has never seen are read, listed and indexed.
    for i in 0..3 {
        go_tool_backup(&s, &format!("go{i}"), 1_000 + i).await;
    }
    let rows = catalog::list(&s).await.unwrap();
    assert_eq!(names(&rows), ["go0", "go1", "go2"]);
    assert!(rows.iter().all(|r| r.state == BackupState::Complete));
    let index = catalog_index::load(&s).await.expect("list wrote the index");
    assert_eq!(index.len(), 3);
    // Beside the root, never inside it.
    assert!(s
        .list("")
        .await
        .unwrap()
        .iter()
        .all(|o| o.key.starts_with("go")));

    // The service honours the index's conditional writes.
    let (bytes, etag) = at
        .read_versioned(layout::CATALOG_INDEX)
        .await
        .unwrap()
        .unwrap();
    let etag = etag.expect("S3 gives an ETag");
    assert!(!at
        .write_if_unchanged(layout::CATALOG_INDEX, bytes.clone(), None)
        .await
        .unwrap());
    assert!(at
        .write_if_unchanged(layout::CATALOG_INDEX, bytes.clone(), Some(&etag))
        .await
        .unwrap());
    at.write(layout::CATALOG_INDEX, b"{}".to_vec())
        .await
        .unwrap();
    assert!(!at
        .write_if_unchanged(layout::CATALOG_INDEX, bytes.clone(), Some(&etag))
        .await
        .unwrap());
    at.write(layout::CATALOG_INDEX, bytes).await.unwrap();

    // Six backups finishing at once, each adding itself to the index.
    let new: Vec<String> = (0..6).map(|i| format!("new{i}")).collect();
    for (i, n) in new.iter().enumerate() {
        go_tool_backup(&s, n, 2_000 + i as u64).await;
    }
    let rows = catalog::list_fresh(&s).await.unwrap();
    futures::future::join_all(
        rows.iter()
            .filter(|r| r.name.starts_with("new"))
            .map(|r| catalog_index::added(&s, r.clone())),
    )
    .await;
    // None is lost for good: whatever a race dropped, list reads and adds.
    let rows = catalog::list(&s).await.unwrap();
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[0].name, "new5");
    assert_eq!(catalog_index::load(&s).await.unwrap().len(), 9);

    // Deleted behind the index: gone from list, and from the index.
    s.delete_prefix(&layout::backup_dir("go0")).await.unwrap();
    assert_eq!(catalog::list(&s).await.unwrap().len(), 8);
    let index = catalog_index::load(&s).await.unwrap();
    assert!(!index.contains_key("go0") && index.len() == 8);

    s.delete_prefix("").await.unwrap();
    catalog_index::discard(&s).await;
    assert!(at.list("").await.unwrap().is_empty());
}
