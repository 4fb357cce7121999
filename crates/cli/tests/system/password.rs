//! Password encryption against real Milvus and S3: the password unlocks a
//! root key kept in backup storage, a wrong one stops with exit 5 and
//! creates nothing, and a password change rewraps only that key.

use milvus_backup_core::codec::key;
use milvus_backup_core::model::layout;
use milvus_backup_core::model::meta::Manifest;
use milvus_backup_core::storage::Storage;
use milvus_backup_core::Context;
use predicates::prelude::*;

use crate::env::{
    assert_same_collection, cli, collections_of, config, config_file, config_yaml, drop_collection,
    pick, run, unique, Generated,
};

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

fn pw(password: &str) -> Vec<String> {
    vec![format!("backup.encryption.password={password}")]
}

/// The test's backup root, read without any key.
fn storage(root: &str) -> Storage {
    Context::open(&config(&config_yaml("A", root), &[]))
        .unwrap()
        .backup_storage
}

fn root_key(st: &Storage) -> Option<Vec<u8>> {
    block(st.stat(layout::ROOT_KEY))
        .unwrap()
        .map(|_| block(st.read(layout::ROOT_KEY)).unwrap())
}

/// The manifest, opened with the password.
fn manifest(root: &str, password: &str, name: &str) -> Manifest {
    let ctx = Context::open(&config(&config_yaml("A", root), &pw(password))).unwrap();
    block(milvus_backup_core::repo::catalog::manifest(
        &ctx.backup_storage,
        name,
    ))
    .unwrap()
    .unwrap()
}

fn create(cfg: &std::path::Path, password: &str, name: &str, g: &Generated) {
    let s = run(
        cfg,
        &pw(password),
        &["create", "-n", name, "-c", &g.full_name(), "--encrypt"],
    );
    assert!(s["copied_bytes"].as_u64().unwrap() > 0, "{s}");
}

/// The CLI with `password` in MILVUS_BACKUP_PASSWORD and config `cfg`.
fn with_password(cfg: &std::path::Path, password: &str) -> assert_cmd::Command {
    let mut cmd = cli();
    cmd.env("MILVUS_BACKUP_PASSWORD", password)
        .arg("--config")
        .arg(cfg);
    cmd
}

/// Removes the test's whole backup root, root key included, and the
/// catalog index beside it.
fn remove_root(st: &Storage) {
    block(st.delete_prefix("")).unwrap();
    block(milvus_backup_core::repo::catalog_index::discard(st));
}

#[test]
fn password_encrypted_backup_round_trips_with_one_root_key() {
    let g = pick("A", &["all_types"]).remove(0);
    let root = unique("pw_rt");
    let (_d1, cfg_a) = config_file(&config_yaml("A", &root));
    let (_d2, cfg_b) = config_file(&config_yaml("B", &root));
    let st = storage(&root);
    let name = unique("pw_rt");
    let s = run(
        &cfg_a,
        &pw("correct horse"),
        &[
            "create",
            "-n",
            &name,
            "-c",
            &g.full_name(),
            "--encrypt",
            "--compress",
            "zstd",
        ],
    );
    assert!(s["copied_bytes"].as_u64().unwrap() > 0);

    // The root key is in storage, sealed with the password; the backup's
    // files are sealed for it.
    let wrapped = root_key(&st).expect("the first encrypted backup makes the root key");
    assert!(key::is_sealed(&wrapped));
    assert!(!String::from_utf8_lossy(&wrapped).contains("AGE-SECRET-KEY"));
    let m = manifest(&root, "correct horse", &name);
    assert!(m.files.iter().all(|f| f.encoding.encrypted));
    let full = block(st.read(&layout::backup_meta_file(&name, layout::FULL_META))).unwrap();
    assert!(key::is_sealed(&full));

    // Listable without the password, the root key is no backup; the
    // password never shows.
    let listed = run(&cfg_a, &[], &["list"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [name.as_str()]);
    cli()
        .arg("--config")
        .arg(&cfg_a)
        .args(["--set", &pw("correct horse")[0], "config", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("password: '****'"))
        .stdout(predicate::str::contains("correct horse").not());

    // Without it: what is missing, by name.
    cli()
        .arg("--config")
        .arg(&cfg_a)
        .args(["get", "-n", &name])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("MILVUS_BACKUP_PASSWORD"));
    // With it, from the environment: get, verify --deep.
    with_password(&cfg_a, "correct horse")
        .args(["get", "-n", &name])
        .assert()
        .success()
        .stdout(predicate::str::contains("encrypted for age1"));
    with_password(&cfg_a, "correct horse")
        .args(["verify", "--deep", "-n", &name])
        .assert()
        .success();

    // A second backup uses the same root key: not made again.
    let second = unique("pw_rt2");
    create(&cfg_a, "correct horse", &second, &g);
    assert_eq!(root_key(&st).unwrap(), wrapped);
    let m2 = manifest(&root, "correct horse", &second);
    assert_eq!(
        m2.encryption.unwrap().recipient,
        m.encryption.unwrap().recipient
    );

    // Restored into Milvus B, row for row.
    let r = run(
        &cfg_b,
        &pw("correct horse"),
        &["restore", "-n", &name, "-s", "_pwrt", "--restore_index"],
    );
    assert!(r["staged_bytes"].as_u64().unwrap() > 0);
    let target = format!("{}_pwrt", g.name);
    assert_same_collection("A", &g, "B", &g.db, &target);
    drop_collection("B", &g.db, &target);

    // A key and a password together: refused, naming both.
    let (secret, _) = milvus_backup_core::codec::key::Key::generate();
    with_password(&cfg_a, "correct horse")
        .args(["--set", &format!("backup.encryption.key={secret}")])
        .args(["get", "-n", &name])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("backup.encryption.password"))
        .stderr(predicate::str::contains("backup.encryption.key"))
        .stderr(predicate::str::contains("AGE-SECRET").not());
    remove_root(&st);
}

#[test]
fn a_wrong_password_exits_5_and_creates_nothing() {
    let g = pick("A", &["varchar_pk"]).remove(0);
    let root = unique("pw_wrong");
    let (_d1, cfg_a) = config_file(&config_yaml("A", &root));
    let (_d2, cfg_b) = config_file(&config_yaml("B", &root));
    let st = storage(&root);
    let name = unique("pw_ok");
    create(&cfg_a, "right", &name, &g);
    let wrapped = root_key(&st).unwrap();

    let one_line = |stderr: &[u8]| {
        let text = String::from_utf8_lossy(stderr).to_string();
        // One error line (create's step lines may come before it).
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{text}");
        assert!(
            text.lines()
                .all(|l| l.starts_with("error") || l.starts_with('[') || l.ends_with("...")),
            "{text}"
        );
        assert!(text.contains("does not unlock the root key"), "{text}");
        assert!(text.contains("MILVUS_BACKUP_PASSWORD"), "{text}");
        assert!(!text.contains("wrong-one"), "{text}");
    };
    let other = unique("pw_bad");
    let out = cli()
        .arg("--config")
        .arg(&cfg_a)
        .args(["--set", &pw("wrong-one")[0]])
        .args(["create", "-n", &other, "-c", &g.full_name(), "--encrypt"])
        .assert()
        .code(5);
    one_line(&out.get_output().stderr);
    assert!(!block(st.has_objects(&layout::backup_dir(&other))).unwrap());
    assert_eq!(root_key(&st).unwrap(), wrapped, "the root key is untouched");

    let out = with_password(&cfg_b, "wrong-one")
        .args(["restore", "-n", &name, "-s", "_pwbad"])
        .assert()
        .code(5);
    one_line(&out.get_output().stderr);
    let target = format!("{}.{}_pwbad", g.db, g.name);
    assert!(!collections_of("B").contains(&target), "nothing restored");
    for args in [
        &["verify", "--deep", "-n", &name][..],
        &["get", "-n", &name][..],
    ] {
        let out = with_password(&cfg_a, "wrong-one")
            .args(args)
            .assert()
            .code(5);
        one_line(&out.get_output().stderr);
    }
    remove_root(&st);
}

#[test]
fn a_password_change_rewraps_the_root_key_and_old_backups_stay_readable() {
    let g = pick("A", &["varchar_pk"]).remove(0);
    let root = unique("pw_chg");
    let (dir, cfg_a) = config_file(&config_yaml("A", &root));
    let (_d2, cfg_b) = config_file(&config_yaml("B", &root));
    let st = storage(&root);
    let before = unique("pw_before");
    create(&cfg_a, "old", &before, &g);
    let files_before = block(st.list(&layout::backup_dir(&before))).unwrap();

    // No new password and no terminal: told where to give it.
    with_password(&cfg_a, "old")
        .args(["key", "passwd"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--new-password-file"));
    let changed = run(
        &cfg_a,
        &pw("old"),
        &["key", "passwd", "--new-password-file", &{
            let f = dir.path().join("new.txt");
            std::fs::write(&f, "new\n").unwrap();
            f.to_string_lossy().to_string()
        }],
    );
    assert_eq!(changed["object"], layout::ROOT_KEY);
    assert_eq!(block(st.stat(layout::ROOT_KEY_NEXT)).unwrap(), None);
    // Only the key was rewritten: every file of the backup is as it was.
    assert_eq!(
        block(st.list(&layout::backup_dir(&before))).unwrap(),
        files_before
    );

    // The old password no longer opens anything; the new one opens the
    // backup made before the change.
    with_password(&cfg_a, "old")
        .args(["verify", "--deep", "-n", &before])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("does not unlock"));
    with_password(&cfg_a, "new")
        .args(["verify", "--deep", "-n", &before])
        .assert()
        .success();
    let r = run(
        &cfg_b,
        &pw("new"),
        &["restore", "-n", &before, "-s", "_pwchg", "--restore_index"],
    );
    assert!(r["staged_bytes"].as_u64().unwrap() > 0);
    let target = format!("{}_pwchg", g.name);
    assert_same_collection("A", &g, "B", &g.db, &target);
    drop_collection("B", &g.db, &target);

    // New backups use the same root key; a second change from the
    // environment keeps both readable.
    let after = unique("pw_after");
    create(&cfg_a, "new", &after, &g);
    cli()
        .env("MILVUS_BACKUP_PASSWORD", "new")
        .env("MILVUS_BACKUP_NEW_PASSWORD", "newer")
        .arg("--config")
        .arg(&cfg_a)
        .args(["key", "passwd"])
        .assert()
        .success()
        .stdout(predicate::str::contains("changed the password"));
    for b in [&before, &after] {
        with_password(&cfg_a, "newer")
            .args(["verify", "--deep", "-n", b])
            .assert()
            .success();
    }
    assert_eq!(
        manifest(&root, "newer", &before)
            .encryption
            .unwrap()
            .recipient,
        manifest(&root, "newer", &after)
            .encryption
            .unwrap()
            .recipient
    );
    remove_root(&st);
}
