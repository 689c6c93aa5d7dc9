//! Sequential minimal optimisation for the C-SVC dual, the way libsvm solves it.
//!
//! The dual is `min ½ αᵀQα − eᵀα` subject to `yᵀα = 0`, `0 ≤ α_t ≤ C_t`, with
//! `Q_ts = y_t y_s K(x_t, x_s)`. Each iteration picks two variables by the second-order rule of
//! Fan, Chen & Lin (2005, "Working set selection using second order information for training
//! support vector machines", JMLR 6), solves the two-variable problem exactly and updates the
//! gradient `G = Qα − e`. Writing `m(α) = max_{I_up} −y_t G_t` and `M(α) = min_{I_low} −y_t G_t`,
//! the solver stops when `m − M < tol`, the KKT gap libsvm and scikit-learn use.
//!
//! Shrinking (Joachims 1999, in libsvm's variant): every `min(n, 1000)` iterations, variables at
//! a bound whose gradient says they will stay there leave the active set, so selection and
//! gradient updates only touch the rest. `G_bar_t = Σ_{s at upper bound} C_s Q_ts` is kept up to
//! date so the full gradient can be rebuilt; it is rebuilt (and every variable reactivated) once
//! the gap first falls below `10·tol` and again before stopping, so the final check always sees
//! every variable.
//!
//! The solver moves points physically (shrunk ones to the end) so that a kernel column is
//! usually needed only for a prefix of positions; see [`KernelCache`]. Everything that can
//! decide a tie follows libsvm: the grouping of classes, `≥`/`≤` in the selection loops (last
//! index wins), the shrinking period and the unshrink threshold, and `f32` kernel entries.

use super::kernel::{
    dot, dots_feature_major, exp_in_place, feature_major, rbf_exponent, KernelCache,
};

/// Floor of the curvature `K_ii + K_jj − 2K_ij` of a pair, for (near-)duplicate points.
const TAU: f64 = 1e-12;
/// No kernel column to protect from eviction.
const NONE: usize = usize::MAX;

/// A C-SVC dual to solve, with labels `y_t = ±1` and box bound `C_t` per class.
pub(crate) struct SmoProblem<'a> {
    /// Row-major points, `d` values each.
    pub x: &'a [f64],
    /// Features per point.
    pub d: usize,
    /// `true` for `y = +1`.
    pub positive: &'a [bool],
    /// Bound of the `y = +1` variables.
    pub c_pos: f64,
    /// Bound of the `y = −1` variables.
    pub c_neg: f64,
    /// RBF width.
    pub gamma: f64,
    /// Stopping tolerance on `m − M`.
    pub tol: f64,
    /// Kernel cache budget in bytes.
    pub cache_bytes: f64,
    /// Whether to shrink the active set.
    pub shrinking: bool,
    /// Iteration limit (`usize::MAX` for none).
    pub max_iter: usize,
}

/// The dual solution, in the problem's point order.
pub(crate) struct SmoSolution {
    pub alpha: Vec<f64>,
    /// Offset: the decision value is `Σ α_t y_t K(x_t, x) − rho`.
    pub rho: f64,
    pub iterations: usize,
    pub converged: bool,
    /// Dual objective `½ αᵀQα − eᵀα` at the solution.
    pub objective: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Lower,
    Upper,
    Free,
}

struct Solver {
    n: usize,
    gamma: f64,
    tol: f64,
    // Per-position data from here on, permuted together by `Solver::swap`.
    /// The points feature-major (`d` rows of `n`): a kernel column is then `d` passes of
    /// `acc += x_tj · x_ij` over contiguous memory, which vectorise, instead of `n` short dot
    /// products.
    xt: Vec<f64>,
    norm: Vec<f64>,
    y: Vec<f64>,
    c: Vec<f64>,
    qd: Vec<f64>,
    alpha: Vec<f64>,
    g: Vec<f64>,
    g_bar: Vec<f64>,
    status: Vec<Bound>,
    /// Original index of the point at each position.
    perm: Vec<usize>,
    /// Positions `0..active` are in the working problem.
    active: usize,
    cache: KernelCache,
    /// Kernel values of the column being computed, before the cast to `f32`.
    scratch: Vec<f64>,
    /// Features of the point whose column is being computed.
    wi: Vec<f64>,
}

/// Solves the dual from `α = 0`.
pub(crate) fn solve(p: &SmoProblem<'_>) -> SmoSolution {
    let n = p.positive.len();
    let norm: Vec<f64> = p.x.chunks_exact(p.d).map(|r| dot(r, r)).collect();
    let xt = feature_major(p.x, p.d);
    let mut qd: Vec<f64> = norm
        .iter()
        .map(|&nn| rbf_exponent(p.gamma, nn, nn, nn))
        .collect();
    exp_in_place(&mut qd);
    let y: Vec<f64> = p
        .positive
        .iter()
        .map(|&b| if b { 1.0 } else { -1.0 })
        .collect();
    let c = p
        .positive
        .iter()
        .map(|&b| if b { p.c_pos } else { p.c_neg })
        .collect();
    let mut s = Solver {
        n,
        gamma: p.gamma,
        tol: p.tol,
        xt,
        norm,
        y,
        c,
        qd,
        alpha: vec![0.0; n],
        g: vec![-1.0; n],
        g_bar: vec![0.0; n],
        status: vec![Bound::Lower; n],
        perm: (0..n).collect(),
        active: n,
        cache: KernelCache::new(n, p.cache_bytes),
        scratch: vec![0.0; n],
        wi: vec![0.0; p.d],
    };

    let period = n.min(1000);
    let mut counter = period + 1;
    let mut unshrunk = false;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < p.max_iter {
        counter -= 1;
        if counter == 0 {
            counter = period;
            if p.shrinking {
                s.shrink(&mut unshrunk);
            }
        }
        let (i, j) = match s.select() {
            Some(pair) => pair,
            None => {
                // Optimal on the active set: check again with every variable back in.
                s.reconstruct_gradient();
                s.active = n;
                match s.select() {
                    Some(pair) => {
                        counter = 1;
                        pair
                    }
                    None => {
                        converged = true;
                        break;
                    }
                }
            }
        };
        iterations += 1;
        s.update(i, j);
    }
    if !converged {
        s.reconstruct_gradient();
        s.active = n;
    }

    let rho = s.rho();
    let objective = s
        .alpha
        .iter()
        .zip(&s.g)
        .map(|(a, g)| a * (g - 1.0))
        .sum::<f64>()
        / 2.0;
    let mut alpha = vec![0.0; n];
    for (pos, &orig) in s.perm.iter().enumerate() {
        alpha[orig] = s.alpha[pos];
    }
    SmoSolution {
        alpha,
        rho,
        iterations,
        converged,
        objective,
    }
}

impl Solver {
    /// Ensures the cache holds column `i` for positions `0..len`, never evicting `keep`.
    fn load_column(&mut self, i: usize, len: usize, keep: usize) {
        let from = self.cache.prepare(i, len, keep);
        if from >= len {
            return;
        }
        let n = self.n;
        let (ni, yi) = (self.norm[i], self.y[i]);
        // Dot products feature by feature, then exponents, then one vectorised exp pass.
        let buf = &mut self.scratch[from..len];
        for (w, feature) in self.wi.iter_mut().zip(self.xt.chunks_exact(n)) {
            *w = feature[i];
        }
        dots_feature_major(&self.xt, n, from, &self.wi, buf);
        for (b, &nt) in buf.iter_mut().zip(&self.norm[from..len]) {
            *b = rbf_exponent(self.gamma, ni, nt, *b);
        }
        exp_in_place(buf);
        let col = &mut self.cache.column_mut(i)[from..len];
        for ((out, &k), &yt) in col.iter_mut().zip(buf.iter()).zip(&self.y[from..len]) {
            *out = (yi * yt * k) as f32;
        }
    }

    fn bound_of(&self, t: usize) -> Bound {
        if self.alpha[t] >= self.c[t] {
            Bound::Upper
        } else if self.alpha[t] <= 0.0 {
            Bound::Lower
        } else {
            Bound::Free
        }
    }

    /// `t ∈ I_up`: `α_t` may move in the direction that raises `y_t α_t`.
    fn in_up(&self, t: usize) -> bool {
        if self.y[t] > 0.0 {
            self.status[t] != Bound::Upper
        } else {
            self.status[t] != Bound::Lower
        }
    }

    /// `t ∈ I_low`: `α_t` may move in the direction that lowers `y_t α_t`.
    fn in_low(&self, t: usize) -> bool {
        if self.y[t] > 0.0 {
            self.status[t] != Bound::Lower
        } else {
            self.status[t] != Bound::Upper
        }
    }

    /// The WSS 2 pair, or `None` when the active set meets the stopping condition.
    ///
    /// `i` maximises `−y_t G_t` over `I_up` (the most violating first variable); `j` minimises
    /// the second-order estimate `−b²/a` of the objective decrease, with
    /// `b = −y_i G_i + y_t G_t > 0` and `a = K_ii + K_tt − 2K_it`, over `I_low`.
    /// Ties keep the last index for `i` and the last for `j`, as libsvm does, so the two take
    /// the same path on the same data.
    fn select(&mut self) -> Option<(usize, usize)> {
        let mut gmax = f64::NEG_INFINITY;
        let mut first = None;
        for t in 0..self.active {
            if self.in_up(t) {
                let v = -self.y[t] * self.g[t];
                if v >= gmax {
                    gmax = v;
                    first = Some(t);
                }
            }
        }
        let i = first?;
        self.load_column(i, self.active, NONE);
        let qi = self.cache.column(i);
        let yi = self.y[i];
        let mut low_max = f64::NEG_INFINITY;
        let mut best = f64::INFINITY;
        let mut second = None;
        for (t, &q) in qi[..self.active].iter().enumerate() {
            if !self.in_low(t) {
                continue;
            }
            let yg = self.y[t] * self.g[t];
            low_max = low_max.max(yg);
            let b = gmax + yg;
            if b > 0.0 {
                let a = self.qd[i] + self.qd[t] - 2.0 * yi * self.y[t] * f64::from(q);
                let gain = -(b * b) / if a > 0.0 { a } else { TAU };
                if gain <= best {
                    best = gain;
                    second = Some(t);
                }
            }
        }
        if gmax + low_max < self.tol {
            return None;
        }
        second.map(|j| (i, j))
    }

    /// Solves the two-variable subproblem on `(i, j)` and updates `α`, `G` and `G_bar`.
    fn update(&mut self, i: usize, j: usize) {
        let active = self.active;
        self.load_column(i, active, NONE);
        self.load_column(j, active, i);
        let (ci, cj) = (self.c[i], self.c[j]);
        let (old_i, old_j) = (self.alpha[i], self.alpha[j]);
        let (mut ai, mut aj) = (old_i, old_j);
        let qij = f64::from(self.cache.column(i)[j]);
        if self.y[i] != self.y[j] {
            // Moving along α_i − α_j = const: both change by the same step.
            let curv = positive_or_tau(self.qd[i] + self.qd[j] + 2.0 * qij);
            let step = (-self.g[i] - self.g[j]) / curv;
            let diff = ai - aj;
            ai += step;
            aj += step;
            // Clip to the box; the variable that hits a bound is set to it exactly.
            if diff > 0.0 {
                if aj < 0.0 {
                    aj = 0.0;
                    ai = diff;
                }
            } else if ai < 0.0 {
                ai = 0.0;
                aj = -diff;
            }
            if diff > ci - cj {
                if ai > ci {
                    ai = ci;
                    aj = ci - diff;
                }
            } else if aj > cj {
                aj = cj;
                ai = cj + diff;
            }
        } else {
            // Moving along α_i + α_j = const.
            let curv = positive_or_tau(self.qd[i] + self.qd[j] - 2.0 * qij);
            let step = (self.g[i] - self.g[j]) / curv;
            let sum = ai + aj;
            ai -= step;
            aj += step;
            if sum > ci {
                if ai > ci {
                    ai = ci;
                    aj = sum - ci;
                }
            } else if aj < 0.0 {
                aj = 0.0;
                ai = sum;
            }
            if sum > cj {
                if aj > cj {
                    aj = cj;
                    ai = sum - cj;
                }
            } else if ai < 0.0 {
                ai = 0.0;
                aj = sum;
            }
        }
        self.alpha[i] = ai;
        self.alpha[j] = aj;
        let (dai, daj) = (ai - old_i, aj - old_j);
        {
            let (qi, qj) = (self.cache.column(i), self.cache.column(j));
            for (k, g) in self.g[..active].iter_mut().enumerate() {
                *g += f64::from(qi[k]) * dai + f64::from(qj[k]) * daj;
            }
        }
        for t in [i, j] {
            let was_upper = self.status[t] == Bound::Upper;
            self.status[t] = self.bound_of(t);
            let is_upper = self.status[t] == Bound::Upper;
            if was_upper != is_upper {
                let keep = if t == i { j } else { i };
                self.load_column(t, self.n, keep);
                let sign = if is_upper { self.c[t] } else { -self.c[t] };
                let qt = self.cache.column(t);
                for (gb, q) in self.g_bar.iter_mut().zip(qt) {
                    *gb += sign * f64::from(*q);
                }
            }
        }
    }

    /// Whether bounded variable `t` is expected to stay at its bound, given
    /// `gmax1 = m(α)` and `gmax2 = −M(α)`.
    fn shrinkable(&self, t: usize, gmax1: f64, gmax2: f64) -> bool {
        let (y, g) = (self.y[t], self.g[t]);
        match self.status[t] {
            Bound::Upper if y > 0.0 => -g > gmax1,
            Bound::Upper => -g > gmax2,
            Bound::Lower if y > 0.0 => g > gmax2,
            Bound::Lower => g > gmax1,
            Bound::Free => false,
        }
    }

    fn shrink(&mut self, unshrunk: &mut bool) {
        let mut gmax1 = f64::NEG_INFINITY;
        let mut gmax2 = f64::NEG_INFINITY;
        for t in 0..self.active {
            let yg = self.y[t] * self.g[t];
            if self.in_up(t) {
                gmax1 = gmax1.max(-yg);
            }
            if self.in_low(t) {
                gmax2 = gmax2.max(yg);
            }
        }
        if !*unshrunk && gmax1 + gmax2 <= self.tol * 10.0 {
            // Close to the end: give every variable one more chance before shrinking again.
            *unshrunk = true;
            self.reconstruct_gradient();
            self.active = self.n;
        }
        let mut swaps = Vec::new();
        let mut t = 0;
        while t < self.active {
            if self.shrinkable(t, gmax1, gmax2) {
                self.active -= 1;
                while self.active > t && self.shrinkable(self.active, gmax1, gmax2) {
                    self.active -= 1;
                }
                if self.active > t {
                    self.swap(t, self.active);
                    swaps.push((t, self.active));
                }
            }
            t += 1;
        }
        self.cache.swap_many(&swaps);
    }

    /// Recomputes `G` of the inactive variables from `G_bar` and the free variables, which are
    /// all active (only bounded variables are shrunk).
    fn reconstruct_gradient(&mut self) {
        let (a, n) = (self.active, self.n);
        if a == n {
            return;
        }
        for t in a..n {
            self.g[t] = self.g_bar[t] - 1.0;
        }
        let n_free = (0..a).filter(|&t| self.status[t] == Bound::Free).count();
        // Either read the inactive points' columns over the active prefix, or the free points'
        // columns in full, whichever touches fewer kernel entries.
        if n_free * n > 2 * a * (n - a) {
            for t in a..n {
                self.load_column(t, a, NONE);
                let qt = self.cache.column(t);
                let mut sum = 0.0;
                for (s, &q) in qt[..a].iter().enumerate() {
                    if self.status[s] == Bound::Free {
                        sum += self.alpha[s] * f64::from(q);
                    }
                }
                self.g[t] += sum;
            }
        } else {
            for s in 0..a {
                if self.status[s] != Bound::Free {
                    continue;
                }
                self.load_column(s, n, NONE);
                let qs = self.cache.column(s);
                let alpha = self.alpha[s];
                for (g, &q) in self.g[a..n].iter_mut().zip(&qs[a..n]) {
                    *g += alpha * f64::from(q);
                }
            }
        }
    }

    /// Swaps the points at positions `i` and `j` in every per-point array; the caller tells
    /// the cache ([`KernelCache::swap_many`]) before the next column is read.
    fn swap(&mut self, i: usize, j: usize) {
        for feature in self.xt.chunks_exact_mut(self.n) {
            feature.swap(i, j);
        }
        self.norm.swap(i, j);
        self.y.swap(i, j);
        self.c.swap(i, j);
        self.qd.swap(i, j);
        self.alpha.swap(i, j);
        self.g.swap(i, j);
        self.g_bar.swap(i, j);
        self.status.swap(i, j);
        self.perm.swap(i, j);
    }

    /// The offset: the mean of `y_t G_t` over free variables (all equal at the optimum), or the
    /// middle of the interval the bounded variables allow when none is free.
    fn rho(&self) -> f64 {
        let mut upper = f64::INFINITY;
        let mut lower = f64::NEG_INFINITY;
        let (mut sum, mut n_free) = (0.0, 0usize);
        for t in 0..self.active {
            let yg = self.y[t] * self.g[t];
            let positive = self.y[t] > 0.0;
            match self.status[t] {
                Bound::Free => {
                    sum += yg;
                    n_free += 1;
                }
                Bound::Upper if positive => lower = lower.max(yg),
                Bound::Upper => upper = upper.min(yg),
                Bound::Lower if positive => upper = upper.min(yg),
                Bound::Lower => lower = lower.max(yg),
            }
        }
        if n_free > 0 {
            sum / n_free as f64
        } else {
            (upper + lower) / 2.0
        }
    }
}

fn positive_or_tau(a: f64) -> f64 {
    if a > 0.0 {
        a
    } else {
        TAU
    }
}
