//! Training policy: recordings of normal operation → class table → windows → fitted model →
//! calibrated threshold, as `mamori train` and `mamori learn` both do it.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mamori_detect::calibrate::{
    calibrate, check_reachable, novel_call_floor, unlike_tail, Threshold, ThresholdMethod,
};
use mamori_detect::classes::LearnParams;
use mamori_detect::window::{stitch_streams, WindowConfig};
use mamori_detect::Symbol;

use crate::context::{ContextLearner, ContextProfile};
use crate::declared::DeclaredRequest;
use crate::model::{class_share, Detector, ModelKind, ModelSettings, TrainedModel, TrainingInfo};
use crate::recording::{self, ReadOptions};

/// Everything a training run needs.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Recordings of normal operation.
    pub inputs: Vec<PathBuf>,
    /// How they are read.
    pub read: ReadOptions,
    /// Class table file; without it one is learned from the inputs with `learn`.
    pub profile: Option<PathBuf>,
    /// Settings for learning a class table.
    pub learn: LearnParams,
    /// Window settings.
    pub window: WindowConfig,
    /// Windows starting this soon after each recording's first call are left out (ns).
    pub warmup_ns: i64,
    /// Which model.
    pub kind: ModelKind,
    /// Its hyper-parameters.
    pub settings: ModelSettings,
    /// A separate normal recording to calibrate on; else the last `holdout` share is held out.
    pub calibrate: Vec<PathBuf>,
    /// Share of the (most recent) training windows held out for calibration.
    pub holdout: f64,
    /// Target false-positive rate on the calibration windows.
    pub target_fpr: f64,
    /// Use this threshold instead of calibrating one.
    pub threshold: Option<f64>,
    /// STIDE: never flag a window for fewer novel calls than this (0: no floor).
    pub tolerate_novel_calls: usize,
    /// Leave a calibration tail unlike the rest (shutdown, exits) out of calibration.
    pub trim_unlike_tail: bool,
    /// The device's HTTP API from its Thing Description, for the request signal (empty: none).
    pub declared_api: Vec<DeclaredRequest>,
}

/// What happened besides the model, for the caller to report.
#[derive(Debug, Clone, Default)]
pub struct TrainNotes {
    /// Calibration windows at the end that scored unlike the rest (0: none).
    pub unlike_tail: usize,
    /// Of all calibration windows.
    pub calibration_windows: usize,
    /// Whether the unlike tail was left out.
    pub trimmed: bool,
}

/// Trains and calibrates; `on_window` is called once per training window read (progress).
pub fn train(cfg: &TrainConfig, mut on_window: impl FnMut()) -> Result<(TrainedModel, TrainNotes)> {
    if !(0.0..1.0).contains(&cfg.holdout) {
        bail!("the holdout share must be in [0, 1), got {}", cfg.holdout);
    }
    if let Some(t) = cfg.threshold.filter(|t| !t.is_finite()) {
        bail!("the threshold must be a finite number, got {t}");
    }
    cfg.window.check()?;
    let table = recording::class_table(
        cfg.profile.as_deref(),
        &cfg.learn,
        &cfg.inputs,
        &cfg.read,
        None,
    )?;
    let mut windows: Vec<Vec<Symbol>> = Vec::new();
    // (stream, start) of each window, to rebuild whole streams for models that read them.
    let mut origin: Vec<(u64, u64)> = Vec::new();
    // What the container did by name, for the context signals (every call, warm-up included:
    // a program its start-up runs is one it runs).
    let mut context = ContextLearner::new();
    let mut file = usize::MAX;
    let read = recording::windows_observed(
        &cfg.inputs,
        &cfg.read,
        &table,
        cfg.window,
        cfg.warmup_ns,
        None,
        |f, e| {
            if f != file {
                file = f;
                context.next_recording();
            }
            context.observe(e);
        },
        |w| {
            on_window();
            origin.push((w.stream, w.start));
            windows.push(w.symbols);
            Ok(())
        },
    )?;
    let (events, monitored) = (read.events, read.monitored);
    if windows.is_empty() {
        bail!(
            "no windows: {events} events read, {monitored} matched the class table `{}`",
            table.config().name
        );
    }
    let mut calibration: Vec<Vec<Symbol>> = Vec::new();
    if !cfg.calibrate.is_empty() {
        recording::windows_of(
            &cfg.calibrate,
            &cfg.read,
            &table,
            cfg.window,
            cfg.warmup_ns,
            |w| {
                calibration.push(w.symbols);
                Ok(())
            },
        )?;
    } else if cfg.threshold.is_none() && cfg.holdout > 0.0 {
        let keep = windows.len() - ((windows.len() as f64 * cfg.holdout) as usize);
        calibration = windows.split_off(keep.max(1));
    }
    let train: Vec<&[Symbol]> = cfg.settings.subsample(&windows);
    // Whole streams of the training windows (the held-out ones excluded), for `cover` and `gru`.
    let sequences: Vec<Vec<Symbol>> = match cfg.kind {
        ModelKind::Cover | ModelKind::Gru => stitch_streams(
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
        cfg.kind,
        &cfg.settings,
        cfg.settings.seed,
        &train,
        &sequence_refs,
        table.n_symbols(),
        cfg.window.size,
    )?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let mut notes = TrainNotes {
        calibration_windows: calibration.len(),
        ..TrainNotes::default()
    };
    let threshold = match cfg.threshold {
        Some(v) => Some(Threshold {
            value: v,
            method: ThresholdMethod::Explicit(v),
        }),
        None if !calibration.is_empty() => {
            let refs: Vec<&[Symbol]> = calibration.iter().map(Vec::as_slice).collect();
            let mut scores = detector.calibration_scorer().score_many(&refs);
            notes.unlike_tail = unlike_tail(&scores, cfg.target_fpr);
            if notes.unlike_tail > 0 && cfg.trim_unlike_tail {
                scores.truncate(scores.len() - notes.unlike_tail);
                notes.trimmed = true;
            }
            let t = calibrate(&scores, cfg.target_fpr).context("calibrating the threshold")?;
            check_reachable(t.value, detector.calibration_scorer().max_score())
                .context("calibrating the threshold")?;
            Some(t)
        }
        None => None,
    };
    let threshold = match (&detector, threshold) {
        (Detector::Stide(stide), Some(t))
            if cfg.tolerate_novel_calls > 0 && cfg.threshold.is_none() =>
        {
            let floor = novel_call_floor(cfg.tolerate_novel_calls, stide.ngram(), cfg.window.size);
            Some(if floor > t.value {
                Threshold {
                    value: floor,
                    method: ThresholdMethod::NovelCallFloor {
                        calls: cfg.tolerate_novel_calls,
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
        kind: cfg.kind,
        classes: table.config().clone(),
        window: cfg.window,
        threshold,
        class_share: class_share(train.iter().copied(), table.n_symbols()),
        training: TrainingInfo {
            inputs: cfg.inputs.iter().map(|p| p.display().to_string()).collect(),
            events,
            monitored_events: monitored,
            windows: train.len() as u64,
            calibration_windows: calibration.len() as u64,
            seed: cfg.settings.seed,
            fit_seconds,
            input: Some(read.profile),
        },
        context: Some(ContextProfile {
            declared: cfg.declared_api.clone(),
            ..context.finish()
        }),
        detector,
    };
    Ok((model, notes))
}
