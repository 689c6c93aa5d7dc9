//! The fitted [`Autoencoder`]: training loop, min-max scaler, and batched scoring.

use serde::{Deserialize, Serialize};

use super::encoding::{Encoder, Encoding};
use super::errors::AutoencoderError;
use super::network::{Activation, Adam, Grads, Network, Workspace};
use super::params::{AutoencoderParams, AutoencoderValidParams};
use crate::classes::Symbol;
use crate::dataset::Windows;
use crate::rng::Rng;
use crate::{Fit, WindowScorer};

/// Windows per forward pass when scoring.
const SCORE_BATCH: usize = 512;

/// Per-feature min-max scaling fitted on the training inputs: `x' = (x − min) / (max − min)`,
/// so every training feature lies in `[0, 1]`.
///
/// Chosen over standardisation because one-hot and BoSC features are sparse: dividing by the
/// standard deviation would blow a rare slot (seen in 0.01% of windows) up to ~100 and let it
/// dominate the squared error, while min-max keeps one-hot features exactly 0/1. A feature
/// constant in training (e.g. the "unknown" slot, which may never occur) gets range 1, so it
/// maps to 0 in training and an unseen value shows up as its raw difference (1 for a one-hot
/// slot), a large but finite error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Scaler {
    min: Vec<f32>,
    inv_range: Vec<f32>,
}

impl Scaler {
    fn fit(d: usize, n: usize, mut row: impl FnMut(usize, &mut [f32])) -> Self {
        let mut min = vec![f32::INFINITY; d];
        let mut max = vec![f32::NEG_INFINITY; d];
        let mut buf = vec![0.0; d];
        for i in 0..n {
            row(i, &mut buf);
            for ((lo, hi), &v) in min.iter_mut().zip(max.iter_mut()).zip(&buf) {
                *lo = lo.min(v);
                *hi = hi.max(v);
            }
        }
        let inv_range = min
            .iter()
            .zip(&max)
            .map(|(&lo, &hi)| {
                let r = hi - lo;
                if r > 1e-12 && r.is_finite() {
                    1.0 / r
                } else {
                    1.0
                }
            })
            .collect();
        let min = min
            .into_iter()
            .map(|v| if v.is_finite() { v } else { 0.0 })
            .collect();
        Scaler { min, inv_range }
    }

    fn apply(&self, x: &mut [f32]) {
        for ((v, &lo), &s) in x.iter_mut().zip(&self.min).zip(&self.inv_range) {
            *v = (*v - lo) * s;
        }
    }
}

/// A dense autoencoder trained on normal windows; the score of a window is the mean squared
/// error of its reconstruction (in scaled feature space). Serialisable into model files; loading
/// checks that the stored parts fit together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AutoencoderRepr")]
pub struct Autoencoder {
    params: AutoencoderParams,
    n_symbols: usize,
    window_size: usize,
    scaler: Scaler,
    network: Network,
    history: Vec<f64>,
    validation_history: Vec<f64>,
}

/// The serialised form, validated into an [`Autoencoder`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoencoderRepr {
    params: AutoencoderParams,
    n_symbols: usize,
    window_size: usize,
    scaler: Scaler,
    network: Network,
    history: Vec<f64>,
    validation_history: Vec<f64>,
}

impl TryFrom<AutoencoderRepr> for Autoencoder {
    type Error = AutoencoderError;
    fn try_from(r: AutoencoderRepr) -> Result<Self, AutoencoderError> {
        let bad = |m: String| Err(AutoencoderError::InvalidModel(m));
        let bad_net = |m: String| AutoencoderError::InvalidModel(m);
        if r.n_symbols < 2 || r.window_size == 0 {
            return bad("n_symbols must be >= 2 and window_size >= 1".into());
        }
        r.network.validate().map_err(bad_net)?;
        let d = r.params.encoding.n_features(r.n_symbols, r.window_size);
        if r.network.n_inputs() != d {
            return bad(format!(
                "network takes {} features, the encoding gives {d}",
                r.network.n_inputs()
            ));
        }
        if r.scaler.min.len() != d || r.scaler.inv_range.len() != d {
            return bad("scaler length differs from the feature count".into());
        }
        if !r
            .scaler
            .min
            .iter()
            .chain(&r.scaler.inv_range)
            .all(|v| v.is_finite())
        {
            return bad("scaler has non-finite values".into());
        }
        Ok(Autoencoder {
            params: r.params,
            n_symbols: r.n_symbols,
            window_size: r.window_size,
            scaler: r.scaler,
            network: r.network,
            history: r.history,
            validation_history: r.validation_history,
        })
    }
}

/// Losses per epoch from [`train`].
pub(super) struct Trained {
    pub(super) history: Vec<f64>,
    pub(super) validation_history: Vec<f64>,
}

/// Mini-batch Adam on rows `0..n` produced by `row(i, out)`; returns per-epoch losses. With a
/// validation split, stops after `patience` epochs without improvement and restores the best
/// weights.
pub(super) fn train(
    net: &mut Network,
    p: &AutoencoderParams,
    n: usize,
    mut row: impl FnMut(usize, &mut [f32]),
) -> Result<Trained, AutoencoderError> {
    let mut rng = Rng::seeded(p.seed);
    let _init = rng.fork(); // the weights' stream (drawn by the caller from the same seed)
    let mut split_rng = rng.fork();
    let mut shuffle_rng = rng.fork();

    let mut order: Vec<usize> = (0..n).collect();
    let n_val = if p.validation_split > 0.0 {
        ((n as f64 * p.validation_split as f64).round() as usize).max(1)
    } else {
        0
    };
    if n_val >= n {
        return Err(AutoencoderError::TooFewWindows { n_windows: n });
    }
    if n_val > 0 {
        split_rng.shuffle(&mut order);
    }
    let (val, train) = order.split_at_mut(n_val);
    let val: &[usize] = val;

    let d = net.n_inputs();
    let bs_max = p.batch_size.min(n).max(1);
    let mut ws = Workspace::new(net, bs_max);
    let mut grads = Grads::zeros(net);
    let mut adam = Adam::new(net, p.learning_rate, p.beta1, p.beta2, p.epsilon);
    let mut x = vec![0.0f32; bs_max * d];
    let mut fill = |idx: &[usize], x: &mut [f32]| {
        for (&i, out) in idx.iter().zip(x.chunks_exact_mut(d)) {
            row(i, out);
        }
    };

    let mut history = Vec::with_capacity(p.epochs);
    let mut validation_history = Vec::new();
    let mut best: Option<(f64, Network)> = None;
    let mut waited = 0;
    for epoch in 0..p.epochs {
        shuffle_rng.shuffle(train);
        let mut total = 0.0;
        for batch in train.chunks(bs_max) {
            let bs = batch.len();
            fill(batch, &mut x);
            net.forward(&x, bs, &mut ws);
            let (mse, act) = net.backward(&x, bs, p.activity_l1, &mut ws, &mut grads);
            if !(mse + act).is_finite() {
                return Err(AutoencoderError::Diverged { epoch });
            }
            total += (mse + act) * bs as f64;
            adam.step(net, &grads);
        }
        let loss = total / train.len() as f64;
        if !loss.is_finite() || !net.is_finite() {
            return Err(AutoencoderError::Diverged { epoch });
        }
        history.push(loss);
        if n_val > 0 {
            let mut total = 0.0;
            for batch in val.chunks(bs_max) {
                fill(batch, &mut x);
                net.forward(&x, batch.len(), &mut ws);
                let (mse, act) = net.loss(&x, batch.len(), p.activity_l1, &ws);
                total += (mse + act) * batch.len() as f64;
            }
            let vloss = total / n_val as f64;
            if !vloss.is_finite() {
                return Err(AutoencoderError::Diverged { epoch });
            }
            validation_history.push(vloss);
            if best.as_ref().is_none_or(|(b, _)| vloss < *b) {
                best = Some((vloss, net.clone()));
                waited = 0;
            } else {
                waited += 1;
                if waited >= p.patience {
                    break;
                }
            }
        }
    }
    if let Some((_, b)) = best {
        *net = b;
    }
    Ok(Trained {
        history,
        validation_history,
    })
}

/// Layer sizes and activations of the architecture: `d → hidden… → bottleneck → hidden(rev)… → d`.
pub(super) fn build_network(p: &AutoencoderParams, d: usize) -> Network {
    let mut sizes = vec![d];
    sizes.extend(&p.hidden);
    sizes.push(p.bottleneck);
    sizes.extend(p.hidden.iter().rev());
    sizes.push(d);
    let mut acts = vec![Activation::Relu; p.hidden.len()];
    acts.push(p.bottleneck_activation);
    acts.extend(vec![Activation::Relu; p.hidden.len()]);
    acts.push(p.output_activation);
    let mut rng = Rng::seeded(p.seed);
    Network::new(&sizes, &acts, p.hidden.len(), &mut rng.fork())
}

impl AutoencoderValidParams {
    /// Trains on normal `windows` of at most `window_size` symbols over `n_symbols` symbols
    /// (classes plus "unknown"); symbols `>= n_symbols` count as unknown.
    ///
    /// Errors: no windows, fewer than 2 symbols, window size 0, a window longer than
    /// `window_size`, a validation split that leaves nothing to train on, or divergence.
    pub fn fit(
        &self,
        windows: &[&[Symbol]],
        n_symbols: usize,
        window_size: usize,
    ) -> Result<Autoencoder, AutoencoderError> {
        if windows.is_empty() {
            return Err(AutoencoderError::NoWindows);
        }
        if n_symbols < 2 {
            return Err(AutoencoderError::TooFewSymbols(n_symbols));
        }
        if window_size == 0 {
            return Err(AutoencoderError::ZeroWindowSize);
        }
        if let Some((index, w)) = windows
            .iter()
            .enumerate()
            .find(|(_, w)| w.len() > window_size)
        {
            return Err(AutoencoderError::WindowTooLong {
                index,
                len: w.len(),
                size: window_size,
            });
        }
        let p = self.params();
        let mut enc = Encoder::new(p.encoding, n_symbols, window_size);
        let d = enc.n_features();
        let scaler = Scaler::fit(d, windows.len(), |i, out| enc.encode_into(windows[i], out));
        let mut network = build_network(p, d);
        let trained = train(&mut network, p, windows.len(), |i, out| {
            enc.encode_into(windows[i], out);
            scaler.apply(out);
        })?;
        Ok(Autoencoder {
            params: p.clone(),
            n_symbols,
            window_size,
            scaler,
            network,
            history: trained.history,
            validation_history: trained.validation_history,
        })
    }
}

impl Fit<Windows<'_>> for AutoencoderValidParams {
    type Model = Autoencoder;
    type Error = AutoencoderError;

    /// [`AutoencoderValidParams::fit`] with the data set's `n_symbols` and `window_size`.
    fn fit(&self, data: &Windows<'_>) -> Result<Autoencoder, AutoencoderError> {
        AutoencoderValidParams::fit(self, data.windows, data.n_symbols, data.window_size)
    }
}

impl Autoencoder {
    /// The parameters it was trained with.
    pub fn params(&self) -> &AutoencoderParams {
        &self.params
    }

    /// Its input representation.
    pub fn encoding(&self) -> Encoding {
        self.params.encoding
    }

    /// Alphabet size (classes plus "unknown").
    pub fn n_symbols(&self) -> usize {
        self.n_symbols
    }

    /// Window size it was trained for.
    pub fn window_size(&self) -> usize {
        self.window_size
    }

    /// Training loss (MSE plus activity term, averaged over the epoch's batches) per epoch run.
    pub fn history(&self) -> &[f64] {
        &self.history
    }

    /// Validation loss per epoch (empty without a validation split).
    pub fn validation_history(&self) -> &[f64] {
        &self.validation_history
    }
}

/// Makes an error finite whatever happened upstream.
pub(super) fn finite(e: f64) -> f64 {
    if e.is_finite() {
        e
    } else {
        f32::MAX as f64
    }
}

impl WindowScorer for Autoencoder {
    fn score(&self, window: &[Symbol]) -> f64 {
        self.score_many(&[window])[0]
    }

    fn score_many(&self, windows: &[&[Symbol]]) -> Vec<f64> {
        let mut scores = vec![0.0; windows.len()];
        if windows.is_empty() {
            return scores;
        }
        let mut enc = Encoder::new(self.params.encoding, self.n_symbols, self.window_size);
        let d = enc.n_features();
        let bs_max = SCORE_BATCH.min(windows.len());
        let mut ws = Workspace::new(&self.network, bs_max);
        let mut x = vec![0.0f32; bs_max * d];
        for (chunk, out) in windows.chunks(bs_max).zip(scores.chunks_mut(bs_max)) {
            for (w, row) in chunk.iter().zip(x.chunks_exact_mut(d)) {
                enc.encode_into(w, row);
                self.scaler.apply(row);
            }
            self.network.forward(&x, chunk.len(), &mut ws);
            self.network.row_errors(&x, chunk.len(), &ws, out);
            out.iter_mut().for_each(|s| *s = finite(*s));
        }
        debug_assert!(ws.max_batch() >= bs_max);
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8-D points on a 2-D linear subspace through 0.5.
    fn subspace_data(n: usize, seed: u64) -> (Vec<f32>, [[f32; 2]; 8]) {
        let mut r = Rng::seeded(seed);
        let mut a = [[0.0f32; 2]; 8];
        for row in &mut a {
            for v in row.iter_mut() {
                *v = 0.25 * r.normal() as f32;
            }
        }
        let mut x = Vec::with_capacity(n * 8);
        for _ in 0..n {
            let z = [2.0 * r.f64() as f32 - 1.0, 2.0 * r.f64() as f32 - 1.0];
            for row in &a {
                x.push(0.5 + row[0] * z[0] + row[1] * z[1]);
            }
        }
        (x, a)
    }

    fn errors(net: &Network, x: &[f32]) -> Vec<f64> {
        let n = x.len() / 8;
        let mut ws = Workspace::new(net, n);
        net.forward(x, n, &mut ws);
        let mut e = vec![0.0; n];
        net.row_errors(x, n, &ws, &mut e);
        e
    }

    #[test]
    fn linear_bottleneck_learns_a_2d_subspace_and_flags_off_subspace_points() {
        let (x, a) = subspace_data(1000, 1);
        let p = AutoencoderParams::new()
            .hidden(vec![])
            .bottleneck(2)
            .bottleneck_activation(Activation::Linear)
            .batch_size(32)
            .epochs(150)
            .validation_split(0.0)
            .activity_l1(0.0)
            .learning_rate(3e-3)
            .seed(3);
        let mut net = build_network(&p, 8);
        let t = train(&mut net, &p, 1000, |i, out| {
            out.copy_from_slice(&x[i * 8..(i + 1) * 8])
        })
        .unwrap();
        let last = *t.history.last().unwrap();
        assert!(t.history[0] > 100.0 * last, "{:?}", t.history);
        assert!(last < 1e-5, "final loss {last}");
        let train_err = errors(&net, &x);
        let mean = train_err.iter().sum::<f64>() / train_err.len() as f64;
        let max = train_err.iter().cloned().fold(0.0, f64::max);
        // Off the subspace: move a training point along a direction orthogonal to A's columns.
        let mut off = [0.0f32; 8];
        off[0] = 1.0;
        for col in 0..2 {
            // Gram–Schmidt against the two columns (approximately; enough to leave the plane).
            let c: Vec<f32> = a.iter().map(|r| r[col]).collect();
            let dot: f32 = off.iter().zip(&c).map(|(o, c)| o * c).sum();
            let nn: f32 = c.iter().map(|c| c * c).sum();
            off.iter_mut().zip(&c).for_each(|(o, c)| *o -= dot / nn * c);
        }
        let anomaly: Vec<f32> = x[..8].iter().zip(&off).map(|(x, o)| x + 0.3 * o).collect();
        let e = errors(&net, &anomaly)[0];
        assert!(
            e > 1000.0 * mean && e > 10.0 * max,
            "anomaly {e}, train mean {mean} max {max}"
        );
    }

    fn pattern_windows() -> Vec<Vec<Symbol>> {
        // Normal traffic: cyclic runs of 0..4 starting anywhere, window 6, alphabet 6 (5 = unknown).
        (0..200)
            .map(|s| (0..6).map(|i| ((s + i) % 5) as Symbol).collect())
            .collect()
    }

    fn small_params() -> AutoencoderParams {
        AutoencoderParams::new()
            .hidden(vec![16])
            .bottleneck(4)
            .batch_size(32)
            .epochs(60)
            .validation_split(0.2)
            .patience(5)
            .seed(9)
    }

    #[test]
    fn fits_windows_deterministically_and_flags_unseen_patterns() {
        let ws = pattern_windows();
        let refs: Vec<&[Symbol]> = ws.iter().map(|w| &w[..]).collect();
        for enc in [Encoding::OneHot, Encoding::ClassIndex, Encoding::Bosc] {
            let p = small_params().encoding(enc);
            let m = p.fit(&refs, 6, 6).unwrap();
            let m2 = p.fit(&refs, 6, 6).unwrap();
            assert!(m == m2, "same seed must give identical weights ({enc:?})");
            assert!(m.network != p.clone().seed(10).fit(&refs, 6, 6).unwrap().network);
            assert!(!m.history().is_empty() && m.history().len() == m.validation_history().len());
            let normal = m.score_many(&refs);
            let worst_normal = normal.iter().cloned().fold(0.0, f64::max);
            // Batched and single scoring agree.
            assert!((m.score(refs[7]) - normal[7]).abs() < 1e-9);
            // An unknown symbol (never in training, and out of range) gives a finite, higher score.
            let unknown = m.score(&[0, 1, 2, 40, 4, 0]);
            assert!(unknown.is_finite());
            // (Class-index inputs make "unknown" just a larger number next to class 4; this small
            // net does not separate it, which is one reason one-hot is the default.)
            if enc != Encoding::ClassIndex {
                assert!(
                    unknown > worst_normal,
                    "{enc:?}: unknown {unknown} vs normal {worst_normal}"
                );
            }
            // Partial, empty and over-long windows score finitely.
            for w in [&[0u16, 1][..], &[], &[0, 1, 2, 3, 4, 0, 1, 2]] {
                assert!(m.score(w).is_finite());
            }
        }
    }

    #[test]
    fn model_round_trips_through_json_and_rejects_inconsistent_files() {
        let ws = pattern_windows();
        let refs: Vec<&[Symbol]> = ws.iter().map(|w| &w[..]).collect();
        let m = small_params().epochs(3).fit(&refs, 6, 6).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        let back: Autoencoder = serde_json::from_str(&json).unwrap();
        // Weights and scaler round-trip exactly (f32 through JSON); the f64 loss history may
        // lose its last bit.
        assert!(back.network == m.network && back.scaler == m.scaler && back.params == m.params);
        assert_eq!(back.history.len(), m.history.len());
        assert_eq!(back.score_many(&refs), m.score_many(&refs));
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["window_size"] = 7.into();
        let err = serde_json::from_value::<Autoencoder>(v).unwrap_err();
        assert!(
            err.to_string().contains("inconsistent autoencoder model"),
            "{err}"
        );
    }

    #[test]
    fn fit_rejects_bad_data_and_divergence() {
        use AutoencoderError as E;
        let w: Vec<Symbol> = vec![0, 1, 0];
        let p = small_params().epochs(2);
        assert_eq!(p.fit(&[], 3, 3).unwrap_err(), E::NoWindows);
        assert_eq!(p.fit(&[&w], 1, 3).unwrap_err(), E::TooFewSymbols(1));
        assert_eq!(p.fit(&[&w], 3, 0).unwrap_err(), E::ZeroWindowSize);
        assert_eq!(
            p.fit(&[&w[..2], &w], 3, 2).unwrap_err(),
            E::WindowTooLong {
                index: 1,
                len: 3,
                size: 2
            }
        );
        assert_eq!(
            p.fit(&[&w], 3, 3).unwrap_err(),
            E::TooFewWindows { n_windows: 1 }
        );
        let ws = pattern_windows();
        let refs: Vec<&[Symbol]> = ws.iter().map(|w| &w[..]).collect();
        let err = small_params()
            .learning_rate(1e30)
            .fit(&refs, 6, 6)
            .unwrap_err();
        assert!(matches!(err, E::Diverged { .. }), "{err:?}");
    }
}
