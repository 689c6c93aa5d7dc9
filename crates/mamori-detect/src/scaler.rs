//! Per-feature standardisation `z = (x − mean) / scale`, as scikit-learn's `StandardScaler`.
//!
//! The RBF kernel measures plain Euclidean distance, so a feature counted in bytes would drown
//! one counted in packets; standardising first gives every feature the same say. Matching
//! scikit-learn exactly (population variance, the same "is this column constant?" test) lets a
//! model tuned in Python and one trained here see the same inputs.

use serde::{Deserialize, Serialize};

use crate::error::{check_finite, ModelError};
use crate::matrix::Matrix;
use crate::Fit;

/// Settings of a [`StandardScaler`]: there are none (scikit-learn's `with_mean` and `with_std`
/// are always on), so nothing needs checking and [`Fit`] is implemented on this type directly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardScalerParams;

impl Fit<Matrix> for StandardScalerParams {
    type Model = StandardScaler;
    type Error = ModelError;

    /// [`StandardScaler::fit`].
    fn fit(&self, x: &Matrix) -> Result<StandardScaler, ModelError> {
        StandardScaler::fit(x)
    }
}

/// Fitted means and scales of each feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ScalerRepr", into = "ScalerRepr")]
pub struct StandardScaler {
    /// Mean of each feature over the fitting rows.
    pub mean: Vec<f64>,
    /// Population variance of each feature (divided by `n`, not `n − 1`).
    pub var: Vec<f64>,
    /// Divisor of each feature: the standard deviation, or 1 for a constant feature.
    pub scale: Vec<f64>,
}

/// Stored form, checked on load: a hand-edited file must not divide by zero or mix lengths.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScalerRepr {
    mean: Vec<f64>,
    var: Vec<f64>,
    scale: Vec<f64>,
}

impl TryFrom<ScalerRepr> for StandardScaler {
    type Error = ModelError;

    fn try_from(r: ScalerRepr) -> Result<Self, ModelError> {
        let d = r.mean.len();
        if d == 0 || r.var.len() != d || r.scale.len() != d {
            return Err(ModelError::Corrupt(format!(
                "scaler with {} means, {} variances, {} scales",
                d,
                r.var.len(),
                r.scale.len()
            )));
        }
        let bad_scale = r.scale.iter().any(|s| !(s.is_finite() && *s > 0.0));
        if bad_scale || r.mean.iter().chain(&r.var).any(|v| !v.is_finite()) {
            return Err(ModelError::Corrupt("scaler value out of range".into()));
        }
        Ok(StandardScaler {
            mean: r.mean,
            var: r.var,
            scale: r.scale,
        })
    }
}

impl From<StandardScaler> for ScalerRepr {
    fn from(s: StandardScaler) -> Self {
        ScalerRepr {
            mean: s.mean,
            var: s.var,
            scale: s.scale,
        }
    }
}

impl StandardScaler {
    /// Learns mean and scale of every column of `x` (the same as [`Fit::fit`] of
    /// [`StandardScalerParams`] on `x`).
    ///
    /// The variance is the corrected two-pass sum (Chan, Golub & LeVeque 1983), as
    /// scikit-learn computes it; a column whose variance is within that algorithm's rounding
    /// error of zero counts as constant and keeps scale 1, so it maps to 0 instead of blowing
    /// rounding noise up to unit size.
    pub fn fit(x: &Matrix) -> Result<StandardScaler, ModelError> {
        if x.is_empty() {
            return Err(ModelError::Empty);
        }
        check_finite(x)?;
        let (n, d) = (x.rows() as f64, x.cols());
        let mut mean = vec![0.0; d];
        for row in x.iter_rows() {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut sq = vec![0.0; d];
        let mut correction = vec![0.0; d];
        for row in x.iter_rows() {
            for j in 0..d {
                let t = row[j] - mean[j];
                sq[j] += t * t;
                correction[j] += t;
            }
        }
        let var: Vec<f64> = (0..d)
            .map(|j| (sq[j] - correction[j] * correction[j] / n) / n)
            .collect();
        let scale = var
            .iter()
            .zip(&mean)
            .map(|(&v, &m)| {
                let eps = f64::EPSILON;
                let bound = n * eps * v + (n * m * eps).powi(2);
                if v <= bound {
                    1.0
                } else {
                    v.sqrt()
                }
            })
            .collect();
        Ok(StandardScaler { mean, var, scale })
    }

    /// Number of features the scaler was fitted on.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Standardises one row into `out`. Non-finite values pass through as non-finite.
    ///
    /// # Panics
    /// If `row` or `out` does not have [`StandardScaler::n_features`] values.
    pub fn transform_row(&self, row: &[f64], out: &mut [f64]) {
        assert_eq!(
            row.len(),
            self.n_features(),
            "row length vs fitted features"
        );
        assert_eq!(
            out.len(),
            self.n_features(),
            "output length vs fitted features"
        );
        for (((o, x), m), s) in out.iter_mut().zip(row).zip(&self.mean).zip(&self.scale) {
            *o = (x - m) / s;
        }
    }

    /// Standardises every row of `x`.
    ///
    /// # Panics
    /// If `x` does not have [`StandardScaler::n_features`] columns.
    pub fn transform(&self, x: &Matrix) -> Matrix {
        let mut out = x.clone();
        let mut buf = vec![0.0; x.cols()];
        for i in 0..x.rows() {
            self.transform_row(x.row(i), &mut buf);
            out.row_mut(i).copy_from_slice(&buf);
        }
        out
    }

    /// [`StandardScaler::fit`] then [`StandardScaler::transform`] on the same rows.
    pub fn fit_transform(x: &Matrix) -> Result<(StandardScaler, Matrix), ModelError> {
        let s = StandardScaler::fit(x)?;
        let t = s.transform(x);
        Ok((s, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_values() {
        // Column 0: 1, 2, 3, 6 → mean 3, population variance (4+1+0+9)/4 = 3.5.
        // Column 1: constant 7 → scale 1, maps to 0.
        // Column 2: -1, 1, -1, 1 → mean 0, variance 1.
        let x = Matrix::from_rows(vec![
            vec![1.0, 7.0, -1.0],
            vec![2.0, 7.0, 1.0],
            vec![3.0, 7.0, -1.0],
            vec![6.0, 7.0, 1.0],
        ])
        .expect("matrix");
        let (s, z) = StandardScaler::fit_transform(&x).expect("fit");
        assert_eq!(s.mean, vec![3.0, 7.0, 0.0]);
        assert_eq!(s.var, vec![3.5, 0.0, 1.0]);
        assert_eq!(s.scale, vec![3.5f64.sqrt(), 1.0, 1.0]);
        let sd = 3.5f64.sqrt();
        assert!((z.row(0)[0] + 2.0 / sd).abs() < 1e-15);
        assert!((z.row(3)[0] - 3.0 / sd).abs() < 1e-15);
        assert_eq!(z.row(2)[1], 0.0);
        assert_eq!(z.row(1)[2], 1.0);
    }

    #[test]
    fn fit_trait_is_the_inherent_fit() {
        let x = Matrix::from_rows(vec![vec![1.0, 5.0], vec![2.0, 9.0]]).expect("matrix");
        assert_eq!(
            StandardScalerParams.fit(&x),
            Ok(StandardScaler::fit(&x).expect("fit"))
        );
        assert_eq!(
            StandardScalerParams.fit(&Matrix::new(2)),
            Err(ModelError::Empty)
        );
    }

    #[test]
    fn json_round_trip_and_corrupt_files() {
        let x = Matrix::from_rows(vec![vec![1.0, 5.0], vec![2.0, 9.0]]).expect("matrix");
        let s = StandardScaler::fit(&x).expect("fit");
        let text = serde_json::to_string(&s).expect("json");
        assert_eq!(
            serde_json::from_str::<StandardScaler>(&text).expect("parse"),
            s
        );
        let zero = r#"{"mean":[0.0],"var":[0.0],"scale":[0.0]}"#;
        assert!(serde_json::from_str::<StandardScaler>(zero).is_err());
        let ragged = r#"{"mean":[0.0,1.0],"var":[1.0],"scale":[1.0]}"#;
        assert!(serde_json::from_str::<StandardScaler>(ragged).is_err());
    }

    #[test]
    fn near_constant_column_keeps_unit_scale() {
        // 0.1 is not exactly representable; the variance of three copies is rounding noise.
        let x = Matrix::from_rows(vec![vec![0.1], vec![0.1], vec![0.1]]).expect("matrix");
        let s = StandardScaler::fit(&x).expect("fit");
        assert_eq!(s.scale, vec![1.0]);
    }

    #[test]
    fn non_finite_names_row_and_column() {
        let x = Matrix::from_rows(vec![vec![1.0, 2.0], vec![3.0, f64::NAN]]).expect("matrix");
        let err = StandardScaler::fit(&x).expect_err("NaN must be rejected");
        assert!(matches!(err, ModelError::NonFinite { row: 1, col: 1, .. }));
        assert!(err.to_string().contains("row 1, column 1"), "{err}");
        assert_eq!(
            StandardScaler::fit(&Matrix::new(3)).expect_err("empty"),
            ModelError::Empty
        );
    }
}
