//! Detection metrics from the scores of normal and attack windows (or traces).
//!
//! A window is **flagged** when its score is strictly greater than the threshold (it "exceeds the
//! threshold"), as in [`crate::calibrate`]. The detection rate is the share of attack windows
//! flagged (true-positive rate), the false-positive rate the share of normal windows flagged.
//! A rate over an empty set is 0.0; [`roc_auc`] of an empty set is NaN.

use serde::{Deserialize, Serialize};

use crate::calibrate::{just_below, CalibrateError};

fn sorted(scores: &[f64]) -> Vec<f64> {
    let mut v = scores.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// How many of the ascending `sorted` scores are strictly greater than `t`.
fn count_above(sorted: &[f64], t: f64) -> usize {
    sorted.len() - sorted.partition_point(|&x| x <= t)
}

fn rate(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        k as f64 / n as f64
    }
}

/// Area under the ROC curve: the probability that an attack score exceeds a normal score, ties
/// counted ½ (the Mann–Whitney U statistic over `normal.len() × attack.len()`). O((n + m) log n).
/// 1.0 is perfect separation, 0.5 chance. NaN when either set is empty.
pub fn roc_auc(normal: &[f64], attack: &[f64]) -> f64 {
    if normal.is_empty() || attack.is_empty() {
        return f64::NAN;
    }
    let normal = sorted(normal);
    let mut wins = 0.0f64;
    for &a in attack {
        let below = normal.partition_point(|&x| x < a);
        let not_above = normal.partition_point(|&x| x <= a);
        wins += below as f64 + 0.5 * (not_above - below) as f64;
    }
    wins / (normal.len() as f64 * attack.len() as f64)
}

/// One point of a ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// Scores strictly greater than this are flagged.
    pub threshold: f64,
    /// False-positive rate at this threshold.
    pub fpr: f64,
    /// True-positive (detection) rate at this threshold.
    pub tpr: f64,
}

/// The ROC curve, one point per distinct score, from (0, 0) to (1, 1).
///
/// The thresholds are every distinct score of either set, descending (the first, the largest
/// score, flags nothing), then one just below the smallest score (flags everything). The
/// trapezoidal area under the points equals [`roc_auc`]. Empty when both sets are empty; when one
/// set is empty its rate stays 0.
pub fn roc_curve(normal: &[f64], attack: &[f64]) -> Vec<RocPoint> {
    let normal = sorted(normal);
    let attack = sorted(attack);
    let mut all: Vec<f64> = normal.iter().chain(&attack).copied().collect();
    all.sort_by(|a, b| b.total_cmp(a));
    all.dedup();
    let Some(&lowest) = all.last() else {
        return Vec::new();
    };
    all.push(just_below(lowest));
    all.into_iter()
        .map(|t| RocPoint {
            threshold: t,
            fpr: rate(count_above(&normal, t), normal.len()),
            tpr: rate(count_above(&attack, t), attack.len()),
        })
        .collect()
}

/// Confusion counts and rates at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Scores strictly greater than this are flagged.
    pub threshold: f64,
    /// Share of attack scores flagged (true-positive rate).
    pub detection_rate: f64,
    /// Share of normal scores flagged.
    pub false_positive_rate: f64,
    /// Attack scores flagged.
    pub tp: usize,
    /// Normal scores flagged.
    pub fp: usize,
    /// Normal scores not flagged.
    pub tn: usize,
    /// Attack scores not flagged (`fn` in JSON).
    #[serde(rename = "fn")]
    pub fn_: usize,
}

fn rates_sorted(normal: &[f64], attack: &[f64], threshold: f64) -> Rates {
    let tp = count_above(attack, threshold);
    let fp = count_above(normal, threshold);
    Rates {
        threshold,
        detection_rate: rate(tp, attack.len()),
        false_positive_rate: rate(fp, normal.len()),
        tp,
        fp,
        tn: normal.len() - fp,
        fn_: attack.len() - tp,
    }
}

/// Detection and false-positive rates when scores strictly greater than `threshold` are flagged.
pub fn rates_at(normal: &[f64], attack: &[f64], threshold: f64) -> Rates {
    rates_sorted(&sorted(normal), &sorted(attack), threshold)
}

/// [`rates_at`] for many thresholds (the paper's tables), sorting the scores once.
pub fn threshold_sweep(normal: &[f64], attack: &[f64], thresholds: &[f64]) -> Vec<Rates> {
    let (normal, attack) = (sorted(normal), sorted(attack));
    thresholds
        .iter()
        .map(|&t| rates_sorted(&normal, &attack, t))
        .collect()
}

/// Rates at the smallest threshold whose false-positive rate on `normal` is at most
/// `target_fpr` (the threshold [`crate::calibrate::calibrate`] would choose from these normal
/// scores). Errors when `normal` is empty or not finite, or the target is outside `0..=1`.
pub fn detection_at_fpr(
    normal: &[f64],
    attack: &[f64],
    target_fpr: f64,
) -> Result<Rates, CalibrateError> {
    let threshold = crate::calibrate::calibrate(normal, target_fpr)?.value;
    Ok(rates_at(normal, attack, threshold))
}

/// Summary statistics of a set of scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    /// Number of scores.
    pub count: usize,
    /// Smallest score.
    pub min: f64,
    /// Largest score.
    pub max: f64,
    /// Mean score.
    pub mean: f64,
    /// Median (linear interpolation between order statistics).
    pub p50: f64,
    /// 99th percentile (linear interpolation between order statistics).
    pub p99: f64,
}

impl ScoreSummary {
    /// Summarises `scores`; every statistic is 0.0 when there are none.
    pub fn of(scores: &[f64]) -> ScoreSummary {
        if scores.is_empty() {
            return ScoreSummary {
                count: 0,
                min: 0.0,
                max: 0.0,
                mean: 0.0,
                p50: 0.0,
                p99: 0.0,
            };
        }
        let s = sorted(scores);
        ScoreSummary {
            count: s.len(),
            min: s[0],
            max: s[s.len() - 1],
            mean: s.iter().sum::<f64>() / s.len() as f64,
            p50: quantile_sorted(&s, 0.5),
            p99: quantile_sorted(&s, 0.99),
        }
    }
}

/// Quantile `q` (in `0..=1`) of non-empty ascending scores, interpolating linearly between order
/// statistics (numpy's default).
fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    let frac = pos - lo as f64;
    if frac == 0.0 {
        s[lo]
    } else {
        s[lo] + frac * (s[hi] - s[lo])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trapezoid(curve: &[RocPoint]) -> f64 {
        curve
            .windows(2)
            .map(|p| (p[1].fpr - p[0].fpr) * (p[1].tpr + p[0].tpr) / 2.0)
            .sum()
    }

    #[test]
    fn auc_by_hand_with_ties() {
        // Pairs (attack, normal): 2 vs 1 → 1, 2 vs 2 → ½, 2 vs 3 → 0, 4 vs 1/2/3 → 3.
        // (1 + ½ + 0 + 3) / 6 = 0.75.
        assert_eq!(roc_auc(&[1.0, 2.0, 3.0], &[2.0, 4.0]), 0.75);
        assert_eq!(roc_auc(&[1.0, 2.0], &[3.0, 4.0, 5.0]), 1.0);
        assert_eq!(roc_auc(&[3.0, 4.0], &[1.0]), 0.0);
        assert_eq!(roc_auc(&[0.5, 0.5, 0.7], &[0.5, 0.5, 0.7]), 0.5);
        assert!(roc_auc(&[], &[1.0]).is_nan());
    }

    #[test]
    fn curve_runs_from_origin_to_one_and_matches_auc() {
        let normal = [1.0, 2.0, 3.0];
        let attack = [2.0, 4.0];
        let c = roc_curve(&normal, &attack);
        assert_eq!(c.len(), 5, "4 distinct scores + 1");
        assert_eq!((c[0].fpr, c[0].tpr, c[0].threshold), (0.0, 0.0, 4.0));
        let last = c[c.len() - 1];
        assert_eq!((last.fpr, last.tpr), (1.0, 1.0));
        assert!(last.threshold < 1.0);
        // Threshold 2: flags normal {3}, attack {4}.
        assert_eq!((c[2].threshold, c[2].fpr, c[2].tpr), (2.0, 1.0 / 3.0, 0.5));
        assert!(c
            .windows(2)
            .all(|p| p[0].fpr <= p[1].fpr && p[0].tpr <= p[1].tpr));
        assert!((trapezoid(&c) - 0.75).abs() < 1e-12);
        let c = roc_curve(&[0.5, 0.5], &[0.5]);
        assert!((trapezoid(&c) - 0.5).abs() < 1e-12);
        assert!(roc_curve(&[], &[]).is_empty());
    }

    #[test]
    fn rates_at_a_threshold_are_strict() {
        let normal = [0.1, 0.2, 0.3, 0.4];
        let attack = [0.3, 0.5, 0.6];
        let r = rates_at(&normal, &attack, 0.3);
        assert_eq!((r.tp, r.fp, r.tn, r.fn_), (2, 1, 3, 1));
        assert_eq!(r.false_positive_rate, 0.25);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""fn":1"#), "{json}");
        assert_eq!(serde_json::from_str::<Rates>(&json).unwrap(), r);
        assert!((r.detection_rate - 2.0 / 3.0).abs() < 1e-12);
        let sweep = threshold_sweep(&normal, &attack, &[0.0, 0.3, 1.0]);
        assert_eq!(sweep[1], r);
        assert_eq!((sweep[0].tp, sweep[0].fp), (3, 4));
        assert_eq!((sweep[2].tp, sweep[2].fp), (0, 0));
        let empty = rates_at(&[], &attack, 0.3);
        assert_eq!(empty.false_positive_rate, 0.0);
    }

    #[test]
    fn detection_at_target_fpr() {
        let normal: Vec<f64> = (1..=100).map(f64::from).collect();
        let attack = [50.0, 95.0, 95.5, 200.0];
        let r = detection_at_fpr(&normal, &attack, 0.05).unwrap();
        assert_eq!(r.threshold, 95.0);
        assert_eq!(r.fp, 5);
        assert_eq!(r.tp, 2);
        assert_eq!(r.false_positive_rate, 0.05);
        assert_eq!(r.detection_rate, 0.5);
        assert!(detection_at_fpr(&[], &attack, 0.05).is_err());
    }

    #[test]
    fn summary() {
        let s = ScoreSummary::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(
            (s.count, s.min, s.max, s.mean, s.p50),
            (4, 1.0, 4.0, 2.5, 2.5)
        );
        assert!((s.p99 - 3.97).abs() < 1e-12);
        let hundred: Vec<f64> = (1..=101).map(f64::from).collect();
        let s = ScoreSummary::of(&hundred);
        assert_eq!((s.p50, s.p99), (51.0, 100.0));
        assert_eq!(ScoreSummary::of(&[]).count, 0);
    }
}
