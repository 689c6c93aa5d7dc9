//! `mamori net train`: a detector from captures.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use mamori_detect::iforest::IsolationForestParams;
use mamori_net::detector::{
    AutoencoderOptions, BaselineOptions, ForestOptions, NetDetector, SvmOptions,
};
use mamori_net::features::FeatureRow;
use mamori_net::labels::LabelledRow;

use mamori_pipeline::net_train::{equal_by_source, held_out_every_fourth, sample_rows, Sourced};

use super::input::{self, FeatureArgs, PacketInputArgs};
use crate::modelfile;

/// Which model to train.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RBF SVM on labelled normal and attack rows (the seed's model).
    Svm,
    /// Isolation forest on normal rows only (no attack labels needed).
    Iforest,
    /// Autoencoders on normal rows only (no attack labels needed), the recommended unsupervised
    /// model: by default an ensemble of five seeds (`--members`) with per-device baselines
    /// (`--warmup`, `--no-baselines`).
    #[value(alias = "ae")]
    Autoencoder,
}

/// Train a network detector on captures and write it as a model file (JSON in mamori's
/// checksummed model envelope, kind `net`).
///
/// `--model svm` needs attack labels (`--labels`): rows holding labelled attack packets are class
/// 1, the rest class 0; C and gamma are chosen by stratified cross-validation. `--model iforest`
/// and `--model autoencoder` learn normal traffic only (labelled attack rows, if any, are left
/// out) and calibrate their threshold on held-out normal rows (every fourth, or the
/// `--calibrate` captures).
///
/// The autoencoder is by default five autoencoders of consecutive seeds whose errors, each
/// divided by its own 99th calibration percentile, are combined by their median (`--members 1`:
/// one autoencoder), with per-device baselines: a device seen in training is flagged over
/// max(threshold, --baseline-margin × its highest normal training score); a device never seen
/// in training is not flagged during its first --warmup (its warm-up), then over
/// max(threshold at --new-device-fpr, --baseline-margin × its highest warm-up score).
/// `--no-baselines` keeps one threshold for every device.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub input: PacketInputArgs,
    #[command(flatten)]
    pub features: FeatureArgs,
    /// The model.
    #[arg(long, value_enum, default_value = "svm")]
    pub model: Algorithm,
    /// Output detector file.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// SVM: C values to try (comma-separated).
    #[arg(
        long = "c",
        default_value = "0.1,1,10,100,1000",
        value_delimiter = ',',
        value_name = "C",
        value_parser = crate::cmd::numbers::positive
    )]
    pub cs: Vec<f64>,
    /// SVM: gamma values to try, as multiples of 1/n_features (comma-separated; 1 is
    /// scikit-learn's `gamma="scale"` on standardised features).
    #[arg(
        long = "gamma",
        default_value = "0.01,0.1,1,10",
        value_delimiter = ',',
        value_name = "G",
        value_parser = crate::cmd::numbers::positive
    )]
    pub gammas: Vec<f64>,
    /// SVM: cross-validation folds.
    #[arg(long, default_value_t = 5, value_parser = crate::cmd::numbers::at_least_two)]
    pub folds: usize,
    /// SVM: weigh classes inversely to their frequency (default: equal weights, as the seed and
    /// scikit-learn do; on the lab data balancing raised false alarms several-fold for no
    /// gain in detection).
    #[arg(long)]
    pub balanced: bool,
    /// At most this many training rows (and calibration rows); above it, every attack row is kept
    /// (up to half) and normal rows are sampled, shared fairly between the captures (SVM training
    /// time grows with the square of the rows).
    #[arg(long, default_value_t = 5_000, value_parser = crate::cmd::numbers::count)]
    pub max_rows: usize,
    /// Isolation forest: trees.
    #[arg(long, default_value_t = 100, value_parser = crate::cmd::numbers::count)]
    pub trees: usize,
    /// Isolation forest: rows sampled per tree.
    #[arg(long, default_value_t = 256, value_parser = crate::cmd::numbers::count)]
    pub max_samples: usize,
    /// Autoencoder: units of the hidden layer on each side of the bottleneck.
    #[arg(long, default_value_t = 32, value_parser = crate::cmd::numbers::count)]
    pub hidden: usize,
    /// Autoencoder: units of the bottleneck (keep it well below the feature count, or the
    /// network learns to copy anything).
    #[arg(long, default_value_t = 8, value_parser = crate::cmd::numbers::count)]
    pub bottleneck: usize,
    /// Isolation forest and autoencoder: share of normal calibration rows allowed over the
    /// threshold.
    #[arg(long, default_value_t = 0.01, value_parser = crate::cmd::numbers::below_one)]
    pub target_fpr: f64,
    /// Isolation forest and autoencoder: calibrate on these normal captures instead of
    /// held-out rows.
    #[arg(long, value_name = "CAPTURE", num_args = 1..)]
    pub calibrate: Vec<PathBuf>,
    /// Autoencoder: members of the ensemble (seeds --seed, --seed + 1, …); 1 trains a single
    /// autoencoder.
    #[arg(long, default_value_t = 5, value_parser = crate::cmd::numbers::count)]
    pub members: usize,
    /// Autoencoder: one threshold for every device (no per-device baselines, no warm-up).
    #[arg(long)]
    pub no_baselines: bool,
    /// Autoencoder baselines: how long a device never seen in training is only learnt, not
    /// judged, from its first row on (`0s`: no warm-up).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub warmup: std::time::Duration,
    /// Autoencoder baselines: a device's threshold is at least this many times its highest
    /// normal score (in training, or in its warm-up).
    #[arg(long, default_value_t = 2.0, value_parser = crate::cmd::numbers::positive)]
    pub baseline_margin: f64,
    /// Autoencoder baselines: share of calibration rows over the lowest threshold of a device
    /// never seen in training.
    #[arg(long, default_value_t = 0.001, value_parser = crate::cmd::numbers::below_one)]
    pub new_device_fpr: f64,
    /// Seed for folds, sampling and trees.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Fewer distinct training rows than this get a warning: a detector learnt from a handful of
/// rows flags nearly everything else (or nothing).
const FEW_ROWS: usize = 50;

pub fn run(args: TrainArgs) -> Result<()> {
    let config = args.features.config();
    input::check_stdin_once(args.input.files.iter().chain(&args.calibrate))?;
    let labels = input::load_labels(&args.input.labels)?;
    let (rows, stats) = input::collect_rows(&args.input, &config, &labels)?;
    super::report_input(&stats);
    super::warn_unmatched_labels(&labels, &stats);
    // What the model learns from, before any sampling: reported instead of the repeats.
    let mut distinct: Option<(usize, usize)> = None;
    let all_rows = &rows;
    let n_features = config.kind.names().len() as f64;
    let detector = match args.model {
        Algorithm::Svm => {
            let sample = sample_rows(all_rows, args.max_rows, args.seed, LabelledRow::is_attack);
            if let Some((attack, normal)) = sample.sampled {
                eprintln!(
                    "mamori: training on a sample of {attack} attack and {normal} normal rows (--max-rows {})",
                    args.max_rows
                );
            }
            let rows = sample.rows;
            let attack_rows = rows.iter().filter(|r| r.is_attack()).count();
            warn_few("normal", rows.len() - attack_rows);
            warn_few("attack", attack_rows);
            let options = SvmOptions {
                cs: args.cs.clone(),
                gammas: args.gammas.iter().map(|g| g / n_features).collect(),
                folds: args.folds,
                balanced: args.balanced,
                seed: args.seed,
            };
            let (rows, attack): (Vec<&FeatureRow>, Vec<bool>) =
                rows.iter().map(|r| (&r.row, r.is_attack())).unzip();
            NetDetector::train_svm(&rows, &attack, config, &options)?
        }
        Algorithm::Iforest | Algorithm::Autoencoder => {
            let mut rng = mamori_detect::rng::Rng::seeded(args.seed);
            let calibration_rows;
            let (train, calib) = if args.calibrate.is_empty() {
                held_out_every_fourth(normal_of(all_rows))
            } else {
                let cal_input = PacketInputArgs {
                    files: args.calibrate.clone(),
                    interface: None,
                    ..args.input.clone()
                };
                let (cal, cal_stats) = input::collect_rows(&cal_input, &config, &labels)?;
                eprintln!("mamori: calibration: {} rows", cal_stats.rows);
                calibration_rows = cal;
                (normal_of(all_rows), normal_of(&calibration_rows))
            };
            let (n_train, n_calib) = (train.len(), calib.len());
            distinct = Some((n_train, n_calib));
            warn_few("normal training", n_train);
            warn_few("calibration", n_calib);
            // Every capture weighs the same in the model and in the threshold: a device with
            // few rows would otherwise be a small cluster, and small clusters look anomalous.
            let train = equal_by_source(train, args.max_rows, &mut rng);
            let calib = equal_by_source(calib, args.max_rows, &mut rng);
            if train.len() > n_train || calib.len() > n_calib {
                eprintln!(
                    "mamori: {n_train} normal training and {n_calib} calibration rows drawn \
                     with repeats to {} and {}, so that every capture weighs the same \
                     (--max-rows {})",
                    train.len(),
                    calib.len(),
                    args.max_rows
                );
            }
            let (train, calib) = (features_of(&train), features_of(&calib));
            // Every normal row, unsampled: each device's own baseline.
            let baseline_rows: Vec<&FeatureRow> = all_rows
                .iter()
                .filter(|(_, r)| !r.is_attack())
                .map(|(_, r)| &r.row)
                .collect();
            if args.model == Algorithm::Iforest {
                let options = ForestOptions {
                    params: IsolationForestParams {
                        n_estimators: args.trees,
                        max_samples: Some(args.max_samples),
                        seed: args.seed,
                    },
                    target_fpr: args.target_fpr,
                    seed: args.seed,
                };
                NetDetector::train_forest(&train, &calib, config, &options)?
            } else {
                let baselines = (!args.no_baselines).then(|| BaselineOptions {
                    warmup_ns: u64::try_from(args.warmup.as_nanos()).unwrap_or(u64::MAX),
                    margin: args.baseline_margin,
                    new_device_fpr: args.new_device_fpr,
                });
                let options = AutoencoderOptions {
                    members: args.members,
                    baselines,
                    ..AutoencoderOptions::traffic(
                        args.hidden,
                        args.bottleneck,
                        args.seed,
                        args.target_fpr,
                    )
                };
                NetDetector::train_autoencoder(&train, &calib, &baseline_rows, config, &options)?
            }
        }
    };
    if let Some(cv) = &detector.training.cv {
        eprintln!("{cv}");
    }
    modelfile::save(&args.output, modelfile::ModelKind::Net, &detector)?;
    let t = &detector.training;
    let rows_text = match distinct {
        Some((n_train, n_calib)) => format!(
            "{n_train} normal {:?} rows (calibrated on {n_calib})",
            config.kind
        ),
        None => format!(
            "{} normal and {} attack {:?} rows",
            t.normal_rows, t.attack_rows, config.kind
        ),
    };
    eprintln!(
        "mamori: {} detector on {rows_text}, threshold {:.6} -> {}",
        detector.algorithm(),
        detector.threshold.value,
        args.output.display()
    );
    if let Some(b) = &detector.baselines {
        eprintln!(
            "mamori: per-device baselines: {} devices seen in training; a new device is learnt \
             for {} and then flagged over at least {:.6}",
            b.known.len(),
            humantime::format_duration(std::time::Duration::from_nanos(b.warmup_ns)),
            b.new_device_threshold
        );
    }
    if stats.rows == 0 {
        bail!("no rows were extracted");
    }
    Ok(())
}

fn warn_few(what: &str, n: usize) {
    if n > 0 && n < FEW_ROWS {
        eprintln!(
            "mamori: warning: only {n} {what} rows: too few for a reliable detector (give longer \
             captures, or a shorter --window / --interval)"
        );
    }
}

/// The feature rows alone (the unsupervised models learn without labels).
fn features_of<'a>(rows: &[&'a LabelledRow]) -> Vec<&'a FeatureRow> {
    rows.iter().map(|r| &r.row).collect()
}

/// The normal rows, with their capture.
fn normal_of(rows: &[(String, LabelledRow)]) -> Sourced<'_, LabelledRow> {
    rows.iter()
        .filter(|(_, r)| !r.is_attack())
        .map(|(s, r)| (s.as_str(), r))
        .collect()
}
