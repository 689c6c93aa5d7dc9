//! Hyper-parameters: the [`AutoencoderParams`] builder and its validated form.

use serde::{Deserialize, Serialize};

use super::encoding::Encoding;
use super::errors::AutoencoderError;
use super::model::Autoencoder;
use super::network::Activation;
use crate::classes::Symbol;

/// Autoencoder hyper-parameters, with the paper's architecture and Keras' defaults.
///
/// Build with [`AutoencoderParams::default`] and the setter methods, then [`check`] (or call
/// [`fit`] directly, which checks first). Also (de)serialisable, e.g. from a TOML section; missing
/// fields take their defaults.
///
/// | field | default | why |
/// |---|---|---|
/// | `encoding` | [`Encoding::OneHot`] | keeps call order without inventing an order between classes |
/// | `hidden` | `[160]` | the paper's encoder/decoder width; mirrored in the decoder |
/// | `bottleneck` | `32` | the paper does not give it: 5× narrower than the 160-unit layers, compressing a one-hot sequence (`W·K` ≈ 19·25 = 475 features) ~15×. Keep it well below the feature count: for [`Encoding::ClassIndex`] (`W` features) or [`Encoding::Bosc`] (`K` features) a 32-wide code can learn to copy its input and then reconstructs attacks as well as normal windows (seen on ADFA-LD with class-index inputs); use ~8 there |
/// | `bottleneck_activation` | ReLU | the usual Keras `Dense(…, activation="relu")` middle layer |
/// | `output_activation` | linear | inputs are min-max scaled to `[0, 1]` on training data; a linear output does not saturate, so MSE gradients stay alive (a sigmoid is available) |
/// | `activity_l1` | `1e-6` | the paper's activity regulariser on the middle layer |
/// | `learning_rate`, `beta1`, `beta2`, `epsilon` | `1e-3`, `0.9`, `0.999`, `1e-7` | Keras' Adam |
/// | `batch_size` | `256` | |
/// | `epochs` | `30` | upper bound when early stopping is on |
/// | `validation_split` | `0.1` | share of windows (chosen by the seed) held out for early stopping; `0` trains on all windows for exactly `epochs` |
/// | `patience` | `5` | epochs without a better validation loss before stopping; the best weights are kept |
/// | `seed` | `0` | initial weights, validation split and batch order |
///
/// [`check`]: AutoencoderParams::check
/// [`fit`]: AutoencoderParams::fit
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoencoderParams {
    /// Input representation of a window.
    pub encoding: Encoding,
    /// Widths of the encoder's hidden layers, input side first (ReLU); the decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Width of the middle (code) layer.
    pub bottleneck: usize,
    /// Activation of the middle layer.
    pub bottleneck_activation: Activation,
    /// Activation of the output layer.
    pub output_activation: Activation,
    /// L1 activity regularisation: `activity_l1 · Σ|code| / batch` is added to the loss.
    pub activity_l1: f32,
    /// Adam step size.
    pub learning_rate: f32,
    /// Adam first-moment decay.
    pub beta1: f32,
    /// Adam second-moment decay.
    pub beta2: f32,
    /// Adam ε.
    pub epsilon: f32,
    /// Windows per mini-batch.
    pub batch_size: usize,
    /// Passes over the training windows (at most, with early stopping).
    pub epochs: usize,
    /// Share of windows held out for early stopping, in `[0, 1)`; 0 disables early stopping.
    pub validation_split: f32,
    /// Early-stopping patience in epochs.
    pub patience: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for AutoencoderParams {
    fn default() -> Self {
        AutoencoderParams {
            encoding: Encoding::OneHot,
            hidden: vec![160],
            bottleneck: 32,
            bottleneck_activation: Activation::Relu,
            output_activation: Activation::Linear,
            activity_l1: 1e-6,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            batch_size: 256,
            epochs: 30,
            validation_split: 0.1,
            patience: 5,
            seed: 0,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, $name: $ty) -> Self {
            self.$name = $name;
            self
        }
    };
}

impl AutoencoderParams {
    /// The defaults (same as [`Default::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    setter!(/// Sets the input representation.
        encoding: Encoding);
    setter!(/// Sets the encoder's hidden widths (mirrored in the decoder).
        hidden: Vec<usize>);
    setter!(/// Sets the middle-layer width.
        bottleneck: usize);
    setter!(/// Sets the middle-layer activation.
        bottleneck_activation: Activation);
    setter!(/// Sets the output activation.
        output_activation: Activation);
    setter!(/// Sets the L1 activity-regularisation weight.
        activity_l1: f32);
    setter!(/// Sets Adam's learning rate.
        learning_rate: f32);
    setter!(/// Sets Adam's β1.
        beta1: f32);
    setter!(/// Sets Adam's β2.
        beta2: f32);
    setter!(/// Sets Adam's ε.
        epsilon: f32);
    setter!(/// Sets the mini-batch size.
        batch_size: usize);
    setter!(/// Sets the (maximum) number of epochs.
        epochs: usize);
    setter!(/// Sets the validation share (0 disables early stopping).
        validation_split: f32);
    setter!(/// Sets the early-stopping patience.
        patience: usize);
    setter!(/// Sets the seed.
        seed: u64);

    /// Validates every value.
    pub fn check(&self) -> Result<AutoencoderValidParams, AutoencoderError> {
        use AutoencoderError as E;
        if let Some(layer) = self.hidden.iter().position(|&h| h == 0) {
            return Err(E::ZeroHiddenWidth { layer });
        }
        if self.bottleneck == 0 {
            return Err(E::ZeroBottleneck);
        }
        if self.batch_size == 0 {
            return Err(E::ZeroBatchSize);
        }
        if self.epochs == 0 {
            return Err(E::ZeroEpochs);
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(E::InvalidLearningRate(self.learning_rate));
        }
        if !(0.0..1.0).contains(&self.beta1) {
            return Err(E::InvalidBeta1(self.beta1));
        }
        if !(0.0..1.0).contains(&self.beta2) {
            return Err(E::InvalidBeta2(self.beta2));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(E::InvalidEpsilon(self.epsilon));
        }
        if !(self.activity_l1.is_finite() && self.activity_l1 >= 0.0) {
            return Err(E::InvalidActivityL1(self.activity_l1));
        }
        if !(0.0..1.0).contains(&self.validation_split) {
            return Err(E::InvalidValidationSplit(self.validation_split));
        }
        if self.validation_split > 0.0 && self.patience == 0 {
            return Err(E::ZeroPatience);
        }
        Ok(AutoencoderValidParams(self.clone()))
    }

    /// Checks the parameters, then trains (see [`AutoencoderValidParams::fit`]); the same as
    /// [`Fit::fit`](crate::Fit::fit) on [`Windows`](crate::dataset::Windows).
    pub fn fit(
        &self,
        windows: &[&[Symbol]],
        n_symbols: usize,
        window_size: usize,
    ) -> Result<Autoencoder, AutoencoderError> {
        self.check()?.fit(windows, n_symbols, window_size)
    }
}

impl crate::ParamGuard for AutoencoderParams {
    type Checked = AutoencoderValidParams;
    type Error = AutoencoderError;

    /// [`AutoencoderParams::check`].
    fn check(&self) -> Result<AutoencoderValidParams, AutoencoderError> {
        AutoencoderParams::check(self)
    }
}

/// Parameters that passed [`AutoencoderParams::check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderValidParams(AutoencoderParams);

impl AutoencoderValidParams {
    /// The checked values.
    pub fn params(&self) -> &AutoencoderParams {
        &self.0
    }
}

impl std::ops::Deref for AutoencoderValidParams {
    type Target = AutoencoderParams;
    fn deref(&self) -> &AutoencoderParams {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AutoencoderError as E;

    fn err(p: AutoencoderParams) -> AutoencoderError {
        p.check().expect_err("should be rejected")
    }

    #[test]
    fn defaults_are_valid_and_match_the_paper() {
        let p = AutoencoderParams::new().check().unwrap();
        assert_eq!(p.hidden, vec![160]);
        assert_eq!(p.activity_l1, 1e-6);
        assert_eq!(p.epsilon, 1e-7);
        // Empty hidden list (bottleneck only) and no validation with zero patience are fine.
        let p = AutoencoderParams::new()
            .hidden(vec![])
            .validation_split(0.0)
            .patience(0);
        assert!(p.check().is_ok());
    }

    #[test]
    fn zero_hidden_width() {
        assert_eq!(
            err(AutoencoderParams::new().hidden(vec![8, 0])),
            E::ZeroHiddenWidth { layer: 1 }
        );
    }

    #[test]
    fn zero_bottleneck() {
        assert_eq!(
            err(AutoencoderParams::new().bottleneck(0)),
            E::ZeroBottleneck
        );
    }

    #[test]
    fn zero_batch_size() {
        assert_eq!(
            err(AutoencoderParams::new().batch_size(0)),
            E::ZeroBatchSize
        );
    }

    #[test]
    fn zero_epochs() {
        assert_eq!(err(AutoencoderParams::new().epochs(0)), E::ZeroEpochs);
    }

    #[test]
    fn invalid_learning_rate() {
        assert_eq!(
            err(AutoencoderParams::new().learning_rate(0.0)),
            E::InvalidLearningRate(0.0)
        );
        assert!(matches!(
            err(AutoencoderParams::new().learning_rate(f32::NAN)),
            E::InvalidLearningRate(v) if v.is_nan()
        ));
    }

    #[test]
    fn invalid_beta1() {
        assert_eq!(
            err(AutoencoderParams::new().beta1(1.0)),
            E::InvalidBeta1(1.0)
        );
    }

    #[test]
    fn invalid_beta2() {
        assert_eq!(
            err(AutoencoderParams::new().beta2(-0.1)),
            E::InvalidBeta2(-0.1)
        );
    }

    #[test]
    fn invalid_epsilon() {
        assert_eq!(
            err(AutoencoderParams::new().epsilon(0.0)),
            E::InvalidEpsilon(0.0)
        );
    }

    #[test]
    fn invalid_activity_l1() {
        assert_eq!(
            err(AutoencoderParams::new().activity_l1(-1e-6)),
            E::InvalidActivityL1(-1e-6)
        );
        assert_eq!(
            err(AutoencoderParams::new().activity_l1(f32::INFINITY)),
            E::InvalidActivityL1(f32::INFINITY)
        );
    }

    #[test]
    fn invalid_validation_split() {
        assert_eq!(
            err(AutoencoderParams::new().validation_split(1.0)),
            E::InvalidValidationSplit(1.0)
        );
    }

    #[test]
    fn zero_patience() {
        assert_eq!(err(AutoencoderParams::new().patience(0)), E::ZeroPatience);
    }

    #[test]
    fn deserialises_with_defaults_and_rejects_unknown_fields() {
        let p: AutoencoderParams =
            serde_json::from_str(r#"{"encoding": "bosc", "epochs": 3}"#).unwrap();
        assert_eq!(
            p,
            AutoencoderParams::new().encoding(Encoding::Bosc).epochs(3)
        );
        assert!(serde_json::from_str::<AutoencoderParams>(r#"{"epoch": 3}"#).is_err());
    }
}
