//! `mamori eval`: train each model on normal data, calibrate a threshold on held-out normal data,
//! and measure it on labelled test data — the paper's Tables 3–6 plus ROC AUC, per seed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cmd::model_args::{parse_model_kind, ModelArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use mamori_detect::calibrate::{calibrate, trace_score, TraceAggregate};
use mamori_detect::classes::ClassTable;
use mamori_detect::metrics::{rates_at, roc_auc, roc_curve, Rates, ScoreSummary};
use mamori_detect::window::{sequence_windows, WindowConfig};
use mamori_detect::Symbol;
use serde::Serialize;

use crate::cmd::alert_args::AlertArgs;
use crate::input::{self, InputArgs, ProfileArgs, WarmupArgs, WindowArgs};
use crate::{plot, progress, report};
use mamori_core::AlertRule;
use mamori_pipeline::labels::{self, AttackRange};
use mamori_pipeline::model::{Detector, ModelKind};
use mamori_pipeline::operator::{operator_view, steps_hit, OperatorView, ScoredWindow};

/// Measure detection and false-positive rates of models on labelled data.
///
/// Data comes in one of three shapes:
///   --adfa DIR                         ADFA-LD: train on Training_Data_Master, calibrate on half of
///                                      Validation_Data_Master, test on the other half and on
///                                      Attack_Data_Master; per-window and per-trace results.
///   --train F --test F --labels L      one recording with attack periods by time
///                                      (or --attack-from T --attack-to T).
///   --train F --normal F --attack F    whole files of normal and of attack behaviour.
/// Calibration uses --calibrate files (a separate normal recording) when given, else the last
/// --holdout share of the training windows.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// ADFA-LD root folder (with Training_Data_Master, Validation_Data_Master, Attack_Data_Master).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["train", "test", "normal", "attack"], help_heading = "Data")]
    pub adfa: Option<PathBuf>,
    /// Normal recordings to train on.
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub train: Vec<PathBuf>,
    /// Normal recordings for calibrating thresholds (independent of the training data).
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub calibrate: Vec<PathBuf>,
    /// Share of training windows held out for calibration when no --calibrate is given.
    #[arg(
        long,
        default_value_t = 0.2,
        value_name = "SHARE",
        help_heading = "Data"
    )]
    pub holdout: f64,
    /// Recordings whose windows are labelled by --labels or --attack-from/--attack-to.
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub test: Vec<PathBuf>,
    /// Test recordings that are normal throughout.
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub normal: Vec<PathBuf>,
    /// Test recordings that are attack throughout.
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub attack: Vec<PathBuf>,
    /// Attack periods, one `FROM TO [name]` per line (ns, seconds, or HH:MM:SS.frac); repeat
    /// for several recordings.
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub labels: Vec<PathBuf>,
    /// Start of the attack period (with --attack-to).
    #[arg(
        long,
        value_name = "TIME",
        requires = "attack_to",
        help_heading = "Data"
    )]
    pub attack_from: Option<String>,
    /// End of the attack period.
    #[arg(
        long,
        value_name = "TIME",
        requires = "attack_from",
        help_heading = "Data"
    )]
    pub attack_to: Option<String>,
    /// Train on the windows of the --test recordings that end before this time (and test on
    /// those that start after it), for a single recording whose attack comes late.
    #[arg(long, value_name = "TIME", help_heading = "Data")]
    pub train_before: Option<String>,
    /// LID-DS recordings: label everything from the exploit time in the recording's .json as
    /// attack and train on what comes before it (implies --train-before).
    #[arg(long, help_heading = "Data")]
    pub lidds_exploit: bool,
    /// ADFA-LD: use at most this many validation and attack traces (evenly spread), for quick runs.
    #[arg(long, value_name = "N", help_heading = "Data")]
    pub limit_traces: Option<usize>,

    /// How a whole trace is scored from its window scores (per-trace datasets such as ADFA-LD):
    /// the mean window score, the highest, or the share of windows over the window threshold.
    #[arg(long, value_enum, default_value_t = TraceScore::Mean, help_heading = "Evaluation")]
    pub trace_score: TraceScore,
    /// Models to evaluate, comma-separated (hmm, hmm-bosc-flat, hmm-bosc, ae, ae-index, ae-bosc,
    /// stide, kmeans, cover).
    #[arg(
        long,
        value_parser = parse_model_kind,
        value_delimiter = ',',
        default_value = "hmm,hmm-bosc-flat,hmm-bosc,ae,ae-bosc,stide,kmeans,cover",
        help_heading = "Evaluation"
    )]
    pub models: Vec<ModelKind>,
    /// Train each model with this many seeds (seed, seed+1, …) and report mean and spread.
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        help_heading = "Evaluation"
    )]
    pub seeds: u64,
    /// Target false-positive rate for the calibrated threshold.
    #[arg(
        long,
        default_value_t = 0.01,
        value_name = "RATE",
        help_heading = "Evaluation"
    )]
    pub target_fpr: f64,
    /// Extra thresholds for the sweep table, comma-separated (applied to every model).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "SCORE",
        help_heading = "Evaluation"
    )]
    pub thresholds: Vec<f64>,
    /// The operator view credits an attack step with an alert that fires at most this many
    /// seconds after the step ends (and is fired by a window holding a call of the step).
    #[arg(
        long,
        default_value_t = 2.0,
        value_name = "SECONDS",
        help_heading = "Evaluation"
    )]
    pub alert_grace: f64,
    #[command(flatten)]
    pub alert: AlertArgs,
    /// Print JSON instead of tables.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Write roc.svg and one timeline-<model>.svg per model into this folder.
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub plots: Option<PathBuf>,
    /// No progress bars.
    #[arg(short, long, help_heading = "Output")]
    pub quiet: bool,

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
}

/// `--trace-score` values.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceScore {
    /// Mean window score: long normal traces do not win by having more chances of one odd window.
    Mean,
    /// Highest window score.
    Max,
    /// Share of windows over the calibrated window threshold (STIDE's classic "mismatch rate").
    Share,
}

/// Whether a trace was used for calibration, or is a normal or an attack test trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Role {
    Calibration,
    Normal,
    Attack,
}

#[derive(Debug)]
struct Trace {
    family: Option<String>,
    role: Role,
    windows: Vec<u32>,
    /// The whole trace, for models that score traces natively ([`Detector::sequence_score`]).
    symbols: Vec<Symbol>,
}

#[derive(Debug)]
struct TestWindow {
    id: u32,
    attack: bool,
    x: f64,
    time: Option<WindowTime>,
    /// Labelled steps during which one of its calls was made.
    steps: Vec<u32>,
}

/// Recording index, first and last call time (ns) of a window, when the input has timestamps.
type WindowTime = (u32, i64, i64);

/// Everything a model is evaluated on; test windows are interned, so a window that occurs many
/// times (most do, in system-call data) is scored once.
#[derive(Default)]
struct Dataset {
    train: Vec<Vec<Symbol>>,
    /// Whole training traces (ADFA-LD), for models trained on sequences.
    train_traces: Vec<Vec<Symbol>>,
    calibration: Vec<u32>,
    test: Vec<TestWindow>,
    traces: Vec<Trace>,
    uniq: Vec<Vec<Symbol>>,
    index: HashMap<Vec<Symbol>, u32>,
    x_label: String,
    attack_spans: Vec<(f64, f64)>,
    /// Labelled attack steps, for the operator view.
    steps: Vec<AttackRange>,
    /// Names of the timed recordings, by the index in `TestWindow::time`.
    recordings: Vec<String>,
}

impl Dataset {
    fn intern(&mut self, w: &[Symbol]) -> u32 {
        if let Some(&id) = self.index.get(w) {
            return id;
        }
        let id = self.uniq.len() as u32;
        self.uniq.push(w.to_vec());
        self.index.insert(w.to_vec(), id);
        id
    }
}

#[derive(Serialize)]
struct RunResult {
    seed: u64,
    fit_seconds: f64,
    score_seconds: f64,
    threshold: f64,
    normal: ScoreSummary,
    attack: ScoreSummary,
    auc: f64,
    at_threshold: Rates,
    sweep: Vec<Rates>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traces: Option<TraceResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<OperatorView>,
    /// Attack windows of each --test recording against all normal test windows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    per_recording: Vec<RecordingResult>,
}

#[derive(Serialize)]
struct RecordingResult {
    recording: String,
    attack_windows: usize,
    auc: f64,
    detection_rate: f64,
}

#[derive(Serialize)]
struct TraceResult {
    normal_traces: usize,
    attack_traces: usize,
    auc: f64,
    at_1pct: Rates,
    at_5pct: Rates,
    families: Vec<FamilyResult>,
}

#[derive(Serialize)]
struct FamilyResult {
    family: String,
    traces: usize,
    auc: f64,
    detection_at_1pct: f64,
    detection_at_5pct: f64,
}

#[derive(Serialize)]
struct ModelResult {
    model: String,
    representation: &'static str,
    /// Trace scores are the model's own whole-trace scores, not aggregated window scores.
    whole_trace_scores: bool,
    runs: Vec<RunResult>,
}

#[derive(Serialize)]
struct EvalReport {
    dataset: String,
    class_table: String,
    n_symbols: usize,
    window: WindowConfig,
    train_windows: usize,
    calibration_windows: usize,
    test_normal_windows: usize,
    test_attack_windows: usize,
    target_fpr: f64,
    trace_score: TraceScore,
    alert_rule: AlertRule,
    alert_grace: f64,
    models: Vec<ModelResult>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let window = args.window.config()?;
    let (table, data, name) = if let Some(root) = &args.adfa {
        let (t, d) = adfa_dataset(root, &args, window)?;
        (t, d, format!("ADFA-LD {}", root.display()))
    } else {
        let (t, d) = file_dataset(&args, window)?;
        (
            t,
            d,
            args.train
                .iter()
                .chain(&args.test)
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
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
    let train_refs: Vec<&[Symbol]> = args.model.settings().subsample(&data.train);
    let uniq_refs: Vec<&[Symbol]> = data.uniq.iter().map(Vec::as_slice).collect();
    let train_traces: Vec<&[Symbol]> = data.train_traces.iter().map(Vec::as_slice).collect();
    let bar = progress::bar(
        "training and scoring",
        args.models.len() as u64 * args.seeds,
        args.quiet,
    );
    let mut results = Vec::new();
    // The first seed's scores of each model, kept for the plots.
    let mut plotted: Vec<Vec<f64>> = Vec::new();
    for &kind in &args.models {
        let mut runs = Vec::new();
        let mut whole_trace_scores = false;
        for s in 0..args.seeds {
            let seed = args.model.seed + s;
            let started = Instant::now();
            let det = Detector::fit(
                kind,
                &args.model.settings(),
                seed,
                &train_refs,
                &train_traces,
                table.n_symbols(),
                window.size,
            )
            .with_context(|| format!("training {kind}"))?;
            let fit_seconds = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let scores = det.scorer().score_many(&uniq_refs);
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
                &data,
                &scores,
                trace_scores.as_deref(),
                seed,
                fit_seconds,
                score_seconds,
                &args,
            )?);
            if s == 0 && args.plots.is_some() {
                plotted.push(scores);
            }
            bar.inc(1);
        }
        results.push(ModelResult {
            model: kind.to_string(),
            representation: kind.representation(),
            whole_trace_scores,
            runs,
        });
    }
    bar.finish_and_clear();
    let report_data = EvalReport {
        dataset: name,
        class_table: table.config().name.clone(),
        n_symbols: table.n_symbols(),
        window,
        train_windows: train_refs.len(),
        calibration_windows: data.calibration.len(),
        test_normal_windows: n_normal,
        test_attack_windows: n_attack,
        target_fpr: args.target_fpr,
        trace_score: args.trace_score,
        alert_rule: args.alert.rule()?,
        alert_grace: args.alert_grace,
        models: results,
    };
    if let Some(dir) = &args.plots {
        write_plots(dir, &data, &report_data, &plotted)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report_data)?);
    } else {
        print_report(&report_data);
    }
    Ok(())
}

fn measure(
    data: &Dataset,
    scores: &[f64],
    trace_scores: Option<&[f64]>,
    seed: u64,
    fit_seconds: f64,
    score_seconds: f64,
    args: &EvalArgs,
) -> Result<RunResult> {
    let cal: Vec<f64> = data
        .calibration
        .iter()
        .map(|&i| scores[i as usize])
        .collect();
    let threshold = calibrate(&cal, args.target_fpr)?.value;
    let unlike = mamori_detect::calibrate::unlike_tail(&cal, args.target_fpr);
    if unlike > 0 && !args.quiet {
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
        .chain(args.thresholds.iter().copied())
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
            args.trace_score,
            threshold,
        )?),
    };
    let timed: Vec<ScoredWindow> = data
        .test
        .iter()
        .filter_map(|w| {
            w.time.map(|(recording, start_ns, end_ns)| ScoredWindow {
                recording,
                start_ns,
                end_ns,
                attack: w.attack,
                steps: w.steps.clone(),
                score: scores[w.id as usize],
            })
        })
        .collect();
    let rule = args.alert.rule()?;
    if !(args.alert_grace.is_finite() && args.alert_grace >= 0.0) {
        bail!("--alert-grace must be a finite number of seconds >= 0");
    }
    let operator = (!timed.is_empty()).then(|| {
        operator_view(
            &timed,
            &data.steps,
            threshold,
            &rule,
            (args.alert_grace * 1e9) as i64,
        )
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
        per_recording,
    })
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
    args: &EvalArgs,
    window: WindowConfig,
) -> Result<(ClassTable, Dataset)> {
    let ds = mamori_ingest::read_adfa_dataset(root)
        .with_context(|| format!("cannot read ADFA-LD from {}", root.display()))?;
    let table = match &args.profile.profile {
        Some(p) => input::load_profile(p)?,
        None => {
            let events: Vec<_> = ds.training.iter().flat_map(|t| t.events()).collect();
            let params = args.profile.learn_params("adfa-ld");
            ClassTable::new(mamori_detect::classes::learn_profile(&events, &params))?
        }
    };
    let mut data = Dataset {
        x_label: "test window (validation traces, then attack traces)".into(),
        ..Dataset::default()
    };
    for t in &ds.training {
        let sym = input::classify_trace(&table, t.events());
        data.train
            .extend(sequence_windows(&sym, window.size, window.stride).map(<[Symbol]>::to_vec));
        data.train_traces.push(sym);
    }
    let spread = |n: usize| -> Vec<usize> {
        match args.limit_traces {
            Some(k) if k < n => (0..k).map(|i| i * n / k).collect(),
            _ => (0..n).collect(),
        }
    };
    let add =
        |data: &mut Dataset, trace: &mamori_ingest::Trace, role: Role, family: Option<String>| {
            let sym = input::classify_trace(&table, trace.events());
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
    let chosen = spread(ds.validation.len());
    for (k, &i) in chosen.iter().enumerate() {
        let role = if k % 2 == 0 {
            Role::Calibration
        } else {
            Role::Normal
        };
        add(&mut data, &ds.validation[i], role, None);
    }
    for i in spread(ds.attacks.len()) {
        let t = &ds.attacks[i];
        add(&mut data, t, Role::Attack, t.family.clone());
    }
    Ok((table, data))
}

/// Recordings on disk, labelled by file or by time.
fn file_dataset(args: &EvalArgs, window: WindowConfig) -> Result<(ClassTable, Dataset)> {
    let warmup_ns = args.warmup.ns()?;
    let mut train_before = match &args.train_before {
        Some(t) => Some(labels::parse_time(t).context("--train-before")?),
        None => None,
    };
    let mut ranges: Vec<AttackRange> = Vec::new();
    if args.lidds_exploit {
        for path in &args.test {
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
    if args.train.is_empty() && train_before.is_none() {
        bail!("give --adfa DIR, or --train with --test/--normal/--attack, or --test with --train-before");
    }
    if !(0.0..1.0).contains(&args.holdout) {
        bail!("--holdout must be in [0, 1), got {}", args.holdout);
    }
    for p in &args.labels {
        ranges.extend(labels::read_labels(p)?);
    }
    if let (Some(f), Some(t)) = (&args.attack_from, &args.attack_to) {
        ranges.push(AttackRange {
            from_ns: labels::parse_time(f).context("--attack-from")?,
            to_ns: labels::parse_time(t).context("--attack-to")?,
            name: "attack".into(),
        });
    }
    if !args.test.is_empty() && ranges.is_empty() {
        bail!("--test recordings need attack periods: --labels FILE or --attack-from/--attack-to");
    }
    // Learn the table from the training recordings, or from the normal start of the test ones.
    let (learn_from, until) = if args.train.is_empty() {
        (&args.test, train_before)
    } else {
        (&args.train, None)
    };
    let table = input::class_table(&args.profile, learn_from, &args.input, until)?;
    let mut data = Dataset {
        steps: ranges.clone(),
        recordings: args
            .test
            .iter()
            .map(|p| short_name(&p.display().to_string()))
            .collect(),
        ..Dataset::default()
    };
    input::windows_of(&args.train, &args.input, &table, window, warmup_ns, |w| {
        data.train.push(w.symbols);
        Ok(())
    })?;
    let timed = !args.test.is_empty();
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
    for (rec, path) in args.test.iter().enumerate() {
        input::windows_of(
            std::slice::from_ref(path),
            &args.input,
            &table,
            window,
            warmup_ns,
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
    if !test_train.is_empty() && args.normal.is_empty() && args.calibrate.is_empty() {
        // One recording: the first part trains, then the held-out share of the normal part is
        // split into calibration and normal test windows, so neither is trained on.
        let keep = test_train.len() - (test_train.len() as f64 * args.holdout) as usize;
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
    } else if args.calibrate.is_empty() {
        data.train.extend(test_train.into_iter().map(|w| w.0));
        let keep = data.train.len() - (data.train.len() as f64 * args.holdout) as usize;
        let held = data.train.split_off(keep.max(1));
        data.calibration = held.iter().map(|w| data.intern(w)).collect();
    } else {
        data.train.extend(test_train.into_iter().map(|w| w.0));
        let mut cal = Vec::new();
        input::windows_of(
            &args.calibrate,
            &args.input,
            &table,
            window,
            warmup_ns,
            |w| {
                cal.push(w.symbols);
                Ok(())
            },
        )?;
        data.calibration = cal.iter().map(|w| data.intern(w)).collect();
    }
    if missing_time > 0 {
        bail!(
            "{missing_time} test windows have no timestamps, so time labels cannot apply to them"
        );
    }
    let mut rec = args.test.len() as u32;
    for (paths, attack) in [(&args.normal, false), (&args.attack, true)] {
        for path in paths {
            rec += 1;
            input::windows_of(
                std::slice::from_ref(path),
                &args.input,
                &table,
                window,
                warmup_ns,
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

fn write_plots(dir: &Path, data: &Dataset, rep: &EvalReport, plotted: &[Vec<f64>]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut roc = Vec::new();
    for (m, scores) in rep.models.iter().zip(plotted) {
        let (normal, attack): (Vec<_>, Vec<_>) = data.test.iter().partition(|w| !w.attack);
        let normal: Vec<f64> = normal.iter().map(|w| scores[w.id as usize]).collect();
        let attack: Vec<f64> = attack.iter().map(|w| scores[w.id as usize]).collect();
        let run = &m.runs[0];
        roc.push(plot::RocSeries {
            label: m.model.clone(),
            auc: run.auc,
            points: roc_curve(&normal, &attack)
                .iter()
                .map(|p| (p.fpr, p.tpr))
                .collect(),
        });
        let points: Vec<(f64, f64)> = data
            .test
            .iter()
            .map(|w| (w.x, scores[w.id as usize]))
            .collect();
        let svg = plot::timeline_svg(
            &format!("{} scores ({})", m.model, short_name(&rep.dataset)),
            &data.x_label,
            &points,
            Some(run.threshold),
            &data.attack_spans,
        );
        let path = dir.join(format!("timeline-{}.svg", m.model));
        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let path = dir.join("roc.svg");
    std::fs::write(
        &path,
        plot::roc_svg(
            &format!("ROC, window level: {}", short_name(&rep.dataset)),
            &roc,
        ),
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("mamori: plots written to {}", dir.display());
    Ok(())
}

/// A dataset label short enough for a plot title: file names without their folders.
fn short_name(dataset: &str) -> String {
    let names: Vec<&str> = dataset
        .split(", ")
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .collect();
    match names.len() {
        0..=2 => names.join(", "),
        n => format!("{}, {} and {} more", names[0], names[1], n - 2),
    }
}

fn print_report(rep: &EvalReport) {
    println!(
        "dataset {}\nclass table `{}` ({} symbols), window {} stride {} ({:?} streams)",
        rep.dataset,
        rep.class_table,
        rep.n_symbols,
        rep.window.size,
        rep.window.stride,
        rep.window.stream
    );
    println!(
        "windows: {} train, {} calibration, {} normal test, {} attack test; threshold for {:.2}% FPR on calibration\n",
        rep.train_windows,
        rep.calibration_windows,
        rep.test_normal_windows,
        rep.test_attack_windows,
        rep.target_fpr * 100.0
    );
    let mut t = report::Table::new(&[
        "model",
        "input",
        "normal scores",
        "attack scores",
        "AUC",
        "threshold",
        "detection",
        "false pos.",
        "fit s",
    ]);
    for m in &rep.models {
        let r0 = &m.runs[0];
        let auc: Vec<f64> = m.runs.iter().map(|r| r.auc).collect();
        let dr: Vec<f64> = m
            .runs
            .iter()
            .map(|r| r.at_threshold.detection_rate)
            .collect();
        let fp: Vec<f64> = m
            .runs
            .iter()
            .map(|r| r.at_threshold.false_positive_rate)
            .collect();
        let fit: Vec<f64> = m.runs.iter().map(|r| r.fit_seconds).collect();
        t.row(vec![
            m.model.clone(),
            m.representation.to_string(),
            format!(
                "{}–{}",
                report::num(r0.normal.min),
                report::num(r0.normal.max)
            ),
            format!(
                "{}–{}",
                report::num(r0.attack.min),
                report::num(r0.attack.max)
            ),
            report::mean_sd(&auc, 3, 1.0),
            report::num(r0.threshold),
            report::mean_sd(&dr, 1, 100.0) + "%",
            report::mean_sd(&fp, 2, 100.0) + "%",
            report::mean_sd(&fit, 2, 1.0),
        ]);
    }
    print!("{}", t.render());
    if rep.models.first().is_some_and(|m| m.runs.len() > 1) {
        println!(
            "(mean ± standard deviation over {} seeds; score ranges from the first seed)",
            rep.models[0].runs.len()
        );
    }
    for m in &rep.models {
        println!(
            "\n{} / {}: detection and false positives by threshold (seed {})",
            m.model, m.representation, m.runs[0].seed
        );
        let mut t = report::Table::new(&["threshold", "detection", "false positives"]);
        for r in &m.runs[0].sweep {
            t.row(vec![
                report::num(r.threshold),
                format!("{:.1}%", r.detection_rate * 100.0),
                format!("{:.2}%", r.false_positive_rate * 100.0),
            ]);
        }
        print!("{}", t.render());
    }
    print_per_recording(rep);
    print_operator_view(rep);
    if rep.models.iter().any(|m| m.runs[0].traces.is_some()) {
        println!(
            "\nper trace (trace score: {:?} of its window scores; thresholds from calibration traces)",
            rep.trace_score
        );
        let mut t = report::Table::new(&["model", "AUC", "DR @1% FP", "FPR", "DR @5% FP", "FPR"]);
        for m in &rep.models {
            let tr: Vec<&TraceResult> = m.runs.iter().filter_map(|r| r.traces.as_ref()).collect();
            if tr.is_empty() {
                continue;
            }
            let col = |f: &dyn Fn(&TraceResult) -> f64, d: usize, k: f64| {
                report::mean_sd(&tr.iter().map(|x| f(x)).collect::<Vec<_>>(), d, k)
            };
            t.row(vec![
                m.model.clone(),
                col(&|x| x.auc, 3, 1.0),
                col(&|x| x.at_1pct.detection_rate, 1, 100.0) + "%",
                col(&|x| x.at_1pct.false_positive_rate, 2, 100.0) + "%",
                col(&|x| x.at_5pct.detection_rate, 1, 100.0) + "%",
                col(&|x| x.at_5pct.false_positive_rate, 2, 100.0) + "%",
            ]);
        }
        print!("{}", t.render());
        let whole: Vec<&str> = rep
            .models
            .iter()
            .filter(|m| m.whole_trace_scores)
            .map(|m| m.model.as_str())
            .collect();
        if !whole.is_empty() {
            println!(
                "({}: trace score = the model's own score of the whole trace, not a window aggregate)",
                whole.join(", ")
            );
        }
        println!(
            "\nper attack family (trace AUC / detection at 1% and 5% FP, seed {})",
            rep.models[0].runs[0].seed
        );
        let families: Vec<String> = rep.models[0].runs[0]
            .traces
            .as_ref()
            .map(|x| x.families.iter().map(|f| f.family.clone()).collect())
            .unwrap_or_default();
        let mut header = vec!["model".to_string()];
        header.extend(families.iter().cloned());
        let hdr: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut t = report::Table::new(&hdr);
        for m in &rep.models {
            let Some(tr) = &m.runs[0].traces else {
                continue;
            };
            let mut row = vec![m.model.clone()];
            for f in &tr.families {
                row.push(format!(
                    "{:.3} {:.0}%/{:.0}%",
                    f.auc,
                    f.detection_at_1pct * 100.0,
                    f.detection_at_5pct * 100.0
                ));
            }
            t.row(row);
        }
        print!("{}", t.render());
    }
}

/// Alerts per attack step and false alarms per hour, at each model's calibrated threshold.
fn print_operator_view(rep: &EvalReport) {
    let views: Vec<(&str, &OperatorView)> = rep
        .models
        .iter()
        .filter_map(|m| m.runs[0].operator.as_ref().map(|v| (m.model.as_str(), v)))
        .collect();
    let Some((_, first)) = views.first() else {
        return;
    };
    let r = &rep.alert_rule;
    println!(
        "\noperator view at the calibrated threshold (seed {}), the agent's alert rule replayed \
         per recording (fires at the {}th flagged window within {} s, {} s cooldown): seconds \
         from each attack step's start until an alert fired by a window with a call in the step, \
         at most {} s after it ends; every other alert is a false alarm",
        rep.models[0].runs[0].seed,
        r.min_flagged,
        r.gap_ns as f64 / 1e9,
        r.cooldown_ns as f64 / 1e9,
        rep.alert_grace
    );
    let mut header = vec!["attack step", "lasts s"];
    header.extend(views.iter().map(|v| v.0));
    let mut t = report::Table::new(&header);
    for (i, step) in first.steps.iter().enumerate() {
        let mut row = vec![
            step.name.clone(),
            match step.to_ns {
                i64::MAX => "to the end".into(),
                to => format!("{:.2}", (to - step.from_ns) as f64 / 1e9),
            },
        ];
        for (_, v) in &views {
            row.push(match v.steps.get(i).and_then(|s| s.latency_s) {
                Some(l) => format!("{l:.2}"),
                None => "missed".into(),
            });
        }
        t.row(row);
    }
    let mut row = vec![
        format!("false alarms, {:.0} s normal", first.normal_hours * 3600.0),
        String::new(),
    ];
    for (_, v) in &views {
        row.push(format!(
            "{} ({:.1}/h)",
            v.false_alarms, v.false_alarms_per_hour
        ));
    }
    t.row(row);
    print!("{}", t.render());
}

/// Detection per attack recording, when there are several.
fn print_per_recording(rep: &EvalReport) {
    let first = &rep.models[0].runs[0].per_recording;
    if first.len() < 2 {
        return;
    }
    println!(
        "\nper attack recording (AUC against all normal test windows / detection at the threshold, seed {})",
        rep.models[0].runs[0].seed
    );
    let mut header = vec!["model".to_string()];
    header.extend(
        first
            .iter()
            .map(|r| format!("{} ({})", r.recording, r.attack_windows)),
    );
    let hdr: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = report::Table::new(&hdr);
    for m in &rep.models {
        let mut row = vec![m.model.clone()];
        for r in &m.runs[0].per_recording {
            row.push(format!("{:.3} / {:.1}%", r.auc, r.detection_rate * 100.0));
        }
        t.row(row);
    }
    print!("{}", t.render());
}
