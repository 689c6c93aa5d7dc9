//! `mamori net score`: a detector's verdict on every row of captures or live traffic.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use mamori_net::detector::Scratch;

use super::input::{self, PacketInputArgs};

/// Score captures or a live interface with a detector from `mamori net train`.
///
/// Prints one JSON object per row: {"source", "<device|flow|host>", "start", "end", "packets",
/// "score", "alert"}; with `--labels`, also "label". Exit status: 0 when no row is over the
/// threshold, 1 when some are, 2 on error.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Detector file.
    #[arg(short, long, value_name = "MODEL")]
    pub model: PathBuf,
    #[command(flatten)]
    pub input: PacketInputArgs,
    /// Print only rows over the threshold.
    #[arg(long)]
    pub alerts_only: bool,
    /// Threshold overriding the detector's.
    #[arg(long, value_name = "SCORE")]
    pub threshold: Option<f64>,
}

pub fn run(args: ScoreArgs) -> Result<i32> {
    let detector = super::load_detector(&args.model)?;
    let labels = input::load_labels(&args.input.labels)?;
    let threshold = args.threshold.unwrap_or(detector.threshold.value);
    let entity = detector.features.kind.entity_name();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut scratch = Scratch::default();
    let mut alerts = 0u64;
    let stats = input::for_each_row(&args.input, &detector.features, &labels, |r| {
        let score = detector.score(&r.row.values, &mut scratch);
        let alert = score > threshold;
        alerts += u64::from(alert);
        if alert || !args.alerts_only {
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
            write!(out, ",\"alert\":{alert}")?;
            if !labels.is_empty() {
                write!(out, ",\"label\":{}", u8::from(r.label.is_attack()))?;
            }
            out.write_all(b"}\n")?;
            // Live alerts should not wait in a buffer.
            if args.input.interface.is_some() {
                out.flush()?;
            }
        }
        Ok(())
    })?;
    out.flush()?;
    super::report_input(&stats);
    eprintln!(
        "mamori: {alerts} of {} rows over the threshold {threshold}",
        stats.rows
    );
    Ok(i32::from(alerts > 0))
}
