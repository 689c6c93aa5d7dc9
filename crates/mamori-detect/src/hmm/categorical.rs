//! [`CategoricalHmm`]: a discrete-emission hidden Markov model (hmmlearn's `CategoricalHMM`) and
//! its Baum–Welch training.
//!
//! # Algorithms
//!
//! Likelihoods use the scaled forward algorithm (hmmlearn's `implementation="scaling"`): the
//! forward variables are renormalised at every step and the log-likelihood is the sum of the logs
//! of the scale factors. Training is Baum–Welch over many sequences at once: the expected counts
//! (start, transitions, emissions) of every sequence are added up before each M-step, exactly as
//! `hmmlearn` does with `fit(X, lengths)`, with the same stopping rule (stop once an iteration
//! gains less than `tol` in total log-likelihood, or after `max_iter` iterations).
//!
//! # Speed
//!
//! - **Deduplication.** Windows cut with stride 1 from system-call traces repeat a lot (loops
//!   issue the same calls over and over). Identical sequences have identical posteriors, so the
//!   E-step visits each distinct sequence once and multiplies its expected counts by the number
//!   of copies. This is exact, not an approximation (a unit test checks it against the plain
//!   E-step); only the order of floating-point additions changes. `score_many` does the same.
//! - **Flat buffers, no allocation per sequence**: all sequences live in one symbol buffer with
//!   offsets; the forward lattice and accumulators are allocated once per fit.
//! - **Layout**: the emission matrix is kept transposed (`symbol × state`) so the emission column
//!   of an observation is contiguous; the transition expected counts are accumulated as
//!   `Σ α_t(i) v_{t+1}(j)` and multiplied by `A(i, j)` once per iteration instead of once per step.
//! - **Specialisation**: the kernels are written for a run-time state count but inlined into
//!   copies for 1 to 6 states, so the compiler unrolls the tiny inner loops.
//! - Scale factors are multiplied together and their logarithm taken only when the product gets
//!   small, instead of one `ln` per step.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::errors::{check_symbols, HmmError};
use super::params::{CategoricalHmmParams, ValidCategoricalHmmParams};
use crate::dataset::Windows;
use crate::rng::Rng;
use crate::{Fit, Symbol, WindowScorer};

/// A fitted (or hand-built) discrete-emission HMM.
///
/// Serialised as `{n_states, n_symbols, startprob, transmat, emissionprob}` with row-major
/// matrices; deserialising checks shapes and that every row is a probability distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CategoricalHmmRepr")]
pub struct CategoricalHmm {
    n_states: usize,
    n_symbols: usize,
    startprob: Vec<f64>,
    transmat: Vec<f64>,
    emissionprob: Vec<f64>,
    /// `emissionprob` transposed (`n_symbols × n_states`), for contiguous emission columns.
    #[serde(skip)]
    emission_t: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoricalHmmRepr {
    n_states: usize,
    n_symbols: usize,
    startprob: Vec<f64>,
    transmat: Vec<f64>,
    emissionprob: Vec<f64>,
}

impl TryFrom<CategoricalHmmRepr> for CategoricalHmm {
    type Error = HmmError;

    fn try_from(r: CategoricalHmmRepr) -> Result<Self, HmmError> {
        let model = CategoricalHmm::new(r.startprob, r.transmat, r.emissionprob)?;
        if model.n_states != r.n_states || model.n_symbols != r.n_symbols {
            return Err(HmmError::InvalidModel(format!(
                "declared {}×{} but parameters are {}×{}",
                r.n_states, r.n_symbols, model.n_states, model.n_symbols
            )));
        }
        Ok(model)
    }
}

/// Result of one Baum–Welch run (or of the best of several restarts).
#[derive(Debug, Clone, PartialEq)]
pub struct EmFit {
    /// The fitted model, with the emission floor applied.
    pub model: CategoricalHmm,
    /// Total log-likelihood of the training data at each iteration, computed in the E-step
    /// *before* that iteration's M-step (hmmlearn's `monitor_.history`).
    pub history: Vec<f64>,
    /// Total log-likelihood of the training data under the final parameters, before the emission
    /// floor (hmmlearn's `model.score(X, lengths)` after `fit`).
    pub log_likelihood: f64,
    /// Whether the gain fell below `tol` before `max_iter` iterations.
    pub converged: bool,
    /// Which random restart won (0 for [`CategoricalHmmParams::fit_from`]).
    pub restart: usize,
}

const ROW_SUM_TOL: f64 = 1e-8;

fn check_distribution(name: &str, row: usize, p: &[f64]) -> Result<(), HmmError> {
    if p.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return Err(HmmError::InvalidModel(format!(
            "{name} row {row} has a negative or non-finite entry"
        )));
    }
    let s: f64 = p.iter().sum();
    if (s - 1.0).abs() > ROW_SUM_TOL {
        return Err(HmmError::InvalidModel(format!(
            "{name} row {row} sums to {s}, not 1"
        )));
    }
    Ok(())
}

fn transpose(src: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; src.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = src[r * cols + c];
        }
    }
    t
}

impl CategoricalHmm {
    /// A model from explicit parameters: `startprob` (n), `transmat` (n×n, row-major) and
    /// `emissionprob` (n×m, row-major, m = number of symbols). Every row must sum to 1 (within
    /// 1e-8). The parameters are used as given: zeros in `emissionprob` make some windows
    /// impossible (see [`CategoricalHmm::with_emission_floor`]).
    pub fn new(
        startprob: Vec<f64>,
        transmat: Vec<f64>,
        emissionprob: Vec<f64>,
    ) -> Result<Self, HmmError> {
        let n = startprob.len();
        if n == 0 {
            return Err(HmmError::ZeroStates);
        }
        if transmat.len() != n * n {
            return Err(HmmError::InvalidModel(format!(
                "transmat has {} entries, expected {}",
                transmat.len(),
                n * n
            )));
        }
        if emissionprob.is_empty() {
            return Err(HmmError::ZeroSymbols);
        }
        if emissionprob.len().checked_rem(n) != Some(0) {
            return Err(HmmError::InvalidModel(format!(
                "emissionprob has {} entries, not a multiple of {n} states",
                emissionprob.len()
            )));
        }
        let m = emissionprob.len() / n;
        check_distribution("startprob", 0, &startprob)?;
        for i in 0..n {
            check_distribution("transmat", i, &transmat[i * n..(i + 1) * n])?;
            check_distribution("emissionprob", i, &emissionprob[i * m..(i + 1) * m])?;
        }
        Ok(Self::from_parts_unchecked(
            n,
            m,
            startprob,
            transmat,
            emissionprob,
        ))
    }

    fn from_parts_unchecked(
        n: usize,
        m: usize,
        startprob: Vec<f64>,
        transmat: Vec<f64>,
        emissionprob: Vec<f64>,
    ) -> Self {
        let emission_t = transpose(&emissionprob, n, m);
        CategoricalHmm {
            n_states: n,
            n_symbols: m,
            startprob,
            transmat,
            emissionprob,
            emission_t,
        }
    }

    /// A copy whose emission probabilities are at least `floor` (`0 < floor < 1`), each row
    /// renormalised: `e'(i, s) = max(e(i, s), floor) / Σ_s max(e(i, s), floor)`. Transition rows
    /// that are all zero (a state EM never visited) become uniform. With a floor, every window
    /// has a finite score. Fitting applies this with the `emission_floor` parameter.
    pub fn with_emission_floor(&self, floor: f64) -> Result<Self, HmmError> {
        if !(floor > 0.0 && floor < 1.0) {
            return Err(HmmError::InvalidEmissionFloor(floor));
        }
        let (n, m) = (self.n_states, self.n_symbols);
        let mut e = self.emissionprob.clone();
        for row in e.chunks_exact_mut(m) {
            row.iter_mut().for_each(|x| *x = x.max(floor));
            let s: f64 = row.iter().sum();
            row.iter_mut().for_each(|x| *x /= s);
        }
        let mut t = self.transmat.clone();
        for row in t.chunks_exact_mut(n) {
            if row.iter().sum::<f64>() <= 0.0 {
                row.iter_mut().for_each(|x| *x = 1.0 / n as f64);
            }
        }
        Ok(Self::from_parts_unchecked(
            n,
            m,
            self.startprob.clone(),
            t,
            e,
        ))
    }

    /// Number of hidden states.
    pub fn n_states(&self) -> usize {
        self.n_states
    }

    /// Alphabet size; the last symbol is "unknown".
    pub fn n_symbols(&self) -> usize {
        self.n_symbols
    }

    /// Initial state distribution (length `n_states`).
    pub fn startprob(&self) -> &[f64] {
        &self.startprob
    }

    /// Transition matrix, row-major `n_states × n_states` (row = from).
    pub fn transmat(&self) -> &[f64] {
        &self.transmat
    }

    /// Emission matrix, row-major `n_states × n_symbols`.
    pub fn emissionprob(&self) -> &[f64] {
        &self.emissionprob
    }

    /// Log-likelihood of one sequence (scaled forward algorithm); 0 for an empty sequence.
    /// Symbols `>= n_symbols` are read as the last ("unknown") symbol.
    pub fn log_likelihood(&self, seq: &[Symbol]) -> f64 {
        let n = self.n_states;
        if n <= 16 {
            let mut buf = [0.0f64; 32];
            self.forward_ll(seq, &mut buf)
        } else {
            let mut buf = vec![0.0f64; 2 * n];
            self.forward_ll(seq, &mut buf)
        }
    }

    /// Sum of [`CategoricalHmm::log_likelihood`] over sequences.
    pub fn total_log_likelihood(&self, sequences: &[&[Symbol]]) -> f64 {
        let mut buf = vec![0.0f64; 2 * self.n_states];
        sequences.iter().map(|s| self.forward_ll(s, &mut buf)).sum()
    }

    fn forward_ll(&self, seq: &[Symbol], buf: &mut [f64]) -> f64 {
        let k = Kernel {
            n: self.n_states,
            start: &self.startprob,
            trans: &self.transmat,
            emit_t: &self.emission_t,
        };
        let last = self.n_symbols - 1;
        specialise!(self.n_states, forward_ll_impl, &k, last, seq, buf)
    }

    /// Draws a sequence of `len` symbols from the model.
    pub fn sample(&self, len: usize, rng: &mut Rng) -> Vec<Symbol> {
        let (n, m) = (self.n_states, self.n_symbols);
        let draw = |p: &[f64], rng: &mut Rng| {
            let u = rng.f64();
            let mut acc = 0.0;
            for (i, &x) in p.iter().enumerate() {
                acc += x;
                if u < acc {
                    return i;
                }
            }
            p.len() - 1
        };
        let mut out = Vec::with_capacity(len);
        let mut state = draw(&self.startprob, rng);
        for t in 0..len {
            if t > 0 {
                state = draw(&self.transmat[state * n..(state + 1) * n], rng);
            }
            let sym = draw(&self.emissionprob[state * m..(state + 1) * m], rng);
            out.push(sym as Symbol);
        }
        out
    }

    /// Random parameters like hmmlearn's initialisation: every row drawn uniformly and
    /// normalised (entries in `[1e-3, 1 + 1e-3)` before normalising, so none is zero).
    pub fn random(n_states: usize, n_symbols: usize, rng: &mut Rng) -> Result<Self, HmmError> {
        if n_states == 0 {
            return Err(HmmError::ZeroStates);
        }
        if n_symbols == 0 {
            return Err(HmmError::ZeroSymbols);
        }
        let mut row = |len: usize| {
            let mut v: Vec<f64> = (0..len).map(|_| 1e-3 + rng.f64()).collect();
            let s: f64 = v.iter().sum();
            v.iter_mut().for_each(|x| *x /= s);
            v
        };
        let startprob = row(n_states);
        let transmat: Vec<f64> = (0..n_states).flat_map(|_| row(n_states)).collect();
        let emissionprob: Vec<f64> = (0..n_states).flat_map(|_| row(n_symbols)).collect();
        Ok(Self::from_parts_unchecked(
            n_states,
            n_symbols,
            startprob,
            transmat,
            emissionprob,
        ))
    }
}

impl WindowScorer for CategoricalHmm {
    /// `−log p(window)`; symbols `>= n_symbols` count as "unknown". Fitted models have an
    /// emission floor, so this is finite; a hand-built model with zero probabilities that makes
    /// a window impossible scores `f64::MAX` instead of `+inf`.
    fn score(&self, window: &[Symbol]) -> f64 {
        finite_score(-self.log_likelihood(window))
    }

    /// Scores each distinct window once.
    fn score_many(&self, windows: &[&[Symbol]]) -> Vec<f64> {
        let mut buf = vec![0.0f64; 2 * self.n_states];
        let mut seen: HashMap<&[Symbol], f64> = HashMap::with_capacity(windows.len());
        windows
            .iter()
            .map(|w| {
                *seen
                    .entry(w)
                    .or_insert_with(|| finite_score(-self.forward_ll(w, &mut buf)))
            })
            .collect()
    }
}

fn finite_score(s: f64) -> f64 {
    if s.is_finite() {
        s
    } else {
        f64::MAX
    }
}

// ---------------------------------------------------------------------------------------------
// Kernels.

/// Calls `$f(n, args..)` through a copy specialised for small `n` (the function is
/// `#[inline(always)]`, so each arm is compiled with a constant state count).
macro_rules! specialise {
    ($n:expr, $f:ident, $($arg:expr),*) => {
        match $n {
            1 => $f(1, $($arg),*),
            2 => $f(2, $($arg),*),
            3 => $f(3, $($arg),*),
            4 => $f(4, $($arg),*),
            5 => $f(5, $($arg),*),
            6 => $f(6, $($arg),*),
            n => $f(n, $($arg),*),
        }
    };
}
use specialise;

/// Borrowed parameters in kernel layout.
struct Kernel<'a> {
    n: usize,
    start: &'a [f64],
    /// Row-major `n × n`.
    trans: &'a [f64],
    /// Transposed emissions, `m × n`.
    emit_t: &'a [f64],
}

/// Adds `ln c` lazily: multiplies scale factors and takes one log when the product gets small.
struct LogAcc {
    sum: f64,
    prod: f64,
}

impl LogAcc {
    #[inline(always)]
    fn new() -> Self {
        LogAcc {
            sum: 0.0,
            prod: 1.0,
        }
    }

    #[inline(always)]
    fn add(&mut self, c: f64) {
        if c < 1e-30 {
            self.sum += c.ln();
        } else {
            self.prod *= c;
            if self.prod < 1e-200 {
                self.sum += self.prod.ln();
                self.prod = 1.0;
            }
        }
    }

    #[inline(always)]
    fn total(&self) -> f64 {
        self.sum + self.prod.ln()
    }
}

/// One unscaled forward step: `cur(j) = Σ_i prev(i) A(i, j) · b(j)`; returns `Σ_j cur(j)`.
#[inline(always)]
fn forward_step(n: usize, trans: &[f64], prev: &[f64], cur: &mut [f64], b: &[f64]) -> f64 {
    cur.fill(0.0);
    for i in 0..n {
        let a = prev[i];
        let row = &trans[i * n..i * n + n];
        for j in 0..n {
            cur[j] += a * row[j];
        }
    }
    let mut c = 0.0;
    for j in 0..n {
        cur[j] *= b[j];
        c += cur[j];
    }
    c
}

/// Scaled forward pass keeping only two rows; returns the log-likelihood (`-inf` when the
/// sequence is impossible). `buf` holds at least `2n` values.
#[inline(always)]
fn forward_ll_impl(n: usize, k: &Kernel, last: usize, seq: &[Symbol], buf: &mut [f64]) -> f64 {
    let Some((&first, rest)) = seq.split_first() else {
        return 0.0;
    };
    let (prev, cur) = buf[..2 * n].split_at_mut(n);
    let trans = &k.trans[..n * n];
    let mut acc = LogAcc::new();
    let o = (first as usize).min(last);
    let b = &k.emit_t[o * n..o * n + n];
    let mut c = 0.0;
    for i in 0..n {
        prev[i] = k.start[i] * b[i];
        c += prev[i];
    }
    if c <= 0.0 || !c.is_finite() {
        return f64::NEG_INFINITY;
    }
    acc.add(c);
    let inv = 1.0 / c;
    prev.iter_mut().for_each(|x| *x *= inv);
    for &s in rest {
        let o = (s as usize).min(last);
        let b = &k.emit_t[o * n..o * n + n];
        let c = forward_step(n, trans, prev, cur, b);
        if c <= 0.0 || !c.is_finite() {
            return f64::NEG_INFINITY;
        }
        acc.add(c);
        let inv = 1.0 / c;
        for j in 0..n {
            prev[j] = cur[j] * inv;
        }
    }
    acc.total()
}

/// Training data: distinct sequences concatenated, with their multiplicities.
#[derive(Debug)]
pub(crate) struct Corpus {
    symbols: Vec<Symbol>,
    offsets: Vec<usize>,
    weights: Vec<f64>,
    /// Index in the caller's list of each sequence's first occurrence.
    origin: Vec<usize>,
    max_len: usize,
}

impl Corpus {
    pub(crate) fn build(
        sequences: &[&[Symbol]],
        n_symbols: usize,
        dedup: bool,
    ) -> Result<Corpus, HmmError> {
        if n_symbols == 0 {
            return Err(HmmError::ZeroSymbols);
        }
        let mut c = Corpus {
            symbols: Vec::new(),
            offsets: vec![0],
            weights: Vec::new(),
            origin: Vec::new(),
            max_len: 0,
        };
        let mut index: HashMap<&[Symbol], usize> = HashMap::new();
        for (si, seq) in sequences.iter().enumerate() {
            if seq.is_empty() {
                continue;
            }
            check_symbols(si, seq, n_symbols)?;
            if dedup {
                if let Some(&u) = index.get(seq) {
                    c.weights[u] += 1.0;
                    continue;
                }
                index.insert(seq, c.weights.len());
            }
            c.symbols.extend_from_slice(seq);
            c.offsets.push(c.symbols.len());
            c.weights.push(1.0);
            c.origin.push(si);
            c.max_len = c.max_len.max(seq.len());
        }
        if c.weights.is_empty() {
            return Err(HmmError::NoSequences);
        }
        Ok(c)
    }

    fn len(&self) -> usize {
        self.weights.len()
    }

    fn seq(&self, u: usize) -> &[Symbol] {
        &self.symbols[self.offsets[u]..self.offsets[u + 1]]
    }
}

/// Expected counts of one E-step.
struct Stats {
    start: Vec<f64>,
    /// `Σ α_t(i) v_{t+1}(j)`; times `A(i, j)` gives the expected transition counts.
    xi: Vec<f64>,
    /// Expected emission counts, transposed (`m × n`).
    obs_t: Vec<f64>,
}

impl Stats {
    fn new(n: usize, m: usize) -> Self {
        Stats {
            start: vec![0.0; n],
            xi: vec![0.0; n * n],
            obs_t: vec![0.0; m * n],
        }
    }

    fn clear(&mut self) {
        self.start.fill(0.0);
        self.xi.fill(0.0);
        self.obs_t.fill(0.0);
    }
}

/// Reusable E-step buffers.
struct Workspace {
    alpha: Vec<f64>,
    inv_c: Vec<f64>,
    beta: Vec<f64>,
    /// The same, for four sequences at once (`[t][i][lane]`).
    alpha4: Vec<[f64; LANES]>,
    inv_c4: Vec<[f64; LANES]>,
}

impl Workspace {
    fn new(n: usize, max_len: usize) -> Self {
        Workspace {
            alpha: vec![0.0; n * max_len],
            inv_c: vec![0.0; max_len],
            beta: vec![0.0; 3 * n],
            alpha4: vec![[0.0; LANES]; n * max_len],
            inv_c4: vec![[0.0; LANES]; max_len],
        }
    }
}

/// Sequences run side by side by [`estep_seq4`].
const LANES: usize = 4;

/// One E-step over the corpus: adds weighted expected counts to `stats` and returns the total
/// weighted log-likelihood, or the index of a sequence with zero likelihood.
fn estep(k: &Kernel, corpus: &Corpus, stats: &mut Stats, ws: &mut Workspace) -> Result<f64, usize> {
    specialise!(k.n, estep_impl, k, corpus, stats, ws)
}

#[inline(always)]
fn estep_impl(
    n: usize,
    k: &Kernel,
    corpus: &Corpus,
    stats: &mut Stats,
    ws: &mut Workspace,
) -> Result<f64, usize> {
    let mut total = 0.0;
    let mut u = 0;
    while u < corpus.len() {
        // Four sequences of one length (stride-1 windows all are) go through the lanes together:
        // their step-to-step dependency chains overlap instead of waiting on each other.
        if u + LANES <= corpus.len() {
            let len = corpus.seq(u).len();
            if (1..LANES).all(|l| corpus.seq(u + l).len() == len) {
                let seqs: [&[Symbol]; LANES] = std::array::from_fn(|l| corpus.seq(u + l));
                let w: [f64; LANES] = std::array::from_fn(|l| corpus.weights[u + l]);
                if let Some(ll) = estep_seq4(n, k, seqs, w, stats, ws) {
                    total += (0..LANES).map(|l| w[l] * ll[l]).sum::<f64>();
                    u += LANES;
                    continue;
                }
            }
        }
        let seq = corpus.seq(u);
        let w = corpus.weights[u];
        let ll = match estep_seq(n, k, seq, w, stats, ws, true) {
            Some(ll) => ll,
            // Lazy scaling underflowed within one step: redo with a rescale at every step
            // (nothing was accumulated for this sequence yet).
            None => estep_seq(n, k, seq, w, stats, ws, false).ok_or(corpus.origin[u])?,
        };
        total += w * ll;
        u += 1;
    }
    Ok(total)
}

/// [`estep_seq`] for four sequences of equal length at once, rescaling at every step. Returns
/// `None` (having added nothing) if any lane's forward mass leaves the finite positive range;
/// the caller then runs those sequences one by one.
#[inline(always)]
fn estep_seq4(
    n: usize,
    k: &Kernel,
    seqs: [&[Symbol]; LANES],
    w: [f64; LANES],
    stats: &mut Stats,
    ws: &mut Workspace,
) -> Option<[f64; LANES]> {
    let trans = &k.trans[..n * n];
    let len = seqs[0].len();
    let alpha = &mut ws.alpha4[..len * n];
    let inv_c = &mut ws.inv_c4[..len];
    let mut ll: [LogAcc; LANES] = std::array::from_fn(|_| LogAcc::new());
    for t in 0..len {
        let (done, next) = alpha.split_at_mut(t * n);
        let cur = &mut next[..n];
        if t == 0 {
            for (i, c) in cur.iter_mut().enumerate() {
                for l in 0..LANES {
                    let o = seqs[l][0] as usize;
                    c[l] = k.start[i] * k.emit_t[o * n + i];
                }
            }
        } else {
            let prev = &done[(t - 1) * n..t * n];
            for (j, c) in cur.iter_mut().enumerate() {
                let mut acc = [0.0f64; LANES];
                for i in 0..n {
                    let a = trans[i * n + j];
                    for l in 0..LANES {
                        acc[l] += prev[i][l] * a;
                    }
                }
                for l in 0..LANES {
                    let o = seqs[l][t] as usize;
                    c[l] = acc[l] * k.emit_t[o * n + j];
                }
            }
        }
        let mut c = [0.0f64; LANES];
        for x in cur.iter() {
            for l in 0..LANES {
                c[l] += x[l];
            }
        }
        if c.iter().any(|&c| !(c > 0.0 && c.is_finite())) {
            return None;
        }
        let inv: [f64; LANES] = std::array::from_fn(|l| 1.0 / c[l]);
        for x in cur.iter_mut() {
            for l in 0..LANES {
                x[l] *= inv[l];
            }
        }
        inv_c[t] = inv;
        for l in 0..LANES {
            ll[l].add(c[l]);
        }
    }
    let ll: [f64; LANES] = std::array::from_fn(|l| ll[l].total());
    // Backward: with every step rescaled, Σ_i α̂_t(i) β̂_t(i) = 1, so posteriors need no
    // normaliser beyond the sequence weight.
    let mut beta = [[1.0f64; LANES]; 64];
    let mut v = [[0.0f64; LANES]; 64];
    if n > beta.len() {
        return None;
    }
    let beta = &mut beta[..n];
    let v = &mut v[..n];
    let mut xi_local = [0.0f64; 64];
    let local = n * n <= xi_local.len();
    for t in (0..len).rev() {
        let a_t = &alpha[t * n..t * n + n];
        if t + 1 < len {
            let ic = inv_c[t + 1];
            for j in 0..n {
                for l in 0..LANES {
                    let o = seqs[l][t + 1] as usize;
                    v[j][l] = k.emit_t[o * n + j] * ic[l] * beta[j][l];
                }
            }
            for i in 0..n {
                let row = &trans[i * n..i * n + n];
                let mut b = [0.0f64; LANES];
                for j in 0..n {
                    for l in 0..LANES {
                        b[l] += row[j] * v[j][l];
                    }
                }
                beta[i] = b;
                let wa: [f64; LANES] = std::array::from_fn(|l| w[l] * a_t[i][l]);
                for j in 0..n {
                    let mut x = 0.0;
                    for l in 0..LANES {
                        x += wa[l] * v[j][l];
                    }
                    if local {
                        xi_local[i * n + j] += x;
                    } else {
                        stats.xi[i * n + j] += x;
                    }
                }
            }
        }
        for l in 0..LANES {
            let o = seqs[l][t] as usize;
            let obs = &mut stats.obs_t[o * n..o * n + n];
            for i in 0..n {
                obs[i] += a_t[i][l] * beta[i][l] * w[l];
            }
        }
        if t == 0 {
            for i in 0..n {
                for l in 0..LANES {
                    stats.start[i] += a_t[i][l] * beta[i][l] * w[l];
                }
            }
        }
    }
    if local {
        for (d, x) in stats.xi.iter_mut().zip(&xi_local[..n * n]) {
            *d += x;
        }
    }
    Some(ll)
}

/// Forward mass below which the E-step rescales (lazy scaling).
const RESCALE_BELOW: f64 = 1e-100;

/// Forward–backward on one sequence of weight `w`; adds expected counts to `stats` and returns
/// the log-likelihood, or `None` (and adds nothing) if the forward mass reached zero.
///
/// Scaling is lazy when `lazy`: the forward variables are renormalised only when their sum falls
/// below [`RESCALE_BELOW`] (always otherwise). Any scale factors give the same posteriors as long
/// as the backward pass uses the same ones, so this is exact; it takes the division out of the
/// step-to-step dependency chain. With scaled `α̂`, `β̂`, `Σ_i α̂_t(i) β̂_t(i)` is the same for
/// every `t` (the unscaled forward mass left at the end), so one normaliser serves all posteriors.
#[inline(always)]
fn estep_seq(
    n: usize,
    k: &Kernel,
    seq: &[Symbol],
    w: f64,
    stats: &mut Stats,
    ws: &mut Workspace,
    lazy: bool,
) -> Option<f64> {
    let trans = &k.trans[..n * n];
    let len = seq.len();
    let alpha = &mut ws.alpha[..len * n];
    let inv_c = &mut ws.inv_c[..len];
    let threshold = if lazy { RESCALE_BELOW } else { f64::INFINITY };
    // Forward.
    let mut acc = LogAcc::new();
    let o = seq[0] as usize;
    let b = &k.emit_t[o * n..o * n + n];
    let mut c = 0.0;
    for i in 0..n {
        let a = k.start[i] * b[i];
        alpha[i] = a;
        c += a;
    }
    let mut tail = c;
    if !(c > 0.0 && c.is_finite()) {
        return None;
    }
    if c < threshold {
        acc.add(c);
        let inv = 1.0 / c;
        inv_c[0] = inv;
        alpha[..n].iter_mut().for_each(|x| *x *= inv);
        tail = 1.0;
    } else {
        inv_c[0] = 1.0;
    }
    for t in 1..len {
        let o = seq[t] as usize;
        let b = &k.emit_t[o * n..o * n + n];
        let (done, next) = alpha.split_at_mut(t * n);
        let prev = &done[(t - 1) * n..t * n];
        let cur = &mut next[..n];
        let c = forward_step(n, trans, prev, cur, b);
        if !(c > 0.0 && c.is_finite()) {
            return None;
        }
        if c < threshold {
            acc.add(c);
            let inv = 1.0 / c;
            inv_c[t] = inv;
            cur.iter_mut().for_each(|x| *x *= inv);
            tail = 1.0;
        } else {
            inv_c[t] = 1.0;
            tail = c;
        }
    }
    acc.add(tail);
    let ll = acc.total();
    // Backward, with posteriors and transition counts on the fly.
    let scale = w / tail;
    // Small models accumulate this sequence's transition counts in a local array (registers,
    // once unrolled) and add them to `stats` at the end.
    let mut xi_local = [0.0f64; 64];
    let local = n * n <= xi_local.len();
    let xi_acc: &mut [f64] = if local {
        &mut xi_local[..n * n]
    } else {
        &mut stats.xi[..n * n]
    };
    let (beta, rest) = ws.beta.split_at_mut(n);
    let (v, bic) = rest.split_at_mut(n);
    let bic = &mut bic[..n];
    beta.fill(1.0);
    for t in (0..len).rev() {
        let a_t = &alpha[t * n..t * n + n];
        if t + 1 < len {
            // v(j) = B(j, o_{t+1}) β_{t+1}(j) / c_{t+1}; β_t(i) = Σ_j A(i, j) v(j);
            // ξ_t(i, j) = α_t(i) A(i, j) v(j) (A applied once per iteration, in the M-step).
            let o = seq[t + 1] as usize;
            let b = &k.emit_t[o * n..o * n + n];
            let ic = inv_c[t + 1];
            for j in 0..n {
                bic[j] = b[j] * ic;
            }
            for j in 0..n {
                v[j] = bic[j] * beta[j];
            }
            for i in 0..n {
                let row = &trans[i * n..i * n + n];
                let mut s = 0.0;
                for j in 0..n {
                    s += row[j] * v[j];
                }
                beta[i] = s;
                let wa = scale * a_t[i];
                let xi = &mut xi_acc[i * n..i * n + n];
                for j in 0..n {
                    xi[j] += wa * v[j];
                }
            }
        }
        let o = seq[t] as usize;
        let obs = &mut stats.obs_t[o * n..o * n + n];
        for i in 0..n {
            obs[i] += a_t[i] * beta[i] * scale;
        }
        if t == 0 {
            for i in 0..n {
                stats.start[i] += a_t[i] * beta[i] * scale;
            }
        }
    }
    if local {
        for (d, x) in stats.xi.iter_mut().zip(&xi_local[..n * n]) {
            *d += x;
        }
    }
    Some(ll)
}

/// Weighted total log-likelihood of the corpus (forward only).
fn corpus_log_likelihood(k: &Kernel, corpus: &Corpus, last: usize) -> f64 {
    let mut buf = vec![0.0; 2 * k.n];
    (0..corpus.len())
        .map(|u| {
            corpus.weights[u] * specialise!(k.n, forward_ll_impl, k, last, corpus.seq(u), &mut buf)
        })
        .sum()
}

/// Parameters being fitted, in kernel layout.
struct EmState {
    n: usize,
    m: usize,
    start: Vec<f64>,
    trans: Vec<f64>,
    emit_t: Vec<f64>,
}

impl EmState {
    fn from_model(model: &CategoricalHmm) -> Self {
        EmState {
            n: model.n_states,
            m: model.n_symbols,
            start: model.startprob.clone(),
            trans: model.transmat.clone(),
            emit_t: model.emission_t.clone(),
        }
    }

    fn kernel(&self) -> Kernel<'_> {
        Kernel {
            n: self.n,
            start: &self.start,
            trans: &self.trans,
            emit_t: &self.emit_t,
        }
    }

    /// hmmlearn's M-step with flat priors: normalised expected counts; zero-count rows stay zero.
    fn mstep(&mut self, stats: &Stats) {
        let (n, m) = (self.n, self.m);
        let s: f64 = stats.start.iter().sum();
        if s > 0.0 {
            for i in 0..n {
                self.start[i] = stats.start[i] / s;
            }
        }
        for i in 0..n {
            let row = &mut self.trans[i * n..(i + 1) * n];
            let xi = &stats.xi[i * n..(i + 1) * n];
            let mut s = 0.0;
            for j in 0..n {
                row[j] *= xi[j];
                s += row[j];
            }
            let inv = if s > 0.0 { 1.0 / s } else { 1.0 };
            row.iter_mut().for_each(|x| *x *= inv);
        }
        let mut sums = vec![0.0; n];
        for col in stats.obs_t.chunks_exact(n) {
            for i in 0..n {
                sums[i] += col[i];
            }
        }
        for s in sums.iter_mut() {
            *s = if *s > 0.0 { 1.0 / *s } else { 1.0 };
        }
        for (dst, src) in self
            .emit_t
            .chunks_exact_mut(n)
            .zip(stats.obs_t.chunks_exact(n))
            .take(m)
        {
            for ((d, o), inv) in dst.iter_mut().zip(src).zip(&sums) {
                *d = o * inv;
            }
        }
    }

    fn into_model(self) -> CategoricalHmm {
        let emissionprob = transpose(&self.emit_t, self.m, self.n);
        CategoricalHmm::from_parts_unchecked(self.n, self.m, self.start, self.trans, emissionprob)
    }
}

struct Run {
    model: CategoricalHmm,
    history: Vec<f64>,
    log_likelihood: f64,
    converged: bool,
}

fn run_em(
    initial: &CategoricalHmm,
    corpus: &Corpus,
    max_iter: usize,
    tol: f64,
) -> Result<Run, HmmError> {
    let mut st = EmState::from_model(initial);
    let mut stats = Stats::new(st.n, st.m);
    let mut ws = Workspace::new(st.n, corpus.max_len);
    let mut history = Vec::with_capacity(max_iter);
    let mut converged = false;
    for _ in 0..max_iter {
        stats.clear();
        let ll =
            estep(&st.kernel(), corpus, &mut stats, &mut ws).map_err(HmmError::ZeroLikelihood)?;
        st.mstep(&stats);
        let gain = history.last().map(|&prev| ll - prev);
        history.push(ll);
        if gain.is_some_and(|g| g < tol) {
            converged = true;
            break;
        }
    }
    let log_likelihood = corpus_log_likelihood(&st.kernel(), corpus, st.m - 1);
    Ok(Run {
        model: st.into_model(),
        history,
        log_likelihood,
        converged,
    })
}

impl ValidCategoricalHmmParams {
    /// Baum–Welch from `n_restarts` random initialisations (restart `r` uses the `r`-th fork of
    /// `Rng::seeded(seed)`); keeps the run with the highest final log-likelihood (first on ties)
    /// and applies the emission floor. Empty sequences are skipped; a symbol `>= n_symbols` in
    /// the training data is an error.
    pub fn fit_report(&self, sequences: &[&[Symbol]], n_symbols: usize) -> Result<EmFit, HmmError> {
        let p = &self.0;
        let corpus = Corpus::build(sequences, n_symbols, p.dedup)?;
        let mut master = Rng::seeded(p.seed);
        let mut best: Option<(usize, Run)> = None;
        for r in 0..p.n_restarts {
            let mut rng = master.fork();
            let init = CategoricalHmm::random(p.n_states, n_symbols, &mut rng)?;
            let run = run_em(&init, &corpus, p.max_iter, p.tol)?;
            let better = match &best {
                None => true,
                Some((_, b)) => run.log_likelihood > b.log_likelihood,
            };
            if better {
                best = Some((r, run));
            }
        }
        let (restart, run) = best.ok_or(HmmError::ZeroRestarts)?;
        self.finish(run, restart)
    }

    /// [`ValidCategoricalHmmParams::fit_report`], keeping only the model.
    pub fn fit(
        &self,
        sequences: &[&[Symbol]],
        n_symbols: usize,
    ) -> Result<CategoricalHmm, HmmError> {
        self.fit_report(sequences, n_symbols).map(|f| f.model)
    }

    /// Baum–Welch from the given parameters (no restarts, no randomness): `n_states` and the
    /// seed are ignored, the alphabet is the model's. Same stopping rule and output as
    /// [`ValidCategoricalHmmParams::fit_report`]; this is what hmmlearn's `fit` does with
    /// `init_params=""`.
    pub fn fit_from(
        &self,
        initial: &CategoricalHmm,
        sequences: &[&[Symbol]],
    ) -> Result<EmFit, HmmError> {
        let p = &self.0;
        let corpus = Corpus::build(sequences, initial.n_symbols, p.dedup)?;
        let run = run_em(initial, &corpus, p.max_iter, p.tol)?;
        self.finish(run, 0)
    }

    fn finish(&self, run: Run, restart: usize) -> Result<EmFit, HmmError> {
        Ok(EmFit {
            model: run.model.with_emission_floor(self.0.emission_floor)?,
            history: run.history,
            log_likelihood: run.log_likelihood,
            converged: run.converged,
            restart,
        })
    }
}

impl Fit<Windows<'_>> for ValidCategoricalHmmParams {
    type Model = CategoricalHmm;
    type Error = HmmError;

    /// [`ValidCategoricalHmmParams::fit`] on the windows over `data.n_symbols` symbols.
    fn fit(&self, data: &Windows<'_>) -> Result<CategoricalHmm, HmmError> {
        ValidCategoricalHmmParams::fit(self, data.windows, data.n_symbols)
    }
}

impl CategoricalHmmParams {
    /// Checks the parameters, then [`ValidCategoricalHmmParams::fit`] (the same as
    /// [`Fit::fit`] on [`Windows`]).
    pub fn fit(
        &self,
        sequences: &[&[Symbol]],
        n_symbols: usize,
    ) -> Result<CategoricalHmm, HmmError> {
        self.check()?.fit(sequences, n_symbols)
    }

    /// Checks the parameters, then [`ValidCategoricalHmmParams::fit_report`].
    pub fn fit_report(&self, sequences: &[&[Symbol]], n_symbols: usize) -> Result<EmFit, HmmError> {
        self.check()?.fit_report(sequences, n_symbols)
    }

    /// Checks the parameters, then [`ValidCategoricalHmmParams::fit_from`].
    pub fn fit_from(
        &self,
        initial: &CategoricalHmm,
        sequences: &[&[Symbol]],
    ) -> Result<EmFit, HmmError> {
        self.check()?.fit_from(initial, sequences)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// π = (0.6, 0.4), A = [[0.7, 0.3], [0.4, 0.6]], B = [[0.9, 0.1], [0.2, 0.8]].
    fn hand_model() -> CategoricalHmm {
        CategoricalHmm::new(
            vec![0.6, 0.4],
            vec![0.7, 0.3, 0.4, 0.6],
            vec![0.9, 0.1, 0.2, 0.8],
        )
        .unwrap()
    }

    fn generator() -> CategoricalHmm {
        CategoricalHmm::new(
            vec![0.8, 0.1, 0.1],
            vec![0.8, 0.15, 0.05, 0.1, 0.8, 0.1, 0.2, 0.1, 0.7],
            vec![
                0.6, 0.3, 0.05, 0.02, 0.02, 0.01, //
                0.02, 0.03, 0.6, 0.3, 0.04, 0.01, //
                0.05, 0.05, 0.05, 0.05, 0.79, 0.01,
            ],
        )
        .unwrap()
    }

    fn sample_set(model: &CategoricalHmm, count: usize, len: usize, seed: u64) -> Vec<Vec<Symbol>> {
        let mut rng = Rng::seeded(seed);
        (0..count).map(|_| model.sample(len, &mut rng)).collect()
    }

    fn refs(v: &[Vec<Symbol>]) -> Vec<&[Symbol]> {
        v.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn forward_matches_hand_computation() {
        // Sequence 0, 1, 0:
        // α1 = (0.6·0.9, 0.4·0.2)                         = (0.54, 0.08)
        // α2 = ((0.54·0.7 + 0.08·0.4)·0.1, (0.54·0.3 + 0.08·0.6)·0.8) = (0.041, 0.168)
        // α3 = ((0.041·0.7 + 0.168·0.4)·0.9, (0.041·0.3 + 0.168·0.6)·0.2)
        //    = (0.08631, 0.02262)
        // P(0, 1, 0) = 0.08631 + 0.02262 = 0.10893
        let m = hand_model();
        let ll = m.log_likelihood(&[0, 1, 0]);
        assert!((ll - 0.10893f64.ln()).abs() < 1e-12, "{ll}");
        // One symbol: P(1) = 0.6·0.1 + 0.4·0.8 = 0.38.
        assert!((m.log_likelihood(&[1]) - 0.38f64.ln()).abs() < 1e-12);
        assert_eq!(m.log_likelihood(&[]), 0.0);
        assert!((m.score(&[0, 1, 0]) + 0.10893f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn long_sequences_do_not_underflow() {
        let m = generator();
        let seq = sample_set(&m, 1, 20_000, 3).remove(0);
        let ll = m.log_likelihood(&seq);
        assert!(ll.is_finite() && ll < -1000.0, "{ll}");
        // Same as summing over halves conditioned... at least equal to the log-space recursion.
        let mut log_alpha: Vec<f64> = (0..3)
            .map(|i| (m.startprob[i] * m.emissionprob[i * 6 + seq[0] as usize]).ln())
            .collect();
        for &s in &seq[1..] {
            let next: Vec<f64> = (0..3)
                .map(|j| {
                    let terms: Vec<f64> = (0..3)
                        .map(|i| log_alpha[i] + m.transmat[i * 3 + j].ln())
                        .collect();
                    let mx = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    mx + terms.iter().map(|t| (t - mx).exp()).sum::<f64>().ln()
                        + m.emissionprob[j * 6 + s as usize].ln()
                })
                .collect();
            log_alpha = next;
        }
        let mx = log_alpha.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let reference = mx + log_alpha.iter().map(|t| (t - mx).exp()).sum::<f64>().ln();
        assert!(
            ((ll - reference) / reference).abs() < 1e-10,
            "{ll} {reference}"
        );
    }

    #[test]
    fn baum_welch_never_decreases_the_log_likelihood() {
        let data = sample_set(&generator(), 60, 19, 11);
        let init = CategoricalHmm::random(3, 6, &mut Rng::seeded(5)).unwrap();
        let fit = CategoricalHmmParams::new()
            .max_iter(60)
            .tol(f64::NEG_INFINITY)
            .fit_from(&init, &refs(&data))
            .unwrap();
        assert_eq!(fit.history.len(), 60);
        for w in fit.history.windows(2) {
            assert!(w[1] >= w[0] - 1e-9 * w[0].abs(), "{} then {}", w[0], w[1]);
        }
        assert!(fit.log_likelihood >= fit.history[59] - 1e-9 * fit.history[59].abs());
        assert!(!fit.converged);
    }

    #[test]
    fn fit_recovers_the_generating_model_well_enough() {
        let truth = generator();
        let train = sample_set(&truth, 400, 19, 21);
        let held = sample_set(&truth, 100, 19, 22);
        let model = CategoricalHmmParams::new()
            .seed(3)
            .max_iter(500)
            .fit(&refs(&train), 6)
            .unwrap();
        let random = CategoricalHmm::random(3, 6, &mut Rng::seeded(99)).unwrap();
        let fitted_ll = model.total_log_likelihood(&refs(&held));
        let true_ll = truth.total_log_likelihood(&refs(&held));
        let random_ll = random.total_log_likelihood(&refs(&held));
        assert!(
            fitted_ll > random_ll + 500.0,
            "{fitted_ll} vs random {random_ll}"
        );
        eprintln!("held-out: fitted {fitted_ll}, truth {true_ll}, random {random_ll}");
        assert!(fitted_ll > true_ll * 1.01, "{fitted_ll} vs truth {true_ll}");
    }

    #[test]
    fn unknown_symbols_score_high_but_finite() {
        // Symbol 5 (the last, "unknown") never occurs in training: the generator below never
        // emits it once symbols are capped to 0..5.
        let train: Vec<Vec<Symbol>> = sample_set(&generator(), 200, 19, 8)
            .into_iter()
            .map(|s| s.into_iter().map(|x| x.min(4)).collect())
            .collect();
        let model = CategoricalHmmParams::new().fit(&refs(&train), 6).unwrap();
        let normal = model.score(&train[0]);
        let mut odd = train[0].clone();
        odd[7] = 5;
        let with_unknown = model.score(&odd);
        odd[9] = 4000; // beyond the alphabet: read as "unknown"
        let beyond = model.score(&odd);
        assert!(with_unknown.is_finite() && beyond.is_finite());
        assert!(with_unknown > normal + 8.0, "{with_unknown} vs {normal}");
        assert!(beyond > with_unknown + 8.0);
        assert!(model.emissionprob.iter().all(|&e| e >= 1e-6 / (1.0 + 6e-6)));
        let all_unknown = model.score(&[5; 19]);
        assert!(all_unknown.is_finite() && all_unknown > 19.0 * 10.0);
    }

    #[test]
    fn same_seed_gives_bit_identical_models() {
        let data = sample_set(&generator(), 100, 19, 4);
        let p = CategoricalHmmParams::new().seed(42);
        let a = p.fit(&refs(&data), 6).unwrap();
        let b = p.fit(&refs(&data), 6).unwrap();
        let bits = |m: &CategoricalHmm| -> Vec<u64> {
            m.startprob
                .iter()
                .chain(&m.transmat)
                .chain(&m.emissionprob)
                .map(|x| x.to_bits())
                .collect()
        };
        assert_eq!(bits(&a), bits(&b));
        let c = p.clone().seed(43).fit(&refs(&data), 6).unwrap();
        assert_ne!(bits(&a), bits(&c));
    }

    #[test]
    fn dedup_weighted_estep_equals_plain_estep() {
        // Heavy duplication, like stride-1 windows over loops.
        let base = sample_set(&generator(), 30, 19, 6);
        let data: Vec<Vec<Symbol>> = (0..300).map(|i| base[(i * 7) % 30].clone()).collect();
        let init = CategoricalHmm::random(3, 6, &mut Rng::seeded(1)).unwrap();
        let p = CategoricalHmmParams::new()
            .max_iter(15)
            .tol(f64::NEG_INFINITY);
        let a = p.clone().dedup(true).fit_from(&init, &refs(&data)).unwrap();
        let b = p.dedup(false).fit_from(&init, &refs(&data)).unwrap();
        for (x, y) in a.history.iter().zip(&b.history) {
            assert!(((x - y) / y).abs() < 1e-9, "{x} {y}");
        }
        let pa = a
            .model
            .startprob
            .iter()
            .chain(&a.model.transmat)
            .chain(&a.model.emissionprob);
        let pb = b
            .model
            .startprob
            .iter()
            .chain(&b.model.transmat)
            .chain(&b.model.emissionprob);
        for (x, y) in pa.zip(pb) {
            assert!((x - y).abs() < 1e-9, "{x} {y}");
        }
        // And one E-step directly.
        let ca = Corpus::build(&refs(&data), 6, true).unwrap();
        let cb = Corpus::build(&refs(&data), 6, false).unwrap();
        assert_eq!(ca.len(), 30);
        let st = EmState::from_model(&init);
        let (mut sa, mut sb) = (Stats::new(3, 6), Stats::new(3, 6));
        let mut ws = Workspace::new(3, 19);
        let la = estep(&st.kernel(), &ca, &mut sa, &mut ws).unwrap();
        let lb = estep(&st.kernel(), &cb, &mut sb, &mut ws).unwrap();
        assert!(((la - lb) / lb).abs() < 1e-12);
        let all_a = sa.start.iter().chain(&sa.xi).chain(&sa.obs_t);
        let all_b = sb.start.iter().chain(&sb.xi).chain(&sb.obs_t);
        for (x, y) in all_a.zip(all_b) {
            assert!((x - y).abs() < 1e-9 * y.abs().max(1.0), "{x} {y}");
        }
    }

    #[test]
    fn four_lane_estep_equals_one_sequence_at_a_time() {
        // 10 sequences of one length and a shorter one: two groups of four go through the lanes,
        // the rest one by one. Weighted differently so a lane mix-up would show.
        let m = generator();
        let mut data = sample_set(&m, 10, 19, 3);
        data.push(sample_set(&m, 1, 7, 4).remove(0));
        let corpus = Corpus::build(&refs(&data), 6, false).unwrap();
        let st = EmState::from_model(&m);
        let mut ws = Workspace::new(3, 19);
        let mut lanes = Stats::new(3, 6);
        let total = estep(&st.kernel(), &corpus, &mut lanes, &mut ws).unwrap();
        let mut single = Stats::new(3, 6);
        let mut expected = 0.0;
        for seq in &data {
            expected += estep_seq(3, &st.kernel(), seq, 1.0, &mut single, &mut ws, false).unwrap();
        }
        assert!(
            ((total - expected) / expected).abs() < 1e-12,
            "{total} {expected}"
        );
        let all_a = lanes.start.iter().chain(&lanes.xi).chain(&lanes.obs_t);
        let all_b = single.start.iter().chain(&single.xi).chain(&single.obs_t);
        for (x, y) in all_a.zip(all_b) {
            assert!((x - y).abs() < 1e-9 * y.abs().max(1.0), "{x} {y}");
        }
        let mut w4 = Stats::new(3, 6);
        let seqs: [&[Symbol]; LANES] = std::array::from_fn(|l| data[l].as_slice());
        let ll = estep_seq4(
            3,
            &st.kernel(),
            seqs,
            [1.0, 2.0, 0.5, 3.0],
            &mut w4,
            &mut ws,
        )
        .unwrap();
        for l in 0..LANES {
            assert!((ll[l] - m.log_likelihood(&data[l])).abs() < 1e-9 * ll[l].abs());
        }
    }

    #[test]
    fn lazy_scaling_equals_scaling_at_every_step() {
        // 3000 steps: the forward mass crosses the rescale threshold many times.
        let m = generator();
        let seq = sample_set(&m, 1, 3000, 12).remove(0);
        let st = EmState::from_model(&m);
        let mut ws = Workspace::new(3, 3000);
        let (mut lazy, mut full) = (Stats::new(3, 6), Stats::new(3, 6));
        let a = estep_seq(3, &st.kernel(), &seq, 2.0, &mut lazy, &mut ws, true).unwrap();
        let b = estep_seq(3, &st.kernel(), &seq, 2.0, &mut full, &mut ws, false).unwrap();
        assert!(((a - b) / b).abs() < 1e-12, "{a} {b}");
        assert!((a - m.log_likelihood(&seq)).abs() < 1e-9 * a.abs());
        let all_a = lazy.start.iter().chain(&lazy.xi).chain(&lazy.obs_t);
        let all_b = full.start.iter().chain(&full.xi).chain(&full.obs_t);
        for (x, y) in all_a.zip(all_b) {
            assert!((x - y).abs() < 1e-9 * y.abs().max(1.0), "{x} {y}");
        }
        assert!((lazy.obs_t.iter().sum::<f64>() - 6000.0).abs() < 1e-6);
    }

    #[test]
    fn estep_counts_sum_to_the_number_of_observations() {
        let data = sample_set(&generator(), 10, 7, 2);
        let corpus = Corpus::build(&refs(&data), 6, false).unwrap();
        let m = generator();
        let st = EmState::from_model(&m);
        let mut stats = Stats::new(3, 6);
        let mut ws = Workspace::new(3, 7);
        let ll = estep(&st.kernel(), &corpus, &mut stats, &mut ws).unwrap();
        assert!((ll - m.total_log_likelihood(&refs(&data))).abs() < 1e-9);
        let obs: f64 = stats.obs_t.iter().sum();
        assert!((obs - 70.0).abs() < 1e-9);
        let trans: f64 = (0..9).map(|i| stats.xi[i] * m.transmat[i]).sum();
        assert!((trans - 60.0).abs() < 1e-9, "{trans}");
        assert!((stats.start.iter().sum::<f64>() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn specialised_and_generic_kernels_agree() {
        // 7 states takes the generic path; compare with a 7-state model evaluated in log space.
        let m = CategoricalHmm::random(7, 5, &mut Rng::seeded(2)).unwrap();
        let seq: Vec<Symbol> = (0..40).map(|i| (i * 3 % 5) as Symbol).collect();
        let n = 7;
        let mut alpha: Vec<f64> = (0..n)
            .map(|i| m.startprob[i] * m.emissionprob[i * 5 + seq[0] as usize])
            .collect();
        let mut ll = 0.0;
        for (t, &s) in seq.iter().enumerate() {
            if t > 0 {
                alpha = (0..n)
                    .map(|j| {
                        (0..n)
                            .map(|i| alpha[i] * m.transmat[i * n + j])
                            .sum::<f64>()
                            * m.emissionprob[j * 5 + s as usize]
                    })
                    .collect();
            }
            let c: f64 = alpha.iter().sum();
            ll += c.ln();
            alpha.iter_mut().for_each(|a| *a /= c);
        }
        assert!((m.log_likelihood(&seq) - ll).abs() < 1e-10);
    }

    #[test]
    fn bad_training_input_is_rejected() {
        let p = CategoricalHmmParams::new();
        assert_eq!(p.fit(&[], 4).unwrap_err(), HmmError::NoSequences);
        assert_eq!(p.fit(&[&[], &[]], 4).unwrap_err(), HmmError::NoSequences);
        assert_eq!(p.fit(&[&[0, 1]], 0).unwrap_err(), HmmError::ZeroSymbols);
        assert_eq!(
            p.fit(&[&[0, 1], &[], &[2, 4]], 4).unwrap_err(),
            HmmError::SymbolOutOfRange {
                sequence: 2,
                symbol: 4,
                n_symbols: 4
            }
        );
        // Empty sequences are skipped.
        assert!(p.fit(&[&[], &[0, 1, 2, 3]], 4).is_ok());
        assert_eq!(
            CategoricalHmmParams::new()
                .n_states(0)
                .fit(&[&[0]], 1)
                .unwrap_err(),
            HmmError::ZeroStates
        );
    }

    #[test]
    fn impossible_start_is_reported() {
        // State 0 cannot emit symbol 1 and state 1 is never entered.
        let init = CategoricalHmm::new(
            vec![1.0, 0.0],
            vec![1.0, 0.0, 0.0, 1.0],
            vec![1.0, 0.0, 0.0, 1.0],
        )
        .unwrap();
        let err = CategoricalHmmParams::new()
            .fit_from(&init, &[&[0, 0], &[0, 1]])
            .unwrap_err();
        assert_eq!(err, HmmError::ZeroLikelihood(1));
        // Scoring such a model stays finite.
        assert_eq!(init.score(&[1]), f64::MAX);
    }

    #[test]
    fn score_many_equals_score() {
        let data = sample_set(&generator(), 50, 19, 9);
        let mut windows = refs(&data);
        windows.extend(refs(&data[..10]));
        windows.push(&[]);
        let m = generator();
        let many = m.score_many(&windows);
        for (w, s) in windows.iter().zip(&many) {
            assert_eq!(m.score(w).to_bits(), s.to_bits());
        }
    }

    #[test]
    fn json_round_trip_and_validation() {
        let m = generator();
        let json = serde_json::to_string(&m).unwrap();
        assert!(!json.contains("emission_t"));
        let back: CategoricalHmm = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.score(&[0, 1, 2]), m.score(&[0, 1, 2]));
        let bad = json.replace("\"n_states\":3", "\"n_states\":4");
        assert!(serde_json::from_str::<CategoricalHmm>(&bad).is_err());
        let bad = r#"{"n_states":1,"n_symbols":2,"startprob":[1.0],"transmat":[1.0],"emissionprob":[0.5,0.6]}"#;
        assert!(serde_json::from_str::<CategoricalHmm>(bad).is_err());
        assert!(CategoricalHmm::new(vec![1.0], vec![1.0, 0.0], vec![1.0]).is_err());
        assert!(CategoricalHmm::new(vec![0.5, 0.5], vec![0.5; 4], vec![0.5; 3]).is_err());
    }

    #[test]
    fn emission_floor_renormalises_rows() {
        let m = hand_model();
        let e = CategoricalHmm::new(vec![1.0], vec![1.0], vec![1.0, 0.0, 0.0]).unwrap();
        let f = e.with_emission_floor(0.01).unwrap();
        assert!((f.emissionprob[1] - 0.01 / 1.02).abs() < 1e-15);
        assert!((f.emissionprob.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert_eq!(
            m.with_emission_floor(0.0).unwrap_err(),
            HmmError::InvalidEmissionFloor(0.0)
        );
    }
}
