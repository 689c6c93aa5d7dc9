//! A trained network detector: feature settings, scaling and a model in one file, so scoring
//! extracts exactly the features the model was trained on. The file is the body of
//! `mamori_core::envelope` (kind `Net`): a changed digit fails its checksum instead of silently
//! scoring differently; [`NetDetector::check`] then checks the body against this build.
//!
//! Counts in traffic are heavy-tailed (a flood sends 10,000 packets where a sensor sends 3), so
//! every feature goes through `ln(1 + x)` before standardisation; otherwise a single flood
//! window would set the scale and squash every normal difference to nothing.

use mamori_detect::autoencoder::{AutoencoderParams, VectorAutoencoder, VectorScratch};
use mamori_detect::calibrate::{calibrate, Threshold};
use mamori_detect::dataset::Labelled;
use mamori_detect::error::ModelError;
use mamori_detect::iforest::{IsolationForest, IsolationForestParams};
use mamori_detect::matrix::Matrix;
use mamori_detect::scaler::StandardScaler;
use mamori_detect::svm::{CvReport, GridSearch, Scoring, Svm, SvmParams};
use mamori_detect::Fit;

use crate::features::{FeatureConfig, FeatureRow};

/// File format tag.
pub const FORMAT: &str = "mamori-net-detector/1";

/// The model inside a detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "algorithm", rename_all = "kebab-case")]
pub enum NetModel {
    /// RBF SVM (supervised): the score is the decision value, > 0 means attack.
    Svm(Svm),
    /// Isolation forest trained on normal rows only: the score is the anomaly score (0..1).
    IsolationForest(IsolationForest),
    /// Autoencoder trained on normal rows only: the score is the mean squared reconstruction
    /// error of the standardised row.
    Autoencoder(VectorAutoencoder),
}

impl NetModel {
    /// The algorithm's name as model files and alerts write it.
    pub fn algorithm(&self) -> &'static str {
        match self {
            NetModel::Svm(_) => "svm",
            NetModel::IsolationForest(_) => "isolation-forest",
            NetModel::Autoencoder(_) => "autoencoder",
        }
    }
}

/// How training went, kept in the model file for later inspection.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainingSummary {
    /// Normal rows used.
    pub normal_rows: usize,
    /// Attack rows used.
    pub attack_rows: usize,
    /// Rows the threshold was calibrated on (unsupervised models).
    pub calibration_rows: usize,
    /// Cross-validation of C and gamma (SVM), when it was run.
    pub cv: Option<CvReport>,
}

/// Features + scaling + model + threshold.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NetDetector {
    /// [`FORMAT`].
    pub format: String,
    /// How rows are extracted.
    pub features: FeatureConfig,
    /// Column names, in order (checked against the extractor when scoring).
    pub feature_names: Vec<String>,
    /// Standardisation of the log-transformed features.
    pub scaler: StandardScaler,
    /// The model.
    pub model: NetModel,
    /// A row is flagged when its score is strictly greater than this.
    pub threshold: Threshold,
    /// Training details.
    pub training: TrainingSummary,
}

/// Supervised training options.
#[derive(Debug, Clone)]
pub struct SvmOptions {
    /// C values tried by cross-validation (one value: no search unless `gammas` has several).
    pub cs: Vec<f64>,
    /// gamma values tried.
    pub gammas: Vec<f64>,
    /// Folds of the cross-validation.
    pub folds: usize,
    /// Weigh classes inversely to their frequency (attack rows are usually rare).
    pub balanced: bool,
    /// Seed of the fold split.
    pub seed: u64,
}

/// Unsupervised training options.
#[derive(Debug, Clone)]
pub struct ForestOptions {
    /// Forest settings (their `seed` is replaced by [`ForestOptions::seed`]).
    pub params: IsolationForestParams,
    /// Share of normal calibration rows allowed over the threshold.
    pub target_fpr: f64,
    /// Seed of the forest.
    pub seed: u64,
}

/// Autoencoder training options.
#[derive(Debug, Clone)]
pub struct AutoencoderOptions {
    /// Network and training settings ([`AutoencoderOptions::traffic`] for the defaults).
    pub params: AutoencoderParams,
    /// Share of normal calibration rows allowed over the threshold.
    pub target_fpr: f64,
}

impl AutoencoderOptions {
    /// Defaults for traffic rows: `d → hidden → bottleneck → hidden → d`, ReLU inside, linear
    /// output (inputs are standardised, so unbounded), mini-batches of 64 for up to 300
    /// epochs with early stopping on 10 % of the rows (patience 10). A few thousand rows of 20–40
    /// features train in about a second.
    pub fn traffic(hidden: usize, bottleneck: usize, seed: u64, target_fpr: f64) -> Self {
        AutoencoderOptions {
            params: AutoencoderParams::new()
                .hidden(vec![hidden])
                .bottleneck(bottleneck)
                .batch_size(64)
                .epochs(300)
                .patience(10)
                .validation_split(0.1)
                .seed(seed),
            target_fpr,
        }
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The model rejected the data.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Not enough rows of a class.
    #[error("{0}")]
    Data(String),
}

/// `ln(1 + x)` of every value (negative values keep their sign).
#[inline]
pub fn log_transform(values: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend(values.iter().map(|&v| v.signum() * v.abs().ln_1p()));
}

fn matrix_of(rows: &[&FeatureRow], cols: usize) -> Result<Matrix, ModelError> {
    let mut m = Matrix::with_capacity(cols, rows.len());
    let mut buf = Vec::with_capacity(cols);
    for r in rows {
        log_transform(&r.values, &mut buf);
        m.push_row(&buf)?;
    }
    Ok(m)
}

impl NetDetector {
    /// Trains an RBF SVM on `rows` labelled by `attack` (one label per row, both classes
    /// needed); C and gamma by stratified cross-validation over the grid (balanced accuracy),
    /// the scaler fitted inside each fold.
    pub fn train_svm(
        rows: &[&FeatureRow],
        attack: &[bool],
        features: FeatureConfig,
        options: &SvmOptions,
    ) -> Result<NetDetector, TrainError> {
        let names = features.kind.names();
        let x = matrix_of(rows, names.len())?;
        if attack.len() != rows.len() {
            return Err(ModelError::LengthMismatch {
                rows: rows.len(),
                labels: attack.len(),
            }
            .into());
        }
        let y = attack;
        let attack_rows = y.iter().filter(|&&a| a).count();
        let normal_rows = y.len() - attack_rows;
        if attack_rows == 0 || normal_rows == 0 {
            return Err(TrainError::Data(format!(
                "the SVM needs normal and attack rows; got {normal_rows} normal and {attack_rows} \
                 attack (give --labels, or train the unsupervised model)"
            )));
        }
        let (weight_normal, weight_attack) = if options.balanced {
            let n = y.len() as f64;
            (
                n / (2.0 * normal_rows as f64),
                n / (2.0 * attack_rows as f64),
            )
        } else {
            (1.0, 1.0)
        };
        let base = SvmParams {
            weight_normal,
            weight_attack,
            ..SvmParams::default()
        };
        let (c, gamma, cv) = if options.cs.len() * options.gammas.len() > 1 {
            let report = GridSearch {
                cs: options.cs.clone(),
                gammas: options.gammas.clone(),
                folds: options.folds,
                seed: options.seed,
                scoring: Scoring::BalancedAccuracy,
                base,
            }
            .run(&x, y)?;
            let best = report.best_row();
            (best.c, best.gamma, Some(report))
        } else {
            let c = options.cs.first().copied().unwrap_or(base.c);
            let gamma = options.gammas.first().copied().unwrap_or(base.gamma);
            (c, gamma, None)
        };
        let (scaler, xs) = StandardScaler::fit_transform(&x)?;
        let svm = SvmParams { c, gamma, ..base }.fit(&Labelled::new(&xs, y))?;
        Ok(NetDetector {
            format: FORMAT.to_string(),
            features,
            feature_names: names,
            scaler,
            model: NetModel::Svm(svm),
            threshold: Threshold::explicit(0.0),
            training: TrainingSummary {
                normal_rows,
                attack_rows,
                calibration_rows: 0,
                cv,
            },
        })
    }

    /// Trains an isolation forest on normal rows only and sets the threshold so that about
    /// `target_fpr` of the (held-out) calibration rows are over it.
    pub fn train_forest(
        normal: &[&FeatureRow],
        calibration: &[&FeatureRow],
        features: FeatureConfig,
        options: &ForestOptions,
    ) -> Result<NetDetector, TrainError> {
        let fit = |xs: &Matrix| {
            let params = IsolationForestParams {
                seed: options.seed,
                ..options.params
            };
            let forest = params.fit(xs)?;
            Ok(NetModel::IsolationForest(forest))
        };
        let fpr = options.target_fpr;
        train_unsupervised(normal, calibration, features, fpr, "isolation forest", fit)
    }

    /// Trains an autoencoder on normal rows only (standardised log features) and sets the
    /// threshold so that about `target_fpr` of the calibration rows are over it.
    pub fn train_autoencoder(
        normal: &[&FeatureRow],
        calibration: &[&FeatureRow],
        features: FeatureConfig,
        options: &AutoencoderOptions,
    ) -> Result<NetDetector, TrainError> {
        let fit = |xs: &Matrix| {
            let ae = Fit::fit(&options.params, xs)
                .map_err(|e| TrainError::Data(format!("autoencoder: {e}")))?;
            Ok(NetModel::Autoencoder(ae))
        };
        let fpr = options.target_fpr;
        train_unsupervised(normal, calibration, features, fpr, "autoencoder", fit)
    }

    /// The score of one row of raw feature values (higher = more anomalous).
    #[inline]
    pub fn score(&self, values: &[f64], scratch: &mut Scratch) -> f64 {
        log_transform(values, &mut scratch.logged);
        scratch.scaled.resize(scratch.logged.len(), 0.0);
        self.scaler
            .transform_row(&scratch.logged, &mut scratch.scaled);
        match &self.model {
            NetModel::Svm(svm) => svm.decision(&scratch.scaled),
            NetModel::IsolationForest(f) => f.score(&scratch.scaled),
            NetModel::Autoencoder(ae) => {
                let ae_scratch = scratch.ae.get_or_insert_with(|| ae.scratch());
                ae.score(&scratch.scaled, ae_scratch)
            }
        }
    }

    /// True when the score is over the threshold.
    pub fn flags(&self, score: f64) -> bool {
        self.threshold.flags(score)
    }

    /// Short name of the model.
    pub fn algorithm(&self) -> &'static str {
        match self.model {
            NetModel::Svm(_) => "svm",
            NetModel::IsolationForest(_) => "iforest",
            NetModel::Autoencoder(_) => "autoencoder",
        }
    }

    /// Checks a loaded file is a detector this build can use.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("model format `{}` is not `{FORMAT}`", self.format));
        }
        let names = self.features.kind.names();
        if names != self.feature_names {
            return Err(format!(
                "the model's {} features differ from this build's {} {:?} features; retrain it",
                self.feature_names.len(),
                names.len(),
                self.features.kind
            ));
        }
        if self.scaler.n_features() != names.len() {
            return Err("the model's scaler does not match its features".to_string());
        }
        let model_features = match &self.model {
            NetModel::Svm(_) => None,
            NetModel::IsolationForest(f) => Some(f.n_features()),
            NetModel::Autoencoder(ae) => Some(ae.n_features()),
        };
        if model_features.is_some_and(|n| n != names.len()) {
            return Err("the model does not match its features".to_string());
        }
        Ok(())
    }
}

/// Buffers reused across [`NetDetector::score`] calls (one detector per scratch).
#[derive(Debug, Default)]
pub struct Scratch {
    logged: Vec<f64>,
    scaled: Vec<f64>,
    ae: Option<VectorScratch>,
}

/// An unsupervised detector: `fit` learns the standardised log features of the `normal` rows
/// (the scaler fitted on them), and the threshold is set so that about `target_fpr` of the
/// calibration rows' scores are over it.
fn train_unsupervised(
    normal: &[&FeatureRow],
    calibration: &[&FeatureRow],
    features: FeatureConfig,
    target_fpr: f64,
    what: &str,
    fit: impl FnOnce(&Matrix) -> Result<NetModel, TrainError>,
) -> Result<NetDetector, TrainError> {
    if normal.len() < 2 || calibration.is_empty() {
        return Err(TrainError::Data(format!(
            "the {what} needs normal rows to train on and to calibrate on; got {} and {}",
            normal.len(),
            calibration.len()
        )));
    }
    let feature_names = features.kind.names();
    let x = matrix_of(normal, feature_names.len())?;
    let (scaler, xs) = StandardScaler::fit_transform(&x)?;
    let model = fit(&xs)?;
    let mut detector = NetDetector {
        format: FORMAT.to_string(),
        features,
        feature_names,
        scaler,
        model,
        threshold: Threshold::explicit(f64::INFINITY),
        training: TrainingSummary {
            normal_rows: normal.len(),
            attack_rows: 0,
            calibration_rows: calibration.len(),
            cv: None,
        },
    };
    let mut scratch = Scratch::default();
    let scores: Vec<f64> = calibration
        .iter()
        .map(|r| detector.score(&r.values, &mut scratch))
        .collect();
    detector.threshold = calibrate(&scores, target_fpr)
        .map_err(|e| TrainError::Data(format!("cannot calibrate the threshold: {e}")))?;
    Ok(detector)
}
