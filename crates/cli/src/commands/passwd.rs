//! `key passwd`: changing the password that unlocks the root key (and
//! the `key` commands' examples).

use std::io::IsTerminal;

use clap::Args;
use milvus_backup_core::config::{Config, Secret};
use milvus_backup_core::storage::root_key;
use milvus_backup_core::{Context, Error, Result};

use crate::output::Output;

pub const KEYGEN_EXAMPLES: &str = "\
Examples:
  milvus-backup keygen > backup-key.txt && chmod 600 backup-key.txt
  milvus-backup --set backup.encryption.keyFile=backup-key.txt create --encrypt -n nightly

Keep the key file safe and apart from the backups: without it, encrypted
backups cannot be restored.";

pub const PASSWD_EXAMPLES: &str = "\
Examples:
  MILVUS_BACKUP_PASSWORD=old milvus-backup key passwd              # asks twice for the new one
  MILVUS_BACKUP_PASSWORD=old milvus-backup key passwd --new-password-file new.txt
  MILVUS_BACKUP_PASSWORD=old MILVUS_BACKUP_NEW_PASSWORD=new milvus-backup key passwd

The current password comes from MILVUS_BACKUP_PASSWORD or
backup.encryption.password; afterwards only the new one opens the backups.";

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// File whose first line is the new password (else
    /// MILVUS_BACKUP_NEW_PASSWORD, else asked twice on a terminal).
    #[arg(long, value_name = "FILE")]
    new_password_file: Option<std::path::PathBuf>,
}

pub async fn passwd(config: &Config, args: PasswdArgs, out: &Output) -> Result<()> {
    let ctx = Context::open(config)?;
    let new = new_password(&args)?;
    let stats = root_key::change_password(&ctx.backup_storage, &Secret::new(new)).await?;
    if out.json {
        out.json_value(&stats);
    } else if !out.quiet {
        println!(
            "changed the password of the root key {} in {} (key {}, unchanged): set the new one in MILVUS_BACKUP_PASSWORD or backup.encryption.password",
            stats.object,
            ctx.backup_storage.spec().describe(),
            stats.recipient
        );
    }
    Ok(())
}

/// The new password: from the file, the environment, or asked twice.
fn new_password(args: &PasswdArgs) -> Result<String> {
    if let Some(file) = &args.new_password_file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::invalid_input(format!(
                "cannot read the new password file `{}`: {e}",
                file.display()
            ))
        })?;
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    if let Ok(p) = std::env::var("MILVUS_BACKUP_NEW_PASSWORD") {
        return Ok(p);
    }
    let term = console::Term::stderr();
    if !term.is_term() || !std::io::stdin().is_terminal() {
        return Err(Error::invalid_input(
            "no new password: give it with --new-password-file FILE or MILVUS_BACKUP_NEW_PASSWORD (or run on a terminal to be asked)",
        ));
    }
    let ask = |prompt: &str| {
        eprint!("{prompt}");
        term.read_secure_line()
            .map_err(|e| Error::internal(format!("reading the password: {e}")))
    };
    let first = ask("new password: ")?;
    if ask("new password again: ")? != first {
        return Err(Error::invalid_input(
            "the two new passwords differ — nothing was changed",
        ));
    }
    Ok(first)
}
