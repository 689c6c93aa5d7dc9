//! Where alerts go: a JSON-lines file, standard output, and a webhook, fed from a bounded queue
//! by their own thread so a slow webhook never stalls detection.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

use super::monitor::Alert;

/// Sink settings.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// JSON-lines file (None: no file).
    pub file: Option<PathBuf>,
    /// Print to stdout.
    pub stdout: bool,
    /// POST each alert here (None: no webhook).
    pub webhook: Option<String>,
    /// Alerts queued before new ones are dropped.
    pub queue: usize,
}

/// Counters of the sinks.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Alerts dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Webhook deliveries that failed.
    pub webhook_failures: AtomicU64,
}

/// The sending side; dropping it (and every clone) ends the sink thread after the queue drains.
pub struct AlertSink {
    tx: Option<SyncSender<Alert>>,
    thread: Option<JoinHandle<()>>,
    /// Counters.
    pub stats: Arc<SinkStats>,
}

impl AlertSink {
    /// Opens the file (creating its directory) and starts the sink thread.
    pub fn start(config: SinkConfig) -> Result<Self> {
        let file = match &config.file {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                Some(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .with_context(|| format!("cannot open alert file {}", path.display()))?,
                )
            }
            None => None,
        };
        let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
        let stats = Arc::new(SinkStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("mamori-alerts".into())
            .spawn(move || deliver(rx, file, config.stdout, config.webhook, &thread_stats))?;
        Ok(AlertSink {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        })
    }

    /// Queues an alert; when the queue is full the alert is dropped and counted.
    pub fn send(&self, alert: Alert) {
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(_)) = tx.try_send(alert) {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Delivers what is queued and stops.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn deliver(
    rx: Receiver<Alert>,
    mut file: Option<std::fs::File>,
    stdout: bool,
    webhook: Option<String>,
    stats: &SinkStats,
) {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    for alert in rx {
        let Ok(line) = serde_json::to_string(&alert) else {
            continue;
        };
        if let Some(f) = file.as_mut() {
            // one write per line keeps lines whole for readers tailing the file
            if let Err(e) = f.write_all(format!("{line}\n").as_bytes()) {
                eprintln!("mamori: writing an alert failed: {e}");
            }
        }
        if stdout {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        if let Some(url) = &webhook {
            let sent = agent
                .post(url)
                .header("Content-Type", "application/json")
                .send(line.as_bytes());
            if let Err(e) = sent {
                stats.webhook_failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("mamori: alert webhook {url}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::monitor::Subject;

    fn alert(window: u64) -> Alert {
        Alert {
            time: "2026-12-01T06:00:00.000Z".into(),
            time_ns: 1,
            subject: Subject {
                container: "cam".into(),
                container_id: "abc".into(),
                image: "motion".into(),
            },
            model: "stide".into(),
            model_path: "m.model".into(),
            window,
            stream: 7,
            score: 1.0,
            threshold: 0.5,
            flagged_windows: 1,
            top_classes: Vec::new(),
            processes: Vec::new(),
        }
    }

    #[test]
    fn alerts_reach_the_file_and_a_real_webhook() {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("listen on loopback");
        let port = server.server_addr().to_ip().expect("ip").port();
        let received = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            while bodies.len() < 2 {
                let Ok(Some(mut req)) = server.recv_timeout(Duration::from_secs(10)) else {
                    break;
                };
                let mut body = String::new();
                req.as_reader().read_to_string(&mut body).expect("body");
                bodies.push(body);
                req.respond(tiny_http::Response::empty(204))
                    .expect("respond");
            }
            bodies
        });
        let file = std::env::temp_dir().join(format!("mamori-sink-{}.jsonl", std::process::id()));
        std::fs::remove_file(&file).ok();
        let sink = AlertSink::start(SinkConfig {
            file: Some(file.clone()),
            stdout: false,
            webhook: Some(format!("http://127.0.0.1:{port}/hook")),
            queue: 8,
        })
        .expect("sink starts");
        sink.send(alert(1));
        sink.send(alert(2));
        let stats = Arc::clone(&sink.stats);
        sink.finish();
        let bodies = received.join().expect("server thread");
        let lines = std::fs::read_to_string(&file).expect("alert file");
        std::fs::remove_file(&file).ok();
        assert_eq!(lines.lines().count(), 2);
        assert_eq!(bodies.len(), 2, "both alerts were posted");
        let posted: serde_json::Value = serde_json::from_str(&bodies[1]).expect("JSON body");
        assert_eq!(posted["container"], "cam");
        assert_eq!(posted["window"], 2);
        assert_eq!(stats.webhook_failures.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_unreachable_webhook_is_counted_and_the_file_still_gets_the_alert() {
        // a port nothing listens on: bind one, then free it
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let file = std::env::temp_dir().join(format!("mamori-sink-x-{}.jsonl", std::process::id()));
        std::fs::remove_file(&file).ok();
        let sink = AlertSink::start(SinkConfig {
            file: Some(file.clone()),
            stdout: false,
            webhook: Some(format!("http://127.0.0.1:{port}/hook")),
            queue: 8,
        })
        .expect("sink starts");
        sink.send(alert(1));
        let stats = Arc::clone(&sink.stats);
        sink.finish();
        let lines = std::fs::read_to_string(&file).expect("alert file");
        std::fs::remove_file(&file).ok();
        assert_eq!(lines.lines().count(), 1);
        assert_eq!(stats.webhook_failures.load(Ordering::Relaxed), 1);
    }
}
