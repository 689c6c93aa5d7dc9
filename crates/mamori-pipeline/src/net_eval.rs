//! Measuring a network detector on labelled captures: the confusion matrix (TN, FP, FN, TP),
//! accuracy, precision, recall, false-positive rate, F1 and ROC AUC, with detection per labelled
//! attack and false alarms per capture. A row is actually an attack when it holds at least one
//! labelled attack packet, and predicted an attack when its score is over the threshold.

use std::collections::BTreeMap;

use mamori_detect::metrics::roc_auc;
use serde::Serialize;

/// The results.
#[derive(Debug, Serialize)]
pub struct NetEval {
    /// The detector's algorithm.
    pub algorithm: String,
    /// Row kind (`device`, `flow`, `interval`).
    pub kind: String,
    /// The threshold rows were flagged over.
    pub threshold: f64,
    /// Rows judged.
    pub rows: usize,
    /// Normal rows not flagged.
    pub tn: usize,
    /// Normal rows flagged.
    pub fp: usize,
    /// Attack rows not flagged.
    #[serde(rename = "fn")]
    pub fn_: usize,
    /// Attack rows flagged.
    pub tp: usize,
    /// (TP + TN) / rows.
    pub accuracy: f64,
    /// TP / (TP + FP).
    pub precision: f64,
    /// TP / (TP + FN).
    pub recall: f64,
    /// FP / (FP + TN).
    pub false_positive_rate: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// ROC AUC of the scores (NaN without both classes).
    pub roc_auc: f64,
    /// Detection per labelled attack.
    pub per_attack: Vec<AttackDetection>,
    /// False alarms and detection per capture.
    pub per_source: Vec<SourceAlarms>,
    /// Rows of new devices' warm-ups (per-device baselines): scored, never flagged, and not
    /// counted in `rows` or the confusion matrix.
    pub warmup_rows: usize,
    /// Of those, rows holding labelled attack packets (an attack during a warm-up is learnt as
    /// the device's normal).
    pub warmup_attack_rows: usize,
}

/// Detection of one labelled attack.
#[derive(Debug, Serialize)]
pub struct AttackDetection {
    /// The attack's name in the labels.
    pub name: String,
    /// Rows holding its packets.
    pub rows: usize,
    /// Of those, flagged.
    pub detected: usize,
}

/// False alarms in one capture.
#[derive(Debug, Serialize)]
pub struct SourceAlarms {
    /// The capture.
    pub source: String,
    /// Its normal rows.
    pub normal_rows: usize,
    /// Of those, flagged.
    pub false_alarms: usize,
    /// Its attack rows.
    pub attack_rows: usize,
    /// Of those, flagged.
    pub detected: usize,
    /// Rows of its new devices' warm-ups (not counted above).
    pub warmup_rows: usize,
}

fn source_entry<'a>(
    per_source: &'a mut BTreeMap<String, SourceAlarms>,
    source: &str,
) -> &'a mut SourceAlarms {
    per_source
        .entry(source.to_string())
        .or_insert_with(|| SourceAlarms {
            source: source.to_string(),
            normal_rows: 0,
            false_alarms: 0,
            attack_rows: 0,
            detected: 0,
            warmup_rows: 0,
        })
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Rows as they are scored, summed up by [`Tally::finish`].
#[derive(Debug, Default)]
pub struct Tally {
    /// Scores of normal rows.
    pub normal_scores: Vec<f64>,
    /// Scores of attack rows.
    pub attack_scores: Vec<f64>,
    confusion: [usize; 4],
    per_attack: BTreeMap<usize, (usize, usize)>,
    per_source: BTreeMap<String, SourceAlarms>,
    warmup: [usize; 2],
}

impl Tally {
    /// Adds one row of capture `source`: its score, whether it was flagged, and its label
    /// (`None` normal, `Some(attack)` an attack row with the index of its first attack if known).
    pub fn add(&mut self, source: &str, score: f64, flagged: bool, label: Option<Option<usize>>) {
        let src = source_entry(&mut self.per_source, source);
        match label {
            Some(attack) => {
                self.attack_scores.push(score);
                src.attack_rows += 1;
                src.detected += usize::from(flagged);
                self.confusion[if flagged { 3 } else { 2 }] += 1;
                if let Some(i) = attack {
                    let e = self.per_attack.entry(i).or_default();
                    e.0 += 1;
                    e.1 += usize::from(flagged);
                }
            }
            None => {
                self.normal_scores.push(score);
                src.normal_rows += 1;
                src.false_alarms += usize::from(flagged);
                self.confusion[usize::from(flagged)] += 1;
            }
        }
    }

    /// Counts a row of a new device's warm-up (left out of the measures); `attack` when it holds
    /// labelled attack packets.
    pub fn add_warmup(&mut self, source: &str, attack: bool) {
        self.source(source).warmup_rows += 1;
        self.warmup[usize::from(attack)] += 1;
    }

    fn source(&mut self, source: &str) -> &mut SourceAlarms {
        source_entry(&mut self.per_source, source)
    }

    /// The results; `attack_names` names the attacks by index. `None` when no row was added.
    pub fn finish(
        self,
        algorithm: &str,
        kind: &str,
        threshold: f64,
        attack_names: &[String],
    ) -> Option<NetEval> {
        let [tn, fp, fn_, tp] = self.confusion;
        let rows = tn + fp + fn_ + tp;
        if rows == 0 {
            return None;
        }
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let auc = if self.normal_scores.is_empty() || self.attack_scores.is_empty() {
            f64::NAN
        } else {
            roc_auc(&self.normal_scores, &self.attack_scores)
        };
        Some(NetEval {
            algorithm: algorithm.to_string(),
            kind: kind.to_string(),
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
            per_attack: self
                .per_attack
                .into_iter()
                .map(|(i, (rows, detected))| AttackDetection {
                    name: attack_names.get(i).cloned().unwrap_or_default(),
                    rows,
                    detected,
                })
                .collect(),
            per_source: self.per_source.into_values().collect(),
            warmup_rows: self.warmup[0] + self.warmup[1],
            warmup_attack_rows: self.warmup[1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confusion_matrix_and_rates_add_up() {
        let mut t = Tally::default();
        t.add("a.pcap", 0.9, true, Some(Some(0))); // TP
        t.add("a.pcap", 0.2, false, Some(Some(1))); // FN
        t.add("a.pcap", 0.8, true, None); // FP
        t.add("b.pcap", 0.1, false, None); // TN
        t.add("b.pcap", 0.0, false, None); // TN
        let names = ["flood".to_string(), "scan".to_string()];
        let e = t.finish("svm", "device", 0.5, &names).expect("rows");
        assert_eq!((e.tn, e.fp, e.fn_, e.tp), (2, 1, 1, 1));
        assert_eq!(e.precision, 0.5);
        assert_eq!(e.recall, 0.5);
        assert!((e.false_positive_rate - 1.0 / 3.0).abs() < 1e-12);
        assert!((e.accuracy - 0.6).abs() < 1e-12);
        assert_eq!(e.per_attack[1].name, "scan");
        assert_eq!((e.per_attack[1].rows, e.per_attack[1].detected), (1, 0));
        assert_eq!(e.per_source[0].false_alarms, 1);
        // attack scores 0.9, 0.2 against normal 0.8, 0.1, 0.0: 5 of 6 pairs ordered
        assert!((e.roc_auc - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!((e.warmup_rows, e.warmup_attack_rows), (0, 0));
        // warm-up rows are counted apart and change no measure
        let mut t = Tally::default();
        t.add("a.pcap", 0.9, true, Some(Some(0)));
        t.add("a.pcap", 0.1, false, None);
        t.add_warmup("b.pcap", false);
        t.add_warmup("b.pcap", true);
        let e = t.finish("ae", "device", 0.5, &names).expect("rows");
        assert_eq!(
            (e.rows, e.tn, e.tp, e.warmup_rows, e.warmup_attack_rows),
            (2, 1, 1, 2, 1)
        );
        assert_eq!(e.per_source[1].warmup_rows, 2);
        assert!(Tally::default()
            .finish("svm", "device", 0.5, &names)
            .is_none());
    }
}
