//! Pausing Milvus's garbage collection while files are copied, so binlogs
//! compacted away mid-backup are not deleted under us. Uses the management
//! HTTP port (`backup.gcPause.address`). Failure to pause is a warning.

use std::time::Duration;

use crate::config::GcPauseConfig;
use crate::events::{Emit, EventSink};

/// A running pause, renewed in the background until [`GcPause::resume`].
pub struct GcPause {
    client: reqwest::Client,
    address: String,
    renew: Option<tokio::task::JoinHandle<()>>,
}

impl GcPause {
    /// Asks Milvus to pause GC; warns (and carries on) when it cannot.
    pub async fn start(cfg: &GcPauseConfig, events: &dyn EventSink) -> GcPause {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .unwrap_or_default();
        let address = cfg.address.trim_end_matches('/').to_string();
        let mut pause = GcPause {
            client,
            address,
            renew: None,
        };
        let seconds = cfg.seconds.max(60);
        match pause.pause(seconds).await {
            Ok(()) => {
                let (client, address) = (pause.client.clone(), pause.address.clone());
                pause.renew = Some(tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(seconds / 2)).await;
                        let _ = pause_request(&client, &address, seconds).await;
                    }
                }));
            }
            Err(e) => events.warn(format!(
                "could not pause Milvus garbage collection at {} ({e}); the backup goes on, but files compacted meanwhile may be missed — check backup.gcPause.address",
                pause.address
            )),
        }
        pause
    }

    async fn pause(&self, seconds: u64) -> Result<(), String> {
        pause_request(&self.client, &self.address, seconds).await
    }

    /// Ends the pause; always called, even after a failed copy.
    pub async fn resume(mut self) {
        if let Some(task) = self.renew.take() {
            task.abort();
            let url = format!(
                "{}/management/datacoord/garbage_collection/resume",
                self.address
            );
            if let Err(e) = self.client.get(&url).send().await {
                tracing::warn!("could not resume Milvus garbage collection at {url}: {e}");
            }
        }
    }
}

async fn pause_request(
    client: &reqwest::Client,
    address: &str,
    seconds: u64,
) -> Result<(), String> {
    let url =
        format!("{address}/management/datacoord/garbage_collection/pause?pause_seconds={seconds}");
    let resp = client.get(&url).send().await.map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", resp.status()))
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        if let Some(task) = self.renew.take() {
            task.abort();
        }
    }
}
