//! What a packaged binary carries besides its commands: the version line
//! (with the commit and build date that `build.rs` records), shell
//! completion scripts (`completions`) and man pages (`man`). Both are
//! generated from the same clap definition the binary parses with, so they
//! cannot drift from it. Neither reads the configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap_complete::Shell;
use milvus_backup_core::{Error, ErrorKind};

use crate::output::Output;

/// `--version`: `0.1.0 (commit 0123456789ab, built 2026-12-05)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MILVUS_BACKUP_COMMIT"),
    ", built ",
    env!("MILVUS_BACKUP_BUILD_DATE"),
    ")"
);

pub const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  milvus-backup completions bash > /etc/bash_completion.d/milvus-backup
  source <(milvus-backup completions bash)                 # this shell only
  milvus-backup completions zsh > \"${fpath[1]}/_milvus-backup\"
  milvus-backup completions fish > ~/.config/fish/completions/milvus-backup.fish
  milvus-backup completions powershell >> $PROFILE";

pub const MAN_EXAMPLES: &str = "\
Examples:
  milvus-backup man /usr/local/share/man/man1     # then: man milvus-backup-create
  milvus-backup man ./man";

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Folder to write the pages into (created if missing):
    /// milvus-backup.1 and one milvus-backup-<command>.1 per command.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs, mut cmd: clap::Command) -> ExitCode {
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// Writes one man page per command into `args.dir`.
pub fn man(args: &ManArgs, cmd: clap::Command, out: &Output) -> ExitCode {
    match write_man_pages(&args.dir, cmd) {
        Ok(pages) => {
            if out.json {
                out.json_value(&serde_json::json!({
                    "dir": args.dir.display().to_string(),
                    "pages": pages,
                }));
            } else if !out.quiet {
                println!(
                    "wrote {} man pages into {}",
                    pages.len(),
                    args.dir.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            out.error(&e, &[]);
            ExitCode::from(e.kind().exit_code().clamp(1, 255) as u8)
        }
    }
}

fn write_man_pages(dir: &std::path::Path, cmd: clap::Command) -> Result<Vec<String>, Error> {
    let failed = |e: std::io::Error| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "cannot write man pages into `{}`: {e} — name a folder you can write to",
                dir.display()
            ),
        )
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    clap_mangen::generate_to(cmd, dir).map_err(failed)?;
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .map_err(failed)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("milvus-backup") && n.ends_with(".1"))
        .collect();
    pages.sort();
    Ok(pages)
}
