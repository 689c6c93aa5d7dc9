//! Where the agent's alerts and incidents go: the shared sinks (a JSON-lines file, standard
//! output, a webhook) behind one bounded queue, drained by their own thread so a slow webhook
//! never stalls detection.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use mamori_core::sink::{AlertSink, Fanout, JsonLines, SinkError};
use mamori_core::{Alert, Incident};

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
    /// Records queued before new ones are dropped.
    pub queue: usize,
    /// Container alerts (syscall or network) are also handed here: the Thing monitor's
    /// `on_alert` response (pause or restart).
    pub forward: Option<tokio::sync::mpsc::UnboundedSender<Alert>>,
    /// `[ship]`: alerts and incidents are also sealed and shipped.
    pub ship: Option<mamori_ship::intake::IntakeHandle>,
}

/// Counters of the sinks.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Records dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Webhook deliveries that failed.
    pub webhook_failures: Arc<AtomicU64>,
    /// Deliveries that failed in any sink.
    pub errors: AtomicU64,
    /// Alerts delivered, by source and severity.
    pub delivered: DeliveredCounts,
    /// Incidents delivered, by kind.
    pub incidents: Arc<Mutex<BTreeMap<String, u64>>>,
    /// The latest alerts, for a recovery's evidence.
    pub recent: RecentAlerts,
}

enum Queued {
    Alert(Box<Alert>),
    Incident(Box<Incident>),
}

/// The latest alerts delivered (a bounded memory), newest last.
#[derive(Debug, Clone, Default)]
pub struct RecentAlerts(Arc<Mutex<std::collections::VecDeque<Alert>>>);

/// Alerts remembered for evidence.
const RECENT_ALERTS: usize = 256;

impl RecentAlerts {
    /// The remembered alerts about one container, oldest first.
    pub fn about_container(&self, container: &str) -> Vec<Alert> {
        let list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        list.iter()
            .filter(|a| match &a.subject {
                mamori_core::Subject::Container { name, id, .. } => {
                    name == container || id == container
                }
                mamori_core::Subject::Thing { container: c, .. } => c == container,
                _ => false,
            })
            .cloned()
            .collect()
    }
}

/// Remembers alerts for [`RecentAlerts`] and hands container alerts to the responder.
struct Remember {
    recent: RecentAlerts,
    forward: Option<tokio::sync::mpsc::UnboundedSender<Alert>>,
    incidents: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl AlertSink for Remember {
    fn alert(&mut self, alert: &Alert) -> Result<(), SinkError> {
        {
            let mut list = self.recent.0.lock().unwrap_or_else(PoisonError::into_inner);
            if list.len() == RECENT_ALERTS {
                list.pop_front();
            }
            list.push_back(alert.clone());
        }
        if let Some(tx) = &self.forward {
            if matches!(alert.subject, mamori_core::Subject::Container { .. }) {
                // the responder is gone only when the agent stops
                let _ = tx.send(alert.clone());
            }
        }
        Ok(())
    }

    fn incident(&mut self, incident: &Incident) -> Result<(), SinkError> {
        *self
            .incidents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(incident.kind.clone())
            .or_default() += 1;
        Ok(())
    }
}

/// A cloneable handle that queues into a [`SinkQueue`] (for other threads: the Thing monitor).
#[derive(Clone)]
pub struct SinkSender {
    tx: SyncSender<Queued>,
    stats: Arc<SinkStats>,
}

impl SinkSender {
    fn queue(&self, item: Queued) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(item) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues an alert; dropped and counted when the queue is full.
    pub fn send(&self, alert: Alert) {
        self.queue(Queued::Alert(Box::new(alert)));
    }

    /// Queues an incident; dropped and counted when the queue is full.
    pub fn send_incident(&self, incident: Incident) {
        self.queue(Queued::Incident(Box::new(incident)));
    }
}

/// The sending side; dropping it (and every clone) ends the sink thread after the queue drains.
pub struct SinkQueue {
    tx: Option<SyncSender<Queued>>,
    thread: Option<JoinHandle<()>>,
    /// Counters.
    pub stats: Arc<SinkStats>,
}

/// Alerts delivered, by source and severity: the metrics sink's counts.
pub type DeliveredCounts = Arc<Mutex<BTreeMap<(String, String), u64>>>;

/// Counts every alert it is given, for /metrics (`mamori_alerts_delivered_total`).
struct MetricsSink(DeliveredCounts);

impl AlertSink for MetricsSink {
    fn alert(&mut self, alert: &Alert) -> Result<(), SinkError> {
        let severity = match alert.severity {
            mamori_core::alert::Severity::Warning => "warning",
            mamori_core::alert::Severity::Critical => "critical",
        };
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((alert.source.clone(), severity.to_string()))
            .or_default() += 1;
        Ok(())
    }
}

/// The sinks a configuration names, as one (and the metrics sink, always).
pub fn build(config: &SinkConfig, stats: &Arc<SinkStats>) -> Result<Fanout> {
    let mut sinks = Fanout::new();
    sinks.push(Box::new(MetricsSink(Arc::clone(&stats.delivered))));
    sinks.push(Box::new(Remember {
        recent: stats.recent.clone(),
        forward: config.forward.clone(),
        incidents: Arc::clone(&stats.incidents),
    }));
    if let Some(path) = &config.file {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open alert file {}", path.display()))?;
        sinks.push(Box::new(JsonLines::new(
            path.display().to_string(),
            file,
            true,
        )));
    }
    if config.stdout {
        sinks.push(Box::new(JsonLines::new("stdout", std::io::stdout(), true)));
    }
    if let Some(handle) = &config.ship {
        sinks.push(Box::new(super::ship::ShipSink(handle.clone())));
    }
    if let Some(url) = &config.webhook {
        let hook = Webhook::new(url)?.counting_into(Arc::clone(&stats.webhook_failures));
        sinks.push(Box::new(hook));
    }
    Ok(sinks)
}

impl SinkQueue {
    /// Opens the sinks (creating the file's directory) and starts the sink thread.
    pub fn start(config: SinkConfig) -> Result<Self> {
        let stats = Arc::new(SinkStats::default());
        let sinks = build(&config, &stats)?;
        let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("mamori-alerts".into())
            .spawn(move || deliver(rx, sinks, &thread_stats))?;
        Ok(SinkQueue {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        })
    }

    fn queue(&self, item: Queued) {
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(_)) = tx.try_send(item) {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues an alert; when the queue is full the alert is dropped and counted.
    pub fn send(&self, alert: Alert) {
        self.queue(Queued::Alert(Box::new(alert)));
    }

    /// Queues an incident; when the queue is full it is dropped and counted.
    pub fn send_incident(&self, incident: Incident) {
        self.queue(Queued::Incident(Box::new(incident)));
    }

    /// A handle for other threads (None once finishing).
    pub fn sender(&self) -> Option<SinkSender> {
        Some(SinkSender {
            tx: self.tx.clone()?,
            stats: Arc::clone(&self.stats),
        })
    }

    /// Delivers what is queued and stops.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn deliver(rx: Receiver<Queued>, mut sinks: Fanout, stats: &SinkStats) {
    for item in rx {
        let sent = match &item {
            Queued::Alert(a) => sinks.alert(a),
            Queued::Incident(i) => sinks.incident(i),
        };
        if let Err(e) = sent {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("mamori: alert sink: {e}");
        }
    }
    let _ = sinks.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::fake;
    use mamori_core::alert::Severity;
    use mamori_core::{Evidence, Subject};
    use std::time::Duration;

    fn alert(window: u64) -> Alert {
        Alert {
            time: "2026-12-01T06:00:00.000Z".into(),
            time_ns: 1,
            subject: Subject::Container {
                name: "cam".into(),
                id: "abc".into(),
                image: "motion".into(),
            },
            source: "syscalls".into(),
            detector: "stide".into(),
            model_path: "m.model".into(),
            score: 1.0,
            threshold: 0.5,
            flagged_units: 1,
            run_start_ns: 1,
            severity: Severity::Warning,
            evidence: Evidence::Syscalls {
                window,
                stream: 7,
                start_ns: 0,
                end_ns: 1,
                top_classes: Vec::new(),
                processes: Vec::new(),
            },
        }
    }

    #[test]
    fn alerts_reach_the_file_and_a_real_webhook() {
        let (addr, requests) = fake::receiver(hyper::StatusCode::NO_CONTENT, Duration::ZERO);
        let file = std::env::temp_dir().join(format!("mamori-sink-{}.jsonl", std::process::id()));
        std::fs::remove_file(&file).ok();
        let sink = SinkQueue::start(SinkConfig {
            file: Some(file.clone()),
            stdout: false,
            webhook: Some(format!("http://{addr}/hook")),
            queue: 8,
            forward: None,
            ship: None,
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
        assert_eq!(posted["record"], "alert");
        assert_eq!(posted["subject"]["name"], "cam");
        assert_eq!(posted["evidence"]["window"], 2);
        assert_eq!(stats.webhook_failures.load(Ordering::Relaxed), 0);
        let delivered = stats.delivered.lock().expect("counts").clone();
        assert_eq!(
            delivered.get(&("syscalls".to_string(), "warning".to_string())),
            Some(&2),
            "the metrics sink counted both: {delivered:?}"
        );
    }

    #[test]
    fn an_https_webhook_is_refused_at_start() {
        let err = SinkQueue::start(SinkConfig {
            file: None,
            stdout: false,
            webhook: Some("https://hooks.example/alert".into()),
            queue: 8,
            forward: None,
            ship: None,
        })
        .err()
        .expect("https is refused");
        assert!(
            format!("{err:#}").contains("https is not supported"),
            "{err:#}"
        );
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
        let sink = SinkQueue::start(SinkConfig {
            file: Some(file.clone()),
            stdout: false,
            webhook: Some(format!("http://127.0.0.1:{port}/hook")),
            queue: 8,
            forward: None,
            ship: None,
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
