//! What a packaged binary carries (`--version`, `completions`, `man`) and
//! the README's `cargo install` step, checked the way a user meets them:
//! the completion script loads in bash, the man pages open in `man`, the
//! installed binary runs. None of these needs a server.

use std::path::Path;
use std::process::Command;

use crate::env::bin;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `milvus-backup 0.1.0 (commit 0123456789ab, built 2026-12-05)`.
fn assert_version_line(line: &str) {
    let rest = line
        .strip_prefix(&format!(
            "milvus-backup {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("unexpected --version: {line}"));
    let (commit, rest) = rest.split_once(", built ").expect("`, built ` follows");
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "commit `{commit}`"
    );
    let date = rest.strip_suffix(')').expect("closing parenthesis");
    let parts: Vec<&str> = date.split('-').collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()) && parts[0].len() == 4,
        "build date `{date}`"
    );
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let (ok, out, err) = run(&["--version"]);
    assert!(ok, "{err}");
    assert_version_line(out.trim());
}

#[test]
fn bash_completion_loads_and_completes_the_commands() {
    let (ok, script, err) = run(&["completions", "bash"]);
    assert!(ok, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("milvus-backup.bash");
    std::fs::write(&file, &script).unwrap();
    // Load it as bash-completion would, then ask bash what it registered
    // and what it offers after `milvus-backup cr`.
    let probe = format!(
        "source {} && complete -p milvus-backup && \
         COMP_WORDS=(milvus-backup cr) COMP_CWORD=1 COMP_LINE='milvus-backup cr' COMP_POINT=16 && \
         $(complete -p milvus-backup | sed -E 's/.*-F ([^ ]+).*/\\1/') milvus-backup cr milvus-backup && \
         echo \"offered: ${{COMPREPLY[*]}}\"",
        file.display()
    );
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &probe])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("complete ") && l.ends_with(" milvus-backup")),
        "complete -p printed: {stdout}"
    );
    assert!(stdout.contains("offered: create"), "{stdout}");
}

#[test]
fn completions_for_every_shell_and_man_pages_for_every_command() {
    for (shell, marker) in [
        ("zsh", "#compdef milvus-backup"),
        ("fish", "complete -c milvus-backup"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let (ok, script, err) = run(&["completions", shell]);
        assert!(ok, "{shell}: {err}");
        assert!(script.contains(marker), "{shell}: no `{marker}`");
        assert!(script.contains("restore"), "{shell}: no `restore`");
    }
    let (ok, _, err) = run(&["completions", "tcsh"]);
    assert!(!ok && err.contains("tcsh"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man1");
    let (ok, out, err) = run(&["man", man.to_str().unwrap()]);
    assert!(ok, "{err}");
    for page in [
        "milvus-backup.1",
        "milvus-backup-create.1",
        "milvus-backup-restore.1",
        "milvus-backup-key-passwd.1",
        "milvus-backup-server.1",
    ] {
        let text = std::fs::read_to_string(man.join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}; `man` printed {out}"));
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    let create = std::fs::read_to_string(man.join("milvus-backup-create.1")).unwrap();
    assert!(
        create.contains("backup\\-name"),
        "create's page lacks --backup-name"
    );
    // `man -l` renders it, where man is installed.
    if let Ok(out) = Command::new("man")
        .args(["-l", man.join("milvus-backup-create.1").to_str().unwrap()])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    {
        if out.status.success() {
            assert!(String::from_utf8_lossy(&out.stdout).contains("backup-name"));
        }
    }
    let unwritable = Path::new("/proc/milvus-backup-man");
    let (ok, _, err) = run(&["man", unwritable.to_str().unwrap()]);
    assert!(!ok, "writing into /proc succeeded");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("name a folder you can write to"), "{err}");
}

/// The README's `cargo install --locked --path crates/cli`, as a debug
/// build into a temporary root so that it reuses what the tests built.
#[test]
fn cargo_install_puts_a_working_milvus_backup_in_the_root() {
    let built = bin();
    // target/debug/milvus-backup → target
    let target_dir = built.parent().and_then(Path::parent).unwrap();
    let root = tempfile::tempdir().unwrap();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "--locked", "--debug", "--quiet", "--path"])
        .arg(crate_dir)
        .arg("--root")
        .arg(root.path())
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = root.path().join("bin/milvus-backup");
    let out = Command::new(&installed).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_version_line(String::from_utf8_lossy(&out.stdout).trim());
    let out = Command::new(&installed)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("milvus-backup"));
}
