//! Thresholds from normal scores, and per-trace aggregation of window scores.
//!
//! A window is flagged when its score is **strictly greater** than the threshold ("exceeds the
//! threshold"), here and in [`crate::metrics`].
//!
//! The calibration scores must be **held out from training**: normal windows the model never saw
//! (a validation split of the normal recordings). Scores of the training windows themselves are
//! optimistically low, so a threshold taken from them gives a false-positive rate well above the
//! target on new normal data.

use serde::{Deserialize, Serialize};

/// How a threshold was chosen; stored beside the value in model files.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdMethod {
    /// The smallest threshold that flags at most this share of the calibration scores
    /// ([`calibrate`]).
    TargetFpr(f64),
    /// Given by the user.
    Explicit(f64),
    /// The largest calibration score plus this fraction of the calibration scores' range
    /// (`max + margin × (max − min)`; [`max_plus_margin`]).
    MaxPlusMargin(f64),
    /// Raised to the score a window reaches when this many calls in it are novel, because the
    /// calibrated value (kept here) was lower. A short live training run has seen only part of
    /// a program's orderings; one unseen ordering should not page anyone ([`novel_call_floor`]).
    NovelCallFloor {
        /// Novel calls a window may hold without being flagged.
        calls: usize,
        /// The threshold calibration gave before the floor.
        calibrated: f64,
    },
}

/// A decision threshold: a window (or trace) is flagged when its score is strictly greater than
/// `value`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The threshold.
    pub value: f64,
    /// How it was chosen.
    pub method: ThresholdMethod,
}

impl Threshold {
    /// A threshold given by the user.
    pub fn explicit(value: f64) -> Threshold {
        Threshold {
            value,
            method: ThresholdMethod::Explicit(value),
        }
    }

    /// True when `score` exceeds (is strictly greater than) the threshold.
    pub fn flags(&self, score: f64) -> bool {
        score > self.value
    }
}

/// The STIDE mismatch rate of a window of `window` symbols in which `calls` symbols are novel:
/// each novel symbol spoils at most the `ngram` grams that contain it, out of the window's
/// `window - ngram + 1` grams. Used as a floor under a calibrated STIDE threshold.
pub fn novel_call_floor(calls: usize, ngram: usize, window: usize) -> f64 {
    if ngram == 0 || window < ngram {
        return 0.0;
    }
    let grams = window - ngram + 1;
    ((calls * ngram) as f64 / grams as f64).min(1.0)
}

/// Why a threshold could not be calibrated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalibrateError {
    /// No calibration scores.
    #[error("no normal scores to calibrate a threshold on")]
    Empty,
    /// A calibration score is NaN or infinite.
    #[error("calibration score {index} is not finite ({value})")]
    NonFinite {
        /// Position of the score.
        index: usize,
        /// The score.
        value: f64,
    },
    /// The target false-positive rate is not within `0..=1`.
    #[error("target false-positive rate {0} is not within 0..=1")]
    BadTarget(f64),
    /// The calibrated threshold is the highest score the model can give: nothing could ever
    /// exceed it, so the detector would never alert.
    #[error("the calibrated threshold {threshold} is the model's maximum score: it could never alert (calibration data unlike the steady state? try --calibrate-trim auto, another --calibrate recording or a lower --target-fpr)")]
    AtMaximum {
        /// The threshold.
        threshold: f64,
    },
    /// The margin is negative or not finite.
    #[error("margin {0} must be finite and non-negative")]
    BadMargin(f64),
}

fn sorted_finite(scores: &[f64]) -> Result<Vec<f64>, CalibrateError> {
    if scores.is_empty() {
        return Err(CalibrateError::Empty);
    }
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(CalibrateError::NonFinite { index, value });
    }
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(sorted)
}

/// The largest `f64` strictly below a finite `x` (so that every score equal to `x` exceeds it).
pub(crate) fn just_below(x: f64) -> f64 {
    if x == 0.0 {
        -f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() - 1)
    } else {
        f64::from_bits(x.to_bits() + 1)
    }
}

/// The threshold for a target false-positive rate on held-out normal scores: the empirical
/// `(1 − target_fpr)` quantile, chosen as the **smallest** threshold such that the share of
/// calibration scores strictly above it is at most `target_fpr`.
///
/// With `n` scores, at most `floor(target_fpr × n)` may lie above, so the threshold is the
/// `(n − floor(target_fpr × n))`-th smallest score; `target_fpr = 0` gives the largest score, and
/// `target_fpr = 1` a value just below the smallest (everything flagged). Ties at the threshold
/// are not flagged, so fewer scores than allowed may lie above it. Scores 1..=100 with target 0.05
/// give 95, with exactly 5 scores above.
///
/// `normal_scores` must come from normal windows held out from training (see the module docs).
pub fn calibrate(normal_scores: &[f64], target_fpr: f64) -> Result<Threshold, CalibrateError> {
    if !(0.0..=1.0).contains(&target_fpr) {
        return Err(CalibrateError::BadTarget(target_fpr));
    }
    let sorted = sorted_finite(normal_scores)?;
    let value = threshold_for_sorted(&sorted, target_fpr);
    Ok(Threshold {
        value,
        method: ThresholdMethod::TargetFpr(target_fpr),
    })
}

/// [`calibrate`]'s rule on scores already sorted ascending, finite and non-empty, with a target
/// in `0..=1`.
pub(crate) fn threshold_for_sorted(sorted: &[f64], target_fpr: f64) -> f64 {
    let n = sorted.len();
    // The tiny slack keeps e.g. 0.07 × 100 = 7.000000000000001 from losing a score to rounding.
    let allowed = ((target_fpr * n as f64) + 1e-9).floor() as usize;
    if allowed >= n {
        just_below(sorted[0])
    } else {
        sorted[n - 1 - allowed]
    }
}

/// How many windows at the end of an ordered run of calibration scores look unlike the rest —
/// a daemon shutting down, processes exiting, a capture ending mid-operation — and would set
/// the threshold on behaviour that is not the steady state.
///
/// The body is the first 80 % of the scores; its `(1 − target_fpr)` quantile `b` is what the
/// threshold would be without the tail. Walking back from the last score, the longest suffix
/// that starts with a score above `b` and in which more than half of the scores exceed `b` is
/// the unlike tail (at most 20 % of all
/// scores; 0 when fewer than 20 scores are given). A steady recording has exceedances spread
/// evenly at about `target_fpr`, so no suffix of more than a score or two is dense in them.
pub fn unlike_tail(scores: &[f64], target_fpr: f64) -> usize {
    let n = scores.len();
    if n < 20 || !(0.0..=1.0).contains(&target_fpr) {
        return 0;
    }
    let body_len = n * 4 / 5;
    let Ok(body) = sorted_finite(&scores[..body_len]) else {
        return 0;
    };
    let b = threshold_for_sorted(&body, target_fpr);
    let (mut above, mut best) = (0usize, 0usize);
    for (k, &s) in scores[body_len..].iter().rev().enumerate() {
        let exceeds = s.is_nan() || s > b;
        above += usize::from(exceeds);
        let len = k + 1;
        // the tail starts at an exceeding window: normal windows before the burst stay
        if exceeds && 2 * above > len {
            best = len;
        }
    }
    // one odd last window is noise, not a shutdown
    if best < 2 {
        0
    } else {
        best
    }
}

/// The largest calibration score plus `margin` times the scores' range: `max + margin × (max −
/// min)`. Flags none of the calibration scores.
pub fn max_plus_margin(normal_scores: &[f64], margin: f64) -> Result<Threshold, CalibrateError> {
    if !(margin.is_finite() && margin >= 0.0) {
        return Err(CalibrateError::BadMargin(margin));
    }
    let sorted = sorted_finite(normal_scores)?;
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    Ok(Threshold {
        value: max + margin * (max - min),
        method: ThresholdMethod::MaxPlusMargin(margin),
    })
}

/// Refuses a threshold that no score can exceed (`max_score`: the scorer's
/// [`crate::WindowScorer::max_score`]).
pub fn check_reachable(threshold: f64, max_score: Option<f64>) -> Result<(), CalibrateError> {
    match max_score {
        Some(max) if threshold >= max => Err(CalibrateError::AtMaximum { threshold }),
        _ => Ok(()),
    }
}

/// How a trace's window scores are reduced to one trace score (per-trace evaluation, as on
/// ADFA-LD: a trace is flagged when its trace score exceeds a trace threshold).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceAggregate {
    /// The largest window score.
    Max,
    /// The mean of the `k` largest window scores (all of them when the trace has fewer; `k = 0`
    /// is taken as 1).
    MeanTopK(usize),
    /// The share of windows whose score exceeds (is strictly greater than) this window threshold.
    ShareAbove(f64),
}

/// One score for a whole trace from its window scores. A trace without windows scores 0.0.
pub fn trace_score(window_scores: &[f64], how: TraceAggregate) -> f64 {
    if window_scores.is_empty() {
        return 0.0;
    }
    match how {
        TraceAggregate::Max => window_scores
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max),
        TraceAggregate::MeanTopK(k) => {
            let k = k.clamp(1, window_scores.len());
            let mut sorted = window_scores.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            sorted[..k].iter().sum::<f64>() / k as f64
        }
        TraceAggregate::ShareAbove(t) => {
            window_scores.iter().filter(|&&s| s > t).count() as f64 / window_scores.len() as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_to_hundred() -> Vec<f64> {
        // Shuffled order must not matter.
        (1..=100).rev().map(f64::from).collect()
    }

    #[test]
    fn target_fpr_quantile_has_known_answers() {
        let s = one_to_hundred();
        let t = calibrate(&s, 0.05).unwrap();
        assert_eq!(t.value, 95.0);
        assert_eq!(s.iter().filter(|&&x| t.flags(x)).count(), 5);
        assert_eq!(t.method, ThresholdMethod::TargetFpr(0.05));
        assert_eq!(calibrate(&s, 0.0).unwrap().value, 100.0);
        assert_eq!(calibrate(&s, 0.01).unwrap().value, 99.0);
        assert_eq!(calibrate(&s, 0.07).unwrap().value, 93.0);
        // 0.055 × 100 = 5.5: at most 5 may lie above.
        assert_eq!(calibrate(&s, 0.055).unwrap().value, 95.0);
        let all = calibrate(&s, 1.0).unwrap();
        assert!(all.value < 1.0 && all.value > 0.999);
        assert_eq!(s.iter().filter(|&&x| all.flags(x)).count(), 100);
        // Every target keeps the share above ≤ target.
        for i in 0..=100 {
            let target = i as f64 / 100.0;
            let v = calibrate(&s, target).unwrap().value;
            let above = s.iter().filter(|&&x| x > v).count();
            assert_eq!(above, i, "target {target}");
        }
    }

    #[test]
    fn ties_at_the_threshold_are_not_flagged() {
        let s = [1.0, 2.0, 2.0, 2.0, 2.0];
        // One of five may be above; the 4th smallest is 2, and nothing exceeds it.
        let t = calibrate(&s, 0.2).unwrap();
        assert_eq!(t.value, 2.0);
        assert_eq!(s.iter().filter(|&&x| t.flags(x)).count(), 0);
        assert_eq!(calibrate(&[0.0], 1.0).unwrap().value, -f64::from_bits(1));
        assert_eq!(just_below(-1.0), -1.0000000000000002);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(calibrate(&[], 0.1), Err(CalibrateError::Empty));
        assert_eq!(calibrate(&[1.0], 1.5), Err(CalibrateError::BadTarget(1.5)));
        assert!(calibrate(&[1.0], f64::NAN).is_err());
        assert!(matches!(
            calibrate(&[1.0, f64::INFINITY], 0.1),
            Err(CalibrateError::NonFinite { index: 1, .. })
        ));
        assert_eq!(
            max_plus_margin(&[1.0], -0.1),
            Err(CalibrateError::BadMargin(-0.1))
        );
    }

    #[test]
    fn max_plus_margin_and_explicit() {
        let t = max_plus_margin(&[2.0, 4.0, 3.0], 0.5).unwrap();
        assert_eq!(t.value, 5.0);
        assert_eq!(t.method, ThresholdMethod::MaxPlusMargin(0.5));
        let e = Threshold::explicit(0.25);
        assert!(e.flags(0.3) && !e.flags(0.25));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"value":5.0,"method":{"max-plus-margin":0.5}}"#);
        assert_eq!(serde_json::from_str::<Threshold>(&json).unwrap(), t);
    }

    #[test]
    fn trace_aggregates() {
        let w = [0.1, 0.9, 0.4, 0.7];
        assert_eq!(trace_score(&w, TraceAggregate::Max), 0.9);
        assert!((trace_score(&w, TraceAggregate::MeanTopK(2)) - 0.8).abs() < 1e-12);
        assert!((trace_score(&w, TraceAggregate::MeanTopK(0)) - 0.9).abs() < 1e-12);
        assert!((trace_score(&w, TraceAggregate::MeanTopK(10)) - 0.525).abs() < 1e-12);
        assert_eq!(trace_score(&w, TraceAggregate::ShareAbove(0.4)), 0.5);
        assert_eq!(trace_score(&[], TraceAggregate::Max), 0.0);
    }

    #[test]
    fn novel_call_floor_counts_the_grams_one_call_spoils() {
        // 19-call windows hold 14 6-grams; one novel call spoils at most 6 of them.
        assert!((novel_call_floor(1, 6, 19) - 6.0 / 14.0).abs() < 1e-12);
        assert_eq!(novel_call_floor(0, 6, 19), 0.0);
        assert_eq!(novel_call_floor(3, 6, 19), 1.0);
        assert_eq!(novel_call_floor(1, 6, 5), 0.0);
    }

    #[test]
    fn a_shutdown_at_the_end_of_calibration_is_found_and_steady_data_is_not() {
        // 200 steady windows with a 1 % sprinkle of high scores, then 15 of shutdown
        let mut scores: Vec<f64> = (0..200)
            .map(|i| if i % 100 == 50 { 0.9 } else { 0.1 })
            .collect();
        assert_eq!(unlike_tail(&scores, 0.01), 0);
        scores.extend(std::iter::repeat_n(1.0, 15));
        assert_eq!(unlike_tail(&scores, 0.01), 15);
        // a few normal windows after the burst do not hide it
        scores.extend([0.1, 0.1]);
        assert_eq!(unlike_tail(&scores, 0.01), 17);
        assert_eq!(unlike_tail(&scores[..10], 0.01), 0, "too few to judge");
    }

    #[test]
    fn a_threshold_at_the_maximum_score_is_refused() {
        assert_eq!(
            check_reachable(1.0, Some(1.0)),
            Err(CalibrateError::AtMaximum { threshold: 1.0 })
        );
        assert!(check_reachable(0.99, Some(1.0)).is_ok());
        assert!(check_reachable(1e9, None).is_ok());
    }
}
