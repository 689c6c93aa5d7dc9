//! What the models learn from, kept apart from every algorithm (linfa's `Dataset`): windows of
//! class symbols, or rows of features ([`Matrix`]) with or without their labels ([`Labelled`]).
//! Reading the data from files, captures or traces is other crates' job.

use crate::classes::Symbol;
use crate::matrix::Matrix;

/// Training windows (or whole sequences) of class symbols over an alphabet of `n_symbols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows<'a> {
    /// The windows, normal behaviour only.
    pub windows: &'a [&'a [Symbol]],
    /// Symbols are `0..n_symbols`: the class table's `n_symbols()`, "unknown" included.
    pub n_symbols: usize,
    /// The configured window length: no window is longer, partial windows are shorter. Only the
    /// autoencoder uses it (its input width); [`Windows::new`] sets the longest window's length.
    pub window_size: usize,
}

impl<'a> Windows<'a> {
    /// Windows over `n_symbols` symbols; the window size is the longest window's length.
    pub fn new(windows: &'a [&'a [Symbol]], n_symbols: usize) -> Self {
        Windows {
            windows,
            n_symbols,
            window_size: windows.iter().map(|w| w.len()).max().unwrap_or(0),
        }
    }

    /// The same windows with the configured window size (when every training window happens to
    /// be shorter than the windows that will be scored).
    pub fn with_window_size(self, window_size: usize) -> Self {
        Windows {
            window_size,
            ..self
        }
    }
}

/// Feature rows with a label each (`true` = attack): what supervised models learn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labelled<'a> {
    /// One row per sample.
    pub records: &'a Matrix,
    /// One label per row.
    pub targets: &'a [bool],
}

impl<'a> Labelled<'a> {
    /// Rows and their labels; the lengths are checked when a model is fitted.
    pub fn new(records: &'a Matrix, targets: &'a [bool]) -> Self {
        Labelled { records, targets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_size_defaults_to_the_longest_window() {
        let w: [&[Symbol]; 3] = [&[0, 1], &[0, 1, 2, 0], &[]];
        let d = Windows::new(&w, 3);
        assert_eq!((d.n_symbols, d.window_size), (3, 4));
        assert_eq!(d.with_window_size(10).window_size, 10);
        assert_eq!(Windows::new(&[], 3).window_size, 0);
    }
}
