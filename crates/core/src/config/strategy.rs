//! The user guide's `backup_strategy:` block, read as written, plus ours:
//!
//! ```yaml
//! backup_strategy:
//!   full_backup:        { schedule: "0 2 * * 0",   retention: 4 }
//!   incremental_backup: { schedule: "0 2 * * 1-6", retention: 7, auto_full_ratio: 0.5 }
//!   storage:
//!     primary: s3://backups-us-west/
//!     secondary: { uri: s3://backups-eu-central/, endpoint: "http://10.0.0.9:9000",
//!                  accessKeyID: k, secretAccessKey: s, region: eu-central-1, useSSL: false }
//!   verification: { enabled: true, schedule: "0 3 * * *", restore_test: false }
//!   collections: [docs, db1.images]     # or filter: "db1.*"; default: all
//!   timezone: UTC                       # or Asia/Shanghai, +08:00
//!   rpo: 24h
//!   catchup: 6h
//!   alerts: { webhook: "https://hooks.slack.com/services/..." }
//! ```
//!
//! Every mistake is one line naming the key (`backup_strategy.full_backup.schedule`).

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde_yaml::Value;

use crate::config::age::parse_age;
use crate::config::{Config, Secret};
use crate::error::{Error, Result};
use crate::model::selection::Selection;

/// What a scheduled run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    Full,
    Incremental,
    Verification,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 3] = [
        PolicyKind::Full,
        PolicyKind::Incremental,
        PolicyKind::Verification,
    ];

    /// The policy's name: the prefix of its backups' names.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Full => "full",
            PolicyKind::Incremental => "incremental",
            PolicyKind::Verification => "verification",
        }
    }

    /// Its key under `backup_strategy`.
    pub fn key(self) -> &'static str {
        match self {
            PolicyKind::Full => "full_backup",
            PolicyKind::Incremental => "incremental_backup",
            PolicyKind::Verification => "verification",
        }
    }

    /// `full`, `incremental`, `verification` (or their keys).
    pub fn parse(text: &str) -> Result<PolicyKind> {
        PolicyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text.trim() || k.key() == text.trim())
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "`{text}` is not a schedule — use full, incremental or verification"
                ))
            })
    }

    /// Whether `name` is a backup this policy made (`<policy>_YYYYMMDD_HHMMSS`).
    pub fn made(self, name: &str) -> bool {
        name.strip_prefix(self.as_str())
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|stamp| {
                let b = stamp.as_bytes();
                b.len() >= 15
                    && b[..8].iter().all(u8::is_ascii_digit)
                    && b[8] == b'_'
                    && b[9..15].iter().all(u8::is_ascii_digit)
            })
    }

    /// The name of a run that starts at `at`: `<policy>_<YYYYMMDD_HHMMSS>` (UTC).
    pub fn run_name(self, at: DateTime<Utc>) -> String {
        format!("{}_{}", self.as_str(), at.format("%Y%m%d_%H%M%S"))
    }
}

/// A time zone for schedules: UTC, a fixed offset or an IANA name.
#[derive(Debug, Clone, Copy)]
pub enum Zone {
    Utc,
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl Zone {
    fn parse(text: &str) -> Option<Zone> {
        let t = text.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Some(Zone::Utc);
        }
        let offset = t
            .strip_prefix("UTC")
            .or_else(|| t.strip_prefix("GMT"))
            .unwrap_or(t);
        if let Some(sign) = offset.chars().next().filter(|c| *c == '+' || *c == '-') {
            let rest = &offset[1..];
            let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
            let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
            let secs = (h * 3600 + m * 60) * if sign == '-' { -1 } else { 1 };
            return FixedOffset::east_opt(secs).map(Zone::Fixed);
        }
        t.parse::<chrono_tz::Tz>().ok().map(Zone::Named)
    }
}

/// A five-field cron expression in the strategy's time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub expr: String,
    cron: croner::Cron,
    zone: Zone,
}

impl Schedule {
    pub fn parse(expr: &str, zone: Zone) -> std::result::Result<Schedule, String> {
        let fields = expr.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "`{expr}` has {fields} field(s) — a schedule is five-field cron: minute hour day-of-month month day-of-week, e.g. \"0 2 * * 0\""
            ));
        }
        let cron: croner::Cron = expr
            .parse()
            .map_err(|e| format!("`{expr}` is not valid cron: {e}"))?;
        Ok(Schedule {
            expr: expr.to_string(),
            cron,
            zone,
        })
    }

    /// The first time after `t` the schedule fires.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.zone {
            Zone::Utc => self.cron.find_next_occurrence(&t, false).ok(),
            Zone::Fixed(z) => self
                .cron
                .find_next_occurrence(&t.with_timezone(&z), false)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            Zone::Named(z) => self
                .cron
                .find_next_occurrence(&t.with_timezone(&z), false)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
        }
    }

    /// The last time at or before `t` the schedule fired.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.zone {
            Zone::Utc => self.cron.find_previous_occurrence(&t, true).ok(),
            Zone::Fixed(z) => self
                .cron
                .find_previous_occurrence(&t.with_timezone(&z), true)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            Zone::Named(z) => self
                .cron
                .find_previous_occurrence(&t.with_timezone(&z), true)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
        }
    }
}

/// `full_backup` or `incremental_backup`.
#[derive(Debug, Clone)]
pub struct BackupPolicy {
    pub kind: PolicyKind,
    pub schedule: Schedule,
    /// Keep this many of the policy's own backups (0: keep all).
    pub retention: u32,
    /// Incremental only: take a full backup instead when the bytes changed
    /// since the base exceed this share of the base.
    pub auto_full_ratio: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct VerificationPolicy {
    pub schedule: Schedule,
    pub restore_test: bool,
    /// Verify a backup again after this long even when nothing about it
    /// changed (bit rot keeps sizes).
    pub reverify_after: Duration,
}

/// Another backup storage: a URI on backup storage's service, or the
/// expanded form naming another service.
#[derive(Debug, Clone)]
pub struct StorageTarget {
    /// `backup_strategy.storage.secondary`.
    pub key: String,
    pub uri: String,
    storage_type: String,
    bucket: String,
    root: String,
    endpoint: Option<(String, u16, Option<bool>)>,
    access_key_id: Option<String>,
    secret_access_key: Option<Secret>,
    region: Option<String>,
    use_ssl: Option<bool>,
}

impl StorageTarget {
    /// The configuration whose backup storage is this target.
    pub fn apply(&self, config: &Config) -> Config {
        let mut c = config.clone();
        let m = &mut c.minio;
        m.backup_storage_type = self.storage_type.clone();
        m.backup_bucket_name = self.bucket.clone();
        m.backup_root_path = self.root.clone();
        if let Some((host, port, ssl)) = &self.endpoint {
            m.backup_address = host.clone();
            m.backup_port = *port;
            if let Some(ssl) = ssl {
                m.backup_use_ssl = Some(*ssl);
            }
        }
        if let Some(k) = &self.access_key_id {
            m.backup_access_key_id = k.clone();
        }
        if let Some(s) = &self.secret_access_key {
            m.backup_secret_access_key = s.clone();
        }
        if let Some(r) = &self.region {
            m.backup_region = r.clone();
        }
        if let Some(ssl) = self.use_ssl {
            m.backup_use_ssl = Some(ssl);
        }
        c
    }

    /// Secrets to keep out of messages.
    pub fn secrets(&self) -> Vec<String> {
        self.secret_access_key
            .iter()
            .map(|s| s.expose().to_string())
            .filter(|s| s.len() >= 4)
            .collect()
    }
}

/// The parsed `backup_strategy` block.
#[derive(Debug, Clone)]
pub struct Strategy {
    pub full: Option<BackupPolicy>,
    pub incremental: Option<BackupPolicy>,
    pub verification: Option<VerificationPolicy>,
    pub primary: Option<StorageTarget>,
    pub secondary: Option<StorageTarget>,
    pub selection: Selection,
    pub timezone: String,
    pub rpo: Option<Duration>,
    pub catchup: Option<Duration>,
    pub webhook: Option<String>,
    /// How long the scheduler's lease lasts unless renewed.
    pub lease: Duration,
    /// Keys not understood (warned about, never fatal).
    pub warnings: Vec<String>,
}

impl Strategy {
    /// The strategy of a configuration, `None` when it has none.
    pub fn from_config(config: &Config) -> Result<Option<Strategy>> {
        match &config.backup_strategy {
            None | Some(Value::Null) => Ok(None),
            Some(v) => parse(v, config).map(Some),
        }
    }

    pub fn backup_policy(&self, kind: PolicyKind) -> Option<&BackupPolicy> {
        match kind {
            PolicyKind::Full => self.full.as_ref(),
            PolicyKind::Incremental => self.incremental.as_ref(),
            PolicyKind::Verification => None,
        }
    }

    /// The schedule of a policy, when the strategy has it.
    pub fn schedule(&self, kind: PolicyKind) -> Option<&Schedule> {
        match kind {
            PolicyKind::Verification => self.verification.as_ref().map(|v| &v.schedule),
            k => self.backup_policy(k).map(|p| &p.schedule),
        }
    }

    /// The configuration scheduled runs use: backup storage is `primary`
    /// when the strategy names one.
    pub fn primary_config(&self, config: &Config) -> Config {
        match &self.primary {
            Some(p) => p.apply(config),
            None => config.clone(),
        }
    }

    /// The configuration whose backup storage is the secondary.
    pub fn secondary_config(&self, config: &Config) -> Option<Config> {
        self.secondary.as_ref().map(|s| s.apply(config))
    }

    /// Whether a backup name is one the strategy's backup policies made.
    pub fn made(&self, name: &str) -> bool {
        PolicyKind::Full.made(name) || PolicyKind::Incremental.made(name)
    }
}

/// Config for a `--storage primary|secondary` flag: the configuration whose
/// backup storage is that side of the strategy.
pub fn config_for_storage(config: &Config, which: &str) -> Result<Config> {
    match which.trim() {
        "" | "default" => Ok(config.clone()),
        "primary" | "secondary" => {
            let strategy = Strategy::from_config(config)?.ok_or_else(|| {
                Error::invalid_input(format!(
                    "--storage {which}: the configuration has no backup_strategy.storage — add backup_strategy.storage.{which} to the config file"
                ))
            })?;
            if which == "primary" {
                return Ok(strategy.primary_config(config));
            }
            strategy.secondary_config(config).ok_or_else(|| {
                Error::invalid_input(
                    "--storage secondary: backup_strategy.storage.secondary is not set",
                )
            })
        }
        other => Err(Error::invalid_input(format!(
            "--storage `{other}` is not valid — allowed: primary, secondary"
        ))),
    }
}

fn bad(key: &str, what: impl std::fmt::Display) -> Error {
    Error::invalid_input(format!("config key `{key}`: {what}"))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get<'a>(m: &'a serde_yaml::Mapping, name: &str) -> Option<&'a Value> {
    m.get(Value::String(name.to_string()))
        .filter(|v| !v.is_null())
}

fn mapping<'a>(v: &'a Value, key: &str) -> Result<&'a serde_yaml::Mapping> {
    v.as_mapping()
        .ok_or_else(|| bad(key, "must be a mapping of keys"))
}

fn string(m: &serde_yaml::Mapping, key: &str, name: &str) -> Result<Option<String>> {
    match get(m, name) {
        None => Ok(None),
        Some(v) => text(v)
            .map(|s| Some(s.trim().to_string()))
            .ok_or_else(|| bad(&format!("{key}.{name}"), "must be a single value")),
    }
}

fn boolean(m: &serde_yaml::Mapping, key: &str, name: &str) -> Result<Option<bool>> {
    match string(m, key, name)? {
        None => Ok(None),
        Some(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Some(true)),
            "false" | "no" | "off" | "0" => Ok(Some(false)),
            _ => Err(bad(
                &format!("{key}.{name}"),
                format!("`{s}` is not valid — allowed: true, false"),
            )),
        },
    }
}

fn duration(m: &serde_yaml::Mapping, key: &str, name: &str) -> Result<Option<Duration>> {
    match string(m, key, name)? {
        None => Ok(None),
        Some(s) => parse_age(&s)
            .map(|secs| Some(Duration::from_secs(secs)))
            .map_err(|_| {
                bad(
                    &format!("{key}.{name}"),
                    format!("`{s}` is not a duration — use e.g. 90s, 30m, 24h, 7d"),
                )
            }),
    }
}

fn unknown(m: &serde_yaml::Mapping, key: &str, known: &[&str], out: &mut Vec<String>) {
    for k in m.keys() {
        let name = text(k).unwrap_or_default();
        if !known.contains(&name.as_str()) {
            out.push(format!("unknown config key `{key}.{name}` is ignored"));
        }
    }
}

fn parse(v: &Value, config: &Config) -> Result<Strategy> {
    const ROOT: &str = "backup_strategy";
    let m = mapping(v, ROOT)?;
    let mut warnings = Vec::new();
    unknown(
        m,
        ROOT,
        &[
            "full_backup",
            "incremental_backup",
            "storage",
            "verification",
            "collections",
            "filter",
            "timezone",
            "rpo",
            "catchup",
            "alerts",
            "lease",
        ],
        &mut warnings,
    );
    let timezone = string(m, ROOT, "timezone")?.unwrap_or_else(|| "UTC".into());
    let zone = Zone::parse(&timezone).ok_or_else(|| {
        bad(
            "backup_strategy.timezone",
            format!("`{timezone}` is not a time zone — use UTC, an offset such as +08:00, or a name such as Asia/Shanghai"),
        )
    })?;
    let full = backup_policy(m, zone, PolicyKind::Full, &mut warnings)?;
    let incremental = backup_policy(m, zone, PolicyKind::Incremental, &mut warnings)?;
    let verification = verification_policy(m, zone, &mut warnings)?;
    let (primary, secondary) = storage_targets(m, config, &mut warnings)?;
    let selection = Selection {
        collections: name_list(m, "collections")?,
        filter: name_list(m, "filter")?,
        ..Default::default()
    };
    for c in &selection.collections {
        crate::model::selection::CollectionRef::parse_checked(c)
            .map_err(|e| bad("backup_strategy.collections", e.message()))?;
    }
    let webhook = webhook(m, &mut warnings)?;
    Ok(Strategy {
        full,
        incremental,
        verification,
        primary,
        secondary,
        selection,
        timezone,
        rpo: duration(m, ROOT, "rpo")?,
        catchup: duration(m, ROOT, "catchup")?,
        webhook,
        lease: duration(m, ROOT, "lease")?.unwrap_or(Duration::from_secs(60)),
        warnings,
    })
}

/// `full_backup` or `incremental_backup`: `None` when absent or disabled.
fn backup_policy(
    m: &serde_yaml::Mapping,
    zone: Zone,
    kind: PolicyKind,
    warnings: &mut Vec<String>,
) -> Result<Option<BackupPolicy>> {
    const ROOT: &str = "backup_strategy";
    let Some(pv) = get(m, kind.key()) else {
        return Ok(None);
    };
    let key = format!("{ROOT}.{}", kind.key());
    let pm = mapping(pv, &key)?;
    let mut known = vec!["schedule", "retention", "enabled"];
    if kind == PolicyKind::Incremental {
        known.push("auto_full_ratio");
    }
    unknown(pm, &key, &known, warnings);
    if boolean(pm, &key, "enabled")? == Some(false) {
        return Ok(None);
    }
    let expr = string(pm, &key, "schedule")?.ok_or_else(|| {
        bad(
            &format!("{key}.schedule"),
            "is missing — e.g. \"0 2 * * 0\"",
        )
    })?;
    let schedule = Schedule::parse(&expr, zone).map_err(|e| bad(&format!("{key}.schedule"), e))?;
    let retention = match string(pm, &key, "retention")? {
        None => 0,
        Some(s) => s.parse::<u32>().map_err(|_| {
            bad(
                &format!("{key}.retention"),
                format!("`{s}` is not a count of backups to keep (0: keep all)"),
            )
        })?,
    };
    let auto_full_ratio = match string(pm, &key, "auto_full_ratio")? {
        None => None,
        Some(s) => Some(
            s.parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0 && r.is_finite())
                .ok_or_else(|| {
                    bad(
                        &format!("{key}.auto_full_ratio"),
                        format!("`{s}` is not a positive ratio, e.g. 0.5"),
                    )
                })?,
        ),
    };
    Ok(Some(BackupPolicy {
        kind,
        schedule,
        retention,
        auto_full_ratio,
    }))
}

/// `verification`: `None` when absent or disabled.
fn verification_policy(
    m: &serde_yaml::Mapping,
    zone: Zone,
    warnings: &mut Vec<String>,
) -> Result<Option<VerificationPolicy>> {
    const ROOT: &str = "backup_strategy";
    Ok(match get(m, "verification") {
        None => None,
        Some(vv) => {
            let key = format!("{ROOT}.verification");
            let vm = mapping(vv, &key)?;
            unknown(
                vm,
                &key,
                &["enabled", "schedule", "restore_test", "reverify_after"],
                warnings,
            );
            if boolean(vm, &key, "enabled")? == Some(false) {
                None
            } else {
                let expr = string(vm, &key, "schedule")?.ok_or_else(|| {
                    bad(
                        &format!("{key}.schedule"),
                        "is missing — e.g. \"0 3 * * *\"",
                    )
                })?;
                Some(VerificationPolicy {
                    schedule: Schedule::parse(&expr, zone)
                        .map_err(|e| bad(&format!("{key}.schedule"), e))?,
                    restore_test: boolean(vm, &key, "restore_test")?.unwrap_or(false),
                    reverify_after: duration(vm, &key, "reverify_after")?
                        .unwrap_or(Duration::from_secs(7 * 86400)),
                })
            }
        }
    })
}

/// `storage`: the primary and secondary backup storages, where given.
fn storage_targets(
    m: &serde_yaml::Mapping,
    config: &Config,
    warnings: &mut Vec<String>,
) -> Result<(Option<StorageTarget>, Option<StorageTarget>)> {
    const ROOT: &str = "backup_strategy";
    let (mut primary, mut secondary) = (None, None);
    if let Some(sv) = get(m, "storage") {
        let key = format!("{ROOT}.storage");
        let sm = mapping(sv, &key)?;
        unknown(sm, &key, &["primary", "secondary"], warnings);
        if let Some(p) = get(sm, "primary") {
            primary = Some(target(p, &format!("{key}.primary"), config)?);
        }
        if let Some(s) = get(sm, "secondary") {
            secondary = Some(target(s, &format!("{key}.secondary"), config)?);
        }
    }
    Ok((primary, secondary))
}

/// `collections` or `filter`: a list, or a comma-separated string.
fn name_list(m: &serde_yaml::Mapping, name: &str) -> Result<Vec<String>> {
    const ROOT: &str = "backup_strategy";
    match get(m, name) {
        None => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| {
                text(i)
                    .map(|s| s.trim().to_string())
                    .ok_or_else(|| bad(&format!("{ROOT}.{name}"), "must list names"))
            })
            .collect(),
        Some(v) => text(v)
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .ok_or_else(|| {
                bad(
                    &format!("{ROOT}.{name}"),
                    "must be a list or a comma-separated string",
                )
            }),
    }
}

/// `alerts.webhook`: an http(s) URL, where given.
fn webhook(m: &serde_yaml::Mapping, warnings: &mut Vec<String>) -> Result<Option<String>> {
    const ROOT: &str = "backup_strategy";
    Ok(match get(m, "alerts") {
        None => None,
        Some(av) => {
            let key = format!("{ROOT}.alerts");
            let am = mapping(av, &key)?;
            unknown(am, &key, &["webhook"], warnings);
            let url = match get(am, "webhook") {
                Some(Value::Mapping(wm)) => string(wm, &format!("{key}.webhook"), "url")?,
                Some(_) => string(am, &key, "webhook")?,
                None => None,
            };
            match url {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => Some(u),
                Some(u) if !u.is_empty() => {
                    return Err(bad(
                        "backup_strategy.alerts.webhook",
                        format!("`{u}` is not an http:// or https:// URL"),
                    ))
                }
                _ => None,
            }
        }
    })
}

/// The storage type a URI scheme names: `s3://` is the configured S3-like
/// type unless the target brings its own endpoint (`minio`), or `s3`.
fn storage_type_of(scheme: &str, configured: &str, expanded: bool, key: &str) -> Result<String> {
    Ok(match scheme.to_ascii_lowercase().as_str() {
        "s3" | "minio" => {
            if ["minio", "s3", "aws"].contains(&configured) && !expanded {
                configured.to_string()
            } else if expanded {
                "minio".to_string()
            } else {
                "s3".to_string()
            }
        }
        "gs" | "gcs" => "gcp".into(),
        "az" | "azure" => "azure".into(),
        "oss" => "ali".into(),
        "cos" => "tc".into(),
        "file" => "local".into(),
        other => {
            return Err(bad(
                key,
                format!("URI scheme `{other}://` is not supported — use s3://, gs://, az://, oss://, cos:// or file:///"),
            ))
        }
    })
}

/// `http(s)://host:port` (or `host[:port]`): host, port, and TLS where the
/// scheme says.
fn endpoint(ep: &str, key: &str) -> Result<(String, u16, Option<bool>)> {
    let (ssl, hostport) = match ep.split_once("://") {
        Some(("https", h)) => (Some(true), h),
        Some(("http", h)) => (Some(false), h),
        Some((s, _)) => {
            return Err(bad(
                &format!("{key}.endpoint"),
                format!("scheme `{s}` is not http or https"),
            ))
        }
        None => (None, ep),
    };
    let hostport = hostport.trim_end_matches('/');
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse::<u16>()
                .map_err(|_| bad(&format!("{key}.endpoint"), format!("`{p}` is not a port")))?,
        ),
        None => (
            hostport.to_string(),
            if ssl == Some(true) { 443 } else { 80 },
        ),
    };
    Ok((host, port, ssl))
}

/// A storage URI (or its expanded form) as the configuration of a backup storage.
fn target(v: &Value, key: &str, config: &Config) -> Result<StorageTarget> {
    let (uri, expanded) = match v {
        Value::Mapping(mm) => {
            unknown(
                mm,
                key,
                &[
                    "uri",
                    "endpoint",
                    "accessKeyID",
                    "secretAccessKey",
                    "region",
                    "useSSL",
                ],
                &mut Vec::new(),
            );
            let uri = string(mm, key, "uri")?
                .ok_or_else(|| bad(&format!("{key}.uri"), "is missing — e.g. s3://bucket/path/"))?;
            (uri, Some(mm))
        }
        other => (
            text(other).ok_or_else(|| bad(key, "must be a URI such as s3://bucket/path/"))?,
            None,
        ),
    };
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        bad(
            key,
            format!("`{uri}` is not a URI — use e.g. s3://bucket/path/"),
        )
    })?;
    let configured = if config.minio.backup_storage_type.is_empty() {
        config.minio.storage_type.as_str()
    } else {
        config.minio.backup_storage_type.as_str()
    };
    let storage_type = storage_type_of(scheme, configured, expanded.is_some(), key)?;
    let (bucket, root) = if storage_type == "local" {
        (String::new(), rest.to_string())
    } else {
        let (b, r) = rest.split_once('/').unwrap_or((rest, ""));
        if b.is_empty() {
            return Err(bad(
                key,
                format!("`{uri}` names no bucket — use e.g. s3://bucket/path/"),
            ));
        }
        (b.to_string(), r.trim_matches('/').to_string())
    };
    let mut t = StorageTarget {
        key: key.to_string(),
        uri: uri.clone(),
        storage_type,
        bucket,
        root,
        endpoint: None,
        access_key_id: None,
        secret_access_key: None,
        region: None,
        use_ssl: None,
    };
    if let Some(mm) = expanded {
        if let Some(ep) = string(mm, key, "endpoint")? {
            t.endpoint = Some(endpoint(&ep, key)?);
        }
        t.access_key_id = string(mm, key, "accessKeyID")?;
        t.secret_access_key = string(mm, key, "secretAccessKey")?.map(Secret::new);
        t.region = string(mm, key, "region")?;
        t.use_ssl = boolean(mm, key, "useSSL")?;
        if t.endpoint.is_some() && t.storage_type != "local" {
            if t.access_key_id.as_deref().unwrap_or("").is_empty() {
                return Err(bad(
                    &format!("{key}.accessKeyID"),
                    "is missing — another service needs its own credentials",
                ));
            }
            if t.secret_access_key.as_ref().is_none_or(|s| s.is_empty()) {
                return Err(bad(
                    &format!("{key}.secretAccessKey"),
                    "is missing — another service needs its own credentials",
                ));
            }
        }
    } else if t.storage_type != "local"
        && !config.minio.backup_use_iam.unwrap_or(config.minio.use_iam)
        && config.minio.backup_access_key_id.is_empty()
    {
        return Err(bad(
            key,
            "uses backup storage's credentials, but minio.backupAccessKeyID is empty — set it, or give this storage its own accessKeyID and secretAccessKey",
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(yaml: &str) -> Result<Strategy> {
        let mut c = Config::default();
        c.minio.backup_access_key_id = "minioadmin".into();
        c.minio.storage_type = "minio".into();
        let v: Value = serde_yaml::from_str(yaml).unwrap();
        c.backup_strategy = v.get("backup_strategy").cloned();
        Strategy::from_config(&c).map(|s| s.unwrap())
    }

    #[test]
    fn the_guides_block_reads_as_written() {
        let s = strategy(
            r#"
backup_strategy:
  full_backup:        { schedule: "0 2 * * 0",   retention: 4 }
  incremental_backup: { schedule: "0 2 * * 1-6", retention: 7 }
  storage:
    primary: s3://backups-us-west/
    secondary: s3://backups-eu-central/
  verification: { enabled: true, schedule: "0 3 * * *" }
"#,
        )
        .unwrap();
        assert_eq!(s.full.as_ref().unwrap().retention, 4);
        assert_eq!(s.incremental.as_ref().unwrap().retention, 7);
        assert_eq!(s.verification.as_ref().unwrap().schedule.expr, "0 3 * * *");
        let c = s.secondary_config(&Config::default()).unwrap();
        assert_eq!(c.minio.backup_bucket_name, "backups-eu-central");
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        // Sunday 2026-12-06 02:00 UTC is the next full backup after Wednesday.
        let wed: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        let next = s.full.unwrap().schedule.next_after(wed).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-12-06T02:00:00+00:00");
    }

    #[test]
    fn mistakes_name_the_key() {
        let e =
            strategy("backup_strategy: { full_backup: { schedule: \"0 2 * *\" } }").unwrap_err();
        assert!(
            e.message().contains("backup_strategy.full_backup.schedule"),
            "{e}"
        );
        let e = strategy("backup_strategy: { storage: { secondary: ftp://x/ } }").unwrap_err();
        assert!(
            e.message().contains("backup_strategy.storage.secondary"),
            "{e}"
        );
        assert!(e.message().contains("ftp://"), "{e}");
        let e = strategy(
            "backup_strategy: { storage: { secondary: { uri: s3://b/, endpoint: 'http://h:1', accessKeyID: k } } }",
        )
        .unwrap_err();
        assert!(
            e.message()
                .contains("backup_strategy.storage.secondary.secretAccessKey"),
            "{e}"
        );
        let e = strategy("backup_strategy: { rpo: soon }").unwrap_err();
        assert!(e.message().contains("backup_strategy.rpo"), "{e}");
        let e = strategy("backup_strategy: { timezone: Mars/Olympus }").unwrap_err();
        assert!(e.message().contains("backup_strategy.timezone"), "{e}");
    }

    #[test]
    fn our_additions_and_the_expanded_storage_form() {
        let s = strategy(
            r#"
backup_strategy:
  incremental_backup: { schedule: "*/5 * * * *", retention: 3, auto_full_ratio: 0.5 }
  storage:
    secondary: { uri: "s3://other/root/x", endpoint: "http://10.0.0.9:9001", accessKeyID: k2, secretAccessKey: s2, region: eu }
  collections: [docs, db1.images]
  timezone: Asia/Shanghai
  rpo: 24h
  catchup: 6h
  alerts: { webhook: "http://127.0.0.1:1/hook" }
"#,
        )
        .unwrap();
        assert_eq!(s.incremental.as_ref().unwrap().auto_full_ratio, Some(0.5));
        assert_eq!(s.rpo, Some(Duration::from_secs(86400)));
        assert_eq!(s.selection.collections, vec!["docs", "db1.images"]);
        let c = s.secondary_config(&Config::default()).unwrap();
        assert_eq!(c.minio.backup_address, "10.0.0.9");
        assert_eq!(c.minio.backup_port, 9001);
        assert_eq!(c.minio.backup_bucket_name, "other");
        assert_eq!(c.minio.backup_root_path, "root/x");
        assert_eq!(c.minio.backup_secret_access_key.expose(), "s2");
        assert_eq!(s.secondary.unwrap().secrets(), Vec::<String>::new());
        assert!(PolicyKind::Full.made("full_20261202_100000"));
        assert!(!PolicyKind::Full.made("full_backup"));
        let at: DateTime<Utc> = "2026-12-02T10:00:05Z".parse().unwrap();
        assert_eq!(
            PolicyKind::Incremental.run_name(at),
            "incremental_20261202_100005"
        );
    }
}
