//! Dense layers in `f32`: batched forward and backward passes on `matrixmultiply::sgemm`, and
//! the Adam optimiser. All buffers live in a [`Workspace`] sized once for the largest batch, so a
//! training step allocates nothing.

use crate::matrix::gemm_f32;
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Activation of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `max(0, z)`.
    Relu,
    /// `z`.
    Linear,
    /// `1 / (1 + e^−z)`.
    Sigmoid,
}

impl Activation {
    fn apply(self, z: &mut [f32]) {
        match self {
            Activation::Relu => z.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Linear => {}
            Activation::Sigmoid => z.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        }
    }

    /// Multiplies `d` (∂loss/∂output) by the derivative, written in terms of the output `a`.
    fn backprop(self, a: &[f32], d: &mut [f32]) {
        match self {
            // Branch-free select so the loop vectorises.
            Activation::Relu => d
                .iter_mut()
                .zip(a)
                .for_each(|(d, &a)| *d = if a > 0.0 { *d } else { 0.0 }),
            Activation::Linear => {}
            Activation::Sigmoid => d.iter_mut().zip(a).for_each(|(d, &a)| *d *= a * (1.0 - a)),
        }
    }
}

/// One dense layer: `a = act(x · W + b)`, `W` stored row-major as `n_in × n_out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Dense {
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    pub(crate) w: Vec<f32>,
    pub(crate) b: Vec<f32>,
    pub(crate) act: Activation,
}

/// A stack of dense layers; `code_layer` is the bottleneck whose activations are L1-penalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Network {
    pub(crate) layers: Vec<Dense>,
    pub(crate) code_layer: usize,
}

/// Gradients (or Adam moments) with the network's shapes.
#[derive(Debug, Clone)]
pub(crate) struct Grads {
    w: Vec<Vec<f32>>,
    b: Vec<Vec<f32>>,
}

impl Grads {
    pub(crate) fn zeros(net: &Network) -> Self {
        Grads {
            w: net.layers.iter().map(|l| vec![0.0; l.w.len()]).collect(),
            b: net.layers.iter().map(|l| vec![0.0; l.b.len()]).collect(),
        }
    }
}

/// Buffers for batches of up to `max_batch` rows.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    max_batch: usize,
    acts: Vec<Vec<f32>>,
    d_cur: Vec<f32>,
    d_prev: Vec<f32>,
    /// The batch input in compressed-row form, when sparse enough (`sparse` true).
    sparse: bool,
    sp_ptr: Vec<usize>,
    sp_idx: Vec<usize>,
    sp_val: Vec<f32>,
}

impl Workspace {
    pub(crate) fn new(net: &Network, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let width = net
            .layers
            .iter()
            .map(|l| l.n_in.max(l.n_out))
            .max()
            .unwrap_or(1);
        let n_in = net.layers.first().map_or(1, |l| l.n_in);
        let sparse_cap = max_batch * n_in / SPARSE_DENSITY_INV + 1;
        Workspace {
            max_batch,
            acts: net
                .layers
                .iter()
                .map(|l| vec![0.0; max_batch * l.n_out])
                .collect(),
            d_cur: vec![0.0; max_batch * width],
            d_prev: vec![0.0; max_batch * width],
            sparse: false,
            sp_ptr: Vec::with_capacity(max_batch + 1),
            sp_idx: Vec::with_capacity(sparse_cap),
            sp_val: Vec::with_capacity(sparse_cap),
        }
    }

    pub(crate) fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Builds the compressed rows of `x` (`bs × d`) unless more than 1/`SPARSE_DENSITY_INV` of it
    /// is non-zero; returns whether it did. Never grows the preallocated vectors.
    fn build_sparse(&mut self, x: &[f32], bs: usize, d: usize) -> bool {
        let limit = bs * d / SPARSE_DENSITY_INV;
        self.sp_ptr.clear();
        self.sp_idx.clear();
        self.sp_val.clear();
        self.sp_ptr.push(0);
        for row in x[..bs * d].chunks_exact(d) {
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    if self.sp_idx.len() == limit {
                        self.sparse = false;
                        return false;
                    }
                    self.sp_idx.push(j);
                    self.sp_val.push(v);
                }
            }
            self.sp_ptr.push(self.sp_idx.len());
        }
        self.sparse = true;
        true
    }
}

/// The first layer multiplies by the sparse input row by row when at most 1/4 of it is non-zero
/// (one-hot windows are ~1/K dense): `W · K` fewer multiply-adds than a dense product.
const SPARSE_DENSITY_INV: usize = 4;

/// `y += alpha · x`.
fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y += alpha * x);
}

impl Network {
    /// Glorot-uniform weights (Keras' default: `U(±√(6 / (n_in + n_out)))`), zero biases.
    pub(crate) fn new(
        sizes: &[usize],
        acts: &[Activation],
        code_layer: usize,
        rng: &mut Rng,
    ) -> Self {
        debug_assert_eq!(sizes.len(), acts.len() + 1);
        let layers = sizes
            .windows(2)
            .zip(acts)
            .map(|(io, &act)| {
                let (n_in, n_out) = (io[0], io[1]);
                let limit = (6.0 / (n_in + n_out) as f64).sqrt();
                let w = (0..n_in * n_out)
                    .map(|_| ((2.0 * rng.f64() - 1.0) * limit) as f32)
                    .collect();
                Dense {
                    n_in,
                    n_out,
                    w,
                    b: vec![0.0; n_out],
                    act,
                }
            })
            .collect();
        Network { layers, code_layer }
    }

    pub(crate) fn n_inputs(&self) -> usize {
        self.layers.first().map_or(0, |l| l.n_in)
    }

    pub(crate) fn n_outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.n_out)
    }

    /// Checks shapes (a model file may have been edited) and that every weight is finite.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.layers.is_empty() {
            return Err("network has no layers".into());
        }
        if self.code_layer >= self.layers.len() {
            return Err("bottleneck index past the last layer".into());
        }
        for (i, l) in self.layers.iter().enumerate() {
            if l.n_in == 0 || l.n_out == 0 {
                return Err(format!("layer {i} has a zero dimension"));
            }
            if l.w.len() != l.n_in * l.n_out || l.b.len() != l.n_out {
                return Err(format!(
                    "layer {i}: weight or bias length does not match its shape"
                ));
            }
            if i > 0 && self.layers[i - 1].n_out != l.n_in {
                return Err(format!(
                    "layer {i} input does not match layer {} output",
                    i - 1
                ));
            }
            if !l.w.iter().chain(&l.b).all(|v| v.is_finite()) {
                return Err(format!("layer {i} has non-finite weights"));
            }
        }
        if self.n_inputs() != self.n_outputs() {
            return Err("output width differs from input width".into());
        }
        Ok(())
    }

    pub(crate) fn is_finite(&self) -> bool {
        self.layers
            .iter()
            .all(|l| l.w.iter().chain(&l.b).all(|v| v.is_finite()))
    }

    /// Forward pass of `bs` rows of `x` (`bs × n_inputs`) into the workspace.
    pub(crate) fn forward(&self, x: &[f32], bs: usize, ws: &mut Workspace) {
        assert!(bs <= ws.max_batch, "batch larger than workspace");
        let sparse = ws.build_sparse(x, bs, self.n_inputs());
        let Workspace {
            acts,
            sp_ptr,
            sp_idx,
            sp_val,
            ..
        } = ws;
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, rest) = acts.split_at_mut(l);
            let out = &mut rest[0][..bs * layer.n_out];
            for row in out.chunks_exact_mut(layer.n_out) {
                row.copy_from_slice(&layer.b);
            }
            if l == 0 && sparse {
                let n = layer.n_out;
                for (r, row) in out.chunks_exact_mut(n).enumerate() {
                    for p in sp_ptr[r]..sp_ptr[r + 1] {
                        let j = sp_idx[p];
                        axpy(row, sp_val[p], &layer.w[j * n..(j + 1) * n]);
                    }
                }
            } else {
                let input = if l == 0 { x } else { &before[l - 1][..] };
                gemm_f32(
                    bs,
                    layer.n_in,
                    layer.n_out,
                    input,
                    false,
                    &layer.w,
                    false,
                    out,
                    1.0,
                );
            }
            layer.act.apply(out);
        }
    }

    /// [`Network::forward`] of a single row, as dense matrix-vector products: for one row the
    /// packing a matrix product does costs more than the product (scoring a 40-feature traffic
    /// row took 1.7 µs through `gemm`). Sums in another order, so results agree with `forward`
    /// to rounding, not bit for bit.
    pub(crate) fn forward_row(&self, x: &[f32], ws: &mut Workspace) {
        assert_eq!(x.len(), self.n_inputs(), "row length vs network");
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, rest) = ws.acts.split_at_mut(l);
            let out = &mut rest[0][..layer.n_out];
            out.copy_from_slice(&layer.b);
            let input = if l == 0 {
                x
            } else {
                &before[l - 1][..layer.n_in]
            };
            let n = layer.n_out;
            for (&v, w) in input.iter().zip(layer.w.chunks_exact(n)) {
                // ReLU leaves many zeros; they add nothing.
                if v != 0.0 {
                    axpy(out, v, w);
                }
            }
            layer.act.apply(out);
        }
    }

    /// Reconstruction of the last forward pass (`bs × n_outputs`).
    pub(crate) fn output<'a>(&self, ws: &'a Workspace, bs: usize) -> &'a [f32] {
        let last = ws.acts.len() - 1;
        &ws.acts[last][..bs * self.n_outputs()]
    }

    /// After [`Network::forward`]: (mean squared error, activity term `l1 · Σ|code| / bs`).
    pub(crate) fn loss(&self, x: &[f32], bs: usize, l1: f32, ws: &Workspace) -> (f64, f64) {
        let d = self.n_outputs();
        let y = self.output(ws, bs);
        let sse: f64 = y
            .chunks_exact(d)
            .zip(x.chunks_exact(d))
            .map(|(yr, xr)| sq_err(yr, xr) as f64)
            .sum();
        (sse / (bs * d) as f64, self.activity(bs, l1, ws))
    }

    fn activity(&self, bs: usize, l1: f32, ws: &Workspace) -> f64 {
        if l1 == 0.0 {
            return 0.0;
        }
        let n = self.layers[self.code_layer].n_out;
        let code = &ws.acts[self.code_layer][..bs * n];
        let s: f64 = code
            .chunks_exact(n)
            .map(|r| r.iter().map(|v| v.abs()).sum::<f32>() as f64)
            .sum();
        l1 as f64 * s / bs as f64
    }

    /// After [`Network::forward`]: per-row mean squared reconstruction error of `x`.
    pub(crate) fn row_errors(&self, x: &[f32], bs: usize, ws: &Workspace, out: &mut [f64]) {
        let d = self.n_outputs();
        let y = self.output(ws, bs);
        for ((o, yr), xr) in out.iter_mut().zip(y.chunks_exact(d)).zip(x.chunks_exact(d)) {
            *o = sq_err(yr, xr) as f64 / d as f64;
        }
    }

    /// After [`Network::forward`] on `x`: gradients of `mse(x̂, x) + l1 · Σ|code| / bs` into
    /// `g`; returns the two loss terms.
    pub(crate) fn backward(
        &self,
        x: &[f32],
        bs: usize,
        l1: f32,
        ws: &mut Workspace,
        g: &mut Grads,
    ) -> (f64, f64) {
        let (mse, act) = self.loss(x, bs, l1, ws);
        let d = self.n_outputs();
        let sparse = ws.sparse;
        let Workspace {
            acts,
            d_cur,
            d_prev,
            sp_ptr,
            sp_idx,
            sp_val,
            ..
        } = ws;
        let scale = 2.0 / (bs * d) as f32;
        let y = &acts[acts.len() - 1][..bs * d];
        for ((dc, &yv), &xv) in d_cur[..bs * d].iter_mut().zip(y).zip(x) {
            *dc = scale * (yv - xv);
        }
        for l in (0..self.layers.len()).rev() {
            let layer = &self.layers[l];
            let (n_in, n_out) = (layer.n_in, layer.n_out);
            let a = &acts[l][..bs * n_out];
            let dz = &mut d_cur[..bs * n_out];
            if l == self.code_layer && l1 != 0.0 {
                let c = l1 / bs as f32;
                dz.iter_mut()
                    .zip(a)
                    .for_each(|(d, &a)| *d += c * ((a > 0.0) as i32 - (a < 0.0) as i32) as f32);
            }
            layer.act.backprop(a, dz);
            let gw = &mut g.w[l];
            if l == 0 && sparse {
                gw.fill(0.0);
                for (r, dr) in dz.chunks_exact(n_out).enumerate() {
                    for p in sp_ptr[r]..sp_ptr[r + 1] {
                        let j = sp_idx[p];
                        axpy(&mut gw[j * n_out..(j + 1) * n_out], sp_val[p], dr);
                    }
                }
            } else {
                let input = if l == 0 { x } else { &acts[l - 1][..bs * n_in] };
                gemm_f32(n_in, bs, n_out, input, true, dz, false, gw, 0.0);
            }
            let gb = &mut g.b[l];
            gb.fill(0.0);
            for dr in dz.chunks_exact(n_out) {
                axpy(gb, 1.0, dr);
            }
            if l > 0 {
                gemm_f32(
                    bs,
                    n_out,
                    n_in,
                    dz,
                    false,
                    &layer.w,
                    true,
                    &mut d_prev[..bs * n_in],
                    0.0,
                );
                std::mem::swap(d_cur, d_prev);
            }
        }
        (mse, act)
    }
}

fn sq_err(y: &[f32], x: &[f32]) -> f32 {
    y.iter().zip(x).map(|(&y, &x)| (y - x) * (y - x)).sum()
}

/// Adam with Keras' update (`ε` added to `√v̂·√(1−β2^t)`, i.e. "epsilon hat").
#[derive(Debug, Clone)]
pub(crate) struct Adam {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    t: i32,
    m: Grads,
    v: Grads,
}

impl Adam {
    pub(crate) fn new(net: &Network, lr: f32, beta1: f32, beta2: f32, eps: f32) -> Self {
        Adam {
            lr,
            beta1,
            beta2,
            eps,
            t: 0,
            m: Grads::zeros(net),
            v: Grads::zeros(net),
        }
    }

    pub(crate) fn step(&mut self, net: &mut Network, g: &Grads) {
        self.t = self.t.saturating_add(1);
        let (b1, b2) = (self.beta1 as f64, self.beta2 as f64);
        let alpha =
            (self.lr as f64 * (1.0 - b2.powi(self.t)).sqrt() / (1.0 - b1.powi(self.t))) as f32;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        for (l, layer) in net.layers.iter_mut().enumerate() {
            update(
                &mut layer.w,
                &g.w[l],
                &mut self.m.w[l],
                &mut self.v.w[l],
                b1,
                b2,
                alpha,
                eps,
            );
            update(
                &mut layer.b,
                &g.b[l],
                &mut self.m.b[l],
                &mut self.v.b[l],
                b1,
                b2,
                alpha,
                eps,
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn update(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    b1: f32,
    b2: f32,
    alpha: f32,
    eps: f32,
) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *p -= alpha * *m / (v.sqrt() + eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total_loss(net: &Network, x: &[f32], bs: usize, l1: f32) -> f64 {
        let mut ws = Workspace::new(net, bs);
        net.forward(x, bs, &mut ws);
        let (a, b) = net.loss(x, bs, l1, &ws);
        a + b
    }

    fn param(net: &mut Network, l: usize, is_w: bool, i: usize) -> &mut f32 {
        if is_w {
            &mut net.layers[l].w[i]
        } else {
            &mut net.layers[l].b[i]
        }
    }

    /// Analytic gradients against central differences, for every weight and bias.
    fn check_gradients(acts: &[Activation], x: &[f32], seed: u64) {
        let sizes = [4, 3, 2, 3, 4];
        let bs = x.len() / 4;
        let l1 = 0.05;
        let mut net = Network::new(&sizes, acts, 1, &mut Rng::seeded(seed));
        // Non-zero biases so ReLUs are not all on one side of their kink by construction.
        let mut r = Rng::seeded(seed + 1);
        for l in &mut net.layers {
            l.b.iter_mut()
                .for_each(|b| *b = (r.f64() as f32 - 0.5) * 0.2);
        }
        let mut ws = Workspace::new(&net, bs);
        let mut g = Grads::zeros(&net);
        net.forward(x, bs, &mut ws);
        net.backward(x, bs, l1, &mut ws, &mut g);
        let h = 1e-3f32;
        let mut checked = 0;
        for l in 0..net.layers.len() {
            for (is_w, n) in [
                (true, net.layers[l].w.len()),
                (false, net.layers[l].b.len()),
            ] {
                for i in 0..n {
                    let orig = *param(&mut net, l, is_w, i);
                    *param(&mut net, l, is_w, i) = orig + h;
                    let up = total_loss(&net, x, bs, l1);
                    *param(&mut net, l, is_w, i) = orig - h;
                    let down = total_loss(&net, x, bs, l1);
                    *param(&mut net, l, is_w, i) = orig;
                    let numeric = (up - down) / (2.0 * h as f64);
                    let analytic = if is_w { g.w[l][i] } else { g.b[l][i] } as f64;
                    let tol = 2e-4 + 2e-2 * numeric.abs().max(analytic.abs());
                    assert!(
                        (numeric - analytic).abs() <= tol,
                        "layer {l} {} {i}: numeric {numeric} analytic {analytic}",
                        if is_w { "w" } else { "b" }
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 4 * 3 + 3 + 3 * 2 + 2 + 2 * 3 + 3 + 3 * 4 + 4);
    }

    fn inputs(seed: u64, n: usize) -> Vec<f32> {
        let mut r = Rng::seeded(seed);
        (0..n).map(|_| r.f64() as f32).collect()
    }

    #[test]
    fn backward_matches_finite_differences() {
        use Activation::*;
        // Linear bottleneck (L1 sign term), sigmoid output.
        check_gradients(&[Relu, Linear, Relu, Sigmoid], &inputs(3, 20), 11);
        // All-ReLU encoder/bottleneck, linear output (the default architecture).
        check_gradients(&[Relu, Relu, Relu, Linear], &inputs(4, 20), 12);
    }

    #[test]
    fn sparse_and_dense_first_layer_agree() {
        use Activation::*;
        let net = Network::new(
            &[40, 8, 3, 8, 40],
            &[Relu, Relu, Relu, Linear],
            1,
            &mut Rng::seeded(5),
        );
        let bs = 6;
        let mut sparse_x = vec![0.0f32; bs * 40];
        for r in 0..bs {
            sparse_x[r * 40 + (r * 7) % 40] = 1.0;
            sparse_x[r * 40 + (r * 13 + 5) % 40] = 0.5;
        }
        let mut ws = Workspace::new(&net, bs);
        let mut g_sparse = Grads::zeros(&net);
        net.forward(&sparse_x, bs, &mut ws);
        assert!(ws.sparse);
        let y_sparse = net.output(&ws, bs).to_vec();
        net.backward(&sparse_x, bs, 0.01, &mut ws, &mut g_sparse);
        // Same product through sgemm (force the dense path by marking the input dense).
        ws.sparse = false;
        let mut g_dense = Grads::zeros(&net);
        net.backward(&sparse_x, bs, 0.01, &mut ws, &mut g_dense);
        for (a, b) in g_sparse.w[0].iter().zip(&g_dense.w[0]) {
            assert!((a - b).abs() < 1e-6);
        }
        let mut dense_x = sparse_x.clone();
        dense_x.iter_mut().for_each(|v| *v += 1e-30); // non-zero everywhere: dense path
        net.forward(&dense_x, bs, &mut ws);
        assert!(!ws.sparse);
        for (a, b) in y_sparse.iter().zip(net.output(&ws, bs)) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
