//! `mamori net score`: a detector's verdict on every row of captures or live traffic.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use mamori_net::detector::Scratch;

use mamori_core::sink::{AlertSink, JsonLines};

use super::input::{self, PacketInputArgs};
use crate::cmd::alert_args::AlertArgs;
use mamori_pipeline::net_alerts::{NetAlerter, ScoredRow};

/// Score captures or a live interface with a detector from `mamori net train`.
///
/// Prints one JSON object per row: {"source", "<device|flow|host>", "start", "end", "packets",
/// "score", "flagged", "alert"}; with `--labels`, also "label". "flagged" when the score is over
/// the threshold, "alert" when the alert rule fires on it (per device, flow or host: the agent's
/// rule, --alert-min-windows flagged rows within --alert-gap seconds, then a --alert-cooldown).
/// With --alerts-only, prints the alerts themselves, as the agent writes them. Exit status: 0
/// when no alert fired, 1 when one did, 2 on error.
///
/// A detector with per-device baselines judges each device against its own threshold; rows of
/// a device never seen in training that fall in its warm-up carry "warmup": true and are never
/// flagged. --threshold or --no-baselines judge every row against one threshold.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Detector file.
    #[arg(short, long, value_name = "MODEL")]
    pub model: PathBuf,
    #[command(flatten)]
    pub input: PacketInputArgs,
    /// Print the alerts (the agent's JSON records) instead of every row.
    #[arg(long)]
    pub alerts_only: bool,
    #[command(flatten)]
    pub alert: AlertArgs,
    /// Threshold overriding the detector's (a finite number; one threshold for every device).
    #[arg(long, value_name = "SCORE", value_parser = crate::cmd::numbers::finite)]
    pub threshold: Option<f64>,
    /// Ignore the detector's per-device baselines: one threshold for every row, no warm-up.
    #[arg(long)]
    pub no_baselines: bool,
}

pub fn run(args: ScoreArgs) -> Result<i32> {
    let detector = super::load_detector(&args.model)?;
    let labels = input::load_labels(&args.input.labels)?;
    let threshold = args.threshold.unwrap_or(detector.threshold.value);
    if !threshold.is_finite() {
        // Only a detector file can get here (the flag is checked when parsed).
        anyhow::bail!(
            "{}: the detector's threshold is {threshold}, not a finite number; give --threshold",
            args.model.display()
        );
    }
    let entity = detector.features.kind.entity_name();
    let mut alerter = NetAlerter::new(
        args.alert.rule()?,
        threshold,
        detector.model.algorithm(),
        args.model.display().to_string(),
        entity,
    );
    let live = args.input.interface.is_some();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut alert_sink = JsonLines::new("stdout", std::io::stdout(), live);
    let mut scratch = Scratch::default();
    let mut judge = if args.threshold.is_some() {
        mamori_net::detector::Judge::new(detector.features.kind, threshold, None)
    } else {
        detector.judge(!args.no_baselines)
    };
    let stats = input::for_each_row(&args.input, &detector.features, &labels, |r| {
        let score = detector.score(&r.row.values, &mut scratch);
        let j = judge.judge(r.source, &r.row.entity, r.row.start_ns, r.row.end_ns, score);
        let row = ScoredRow {
            input: r.source,
            entity: &r.row.entity,
            start_ns: r.row.start_ns,
            end_ns: r.row.end_ns,
            packets: r.row.packets,
            score,
        };
        let (decision, fired) = alerter.observe_against(&row, j.threshold);
        if args.alerts_only {
            if let Some(a) = &fired {
                alert_sink.alert(a)?;
            }
        } else {
            // Written by hand: a JSON object per row through serde_json::Value cost more than
            // the scoring itself.
            out.write_all(b"{\"source\":")?;
            serde_json::to_writer(&mut out, r.source)?;
            write!(out, ",\"{entity}\":")?;
            serde_json::to_writer(&mut out, &r.row.entity)?;
            let mut num = ryu::Buffer::new();
            out.write_all(b",\"start\":")?;
            out.write_all(num.format(input::secs(r.row.start_ns)).as_bytes())?;
            out.write_all(b",\"end\":")?;
            out.write_all(num.format(input::secs(r.row.end_ns)).as_bytes())?;
            write!(out, ",\"packets\":{},\"score\":", r.row.packets)?;
            if score.is_finite() {
                out.write_all(num.format(score).as_bytes())?;
            } else {
                out.write_all(b"null")?;
            }
            write!(
                out,
                ",\"flagged\":{},\"alert\":{}",
                decision.flagged(),
                fired.is_some()
            )?;
            if j.warmup {
                out.write_all(b",\"warmup\":true")?;
            }
            if !labels.is_empty() {
                write!(out, ",\"label\":{}", u8::from(r.label.is_attack()))?;
            }
            out.write_all(b"}\n")?;
            // Live alerts should not wait in a buffer.
            if live {
                out.flush()?;
            }
        }
        Ok(())
    })?;
    out.flush()?;
    alert_sink.flush()?;
    super::report_input(&stats);
    super::warn_unmatched_labels(&labels, &stats);
    let c = alerter.counts;
    eprintln!(
        "mamori: {} of {} rows over the threshold {threshold}, {} alerts ({} held back by the cooldown)",
        c.flagged, stats.rows, c.alerts, c.suppressed
    );
    Ok(i32::from(c.alerts > 0))
}
