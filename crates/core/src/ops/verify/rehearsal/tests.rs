//! The restore test's problems and names, against hand-made segments.

use super::*;
use crate::model::meta::{Binlog, FieldBinlog};

fn seg(rows: i64, deletes: bool) -> SegmentBackupInfo {
    let log = |id| Binlog {
        log_id: id,
        ..Default::default()
    };
    SegmentBackupInfo {
        segment_id: 3,
        collection_id: 1,
        partition_id: 2,
        num_of_rows: rows,
        binlogs: vec![FieldBinlog {
            field_id: 100,
            binlogs: vec![log(7)],
        }],
        deltalogs: if deletes {
            vec![FieldBinlog {
                field_id: 0,
                binlogs: vec![log(9)],
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

#[test]
fn counts_must_match_unless_rows_were_deleted() {
    assert!(count_problem("b", "default.c", &seg(10, false), 10).is_none());
    let p = count_problem("b", "default.c", &seg(10, false), 9).unwrap();
    assert_eq!(p.path, "binlogs/insert_log/1/2/3/3/");
    assert!(
        p.problem.contains("binlogs/insert_log/1/2/3/3/100/7"),
        "{}",
        p.problem
    );
    assert!(count_problem("b", "default.c", &seg(10, true), 7).is_none());
    assert!(count_problem("b", "default.c", &seg(10, true), 11).is_some());
}

#[test]
fn a_failed_import_names_the_file_milvus_names() {
    let s = seg(10, true);
    let e = Error::remote(
        "import failed: cannot read files/backup_staging/x/3/insert_log/3/100/7: bad magic",
    );
    assert_eq!(
        import_problem("b", "default.c", &s, &e).path,
        "binlogs/insert_log/1/2/3/3/100/7"
    );
    let e = Error::remote("import failed: no reason given");
    let p = import_problem("b", "default.c", &s, &e);
    assert_eq!(p.path, "binlogs/insert_log/1/2/3/3/");
    assert!(
        p.problem.contains("binlogs/delta_log/1/2/3/3/9"),
        "{}",
        p.problem
    );
}

#[test]
fn restored_rows_beyond_what_milvus_served_are_deleted_rows_back() {
    let coll = CollectionBackupInfo {
        collection_id: 1,
        ..Default::default()
    };
    let subject = Subject {
        coll: &coll,
        source: "default.c".into(),
        target: "c_vrt_x",
        sample: None,
    };
    let check = RowCheck {
        collection: "default.c".into(),
        served_rows: 95,
        file_rows: 100,
        unpersisted_deletes: 5,
        duplicate_rows: 0,
        counted_by: "key_scan".into(),
    };
    let test = |imported_rows, failed_segments| CollectionTest {
        imported_rows,
        failed_segments,
        ..Default::default()
    };
    let p = served_problem(&subject, &check, &test(100, 0)).unwrap();
    assert_eq!(p.path, "binlogs/insert_log/1/");
    assert!(
        p.problem.contains("100 rows restored but 95 expected")
            && p.problem.contains("5 deleted rows came back")
            && p.problem.contains("5 deletes were not yet persisted"),
        "{}",
        p.problem
    );
    assert!(served_problem(&subject, &check, &test(100, 1)).is_none());
    let persisted = RowCheck {
        served_rows: 100,
        unpersisted_deletes: 0,
        ..check
    };
    assert!(served_problem(&subject, &persisted, &test(100, 0)).is_none());
    let lost = served_problem(&subject, &persisted, &test(90, 0)).unwrap();
    assert!(
        lost.problem.contains("10 rows are missing"),
        "{}",
        lost.problem
    );
}

#[test]
fn restoring_no_row_of_a_collection_with_rows_is_a_problem() {
    use crate::model::meta::PartitionBackupInfo;
    let with = |segments| CollectionBackupInfo {
        db_name: "default".into(),
        collection_name: "c".into(),
        partition_backups: vec![PartitionBackupInfo {
            segment_backups: segments,
            ..Default::default()
        }],
        ..Default::default()
    };
    let check = |coll: &CollectionBackupInfo, logical: bool, test: &CollectionTest| {
        let info = BackupInfo {
            logical: logical.then(Default::default),
            ..Default::default()
        };
        let subject = Subject {
            coll,
            source: "default.c".into(),
            target: "c_vrt_1",
            sample: None,
        };
        nothing_restored(&info, &subject, test)
    };
    let none = CollectionTest::default();
    let p = check(&with(vec![seg(10, false)]), false, &none).unwrap();
    assert!(p.problem.contains("nothing was restored"), "{}", p.problem);
    let some = CollectionTest {
        imported_rows: 10,
        ..Default::default()
    };
    assert!(check(&with(vec![seg(10, false)]), false, &some).is_none());
    // Every row deleted: nothing restored is right.
    assert!(check(&with(vec![seg(10, true)]), false, &none).is_none());
    // An empty collection restores nothing, rightly.
    assert!(check(&with(Vec::new()), false, &none).is_none());
    // A logical backup's recorded rows.
    let logical = CollectionTest {
        backed_up_rows: 30,
        ..Default::default()
    };
    let p = check(&with(Vec::new()), true, &logical).unwrap();
    assert_eq!(p.path, "data/default/c/");
}

#[test]
fn throwaway_names_do_not_collide() {
    let a = throwaway_name("docs", "abcd1234", &[]);
    assert_eq!(a, "docs_vrt_abcd1234");
    assert_eq!(
        throwaway_name("docs", "abcd1234", &[a]),
        "docs_vrt_abcd1234_2"
    );
    assert!(throwaway_name(&"x".repeat(300), "abcd1234", &[]).len() <= 255);
}
