//! `mamori train`: normal events → class table → windows → fitted model → calibrated threshold.

use std::path::PathBuf;
use std::time::Instant;

use crate::cmd::model_args::{parse_model_kind, ModelArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use mamori_detect::calibrate::{
    calibrate, check_reachable, novel_call_floor, unlike_tail, Threshold, ThresholdMethod,
};
use mamori_detect::window::stitch_streams;
use mamori_detect::Symbol;

use crate::input::{self, InputArgs, ProfileArgs, WarmupArgs, WindowArgs};
use crate::{modelfile, progress};
use mamori_pipeline::model::{class_share, Detector, ModelKind, TrainedModel, TrainingInfo};

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
    /// Where to write the model file.
    #[arg(short, long, value_name = "MODEL")]
    pub output: PathBuf,
    /// Separate normal recording for calibrating the threshold. Without it the last
    /// `--holdout` share of the training windows is held out for calibration.
    #[arg(long, value_name = "FILE")]
    pub calibrate: Vec<PathBuf>,
    /// Share of training windows (the most recent ones) held out for calibration.
    #[arg(long, default_value_t = 0.2, value_name = "SHARE")]
    pub holdout: f64,
    /// Target false-positive rate on the calibration windows.
    #[arg(long, default_value_t = 0.01, value_name = "RATE")]
    pub target_fpr: f64,
    /// Use this threshold instead of calibrating one.
    #[arg(long, value_name = "SCORE")]
    pub threshold: Option<f64>,
    /// STIDE only: never flag a window for fewer than this many novel calls, whatever the
    /// calibration says (a floor under the threshold; see `mamori learn`).
    #[arg(long, default_value_t = 0, value_name = "CALLS")]
    pub tolerate_novel_calls: usize,
    /// Which model to train.
    #[arg(long = "model", value_parser = parse_model_kind, default_value_t = ModelKind::AeBosc, value_name = "MODEL")]
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

pub fn run(args: TrainArgs) -> Result<()> {
    if !(0.0..1.0).contains(&args.holdout) {
        bail!("--holdout must be in [0, 1), got {}", args.holdout);
    }
    let window = args.window.config()?;
    let table = input::class_table(&args.profile, &args.inputs, &args.input, None)?;
    let warmup_ns = args.warmup.ns()?;
    let bar = progress::counter("windows", args.quiet);
    let mut windows: Vec<Vec<Symbol>> = Vec::new();
    // (stream, start) of each window, to rebuild whole streams for models that read them.
    let mut origin: Vec<(u64, u64)> = Vec::new();
    let (events, monitored) =
        input::windows_of(&args.inputs, &args.input, &table, window, warmup_ns, |w| {
            bar.inc(1);
            origin.push((w.stream, w.start));
            windows.push(w.symbols);
            Ok(())
        })?;
    bar.finish_and_clear();
    if windows.is_empty() {
        bail!(
            "no windows: {events} events read, {monitored} matched the class table `{}`",
            table.config().name
        );
    }
    let mut calibration: Vec<Vec<Symbol>> = Vec::new();
    if !args.calibrate.is_empty() {
        input::windows_of(
            &args.calibrate,
            &args.input,
            &table,
            window,
            warmup_ns,
            |w| {
                calibration.push(w.symbols);
                Ok(())
            },
        )?;
    } else if args.threshold.is_none() && args.holdout > 0.0 {
        let keep = windows.len() - ((windows.len() as f64 * args.holdout) as usize);
        calibration = windows.split_off(keep.max(1));
    }
    let train: Vec<&[Symbol]> = args.model.settings().subsample(&windows);
    // Whole streams of the training windows (the held-out ones excluded), for `cover`.
    let sequences: Vec<Vec<Symbol>> = match args.kind {
        ModelKind::Cover => stitch_streams(
            origin
                .iter()
                .zip(&windows)
                .map(|(&(stream, start), w)| (stream, start, w.as_slice())),
        ),
        _ => Vec::new(),
    };
    let sequence_refs: Vec<&[Symbol]> = sequences.iter().map(Vec::as_slice).collect();
    let started = Instant::now();
    let detector = Detector::fit(
        args.kind,
        &args.model.settings(),
        args.model.seed,
        &train,
        &sequence_refs,
        table.n_symbols(),
        window.size,
    )?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let threshold = match args.threshold {
        Some(v) => Some(Threshold {
            value: v,
            method: ThresholdMethod::Explicit(v),
        }),
        None if !calibration.is_empty() => {
            let refs: Vec<&[Symbol]> = calibration.iter().map(Vec::as_slice).collect();
            let mut scores = detector.scorer().score_many(&refs);
            let unlike = unlike_tail(&scores, args.target_fpr);
            if unlike > 0 {
                let trim = args.calibrate_trim == CalibrateTrim::Auto;
                eprintln!(
                    "mamori: warning: the last {unlike} of {} calibration windows score unlike the rest (a shutdown or processes exiting at the end of the recording?); {}",
                    scores.len(),
                    if trim {
                        "left out of calibration (--calibrate-trim auto)"
                    } else {
                        "they set the threshold: --calibrate-trim auto leaves them out"
                    }
                );
                if trim {
                    scores.truncate(scores.len() - unlike);
                }
            }
            let t = calibrate(&scores, args.target_fpr).context("calibrating the threshold")?;
            check_reachable(t.value, detector.scorer().max_score())
                .context("calibrating the threshold")?;
            Some(t)
        }
        None => None,
    };
    let threshold = match (&detector, threshold) {
        (Detector::Stide(stide), Some(t))
            if args.tolerate_novel_calls > 0 && args.threshold.is_none() =>
        {
            let floor = novel_call_floor(args.tolerate_novel_calls, stide.ngram(), window.size);
            Some(if floor > t.value {
                Threshold {
                    value: floor,
                    method: ThresholdMethod::NovelCallFloor {
                        calls: args.tolerate_novel_calls,
                        calibrated: t.value,
                    },
                }
            } else {
                t
            })
        }
        (_, t) => t,
    };
    let model = TrainedModel {
        mamori_version: env!("CARGO_PKG_VERSION").to_string(),
        kind: args.kind,
        classes: table.config().clone(),
        window,
        threshold,
        class_share: class_share(train.iter().copied(), table.n_symbols()),
        training: TrainingInfo {
            inputs: args
                .inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            events,
            monitored_events: monitored,
            windows: train.len() as u64,
            calibration_windows: calibration.len() as u64,
            seed: args.model.seed,
            fit_seconds,
        },
        detector,
    };
    modelfile::save(&args.output, modelfile::ModelKind::Syscall, &model)
        .with_context(|| format!("cannot write model {}", args.output.display()))?;
    eprintln!(
        "mamori: trained {} on {} windows ({} events, {} monitored) in {:.2}s; threshold {}; wrote {}",
        args.kind,
        train.len(),
        events,
        monitored,
        fit_seconds,
        model
            .threshold
            .as_ref()
            .map_or("none".to_string(), |t| format!("{:.4}", t.value)),
        args.output.display()
    );
    Ok(())
}
