//! `mamori train`: normal events → class table → windows → fitted model → calibrated threshold.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use mamori_core::output::SymlinkPolicy;
use mamori_pipeline::model::ModelKind;
use mamori_pipeline::train::{self, TrainConfig};

use crate::cmd::model_args::{parse_model_kind, ModelArgs};
use crate::input::{InputArgs, ProfileArgs, WarmupArgs, WindowArgs};
use crate::{modelfile, progress};

/// Train a model on recordings of normal operation.
///
/// Example: mamori train --profile profiles/motion.toml --model hmm normal.strace -o motion-hmm.json
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Recordings of normal operation (strace, Falco/Tracee JSON, LID-DS .sc, ADFA-LD, JSON lines).
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// What to do when the held-out calibration windows end unlike the rest (a daemon's
    /// shutdown, processes exiting): `warn` says so, `auto` also leaves those windows out.
    #[arg(long, value_enum, default_value_t = CalibrateTrim::Warn, value_name = "HOW")]
    pub calibrate_trim: CalibrateTrim,
    /// Where to write the model file. A regular file is replaced atomically; a FIFO or device
    /// is written through; a symbolic link is refused unless `--replace-symlink`.
    #[arg(short, long, value_name = "MODEL")]
    pub output: PathBuf,
    /// Replace the symbolic link at `--output` with the new model file (its old target is left
    /// as it was).
    #[arg(long)]
    pub replace_symlink: bool,
    /// Separate normal recording for calibrating the threshold. Without it the last
    /// `--holdout` share of the training windows is held out for calibration.
    #[arg(long, value_name = "FILE")]
    pub calibrate: Vec<PathBuf>,
    /// Share of training windows (the most recent ones) held out for calibration.
    #[arg(value_parser = crate::cmd::numbers::fraction, long, default_value_t = 0.2, value_name = "SHARE")]
    pub holdout: f64,
    /// Target false-positive rate on the calibration windows.
    #[arg(value_parser = crate::cmd::numbers::fraction, long, default_value_t = 0.01, value_name = "RATE")]
    pub target_fpr: f64,
    /// Use this threshold instead of calibrating one.
    #[arg(value_parser = crate::cmd::numbers::finite, long, value_name = "SCORE")]
    pub threshold: Option<f64>,
    /// STIDE only: never flag a window for fewer than this many novel calls, whatever the
    /// calibration says (a floor under the threshold; see `mamori learn`).
    #[arg(long, default_value_t = 0, value_name = "CALLS")]
    pub tolerate_novel_calls: usize,
    /// Which model to train. The default, hmm-stide, is the 3-state HMM counted only in windows
    /// that hold an n-gram never seen in training (EVALUATION.md, issue #17).
    #[arg(long = "model", value_parser = parse_model_kind, default_value_t = ModelKind::HmmStide, value_name = "MODEL")]
    pub kind: ModelKind,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub warmup: WarmupArgs,
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--calibrate-trim` values.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibrateTrim {
    /// Warn about an unlike tail, calibrate on everything.
    Warn,
    /// Warn and leave the unlike tail out of calibration.
    Auto,
}

impl TrainArgs {
    /// The library's training settings these flags describe.
    pub fn config(&self) -> Result<TrainConfig> {
        Ok(TrainConfig {
            inputs: self.inputs.clone(),
            read: self.input.read_options(),
            profile: self.profile.profile.clone(),
            learn: self.profile.learn_params("learned"),
            window: self.window.config()?,
            warmup_ns: self.warmup.ns()?,
            kind: self.kind,
            settings: self.model.settings(),
            calibrate: self.calibrate.clone(),
            holdout: self.holdout,
            target_fpr: self.target_fpr,
            threshold: self.threshold,
            tolerate_novel_calls: self.tolerate_novel_calls,
            trim_unlike_tail: self.calibrate_trim == CalibrateTrim::Auto,
            declared_api: self.profile.declared_api()?,
        })
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let cfg = args.config()?;
    let symlinks = if args.replace_symlink {
        SymlinkPolicy::Replace
    } else {
        SymlinkPolicy::Refuse
    };
    train_and_save(&cfg, &args.output, symlinks, args.quiet)
}

/// Trains, reports what calibration noticed, writes the model file.
pub fn train_and_save(
    cfg: &TrainConfig,
    output: &Path,
    symlinks: SymlinkPolicy,
    quiet: bool,
) -> Result<()> {
    let bar = progress::counter("windows", quiet);
    let (model, notes) = train::train(cfg, || bar.inc(1))?;
    bar.finish_and_clear();
    if notes.unlike_tail > 0 {
        eprintln!(
            "mamori: warning: the last {} of {} calibration windows score unlike the rest (a shutdown or processes exiting at the end of the recording?); {}",
            notes.unlike_tail,
            notes.calibration_windows,
            if notes.trimmed {
                "left out of calibration (--calibrate-trim auto)"
            } else {
                "they set the threshold: --calibrate-trim auto leaves them out"
            }
        );
    }
    modelfile::save_with(output, modelfile::ModelKind::Syscall, &model, symlinks)
        .with_context(|| format!("cannot write model {}", output.display()))?;
    eprintln!(
        "mamori: trained {} on {} windows ({} events, {} monitored) in {:.2}s; threshold {}; wrote {}",
        model.kind,
        model.training.windows,
        model.training.events,
        model.training.monitored_events,
        model.training.fit_seconds,
        model
            .threshold
            .as_ref()
            .map_or("none".to_string(), |t| format!("{:.4}", t.value)),
        output.display()
    );
    Ok(())
}
