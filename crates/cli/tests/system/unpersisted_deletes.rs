//! Deletes Milvus 2.2 has not written to delta logs yet (issue 23): Milvus
//! 2.2.16 keeps the deletes of rows in flushed segments in the data node's
//! memory for `dataNode.segment.syncPeriod` (600 s) and `Flush` does not
//! write them, so a physical backup right after such deletes would bring the
//! deleted rows back. `create` compares the rows Milvus serves with the rows
//! of the files it would copy and refuses, naming the ways out; with
//! `--allow-unpersisted-deletes` it goes on and records them; `verify
//! --restore-test` finds them; a logical backup has none of it.

use std::time::Instant;

use crate::env::{cli, config_file, config_yaml, drop_collection, dump, gen_data, run, unique};

/// A loaded collection on `inst` whose last `deleted` rows were deleted
/// right now, after their segment was flushed: (name, live rows, deleted ids).
fn late_deletes(inst: &str, test: &str) -> (String, i64, Vec<i64>) {
    let coll = unique(test);
    let out = gen_data(
        inst,
        &["late-deletes", "--collection", &coll, "--delete", "5"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let deleted: Vec<i64> = serde_json::from_value(v["deleted"].clone()).unwrap();
    (coll, v["rows"].as_i64().unwrap(), deleted)
}

/// Runs a `create` of `coll` that must be refused (exit 2); its stderr.
fn refused_create(cfg: &std::path::Path, name: &str, coll: &str) -> String {
    let out = cli()
        .arg("--config")
        .arg(cfg)
        .args(["create", "-n", name, "-c", coll])
        .assert()
        .failure()
        .code(2);
    String::from_utf8_lossy(&out.get_output().stderr).to_string()
}

fn listed(cfg: &std::path::Path, name: &str) -> Option<serde_json::Value> {
    let all = run(cfg, &[], &["list"]);
    all.as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .cloned()
}

#[test]
fn a_2_2_backup_right_after_deletes_fails_then_records_them_when_allowed() {
    let started = Instant::now();
    let (coll, live, deleted) = late_deletes("V22", "late");
    let root = unique("late");
    let (_d, cfg) = config_file(&config_yaml("V22", &root));
    let name = unique("late");

    // Refused before anything is written, in one line naming the deletes,
    // the collection, why, and every way out.
    let stderr = refused_create(&cfg, &name, &coll);
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    for part in [
        &format!("default.{coll}: 5 deletes are not yet persisted") as &str,
        "dataNode.segment.syncPeriod, 600 s by default",
        &format!(
            "Milvus serves {live} rows but the files to back up hold {}",
            live + 5
        ),
        "nothing was written",
        "wait and retry",
        "--format parquet",
        "--allow-unpersisted-deletes",
    ] {
        assert!(error.contains(part), "`{part}` missing from: {error}");
    }
    assert!(listed(&cfg, &name).is_none(), "the failed backup is listed");
    let refused_s = started.elapsed().as_secs_f64();

    // Allowed: a warning, and the record in the manifest, `get` and `list`.
    let out = cli()
        .arg("--json")
        .arg("--config")
        .arg(&cfg)
        .args([
            "create",
            "-n",
            &name,
            "-c",
            &coll,
            "--allow-unpersisted-deletes",
        ])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("warning:") && stderr.contains("5 deletes are not yet persisted"),
        "{stderr}"
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(stats["unpersisted_deletes"], 5, "{stats}");
    let got = run(&cfg, &[], &["get", "-n", &name]);
    assert_eq!(got["unpersisted_deletes"], 5, "{got}");
    let check = &got["row_checks"][0];
    assert_eq!(check["collection"], format!("default.{coll}"));
    assert_eq!(check["served_rows"], live);
    assert_eq!(check["file_rows"], live + 5);
    assert_eq!(check["counted_by"], "key_scan");
    assert_eq!(listed(&cfg, &name).unwrap()["unpersisted_deletes"], 5);
    let text = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["get", "-n", &name])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&text.get_output().stdout).to_string();
    assert!(text.contains("UNPERSISTED DELETES: 5"), "{text}");
    assert!(
        started.elapsed().as_secs() < 500,
        "the deletes may have been synced meanwhile: the test took too long"
    );

    // The restore test finds the deleted rows that come back.
    let out = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["verify", "-n", &name, "--restore-test"])
        .assert()
        .failure()
        .code(9);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains(&format!(
            "{} rows restored but {live} expected (Milvus served {live} when the backup was made) — 5 deleted rows came back",
            live + 5
        )),
        "{stdout}"
    );
    assert!(stdout.contains("failed its restore test"), "{stdout}");

    // A logical backup of the same rows restores into 2.3.5 without them.
    let logical = unique("late");
    run(
        &cfg,
        &[],
        &["create", "-n", &logical, "-c", &coll, "--format", "parquet"],
    );
    let (_d2, cfg_a) = config_file(&config_yaml("A", &root));
    let target = format!("{coll}_p");
    run(
        &cfg_a,
        &[],
        &[
            "restore",
            "-n",
            &logical,
            "-c",
            &coll,
            "--rename",
            &format!("{coll}:{target}"),
        ],
    );
    let restored = dump("A", "default", &target);
    assert_eq!(restored.lines().count() as i64, live);
    for id in &deleted {
        assert!(
            !restored.contains(&format!("\"id\":{id},")),
            "deleted row {id} came back"
        );
    }
    assert_eq!(
        restored,
        dump("V22", "default", &coll),
        "rows differ from 2.2.16's"
    );
    eprintln!(
        "refused after {refused_s:.1} s; whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop_collection("A", "default", &target);
    drop_collection("V22", "default", &coll);
    for b in [&name, &logical] {
        run(&cfg, &[], &["delete", "-n", b]);
    }
}

#[test]
fn a_2_3_flush_persists_deletes_made_right_before_the_backup() {
    let (coll, live, _) = late_deletes("A", "late23");
    let root = unique("late23");
    let (_d, cfg) = config_file(&config_yaml("A", &root));
    let name = unique("late23");
    let stats = run(&cfg, &[], &["create", "-n", &name, "-c", &coll]);
    assert_eq!(stats["entities"], live);
    assert!(stats.get("unpersisted_deletes").is_none(), "{stats}");
    let got = run(&cfg, &[], &["get", "-n", &name]);
    let check = &got["row_checks"][0];
    assert_eq!(check["counted_by"], "count");
    assert_eq!(check["served_rows"], live);
    assert_eq!(
        check["file_rows"], live,
        "the flush wrote the deletes: {got}"
    );
    assert_eq!(got["unpersisted_deletes"], 0, "{got}");
    drop_collection("A", "default", &coll);
    run(&cfg, &[], &["delete", "-n", &name]);
}

#[test]
fn keys_written_twice_on_2_2_are_not_taken_for_unpersisted_deletes() {
    // A key scan sees each key once; the files hold both copies.
    let coll = unique("twice22");
    gen_data(
        "V22",
        &["dup-keys", "--collection", &coll, "--rows", "3000"],
    );
    let root = unique("twice22");
    let (_d, cfg) = config_file(&config_yaml("V22", &root));
    let name = unique("twice22");
    let stats = run(&cfg, &[], &["create", "-n", &name, "-c", &coll]);
    assert!(stats.get("unpersisted_deletes").is_none(), "{stats}");
    let check = &run(&cfg, &[], &["get", "-n", &name])["row_checks"][0];
    assert_eq!(
        (check["served_rows"].as_i64(), check["file_rows"].as_i64()),
        (Some(3000), Some(6000))
    );
    run(&cfg, &[], &["delete", "-n", &name]);

    // Deleting 5 of those keys now: their copies in the flushed segment
    // keep them in the files, and only those count.
    let out = gen_data(
        "V22",
        &[
            "dup-keys",
            "--collection",
            &coll,
            "--rows",
            "3000",
            "--delete",
            "5",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 2995);
    let stderr = refused_create(&cfg, &name, &coll);
    assert!(
        stderr.contains(&format!("default.{coll}: 5 deletes are not yet persisted"))
            && stderr.contains("Milvus serves 2995 rows but the files to back up hold 5995 (2995 of them rows written under a key another row has"),
        "{stderr}"
    );
    drop_collection("V22", "default", &coll);
}
