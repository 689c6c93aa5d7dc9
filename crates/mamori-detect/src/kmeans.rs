//! k-means clusters of BoSC vectors scored by Mahalanobis distance (Yoon, Mohan, Cheng, Caccamo
//! and Sha 2017, "Learning execution contexts from system call distribution for anomaly
//! detection in smart embedded system").
//!
//! Each normal window becomes its Bag of System Calls ([`crate::window::bosc_into`]) divided by
//! the window length, i.e. the share of each symbol. For full windows this is the paper's BoSC up
//! to a constant factor, which Mahalanobis distance ignores; it also puts partial windows of
//! short-lived processes on the same scale. Identical vectors are merged with a weight before
//! clustering (system-call windows repeat a lot).
//!
//! Fitting runs `n_init` seeded k-means++ initialisations, each followed by weighted Lloyd
//! iterations, and keeps the run with the smallest within-cluster sum of squares. Each cluster
//! then gets its weighted mean and a regularised covariance
//!
//! `Σ = (1 − λ)·S + λ·τ·I`, with `τ = max(trace(S)/d, τ_pooled)`,
//!
//! where `S` is the cluster's covariance, `λ` the `shrinkage`, `d = n_symbols` and `τ_pooled`
//! the average per-symbol variance within clusters (the total variance when every cluster is a
//! single point, `1e-4` when all training vectors are identical). BoSC shares sum to one and the
//! unknown symbol never occurs in training, so `S` is always singular; the shrinkage makes `Σ`
//! positive definite, and the floor `τ_pooled` keeps a cluster of identical windows from
//! declaring every other vector infinitely far. `Σ` is factored by Cholesky; if that fails
//! numerically, `λ` is raised towards 1 until it succeeds.
//!
//! **Small clusters**: a cluster holding fewer than `min_cluster_weight` training windows gives a
//! meaningless covariance, so it is dissolved (smallest first): its windows join the nearest
//! remaining cluster, whose mean is recomputed. At least one cluster always remains.
//!
//! A window's score is the smallest Mahalanobis distance `sqrt((x − μ)ᵀ Σ⁻¹ (x − μ))` over the
//! clusters. An empty window scores 0.0.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::classes::Symbol;
use crate::dataset::Windows;
use crate::rng::Rng;
use crate::window::bosc_into;
use crate::{Fit, ParamGuard, WindowScorer};

/// k-means + Mahalanobis settings; fit [`Windows`] through [`Fit`], which runs
/// [`ParamGuard::check`] first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KMeansParams {
    /// Number of clusters (fewer when there are fewer distinct BoSC vectors).
    pub k: usize,
    /// Most Lloyd iterations per initialisation.
    pub max_iter: usize,
    /// Lloyd stops when no centroid moves by more than this (Euclidean distance on shares).
    pub tol: f64,
    /// Number of k-means++ initialisations; the best clustering is kept.
    pub n_init: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Covariance shrinkage `λ` towards a scaled identity, in `(0, 1]`.
    pub shrinkage: f64,
    /// Clusters with fewer training windows than this are merged into their nearest neighbour.
    pub min_cluster_weight: usize,
}

impl Default for KMeansParams {
    fn default() -> Self {
        KMeansParams {
            k: 8,
            max_iter: 100,
            tol: 1e-6,
            n_init: 4,
            seed: 0,
            shrinkage: 0.1,
            min_cluster_weight: 5,
        }
    }
}

/// Why k-means could not be trained, or a model file is not a valid k-means model.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum KMeansError {
    /// `k` is zero.
    #[error("invalid k-means setting: k must be at least 1")]
    ZeroK,
    /// `max_iter` is zero.
    #[error("invalid k-means setting: max_iter must be at least 1")]
    ZeroMaxIter,
    /// `n_init` is zero.
    #[error("invalid k-means setting: n_init must be at least 1")]
    ZeroInit,
    /// `tol` is negative or not finite.
    #[error("invalid k-means setting: tol must be finite and non-negative, got {0}")]
    InvalidTol(f64),
    /// `shrinkage` is outside `(0, 1]`.
    #[error("invalid k-means setting: shrinkage must be within (0, 1], got {0}")]
    InvalidShrinkage(f64),
    /// The symbol space is empty.
    #[error("n_symbols must be at least 1")]
    NoSymbols,
    /// No training window holds a symbol.
    #[error("k-means needs at least one non-empty training window")]
    NoWindows,
    /// A deserialised model breaks an invariant (corrupt or hand-edited model file).
    #[error("invalid k-means model: {0}")]
    InvalidModel(String),
}

/// One cluster of a fitted [`KMeans`] model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    mean: Vec<f64>,
    /// Lower-triangular Cholesky factor `L` of `Σ = L Lᵀ`, packed row by row
    /// (row `i` holds `L[i][0..=i]`).
    chol: Vec<f64>,
    weight: usize,
    shrinkage: f64,
}

impl Cluster {
    /// The cluster's mean BoSC share vector.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Training windows assigned to the cluster.
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// The shrinkage actually used (above the setting when Cholesky needed more).
    pub fn shrinkage(&self) -> f64 {
        self.shrinkage
    }

    /// Squared Mahalanobis distance of `x` from the cluster; `work` has length `d`.
    fn distance2(&self, x: &[f64], work: &mut [f64]) -> f64 {
        let mut total = 0.0;
        let mut row = 0;
        for i in 0..x.len() {
            let l = &self.chol[row..row + i + 1];
            let dot: f64 = l[..i].iter().zip(&work[..i]).map(|(a, b)| a * b).sum();
            let y = (x[i] - self.mean[i] - dot) / l[i];
            work[i] = y;
            total += y * y;
            row += i + 1;
        }
        total
    }
}

/// A fitted k-means + Mahalanobis model over BoSC shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "KMeansFile", into = "KMeansFile")]
pub struct KMeans {
    n_symbols: usize,
    clusters: Vec<Cluster>,
}

/// The serialised form of [`KMeans`], checked on load.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KMeansFile {
    n_symbols: usize,
    clusters: Vec<Cluster>,
}

impl From<KMeans> for KMeansFile {
    fn from(m: KMeans) -> Self {
        KMeansFile {
            n_symbols: m.n_symbols,
            clusters: m.clusters,
        }
    }
}

impl TryFrom<KMeansFile> for KMeans {
    type Error = KMeansError;

    fn try_from(f: KMeansFile) -> Result<Self, KMeansError> {
        let d = f.n_symbols;
        if d == 0 {
            return Err(KMeansError::NoSymbols);
        }
        if f.clusters.is_empty() {
            return Err(KMeansError::InvalidModel("no clusters".into()));
        }
        for (i, c) in f.clusters.iter().enumerate() {
            let sizes_ok = c.mean.len() == d && c.chol.len() == d * (d + 1) / 2;
            let finite = c.mean.iter().chain(&c.chol).all(|v| v.is_finite());
            let diag_ok = (0..d).all(|j| c.chol[j * (j + 1) / 2 + j] > 0.0);
            if !(sizes_ok && finite && diag_ok) {
                return Err(KMeansError::InvalidModel(format!(
                    "cluster {i} has wrong sizes, non-finite values or a non-positive \
                     Cholesky diagonal"
                )));
            }
        }
        Ok(KMeans {
            n_symbols: d,
            clusters: f.clusters,
        })
    }
}

/// Distinct BoSC share vectors (flat, `d` each, sorted) with how many windows gave each.
struct Points {
    d: usize,
    x: Vec<f64>,
    w: Vec<f64>,
}

impl Points {
    fn len(&self) -> usize {
        self.w.len()
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    fn from_windows(windows: &[&[Symbol]], d: usize) -> Points {
        let mut counts: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut buf = vec![0u32; d];
        for w in windows.iter().filter(|w| !w.is_empty()) {
            bosc_into(w, &mut buf);
            *counts.entry(buf.clone()).or_default() += 1;
        }
        // Count vectors of different lengths can give the same shares: merge on the shares.
        let mut shares: Vec<(Vec<u64>, usize)> = counts
            .into_iter()
            .map(|(c, n)| {
                let len: u32 = c.iter().sum();
                let v = c
                    .iter()
                    .map(|&k| (f64::from(k) / f64::from(len)).to_bits())
                    .collect();
                (v, n)
            })
            .collect();
        shares.sort_unstable();
        let mut x = Vec::new();
        let mut w: Vec<f64> = Vec::new();
        let mut last: Option<&Vec<u64>> = None;
        for (v, n) in &shares {
            if last == Some(v) {
                if let Some(lw) = w.last_mut() {
                    *lw += *n as f64;
                }
            } else {
                x.extend(v.iter().map(|&b| f64::from_bits(b)));
                w.push(*n as f64);
                last = Some(v);
            }
        }
        Points { d, x, w }
    }
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Index and squared distance of the centroid nearest to `p` (ties: lowest index).
fn nearest(p: &[f64], centroids: &[Vec<f64>]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (j, c) in centroids.iter().enumerate() {
        let d = dist2(p, c);
        if d < best.1 {
            best = (j, d);
        }
    }
    best
}

/// Index drawn with probability proportional to `weights` (all non-negative, positive sum).
fn draw(rng: &mut Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.f64() * total;
    for (i, &w) in weights.iter().enumerate() {
        if u < w {
            return i;
        }
        u -= w;
    }
    // Rounding left `u` past the end: the last index with positive weight.
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

/// Weighted k-means++ seeding of `k ≤ pts.len()` centroids.
fn kmeans_pp(pts: &Points, k: usize, rng: &mut Rng) -> Vec<Vec<f64>> {
    let first = draw(rng, &pts.w);
    let mut centroids = vec![pts.row(first).to_vec()];
    let mut d2: Vec<f64> = (0..pts.len())
        .map(|i| dist2(pts.row(i), &centroids[0]))
        .collect();
    while centroids.len() < k {
        let scores: Vec<f64> = d2.iter().zip(&pts.w).map(|(d, w)| d * w).collect();
        if scores.iter().sum::<f64>() <= 0.0 {
            break;
        }
        let next = pts.row(draw(rng, &scores)).to_vec();
        for (i, d) in d2.iter_mut().enumerate() {
            *d = d.min(dist2(pts.row(i), &next));
        }
        centroids.push(next);
    }
    centroids
}

/// Weighted means of the points assigned to each of `k` clusters; `None` for empty clusters.
fn means(pts: &Points, assign: &[usize], k: usize) -> Vec<Option<Vec<f64>>> {
    let mut sums = vec![vec![0.0; pts.d]; k];
    let mut weights = vec![0.0; k];
    for (i, &a) in assign.iter().enumerate() {
        weights[a] += pts.w[i];
        for (s, x) in sums[a].iter_mut().zip(pts.row(i)) {
            *s += pts.w[i] * x;
        }
    }
    sums.into_iter()
        .zip(weights)
        .map(|(s, w)| (w > 0.0).then(|| s.into_iter().map(|v| v / w).collect()))
        .collect()
}

/// Weighted Lloyd iterations; returns the centroids, assignment and weighted inertia.
fn lloyd(
    pts: &Points,
    mut centroids: Vec<Vec<f64>>,
    params: &KMeansParams,
) -> (Vec<Vec<f64>>, Vec<usize>, f64) {
    let k = centroids.len();
    let mut assign = vec![usize::MAX; pts.len()];
    for _ in 0..params.max_iter {
        let mut changed = false;
        let mut d2 = vec![0.0; pts.len()];
        for (i, a) in assign.iter_mut().enumerate() {
            let (j, d) = nearest(pts.row(i), &centroids);
            changed |= *a != j;
            *a = j;
            d2[i] = d * pts.w[i];
        }
        if !changed {
            break;
        }
        let mut shift = 0.0f64;
        for (j, m) in means(pts, &assign, k).into_iter().enumerate() {
            let new = match m {
                Some(m) => m,
                None => {
                    // Empty cluster: restart it at the point that costs the most, which then
                    // leaves its old cluster.
                    let far = (0..pts.len()).fold(0, |b, i| if d2[i] > d2[b] { i } else { b });
                    d2[far] = 0.0;
                    pts.row(far).to_vec()
                }
            };
            shift = shift.max(dist2(&new, &centroids[j]).sqrt());
            centroids[j] = new;
        }
        if shift <= params.tol {
            break;
        }
    }
    let mut inertia = 0.0;
    for (i, a) in assign.iter_mut().enumerate() {
        let (j, d) = nearest(pts.row(i), &centroids);
        *a = j;
        inertia += d * pts.w[i];
    }
    (centroids, assign, inertia)
}

/// Dissolves clusters lighter than `min_weight` (smallest first) into their nearest neighbours;
/// returns the surviving clusters' means and the final assignment.
fn merge_small(
    pts: &Points,
    mut centroids: Vec<Vec<f64>>,
    mut assign: Vec<usize>,
    min_weight: f64,
) -> (Vec<Vec<f64>>, Vec<usize>) {
    loop {
        let k = centroids.len();
        let mut weights = vec![0.0; k];
        for (i, &a) in assign.iter().enumerate() {
            weights[a] += pts.w[i];
        }
        // A cluster that lost every point is dropped whatever `min_weight` is.
        let smallest = (0..k).fold(0, |b, j| if weights[j] < weights[b] { j } else { b });
        if k == 1 || (weights[smallest] >= min_weight && weights[smallest] > 0.0) {
            let ms = means(pts, &assign, k);
            return (
                ms.into_iter()
                    .zip(centroids)
                    .map(|(m, c)| m.unwrap_or(c))
                    .collect(),
                assign,
            );
        }
        centroids.remove(smallest);
        for (i, a) in assign.iter_mut().enumerate() {
            if *a == smallest {
                *a = nearest(pts.row(i), &centroids).0;
            } else if *a > smallest {
                *a -= 1;
            }
        }
        let ms = means(pts, &assign, centroids.len());
        for (c, m) in centroids.iter_mut().zip(ms) {
            if let Some(m) = m {
                *c = m;
            }
        }
    }
}

/// Cholesky factor of the symmetric `d × d` row-major `a`, packed lower-triangular; `None` when
/// `a` is not (numerically) positive definite.
fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * (d + 1) / 2];
    let idx = |i: usize, j: usize| i * (i + 1) / 2 + j;
    let max_diag = (0..d).map(|i| a[i * d + i]).fold(0.0, f64::max);
    for i in 0..d {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|m| l[idx(i, m)] * l[idx(j, m)]).sum();
            let v = a[i * d + j] - dot;
            if i == j {
                if !v.is_finite() || v <= 1e-12 * max_diag {
                    return None;
                }
                l[idx(i, i)] = v.sqrt();
            } else {
                l[idx(i, j)] = v / l[idx(j, j)];
            }
        }
    }
    Some(l)
}

/// Weighted covariance (row-major `d × d`) of the points assigned to cluster `j` around `mean`,
/// and the cluster's weight.
fn covariance(pts: &Points, assign: &[usize], j: usize, mean: &[f64]) -> (Vec<f64>, f64) {
    let d = pts.d;
    let mut s = vec![0.0; d * d];
    let mut total = 0.0;
    let mut diff = vec![0.0; d];
    for i in (0..pts.len()).filter(|&i| assign[i] == j) {
        let w = pts.w[i];
        total += w;
        for (df, (x, m)) in diff.iter_mut().zip(pts.row(i).iter().zip(mean)) {
            *df = x - m;
        }
        for r in 0..d {
            let wr = w * diff[r];
            for c in 0..=r {
                s[r * d + c] += wr * diff[c];
            }
        }
    }
    for r in 0..d {
        for c in 0..=r {
            let v = if total > 0.0 {
                s[r * d + c] / total
            } else {
                0.0
            };
            s[r * d + c] = v;
            s[c * d + r] = v;
        }
    }
    (s, total)
}

fn trace(s: &[f64], d: usize) -> f64 {
    (0..d).map(|i| s[i * d + i]).sum()
}

impl KMeans {
    /// Clusters the BoSC shares of the normal training `windows` over `n_symbols` symbols (the
    /// class table's `n_symbols()`, unknown included) and fits each cluster's covariance.
    /// Empty windows are skipped. Deterministic given `params.seed`.
    ///
    /// The same as [`Fit::fit`] of `params` on [`Windows`].
    pub fn fit(
        windows: &[&[Symbol]],
        n_symbols: usize,
        params: &KMeansParams,
    ) -> Result<KMeans, KMeansError> {
        Self::fit_checked(windows, n_symbols, &params.check()?.0)
    }

    fn fit_checked(
        windows: &[&[Symbol]],
        n_symbols: usize,
        params: &KMeansParams,
    ) -> Result<KMeans, KMeansError> {
        if n_symbols == 0 {
            return Err(KMeansError::NoSymbols);
        }
        let pts = Points::from_windows(windows, n_symbols);
        if pts.len() == 0 {
            return Err(KMeansError::NoWindows);
        }
        let d = n_symbols;
        let k = params.k.min(pts.len());
        let mut rng = Rng::seeded(params.seed);
        let mut best: Option<(Vec<Vec<f64>>, Vec<usize>, f64)> = None;
        for _ in 0..params.n_init {
            let mut run_rng = rng.fork();
            let init = kmeans_pp(&pts, k, &mut run_rng);
            let run = lloyd(&pts, init, params);
            if best.as_ref().is_none_or(|b| run.2 < b.2) {
                best = Some(run);
            }
        }
        let (centroids, assign, _) = best.ok_or(KMeansError::NoWindows)?;
        let (centroids, assign) =
            merge_small(&pts, centroids, assign, params.min_cluster_weight as f64);

        let covs: Vec<(Vec<f64>, f64)> = centroids
            .iter()
            .enumerate()
            .map(|(j, m)| covariance(&pts, &assign, j, m))
            .collect();
        let all_weight: f64 = covs.iter().map(|c| c.1).sum();
        let mut floor =
            covs.iter().map(|(s, w)| w * trace(s, d)).sum::<f64>() / all_weight / d as f64;
        if floor <= 0.0 {
            let overall = means(&pts, &vec![0; pts.len()], 1);
            let mean = overall.into_iter().flatten().next().unwrap_or(vec![0.0; d]);
            floor = trace(&covariance(&pts, &vec![0; pts.len()], 0, &mean).0, d) / d as f64;
        }
        if floor <= 0.0 || !floor.is_finite() {
            floor = 1e-4;
        }

        let mut clusters = Vec::with_capacity(centroids.len());
        for (mean, (s, weight)) in centroids.into_iter().zip(covs) {
            let tau = (trace(&s, d) / d as f64).max(floor);
            let mut lambda = params.shrinkage;
            let chol = loop {
                let mut sigma: Vec<f64> = s.iter().map(|v| (1.0 - lambda) * v).collect();
                for i in 0..d {
                    sigma[i * d + i] += lambda * tau;
                }
                match cholesky(&sigma, d) {
                    Some(l) => break l,
                    None if lambda < 1.0 => lambda = (lambda * 2.0).min(1.0),
                    // τ·I with τ > 0 always factors; this guards against the impossible.
                    None => {
                        break (0..d)
                            .flat_map(|i| {
                                (0..=i).map(move |j| if i == j { tau.sqrt() } else { 0.0 })
                            })
                            .collect()
                    }
                }
            };
            clusters.push(Cluster {
                mean,
                chol,
                weight: weight.round() as usize,
                shrinkage: lambda,
            });
        }
        Ok(KMeans {
            n_symbols,
            clusters,
        })
    }

    /// The symbol-space size the model was fitted for.
    pub fn n_symbols(&self) -> usize {
        self.n_symbols
    }

    /// The clusters (at most `k`, after small clusters were merged).
    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// Score of one window with caller-owned buffers (`counts`, `x`, `work` of length
    /// `n_symbols`).
    fn score_with(
        &self,
        window: &[Symbol],
        counts: &mut [u32],
        x: &mut [f64],
        work: &mut [f64],
    ) -> f64 {
        if window.is_empty() {
            return 0.0;
        }
        bosc_into(window, counts);
        let len = window.len() as f64;
        for (xi, &c) in x.iter_mut().zip(counts.iter()) {
            *xi = f64::from(c) / len;
        }
        let best = self
            .clusters
            .iter()
            .map(|c| c.distance2(x, work))
            .fold(f64::INFINITY, f64::min)
            .sqrt();
        if best.is_finite() {
            best
        } else {
            f64::MAX
        }
    }

    fn buffers(&self) -> (Vec<u32>, Vec<f64>, Vec<f64>) {
        let d = self.n_symbols;
        (vec![0; d], vec![0.0; d], vec![0.0; d])
    }
}

impl WindowScorer for KMeans {
    /// Smallest Mahalanobis distance of the window's BoSC shares to a cluster.
    fn score(&self, window: &[Symbol]) -> f64 {
        let (mut counts, mut x, mut work) = self.buffers();
        self.score_with(window, &mut counts, &mut x, &mut work)
    }

    fn score_many(&self, windows: &[&[Symbol]]) -> Vec<f64> {
        let (mut counts, mut x, mut work) = self.buffers();
        windows
            .iter()
            .map(|w| self.score_with(w, &mut counts, &mut x, &mut work))
            .collect()
    }
}

/// [`KMeansParams`] that passed [`ParamGuard::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidKMeansParams(KMeansParams);

impl ValidKMeansParams {
    /// The checked settings.
    pub fn params(&self) -> &KMeansParams {
        &self.0
    }
}

impl ParamGuard for KMeansParams {
    type Checked = ValidKMeansParams;
    type Error = KMeansError;

    /// `k`, `max_iter` and `n_init` at least 1, `tol` finite and non-negative, `shrinkage` in
    /// `(0, 1]` (`min_cluster_weight` and `seed` take any value).
    fn check(&self) -> Result<ValidKMeansParams, KMeansError> {
        if self.k == 0 {
            return Err(KMeansError::ZeroK);
        }
        if self.max_iter == 0 {
            return Err(KMeansError::ZeroMaxIter);
        }
        if self.n_init == 0 {
            return Err(KMeansError::ZeroInit);
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(KMeansError::InvalidTol(self.tol));
        }
        if !(self.shrinkage > 0.0 && self.shrinkage <= 1.0) {
            return Err(KMeansError::InvalidShrinkage(self.shrinkage));
        }
        Ok(ValidKMeansParams(*self))
    }
}

impl Fit<Windows<'_>> for ValidKMeansParams {
    type Model = KMeans;
    type Error = KMeansError;

    /// [`KMeans::fit`] on the windows over `data.n_symbols` symbols.
    fn fit(&self, data: &Windows<'_>) -> Result<KMeans, KMeansError> {
        KMeans::fit_checked(data.windows, data.n_symbols, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clusters over 3 symbols (2 classes + unknown), windows of 10 calls:
    /// A has shares (0.9, 0.1, 0) on average, B (0.1, 0.9, 0).
    fn toy_windows() -> Vec<Vec<Symbol>> {
        let make = |zeros: usize| {
            let mut w = vec![0; zeros];
            w.extend(std::iter::repeat_n(1, 10 - zeros));
            w
        };
        let mut out = Vec::new();
        for _ in 0..5 {
            for zeros in [8, 9, 10, 0, 1, 2] {
                out.push(make(zeros));
            }
        }
        out
    }

    fn fit(ws: &[Vec<Symbol>], params: &KMeansParams) -> KMeans {
        let refs: Vec<&[Symbol]> = ws.iter().map(|w| w.as_slice()).collect();
        KMeans::fit(&refs, 3, params).unwrap()
    }

    #[test]
    fn two_separated_clusters_are_recovered() {
        let m = fit(
            &toy_windows(),
            &KMeansParams {
                k: 2,
                ..Default::default()
            },
        );
        let mut means: Vec<Vec<f64>> = m.clusters().iter().map(|c| c.mean().to_vec()).collect();
        means.sort_by(|a, b| a[0].total_cmp(&b[0]));
        for (got, want) in means.iter().zip([[0.1, 0.9, 0.0], [0.9, 0.1, 0.0]]) {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "{means:?}");
            }
        }
        assert!(m.clusters().iter().all(|c| c.weight() == 15));
        // Both centroids score low; a mixed window and an unknown-symbol window score far higher.
        let centre: &[Symbol] = &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let normal_max = toy_windows().iter().map(|w| m.score(w)).fold(0.0, f64::max);
        let mixed = m.score(&[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
        let unknown = m.score(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        let out_of_range = m.score(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 999]);
        assert!(m.score(centre) < 1e-9);
        assert!(mixed > 3.0 * normal_max, "{mixed} vs {normal_max}");
        assert!(unknown > 3.0 * normal_max && unknown.is_finite());
        assert_eq!(
            unknown, out_of_range,
            "out-of-alphabet symbols count as unknown"
        );
        assert_eq!(m.score(&[]), 0.0);
        let batch = m.score_many(&[centre, &[0, 1]]);
        assert_eq!(batch, vec![m.score(centre), m.score(&[0, 1])]);
    }

    #[test]
    fn fitting_is_deterministic_and_round_trips() {
        let ws = toy_windows();
        let p = KMeansParams {
            k: 4,
            min_cluster_weight: 1,
            seed: 42,
            ..Default::default()
        };
        let a = fit(&ws, &p);
        let b = fit(&ws, &p);
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, serde_json::to_string(&b).unwrap());
        let back: KMeans = serde_json::from_str(&json).unwrap();
        let probe: &[Symbol] = &[0, 1, 0, 1, 2, 0, 0, 0, 1, 1];
        // serde_json without its `float_roundtrip` feature may move a parsed f64 by one ulp.
        let (x, y) = (back.score(probe), a.score(probe));
        assert!((x - y).abs() <= 1e-12 * y.abs(), "{x} vs {y}");
        // A reloaded model re-scores identically.
        let again: KMeans = serde_json::from_str(&json).unwrap();
        assert_eq!(again.score(probe), x);
        assert_eq!(a.clusters().len(), 4);
        assert!(serde_json::from_str::<KMeans>(r#"{"n_symbols":3,"clusters":[]}"#).is_err());
        let truncated = json.replacen("\"chol\":[", "\"chol\":[1.0,", 1);
        assert!(serde_json::from_str::<KMeans>(&truncated).is_err());
    }

    #[test]
    fn small_clusters_are_merged() {
        let mut ws = toy_windows();
        // One odd window: with k = 3 it gets a cluster of its own, which is then dissolved.
        ws.push(vec![2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
        let m = fit(
            &ws,
            &KMeansParams {
                k: 3,
                ..Default::default()
            },
        );
        assert_eq!(m.clusters().len(), 2);
        assert_eq!(m.clusters().iter().map(Cluster::weight).sum::<usize>(), 31);
        let kept = fit(
            &ws,
            &KMeansParams {
                k: 3,
                min_cluster_weight: 1,
                ..Default::default()
            },
        );
        assert_eq!(kept.clusters().len(), 3);
        // A cluster of identical windows still gives finite, moderate distances nearby.
        let odd = kept.score(&[2, 2, 2, 2, 2, 2, 2, 2, 2, 0]);
        assert!(odd.is_finite() && odd > 0.0);
    }

    #[test]
    fn identical_training_windows_still_give_finite_scores() {
        let w: &[Symbol] = &[0, 1, 0, 1];
        let m = KMeans::fit(&[w, w, w], 3, &KMeansParams::default()).unwrap();
        assert_eq!(m.clusters().len(), 1);
        assert_eq!(m.score(w), 0.0);
        let s = m.score(&[2, 2, 2, 2]);
        assert!(s.is_finite() && s > 10.0, "{s}");
    }

    #[test]
    fn cholesky_and_quadratic_form() {
        // Σ = [[4, 2], [2, 3]] = L Lᵀ with L = [[2, 0], [1, √2]].
        let l = cholesky(&[4.0, 2.0, 2.0, 3.0], 2).unwrap();
        assert!((l[0] - 2.0).abs() < 1e-12 && (l[1] - 1.0).abs() < 1e-12);
        assert!((l[2] - 2f64.sqrt()).abs() < 1e-12);
        assert!(cholesky(&[1.0, 1.0, 1.0, 1.0], 2).is_none());
        // Σ⁻¹ = [[3, −2], [−2, 4]] / 8; x = (1, 1): xᵀ Σ⁻¹ x = 3 / 8.
        let c = Cluster {
            mean: vec![0.0, 0.0],
            chol: l,
            weight: 1,
            shrinkage: 0.1,
        };
        let d2 = c.distance2(&[1.0, 1.0], &mut [0.0; 2]);
        assert!((d2 - 0.375).abs() < 1e-12, "{d2}");
    }

    /// `params` is rejected by `check` and by `fit` with `expected`, before any training.
    fn rejected(params: KMeansParams, expected: KMeansError) {
        let w: &[Symbol] = &[0, 1];
        assert_eq!(params.check(), Err(expected.clone()));
        assert_eq!(params.fit(&Windows::new(&[w], 3)), Err(expected.clone()));
        assert_eq!(KMeans::fit(&[w], 3, &params), Err(expected));
    }

    #[test]
    fn zero_k_is_rejected() {
        let p = KMeansParams {
            k: 0,
            ..Default::default()
        };
        rejected(p, KMeansError::ZeroK);
    }

    #[test]
    fn zero_max_iter_is_rejected() {
        let p = KMeansParams {
            max_iter: 0,
            ..Default::default()
        };
        rejected(p, KMeansError::ZeroMaxIter);
    }

    #[test]
    fn zero_n_init_is_rejected() {
        let p = KMeansParams {
            n_init: 0,
            ..Default::default()
        };
        rejected(p, KMeansError::ZeroInit);
    }

    #[test]
    fn negative_tol_is_rejected() {
        let p = KMeansParams {
            tol: -1e-6,
            ..Default::default()
        };
        rejected(p, KMeansError::InvalidTol(-1e-6));
    }

    #[test]
    fn nan_tol_is_rejected() {
        let p = KMeansParams {
            tol: f64::NAN,
            ..Default::default()
        };
        let e = p.check().unwrap_err();
        assert!(
            matches!(e, KMeansError::InvalidTol(t) if t.is_nan()),
            "{e:?}"
        );
    }

    #[test]
    fn zero_shrinkage_is_rejected() {
        let p = KMeansParams {
            shrinkage: 0.0,
            ..Default::default()
        };
        rejected(p, KMeansError::InvalidShrinkage(0.0));
    }

    #[test]
    fn shrinkage_above_one_is_rejected() {
        let p = KMeansParams {
            shrinkage: 1.5,
            ..Default::default()
        };
        rejected(p, KMeansError::InvalidShrinkage(1.5));
    }

    #[test]
    fn fit_trait_matches_the_inherent_fit() {
        let windows = toy_windows();
        let refs: Vec<&[Symbol]> = windows.iter().map(Vec::as_slice).collect();
        let p = KMeansParams {
            k: 2,
            seed: 3,
            ..Default::default()
        };
        assert_eq!(p.check().map(|c| *c.params()), Ok(p));
        let a = p.fit(&Windows::new(&refs, 3)).expect("fit");
        assert_eq!(a, KMeans::fit(&refs, 3, &p).expect("fit"));
    }

    #[test]
    fn bad_data_are_errors() {
        let w: &[Symbol] = &[0, 1];
        assert_eq!(
            KMeans::fit(&[w], 0, &KMeansParams::default()),
            Err(KMeansError::NoSymbols)
        );
        assert_eq!(
            KMeans::fit(&[&[]], 3, &KMeansParams::default()),
            Err(KMeansError::NoWindows)
        );
    }
}
