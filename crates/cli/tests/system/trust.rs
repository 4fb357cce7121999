//! Compression, encryption, incremental backups and retention against real
//! Milvus and S3: what is stored is not the source's bytes, a wrong key or
//! a changed byte stops a restore, shared files survive deleting any
//! backup, and retention keeps exactly what it should.

use milvus_backup_core::codec::key::Key;
use milvus_backup_core::model::layout;
use milvus_backup_core::model::meta::Manifest;
use milvus_backup_core::Context;
use predicates::prelude::*;

use crate::env::{
    assert_same_collection, cli, collections_of, config, config_file, config_yaml, drop_collection,
    pick, run, unique, Generated,
};

fn manifest(ctx: &Context, name: &str) -> Manifest {
    let bytes = block(
        ctx.backup_storage
            .read(&layout::backup_meta_file(name, layout::MANIFEST)),
    )
    .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

#[test]
fn compressed_encrypted_backup_restores_identically_and_refuses_wrong_keys_and_damage() {
    let colls: Vec<Generated> = pick("A", &["all_types", "varchar_pk"]);
    let root = unique("enc");
    let yaml_a = config_yaml("A", &root);
    let (_d1, cfg_a) = config_file(&yaml_a);
    let (_d2, cfg_b) = config_file(&config_yaml("B", &root));
    let (secret, _) = Key::generate();
    let key_set = vec![format!("backup.encryption.key={secret}")];
    let name = unique("enc");
    let list: Vec<String> = colls.iter().map(|g| g.full_name()).collect();
    let stats = run(
        &cfg_a,
        &key_set,
        &[
            "create",
            "-n",
            &name,
            "-c",
            &list.join(","),
            "--compress",
            "zstd",
            "--compress-level",
            "3",
            "--encrypt",
        ],
    );
    assert!(stats["copied_bytes"].as_u64().unwrap() > 0);

    // What is stored is neither the source's bytes nor readable meta.
    let ctx = Context::open(&config(&yaml_a, &key_set)).unwrap();
    let m = manifest(&ctx, &name);
    assert_eq!(m.encryption.as_ref().unwrap().scheme, "age-x25519");
    assert!(!m.files.is_empty());
    for f in &m.files {
        assert!(f.encoding.encrypted, "{}", f.path);
        assert!(f.raw_sha256.is_none(), "no plaintext checksum leaks");
        let raw = block(ctx.milvus_storage.read(&f.source)).unwrap();
        let stored = block(
            ctx.backup_storage
                .read(&layout::join(&layout::backup_dir(&name), &f.path)),
        )
        .unwrap();
        assert_ne!(raw, stored);
        if raw.len() >= 64 {
            let probe = &raw[raw.len() / 2..raw.len() / 2 + 32];
            assert!(
                !stored.windows(32).any(|w| w == probe),
                "{} holds source bytes",
                f.path
            );
        }
    }
    let full = block(
        ctx.backup_storage
            .read(&layout::backup_meta_file(&name, layout::FULL_META)),
    )
    .unwrap();
    assert!(full.starts_with(b"age-encryption.org/"));
    assert!(!String::from_utf8_lossy(&full).contains("field"));

    // Listable without the key; not readable without it.
    cli()
        .arg("--config")
        .arg(&cfg_a)
        .args(["list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(&name));
    cli()
        .arg("--config")
        .arg(&cfg_a)
        .args(["get", "-n", &name])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no key or password is configured"));
    cli()
        .arg("--config")
        .arg(&cfg_a)
        .args(["--set", &key_set[0], "get", "-n", &name])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "stored:         zstd-3, encrypted for age1",
        ));
    cli()
        .arg("--config")
        .arg(&cfg_a)
        .args(["--set", &key_set[0], "verify", "--deep", "-n", &name])
        .assert()
        .success();

    // A wrong key: one clear line, nothing created in B.
    // Only this test's targets: other tests restore into B at the same time.
    let absent = |suffix: &str| {
        let now = collections_of("B");
        colls
            .iter()
            .all(|g| !now.contains(&format!("{}.{}{suffix}", g.db, g.name)))
    };
    let (other, _) = Key::generate();
    cli()
        .arg("--config")
        .arg(&cfg_b)
        .args(["--set", &format!("backup.encryption.key={other}")])
        .args(["restore", "-n", &name, "-s", "_enc"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("different key"));
    assert!(absent("_enc"), "nothing created for a wrong key");

    // The right key: row-identical in the second Milvus.
    let r = run(
        &cfg_b,
        &key_set,
        &["restore", "-n", &name, "-s", "_enc", "--restore_index"],
    );
    assert!(r["staged_bytes"].as_u64().unwrap() > 0);
    for g in &colls {
        let target = format!("{}_enc", g.name);
        assert_same_collection("A", g, "B", &g.db, &target);
        drop_collection("B", &g.db, &target);
    }

    // One changed byte: verify --deep names the file, restore refuses it.
    let victim = &m.files[m.files.len() / 2];
    let key = layout::join(&layout::backup_dir(&name), &victim.path);
    let mut bytes = block(ctx.backup_storage.read(&key)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    block(ctx.backup_storage.write(&key, bytes)).unwrap();
    cli()
        .arg("--config")
        .arg(&cfg_a)
        .args(["--set", &key_set[0], "verify", "--deep", "-n", &name])
        .assert()
        .code(9)
        .stdout(predicate::str::contains(victim.path.as_str()));
    cli()
        .arg("--config")
        .arg(&cfg_b)
        .args([
            "--set",
            &key_set[0],
            "restore",
            "-n",
            &name,
            "-s",
            "_tamper",
        ])
        .assert()
        .code(9)
        .stderr(predicate::str::contains("damaged"));
    assert!(absent("_tamper"), "nothing half-restored is left");
    block(milvus_backup_core::ops::delete::delete_backup(
        &ctx.backup_storage,
        &name,
    ))
    .unwrap();
}

#[test]
fn incremental_backups_share_files_and_survive_deleting_any_backup() {
    let g = pick("A", &["all_types"]).remove(0);
    let root = unique("inc");
    let yaml = config_yaml("A", &root);
    let (_d1, cfg_a) = config_file(&yaml);
    let (_d2, cfg_b) = config_file(&config_yaml("B", &root));
    let (full, inc1, inc2) = (unique("full"), unique("inc1"), unique("inc2"));
    let c = g.full_name();
    let gz = ["--compress", "gzip", "--compress-level", "6"];
    let f = run(
        &cfg_a,
        &[],
        &[&["create", "-n", &full, "-c", &c][..], &gz].concat(),
    );
    assert!(f["copied_bytes"].as_u64().unwrap() > 0);
    // Nothing changed: everything is shared, nothing copied.
    let i1 = run(
        &cfg_a,
        &[],
        &[
            &["create", "-n", &inc1, "-c", &c, "--base-backup", &full][..],
            &gz,
        ]
        .concat(),
    );
    assert_eq!(i1["copied_bytes"], 0, "{i1}");
    assert_eq!(i1["shared_files"], f["files"]);
    assert_eq!(i1["size_bytes"], f["size_bytes"]);
    assert_eq!(i1["base_backup"], full.as_str());
    // --incremental finds the newest backup of the same collection.
    let i2 = run(
        &cfg_a,
        &[],
        &[&["create", "-n", &inc2, "-c", &c, "--incremental"][..], &gz].concat(),
    );
    assert_eq!(i2["copied_bytes"], 0, "{i2}");
    assert_eq!(i2["base_backup"], inc1.as_str());
    // Another encoding cannot share: a full copy.
    let plain = unique("plain");
    let p = run(
        &cfg_a,
        &[],
        &["create", "-n", &plain, "-c", &c, "--base-backup", &full],
    );
    assert_eq!(p["copied_bytes"], p["size_bytes"]);

    // Delete the base: its shared files move, both incrementals stay whole.
    run(&cfg_a, &[], &["delete", "-n", &full]);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    assert!(!block(ctx.backup_storage.has_objects(&layout::backup_dir(&full))).unwrap());
    for b in [&inc1, &inc2] {
        cli()
            .arg("--config")
            .arg(&cfg_a)
            .args(["verify", "--deep", "-n", b])
            .assert()
            .success();
    }
    let suffix = format!("_i{}", &inc2[inc2.len() - 6..]);
    let r = run(
        &cfg_b,
        &[],
        &["restore", "-n", &inc2, "-s", &suffix, "--restore_index"],
    );
    assert!(r["entities"].as_i64().unwrap() > 0);
    let target = format!("{}{suffix}", g.name);
    assert_same_collection("A", &g, "B", &g.db, &target);
    drop_collection("B", &g.db, &target);
    // And the one in the middle, then the last: nothing dangles.
    run(&cfg_a, &[], &["delete", "-n", &inc1]);
    cli()
        .arg("--config")
        .arg(&cfg_a)
        .args(["verify", "--deep", "-n", &inc2])
        .assert()
        .success();
    for b in [&inc2, &plain] {
        run(&cfg_a, &[], &["delete", "-n", b]);
    }
    assert!(
        block(ctx.backup_storage.list("")).unwrap().is_empty(),
        "nothing left behind"
    );
}

#[test]
fn retention_keeps_exactly_the_newest_and_the_young() {
    let g = pick("A", &["varchar_pk"]).remove(0);
    let root = unique("ret");
    let yaml = config_yaml("A", &root);
    let (_d, cfg) = config_file(&yaml);
    let c = g.full_name();
    let names: Vec<String> = (0..4).map(|i| unique(&format!("r{i}"))).collect();
    for n in &names[..3] {
        run(&cfg, &[], &["create", "-n", n, "-c", &c, "--meta_only"]);
    }
    // After a successful create, backup.maxBackupNum applies.
    let stats = run(
        &cfg,
        &["backup.maxBackupNum=2".to_string()],
        &["create", "-n", &names[3], "-c", &c, "--meta_only"],
    );
    assert_eq!(
        stats["retention_deleted"],
        serde_json::json!([names[0], names[1]])
    );
    let listed = |cfg: &std::path::Path| -> Vec<String> {
        let v = run(cfg, &[], &["list"]);
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(listed(&cfg), vec![names[2].clone(), names[3].clone()]);

    // retentionDays: age one backup by ten days; --dry-run only names it.
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let key = layout::backup_meta_file(&names[2], layout::SUMMARY);
    let mut summary: serde_json::Value =
        serde_json::from_slice(&block(ctx.backup_storage.read(&key)).unwrap()).unwrap();
    let ten_days_ago = chrono::Utc::now().timestamp_millis() - 10 * 86_400_000;
    summary["backup_timestamp"] = ten_days_ago.into();
    block(
        ctx.backup_storage
            .write(&key, serde_json::to_vec(&summary).unwrap()),
    )
    .unwrap();
    let days = ["backup.retentionDays=5".to_string()];
    let dry = run(&cfg, &days, &["delete", "--apply-retention", "--dry-run"]);
    assert_eq!(dry["would_delete"], serde_json::json!([names[2]]));
    // Every backup's verdict, with its reason.
    let verdicts = dry["verdicts"].as_array().expect("verdicts");
    let of = |n: &str| verdicts.iter().find(|v| v["backup"] == n).expect(n).clone();
    assert_eq!(of(&names[2])["delete"], true, "{dry}");
    assert_eq!(of(&names[2])["reason"], "too_old", "{dry}");
    assert_eq!(of(&names[2])["max"], 5, "{dry}");
    assert_eq!(of(&names[3])["delete"], false, "{dry}");
    assert_eq!(of(&names[3])["reason"], "within", "{dry}");
    assert_eq!(listed(&cfg).len(), 2);
    let done = run(&cfg, &days, &["delete", "--apply-retention"]);
    assert_eq!(done["deleted"], serde_json::json!([names[2]]));
    assert_eq!(listed(&cfg), vec![names[3].clone()]);
    // No policy set: a clear refusal.
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["delete", "--apply-retention"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("backup.maxBackupNum"));
    run(&cfg, &[], &["delete", "-n", &names[3]]);
}
