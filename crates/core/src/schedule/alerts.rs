//! Webhook alerts (`backup_strategy.alerts.webhook`): a JSON POST that
//! Slack accepts (`{"text": ...}`) with structured fields beside it, on a
//! failed backup, a backup with collections left out, a failed or corrupt
//! verification, an RPO breach and a failed secondary copy. Sent in the background with retries and backoff,
//! never blocking a run; the text is scrubbed of every configured secret
//! and the payload never carries configuration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::config::scrub;

/// Attempts per alert (then it is logged and dropped).
const ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    BackupFailed,
    /// A backup completed with collections left out (schema without rows).
    BackupPartial,
    VerificationFailed,
    BackupCorrupt,
    RpoBreach,
    SecondaryCopyFailed,
}

impl AlertEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::BackupFailed => "backup_failed",
            AlertEvent::BackupPartial => "backup_partial",
            AlertEvent::VerificationFailed => "verification_failed",
            AlertEvent::BackupCorrupt => "backup_corrupt",
            AlertEvent::RpoBreach => "rpo_breach",
            AlertEvent::SecondaryCopyFailed => "secondary_copy_failed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Slack's field: one line for people.
    pub text: String,
    pub event: AlertEvent,
    pub severity: &'static str,
    /// Policy, backup, collection, task … as known.
    pub fields: BTreeMap<String, String>,
    /// RFC 3339.
    pub time: String,
    pub source: String,
}

impl Alert {
    pub fn new(event: AlertEvent, text: impl Into<String>) -> Alert {
        Alert {
            text: text.into(),
            event,
            severity: match event {
                AlertEvent::BackupFailed | AlertEvent::BackupCorrupt | AlertEvent::RpoBreach => {
                    "critical"
                }
                _ => "warning",
            },
            fields: BTreeMap::new(),
            time: chrono::Utc::now().to_rfc3339(),
            source: "milvus-backup".into(),
        }
    }

    pub fn field(mut self, name: &str, value: impl Into<String>) -> Alert {
        self.fields.insert(name.to_string(), value.into());
        self
    }
}

/// Sends alerts to the webhook, if one is configured.
#[derive(Clone)]
pub struct Alerter {
    url: Option<String>,
    client: reqwest::Client,
    secrets: Vec<String>,
    /// Alerts delivered and given up, for the metrics.
    pub counts: Arc<Mutex<BTreeMap<(&'static str, &'static str), u64>>>,
    backoff: Duration,
    /// Deliveries still going, for [`Alerter::flush`].
    pending: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Alerter {
    pub fn new(url: Option<String>, secrets: Vec<String>) -> Alerter {
        Alerter {
            url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect(),
            counts: Arc::default(),
            backoff: Duration::from_secs(1),
            pending: Arc::default(),
        }
    }

    /// Shorter waits between attempts (tests).
    pub fn with_backoff(mut self, first: Duration) -> Alerter {
        self.backoff = first;
        self
    }

    /// Queues the alert and returns at once; it is retried with backoff
    /// (1 s, 2 s, 4 s, 8 s) on the current runtime.
    pub fn send(&self, mut alert: Alert) {
        let Some(url) = self.url.clone() else {
            return;
        };
        alert.text = scrub::mask(&alert.text, &self.secrets);
        for v in alert.fields.values_mut() {
            *v = scrub::mask(v, &self.secrets);
        }
        let (client, counts, backoff) = (self.client.clone(), self.counts.clone(), self.backoff);
        let delivery = tokio::spawn(async move {
            let event = alert.event.as_str();
            let body = serde_json::to_vec(&alert).unwrap_or_default();
            let mut wait = backoff;
            for attempt in 1..=ATTEMPTS {
                match client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        *counts.lock().unwrap().entry((event, "sent")).or_default() += 1;
                        return;
                    }
                    Ok(r) => tracing::warn!(
                        "alert {event}: the webhook answered {} (attempt {attempt} of {ATTEMPTS})",
                        r.status()
                    ),
                    Err(e) => tracing::warn!(
                        "alert {event}: the webhook failed: {} (attempt {attempt} of {ATTEMPTS})",
                        e.without_url()
                    ),
                }
                if attempt < ATTEMPTS {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
            *counts.lock().unwrap().entry((event, "failed")).or_default() += 1;
        });
        let mut pending = self.pending.lock().unwrap();
        pending.retain(|d| !d.is_finished());
        pending.push(delivery);
    }

    /// Waits (at most `within`) until every alert sent so far is delivered
    /// or given up: a process about to exit (a run in the foreground)
    /// would drop them.
    pub async fn flush(&self, within: Duration) {
        let pending: Vec<_> = std::mem::take(&mut *self.pending.lock().unwrap());
        let _ = tokio::time::timeout(within, futures::future::join_all(pending)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn alerts_are_retried_until_the_receiver_takes_them_and_carry_no_secret() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = tokio::spawn(async move {
            let mut answered = 0;
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 65536];
                let mut n = 0;
                // Read until the body is in (headers + JSON end with `}`).
                loop {
                    let k = sock.read(&mut buf[n..]).await.unwrap();
                    n += k;
                    if k == 0 || buf[..n].ends_with(b"}") {
                        break;
                    }
                }
                answered += 1;
                if answered == 1 {
                    let _ = sock
                        .write_all(b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    continue;
                }
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                return String::from_utf8_lossy(&buf[..n]).to_string();
            }
        });
        let a = Alerter::new(Some(url), vec!["hunter2secret".into()])
            .with_backoff(Duration::from_millis(50));
        a.send(
            Alert::new(
                AlertEvent::BackupFailed,
                "backup failed: password hunter2secret refused",
            )
            .field("policy", "full"),
        );
        let body = tokio::time::timeout(Duration::from_secs(10), got)
            .await
            .unwrap()
            .unwrap();
        assert!(
            body.contains("\"text\":\"backup failed: password **** refused\""),
            "{body}"
        );
        assert!(body.contains("\"event\":\"backup_failed\""), "{body}");
        assert!(!body.contains("hunter2secret"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            a.counts.lock().unwrap().get(&("backup_failed", "sent")),
            Some(&1)
        );
    }
}
