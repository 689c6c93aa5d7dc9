//! Binary C-SVC with an RBF kernel, trained by SMO as libsvm (and so scikit-learn's `SVC`) does.
//!
//! The model is `f(x) = Σ_s a_s exp(−γ‖x_s − x‖²) + b` over the support vectors `x_s`; `f > 0`
//! means attack. That is scikit-learn's sign for classes `[0, 1]` = `[normal, attack]`, so a
//! decision value can be compared with `SVC.decision_function` directly.
//!
//! Training follows libsvm closely on purpose — points grouped normal-first, labels `+1` for
//! normal inside the solver, the same working-set rule, tie-breaking, shrinking schedule and
//! offset — so that on the same standardised data both reach the same solution, not merely one
//! of equal quality (the parity test finds decision values equal to about 1e-11). Features are
//! expected to be standardised ([`crate::scaler::StandardScaler`]): γ is meaningful only on a known
//! scale.
//!
//! Prediction cost is one exp and one dot product per support vector. The squared norms of the
//! support vectors are precomputed (`‖x_s − x‖² = ‖x_s‖² + ‖x‖² − 2 x_s·x`), the support vectors
//! are also kept feature-major so the dot products of a block of them vectorise, and the
//! exponentials of a block are taken in one vectorised pass; about 10 ns per support vector
//! for 20 features on one core.

use serde::{Deserialize, Serialize};

use super::kernel::{dot, dots_feature_major, exp_in_place, feature_major, rbf_exponent};
use super::params::{SvmParams, ValidSvmParams};
use super::smo::{solve, SmoProblem};
use crate::dataset::Labelled;
use crate::error::{check_finite, ModelError};
use crate::matrix::Matrix;
use crate::{Fit, RowScorer};

/// A trained RBF support vector machine (normal = class 0, attack = class 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SvmRepr", into = "SvmRepr")]
pub struct Svm {
    gamma: f64,
    support_vectors: Matrix,
    /// `α_s · y_s` with `y = +1` for attack.
    dual_coef: Vec<f64>,
    intercept: f64,
    support_indices: Vec<usize>,
    n_support: [usize; 2],
    iterations: usize,
    converged: bool,
    objective: f64,
    /// `‖x_s‖²` per support vector; derived, so not stored in model files.
    sv_norms: Vec<f64>,
    /// The support vectors feature-major, for the vectorised kernel sum; derived too.
    sv_t: Vec<f64>,
}

/// Stored form of [`Svm`]; checked and completed (norms) when loaded.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SvmRepr {
    gamma: f64,
    support_vectors: Matrix,
    dual_coef: Vec<f64>,
    intercept: f64,
    #[serde(default)]
    support_indices: Vec<usize>,
    n_support: [usize; 2],
    #[serde(default)]
    iterations: usize,
    #[serde(default = "yes")]
    converged: bool,
    #[serde(default)]
    objective: f64,
}

fn yes() -> bool {
    true
}

impl TryFrom<SvmRepr> for Svm {
    type Error = ModelError;

    fn try_from(r: SvmRepr) -> Result<Self, ModelError> {
        let n = r.support_vectors.rows();
        if !(r.gamma.is_finite() && r.gamma > 0.0) {
            return Err(ModelError::Corrupt(format!("gamma {}", r.gamma)));
        }
        if r.dual_coef.len() != n || r.n_support[0] + r.n_support[1] != n {
            return Err(ModelError::Corrupt(format!(
                "{n} support vectors, {} coefficients, n_support {:?}",
                r.dual_coef.len(),
                r.n_support
            )));
        }
        if !r.support_indices.is_empty() && r.support_indices.len() != n {
            return Err(ModelError::Corrupt("support_indices length".into()));
        }
        check_finite(&r.support_vectors)?;
        if !r.intercept.is_finite() || r.dual_coef.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::Corrupt("non-finite coefficient".into()));
        }
        let sv_norms = r.support_vectors.iter_rows().map(|s| dot(s, s)).collect();
        let sv_t = feature_major(r.support_vectors.as_slice(), r.support_vectors.cols());
        Ok(Svm {
            gamma: r.gamma,
            support_vectors: r.support_vectors,
            dual_coef: r.dual_coef,
            intercept: r.intercept,
            support_indices: r.support_indices,
            n_support: r.n_support,
            iterations: r.iterations,
            converged: r.converged,
            objective: r.objective,
            sv_norms,
            sv_t,
        })
    }
}

impl From<Svm> for SvmRepr {
    fn from(m: Svm) -> Self {
        SvmRepr {
            gamma: m.gamma,
            support_vectors: m.support_vectors,
            dual_coef: m.dual_coef,
            intercept: m.intercept,
            support_indices: m.support_indices,
            n_support: m.n_support,
            iterations: m.iterations,
            converged: m.converged,
            objective: m.objective,
        }
    }
}

impl Fit<Labelled<'_>> for ValidSvmParams {
    type Model = Svm;
    type Error = ModelError;

    /// Trains on the rows labelled by the targets (`true` = attack).
    ///
    /// Errors: no rows, labels of another length, a single class, or a non-finite value (named
    /// by row and column).
    fn fit(&self, data: &Labelled<'_>) -> Result<Svm, ModelError> {
        Svm::train_checked(data.records, data.targets, self.params())
    }
}

impl Svm {
    /// Trains on rows of `x` labelled by `y` (`true` = attack): [`Fit::fit`] of `params` on
    /// [`Labelled`] `(x, y)`.
    ///
    /// Errors: an invalid setting, no rows, labels of another length, a single class, or a
    /// non-finite value (named by row and column).
    pub fn train(x: &Matrix, y: &[bool], params: &SvmParams) -> Result<Svm, ModelError> {
        params.fit(&Labelled::new(x, y))
    }

    fn train_checked(x: &Matrix, y: &[bool], params: &SvmParams) -> Result<Svm, ModelError> {
        if x.is_empty() {
            return Err(ModelError::Empty);
        }
        if x.rows() != y.len() {
            return Err(ModelError::LengthMismatch {
                rows: x.rows(),
                labels: y.len(),
            });
        }
        if y.iter().all(|&a| a) {
            return Err(ModelError::OneClass("attack"));
        }
        if y.iter().all(|&a| !a) {
            return Err(ModelError::OneClass("normal"));
        }
        check_finite(x)?;

        // libsvm (as scikit-learn calls it) lists class 0 first and gives it y = +1; doing the
        // same makes ties, and so the whole optimisation path, identical.
        let order: Vec<usize> = (0..y.len())
            .filter(|&i| !y[i])
            .chain((0..y.len()).filter(|&i| y[i]))
            .collect();
        let grouped = x.select_rows(&order);
        let positive: Vec<bool> = order.iter().map(|&i| !y[i]).collect();
        let max_iter = if params.max_iter == 0 {
            usize::MAX
        } else {
            params.max_iter
        };
        let sol = solve(&SmoProblem {
            x: grouped.as_slice(),
            d: x.cols(),
            positive: &positive,
            c_pos: params.c * params.weight_normal,
            c_neg: params.c * params.weight_attack,
            gamma: params.gamma,
            tol: params.tol,
            cache_bytes: params.cache_mb * 1024.0 * 1024.0,
            shrinking: params.shrinking,
            max_iter,
        });

        let mut support_vectors = Matrix::with_capacity(x.cols(), 0);
        let (mut dual_coef, mut support_indices) = (Vec::new(), Vec::new());
        let mut n_support = [0usize; 2];
        for (pos, &orig) in order.iter().enumerate() {
            let a = sol.alpha[pos];
            if a > 0.0 {
                support_vectors.push_row(x.row(orig))?;
                dual_coef.push(if y[orig] { a } else { -a });
                support_indices.push(orig);
                n_support[usize::from(y[orig])] += 1;
            }
        }
        let sv_norms = support_vectors.iter_rows().map(|s| dot(s, s)).collect();
        let sv_t = feature_major(support_vectors.as_slice(), support_vectors.cols());
        Ok(Svm {
            gamma: params.gamma,
            support_vectors,
            dual_coef,
            // libsvm's f = Σ α y K − ρ is positive for class 0; flipping the sign gives +ρ.
            intercept: sol.rho,
            support_indices,
            n_support,
            iterations: sol.iterations,
            converged: sol.converged,
            objective: sol.objective,
            sv_norms,
            sv_t,
        })
    }

    /// Decision value `f(x)`: positive = attack, larger = farther on the attack side; NaN when
    /// `x` holds a non-finite value.
    ///
    /// # Panics
    /// If `x` does not have as many features as the training rows.
    pub fn decision(&self, x: &[f64]) -> f64 {
        assert_eq!(
            x.len(),
            self.support_vectors.cols(),
            "feature count vs trained model"
        );
        let xx = dot(x, x);
        if !xx.is_finite() {
            return f64::NAN;
        }
        // Blocks of support vectors: dot products, exponents, one exp pass, weighted sum.
        const BLOCK: usize = 64;
        let n_sv = self.dual_coef.len();
        let mut buf = [0.0f64; BLOCK];
        let mut sum = 0.0;
        for start in (0..n_sv).step_by(BLOCK) {
            let end = (start + BLOCK).min(n_sv);
            let buf = &mut buf[..end - start];
            dots_feature_major(&self.sv_t, n_sv, start, x, buf);
            for (b, &norm) in buf.iter_mut().zip(&self.sv_norms[start..end]) {
                *b = rbf_exponent(self.gamma, norm, xx, *b);
            }
            exp_in_place(buf);
            sum += buf
                .iter()
                .zip(&self.dual_coef[start..end])
                .map(|(k, c)| k * c)
                .sum::<f64>();
        }
        sum + self.intercept
    }

    /// Decision values of every row of `x`.
    ///
    /// # Panics
    /// If `x` has the wrong number of columns.
    pub fn decision_matrix(&self, x: &Matrix) -> Vec<f64> {
        x.iter_rows().map(|r| self.decision(r)).collect()
    }

    /// Whether `x` is classified as attack. A decision value of exactly 0 counts as attack,
    /// as in libsvm's vote.
    ///
    /// # Panics
    /// If `x` has the wrong number of features.
    pub fn predict(&self, x: &[f64]) -> bool {
        self.decision(x) >= 0.0
    }

    /// [`Svm::predict`] for every row of `x`.
    ///
    /// # Panics
    /// If `x` has the wrong number of columns.
    pub fn predict_matrix(&self, x: &Matrix) -> Vec<bool> {
        x.iter_rows().map(|r| self.predict(r)).collect()
    }

    /// Number of support vectors.
    pub fn n_support(&self) -> usize {
        self.dual_coef.len()
    }

    /// Support vectors per class, `[normal, attack]` (scikit-learn's `n_support_`).
    pub fn n_support_per_class(&self) -> [usize; 2] {
        self.n_support
    }

    /// The support vectors, one per row, normal ones first.
    pub fn support_vectors(&self) -> &Matrix {
        &self.support_vectors
    }

    /// Indices of the support vectors in the training matrix.
    pub fn support_indices(&self) -> &[usize] {
        &self.support_indices
    }

    /// `α_s y_s` per support vector with `y = +1` for attack (scikit-learn's `dual_coef_`).
    pub fn dual_coef(&self) -> &[f64] {
        &self.dual_coef
    }

    /// The offset `b` (scikit-learn's `intercept_`).
    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// The RBF width the model was trained with.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.support_vectors.cols()
    }

    /// SMO iterations used in training.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// False when training stopped at `max_iter` before meeting the tolerance.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// Final dual objective `½ αᵀQα − Σα` (lower is better; libsvm prints it as `obj`).
    pub fn objective(&self) -> f64 {
        self.objective
    }
}

impl RowScorer for Svm {
    /// The decision value [`Svm::decision`]: positive on the attack side of the boundary, so
    /// higher is more attack-like (the threshold of a trained detector is 0).
    fn score_row(&self, row: &[f64]) -> f64 {
        self.decision(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn params(c: f64, gamma: f64) -> SvmParams {
        SvmParams {
            c,
            gamma,
            ..SvmParams::default()
        }
    }

    /// Two Gaussian classes, `spread` apart along every axis, noise 1.
    fn blobs(n: usize, d: usize, spread: f64, seed: u64) -> (Matrix, Vec<bool>) {
        let mut rng = Rng::seeded(seed);
        let mut x = Matrix::new(d);
        let mut y = Vec::new();
        for i in 0..n {
            let attack = i % 3 == 0;
            let shift = if attack { spread / 2.0 } else { -spread / 2.0 };
            let row: Vec<f64> = (0..d).map(|_| rng.normal() + shift).collect();
            x.push_row(&row).expect("row");
            y.push(attack);
        }
        (x, y)
    }

    #[test]
    fn two_points_match_the_hand_solved_dual() {
        // One normal point at 0, one attack at 1; K12 = k = exp(−γ). The dual has α1 = α2 = a
        // and objective a²(1 − k) − 2a, minimised at a = 1/(1 − k); by symmetry b = 0 and the
        // decision is ∓1 at the two points (both on the margin).
        let x = Matrix::from_rows(vec![vec![1.0], vec![0.0]]).expect("matrix");
        let y = [true, false];
        let k = (-0.5f64).exp();
        let a = 1.0 / (1.0 - k);
        let m = Svm::train(&x, &y, &params(10.0, 0.5)).expect("train");
        assert_eq!(m.n_support_per_class(), [1, 1]);
        assert_eq!(m.support_indices(), &[1, 0], "normal first");
        assert!((m.dual_coef()[0] + a).abs() < 1e-6, "{:?}", m.dual_coef());
        assert!((m.dual_coef()[1] - a).abs() < 1e-6);
        assert!(m.intercept().abs() < 1e-6);
        assert!((m.decision(&[0.0]) + 1.0).abs() < 1e-6);
        assert!((m.decision(&[1.0]) - 1.0).abs() < 1e-6);
        assert!((m.objective() - (a * a * (1.0 - k) - 2.0 * a)).abs() < 1e-6);
        // With C = 1 < a both multipliers sit at the bound: decision ±(1 − k).
        let m = Svm::train(&x, &y, &params(1.0, 0.5)).expect("train");
        assert_eq!(m.dual_coef(), &[-1.0, 1.0]);
        assert!((m.decision(&[0.0]) + (1.0 - k)).abs() < 1e-6);
        assert!(m.converged());
    }

    #[test]
    fn separable_blobs_are_classified_with_few_support_vectors() {
        let (x, y) = blobs(120, 2, 8.0, 3);
        // A wide kernel and a hard margin: close to a linear SVM, which needs 2–3 points.
        let m = Svm::train(&x, &y, &params(100.0, 0.01)).expect("train");
        assert_eq!(m.predict_matrix(&x), y);
        assert!(m.n_support() <= 5, "{} support vectors", m.n_support());
        // The margin points have |f| ≈ 1; everything else lies beyond.
        for (r, &label) in x.iter_rows().zip(&y) {
            let f = m.decision(r);
            assert!(if label { f } else { -f } > 1.0 - 2e-3, "{f}");
        }
    }

    #[test]
    fn rbf_solves_xor() {
        let mut rng = Rng::seeded(9);
        let mut x = Matrix::new(2);
        let mut y = Vec::new();
        for i in 0..200 {
            let (sx, sy) = ([-1.0, 1.0][i % 2], [-1.0, 1.0][(i / 2) % 2]);
            let row = [sx + 0.25 * rng.normal(), sy + 0.25 * rng.normal()];
            x.push_row(&row).expect("row");
            y.push(sx * sy > 0.0);
        }
        let m = Svm::train(&x, &y, &params(10.0, 1.0)).expect("train");
        assert_eq!(m.predict_matrix(&x), y);
        assert!(m.predict(&[1.0, 1.0]) && m.predict(&[-1.0, -1.0]));
        assert!(!m.predict(&[1.0, -1.0]) && !m.predict(&[-1.0, 1.0]));
    }

    #[test]
    fn solution_meets_kkt_conditions() {
        // Overlapping classes: free and bounded multipliers both occur.
        let (x, y) = blobs(300, 5, 1.5, 4);
        let p = params(2.0, 0.2);
        let m = Svm::train(&x, &y, &p).expect("train");
        let alpha_of = |i: usize| {
            m.support_indices()
                .iter()
                .position(|&s| s == i)
                .map_or(0.0, |k| m.dual_coef()[k].abs())
        };
        let sum: f64 = m.dual_coef().iter().sum();
        assert!(sum.abs() < 1e-9, "Σ α y = {sum}");
        let (mut free, mut bounded) = (0, 0);
        for (i, (r, &label)) in x.iter_rows().zip(&y).enumerate() {
            let margin = if label { 1.0 } else { -1.0 } * m.decision(r);
            let a = alpha_of(i);
            // The stopping rule bounds every violation by the tolerance (plus f32 rounding).
            let slack = 2e-3;
            if a == 0.0 {
                assert!(margin >= 1.0 - slack, "α = 0 but y·f = {margin}");
            } else if a >= p.c {
                bounded += 1;
                assert!(margin <= 1.0 + slack, "α = C but y·f = {margin}");
            } else {
                free += 1;
                assert!((margin - 1.0).abs() <= slack, "free α but y·f = {margin}");
            }
        }
        assert!(free > 0 && bounded > 0, "free {free}, bounded {bounded}");
    }

    #[test]
    fn cache_size_and_shrinking_do_not_change_the_answer() {
        let (x, y) = blobs(400, 6, 1.0, 5);
        let big = Svm::train(&x, &y, &params(5.0, 0.3)).expect("train");
        // A tiny cache keeps only two columns: every eviction and reordering path runs, and
        // since the kernel values are the same the optimisation path is too.
        let tiny = SvmParams {
            cache_mb: 1e-9,
            ..params(5.0, 0.3)
        };
        let small = Svm::train(&x, &y, &tiny).expect("train");
        assert_eq!(big.dual_coef(), small.dual_coef());
        assert_eq!(big.intercept(), small.intercept());
        assert_eq!(big.iterations(), small.iterations());
        // Without shrinking the path differs but the solution is the same to the tolerance.
        let plain = SvmParams {
            shrinking: false,
            ..params(5.0, 0.3)
        };
        let plain = Svm::train(&x, &y, &plain).expect("train");
        let worst = x
            .iter_rows()
            .map(|r| (big.decision(r) - plain.decision(r)).abs())
            .fold(0.0, f64::max);
        assert!(worst < 5e-3, "max decision difference {worst}");
        assert!((big.objective() - plain.objective()).abs() < 1e-3 * big.objective().abs());
    }

    #[test]
    fn attack_weight_moves_the_boundary_towards_normal() {
        let (x, y) = blobs(300, 3, 1.0, 6);
        let plain = Svm::train(&x, &y, &params(1.0, 0.3)).expect("train");
        let heavy = SvmParams {
            weight_attack: 5.0,
            ..params(1.0, 0.3)
        };
        let heavy = Svm::train(&x, &y, &heavy).expect("train");
        let count = |m: &Svm| m.predict_matrix(&x).iter().filter(|&&a| a).count();
        assert!(
            count(&heavy) > count(&plain),
            "{} vs {}",
            count(&heavy),
            count(&plain)
        );
    }

    #[test]
    fn contradictory_duplicates_still_converge() {
        // The same point labelled both ways: the pair's curvature is 0 (floored at TAU), the
        // step is clipped to the box, and both multipliers end at C.
        let x = Matrix::from_rows(vec![vec![1.0, 2.0], vec![1.0, 2.0], vec![-3.0, 0.0]])
            .expect("matrix");
        let m = Svm::train(&x, &[true, false, false], &params(1.0, 0.5)).expect("train");
        assert!(m.converged());
        assert!(!m.predict(&[-3.0, 0.0]));
        assert!(m.decision(&[f64::NAN, 0.0]).is_nan());
    }

    #[test]
    fn iteration_limit_is_reported() {
        let (x, y) = blobs(200, 3, 1.0, 7);
        let p = SvmParams {
            max_iter: 5,
            ..params(1.0, 0.3)
        };
        let m = Svm::train(&x, &y, &p).expect("train");
        assert!(!m.converged());
        assert_eq!(m.iterations(), 5);
    }

    #[test]
    fn rejects_bad_input() {
        let x = Matrix::from_rows(vec![vec![0.0], vec![1.0]]).expect("matrix");
        let p = SvmParams::default();
        assert_eq!(Svm::train(&Matrix::new(1), &[], &p), Err(ModelError::Empty));
        assert_eq!(
            Svm::train(&x, &[true], &p),
            Err(ModelError::LengthMismatch { rows: 2, labels: 1 })
        );
        assert_eq!(
            Svm::train(&x, &[true, true], &p),
            Err(ModelError::OneClass("attack"))
        );
        assert_eq!(
            Svm::train(&x, &[false, false], &p),
            Err(ModelError::OneClass("normal"))
        );
        let bad = Matrix::from_rows(vec![vec![0.0], vec![f64::NAN]]).expect("matrix");
        assert!(matches!(
            Svm::train(&bad, &[true, false], &p),
            Err(ModelError::NonFinite { row: 1, col: 0, .. })
        ));
        for (name, q) in [
            ("c", SvmParams { c: 0.0, ..p }),
            (
                "gamma",
                SvmParams {
                    gamma: f64::NAN,
                    ..p
                },
            ),
            ("tol", SvmParams { tol: -1.0, ..p }),
            (
                "weight_attack",
                SvmParams {
                    weight_attack: f64::INFINITY,
                    ..p
                },
            ),
        ] {
            match Svm::train(&x, &[true, false], &q) {
                Err(ModelError::InvalidParam { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn json_round_trip_scores_identically() {
        let (x, y) = blobs(100, 4, 2.0, 8);
        let m = Svm::train(&x, &y, &params(1.0, 0.25)).expect("train");
        let text = serde_json::to_string(&m).expect("json");
        let back: Svm = serde_json::from_str(&text).expect("parse");
        for r in x.iter_rows() {
            assert_eq!(back.decision(r).to_bits(), m.decision(r).to_bits());
        }
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("value");
        v["dual_coef"] = serde_json::json!([1.0]);
        assert!(serde_json::from_value::<Svm>(v).is_err());
    }
}
