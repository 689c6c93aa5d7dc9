//! `mamori score`: per-window scores of new recordings as JSON lines.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use mamori_detect::classes::ClassTable;
use serde::Serialize;

use mamori_core::alert::Fired;
use mamori_core::rule::{AlertState, Decision, RuleCounts};
use mamori_core::sink::{AlertSink, JsonLines};
use mamori_core::{Alert, Evidence, Subject};

use super::alert_args::AlertArgs;
use crate::input::{self, InputArgs, WarmupArgs};
use crate::{modelfile, progress};
use mamori_pipeline::context::{ContextWatcher, Novelty, NoveltyKind};
use mamori_pipeline::model::TrainedModel;
use mamori_pipeline::recording::{self, InputCheck, MismatchPolicy};
use std::cell::RefCell;
use std::collections::HashMap;

/// Score recordings window by window with a trained model.
///
/// Prints one JSON object per window: {"window", "stream", "start", "time_ns", "end_time_ns",
/// "score", "flagged", "alert"}: "flagged" when the score is over the threshold, "alert" when
/// the alert rule fires on it (the agent's rule: --alert-min-windows flagged windows within
/// --alert-gap seconds, then a --alert-cooldown). With --alerts-only, prints the alerts
/// themselves, as the agent writes them. Exit status: 0 when no alert fired, 1 when one did,
/// 2 on error.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Model file written by `mamori train`.
    #[arg(short, long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Recordings to score, as one stream in the order given.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Threshold overriding the model's calibrated one.
    #[arg(value_parser = crate::cmd::numbers::finite, long, value_name = "SCORE")]
    pub threshold: Option<f64>,
    /// Print the alerts (the agent's JSON records) instead of every window.
    #[arg(long)]
    pub alerts_only: bool,
    /// Classes an alert lists as the reason.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub top_classes: usize,
    #[command(flatten)]
    pub alert: AlertArgs,
    /// Expected window size; an error if the model was trained with another.
    #[arg(value_parser = crate::cmd::numbers::count, long = "window", value_name = "N")]
    pub size: Option<usize>,
    /// Expected stride; an error if the model was trained with another.
    #[arg(value_parser = crate::cmd::numbers::count, long, value_name = "N")]
    pub stride: Option<usize>,
    /// Score input unlike the model's training input anyway (e.g. a trace without descriptor
    /// paths for a model trained with `strace -yy`), with a warning instead of an error.
    #[arg(long)]
    pub ignore_input_mismatch: bool,
    /// Class table expected; an error if the model was trained with another.
    #[arg(long, value_name = "TOML")]
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub warmup: WarmupArgs,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Serialize)]
struct WindowScore {
    window: u64,
    stream: u64,
    start: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_ns: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time_ns: Option<i64>,
    score: f64,
    flagged: bool,
    alert: bool,
}

pub fn run(args: ScoreArgs) -> Result<i32> {
    let model: TrainedModel = modelfile::load(&args.model, modelfile::ModelKind::Syscall)?;
    check_settings(&args, &model)?;
    let table = ClassTable::new(model.classes.clone())
        .with_context(|| format!("{}: stored class table", args.model.display()))?;
    let rule = args
        .alert
        .rule_over(mamori_core::AlertRule::syscall_default())?;
    let threshold = match args.threshold {
        Some(t) => t,
        None => match &model.threshold {
            Some(t) => t.value,
            None => bail!(
                "{} has no calibrated threshold: give --threshold",
                args.model.display()
            ),
        },
    };
    let warmup_ns = args.warmup.ns()?;
    let scorer = model.detector.scorer();
    let subject = Subject::Recording {
        path: args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    };
    let model_path = args.model.display().to_string();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut alert_sink = JsonLines::new("stdout", std::io::stdout(), false);
    let bar = progress::counter("windows scored", args.quiet);
    let mut state = AlertState::default();
    let mut counts = RuleCounts::default();
    let mut index = 0u64;
    let mut max_score = f64::MIN;
    let check = model.training.input.as_ref().map(|trained| InputCheck {
        trained,
        policy: if args.ignore_input_mismatch {
            MismatchPolicy::Warn
        } else {
            MismatchPolicy::Refuse
        },
    });
    // First-time programs and requests, found per call and emitted before the next window.
    let mut watcher = ContextWatcher::new();
    let found: RefCell<Vec<(Novelty, u64, Option<String>)>> = RefCell::new(Vec::new());
    let mut context_states: HashMap<(NoveltyKind, String), AlertState> = HashMap::new();
    let context_rule = rule.at_once();
    let mut emit_context = |out: &mut BufWriter<std::io::StdoutLock<'_>>,
                            alert_sink: &mut JsonLines<std::io::Stdout>,
                            counts: &mut RuleCounts|
     -> Result<()> {
        for (novelty, repeats, process) in found.borrow_mut().drain(..) {
            let t = novelty.time_ns.unwrap_or(0);
            let state = context_states
                .entry((novelty.kind, novelty.what.clone()))
                .or_default();
            let decision = state.observe(&context_rule, t, 1.0, 0.0);
            counts.add(&decision);
            let Decision::Fire { run_start_ns, .. } = decision else {
                continue;
            };
            if args.alerts_only {
                alert_sink.alert(&novelty.alert(
                    subject.clone(),
                    &model_path,
                    process.as_deref(),
                    repeats,
                    run_start_ns,
                ))?;
            } else {
                serde_json::to_writer(
                    &mut *out,
                    &serde_json::json!({
                        "context": novelty.kind.name(),
                        "what": novelty.what,
                        "time_ns": novelty.time_ns,
                        "pid": novelty.pid,
                        "tid": novelty.tid,
                        "alert": true,
                    }),
                )?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    };
    let profile = model.context.clone();
    let mut first: (usize, Option<i64>) = (usize::MAX, None);
    recording::windows_observed(
        &args.inputs,
        &args.input.read_options(),
        &table,
        model.window,
        warmup_ns,
        check,
        |file, e| {
            let Some(profile) = &profile else { return };
            // The warm-up of each file is left out, as its windows are.
            if first.0 != file {
                first = (file, e.time_ns);
            }
            let f0 = *first.1.get_or_insert(e.time_ns.unwrap_or(0));
            let in_warmup = e.time_ns.is_some_and(|t| t < f0.saturating_add(warmup_ns));
            let found_now = watcher.observe(profile, e);
            if in_warmup {
                return;
            }
            if let Some((n, repeats)) = found_now {
                found.borrow_mut().push((n, repeats, e.process.clone()));
            }
        },
        |w| {
            emit_context(&mut out, &mut alert_sink, &mut counts)?;
            let score = scorer.score(&w.symbols);
            max_score = max_score.max(score);
            let t = w.end_time_ns.or(w.start_time_ns).unwrap_or(0);
            let decision = state.observe(&rule, t, score, threshold);
            counts.add(&decision);
            let fired = matches!(decision, Decision::Fire { .. });
            if let (
                true,
                Decision::Fire {
                    run_len,
                    run_start_ns,
                },
            ) = (args.alerts_only, decision)
            {
                let evidence = Evidence::Syscalls {
                    window: index,
                    stream: w.stream,
                    start_ns: w.start_time_ns.unwrap_or(t),
                    end_ns: t,
                    top_classes: model.top_classes(&table, &w.symbols, args.top_classes),
                    processes: Vec::new(),
                };
                let fired = Fired {
                    time_ns: t,
                    score,
                    threshold,
                    run_len,
                    run_start_ns,
                };
                alert_sink.alert(&Alert::warning(
                    subject.clone(),
                    "syscalls",
                    model.kind.name(),
                    &model_path,
                    fired,
                    evidence,
                ))?;
            } else if !args.alerts_only {
                let line = WindowScore {
                    window: index,
                    stream: w.stream,
                    start: w.start,
                    time_ns: w.start_time_ns,
                    end_time_ns: w.end_time_ns,
                    score,
                    flagged: decision.flagged(),
                    alert: fired,
                };
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
            index += 1;
            bar.inc(1);
            Ok(())
        },
    )?;
    emit_context(&mut out, &mut alert_sink, &mut counts)?;
    out.flush()?;
    alert_sink.flush()?;
    bar.finish_and_clear();
    if index == 0 {
        eprintln!("mamori: no windows: the input held no monitored calls");
    } else {
        eprintln!(
            "mamori: {index} windows scored, {} over threshold {threshold:.4}, {} alerts ({} held back by the cooldown), max score {max_score:.4}",
            counts.flagged, counts.alerts, counts.suppressed
        );
    }
    Ok(if counts.alerts > 0 { 1 } else { 0 })
}

fn check_settings(args: &ScoreArgs, model: &TrainedModel) -> Result<()> {
    let path = args.model.display();
    if let Some(size) = args.size.filter(|&s| s != model.window.size) {
        bail!(
            "{path} was trained with window size {}, not {size}: retrain or drop --window",
            model.window.size
        );
    }
    if let Some(stride) = args.stride.filter(|&s| s != model.window.stride) {
        bail!(
            "{path} was trained with stride {}, not {stride}: retrain or drop --stride",
            model.window.stride
        );
    }
    if let Some(p) = &args.profile {
        let table = input::load_profile(p)?;
        if table.config() != &model.classes {
            bail!(
                "{path} was trained with class table `{}`, which differs from {}: retrain or drop --profile",
                model.classes.name,
                p.display()
            );
        }
    }
    Ok(())
}
