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
