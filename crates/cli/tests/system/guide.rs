//! The user guide's CLI (`shared/seeds/000_*`, "使用"), as written — only
//! the names differ, so that runs and tests do not collide — with a
//! `config.yaml` in the guide's shape, against real Milvus and S3. `create --all` is checked through its plan: a real backup
//! of every collection would race the other tests' collections. A
//! restore leaves a collection as its source was: indexed, and loaded when
//! the source was loaded (searchable), with no flag.

use predicates::prelude::*;

use crate::env::{assert_same_collection, cli, drop_collection, guide_config_yaml, pick, unique};

/// `config.yaml` in a folder of its own.
fn guide_config(inst: &str, root: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, guide_config_yaml(inst, root)).unwrap();
    (dir, path)
}

fn mb(cfg: &std::path::Path, args: &[&str]) -> assert_cmd::assert::Assert {
    cli().arg("--config").arg(cfg).args(args).assert()
}

fn json(cfg: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = cli()
        .arg("--json")
        .arg("--config")
        .arg(cfg)
        .args(args)
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn the_guides_commands_work_as_written() {
    let colls = pick("A", &["all_types", "varchar_pk"]);
    let (c1, c2) = (&colls[0], &colls[1]);
    let root = unique("guide");
    let (_da, cfg) = guide_config("A", &root);
    let (_db, cfg_b) = guide_config("B", &root);
    // The guide's file is read as written: no unknown-key warnings.
    let shown = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["config", "show"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&shown.get_output().stderr).to_string();
    assert!(!stderr.contains("unknown"), "{stderr}");
    assert!(String::from_utf8_lossy(&shown.get_output().stdout).contains(&root));
    let tag = &root[root.len() - 6..];
    let (full, multi, inc) = (
        format!("backup_{tag}"),
        format!("backup_{tag}_multi"),
        format!("backup_{tag}_incremental"),
    );

    // create --collection / --collection a,b / --base-backup
    mb(
        &cfg,
        &["create", "--collection", &c1.name, "--backup-name", &full],
    )
    .success();
    mb(
        &cfg,
        &[
            "create",
            "--collection",
            &format!("{},{}", c1.name, c2.name),
            "--backup-name",
            &multi,
        ],
    )
    .success();
    let stats = json(
        &cfg,
        &[
            "create",
            "--collection",
            &c1.name,
            "--backup-name",
            &inc,
            "--base-backup",
            &full,
        ],
    );
    assert_eq!(stats["base_backup"], full.as_str());
    assert!(stats["shared_files"].as_u64().unwrap() > 0, "{stats}");

    // create --all: every collection (said so when another selection is given)
    let plan = json(
        &cfg,
        &["create", "--all", "--backup-name", "all_plan", "--dry-run"],
    );
    let planned: Vec<&str> = plan["plan"]["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["collection"].as_str().unwrap())
        .collect();
    for g in &colls {
        assert!(planned.contains(&g.full_name().as_str()), "{planned:?}");
    }
    mb(
        &cfg,
        &[
            "create",
            "--all",
            "--collection",
            &c1.name,
            "--backup-name",
            "x",
            "--dry-run",
        ],
    )
    .success()
    .stderr(predicate::str::contains("--all backs up every collection"));

    // list, list --collection, list --verbose
    mb(&cfg, &["list"])
        .success()
        .stdout(predicate::str::contains(&full));
    let holding = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["list", "--collection", &c2.name])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&holding.get_output().stdout).to_string();
    assert!(
        text.contains(&multi) && !text.contains(&format!("{full} ")),
        "{text}"
    );
    let verbose = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["list", "--verbose"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&verbose.get_output().stdout).to_string();
    let header = text.lines().next().unwrap();
    for column in [
        "Backup Name",
        "Collections",
        "Entities",
        "Size",
        "Created At",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = text.lines().find(|l| l.starts_with(&multi)).unwrap();
    assert!(row.contains(&format!("{},{}", c1.name, c2.name)), "{row}");

    // restore --backup-name --collection --target-collection, as written:
    // searchable (indexed and loaded as the source)
    let target = format!("{}_restored_{tag}", c1.name);
    let restore_as_target = [
        "restore",
        "--backup-name",
        &full,
        "--collection",
        &c1.name,
        "--target-collection",
        &target,
    ];
    mb(&cfg, &restore_as_target).success();
    assert_same_collection("A", c1, "A", &c1.db, &target);
    let (state, first_id) = searchable("A", &c1.db, &target);
    assert_eq!(state, "Loaded", "{target} is loaded like {}", c1.name);

    // Onto an existing collection with consent: replaced atomically (a new
    // collection swapped in, the same rows, indexed and loaded, nothing
    // left beside it).
    let mut replace = restore_as_target.to_vec();
    replace.push("--drop_exist_collection");
    let out = mb(&cfg, &replace).success();
    let o = out.get_output();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(said.contains(&format!("{target} replaced")), "{said}");
    assert_same_collection("A", c1, "A", &c1.db, &target);
    let (state, id) = searchable("A", &c1.db, &target);
    assert_eq!(state, "Loaded");
    assert_ne!(id, first_id, "{target} was replaced");
    let left: Vec<String> = crate::env::collections_of("A")
        .into_iter()
        .filter(|c| c.contains(&target) && !c.ends_with(&target))
        .collect();
    assert!(left.is_empty(), "left beside {target}: {left:?}");
    drop_collection("A", &c1.db, &target);

    // restore --collection alone replaces the original: never without consent
    mb(
        &cfg,
        &["restore", "--backup-name", &full, "--collection", &c1.name],
    )
    .code(4)
    .stderr(predicate::str::contains("--drop_exist_collection"));

    // restore --all, into a second Milvus (under a suffix: B is shared)
    let suffix = format!("_g{tag}");
    let stats = json(
        &cfg_b,
        &[
            "restore",
            "--backup-name",
            &multi,
            "--all",
            "-s",
            &suffix,
            "--restore_index",
        ],
    );
    assert_eq!(stats["collections"], 2);
    for g in &colls {
        let t = format!("{}{suffix}", g.name);
        assert_same_collection("A", g, "B", &g.db, &t);
        drop_collection("B", &g.db, &t);
    }

    // verify --backup-name / --all
    mb(&cfg, &["verify", "--backup-name", &full])
        .success()
        .stdout(predicate::str::contains(format!("OK   {full}")));
    mb(&cfg, &["verify", "--all"]).success();

    // delete --backup-name / --older-than 30d / --all (scripts: --yes)
    mb(&cfg, &["delete", "--backup-name", &inc]).success();
    mb(&cfg, &["delete", "--older-than", "30d"]).success();
    let left = json(&cfg, &["list"]);
    let names: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&full.as_str()) && names.contains(&multi.as_str()));
    mb(&cfg, &["delete", "--all"])
        .code(2)
        .stderr(predicate::str::contains("--yes"));
    mb(&cfg, &["delete", "--all", "--yes"]).success();
    assert_eq!(json(&cfg, &["list"]).as_array().unwrap().len(), 0);
}

/// The load state and id of a collection that has its indexes and answers
/// a query (panics otherwise).
fn searchable(inst: &str, db: &str, name: &str) -> (String, i64) {
    let cfg = crate::env::config(&crate::env::config_yaml(inst, "unused"), &[]);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ctx = milvus_backup_core::Context::open(&cfg).unwrap();
        let client = ctx.milvus().await.unwrap();
        let indexes = client.describe_indexes(db, name).await.unwrap();
        assert!(!indexes.is_empty(), "{db}.{name} has no index");
        let state = client.load_state(db, name).await.unwrap();
        let id = client
            .describe_collection(db, name)
            .await
            .unwrap()
            .collection_id;
        (state, id)
    })
}

/// Lines of `text` that contain each of `wanted`, in that order.
fn in_order(text: &str, wanted: &[&str]) {
    let mut rest = text;
    for w in wanted {
        let at = rest
            .find(w)
            .unwrap_or_else(|| panic!("`{w}` missing (or out of order) in:\n{text}"));
        rest = &rest[at + w.len()..];
    }
}

#[test]
fn the_guides_output_steps_summaries_and_live_entities() {
    // all_types is loaded (rows counted by Milvus), binary_vec is not (its
    // delta logs are read); both have deleted rows.
    let colls = pick("A", &["all_types", "binary_vec"]);
    let live: i64 = colls.iter().map(|g| g.rows).sum();
    let root = unique("guideout");
    let (dir, cfg) = guide_config("A", &root);
    // The guide's `log.file`: progress and errors go there as well.
    let log = dir.path().join("logs").join("milvus-backup.log");
    let mut yaml = std::fs::read_to_string(&cfg).unwrap();
    yaml.push_str(&format!(
        "\nlog:\n  level: info\n  file: {}\n",
        log.display()
    ));
    std::fs::write(&cfg, yaml).unwrap();
    let tag = &root[root.len() - 6..];
    let name = format!("backup_{tag}");
    let names: Vec<&str> = colls.iter().map(|g| g.name.as_str()).collect();

    let out = mb(
        &cfg,
        &[
            "create",
            "--collection",
            &names.join(","),
            "--backup-name",
            &name,
        ],
    )
    .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    in_order(
        &stderr,
        &[
            "Creating backup...",
            "[1/5] Connecting to Milvus...",
            "[2/5] Reading collection metadata...",
            "[3/5] Exporting data...",
            "Progress: 100%",
            "[4/5] Compressing backup...",
            "Compression ratio: ",
            "[5/5] Uploading to storage...",
            "Upload speed: ",
        ],
    );
    in_order(
        &stdout,
        &[
            "Backup created successfully!",
            &format!("Backup name: {name}"),
            "Collections: ",
            &format!("Total entities: {live} ("),
            "deleted rows not counted",
            "Backup size: ",
            "Duration: ",
        ],
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    in_order(
        &logged,
        &["INFO reading ", "INFO copying ", "INFO writing metadata"],
    );
    let listed = json(&cfg, &["list"]);
    assert_eq!(listed[0]["entities"], live, "{listed}");

    let suffix = format!("_o{tag}");
    let out = mb(
        &cfg,
        &[
            "restore",
            "--backup-name",
            &name,
            "--collection",
            &colls[0].name,
            "-s",
            &suffix,
            "--restore_index",
        ],
    )
    .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    in_order(
        &stderr,
        &[
            "Restoring backup...",
            "[1/6] Downloading backup from storage...",
            "[2/6] Decompressing backup...",
            "[3/6] Verifying backup integrity...",
            "[4/6] Creating collection...",
            "Index type: ",
            "[5/6] Importing data...",
            "Progress: 100%",
            "[6/6] Building index...",
            "Progress: 100% (index built, collection loaded)",
        ],
    );
    in_order(
        &stdout,
        &[
            "Backup restored successfully!",
            &format!("Collection: {}.{}{suffix}", colls[0].db, colls[0].name),
            &format!("Total entities: {}", colls[0].rows),
            "Duration: ",
        ],
    );
    drop_collection("A", &colls[0].db, &format!("{}{suffix}", colls[0].name));

    let out = mb(&cfg, &["verify", "--backup-name", &name]).success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    in_order(
        &stderr,
        &[
            "Verifying backup...",
            "[1/3] Checking backup metadata...",
            "[2/3] Verifying checksum...",
        ],
    );
    in_order(
        &stdout,
        &[
            "Backup is valid!",
            &format!("Backup name: {name}"),
            "Checksum: OK",
            "Metadata: OK",
            "Restore test: skipped",
        ],
    );
    mb(&cfg, &["delete", "--backup-name", &name, "--yes"]).success();
}

/// The guide's "Backup size exceeds storage quota": a backup into a local
/// folder on a 256 KiB tmpfs fails with one line naming the fix
/// (compression), and leaves at most an incomplete backup, which the
/// message offers to resume or delete.
#[test]
fn a_full_backup_storage_says_so_and_leaves_nothing() {
    full_storage(&[]);
}

/// The same for a logical backup, whose files are written as rows arrive:
/// the line also says how much room is left.
#[test]
fn a_full_backup_storage_says_so_for_a_logical_backup() {
    let error = full_storage(&["--format", "parquet"]);
    assert!(error.contains(" free)"), "{error}");
}

/// Runs a `create` (with `args`) into a 256 KiB tmpfs; its error line.
fn full_storage(args: &[&str]) -> String {
    let g = &pick("L", &["all_types"])[0];
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mount)
        .status()
        .expect("mount runs");
    assert!(mounted.success(), "this test needs root to mount a tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mount.clone());
    let (_d, cfg) = crate::env::config_file(&crate::env::config_yaml("L", "unused"));
    let sets = [
        "minio.backupStorageType=local".to_string(),
        format!("minio.backupRootPath={}", mount.display()),
    ];
    let mut cmd = cli();
    cmd.arg("--config").arg(&cfg);
    for s in &sets {
        cmd.arg("--set").arg(s);
    }
    let out = cmd
        .args(["create", "-n", &unique("full"), "-c", &g.full_name()])
        .args(args)
        .assert()
        .code(7);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("backup storage is full") && errors[0].contains("compression"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&mount).unwrap().collect();
    if !left.is_empty() {
        // Kept for `create --resume` (when its journal could still be written).
        assert!(errors[0].contains("--resume"), "{stderr}");
    }
    errors[0].to_string()
}
