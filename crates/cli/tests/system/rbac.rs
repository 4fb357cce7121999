//! `--rbac` between the two auth-enabled Milvus servers (AUTH, AUTH2):
//! users, roles, grants and user-role bindings go across; users without a
//! password in the file are skipped; users that exist on the target keep
//! their password and roles; a refusal names the privilege and object.

use std::process::Command;

use predicates::prelude::*;
use serde_json::Value;

use crate::env::{auth_config_yaml, cli, config_file, run, unique, var};

const UTIL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/rbac_util.py");

fn util_cmd(inst: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(var("MBT_PY_23"));
    cmd.arg(UTIL)
        .arg(var(&format!("MBT_{inst}_PORT")))
        .args(args)
        .env("no_proxy", "127.0.0.1,localhost");
    cmd
}

/// `scripts/rbac_util.py` against instance `inst`; its stdout.
fn util(inst: &str, args: &[&str]) -> String {
    crate::env::stdout_of(
        &mut util_cmd(inst, args),
        &format!("rbac_util {args:?} on {inst}"),
    )
}

fn state(inst: &str, prefix: &str) -> Value {
    serde_json::from_str(&util(inst, &["state", prefix])).unwrap()
}

fn can_login(inst: &str, user: &str, password: &str) -> bool {
    util_cmd(inst, &["login", user, password])
        .output()
        .unwrap()
        .status
        .success()
}

/// The action of one item of a plan's or report's `rbac`.
fn action(rbac: &Value, kind: &str, name: &str) -> String {
    rbac["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == kind && i["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {rbac}"))["action"]
        .as_str()
        .unwrap()
        .to_string()
}

struct Cleanup(String, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for inst in ["AUTH", "AUTH2"] {
            let _ = std::panic::catch_unwind(|| util(inst, &["cleanup", &self.0]));
        }
        let (_dir, cfg) = config_file(&auth_config_yaml("AUTH", &self.1));
        let _ = cli()
            .arg("--config")
            .arg(&cfg)
            .args(["delete", "--all", "--yes"])
            .output();
    }
}

#[test]
fn rb_round_trip_between_auth_servers() {
    let p = unique("rb");
    let root = format!("{p}_root");
    let _cleanup = Cleanup(p.clone(), root.clone());
    let (_d1, src) = config_file(&auth_config_yaml("AUTH", &root));
    let (_d2, dst) = config_file(&auth_config_yaml("AUTH2", &root));
    util("AUTH", &["setup", &p]);
    // on the target already, with a password of its own and no roles
    util("AUTH2", &["user", &format!("{p}_bob"), "bob-target-pw"]);
    let source = state("AUTH", &p);

    let name = format!("{p}_b");
    let t = std::time::Instant::now();
    let stats = run(&src, &[], &["create", "-n", &name, "--rbac"]);
    eprintln!("create --rbac: {:.2}s", t.elapsed().as_secs_f64());
    assert!(stats["rbac"]["users"].as_u64().unwrap() >= 4, "{stats}");
    assert!(stats["rbac"]["grants"].as_u64().unwrap() >= 7, "{stats}");

    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("passwords");
    std::fs::write(
        &pw_file,
        format!("# test\n{p}_alice:alice:new pw\n{p}_bob:ignored-bob\n"),
    )
    .unwrap();
    let pw = pw_file.to_str().unwrap();
    let restore = |extra: &[&str]| {
        let mut args = vec![
            "restore",
            "-n",
            &name,
            "--rbac",
            "--rbac-user-password-file",
            pw,
        ];
        args.extend(extra);
        run(&dst, &[], &args)
    };
    let (alice, bob, carol) = (
        format!("{p}_alice"),
        format!("{p}_bob"),
        format!("{p}_carol"),
    );

    // dry run: the same decisions, nothing changed
    let dry = restore(&["--dry-run"]);
    let plan = &dry["plan"]["rbac"];
    assert_eq!(action(plan, "user", &alice), "create");
    assert_eq!(action(plan, "user", &bob), "existing");
    assert_eq!(action(plan, "user", &carol), "skipped");
    assert_eq!(action(plan, "role", &format!("{p}_reader")), "create");
    assert_eq!(
        action(plan, "user_role", &format!("{carol} -> {p}_writer")),
        "skipped"
    );
    assert_eq!(state("AUTH2", &p)["roles"], serde_json::json!([]));

    let t = std::time::Instant::now();
    let done = restore(&[]);
    eprintln!("restore --rbac: {:.2}s", t.elapsed().as_secs_f64());
    let report = &done["rbac"];
    assert_eq!(action(report, "user", &alice), "created");
    assert_eq!(action(report, "user", &carol), "skipped");
    assert!(
        report["skipped"].as_u64().unwrap() >= 3,
        "carol, her binding, bob's binding: {report}"
    );

    let target = state("AUTH2", &p);
    assert_eq!(target["roles"], source["roles"]);
    assert_eq!(target["grants"], source["grants"]);
    assert_eq!(target["users"][&alice], source["users"][&alice]);
    // the existing user keeps its (empty) roles and its password
    assert_eq!(target["users"][&bob], serde_json::json!([]));
    assert!(target["users"].get(&carol).is_none(), "{target}");
    assert!(can_login("AUTH2", &alice, "alice:new pw"));
    assert!(can_login("AUTH2", &bob, "bob-target-pw"));
    assert!(!can_login("AUTH2", &bob, "ignored-bob"));

    // again: everything exists now, nothing is created
    let again = restore(&[]);
    assert_eq!(again["rbac"]["created"], 0, "{again}");
    assert_eq!(state("AUTH2", &p), target);
}

#[test]
fn rb_missing_privilege_is_named() {
    let p = unique("rb");
    let root = format!("{p}_root");
    let _cleanup = Cleanup(p.clone(), root.clone());
    util("AUTH", &["setup", &p]);
    let (_d, cfg) = config_file(&auth_config_yaml("AUTH", &root));
    // alice's roles can list databases but not read users and roles
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["--set", &format!("milvus.user={p}_alice")])
        .args(["--set", "milvus.password=alice-source-pw"])
        .args(["create", "-n", &format!("{p}_b"), "--rbac"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "needs privilege `SelectUser` on User `*`",
        ));
}
