//! The agent's network section: live capture on one interface, the detector from `mamori net
//! train` on every row, and the shared alert rule per device — the same alerts, sinks, cooldown
//! and metrics as the system-call side.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mamori_core::{Alert, AlertRule};
use mamori_net::detector::{NetDetector, Scratch};
use mamori_net::features::Extractor;
use mamori_net::live::PacketCapture;
use mamori_net::packet::decode;

use crate::metrics::NetMetrics;
use mamori_pipeline::net_alerts::{NetAlerter, ScoredRow};

/// What the network section is told to watch.
#[derive(Debug, Clone)]
pub struct NetWatch {
    /// Interface to capture on.
    pub interface: String,
    /// BPF filter (empty: everything).
    pub filter: String,
    /// Detector file.
    pub model: PathBuf,
    /// Bytes kept of each packet.
    pub snaplen: u32,
}

/// The running section.
pub struct NetSection {
    thread: Option<JoinHandle<Result<()>>>,
    /// Alerts for the agent's sinks.
    pub alerts: Receiver<Alert>,
    /// Counters, refreshed as rows are scored.
    pub counters: Arc<Mutex<NetMetrics>>,
    /// Alerts dropped because the agent had not taken the earlier ones yet.
    pub alerts_dropped: Arc<AtomicU64>,
}

/// Loads the detector (checksummed envelope), opens the capture and starts scoring on a thread
/// of its own; stops when `stop` is set.
pub fn start(watch: &NetWatch, rule: AlertRule, stop: Arc<AtomicBool>) -> Result<NetSection> {
    let detector: NetDetector =
        mamori_core::envelope::load(&watch.model, mamori_core::envelope::ModelKind::Net)?;
    detector
        .check()
        .map_err(|e| anyhow::anyhow!("{}: {e}", watch.model.display()))?;
    let filter = (!watch.filter.is_empty()).then_some(watch.filter.as_str());
    let mut live = PacketCapture::open(&watch.interface, filter, watch.snaplen, true)
        .with_context(|| format!("[net] cannot capture on {}", watch.interface))?;
    live.set_stop_flag(stop);
    let alerter = NetAlerter::new(
        rule,
        detector.threshold.value,
        detector.model.algorithm(),
        watch.model.display().to_string(),
        detector.features.kind.entity_name(),
    );
    let counters = Arc::new(Mutex::new(NetMetrics {
        interface: watch.interface.clone(),
        model: detector.model.algorithm().to_string(),
        ..NetMetrics::default()
    }));
    let alerts_dropped = Arc::new(AtomicU64::new(0));
    let thread_dropped = Arc::clone(&alerts_dropped);
    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
    let thread_counters = Arc::clone(&counters);
    let thread = std::thread::Builder::new()
        .name("mamori-net".into())
        .spawn(move || {
            run(
                live,
                detector,
                alerter,
                tx,
                &thread_counters,
                &thread_dropped,
            )
        })?;
    Ok(NetSection {
        thread: Some(thread),
        alerts: rx,
        counters,
        alerts_dropped,
    })
}

impl NetSection {
    /// The section's counters as /metrics shows them.
    pub fn metrics(&self) -> NetMetrics {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits for the thread (after the stop flag was set): the alerts not yet taken, and the
    /// thread's error if it failed.
    pub fn finish(mut self) -> (Vec<Alert>, Result<()>) {
        let result = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(anyhow::anyhow!("the network section panicked")),
            None => Ok(()),
        };
        (self.alerts.try_iter().collect(), result)
    }
}

fn run(
    mut live: PacketCapture,
    detector: NetDetector,
    mut alerter: NetAlerter,
    tx: SyncSender<Alert>,
    counters: &Mutex<NetMetrics>,
    dropped: &AtomicU64,
) -> Result<()> {
    let name = format!("iface:{}", live.interface());
    let mut extractor: Extractor = Extractor::new(&detector.features);
    let mut scratch = Scratch::default();
    // per-device baselines when the detector has them (new devices warm up live)
    let mut judge = detector.judge(true);
    let mut rows: Vec<mamori_net::features::FeatureRow> = Vec::new();
    let mut packets = 0u64;
    let publish = |alerter: &NetAlerter, live: &mut PacketCapture, packets: u64| {
        let mut c = counters.lock().unwrap_or_else(PoisonError::into_inner);
        c.packets = packets;
        c.rows_scored = alerter.counts.scored;
        c.rows_flagged = alerter.counts.flagged;
        c.alerts = alerter.counts.alerts;
        c.suppressed = alerter.counts.suppressed;
        if let Ok(s) = live.stats() {
            c.capture_dropped = s.dropped_by_kernel + s.dropped_by_interface;
        }
    };
    let mut last_publish = Instant::now();
    while let Some(raw) = live.next_packet()? {
        packets += 1;
        let meta = match decode(raw.linktype, raw.ts_ns, raw.orig_len, raw.data) {
            Ok(m) => m,
            // a live interface can carry anything: count it as seen, score what decodes
            Err(_) => continue,
        };
        extractor.push(&meta, (), &mut rows);
        for row in rows.drain(..) {
            let score = detector.score(&row.values, &mut scratch);
            let j = judge.judge(&name, &row.entity, row.start_ns, row.end_ns, score);
            let scored = ScoredRow {
                input: &name,
                entity: &row.entity,
                start_ns: row.start_ns,
                end_ns: row.end_ns,
                packets: row.packets,
                score,
            };
            let (_, fired) = alerter.observe_against(&scored, j.threshold);
            if let Some(a) = fired {
                if let Err(TrySendError::Full(_)) = tx.try_send(a) {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // at most about once a second, so a quiet interface still shows its counts
        if last_publish.elapsed() >= Duration::from_secs(1) {
            publish(&alerter, &mut live, packets);
            last_publish = Instant::now();
        }
    }
    publish(&alerter, &mut live, packets);
    Ok(())
}
