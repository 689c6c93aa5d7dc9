//! `mamori agent`: flags and the configuration file → [`mamori_agent::run`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use mamori_agent::config::{AgentConfig, Backend, OnAlert};

use super::alert_args::AlertArgs;

/// Watch containers live and raise alerts (runs in the foreground until SIGINT/SIGTERM).
///
/// With no --config the defaults apply (see --print-config): every container, models from
/// /var/lib/mamori/models, alerts to /var/log/mamori/alerts.jsonl and stdout, metrics on
/// 127.0.0.1:9464. Options given here override the file.
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Configuration file (TOML).
    #[arg(short, long, value_name = "TOML")]
    pub config: Option<PathBuf>,
    /// Print the default configuration and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Watch only these containers (name or id; repeatable).
    #[arg(long = "container", value_name = "NAME")]
    pub containers: Vec<String>,
    /// Also watch processes outside containers.
    #[arg(long)]
    pub host: bool,
    /// Capture engine: `ebpf` or `ptrace`.
    #[arg(long, value_parser = parse_backend, value_name = "ENGINE")]
    pub backend: Option<Backend>,
    /// Directory of per-image models.
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Alert file (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// POST alerts to this URL.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Address for /metrics and /healthz (`none` to disable).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub alert: AlertArgs,
    /// Network detection: capture on this interface (with --net-model).
    #[arg(long, value_name = "IFACE", requires = "net_model")]
    pub net_interface: Option<String>,
    /// Network detection: detector file from `mamori net train`.
    #[arg(long, value_name = "MODEL", requires = "net_interface")]
    pub net_model: Option<PathBuf>,
    /// Network detection: BPF filter (tcpdump syntax).
    #[arg(long, value_name = "BPF")]
    pub net_filter: Option<String>,
    /// Stop after this long (e.g. `90s`, `15m`); default: run until signalled.
    #[arg(long, value_name = "DURATION", value_parser = crate::cmd::numbers::duration)]
    pub duration: Option<Duration>,
    /// Do not print alerts on stdout.
    #[arg(long)]
    pub quiet: bool,
    /// Do not capture system calls (watch only Things and, if given, the network).
    #[arg(long)]
    pub no_capture: bool,
    /// Watch this WoT Thing (a TD's URL or file, or a servient's directory; repeatable).
    #[arg(long = "thing", value_name = "TD")]
    pub things: Vec<String>,
    /// What to do to a container a syscall or network alert names: `off`, `pause` or
    /// `restart` (with the crash-loop guard of `[things.recovery]`).
    #[arg(long, value_name = "ACTION", value_parser = parse_on_alert)]
    pub on_alert: Option<OnAlert>,
}

/// Parses an `--on-alert` value.
pub fn parse_on_alert(s: &str) -> Result<OnAlert, String> {
    s.parse()
}

fn apply_overrides(config: &mut AgentConfig, args: &AgentArgs) -> Result<()> {
    if !args.containers.is_empty() {
        config.capture.containers = args.containers.clone();
    }
    if args.host {
        config.capture.include_host = true;
    }
    if let Some(b) = args.backend {
        config.capture.backend = b;
    }
    if let Some(d) = &args.models {
        config.models.dir = d.clone();
    }
    if let Some(f) = &args.alerts {
        config.alerts.file = f.clone();
    }
    if let Some(w) = &args.webhook {
        config.alerts.webhook = w.clone();
    }
    if let Some(l) = &args.listen {
        config.http.listen = if l == "none" {
            String::new()
        } else {
            l.clone()
        };
    }
    let rule = args.alert.rule_over(config.alerts.rule()?)?;
    if args.alert.min_windows.is_some() {
        config.alerts.min_windows = Some(rule.min_flagged);
    }
    config.alerts.gap_seconds = rule.gap_ns as f64 / 1e9;
    config.alerts.cooldown_seconds = rule.cooldown_ns as f64 / 1e9;
    if let Some(i) = &args.net_interface {
        config.net.interface = i.clone();
    }
    if let Some(m) = &args.net_model {
        config.net.model = m.clone();
    }
    if let Some(f) = &args.net_filter {
        config.net.filter = f.clone();
    }
    if args.quiet {
        config.alerts.stdout = false;
    }
    if args.no_capture {
        config.capture.enabled = false;
    }
    if let Some(a) = args.on_alert {
        config.things.on_alert = a;
    }
    for td in &args.things {
        config.things.thing.push(mamori_wot::monitor::ThingSpec {
            td: td.clone(),
            ..Default::default()
        });
    }
    config.check()?;
    Ok(())
}

/// Parses a `--backend` value.
pub fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse()
}

pub fn run(args: AgentArgs) -> Result<()> {
    if args.print_config {
        print!("{}", AgentConfig::defaults_toml());
        return Ok(());
    }
    let mut config = match &args.config {
        Some(path) => AgentConfig::load(path)?,
        None => AgentConfig::default(),
    };
    apply_overrides(&mut config, &args)?;
    mamori_agent::run(&config, args.duration)
}
