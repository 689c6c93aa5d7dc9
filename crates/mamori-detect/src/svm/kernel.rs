//! The RBF kernel and the bounded LRU cache of kernel columns used while training.

/// Dot product with four independent accumulators, so the compiler can keep several
/// multiply-adds in flight (feature vectors are short, a few dozen values).
#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Dot products of `w` with `out.len()` consecutive points stored feature-major:
/// `out[k] = Σ_j xt[j·stride + offset + k] · w[j]`.
///
/// Computing many kernel values against one vector is a matrix-vector product. Feature-major
/// storage turns it into a few passes of multiply-adds over contiguous memory, which the
/// compiler vectorises; four features go into each pass to cut the traffic through `out`.
#[inline]
pub(crate) fn dots_feature_major(
    xt: &[f64],
    stride: usize,
    offset: usize,
    w: &[f64],
    out: &mut [f64],
) {
    let range = offset..offset + out.len();
    out.fill(0.0);
    let mut quads = xt.chunks_exact(4 * stride).zip(w.chunks_exact(4));
    for (q, wq) in &mut quads {
        let (f0, rest) = q.split_at(stride);
        let (f1, rest) = rest.split_at(stride);
        let (f2, f3) = rest.split_at(stride);
        let (w0, w1, w2, w3) = (wq[0], wq[1], wq[2], wq[3]);
        let cols = f0[range.clone()]
            .iter()
            .zip(&f1[range.clone()])
            .zip(&f2[range.clone()])
            .zip(&f3[range.clone()]);
        for (o, (((&v0, &v1), &v2), &v3)) in out.iter_mut().zip(cols) {
            *o += (v0 * w0 + v1 * w1) + (v2 * w2 + v3 * w3);
        }
    }
    let done = w.len() / 4 * 4;
    for (feature, &wj) in xt[done * stride..].chunks_exact(stride).zip(&w[done..]) {
        for (o, &v) in out.iter_mut().zip(&feature[range.clone()]) {
            *o += v * wj;
        }
    }
}

/// Transposes row-major `rows` × `cols` values into feature-major order.
pub(crate) fn feature_major(data: &[f64], cols: usize) -> Vec<f64> {
    let rows = data.len() / cols.max(1);
    let mut xt = vec![0.0; data.len()];
    for (t, row) in data.chunks_exact(cols).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            xt[j * rows + t] = v;
        }
    }
    xt
}

/// The RBF exponent `−γ‖a − b‖²` from the squared norms and the dot product, clamping the
/// tiny negative distances rounding can produce for (nearly) equal points.
#[inline]
pub(crate) fn rbf_exponent(gamma: f64, norm_a: f64, norm_b: f64, dot_ab: f64) -> f64 {
    -gamma * (norm_a + norm_b - 2.0 * dot_ab).max(0.0)
}

/// `2^52 + 2^51`: adding it to a value of magnitude below `2^51` rounds that value to an
/// integer, which then sits in the low bits of the sum's mantissa.
const SHIFTER: f64 = 6_755_399_441_055_744.0;
/// `ln 2` split so that `k · LN2_HI` is exact for the `k` that occur (Cody & Waite reduction).
const LN2_HI: f64 = 0.693_147_180_369_123_8; // bits 0x3FE6_2E42_FEE0_0000
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// `exp(x)` for `x ≤ 0` (and never NaN), written so that a loop over a slice vectorises.
///
/// Kernel evaluation is mostly `exp`, and the C library's is a scalar call. This one reduces
/// `x = k·ln 2 + r` with `|r| ≤ ln 2 / 2`, sums the Taylor series of `e^r` to the `r¹³` term
/// (truncation below 2e-16 relative) and scales by `2^k` through the exponent bits; the error
/// is a few units in the last place. Arguments below −708 are clamped there (`e^−708` ≈ 3e-308,
/// negligible next to any kernel sum), which keeps `2^k` a normal number.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f64) -> f64 {
    let x = x.clamp(-708.0, 0.0);
    let t = x * std::f64::consts::LOG2_E + SHIFTER;
    let k = t - SHIFTER;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0; // 1/13!
    for inv_fact in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + inv_fact;
    }
    // k = bits(t) − bits(SHIFTER); 2^k has exponent field k + 1023.
    let k_bits = t.to_bits().wrapping_sub(SHIFTER.to_bits());
    p * f64::from_bits(k_bits.wrapping_add(1023) << 52)
}

/// Replaces each exponent in `buf` by its exponential.
#[inline]
pub(crate) fn exp_in_place(buf: &mut [f64]) {
    for v in buf {
        *v = exp_nonpositive(*v);
    }
}

/// Sentinel of the LRU list (and "no neighbour").
const NIL: usize = usize::MAX;

/// Columns of the signed kernel matrix `Q_ij = y_i y_j K(x_i, x_j)`, cached by position.
///
/// The solver reorders the training points (shrinking moves inactive ones to the end), and a
/// column is often needed only for the active prefix; so a cached column holds the entries of
/// positions `0..len` and is extended on demand. Entries are `f32`, as in libsvm: half the
/// memory means twice the columns fit, and the rounding (about 1e-7 relative) is far below the
/// 1e-3 stopping tolerance. Least recently used columns are dropped when the budget is spent.
pub(crate) struct KernelCache {
    cols: Vec<Vec<f32>>,
    prev: Vec<usize>,
    next: Vec<usize>,
    /// Most recently used, least recently used.
    head: usize,
    tail: usize,
    /// Entries that may still be allocated.
    free: usize,
}

impl KernelCache {
    /// A cache for `n` points holding at most `budget_bytes` of entries, but always at least
    /// two full columns (the solver needs two at once).
    pub(crate) fn new(n: usize, budget_bytes: f64) -> Self {
        let entries = (budget_bytes / std::mem::size_of::<f32>() as f64).min(usize::MAX as f64);
        KernelCache {
            cols: vec![Vec::new(); n],
            prev: vec![NIL; n],
            next: vec![NIL; n],
            head: NIL,
            tail: NIL,
            free: (entries as usize).max(2 * n),
        }
    }

    fn cached(&self, i: usize) -> bool {
        !self.cols[i].is_empty()
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n] = p;
        }
        self.prev[i] = NIL;
        self.next[i] = NIL;
    }

    fn push_front(&mut self, i: usize) {
        self.prev[i] = NIL;
        self.next[i] = self.head;
        if self.head == NIL {
            self.tail = i;
        } else {
            self.prev[self.head] = i;
        }
        self.head = i;
    }

    fn drop_column(&mut self, i: usize) {
        self.unlink(i);
        self.free += self.cols[i].len();
        self.cols[i] = Vec::new();
    }

    /// Makes room for `needed` more entries, never evicting `keep` (a column in use).
    fn reserve(&mut self, needed: usize, keep: usize) {
        let mut victim = self.tail;
        while self.free < needed && victim != NIL {
            let before = self.prev[victim];
            if victim != keep {
                self.drop_column(victim);
            }
            victim = before;
        }
    }

    /// Makes column `i` valid for positions `0..len` and returns the first position whose
    /// entry the caller must fill (`len` when the column was already long enough).
    pub(crate) fn prepare(&mut self, i: usize, len: usize, keep: usize) -> usize {
        let have = self.cols[i].len();
        if have > 0 {
            self.unlink(i);
        }
        if have < len {
            self.reserve(len - have, keep);
            // Two full columns always fit, so after eviction the room is there.
            self.free = self.free.saturating_sub(len - have);
            let col = &mut self.cols[i];
            col.reserve_exact(len - have);
            col.resize(len, 0.0);
        }
        if !self.cols[i].is_empty() {
            self.push_front(i);
        }
        have
    }

    /// The cached entries of column `i` (after [`KernelCache::prepare`]).
    pub(crate) fn column(&self, i: usize) -> &[f32] {
        &self.cols[i]
    }

    /// Mutable column `i`, for filling after [`KernelCache::prepare`].
    pub(crate) fn column_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.cols[i]
    }

    /// Follows the solver swapping the points at positions `i` and `j`; see
    /// [`KernelCache::swap_many`].
    #[cfg(test)]
    pub(crate) fn swap_positions(&mut self, i: usize, j: usize) {
        self.swap_many(&[(i, j)]);
    }

    /// Follows the solver swapping positions pair by pair, in order: the columns trade places,
    /// and every cached column swaps its two entries. A column long enough to cover the smaller
    /// position but not the larger one is cut back to the smaller position, since the point
    /// now there has no entry yet.
    ///
    /// Shrinking swaps hundreds of pairs at once. Applying the whole list to one column before
    /// moving to the next touches each column's memory once, instead of once per swap.
    pub(crate) fn swap_many(&mut self, pairs: &[(usize, usize)]) {
        for &(i, j) in pairs {
            if i == j {
                continue;
            }
            let (ci, cj) = (self.cached(i), self.cached(j));
            if ci {
                self.unlink(i);
            }
            if cj {
                self.unlink(j);
            }
            self.cols.swap(i, j);
            if cj {
                self.push_front(i);
            }
            if ci {
                self.push_front(j);
            }
        }
        let mut h = self.head;
        while h != NIL {
            let after = self.next[h];
            let col = &mut self.cols[h];
            let mut len = col.len();
            for &(i, j) in pairs {
                let (lo, hi) = (i.min(j), i.max(j));
                if len > hi {
                    col.swap(lo, hi);
                } else if len > lo {
                    len = lo;
                }
            }
            if len == 0 {
                self.drop_column(h);
            } else if len < col.len() {
                self.free += col.len() - len;
                col.truncate(len);
            }
            h = after;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_major_dots_match_row_dots() {
        let (rows, cols) = (11, 7);
        let data: Vec<f64> = (0..rows * cols).map(|v| (v as f64 * 0.37).sin()).collect();
        let w: Vec<f64> = (0..cols).map(|j| j as f64 - 2.5).collect();
        let xt = feature_major(&data, cols);
        let mut out = vec![0.0; 5];
        dots_feature_major(&xt, rows, 3, &w, &mut out);
        for (k, o) in out.iter().enumerate() {
            let row = &data[(3 + k) * cols..(4 + k) * cols];
            assert!((o - dot(row, &w)).abs() < 1e-12);
        }
    }

    #[test]
    fn fast_exp_matches_libm() {
        let mut worst = 0.0f64;
        let mut x = -708.0;
        while x <= 0.0 {
            for v in [x, x * 0.999_999_7, x / 3.0, x * 1e-9] {
                let rel = (exp_nonpositive(v) - v.exp()).abs() / v.exp();
                worst = worst.max(rel);
            }
            x += 0.012_345;
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-0.0), 1.0);
        assert!(exp_nonpositive(-1e6) < 1e-300);
        assert!(exp_nonpositive(f64::NEG_INFINITY) < 1e-300);
        assert_eq!(LN2_HI.to_bits(), 0x3FE6_2E42_FEE0_0000);
        assert_eq!(LN2_HI + LN2_LO, std::f64::consts::LN_2);
    }

    #[test]
    fn lru_evicts_oldest_and_never_the_kept_column() {
        // Budget of exactly two full columns of 3.
        let mut c = KernelCache::new(3, 0.0);
        assert_eq!(c.prepare(0, 3, NIL), 0);
        c.column_mut(0).copy_from_slice(&[1.0, 2.0, 3.0]);
        assert_eq!(c.prepare(1, 3, 0), 0);
        assert_eq!(c.prepare(0, 3, 1), 3, "cached column is reused");
        // Column 1 is now least recent; asking for 2 evicts it.
        assert_eq!(c.prepare(2, 3, 0), 0);
        assert!(c.cached(0) && !c.cached(1) && c.cached(2));
        assert_eq!(c.column(0), &[1.0, 2.0, 3.0]);
    }

    #[test]
    fn swapping_positions_permutes_entries_and_truncates_short_columns() {
        let mut c = KernelCache::new(4, 1e6);
        c.prepare(0, 4, NIL);
        c.column_mut(0).copy_from_slice(&[0.0, 1.0, 2.0, 3.0]);
        c.prepare(3, 2, NIL);
        c.column_mut(3).copy_from_slice(&[30.0, 31.0]);
        c.swap_positions(1, 3);
        // Column of old position 3 is now at 1 and, covering 1 but not 3, is cut to 1 entry.
        assert_eq!(c.column(1), &[30.0]);
        assert_eq!(c.column(0), &[0.0, 3.0, 2.0, 1.0]);
        assert!(!c.cached(3));
    }
}
