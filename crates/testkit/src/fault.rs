//! A TCP proxy of our own that injects faults between the tool and a
//! server (S3 or Milvus): it drops connections after N bytes, adds latency,
//! stalls, or (in front of S3) answers `503 SlowDown`. Each fault hits at
//! most `times` connections, so bounded retries can get past it; a fault
//! with a large `times` outlasts any retry and makes the run fail.
//!
//! It runs on a runtime of its own thread, so sync tests can use it too.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Close both sides once this many bytes (both ways) went through.
    DropAfter(u64),
    /// Delay every chunk, both ways.
    Latency(Duration),
    /// Hold the connection this long once this many bytes went through.
    Stall { after: u64, pause: Duration },
    /// Answer the connection's first request `503 SlowDown` (S3's "reduce
    /// your request rate") and close it.
    SlowDown,
}

#[derive(Debug)]
struct Rule {
    fault: Fault,
    /// Connections the fault may still hit.
    left: u64,
}

/// A running proxy to one upstream address.
pub struct FaultProxy {
    pub port: u16,
    rule: Arc<Mutex<Rule>>,
    injected: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`host:port`), injecting nothing until [`set`](Self::set).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream is ip:port");
        let rule = Arc::new(Mutex::new(Rule {
            fault: Fault::None,
            left: 0,
        }));
        let injected = Arc::new(AtomicU64::new(0));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = {
            let (rule, injected) = (rule.clone(), injected.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                    port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                    let accept = async {
                        loop {
                            let Ok((client, _)) = listener.accept().await else {
                                continue;
                            };
                            let fault = {
                                let mut r = rule.lock().unwrap();
                                if r.left > 0 && r.fault != Fault::None {
                                    r.left -= 1;
                                    r.fault
                                } else {
                                    Fault::None
                                }
                            };
                            let injected = injected.clone();
                            tokio::spawn(async move {
                                let _ = serve(client, upstream, fault, &injected).await;
                            });
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stopped => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })
        };
        FaultProxy {
            port: port_rx.recv().unwrap(),
            rule,
            injected,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Injects `fault` into the next `times` connections.
    pub fn set(&self, fault: Fault, times: u64) {
        *self.rule.lock().unwrap() = Rule { fault, left: times };
    }

    /// Faults that actually happened (a dropped, stalled, delayed or
    /// refused connection counts once).
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: Fault,
    injected: &AtomicU64,
) -> std::io::Result<()> {
    if fault == Fault::SlowDown {
        // Read the request head, answer as S3 does when throttling, close.
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
            let n = client.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
        }
        injected.fetch_add(1, Ordering::SeqCst);
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let answer = format!(
            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        client.write_all(answer.as_bytes()).await?;
        client.shutdown().await?;
        return Ok(());
    }
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let total = Arc::new(AtomicU64::new(0));
    let hit = Arc::new(AtomicU64::new(0));
    let mut pipes = tokio::task::JoinSet::new();
    pipes.spawn(pipe(cr, sw, fault, total.clone(), hit.clone()));
    pipes.spawn(pipe(sr, cw, fault, total, hit.clone()));
    while let Some(done) = pipes.join_next().await {
        if matches!(done, Ok(Ended::Dropped)) {
            pipes.abort_all();
        }
    }
    if hit.load(Ordering::SeqCst) > 0 {
        injected.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

enum Ended {
    Eof,
    Dropped,
}

async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    fault: Fault,
    total: Arc<AtomicU64>,
    hit: Arc<AtomicU64>,
) -> Ended {
    let mut buf = vec![0u8; 16384];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = w.shutdown().await;
                return Ended::Eof;
            }
            Ok(n) => n,
        };
        let before = total.fetch_add(n as u64, Ordering::SeqCst);
        let after = before + n as u64;
        let mut chunk = &buf[..n];
        match fault {
            Fault::Latency(d) => {
                hit.store(1, Ordering::SeqCst);
                tokio::time::sleep(d).await;
            }
            Fault::DropAfter(limit) if after > limit => {
                hit.store(1, Ordering::SeqCst);
                let keep = limit.saturating_sub(before) as usize;
                let _ = w.write_all(&chunk[..keep.min(n)]).await;
                return Ended::Dropped;
            }
            Fault::Stall { after: at, pause } if before <= at && after > at => {
                hit.store(1, Ordering::SeqCst);
                let keep = (at - before) as usize;
                if w.write_all(&chunk[..keep]).await.is_err() {
                    return Ended::Dropped;
                }
                chunk = &chunk[keep..];
                tokio::time::sleep(pause).await;
            }
            _ => {}
        }
        if w.write_all(chunk).await.is_err() {
            return Ended::Dropped;
        }
    }
}
