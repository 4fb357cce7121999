//! What the system tests of every crate share: the running test
//! environment (as `scripts/testenv.sh start` describes it), configs for
//! its instances, the generated data set, the `milvus-backup` binary, and
//! helpers that compare and drop collections. Nothing here is mocked.

pub mod curl;
pub mod fault;
pub mod generated;
pub mod layers;
pub mod row_restore;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{OnceLock, RwLock, RwLockWriteGuard};

use milvus_backup_core::config::{Config, LoadOptions};
use milvus_backup_core::Context;

/// Variables written by `scripts/testenv.sh start`, from the process
/// environment or, failing that, from the run directory's `env.sh`.
pub fn vars() -> &'static HashMap<String, String> {
    static VARS: OnceLock<HashMap<String, String>> = OnceLock::new();
    VARS.get_or_init(|| {
        let mut vars: HashMap<String, String> =
            std::env::vars().filter(|(k, _)| k.starts_with("MBT_")).collect();
        if !vars.contains_key("MBT_S3_ENDPOINT") {
            let run_dir = std::env::var("MILVUS_BACKUP_TESTENV")
                .unwrap_or_else(|_| "/tmp/milvus-backup-testenv".into());
            let file = PathBuf::from(run_dir).join("env.sh");
            let text = std::fs::read_to_string(&file).unwrap_or_else(|_| {
                panic!(
                    "no test environment: {} is missing — run `scripts/testenv.sh start` (or scripts/test.sh)",
                    file.display()
                )
            });
            read_env_file(&text, &mut vars);
        }
        // Milvus Lite's variables, kept beside its data, in case env.sh was
        // rewritten by a testenv.sh that knows no Lite.
        if !vars.contains_key("MBT_LITE_PORT") {
            let run_dir = vars
                .get("MBT_RUN_DIR")
                .cloned()
                .unwrap_or_else(|| "/tmp/milvus-backup-testenv".into());
            if let Ok(text) = std::fs::read_to_string(PathBuf::from(run_dir).join("LITE/env.sh")) {
                read_env_file(&text, &mut vars);
            }
        }
        vars
    })
}

fn read_env_file(text: &str, vars: &mut HashMap<String, String>) {
    for line in text.lines() {
        if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            vars.insert(k.to_string(), v.trim_matches('"').to_string());
        }
    }
}

pub fn var(name: &str) -> String {
    vars().get(name).cloned().unwrap_or_else(|| {
        panic!("test environment lacks {name} — is scripts/testenv.sh up to date and started?")
    })
}

/// `host:port` → (`host`, `port`) of an `http://host:port` endpoint.
pub fn host_port(endpoint: &str) -> (String, u16) {
    let hp = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let (h, p) = hp.rsplit_once(':').expect("endpoint has a port");
    (h.to_string(), p.parse().expect("numeric port"))
}

/// A unique, valid name for a test object (`t_<test>_<random>`).
pub fn unique(test: &str) -> String {
    format!(
        "t_{test}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A backup.yaml pointing at Milvus instance `inst` (A, B, L, V22) with
/// backups in the S3 bucket `milvus-backup` under `backup_root`; for LITE
/// (Milvus Lite) only its address.
pub fn config_yaml(inst: &str, backup_root: &str) -> String {
    if inst == "LITE" {
        // Milvus Lite has no storage of its own: the logical path only.
        return format!(
            "milvus:\n  address: {}\n  port: {}\n",
            var("MBT_LITE_HOST"),
            var("MBT_LITE_PORT")
        );
    }
    let (s3_host, s3_port) = host_port(&var("MBT_S3_ENDPOINT"));
    let storage = var(&format!("MBT_{inst}_STORAGE"));
    let (storage_type, bucket, root) = if storage == "local" {
        (
            "local".to_string(),
            String::new(),
            var(&format!("MBT_{inst}_ROOT")),
        )
    } else {
        (
            "minio".to_string(),
            var(&format!("MBT_{inst}_BUCKET")),
            var(&format!("MBT_{inst}_ROOT")),
        )
    };
    format!(
        r#"
milvus:
  address: {host}
  port: {port}
minio:
  storageType: {storage_type}
  address: {s3_host}
  port: {s3_port}
  accessKeyID: {ak}
  secretAccessKey: {sk}
  bucketName: "{bucket}"
  rootPath: "{root}"
  backupStorageType: minio
  backupAccessKeyID: {ak}
  backupSecretAccessKey: {sk}
  backupBucketName: {backup_bucket}
  backupRootPath: "{backup_root}"
backup:
  gcPause: {{ enable: true, seconds: 120, address: "{mgmt}" }}
"#,
        host = var(&format!("MBT_{inst}_HOST")),
        port = var(&format!("MBT_{inst}_PORT")),
        mgmt = var(&format!("MBT_{inst}_MGMT")),
        ak = var("MBT_S3_ACCESS_KEY"),
        sk = var("MBT_S3_SECRET_KEY"),
        backup_bucket = var("MBT_BACKUP_BUCKET"),
    )
}

/// [`config_yaml`] for an auth-enabled instance (AUTH, AUTH2), logged in
/// as its root.
pub fn auth_config_yaml(inst: &str, backup_root: &str) -> String {
    config_yaml(inst, backup_root).replacen(
        "milvus:\n",
        &format!(
            "milvus:\n  authorizationEnabled: true\n  user: {}\n  password: {}\n",
            var(&format!("MBT_{inst}_USER")),
            var(&format!("MBT_{inst}_PASSWORD"))
        ),
        1,
    )
}

/// Writes `yaml` to a fresh temporary file; keep the guard alive while used.
pub fn config_file(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.yaml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path)
}

/// Parses a config the way the CLI does, with extra `--set` pairs.
pub fn config(yaml: &str, sets: &[String]) -> Config {
    let (_dir, path) = config_file(yaml);
    Config::load(&LoadOptions {
        file: Some(&path),
        file_required: true,
        sets,
        env: Default::default(),
    })
    .unwrap()
    .0
}

/// One collection made by `scripts/gen_data.py generate`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Generated {
    pub db: String,
    pub name: String,
    /// Rows left after the generator's deletes.
    pub rows: i64,
    pub deleted: i64,
    pub partitions: Vec<String>,
    /// The primary key field's name.
    #[serde(default)]
    pub pk: String,
    /// The collection makes its own keys.
    #[serde(default)]
    pub auto_id: bool,
}

impl Generated {
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }
}

/// The generated data set on instance `inst`, made once per test run
/// (prefix `sys_`), shared by every test that only reads it.
pub fn generated(inst: &'static str) -> &'static [Generated] {
    // One cell per instance, so instances generate concurrently.
    static A: OnceLock<Vec<Generated>> = OnceLock::new();
    static L: OnceLock<Vec<Generated>> = OnceLock::new();
    static V22: OnceLock<Vec<Generated>> = OnceLock::new();
    static B: OnceLock<Vec<Generated>> = OnceLock::new();
    static LITE: OnceLock<Vec<Generated>> = OnceLock::new();
    let cell = match inst {
        "LITE" => &LITE,
        "A" => &A,
        "L" => &L,
        "V22" => &V22,
        "B" => &B,
        other => panic!("no instance {other}"),
    };
    cell.get_or_init(|| generate(inst))
}

fn generate(inst: &str) -> Vec<Generated> {
    let out = gen_data(
        inst,
        &["generate", "--prefix", &gen_prefix(), "--rows", "2000"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("gen_data.py prints JSON");
    serde_json::from_value(v["collections"].clone()).unwrap()
}

/// Prefix of the generated collections: `sys_`, or `MBT_GEN_PREFIX` so that
/// two test runs against the same servers do not regenerate each other's data.
pub fn gen_prefix() -> String {
    std::env::var("MBT_GEN_PREFIX").unwrap_or_else(|_| "sys_".into())
}

/// Turns on the generated collections the tests read. A logical export or
/// backup may load a collection and release it again, which must not
/// happen while a dump reads it: dumps and describes ([`gen_data`]) take this
/// lock shared, and a test takes it alone ([`source_release_turn`]) around
/// a run that may load and release.
static SOURCE_TURNS: RwLock<()> = RwLock::new(());

/// Held around a CLI run that may load and release a generated collection
/// (`export`, `create --format`); no dump runs meanwhile.
pub fn source_release_turn() -> RwLockWriteGuard<'static, ()> {
    SOURCE_TURNS.write().unwrap_or_else(|e| e.into_inner())
}

/// Runs a `scripts/gen_data.py` subcommand against instance `inst`.
pub fn gen_data(inst: &str, args: &[&str]) -> String {
    let _turn = matches!(args.first(), Some(&"dump" | &"describe"))
        .then(|| SOURCE_TURNS.read().unwrap_or_else(|e| e.into_inner()));
    let python = if var(&format!("MBT_{inst}_VERSION")).starts_with("2.2") {
        var("MBT_PY_22")
    } else {
        var("MBT_PY_23")
    };
    stdout_of(
        std::process::Command::new(python)
            .arg(var("MBT_GEN_DATA"))
            .arg(args[0])
            .args([
                "--host",
                &var(&format!("MBT_{inst}_HOST")),
                "--port",
                &var(&format!("MBT_{inst}_PORT")),
            ])
            .args(&args[1..]),
        &format!("gen_data {args:?} on {inst}"),
    )
}

/// Runs a helper program (loopback not proxied) and returns its stdout;
/// panics with `what` and its stderr when it fails.
pub fn stdout_of(cmd: &mut std::process::Command, what: &str) -> String {
    let out = cmd
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The CLI binary, with no inherited settings that could change its behaviour.
pub fn cli() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("MILVUS_")
            || k.starts_with("MINIO_")
            || k.starts_with("BACKUP_")
            || k == "RUST_LOG"
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1")
        .env("no_proxy", "127.0.0.1,localhost");
    cmd
}

/// Schema, partitions and indexes of a collection, without its name and db.
fn describe(inst: &str, db: &str, name: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&gen_data(
        inst,
        &["describe", "--db", db, "--collection", name],
    ))
    .unwrap();
    let obj = v.as_object_mut().unwrap();
    for k in ["name", "db", "load_state", "aliases"] {
        obj.remove(k);
    }
    v
}

/// Asserts that `target` on `to` equals `source` on `from`: description
/// first (dumping may add an index to load), then every row.
pub fn assert_same_collection(from: &str, source: &Generated, to: &str, db: &str, target: &str) {
    let (a, b) = (
        describe(from, &source.db, &source.name),
        describe(to, db, target),
    );
    assert_eq!(
        a,
        b,
        "schema/partitions/indexes of {db}.{target} differ from {}",
        source.full_name()
    );
    let rows_a = gen_data(
        from,
        &["dump", "--db", &source.db, "--collection", &source.name],
    );
    let rows_b = gen_data(to, &["dump", "--db", db, "--collection", target]);
    assert_eq!(
        rows_a.lines().count() as i64,
        source.rows,
        "{} rows after deletes",
        source.full_name()
    );
    assert!(
        rows_a == rows_b,
        "rows of {db}.{target} differ from {}",
        source.full_name()
    );
}

/// Every collection of instance `inst`, as `db.collection`.
pub fn collections_of(inst: &str) -> Vec<String> {
    let cfg = config(&config_yaml(inst, "unused"), &[]);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = Context::open(&cfg).unwrap().milvus().await.unwrap();
        let mut all = Vec::new();
        for db in client.list_databases().await.unwrap() {
            for c in client.list_collections(&db).await.unwrap() {
                all.push(format!("{db}.{c}"));
            }
        }
        all
    })
}

/// Every row of a collection (gen_data.py dump: one canonical JSON object
/// per line, by primary key).
pub fn dump(inst: &str, db: &str, name: &str) -> String {
    gen_data(inst, &["dump", "--db", db, "--collection", name])
}

/// Asserts that `target` on `to` holds the rows of `source` on `from`,
/// every field, by primary key. With `without` a field (an autoID key the
/// target regenerated), the rows are compared without it, as multisets.
pub fn assert_same_rows(
    from: &str,
    source: &Generated,
    to: &str,
    db: &str,
    target: &str,
    without: Option<&str>,
) {
    let strip = |text: String| -> Vec<String> {
        let mut rows: Vec<String> = text
            .lines()
            .map(|l| match without {
                Some(f) => {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v.as_object_mut().unwrap().remove(f);
                    v.to_string()
                }
                None => l.to_string(),
            })
            .collect();
        if without.is_some() {
            rows.sort();
        }
        rows
    };
    let a = strip(dump(from, &source.db, &source.name));
    let b = strip(dump(to, db, target));
    assert_eq!(a.len() as i64, source.rows, "{} rows", source.full_name());
    assert_eq!(b.len(), a.len(), "row count of {to} {db}.{target}");
    assert!(
        a == b,
        "rows of {to} {db}.{target} differ from {from} {}",
        source.full_name()
    );
}

pub fn drop_collection(inst: &str, db: &str, name: &str) {
    let cfg = config(&config_yaml(inst, "unused"), &[]);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ctx = Context::open(&cfg).unwrap();
        ctx.milvus()
            .await
            .unwrap()
            .drop_collection(db, name)
            .await
            .unwrap();
    });
}

pub fn run(cfg: &std::path::Path, sets: &[String], args: &[&str]) -> serde_json::Value {
    let mut cmd = cli();
    cmd.arg("--json").arg("--config").arg(cfg);
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    let out = cmd.args(args).assert().success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// A collection with deletes and one of another kind (autoID, varchar...).
pub fn pick(inst: &'static str, names: &[&str]) -> Vec<Generated> {
    generated(inst)
        .iter()
        .filter(|g| names.iter().any(|n| g.name.ends_with(n)))
        .cloned()
        .collect()
}

/// The user guide's `config.yaml` as written: `milvus:`, the `storage:`
/// block for backup storage (the S3 bucket, under `backup_root`) and
/// `backup:`, for instance `inst` (LITE too). It names no storage for
/// Milvus's own files, so `create` makes logical backups with it.
pub fn guide_yaml(inst: &str, backup_root: &str) -> String {
    let (s3_host, s3_port) = host_port(&var("MBT_S3_ENDPOINT"));
    format!(
        r#"# Milvus 连接配置
milvus:
  address: {host}
  port: {port}
  username: ""
  password: ""
  authorizationEnabled: false

# 备份存储配置
storage:
  storageType: minio
  minio:
    address: {s3_host}
    port: {s3_port}
    accessKeyID: {ak}
    secretAccessKey: {sk}
    useSSL: false
    bucketName: {backup_bucket}
    rootPath: {backup_root}

# 备份配置
backup:
  maxBackupNum: 10
  retentionDays: 30
"#,
        host = var(&format!("MBT_{inst}_HOST")),
        port = var(&format!("MBT_{inst}_PORT")),
        ak = var("MBT_S3_ACCESS_KEY"),
        sk = var("MBT_S3_SECRET_KEY"),
        backup_bucket = var("MBT_BACKUP_BUCKET"),
    )
}

/// [`guide_yaml`] plus the Go tool's `minio:` keys for Milvus's own
/// storage (not in the guide's file), which a physical backup needs.
pub fn guide_config_yaml(inst: &str, backup_root: &str) -> String {
    let (s3_host, s3_port) = host_port(&var("MBT_S3_ENDPOINT"));
    let milvus_side = if var(&format!("MBT_{inst}_STORAGE")) == "local" {
        format!(
            "  storageType: local\n  rootPath: \"{}\"\n",
            var(&format!("MBT_{inst}_ROOT"))
        )
    } else {
        format!(
            "  storageType: minio\n  address: {s3_host}\n  port: {s3_port}\n  accessKeyID: {ak}\n  secretAccessKey: {sk}\n  bucketName: \"{bucket}\"\n  rootPath: \"{root}\"\n",
            ak = var("MBT_S3_ACCESS_KEY"),
            sk = var("MBT_S3_SECRET_KEY"),
            bucket = var(&format!("MBT_{inst}_BUCKET")),
            root = var(&format!("MBT_{inst}_ROOT")),
        )
    };
    format!(
        "{}\n# Milvus's own storage (not in the guide's file)\nminio:\n{milvus_side}",
        guide_yaml(inst, backup_root)
    )
}

/// The `milvus-backup` binary that `cargo test --workspace` built (other
/// crates' tests run it too).
pub fn bin() -> PathBuf {
    let path = assert_cmd::cargo::cargo_bin("milvus-backup");
    assert!(
        path.exists(),
        "{} is missing — build it first: cargo build -p milvus-backup (scripts/test.sh does)",
        path.display()
    );
    path
}
