//! [`FlatBoscHmm`]: the paper's flattened-BoSC HMM, kept to reproduce its (failed) result.
//!
//! Each window becomes its BoSC count vector, and that vector is read as a *sequence* of
//! `n_symbols` symbols (the count of class 0, of class 1, ...), with the counts `0..=window_size`
//! as the alphabet, then trained and scored with a [`CategoricalHmm`]. See the
//! [`multinomial`](super::multinomial) module for why this cannot separate attacks from normal
//! windows, and for the model that can.

use serde::{Deserialize, Serialize};

use super::categorical::CategoricalHmm;
use super::errors::{check_symbols, HmmError};
use super::params::{CategoricalHmmParams, ValidCategoricalHmmParams, ValidFlatBoscHmmParams};
use crate::dataset::Windows;
use crate::window::bosc_into;
use crate::{Fit, Symbol, WindowScorer};

/// A [`CategoricalHmm`] over flattened BoSC vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatBoscHmm {
    /// Classes in a BoSC vector (its length, the flattened sequence's length).
    n_symbols: usize,
    /// The HMM; its alphabet is the counts `0..=window_size`.
    hmm: CategoricalHmm,
}

impl FlatBoscHmm {
    /// Fits the HMM on the flattened BoSC vectors of `windows` over `n_symbols` classes. The
    /// count alphabet is `0..=longest window`; a symbol `>= n_symbols` is an error, empty windows
    /// are skipped. The same as [`Fit::fit`] of
    /// [`FlatBoscHmmParams`](super::FlatBoscHmmParams) on [`Windows`].
    pub fn fit(
        params: &CategoricalHmmParams,
        windows: &[&[Symbol]],
        n_symbols: usize,
    ) -> Result<Self, HmmError> {
        Self::fit_checked(&params.check()?, windows, n_symbols)
    }

    fn fit_checked(
        params: &ValidCategoricalHmmParams,
        windows: &[&[Symbol]],
        n_symbols: usize,
    ) -> Result<Self, HmmError> {
        if n_symbols == 0 {
            return Err(HmmError::ZeroSymbols);
        }
        let mut flat: Vec<Vec<Symbol>> = Vec::with_capacity(windows.len());
        let mut counts = vec![0u32; n_symbols];
        let mut window_size = 0;
        for (wi, w) in windows.iter().enumerate() {
            if w.is_empty() {
                continue;
            }
            check_symbols(wi, w, n_symbols)?;
            window_size = window_size.max(w.len());
            flat.push(flatten_into(w, &mut counts));
        }
        if flat.is_empty() {
            return Err(HmmError::NoSequences);
        }
        let refs: Vec<&[Symbol]> = flat.iter().map(Vec::as_slice).collect();
        let hmm = params.fit(&refs, window_size + 1)?;
        Ok(FlatBoscHmm { n_symbols, hmm })
    }

    /// The underlying HMM (alphabet: counts `0..=window_size`).
    pub fn hmm(&self) -> &CategoricalHmm {
        &self.hmm
    }

    /// Number of classes (length of the flattened sequence).
    pub fn n_symbols(&self) -> usize {
        self.n_symbols
    }

    /// The flattened sequence of a window: its BoSC counts, each capped at `u16::MAX`.
    pub fn flatten(window: &[Symbol], n_symbols: usize) -> Vec<Symbol> {
        let mut counts = vec![0u32; n_symbols.max(1)];
        flatten_into(window, &mut counts)
    }
}

fn flatten_into(window: &[Symbol], counts: &mut [u32]) -> Vec<Symbol> {
    bosc_into(window, counts);
    counts
        .iter()
        .map(|&c| c.min(u32::from(Symbol::MAX)) as Symbol)
        .collect()
}

impl Fit<Windows<'_>> for ValidFlatBoscHmmParams {
    type Model = FlatBoscHmm;
    type Error = HmmError;

    /// Fits the HMM on the flattened BoSC vectors of the windows (see [`FlatBoscHmm::fit`]).
    fn fit(&self, data: &Windows<'_>) -> Result<FlatBoscHmm, HmmError> {
        FlatBoscHmm::fit_checked(self.hmm(), data.windows, data.n_symbols)
    }
}

impl WindowScorer for FlatBoscHmm {
    /// The HMM's score of the flattened BoSC; counts above the training window size read as the
    /// largest count.
    fn score(&self, window: &[Symbol]) -> f64 {
        self.hmm.score(&Self::flatten(window, self.n_symbols))
    }

    fn score_many(&self, windows: &[&[Symbol]]) -> Vec<f64> {
        let mut counts = vec![0u32; self.n_symbols.max(1)];
        windows
            .iter()
            .map(|w| self.hmm.score(&flatten_into(w, &mut counts)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hmm::MultinomialMixtureParams;

    #[test]
    fn flattening_reads_counts_as_symbols() {
        assert_eq!(FlatBoscHmm::flatten(&[0, 2, 2, 9], 4), vec![1, 0, 2, 1]);
    }

    /// The paper's failure in miniature: normal windows put their calls in classes 2 and 14,
    /// the "attack" puts the same counts in classes 5 and 16. The flattened HMM barely tells them
    /// apart; the multinomial mixture does by a wide margin.
    #[test]
    fn flattened_bosc_cannot_see_which_classes_were_used() {
        let n_symbols = 19;
        let mut train: Vec<Vec<Symbol>> = Vec::new();
        for k in 0..200usize {
            let a = 5 + k % 5; // 5..=9 calls of class 2, the rest class 14
            let mut w = vec![2; a];
            w.extend(std::iter::repeat_n(14, 19 - a));
            train.push(w);
        }
        let refs: Vec<&[Symbol]> = train.iter().map(Vec::as_slice).collect();
        let flat =
            FlatBoscHmm::fit(&CategoricalHmmParams::new().seed(1), &refs, n_symbols).unwrap();
        let mix = MultinomialMixtureParams::new()
            .seed(1)
            .fit(&refs, n_symbols)
            .unwrap();
        let mut normal = vec![2; 7];
        normal.extend([14; 12]);
        let mut attack = vec![5; 7];
        attack.extend([16; 12]);
        let (fn_, fa) = (flat.score(&normal), flat.score(&attack));
        let (mn, ma) = (mix.score(&normal), mix.score(&attack));
        assert!(fa.is_finite() && ma.is_finite());
        eprintln!("flat: {fn_} vs {fa}; mixture: {mn} vs {ma}");
        assert!(ma - mn > 50.0, "mixture: normal {mn}, attack {ma}");
        assert!(
            fa - fn_ < (ma - mn) / 3.0,
            "flat: normal {fn_}, attack {fa}; mixture gap {}",
            ma - mn
        );
    }

    #[test]
    fn fit_trait_matches_the_inherent_fit() {
        let train: Vec<Vec<Symbol>> = (0..40).map(|k| vec![0, 1, (k % 3) as Symbol, 2]).collect();
        let refs: Vec<&[Symbol]> = train.iter().map(Vec::as_slice).collect();
        let hmm = CategoricalHmmParams::new().seed(4);
        let a = FlatBoscHmm::fit(&hmm, &refs, 3).unwrap();
        let b = super::super::FlatBoscHmmParams::from(hmm.clone())
            .fit(&Windows::new(&refs, 3))
            .unwrap();
        assert_eq!(a, b);
        let bad = super::super::FlatBoscHmmParams::from(hmm.n_states(0));
        assert_eq!(
            bad.fit(&Windows::new(&refs, 3)).unwrap_err(),
            HmmError::ZeroStates
        );
    }

    #[test]
    fn rejects_out_of_alphabet_training_symbols() {
        let e = FlatBoscHmm::fit(&CategoricalHmmParams::new(), &[&[0, 7]], 3).unwrap_err();
        assert!(matches!(e, HmmError::SymbolOutOfRange { symbol: 7, .. }));
    }
}
