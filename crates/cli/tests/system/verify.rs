//! `verify` against real backups: damage caught and named, by size or by
//! checksum.

use milvus_backup_core::model::layout;
use milvus_backup_core::Context;
use predicates::prelude::*;

use crate::env::{cli, config, config_file, config_yaml, generated, unique};

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_missing_truncated_and_changed_files() {
    let g = generated("A")
        .iter()
        .find(|g| g.deleted > 0)
        .unwrap()
        .clone();
    let yaml = config_yaml("A", &unique("verify"));
    let (_d, cfg) = config_file(&yaml);
    let name = unique("v");
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["create", "-n", &name, "-c", &g.full_name()])
        .assert()
        .success();
    for mode in [&[][..], &["--deep"][..]] {
        cli()
            .arg("--config")
            .arg(&cfg)
            .args(["verify", "-n", &name])
            .args(mode)
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("OK   {name}")));
    }

    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let files = ctx
        .backup_storage
        .list(&format!("{name}/binlogs/"))
        .await
        .unwrap();
    assert!(files.len() >= 3);
    let rel = |k: &str| k[name.len() + 1..].to_string();
    // One byte flipped: same size, different content.
    let mut flipped = ctx.backup_storage.read(&files[0].key).await.unwrap();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    ctx.backup_storage
        .write(&files[0].key, flipped)
        .await
        .unwrap();
    // Sizes still match; the rewritten object's ETag does not (the copy
    // was server-side, its ETag recorded).
    verify_finds_damage(&cfg, &name, &[], &["ETag".into()]);
    verify_finds_damage(
        &cfg,
        &name,
        &["--deep"],
        &[format!("BAD  {name}: {}: checksum", rel(&files[0].key))],
    );

    // One file truncated, one removed: plain verify names both.
    let data = ctx.backup_storage.read(&files[1].key).await.unwrap();
    ctx.backup_storage
        .write(&files[1].key, data[..data.len() / 2].to_vec())
        .await
        .unwrap();
    ctx.backup_storage.delete(&files[2].key).await.unwrap();
    let out = cli()
        .arg("--json")
        .arg("--config")
        .arg(&cfg)
        .args(["verify", "-n", &name])
        .assert()
        .code(9);
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let problems = reports[0]["problems"].as_array().unwrap();
    // The flipped file too (its ETag), beside the two.
    assert_eq!(problems.len(), 3, "{problems:?}");
    let find = |k: &str| {
        problems
            .iter()
            .find(|p| p["path"] == rel(k).as_str())
            .unwrap()["problem"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(find(&files[1].key).starts_with("size"), "{problems:?}");
    assert_eq!(find(&files[2].key), "missing");
    assert!(find(&files[0].key).contains("ETag"), "{problems:?}");
    milvus_backup_core::ops::delete::delete_backup(&ctx.backup_storage, &name)
        .await
        .unwrap();
}

/// A backup with no checksums (as the Go tool writes them) whose
/// full_meta.json was edited (vector dim + 1) is damaged: the per-level
/// meta files disagree with it.
#[tokio::test(flavor = "multi_thread")]
async fn rb_edited_dim_in_a_backup_without_checksums_is_damage() {
    let g = generated("A")[0].clone();
    let yaml = config_yaml("A", &unique("rb_verify"));
    let (_d, cfg) = config_file(&yaml);
    let name = unique("rb_v");
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["create", "-n", &name, "-c", &g.full_name(), "--meta_only"])
        .assert()
        .success();
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let st = &ctx.backup_storage;
    // what the Go tool does not write
    for file in [layout::MANIFEST, layout::SUMMARY] {
        st.delete(&layout::backup_meta_file(&name, file))
            .await
            .unwrap();
    }
    let key = layout::backup_meta_file(&name, layout::FULL_META);
    let mut full: serde_json::Value =
        serde_json::from_slice(&st.read(&key).await.unwrap()).unwrap();
    let dim = full["collection_backups"][0]["schema"]["fields"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .flat_map(|f| f["type_params"].as_array_mut().unwrap().iter_mut())
        .find(|kv| kv["key"] == "dim")
        .expect("a vector field");
    let was: u64 = dim["value"].as_str().unwrap().parse().unwrap();
    dim["value"] = (was + 1).to_string().into();
    st.write(&key, serde_json::to_vec(&full).unwrap())
        .await
        .unwrap();
    verify_finds_damage(
        &cfg,
        &name,
        &[],
        &[
            format!(
                "meta/collection_meta.json: disagrees with full_meta.json on collection {}",
                g.full_name()
            ),
            format!("is \"{was}\" here but \"{}\" there", was + 1),
        ],
    );
    milvus_backup_core::ops::delete::delete_backup(st, &name)
        .await
        .unwrap();
}

/// The instance the restore tests back up from and restore into. Not B:
/// other tests compare B's whole collection list before and after a step.
const RT_INST: &str = "A";

/// Runs `verify --restore-test --json` on backup `name`; returns the exit
/// code and the backup's report.
fn restore_test(cfg: &std::path::Path, name: &str) -> (i32, serde_json::Value) {
    let out = cli()
        .arg("--json")
        .arg("--config")
        .arg(cfg)
        .args(["verify", "-n", name, "--restore-test"])
        .output()
        .unwrap();
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json printed no report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), reports[0].clone())
}

/// Asserts that the restore test's throwaway collections are gone from `inst`.
async fn assert_dropped(inst: &str, report: &serde_json::Value) {
    let ctx = Context::open(&config(&config_yaml(inst, "unused"), &[])).unwrap();
    let left = ctx
        .milvus()
        .await
        .unwrap()
        .list_collections("default")
        .await
        .unwrap();
    let tested = report["restore_test"]["collections"].as_array().unwrap();
    assert!(!tested.is_empty(), "{report}");
    for c in tested {
        let restored = c["restored_as"].as_str().unwrap();
        let short = restored.strip_prefix("default.").unwrap();
        assert!(short.contains("_vrt_"), "{restored}");
        assert!(
            !left.iter().any(|l| l == short),
            "{restored} was left behind"
        );
        assert_eq!(c["dropped"], true, "{c}");
    }
}

/// A loaded generated collection of `inst` whose deletes are in its backup.
fn loaded_with_deletes(inst: &'static str) -> crate::env::Generated {
    generated(inst)
        .iter()
        .find(|g| g.name.ends_with("varchar_pk"))
        .unwrap()
        .clone()
}

/// A good backup of a collection with deletes passes the restore test on
/// `inst`, with every count and sampled row right, and leaves nothing.
async fn good_backup_passes_the_restore_test(inst: &'static str) {
    let g = loaded_with_deletes(inst);
    assert!(g.deleted > 0);
    let yaml = config_yaml(inst, &unique("vrt_good"));
    let (_d, cfg) = config_file(&yaml);
    let name = unique("vrt");
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["create", "-n", &name, "-c", &g.full_name()])
        .assert()
        .success();
    let (code, report) = restore_test(&cfg, &name);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["problems"], serde_json::json!([]));
    let c = &report["restore_test"]["collections"][0];
    assert_eq!(c["collection"], g.full_name().as_str());
    // Deletes applied: exactly the rows the source has now.
    assert_eq!(c["imported_rows"], g.rows, "{c}");
    assert!(c["backed_up_rows"].as_i64().unwrap() > g.rows, "{c}");
    assert_eq!(c["sampled_rows"], 50, "{c}");
    assert_eq!(c["sample_compared"], true, "{c}");
    assert_dropped(inst, &report).await;
    let storage = Context::open(&config(&yaml, &[])).unwrap().backup_storage;
    milvus_backup_core::ops::delete::delete_backup(&storage, &name)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_test_passes_on_a_good_backup_and_drops_its_collections() {
    good_backup_passes_the_restore_test(RT_INST).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_test_passes_on_milvus_2_2() {
    good_backup_passes_the_restore_test("V22").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_test_names_a_damaged_file_a_wrong_count_and_a_changed_row() {
    let g = loaded_with_deletes(RT_INST);
    let yaml = config_yaml(RT_INST, &unique("vrt_bad"));
    let (_d, cfg) = config_file(&yaml);
    let name = unique("vrt");
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["create", "-n", &name, "-c", &g.full_name()])
        .assert()
        .success();
    let storage = Context::open(&config(&yaml, &[])).unwrap().backup_storage;
    let meta = |f: &str| layout::backup_meta_file(&name, f);
    let mut full: serde_json::Value =
        serde_json::from_slice(&storage.read(&meta(layout::FULL_META)).await.unwrap()).unwrap();
    let coll = &mut full["collection_backups"][0];
    let coll_id = coll["collection_id"].as_i64().unwrap();
    let mut segments: Vec<&mut serde_json::Value> = coll["partition_backups"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .flat_map(|p| p["segment_backups"].as_array_mut().unwrap().iter_mut())
        .collect();
    assert!(segments.len() >= 2, "two segments to damage differently");
    let seg_key = |s: &serde_json::Value| {
        layout::backup_insert_log_dir(
            &name,
            coll_id,
            s["partition_id"].as_i64().unwrap(),
            s["segment_id"].as_i64().unwrap(),
        )
    };
    let rel = |k: &str| k[name.len() + 1..].to_string();

    // 1. One insert binlog of the first segment overwritten with garbage of
    //    the same size: its ETag changes, the import fails.
    let log = segments[0]["binlogs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fieldID"].as_i64().unwrap() >= 100)
        .unwrap();
    let bad_file = format!(
        "{}{}/{}",
        seg_key(segments[0]),
        log["fieldID"],
        log["binlogs"][0]["log_id"]
    );
    let size = storage.read(&bad_file).await.unwrap().len();
    let garbage: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    storage.write(&bad_file, garbage).await.unwrap();
    // 2. The second segment's recorded row count made wrong.
    segments[1]["num_of_rows"] = 1.into();
    let second_dir = rel(&seg_key(segments[1]));
    storage
        .write(&meta(layout::FULL_META), serde_json::to_vec(&full).unwrap())
        .await
        .unwrap();
    // 3. One field of every sampled row changed.
    let mut sample: serde_json::Value =
        serde_json::from_slice(&storage.read(&meta(layout::SAMPLE)).await.unwrap()).unwrap();
    for row in sample["collections"][0]["rows"].as_array_mut().unwrap() {
        row["fields"]["n"] = serde_json::json!({ "value": -424242 });
    }
    storage
        .write(&meta(layout::SAMPLE), serde_json::to_vec(&sample).unwrap())
        .await
        .unwrap();

    let (code, report) = restore_test(&cfg, &name);
    assert_eq!(code, 9, "{report}");
    let problems = report["problems"].as_array().unwrap();
    let with_path = |p: &str| {
        problems
            .iter()
            .filter(|x| x["path"] == p)
            .map(|x| x["problem"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let damaged = with_path(&rel(&bad_file));
    // By the file check (the rewritten object's ETag is not the copy's)
    // and by the restore test.
    assert!(
        damaged.len() == 2
            && damaged.iter().any(|p| p.contains("ETag"))
            && damaged.iter().any(|p| p.contains("did not import")),
        "the garbage file is named: {problems:#?}"
    );
    let count = with_path(&second_dir);
    assert!(
        count.len() == 1 && count[0].contains("the backup recorded 1 "),
        "the miscounted segment is named: {problems:#?}"
    );
    let rows = with_path(&format!("binlogs/insert_log/{coll_id}/"));
    assert!(
        rows.iter().any(|p| p.contains("field `n`"))
            && rows
                .iter()
                .all(|p| p.contains("field `n`") || p.contains("more sample difference")),
        "changed rows are reported: {problems:#?}"
    );
    assert_dropped(RT_INST, &report).await;
    milvus_backup_core::ops::delete::delete_backup(&storage, &name)
        .await
        .unwrap();
}

/// `verify -n NAME [extra]` exits 9 (damage) and its output holds each of
/// `says`.
fn verify_finds_damage(cfg: &std::path::Path, name: &str, extra: &[&str], says: &[String]) {
    let mut out = cli()
        .arg("--config")
        .arg(cfg)
        .args(["verify", "-n", name])
        .args(extra)
        .assert()
        .code(9);
    for s in says {
        out = out.stdout(predicate::str::contains(s.as_str()));
    }
}
