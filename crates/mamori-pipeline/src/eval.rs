//! Evaluation: train each model on normal data, calibrate a threshold on held-out normal data,
//! and measure it on labelled test data — the paper's Tables 3–6 (score ranges, threshold
//! sweeps), ROC AUC, per-trace results (ADFA-LD), per-recording results, and the operator view
//! (the agent's alert rule replayed, counted strictly; see [`crate::operator`]).
//!
//! Test windows are interned: a window that occurs many times (most do, in system-call data) is
//! scored once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mamori_core::AlertRule;
use mamori_detect::calibrate::{calibrate, trace_score, TraceAggregate};
use mamori_detect::classes::{ClassTable, LearnParams};
use mamori_detect::metrics::{rates_at, roc_auc, Rates, ScoreSummary};
use mamori_detect::window::{sequence_windows, WindowConfig};
use mamori_detect::Symbol;
use serde::Serialize;

use crate::context::{ContextLearner, ContextProfile, ContextWatcher, Novelty};
use crate::declared::DeclaredRequest;
use crate::labels::{self, AttackRange};
use crate::model::{Detector, ModelKind, ModelSettings};
use crate::operator::{operator_view, steps_hit, OperatorView, ScoredWindow};
use crate::recording::{self, ReadOptions};

/// How a whole trace is scored from its window scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceScore {
    /// Mean window score: long normal traces do not win by having more chances of one odd window.
    Mean,
    /// Highest window score.
    Max,
    /// Share of windows over the calibrated window threshold (STIDE's classic "mismatch rate").
    Share,
}

impl std::fmt::Display for TraceScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TraceScore::Mean => "mean",
            TraceScore::Max => "max",
            TraceScore::Share => "share",
        })
    }
}

/// Whether a trace was used for calibration, or is a normal or an attack test trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Held-out normal trace the threshold is calibrated on.
    Calibration,
    /// Normal test trace.
    Normal,
    /// Attack test trace.
    Attack,
}

/// One whole trace of a per-trace dataset (ADFA-LD).
#[derive(Debug)]
pub struct Trace {
    /// Attack family (ADFA-LD folder name), for attack traces.
    pub family: Option<String>,
    /// What the trace is used for.
    pub role: Role,
    /// Its windows, by interned id.
    pub windows: Vec<u32>,
    /// The whole trace, for models that score traces natively ([`Detector::sequence_score`]).
    pub symbols: Vec<Symbol>,
}

/// One test window.
#[derive(Debug)]
pub struct TestWindow {
    /// Interned id (index into [`Dataset::uniq`]).
    pub id: u32,
    /// Labelled attack.
    pub attack: bool,
    /// Position on the plots' x axis (seconds or window number).
    pub x: f64,
    /// Recording and call times, when the input has timestamps.
    pub time: Option<WindowTime>,
    /// Labelled steps during which one of its calls was made.
    pub steps: Vec<u32>,
}

/// Recording index, first and last call time (ns) of a window, when the input has timestamps.
pub type WindowTime = (u32, i64, i64);

/// Everything a model is evaluated on; test windows are interned, so a window that occurs many
/// times (most do, in system-call data) is scored once.
#[derive(Default)]
pub struct Dataset {
    /// Training windows.
    pub train: Vec<Vec<Symbol>>,
    /// Whole training traces (ADFA-LD), for models trained on sequences.
    pub train_traces: Vec<Vec<Symbol>>,
    /// Calibration windows, by interned id.
    pub calibration: Vec<u32>,
    /// Test windows, in the order each recording produced them.
    pub test: Vec<TestWindow>,
    /// Whole traces (per-trace datasets).
    pub traces: Vec<Trace>,
    /// Distinct windows, scored once each.
    pub uniq: Vec<Vec<Symbol>>,
    /// Window → interned id.
    pub index: HashMap<Vec<Symbol>, u32>,
    /// What the plots' x axis shows.
    pub x_label: String,
    /// Attack spans on the x axis, for the plots.
    pub attack_spans: Vec<(f64, f64)>,
    /// Labelled attack steps, for the operator view.
    pub steps: Vec<AttackRange>,
    /// Names of the timed recordings, by the index in `TestWindow::time`.
    pub recordings: Vec<String>,
    /// What the training recordings did, when context signals are used.
    pub context_profile: Option<ContextProfile>,
    /// First-time actions in the test recordings, in order.
    pub context_units: Vec<ContextUnit>,
}

impl Dataset {
    /// The id of a window, interning it on first sight.
    pub fn intern(&mut self, w: &[Symbol]) -> u32 {
        if let Some(&id) = self.index.get(w) {
            return id;
        }
        let id = self.uniq.len() as u32;
        self.uniq.push(w.to_vec());
        self.index.insert(w.to_vec(), id);
        id
    }
}

/// One model, one seed.
#[derive(Serialize)]
pub struct RunResult {
    /// The seed.
    pub seed: u64,
    /// Training time.
    pub fit_seconds: f64,
    /// Scoring time (every distinct test and calibration window).
    pub score_seconds: f64,
    /// The calibrated threshold.
    pub threshold: f64,
    /// Scores of normal test windows.
    pub normal: ScoreSummary,
    /// Scores of attack test windows.
    pub attack: ScoreSummary,
    /// Window ROC AUC.
    pub auc: f64,
    /// Detection and false-positive rates at the calibrated threshold.
    pub at_threshold: Rates,
    /// The same at other thresholds.
    pub sweep: Vec<Rates>,
    /// Per-trace results (per-trace datasets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces: Option<TraceResult>,
    /// The operator view (timed recordings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorView>,
    /// The operator view of the model together with the context signals (new programs, new
    /// requests), each signal with its own rule state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_with_context: Option<OperatorView>,
    /// Attack windows of each --test recording against all normal test windows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_recording: Vec<RecordingResult>,
}

/// One attack recording's windows against all normal test windows.
#[derive(Serialize)]
pub struct RecordingResult {
    /// Its short name.
    pub recording: String,
    /// Its attack windows.
    pub attack_windows: usize,
    /// ROC AUC.
    pub auc: f64,
    /// Detection at the calibrated threshold.
    pub detection_rate: f64,
}

/// Per-trace results.
#[derive(Serialize)]
pub struct TraceResult {
    /// Normal test traces.
    pub normal_traces: usize,
    /// Attack traces.
    pub attack_traces: usize,
    /// Trace ROC AUC.
    pub auc: f64,
    /// Rates at a trace threshold calibrated for 1 % false positives.
    pub at_1pct: Rates,
    /// The same for 5 %.
    pub at_5pct: Rates,
    /// Per attack family.
    pub families: Vec<FamilyResult>,
}

/// One attack family's traces.
#[derive(Serialize)]
pub struct FamilyResult {
    /// The family.
    pub family: String,
    /// Its traces.
    pub traces: usize,
    /// ROC AUC against the normal test traces.
    pub auc: f64,
    /// Detection at the 1 % trace threshold.
    pub detection_at_1pct: f64,
    /// Detection at the 5 % trace threshold.
    pub detection_at_5pct: f64,
}

/// Every seed of one model.
#[derive(Serialize)]
pub struct ModelResult {
    /// Model kind.
    pub model: String,
    /// `sequence` or `BoSC`.
    pub representation: &'static str,
    /// Trace scores are the model's own whole-trace scores, not aggregated window scores.
    pub whole_trace_scores: bool,
    /// One per seed.
    pub runs: Vec<RunResult>,
}

/// The whole evaluation.
#[derive(Serialize)]
pub struct EvalReport {
    /// What was evaluated.
    pub dataset: String,
    /// Class table name.
    pub class_table: String,
    /// Classes (symbols).
    pub n_symbols: usize,
    /// Window settings.
    pub window: WindowConfig,
    /// Windows trained on.
    pub train_windows: usize,
    /// Windows calibrated on.
    pub calibration_windows: usize,
    /// Normal test windows.
    pub test_normal_windows: usize,
    /// Attack test windows.
    pub test_attack_windows: usize,
    /// Target false-positive rate.
    pub target_fpr: f64,
    /// How traces were scored.
    pub trace_score: TraceScore,
    /// The alert rule the operator view replayed.
    pub alert_rule: AlertRule,
    /// Seconds after a step an alert still credits it.
    pub alert_grace: f64,
    /// The context signals on their own, when they were used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextReport>,
    /// Per model.
    pub models: Vec<ModelResult>,
}

/// The context signals of an evaluation on their own.
#[derive(Serialize)]
pub struct ContextReport {
    /// Programs executed in training.
    pub programs_learned: usize,
    /// Request kinds seen in training.
    pub requests_learned: usize,
    /// Connections that fed a process's standard input in training.
    pub network_stdin_learned: usize,
    /// First-time actions found in the test recordings (every occurrence).
    pub novelties: Vec<ContextUnit>,
    /// The operator view of the context signals alone.
    pub operator: OperatorView,
}

/// One first-time action in a test recording.
#[derive(Debug, Clone, Serialize)]
pub struct ContextUnit {
    /// Recording (as in [`TestWindow::time`]).
    pub recording: u32,
    /// Signal item (channel of the operator view, from 1).
    pub channel: u32,
    /// What it was.
    pub novelty: Novelty,
    /// Labelled steps it happened in.
    pub steps: Vec<u32>,
}

/// Everything an evaluation needs (what `mamori eval`'s flags describe).
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// ADFA-LD root folder (instead of the file lists below).
    pub adfa: Option<PathBuf>,
    /// Normal recordings to train on.
    pub train: Vec<PathBuf>,
    /// Normal recordings for calibrating thresholds.
    pub calibrate: Vec<PathBuf>,
    /// Share of training windows held out for calibration when `calibrate` is empty.
    pub holdout: f64,
    /// Recordings labelled by `labels` or `attack_from`/`attack_to`.
    pub test: Vec<PathBuf>,
    /// Test recordings that are normal throughout.
    pub normal: Vec<PathBuf>,
    /// Test recordings that are attack throughout.
    pub attack: Vec<PathBuf>,
    /// Labels files.
    pub labels: Vec<PathBuf>,
    /// One attack period given directly (with `attack_to`).
    pub attack_from: Option<String>,
    /// See `attack_from`.
    pub attack_to: Option<String>,
    /// Train on the test recordings' windows before this time.
    pub train_before: Option<String>,
    /// LID-DS: label from the exploit time on and train before it.
    pub lidds_exploit: bool,
    /// ADFA-LD: at most this many validation and attack traces.
    pub limit_traces: Option<usize>,
    /// ADFA-LD: this share of the (normal) validation traces, evenly spread, joins the training
    /// traces; the rest alternate between calibration and test as before.
    pub adfa_train_share: f64,
    /// How a whole trace is scored.
    pub trace_score: TraceScore,
    /// Models to evaluate.
    pub models: Vec<ModelKind>,
    /// Seeds per model (seed, seed+1, …).
    pub seeds: u64,
    /// Target false-positive rate of the calibrated threshold.
    pub target_fpr: f64,
    /// Extra thresholds for the sweep.
    pub thresholds: Vec<f64>,
    /// The alert rule the operator view replays.
    pub alert_rule: AlertRule,
    /// An alert credits a step when it fires at most this long after the step (s).
    pub alert_grace: f64,
    /// How recordings are read.
    pub read: ReadOptions,
    /// Warm-up left out of each recording (ns).
    pub warmup_ns: i64,
    /// Class table file (else learned with `learn`).
    pub profile: Option<PathBuf>,
    /// Settings for learning a class table.
    pub learn: LearnParams,
    /// Window settings.
    pub window: WindowConfig,
    /// Model hyper-parameters (the seed is the first seed).
    pub settings: ModelSettings,
    /// Keep the first seed's window scores of every model (for plots).
    pub keep_scores: bool,
    /// Print warnings (an unlike calibration tail) on stderr.
    pub warn: bool,
    /// Train (and calibrate, and learn the context signals) on only the first this-many
    /// seconds of each training recording, for a learning curve.
    pub train_seconds: Option<f64>,
    /// Learn the context signals (programs, requests) from the training recordings and add
    /// them to the operator view (timed recordings only).
    pub context: bool,
    /// The device's HTTP API from its Thing Description, for the request signal (empty: none).
    pub declared_api: Vec<DeclaredRequest>,
}

/// Reads the data an evaluation describes: the class table, the windows and their labels, and
/// a name for the report.
pub fn load(cfg: &EvalConfig) -> Result<(ClassTable, Dataset, String)> {
    if !(cfg.alert_grace.is_finite() && cfg.alert_grace >= 0.0) {
        bail!("the alert grace must be a finite number of seconds >= 0");
    }
    let window = cfg.window;
    window.check()?;
    Ok(if let Some(root) = &cfg.adfa {
        let (t, d) = adfa_dataset(root, cfg, window)?;
        (t, d, format!("ADFA-LD {}", root.display()))
    } else {
        let (t, d) = file_dataset(cfg, window)?;
        (
            t,
            d,
            cfg.train
                .iter()
                .chain(&cfg.test)
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )
    })
}

/// Trains, calibrates and measures every model and seed on `data`; `on_run` is called after
/// each (progress). Returns the report and, when `keep_scores`, the first seed's scores of each
/// model by unique window.
pub fn evaluate(
    cfg: &EvalConfig,
    table: &ClassTable,
    data: &Dataset,
    name: String,
    mut on_run: impl FnMut(),
) -> Result<(EvalReport, Vec<Vec<f64>>)> {
    let window = cfg.window;
    if data.train.is_empty() {
        bail!("no training windows");
    }
    if data.calibration.is_empty() {
        bail!("no calibration windows: give --calibrate files or a --holdout share above 0");
    }
    let n_attack = data.test.iter().filter(|w| w.attack).count();
    let n_normal = data.test.len() - n_attack;
    if n_attack == 0 || n_normal == 0 {
        bail!("the test data needs both normal and attack windows ({n_normal} normal, {n_attack} attack)");
    }
    let train_refs: Vec<&[Symbol]> = cfg.settings.subsample(&data.train);
    let uniq_refs: Vec<&[Symbol]> = data.uniq.iter().map(Vec::as_slice).collect();
    let train_traces: Vec<&[Symbol]> = data.train_traces.iter().map(Vec::as_slice).collect();
    let mut results = Vec::new();
    // The first seed's scores of each model, kept for the plots.
    let mut plotted: Vec<Vec<f64>> = Vec::new();
    for &kind in &cfg.models {
        let mut runs = Vec::new();
        let mut whole_trace_scores = false;
        for s in 0..cfg.seeds {
            let seed = cfg.settings.seed + s;
            let started = Instant::now();
            let det = Detector::fit(
                kind,
                &cfg.settings,
                seed,
                &train_refs,
                &train_traces,
                table.n_symbols(),
                window.size,
            )
            .with_context(|| format!("training {kind}"))?;
            let fit_seconds = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let (scores, calibration_scores) = det.score_with_calibration(&uniq_refs);
            // Models that score whole traces natively do so instead of aggregating windows.
            let trace_scores: Option<Vec<f64>> = data
                .traces
                .iter()
                .map(|t| det.sequence_score(&t.symbols))
                .collect();
            let score_seconds = started.elapsed().as_secs_f64();
            if let Some(bad) = scores
                .iter()
                .chain(trace_scores.iter().flatten())
                .find(|s| !s.is_finite())
            {
                bail!("{kind} produced a non-finite score {bad}; this is a bug");
            }
            whole_trace_scores = trace_scores.is_some();
            runs.push(measure(
                data,
                RunScores {
                    windows: &scores,
                    calibration: calibration_scores.as_deref().unwrap_or(&scores),
                    traces: trace_scores.as_deref(),
                },
                seed,
                fit_seconds,
                score_seconds,
                cfg,
            )?);
            if s == 0 && cfg.keep_scores {
                plotted.push(scores);
            }
            on_run();
        }
        results.push(ModelResult {
            model: kind.to_string(),
            representation: kind.representation(),
            whole_trace_scores,
            runs,
        });
    }
    let report_data = EvalReport {
        dataset: name,
        class_table: table.config().name.clone(),
        n_symbols: table.n_symbols(),
        window,
        train_windows: train_refs.len(),
        calibration_windows: data.calibration.len(),
        test_normal_windows: n_normal,
        test_attack_windows: n_attack,
        target_fpr: cfg.target_fpr,
        trace_score: cfg.trace_score,
        alert_rule: cfg.alert_rule,
        alert_grace: cfg.alert_grace,
        context: context_report(cfg, data),
        models: results,
    };
    Ok((report_data, plotted))
}

/// One run's scores: per distinct window, what the threshold is calibrated on (the same except
/// for a gated model), and per trace for models that score traces natively.
struct RunScores<'a> {
    windows: &'a [f64],
    calibration: &'a [f64],
    traces: Option<&'a [f64]>,
}

fn measure(
    data: &Dataset,
    run: RunScores<'_>,
    seed: u64,
    fit_seconds: f64,
    score_seconds: f64,
    cfg: &EvalConfig,
) -> Result<RunResult> {
    let RunScores {
        windows: scores,
        calibration: calibration_scores,
        traces: trace_scores,
    } = run;
    let cal: Vec<f64> = data
        .calibration
        .iter()
        .map(|&i| calibration_scores[i as usize])
        .collect();
    let threshold = calibrate(&cal, cfg.target_fpr)?.value;
    let unlike = mamori_detect::calibrate::unlike_tail(&cal, cfg.target_fpr);
    if unlike > 0 && cfg.warn {
        eprintln!(
            "mamori: warning: seed {seed}: the last {unlike} of {} calibration windows score unlike the rest (a shutdown or processes exiting?); they raise the threshold",
            cal.len()
        );
    }
    let (mut normal, mut attack) = (Vec::new(), Vec::new());
    for w in &data.test {
        let s = scores[w.id as usize];
        if w.attack {
            attack.push(s);
        } else {
            normal.push(s);
        }
    }
    let mut thresholds: Vec<f64> = [0.5, 0.9, 0.95, 0.99, 0.999]
        .iter()
        .map(|&q| quantile(&cal, q))
        .chain([threshold])
        .chain(cfg.thresholds.iter().copied())
        .collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let sweep = thresholds
        .iter()
        .map(|&t| rates_at(&normal, &attack, t))
        .collect();
    let traces = match data.traces.is_empty() {
        true => None,
        false => Some(trace_level(
            data,
            scores,
            trace_scores,
            cfg.trace_score,
            threshold,
        )?),
    };
    let timed: Vec<ScoredWindow> = data
        .test
        .iter()
        .filter_map(|w| {
            w.time.map(|(recording, start_ns, end_ns)| ScoredWindow {
                channel: 0,
                recording,
                start_ns,
                end_ns,
                attack: w.attack,
                steps: w.steps.clone(),
                score: scores[w.id as usize],
            })
        })
        .collect();

    let grace_ns = (cfg.alert_grace * 1e9) as i64;
    let operator = (!timed.is_empty())
        .then(|| operator_view(&timed, &data.steps, threshold, &cfg.alert_rule, grace_ns));
    let operator_with_context = (!timed.is_empty() && data.context_profile.is_some()).then(|| {
        let mut units = timed.clone();
        units.extend(context_windows(&data.context_units));
        operator_view(&units, &data.steps, threshold, &cfg.alert_rule, grace_ns)
    });
    let per_recording = data
        .recordings
        .iter()
        .enumerate()
        .filter_map(|(r, name)| {
            let scores_r: Vec<f64> = data
                .test
                .iter()
                .filter(|w| w.attack && w.time.is_some_and(|t| t.0 as usize == r))
                .map(|w| scores[w.id as usize])
                .collect();
            (!scores_r.is_empty()).then(|| RecordingResult {
                recording: name.clone(),
                attack_windows: scores_r.len(),
                auc: roc_auc(&normal, &scores_r),
                detection_rate: rates_at(&normal, &scores_r, threshold).detection_rate,
            })
        })
        .collect();
    Ok(RunResult {
        seed,
        fit_seconds,
        score_seconds,
        threshold,
        normal: ScoreSummary::of(&normal),
        attack: ScoreSummary::of(&attack),
        auc: roc_auc(&normal, &attack),
        at_threshold: rates_at(&normal, &attack, threshold),
        sweep,
        traces,
        operator,
        operator_with_context,
        per_recording,
    })
}

/// Context units as operator-view units: always over any threshold.
fn context_windows(units: &[ContextUnit]) -> impl Iterator<Item = ScoredWindow> + '_ {
    units.iter().filter_map(|u| {
        let t = u.novelty.time_ns?;
        Some(ScoredWindow {
            recording: u.recording,
            channel: u.channel,
            start_ns: t,
            end_ns: t,
            attack: !u.steps.is_empty(),
            steps: u.steps.clone(),
            score: f64::INFINITY,
        })
    })
}

/// The context signals alone: the test windows are kept (unscored) so normal time is the same.
fn context_report(cfg: &EvalConfig, data: &Dataset) -> Option<ContextReport> {
    let profile = data.context_profile.as_ref()?;
    let mut units: Vec<ScoredWindow> = data
        .test
        .iter()
        .filter_map(|w| {
            w.time.map(|(recording, start_ns, end_ns)| ScoredWindow {
                recording,
                channel: 0,
                start_ns,
                end_ns,
                attack: w.attack,
                steps: w.steps.clone(),
                score: f64::NAN,
            })
        })
        .collect();
    if units.is_empty() {
        return None;
    }
    units.extend(context_windows(&data.context_units));
    Some(ContextReport {
        programs_learned: profile.programs.len(),
        requests_learned: profile.requests.len(),
        network_stdin_learned: profile.network_stdin.len(),
        novelties: data.context_units.clone(),
        operator: operator_view(
            &units,
            &data.steps,
            0.0,
            &cfg.alert_rule,
            (cfg.alert_grace * 1e9) as i64,
        ),
    })
}

/// Finds the first-time actions of timed test recordings while their windows are read.
struct ContextScan {
    profile: ContextProfile,
    watcher: ContextWatcher,
    /// The recording being read and its first call time (its warm-up is left out).
    current: Option<(u32, Option<i64>)>,
    channels: HashMap<(crate::context::NoveltyKind, String), u32>,
    units: Vec<ContextUnit>,
}

impl ContextScan {
    fn new(profile: ContextProfile) -> Self {
        ContextScan {
            profile,
            watcher: ContextWatcher::new(),
            current: None,
            channels: HashMap::new(),
            units: Vec::new(),
        }
    }

    /// One call of recording `rec`.
    fn observe(
        &mut self,
        rec: u32,
        e: &mamori_core::SyscallEvent,
        steps: &[AttackRange],
        warmup_ns: i64,
    ) {
        if self.current.map(|c| c.0) != Some(rec) {
            self.current = Some((rec, None));
            self.watcher = ContextWatcher::new();
        }
        let Some(t) = e.time_ns else { return };
        let Some((_, first)) = self.current.as_mut() else {
            return;
        };
        let f0 = *first.get_or_insert(t);
        let found = self.watcher.observe(&self.profile, e);
        if t < f0.saturating_add(warmup_ns) {
            return;
        }
        if let Some((novelty, _)) = found {
            let next = self.channels.len() as u32 + 1;
            let channel = *self
                .channels
                .entry((novelty.kind, novelty.what.clone()))
                .or_insert(next);
            self.units.push(ContextUnit {
                recording: rec,
                channel,
                steps: steps_hit(steps, &[t]),
                novelty,
            });
        }
    }
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Per-trace results: each trace scored from its window scores as `--trace-score` says, or by
/// the model's own whole-trace scores (`trace_scores`, one per trace) when it has them.
fn trace_level(
    data: &Dataset,
    scores: &[f64],
    trace_scores: Option<&[f64]>,
    how: TraceScore,
    window_threshold: f64,
) -> Result<TraceResult> {
    let how = match how {
        TraceScore::Mean => TraceAggregate::MeanTopK(usize::MAX),
        TraceScore::Max => TraceAggregate::Max,
        TraceScore::Share => TraceAggregate::ShareAbove(window_threshold),
    };
    let trace_score = |k: usize, t: &Trace| match trace_scores {
        Some(ts) => ts[k],
        None => {
            let ws: Vec<f64> = t.windows.iter().map(|&i| scores[i as usize]).collect();
            trace_score(&ws, how)
        }
    };
    let by_role = |role: Role| -> Vec<(Option<&str>, f64)> {
        data.traces
            .iter()
            .enumerate()
            .filter(|(_, t)| t.role == role && !t.windows.is_empty())
            .map(|(k, t)| (t.family.as_deref(), trace_score(k, t)))
            .collect()
    };
    let cal: Vec<f64> = by_role(Role::Calibration)
        .into_iter()
        .map(|t| t.1)
        .collect();
    let normal: Vec<f64> = by_role(Role::Normal).into_iter().map(|t| t.1).collect();
    let attacks = by_role(Role::Attack);
    let attack: Vec<f64> = attacks.iter().map(|t| t.1).collect();
    let t1 = calibrate(&cal, 0.01)?.value;
    let t5 = calibrate(&cal, 0.05)?.value;
    let mut families: Vec<String> = attacks
        .iter()
        .filter_map(|t| t.0.map(str::to_string))
        .collect();
    families.sort();
    families.dedup();
    let families = families
        .into_iter()
        .map(|f| {
            let fam: Vec<f64> = attacks
                .iter()
                .filter(|t| t.0 == Some(f.as_str()))
                .map(|t| t.1)
                .collect();
            FamilyResult {
                traces: fam.len(),
                auc: roc_auc(&normal, &fam),
                detection_at_1pct: rates_at(&normal, &fam, t1).detection_rate,
                detection_at_5pct: rates_at(&normal, &fam, t5).detection_rate,
                family: f,
            }
        })
        .collect();
    Ok(TraceResult {
        normal_traces: normal.len(),
        attack_traces: attack.len(),
        auc: roc_auc(&normal, &attack),
        at_1pct: rates_at(&normal, &attack, t1),
        at_5pct: rates_at(&normal, &attack, t5),
        families,
    })
}

/// ADFA-LD's protocol: Training to train, Validation split alternately into calibration and
/// normal test traces, every Attack trace to test.
fn adfa_dataset(
    root: &Path,
    cfg: &EvalConfig,
    window: WindowConfig,
) -> Result<(ClassTable, Dataset)> {
    let share = cfg.adfa_train_share;
    if !(0.0..1.0).contains(&share) {
        bail!("--adfa-train-share must be in [0, 1), got {share}");
    }
    let ds = mamori_ingest::read_adfa_dataset(root)
        .with_context(|| format!("cannot read ADFA-LD from {}", root.display()))?;
    let spread = |n: usize| -> Vec<usize> {
        match cfg.limit_traces {
            Some(k) if k < n => (0..k).map(|i| i * n / k).collect(),
            _ => (0..n).collect(),
        }
    };
    // Each chosen validation trace's role: an even `adfa_train_share` of them join the
    // training traces, the rest alternate between calibration and test.
    let chosen = spread(ds.validation.len());
    let roles = validation_roles(chosen.len(), share);
    let training: Vec<&mamori_ingest::Trace> = ds
        .training
        .iter()
        .chain(
            chosen
                .iter()
                .enumerate()
                .filter(|&(k, _)| roles[k].is_none())
                .map(|(_, &i)| &ds.validation[i]),
        )
        .collect();
    let table = match &cfg.profile {
        Some(p) => recording::load_profile(p)?,
        None => {
            let events: Vec<_> = training.iter().flat_map(|t| t.events()).collect();
            let params = LearnParams {
                name: "adfa-ld".into(),
                ..cfg.learn.clone()
            };
            ClassTable::new(mamori_detect::classes::learn_profile(&events, &params))?
        }
    };
    let mut data = Dataset {
        x_label: "test window (validation traces, then attack traces)".into(),
        ..Dataset::default()
    };
    for t in &training {
        let sym = recording::classify_trace(&table, t.events());
        data.train
            .extend(sequence_windows(&sym, window.size, window.stride).map(<[Symbol]>::to_vec));
        data.train_traces.push(sym);
    }
    let add =
        |data: &mut Dataset, trace: &mamori_ingest::Trace, role: Role, family: Option<String>| {
            let sym = recording::classify_trace(&table, trace.events());
            let ids: Vec<u32> = sequence_windows(&sym, window.size, window.stride)
                .map(|w| data.intern(w))
                .collect();
            match role {
                Role::Calibration => data.calibration.extend(&ids),
                Role::Normal | Role::Attack => {
                    let start = data.test.len() as f64;
                    for &id in &ids {
                        let x = data.test.len() as f64;
                        data.test.push(TestWindow {
                            id,
                            attack: role == Role::Attack,
                            x,
                            time: None,
                            steps: Vec::new(),
                        });
                    }
                    if role == Role::Attack && !ids.is_empty() {
                        data.attack_spans.push((start, data.test.len() as f64));
                    }
                }
            }
            data.traces.push(Trace {
                family,
                role,
                windows: ids,
                symbols: sym,
            });
        };
    for (k, &i) in chosen.iter().enumerate() {
        if let Some(role) = roles[k] {
            add(&mut data, &ds.validation[i], role, None);
        }
    }
    for i in spread(ds.attacks.len()) {
        let t = &ds.attacks[i];
        add(&mut data, t, Role::Attack, t.family.clone());
    }
    Ok((table, data))
}

/// The role of each of `n` validation traces: an evenly spread `train_share` of them become
/// training traces (`None`), the others alternate between calibration and normal test,
/// calibration first.
fn validation_roles(n: usize, train_share: f64) -> Vec<Option<Role>> {
    let mut rest = 0usize;
    (0..n)
        .map(|k| {
            let trains = ((k + 1) as f64 * train_share).floor() > (k as f64 * train_share).floor();
            if trains {
                return None;
            }
            rest += 1;
            Some(if rest % 2 == 1 {
                Role::Calibration
            } else {
                Role::Normal
            })
        })
        .collect()
}

/// Recordings on disk, labelled by file or by time.
fn file_dataset(cfg: &EvalConfig, window: WindowConfig) -> Result<(ClassTable, Dataset)> {
    let warmup_ns = cfg.warmup_ns;
    let mut train_before = match &cfg.train_before {
        Some(t) => Some(labels::parse_time(t).context("--train-before")?),
        None => None,
    };
    let mut ranges: Vec<AttackRange> = Vec::new();
    if cfg.lidds_exploit {
        for path in &cfg.test {
            let t = mamori_ingest::lidds_exploit_time_ns(path)?.with_context(|| {
                format!(
                    "{}: the LID-DS metadata names no exploit time",
                    path.display()
                )
            })?;
            ranges.push(AttackRange {
                from_ns: t,
                to_ns: i64::MAX,
                name: "exploit".into(),
            });
            train_before = Some(train_before.map_or(t, |b: i64| b.min(t)));
        }
    }
    if cfg.train.is_empty() && train_before.is_none() {
        bail!("give --adfa DIR, or --train with --test/--normal/--attack, or --test with --train-before");
    }
    if !(0.0..1.0).contains(&cfg.holdout) {
        bail!("--holdout must be in [0, 1), got {}", cfg.holdout);
    }
    for p in &cfg.labels {
        ranges.extend(labels::read_labels(p)?);
    }
    if let (Some(f), Some(t)) = (&cfg.attack_from, &cfg.attack_to) {
        ranges.push(AttackRange {
            from_ns: labels::parse_time(f).context("--attack-from")?,
            to_ns: labels::parse_time(t).context("--attack-to")?,
            name: "attack".into(),
        });
    }
    if !cfg.test.is_empty() && ranges.is_empty() {
        bail!("--test recordings need attack periods: --labels FILE or --attack-from/--attack-to");
    }
    // Learn the table from the training recordings, or from the normal start of the test ones.
    let (learn_from, until) = if cfg.train.is_empty() {
        (&cfg.test, train_before)
    } else {
        (&cfg.train, None)
    };
    let table = recording::class_table(
        cfg.profile.as_deref(),
        &cfg.learn,
        learn_from,
        &cfg.read,
        until,
    )?;
    let mut data = Dataset {
        steps: ranges.clone(),
        recordings: cfg
            .test
            .iter()
            .map(|p| short_name(&p.display().to_string()))
            .collect(),
        ..Dataset::default()
    };
    let limit_ns = cfg.train_seconds.map(|s| (s * 1e9) as i64);
    // First call of the training file being read, for --train-seconds.
    let first: std::cell::Cell<(usize, Option<i64>)> = std::cell::Cell::new((usize::MAX, None));
    let timed = !cfg.test.is_empty();
    // The context signals learn from every call of the training recordings (within the limit).
    let mut learner = (cfg.context && timed).then(ContextLearner::new);
    recording::windows_observed(
        &cfg.train,
        &cfg.read,
        &table,
        window,
        warmup_ns,
        None,
        |file, e| {
            if first.get().0 != file {
                first.set((file, e.time_ns));
                if let Some(l) = learner.as_mut() {
                    l.next_recording();
                }
            }
            let late = match (limit_ns, first.get().1, e.time_ns) {
                (Some(limit), Some(f0), Some(t)) => t > f0.saturating_add(limit),
                _ => false,
            };
            if let Some(l) = learner.as_mut().filter(|_| !late) {
                l.observe(e);
            }
        },
        |w| {
            if let (Some(limit), Some(f0), Some(end)) = (limit_ns, first.get().1, w.end_time_ns) {
                if end > f0.saturating_add(limit) {
                    return Ok(());
                }
            }
            data.train.push(w.symbols);
            Ok(())
        },
    )?;
    let mut scan = learner.map(|l| {
        ContextScan::new(ContextProfile {
            declared: cfg.declared_api.clone(),
            ..l.finish()
        })
    });
    data.x_label = if timed {
        "seconds from the first window of the test recording".into()
    } else {
        "test window".into()
    };
    let mut t0: Option<i64> = None;
    let mut missing_time = 0u64;
    // Windows of --test recordings before --train-before, with their x position.
    let mut test_train: Vec<(Vec<Symbol>, f64, WindowTime)> = Vec::new();
    let mut in_attack = false;
    for (rec, path) in cfg.test.iter().enumerate() {
        recording::windows_with_call_times(
            std::slice::from_ref(path),
            &cfg.read,
            &table,
            window,
            warmup_ns,
            |_, e| {
                if let Some(scan) = scan.as_mut() {
                    scan.observe(rec as u32, e, &ranges, warmup_ns);
                }
            },
            |w| {
                let (Some(a), Some(b)) = (w.start_time_ns, w.end_time_ns) else {
                    missing_time += 1;
                    return Ok(());
                };
                let t0 = *t0.get_or_insert(a);
                if let Some(t) = train_before {
                    if b < t {
                        test_train.push((w.symbols, (a - t0) as f64 / 1e9, (rec as u32, a, b)));
                        return Ok(());
                    }
                    if a < t {
                        return Ok(()); // straddles the split: neither trained on nor tested
                    }
                }
                // Labelled by its calls, not its span: a long-lived thread's window can span
                // minutes and steps it took no part in.
                let steps = steps_hit(&ranges, &w.call_times);
                let attack = !steps.is_empty();
                let x = (a - t0) as f64 / 1e9;
                track_span(&mut data.attack_spans, &mut in_attack, attack, x);
                let id = data.intern(&w.symbols);
                data.test.push(TestWindow {
                    id,
                    attack,
                    x,
                    time: Some((rec as u32, a, b)),
                    steps,
                });
                Ok(())
            },
        )?;
    }
    if !test_train.is_empty() && cfg.normal.is_empty() && cfg.calibrate.is_empty() {
        // One recording: the first part trains, then the held-out share of the normal part is
        // split into calibration and normal test windows, so neither is trained on.
        let keep = test_train.len() - (test_train.len() as f64 * cfg.holdout) as usize;
        let held = test_train.split_off(keep.max(1));
        let (cal, normal) = held.split_at(held.len() / 2);
        data.calibration = cal.iter().map(|w| data.intern(&w.0)).collect();
        let normal: Vec<TestWindow> = normal
            .iter()
            .map(|(w, x, time)| TestWindow {
                id: data.intern(w),
                attack: false,
                x: *x,
                time: Some(*time),
                steps: Vec::new(),
            })
            .collect();
        data.test.splice(0..0, normal);
        data.train.extend(test_train.into_iter().map(|w| w.0));
    } else if cfg.calibrate.is_empty() {
        data.train.extend(test_train.into_iter().map(|w| w.0));
        let keep = data.train.len() - (data.train.len() as f64 * cfg.holdout) as usize;
        let held = data.train.split_off(keep.max(1));
        data.calibration = held.iter().map(|w| data.intern(w)).collect();
    } else {
        data.train.extend(test_train.into_iter().map(|w| w.0));
        let mut cal = Vec::new();
        recording::windows_of(&cfg.calibrate, &cfg.read, &table, window, warmup_ns, |w| {
            cal.push(w.symbols);
            Ok(())
        })?;
        data.calibration = cal.iter().map(|w| data.intern(w)).collect();
    }
    if missing_time > 0 {
        bail!(
            "{missing_time} test windows have no timestamps, so time labels cannot apply to them"
        );
    }
    let mut rec = cfg.test.len() as u32;
    for (paths, attack) in [(&cfg.normal, false), (&cfg.attack, true)] {
        for path in paths {
            rec += 1;
            recording::windows_observed(
                std::slice::from_ref(path),
                &cfg.read,
                &table,
                window,
                warmup_ns,
                None,
                |_, e| {
                    if let Some(scan) = scan.as_mut() {
                        scan.observe(rec, e, &ranges, warmup_ns);
                    }
                },
                |w| {
                    let time = w.start_time_ns.zip(w.end_time_ns).map(|(a, b)| (rec, a, b));
                    // Timed recordings share the --test recordings' clock on the plots.
                    let x = match (time, timed) {
                        (Some((_, a, _)), true) => (a - *t0.get_or_insert(a)) as f64 / 1e9,
                        _ => data.test.len() as f64,
                    };
                    track_span(&mut data.attack_spans, &mut in_attack, attack, x);
                    let id = data.intern(&w.symbols);
                    data.test.push(TestWindow {
                        id,
                        attack,
                        x,
                        time,
                        steps: Vec::new(),
                    });
                    Ok(())
                },
            )?;
        }
    }
    if let Some(scan) = scan.filter(|_| !cfg.train.is_empty()) {
        data.context_profile = Some(scan.profile);
        data.context_units = scan.units;
    }
    Ok((table, data))
}

fn track_span(spans: &mut Vec<(f64, f64)>, inside: &mut bool, attack: bool, x: f64) {
    if attack {
        if *inside {
            // Calls are stamped when they start but arrive when they end, so x is not monotonic.
            if let Some(last) = spans.last_mut() {
                last.0 = last.0.min(x);
                last.1 = last.1.max(x);
            }
        } else {
            spans.push((x, x));
        }
    }
    *inside = attack;
}

/// A recording's file name without its directory and compression suffix.
pub fn short_name(dataset: &str) -> String {
    let names: Vec<&str> = dataset
        .split(", ")
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .collect();
    match names.len() {
        0..=2 => names.join(", "),
        n => format!("{}, {} and {} more", names[0], names[1], n - 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_detect::window::StreamMode;

    const S: i64 = 1_000_000_000;

    #[test]
    fn validation_roles_alternate_or_give_an_even_share_to_training() {
        use Role::{Calibration as C, Normal as N};
        assert_eq!(
            validation_roles(5, 0.0),
            vec![Some(C), Some(N), Some(C), Some(N), Some(C)]
        );
        // A third to training, spread evenly; the rest still alternate.
        assert_eq!(
            validation_roles(6, 1.0 / 3.0),
            vec![Some(C), Some(N), None, Some(C), Some(N), None]
        );
        let roles = validation_roles(4_372, 0.8);
        let trained = roles.iter().filter(|r| r.is_none()).count();
        assert_eq!(trained, (4_372.0_f64 * 0.8).floor() as usize);
        let cal = roles.iter().filter(|r| **r == Some(C)).count();
        let test = roles.iter().filter(|r| **r == Some(N)).count();
        assert!(cal.abs_diff(test) <= 1, "{cal} calibration, {test} test");
        // Evenly spread: no long run of training traces at one end.
        assert!(roles[..100].iter().any(Option::is_some));
        assert!(roles[roles.len() - 100..].iter().any(Option::is_some));
    }

    /// A dataset by hand: normal windows cycle 0,1,2; attack windows hold symbol 3.
    fn dataset() -> Dataset {
        let normal =
            |i: usize| -> Vec<Symbol> { (0..6).map(|k| ((i + k) % 3) as Symbol).collect() };
        let mut d = Dataset {
            train: (0..60).map(normal).collect(),
            steps: vec![AttackRange {
                from_ns: 50 * S,
                to_ns: 52 * S,
                name: "exec".into(),
            }],
            recordings: vec!["rec".into()],
            ..Dataset::default()
        };
        d.calibration = (0..20).map(|i| d.intern(&normal(i))).collect();
        for t in 0..100i64 {
            let attack = (50..=52).contains(&t);
            let w: Vec<Symbol> = if attack {
                vec![0, 1, 3, 3, 1, 2]
            } else {
                normal(t as usize)
            };
            let id = d.intern(&w);
            d.test.push(TestWindow {
                id,
                attack,
                x: t as f64,
                time: Some((0, t * S, t * S)),
                steps: if attack { vec![0] } else { Vec::new() },
            });
        }
        d
    }

    fn config() -> EvalConfig {
        EvalConfig {
            adfa: None,
            train: Vec::new(),
            calibrate: Vec::new(),
            holdout: 0.2,
            test: Vec::new(),
            normal: Vec::new(),
            attack: Vec::new(),
            labels: Vec::new(),
            attack_from: None,
            attack_to: None,
            train_before: None,
            lidds_exploit: false,
            limit_traces: None,
            adfa_train_share: 0.0,
            trace_score: TraceScore::Mean,
            models: vec![ModelKind::Stide],
            seeds: 2,
            target_fpr: 0.01,
            thresholds: Vec::new(),
            alert_rule: AlertRule::default(),
            alert_grace: 2.0,
            read: ReadOptions::default(),
            warmup_ns: 0,
            profile: None,
            learn: LearnParams::default(),
            window: WindowConfig {
                size: 6,
                stride: 1,
                stream: StreamMode::PerThread,
            },
            settings: ModelSettings {
                ngram: 3,
                ..ModelSettings::default()
            },
            keep_scores: true,
            warn: false,
            context: false,
            train_seconds: None,
            declared_api: Vec::new(),
        }
    }

    fn table() -> ClassTable {
        ClassTable::new(mamori_detect::classes::ClassTableConfig {
            name: "t".into(),
            description: None,
            aliases: Default::default(),
            unmatched: mamori_detect::classes::Unmatched::Unknown,
            classes: ["read", "write", "close", "execve"]
                .iter()
                .map(|s| mamori_detect::classes::ClassRule {
                    name: None,
                    syscall: s.to_string(),
                    contains: None,
                    prefix: None,
                    field: mamori_detect::classes::Field::Any,
                })
                .collect(),
        })
        .expect("table")
    }

    #[test]
    fn stide_separates_a_novel_call_and_the_operator_view_pages_once() {
        let table = table();
        let data = dataset();
        let mut runs = 0;
        let (report, kept) =
            evaluate(&config(), &table, &data, "hand-made".into(), || runs += 1).expect("runs");
        assert_eq!(runs, 2, "one model, two seeds");
        assert_eq!(kept.len(), 1, "the first seed's scores, for the plots");
        assert_eq!(
            (report.test_normal_windows, report.test_attack_windows),
            (97, 3)
        );
        let run = &report.models[0].runs[0];
        assert_eq!(run.auc, 1.0);
        assert_eq!(run.at_threshold.detection_rate, 1.0);
        assert_eq!(run.at_threshold.false_positive_rate, 0.0);
        let op = run
            .operator
            .as_ref()
            .expect("timed windows give an operator view");
        // three flagged windows 1 s apart: one alert, two held back by the cooldown
        assert_eq!((op.true_alarms, op.false_alarms, op.suppressed), (1, 0, 2));
        assert_eq!(op.steps[0].latency_s, Some(0.0));
    }

    #[test]
    fn a_dataset_without_attack_windows_is_refused() {
        let mut data = dataset();
        data.test.retain(|w| !w.attack);
        let table = table();
        let err = evaluate(&config(), &table, &data, "x".into(), || {})
            .err()
            .expect("refused");
        assert!(err.to_string().contains("both normal and attack"), "{err}");
    }
}
