//! A recurrent language model over system-call sequences (after Kim, Yi, Lee, Paek and Yoon,
//! "LSTM-Based System-Call Language Modeling and Robust Ensemble Method for Designing Host-Based
//! Intrusion Detection Systems", arXiv 1611.01726, 2016), with a GRU cell.
//!
//! The model reads a sequence one call at a time and predicts the next call:
//!
//! ```text
//! g_x = X[x_t]                                   (embedding and input weights, one row per symbol)
//! g_h = U h_{t-1} + b
//! r = σ(g_x,r + g_h,r)    z = σ(g_x,z + g_h,z)
//! n = tanh(g_x,n + r ⊙ g_h,n)
//! h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
//! p(x_{t+1} | x_1..x_t) = softmax(O h_t + c)
//! ```
//!
//! The input is one symbol, so "embedding, then the GRU's input weights" is a product of a
//! one-hot vector with two matrices, which is one row lookup: `X` holds that row (`3 × hidden`
//! values) for each symbol, plus a last row, never trained and zero, for symbols beyond the
//! alphabet. The score of a sequence is its **mean negative log-likelihood per predicted call**
//! (nats): the state starts at zero before the first call, and every later call is predicted from
//! the ones before it. This is Kim et al.'s trace score. A window is scored the same way over its
//! own calls (the state starts at zero at the window's first call), which is what a stream of
//! windows in the agent gets; whole traces are scored by [`GruLm::score_sequence`].
//!
//! Training: the training sequences (whole traces, or windows when that is all there is) are
//! shuffled each epoch and laid end to end in `lanes` parallel streams; each stream is cut into
//! chunks of `bptt` steps and trained by truncated back-propagation through time with Adam and
//! gradient-norm clipping. The hidden state is carried from one chunk to the next of the same
//! stream (not differentiated through) and reset to zero where a sequence starts, so a model
//! learns long traces as they are. Everything is `f32` on plain `Vec` buffers with
//! `matrixmultiply::sgemm` for the batched products, single-threaded, and fixed by the seed.
//!
//! ```
//! use mamori_detect::seqlm::GruLmParams;
//! use mamori_detect::dataset::Windows;
//! use mamori_detect::{Fit, WindowScorer};
//!
//! // Normal behaviour cycles 0 1 2 3; symbol 4 exists but is never used.
//! let normal: Vec<u16> = (0..400).map(|i| (i % 4) as u16).collect();
//! let seqs: Vec<&[u16]> = normal.chunks(100).collect();
//! let params = GruLmParams { hidden: 8, epochs: 30, ..GruLmParams::default() };
//! let model = params.fit(&Windows::new(&seqs, 5)).unwrap();
//! assert!(model.score(&[0, 1, 2, 3, 0, 1]) < model.score(&[0, 2, 1, 3, 4, 1]));
//! ```

use crate::matrix::gemm_f32;
use serde::{Deserialize, Serialize};

use crate::classes::Symbol;
use crate::dataset::Windows;
use crate::rng::Rng;
use crate::{Fit, ParamGuard, WindowScorer};

/// Windows scored together by [`WindowScorer::score_many`].
const SCORE_BATCH: usize = 256;

/// Settings of the GRU language model; fit [`Windows`] (whole sequences where there are any)
/// through [`Fit`], which runs [`ParamGuard::check`] first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GruLmParams {
    /// Hidden units of the GRU.
    pub hidden: usize,
    /// Passes over the training sequences.
    pub epochs: usize,
    /// Adam step size.
    pub learning_rate: f32,
    /// Parallel training streams (the mini-batch).
    pub lanes: usize,
    /// Steps of truncated back-propagation through time.
    pub bptt: usize,
    /// Largest global gradient norm; larger gradients are scaled down to it.
    pub clip: f32,
    /// Seed of the initial weights and the epochs' shuffles.
    pub seed: u64,
}

impl Default for GruLmParams {
    fn default() -> Self {
        GruLmParams {
            hidden: 64,
            epochs: 20,
            learning_rate: 5e-3,
            lanes: 32,
            bptt: 32,
            clip: 5.0,
            seed: 1,
        }
    }
}

/// [`GruLmParams`] that passed [`ParamGuard::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidGruLmParams(GruLmParams);

impl ValidGruLmParams {
    /// The checked settings.
    pub fn params(&self) -> &GruLmParams {
        &self.0
    }
}

impl ParamGuard for GruLmParams {
    type Checked = ValidGruLmParams;
    type Error = GruLmError;

    /// Counts must be at least 1, the step size and the clip positive and finite.
    fn check(&self) -> Result<ValidGruLmParams, GruLmError> {
        let zero = [
            ("hidden", self.hidden),
            ("epochs", self.epochs),
            ("lanes", self.lanes),
            ("bptt", self.bptt),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Err(GruLmError::Zero(name));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(GruLmError::NotPositive("learning_rate"));
        }
        if !(self.clip.is_finite() && self.clip > 0.0) {
            return Err(GruLmError::NotPositive("clip"));
        }
        Ok(ValidGruLmParams(*self))
    }
}

impl Fit<Windows<'_>> for ValidGruLmParams {
    type Model = GruLm;
    type Error = GruLmError;

    /// Trains on `data.windows` as sequences over `data.n_symbols` symbols.
    fn fit(&self, data: &Windows<'_>) -> Result<GruLm, GruLmError> {
        GruLm::fit_checked(&self.0, data.windows, data.n_symbols)
    }
}

/// Why the language model could not be trained, or a model file is not a valid one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GruLmError {
    /// A count setting is zero.
    #[error("GRU language model: {0} must be at least 1")]
    Zero(&'static str),
    /// A real setting is zero, negative or not finite.
    #[error("GRU language model: {0} must be positive and finite")]
    NotPositive(&'static str),
    /// The alphabet is empty.
    #[error("GRU language model needs at least one symbol")]
    NoSymbols,
    /// No training sequence has two calls, so there is nothing to predict.
    #[error("GRU language model needs a training sequence of at least two calls")]
    NoPairs,
    /// A deserialised model breaks an invariant (corrupt or hand-edited model file).
    #[error("invalid GRU language model: {0}")]
    InvalidModel(String),
}

/// The weights, all row-major `f32`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Weights {
    /// `(n_symbols + 1) × 3h`: the input contribution to the r, z and n gates, per symbol.
    x: Vec<f32>,
    /// `3h × h`: recurrent weights of the r, z and n gates.
    u: Vec<f32>,
    /// `3h`: recurrent biases.
    b: Vec<f32>,
    /// `n_symbols × h`: output weights.
    o: Vec<f32>,
    /// `n_symbols`: output biases.
    c: Vec<f32>,
}

impl Weights {
    fn zeros(v: usize, h: usize) -> Self {
        Weights {
            x: vec![0.0; (v + 1) * 3 * h],
            u: vec![0.0; 3 * h * h],
            b: vec![0.0; 3 * h],
            o: vec![0.0; v * h],
            c: vec![0.0; v],
        }
    }

    fn parts(&self) -> [&Vec<f32>; 5] {
        [&self.x, &self.u, &self.b, &self.o, &self.c]
    }

    fn parts_mut(&mut self) -> [&mut Vec<f32>; 5] {
        [
            &mut self.x,
            &mut self.u,
            &mut self.b,
            &mut self.o,
            &mut self.c,
        ]
    }

    fn fill(&mut self, value: f32) {
        for p in self.parts_mut() {
            p.fill(value);
        }
    }
}

/// A trained GRU language model over system-call symbols; scores are mean negative
/// log-likelihoods per predicted call, in nats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "GruLmFile", into = "GruLmFile")]
pub struct GruLm {
    params: GruLmParams,
    n_symbols: usize,
    w: Weights,
    history: Vec<f64>,
}

/// The serialised form, checked on load.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GruLmFile {
    params: GruLmParams,
    n_symbols: usize,
    weights: Weights,
    history: Vec<f64>,
}

impl From<GruLm> for GruLmFile {
    fn from(m: GruLm) -> Self {
        GruLmFile {
            params: m.params,
            n_symbols: m.n_symbols,
            weights: m.w,
            history: m.history,
        }
    }
}

impl TryFrom<GruLmFile> for GruLm {
    type Error = GruLmError;
    fn try_from(f: GruLmFile) -> Result<Self, GruLmError> {
        f.params.check()?;
        let (v, h) = (f.n_symbols, f.params.hidden);
        if v == 0 {
            return Err(GruLmError::NoSymbols);
        }
        let want = Weights::zeros(v, h);
        let names = ["x", "u", "b", "o", "c"];
        for ((name, got), want) in names.iter().zip(f.weights.parts()).zip(want.parts()) {
            if got.len() != want.len() {
                return Err(GruLmError::InvalidModel(format!(
                    "weights `{name}` hold {} values, {} expected for {v} symbols and {h} hidden units",
                    got.len(),
                    want.len()
                )));
            }
            if got.iter().any(|x| !x.is_finite()) {
                return Err(GruLmError::InvalidModel(format!(
                    "weights `{name}` hold a non-finite value"
                )));
            }
        }
        Ok(GruLm {
            params: f.params,
            n_symbols: v,
            w: f.weights,
            history: f.history,
        })
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `Σ a_i b_i` with eight accumulators, so the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// `−log softmax(logits)[target]`, in f64.
fn nll_of(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let sum: f64 = logits.iter().map(|&x| f64::from(x - max).exp()).sum();
    sum.ln() - f64::from(logits[target] - max)
}

/// One chunk of training data: `t` steps of `b` lanes, step-major.
struct Chunk<'a> {
    steps: usize,
    lanes: usize,
    /// Input symbol (already mapped into `0..=n_symbols`).
    input: &'a [usize],
    /// Symbol to predict after the input, `None` where there is none (a sequence's last call,
    /// padding).
    target: &'a [Option<usize>],
    /// The state is reset to zero before this step (a sequence starts here).
    reset: &'a [bool],
}

impl GruLm {
    /// Trains on `sequences` (normal behaviour) over `n_symbols` symbols.
    pub fn fit(
        params: &GruLmParams,
        sequences: &[&[Symbol]],
        n_symbols: usize,
    ) -> Result<GruLm, GruLmError> {
        params.check()?;
        Self::fit_checked(params, sequences, n_symbols)
    }

    fn fit_checked(
        p: &GruLmParams,
        sequences: &[&[Symbol]],
        n_symbols: usize,
    ) -> Result<GruLm, GruLmError> {
        if n_symbols == 0 {
            return Err(GruLmError::NoSymbols);
        }
        let useful: Vec<&[Symbol]> = sequences.iter().copied().filter(|s| s.len() >= 2).collect();
        if useful.is_empty() {
            return Err(GruLmError::NoPairs);
        }
        let (v, h) = (n_symbols, p.hidden);
        let mut rng = Rng::seeded(p.seed);
        let mut init = rng.fork();
        let mut model = GruLm {
            params: *p,
            n_symbols: v,
            w: Weights::zeros(v, h),
            history: Vec::new(),
        };
        let a = 1.0 / (h as f64).sqrt();
        // Every row but the last (out-of-alphabet) input row, U and O: uniform ±1/√h.
        let n_x = v * 3 * h;
        for w in model.w.x[..n_x]
            .iter_mut()
            .chain(model.w.u.iter_mut())
            .chain(model.w.o.iter_mut())
        {
            *w = ((init.f64() * 2.0 - 1.0) * a) as f32;
        }
        let mut trainer = Trainer::new(v, h, p);
        let mut order: Vec<usize> = (0..useful.len()).collect();
        for _ in 0..p.epochs {
            rng.shuffle(&mut order);
            let lanes = lay_out(&useful, &order, p.lanes, v);
            let (mut loss, mut count) = (0.0, 0usize);
            let mut state = vec![0.0f32; p.lanes * h];
            let len = lanes.input.len() / p.lanes;
            let mut start = 0;
            while start < len {
                let steps = p.bptt.min(len - start);
                let span = start * p.lanes..(start + steps) * p.lanes;
                let chunk = Chunk {
                    steps,
                    lanes: p.lanes,
                    input: &lanes.input[span.clone()],
                    target: &lanes.target[span.clone()],
                    reset: &lanes.reset[span],
                };
                let (l, n) = trainer.loss_and_grads(&model.w, &chunk, &mut state);
                if n > 0 {
                    trainer.adam_step(&mut model.w, p);
                    loss += l * n as f64;
                    count += n;
                }
                start += steps;
            }
            model.history.push(loss / count.max(1) as f64);
        }
        Ok(model)
    }

    /// Hidden units.
    pub fn hidden(&self) -> usize {
        self.params.hidden
    }

    /// Symbols of the alphabet.
    pub fn n_symbols(&self) -> usize {
        self.n_symbols
    }

    /// The settings it was trained with.
    pub fn params(&self) -> &GruLmParams {
        &self.params
    }

    /// Mean training negative log-likelihood per predicted call, after each epoch (nats).
    pub fn history(&self) -> &[f64] {
        &self.history
    }

    fn input_row(&self, s: Symbol) -> usize {
        usize::from(s).min(self.n_symbols)
    }

    /// Advances the state `h` by one input symbol row `x`; `g` is scratch of `3h`.
    fn step(&self, h: &mut [f32], x: usize, g: &mut [f32]) {
        let hd = self.params.hidden;
        for (i, gi) in g.iter_mut().enumerate() {
            *gi = dot(&self.w.u[i * hd..(i + 1) * hd], h) + self.w.b[i];
        }
        let gx = &self.w.x[x * 3 * hd..(x + 1) * 3 * hd];
        for j in 0..hd {
            let r = sigmoid(gx[j] + g[j]);
            let z = sigmoid(gx[hd + j] + g[hd + j]);
            let n = (gx[2 * hd + j] + r * g[2 * hd + j]).tanh();
            h[j] = (1.0 - z) * n + z * h[j];
        }
    }

    /// `−log p(target | state h)`; `logits` is scratch of `n_symbols`. A target beyond the
    /// alphabet gets the model's lowest probability.
    fn nll(&self, h: &[f32], target: Symbol, logits: &mut [f32]) -> f64 {
        let hd = self.params.hidden;
        for (k, l) in logits.iter_mut().enumerate() {
            *l = dot(&self.w.o[k * hd..(k + 1) * hd], h) + self.w.c[k];
        }
        let t = usize::from(target);
        if t < self.n_symbols {
            nll_of(logits, t)
        } else {
            (0..self.n_symbols)
                .map(|k| nll_of(logits, k))
                .fold(0.0, f64::max)
        }
    }

    /// The negative log-likelihood of each call after the first, given the calls before it
    /// (the state starts at zero before the first call).
    pub fn call_nlls(&self, sequence: &[Symbol]) -> Vec<f64> {
        let hd = self.params.hidden;
        let mut h = vec![0.0f32; hd];
        let mut g = vec![0.0f32; 3 * hd];
        let mut logits = vec![0.0f32; self.n_symbols];
        let mut out = Vec::with_capacity(sequence.len().saturating_sub(1));
        for pair in sequence.windows(2) {
            self.step(&mut h, self.input_row(pair[0]), &mut g);
            out.push(self.nll(&h, pair[1], &mut logits));
        }
        out
    }

    /// Mean negative log-likelihood per predicted call of a whole sequence (nats); 0 for a
    /// sequence of fewer than two calls, which has nothing to predict.
    pub fn score_sequence(&self, sequence: &[Symbol]) -> f64 {
        let nlls = self.call_nlls(sequence);
        if nlls.is_empty() {
            0.0
        } else {
            nlls.iter().sum::<f64>() / nlls.len() as f64
        }
    }

    /// Scores windows of one length together (batched products).
    fn score_batch(&self, windows: &[&[Symbol]], out: &mut [f64]) {
        let (hd, v, b) = (self.params.hidden, self.n_symbols, windows.len());
        let len = windows[0].len();
        if len < 2 {
            out.fill(0.0);
            return;
        }
        let mut h = vec![0.0f32; b * hd];
        let mut g = vec![0.0f32; b * 3 * hd];
        let mut logits = vec![0.0f32; b * v];
        let mut sums = vec![0.0f64; b];
        for t in 0..len - 1 {
            gemm_f32(b, hd, 3 * hd, &h, false, &self.w.u, true, &mut g, 0.0);
            for (i, w) in windows.iter().enumerate() {
                let x = self.input_row(w[t]);
                let gx = &self.w.x[x * 3 * hd..(x + 1) * 3 * hd];
                let gi = &g[i * 3 * hd..(i + 1) * 3 * hd];
                let hi = &mut h[i * hd..(i + 1) * hd];
                for j in 0..hd {
                    let r = sigmoid(gx[j] + gi[j] + self.w.b[j]);
                    let z = sigmoid(gx[hd + j] + gi[hd + j] + self.w.b[hd + j]);
                    let n = (gx[2 * hd + j] + r * (gi[2 * hd + j] + self.w.b[2 * hd + j])).tanh();
                    hi[j] = (1.0 - z) * n + z * hi[j];
                }
            }
            gemm_f32(b, hd, v, &h, false, &self.w.o, true, &mut logits, 0.0);
            for (i, w) in windows.iter().enumerate() {
                let row = &mut logits[i * v..(i + 1) * v];
                for (l, c) in row.iter_mut().zip(&self.w.c) {
                    *l += c;
                }
                let target = usize::from(w[t + 1]);
                sums[i] += if target < v {
                    nll_of(row, target)
                } else {
                    (0..v).map(|k| nll_of(row, k)).fold(0.0, f64::max)
                };
            }
        }
        for (o, s) in out.iter_mut().zip(sums) {
            *o = s / (len - 1) as f64;
        }
    }
}

impl WindowScorer for GruLm {
    /// Mean negative log-likelihood of the window's calls after its first, each given the
    /// window's calls before it.
    fn score(&self, window: &[Symbol]) -> f64 {
        self.score_sequence(window)
    }

    /// Windows of equal length are scored in batches of 256.
    fn score_many(&self, windows: &[&[Symbol]]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&i| windows[i].len());
        let mut out = vec![0.0; windows.len()];
        let mut batch: Vec<&[Symbol]> = Vec::with_capacity(SCORE_BATCH);
        let mut scores = vec![0.0; SCORE_BATCH];
        let mut idx: Vec<usize> = Vec::with_capacity(SCORE_BATCH);
        let mut flush = |batch: &mut Vec<&[Symbol]>, idx: &mut Vec<usize>| {
            if batch.is_empty() {
                return;
            }
            self.score_batch(batch, &mut scores[..batch.len()]);
            for (k, &i) in idx.iter().enumerate() {
                out[i] = scores[k];
            }
            batch.clear();
            idx.clear();
        };
        for &i in &order {
            let w = windows[i];
            if batch.len() == SCORE_BATCH || batch.first().is_some_and(|b| b.len() != w.len()) {
                flush(&mut batch, &mut idx);
            }
            batch.push(w);
            idx.push(i);
        }
        flush(&mut batch, &mut idx);
        out
    }
}

/// Training sequences laid end to end in parallel lanes, step-major (`step * lanes + lane`).
struct Lanes {
    input: Vec<usize>,
    target: Vec<Option<usize>>,
    reset: Vec<bool>,
}

/// Puts each sequence, in `order`, on the lane that is shortest so far, then pads the lanes to
/// one length (padding predicts nothing).
fn lay_out(seqs: &[&[Symbol]], order: &[usize], n_lanes: usize, v: usize) -> Lanes {
    let mut lanes: Vec<Vec<(usize, Option<usize>, bool)>> = vec![Vec::new(); n_lanes];
    for &i in order {
        let lane = (0..n_lanes).min_by_key(|&l| lanes[l].len()).unwrap_or(0);
        let s = seqs[i];
        for (t, &x) in s.iter().enumerate() {
            let target = s.get(t + 1).map(|&y| usize::from(y)).filter(|&y| y < v);
            lanes[lane].push((usize::from(x).min(v), target, t == 0));
        }
    }
    let len = lanes.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Lanes {
        input: Vec::with_capacity(len * n_lanes),
        target: Vec::with_capacity(len * n_lanes),
        reset: Vec::with_capacity(len * n_lanes),
    };
    for t in 0..len {
        for lane in &lanes {
            let (x, y, r) = lane.get(t).copied().unwrap_or((v, None, true));
            out.input.push(x);
            out.target.push(y);
            out.reset.push(r);
        }
    }
    out
}

/// Buffers of one chunk's forward and backward pass, gradients and Adam moments.
struct Trainer {
    v: usize,
    h: usize,
    grads: Weights,
    m: Weights,
    s: Weights,
    t: i32,
    /// Per step (`steps × lanes × h`): state before the step, gates and new state.
    hp: Vec<f32>,
    r: Vec<f32>,
    z: Vec<f32>,
    n: Vec<f32>,
    /// `U_n h + b_n`, per step.
    ghn: Vec<f32>,
    hs: Vec<f32>,
    g: Vec<f32>,
    logits: Vec<f32>,
    dhs: Vec<f32>,
    dg: Vec<f32>,
    dh: Vec<f32>,
}

impl Trainer {
    fn new(v: usize, h: usize, p: &GruLmParams) -> Self {
        let cells = p.bptt * p.lanes * h;
        Trainer {
            v,
            h,
            grads: Weights::zeros(v, h),
            m: Weights::zeros(v, h),
            s: Weights::zeros(v, h),
            t: 0,
            hp: vec![0.0; cells],
            r: vec![0.0; cells],
            z: vec![0.0; cells],
            n: vec![0.0; cells],
            ghn: vec![0.0; cells],
            hs: vec![0.0; cells],
            g: vec![0.0; p.lanes * 3 * h],
            logits: vec![0.0; p.bptt * p.lanes * v],
            dhs: vec![0.0; cells],
            dg: vec![0.0; p.lanes * 3 * h],
            dh: vec![0.0; p.lanes * h],
        }
    }

    /// Forward and backward pass over one chunk from `state` (updated to the chunk's last
    /// state). Fills `self.grads` with the gradient of the mean NLL over the chunk's targets and
    /// returns that mean and the number of targets.
    fn loss_and_grads(&mut self, w: &Weights, c: &Chunk<'_>, state: &mut [f32]) -> (f64, usize) {
        let (v, h, b, steps) = (self.v, self.h, c.lanes, c.steps);
        let bh = b * h;
        self.grads.fill(0.0);
        for t in 0..steps {
            let hp = &mut self.hp[t * bh..(t + 1) * bh];
            hp.copy_from_slice(state);
            for lane in 0..b {
                if c.reset[t * b + lane] {
                    hp[lane * h..(lane + 1) * h].fill(0.0);
                }
            }
            gemm_f32(b, h, 3 * h, hp, false, &w.u, true, &mut self.g, 0.0);
            for lane in 0..b {
                let x = c.input[t * b + lane];
                let gx = &w.x[x * 3 * h..(x + 1) * 3 * h];
                let gh = &self.g[lane * 3 * h..(lane + 1) * 3 * h];
                let at = t * bh + lane * h;
                for j in 0..h {
                    let r = sigmoid(gx[j] + gh[j] + w.b[j]);
                    let z = sigmoid(gx[h + j] + gh[h + j] + w.b[h + j]);
                    let ghn = gh[2 * h + j] + w.b[2 * h + j];
                    let n = (gx[2 * h + j] + r * ghn).tanh();
                    let new = (1.0 - z) * n + z * self.hp[at + j];
                    self.r[at + j] = r;
                    self.z[at + j] = z;
                    self.n[at + j] = n;
                    self.ghn[at + j] = ghn;
                    self.hs[at + j] = new;
                    state[lane * h + j] = new;
                }
            }
        }
        // Output layer over every step at once.
        let rows = steps * b;
        let logits = &mut self.logits[..rows * v];
        gemm_f32(
            rows,
            h,
            v,
            &self.hs[..rows * h],
            false,
            &w.o,
            true,
            logits,
            0.0,
        );
        let count = c.target[..rows].iter().filter(|t| t.is_some()).count();
        if count == 0 {
            return (0.0, 0);
        }
        let scale = 1.0 / count as f32;
        let mut loss = 0.0;
        for (row, target) in logits.chunks_exact_mut(v).zip(c.target) {
            for (l, bias) in row.iter_mut().zip(&w.c) {
                *l += bias;
            }
            match *target {
                None => row.fill(0.0),
                Some(y) => {
                    loss += nll_of(row, y);
                    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                    let mut sum = 0.0f32;
                    for l in row.iter_mut() {
                        *l = (*l - max).exp();
                        sum += *l;
                    }
                    for l in row.iter_mut() {
                        *l *= scale / sum;
                    }
                    row[y] -= scale;
                }
            }
            for (gc, d) in self.grads.c.iter_mut().zip(row.iter()) {
                *gc += d;
            }
        }
        let dlogits = &self.logits[..rows * v];
        gemm_f32(
            v,
            rows,
            h,
            dlogits,
            true,
            &self.hs[..rows * h],
            false,
            &mut self.grads.o,
            1.0,
        );
        gemm_f32(
            rows,
            v,
            h,
            dlogits,
            false,
            &w.o,
            false,
            &mut self.dhs[..rows * h],
            0.0,
        );
        // Back through time; the chunk's last state gets no gradient from later chunks.
        self.dh.fill(0.0);
        for t in (0..steps).rev() {
            for lane in 0..b {
                let x = c.input[t * b + lane];
                let at = t * bh + lane * h;
                for j in 0..h {
                    let k = at + j;
                    let dh = self.dhs[k] + self.dh[lane * h + j];
                    let (r, z, n, hp) = (self.r[k], self.z[k], self.n[k], self.hp[k]);
                    let dn = dh * (1.0 - z);
                    let dz = dh * (hp - n);
                    let dan = dn * (1.0 - n * n);
                    let dar = dan * self.ghn[k] * r * (1.0 - r);
                    let daz = dz * z * (1.0 - z);
                    let dg = &mut self.dg[lane * 3 * h..(lane + 1) * 3 * h];
                    dg[j] = dar;
                    dg[h + j] = daz;
                    dg[2 * h + j] = dan * r;
                    let gx = &mut self.grads.x[x * 3 * h..(x + 1) * 3 * h];
                    gx[j] += dar;
                    gx[h + j] += daz;
                    gx[2 * h + j] += dan;
                    self.dh[lane * h + j] = dh * z;
                }
            }
            let hp = &self.hp[t * bh..(t + 1) * bh];
            gemm_f32(
                3 * h,
                b,
                h,
                &self.dg,
                true,
                hp,
                false,
                &mut self.grads.u,
                1.0,
            );
            for row in self.dg.chunks_exact(3 * h) {
                for (gb, d) in self.grads.b.iter_mut().zip(row) {
                    *gb += d;
                }
            }
            gemm_f32(b, 3 * h, h, &self.dg, false, &w.u, false, &mut self.dh, 1.0);
            for lane in 0..b {
                if c.reset[t * b + lane] {
                    self.dh[lane * h..(lane + 1) * h].fill(0.0);
                }
            }
        }
        (loss / count as f64, count)
    }

    /// Clips `self.grads` to the norm `p.clip` and takes one Adam step.
    fn adam_step(&mut self, w: &mut Weights, p: &GruLmParams) {
        let norm = self
            .grads
            .parts()
            .iter()
            .flat_map(|g| g.iter())
            .map(|&g| f64::from(g) * f64::from(g))
            .sum::<f64>()
            .sqrt();
        let clip = if norm > f64::from(p.clip) {
            (f64::from(p.clip) / norm) as f32
        } else {
            1.0
        };
        self.t += 1;
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        let lr = p.learning_rate;
        for (((wp, gp), mp), sp) in w
            .parts_mut()
            .into_iter()
            .zip(self.grads.parts())
            .zip(self.m.parts_mut())
            .zip(self.s.parts_mut())
        {
            for i in 0..wp.len() {
                let g = gp[i] * clip;
                mp[i] = b1 * mp[i] + (1.0 - b1) * g;
                sp[i] = b2 * sp[i] + (1.0 - b2) * g * g;
                wp[i] -= lr * (mp[i] / c1) / ((sp[i] / c2).sqrt() + eps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(hidden: usize, epochs: usize) -> GruLmParams {
        GruLmParams {
            hidden,
            epochs,
            lanes: 4,
            bptt: 16,
            learning_rate: 1e-2,
            ..GruLmParams::default()
        }
    }

    /// The chunk loss of `w` (no gradient), for finite differences.
    fn chunk_loss(tr: &mut Trainer, w: &Weights, c: &Chunk<'_>, h0: &[f32]) -> f64 {
        let mut state = h0.to_vec();
        tr.loss_and_grads(w, c, &mut state).0
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (v, h, lanes, steps) = (5, 4, 3, 6);
        let p = GruLmParams {
            hidden: h,
            lanes,
            bptt: steps,
            ..GruLmParams::default()
        };
        let mut rng = Rng::seeded(11);
        let mut w = Weights::zeros(v, h);
        for part in w.parts_mut() {
            for x in part.iter_mut() {
                *x = (rng.normal() * 0.5) as f32;
            }
        }
        let input: Vec<usize> = (0..steps * lanes).map(|_| rng.below(v + 1)).collect();
        let target: Vec<Option<usize>> = (0..steps * lanes)
            .map(|i| (i % 5 != 3).then(|| rng.below(v)))
            .collect();
        // A sequence starts mid-chunk on lane 1, so the reset's gradient path is checked too.
        let reset: Vec<bool> = (0..steps * lanes).map(|i| i == 3 * lanes + 1).collect();
        let h0: Vec<f32> = (0..lanes * h)
            .map(|_| (rng.normal() * 0.5) as f32)
            .collect();
        let c = Chunk {
            steps,
            lanes,
            input: &input,
            target: &target,
            reset: &reset,
        };
        let mut tr = Trainer::new(v, h, &p);
        let mut state = h0.clone();
        tr.loss_and_grads(&w, &c, &mut state);
        let analytic = tr.grads.clone();
        let eps = 1e-2f32;
        let mut checked = 0;
        for part in 0..5 {
            let len = w.parts()[part].len();
            for i in 0..len {
                let mut plus = w.clone();
                plus.parts_mut()[part][i] += eps;
                let mut minus = w.clone();
                minus.parts_mut()[part][i] -= eps;
                let numeric = (chunk_loss(&mut tr, &plus, &c, &h0)
                    - chunk_loss(&mut tr, &minus, &c, &h0))
                    / (2.0 * f64::from(eps));
                let a = f64::from(analytic.parts()[part][i]);
                assert!(
                    (a - numeric).abs() <= 2e-3 + 2e-2 * numeric.abs(),
                    "part {part} index {i}: analytic {a}, numeric {numeric}"
                );
                checked += 1;
            }
        }
        assert!(checked > 100);
    }

    #[test]
    fn learns_a_periodic_sequence() {
        // Period 0 1 2 0 3: after a 0 comes 3 (if a 2 came before) or 1 (if a 3 did), so only a
        // model that remembers more than the last call predicts every call.
        let pattern = [0u16, 1, 2, 0, 3];
        let seq: Vec<u16> = (0..600).map(|i| pattern[i % 5]).collect();
        let seqs: Vec<&[u16]> = seq.chunks(60).collect();
        let m = GruLm::fit(&small(16, 40), &seqs, 5).expect("fit");
        let hist = m.history();
        assert!(hist.last().unwrap() < &0.05, "training NLL {hist:?}");
        // Given two calls of context, every next call is predicted with near certainty.
        let test: Vec<u16> = (0..50).map(|i| pattern[(i + 2) % 5]).collect();
        let nlls = m.call_nlls(&test);
        assert!(nlls[2..].iter().all(|&x| x < 0.1), "{nlls:?}");
        // The known answer: a uniform guess costs ln 5 per call; breaking the period costs more.
        let mut broken = test.clone();
        broken[20] = 4;
        assert!(m.score_sequence(&broken) > m.score_sequence(&test) + 0.1);
        assert!(m.score(&[0, 3, 0, 3, 0, 3]) > m.score(&[0, 1, 2, 0, 3, 0]) + 1.0);
    }

    #[test]
    fn same_seed_same_model_and_batched_scores_match() {
        let seq: Vec<u16> = (0..300).map(|i| ((i * 7 + i / 3) % 6) as u16).collect();
        let seqs: Vec<&[u16]> = seq.chunks(50).collect();
        let a = GruLm::fit(&small(8, 3), &seqs, 6).expect("fit");
        let b = GruLm::fit(&small(8, 3), &seqs, 6).expect("fit");
        assert_eq!(a, b);
        let c = GruLm::fit(
            &GruLmParams {
                seed: 2,
                ..small(8, 3)
            },
            &seqs,
            6,
        )
        .expect("fit");
        assert_ne!(a, c);
        let windows: Vec<&[u16]> = seq
            .windows(7)
            .take(40)
            .chain([&seq[..1], &seq[..3], &[9u16, 1, 2][..]])
            .collect();
        let many = a.score_many(&windows);
        for (w, s) in windows.iter().zip(&many) {
            assert!(
                (a.score(w) - s).abs() < 1e-4,
                "{w:?}: {} vs {s}",
                a.score(w)
            );
            assert!(s.is_finite());
        }
    }

    #[test]
    fn serialisation_round_trip_and_checks() {
        let seq: Vec<u16> = (0..100).map(|i| (i % 3) as u16).collect();
        let seqs: Vec<&[u16]> = vec![&seq];
        let m = GruLm::fit(&small(4, 2), &seqs, 4).expect("fit");
        let json = serde_json::to_string(&m).expect("serialise");
        let back: GruLm = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, m);
        assert_eq!(back.score_sequence(&seq), m.score_sequence(&seq));
        let mut v: serde_json::Value = serde_json::from_str(&json).expect("json");
        v["weights"]["u"].as_array_mut().expect("u").pop();
        let err = serde_json::from_value::<GruLm>(v).unwrap_err().to_string();
        assert!(err.contains("weights `u`"), "{err}");
    }

    #[test]
    fn bad_settings_and_data_are_refused() {
        let seq = [0u16, 1];
        let seqs: Vec<&[u16]> = vec![&seq];
        let p = GruLmParams {
            hidden: 0,
            ..GruLmParams::default()
        };
        assert_eq!(p.check().unwrap_err(), GruLmError::Zero("hidden"));
        let p = GruLmParams {
            learning_rate: f32::NAN,
            ..GruLmParams::default()
        };
        assert_eq!(
            p.check().unwrap_err(),
            GruLmError::NotPositive("learning_rate")
        );
        let one = [0u16];
        let short: Vec<&[u16]> = vec![&one];
        assert_eq!(
            GruLm::fit(&small(4, 1), &short, 2).unwrap_err(),
            GruLmError::NoPairs
        );
        assert_eq!(
            GruLm::fit(&small(4, 1), &seqs, 0).unwrap_err(),
            GruLmError::NoSymbols
        );
    }
}
