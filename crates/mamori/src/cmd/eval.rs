//! `mamori eval`: train each model on normal data, calibrate a threshold on held-out normal data,
//! and measure it on labelled test data — the paper's Tables 3–6 plus ROC AUC, per seed.

use std::path::Path;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mamori_detect::metrics::roc_curve;
use mamori_pipeline::eval::{
    self, short_name, Dataset, EvalConfig, EvalReport, TraceResult, TraceScore,
};
use mamori_pipeline::model::ModelKind;
use mamori_pipeline::operator::OperatorView;

use crate::cmd::alert_args::AlertArgs;
use crate::cmd::model_args::{parse_model_kind, ModelArgs};
use crate::input::{InputArgs, ProfileArgs, WarmupArgs, WindowArgs};
use crate::{plot, progress, report};

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
        value_parser = crate::cmd::numbers::fraction,
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
    /// ADFA-LD: also train on this share of the (normal) validation traces, evenly spread; the
    /// rest alternate between calibration and test. 0 trains on Training_Data_Master alone.
    #[arg(
        value_parser = crate::cmd::numbers::below_one,
        long,
        value_name = "SHARE",
        help_heading = "Data"
    )]
    pub adfa_train_share: Option<f64>,

    /// How a whole trace is scored from its window scores (per-trace datasets such as ADFA-LD):
    /// the mean window score, the highest, or the share of windows over the window threshold.
    #[arg(long, value_parser = parse_trace_score, default_value_t = TraceScore::Mean, value_name = "HOW", help_heading = "Evaluation")]
    pub trace_score: TraceScore,
    /// Models to evaluate, comma-separated (hmm, hmm-bosc-flat, hmm-bosc, ae, ae-index, ae-bosc,
    /// stide, kmeans, cover, gru, hmm-stide).
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
        value_parser = crate::cmd::numbers::count_u64,
        long,
        default_value_t = 1,
        value_name = "N",
        help_heading = "Evaluation"
    )]
    pub seeds: u64,
    /// Target false-positive rate for the calibrated threshold.
    #[arg(
        value_parser = crate::cmd::numbers::fraction,
        long,
        default_value_t = 0.01,
        value_name = "RATE",
        help_heading = "Evaluation"
    )]
    pub target_fpr: f64,
    /// Extra thresholds for the sweep table, comma-separated (applied to every model).
    #[arg(
        value_parser = crate::cmd::numbers::finite,
        long,
        value_delimiter = ',',
        value_name = "SCORE",
        help_heading = "Evaluation"
    )]
    pub thresholds: Vec<f64>,
    /// The operator view credits an attack step with an alert that fires at most this many
    /// seconds after the step ends (and is fired by a window holding a call of the step).
    #[arg(
        value_parser = crate::cmd::numbers::non_negative,
        long,
        default_value_t = 2.0,
        value_name = "SECONDS",
        help_heading = "Evaluation"
    )]
    pub alert_grace: f64,
    #[command(flatten)]
    pub alert: AlertArgs,
    /// Train, calibrate and learn the context signals on only the first this-many seconds of
    /// each --train recording (a learning curve: how much normal time a model needs).
    #[arg(
        value_parser = crate::cmd::numbers::positive,
        long,
        value_name = "SECONDS",
        help_heading = "Data"
    )]
    pub train_seconds: Option<f64>,
    /// Leave out the context signals (programs and requests never seen in training, each
    /// alerting on its own) from the operator view of timed recordings.
    #[arg(long, help_heading = "Evaluation")]
    pub no_context: bool,
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

impl EvalArgs {
    /// The library's evaluation settings these flags describe.
    pub fn config(&self) -> Result<EvalConfig> {
        if self.adfa_train_share.is_some() && self.adfa.is_none() {
            anyhow::bail!(
                "--adfa-train-share needs --adfa (it splits ADFA-LD's validation traces)"
            );
        }
        Ok(EvalConfig {
            adfa: self.adfa.clone(),
            train: self.train.clone(),
            calibrate: self.calibrate.clone(),
            holdout: self.holdout,
            test: self.test.clone(),
            normal: self.normal.clone(),
            attack: self.attack.clone(),
            labels: self.labels.clone(),
            attack_from: self.attack_from.clone(),
            attack_to: self.attack_to.clone(),
            train_before: self.train_before.clone(),
            lidds_exploit: self.lidds_exploit,
            limit_traces: self.limit_traces,
            adfa_train_share: self.adfa_train_share.unwrap_or(0.0),
            trace_score: self.trace_score,
            models: self.models.clone(),
            seeds: self.seeds,
            target_fpr: self.target_fpr,
            thresholds: self.thresholds.clone(),
            alert_rule: self
                .alert
                .rule_over(mamori_core::AlertRule::syscall_default())?,
            alert_grace: self.alert_grace,
            read: self.input.read_options(),
            warmup_ns: self.warmup.ns()?,
            profile: self.profile.profile.clone(),
            learn: self.profile.learn_params("learned"),
            window: self.window.config()?,
            settings: self.model.settings(),
            keep_scores: self.plots.is_some(),
            warn: !self.quiet,
            context: !self.no_context,
            train_seconds: self.train_seconds,
            declared_api: self.profile.declared_api()?,
        })
    }
}

pub fn run(args: EvalArgs) -> Result<()> {
    let cfg = args.config()?;
    let (table, data, name) = eval::load(&cfg)?;
    let bar = progress::bar(
        "training and scoring",
        cfg.models.len() as u64 * cfg.seeds,
        args.quiet,
    );
    let (report_data, plotted) = eval::evaluate(&cfg, &table, &data, name, || bar.inc(1))?;
    bar.finish_and_clear();
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

/// Alerts per attack step and false alarms per hour, at each model's calibrated threshold: the
/// window models alone, then with the context signals.
fn print_operator_view(rep: &EvalReport) {
    let alone: Vec<(String, &OperatorView)> = rep
        .models
        .iter()
        .filter_map(|m| m.runs[0].operator.as_ref().map(|v| (m.model.clone(), v)))
        .collect();
    if alone.is_empty() {
        return;
    }
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
    print_operator_table(&alone);
    let Some(ctx) = &rep.context else { return };
    println!(
        "\nwith the context signals ({} programs, {} request kinds and {} network standard \
         inputs learned from training; a first-time one alerts on its own rule state): {} new \
         programs, requests or network-input lines in the test recordings",
        ctx.programs_learned,
        ctx.requests_learned,
        ctx.network_stdin_learned,
        ctx.novelties.len()
    );
    let mut with: Vec<(String, &OperatorView)> = vec![("context alone".into(), &ctx.operator)];
    with.extend(rep.models.iter().filter_map(|m| {
        m.runs[0]
            .operator_with_context
            .as_ref()
            .map(|v| (format!("{}+ctx", m.model), v))
    }));
    print_operator_table(&with);
}

fn print_operator_table(views: &[(String, &OperatorView)]) {
    let first = views[0].1;
    let mut header = vec!["attack step", "lasts s"];
    header.extend(views.iter().map(|v| v.0.as_str()));
    let mut t = report::Table::new(&header);
    for (i, step) in first.steps.iter().enumerate() {
        let mut row = vec![
            step.name.clone(),
            match step.to_ns {
                i64::MAX => "to the end".into(),
                to => format!("{:.2}", (to - step.from_ns) as f64 / 1e9),
            },
        ];
        for (_, v) in views {
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
    for (_, v) in views {
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

/// Parses a `--trace-score` value.
fn parse_trace_score(s: &str) -> Result<TraceScore, String> {
    match s {
        "mean" => Ok(TraceScore::Mean),
        "max" => Ok(TraceScore::Max),
        "share" => Ok(TraceScore::Share),
        _ => Err(format!("unknown trace score `{s}` (mean, max or share)")),
    }
}
