//! Packets from capture files or a live interface → feature rows, shared by every `mamori net`
//! subcommand.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use mamori_ingest::pcap::CaptureReader;
use mamori_net::features::device::{DeviceConfig, DeviceKey};
use mamori_net::features::flow::FlowConfig;
use mamori_net::features::{Evictions, FeatureConfig, FeatureKind, FeatureRow};
use mamori_net::labels::{LabelledExtractor, LabelledRow, Labels, RowLabel};
use mamori_net::live::PacketCapture;
use mamori_net::packet::decode;
use mamori_net::source::PacketSource;

/// Where packets come from.
#[derive(Args, Debug, Clone)]
pub struct PacketInputArgs {
    /// Capture files (pcap or pcapng, optionally gzip-compressed, recognised by content); each is
    /// its own stream. `-` reads standard input (once), e.g. `zcat x.pcap.gz | mamori net … -`.
    #[arg(value_name = "CAPTURE")]
    pub files: Vec<PathBuf>,
    /// Capture live from this interface instead (libpcap; needs CAP_NET_RAW).
    #[arg(short, long, value_name = "IFACE", conflicts_with = "files")]
    pub interface: Option<String>,
    /// BPF filter for live capture (tcpdump syntax), e.g. `not port 22`.
    #[arg(long, value_name = "BPF", requires = "interface")]
    pub filter: Option<String>,
    /// Stop live capture after this long (e.g. `60s`); otherwise at Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = crate::cmd::numbers::duration)]
    pub duration: Option<Duration>,
    /// Bytes kept of each live packet (headers are all that is used).
    #[arg(long, default_value_t = 256, value_name = "BYTES", value_parser = crate::cmd::numbers::count_u32)]
    pub snaplen: u32,
    /// Count and skip corrupt or truncated records instead of stopping at the first: after a
    /// record whose length cannot be trusted, reading resumes at the next plausible record (the
    /// abandoned byte range is reported); a cut or corrupt gzip stream keeps what decompressed.
    #[arg(long)]
    pub lenient: bool,
    /// Attack labels (`FROM TO ATTACKER VICTIM NAME` lines); repeatable, apply to every input.
    #[arg(long, value_name = "FILE")]
    pub labels: Vec<PathBuf>,
}

/// How packets become rows.
#[derive(Args, Debug, Clone)]
pub struct FeatureArgs {
    /// Rows: `device` (per device per window), `flow` (per 5-tuple flow), `interval` (flows
    /// aggregated per initiating host per interval).
    #[arg(long, default_value = "device", value_name = "KIND")]
    pub kind: FeatureKind,
    /// Device identity for `device` rows: `ip` or `mac`.
    #[arg(long, default_value = "ip", value_parser = parse_key, value_name = "KEY")]
    pub key: DeviceKey,
    /// Window length of `device` rows.
    #[arg(long, default_value = "10s", value_parser = crate::cmd::numbers::duration, value_name = "DURATION")]
    pub window: Duration,
    /// Slot for the maximum-packets-per-unit-time feature.
    #[arg(long, default_value = "1s", value_parser = crate::cmd::numbers::duration, value_name = "DURATION")]
    pub slot: Duration,
    /// A flow ends after this long without packets.
    #[arg(long, default_value = "30s", value_parser = crate::cmd::numbers::duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
    /// A flow is cut after this long in all.
    #[arg(long, default_value = "120s", value_parser = crate::cmd::numbers::duration, value_name = "DURATION")]
    pub active_timeout: Duration,
    /// Interval of `interval` rows.
    #[arg(long, default_value = "10s", value_parser = crate::cmd::numbers::duration, value_name = "DURATION")]
    pub interval: Duration,
}

fn parse_key(s: &str) -> Result<DeviceKey, String> {
    match s {
        "ip" => Ok(DeviceKey::Ip),
        "mac" => Ok(DeviceKey::Mac),
        _ => Err(format!("unknown device key `{s}` (ip or mac)")),
    }
}

impl FeatureArgs {
    /// The extractor settings these flags describe.
    pub fn config(&self) -> FeatureConfig {
        let ns = |d: Duration| d.as_nanos().min(u128::from(u64::MAX)) as u64;
        FeatureConfig {
            kind: self.kind,
            device: DeviceConfig {
                key: self.key,
                window_ns: ns(self.window).max(1),
                slot_ns: ns(self.slot).max(1),
            },
            flow: FlowConfig {
                idle_timeout_ns: ns(self.idle_timeout).max(1),
                active_timeout_ns: ns(self.active_timeout).max(1),
                interval_ns: ns(self.interval).max(1),
            },
        }
    }
}

/// Reads the labels files.
pub fn load_labels(paths: &[PathBuf]) -> Result<Labels> {
    let mut labels = Labels::default();
    for p in paths {
        labels.add_file(p)?;
    }
    Ok(labels)
}

/// Totals of one run over the inputs.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct InputStats {
    /// Packets decoded.
    pub packets: u64,
    /// Of those, labelled attack packets.
    pub attack_packets: u64,
    /// Rows written.
    pub rows: u64,
    /// Records skipped in lenient mode (by reason).
    pub skipped: Vec<(String, u64)>,
    /// Live capture: packets the kernel or interface dropped.
    pub dropped: u64,
    /// Per input with damage (lenient): what was skipped, where, and the abandoned byte ranges.
    pub damage: Vec<String>,
    /// Packets matched by each attack label, over all inputs (indexes as in the labels).
    pub label_matches: Vec<u64>,
    /// State dropped to bound memory, over all inputs.
    pub evictions: Evictions,
}

/// A row and the input it came from.
pub struct SourcedRow<'a> {
    /// File name or `iface:NAME`.
    pub source: &'a str,
    /// The row.
    pub row: FeatureRow,
    /// What the labels say of the row's packets (all normal without labels).
    pub label: RowLabel,
}

/// Runs every input through an extractor with `config` and hands each row to `on_row`.
pub fn for_each_row(
    input: &PacketInputArgs,
    config: &FeatureConfig,
    labels: &Labels,
    mut on_row: impl FnMut(SourcedRow<'_>) -> Result<()>,
) -> Result<InputStats> {
    let mut stats = InputStats::default();
    if let Some(iface) = &input.interface {
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&stop))
                .context("cannot install the signal handler")?;
        }
        let mut live = PacketCapture::open(iface, input.filter.as_deref(), input.snaplen, true)
            .with_context(|| format!("cannot capture on {iface}"))?;
        live.set_stop_flag(Arc::clone(&stop));
        if let Some(d) = input.duration {
            // The capture wakes every ~100 ms to look at the flag, so it ends even when idle.
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                std::thread::sleep(d);
                stop.store(true, Ordering::Relaxed);
            });
        }
        let name = format!("iface:{iface}");
        run_source(
            &mut live,
            &name,
            config,
            labels,
            &mut stats,
            || stop.load(Ordering::Relaxed),
            &mut on_row,
        )?;
        let s = live.stats()?;
        stats.dropped += s.dropped_by_kernel + s.dropped_by_interface;
        return Ok(stats);
    }
    if input.files.is_empty() {
        bail!("give capture files, or --interface for live capture");
    }
    check_stdin_once(&input.files)?;
    for path in &input.files {
        let mut reader = CaptureReader::open(path, input.lenient)?;
        let name = reader.source_name().to_string();
        run_source(
            &mut reader,
            &name,
            config,
            labels,
            &mut stats,
            || false,
            &mut on_row,
        )?;
        let skipped = reader.skipped();
        for (reason, n) in skipped.counts() {
            stats.skipped.push((format!("{name}: {reason}"), *n));
        }
        if !skipped.is_empty() {
            let mut text = format!("{name}: {skipped}");
            let (ranges, bytes) = reader.abandoned_total();
            if ranges > 0 {
                text.push_str(&format!(
                    "; {bytes} bytes abandoned in {ranges} place{} to find the next record",
                    if ranges == 1 { "" } else { "s" }
                ));
            }
            stats.damage.push(text);
        }
    }
    Ok(stats)
}

/// Standard input can be read only once: `-` may be given once.
pub fn check_stdin_once<'a>(files: impl IntoIterator<Item = &'a PathBuf>) -> Result<()> {
    let dashes = files.into_iter().filter(|p| p.as_os_str() == "-").count();
    if dashes > 1 {
        bail!("`-` (standard input) is given {dashes} times; it can be read only once");
    }
    Ok(())
}

fn run_source(
    source: &mut dyn PacketSource,
    name: &str,
    config: &FeatureConfig,
    labels: &Labels,
    stats: &mut InputStats,
    should_stop: impl Fn() -> bool,
    on_row: &mut impl FnMut(SourcedRow<'_>) -> Result<()>,
) -> Result<()> {
    let mut extractor = LabelledExtractor::new(config, labels.clone());
    let mut rows = Vec::new();
    let mut since_check = 0u32;
    while let Some(raw) = source.next_packet()? {
        let meta = decode(raw.linktype, raw.ts_ns, raw.orig_len, raw.data)
            .with_context(|| format!("{name}: packet {}", raw.number))?;
        extractor.push(&meta, &mut rows);
        for LabelledRow { row, label } in rows.drain(..) {
            stats.rows += 1;
            on_row(SourcedRow {
                source: name,
                row,
                label,
            })?;
        }
        since_check += 1;
        if since_check >= 1024 {
            since_check = 0;
            if should_stop() {
                break;
            }
        }
    }
    extractor.finish(&mut rows);
    for LabelledRow { row, label } in rows.drain(..) {
        stats.rows += 1;
        on_row(SourcedRow {
            source: name,
            row,
            label,
        })?;
    }
    let (packets, attack) = extractor.packet_counts();
    stats.packets += packets;
    stats.attack_packets += attack;
    let matched = extractor.matched_packets();
    stats
        .label_matches
        .resize(matched.len().max(stats.label_matches.len()), 0);
    for (sum, n) in stats.label_matches.iter_mut().zip(matched) {
        *sum += n;
    }
    let e = extractor.evictions();
    stats.evictions.devices += e.devices;
    stats.evictions.untracked_packets += e.untracked_packets;
    stats.evictions.flows += e.flows;
    Ok(())
}

/// Rows of every input, in memory (training and evaluation need them all).
pub fn collect_rows(
    input: &PacketInputArgs,
    config: &FeatureConfig,
    labels: &Labels,
) -> Result<(Vec<(String, LabelledRow)>, InputStats)> {
    let mut rows = Vec::new();
    let stats = for_each_row(input, config, labels, |r| {
        let row = LabelledRow {
            row: r.row,
            label: r.label,
        };
        rows.push((r.source.to_string(), row));
        Ok(())
    })?;
    Ok((rows, stats))
}

/// Nanoseconds since the epoch as decimal seconds.
pub fn secs(ns: u64) -> f64 {
    ns as f64 * 1e-9
}
