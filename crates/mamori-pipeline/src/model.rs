//! The models `mamori` can train, behind one serialisable enum, and the model-file body.

use anyhow::{Context, Result};
use mamori_detect::autoencoder::{Autoencoder, AutoencoderParams, Encoding};
use mamori_detect::calibrate::Threshold;
use mamori_detect::classes::ClassTableConfig;
use mamori_detect::cover::SequenceCover;
use mamori_detect::gated::NoveltyGatedHmm;
use mamori_detect::hmm::{
    CategoricalHmm, CategoricalHmmParams, FlatBoscHmm, MultinomialMixture, MultinomialMixtureParams,
};
use mamori_detect::kmeans::{KMeans, KMeansParams};
use mamori_detect::seqlm::{GruLm, GruLmParams};
use mamori_detect::stide::{Stide, StideParams};
use mamori_detect::window::WindowConfig;
use mamori_detect::{Symbol, WindowScorer};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Which detector, on which window representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Discrete HMM over the window's class sequence (the paper's HMM/sequence).
    Hmm,
    /// The paper's HMM/BoSC: the count vector flattened into a symbol sequence (fails; kept to
    /// reproduce Table 3).
    HmmBoscFlat,
    /// Multinomial-emission mixture over the BoSC count vector (what works for BoSC).
    HmmBosc,
    /// Autoencoder on the one-hot encoded sequence.
    Ae,
    /// Autoencoder on class indices scaled to [0, 1] (the paper's literal input).
    AeIndex,
    /// Autoencoder on the BoSC count vector (the paper's best).
    AeBosc,
    /// STIDE: share of the window's n-grams never seen in training.
    Stide,
    /// k-means clusters of BoSC vectors, Mahalanobis distance to the nearest (Yoon et al.).
    Kmeans,
    /// Sequence covering (Marteau 2019): pieces of normal training sequences needed per call.
    /// Trained on whole sequences; scores whole traces as well as windows.
    Cover,
    /// GRU language model over the call sequence (Kim et al. 2016): mean negative
    /// log-likelihood per call. Trained on whole sequences; scores whole traces as well as windows.
    Gru,
    /// The HMM counted only in windows holding an n-gram never seen in training (STIDE's
    /// novelty): both must agree. Calibrated on the HMM's own scores.
    HmmStide,
}

impl ModelKind {
    /// The window representation the model reads.
    pub fn representation(self) -> &'static str {
        match self {
            ModelKind::Hmm
            | ModelKind::Ae
            | ModelKind::AeIndex
            | ModelKind::Stide
            | ModelKind::Cover
            | ModelKind::Gru
            | ModelKind::HmmStide => "sequence",
            ModelKind::HmmBoscFlat | ModelKind::HmmBosc | ModelKind::AeBosc | ModelKind::Kmeans => {
                "BoSC"
            }
        }
    }
}

impl ModelKind {
    /// Every kind, in the order they are documented.
    pub const ALL: [ModelKind; 11] = [
        ModelKind::Hmm,
        ModelKind::HmmBoscFlat,
        ModelKind::HmmBosc,
        ModelKind::Ae,
        ModelKind::AeIndex,
        ModelKind::AeBosc,
        ModelKind::Stide,
        ModelKind::Kmeans,
        ModelKind::Cover,
        ModelKind::Gru,
        ModelKind::HmmStide,
    ];

    /// The name flags, files and alerts use (`ae-bosc`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Hmm => "hmm",
            ModelKind::HmmBoscFlat => "hmm-bosc-flat",
            ModelKind::HmmBosc => "hmm-bosc",
            ModelKind::Ae => "ae",
            ModelKind::AeIndex => "ae-index",
            ModelKind::AeBosc => "ae-bosc",
            ModelKind::Stide => "stide",
            ModelKind::Kmeans => "kmeans",
            ModelKind::Cover => "cover",
            ModelKind::Gru => "gru",
            ModelKind::HmmStide => "hmm-stide",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ModelKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown model `{s}` (one of {})", names.join(", "))
            })
    }
}

/// Hyper-parameters of every model (each model reads its own).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// Seed of every random step (initialisation, shuffling, restarts).
    pub seed: u64,
    /// Train on at most this many windows (evenly spread over the input); 0 = all.
    pub max_train_windows: usize,
    /// HMM: hidden states.
    pub states: usize,
    /// HMM and mixture: random restarts (the best likelihood is kept).
    pub restarts: usize,
    /// HMM and mixture: at most this many EM iterations.
    pub max_iter: usize,
    /// HMM and mixture: stop when the log-likelihood gains less than this.
    pub tol: f64,
    /// BoSC mixture (hmm-bosc): components.
    pub components: usize,
    /// Autoencoder: hidden units of the encoder (mirrored by the decoder), comma-separated.
    pub hidden: Vec<usize>,
    /// Autoencoder: bottleneck units [default: 32 for one-hot, 8 for class-index and BoSC].
    pub bottleneck: Option<usize>,
    /// Autoencoder: training epochs.
    pub epochs: Option<usize>,
    /// Autoencoder: mini-batch size.
    pub batch_size: Option<usize>,
    /// Autoencoder: L1 activity regularisation of the bottleneck (the paper: ~1e-6).
    pub activity_l1: Option<f64>,
    /// Autoencoder: Adam learning rate.
    pub learning_rate: Option<f64>,
    /// STIDE: n-gram length.
    pub ngram: usize,
    /// k-means: clusters.
    pub clusters: usize,
    /// GRU language model: hidden units.
    pub gru_hidden: usize,
    /// GRU language model: training epochs.
    pub gru_epochs: usize,
}

impl Default for ModelSettings {
    /// The documented defaults (the paper's where it gives them).
    fn default() -> Self {
        ModelSettings {
            seed: 1,
            max_train_windows: 200_000,
            states: 3,
            restarts: 3,
            max_iter: 100,
            tol: 1e-2,
            components: 8,
            hidden: vec![160],
            bottleneck: None,
            epochs: None,
            batch_size: None,
            activity_l1: None,
            learning_rate: None,
            ngram: 6,
            clusters: 8,
            gru_hidden: GruLmParams::default().hidden,
            gru_epochs: GruLmParams::default().epochs,
        }
    }
}

impl ModelSettings {
    /// At most `max_train_windows` windows, evenly spread so the whole recording is represented.
    pub fn subsample<'a>(&self, windows: &'a [Vec<Symbol>]) -> Vec<&'a [Symbol]> {
        let n = windows.len();
        let k = self.max_train_windows;
        if k == 0 || n <= k {
            return windows.iter().map(Vec::as_slice).collect();
        }
        (0..k).map(|i| windows[i * n / k].as_slice()).collect()
    }

    fn autoencoder(&self, encoding: Encoding, seed: u64) -> AutoencoderParams {
        let mut p = AutoencoderParams::new()
            .encoding(encoding)
            .hidden(self.hidden.clone())
            .seed(seed);
        // A code layer as wide as a compact input (class index: W features, BoSC: K) can copy
        // it and reconstruct anomalies as well as normal windows; keep those narrow.
        match (self.bottleneck, encoding) {
            (Some(b), _) => p = p.bottleneck(b),
            (None, Encoding::ClassIndex | Encoding::Bosc) => p = p.bottleneck(8),
            (None, Encoding::OneHot) => {}
        }
        if let Some(e) = self.epochs {
            p = p.epochs(e);
        }
        if let Some(b) = self.batch_size {
            p = p.batch_size(b);
        }
        if let Some(a) = self.activity_l1 {
            p = p.activity_l1(a as f32);
        }
        if let Some(l) = self.learning_rate {
            p = p.learning_rate(l as f32);
        }
        p
    }

    fn hmm(&self, seed: u64) -> CategoricalHmmParams {
        CategoricalHmmParams::new()
            .n_states(self.states)
            .n_restarts(self.restarts)
            .max_iter(self.max_iter)
            .tol(self.tol)
            .seed(seed)
    }
}

/// A fitted model of any kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "model", rename_all = "kebab-case")]
pub enum Detector {
    /// See [`ModelKind::Hmm`].
    Hmm(CategoricalHmm),
    /// See [`ModelKind::HmmBoscFlat`].
    HmmBoscFlat(FlatBoscHmm),
    /// See [`ModelKind::HmmBosc`].
    HmmBosc(MultinomialMixture),
    /// See [`ModelKind::Ae`], [`ModelKind::AeIndex`], [`ModelKind::AeBosc`].
    Autoencoder(Autoencoder),
    /// See [`ModelKind::Stide`].
    Stide(Stide),
    /// See [`ModelKind::Kmeans`].
    Kmeans(KMeans),
    /// See [`ModelKind::Cover`].
    Cover(SequenceCover),
    /// See [`ModelKind::Gru`].
    Gru(GruLm),
    /// See [`ModelKind::HmmStide`].
    HmmStide(NoveltyGatedHmm),
}

impl Detector {
    /// Trains a model of `kind` on normal windows. `sequences` are the whole normal streams
    /// (traces) the windows were cut from; only [`ModelKind::Cover`] reads them, and it falls
    /// back to the windows when none are given.
    pub fn fit(
        kind: ModelKind,
        s: &ModelSettings,
        seed: u64,
        windows: &[&[Symbol]],
        sequences: &[&[Symbol]],
        n_symbols: usize,
        window_size: usize,
    ) -> Result<Detector> {
        let ctx = || format!("cannot train {kind}");
        Ok(match kind {
            ModelKind::Hmm => Detector::Hmm(s.hmm(seed).fit(windows, n_symbols).with_context(ctx)?),
            ModelKind::HmmBoscFlat => Detector::HmmBoscFlat(
                FlatBoscHmm::fit(&s.hmm(seed), windows, n_symbols).with_context(ctx)?,
            ),
            ModelKind::HmmBosc => Detector::HmmBosc(
                MultinomialMixtureParams::new()
                    .n_components(s.components)
                    .n_restarts(s.restarts)
                    .max_iter(s.max_iter)
                    .seed(seed)
                    .fit(windows, n_symbols)
                    .with_context(ctx)?,
            ),
            ModelKind::Ae | ModelKind::AeIndex | ModelKind::AeBosc => {
                let encoding = match kind {
                    ModelKind::Ae => Encoding::OneHot,
                    ModelKind::AeIndex => Encoding::ClassIndex,
                    _ => Encoding::Bosc,
                };
                Detector::Autoencoder(
                    s.autoencoder(encoding, seed)
                        .fit(windows, n_symbols, window_size)
                        .with_context(ctx)?,
                )
            }
            ModelKind::Stide => Detector::Stide(
                Stide::fit(windows, &StideParams { ngram: s.ngram }).with_context(ctx)?,
            ),
            ModelKind::Kmeans => Detector::Kmeans(
                KMeans::fit(
                    windows,
                    n_symbols,
                    &KMeansParams {
                        k: s.clusters,
                        seed,
                        ..KMeansParams::default()
                    },
                )
                .with_context(ctx)?,
            ),
            ModelKind::Cover => {
                let seqs = if sequences.is_empty() {
                    windows
                } else {
                    sequences
                };
                Detector::Cover(SequenceCover::fit(seqs).with_context(ctx)?)
            }
            ModelKind::Gru => {
                let seqs = if sequences.is_empty() {
                    windows
                } else {
                    sequences
                };
                let params = GruLmParams {
                    hidden: s.gru_hidden,
                    epochs: s.gru_epochs,
                    seed,
                    ..GruLmParams::default()
                };
                Detector::Gru(GruLm::fit(&params, seqs, n_symbols).with_context(ctx)?)
            }
            ModelKind::HmmStide => Detector::HmmStide(NoveltyGatedHmm {
                hmm: s.hmm(seed).fit(windows, n_symbols).with_context(ctx)?,
                novelty: Stide::fit(windows, &StideParams { ngram: s.ngram }).with_context(ctx)?,
            }),
        })
    }

    /// What thresholds are calibrated on: the model itself, except for [`ModelKind::HmmStide`],
    /// whose gated scores are mostly 0 and which is calibrated on its HMM's scores.
    pub fn calibration_scorer(&self) -> &dyn WindowScorer {
        match self {
            Detector::HmmStide(m) => m.ungated(),
            other => other.scorer(),
        }
    }

    /// Scores `windows`, and when thresholds are calibrated on other scores
    /// ([`Self::calibration_scorer`]) those too, each model scoring every window once.
    pub fn score_with_calibration(&self, windows: &[&[Symbol]]) -> (Vec<f64>, Option<Vec<f64>>) {
        match self {
            Detector::HmmStide(m) => {
                let hmm = m.ungated().score_many(windows);
                (m.gate(windows, &hmm), Some(hmm))
            }
            other => (other.scorer().score_many(windows), None),
        }
    }

    /// The score of a whole sequence (trace), for models that score sequences natively rather
    /// than as an aggregate of window scores.
    pub fn sequence_score(&self, sequence: &[Symbol]) -> Option<f64> {
        match self {
            Detector::Cover(m) => Some(m.score_sequence(sequence)),
            Detector::Gru(m) => Some(m.score_sequence(sequence)),
            _ => None,
        }
    }

    /// The model as a window scorer.
    pub fn scorer(&self) -> &dyn WindowScorer {
        match self {
            Detector::Hmm(m) => m,
            Detector::HmmBoscFlat(m) => m,
            Detector::HmmBosc(m) => m,
            Detector::Autoencoder(m) => m,
            Detector::Stide(m) => m,
            Detector::Kmeans(m) => m,
            Detector::Cover(m) => m,
            Detector::Gru(m) => m,
            Detector::HmmStide(m) => m,
        }
    }

    /// One line for `mamori model show`.
    pub fn describe(&self) -> String {
        match self {
            Detector::Hmm(m) => format!(
                "categorical HMM, {} states, {} symbols",
                m.n_states(),
                m.n_symbols()
            ),
            Detector::HmmBoscFlat(m) => format!(
                "flattened-BoSC HMM (the paper's), {} states",
                m.hmm().n_states()
            ),
            Detector::HmmBosc(m) => format!(
                "multinomial mixture over BoSC, {} components",
                m.n_components()
            ),
            Detector::Autoencoder(m) => format!(
                "autoencoder on {:?}, hidden {:?}, final training loss {:.6}",
                m.encoding(),
                m.params().hidden,
                m.history().last().copied().unwrap_or(f64::NAN)
            ),
            Detector::Stide(m) => format!(
                "STIDE, {}-grams, {} in the database",
                m.ngram(),
                m.n_grams()
            ),
            Detector::Kmeans(m) => {
                format!("k-means + Mahalanobis, {} clusters", m.clusters().len())
            }
            Detector::Cover(m) => format!(
                "sequence covering, {} training sequences, {} calls, {} automaton states",
                m.n_sequences(),
                m.n_calls(),
                m.n_states()
            ),
            Detector::Gru(m) => format!(
                "GRU language model, {} hidden units, {} symbols, final training loss {:.4} nats/call",
                m.hidden(),
                m.n_symbols(),
                m.history().last().copied().unwrap_or(f64::NAN)
            ),
            Detector::HmmStide(m) => format!(
                "categorical HMM, {} states, {} symbols, counted only in windows with a {}-gram outside the {} of training",
                m.hmm.n_states(),
                m.hmm.n_symbols(),
                m.novelty.ngram(),
                m.novelty.n_grams()
            ),
        }
    }

    /// HMM parameters as hmmlearn names and shapes them.
    pub fn hmmlearn_layout(&self) -> Option<serde_json::Value> {
        let hmm = match self {
            Detector::Hmm(m) => m,
            Detector::HmmBoscFlat(m) => m.hmm(),
            Detector::HmmStide(m) => &m.hmm,
            _ => return None,
        };
        let (n, m) = (hmm.n_states(), hmm.n_symbols());
        let rows = |flat: &[f64], cols: usize| -> Vec<Vec<f64>> {
            flat.chunks(cols).map(<[f64]>::to_vec).collect()
        };
        Some(json!({
            "n_components": n,
            "n_features": m,
            "startprob": hmm.startprob(),
            "transmat": rows(hmm.transmat(), n),
            "emissionprob": rows(hmm.emissionprob(), m),
        }))
    }
}

/// Facts about how a model was trained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Input files.
    pub inputs: Vec<String>,
    /// Events read.
    pub events: u64,
    /// Events that matched the class table.
    pub monitored_events: u64,
    /// Windows trained on.
    pub windows: u64,
    /// Windows used to calibrate the threshold.
    pub calibration_windows: u64,
    /// Seed.
    pub seed: u64,
    /// Training time.
    pub fit_seconds: f64,
    /// What the training input's calls carried (timestamps, descriptor paths), to check input
    /// scored later against. `None` in models from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<crate::recording::InputProfile>,
}

/// The body of a model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainedModel {
    /// mamori version that trained it.
    pub mamori_version: String,
    /// Model kind.
    pub kind: ModelKind,
    /// The class table it was trained with.
    pub classes: ClassTableConfig,
    /// The window settings it was trained with.
    pub window: WindowConfig,
    /// Calibrated or explicit threshold.
    pub threshold: Option<Threshold>,
    /// Training facts.
    pub training: TrainingInfo,
    /// Share of each class among the training windows' calls (indexed by symbol), so an alert
    /// can say which classes were unusual. Empty in models from before it was recorded.
    #[serde(default)]
    pub class_share: Vec<f64>,
    /// Programs and requests seen in training, for the context signals; `None` in models from
    /// before they were learned (those raise no context alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<crate::context::ContextProfile>,
    /// The fitted model.
    pub detector: Detector,
}

impl TrainedModel {
    /// Classes of a window ranked by how much rarer they were in training than here, the first
    /// `k`: what an alert names as the reason.
    pub fn top_classes(
        &self,
        table: &mamori_detect::classes::ClassTable,
        symbols: &[Symbol],
        k: usize,
    ) -> Vec<mamori_core::alert::ClassReason> {
        let mut counts: std::collections::HashMap<Symbol, u32> = std::collections::HashMap::new();
        for &s in symbols {
            *counts.entry(s).or_default() += 1;
        }
        let n = symbols.len().max(1) as f64;
        let mut reasons: Vec<(f64, mamori_core::alert::ClassReason)> = counts
            .into_iter()
            .map(|(s, count)| {
                let training_share = self.class_share.get(usize::from(s)).copied().unwrap_or(0.0);
                let window_share = f64::from(count) / n;
                // log-ratio of window share to training share; unseen classes rank first
                let surprise = (window_share / (training_share + 1e-6)).ln();
                (
                    surprise,
                    mamori_core::alert::ClassReason {
                        class: table.label(s),
                        count,
                        window_share,
                        training_share,
                    },
                )
            })
            .collect();
        reasons.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.class.cmp(&b.1.class)));
        reasons.into_iter().take(k).map(|(_, r)| r).collect()
    }
}

/// Share of each symbol among all calls of `windows`.
pub fn class_share<'a>(
    windows: impl IntoIterator<Item = &'a [Symbol]>,
    n_symbols: usize,
) -> Vec<f64> {
    let mut counts = vec![0u64; n_symbols];
    for w in windows {
        for &s in w {
            if let Some(c) = counts.get_mut(usize::from(s)) {
                *c += 1;
            }
        }
    }
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gru_trains_on_sequences_round_trips_and_scores_traces() {
        assert_eq!("gru".parse::<ModelKind>(), Ok(ModelKind::Gru));
        assert_eq!(ModelKind::Gru.representation(), "sequence");
        let pattern = [0u16, 1, 2, 0, 3];
        let trace: Vec<Symbol> = (0..200).map(|i| pattern[i % 5]).collect();
        let sequences: Vec<&[Symbol]> = trace.chunks(50).collect();
        let windows: Vec<&[Symbol]> = trace.windows(6).collect();
        let settings = ModelSettings {
            gru_hidden: 8,
            gru_epochs: 20,
            ..ModelSettings::default()
        };
        let det =
            Detector::fit(ModelKind::Gru, &settings, 1, &windows, &sequences, 5, 6).expect("fit");
        assert!(det
            .describe()
            .starts_with("GRU language model, 8 hidden units"));
        let json = serde_json::to_string(&det).expect("serialise");
        let back: Detector = serde_json::from_str(&json).expect("deserialise");
        let odd: Vec<Symbol> = vec![0, 3, 0, 3, 4, 4, 1, 1];
        assert_eq!(back.sequence_score(&trace), det.sequence_score(&trace));
        assert!(det.sequence_score(&odd) > det.sequence_score(&trace));
        assert_eq!(back.scorer().score(&odd), det.scorer().score(&odd));
        assert!(det.scorer().score(&odd) > det.scorer().score(&trace[..6]));
    }
}
