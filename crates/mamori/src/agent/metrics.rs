//! Prometheus text exposition of the agent's counters, rendered at scrape time from a snapshot
//! the detection loop refreshes (so scraping never touches the hot path).

use std::fmt::Write;

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
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

impl MetricsSnapshot {
    /// The Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut o = String::new();
        type Field = fn(&ContainerMetrics) -> u64;
        let per_container: [(&str, &str, &str, Field); 9] = [
            (
                "mamori_events_total",
                "counter",
                "System calls received per container.",
                |c| c.events,
            ),
            (
                "mamori_monitored_events_total",
                "counter",
                "System calls that matched the model's class table.",
                |c| c.stats.monitored,
            ),
            (
                "mamori_windows_scored_total",
                "counter",
                "Windows scored.",
                |c| c.stats.windows,
            ),
            (
                "mamori_windows_flagged_total",
                "counter",
                "Windows scoring over the model's threshold.",
                |c| c.stats.flagged,
            ),
            ("mamori_alerts_total", "counter", "Alerts raised.", |c| {
                c.stats.alerts
            }),
            (
                "mamori_alerts_suppressed_total",
                "counter",
                "Flagged windows inside an alert's cooldown that raised no new alert.",
                |c| c.stats.suppressed,
            ),
            (
                "mamori_idle_streams_closed_total",
                "counter",
                "Streams closed after no call for limits.idle_stream_seconds (exit not seen).",
                |c| c.stats.idle_streams_closed,
            ),
            (
                "mamori_joined_short_streams_total",
                "counter",
                "Threads shorter than a window that were already running when watching began (not scored).",
                |c| c.stats.joined_partial_skipped,
            ),
            (
                "mamori_open_streams",
                "gauge",
                "Threads or processes with a partial window.",
                |c| c.open_streams,
            ),
        ];
        for (name, kind, help, field) in per_container {
            header(&mut o, name, kind, help);
            for c in &self.containers {
                let _ = writeln!(
                    o,
                    "{name}{{container=\"{}\",image=\"{}\",model=\"{}\"}} {}",
                    escape(&c.container),
                    escape(&c.image),
                    escape(&c.model),
                    field(c)
                );
            }
        }
        header(
            &mut o,
            "mamori_events_per_second",
            "gauge",
            "System calls per second over the last few seconds.",
        );
        let _ = writeln!(o, "mamori_events_per_second {:.1}", self.events_per_second);
        header(
            &mut o,
            "mamori_probe_records_total",
            "counter",
            "Records the eBPF probe wrote to its ring buffer.",
        );
        let _ = writeln!(o, "mamori_probe_records_total {}", self.probe_records);
        header(
            &mut o,
            "mamori_probe_dropped_total",
            "counter",
            "Records the eBPF probe dropped because its ring buffer was full, per CPU.",
        );
        for (cpu, n) in self.probe_dropped_per_cpu.iter().enumerate() {
            let _ = writeln!(o, "mamori_probe_dropped_total{{cpu=\"{cpu}\"}} {n}");
        }
        let scalars: [(&str, &str, &str, f64); 7] = [
            (
                "mamori_probe_undecodable_total",
                "counter",
                "Probe records that could not be decoded (lost, like drops).",
                self.probe_undecodable as f64,
            ),
            (
                "mamori_queue_full_total",
                "counter",
                "Times capture waited because detection was behind (back-pressure).",
                self.queue_full as f64,
            ),
            (
                "mamori_alerts_dropped_total",
                "counter",
                "Alerts dropped because the sink queue was full.",
                self.alerts_dropped as f64,
            ),
            (
                "mamori_webhook_failures_total",
                "counter",
                "Alert webhook deliveries that failed.",
                self.webhook_failures as f64,
            ),
            (
                "mamori_unattributed_events_total",
                "counter",
                "System calls from cgroups that are no known container.",
                self.unattributed_events as f64,
            ),
            (
                "mamori_resident_memory_bytes",
                "gauge",
                "Resident memory of the agent.",
                self.rss_bytes as f64,
            ),
            (
                "mamori_uptime_seconds",
                "gauge",
                "Seconds since the agent started.",
                self.uptime_seconds,
            ),
        ];
        for (name, kind, help, v) in scalars {
            header(&mut o, name, kind, help);
            let _ = writeln!(o, "{name} {v}");
        }
        o
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
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters_in_the_text_format() {
        let s = MetricsSnapshot {
            containers: vec![ContainerMetrics {
                container: "cam\"1".into(),
                image: "motion".into(),
                model: "stide".into(),
                events: 42,
                stats: MonitorStats {
                    alerts: 1,
                    ..MonitorStats::default()
                },
                ..ContainerMetrics::default()
            }],
            probe_dropped_per_cpu: vec![0, 3],
            ..MetricsSnapshot::default()
        };
        let text = s.render();
        assert!(
            text.contains(
                "mamori_events_total{container=\"cam\\\"1\",image=\"motion\",model=\"stide\"} 42\n"
            ),
            "{text}"
        );
        assert!(text.contains("mamori_probe_dropped_total{cpu=\"1\"} 3\n"));
        assert!(text.contains("# TYPE mamori_alerts_total counter\n"));
        // every sample line is `name{labels} value` or `name value`
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().expect("value");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
