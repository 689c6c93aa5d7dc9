//! The HMM gated by novelty: a window counts only when the HMM finds it unlikely *and* it holds
//! an n-gram never seen in training.
//!
//! The two signals fail differently on a daemon's normal life. The HMM flags rare rhythms of
//! known calls (a web-control thread accepting several connections in a row); STIDE flags any
//! new ordering, including harmless ones the HMM finds likely. Code that was never part of the
//! daemon — a restart's loader, an injected payload — is both unlikely and new. On the motion
//! recordings this removes the HMM's false alarms without losing a step it caught (EVALUATION.md).
//!
//! The score is the HMM's (`−log p`) when the window holds a novel n-gram and 0 otherwise, so a
//! threshold calibrated on the HMM's own scores ([`NoveltyGatedHmm::ungated`]) keeps its meaning.

use serde::{Deserialize, Serialize};

use crate::classes::Symbol;
use crate::hmm::CategoricalHmm;
use crate::stide::Stide;
use crate::traits::WindowScorer;

/// A categorical HMM whose score counts only in windows with a never-seen n-gram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoveltyGatedHmm {
    /// Scores the window.
    pub hmm: CategoricalHmm,
    /// Opens the gate: the window holds an n-gram missing from this database.
    pub novelty: Stide,
}

impl NoveltyGatedHmm {
    /// The HMM alone, which thresholds are calibrated on (calibrating on the gated scores, mostly
    /// 0, would put the threshold among the closed windows and make the HMM's part void).
    pub fn ungated(&self) -> &CategoricalHmm {
        &self.hmm
    }

    /// Whether the window holds an n-gram never seen in training.
    pub fn is_novel(&self, window: &[Symbol]) -> bool {
        self.novelty.mismatch_rate(window) > 0.0
    }

    /// The gated scores of `windows` from their HMM scores (`ungated().score_many(windows)`), so
    /// a caller that needs both computes the HMM once.
    pub fn gate(&self, windows: &[&[Symbol]], hmm_scores: &[f64]) -> Vec<f64> {
        windows
            .iter()
            .zip(hmm_scores)
            .map(|(w, &s)| if self.is_novel(w) { s } else { 0.0 })
            .collect()
    }
}

impl WindowScorer for NoveltyGatedHmm {
    /// The HMM's `−log p(window)` when the window holds a novel n-gram, else 0.
    fn score(&self, window: &[Symbol]) -> f64 {
        if self.is_novel(window) {
            self.hmm.score(window)
        } else {
            0.0
        }
    }

    fn score_many(&self, windows: &[&[Symbol]]) -> Vec<f64> {
        self.gate(windows, &self.hmm.score_many(windows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hmm::CategoricalHmmParams;
    use crate::stide::StideParams;

    #[test]
    fn only_windows_with_a_new_ngram_keep_the_hmm_score() {
        // training: the cycle 0 1 2 3 repeated
        let train: Vec<Vec<Symbol>> = (0..40)
            .map(|i| (0..8).map(|j| ((i + j) % 4) as Symbol).collect())
            .collect();
        let refs: Vec<&[Symbol]> = train.iter().map(Vec::as_slice).collect();
        let hmm = CategoricalHmmParams::new()
            .n_states(2)
            .seed(1)
            .fit(&refs, 5)
            .expect("hmm");
        let novelty = Stide::fit(&refs, &StideParams { ngram: 3 }).expect("stide");
        let gated = NoveltyGatedHmm { hmm, novelty };
        let known: Vec<Symbol> = vec![0, 1, 2, 3, 0, 1, 2, 3];
        // the same calls in an order never seen: new 3-grams
        let reordered: Vec<Symbol> = vec![0, 2, 1, 3, 0, 2, 1, 3];
        assert!(!gated.is_novel(&known));
        assert_eq!(gated.score(&known), 0.0);
        assert!(gated.is_novel(&reordered));
        assert_eq!(gated.score(&reordered), gated.ungated().score(&reordered));
        assert_eq!(
            gated.score_many(&[&known, &reordered]),
            vec![gated.score(&known), gated.score(&reordered)]
        );
        let back: NoveltyGatedHmm =
            serde_json::from_str(&serde_json::to_string(&gated).expect("json")).expect("back");
        assert_eq!(back, gated);
    }
}
