//! The model flags shared by `train`, `learn` and `eval`, turned into the pipeline's
//! [`ModelSettings`] (the library never sees clap).

use clap::Args;
use mamori_pipeline::model::{ModelKind, ModelSettings};

/// Hyper-parameters of every model (each model reads its own), as flags.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Seed of every random step (initialisation, shuffling, restarts).
    #[arg(long, default_value_t = 1, help_heading = "Models")]
    pub seed: u64,
    /// Train on at most this many windows (evenly spread over the input); 0 = all.
    #[arg(
        value_parser = crate::cmd::numbers::count,
        long,
        default_value_t = 200_000,
        value_name = "N",
        help_heading = "Models"
    )]
    pub max_train_windows: usize,
    /// HMM: hidden states.
    #[arg(value_parser = crate::cmd::numbers::count, long, default_value_t = 3, value_name = "N", help_heading = "HMM")]
    pub states: usize,
    /// HMM and mixture: random restarts (the best likelihood is kept).
    #[arg(value_parser = crate::cmd::numbers::count, long, default_value_t = 3, value_name = "N", help_heading = "HMM")]
    pub restarts: usize,
    /// HMM and mixture: at most this many EM iterations.
    #[arg(value_parser = crate::cmd::numbers::count, long, default_value_t = 100, value_name = "N", help_heading = "HMM")]
    pub max_iter: usize,
    /// HMM and mixture: stop when the log-likelihood gains less than this.
    #[arg(value_parser = crate::cmd::numbers::positive, long, default_value_t = 1e-2, value_name = "X", help_heading = "HMM")]
    pub tol: f64,
    /// BoSC mixture (hmm-bosc): components.
    #[arg(value_parser = crate::cmd::numbers::count, long, default_value_t = 8, value_name = "N", help_heading = "HMM")]
    pub components: usize,
    /// Autoencoder: hidden units of the encoder (mirrored by the decoder), comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "160",
        value_name = "N,..",
        help_heading = "Autoencoder"
    )]
    pub hidden: Vec<usize>,
    /// Autoencoder: bottleneck units [default: 32 for one-hot, 8 for class-index and BoSC].
    #[arg(value_parser = crate::cmd::numbers::count, long, value_name = "N", help_heading = "Autoencoder")]
    pub bottleneck: Option<usize>,
    /// Autoencoder: training epochs.
    #[arg(value_parser = crate::cmd::numbers::count, long, value_name = "N", help_heading = "Autoencoder")]
    pub epochs: Option<usize>,
    /// Autoencoder: mini-batch size.
    #[arg(value_parser = crate::cmd::numbers::count, long, value_name = "N", help_heading = "Autoencoder")]
    pub batch_size: Option<usize>,
    /// Autoencoder: L1 activity regularisation of the bottleneck (the paper: ~1e-6).
    #[arg(value_parser = crate::cmd::numbers::non_negative, long, value_name = "X", help_heading = "Autoencoder")]
    pub activity_l1: Option<f64>,
    /// Autoencoder: Adam learning rate.
    #[arg(value_parser = crate::cmd::numbers::positive, long, value_name = "X", help_heading = "Autoencoder")]
    pub learning_rate: Option<f64>,
    /// STIDE: n-gram length.
    #[arg(
        value_parser = crate::cmd::numbers::count,
        long,
        default_value_t = 6,
        value_name = "N",
        help_heading = "Baselines"
    )]
    pub ngram: usize,
    /// k-means: clusters.
    #[arg(
        value_parser = crate::cmd::numbers::count,
        long,
        default_value_t = 8,
        value_name = "N",
        help_heading = "Baselines"
    )]
    pub clusters: usize,
    /// GRU language model (gru): hidden units.
    #[arg(
        value_parser = crate::cmd::numbers::count,
        long,
        default_value_t = 64,
        value_name = "N",
        help_heading = "GRU language model"
    )]
    pub gru_hidden: usize,
    /// GRU language model (gru): training epochs over the training sequences.
    #[arg(
        value_parser = crate::cmd::numbers::count,
        long,
        default_value_t = 20,
        value_name = "N",
        help_heading = "GRU language model"
    )]
    pub gru_epochs: usize,
}

impl ModelArgs {
    /// The settings these flags describe.
    pub fn settings(&self) -> ModelSettings {
        ModelSettings {
            seed: self.seed,
            max_train_windows: self.max_train_windows,
            states: self.states,
            restarts: self.restarts,
            max_iter: self.max_iter,
            tol: self.tol,
            components: self.components,
            hidden: self.hidden.clone(),
            bottleneck: self.bottleneck,
            epochs: self.epochs,
            batch_size: self.batch_size,
            activity_l1: self.activity_l1,
            learning_rate: self.learning_rate,
            ngram: self.ngram,
            clusters: self.clusters,
            gru_hidden: self.gru_hidden,
            gru_epochs: self.gru_epochs,
        }
    }
}

/// Parses a `--model` value.
pub fn parse_model_kind(s: &str) -> Result<ModelKind, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        m: ModelArgs,
    }

    #[test]
    fn flag_defaults_are_the_librarys_defaults() {
        assert_eq!(T::parse_from(["t"]).m.settings(), ModelSettings::default());
        assert_eq!(parse_model_kind("ae-bosc"), Ok(ModelKind::AeBosc));
        assert!(parse_model_kind("svm").unwrap_err().contains("one of hmm"));
    }
}
