//! `mamori net features`: feature rows as CSV or JSON lines, for people and other tools.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use super::input::{self, FeatureArgs, PacketInputArgs, SourcedRow};

/// Output format of rows.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// Comma-separated, with a header line.
    Csv,
    /// One JSON object per row.
    Jsonl,
}

/// Extract per-device window, flow or per-interval features from captures or a live interface.
///
/// Columns: source, entity (device, flow or host), start and end (Unix seconds), packets,
/// attack_packets and label (1 when the row holds labelled attack traffic), attack (its name),
/// then the features (`--kind` decides which; their names are in the CSV header).
#[derive(Args, Debug)]
pub struct FeaturesArgs {
    #[command(flatten)]
    pub input: PacketInputArgs,
    #[command(flatten)]
    pub features: FeatureArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: RowFormat,
    /// Output file; stdout when omitted.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: FeaturesArgs) -> Result<()> {
    let config = args.features.config();
    let labels = input::load_labels(&args.input.labels)?;
    let names = config.kind.names();
    let sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    if args.format == RowFormat::Csv {
        write!(
            out,
            "source,{},start,end,packets,attack_packets,label,attack",
            config.kind.entity_name()
        )?;
        for n in &names {
            write!(out, ",{n}")?;
        }
        writeln!(out)?;
    }
    let attack_names: Vec<String> = labels.attacks().iter().map(|a| a.name.clone()).collect();
    let stats = input::for_each_row(&args.input, &config, &labels, |r: SourcedRow<'_>| {
        let attack = r
            .label
            .attack
            .and_then(|i| attack_names.get(i))
            .map(String::as_str)
            .unwrap_or("");
        match args.format {
            RowFormat::Csv => {
                write!(
                    out,
                    "{},{},{:.6},{:.6},{},{},{},{}",
                    csv_field(r.source),
                    csv_field(&r.row.entity),
                    input::secs(r.row.start_ns),
                    input::secs(r.row.end_ns),
                    r.row.packets,
                    r.label.attack_packets,
                    u8::from(r.label.is_attack()),
                    csv_field(attack),
                )?;
                let mut num = ryu::Buffer::new();
                for &v in &r.row.values {
                    out.write_all(b",")?;
                    // Most features are counts: print them as integers (and fast).
                    if v.fract() == 0.0 && v.abs() < 1e15 {
                        out.write_all(itoa::Buffer::new().format(v as i64).as_bytes())?;
                    } else {
                        out.write_all(num.format(v).as_bytes())?;
                    }
                }
                writeln!(out)?;
            }
            RowFormat::Jsonl => {
                let features: serde_json::Map<String, serde_json::Value> = names
                    .iter()
                    .zip(&r.row.values)
                    .map(|(n, v)| (n.clone(), serde_json::json!(v)))
                    .collect();
                let obj = serde_json::json!({
                    "source": r.source,
                    config.kind.entity_name(): r.row.entity,
                    "start": input::secs(r.row.start_ns),
                    "end": input::secs(r.row.end_ns),
                    "packets": r.row.packets,
                    "attack_packets": r.label.attack_packets,
                    "label": u8::from(r.label.is_attack()),
                    "attack": attack,
                    "features": features,
                });
                serde_json::to_writer(&mut out, &obj)?;
                writeln!(out)?;
            }
        }
        Ok(())
    })?;
    out.flush()?;
    super::report_input(&stats);
    super::warn_unmatched_labels(&labels, &stats);
    Ok(())
}

/// Quotes a CSV field when it needs it.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}
