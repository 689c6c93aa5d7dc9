//! The live agent as a library (`mamori agent` is its CLI): watches containers, scores their
//! system calls window by window with the model learned for each image, optionally scores the
//! traffic of one interface with a network detector, raises alerts through the shared rule and
//! sinks, and serves /metrics and /healthz.
//!
//! Threads: the capture thread (eBPF ring buffer → assembled calls → batches), this detection
//! loop (one [`monitor::ContainerMonitor`] per container), the alert sinks, the HTTP server, and
//! a Docker client following container start/stop events. Queues between them are bounded.
//! With `[audit]`, a thread keeps the recent Linux Audit events ([`audit`]) that the Thing
//! monitor's root-cause analysis ([`rootcause`]) reads before it resets a container.

pub mod audit;
pub mod config;
pub mod http;
pub mod live;
pub mod metrics;
pub mod models;
pub mod monitor;
pub mod net;
pub mod rootcause;
pub mod ship;
pub mod sinks;
pub mod things;
pub mod webhook;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mamori_ingest::Record;

use config::AgentConfig;
use live::{LiveOptions, Scope, SyscallCapture};
use mamori_core::Subject;
use metrics::{ContainerMetrics, MetricsSnapshot};
use models::ModelStore;
use monitor::{ContainerMonitor, MonitorSettings};
use sinks::{SinkConfig, SinkQueue};

/// Container key for calls outside any container.
const HOST: &str = "host";

struct Tracked {
    subject: Subject,
    /// None when the image has no model: calls are counted only.
    monitor: Option<ContainerMonitor>,
    events: u64,
}

/// Runs the agent with `config` until SIGINT/SIGTERM or, when given, for `duration`.
pub fn run(config: &AgentConfig, duration: Option<Duration>) -> Result<()> {
    config.check()?;

    let stop = stop_on_signals()?;
    let shared = Arc::new(http::Shared {
        metrics: Mutex::new(MetricsSnapshot::default()),
        heartbeat: Mutex::new(Instant::now()),
        things: std::sync::OnceLock::new(),
    });
    if !config.http.listen.is_empty() {
        let addr = http::serve(&config.http.listen, Arc::clone(&shared), Arc::clone(&stop))?;
        eprintln!("mamori: metrics on http://{addr}/metrics, health on http://{addr}/healthz");
    }
    let (forward, responses) = if config.things.on_alert == config::OnAlert::Off {
        (None, None)
    } else {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Some(tx), Some(rx))
    };
    let ship_section = if config.ship.enabled() {
        let s = ship::ShipSection::start(&config.ship, &config.audit)?;
        eprintln!(
            "mamori: shipping{} alerts and incidents, sealed (chain {}…), to {}",
            if config.audit.log.as_os_str().is_empty()
                && config.ship.audit_log.as_os_str().is_empty()
            {
                ""
            } else {
                " the audit log,"
            },
            &s.fingerprint()[..16],
            s.collector()
        );
        Some(s)
    } else {
        None
    };
    let sink = SinkQueue::start(SinkConfig {
        file: (!config.alerts.file.as_os_str().is_empty()).then(|| config.alerts.file.clone()),
        stdout: config.alerts.stdout,
        webhook: (!config.alerts.webhook.is_empty()).then(|| config.alerts.webhook.clone()),
        queue: config.limits.alert_queue,
        forward,
        ship: ship_section
            .as_ref()
            .filter(|_| config.ship.alerts)
            .and_then(ship::ShipSection::handle),
    })?;
    if let (Some(s), Some(sender)) = (&ship_section, sink.sender()) {
        s.attach_alerts(sender);
    }
    let audit_feed = if config.audit.enabled() {
        let feed = audit::AuditFeed::start(&config.audit, Arc::clone(&stop))?;
        eprintln!(
            "mamori: root-cause analysis on the audit events of {} (kept {:.0} s, at most {})",
            feed.source, config.audit.retain_seconds, config.audit.max_events
        );
        Some(feed)
    } else {
        None
    };
    let analyzer = audit_feed.as_ref().map(|f| {
        Arc::new(rootcause::Analyzer::new(
            config.audit.clone(),
            Arc::clone(&f.state),
        ))
    });
    let things_section = match sink.sender() {
        Some(sender) => {
            let section = things::ThingsSection::start(
                &config.things,
                sender,
                sink.stats.recent.clone(),
                responses,
                analyzer.clone(),
                Arc::clone(&stop),
            )?;
            let _ = shared.things.set(http::ThingBoards {
                monitor: Arc::clone(&section.board),
                responses: Arc::clone(&section.responses),
            });
            Some(section)
        }
        None => None,
    };
    let net_section = if config.net.interface.is_empty() {
        None
    } else {
        let section = net::start(
            &net::NetWatch {
                interface: config.net.interface.clone(),
                filter: config.net.filter.clone(),
                model: config.net.model.clone(),
                snaplen: config.net.snaplen,
            },
            config.alerts.net_rule()?,
            Arc::clone(&stop),
        )?;
        eprintln!(
            "mamori: network detection on {} with {}",
            config.net.interface,
            config.net.model.display()
        );
        Some(section)
    };
    let mut live = if config.capture.enabled {
        Some(start_capture(config)?)
    } else {
        eprintln!("mamori: system-call capture is off ([capture] enabled = false)");
        None
    };

    let rule = MonitorSettings {
        rule: config.alerts.rule()?,
        top_classes: config.alerts.top_classes,
    };
    let idle_ns = (config.limits.idle_stream_seconds * 1e9) as i64;
    let mut store = ModelStore::new(config.models.dir.clone());
    let mut tracked: HashMap<u64, Tracked> = HashMap::new();
    let mut unattributed = 0u64;
    let mut alerts = Vec::new();
    let started = Instant::now();
    let mut last_refresh = Instant::now();
    let (mut events_at_refresh, mut events_total) = (0u64, 0u64);
    let deadline = duration.map(|d| started + d);

    loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let received = match &live {
            Some(l) => l.batches.recv_timeout(Duration::from_millis(200)),
            None => {
                std::thread::sleep(Duration::from_millis(200));
                Err(RecvTimeoutError::Timeout)
            }
        };
        match received {
            Ok(batch) => {
                let Some(live) = live.as_ref() else { continue };
                for captured in batch {
                    events_total += u64::from(matches!(captured.record, Record::Call(_)));
                    let entry = match tracked.get_mut(&captured.cgroup) {
                        Some(t) => t,
                        None => {
                            let Some(subject) = subject_of(
                                &live.directory,
                                captured.cgroup,
                                config.capture.include_host,
                            ) else {
                                unattributed += 1;
                                continue;
                            };
                            let monitor = store
                                .for_image(image_of(&subject))
                                .map(|m| ContainerMonitor::new(subject.clone(), m, rule));
                            tracked.entry(captured.cgroup).or_insert(Tracked {
                                subject,
                                monitor,
                                events: 0,
                            })
                        }
                    };
                    entry.events += 1;
                    if let Some(m) = entry.monitor.as_mut() {
                        m.push(captured.record, &mut alerts);
                    }
                }
                for a in alerts.drain(..) {
                    sink.send(a);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                eprintln!("mamori: capture stopped");
                break;
            }
        }
        if last_refresh.elapsed() >= Duration::from_secs(1) {
            let now_ns = now_ns();
            for t in tracked.values_mut() {
                match t.monitor.as_mut() {
                    Some(m) => m.sweep(now_ns, idle_ns, &mut alerts),
                    // a model learned while the agent runs (the store re-reads at most every 10 s)
                    None => {
                        t.monitor = store
                            .for_image(image_of(&t.subject))
                            .map(|m| ContainerMonitor::new(t.subject.clone(), m, rule));
                    }
                }
            }
            for a in alerts.drain(..) {
                sink.send(a);
            }
            if let Some(n) = &net_section {
                for a in n.alerts.try_iter() {
                    sink.send(a);
                }
            }
            let secs = last_refresh.elapsed().as_secs_f64();
            let rate = (events_total - events_at_refresh) as f64 / secs;
            events_at_refresh = events_total;
            last_refresh = Instant::now();
            let mut snapshot =
                snapshot(&tracked, live.as_ref(), &sink, rate, unattributed, started);
            if let Some(t) = &things_section {
                snapshot.things = t.board.things();
            }
            if let Some(n) = &net_section {
                snapshot.net.push(n.metrics());
                snapshot.alerts_dropped += n.alerts_dropped.load(Ordering::Relaxed);
            }
            if let Some(feed) = &audit_feed {
                let mut m = feed.metrics();
                if let Some(a) = &analyzer {
                    a.fill_metrics(&mut m);
                }
                snapshot.audit = Some(m);
            }
            if let Some(s) = &ship_section {
                snapshot.ship = Some(s.metrics());
            }
            *shared
                .metrics
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = snapshot;
            if let Some(live) = &live {
                forget_stopped(&mut tracked, live);
            }
        }
        *shared
            .heartbeat
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }
    if let Some(l) = live.as_mut() {
        l.stop();
    }
    // every section shares the stop flag: set it for a timed run too
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = things_section {
        t.join();
    }
    if let Some(feed) = audit_feed {
        feed.join();
    }
    let mut net_alerts = 0;
    if let Some(n) = net_section {
        // the stop flag is shared: set it, then collect what the section raised before it ended
        stop.store(true, Ordering::Relaxed);
        let counters = Arc::clone(&n.counters);
        let (pending, result) = n.finish();
        net_alerts = counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .alerts;
        for a in pending {
            sink.send(a);
        }
        if let Err(e) = result {
            eprintln!("mamori: network section: {e:#}");
        }
    }
    // what was captured before the stop is still scored
    while let Some(Ok(batch)) = live.as_ref().map(|l| l.batches.try_recv()) {
        for captured in batch {
            if let Some(m) = tracked
                .get_mut(&captured.cgroup)
                .and_then(|t| t.monitor.as_mut())
            {
                m.push(captured.record, &mut alerts);
            }
        }
    }
    for a in alerts.drain(..) {
        sink.send(a);
    }
    let stats = sink.stats.clone();
    if let Some(s) = &ship_section {
        s.detach_alerts();
    }
    sink.finish();
    // after the sinks: the last alerts and incidents are sealed and sent too
    if let Some(s) = ship_section {
        if let Err(e) = s.stop() {
            eprintln!("mamori: {e:#}");
        }
    }
    let total_alerts: u64 = tracked
        .values()
        .filter_map(|t| t.monitor.as_ref())
        .map(|m| m.stats.alerts)
        .sum();
    eprintln!(
        "mamori: agent stopped after {:.0}s: {events_total} calls, {} containers, {total_alerts} alerts, {net_alerts} network alerts ({} dropped)",
        started.elapsed().as_secs_f64(),
        tracked.len(),
        stats.dropped.load(Ordering::Relaxed)
    );
    Ok(())
}

/// A flag raised by SIGINT or SIGTERM, for the foreground loops to stop cleanly.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    Ok(stop)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Who a captured call belongs to: its container, the host (when included), or nobody.
pub fn subject_of(
    directory: &mamori_docker::ContainerDirectory,
    cgroup: u64,
    include_host: bool,
) -> Option<Subject> {
    match directory.by_cgroup(cgroup) {
        Some(info) => Some(Subject::Container {
            name: info.name.clone(),
            id: info.id.clone(),
            image: info.image.clone(),
        }),
        None if include_host => Some(Subject::Host { name: HOST.into() }),
        None => None,
    }
}

/// The image whose model scores a subject (`host` for the host).
fn image_of(subject: &Subject) -> &str {
    match subject {
        Subject::Container { image, .. } => image,
        _ => HOST,
    }
}

/// Drops state of containers Docker reports gone (their cgroup ids are not reused while known).
fn forget_stopped(tracked: &mut HashMap<u64, Tracked>, live: &SyscallCapture) {
    tracked.retain(|&cg, t| {
        matches!(t.subject, Subject::Host { .. }) || live.directory.by_cgroup(cg).is_some()
    });
}

/// Starts the system-call capture the config describes.
fn start_capture(config: &AgentConfig) -> Result<SyscallCapture> {
    let live = SyscallCapture::start(
        &LiveOptions {
            backend: config.capture.backend,
            write_bytes: config.capture.write_bytes,
            request_data: config.capture.request_data,
            ring_mib: config.capture.ring_mib,
            queue_batches: config.limits.queue_batches,
        },
        Scope {
            containers: config.capture.containers.clone(),
            include_host: config.capture.include_host,
        },
    )?;
    eprintln!(
        "mamori: agent watching {} ({:?} capture); models in {}",
        if config.capture.containers.is_empty() {
            "every container".to_string()
        } else {
            config.capture.containers.join(", ")
        },
        config.capture.backend,
        config.models.dir.display()
    );
    Ok(live)
}

fn snapshot(
    tracked: &HashMap<u64, Tracked>,
    live: Option<&SyscallCapture>,
    sink: &SinkQueue,
    rate: f64,
    unattributed: u64,
    started: Instant,
) -> MetricsSnapshot {
    let mut containers: Vec<ContainerMetrics> = tracked
        .values()
        .map(|t| {
            let mut c = ContainerMetrics {
                container: t.subject.name().to_string(),
                image: image_of(&t.subject).to_string(),
                model: "none".into(),
                events: t.events,
                ..ContainerMetrics::default()
            };
            if let Some(m) = &t.monitor {
                c.model = m.model().model.kind.to_string();
                c.stats = m.stats.clone();
                c.open_streams = m.open_streams() as u64;
            }
            c
        })
        .collect();
    containers.sort_by(|a, b| a.container.cmp(&b.container));
    let probe = live.and_then(|l| l.probe_counters()).unwrap_or_default();
    MetricsSnapshot {
        containers,
        events_per_second: rate,
        probe_records: probe.written,
        probe_dropped_per_cpu: probe.dropped_per_cpu,
        probe_undecodable: probe.undecodable,
        queue_full: live.map_or(0, |l| l.stats.queue_full.load(Ordering::Relaxed)),
        alerts_dropped: sink.stats.dropped.load(Ordering::Relaxed),
        webhook_failures: sink.stats.webhook_failures.load(Ordering::Relaxed),
        unattributed_events: unattributed,
        rss_bytes: metrics::rss_bytes(),
        uptime_seconds: started.elapsed().as_secs_f64(),
        net: Vec::new(),
        sink_errors: vec![("all".to_string(), sink.stats.errors.load(Ordering::Relaxed))],
        alerts_delivered: sink
            .stats
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((source, severity), n)| (source.clone(), severity.clone(), *n))
            .collect(),
        things: Vec::new(),
        incidents: sink
            .stats
            .incidents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(kind, n)| (kind.clone(), *n))
            .collect(),
        audit: None,
        ship: None,
    }
}
