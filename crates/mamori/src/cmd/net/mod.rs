//! `mamori net`: network anomaly detection (seed 001 §3-1): features, training, scoring and
//! evaluation on captures or a live interface.

pub mod eval;
pub mod features;
pub mod input;
pub mod score;
pub mod train;

use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use mamori_net::detector::NetDetector;
use mamori_net::labels::Labels;

use crate::modelfile;

/// Network subcommands.
#[derive(Subcommand, Debug)]
pub enum NetCommand {
    /// Extract per-device, per-flow or per-interval features as CSV or JSON lines.
    Features(Box<features::FeaturesArgs>),
    /// Train an RBF SVM (labelled traffic), or an autoencoder or isolation forest (normal traffic
    /// only).
    Train(Box<train::TrainArgs>),
    /// Score captures or live traffic with a trained detector (JSON lines; exit 1 on alerts).
    Score(Box<score::ScoreArgs>),
    /// Measure a detector on labelled captures: confusion matrix, precision, recall, FPR, ROC AUC.
    Eval(Box<eval::EvalArgs>),
}

pub fn run(command: NetCommand) -> Result<i32> {
    match command {
        NetCommand::Features(a) => features::run(*a).map(|()| 0),
        NetCommand::Train(a) => train::run(*a).map(|()| 0),
        NetCommand::Score(a) => score::run(*a),
        NetCommand::Eval(a) => eval::run(*a),
    }
}

/// Prints what the inputs held, and anything skipped, on stderr.
fn report_input(stats: &input::InputStats) {
    eprintln!(
        "mamori: {} packets ({} labelled attack), {} rows",
        stats.packets, stats.attack_packets, stats.rows
    );
    for (reason, n) in &stats.skipped {
        eprintln!("mamori: skipped {n}: {reason}");
    }
    for text in &stats.damage {
        eprintln!("mamori: {text}");
    }
    if stats.dropped > 0 {
        eprintln!("mamori: live capture dropped {} packets", stats.dropped);
    }
    let e = &stats.evictions;
    if !e.is_empty() {
        eprintln!(
            "mamori: memory cap reached: {} idle devices forgotten, {} packets of new devices not \
             counted, {} flows ended early",
            e.devices, e.untracked_packets, e.flows
        );
    }
}

/// Warns about attack labels that matched no packet (wrong hosts or times for these captures);
/// returns how many there were.
fn warn_unmatched_labels(labels: &Labels, stats: &input::InputStats) -> usize {
    let mut unmatched = 0;
    for (i, a) in labels.attacks().iter().enumerate() {
        if stats.label_matches.get(i).copied().unwrap_or(0) > 0 {
            continue;
        }
        unmatched += 1;
        let host = |ip: Option<std::net::IpAddr>| ip.map_or("*".to_string(), |ip| ip.to_string());
        eprintln!(
            "mamori: warning: label {} `{}` ({} -> {}, {:.3}..{:.3} s) matched no packet",
            i + 1,
            a.name,
            host(a.attacker),
            host(a.victim),
            a.from_ns as f64 * 1e-9,
            a.to_ns as f64 * 1e-9
        );
    }
    unmatched
}

/// Reads a detector file: the checksummed model envelope of kind `net` (a changed byte, a
/// system-call model or a truncated file is an error), then the detector's own checks.
fn load_detector(path: &Path) -> Result<NetDetector> {
    let detector: NetDetector = modelfile::load(path, modelfile::ModelKind::Net).map_err(|e| {
        // Detectors were bare JSON before they had a checksum.
        let bare = matches!(e, modelfile::ModelFileError::NotAModel { .. })
            && std::fs::read(path).is_ok_and(|b| b.starts_with(br#"{"format":"mamori-net-"#));
        if bare {
            anyhow::anyhow!(
                "{}: a network detector written before detector files had a checksum; \
                 retrain it with `mamori net train`",
                path.display()
            )
        } else {
            e.into()
        }
    })?;
    detector
        .check()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(detector)
}
