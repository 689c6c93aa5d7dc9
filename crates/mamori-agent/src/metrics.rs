//! The agent's Prometheus metrics. The detection loop refreshes a [`MetricsSnapshot`] once a
//! second; a scrape encodes the latest snapshot through `prometheus-client`, so scraping never
//! touches the hot path and the loop never touches Prometheus types.
//!
//! How: one [`Exposition`] (a `prometheus-client` [`Registry`]) lives as long as the HTTP server,
//! with one [`Collector`] registered in it that asks for the latest snapshot at scrape time and
//! encodes it as constant counters and gauges. That is the library's own shape for values owned
//! elsewhere (its process collector works the same way). Not chosen:
//! - live `Counter`/`Family` atomics updated by the loop: a second copy of counters the loop
//!   already keeps (`MonitorStats`), atomics on the hot path, and a `Family` keeps the series of
//!   a stopped container until someone removes it, where a snapshot simply no longer has it;
//! - a fresh `Registry` built from the snapshot per scrape: works, but re-registers every family
//!   on each scrape for nothing, since a collector already runs once per scrape.

use std::fmt;

use mamori_wot::health::State;
use mamori_wot::status::{Histogram, ThingStatus, LATENCY_BUCKETS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::monitor::MonitorStats;

/// Per-container counters.
#[derive(Debug, Clone, Default)]
pub struct ContainerMetrics {
    /// Container name.
    pub container: String,
    /// Image.
    pub image: String,
    /// Model kind, or `none` when the image has no model.
    pub model: String,
    /// Calls received.
    pub events: u64,
    /// Detection counters (zero without a model).
    pub stats: MonitorStats,
    /// Streams with a partial window.
    pub open_streams: u64,
}

/// Everything /metrics shows.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    /// Per container.
    pub containers: Vec<ContainerMetrics>,
    /// Calls per second over the last refresh interval.
    pub events_per_second: f64,
    /// Records the probe wrote.
    pub probe_records: u64,
    /// Records the probe dropped (ring buffer full), per CPU.
    pub probe_dropped_per_cpu: Vec<u64>,
    /// Probe records user space could not decode (lost).
    pub probe_undecodable: u64,
    /// Times the capture→detection queue was full.
    pub queue_full: u64,
    /// Alerts dropped because the sink queue was full.
    pub alerts_dropped: u64,
    /// Webhook deliveries that failed.
    pub webhook_failures: u64,
    /// Calls from cgroups that are no known container (and host capture is off).
    pub unattributed_events: u64,
    /// Resident memory of the agent in bytes.
    pub rss_bytes: u64,
    /// Seconds since the agent started.
    pub uptime_seconds: f64,
    /// Per captured network interface and model.
    pub net: Vec<NetMetrics>,
    /// Deliveries that failed, per alert sink (by sink name).
    pub sink_errors: Vec<(String, u64)>,
    /// Alerts handed to the sinks, by source (`syscalls`, `network`) and severity.
    pub alerts_delivered: Vec<(String, String, u64)>,
    /// The WoT Things the monitor watches.
    pub things: Vec<ThingStatus>,
    /// Incidents handed to the sinks, by kind (`recovery`, `response`).
    pub incidents: Vec<(String, u64)>,
    /// The `[audit]` section, when it runs.
    pub audit: Option<AuditMetrics>,
    /// The `[ship]` section, when it runs.
    pub ship: Option<ShipMetrics>,
}

/// The `[ship]` section's counters: sealing, the spool, the connection to the collector.
#[derive(Debug, Clone, Default)]
pub struct ShipMetrics {
    /// Records sealed, by kind.
    pub sealed: Vec<(String, u64)>,
    /// Last sequence number sealed and on disk.
    pub committed: u64,
    /// Last sequence number the collector acknowledged.
    pub acked: u64,
    /// Bytes of unacknowledged records in the spool.
    pub spool_bytes: u64,
    /// Whether the spool is full (intake paused).
    pub spool_full: bool,
    /// Times the spool filled.
    pub spool_full_events: u64,
    /// Alerts/incidents dropped before sealing (intake queue full).
    pub dropped: u64,
    /// Whether connected to the collector.
    pub connected: bool,
    /// Sessions established.
    pub sessions: u64,
    /// Connections that failed or sessions that ended in an error.
    pub connect_failures: u64,
    /// Records sent (resends included).
    pub sent_records: u64,
    /// Bytes sent.
    pub sent_bytes: u64,
    /// Unix time of the last acknowledgement (0: none yet).
    pub last_ack_unix: u64,
    /// Saved log positions that could not be resumed.
    pub positions_lost: u64,
}

/// The `[audit]` section's counters: reading the log, the ring of recent events, and the
/// root-cause analyses run on it.
#[derive(Debug, Clone, Default)]
pub struct AuditMetrics {
    /// Lines read.
    pub lines: u64,
    /// Records parsed.
    pub records: u64,
    /// Events assembled.
    pub events: u64,
    /// Lines that are no audit record (or too long), skipped.
    pub malformed: u64,
    /// Records the kernel reported lost (the sum of `type=LOST` records' `lost=`).
    pub lost: u64,
    /// Runs of audit serials never seen (not necessarily loss: unlogged events spend serials).
    pub serial_gaps: u64,
    /// Events without a SYSCALL record (userspace messages), which the analysis does not use.
    pub unused_events: u64,
    /// Times the followed log was rotated.
    pub rotations: u64,
    /// Times the followed log was found truncated.
    pub truncations: u64,
    /// Times the audisp socket was reconnected.
    pub reconnects: u64,
    /// Read errors (the log is then followed again from its end).
    pub read_errors: u64,
    /// Whether the log's content at start has been read.
    pub caught_up: bool,
    /// Events kept in memory.
    pub retained: u64,
    /// Their approximate memory.
    pub retained_bytes: u64,
    /// The time between the oldest and the newest kept event.
    pub retained_seconds: f64,
    /// Events dropped because they were older than `retain_seconds`.
    pub dropped_age: u64,
    /// Events dropped because `max_events` were kept.
    pub dropped_count: u64,
    /// Root-cause analyses run, by outcome.
    pub analyses: Vec<(String, u64)>,
    /// How long they took (the wait for late records excluded).
    pub analysis_seconds: Histogram,
    /// The last analysis's provenance graph: nodes.
    pub last_graph_nodes: u64,
    /// The last analysis's provenance graph: edges.
    pub last_graph_edges: u64,
}

/// A Thing's probe latencies as a Prometheus histogram.
struct Latency<'a>(&'a Histogram);

impl EncodeMetric for Latency<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        // prometheus-client takes per-bucket counts and accumulates them itself
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS.len() + 1);
        let mut below = 0;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let cumulative = self.0.buckets.get(i).copied().unwrap_or(0);
            buckets.push((*bound, cumulative - below));
            below = cumulative;
        }
        buckets.push((f64::INFINITY, self.0.count.saturating_sub(below)));
        encoder.encode_histogram::<NoLabelSet>(self.0.sum, self.0.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Per network interface (and the model scoring it) counters.
#[derive(Debug, Clone, Default)]
pub struct NetMetrics {
    /// Capture interface.
    pub interface: String,
    /// Model kind scoring it.
    pub model: String,
    /// Packets captured.
    pub packets: u64,
    /// Feature rows scored.
    pub rows_scored: u64,
    /// Rows scoring over the model's threshold.
    pub rows_flagged: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Flagged rows inside an alert's cooldown that raised no new alert.
    pub suppressed: u64,
    /// Packets the capture dropped (kernel buffer full).
    pub capture_dropped: u64,
}

/// The text formats `prometheus-client` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (what Prometheus asks for first).
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (for clients that do not ask for OpenMetrics).
    Prometheus,
}

impl Format {
    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }

    /// The format a scraper's `Accept` header asks for: OpenMetrics when it accepts
    /// `application/openmetrics-text` (Prometheus sends that first), the Prometheus text format
    /// otherwise (curl, older scrapers, no header), as Go's `promhttp` negotiates.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let wants_openmetrics = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                let refused = parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f64>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if wants_openmetrics {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// The registry /metrics encodes: one collector that reads the latest snapshot per scrape.
#[derive(Debug)]
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    /// `latest` returns the snapshot to show; it is called once per scrape.
    pub fn new(latest: impl Fn() -> MetricsSnapshot + Send + Sync + 'static) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SnapshotCollector(latest)));
        Exposition { registry }
    }

    /// The metrics in `format`.
    pub fn render(&self, format: Format) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)?
            }
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?
            }
        }
        Ok(out)
    }
}

struct SnapshotCollector<F>(F);

impl<F> fmt::Debug for SnapshotCollector<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SnapshotCollector")
    }
}

impl<F: Fn() -> MetricsSnapshot + Send + Sync + 'static> Collector for SnapshotCollector<F> {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        (self.0)().encode(encoder)
    }
}

/// The name to register a family under: `prometheus-client` appends `_total` to counters itself,
/// so the tables below spell the names as exposed and counters are registered without it.
fn family_name(exposed: &str, kind: MetricType) -> &str {
    match kind {
        MetricType::Counter => exposed.strip_suffix("_total").unwrap_or(exposed),
        _ => exposed,
    }
}

/// One labelled family: a `# HELP`/`# TYPE` descriptor and a sample per row. A family without
/// rows (no container yet, no network capture) is left out, as Go's client does: a descriptor
/// alone says nothing, and some strict parsers read the next family's descriptor into it.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    exposed: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result {
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(family_name(exposed, kind), help, None, kind)?;
    for (labels, value) in rows {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One unlabelled sample; `unit` (OpenMetrics `# UNIT`) is the name's last word.
fn single<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    exposed: &str,
    help: &str,
    unit: Option<Unit>,
    value: M,
) -> fmt::Result {
    let kind = value.metric_type();
    let mut name = family_name(exposed, kind);
    if let Some(unit) = &unit {
        name = name
            .strip_suffix(unit.as_str())
            .and_then(|n| n.strip_suffix('_'))
            .unwrap_or(name);
    }
    value.encode(encoder.encode_descriptor(name, help, unit.as_ref(), kind)?)
}

impl MetricsSnapshot {
    /// Encodes every family, in a fixed order, through `prometheus-client`.
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        type Field = fn(&ContainerMetrics) -> u64;
        let per_container: [(&str, MetricType, &str, Field); 13] = [
            (
                "mamori_events_total",
                Counter,
                "System calls received per container.",
                |c| c.events,
            ),
            (
                "mamori_monitored_events_total",
                Counter,
                "System calls that matched the model's class table.",
                |c| c.stats.monitored,
            ),
            (
                "mamori_windows_scored_total",
                Counter,
                "Windows scored.",
                |c| c.stats.windows,
            ),
            (
                "mamori_windows_flagged_total",
                Counter,
                "Windows scoring over the model's threshold.",
                |c| c.stats.flagged,
            ),
            ("mamori_alerts_total", Counter, "Alerts raised.", |c| {
                c.stats.alerts
            }),
            (
                "mamori_alerts_suppressed_total",
                Counter,
                "Flagged windows inside an alert's cooldown that raised no new alert.",
                |c| c.stats.suppressed,
            ),
            (
                "mamori_idle_streams_closed_total",
                Counter,
                "Streams closed after no call for limits.idle_stream_seconds (exit not seen).",
                |c| c.stats.idle_streams_closed,
            ),
            (
                "mamori_streams_evicted_total",
                Counter,
                "Streams closed because the container had more than 65536 open at once (idlest half, scored as ended).",
                |c| c.stats.streams_evicted,
            ),
            (
                "mamori_context_novelties_total",
                Counter,
                "Programs, requests and network standard input lines never seen in training (every occurrence).",
                |c| c.stats.novelties,
            ),
            (
                "mamori_context_alerts_total",
                Counter,
                "Alerts raised by first-time programs, requests and network standard input lines (also in mamori_alerts_total).",
                |c| c.stats.context_alerts,
            ),
            (
                "mamori_context_declared_reads_total",
                Counter,
                "Requests never seen in training that the model's Thing Description declares as reads (not raised).",
                |c| c.stats.declared_reads,
            ),
            (
                "mamori_joined_short_streams_total",
                Counter,
                "Threads shorter than a window that were already running when watching began (not scored).",
                |c| c.stats.joined_partial_skipped,
            ),
            (
                "mamori_open_streams",
                Gauge,
                "Threads or processes with a partial window.",
                |c| c.open_streams,
            ),
        ];
        for (name, kind, help, field) in per_container {
            let rows = self.containers.iter().map(|c| {
                let labels = [
                    ("container", c.container.as_str()),
                    ("image", c.image.as_str()),
                    ("model", c.model.as_str()),
                ];
                (labels, field(c))
            });
            match kind {
                Counter => family(
                    &mut e,
                    name,
                    help,
                    kind,
                    rows.map(|(l, v)| (l, ConstCounter::new(v))),
                )?,
                _ => family(
                    &mut e,
                    name,
                    help,
                    kind,
                    rows.map(|(l, v)| (l, ConstGauge::new(v))),
                )?,
            }
        }
        single(
            &mut e,
            "mamori_events_per_second",
            "System calls per second over the last few seconds.",
            None,
            ConstGauge::new(self.events_per_second),
        )?;
        single(
            &mut e,
            "mamori_probe_records_total",
            "Records the eBPF probe wrote to its ring buffer.",
            None,
            ConstCounter::new(self.probe_records),
        )?;
        family(
            &mut e,
            "mamori_probe_dropped_total",
            "Records the eBPF probe dropped because its ring buffer was full, per CPU.",
            Counter,
            self.probe_dropped_per_cpu
                .iter()
                .enumerate()
                .map(|(cpu, &n)| ([("cpu", cpu)], ConstCounter::new(n))),
        )?;
        let counters: [(&str, &str, u64); 5] = [
            (
                "mamori_probe_undecodable_total",
                "Probe records that could not be decoded (lost, like drops).",
                self.probe_undecodable,
            ),
            (
                "mamori_queue_full_total",
                "Times capture waited because detection was behind (back-pressure).",
                self.queue_full,
            ),
            (
                "mamori_alerts_dropped_total",
                "Alerts dropped because the sink queue was full.",
                self.alerts_dropped,
            ),
            (
                "mamori_webhook_failures_total",
                "Alert webhook deliveries that failed.",
                self.webhook_failures,
            ),
            (
                "mamori_unattributed_events_total",
                "System calls from cgroups that are no known container.",
                self.unattributed_events,
            ),
        ];
        for (name, help, v) in counters {
            single(&mut e, name, help, None, ConstCounter::new(v))?;
        }
        single(
            &mut e,
            "mamori_resident_memory_bytes",
            "Resident memory of the agent.",
            Some(Unit::Bytes),
            ConstGauge::new(self.rss_bytes),
        )?;
        single(
            &mut e,
            "mamori_uptime_seconds",
            "Seconds since the agent started.",
            Some(Unit::Seconds),
            ConstGauge::new(self.uptime_seconds),
        )?;
        type NetField = fn(&NetMetrics) -> u64;
        let per_interface: [(&str, &str, NetField); 6] = [
            (
                "mamori_net_packets_total",
                "Packets captured per interface.",
                |n| n.packets,
            ),
            (
                "mamori_net_rows_scored_total",
                "Traffic feature rows scored.",
                |n| n.rows_scored,
            ),
            (
                "mamori_net_rows_flagged_total",
                "Traffic feature rows scoring over the model's threshold.",
                |n| n.rows_flagged,
            ),
            ("mamori_net_alerts_total", "Network alerts raised.", |n| {
                n.alerts
            }),
            (
                "mamori_net_alerts_suppressed_total",
                "Flagged traffic rows inside an alert's cooldown that raised no new alert.",
                |n| n.suppressed,
            ),
            (
                "mamori_net_capture_dropped_total",
                "Packets the capture dropped because its buffer was full.",
                |n| n.capture_dropped,
            ),
        ];
        for (name, help, field) in per_interface {
            let rows = self.net.iter().map(|n| {
                let labels = [
                    ("interface", n.interface.as_str()),
                    ("model", n.model.as_str()),
                ];
                (labels, ConstCounter::new(field(n)))
            });
            family(&mut e, name, help, Counter, rows)?;
        }
        family(
            &mut e,
            "mamori_sink_errors_total",
            "Alert or incident deliveries that failed, per sink.",
            Counter,
            self.sink_errors
                .iter()
                .map(|(sink, n)| ([("sink", sink.as_str())], ConstCounter::new(*n))),
        )?;
        family(
            &mut e,
            "mamori_alerts_delivered_total",
            "Alerts handed to the sinks, by detector family and severity.",
            Counter,
            self.alerts_delivered.iter().map(|(source, severity, n)| {
                (
                    [("source", source.as_str()), ("severity", severity.as_str())],
                    ConstCounter::new(*n),
                )
            }),
        )?;
        family(
            &mut e,
            "mamori_incidents_total",
            "Incident records handed to the sinks, by kind.",
            Counter,
            self.incidents
                .iter()
                .map(|(kind, n)| ([("kind", kind.as_str())], ConstCounter::new(*n))),
        )?;
        self.encode_things(&mut e)?;
        if let Some(a) = &self.audit {
            a.encode(&mut e)?;
        }
        if let Some(s) = &self.ship {
            s.encode(&mut e)?;
        }
        Ok(())
    }

    /// The WoT monitor's families, one series per Thing.
    fn encode_things(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let thing = |t: &ThingStatus| [("thing", t.name.clone())];
        family(
            e,
            "mamori_thing_up",
            "1 when the Thing's last probe round conformed to its Thing Description.",
            Gauge,
            self.things
                .iter()
                .map(|t| (thing(t), ConstGauge::new(i64::from(t.up)))),
        )?;
        family(
            e,
            "mamori_thing_state",
            "1 for the Thing's current state (healthy, suspect, failed, recovering, quarantined, invalid, unknown).",
            Gauge,
            self.things.iter().flat_map(|t| {
                State::ALL.iter().map(move |s| {
                    (
                        [("thing", t.name.clone()), ("state", s.as_str().to_string())],
                        ConstGauge::new(i64::from(t.state == Some(*s))),
                    )
                })
            }),
        )?;
        family(
            e,
            "mamori_thing_probe_duration_seconds",
            "Property read latency per Thing.",
            MetricType::Histogram,
            self.things.iter().map(|t| (thing(t), Latency(&t.latency))),
        )?;
        type Field = fn(&ThingStatus) -> u64;
        let counters: [(&str, &str, Field); 5] = [
            ("mamori_thing_rounds_total", "Probe rounds.", |t| t.rounds),
            (
                "mamori_thing_bad_rounds_total",
                "Probe rounds that did not conform.",
                |t| t.bad_rounds,
            ),
            (
                "mamori_thing_events_total",
                "Events and observed values received (long-poll).",
                |t| t.events_received,
            ),
            (
                "mamori_thing_restarts_total",
                "Restarts of the Thing's container.",
                |t| t.restarts,
            ),
            (
                "mamori_thing_quarantines_total",
                "Times the crash-loop guard quarantined the Thing.",
                |t| t.quarantines,
            ),
        ];
        for (name, help, field) in counters {
            family(
                e,
                name,
                help,
                Counter,
                self.things
                    .iter()
                    .map(|t| (thing(t), ConstCounter::new(field(t)))),
            )?;
        }
        family(
            e,
            "mamori_thing_schema_violations_total",
            "Values that broke their DataSchema, by kind (type, minimum, maximum, enum, required, …).",
            Counter,
            self.things.iter().flat_map(|t| {
                t.violations.iter().map(|(kind, n)| {
                    ([("thing", t.name.clone()), ("kind", kind.clone())], ConstCounter::new(*n))
                })
            }),
        )?;
        family(
            e,
            "mamori_thing_read_errors_total",
            "Property reads without a usable reply, by error (timeout, connect, status, too-large, not-json).",
            Counter,
            self.things.iter().flat_map(|t| {
                t.read_errors.iter().map(|(error, n)| {
                    ([("thing", t.name.clone()), ("error", error.clone())], ConstCounter::new(*n))
                })
            }),
        )
    }
}

impl ShipMetrics {
    /// The `mamori_ship_*` families.
    fn encode(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        family(
            e,
            "mamori_ship_sealed_records_total",
            "Records sealed into the forward-secure chain, by kind (audit, alert, incident, notice, heartbeat).",
            MetricType::Counter,
            self.sealed
                .iter()
                .map(|(k, n)| ([("kind", k.as_str())], ConstCounter::new(*n))),
        )?;
        let counters: [(&str, &str, u64); 7] = [
            (
                "mamori_ship_spool_full_events_total",
                "Times the spool filled and intake paused.",
                self.spool_full_events,
            ),
            (
                "mamori_ship_dropped_total",
                "Alerts and incidents dropped before sealing (intake queue full).",
                self.dropped,
            ),
            (
                "mamori_ship_sessions_total",
                "Sessions established with the collector.",
                self.sessions,
            ),
            (
                "mamori_ship_connect_failures_total",
                "Connections to the collector that failed or ended in an error.",
                self.connect_failures,
            ),
            (
                "mamori_ship_sent_records_total",
                "Records sent to the collector (resends included).",
                self.sent_records,
            ),
            (
                "mamori_ship_sent_bytes_total",
                "Bytes of records sent to the collector.",
                self.sent_bytes,
            ),
            (
                "mamori_ship_positions_lost_total",
                "Saved log positions that could not be resumed (the file was rotated away).",
                self.positions_lost,
            ),
        ];
        for (name, help, v) in counters {
            single(e, name, help, None, ConstCounter::new(v))?;
        }
        let gauges: [(&str, &str, u64); 6] = [
            (
                "mamori_ship_committed_seq",
                "Last sequence number sealed and on disk.",
                self.committed,
            ),
            (
                "mamori_ship_acked_seq",
                "Last sequence number the collector acknowledged.",
                self.acked,
            ),
            (
                "mamori_ship_spool_bytes",
                "Bytes of unacknowledged records in the spool.",
                self.spool_bytes,
            ),
            (
                "mamori_ship_spool_full",
                "1 while the spool is full and intake is paused.",
                u64::from(self.spool_full),
            ),
            (
                "mamori_ship_connected",
                "1 while connected to the collector.",
                u64::from(self.connected),
            ),
            (
                "mamori_ship_last_ack_timestamp_seconds",
                "Unix time of the collector's last acknowledgement (0: none yet).",
                self.last_ack_unix,
            ),
        ];
        for (name, help, v) in gauges {
            single(e, name, help, None, ConstGauge::new(v))?;
        }
        Ok(())
    }
}

impl AuditMetrics {
    /// The `mamori_audit_*` families.
    fn encode(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let counters: [(&str, &str, u64); 11] = [
            (
                "mamori_audit_lines_total",
                "Audit log lines read.",
                self.lines,
            ),
            (
                "mamori_audit_records_total",
                "Audit records parsed.",
                self.records,
            ),
            (
                "mamori_audit_events_total",
                "Audit events assembled from the records.",
                self.events,
            ),
            (
                "mamori_audit_malformed_lines_total",
                "Audit log lines that are no audit record (or too long), skipped.",
                self.malformed,
            ),
            (
                "mamori_audit_lost_total",
                "Audit records the kernel reported lost (the sum of LOST records' lost=).",
                self.lost,
            ),
            (
                "mamori_audit_serial_gaps_total",
                "Runs of audit serials never seen (events no rule logs spend serials too).",
                self.serial_gaps,
            ),
            (
                "mamori_audit_unused_events_total",
                "Audit events without a SYSCALL record, not kept for the analysis.",
                self.unused_events,
            ),
            (
                "mamori_audit_rotations_total",
                "Times the followed audit log was rotated.",
                self.rotations,
            ),
            (
                "mamori_audit_truncations_total",
                "Times the followed audit log was found truncated.",
                self.truncations,
            ),
            (
                "mamori_audit_reconnects_total",
                "Times the audisp socket was reconnected.",
                self.reconnects,
            ),
            (
                "mamori_audit_read_errors_total",
                "Errors reading the audit log (it is then followed again from its end).",
                self.read_errors,
            ),
        ];
        for (name, help, v) in counters {
            single(e, name, help, None, ConstCounter::new(v))?;
        }
        single(
            e,
            "mamori_audit_caught_up",
            "Whether the audit log's content at start has been read (1) or not yet (0).",
            None,
            ConstGauge::new(i64::from(self.caught_up)),
        )?;
        single(
            e,
            "mamori_audit_events_retained",
            "Audit events kept in memory for root-cause analysis.",
            None,
            ConstGauge::new(self.retained),
        )?;
        single(
            e,
            "mamori_audit_retained_bytes",
            "Approximate memory of the audit events kept.",
            Some(Unit::Bytes),
            ConstGauge::new(self.retained_bytes),
        )?;
        single(
            e,
            "mamori_audit_retained_seconds",
            "Time between the oldest and the newest audit event kept.",
            Some(Unit::Seconds),
            ConstGauge::new(self.retained_seconds),
        )?;
        family(
            e,
            "mamori_audit_events_dropped_total",
            "Audit events dropped from memory: older than audit.retain_seconds (age) or beyond audit.max_events (count).",
            MetricType::Counter,
            [("age", self.dropped_age), ("count", self.dropped_count)]
                .map(|(reason, n)| ([("reason", reason)], ConstCounter::new(n))),
        )?;
        family(
            e,
            "mamori_audit_analyses_total",
            "Root-cause analyses run before a container reset, by outcome.",
            MetricType::Counter,
            self.analyses
                .iter()
                .map(|(outcome, n)| ([("outcome", outcome.as_str())], ConstCounter::new(*n))),
        )?;
        single(
            e,
            "mamori_audit_analysis_duration_seconds",
            "Time a root-cause analysis took (the wait for late records excluded).",
            // (no # UNIT: strict OpenMetrics parsers refuse one on a histogram)
            None,
            Latency(&self.analysis_seconds),
        )?;
        single(
            e,
            "mamori_audit_last_graph_nodes",
            "Nodes of the last analysis's provenance graph.",
            None,
            ConstGauge::new(self.last_graph_nodes),
        )?;
        single(
            e,
            "mamori_audit_last_graph_edges",
            "Edges of the last analysis's provenance graph.",
            None,
            ConstGauge::new(self.last_graph_edges),
        )
    }
}

/// Resident set size of this process, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use openmetrics_parser::{
        openmetrics::parse_openmetrics, prometheus::parse_prometheus, MetricFamily,
        OpenMetricsType, OpenMetricsValue, PrometheusType, PrometheusValue,
    };

    /// A snapshot with a label value that needs escaping and every section filled.
    pub(crate) fn sample_snapshot() -> MetricsSnapshot {
        MetricsSnapshot {
            containers: vec![
                ContainerMetrics {
                    container: "cam\"1".into(),
                    image: "motion".into(),
                    model: "stide".into(),
                    events: 42,
                    stats: MonitorStats {
                        windows: 9,
                        alerts: 1,
                        ..MonitorStats::default()
                    },
                    open_streams: 3,
                },
                ContainerMetrics {
                    container: "db".into(),
                    image: "postgres:16".into(),
                    model: "none".into(),
                    events: 7,
                    ..ContainerMetrics::default()
                },
            ],
            events_per_second: 12.5,
            probe_records: 49,
            probe_dropped_per_cpu: vec![0, 3],
            webhook_failures: 2,
            rss_bytes: 4096 * 1000,
            uptime_seconds: 61.25,
            net: vec![NetMetrics {
                interface: "eth0".into(),
                model: "forest".into(),
                packets: 1000,
                rows_scored: 20,
                rows_flagged: 4,
                alerts: 1,
                suppressed: 2,
                capture_dropped: 5,
            }],
            sink_errors: vec![("webhook".into(), 2), ("file".into(), 0)],
            alerts_delivered: vec![("network".into(), "warning".into(), 4)],
            ..MetricsSnapshot::default()
        }
    }

    pub(crate) fn render(s: &MetricsSnapshot, format: Format) -> String {
        let s = s.clone();
        Exposition::new(move || s.clone())
            .render(format)
            .expect("encodes")
    }

    /// The value of the sample of `family` whose labels are exactly `labels`.
    pub(crate) fn om_value(
        families: &std::collections::HashMap<
            String,
            MetricFamily<OpenMetricsType, OpenMetricsValue>,
        >,
        family: &str,
        labels: &[(&str, &str)],
    ) -> f64 {
        let f = families
            .get(family)
            .unwrap_or_else(|| panic!("no family {family}"));
        let sample = f
            .iter_samples()
            .find(|s| {
                let set = s.get_labelset().expect("labels");
                set.iter().count() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| set.get_label_value(k) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no sample {family}{labels:?}"));
        match &sample.value {
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            OpenMetricsValue::Gauge(g) => g.as_f64(),
            other => panic!("{family} is {other:?}"),
        }
    }

    #[test]
    fn openmetrics_output_parses_with_every_name_type_and_label() {
        let text = render(&sample_snapshot(), Format::OpenMetrics);
        assert!(text.ends_with("# EOF\n"), "{text}");
        let parsed = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let families = &parsed.families;
        // family names: counters without `_total` (OpenMetrics), samples with it
        let counters = [
            "mamori_events",
            "mamori_monitored_events",
            "mamori_windows_scored",
            "mamori_windows_flagged",
            "mamori_alerts",
            "mamori_alerts_suppressed",
            "mamori_idle_streams_closed",
            "mamori_streams_evicted",
            "mamori_context_novelties",
            "mamori_context_alerts",
            "mamori_context_declared_reads",
            "mamori_joined_short_streams",
            "mamori_probe_records",
            "mamori_probe_dropped",
            "mamori_probe_undecodable",
            "mamori_queue_full",
            "mamori_alerts_dropped",
            "mamori_webhook_failures",
            "mamori_unattributed_events",
            "mamori_net_packets",
            "mamori_net_rows_scored",
            "mamori_net_rows_flagged",
            "mamori_net_alerts",
            "mamori_net_alerts_suppressed",
            "mamori_net_capture_dropped",
            "mamori_sink_errors",
            "mamori_alerts_delivered",
        ];
        let gauges = [
            "mamori_open_streams",
            "mamori_events_per_second",
            "mamori_resident_memory_bytes",
            "mamori_uptime_seconds",
        ];
        for name in counters {
            let f = families.get(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(f.family_type, OpenMetricsType::Counter, "{name}");
            assert!(!f.help.is_empty(), "{name}");
            assert!(
                text.contains(&format!("\n{name}_total")),
                "{name} is exposed as {name}_total"
            );
        }
        for name in gauges {
            let f = families.get(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(f.family_type, OpenMetricsType::Gauge, "{name}");
        }
        assert_eq!(families.len(), counters.len() + gauges.len());
        assert_eq!(families["mamori_resident_memory_bytes"].unit, "bytes");
        assert_eq!(families["mamori_uptime_seconds"].unit, "seconds");
        assert_eq!(
            families["mamori_alerts"].help, "Alerts raised.",
            "help texts are kept"
        );

        // the escaped quote comes back as the container's real name
        let cam = [
            ("container", "cam\"1"),
            ("image", "motion"),
            ("model", "stide"),
        ];
        assert_eq!(om_value(families, "mamori_events", &cam), 42.0);
        assert_eq!(om_value(families, "mamori_windows_scored", &cam), 9.0);
        assert_eq!(om_value(families, "mamori_alerts", &cam), 1.0);
        assert_eq!(om_value(families, "mamori_open_streams", &cam), 3.0);
        let db = [
            ("container", "db"),
            ("image", "postgres:16"),
            ("model", "none"),
        ];
        assert_eq!(om_value(families, "mamori_events", &db), 7.0);
        assert_eq!(om_value(families, "mamori_alerts", &db), 0.0);
        assert_eq!(families["mamori_events"].iter_samples().count(), 2);

        assert_eq!(om_value(families, "mamori_events_per_second", &[]), 12.5);
        assert_eq!(om_value(families, "mamori_probe_records", &[]), 49.0);
        assert_eq!(
            om_value(families, "mamori_probe_dropped", &[("cpu", "0")]),
            0.0
        );
        assert_eq!(
            om_value(families, "mamori_probe_dropped", &[("cpu", "1")]),
            3.0
        );
        assert_eq!(om_value(families, "mamori_webhook_failures", &[]), 2.0);
        assert_eq!(om_value(families, "mamori_queue_full", &[]), 0.0);
        assert_eq!(
            om_value(families, "mamori_resident_memory_bytes", &[]),
            4_096_000.0
        );
        assert_eq!(om_value(families, "mamori_uptime_seconds", &[]), 61.25);

        let eth0 = [("interface", "eth0"), ("model", "forest")];
        assert_eq!(om_value(families, "mamori_net_packets", &eth0), 1000.0);
        assert_eq!(om_value(families, "mamori_net_rows_scored", &eth0), 20.0);
        assert_eq!(om_value(families, "mamori_net_rows_flagged", &eth0), 4.0);
        assert_eq!(om_value(families, "mamori_net_alerts", &eth0), 1.0);
        assert_eq!(
            om_value(families, "mamori_net_alerts_suppressed", &eth0),
            2.0
        );
        assert_eq!(om_value(families, "mamori_net_capture_dropped", &eth0), 5.0);
        assert_eq!(
            om_value(families, "mamori_sink_errors", &[("sink", "webhook")]),
            2.0
        );
        assert_eq!(
            om_value(families, "mamori_sink_errors", &[("sink", "file")]),
            0.0
        );
        assert_eq!(
            om_value(
                families,
                "mamori_alerts_delivered",
                &[("source", "network"), ("severity", "warning")]
            ),
            4.0
        );
    }

    #[test]
    fn prometheus_text_output_parses_with_the_exposed_names() {
        let text = render(&sample_snapshot(), Format::Prometheus);
        let parsed = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let families = &parsed.families;
        let counter = |name: &str, labels: &[(&str, &str)]| -> f64 {
            let f = families
                .get(name)
                .unwrap_or_else(|| panic!("no family {name}:\n{text}"));
            assert_eq!(f.family_type, PrometheusType::Counter, "{name}");
            let s = f
                .iter_samples()
                .find(|s| {
                    let set = s.get_labelset().expect("labels");
                    labels
                        .iter()
                        .all(|(k, v)| set.get_label_value(k) == Some(*v))
                })
                .unwrap_or_else(|| panic!("no sample {name}{labels:?}"));
            match &s.value {
                PrometheusValue::Counter(c) => c.value.as_f64(),
                other => panic!("{name} is {other:?}"),
            }
        };
        // in the 0.0.4 format the family is named as exposed, `_total` included
        assert_eq!(
            counter("mamori_events_total", &[("container", "cam\"1")]),
            42.0
        );
        assert_eq!(counter("mamori_probe_dropped_total", &[("cpu", "1")]), 3.0);
        assert_eq!(
            counter("mamori_net_packets_total", &[("interface", "eth0")]),
            1000.0
        );
        assert_eq!(
            counter("mamori_sink_errors_total", &[("sink", "webhook")]),
            2.0
        );
        assert_eq!(
            families["mamori_resident_memory_bytes"].family_type,
            PrometheusType::Gauge
        );
        assert_eq!(families.len(), 31);
    }

    #[test]
    fn an_empty_snapshot_shows_the_unlabelled_families_only() {
        for format in [Format::OpenMetrics, Format::Prometheus] {
            let text = render(&MetricsSnapshot::default(), format);
            let names: Vec<String> = match format {
                Format::OpenMetrics => parse_openmetrics(&text)
                    .unwrap_or_else(|e| panic!("{e:?}\n{text}"))
                    .families
                    .into_keys()
                    .collect(),
                Format::Prometheus => parse_prometheus(&text)
                    .unwrap_or_else(|e| panic!("{e:?}\n{text}"))
                    .families
                    .into_keys()
                    .collect(),
            };
            assert_eq!(names.len(), 9, "{names:?}");
            assert!(!text.contains("mamori_events_total"), "{text}");
            assert!(!text.contains("mamori_net_"), "{text}");
            assert!(text.contains("\nmamori_probe_records_total 0\n"), "{text}");
        }
    }

    #[test]
    fn the_format_follows_the_accept_header() {
        let prometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
                          application/openmetrics-text;version=0.0.1;q=0.5,\
                          text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
                          text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; q=0")),
            Format::Prometheus
        );
    }

    #[test]
    fn thing_families_parse_as_openmetrics_with_a_latency_histogram() {
        let mut latency = Histogram::default();
        for seconds in [0.0008, 0.003, 0.003, 0.2, 4.0] {
            latency.observe(seconds);
        }
        let thing = ThingStatus {
            name: "pump \"1\"".into(),
            state: Some(State::Recovering),
            up: false,
            rounds: 10,
            bad_rounds: 3,
            restarts: 1,
            latency,
            violations: [("maximum".to_string(), 2)].into_iter().collect(),
            read_errors: [("timeout".to_string(), 4)].into_iter().collect(),
            ..ThingStatus::default()
        };
        let snapshot = MetricsSnapshot {
            things: vec![thing],
            incidents: vec![("recovery".into(), 1)],
            ..MetricsSnapshot::default()
        };
        let text = render(&snapshot, Format::OpenMetrics);
        let parsed = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let families = &parsed.families;
        let pump = [("thing", "pump \"1\"")];
        assert_eq!(om_value(families, "mamori_thing_up", &pump), 0.0);
        assert_eq!(om_value(families, "mamori_thing_restarts", &pump), 1.0);
        assert_eq!(om_value(families, "mamori_thing_bad_rounds", &pump), 3.0);
        let state = |s: &str| {
            om_value(
                families,
                "mamori_thing_state",
                &[("thing", "pump \"1\""), ("state", s)],
            )
        };
        assert_eq!((state("recovering"), state("healthy")), (1.0, 0.0));
        assert_eq!(
            om_value(
                families,
                "mamori_thing_schema_violations",
                &[("thing", "pump \"1\""), ("kind", "maximum")]
            ),
            2.0
        );
        assert_eq!(
            om_value(
                families,
                "mamori_thing_read_errors",
                &[("thing", "pump \"1\""), ("error", "timeout")]
            ),
            4.0
        );
        assert_eq!(
            om_value(families, "mamori_incidents", &[("kind", "recovery")]),
            1.0
        );
        let h = &families["mamori_thing_probe_duration_seconds"];
        assert_eq!(h.family_type, OpenMetricsType::Histogram);
        // cumulative buckets as a scraper reads them: ≤1 ms: 1, ≤5 ms: 3, ≤250 ms: 4, +Inf: 5
        for (le, n) in [
            ("0.001", 1),
            ("0.005", 3),
            ("0.25", 4),
            ("2.5", 4),
            ("+Inf", 5),
        ] {
            let line = format!("mamori_thing_probe_duration_seconds_bucket{{le=\"{le}\",thing=\"pump \\\"1\\\"\"}} {n}");
            assert!(text.contains(&line), "{line} in\n{text}");
        }
        assert!(
            text.contains("mamori_thing_probe_duration_seconds_count{thing=\"pump \\\"1\\\"\"} 5"),
            "{text}"
        );
    }

    #[test]
    fn ship_families_parse_in_both_formats() {
        let snapshot = MetricsSnapshot {
            ship: Some(ShipMetrics {
                sealed: vec![("audit".into(), 90), ("alert".into(), 3)],
                committed: 93,
                acked: 80,
                spool_bytes: 2048,
                spool_full: true,
                spool_full_events: 1,
                connected: true,
                sessions: 2,
                connect_failures: 1,
                sent_records: 95,
                last_ack_unix: 1_765_000_000,
                ..ShipMetrics::default()
            }),
            ..MetricsSnapshot::default()
        };
        let text = render(&snapshot, Format::OpenMetrics);
        let parsed = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let f = &parsed.families;
        for (name, v) in [
            ("mamori_ship_committed_seq", 93.0),
            ("mamori_ship_acked_seq", 80.0),
            ("mamori_ship_spool_bytes", 2048.0),
            ("mamori_ship_spool_full", 1.0),
            ("mamori_ship_spool_full_events", 1.0),
            ("mamori_ship_connected", 1.0),
            ("mamori_ship_sessions", 2.0),
            ("mamori_ship_connect_failures", 1.0),
            ("mamori_ship_sent_records", 95.0),
        ] {
            assert_eq!(om_value(f, name, &[]), v, "{name}");
        }
        assert_eq!(
            om_value(f, "mamori_ship_sealed_records", &[("kind", "alert")]),
            3.0
        );
        let prom = render(&snapshot, Format::Prometheus);
        let parsed = parse_prometheus(&prom).unwrap_or_else(|e| panic!("{e:?}\n{prom}"));
        assert!(parsed
            .families
            .contains_key("mamori_ship_sealed_records_total"));
    }

    #[test]
    fn audit_families_parse_in_both_formats() {
        let mut seconds = Histogram::default();
        seconds.observe(0.03);
        let snapshot = MetricsSnapshot {
            audit: Some(AuditMetrics {
                lines: 40,
                records: 39,
                events: 12,
                malformed: 1,
                lost: 7,
                serial_gaps: 2,
                rotations: 1,
                caught_up: true,
                retained: 10,
                retained_bytes: 4096,
                retained_seconds: 12.5,
                dropped_age: 2,
                analyses: vec![("traced".into(), 1)],
                analysis_seconds: seconds,
                last_graph_nodes: 120,
                last_graph_edges: 300,
                ..AuditMetrics::default()
            }),
            ..MetricsSnapshot::default()
        };
        let text = render(&snapshot, Format::OpenMetrics);
        let parsed = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let f = &parsed.families;
        for (name, v) in [
            ("mamori_audit_lines", 40.0),
            ("mamori_audit_records", 39.0),
            ("mamori_audit_events", 12.0),
            ("mamori_audit_malformed_lines", 1.0),
            ("mamori_audit_lost", 7.0),
            ("mamori_audit_serial_gaps", 2.0),
            ("mamori_audit_rotations", 1.0),
            ("mamori_audit_caught_up", 1.0),
            ("mamori_audit_events_retained", 10.0),
            ("mamori_audit_retained_bytes", 4096.0),
            ("mamori_audit_retained_seconds", 12.5),
            ("mamori_audit_last_graph_nodes", 120.0),
            ("mamori_audit_last_graph_edges", 300.0),
        ] {
            assert_eq!(om_value(f, name, &[]), v, "{name}");
        }
        assert_eq!(
            om_value(f, "mamori_audit_events_dropped", &[("reason", "age")]),
            2.0
        );
        assert_eq!(
            om_value(f, "mamori_audit_events_dropped", &[("reason", "count")]),
            0.0
        );
        assert_eq!(
            om_value(f, "mamori_audit_analyses", &[("outcome", "traced")]),
            1.0
        );
        assert_eq!(
            f["mamori_audit_analysis_duration_seconds"].family_type,
            OpenMetricsType::Histogram
        );
        assert!(
            text.contains("mamori_audit_analysis_duration_seconds_bucket{le=\"0.05\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# HELP mamori_audit_lost Audit records the kernel"),
            "{text}"
        );
        let prom = render(&snapshot, Format::Prometheus);
        let parsed = parse_prometheus(&prom).unwrap_or_else(|e| panic!("{e:?}\n{prom}"));
        assert!(parsed.families.contains_key("mamori_audit_events_total"));
        assert!(prom.contains("\nmamori_audit_events_total 12\n"), "{prom}");
        // without [audit], no audit family
        let text = render(&MetricsSnapshot::default(), Format::OpenMetrics);
        assert!(!text.contains("mamori_audit"), "{text}");
    }
}
