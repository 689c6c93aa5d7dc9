//! Hyper-parameters of the [`Svm`](super::Svm) and their checked form.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::ParamGuard;

/// Settings of the [`Svm`](super::Svm): set the fields (or start from [`SvmParams::default`]), then fit through
/// [`Fit`](crate::Fit), which runs [`ParamGuard::check`] first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SvmParams {
    /// Penalty `C` of a margin violation. Default 1, scikit-learn's.
    pub c: f64,
    /// RBF width `γ` in `exp(−γ‖x − x'‖²)`. Default 0.1: about scikit-learn's `gamma="scale"`
    /// (`1 / n_features` on standardised data) for the ten-odd features of a traffic window.
    /// Tune it with [`super::cv::grid_search`].
    pub gamma: f64,
    /// Stopping tolerance on the KKT gap `m(α) − M(α)`. Default 1e-3, libsvm's.
    pub tol: f64,
    /// Kernel-column cache in MiB (at least two columns are always kept). Default 200,
    /// scikit-learn's; 5 000 training rows need 100 MiB for the whole kernel matrix.
    pub cache_mb: f64,
    /// Shrink the active set during training (faster, same result). Default true.
    pub shrinking: bool,
    /// Multiplier of `C` for normal rows: `C_normal = c · weight_normal`. Default 1.
    pub weight_normal: f64,
    /// Multiplier of `C` for attack rows: `C_attack = c · weight_attack`. Raise it when attacks
    /// are rare and missing one costs more than a false alarm. Default 1.
    pub weight_attack: f64,
    /// Most SMO iterations; 0 means no limit. Default 10 000 000, libsvm's. A model that hit the
    /// limit is still returned, with [`Svm::converged`](super::Svm::converged) false.
    pub max_iter: usize,
}

impl Default for SvmParams {
    fn default() -> Self {
        SvmParams {
            c: 1.0,
            gamma: 0.1,
            tol: 1e-3,
            cache_mb: 200.0,
            shrinking: true,
            weight_normal: 1.0,
            weight_attack: 1.0,
            max_iter: 10_000_000,
        }
    }
}

impl SvmParams {
    /// Checks every setting, naming the first that is out of range.
    pub fn validate(&self) -> Result<(), ModelError> {
        let positive = |name: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ModelError::InvalidParam {
                    name,
                    value: v.to_string(),
                    reason: "must be finite and > 0",
                })
            }
        };
        positive("c", self.c)?;
        positive("gamma", self.gamma)?;
        positive("tol", self.tol)?;
        positive("cache_mb", self.cache_mb)?;
        positive("weight_normal", self.weight_normal)?;
        positive("weight_attack", self.weight_attack)
    }
}

/// [`SvmParams`] that passed [`ParamGuard::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidSvmParams(SvmParams);

impl ValidSvmParams {
    /// The checked settings.
    pub fn params(&self) -> &SvmParams {
        &self.0
    }
}

impl ParamGuard for SvmParams {
    type Checked = ValidSvmParams;
    type Error = ModelError;

    /// [`SvmParams::validate`]: `c`, `gamma`, `tol`, `cache_mb` and the class weights must be
    /// finite and positive (`max_iter` 0 means no limit, `shrinking` is either).
    fn check(&self) -> Result<ValidSvmParams, ModelError> {
        self.validate()?;
        Ok(ValidSvmParams(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(p: SvmParams, name: &'static str, value: &str) {
        assert_eq!(
            p.check(),
            Err(ModelError::InvalidParam {
                name,
                value: value.to_string(),
                reason: "must be finite and > 0",
            })
        );
    }

    #[test]
    fn defaults_are_valid() {
        let p = SvmParams::default();
        assert_eq!(p.check().expect("valid").params(), &p);
        let unlimited = SvmParams {
            max_iter: 0,
            shrinking: false,
            ..p
        };
        assert!(unlimited.check().is_ok());
    }

    #[test]
    fn zero_c_is_rejected() {
        rejected(
            SvmParams {
                c: 0.0,
                ..Default::default()
            },
            "c",
            "0",
        );
    }

    #[test]
    fn negative_c_is_rejected() {
        rejected(
            SvmParams {
                c: -1.0,
                ..Default::default()
            },
            "c",
            "-1",
        );
    }

    #[test]
    fn infinite_c_is_rejected() {
        rejected(
            SvmParams {
                c: f64::INFINITY,
                ..Default::default()
            },
            "c",
            "inf",
        );
    }

    #[test]
    fn nan_gamma_is_rejected() {
        rejected(
            SvmParams {
                gamma: f64::NAN,
                ..Default::default()
            },
            "gamma",
            "NaN",
        );
    }

    #[test]
    fn zero_gamma_is_rejected() {
        rejected(
            SvmParams {
                gamma: 0.0,
                ..Default::default()
            },
            "gamma",
            "0",
        );
    }

    #[test]
    fn negative_tol_is_rejected() {
        rejected(
            SvmParams {
                tol: -1e-3,
                ..Default::default()
            },
            "tol",
            "-0.001",
        );
    }

    #[test]
    fn zero_cache_is_rejected() {
        rejected(
            SvmParams {
                cache_mb: 0.0,
                ..Default::default()
            },
            "cache_mb",
            "0",
        );
    }

    #[test]
    fn zero_normal_weight_is_rejected() {
        rejected(
            SvmParams {
                weight_normal: 0.0,
                ..Default::default()
            },
            "weight_normal",
            "0",
        );
    }

    #[test]
    fn infinite_attack_weight_is_rejected() {
        rejected(
            SvmParams {
                weight_attack: f64::INFINITY,
                ..Default::default()
            },
            "weight_attack",
            "inf",
        );
    }

    #[test]
    fn json_fills_in_defaults_and_rejects_unknown_fields() {
        let p: SvmParams = serde_json::from_str(r#"{"c": 10.0}"#).expect("parse");
        assert_eq!(
            p,
            SvmParams {
                c: 10.0,
                ..Default::default()
            }
        );
        assert!(serde_json::from_str::<SvmParams>(r#"{"C": 10.0}"#).is_err());
    }
}
