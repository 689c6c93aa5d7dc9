//! A trained network detector: feature settings, scaling and a model in one file, so scoring
//! extracts exactly the features the model was trained on. The file is the body of
//! `mamori_core::envelope` (kind `Net`): a changed digit fails its checksum instead of silently
//! scoring differently; [`NetDetector::check`] then checks the body against this build.
//!
//! Counts in traffic are heavy-tailed (a flood sends 10,000 packets where a sensor sends 3), so
//! every feature goes through `ln(1 + x)` before standardisation; otherwise a single flood
//! window would set the scale and squash every normal difference to nothing.

use std::collections::{BTreeMap, HashMap};

use mamori_detect::autoencoder::{AutoencoderParams, VectorAutoencoder, VectorScratch};
use mamori_detect::calibrate::{calibrate, Threshold};
use mamori_detect::dataset::Labelled;
use mamori_detect::error::ModelError;
use mamori_detect::iforest::{IsolationForest, IsolationForestParams};
use mamori_detect::matrix::Matrix;
use mamori_detect::scaler::StandardScaler;
use mamori_detect::svm::{CvReport, GridSearch, Scoring, Svm, SvmParams};
use mamori_detect::Fit;

use crate::features::{FeatureConfig, FeatureKind, FeatureRow};

/// File format tag written by this build: `/2` added autoencoder ensembles and per-device
/// baselines. Files of [`FORMAT_V1`] still load and score as before.
pub const FORMAT: &str = "mamori-net-detector/2";

/// The first format (one model, one threshold for every device).
pub const FORMAT_V1: &str = "mamori-net-detector/1";

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
    /// Autoencoders of different seeds trained on the same rows: the score is the median over
    /// members of each member's error divided by its own calibration unit (see
    /// [`AutoencoderEnsemble`]).
    AutoencoderEnsemble(AutoencoderEnsemble),
}

/// Several autoencoders whose errors are put on one scale and combined by their median, so the
/// verdict no longer depends on one seed's luck. A member's error is divided by its `unit`: its
/// `(1 − target_fpr)` quantile of the calibration rows, so 1.0 means "as unusual as the member's
/// own 1 % tail" whatever the member's absolute error level.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AutoencoderEnsemble {
    /// The members.
    pub members: Vec<VectorAutoencoder>,
    /// Each member's error unit (positive, finite).
    pub units: Vec<f64>,
}

impl AutoencoderEnsemble {
    /// The median of the members' standardised errors of one scaled row.
    fn score(&self, scaled: &[f64], ae: &mut VectorScratch, buf: &mut Vec<f64>) -> f64 {
        buf.clear();
        buf.extend(
            self.members
                .iter()
                .zip(&self.units)
                .map(|(m, u)| m.score(scaled, ae) / u),
        );
        median(buf)
    }
}

/// Median of finite values (sorts `v`); 0 for none.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

impl NetModel {
    /// The algorithm's name as model files and alerts write it.
    pub fn algorithm(&self) -> &'static str {
        match self {
            NetModel::Svm(_) => "svm",
            NetModel::IsolationForest(_) => "isolation-forest",
            NetModel::Autoencoder(_) => "autoencoder",
            NetModel::AutoencoderEnsemble(_) => "autoencoder-ensemble",
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
    /// Per-device thresholds (absent in [`FORMAT_V1`] files and with `--no-baselines`: one
    /// threshold for every device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baselines: Option<DeviceBaselines>,
}

/// Per-device baselines: each device (for flow rows, the host that opened the flow) is judged
/// against its own normal, the way a gateway learns the devices of its network.
///
/// - A device seen in training gets `max(threshold, margin × its highest normal training
///   score)`: a quiet sensor keeps the model's threshold, a noisy hub its own, higher one.
/// - A device not seen in training first goes through a warm-up: its rows whose end lies within
///   `warmup_ns` of its first row's start are scored but never flagged (and are left out of
///   `mamori net eval`'s counts); after it, its threshold is
///   `max(new_device_threshold, margin × its highest warm-up score)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeviceBaselines {
    /// Thresholds of the devices seen in training, by [`baseline_key`].
    pub known: BTreeMap<String, f64>,
    /// Warm-up of a device not seen in training (ns).
    pub warmup_ns: u64,
    /// Multiplier of a device's highest normal score.
    pub margin: f64,
    /// The lowest threshold of a device not seen in training, after its warm-up (the model's
    /// threshold at a stricter target false-positive rate: what is known of such a device is
    /// one warm-up, not a week of traffic).
    pub new_device_threshold: f64,
}

/// How to build [`DeviceBaselines`] when training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineOptions {
    /// [`DeviceBaselines::warmup_ns`].
    pub warmup_ns: u64,
    /// [`DeviceBaselines::margin`].
    pub margin: f64,
    /// Target false-positive rate on the calibration rows for
    /// [`DeviceBaselines::new_device_threshold`].
    pub new_device_fpr: f64,
}

impl Default for BaselineOptions {
    /// One hour of warm-up, margin 2, new devices at 0.1 % of calibration rows.
    fn default() -> Self {
        BaselineOptions {
            warmup_ns: 3_600_000_000_000,
            margin: 2.0,
            new_device_fpr: 0.001,
        }
    }
}

/// The device a row's baseline belongs to: the row's entity for device and interval rows, the
/// address that opened the flow for flow rows (`tcp 10.0.0.2:40000 > 10.0.0.9:80` → `10.0.0.2`,
/// `[fe80::1]:5353` → `fe80::1`).
pub fn baseline_key(kind: FeatureKind, entity: &str) -> &str {
    if kind != FeatureKind::Flow {
        return entity;
    }
    let from = entity.split_once(' ').map_or(entity, |(_, rest)| rest);
    let from = from.split_once(" > ").map_or(from, |(a, _)| a);
    if let Some(inner) = from.strip_prefix('[') {
        return inner.split_once(']').map_or(inner, |(a, _)| a);
    }
    match from.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => host,
        _ => from,
    }
}

/// What [`Judge::judge`] decided about one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// The row belongs to its device's warm-up: not flagged, not measured.
    pub warmup: bool,
    /// The threshold the row was judged against (infinite during a warm-up).
    pub threshold: f64,
    /// Score over the threshold.
    pub flagged: bool,
}

#[derive(Debug, Clone, Copy)]
struct WarmUp {
    first_ns: u64,
    max: f64,
}

/// Devices not seen in training remembered at once; beyond it every warm-up restarts (bounded
/// memory: a scan of many hosts cannot grow it without limit).
const MAX_NEW_DEVICES: usize = 100_000;

/// Per-device thresholds as rows arrive (one per scored stream): [`DeviceBaselines`] applied,
/// warm-ups of new devices tracked.
#[derive(Debug, Clone)]
pub struct Judge {
    kind: FeatureKind,
    threshold: f64,
    baselines: Option<DeviceBaselines>,
    new: HashMap<(String, String), WarmUp>,
}

impl Judge {
    /// Judges with `baselines`, or with the one `threshold` for every row when `None`.
    pub fn new(kind: FeatureKind, threshold: f64, baselines: Option<DeviceBaselines>) -> Self {
        Judge {
            kind,
            threshold,
            baselines,
            new: HashMap::new(),
        }
    }

    /// One row of `source` (a capture or interface: warm-ups are per source) of `entity`, with
    /// its time span and score. Rows of a device must come in time order.
    pub fn judge(
        &mut self,
        source: &str,
        entity: &str,
        start_ns: u64,
        end_ns: u64,
        score: f64,
    ) -> Judgement {
        let Some(b) = &self.baselines else {
            return Judgement {
                warmup: false,
                threshold: self.threshold,
                flagged: score > self.threshold,
            };
        };
        let key = baseline_key(self.kind, entity);
        let threshold = if let Some(&t) = b.known.get(key) {
            t
        } else {
            let id = (source.to_string(), key.to_string());
            if !self.new.contains_key(&id) && self.new.len() >= MAX_NEW_DEVICES {
                self.new.clear();
            }
            let w = self.new.entry(id).or_insert(WarmUp {
                first_ns: start_ns,
                max: 0.0,
            });
            if end_ns.saturating_sub(w.first_ns) <= b.warmup_ns {
                if score.is_finite() {
                    w.max = w.max.max(score);
                }
                return Judgement {
                    warmup: true,
                    threshold: f64::INFINITY,
                    flagged: false,
                };
            }
            b.new_device_threshold.max(b.margin * w.max)
        };
        Judgement {
            warmup: false,
            threshold,
            flagged: score > threshold,
        }
    }
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
    /// Autoencoders trained (seeds `seed`, `seed + 1`, …): 1 is the single model of
    /// [`FORMAT_V1`], more an [`AutoencoderEnsemble`].
    pub members: usize,
    /// Per-device baselines (`None`: one threshold for every device).
    pub baselines: Option<BaselineOptions>,
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
            members: 1,
            baselines: None,
        }
    }

    /// [`AutoencoderOptions::traffic`] as `mamori net train --model autoencoder` trains it by
    /// default: five members and per-device baselines ([`BaselineOptions::default`]).
    pub fn recommended(hidden: usize, bottleneck: usize, seed: u64, target_fpr: f64) -> Self {
        AutoencoderOptions {
            members: 5,
            baselines: Some(BaselineOptions::default()),
            ..Self::traffic(hidden, bottleneck, seed, target_fpr)
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
            baselines: None,
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

    /// Trains an autoencoder (or, with `options.members > 1`, an [`AutoencoderEnsemble`]) on
    /// normal rows only (standardised log features) and sets the threshold so that about
    /// `target_fpr` of the calibration rows are over it. With `options.baselines`, the
    /// per-device thresholds come from the scores of `baseline_rows` (every normal row the
    /// devices sent in training, before any sampling).
    pub fn train_autoencoder(
        normal: &[&FeatureRow],
        calibration: &[&FeatureRow],
        baseline_rows: &[&FeatureRow],
        features: FeatureConfig,
        options: &AutoencoderOptions,
    ) -> Result<NetDetector, TrainError> {
        let members = options.members.max(1);
        let fit = |xs: &Matrix| {
            let mut nets = Vec::with_capacity(members);
            for k in 0..members {
                let seed = options.params.seed.wrapping_add(k as u64);
                let params = options.params.clone().seed(seed);
                let ae = Fit::fit(&params, xs)
                    .map_err(|e| TrainError::Data(format!("autoencoder: {e}")))?;
                nets.push(ae);
            }
            if members == 1 {
                return Ok(NetModel::Autoencoder(nets.remove(0)));
            }
            Ok(NetModel::AutoencoderEnsemble(AutoencoderEnsemble {
                units: vec![1.0; members],
                members: nets,
            }))
        };
        let fpr = options.target_fpr;
        let mut detector =
            train_unsupervised(normal, calibration, features, fpr, "autoencoder", fit)?;
        if let NetModel::AutoencoderEnsemble(e) = &mut detector.model {
            // Each member's unit: its own (1 − target_fpr) calibration quantile.
            let mut scratch = Scratch::default();
            let mut units = Vec::with_capacity(e.members.len());
            for m in &e.members {
                let ae = scratch.ae.get_or_insert_with(|| m.scratch());
                let errors: Vec<f64> = calibration
                    .iter()
                    .map(|r| {
                        scale_row(
                            &detector.scaler,
                            &r.values,
                            &mut scratch.logged,
                            &mut scratch.scaled,
                        );
                        m.score(&scratch.scaled, ae)
                    })
                    .collect();
                let unit = calibrate(&errors, fpr)
                    .map_err(|e| TrainError::Data(format!("cannot calibrate a member: {e}")))?
                    .value;
                units.push(if unit.is_finite() && unit > 0.0 {
                    unit
                } else {
                    1.0
                });
            }
            e.units = units;
            detector.threshold = calibrate(&detector.scores(calibration), fpr)
                .map_err(|e| TrainError::Data(format!("cannot calibrate the threshold: {e}")))?;
        }
        if let Some(b) = options.baselines {
            let strict = calibrate(&detector.scores(calibration), b.new_device_fpr)
                .map_err(|e| TrainError::Data(format!("cannot calibrate the threshold: {e}")))?
                .value;
            let global = detector.threshold.value;
            let mut highest: BTreeMap<String, f64> = BTreeMap::new();
            let scores = detector.scores(baseline_rows);
            for (r, s) in baseline_rows.iter().zip(scores) {
                let key = baseline_key(detector.features.kind, &r.entity).to_string();
                let e = highest.entry(key).or_insert(0.0);
                *e = e.max(s);
            }
            let known = highest
                .into_iter()
                .map(|(k, h)| (k, global.max(b.margin * h)))
                .collect();
            detector.baselines = Some(DeviceBaselines {
                known,
                warmup_ns: b.warmup_ns,
                margin: b.margin,
                new_device_threshold: strict.max(global),
            });
        }
        Ok(detector)
    }

    /// Scores of many rows.
    pub fn scores(&self, rows: &[&FeatureRow]) -> Vec<f64> {
        let mut scratch = Scratch::default();
        rows.iter()
            .map(|r| self.score(&r.values, &mut scratch))
            .collect()
    }

    /// A [`Judge`] of this detector's rows: per-device thresholds when the detector has
    /// baselines and `use_baselines`, else its one threshold.
    pub fn judge(&self, use_baselines: bool) -> Judge {
        let baselines = self.baselines.clone().filter(|_| use_baselines);
        Judge::new(self.features.kind, self.threshold.value, baselines)
    }

    /// The score of one row of raw feature values (higher = more anomalous).
    #[inline]
    pub fn score(&self, values: &[f64], scratch: &mut Scratch) -> f64 {
        scale_row(
            &self.scaler,
            values,
            &mut scratch.logged,
            &mut scratch.scaled,
        );
        match &self.model {
            NetModel::Svm(svm) => svm.decision(&scratch.scaled),
            NetModel::IsolationForest(f) => f.score(&scratch.scaled),
            NetModel::Autoencoder(ae) => {
                let ae_scratch = scratch.ae.get_or_insert_with(|| ae.scratch());
                ae.score(&scratch.scaled, ae_scratch)
            }
            NetModel::AutoencoderEnsemble(e) => {
                let Some(first) = e.members.first() else {
                    return 0.0;
                };
                let ae_scratch = scratch.ae.get_or_insert_with(|| first.scratch());
                e.score(&scratch.scaled, ae_scratch, &mut scratch.members)
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
            NetModel::AutoencoderEnsemble(_) => "autoencoder-ensemble",
        }
    }

    /// Checks a loaded file is a detector this build can use.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT && self.format != FORMAT_V1 {
            return Err(format!(
                "model format `{}` is neither `{FORMAT}` nor `{FORMAT_V1}`",
                self.format
            ));
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
            NetModel::AutoencoderEnsemble(e) => {
                let shapes_agree = !e.members.is_empty()
                    && e.units.len() == e.members.len()
                    && e.units.iter().all(|u| u.is_finite() && *u > 0.0)
                    && e.members.iter().all(|m| {
                        m.params().hidden == e.members[0].params().hidden
                            && m.params().bottleneck == e.members[0].params().bottleneck
                            && m.n_features() == e.members[0].n_features()
                    });
                if !shapes_agree {
                    return Err(
                        "the autoencoder ensemble's members or units are inconsistent".to_string(),
                    );
                }
                Some(e.members[0].n_features())
            }
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
    members: Vec<f64>,
}

/// `ln(1 + x)` of `values` into `logged`, standardised into `scaled`.
fn scale_row(
    scaler: &StandardScaler,
    values: &[f64],
    logged: &mut Vec<f64>,
    scaled: &mut Vec<f64>,
) {
    log_transform(values, logged);
    scaled.resize(logged.len(), 0.0);
    scaler.transform_row(logged, scaled);
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
        baselines: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_detect::rng::Rng;

    const S: u64 = 1_000_000_000;

    #[test]
    fn the_baseline_of_a_flow_is_the_host_that_opened_it() {
        let flow = FeatureKind::Flow;
        assert_eq!(
            baseline_key(flow, "tcp 10.0.0.2:40000 > 10.0.0.9:80"),
            "10.0.0.2"
        );
        assert_eq!(
            baseline_key(flow, "udp [fe80::1]:5353 > [ff02::fb]:5353"),
            "fe80::1"
        );
        assert_eq!(baseline_key(flow, "icmp 10.0.0.3 > 10.0.0.4"), "10.0.0.3");
        assert_eq!(
            baseline_key(FeatureKind::Device, "10.0.0.2:1"),
            "10.0.0.2:1"
        );
        assert_eq!(baseline_key(FeatureKind::Interval, "fe80::1"), "fe80::1");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    fn baselines() -> DeviceBaselines {
        DeviceBaselines {
            known: [("10.0.0.1".to_string(), 5.0)].into_iter().collect(),
            warmup_ns: 60 * S,
            margin: 2.0,
            new_device_threshold: 1.0,
        }
    }

    #[test]
    fn known_devices_have_their_own_threshold_and_new_ones_warm_up_first() {
        let mut j = Judge::new(FeatureKind::Device, 0.5, Some(baselines()));
        let known = j.judge("a.pcap", "10.0.0.1", 0, 10 * S, 4.0);
        assert_eq!(
            (known.warmup, known.threshold, known.flagged),
            (false, 5.0, false)
        );
        assert!(j.judge("a.pcap", "10.0.0.1", 10 * S, 20 * S, 6.0).flagged);
        // a new device: its first minute is learnt (highest 3.0), never flagged
        for (i, score) in [0.2, 3.0, 100.0].into_iter().enumerate() {
            let t = 1_000 * S + i as u64 * 10 * S;
            let w = j.judge("a.pcap", "10.0.0.9", t, t + 10 * S, score);
            assert!(w.warmup && !w.flagged && w.threshold.is_infinite());
        }
        // 100.0 fell in the warm-up too, so its threshold is 2 × 100
        let after = j.judge("a.pcap", "10.0.0.9", 1_060 * S, 1_070 * S, 150.0);
        assert_eq!(
            (after.warmup, after.threshold, after.flagged),
            (false, 200.0, false)
        );
        // another new device: warm-up max 0.1, so the new-device floor 1.0 holds
        j.judge("a.pcap", "10.0.0.8", 0, 10 * S, 0.1);
        let b = j.judge("a.pcap", "10.0.0.8", 100 * S, 110 * S, 1.5);
        assert_eq!((b.threshold, b.flagged), (1.0, true));
        // the same address in another capture is another device with its own warm-up
        assert!(j.judge("b.pcap", "10.0.0.8", 100 * S, 110 * S, 1.5).warmup);
        // without baselines: one threshold, no warm-up
        let mut one = Judge::new(FeatureKind::Device, 0.5, None);
        let r = one.judge("a.pcap", "10.0.0.9", 0, 10 * S, 0.6);
        assert_eq!((r.warmup, r.threshold, r.flagged), (false, 0.5, true));
    }

    /// Rows of 40 device features: `n` rows around a device-specific level with noise `sd`.
    fn rows(entity: &str, n: usize, sd: f64, rng: &mut Rng) -> Vec<FeatureRow> {
        let d = FeatureKind::Device.names().len();
        (0..n)
            .map(|i| {
                let base = 5.0 + rng.normal() * sd;
                let values = (0..d)
                    .map(|k| (base * (1.0 + k as f64 / 10.0) + rng.normal() * sd * 0.1).abs())
                    .collect();
                FeatureRow {
                    entity: entity.to_string(),
                    start_ns: i as u64 * 10 * S,
                    end_ns: (i as u64 + 1) * 10 * S,
                    packets: 10,
                    values,
                }
            })
            .collect()
    }

    #[test]
    fn an_ensemble_with_baselines_flags_the_odd_row_and_keeps_each_device_to_its_own_normal() {
        let mut rng = Rng::seeded(7);
        let quiet = rows("quiet", 300, 0.2, &mut rng);
        let noisy = rows("noisy", 300, 1.5, &mut rng);
        let all: Vec<&FeatureRow> = quiet.iter().chain(&noisy).collect();
        let train: Vec<&FeatureRow> = all.iter().step_by(4).copied().collect();
        let calibration: Vec<&FeatureRow> = all.iter().skip(1).step_by(4).copied().collect();
        let mut options = AutoencoderOptions::recommended(16, 4, 3, 0.01);
        options.members = 3;
        options.params = options.params.epochs(60);
        let det = NetDetector::train_autoencoder(
            &train,
            &calibration,
            &all,
            FeatureConfig::default(),
            &options,
        )
        .expect("trains");
        det.check().expect("consistent");
        assert_eq!(det.format, FORMAT);
        let NetModel::AutoencoderEnsemble(e) = &det.model else {
            panic!("an ensemble");
        };
        assert_eq!((e.members.len(), e.units.len()), (3, 3));
        // scores are in units of each member's 99th calibration percentile: the threshold is ~1
        assert!(
            (0.5..2.0).contains(&det.threshold.value),
            "{}",
            det.threshold.value
        );
        let b = det.baselines.as_ref().expect("baselines");
        assert!(b.known["noisy"] > b.known["quiet"], "{:?}", b.known);
        assert!(b.known["quiet"] >= det.threshold.value);
        assert!(b.new_device_threshold >= det.threshold.value);
        // a row unlike anything in training: every feature far off the devices' pattern
        let d = FeatureKind::Device.names().len();
        let odd: Vec<f64> = (0..d)
            .map(|k| if k % 2 == 0 { 0.0 } else { 5_000.0 })
            .collect();
        let mut scratch = Scratch::default();
        let odd_score = det.score(&odd, &mut scratch);
        let mut j = det.judge(true);
        assert!(j.judge("x", "quiet", 0, 10 * S, odd_score).flagged);
        assert!(j.judge("x", "noisy", 0, 10 * S, odd_score).flagged);
        // the noisy device's own rows pass under its threshold
        let noisy_flags = noisy
            .iter()
            .filter(|r| {
                let s = det.score(&r.values, &mut scratch);
                j.judge("x", &r.entity, r.start_ns, r.end_ns, s).flagged
            })
            .count();
        assert_eq!(noisy_flags, 0);
        // a file round trip scores the same
        let text = serde_json::to_string(&det).expect("json");
        let back: NetDetector = serde_json::from_str(&text).expect("parses");
        back.check().expect("consistent");
        assert_eq!(back.score(&odd, &mut Scratch::default()), odd_score);
        assert_eq!(back.baselines.as_ref(), Some(b));
    }

    #[test]
    fn one_member_without_baselines_is_the_first_format() {
        let mut rng = Rng::seeded(1);
        let normal = rows("dev", 200, 0.5, &mut rng);
        let refs: Vec<&FeatureRow> = normal.iter().collect();
        let mut options = AutoencoderOptions::traffic(8, 3, 1, 0.01);
        options.params = options.params.epochs(20);
        let det = NetDetector::train_autoencoder(
            &refs[..150],
            &refs[150..],
            &refs,
            FeatureConfig::default(),
            &options,
        )
        .expect("trains");
        assert!(matches!(det.model, NetModel::Autoencoder(_)));
        assert!(det.baselines.is_none());
        // a file of the first format (no baselines field) still loads and scores
        let mut json = serde_json::to_value(&det).expect("json");
        json["format"] = FORMAT_V1.into();
        assert!(json.get("baselines").is_none());
        let old: NetDetector = serde_json::from_value(json).expect("parses");
        old.check().expect("first format accepted");
        let mut j = old.judge(true);
        let r = j.judge("x", "dev", 0, 10 * S, old.threshold.value + 1.0);
        assert!(r.flagged && !r.warmup);
    }
}
