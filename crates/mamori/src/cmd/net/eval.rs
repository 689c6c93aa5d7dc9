//! `mamori net eval`: how a detector does on labelled captures.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use mamori_detect::metrics::roc_curve;
use mamori_net::detector::Scratch;
use mamori_pipeline::net_eval::{NetEval, Tally};

use super::input::{self, PacketInputArgs};
use crate::plot;

/// Measure a detector on labelled captures.
///
/// A row is actually an attack when it holds at least one labelled attack packet, and predicted
/// an attack when its score is over the detector's threshold. Prints the confusion matrix (TN,
/// FP, FN, TP), accuracy, precision, recall, false-positive rate, F1 and ROC AUC, then detection
/// per labelled attack and false alarms per capture. A measure that is undefined on these rows
/// (ROC AUC with one class, recall without attack rows, …) prints as "n/a" (null in --json).
/// Labels that match no packet are named in a warning.
///
/// A detector with per-device baselines (the autoencoder's default) judges each device against
/// its own threshold; rows of a device never seen in training that fall in its warm-up are left
/// out of every measure and counted apart ("warm-up rows"). `--no-baselines` judges every row
/// against the detector's one threshold instead.
///
/// Exit status: 0 when the rows hold both normal and attack rows; 1 when they are all of one
/// class (typically labels whose hosts or times match nothing in the captures): the report is
/// printed, but detection was not measured; 2 on error.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Detector file.
    #[arg(short, long, value_name = "MODEL")]
    pub model: PathBuf,
    #[command(flatten)]
    pub input: PacketInputArgs,
    /// Write the confusion matrix as a heatmap (SVG).
    #[arg(long, value_name = "FILE")]
    pub heatmap: Option<PathBuf>,
    /// Write the ROC curve (SVG).
    #[arg(long, value_name = "FILE")]
    pub roc: Option<PathBuf>,
    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Ignore the detector's per-device baselines: one threshold for every row, no warm-up.
    #[arg(long)]
    pub no_baselines: bool,
}

pub fn run(args: EvalArgs) -> Result<i32> {
    let detector = super::load_detector(&args.model)?;
    let labels = input::load_labels(&args.input.labels)?;
    if labels.is_empty() {
        bail!("give --labels: evaluation needs to know which traffic is attack traffic");
    }
    let threshold = detector.threshold.value;
    let mut scratch = Scratch::default();
    let mut tally = Tally::default();
    let mut judge = detector.judge(!args.no_baselines);
    let stats = input::for_each_row(&args.input, &detector.features, &labels, |r| {
        let score = detector.score(&r.row.values, &mut scratch);
        let j = judge.judge(r.source, &r.row.entity, r.row.start_ns, r.row.end_ns, score);
        if j.warmup {
            tally.add_warmup(r.source, r.label.is_attack());
            return Ok(());
        }
        let label = r.label.is_attack().then_some(r.label.attack);
        tally.add(r.source, score, j.flagged, label);
        Ok(())
    })?;
    super::report_input(&stats);
    let unmatched = super::warn_unmatched_labels(&labels, &stats);
    // kept for the ROC plot
    let (normal_scores, attack_scores) = (tally.normal_scores.clone(), tally.attack_scores.clone());
    let names: Vec<String> = labels.attacks().iter().map(|a| a.name.clone()).collect();
    let kind = format!("{:?}", detector.features.kind).to_lowercase();
    let Some(result) = tally.finish(detector.algorithm(), &kind, threshold, &names) else {
        bail!("no rows were extracted from the inputs");
    };
    let (tn, fp, fn_, tp) = (result.tn, result.fp, result.fn_, result.tp);
    let auc = result.roc_auc;
    let one_class = tp + fn_ == 0 || tn + fp == 0;
    if one_class {
        let what = if tp + fn_ == 0 {
            "normal: no row holds a packet the labels mark as attack"
        } else {
            "attack: no normal row to measure false alarms on"
        };
        let labels_note = if unmatched > 0 {
            format!(
                " ({unmatched} of {} labels matched no packet)",
                labels.attacks().len()
            )
        } else {
            String::new()
        };
        eprintln!(
            "mamori: warning: all {} rows are {what}{labels_note}; ROC AUC is undefined with one \
             class (n/a), exit status 1",
            result.rows
        );
    }
    if result.warmup_rows > 0 {
        eprintln!(
            "mamori: {} rows of new devices' warm-ups ({} of them attack rows) were learnt, not \
             judged, and are left out of the measures (--no-baselines to judge them)",
            result.warmup_rows, result.warmup_attack_rows
        );
    }
    print!("{}", report(&result));
    if let Some(p) = &args.heatmap {
        let title = format!("{} on {} rows", result.algorithm, result.kind);
        std::fs::write(p, plot::confusion_svg(&title, tn, fp, fn_, tp))
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &args.roc {
        if auc.is_finite() {
            let points = roc_curve(&normal_scores, &attack_scores)
                .into_iter()
                .map(|pt| (pt.fpr, pt.tpr))
                .collect();
            let series = [plot::RocSeries {
                label: result.algorithm.clone(),
                auc,
                points,
            }];
            std::fs::write(p, plot::roc_svg("ROC", &series))
                .with_context(|| format!("cannot write {}", p.display()))?;
        } else {
            eprintln!(
                "mamori: warning: no ROC curve written to {}: it needs normal and attack rows",
                p.display()
            );
        }
    }
    if let Some(p) = &args.json {
        let mut json = serde_json::to_value(&result)?;
        // Undefined measures are null rather than a misleading 0.
        for (key, defined) in defined_measures(&result) {
            if !defined {
                json[key] = serde_json::Value::Null;
            }
        }
        std::fs::write(p, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(i32::from(one_class))
}

/// Which ratios are defined on these rows (a zero denominator, or one class for ROC AUC).
fn defined_measures(e: &NetEval) -> [(&'static str, bool); 5] {
    let (attack, normal, flagged) = (e.tp + e.fn_, e.tn + e.fp, e.tp + e.fp);
    [
        ("precision", flagged > 0),
        ("recall", attack > 0),
        ("false_positive_rate", normal > 0),
        ("f1", flagged > 0 && attack > 0),
        ("roc_auc", attack > 0 && normal > 0 && e.roc_auc.is_finite()),
    ]
}

/// The text report.
pub fn report(e: &NetEval) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} on {} rows, threshold {:.6}: {} rows ({} normal, {} attack)",
        e.algorithm,
        e.kind,
        e.threshold,
        e.rows,
        e.tn + e.fp,
        e.fn_ + e.tp
    );
    if e.warmup_rows > 0 {
        let _ = writeln!(
            s,
            "per-device thresholds; {} warm-up rows of new devices not judged ({} attack)",
            e.warmup_rows, e.warmup_attack_rows
        );
    }
    let _ = writeln!(s, "\n                 predicted normal  predicted attack");
    let _ = writeln!(s, "actual normal    TN {:>13}  FP {:>13}", e.tn, e.fp);
    let _ = writeln!(s, "actual attack    FN {:>13}  TP {:>13}", e.fn_, e.tp);
    let [precision, recall, fpr, f1, auc] = defined_measures(e);
    let show = |v: f64, (_, defined): (&str, bool)| {
        if defined && v.is_finite() {
            format!("{v:.4}")
        } else {
            "n/a".to_string()
        }
    };
    let _ = writeln!(
        s,
        "\naccuracy {:.4}  precision {}  recall {}  FPR {}  F1 {}  ROC AUC {}",
        e.accuracy,
        show(e.precision, precision),
        show(e.recall, recall),
        show(e.false_positive_rate, fpr),
        show(e.f1, f1),
        show(e.roc_auc, auc)
    );
    if !e.per_attack.is_empty() {
        let _ = writeln!(s, "\nattack                 rows  detected");
        for a in &e.per_attack {
            let _ = writeln!(s, "{:<20} {:>6}  {:>8}", a.name, a.rows, a.detected);
        }
    }
    let warm = e.warmup_rows > 0;
    let _ = writeln!(
        s,
        "\ncapture                                   normal  false alarms  attack  detected{}",
        if warm { "  warm-up" } else { "" }
    );
    for src in &e.per_source {
        let chars: Vec<char> = src.source.chars().collect();
        let name = if chars.len() > 40 {
            format!("…{}", chars[chars.len() - 39..].iter().collect::<String>())
        } else {
            src.source.clone()
        };
        let _ = write!(
            s,
            "{:<40} {:>7}  {:>12}  {:>6}  {:>8}",
            name, src.normal_rows, src.false_alarms, src.attack_rows, src.detected
        );
        if warm {
            let _ = write!(s, "  {:>7}", src.warmup_rows);
        }
        s.push('\n');
    }
    s
}
