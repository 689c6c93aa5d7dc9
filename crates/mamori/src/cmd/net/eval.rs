//! `mamori net eval`: how a detector does on labelled captures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use mamori_detect::metrics::{roc_auc, roc_curve};
use mamori_net::detector::Scratch;
use serde::Serialize;

use super::input::{self, PacketInputArgs};
use crate::plot;

/// Measure a detector on labelled captures.
///
/// A row is actually an attack when it holds at least one labelled attack packet, and predicted
/// an attack when its score is over the detector's threshold. Prints the confusion matrix (TN,
/// FP, FN, TP), accuracy, precision, recall, false-positive rate, F1 and ROC AUC, then detection
/// per labelled attack and false alarms per capture.
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
}

/// The results.
#[derive(Debug, Serialize)]
pub struct NetEval {
    pub algorithm: String,
    pub kind: String,
    pub threshold: f64,
    pub rows: usize,
    pub tn: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
    pub tp: usize,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub false_positive_rate: f64,
    pub f1: f64,
    pub roc_auc: f64,
    pub per_attack: Vec<AttackDetection>,
    pub per_source: Vec<SourceAlarms>,
}

/// Detection of one labelled attack.
#[derive(Debug, Serialize)]
pub struct AttackDetection {
    pub name: String,
    pub rows: usize,
    pub detected: usize,
}

/// False alarms in one capture.
#[derive(Debug, Serialize)]
pub struct SourceAlarms {
    pub source: String,
    pub normal_rows: usize,
    pub false_alarms: usize,
    pub attack_rows: usize,
    pub detected: usize,
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

pub fn run(args: EvalArgs) -> Result<()> {
    let detector = super::load_detector(&args.model)?;
    let labels = input::load_labels(&args.input.labels)?;
    if labels.is_empty() {
        bail!("give --labels: evaluation needs to know which traffic is attack traffic");
    }
    let threshold = detector.threshold.value;
    let mut scratch = Scratch::default();
    let (mut normal_scores, mut attack_scores) = (Vec::new(), Vec::new());
    let (mut tn, mut fp, mut fn_, mut tp) = (0, 0, 0, 0);
    let mut per_attack: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut per_source: BTreeMap<String, SourceAlarms> = BTreeMap::new();
    let stats = input::for_each_row(&args.input, &detector.features, &labels, |r| {
        let score = detector.score(&r.row.values, &mut scratch);
        let flagged = detector.flags(score);
        let src = per_source
            .entry(r.source.to_string())
            .or_insert_with(|| SourceAlarms {
                source: r.source.to_string(),
                normal_rows: 0,
                false_alarms: 0,
                attack_rows: 0,
                detected: 0,
            });
        if r.label.is_attack() {
            attack_scores.push(score);
            src.attack_rows += 1;
            src.detected += usize::from(flagged);
            if flagged {
                tp += 1;
            } else {
                fn_ += 1;
            }
            if let Some(i) = r.label.attack {
                let e = per_attack.entry(i).or_default();
                e.0 += 1;
                e.1 += usize::from(flagged);
            }
        } else {
            normal_scores.push(score);
            src.normal_rows += 1;
            src.false_alarms += usize::from(flagged);
            if flagged {
                fp += 1;
            } else {
                tn += 1;
            }
        }
        Ok(())
    })?;
    super::report_input(&stats);
    let rows = tn + fp + fn_ + tp;
    if rows == 0 {
        bail!("no rows were extracted from the inputs");
    }
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let auc = if normal_scores.is_empty() || attack_scores.is_empty() {
        f64::NAN
    } else {
        roc_auc(&normal_scores, &attack_scores)
    };
    let attacks = labels.attacks();
    let result = NetEval {
        algorithm: detector.algorithm().to_string(),
        kind: format!("{:?}", detector.features.kind).to_lowercase(),
        threshold,
        rows,
        tn,
        fp,
        fn_,
        tp,
        accuracy: ratio(tn + tp, rows),
        precision,
        recall,
        false_positive_rate: ratio(fp, fp + tn),
        f1: if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        },
        roc_auc: auc,
        per_attack: per_attack
            .into_iter()
            .map(|(i, (rows, detected))| AttackDetection {
                name: attacks.get(i).map(|a| a.name.clone()).unwrap_or_default(),
                rows,
                detected,
            })
            .collect(),
        per_source: per_source.into_values().collect(),
    };
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
        }
    }
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
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
    let _ = writeln!(s, "\n                 predicted normal  predicted attack");
    let _ = writeln!(s, "actual normal    TN {:>13}  FP {:>13}", e.tn, e.fp);
    let _ = writeln!(s, "actual attack    FN {:>13}  TP {:>13}", e.fn_, e.tp);
    let _ = writeln!(
        s,
        "\naccuracy {:.4}  precision {:.4}  recall {:.4}  FPR {:.4}  F1 {:.4}  ROC AUC {:.4}",
        e.accuracy, e.precision, e.recall, e.false_positive_rate, e.f1, e.roc_auc
    );
    if !e.per_attack.is_empty() {
        let _ = writeln!(s, "\nattack                 rows  detected");
        for a in &e.per_attack {
            let _ = writeln!(s, "{:<20} {:>6}  {:>8}", a.name, a.rows, a.detected);
        }
    }
    let _ = writeln!(
        s,
        "\ncapture                                   normal  false alarms  attack  detected"
    );
    for src in &e.per_source {
        let chars: Vec<char> = src.source.chars().collect();
        let name = if chars.len() > 40 {
            format!("…{}", chars[chars.len() - 39..].iter().collect::<String>())
        } else {
            src.source.clone()
        };
        let _ = writeln!(
            s,
            "{:<40} {:>7}  {:>12}  {:>6}  {:>8}",
            name, src.normal_rows, src.false_alarms, src.attack_rows, src.detected
        );
    }
    s
}
