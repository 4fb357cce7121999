//! `migrate` from Milvus A to Milvus B (both 2.3.5) while a writer
//! inserts, upserts and deletes on A for a minute: a first run killed
//! with SIGKILL part-way, a `--follow` run stopped by SIGTERM after the
//! writer ends, then a last run that copies only what changed; `compare`
//! exits 0 and every row on B equals A by key. One row deleted on B alone
//! makes `compare` exit 10 and name it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::{bin, cli, config_file, drop_collection, dump, gen_data, guide_yaml, unique, var};

const ROWS: usize = 20_000;

fn writer(inst: &str, coll: &str, seconds: u32, first_new: u64) -> std::process::Child {
    Command::new(var("MBT_PY_23"))
        .arg(var("MBT_GEN_DATA"))
        .args(["writer", "--host", &var(&format!("MBT_{inst}_HOST"))])
        .args(["--port", &var(&format!("MBT_{inst}_PORT"))])
        .args(["--collection", coll, "--seconds", &seconds.to_string()])
        .args(["--first-new", &first_new.to_string()])
        .env("no_proxy", "127.0.0.1,localhost")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The CLI against A with `--to-config` B, as a child process.
fn migrate_child(a: &std::path::Path, b: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(a)
        .args(["--json", "migrate", "--to-config"])
        .arg(b)
        .args(args)
        .env("NO_COLOR", "1")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn rounds(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn migrate_follows_a_collection_in_use_and_a_last_round_copies_only_the_changes() {
    let root = unique("migroot");
    let coll = format!("mig_{}", &unique("x")[2..10]);
    gen_data(
        "A",
        &[
            "late-deletes",
            "--collection",
            &coll,
            "--rows",
            &ROWS.to_string(),
            "--delete",
            "0",
        ],
    );
    let (_da, a) = config_file(&guide_yaml("A", &root));
    let (_db, b) = config_file(&guide_yaml("B", &root));
    let range_rows = ["--range-rows", "2000"];
    let w = writer("A", &coll, 60, ROWS as u64);
    let started = Instant::now();

    // A first run killed with SIGKILL while it copies.
    let mut first = migrate_child(&a, &b, &[&["-c", coll.as_str()][..], &range_rows].concat())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let _ = first.kill();
    first.wait().unwrap();

    // Rounds until the writer stops, then SIGTERM: the round in progress
    // ends and the run exits 0.
    let mut follow = migrate_child(
        &a,
        &b,
        &[
            &["-c", coll.as_str(), "--follow", "--interval", "1"][..],
            &range_rows,
        ]
        .concat(),
    )
    .spawn()
    .unwrap();
    // Its rounds (one JSON line each), as they are printed.
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let (out, printed) = (follow.stdout.take().unwrap(), printed.clone());
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                printed.lock().unwrap().push(line);
            }
        })
    };
    let wrote = w.wait_with_output().unwrap();
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    let wrote: serde_json::Value = serde_json::from_slice(&wrote.stdout).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    // Two rounds at least (a round may outlast the writes on a loaded machine).
    let waiting = Instant::now();
    while printed.lock().unwrap().len() < 2 && waiting.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let pid = follow.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let followed = follow.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&followed.stderr).into_owned();
    assert!(followed.status.success(), "{err}");
    assert!(err.contains("stopping after this round"), "{err}");
    reader.join().unwrap();
    let all = rounds(printed.lock().unwrap().join("\n").as_bytes());
    assert!(all.len() >= 2, "{all:?}");
    assert!(
        all.iter().all(|r| r["created"] == false),
        "the killed run created B's collection: {all:?}"
    );
    let copied_while_writing: u64 = all.iter().map(|r| r["rows_copied"].as_u64().unwrap()).sum();
    assert!(copied_while_writing > 0, "{all:?}");

    // A few seconds more of writes; then the last run copies only those.
    let next = ROWS as u64 + wrote["inserted"].as_u64().unwrap();
    let burst = writer("A", &coll, 5, next).wait_with_output().unwrap();
    assert!(
        burst.status.success(),
        "{}",
        String::from_utf8_lossy(&burst.stderr)
    );
    let burst: serde_json::Value = serde_json::from_slice(&burst.stdout).unwrap();
    let last = cli()
        .arg("--config")
        .arg(&a)
        .args(["--json", "migrate", "--to-config"])
        .arg(&b)
        .args(["-c", &coll])
        .args(range_rows)
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&last.get_output().stdout).unwrap();
    let total = r["rows_source"].as_u64().unwrap();
    assert_eq!(r["rows_target"], total, "{r}");
    assert_eq!(r["identical"], true, "{r}");
    let copied = r["rows_copied"].as_u64().unwrap();
    // The burst's rows, and what the last --follow round found changed
    // again (writes during that round): a fraction of the collection.
    assert!(copied > 0 && copied * 4 < total, "{r} {burst}");
    eprintln!(
        "migrate: writer {wrote}; rounds while writing {}, rows copied then {copied_while_writing}; \
         then {burst}; the last run copied {copied} of {total} rows",
        all.len(),
    );

    let compare = |args: &[&str]| {
        let out = cli()
            .arg("--config")
            .arg(&a)
            .args(["--json", "compare", "--to-config"])
            .arg(&b)
            .args(["-c", &coll])
            .args(args)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let (code, v) = compare(&[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(dump("A", "default", &coll), dump("B", "default", &coll));

    // The cut-over: a round that finds nothing to repair points the alias.
    let alias = format!("{coll}_live");
    let out = cli()
        .arg("--config")
        .arg(&a)
        .args(["--json", "migrate", "--to-config"])
        .arg(&b)
        .args(["-c", &coll, "--alias", &alias])
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(r["alias"], alias.as_str(), "{r}");
    let described: serde_json::Value =
        serde_json::from_str(&gen_data("B", &["describe", "--collection", &coll])).unwrap();
    assert_eq!(
        described["aliases"],
        serde_json::json!([alias]),
        "{described}"
    );

    // One row gone on B alone: a key both hold (the writer deleted some).
    let on_b = dump("B", "default", &coll);
    let first: serde_json::Value = serde_json::from_str(on_b.lines().next().unwrap()).unwrap();
    let key = first["id"].as_i64().expect("an int64 key `id`");
    gen_data(
        "B",
        &[
            "delete-keys",
            "--collection",
            &coll,
            "--keys",
            &key.to_string(),
            "--int",
        ],
    );
    let (code, v) = compare(&[]);
    assert_eq!(code, Some(10), "{v}");
    assert_eq!(v["only_in_source"]["keys"], serde_json::json!([key]), "{v}");

    // A collection it did not create is refused, and left as it was.
    let other = format!("{coll}_other");
    gen_data(
        "B",
        &[
            "late-deletes",
            "--collection",
            &other,
            "--rows",
            "100",
            "--delete",
            "0",
        ],
    );
    let before = dump("B", "default", &other);
    let out = cli()
        .arg("--config")
        .arg(&a)
        .args(["migrate", "-c", &coll, "--to-config"])
        .arg(&b)
        .args(["--target", &other])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("--reconcile-existing"), "{err}");
    assert_eq!(dump("B", "default", &other), before);
    drop_collection("A", "default", &coll);
    drop_collection("B", "default", &coll);
    drop_collection("B", "default", &other);
}
