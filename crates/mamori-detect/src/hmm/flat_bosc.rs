//! [`FlatBoscHmm`]: the paper's flattened-BoSC HMM, kept to reproduce its (failed) result.
//!
//! Each window becomes its BoSC count vector, and that vector is read as a *sequence* of
//! `n_symbols` symbols (the count of class 0, of class 1, ...), with the counts `0..=window_size`
//! as the alphabet, then trained and scored with a [`CategoricalHmm`]. See the
//! [`multinomial`](super::multinomial) module for why this cannot separate attacks from normal
//! windows, and for the model that can.

use serde::{Deserialize, Serialize};

use super::categorical::CategoricalHmm;
use super::errors::HmmError;
use super::params::CategoricalHmmParams;
use crate::window::bosc_into;
use crate::{Symbol, WindowScorer};

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
    /// are skipped.
    pub fn fit(
        params: &CategoricalHmmParams,
        windows: &[&[Symbol]],
        n_symbols: usize,
    ) -> Result<Self, HmmError> {
        let params = params.check()?;
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
            if let Some(&bad) = w.iter().find(|&&s| s as usize >= n_symbols) {
                return Err(HmmError::SymbolOutOfRange {
                    sequence: wi,
                    symbol: bad as usize,
                    n_symbols,
                });
            }
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
