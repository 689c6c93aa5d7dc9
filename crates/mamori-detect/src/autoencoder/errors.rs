//! Errors of the autoencoder: invalid hyper-parameters, unusable training data, divergence, and
//! inconsistent model files.

/// Why an autoencoder could not be configured, trained or loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AutoencoderError {
    /// A hidden layer of width zero (`layer` counts from the input side).
    #[error("hidden layer {layer} has zero units")]
    ZeroHiddenWidth {
        /// Index into `hidden`.
        layer: usize,
    },
    /// A bottleneck of width zero.
    #[error("bottleneck must have at least one unit")]
    ZeroBottleneck,
    /// A mini-batch size of zero.
    #[error("batch size must be at least 1")]
    ZeroBatchSize,
    /// Zero training epochs.
    #[error("epochs must be at least 1")]
    ZeroEpochs,
    /// A learning rate that is not finite and positive.
    #[error("learning rate must be finite and > 0, got {0}")]
    InvalidLearningRate(f32),
    /// Adam's β1 outside `[0, 1)`.
    #[error("Adam beta1 must be in [0, 1), got {0}")]
    InvalidBeta1(f32),
    /// Adam's β2 outside `[0, 1)`.
    #[error("Adam beta2 must be in [0, 1), got {0}")]
    InvalidBeta2(f32),
    /// Adam's ε not finite and positive.
    #[error("Adam epsilon must be finite and > 0, got {0}")]
    InvalidEpsilon(f32),
    /// An activity-regularisation weight that is negative or not finite.
    #[error("activity L1 weight must be finite and >= 0, got {0}")]
    InvalidActivityL1(f32),
    /// A validation split outside `[0, 1)`.
    #[error("validation split must be in [0, 1), got {0}")]
    InvalidValidationSplit(f32),
    /// Early-stopping patience of zero while a validation split is requested.
    #[error("early-stopping patience must be at least 1 when a validation split is used")]
    ZeroPatience,

    /// `fit` was given no windows.
    #[error("no training windows")]
    NoWindows,
    /// Fewer than two symbols (one class plus "unknown").
    #[error("need at least 2 symbols (a class plus unknown), got {0}")]
    TooFewSymbols(usize),
    /// A window size of zero.
    #[error("window size must be at least 1")]
    ZeroWindowSize,
    /// A training window longer than the window size.
    #[error("training window {index} has {len} symbols, more than the window size {size}")]
    WindowTooLong {
        /// Position of the window in the training set.
        index: usize,
        /// Its length.
        len: usize,
        /// The window size.
        size: usize,
    },
    /// The validation split leaves no window to train on.
    #[error("validation split leaves no training windows ({n_windows} windows)")]
    TooFewWindows {
        /// Number of windows given.
        n_windows: usize,
    },
    /// The loss or the weights became NaN or infinite (learning rate too high?).
    #[error("training diverged (non-finite loss or weights) in epoch {epoch}")]
    Diverged {
        /// 0-based epoch.
        epoch: usize,
    },
    /// [`VectorAutoencoder`](super::VectorAutoencoder) training was given no rows, or rows of
    /// no features.
    #[error("no training rows (or rows of no features)")]
    NoRows,
    /// A training row whose length differs from the first row's.
    #[error("training row {index} has {len} features, the first row has {expected}")]
    RowLength {
        /// Position of the row.
        index: usize,
        /// Its length.
        len: usize,
        /// The first row's length.
        expected: usize,
    },
    /// A training value that is NaN or infinite.
    #[error("training row {row}, feature {col} is not finite")]
    NonFinite {
        /// Position of the row.
        row: usize,
        /// Position of the feature.
        col: usize,
    },
    /// A deserialised model whose parts do not fit together.
    #[error("inconsistent autoencoder model: {0}")]
    InvalidModel(String),
}
