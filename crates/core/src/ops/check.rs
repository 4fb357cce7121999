//! `check`: is everything the tool needs reachable and working?
//!
//! Steps, each reported OK / WARN / FAIL / SKIP with its reason: connect to
//! Milvus and read its version; list Milvus's root path (warn when empty);
//! open backup storage; write a probe object to Milvus storage, copy it to
//! backup storage, read it back, compare, and delete both copies.
//!
//! A config that names no storage for Milvus's own files (the user guide's)
//! makes logical backups, which never touch it: that step is skipped, and
//! the probe is written to, read from and deleted in backup storage alone.

use serde::Serialize;

use crate::context::Endpoints;
use crate::milvus::{Milvus, MilvusClient};
use crate::model::layout;
use crate::storage::Storage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StepStatus {
    Ok,
    Warn,
    Fail,
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckStep {
    pub name: String,
    pub status: StepStatus,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub milvus_version: Option<String>,
    pub steps: Vec<CheckStep>,
}

impl CheckReport {
    /// True when no step failed (warnings and skips of optional steps allowed).
    pub fn passed(&self) -> bool {
        !self.steps.iter().any(|s| s.status == StepStatus::Fail)
    }

    fn push(&mut self, name: &str, status: StepStatus, detail: impl Into<String>) {
        self.steps.push(CheckStep {
            name: name.to_string(),
            status,
            detail: detail.into(),
        });
    }
}

/// Runs every check; never stops at the first failure unless later steps
/// depend on it (those are reported as SKIP).
pub async fn run(endpoints: Endpoints) -> CheckReport {
    let mut report = CheckReport::default();

    match MilvusClient::connect(&endpoints.milvus).await {
        Ok(client) => {
            report.push(
                "milvus",
                StepStatus::Ok,
                format!("Milvus {} at {}", client.version_text(), client.address()),
            );
            report.milvus_version = Some(client.version_text().to_string());
        }
        Err(e) => report.push("milvus", StepStatus::Fail, e.to_string()),
    }

    let Some(milvus_storage) = endpoints.milvus_storage else {
        report.push("milvus storage", StepStatus::Skip, NOT_CONFIGURED);
        if let Some(dst) = open_backup_storage(endpoints.backup_storage, &mut report).await {
            probe_backup_storage(&dst, &mut report).await;
        }
        return report;
    };
    let milvus_storage = match milvus_storage.and_then(Storage::open) {
        Ok(s) => match s.has_objects("").await {
            Ok(true) => {
                report.push(
                    "milvus storage",
                    StepStatus::Ok,
                    format!("{} root `{}` has data", s.spec().describe(), s.spec().root),
                );
                Some(s)
            }
            Ok(false) => {
                report.push(
                    "milvus storage",
                    StepStatus::Warn,
                    format!(
                        "{} root `{}` is empty — if Milvus already holds data, minio.bucketName/minio.rootPath do not match Milvus's own settings",
                        s.spec().describe(),
                        s.spec().root
                    ),
                );
                Some(s)
            }
            Err(e) => {
                report.push("milvus storage", StepStatus::Fail, e.to_string());
                None
            }
        },
        Err(e) => {
            report.push("milvus storage", StepStatus::Fail, e.to_string());
            None
        }
    };

    let backup_storage = open_backup_storage(endpoints.backup_storage, &mut report).await;

    let (Some(src), Some(dst)) = (milvus_storage, backup_storage) else {
        report.push("copy probe", StepStatus::Skip, "needs both storages");
        return report;
    };
    probe_copy(&src, &dst, &mut report).await;
    report
}

/// Why the step of Milvus's storage is skipped under the user guide's config.
pub const NOT_CONFIGURED: &str = "not configured: backups are logical (rows over gRPC)";

/// Opens backup storage and lists its root: the `backup storage` step.
async fn open_backup_storage(
    spec: crate::error::Result<crate::storage::StorageSpec>,
    report: &mut CheckReport,
) -> Option<Storage> {
    let reached = match spec.and_then(Storage::open) {
        Ok(s) => s.has_objects("").await.map(|_| s),
        Err(e) => Err(e),
    };
    match reached {
        Ok(s) => {
            report.push(
                "backup storage",
                StepStatus::Ok,
                format!(
                    "{} root `{}` is reachable",
                    s.spec().describe(),
                    s.spec().root
                ),
            );
            Some(s)
        }
        Err(e) => {
            report.push("backup storage", StepStatus::Fail, e.to_string());
            None
        }
    }
}

/// Write → read back → compare → delete, in backup storage alone (what a
/// logical backup does there).
async fn probe_backup_storage(dst: &Storage, report: &mut CheckReport) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let key = layout::probe_key(&id);
    let payload = probe_payload(&id);
    if !write_probe(dst, "backup storage", &key, &payload, report).await {
        return;
    }
    read_back(dst, &key, &payload, report).await;
    match dst.delete(&key).await {
        Ok(()) => report.push(
            "delete probe",
            StepStatus::Ok,
            "removed from backup storage",
        ),
        Err(e) => report.push(
            "delete probe",
            StepStatus::Fail,
            format!("backup storage: {e}"),
        ),
    }
}

/// The `write probe` step, into `side` (`Milvus storage`, `backup
/// storage`); whether it was written.
async fn write_probe(
    storage: &Storage,
    side: &str,
    key: &str,
    payload: &[u8],
    report: &mut CheckReport,
) -> bool {
    match storage.write(key, payload.to_vec()).await {
        Ok(()) => {
            report.push(
                "write probe",
                StepStatus::Ok,
                format!("{} bytes to {side} `{key}`", payload.len()),
            );
            true
        }
        Err(e) => {
            report.push("write probe", StepStatus::Fail, format!("to {side}: {e}"));
            false
        }
    }
}

fn probe_payload(id: &str) -> Vec<u8> {
    format!("milvus-backup check probe {id}\n")
        .repeat(64)
        .into_bytes()
}

/// The `read back` step: the probe at `key` holds `payload`.
async fn read_back(dst: &Storage, key: &str, payload: &[u8], report: &mut CheckReport) {
    match dst.read(key).await {
        Ok(data) if data == payload => report.push("read back", StepStatus::Ok, "content matches"),
        Ok(data) => report.push(
            "read back",
            StepStatus::Fail,
            format!(
                "content differs: wrote {} bytes, read {}",
                payload.len(),
                data.len()
            ),
        ),
        Err(e) => report.push("read back", StepStatus::Fail, e.to_string()),
    }
}

/// Write → copy → read back → compare → delete, between the two storages.
async fn probe_copy(src: &Storage, dst: &Storage, report: &mut CheckReport) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let key = layout::probe_key(&id);
    let payload = probe_payload(&id);
    if !write_probe(src, "Milvus storage", &key, &payload, report).await {
        return;
    }

    let copied = src.copy_to(&key, dst, &key).await;
    match &copied {
        Ok(outcome) => report.push(
            "copy probe",
            StepStatus::Ok,
            format!(
                "to backup storage ({})",
                if outcome.server_side {
                    "server-side copy"
                } else {
                    "streamed through this machine"
                }
            ),
        ),
        Err(e) => report.push(
            "copy probe",
            StepStatus::Fail,
            format!("to backup storage: {e}"),
        ),
    }

    if copied.is_ok() {
        read_back(dst, &key, &payload, report).await;
    }

    let mut problems = Vec::new();
    if let Err(e) = src.delete(&key).await {
        problems.push(format!("Milvus storage: {e}"));
    }
    if copied.is_ok() {
        if let Err(e) = dst.delete(&key).await {
            problems.push(format!("backup storage: {e}"));
        }
    }
    if problems.is_empty() {
        report.push("delete probe", StepStatus::Ok, "removed from both storages");
    } else {
        report.push("delete probe", StepStatus::Fail, problems.join("; "));
    }
}
