//! The one shape every model has (rust-ml/linfa's `ParamGuard` + `Fit`): hyper-parameters are
//! checked into a separate type, fitting a data set gives a separate fitted model, and the model
//! scores windows of class symbols or rows of features, higher = more anomalous.
//!
//! | params | [`ParamGuard::Checked`] | data set `D` of [`Fit<D>`] | model | scored by |
//! |---|---|---|---|---|
//! | [`CategoricalHmmParams`](crate::hmm::CategoricalHmmParams) | `ValidCategoricalHmmParams` | [`Windows`] | [`CategoricalHmm`](crate::hmm::CategoricalHmm) | [`WindowScorer`] |
//! | [`MultinomialMixtureParams`](crate::hmm::MultinomialMixtureParams) | `ValidMultinomialMixtureParams` | [`Windows`] | [`MultinomialMixture`](crate::hmm::MultinomialMixture) | [`WindowScorer`] |
//! | [`FlatBoscHmmParams`](crate::hmm::FlatBoscHmmParams) | `ValidFlatBoscHmmParams` | [`Windows`] | [`FlatBoscHmm`](crate::hmm::FlatBoscHmm) | [`WindowScorer`] |
//! | [`AutoencoderParams`](crate::autoencoder::AutoencoderParams) | `AutoencoderValidParams` | [`Windows`] | [`Autoencoder`](crate::autoencoder::Autoencoder) | [`WindowScorer`] |
//! | [`AutoencoderParams`](crate::autoencoder::AutoencoderParams) | `AutoencoderValidParams` | [`Matrix`] | [`VectorAutoencoder`](crate::autoencoder::VectorAutoencoder) | [`RowScorer`] |
//! | [`StideParams`](crate::stide::StideParams) | `ValidStideParams` | [`Windows`] | [`Stide`](crate::stide::Stide) | [`WindowScorer`] |
//! | [`KMeansParams`](crate::kmeans::KMeansParams) | `ValidKMeansParams` | [`Windows`] | [`KMeans`](crate::kmeans::KMeans) | [`WindowScorer`] |
//! | [`CoverParams`](crate::cover::CoverParams) | (nothing to check) | [`Windows`] (whole sequences) | [`SequenceCover`](crate::cover::SequenceCover) | [`WindowScorer`] |
//! | [`SvmParams`](crate::svm::SvmParams) | `ValidSvmParams` | [`Labelled`] | [`Svm`](crate::svm::Svm) | [`RowScorer`] (decision value) |
//! | [`IsolationForestParams`](crate::iforest::IsolationForestParams) | `ValidIsolationForestParams` | [`Matrix`] | [`IsolationForest`](crate::iforest::IsolationForest) | [`RowScorer`] |
//! | [`StandardScalerParams`](crate::scaler::StandardScalerParams) | (nothing to check) | [`Matrix`] | [`StandardScaler`](crate::scaler::StandardScaler) | (a transform) |
//!
//! [`Fit`] is implemented for the checked type, and a blanket implementation lets a caller fit
//! straight from the unchecked builder: the check runs first, so no model trains on bad
//! parameters, and its error converts into the model's error type.
//!
//! The HMM, mixture and autoencoder params also keep older inherent `fit` methods with the
//! data set spelled out as arguments (`fit(&windows, n_symbols)`); Rust resolves a method call to
//! the inherent method first, so on those types write the trait call as `Fit::fit(&params, &data)`.
//!
//! ```
//! use mamori_detect::dataset::{Labelled, Windows};
//! use mamori_detect::iforest::IsolationForestParams;
//! use mamori_detect::matrix::Matrix;
//! use mamori_detect::stide::StideParams;
//! use mamori_detect::svm::SvmParams;
//! use mamori_detect::traits::{Fit, ParamGuard, RowScorer};
//! use mamori_detect::WindowScorer;
//!
//! // Windows of class symbols: STIDE.
//! let normal: Vec<Vec<u16>> = (0..20).map(|i| vec![0, 1, 2, (i % 2) as u16, 0, 1]).collect();
//! let windows: Vec<&[u16]> = normal.iter().map(|w| w.as_slice()).collect();
//! let stide = StideParams { ngram: 3 }.fit(&Windows::new(&windows, 4)).unwrap();
//! assert!(stide.score(&[3, 3, 3, 3]) > stide.score(&[0, 1, 2, 0]));
//!
//! // Rows of features: an isolation forest on normal rows only.
//! let x = Matrix::from_rows((0..64).map(|i| vec![(i % 8) as f64, (i / 8) as f64]).collect())
//!     .unwrap();
//! let forest = IsolationForestParams { seed: 3, ..Default::default() }.fit(&x).unwrap();
//! assert!(forest.score_row(&[40.0, -30.0]) > forest.score_row(&[4.0, 4.0]));
//!
//! // Labelled rows: the SVM (its score is the decision value, > 0 = attack).
//! let y: Vec<bool> = (0..64).map(|i| i % 8 >= 4).collect();
//! let svm = SvmParams::default().fit(&Labelled::new(&x, &y)).unwrap();
//! assert!(svm.score_row(&[7.0, 3.0]) > 0.0 && svm.score_row(&[0.0, 3.0]) < 0.0);
//!
//! // Bad parameters never reach training, and `check` says which one.
//! let bad = SvmParams { c: 0.0, ..Default::default() };
//! assert!(bad.check().is_err());
//! assert!(bad.fit(&Labelled::new(&x, &y)).is_err());
//! ```

use crate::classes::Symbol;
use crate::matrix::Matrix;

pub use crate::dataset::{Labelled, Windows};

/// Unchecked hyper-parameters that can be validated into a checked type (`Checked`), which is
/// what the models are fitted from.
pub trait ParamGuard {
    /// The checked parameters.
    type Checked;
    /// Why a value is out of range (naming the parameter).
    type Error;

    /// Checks every value, returning the checked parameters or the first invalid one.
    fn check(&self) -> Result<Self::Checked, Self::Error>;
}

/// Fits a model to the data set `D`: the result is a separate, fitted type.
pub trait Fit<D> {
    /// The fitted model.
    type Model;
    /// Why fitting failed (invalid parameters or unusable data).
    type Error;

    /// Fits the model; the same parameters (seed included) and data give the same model.
    fn fit(&self, data: &D) -> Result<Self::Model, Self::Error>;
}

/// Fitting from the unchecked builder: [`ParamGuard::check`] runs first, then the checked
/// parameters' [`Fit`].
impl<P, D> Fit<D> for P
where
    P: ParamGuard,
    P::Checked: Fit<D>,
    <P::Checked as Fit<D>>::Error: From<P::Error>,
{
    type Model = <P::Checked as Fit<D>>::Model;
    type Error = <P::Checked as Fit<D>>::Error;

    fn fit(&self, data: &D) -> Result<Self::Model, Self::Error> {
        let checked = ParamGuard::check(self)?;
        Fit::fit(&checked, data)
    }
}

/// A fitted model that scores windows of class symbols. Higher is more anomalous; a score is
/// always finite (never NaN or ±inf), whatever symbols the window holds.
pub trait WindowScorer {
    /// Anomaly score of one window (full or partial).
    fn score(&self, window: &[Symbol]) -> f64;

    /// The highest score the model can give, when it is bounded (STIDE's mismatch share is at
    /// most 1): a threshold at it could never be exceeded.
    fn max_score(&self) -> Option<f64> {
        None
    }

    /// Scores many windows; models override this when batching is faster.
    fn score_many(&self, windows: &[&[Symbol]]) -> Vec<f64> {
        windows.iter().map(|w| self.score(w)).collect()
    }
}

/// A fitted model that scores rows of `f64` features (already scaled as the model was trained).
///
/// Higher is more anomalous: the isolation forest's anomaly score in `(0, 1]`, the
/// autoencoder's reconstruction error, the SVM's decision value (positive = attack side of the
/// boundary, so also higher = more attack-like). A row holding NaN or ±inf may score NaN.
///
/// # Panics
/// Implementations panic when the row does not have as many features as the training rows.
pub trait RowScorer {
    /// Anomaly score of one row.
    fn score_row(&self, row: &[f64]) -> f64;

    /// Scores every row of `x`; models override this when batching is faster.
    fn score_rows(&self, x: &Matrix) -> Vec<f64> {
        x.iter_rows().map(|r| self.score_row(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoencoder::{AutoencoderError, AutoencoderParams};
    use crate::hmm::{CategoricalHmmParams, HmmError, MultinomialMixtureParams};

    fn windows() -> Vec<Vec<Symbol>> {
        (0..60)
            .map(|i| vec![0, 1, 2, (i % 3) as Symbol, 0, 1])
            .collect()
    }

    /// The trait route (check, then fit on the data set) gives exactly the inherent route's
    /// model, for the params types that keep an inherent `fit` of their own.
    #[test]
    fn window_models_fit_through_the_trait_as_through_their_inherent_fit() {
        let w = windows();
        let refs: Vec<&[Symbol]> = w.iter().map(Vec::as_slice).collect();
        let data = Windows::new(&refs, 4);

        let hmm = CategoricalHmmParams::new().n_states(2).seed(5);
        let by_trait = Fit::fit(&hmm, &data).expect("fit");
        assert_eq!(by_trait, hmm.fit(&refs, 4).expect("fit"));
        let checked = ParamGuard::check(&hmm).expect("valid");
        assert_eq!(Fit::fit(&checked, &data).expect("fit"), by_trait);

        let mix = MultinomialMixtureParams::new().n_components(2).seed(5);
        assert_eq!(
            Fit::fit(&mix, &data).expect("fit"),
            mix.fit(&refs, 4).expect("fit")
        );

        let ae = AutoencoderParams::new()
            .hidden(vec![4])
            .bottleneck(2)
            .epochs(3)
            .seed(5);
        let by_trait = Fit::fit(&ae, &data.with_window_size(8)).expect("fit");
        assert_eq!(by_trait, ae.fit(&refs, 4, 8).expect("fit"));
        assert_eq!(by_trait.window_size(), 8);
    }

    #[test]
    fn bad_params_stop_the_trait_route_before_training() {
        let w = windows();
        let refs: Vec<&[Symbol]> = w.iter().map(Vec::as_slice).collect();
        let data = Windows::new(&refs, 4);
        let hmm = CategoricalHmmParams::new().n_restarts(0);
        assert_eq!(Fit::fit(&hmm, &data).unwrap_err(), HmmError::ZeroRestarts);
        let ae = AutoencoderParams::new().epochs(0);
        assert_eq!(
            Fit::fit(&ae, &data).unwrap_err(),
            AutoencoderError::ZeroEpochs
        );
    }

    #[test]
    fn row_scores_default_to_one_row_at_a_time() {
        struct Sum;
        impl RowScorer for Sum {
            fn score_row(&self, row: &[f64]) -> f64 {
                row.iter().sum()
            }
        }
        let x = Matrix::from_rows(vec![vec![1.0, 2.0], vec![-1.0, 0.5]]).expect("matrix");
        assert_eq!(Sum.score_rows(&x), vec![3.0, -0.5]);
    }
}
