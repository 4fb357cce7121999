//! The status page at `/`: one HTML document rendered here (no front-end
//! build, no script), under the same token rule as the API. It shows each
//! collection's last backup, its age against the RPO and its verification
//! state (green, amber, red), the schedules with their next runs, running
//! tasks with progress, and the secondary's lag. It reloads itself every
//! 30 s. Elements carry `id`/`data-*` attributes for scripts and tests.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use milvus_backup_core::schedule::health::HealthReport;
use milvus_backup_core::schedule::scheduler::ScheduleStatus;

use crate::shared::Shared;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86400),
    }
}

fn time(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;min-width:640px}th,td{border:1px solid #ccc;padding:6px 10px;text-align:left;font-size:14px}
th{background:#f3f3f3}.dot{display:inline-block;width:12px;height:12px;border-radius:6px;margin-right:6px;vertical-align:middle}
.green{background:#2e7d32}.amber{background:#f9a825}.red{background:#c62828}
.overall{padding:8px 12px;color:#fff;display:inline-block;border-radius:4px}
.bar{background:#eee;width:160px;height:10px;display:inline-block}.bar span{display:block;height:10px;background:#1565c0}
.msg{color:#c62828}";

/// `GET /`: the status page.
pub async fn status_page(State(s): State<Shared>) -> Response {
    let mut h = String::new();
    h.push_str("<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"30\"><title>milvus-backup status</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body><h1>milvus-backup status</h1>");
    match &s.scheduler {
        None => h.push_str("<p id=\"no-strategy\">No <code>backup_strategy</code> is configured: nothing is scheduled.</p>"),
        Some(sched) => {
            let health = match sched.cached_health() {
                Some(r) => Some(r),
                None => sched.refresh_health().await,
            };
            if let Some(r) = &health {
                health_section(&mut h, r);
            }
            schedule_section(&mut h, &sched.status());
        }
    }
    h.push_str("<h2>Running tasks</h2><table id=\"tasks\"><tr><th>Task</th><th>Kind</th><th>Backup</th><th>Step</th><th>Progress</th></tr>");
    for r in s.tasks.all().iter().filter(|r| !r.state.is_terminal()) {
        h.push_str(&format!(
            "<tr class=\"task\" data-progress=\"{p}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"bar\"><span style=\"width:{p}%\"></span></span> {p} %</td></tr>",
            esc(&r.id),
            r.kind.as_str(),
            esc(&r.backup_name),
            esc(&r.step),
            p = r.progress
        ));
    }
    h.push_str("</table></body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], h).into_response()
}

/// The overall health, each collection and the secondary's lag.
fn health_section(h: &mut String, r: &HealthReport) {
    let color = match r.status {
        "ok" => "green",
        "warning" => "amber",
        _ => "red",
    };
    h.push_str(&format!(
        "<p><span id=\"overall\" class=\"overall {color}\" data-status=\"{}\">{}</span> checked {}{}</p>",
        r.status,
        r.status.to_uppercase(),
        time(r.checked_at),
        r.rpo_s
            .map(|x| format!(", RPO <span id=\"rpo\">{}</span>", esc(&milvus_backup_core::schedule::health::human(x))))
            .unwrap_or_default()
    ));
    for m in &r.messages {
        h.push_str(&format!("<p class=\"msg\">{}</p>", esc(m)));
    }
    h.push_str("<h2>Collections</h2><table id=\"collections\"><tr><th>Collection</th><th>Last backup</th><th>Age</th><th>RPO</th><th>Verification</th></tr>");
    for c in &r.collections {
        let verified = match c.verified_ok {
            Some(true) => format!("OK {}", c.last_verified_at.map(time).unwrap_or_default()),
            Some(false) => "DAMAGED".to_string(),
            None => "not verified".to_string(),
        };
        h.push_str(&format!(
            "<tr class=\"collection\" data-collection=\"{c_}\" data-status=\"{st}\" data-age=\"{a}\"><td><span class=\"dot {st}\"></span>{c_}</td><td class=\"last-backup\">{lb}</td><td class=\"age\">{age}</td><td class=\"rpo\">{rpo}</td><td class=\"verification\">{v}</td></tr>",
            c_ = esc(&c.collection),
            st = c.status,
            a = c.age_s.map(|x| x.to_string()).unwrap_or_default(),
            lb = esc(c.last_backup.as_deref().unwrap_or("none")),
            age = c.age_s.map(age).unwrap_or_else(|| "—".into()),
            rpo = esc(c.message.as_deref().unwrap_or(if c.rpo_ok { "within RPO" } else { "" })),
            v = esc(&verified),
        ));
    }
    h.push_str("</table>");
    if let Some(sec) = &r.secondary {
        h.push_str(&format!(
            "<h2>Secondary</h2><p id=\"secondary\" data-lag=\"{}\" data-missing=\"{}\">{}: {} backup(s), lag {}{}</p>",
            sec.lag_s,
            sec.missing.len(),
            esc(&sec.target),
            sec.backups,
            age(sec.lag_s),
            if sec.missing.is_empty() {
                String::new()
            } else {
                format!(", missing {}", esc(&sec.missing.join(", ")))
            }
        ));
    }
}

/// Who schedules, and each policy's next and last runs.
fn schedule_section(h: &mut String, status: &ScheduleStatus) {
    h.push_str(&format!(
        "<h2>Schedules</h2><p id=\"leader\" data-leader=\"{}\">{} (timezone {})</p><table id=\"schedules\"><tr><th>Policy</th><th>Schedule</th><th>Next run</th><th>Last run</th><th>Outcome</th><th>Runs / failed / skipped</th></tr>",
        status.leader,
        if status.leader { "this server schedules".to_string() } else { format!("scheduled by {}", esc(status.lease_holder.as_deref().unwrap_or("another server"))) },
        esc(&status.timezone)
    ));
    for p in &status.policies {
        let last = p.last_run.as_ref();
        h.push_str(&format!(
            "<tr class=\"policy\" data-policy=\"{}\"><td>{}</td><td><code>{}</code></td><td class=\"next-run\">{}</td><td>{}</td><td class=\"outcome\">{}</td><td>{} / {} / {}</td></tr>",
            p.policy,
            p.policy,
            esc(&p.schedule),
            p.next_run_at.map(|t| time(t as u64)).unwrap_or_default(),
            esc(last.map(|l| l.name.as_str()).unwrap_or("—")),
            esc(last.map(|l| l.outcome.as_str()).unwrap_or("—")),
            p.runs,
            p.failed,
            p.skipped
        ));
    }
    h.push_str("</table>");
}
