//! The agent's `[ship]` section: the audit log and the agent's own alerts and incidents,
//! sealed and shipped to a collector (mamori-ship's device side, in-process). A full spool
//! raises an alert through the shared sinks; the counters go to /metrics.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use mamori_core::alert::{Evidence, Fired};
use mamori_core::sink::{AlertSink, Output, SinkError};
use mamori_core::{Alert, Incident, Subject};
use mamori_seal::Kind;
use mamori_ship::device::{DeviceConfig, RunningShipper};
use mamori_ship::intake::{FileSource, FullHook, IntakeHandle, IntakeOptions, SourceKind};
use mamori_ship::shipper::ShipperConfig;
use mamori_ship::spool::SpoolOptions;
use mamori_ship::stats::ShipStats;
use mamori_ship::tls::{self, TlsFiles};

use super::config::{AuditConfig, ShipConfig};
use super::metrics::ShipMetrics;
use super::sinks::SinkSender;

/// The running section.
pub struct ShipSection {
    running: RunningShipper,
    /// Where the spool-full alert goes, once the sinks exist; taken away before the sinks are
    /// closed (a sender held here would keep them open).
    alerts: Arc<Mutex<Option<SinkSender>>>,
    collector: String,
}

impl ShipSection {
    /// Starts shipping as `[ship]` says (the audit log defaults to `[audit] log`).
    pub fn start(config: &ShipConfig, audit: &AuditConfig) -> Result<ShipSection> {
        let files = TlsFiles::in_dir(&config.certs, &config.name);
        let tls = tls::client_config(&files).context("[ship] certificates")?;
        let mut shipper = ShipperConfig::new(&config.collector, tls);
        if !config.server_name.is_empty() {
            shipper.server_name.clone_from(&config.server_name);
        }
        let audit_log: Option<PathBuf> = if config.audit_log.as_os_str() == "-" {
            None
        } else if !config.audit_log.as_os_str().is_empty() {
            Some(config.audit_log.clone())
        } else {
            (!audit.log.as_os_str().is_empty()).then(|| audit.log.clone())
        };
        let sources = audit_log
            .into_iter()
            .map(|path| FileSource {
                name: "audit".into(),
                path,
                kind: SourceKind::Audit,
            })
            .collect();
        let alerts: Arc<Mutex<Option<SinkSender>>> = Arc::new(Mutex::new(None));
        let hook_alerts = Arc::clone(&alerts);
        let device = config.name.clone();
        let on_full: FullHook = Box::new(move |full, spool| {
            if !full {
                eprintln!("mamori: [ship] spool has room again: intake resumed");
                return;
            }
            let message = format!(
                "log shipping spool full ({} MiB unacknowledged, {} records): intake paused, the audit log waits on disk",
                spool.pending_bytes() >> 20,
                spool.pending_records()
            );
            eprintln!("mamori: [ship] {message}");
            if let Some(sink) = hook_alerts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
            {
                let now = mamori_core::time::now_ns();
                sink.send(Alert::warning(
                    Subject::Host {
                        name: device.clone(),
                    },
                    "ship",
                    "spool",
                    "",
                    Fired {
                        time_ns: now,
                        score: spool.pending_bytes() as f64,
                        threshold: spool.pending_bytes() as f64,
                        run_len: 1,
                        run_start_ns: now,
                    },
                    Evidence::Detail {
                        message,
                        data: serde_json::json!({
                            "pending_bytes": spool.pending_bytes(),
                            "pending_records": spool.pending_records(),
                            "acked": spool.acked(),
                            "committed": spool.committed(),
                        }),
                    },
                ));
            }
        });
        let running = RunningShipper::start(
            DeviceConfig {
                spool_dir: config.spool.clone(),
                spool: SpoolOptions {
                    max_bytes: config.max_spool_mib << 20,
                    fsync: config.fsync,
                    ..SpoolOptions::default()
                },
                sources,
                intake: IntakeOptions {
                    heartbeat: Duration::from_secs_f64(config.heartbeat_seconds),
                    ..IntakeOptions::default()
                },
                shipper,
                drain: Duration::from_secs(3),
            },
            Some(on_full),
        )
        .with_context(|| format!("[ship] spool {}", config.spool.display()))?;
        Ok(ShipSection {
            running,
            alerts,
            collector: config.collector.clone(),
        })
    }

    /// Alerts about the spool go to `sink` from now on.
    pub fn attach_alerts(&self, sink: SinkSender) {
        *self.alerts.lock().unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }

    /// No more alerts about the spool (before the sinks close).
    pub fn detach_alerts(&self) {
        self.alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Where it ships.
    pub fn collector(&self) -> &str {
        &self.collector
    }

    /// The chain's fingerprint.
    pub fn fingerprint(&self) -> String {
        self.running.fingerprint()
    }

    /// For the sinks: the agent's alerts and incidents go in here.
    pub fn handle(&self) -> Option<IntakeHandle> {
        self.running.handle()
    }

    /// Counters for /metrics.
    pub fn metrics(&self) -> ShipMetrics {
        let s: &ShipStats = self.running.stats();
        let l = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
        ShipMetrics {
            sealed: s
                .sealed_by_kind()
                .iter()
                .map(|(k, n)| ((*k).to_string(), *n))
                .collect(),
            committed: l(&s.committed),
            acked: l(&s.acked),
            spool_bytes: l(&s.spool_bytes),
            spool_full: l(&s.full) == 1,
            spool_full_events: l(&s.full_events),
            dropped: l(&s.dropped),
            connected: l(&s.connected) == 1,
            sessions: l(&s.sessions),
            connect_failures: l(&s.connect_failures),
            sent_records: l(&s.sent_records),
            sent_bytes: l(&s.sent_bytes),
            last_ack_unix: l(&s.last_ack_unix),
            positions_lost: l(&s.positions_lost),
        }
    }

    /// Seals what is read, sends for a few seconds, stops.
    pub fn stop(self) -> Result<()> {
        self.running.stop().context("[ship]")
    }
}

/// The sink that hands the agent's alerts and incidents to the shipper, as the same JSON lines
/// the file sink writes.
pub struct ShipSink(pub IntakeHandle);

impl AlertSink for ShipSink {
    fn alert(&mut self, alert: &Alert) -> Result<(), SinkError> {
        let line = serde_json::to_vec(&Output::Alert(alert)).map_err(|e| SinkError::Io {
            sink: "ship".into(),
            source: std::io::Error::other(e),
        })?;
        self.0.send(Kind::Alert, line);
        Ok(())
    }

    fn incident(&mut self, incident: &Incident) -> Result<(), SinkError> {
        let line = serde_json::to_vec(&Output::Incident(incident)).map_err(|e| SinkError::Io {
            sink: "ship".into(),
            source: std::io::Error::other(e),
        })?;
        self.0.send(Kind::Incident, line);
        Ok(())
    }
}
