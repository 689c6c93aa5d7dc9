//! Where alerts go: a JSON-lines file, standard output, and a webhook, fed from a bounded queue
//! by their own thread so a slow webhook never stalls detection.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::monitor::Alert;
use super::webhook::Webhook;

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
        let webhook = config.webhook.as_deref().map(Webhook::new).transpose()?;
        let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
        let stats = Arc::new(SinkStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("mamori-alerts".into())
            .spawn(move || deliver(rx, file, config.stdout, webhook, &thread_stats))?;
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
    mut webhook: Option<Webhook>,
    stats: &SinkStats,
) {
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
        if let Some(hook) = webhook.as_mut() {
            if let Err(e) = hook.post_json(line) {
                stats.webhook_failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("mamori: alert webhook {}: {e}", hook.url());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::monitor::Subject;
    use crate::agent::webhook::fake;
    use std::time::Duration;

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
        let (addr, requests) = fake::receiver(hyper::StatusCode::NO_CONTENT, Duration::ZERO);
        let file = std::env::temp_dir().join(format!("mamori-sink-{}.jsonl", std::process::id()));
        std::fs::remove_file(&file).ok();
        let sink = AlertSink::start(SinkConfig {
            file: Some(file.clone()),
            stdout: false,
            webhook: Some(format!("http://{addr}/hook")),
            queue: 8,
        })
        .expect("sink starts");
        sink.send(alert(1));
        sink.send(alert(2));
        let stats = Arc::clone(&sink.stats);
        sink.finish();
        let posts: Vec<fake::Received> = requests.try_iter().collect();
        let lines = std::fs::read_to_string(&file).expect("alert file");
        std::fs::remove_file(&file).ok();
        assert_eq!(lines.lines().count(), 2);
        assert_eq!(posts.len(), 2, "both alerts were posted");
        assert_eq!(posts[1].content_type, "application/json");
        let posted: serde_json::Value = serde_json::from_str(&posts[1].body).expect("JSON body");
        assert_eq!(posted["container"], "cam");
        assert_eq!(posted["window"], 2);
        assert_eq!(stats.webhook_failures.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_https_webhook_is_refused_at_start() {
        let err = AlertSink::start(SinkConfig {
            file: None,
            stdout: false,
            webhook: Some("https://hooks.example/alert".into()),
            queue: 8,
        })
        .err()
        .expect("https is refused");
        assert!(err.to_string().contains("https is not supported"), "{err}");
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
