//! Errors of the HMM and multinomial-mixture models.

/// Why a model could not be configured, built or fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HmmError {
    /// `n_states` is zero.
    #[error("n_states must be at least 1")]
    ZeroStates,
    /// `n_components` of a mixture is zero.
    #[error("n_components must be at least 1")]
    ZeroComponents,
    /// The alphabet is empty.
    #[error("n_symbols must be at least 1")]
    ZeroSymbols,
    /// `max_iter` is zero.
    #[error("max_iter must be at least 1")]
    ZeroIterations,
    /// `n_restarts` is zero.
    #[error("n_restarts must be at least 1")]
    ZeroRestarts,
    /// `tol` is NaN.
    #[error("tol must not be NaN")]
    InvalidTol,
    /// `emission_floor` is not in `(0, 1)`.
    #[error("emission_floor must be in (0, 1), got {0}")]
    InvalidEmissionFloor(f64),
    /// The mixture's smoothing `alpha` is not finite and positive.
    #[error("alpha must be finite and positive, got {0}")]
    InvalidAlpha(f64),
    /// No training data: the list is empty or every sequence in it is empty.
    #[error("no non-empty training sequence")]
    NoSequences,
    /// A training sequence holds a symbol outside the alphabet.
    #[error("symbol {symbol} in training sequence {sequence} is outside the alphabet of {n_symbols} symbols")]
    SymbolOutOfRange {
        /// Index of the offending sequence in the input.
        sequence: usize,
        /// The symbol.
        symbol: usize,
        /// Alphabet size.
        n_symbols: usize,
    },
    /// Model parameters have the wrong shape or are not probability distributions.
    #[error("invalid model parameters: {0}")]
    InvalidModel(String),
    /// A training sequence has probability zero under the current parameters (only possible when
    /// EM starts from caller-given parameters with zeros).
    #[error("training sequence {0} has zero likelihood under the initial parameters")]
    ZeroLikelihood(usize),
}

/// Checks that training sequence `index` uses only symbols below `n_symbols`.
pub(crate) fn check_symbols(
    index: usize,
    seq: &[crate::Symbol],
    n_symbols: usize,
) -> Result<(), HmmError> {
    match seq.iter().find(|&&s| s as usize >= n_symbols) {
        Some(&bad) => Err(HmmError::SymbolOutOfRange {
            sequence: index,
            symbol: bad as usize,
            n_symbols,
        }),
        None => Ok(()),
    }
}
