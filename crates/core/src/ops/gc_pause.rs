//! Pausing Milvus's garbage collection while files are copied, so binlogs
//! compacted away mid-backup are not deleted under us. Uses the management
//! HTTP port (`backup.gcPause.address`). Failure to pause is a warning;
//! a server without the API (HTTP 404: Milvus 2.2 and 2.3) is said once
//! per server version, as information.

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
    /// Asks Milvus (`version`, as it reports it) to pause GC; warns (and
    /// carries on) when it cannot.
    pub async fn start(cfg: &GcPauseConfig, version: &str, events: &dyn EventSink) -> GcPause {
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
            Err(Refused::NoApi) => {
                if first_time_for(version) {
                    events.note(format!(
                        "Milvus {version} has no garbage-collection pause API (HTTP 404 at {}): the copy runs without one, as the Go tool's does on this version",
                        pause.address
                    ));
                }
            }
            Err(Refused::Other(e)) => events.warn(format!(
                "could not pause Milvus garbage collection at {} ({e}); the backup goes on, but files compacted meanwhile may be missed — check backup.gcPause.address",
                pause.address
            )),
        }
        pause
    }

    async fn pause(&self, seconds: u64) -> Result<(), Refused> {
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

/// Why a pause was not granted.
enum Refused {
    /// The server has no such API (HTTP 404).
    NoApi,
    Other(String),
}

/// True the first time this process asks about `version`.
fn first_time_for(version: &str) -> bool {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.iter().any(|v| v == version) {
        return false;
    }
    said.push(version.to_string());
    true
}

async fn pause_request(
    client: &reqwest::Client,
    address: &str,
    seconds: u64,
) -> Result<(), Refused> {
    let url =
        format!("{address}/management/datacoord/garbage_collection/pause?pause_seconds={seconds}");
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| Refused::Other(e.to_string()))?;
    match resp.status() {
        s if s.is_success() => Ok(()),
        reqwest::StatusCode::NOT_FOUND => Err(Refused::NoApi),
        s => Err(Refused::Other(format!("HTTP {s}"))),
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        if let Some(task) = self.renew.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Collect, Event};

    /// An HTTP server that answers every request with `status`.
    fn http_server(status: &'static str) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.read(&mut [0u8; 2048]);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        address
    }

    fn config(address: String) -> GcPauseConfig {
        GcPauseConfig {
            enable: true,
            seconds: 60,
            address,
        }
    }

    #[tokio::test]
    async fn a_server_without_the_api_is_said_once_per_version_as_information() {
        let cfg = config(http_server("404 Not Found"));
        let events = Collect::default();
        for version in ["v2.2.99-test", "v2.2.99-test", "v2.3.99-test"] {
            GcPause::start(&cfg, version, &events).await.resume().await;
        }
        let events = events.events();
        let notes: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Note { message } => Some(message.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("Milvus v2.2.99-test has no garbage-collection pause API"));
        assert!(!events.iter().any(|e| matches!(e, Event::Warning { .. })));
    }

    #[tokio::test]
    async fn a_failing_pause_is_a_warning_naming_the_key() {
        let cfg = config(http_server("500 Internal Server Error"));
        let events = Collect::default();
        GcPause::start(&cfg, "v2.4.99-test", &events)
            .await
            .resume()
            .await;
        let warned: Vec<_> = events
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Warning { message } => Some(message),
                _ => None,
            })
            .collect();
        assert_eq!(warned.len(), 1);
        assert!(warned[0].contains("backup.gcPause.address"), "{warned:?}");
    }
}
