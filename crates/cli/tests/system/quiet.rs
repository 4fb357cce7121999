//! `-q` prints only errors: a restore that warns (an autoID collection's
//! keys made anew) prints its warning without `-q` and nothing with it.

use crate::env::row_restore::parquet_backup;
use crate::env::{cli, config_file, config_yaml, drop_collection, pick, unique};

#[test]
fn quiet_prints_no_warnings() {
    let g = pick("A", &["autoid"]).remove(0);
    let yaml = config_yaml("A", &unique("quiet"));
    let (_d, cfg) = config_file(&yaml);
    let name = unique("quiet");
    parquet_backup(&cfg, &name, &g.full_name());
    for (i, quiet) in [false, true].into_iter().enumerate() {
        let suffix = format!("_q{i}");
        let mut cmd = cli();
        cmd.arg("--config").arg(&cfg);
        if quiet {
            cmd.arg("-q");
        }
        let out = cmd
            .args(["restore", "-n", &name, "-c", &g.full_name(), "-s", &suffix])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        match quiet {
            false => assert!(stderr.contains("autoID"), "the warning is shown: {stderr}"),
            true => assert!(stderr.trim().is_empty(), "-q prints nothing: {stderr}"),
        }
        drop_collection("A", &g.db, &format!("{}{suffix}", g.name));
    }
    cli()
        .arg("--config")
        .arg(&cfg)
        .args(["delete", "-n", &name, "--yes"])
        .assert()
        .success();
}
