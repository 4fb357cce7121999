//! `milvus-backup`: the command-line front end. It turns flags into calls on
//! the core library and results into text (or JSON with `--json`); all
//! behaviour lives in `milvus_backup_core`.

mod commands;
mod compare;
#[cfg(test)]
mod docs_tests;
#[cfg(test)]
mod k8s_tests;
mod logical;
mod output;
mod progress;
mod rbac;
mod schedule;
mod ship;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use milvus_backup_core::config::{scrub, Config, LoadOptions};
use milvus_backup_core::context::Endpoints;
use milvus_backup_core::{ops::check, Error, ErrorKind};

use crate::output::Output;

const EXAMPLES: &str = "\
Examples:
  milvus-backup check
  milvus-backup create -n nightly -c docs,images
  milvus-backup list
  milvus-backup --config configs/backup.yaml config show
  milvus-backup --set milvus.address=10.0.0.5 --set minio.bucketName=milvus check
  milvus-backup --json check";

/// Backup and restore for the Milvus vector database.
///
/// Reads the same configs/backup.yaml as zilliztech/milvus-backup. Settings
/// come from built-in defaults, then the config file, then environment
/// variables (MILVUS_ADDRESS, MINIO_SECRET_KEY, ...), then --set.
#[derive(Debug, Parser)]
#[command(name = "milvus-backup", version = ship::VERSION, after_help = EXAMPLES)]
struct Cli {
    /// Config file. Without --config the first found of configs/backup.yaml,
    /// config.yaml and /etc/milvus-backup/config.yaml is read; built-in
    /// defaults apply when none exists.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "configs/backup.yaml"
    )]
    config: PathBuf,

    /// Override one config key, e.g. --set milvus.port=19531 (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    sets: Vec<String>,

    /// Print one JSON object with the result instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// Print only errors.
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Work on backup_strategy's `primary` or `secondary` backup storage
    /// instead of the configured one (list, get, verify, restore, ...).
    #[arg(long, global = true, value_name = "primary|secondary")]
    storage: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that Milvus and both storages are reachable and usable.
    #[command(
        after_help = "Example:\n  milvus-backup check\n\nEach step prints OK, WARN, FAIL or SKIP; any FAIL exits non-zero."
    )]
    Check,
    /// Print a new encryption key (an age identity) for `create --encrypt`.
    #[command(after_help = commands::KEYGEN_EXAMPLES)]
    Keygen,
    /// Manage the root key that a password unlocks.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Create a backup of collections (flush, copy binlogs, write meta).
    #[command(after_help = commands::CREATE_EXAMPLES)]
    Create(commands::CreateArgs),
    /// Restore collections from a backup into Milvus.
    #[command(after_help = commands::RESTORE_EXAMPLES)]
    Restore(commands::RestoreArgs),
    /// List backups with their state, collections, entities and size.
    #[command(after_help = commands::LIST_EXAMPLES)]
    List(commands::ListArgs),
    /// Show one backup in detail (the whole document with --json).
    #[command(after_help = commands::GET_EXAMPLES)]
    Get(commands::GetArgs),
    /// Delete one backup, old backups, or all of them.
    #[command(after_help = commands::DELETE_EXAMPLES)]
    Delete(commands::DeleteArgs),
    /// Verify backups: meta files agree, every file exists with its size
    /// (and, with --deep, its checksum; with --restore-test, that it restores).
    #[command(after_help = commands::VERIFY_EXAMPLES)]
    Verify(commands::VerifyArgs),
    /// Write one collection's rows as Parquet or JSON files plus schema.json.
    #[command(after_help = logical::EXPORT_EXAMPLES)]
    Export(logical::ExportArgs),
    /// Insert rows from Parquet or JSON files (export's, or pymilvus bulk writer's).
    #[command(after_help = logical::IMPORT_EXAMPLES)]
    Import(logical::ImportArgs),
    /// Whether two live collections hold the same rows (exit 0 identical, 10 different).
    #[command(after_help = compare::COMPARE_EXAMPLES)]
    Compare(compare::CompareArgs),
    /// Move a collection into another Milvus while it keeps taking writes (rounds of reconcile).
    #[command(after_help = compare::MIGRATE_EXAMPLES)]
    Migrate(compare::MigrateArgs),
    /// Serve the REST API (/api/v1, docs at /api/v1/docs/index.html).
    #[command(after_help = SERVER_EXAMPLES)]
    Server(ServerArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Remove what interrupted work left behind in Milvus's storage.
    #[command(after_help = commands::GC_EXAMPLES)]
    Gc(commands::GcArgs),
    /// The backup_strategy's schedules: status, run-now, run.
    #[command(subcommand, after_help = schedule::SCHEDULE_EXAMPLES)]
    Schedule(schedule::ScheduleCommand),
    /// Copy a backup to the strategy's secondary storage (only what is missing).
    #[command(after_help = schedule::REPLICATE_EXAMPLES)]
    Replicate(schedule::ReplicateArgs),
    /// Health of the backup_strategy: RPO, verification, secondary lag, failed runs.
    #[command(after_help = schedule::STATUS_EXAMPLES)]
    Status,
    /// Print a shell completion script (bash, zsh, fish, powershell).
    #[command(after_help = ship::COMPLETIONS_EXAMPLES)]
    Completions(ship::CompletionsArgs),
    /// Write the man pages (one per command) into a folder.
    #[command(after_help = ship::MAN_EXAMPLES)]
    Man(ship::ManArgs),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Change the password (backup.encryption.password): rewraps the root
    /// key only; every backup stays as it is and opens with the new one.
    #[command(after_help = commands::PASSWD_EXAMPLES)]
    Passwd(commands::PasswdArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration with every secret masked, and
    /// which file was read.
    #[command(
        after_help = "Examples:\n  MILVUS_ADDRESS=10.0.0.5 milvus-backup config show\n  milvus-backup --config config.yaml config show --as v2   # as the Go tool's v2 file"
    )]
    Show {
        /// v1: the Go tool's v1 keys (and ours); v2: its `configVersion: v2`
        /// sections, ours that v2 lacks kept as in v1.
        #[arg(long = "as", value_parser = ["v1", "v2"], default_value = "v1")]
        form: String,
    },
}

const SERVER_EXAMPLES: &str = "\
Examples:
  milvus-backup server                         # 0.0.0.0:8080 (http.address)
  milvus-backup --set http.address=127.0.0.1 server -p 9090
  MILVUS_BACKUP_AUTH_TOKEN=s3cret milvus-backup server   # bearer token required
  milvus-backup server --tls-cert server.crt --tls-key server.key   # HTTPS (http.tls.*)";

#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// Port to listen on (default 8080, or the port in http.address).
    #[arg(short = 'p', long)]
    port: Option<u16>,
    /// Serve HTTPS with this PEM certificate chain (http.tls.certFile,
    /// env MILVUS_BACKUP_TLS_CERT_FILE); needs --tls-key.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (http.tls.keyFile, env
    /// MILVUS_BACKUP_TLS_KEY_FILE).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
}

impl ServerArgs {
    /// The config with the flags applied: flags win over every other source.
    fn apply(&self, config: &Config) -> Config {
        let mut config = config.clone();
        if let Some(cert) = &self.tls_cert {
            config.http.tls.cert_file = cert.display().to_string();
        }
        if let Some(key) = &self.tls_key {
            config.http.tls.key_file = key.display().to_string();
        }
        config
    }
}

/// Buffers of 1 MiB and more (query answers, batches, copy chunks) are
/// mapped on their own and returned to the system when freed. glibc's
/// default raises that threshold as such buffers are freed, after which
/// they come from its per-thread heaps, which fragment and keep the peak:
/// an import's peak RSS was 174 MiB with the default and 100 MiB with this.
/// One heap per core rather than glibc's eight: smaller buffers freed by
/// one thread are reused by the next instead of being returned and mapped
/// again (an export's kernel time fell by a third, its peak unchanged).
fn bound_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets allocator parameters; it is called
        // before any thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            libc::mallopt(libc::M_ARENA_MAX, cores.clamp(2, 64) as libc::c_int);
        }
    }
}

fn main() -> ExitCode {
    bound_the_heap();
    let cli = Cli::parse();
    let out = Output::new(cli.json, cli.quiet);
    // Generated from the parser alone: they work whatever the config says.
    match &cli.command {
        Command::Completions(args) => return ship::completions(args, Cli::command()),
        Command::Man(args) => return ship::man(args, Cli::command(), &out),
        _ => {}
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            out.error(
                &Error::internal(format!("cannot start the async runtime: {e}")),
                &[],
            );
            return ExitCode::from(1);
        }
    };
    let (config, secrets) = match load_config(&cli, &out) {
        Ok(c) => c,
        Err(e) => {
            out.error(&e, &[]);
            return exit_code(e.kind());
        }
    };
    milvus_backup_core::config::scrub::speak_as_the_file(config.key_spellings.clone());
    init_logging(&config, &out);
    match runtime.block_on(run(cli.command, &config, &out)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(target: progress::LOG_TARGET, "{}", scrub::one_line(&e.to_string(), &secrets));
            out.error(&e, &secrets);
            exit_code(e.kind())
        }
    }
}

fn load_config(cli: &Cli, out: &Output) -> Result<(Config, Vec<String>), Error> {
    use milvus_backup_core::config::{find_config_file, SEARCH_ORDER};
    // `--config` names a file that must exist; otherwise the first found of
    // SEARCH_ORDER is read, and none found means built-in defaults.
    let user_named = cli.config.as_path() != std::path::Path::new(SEARCH_ORDER[0]);
    let found = (!user_named)
        .then(|| find_config_file(SEARCH_ORDER))
        .flatten();
    let (config, report) = Config::load(&LoadOptions {
        file: Some(found.as_deref().unwrap_or(&cli.config)),
        file_required: user_named,
        sets: &cli.sets,
        env: std::env::vars().collect(),
    })?;
    for w in &report.warnings {
        out.warn(w);
    }
    let showing = matches!(cli.command, Command::Config(ConfigCommand::Show { .. }));
    match &report.file {
        Some(file) if showing && !cli.quiet => eprintln!("# read {}", file.display()),
        // Said for every command: defaults that apply without a word look
        // like a config file that was read.
        None if !cli.quiet => eprintln!(
            "{}using built-in defaults (no config file found in {}; name one with --config)",
            if showing { "# " } else { "" },
            SEARCH_ORDER.join(", ")
        ),
        _ => {}
    }
    let config = match &cli.storage {
        Some(which) => milvus_backup_core::schedule::config_for_storage(&config, which)?,
        None => config,
    };
    let secrets = config.secrets().into_iter().map(str::to_string).collect();
    Ok((config, secrets))
}

/// Logs to stderr (unless `log.console: false`) and, when `log.file` names
/// one, appends to that file as well (its folder is created).
fn init_logging(config: &Config, out: &Output) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    // --quiet: errors only on the console; the log file keeps its level.
    let filter = |quiet: bool| {
        let level = match quiet {
            true => "error",
            false => config.log.level.as_str(),
        };
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(format!(
                    "error,milvus_backup={level},milvus_backup_core={level},milvus_backup_server={level}"
                ))
            })
            // OpenDAL's signer prints credentials at debug level; never let
            // it, whatever RUST_LOG asks for.
            .add_directive("reqsign=info".parse().expect("valid directive"))
    };
    let path = config.log.file.root_path.trim();
    let file = (!path.is_empty())
        .then(|| {
            let path = std::path::Path::new(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::OpenOptions::new().create(true).append(true).open(path)
        })
        .and_then(|opened| {
            opened
                .map_err(|e| {
                    out.warn(&format!(
                        "cannot write the log file `{path}` ({e}) — check log.file; logging to the console only"
                    ))
                })
                .ok()
        });
    // The progress lines the console shows anyway go to the file only.
    let console = (config.log.console || file.is_none()).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(colour_on_stderr())
            .with_target(false)
            .compact()
            .with_filter(
                filter(out.quiet).add_directive(
                    format!("{}=off", progress::LOG_TARGET)
                        .parse()
                        .expect("valid directive"),
                ),
            )
    });
    let file = file.map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .with_target(false)
            .with_filter(
                filter(false).add_directive(
                    format!("{}=info", progress::LOG_TARGET)
                        .parse()
                        .expect("valid directive"),
                ),
            )
    });
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(file)
        .try_init();
}

/// Colour codes only for a terminal, and never with `NO_COLOR` set
/// (no-color.org): a log redirected to a file stays plain text.
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A backup of everything completed with collections left out (kept
/// without their rows): not a failure, not a full success.
const EXIT_LEFT_OUT: u8 = 11;

fn exit_code(kind: ErrorKind) -> ExitCode {
    ExitCode::from(kind.exit_code().clamp(1, 255) as u8)
}

async fn run(command: Command, config: &Config, out: &Output) -> Result<ExitCode, Error> {
    match command {
        Command::Check => {
            let report = check::run(Endpoints::from_config(config)).await;
            out.check_report(&report);
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                exit_code(ErrorKind::Remote)
            })
        }
        Command::Keygen => {
            let (secret, public) = milvus_backup_core::codec::key::Key::generate();
            if out.json {
                out.json_value(&serde_json::json!({ "key": secret, "recipient": public }));
            } else {
                println!("# milvus-backup encryption key; recipient: {public}\n{secret}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(KeyCommand::Passwd(args)) => commands::passwd(config, args, out)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Config(ConfigCommand::Show { form }) => {
            if out.json {
                out.json_value(&config.to_masked_json());
            } else if form == "v2" {
                print!("{}", config.to_masked_v2_yaml());
            } else {
                print!("{}", config.to_masked_yaml());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Create(args) => Ok(match commands::create(config, args, out).await? {
            commands::CreateOutcome::Complete => ExitCode::SUCCESS,
            commands::CreateOutcome::LeftOut => ExitCode::from(EXIT_LEFT_OUT),
        }),
        Command::Restore(args) => commands::restore(config, args, out)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::List(args) => commands::list(config, args, out)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Get(args) => commands::get(config, args, out)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Delete(args) => commands::delete(config, args, out)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Verify(args) => Ok(match commands::verify(config, args, out).await? {
            commands::VerifyOutcome::Sound => ExitCode::SUCCESS,
            commands::VerifyOutcome::Damaged => exit_code(ErrorKind::Corrupt),
            commands::VerifyOutcome::Skipped => exit_code(ErrorKind::InvalidInput),
        }),
        Command::Gc(args) => commands::gc(config, args, out)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Export(args) => logical::export(config, args, out)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Import(args) => logical::import(config, args, out)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Compare(args) => Ok(match compare::compare(config, args, out).await? {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(compare::EXIT_DIFFERENT),
        }),
        Command::Migrate(args) => compare::migrate(config, args, out)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Schedule(cmd) => Ok(match schedule::schedule(config, cmd, out).await? {
            commands::CreateOutcome::Complete => ExitCode::SUCCESS,
            commands::CreateOutcome::LeftOut => ExitCode::from(EXIT_LEFT_OUT),
        }),
        Command::Replicate(args) => schedule::replicate_cmd(config, args, out)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Status => Ok(match schedule::status(config, out).await? {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(1),
        }),
        // Answered in `main` before any config is read.
        Command::Completions(_) | Command::Man(_) => Ok(ExitCode::SUCCESS),
        Command::Server(args) => milvus_backup_server::serve(
            args.apply(config),
            milvus_backup_server::ServeOptions { port: args.port },
        )
        .await
        .map(|_| ExitCode::SUCCESS),
    }
}
