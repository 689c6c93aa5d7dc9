//! Hyper-parameters of the models, as builders with documented defaults (linfa style): set what
//! you need, then [`ParamGuard::check`] (or [`Fit::fit`](crate::Fit::fit), which checks first)
//! validates them.

use serde::{Deserialize, Serialize};

use super::errors::HmmError;
use crate::ParamGuard;

/// Hyper-parameters of [`CategoricalHmm`](super::CategoricalHmm) training (Baum–Welch).
///
/// | parameter | default | meaning |
/// | --- | --- | --- |
/// | `n_states` | 3 | hidden states |
/// | `max_iter` | 100 | EM iterations per restart at most (hmmlearn's `n_iter`) |
/// | `tol` | 1e-2 | stop when the total log-likelihood gains less than this in one iteration (hmmlearn's `tol`); a negative value (or `-inf`) never stops early |
/// | `n_restarts` | 3 | random initialisations; the best final log-likelihood wins |
/// | `seed` | 0 | seed of the random initialisations |
/// | `emission_floor` | 1e-6 | least emission probability after fitting (rows renormalised), so unseen symbols get a large but finite score |
/// | `dedup` | true | weight identical sequences by their count instead of visiting each (exact, faster) |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CategoricalHmmParams {
    pub(crate) n_states: usize,
    pub(crate) max_iter: usize,
    pub(crate) tol: f64,
    pub(crate) n_restarts: usize,
    pub(crate) seed: u64,
    pub(crate) emission_floor: f64,
    pub(crate) dedup: bool,
}

impl Default for CategoricalHmmParams {
    fn default() -> Self {
        CategoricalHmmParams {
            n_states: 3,
            max_iter: 100,
            tol: 1e-2,
            n_restarts: 3,
            seed: 0,
            emission_floor: 1e-6,
            dedup: true,
        }
    }
}

/// [`CategoricalHmmParams`] that passed [`CategoricalHmmParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCategoricalHmmParams(pub(crate) CategoricalHmmParams);

impl ValidCategoricalHmmParams {
    /// The checked parameters.
    pub fn params(&self) -> &CategoricalHmmParams {
        &self.0
    }
}

impl CategoricalHmmParams {
    /// The defaults (see the type's table).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of hidden states.
    pub fn n_states(mut self, n: usize) -> Self {
        self.n_states = n;
        self
    }

    /// EM iterations per restart at most.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }

    /// Convergence threshold on the gain of the total log-likelihood.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Number of random initialisations.
    pub fn n_restarts(mut self, n: usize) -> Self {
        self.n_restarts = n;
        self
    }

    /// Seed of the random initialisations.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Least emission probability of the fitted model.
    pub fn emission_floor(mut self, floor: f64) -> Self {
        self.emission_floor = floor;
        self
    }

    /// Whether identical training sequences are merged into one weighted sequence.
    pub fn dedup(mut self, dedup: bool) -> Self {
        self.dedup = dedup;
        self
    }

    /// Validates the parameters.
    pub fn check(&self) -> Result<ValidCategoricalHmmParams, HmmError> {
        if self.n_states == 0 {
            return Err(HmmError::ZeroStates);
        }
        if self.max_iter == 0 {
            return Err(HmmError::ZeroIterations);
        }
        if self.tol.is_nan() {
            return Err(HmmError::InvalidTol);
        }
        if self.n_restarts == 0 {
            return Err(HmmError::ZeroRestarts);
        }
        if !(self.emission_floor > 0.0 && self.emission_floor < 1.0) {
            return Err(HmmError::InvalidEmissionFloor(self.emission_floor));
        }
        Ok(ValidCategoricalHmmParams(self.clone()))
    }
}

/// Hyper-parameters of [`MultinomialMixture`](super::MultinomialMixture) training (EM).
///
/// | parameter | default | meaning |
/// | --- | --- | --- |
/// | `n_components` | 8 | mixture components (count profiles) |
/// | `max_iter` | 200 | EM iterations per restart at most |
/// | `tol` | 1e-3 | stop when the total log-likelihood gains less than this in one iteration; negative never stops early |
/// | `n_restarts` | 3 | initialisations (k-means++-like seeding); the best final log-likelihood wins |
/// | `seed` | 0 | seed of the initialisations |
/// | `alpha` | 0.1 | additive (Dirichlet) smoothing of each component's class probabilities, in pseudo-counts |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultinomialMixtureParams {
    pub(crate) n_components: usize,
    pub(crate) max_iter: usize,
    pub(crate) tol: f64,
    pub(crate) n_restarts: usize,
    pub(crate) seed: u64,
    pub(crate) alpha: f64,
}

impl Default for MultinomialMixtureParams {
    fn default() -> Self {
        MultinomialMixtureParams {
            n_components: 8,
            max_iter: 200,
            tol: 1e-3,
            n_restarts: 3,
            seed: 0,
            alpha: 0.1,
        }
    }
}

/// [`MultinomialMixtureParams`] that passed [`MultinomialMixtureParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidMultinomialMixtureParams(pub(crate) MultinomialMixtureParams);

impl ValidMultinomialMixtureParams {
    /// The checked parameters.
    pub fn params(&self) -> &MultinomialMixtureParams {
        &self.0
    }
}

impl MultinomialMixtureParams {
    /// The defaults (see the type's table).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of mixture components.
    pub fn n_components(mut self, n: usize) -> Self {
        self.n_components = n;
        self
    }

    /// EM iterations per restart at most.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }

    /// Convergence threshold on the gain of the total log-likelihood.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Number of initialisations.
    pub fn n_restarts(mut self, n: usize) -> Self {
        self.n_restarts = n;
        self
    }

    /// Seed of the initialisations.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Additive smoothing, in pseudo-counts per class and component.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Validates the parameters.
    pub fn check(&self) -> Result<ValidMultinomialMixtureParams, HmmError> {
        if self.n_components == 0 {
            return Err(HmmError::ZeroComponents);
        }
        if self.max_iter == 0 {
            return Err(HmmError::ZeroIterations);
        }
        if self.tol.is_nan() {
            return Err(HmmError::InvalidTol);
        }
        if self.n_restarts == 0 {
            return Err(HmmError::ZeroRestarts);
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(HmmError::InvalidAlpha(self.alpha));
        }
        Ok(ValidMultinomialMixtureParams(self.clone()))
    }
}

impl ParamGuard for CategoricalHmmParams {
    type Checked = ValidCategoricalHmmParams;
    type Error = HmmError;

    /// [`CategoricalHmmParams::check`].
    fn check(&self) -> Result<ValidCategoricalHmmParams, HmmError> {
        CategoricalHmmParams::check(self)
    }
}

impl ParamGuard for MultinomialMixtureParams {
    type Checked = ValidMultinomialMixtureParams;
    type Error = HmmError;

    /// [`MultinomialMixtureParams::check`].
    fn check(&self) -> Result<ValidMultinomialMixtureParams, HmmError> {
        MultinomialMixtureParams::check(self)
    }
}

/// Hyper-parameters of [`FlatBoscHmm`](super::FlatBoscHmm): those of the
/// [`CategoricalHmm`](super::CategoricalHmm) trained on the flattened BoSC vectors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlatBoscHmmParams {
    /// The HMM's settings.
    pub hmm: CategoricalHmmParams,
}

impl From<CategoricalHmmParams> for FlatBoscHmmParams {
    fn from(hmm: CategoricalHmmParams) -> Self {
        FlatBoscHmmParams { hmm }
    }
}

/// [`FlatBoscHmmParams`] that passed [`ParamGuard::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidFlatBoscHmmParams(pub(crate) ValidCategoricalHmmParams);

impl ValidFlatBoscHmmParams {
    /// The checked HMM parameters.
    pub fn hmm(&self) -> &ValidCategoricalHmmParams {
        &self.0
    }
}

impl ParamGuard for FlatBoscHmmParams {
    type Checked = ValidFlatBoscHmmParams;
    type Error = HmmError;

    /// The HMM's [`CategoricalHmmParams::check`].
    fn check(&self) -> Result<ValidFlatBoscHmmParams, HmmError> {
        self.hmm.check().map(ValidFlatBoscHmmParams)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(CategoricalHmmParams::new().check().is_ok());
        assert!(MultinomialMixtureParams::new().check().is_ok());
        assert_eq!(CategoricalHmmParams::new().n_states, 3);
        assert!(CategoricalHmmParams::new().tol(-1.0).check().is_ok());
        assert!(CategoricalHmmParams::new()
            .tol(f64::NEG_INFINITY)
            .check()
            .is_ok());
    }

    #[test]
    fn zero_states_is_rejected() {
        let e = CategoricalHmmParams::new().n_states(0).check();
        assert_eq!(e.unwrap_err(), HmmError::ZeroStates);
    }

    #[test]
    fn zero_max_iter_is_rejected() {
        let e = CategoricalHmmParams::new().max_iter(0).check();
        assert_eq!(e.unwrap_err(), HmmError::ZeroIterations);
    }

    #[test]
    fn nan_tol_is_rejected() {
        let e = CategoricalHmmParams::new().tol(f64::NAN).check();
        assert_eq!(e.unwrap_err(), HmmError::InvalidTol);
    }

    #[test]
    fn zero_restarts_is_rejected() {
        let e = CategoricalHmmParams::new().n_restarts(0).check();
        assert_eq!(e.unwrap_err(), HmmError::ZeroRestarts);
    }

    #[test]
    fn emission_floor_out_of_range_is_rejected() {
        for bad in [0.0, -1e-6, 1.0, f64::NAN, f64::INFINITY] {
            let e = CategoricalHmmParams::new().emission_floor(bad).check();
            assert!(
                matches!(e, Err(HmmError::InvalidEmissionFloor(f)) if f.to_bits() == bad.to_bits()),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn mixture_zero_components_is_rejected() {
        let e = MultinomialMixtureParams::new().n_components(0).check();
        assert_eq!(e.unwrap_err(), HmmError::ZeroComponents);
    }

    #[test]
    fn mixture_zero_max_iter_is_rejected() {
        let e = MultinomialMixtureParams::new().max_iter(0).check();
        assert_eq!(e.unwrap_err(), HmmError::ZeroIterations);
    }

    #[test]
    fn mixture_nan_tol_is_rejected() {
        let e = MultinomialMixtureParams::new().tol(f64::NAN).check();
        assert_eq!(e.unwrap_err(), HmmError::InvalidTol);
    }

    #[test]
    fn mixture_zero_restarts_is_rejected() {
        let e = MultinomialMixtureParams::new().n_restarts(0).check();
        assert_eq!(e.unwrap_err(), HmmError::ZeroRestarts);
    }

    #[test]
    fn mixture_bad_alpha_is_rejected() {
        for bad in [0.0, -0.5, f64::NAN, f64::INFINITY] {
            let e = MultinomialMixtureParams::new().alpha(bad).check();
            assert!(
                matches!(e, Err(HmmError::InvalidAlpha(a)) if a.to_bits() == bad.to_bits()),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn param_guard_is_the_inherent_check() {
        let bad = CategoricalHmmParams::new().n_states(0);
        assert_eq!(ParamGuard::check(&bad).unwrap_err(), HmmError::ZeroStates);
        let flat = FlatBoscHmmParams::from(bad);
        assert_eq!(flat.check().unwrap_err(), HmmError::ZeroStates);
        let ok = FlatBoscHmmParams::default().check().unwrap();
        assert_eq!(ok.hmm().params(), &CategoricalHmmParams::new());
        let mix = MultinomialMixtureParams::new().alpha(0.0);
        assert_eq!(
            ParamGuard::check(&mix).unwrap_err(),
            HmmError::InvalidAlpha(0.0)
        );
    }

    #[test]
    fn params_round_trip_through_json() {
        let p = CategoricalHmmParams::new().n_states(5).seed(9);
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<CategoricalHmmParams>(&s).unwrap(), p);
    }
}
