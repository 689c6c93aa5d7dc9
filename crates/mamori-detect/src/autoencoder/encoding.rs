//! Input representations: how a window of class symbols becomes a vector of features.

use serde::{Deserialize, Serialize};

use crate::classes::Symbol;
use crate::window::bosc_into;

/// How a window of `W` symbols over an alphabet of `K` symbols is turned into features.
///
/// Symbols `>= K` are treated as the last ("unknown") symbol `K - 1`, as [`bosc_into`] does.
/// A window longer than `W` is cut to its last (most recent) `W` symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// `W × K` features: position `p` holding symbol `s` sets feature `p·K + s` to 1. Positions a
    /// partial window (shorter than `W`) does not reach stay all-zero. Keeps order, and treats
    /// symbols as unrelated categories (the default: see the module doc for why).
    #[default]
    OneHot,
    /// `W` features: position `p` holds `s / (K − 1)`, in `[0, 1]`. Compact but imposes an order
    /// (class 3 is "between" classes 2 and 4) that class numbers do not have. Positions a
    /// partial window does not reach are 0, which is indistinguishable from symbol 0.
    ClassIndex,
    /// `K` features: the Bag of System Calls counts divided by `W`, so a full window's features
    /// sum to 1 (a partial window's sum to `len / W`). Loses order.
    Bosc,
}

impl Encoding {
    /// Number of features for windows of `window_size` over `n_symbols` symbols.
    pub fn n_features(self, n_symbols: usize, window_size: usize) -> usize {
        match self {
            Encoding::OneHot => window_size * n_symbols,
            Encoding::ClassIndex => window_size,
            Encoding::Bosc => n_symbols,
        }
    }
}

/// Encodes windows with one [`Encoding`], reusing its scratch space between windows.
#[derive(Debug, Clone)]
pub struct Encoder {
    encoding: Encoding,
    n_symbols: usize,
    window_size: usize,
    counts: Vec<u32>,
}

impl Encoder {
    /// An encoder for windows of `window_size` over `n_symbols` symbols. `n_symbols` is taken as
    /// at least 1 and `window_size` as at least 1, so encoding never panics.
    pub fn new(encoding: Encoding, n_symbols: usize, window_size: usize) -> Self {
        let n_symbols = n_symbols.max(1);
        Encoder {
            encoding,
            n_symbols,
            window_size: window_size.max(1),
            counts: vec![0; n_symbols],
        }
    }

    /// Length of the vectors [`Encoder::encode_into`] writes.
    pub fn n_features(&self) -> usize {
        self.encoding.n_features(self.n_symbols, self.window_size)
    }

    /// Writes the features of `window` into `out[..self.n_features()]` (overwriting it).
    ///
    /// # Panics
    /// If `out` is shorter than [`Encoder::n_features`].
    pub fn encode_into(&mut self, window: &[Symbol], out: &mut [f32]) {
        let w = self.window_size;
        let k = self.n_symbols;
        let window = &window[window.len().saturating_sub(w)..];
        let out = &mut out[..self.n_features()];
        let last = k - 1;
        match self.encoding {
            Encoding::OneHot => {
                out.fill(0.0);
                for (p, &s) in window.iter().enumerate() {
                    out[p * k + (s as usize).min(last)] = 1.0;
                }
            }
            Encoding::ClassIndex => {
                out.fill(0.0);
                let denom = last.max(1) as f32;
                for (o, &s) in out.iter_mut().zip(window) {
                    *o = (s as usize).min(last) as f32 / denom;
                }
            }
            Encoding::Bosc => {
                bosc_into(window, &mut self.counts);
                let inv = 1.0 / w as f32;
                for (o, &c) in out.iter_mut().zip(&self.counts) {
                    *o = c as f32 * inv;
                }
            }
        }
    }

    /// The features of `window` as a new vector.
    pub fn encode(&mut self, window: &[Symbol]) -> Vec<f32> {
        let mut out = vec![0.0; self.n_features()];
        self.encode_into(window, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A hand-worked window: K = 3 symbols (0, 1, unknown = 2), W = 4.
    const K: usize = 3;
    const W: usize = 4;

    #[test]
    fn one_hot_marks_one_slot_per_position_and_leaves_missing_positions_zero() {
        let mut e = Encoder::new(Encoding::OneHot, K, W);
        assert_eq!(e.n_features(), 12);
        #[rustfmt::skip]
        let want = vec![
            0.0, 1.0, 0.0, // 1
            1.0, 0.0, 0.0, // 0
            0.0, 0.0, 1.0, // 9 -> unknown (2)
            1.0, 0.0, 0.0, // 0
        ];
        assert_eq!(e.encode(&[1, 0, 9, 0]), want);
        // Partial window: the last position is all-zero.
        #[rustfmt::skip]
        let want = vec![
            0.0, 0.0, 1.0,
            0.0, 1.0, 0.0,
            1.0, 0.0, 0.0,
            0.0, 0.0, 0.0,
        ];
        assert_eq!(e.encode(&[2, 1, 0]), want);
        // Too long: the last W symbols are kept.
        assert_eq!(e.encode(&[2, 1, 0, 9, 0]), e.encode(&[1, 0, 9, 0]));
    }

    #[test]
    fn class_index_scales_symbols_to_unit_interval() {
        let mut e = Encoder::new(Encoding::ClassIndex, K, W);
        assert_eq!(e.n_features(), 4);
        assert_eq!(e.encode(&[1, 0, 9, 2]), vec![0.5, 0.0, 1.0, 1.0]);
        assert_eq!(e.encode(&[2, 1]), vec![1.0, 0.5, 0.0, 0.0]);
    }

    #[test]
    fn bosc_counts_divided_by_window_size() {
        let mut e = Encoder::new(Encoding::Bosc, K, W);
        assert_eq!(e.n_features(), 3);
        assert_eq!(e.encode(&[1, 0, 9, 0]), vec![0.5, 0.25, 0.25]);
        assert_eq!(e.encode(&[1, 1]), vec![0.0, 0.5, 0.0]);
    }
}
