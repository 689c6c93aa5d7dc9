//! `mamori certs`, `mamori ship`, `mamori collect`, `mamori verify`: tamper-evident log shipping
//! from a device to a collector over mutual TLS (see mamori-ship).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use mamori_audit::Start;
use mamori_ship::certs::{self, Role, Validity};
use mamori_ship::collector::{Collector, CollectorConfig};
use mamori_ship::device::{DeviceConfig, RunningShipper};
use mamori_ship::intake::{FileSource, IntakeOptions, SourceKind};
use mamori_ship::nats::JetStreamConfig;
use mamori_ship::nats_intake::{self, ReorderLimits};
use mamori_ship::shipper::ShipperConfig;
use mamori_ship::spool::SpoolOptions;
use mamori_ship::store::StoreOptions;
use mamori_ship::tls::{self, TlsFiles};
use mamori_ship::{verify_each, VerifyOptions};

/// Certificates for shipping: a small CA, then one certificate per device and collector.
#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Make a CA (ECDSA P-256) in DIR: ca.pem and ca.key (keep ca.key off the devices).
    Ca {
        /// Where ca.pem and ca.key go.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// The CA's name.
        #[arg(long, default_value = "mamori CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Replace an existing CA (every certificate it issued stops being trusted).
        #[arg(long)]
        force: bool,
    },
    /// Issue a device certificate (TLS client) NAME: the collector files its records under NAME.
    Device(IssueArgs),
    /// Issue a collector certificate (TLS server) NAME, valid for NAME and each --san.
    Collector(IssueArgs),
}

/// `mamori certs device|collector`.
#[derive(Args, Debug)]
pub struct IssueArgs {
    /// The device's or collector's name (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// The CA's directory.
    #[arg(long, default_value = "certs")]
    pub ca_dir: PathBuf,
    /// Where NAME.pem, NAME.key and a copy of ca.pem go (default: the CA's directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// More names the collector answers to (DNS names or IP addresses).
    #[arg(long = "san")]
    pub sans: Vec<String>,
    /// Validity in days.
    #[arg(long, default_value_t = 825)]
    pub days: u32,
}

/// JetStream options shared by `mamori ship` and `mamori collect`.
#[derive(Args, Debug)]
pub struct NatsArgs {
    /// NATS JetStream instead of the collector's TLS intake: server URL(s), comma-separated
    /// (`nats://HOST:4222`, or `tls://HOST:4222` with --certs/--name as the client certificate).
    #[arg(long)]
    pub nats: Option<String>,
    /// The chain stream's name (default MAMORI_CHAIN; first keys go to <stream>_KEYS).
    #[arg(long, requires = "nats")]
    pub nats_stream: Option<String>,
    /// Subject prefix: records on <prefix>.<device>, first keys on <prefix>-keys.<device>
    /// (default mamori.chain).
    #[arg(long, requires = "nats")]
    pub nats_prefix: Option<String>,
}

impl NatsArgs {
    /// The JetStream configuration, if --nats was given; client certificates from `certs`/`name`
    /// for a `tls://` URL.
    fn config(
        &self,
        certs: Option<&PathBuf>,
        name: Option<&str>,
    ) -> Result<Option<JetStreamConfig>> {
        let Some(url) = &self.nats else {
            return Ok(None);
        };
        let mut cfg = JetStreamConfig::new(url.as_str());
        if let Some(s) = &self.nats_stream {
            cfg.stream.clone_from(s);
        }
        if let Some(p) = &self.nats_prefix {
            cfg.subject_prefix.clone_from(p);
        }
        if url.split(',').any(|u| u.trim().starts_with("tls://")) {
            let (Some(dir), Some(name)) = (certs, name) else {
                bail!("--nats {url}: a tls:// server needs --certs and --name (the client certificate)");
            };
            cfg.tls = Some(TlsFiles::in_dir(dir, name));
        }
        Ok(Some(cfg))
    }
}

/// `mamori ship`.
#[derive(Args, Debug)]
pub struct ShipArgs {
    /// The collector, HOST:PORT.
    #[arg(long, required_unless_present = "nats", conflicts_with = "nats")]
    pub collector: Option<String>,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The directory with ca.pem, NAME.pem and NAME.key (`mamori certs device NAME --out DIR`);
    /// not needed with a plain nats:// server.
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// This device's name: its certificate name, and its subject token in JetStream.
    #[arg(long)]
    pub name: String,
    /// The name on the collector's certificate (default: the host in --collector).
    #[arg(long)]
    pub server_name: Option<String>,
    /// The spool directory (sealed records not yet acknowledged, and the chain's state).
    #[arg(long, default_value = "/var/lib/mamori/spool")]
    pub spool: PathBuf,
    /// auditd's log to follow (across rotation).
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// mamori's alert/incident JSON-lines files to follow (the agent's `[alerts] file`).
    #[arg(long = "alerts")]
    pub alerts: Vec<PathBuf>,
    /// Read a file met for the first time from its start (default) or only what comes next.
    #[arg(long, value_enum, default_value_t = FirstRead::Start)]
    pub first_read: FirstRead,
    /// A heartbeat record after this long with nothing else (0: none).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub heartbeat: Duration,
    /// Intake pauses (and says so) when unacknowledged records take this many MiB.
    #[arg(long, default_value_t = 256)]
    pub max_spool_mib: u64,
    /// Do not fsync each commit (faster; a power cut re-reads the last batch from the sources).
    #[arg(long)]
    pub no_fsync: bool,
    /// Stop after this long (default: until SIGINT/SIGTERM).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// A session with records in flight and no acknowledgement for this long is dropped and
    /// opened again (a silently broken network).
    #[arg(long, default_value = "30s", value_parser = crate::cmd::numbers::duration)]
    pub ack_timeout: Duration,
    /// On stop, go on sending what is sealed for up to this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
}

/// Where a file met for the first time is read from.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FirstRead {
    /// Its whole content.
    Start,
    /// Only what is written from now on.
    End,
}

/// `mamori collect`.
#[derive(Args, Debug)]
pub struct CollectArgs {
    /// Where devices connect over TLS (empty: no TLS intake, with --nats).
    #[arg(long, default_value = "0.0.0.0:6514")]
    pub listen: String,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// With --nats: the durable consumer's name (its position lives on the server).
    #[arg(long, default_value = "mamori-collector")]
    pub durable: String,
    /// The store: one directory per device.
    #[arg(long, default_value = "/var/lib/mamori/collect")]
    pub store: PathBuf,
    /// The directory with ca.pem, NAME.pem and NAME.key (`mamori certs collector NAME`); needed
    /// for the TLS intake and a tls:// NATS server.
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// This collector's certificate name.
    #[arg(long)]
    pub name: Option<String>,
    /// Operator endpoint: /metrics, /api/devices, live record streams (empty: none).
    #[arg(long, default_value = "127.0.0.1:9465")]
    pub http: String,
    /// Start a new segment file past this many MiB.
    #[arg(long, default_value_t = 64)]
    pub rotate_mib: u64,
    /// Keep at most this many segments per device (0: all).
    #[arg(long, default_value_t = 0)]
    pub keep_segments: usize,
    /// Do not fsync before acknowledging (faster; a power cut loses acknowledged records).
    #[arg(long)]
    pub no_fsync: bool,
    /// Stop after this long (default: until SIGINT/SIGTERM).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
}

/// `mamori verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A device's store directory, or segment files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The chain's chain.json (default: beside the inputs).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The head.json that anchors the tail (default: beside the inputs).
    #[arg(long)]
    pub head: Option<PathBuf>,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the payloads of authentic records to stdout, one per line (e.g. into `mamori trace
    /// back --log -`); the report goes to stderr.
    #[arg(long)]
    pub print: bool,
    /// With --print: which kinds (audit, alert, incident, notice, heartbeat, all).
    #[arg(long, default_value = "audit")]
    pub kind: String,
}

/// `mamori certs`.
pub fn certs(cmd: CertsCommand) -> Result<i32> {
    match cmd {
        CertsCommand::Ca {
            dir,
            name,
            days,
            force,
        } => {
            let f = certs::init_ca(&dir, &name, days, force)?;
            println!(
                "CA: {} (key {}, keep it off the devices)",
                f.cert.display(),
                f.key.display()
            );
        }
        CertsCommand::Device(a) => issue(a, Role::Device)?,
        CertsCommand::Collector(a) => issue(a, Role::Collector)?,
    }
    Ok(0)
}

fn issue(a: IssueArgs, role: Role) -> Result<()> {
    let out = a.out.clone().unwrap_or_else(|| a.ca_dir.clone());
    if role == Role::Device && !a.sans.is_empty() {
        bail!("--san is for collectors; a device is known by its name only");
    }
    let f = certs::issue(
        &a.ca_dir,
        &out,
        role,
        &a.name,
        &a.sans,
        Validity::days(a.days),
    )?;
    println!(
        "{}: {} and {} (with {})",
        a.name,
        f.cert.display(),
        f.key.display(),
        f.ca.display()
    );
    Ok(())
}

/// SIGINT/SIGTERM set the flag.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("signal handler")?;
    }
    Ok(stop)
}

/// `mamori ship`.
pub fn ship(a: ShipArgs) -> Result<i32> {
    let mut shipper = match (
        &a.collector,
        a.nats.config(a.certs.as_ref(), Some(a.name.as_str()))?,
    ) {
        (_, Some(js)) => ShipperConfig::nats(js, &a.name),
        (Some(collector), None) => {
            let Some(certs) = &a.certs else {
                bail!("--collector {collector}: give --certs (the device's certificate directory)");
            };
            let tls = tls::client_config(&TlsFiles::in_dir(certs, &a.name))?;
            let mut shipper = ShipperConfig::new(collector, tls);
            if let Some(n) = &a.server_name {
                shipper.server_name.clone_from(n);
            }
            shipper
        }
        (None, None) => bail!("give --collector HOST:PORT or --nats URL"),
    };
    shipper.ack_timeout = a.ack_timeout;
    let mut sources = Vec::new();
    if let Some(p) = &a.audit_log {
        sources.push(FileSource {
            name: "audit".into(),
            path: p.clone(),
            kind: SourceKind::Audit,
        });
    }
    for (i, p) in a.alerts.iter().enumerate() {
        sources.push(FileSource {
            name: if i == 0 {
                "alerts".into()
            } else {
                format!("alerts{i}")
            },
            path: p.clone(),
            kind: SourceKind::Mamori,
        });
    }
    if sources.is_empty() {
        bail!("nothing to ship: give --audit-log and/or --alerts");
    }
    let config = DeviceConfig {
        spool_dir: a.spool.clone(),
        spool: SpoolOptions {
            max_bytes: a.max_spool_mib.max(1) << 20,
            fsync: !a.no_fsync,
            ..SpoolOptions::default()
        },
        sources,
        intake: IntakeOptions {
            heartbeat: a.heartbeat,
            first_start: match a.first_read {
                FirstRead::Start => Start::Beginning,
                FirstRead::End => Start::End,
            },
            ..IntakeOptions::default()
        },
        shipper,
        drain: a.drain,
    };
    let stop = stop_flag()?;
    let on_full: mamori_ship::intake::FullHook = Box::new(|full, spool| {
        if full {
            eprintln!(
                "mamori ship: ALERT spool full ({} MiB of unacknowledged records): intake paused; the sources keep what is not read yet",
                spool.pending_bytes() >> 20
            );
        } else {
            eprintln!("mamori ship: spool has room again: intake resumed");
        }
    });
    let running = RunningShipper::start(config, Some(on_full))?;
    let opened = running.opened().clone();
    if opened.new_chain {
        eprintln!("mamori ship: new chain {}", running.fingerprint());
    }
    if opened.cut_records > 0 || opened.cut_bytes > 0 {
        eprintln!(
            "mamori ship: spool mended after an unclean stop: {} records ({} bytes) sealed after the last saved state are read again from the sources",
            opened.cut_records, opened.cut_bytes
        );
    }
    eprintln!(
        "mamori ship: shipping to {} as {}",
        config_target(&a),
        a.name
    );
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed)
        && a.duration.is_none_or(|d| started.elapsed() < d)
        && !running.sender_finished()
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = std::sync::Arc::clone(running.stats());
    running.stop()?;
    let s = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    eprintln!(
        "mamori ship: sealed {} (acknowledged through {}), {} sent, {} sessions",
        stats
            .sealed_by_kind()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        s(&stats.acked),
        s(&stats.sent_records),
        s(&stats.sessions)
    );
    Ok(0)
}

fn config_target(a: &ShipArgs) -> String {
    match (&a.nats.nats, &a.collector) {
        (Some(url), _) => format!("NATS JetStream {url}"),
        (None, Some(c)) => c.clone(),
        (None, None) => String::new(),
    }
}

/// `mamori collect`.
pub fn collect(a: CollectArgs) -> Result<i32> {
    let js = a.nats.config(a.certs.as_ref(), a.name.as_deref())?;
    if a.listen.is_empty() && js.is_none() {
        bail!("--listen \"\" turns the TLS intake off: give --nats URL to receive records some other way");
    }
    let files = match (&a.certs, &a.name) {
        (Some(dir), Some(name)) => Some(TlsFiles::in_dir(dir, name)),
        _ if a.listen.is_empty() => None,
        _ => bail!(
            "--listen {}: the TLS intake needs --certs and --name (or --listen \"\" with --nats)",
            a.listen
        ),
    };
    let tls = match &files {
        Some(f) if !a.listen.is_empty() => Some(tls::server_config(f)?),
        _ => None,
    };
    let collector = Collector::new(CollectorConfig {
        listen: a.listen.clone(),
        store: a.store.clone(),
        store_options: StoreOptions {
            rotate_bytes: a.rotate_mib.max(1) << 20,
            keep_segments: a.keep_segments,
            fsync: !a.no_fsync,
        },
        tls,
        idle_timeout: Duration::from_secs(300),
        remember: 1 << 16,
    })?;
    let stop = stop_flag()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async {
        if !a.http.is_empty() {
            let (addr, _task) = mamori_ship::http::serve(&a.http, Arc::clone(&collector))
                .await
                .with_context(|| format!("cannot listen on {}", a.http))?;
            eprintln!("mamori collect: metrics on http://{addr}/metrics, devices on http://{addr}/api/devices");
        }
        let mut serve = None;
        if let Some(files) = files.as_ref().filter(|_| !a.listen.is_empty()) {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(Arc::clone(&collector).serve(Some(tx)));
            match rx.await {
                Ok(addr) => eprintln!(
                    "mamori collect: listening on {addr} (TLS 1.3, client certificates from {}), store {}",
                    files.ca.display(),
                    a.store.display()
                ),
                Err(_) => {
                    let e = task.await.context("collector task")?;
                    return e.with_context(|| format!("cannot listen on {}", a.listen));
                }
            }
            serve = Some(task);
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let nats = js.map(|js| {
            eprintln!(
                "mamori collect: JetStream intake from {} (durable consumer {}), store {}",
                js.url,
                a.durable,
                a.store.display()
            );
            tokio::spawn(nats_intake::run(
                Arc::clone(&collector),
                js,
                a.durable.clone(),
                ReorderLimits::default(),
                stop_rx,
            ))
        });
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) && a.duration.is_none_or(|d| started.elapsed() < d) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(task) = serve {
            task.abort();
        }
        let _ = stop_tx.send(true);
        if let Some(task) = nats {
            // the intake ends after its current batch (each bounded by its fetch wait)
            if tokio::time::timeout(Duration::from_secs(10), task).await.is_err() {
                eprintln!("mamori collect: the JetStream intake did not stop within 10s");
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(0)
}

/// `mamori verify`: 0 clean, 1 findings, 2 error.
pub fn verify(a: VerifyArgs) -> Result<i32> {
    use std::io::Write;
    let opts = VerifyOptions {
        key: a.key.clone(),
        head: a.head.clone(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_err: Option<std::io::Error> = None;
    let report = verify_each(&a.inputs, &opts, |rec, verdict| {
        if !a.print || !verdict.authentic || write_err.is_some() {
            return;
        }
        let k = rec.header.kind.name();
        if a.kind == "all" || a.kind.split(',').any(|w| w == k) {
            if let Err(e) = out
                .write_all(&rec.payload)
                .and_then(|()| out.write_all(b"\n"))
            {
                write_err = Some(e);
            }
        }
    })?;
    out.flush()?;
    drop(out);
    if let Some(e) = write_err {
        return Err(e.into());
    }
    if a.json {
        let text = serde_json::to_string_pretty(&report)?;
        if a.print {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    } else if a.print {
        eprint!("{}", report.render_text());
    } else {
        print!("{}", report.render_text());
    }
    Ok(if report.clean() { 0 } else { 1 })
}
