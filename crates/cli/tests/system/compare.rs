//! `compare` between real servers: a 2.3.5 collection against its
//! restores into Milvus 2.2.16 and Milvus Lite says identical (exit 0);
//! one row deleted on one side alone exits 10 and names its key; a copy
//! whose keys were generated anew compares with `--ignore-key`.

use std::process::Output;

use crate::env::{
    cli, config_file, drop_collection, gen_data, guide_yaml, pick, unique, Generated,
};
use crate::logical_backup::{backup, run_json, target_name};

/// `compare` run against `from`, the other side on `to`: exit code and
/// the `--json` answer.
fn compare(from: &str, to: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let root = unique("cmp");
    let (_a, a) = config_file(&guide_yaml(from, &root));
    let (_b, b) = config_file(&guide_yaml(to, &root));
    let out: Output = cli()
        .arg("--config")
        .arg(&a)
        .args(["--json", "compare", "--to-config"])
        .arg(&b)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

/// Restores `g` from backup `name` (made from A under `root`) into `to` as
/// a new collection; its name.
fn restore_into(root: &str, name: &str, g: &Generated, to: &'static str) -> String {
    let target = target_name(g);
    let rename = format!("{}:default.{target}", g.full_name());
    let stats = run_json(
        to,
        root,
        &[],
        &["restore", "-n", name, "-c", &g.full_name(), "-r", &rename],
    );
    assert_eq!(stats["entities"], g.rows, "{stats}");
    target
}

#[test]
fn compare_finds_restores_into_2_2_and_lite_identical_and_names_a_deleted_key() {
    let root = unique("cmproot");
    let gs = pick("A", &["varchar_pk", "autoid"]);
    let name = backup("A", &root, &gs, &[], &[]);
    let (varchar, autoid) = (&gs[0], &gs[1]);
    for to in ["V22", "LITE"] {
        let target = restore_into(&root, &name, varchar, to);
        let full = format!("default.{target}");
        let (code, v) = compare("A", to, &["-c", &varchar.full_name(), "--target", &full]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["identical"], true, "{v}");
        assert_eq!(v["rows_source"], varchar.rows, "{v}");
        assert_eq!(v["rows_target"], varchar.rows, "{v}");
        assert_eq!(v["ranges_differing"], 0, "{v}");

        // One row deleted on the target alone.
        let key = first_key(to, &target);
        gen_data(
            to,
            &[
                "delete-keys",
                "--collection",
                &target,
                "--pk",
                "pk",
                "--keys",
                &key,
            ],
        );
        let (code, v) = compare("A", to, &["-c", &varchar.full_name(), "--target", &full]);
        assert_eq!(code, 10, "{v}");
        assert_eq!(v["identical"], false, "{v}");
        assert_eq!(v["only_in_source"]["count"], 1, "{v}");
        assert_eq!(v["only_in_source"]["keys"][0], key.as_str(), "{v}");
        assert_eq!(v["only_in_target"]["count"], 0, "{v}");
        assert_eq!(v["different"]["count"], 0, "{v}");
        assert_eq!(v["ranges_differing"], 1, "{v}");
        drop_collection(to, "default", &target);
    }

    // The autoID collection's restore has keys of its own: every key
    // differs, and the rows without their keys are the same.
    let target = restore_into(&root, &name, autoid, "LITE");
    let full = format!("default.{target}");
    // Comparing loads A's autoID collection and releases it again.
    let turn = crate::env::source_release_turn();
    let (code, v) = compare("A", "LITE", &["-c", &autoid.full_name(), "--target", &full]);
    assert_eq!(code, 10, "{v}");
    assert_eq!(v["only_in_source"]["count"], autoid.rows, "{v}");
    let (code, v) = compare(
        "A",
        "LITE",
        &["-c", &autoid.full_name(), "--target", &full, "--ignore-key"],
    );
    drop(turn);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["identical"], true, "{v}");
    drop_collection("LITE", "default", &target);
    crate::logical_backup::delete("A", &root, &name);
}

/// The smallest key of `coll` on `inst` (from a dump: one JSON row per
/// line, sorted by key).
fn first_key(inst: &str, coll: &str) -> String {
    let dump = crate::env::dump(inst, "default", coll);
    let row: serde_json::Value = serde_json::from_str(dump.lines().next().unwrap()).unwrap();
    row["pk"].as_str().unwrap().to_string()
}
