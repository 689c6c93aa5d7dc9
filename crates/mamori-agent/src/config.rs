//! The agent's configuration file (TOML). Every field has a default, so `mamori agent` runs with
//! no file at all; `mamori agent --print-config` prints the defaults as a starting point.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Which capture engine feeds the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The eBPF probe (default): every container, low overhead.
    Ebpf,
    /// strace attached to each container's processes: no eBPF needed, but slow.
    Ptrace,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Ebpf => "ebpf",
            Backend::Ptrace => "ptrace",
        })
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ebpf" => Ok(Backend::Ebpf),
            "ptrace" => Ok(Backend::Ptrace),
            _ => Err(format!("unknown capture backend `{s}` (ebpf or ptrace)")),
        }
    }
}

/// The whole agent configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// What is captured.
    pub capture: CaptureConfig,
    /// Where models come from.
    pub models: ModelsConfig,
    /// When and where alerts go.
    pub alerts: AlertsConfig,
    /// The HTTP endpoint for /metrics and /healthz.
    pub http: HttpConfig,
    /// Memory and queue bounds.
    pub limits: LimitsConfig,
    /// Network anomaly detection on one interface (off unless an interface and a model are
    /// given).
    pub net: NetConfig,
    /// WoT Thing Description monitoring and container recovery.
    pub things: ThingsConfig,
    /// Linux Audit events kept for root-cause analysis before a container is reset (off unless
    /// a log or a socket is given).
    pub audit: AuditConfig,
    /// Tamper-evident shipping of the audit log and the agent's own alerts and incidents to a
    /// collector (off unless a collector is given).
    pub ship: ShipConfig,
}

/// `[ship]`: the audit log and the agent's alerts and incidents, sealed in a forward-secure
/// chain the moment they are produced, spooled on disk and sent to `mamori collect` over
/// mutual TLS (mamori-ship).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShipConfig {
    /// The collector, `HOST:PORT`. Empty: off.
    pub collector: String,
    /// The directory with `ca.pem`, `NAME.pem`, `NAME.key` (`mamori certs device NAME`).
    pub certs: PathBuf,
    /// This device's certificate name.
    pub name: String,
    /// The name on the collector's certificate (empty: the host in `collector`).
    pub server_name: String,
    /// Sealed records not yet acknowledged, and the chain's state.
    pub spool: PathBuf,
    /// auditd's log to ship (empty: `[audit] log` when that is set; "-": none).
    pub audit_log: PathBuf,
    /// Ship the agent's own alerts and incidents.
    pub alerts: bool,
    /// A heartbeat record after this long with nothing else (0: none).
    pub heartbeat_seconds: f64,
    /// Intake pauses, and an alert says so, when unacknowledged records take this many MiB.
    pub max_spool_mib: u64,
    /// fsync each commit.
    pub fsync: bool,
}

impl Default for ShipConfig {
    fn default() -> Self {
        ShipConfig {
            collector: String::new(),
            certs: PathBuf::new(),
            name: String::new(),
            server_name: String::new(),
            spool: PathBuf::from("/var/lib/mamori/spool"),
            audit_log: PathBuf::new(),
            alerts: true,
            heartbeat_seconds: 60.0,
            max_spool_mib: 256,
            fsync: true,
        }
    }
}

impl ShipConfig {
    /// True when a collector is given.
    pub fn enabled(&self) -> bool {
        !self.collector.is_empty()
    }

    /// Values that parse but cannot work, named by their key.
    pub fn check(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        anyhow::ensure!(
            self.collector
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
            "ship.collector must be HOST:PORT, got `{}`",
            self.collector
        );
        anyhow::ensure!(
            !self.certs.as_os_str().is_empty() && !self.name.is_empty(),
            "[ship] needs `certs` (the directory from `mamori certs device NAME`) and `name`"
        );
        anyhow::ensure!(
            self.heartbeat_seconds.is_finite() && self.heartbeat_seconds >= 0.0,
            "ship.heartbeat_seconds must be 0 or a positive number of seconds, got {}",
            self.heartbeat_seconds
        );
        anyhow::ensure!(
            self.max_spool_mib >= 1,
            "ship.max_spool_mib must be at least 1"
        );
        Ok(())
    }
}

/// What the agent does to a container a syscall or network alert names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnAlert {
    /// Nothing (report only).
    #[default]
    Off,
    /// Freeze the container (its memory and files stay for inspection).
    Pause,
    /// Restart it, with the Thing monitor's backoff and crash-loop guard.
    Restart,
}

impl std::str::FromStr for OnAlert {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(OnAlert::Off),
            "pause" => Ok(OnAlert::Pause),
            "restart" => Ok(OnAlert::Restart),
            _ => Err(format!("unknown response `{s}` (off, pause or restart)")),
        }
    }
}

/// `[things]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThingsConfig {
    /// Seconds between probe rounds of each Thing.
    pub interval_seconds: f64,
    /// Seconds a property read may take.
    pub timeout_seconds: f64,
    /// Bad rounds in a row that make a Thing failed (the first makes it suspect).
    pub fail_after: u32,
    /// Good rounds in a row that make it healthy again.
    pub recover_after: u32,
    /// Larger replies are refused (a device returning megabytes is broken or hostile).
    pub max_reply_bytes: usize,
    /// PEM file of extra CAs trusted for https Things (empty: the system's roots only).
    pub ca_file: PathBuf,
    /// Follow observable properties and events (long-poll) and check what arrives.
    pub subscribe: bool,
    /// Also watch containers labelled `mamori.thing=<TD URL>`, restarting them on failure.
    pub docker_labels: bool,
    /// Seconds between re-reading TD sources and labels for new Things.
    pub rediscover_seconds: f64,
    /// What to do to a container named by a syscall or network alert.
    pub on_alert: OnAlert,
    /// Restarts, backoff and the crash-loop guard.
    pub recovery: mamori_wot::recovery::RecoveryPolicy,
    /// The Things: `[[things.thing]]` with `td`, optional `name`, `container`, credentials
    /// (`basic_user`, `basic_password`, `bearer_token`) and `[[things.thing.expect]]`.
    pub thing: Vec<mamori_wot::monitor::ThingSpec>,
}

impl Default for ThingsConfig {
    fn default() -> Self {
        ThingsConfig {
            interval_seconds: 1.0,
            timeout_seconds: 0.8,
            fail_after: 2,
            recover_after: 2,
            max_reply_bytes: 1 << 20,
            ca_file: PathBuf::new(),
            subscribe: true,
            docker_labels: true,
            rediscover_seconds: 30.0,
            on_alert: OnAlert::Off,
            recovery: mamori_wot::recovery::RecoveryPolicy::default(),
            thing: Vec::new(),
        }
    }
}

impl ThingsConfig {
    /// Values that parse but cannot work, named by their key.
    pub fn check(&self) -> Result<()> {
        for (key, v) in [
            ("interval_seconds", self.interval_seconds),
            ("timeout_seconds", self.timeout_seconds),
            ("rediscover_seconds", self.rediscover_seconds),
        ] {
            anyhow::ensure!(
                v.is_finite() && v > 0.0,
                "things.{key} must be a positive number of seconds, got {v}"
            );
        }
        anyhow::ensure!(self.fail_after >= 1, "things.fail_after must be at least 1");
        anyhow::ensure!(
            self.recover_after >= 1,
            "things.recover_after must be at least 1"
        );
        anyhow::ensure!(
            self.max_reply_bytes >= 1024,
            "things.max_reply_bytes must be at least 1024"
        );
        self.recovery
            .check()
            .map_err(|e| anyhow::anyhow!("things.{e}"))?;
        for (i, t) in self.thing.iter().enumerate() {
            anyhow::ensure!(
                !t.td.is_empty(),
                "things.thing[{i}]: `td` (a TD's URL or file) is required"
            );
            for (j, e) in t.expect.iter().enumerate() {
                e.check()
                    .map_err(|why| anyhow::anyhow!("things.thing[{i}].expect[{j}]: {why}"))?;
            }
        }
        Ok(())
    }

    /// The monitor's settings.
    pub fn settings(&self) -> mamori_wot::monitor::MonitorSettings {
        mamori_wot::monitor::MonitorSettings {
            interval: std::time::Duration::from_secs_f64(self.interval_seconds),
            timeout: std::time::Duration::from_secs_f64(self.timeout_seconds),
            hysteresis: mamori_wot::health::Hysteresis {
                fail_after: self.fail_after,
                recover_after: self.recover_after,
            },
            recovery: self.recovery,
            subscribe: self.subscribe,
            rediscover: std::time::Duration::from_secs_f64(self.rediscover_seconds),
        }
    }
}

/// `[audit]`: the recent Linux Audit events (auditd's log, or its audisp `af_unix` socket) kept
/// in memory, and the provenance analysis run on them when a container is about to be reset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// auditd's log to follow (rotation included); its existing content is read at start so
    /// recent history is there from the first analysis. Empty: off.
    pub log: PathBuf,
    /// The audisp `af_unix` plugin's socket to read instead of a log (`args = 0640 PATH string`
    /// in its plugin config); only new events. Empty: off. At most one of `log` and `socket`.
    pub socket: PathBuf,
    /// Events older than this are dropped from memory.
    pub retain_seconds: f64,
    /// At most this many events are kept (the oldest go first).
    pub max_events: usize,
    /// How far before the decision to reset a container the analysis looks.
    pub lookback_seconds: f64,
    /// Events stamped up to this long after the decision are included, and the analysis waits
    /// up to this long for the reader to get past the decision (auditd writes an event when
    /// its call returns, an event is complete when the next one comes, and the log is polled).
    pub late_seconds: f64,
    /// At most this many events of the window are analysed (the most recent ones): bounds the
    /// time the analysis (and so the restart) takes on a busy host.
    pub max_analysis_events: usize,
    /// At most this many detection points (the container's new processes, the files they
    /// modified, its processes that were signalled), most recent first, are traced back.
    pub max_detection_points: usize,
    /// The provenance graph in the incident is cut to this many nodes (the entry's chain always
    /// shows).
    pub dot_max_nodes: usize,
    /// Programs of the container runtime, matched against a process's executable or command
    /// name (`*` matches any run of characters, `?` one): the processes a container start or a
    /// `docker exec` goes through (runc, the shim). They count among the container's processes
    /// for finding its descendants but are not its workload: they are no detection points, and
    /// an input they received is no entry into the container.
    pub runtime: Vec<String>,
    /// How audit events become graph edges (`read_mode`, `directory_reads`).
    pub build: mamori_prov::BuildOptions,
    /// What tracking does not follow: mamori-prov's defaults plus the Docker and containerd
    /// control sockets, which every container and every Docker client talk to.
    pub prune: mamori_prov::PruneRules,
}

impl Default for AuditConfig {
    fn default() -> Self {
        let mut prune = mamori_prov::PruneRules::default();
        prune.sockets.extend(
            [
                "unix:/var/run/docker.sock",
                "unix:/run/docker.sock",
                "unix:/var/run/docker/*",
                "unix:/run/docker/*",
                "unix:/run/containerd/*",
                "unix:/var/run/containerd/*",
                "unix:@/containerd-shim/*",
            ]
            .map(String::from),
        );
        AuditConfig {
            log: PathBuf::new(),
            socket: PathBuf::new(),
            retain_seconds: 900.0,
            max_events: 500_000,
            lookback_seconds: 300.0,
            late_seconds: 0.25,
            max_analysis_events: 200_000,
            max_detection_points: 64,
            dot_max_nodes: 200,
            runtime: [
                "*/runc",
                "runc",
                "runc:*",
                "*/containerd-shim*",
                "containerd-shim*",
            ]
            .map(String::from)
            .to_vec(),
            build: mamori_prov::BuildOptions::default(),
            prune,
        }
    }
}

impl AuditConfig {
    /// Whether a log or a socket is configured.
    pub fn enabled(&self) -> bool {
        !self.log.as_os_str().is_empty() || !self.socket.as_os_str().is_empty()
    }

    /// Values that parse but cannot work, named by their key.
    pub fn check(&self) -> Result<()> {
        anyhow::ensure!(
            self.log.as_os_str().is_empty() || self.socket.as_os_str().is_empty(),
            "audit.log and audit.socket are both set: read the log or the socket, not both"
        );
        for (key, v) in [
            ("retain_seconds", self.retain_seconds),
            ("lookback_seconds", self.lookback_seconds),
        ] {
            anyhow::ensure!(
                v.is_finite() && v > 0.0,
                "audit.{key} must be a positive number of seconds, got {v}"
            );
        }
        anyhow::ensure!(
            self.late_seconds.is_finite() && (0.0..=10.0).contains(&self.late_seconds),
            "audit.late_seconds must be between 0 and 10 seconds, got {}",
            self.late_seconds
        );
        anyhow::ensure!(
            self.lookback_seconds <= self.retain_seconds,
            "audit.lookback_seconds ({}) is longer than audit.retain_seconds ({}): the analysis \
             would look further back than events are kept",
            self.lookback_seconds,
            self.retain_seconds
        );
        for (key, v) in [
            ("max_events", self.max_events),
            ("max_analysis_events", self.max_analysis_events),
            ("max_detection_points", self.max_detection_points),
            ("dot_max_nodes", self.dot_max_nodes),
        ] {
            anyhow::ensure!(v >= 1, "audit.{key} must be at least 1");
        }
        for (i, p) in self.runtime.iter().enumerate() {
            anyhow::ensure!(
                !p.is_empty(),
                "audit.runtime[{i}] is empty (a pattern matching nothing)"
            );
        }
        Ok(())
    }
}

/// `[net]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Interface to capture on (empty: no network detection).
    pub interface: String,
    /// BPF filter in tcpdump syntax (empty: every packet), e.g. `not port 22`.
    pub filter: String,
    /// Detector file from `mamori net train`.
    pub model: PathBuf,
    /// Bytes kept of each packet (headers are all that is used).
    pub snaplen: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            interface: String::new(),
            filter: String::new(),
            model: PathBuf::new(),
            snaplen: 256,
        }
    }
}

/// `[capture]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Capture system calls (false: the agent only watches Things and, if set, the network).
    pub enabled: bool,
    /// `ebpf` or `ptrace`.
    pub backend: Backend,
    /// Container names or ids to watch; empty means every container.
    pub containers: Vec<String>,
    /// Also watch processes outside containers (scored with the model for image `host`).
    pub include_host: bool,
    /// Bytes of each written buffer the probe keeps for class rules (at most 256).
    pub write_bytes: u32,
    /// Record the request line of each connection accepted inside a watched container (the
    /// request signal; false keeps received data out of the probe entirely).
    pub request_data: bool,
    /// Ring-buffer size in MiB (a power of two).
    pub ring_mib: u32,
}

/// `[models]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Directory of per-image models written by `mamori learn` (`<image>.model`).
    pub dir: PathBuf,
}

/// `[alerts]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// JSON-lines file alerts are appended to (empty: none).
    pub file: PathBuf,
    /// Also print alerts on standard output.
    pub stdout: bool,
    /// URL alerts are POSTed to as JSON (empty: none).
    pub webhook: String,
    /// An alert fires at the K-th window (or row) over the threshold within `gap_seconds` of
    /// each other. Unset: 10 for system-call windows (`AlertRule::SYSCALL_MIN_FLAGGED`; the
    /// context signals alert at once), 1 for traffic rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_windows: Option<usize>,
    /// Flagged windows closer than this belong to the same incident.
    pub gap_seconds: f64,
    /// After an alert, further flagged windows of the same container within this many seconds
    /// are counted, not re-alerted.
    pub cooldown_seconds: f64,
    /// How many classes an alert lists as the reason.
    pub top_classes: usize,
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address for /metrics and /healthz (empty: no HTTP server).
    pub listen: String,
}

/// `[limits]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Batches of events queued between capture and detection; when full, capture waits and the
    /// ring buffer absorbs (then drops, counted) the overflow.
    pub queue_batches: usize,
    /// Alerts queued for the sinks; beyond it alerts are dropped and counted.
    pub alert_queue: usize,
    /// Streams (threads) without a call for this long are closed.
    pub idle_stream_seconds: f64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            enabled: true,
            backend: Backend::Ebpf,
            containers: Vec::new(),
            include_host: false,
            write_bytes: 128,
            request_data: true,
            ring_mib: 16,
        }
    }
}

impl AlertsConfig {
    /// The shared alert rule these settings describe, checked.
    pub fn rule(&self) -> Result<mamori_core::AlertRule> {
        mamori_core::AlertRule::from_seconds(
            self.min_windows
                .unwrap_or(mamori_core::AlertRule::SYSCALL_MIN_FLAGGED),
            self.gap_seconds,
            self.cooldown_seconds,
        )
        .context("[alerts]")
    }
}

impl AlertsConfig {
    /// The rule for traffic rows: as [`Self::rule`], one flagged row fires unless set.
    pub fn net_rule(&self) -> Result<mamori_core::AlertRule> {
        mamori_core::AlertRule::from_seconds(
            self.min_windows.unwrap_or(1),
            self.gap_seconds,
            self.cooldown_seconds,
        )
        .context("[alerts]")
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: PathBuf::from("/var/lib/mamori/models"),
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            file: PathBuf::from("/var/log/mamori/alerts.jsonl"),
            stdout: true,
            webhook: String::new(),
            min_windows: None,
            gap_seconds: 2.0,
            cooldown_seconds: 10.0,
            top_classes: 3,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            queue_batches: 1024,
            alert_queue: 1024,
            idle_stream_seconds: 60.0,
        }
    }
}

impl AgentConfig {
    /// Reads a configuration file; errors name the file and the bad key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read agent config {}", path.display()))?;
        let config: AgentConfig = toml::from_str(&text)
            .with_context(|| format!("{}: invalid agent config", path.display()))?;
        config
            .check()
            .with_context(|| format!("{}: invalid agent config", path.display()))?;
        Ok(config)
    }

    /// Values that parse but cannot work.
    pub fn check(&self) -> Result<()> {
        anyhow::ensure!(
            self.capture.ring_mib.is_power_of_two(),
            "capture.ring_mib must be a power of two, got {}",
            self.capture.ring_mib
        );
        anyhow::ensure!(
            self.limits.queue_batches >= 1,
            "limits.queue_batches must be at least 1"
        );
        self.alerts.rule()?;
        self.ship.check()?;
        anyhow::ensure!(
            self.net.interface.is_empty() == self.net.model.as_os_str().is_empty(),
            "[net] needs both an interface and a model (or neither)"
        );
        if !self.alerts.webhook.is_empty() {
            super::webhook::check_url(&self.alerts.webhook)?;
        }
        self.things.check()?;
        self.audit.check()?;
        Ok(())
    }

    /// The defaults as TOML.
    pub fn defaults_toml() -> String {
        toml::to_string_pretty(&AgentConfig::default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_unknown_keys_are_named() {
        let text = AgentConfig::defaults_toml();
        let back: AgentConfig = toml::from_str(&text).expect("defaults parse");
        assert_eq!(back.http.listen, "127.0.0.1:9464");
        let err = toml::from_str::<AgentConfig>("[alerts]\nmin_window = 3\n").expect_err("typo");
        assert!(err.to_string().contains("min_window"), "{err}");
        let partial: AgentConfig =
            toml::from_str("[capture]\ncontainers = [\"cam\"]\n").expect("partial");
        assert_eq!(partial.capture.containers, vec!["cam"]);
        assert_eq!(partial.alerts.min_windows, None);
        assert_eq!(partial.alerts.rule().unwrap().min_flagged, 10);
        assert_eq!(partial.alerts.net_rule().unwrap().min_flagged, 1);
    }

    #[test]
    fn impossible_values_are_refused() {
        let mut c = AgentConfig::default();
        c.capture.ring_mib = 3;
        assert!(c.check().is_err());
        let mut c = AgentConfig::default();
        c.alerts.webhook = "https://hooks.example/alert".into();
        let err = c.check().expect_err("no TLS client");
        assert!(err.to_string().contains("https is not supported"), "{err}");
        c.alerts.webhook = "http://127.0.0.1:8080/alert".into();
        c.check().expect("http is fine");
    }

    #[test]
    fn the_audit_section_parses_prints_and_names_bad_values() {
        let c = AgentConfig::default();
        assert!(!c.audit.enabled(), "off by default");
        c.check().expect("defaults are valid");
        let text = AgentConfig::defaults_toml();
        assert!(text.contains("[audit]"), "{text}");
        assert!(text.contains("[audit.prune]"), "{text}");
        assert!(text.contains("retain_seconds = 900.0"), "{text}");
        let back: AgentConfig = toml::from_str(&text).expect("defaults parse");
        assert_eq!(back.audit, AuditConfig::default());

        let c: AgentConfig = toml::from_str(
            "[audit]\nlog = \"/var/log/audit/audit.log\"\nlookback_seconds = 60\n\
             [audit.prune]\nsockets = [\"unix:/x\"]\n",
        )
        .expect("parses");
        c.check().expect("valid");
        assert!(c.audit.enabled());
        assert_eq!(c.audit.lookback_seconds, 60.0);
        assert_eq!(c.audit.max_events, 500_000, "defaults fill the rest");
        assert_eq!(c.audit.prune.sockets, vec!["unix:/x"]);
        assert!(
            !c.audit.prune.noise.is_empty(),
            "prune defaults fill the rest"
        );

        let err = toml::from_str::<AgentConfig>("[audit]\nlogfile = \"x\"\n").expect_err("typo");
        assert!(err.to_string().contains("logfile"), "{err}");
        let bad = |f: fn(&mut AuditConfig), key: &str| {
            let mut c = AgentConfig::default();
            f(&mut c.audit);
            let err = c.check().expect_err(key);
            assert!(err.to_string().contains(key), "{key}: {err}");
        };
        bad(
            |a| {
                a.log = "/a".into();
                a.socket = "/b".into();
            },
            "audit.log and audit.socket",
        );
        bad(|a| a.retain_seconds = 0.0, "audit.retain_seconds");
        bad(|a| a.lookback_seconds = f64::NAN, "audit.lookback_seconds");
        bad(|a| a.lookback_seconds = 1000.0, "audit.lookback_seconds");
        bad(|a| a.late_seconds = -1.0, "audit.late_seconds");
        bad(|a| a.max_events = 0, "audit.max_events");
        bad(|a| a.max_analysis_events = 0, "audit.max_analysis_events");
        bad(|a| a.max_detection_points = 0, "audit.max_detection_points");
        bad(|a| a.dot_max_nodes = 0, "audit.dot_max_nodes");
        bad(|a| a.runtime.push(String::new()), "audit.runtime[5]");
    }

    #[test]
    fn things_sections_parse_and_bad_values_are_named() {
        let text = r#"
            [things]
            interval_seconds = 0.5
            on_alert = "pause"
            [things.recovery]
            max_restarts = 5
            [[things.thing]]
            td = "http://127.0.0.1:8080/.well-known/wot"
            container = "pump"
            bearer_token = "t"
            [[things.thing.expect]]
            property = "counter"
            changes_within_seconds = 5.0
        "#;
        let c: AgentConfig = toml::from_str(text).expect("parses");
        c.check().expect("valid");
        assert_eq!(c.things.on_alert, OnAlert::Pause);
        assert_eq!(c.things.recovery.max_restarts, 5);
        assert_eq!(
            c.things.recovery.backoff_max_seconds, 60.0,
            "defaults fill the rest"
        );
        assert_eq!(c.things.thing[0].credentials().bearer_token, "t");
        assert_eq!(c.things.settings().interval.as_millis(), 500);

        let err = toml::from_str::<AgentConfig>("[[things.thing]]\ntd = \"x\"\ntoken = \"t\"\n")
            .expect_err("typo");
        assert!(err.to_string().contains("token"), "{err}");
        let mut c = AgentConfig::default();
        c.things
            .thing
            .push(mamori_wot::monitor::ThingSpec::default());
        let err = c.check().expect_err("no td");
        assert!(err.to_string().contains("things.thing[0]: `td`"), "{err}");
        let mut c = AgentConfig::default();
        c.things.interval_seconds = f64::NAN;
        assert!(c
            .check()
            .expect_err("nan")
            .to_string()
            .contains("things.interval_seconds"));
        let mut c = AgentConfig::default();
        c.things.thing.push(mamori_wot::monitor::ThingSpec {
            td: "t.json".into(),
            expect: vec![mamori_wot::expect::Expectation {
                property: "x".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let err = c.check().expect_err("expects nothing");
        assert!(
            err.to_string().contains("things.thing[0].expect[0]"),
            "{err}"
        );
    }
}
