//! [`MultinomialMixture`]: an HMM over Bag-of-System-Calls vectors done right.
//!
//! # Why the paper's BoSC HMM detected nothing
//!
//! The paper fed each window's BoSC count vector (19 classes) to hmmlearn's discrete HMM as if it
//! were a sequence of 19 *symbols*: position `c` of the "sequence" is class `c`, and the "symbol"
//! there is the count of class `c`. A window of 19 calls spread over a few classes gives a vector
//! that is mostly zeros with a few small numbers, e.g. `0 0 7 0 0 0 0 0 0 0 0 0 0 0 12 0 0 0 0`.
//! An HMM over that alphabet learns "zeros follow zeros, and now and then a larger number comes":
//! the emission alphabet mixes up *how many* calls (the symbol) with *which* class (the
//! position), and the only thing that tells classes apart, the position, is what a
//! time-homogeneous HMM is built to ignore. An attack window whose counts land in completely
//! different classes, `0 0 0 0 0 12 0 0 0 0 0 0 0 0 0 0 7 0 0`, is still "many zeros then a
//! large number, then zeros, another large number": same symbols, nearly the same transitions,
//! nearly the same likelihood. So normal and attack windows score alike and no threshold
//! separates them (0 % detection). [`FlatBoscHmm`](super::FlatBoscHmm) keeps that approach for
//! the reproduction.
//!
//! # What works
//!
//! Treat the whole count vector as *one* emission: a hidden state `k` emits a window's
//! `N` calls as a multinomial draw with class probabilities `θ_k`. Scoring one window at a time,
//! an HMM with such emissions sees a sequence of length 1, so its transitions never matter and
//! it reduces to a mixture of multinomials with weights `π_k` (the start probabilities):
//!
//! ```text
//! p(x) = Σ_k π_k Π_c θ_kc^{x_c}
//! ```
//!
//! Now class identity is the emission itself: a window that uses classes its profile never
//! (or rarely) uses pays `x_c · log θ_kc` for each such call, under every component. Each
//! component's `θ_k` gets additive (Dirichlet) smoothing `alpha`, so a class never seen in
//! training — including the "unknown" symbol — has a small non-zero probability: a large but
//! finite score.
//!
//! **Score** = `−log Σ_k π_k Π_c θ_kc^{x_c}`, *without* the multinomial coefficient
//! `N! / Π_c x_c!`: it is the log-probability of the window's calls as an exchangeable sequence,
//! in the same units as [`CategoricalHmm`](super::CategoricalHmm)'s score, and does not reward
//! windows for merely using many different classes. Scores are comparable across windows of the
//! same size (a partial window scores lower simply because it has fewer calls).
//!
//! Training is EM with k-means++-like seeding (components start at windows drawn with
//! probability proportional to their squared distance from the chosen ones), several restarts,
//! and identical count vectors merged into one weighted vector (exact, and much faster: windows of
//! system calls repeat a lot).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::errors::{check_symbols, HmmError};
use super::params::{MultinomialMixtureParams, ValidMultinomialMixtureParams};
use crate::dataset::Windows;
use crate::rng::Rng;
use crate::window::bosc_into;
use crate::{Fit, Symbol, WindowScorer};

/// A fitted mixture of multinomials over BoSC count vectors.
///
/// Serialised as `{n_components, n_symbols, weights, probs}` (`probs` row-major
/// `n_components × n_symbols`); deserialising checks shapes, that rows are distributions and that
/// every class probability is positive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MixtureRepr")]
pub struct MultinomialMixture {
    n_components: usize,
    n_symbols: usize,
    weights: Vec<f64>,
    probs: Vec<f64>,
    #[serde(skip)]
    log_weights: Vec<f64>,
    /// `ln probs`, transposed (`n_symbols × n_components`).
    #[serde(skip)]
    log_probs_t: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixtureRepr {
    n_components: usize,
    n_symbols: usize,
    weights: Vec<f64>,
    probs: Vec<f64>,
}

impl TryFrom<MixtureRepr> for MultinomialMixture {
    type Error = HmmError;

    fn try_from(r: MixtureRepr) -> Result<Self, HmmError> {
        let m = MultinomialMixture::new(r.weights, r.probs, r.n_symbols)?;
        if m.n_components != r.n_components {
            return Err(HmmError::InvalidModel(format!(
                "declared {} components, parameters have {}",
                r.n_components, m.n_components
            )));
        }
        Ok(m)
    }
}

impl MultinomialMixture {
    /// A mixture from explicit parameters: `weights` (K, a distribution, zeros allowed) and
    /// `probs` (K × `n_symbols`, row-major, every row a distribution with positive entries).
    pub fn new(weights: Vec<f64>, probs: Vec<f64>, n_symbols: usize) -> Result<Self, HmmError> {
        let k = weights.len();
        if k == 0 {
            return Err(HmmError::ZeroComponents);
        }
        if n_symbols == 0 {
            return Err(HmmError::ZeroSymbols);
        }
        if probs.len() != k * n_symbols {
            return Err(HmmError::InvalidModel(format!(
                "probs has {} entries, expected {}",
                probs.len(),
                k * n_symbols
            )));
        }
        let is_dist = |p: &[f64], positive: bool| {
            p.iter()
                .all(|x| x.is_finite() && if positive { *x > 0.0 } else { *x >= 0.0 })
                && (p.iter().sum::<f64>() - 1.0).abs() <= 1e-8
        };
        if !is_dist(&weights, false) {
            return Err(HmmError::InvalidModel(
                "weights are not a distribution".into(),
            ));
        }
        if !probs.chunks_exact(n_symbols).all(|r| is_dist(r, true)) {
            return Err(HmmError::InvalidModel(
                "a component's probabilities are not a positive distribution".into(),
            ));
        }
        Ok(Self::from_parts_unchecked(weights, probs, n_symbols))
    }

    fn from_parts_unchecked(weights: Vec<f64>, probs: Vec<f64>, n_symbols: usize) -> Self {
        let k = weights.len();
        let log_weights = weights.iter().map(|w| w.ln()).collect();
        let mut log_probs_t = vec![0.0; probs.len()];
        for c in 0..k {
            for s in 0..n_symbols {
                log_probs_t[s * k + c] = probs[c * n_symbols + s].ln();
            }
        }
        MultinomialMixture {
            n_components: k,
            n_symbols,
            weights,
            probs,
            log_weights,
            log_probs_t,
        }
    }

    /// Number of components.
    pub fn n_components(&self) -> usize {
        self.n_components
    }

    /// Alphabet size; the last symbol is "unknown".
    pub fn n_symbols(&self) -> usize {
        self.n_symbols
    }

    /// Mixture weights (length `n_components`).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Class probabilities per component, row-major `n_components × n_symbols`.
    pub fn probs(&self) -> &[f64] {
        &self.probs
    }

    /// `log Σ_k π_k Π_c θ_kc^{x_c}` for a count vector (length `n_symbols`).
    pub fn log_likelihood_counts(&self, counts: &[u32]) -> f64 {
        let mut lp = vec![0.0; self.n_components];
        self.log_likelihood_counts_into(counts, &mut lp)
    }

    fn log_likelihood_counts_into(&self, counts: &[u32], lp: &mut [f64]) -> f64 {
        let k = self.n_components;
        lp.copy_from_slice(&self.log_weights);
        for (s, &x) in counts.iter().enumerate().take(self.n_symbols) {
            if x > 0 {
                let x = f64::from(x);
                let row = &self.log_probs_t[s * k..(s + 1) * k];
                for (l, r) in lp.iter_mut().zip(row) {
                    *l += x * r;
                }
            }
        }
        log_sum_exp(lp)
    }
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

impl WindowScorer for MultinomialMixture {
    /// `−log Σ_k π_k Π_c θ_kc^{x_c}` of the window's BoSC `x` (symbols `>= n_symbols` count as
    /// "unknown"). Always finite: every class probability is positive.
    fn score(&self, window: &[Symbol]) -> f64 {
        let mut counts = vec![0u32; self.n_symbols];
        let mut lp = vec![0.0; self.n_components];
        bosc_into(window, &mut counts);
        -self.log_likelihood_counts_into(&counts, &mut lp)
    }

    fn score_many(&self, windows: &[&[Symbol]]) -> Vec<f64> {
        let mut counts = vec![0u32; self.n_symbols];
        let mut lp = vec![0.0; self.n_components];
        windows
            .iter()
            .map(|w| {
                bosc_into(w, &mut counts);
                -self.log_likelihood_counts_into(&counts, &mut lp)
            })
            .collect()
    }
}

/// Distinct count vectors in sparse form, with multiplicities.
struct BagCorpus {
    /// `(class, count)` of every non-zero entry, vector after vector.
    entries: Vec<(u32, f64)>,
    offsets: Vec<usize>,
    weights: Vec<f64>,
    /// Dense proportions `x / N` (for seeding distances), vector after vector.
    props: Vec<f64>,
}

impl BagCorpus {
    fn build(windows: &[&[Symbol]], n_symbols: usize) -> Result<Self, HmmError> {
        if n_symbols == 0 {
            return Err(HmmError::ZeroSymbols);
        }
        let mut c = BagCorpus {
            entries: Vec::new(),
            offsets: vec![0],
            weights: Vec::new(),
            props: Vec::new(),
        };
        let mut index: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut counts = vec![0u32; n_symbols];
        for (wi, w) in windows.iter().enumerate() {
            if w.is_empty() {
                continue;
            }
            check_symbols(wi, w, n_symbols)?;
            bosc_into(w, &mut counts);
            if let Some(&u) = index.get(&counts) {
                c.weights[u] += 1.0;
                continue;
            }
            index.insert(counts.clone(), c.weights.len());
            let total = w.len() as f64;
            for (s, &x) in counts.iter().enumerate() {
                if x > 0 {
                    c.entries.push((s as u32, f64::from(x)));
                }
                c.props.push(f64::from(x) / total);
            }
            c.offsets.push(c.entries.len());
            c.weights.push(1.0);
        }
        if c.weights.is_empty() {
            return Err(HmmError::NoSequences);
        }
        Ok(c)
    }

    fn len(&self) -> usize {
        self.weights.len()
    }

    fn bag(&self, u: usize) -> &[(u32, f64)] {
        &self.entries[self.offsets[u]..self.offsets[u + 1]]
    }
}

/// k-means++-like seeding: component centres are distinct vectors drawn with probability
/// ∝ multiplicity × squared distance (of proportions) to the nearest chosen centre.
fn seed_components(
    corpus: &BagCorpus,
    n_components: usize,
    n_symbols: usize,
    rng: &mut Rng,
) -> Vec<f64> {
    let n = corpus.len();
    let prop = |u: usize| &corpus.props[u * n_symbols..(u + 1) * n_symbols];
    let pick = |scores: &[f64], rng: &mut Rng| -> usize {
        let total: f64 = scores.iter().sum();
        if total <= 0.0 {
            return rng.below(scores.len());
        }
        let mut u = rng.f64() * total;
        for (i, &s) in scores.iter().enumerate() {
            if u < s {
                return i;
            }
            u -= s;
        }
        scores.len() - 1
    };
    let mut d2: Vec<f64> = vec![f64::INFINITY; n];
    let mut probs = Vec::with_capacity(n_components * n_symbols);
    let mut scores: Vec<f64> = corpus.weights.clone();
    for _ in 0..n_components {
        let c = pick(&scores, rng);
        // Start the component at the chosen vector, softened so no class starts at zero.
        let row_start = probs.len();
        let mut total = 0.0;
        for &x in prop(c) {
            let v = x + 0.5 / n_symbols as f64;
            probs.push(v);
            total += v;
        }
        probs[row_start..].iter_mut().for_each(|v| *v /= total);
        for u in 0..n {
            let d: f64 = prop(u)
                .iter()
                .zip(prop(c))
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            d2[u] = d2[u].min(d);
            scores[u] = corpus.weights[u] * d2[u];
        }
    }
    probs
}

struct MixRun {
    weights: Vec<f64>,
    probs: Vec<f64>,
    log_likelihood: f64,
}

fn run_mixture_em(
    corpus: &BagCorpus,
    mut probs: Vec<f64>,
    p: &MultinomialMixtureParams,
    n_symbols: usize,
) -> MixRun {
    let k = p.n_components;
    let m = n_symbols;
    let total_weight: f64 = corpus.weights.iter().sum();
    let mut weights = vec![1.0 / k as f64; k];
    let mut log_w = vec![0.0; k];
    let mut log_p_t = vec![0.0; m * k];
    let mut lp = vec![0.0; k];
    let mut nk = vec![0.0; k];
    let mut sk = vec![0.0; k * m];
    let mut prev: Option<f64> = None;
    let mut ll = f64::NEG_INFINITY;
    // One extra pass computes the final log-likelihood without an M-step.
    for iter in 0..=p.max_iter {
        for c in 0..k {
            log_w[c] = weights[c].ln();
            for s in 0..m {
                log_p_t[s * k + c] = probs[c * m + s].ln();
            }
        }
        nk.fill(0.0);
        sk.fill(0.0);
        ll = 0.0;
        for u in 0..corpus.len() {
            let bag = corpus.bag(u);
            lp.copy_from_slice(&log_w);
            for &(s, x) in bag {
                let row = &log_p_t[s as usize * k..(s as usize + 1) * k];
                for (l, r) in lp.iter_mut().zip(row) {
                    *l += x * r;
                }
            }
            let lse = log_sum_exp(&lp);
            let w = corpus.weights[u];
            ll += w * lse;
            for c in 0..k {
                let r = w * (lp[c] - lse).exp();
                nk[c] += r;
                for &(s, x) in bag {
                    sk[c * m + s as usize] += r * x;
                }
            }
        }
        let done = iter == p.max_iter || prev.is_some_and(|pv| ll - pv < p.tol);
        if done {
            break;
        }
        prev = Some(ll);
        for c in 0..k {
            weights[c] = nk[c] / total_weight;
            let row = &sk[c * m..(c + 1) * m];
            let denom: f64 = row.iter().sum::<f64>() + m as f64 * p.alpha;
            for s in 0..m {
                probs[c * m + s] = (row[s] + p.alpha) / denom;
            }
        }
    }
    MixRun {
        weights,
        probs,
        log_likelihood: ll,
    }
}

impl ValidMultinomialMixtureParams {
    /// EM on the BoSC vectors of `windows` over `n_symbols` classes: `n_restarts` seedings
    /// (restart `r` uses the `r`-th fork of `Rng::seeded(seed)`), the best final log-likelihood
    /// wins (first on ties). Empty windows are skipped; a symbol `>= n_symbols` is an error.
    pub fn fit(
        &self,
        windows: &[&[Symbol]],
        n_symbols: usize,
    ) -> Result<MultinomialMixture, HmmError> {
        let p = &self.0;
        let corpus = BagCorpus::build(windows, n_symbols)?;
        let mut master = Rng::seeded(p.seed);
        let mut best: Option<MixRun> = None;
        for _ in 0..p.n_restarts {
            let mut rng = master.fork();
            let init = seed_components(&corpus, p.n_components, n_symbols, &mut rng);
            let run = run_mixture_em(&corpus, init, p, n_symbols);
            let better = match &best {
                None => true,
                Some(b) => run.log_likelihood > b.log_likelihood,
            };
            if better {
                best = Some(run);
            }
        }
        let run = best.ok_or(HmmError::ZeroRestarts)?;
        Ok(MultinomialMixture::from_parts_unchecked(
            run.weights,
            run.probs,
            n_symbols,
        ))
    }
}

impl Fit<Windows<'_>> for ValidMultinomialMixtureParams {
    type Model = MultinomialMixture;
    type Error = HmmError;

    /// [`ValidMultinomialMixtureParams::fit`] on the windows over `data.n_symbols` classes.
    fn fit(&self, data: &Windows<'_>) -> Result<MultinomialMixture, HmmError> {
        ValidMultinomialMixtureParams::fit(self, data.windows, data.n_symbols)
    }
}

impl MultinomialMixtureParams {
    /// Checks the parameters, then [`ValidMultinomialMixtureParams::fit`] (the same as
    /// [`Fit::fit`] on [`Windows`]).
    pub fn fit(
        &self,
        windows: &[&[Symbol]],
        n_symbols: usize,
    ) -> Result<MultinomialMixture, HmmError> {
        self.check()?.fit(windows, n_symbols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows of `size` calls drawn from `profile` (class, weight) pairs.
    fn windows(
        profile: &[(Symbol, f64)],
        count: usize,
        size: usize,
        seed: u64,
    ) -> Vec<Vec<Symbol>> {
        let total: f64 = profile.iter().map(|p| p.1).sum();
        let mut rng = Rng::seeded(seed);
        (0..count)
            .map(|_| {
                (0..size)
                    .map(|_| {
                        let mut u = rng.f64() * total;
                        for &(s, w) in profile {
                            if u < w {
                                return s;
                            }
                            u -= w;
                        }
                        profile[profile.len() - 1].0
                    })
                    .collect()
            })
            .collect()
    }

    fn refs(v: &[Vec<Symbol>]) -> Vec<&[Symbol]> {
        v.iter().map(Vec::as_slice).collect()
    }

    const A: &[(Symbol, f64)] = &[(0, 5.0), (1, 3.0), (2, 1.0), (3, 1.0)];
    const B: &[(Symbol, f64)] = &[(4, 4.0), (5, 4.0), (6, 2.0), (0, 1.0)];
    const C: &[(Symbol, f64)] = &[(8, 3.0), (9, 3.0), (10, 3.0), (1, 1.0)];
    const N_SYMBOLS: usize = 12;

    #[test]
    fn a_third_profile_scores_far_above_held_out_normal_windows() {
        let mut train = windows(A, 300, 19, 1);
        train.extend(windows(B, 300, 19, 2));
        let model = MultinomialMixtureParams::new()
            .n_components(4)
            .fit(&refs(&train), N_SYMBOLS)
            .unwrap();
        let mut held = windows(A, 50, 19, 3);
        held.extend(windows(B, 50, 19, 4));
        let odd = windows(C, 50, 19, 5);
        let held_max = model
            .score_many(&refs(&held))
            .into_iter()
            .fold(f64::MIN, f64::max);
        let odd_scores = model.score_many(&refs(&odd));
        let odd_min = odd_scores.iter().copied().fold(f64::MAX, f64::min);
        assert!(
            odd_min > held_max + 30.0,
            "odd {odd_min} vs normal {held_max}"
        );
        assert!(odd_scores.iter().all(|s| s.is_finite()));
        // The unknown symbol and out-of-alphabet symbols are finite too.
        assert!(model.score(&[11; 19]).is_finite());
        assert_eq!(model.score(&[11; 19]), model.score(&[500; 19]));
        for (w, s) in refs(&odd).iter().zip(&odd_scores) {
            assert_eq!(model.score(w).to_bits(), s.to_bits());
        }
    }

    #[test]
    fn score_is_minus_log_mixture_probability() {
        let m = MultinomialMixture::new(vec![0.25, 0.75], vec![0.5, 0.25, 0.25, 0.1, 0.1, 0.8], 3)
            .unwrap();
        // Window 0 0 2: 0.25·0.5²·0.25 + 0.75·0.1²·0.8 = 0.015625 + 0.006 = 0.021625.
        let s = m.score(&[0, 2, 0]);
        assert!((s + 0.021625f64.ln()).abs() < 1e-12, "{s}");
        assert!(m.score(&[]).abs() < 1e-12);
    }

    #[test]
    fn fit_is_deterministic_and_round_trips_through_json() {
        let mut train = windows(A, 100, 19, 1);
        train.extend(windows(B, 100, 19, 2));
        let p = MultinomialMixtureParams::new().seed(7);
        let a = p.fit(&refs(&train), N_SYMBOLS).unwrap();
        let b = p.fit(&refs(&train), N_SYMBOLS).unwrap();
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        let back: MultinomialMixture = serde_json::from_str(&json).unwrap();
        assert_eq!(back.score(&train[0]), a.score(&train[0]));
        assert!(a.probs().iter().all(|&x| x > 0.0));
        assert!((a.weights().iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bad_input_is_rejected() {
        let p = MultinomialMixtureParams::new();
        assert_eq!(p.fit(&[], 3).unwrap_err(), HmmError::NoSequences);
        assert_eq!(p.fit(&[&[]], 3).unwrap_err(), HmmError::NoSequences);
        assert_eq!(p.fit(&[&[0]], 0).unwrap_err(), HmmError::ZeroSymbols);
        assert!(matches!(
            p.fit(&[&[0, 3]], 3).unwrap_err(),
            HmmError::SymbolOutOfRange {
                sequence: 0,
                symbol: 3,
                ..
            }
        ));
        // Fewer distinct windows than components still fits.
        assert!(p.fit(&[&[0, 1], &[0, 1]], 3).is_ok());
        assert!(MultinomialMixture::new(vec![1.0], vec![1.0, 0.0], 2).is_err());
    }
}
