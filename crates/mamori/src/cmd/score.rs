//! `mamori score`: per-window scores of new recordings as JSON lines.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use mamori_detect::classes::ClassTable;
use serde::Serialize;

use crate::detector::TrainedModel;
use crate::input::{self, InputArgs, WarmupArgs};
use crate::{modelfile, progress};

/// Score recordings window by window with a trained model.
///
/// Prints one JSON object per window: {"window", "stream", "start", "time_ns", "end_time_ns",
/// "score", "alert"}. Exit status: 0 when no window is over the threshold, 1 when some are, 2 on
/// error.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Model file written by `mamori train`.
    #[arg(short, long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Recordings to score, as one stream in the order given.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Threshold overriding the model's calibrated one.
    #[arg(long, value_name = "SCORE")]
    pub threshold: Option<f64>,
    /// Print only windows over the threshold.
    #[arg(long)]
    pub alerts_only: bool,
    /// Expected window size; an error if the model was trained with another.
    #[arg(long = "window", value_name = "N")]
    pub size: Option<usize>,
    /// Expected stride; an error if the model was trained with another.
    #[arg(long, value_name = "N")]
    pub stride: Option<usize>,
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
    alert: bool,
}

pub fn run(args: ScoreArgs) -> Result<i32> {
    let model: TrainedModel = modelfile::load(&args.model, modelfile::ModelKind::Syscall)?;
    check_settings(&args, &model)?;
    let table = ClassTable::new(model.classes.clone())
        .with_context(|| format!("{}: stored class table", args.model.display()))?;
    let threshold = args.threshold.or(model.threshold.as_ref().map(|t| t.value));
    let warmup_ns = args.warmup.ns()?;
    let scorer = model.detector.scorer();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let bar = progress::counter("windows scored", args.quiet);
    let (mut index, mut alerts) = (0u64, 0u64);
    let mut max_score = f64::MIN;
    input::windows_of(
        &args.inputs,
        &args.input,
        &table,
        model.window,
        warmup_ns,
        |w| {
            let score = scorer.score(&w.symbols);
            let alert = threshold.is_some_and(|t| score > t);
            alerts += u64::from(alert);
            max_score = max_score.max(score);
            if alert || !args.alerts_only {
                let line = WindowScore {
                    window: index,
                    stream: w.stream,
                    start: w.start,
                    time_ns: w.start_time_ns,
                    end_time_ns: w.end_time_ns,
                    score,
                    alert,
                };
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
            index += 1;
            bar.inc(1);
            Ok(())
        },
    )?;
    out.flush()?;
    bar.finish_and_clear();
    eprintln!(
        "mamori: {index} windows scored, {alerts} over threshold {}, max score {:.4}",
        threshold.map_or("(none)".to_string(), |t| format!("{t:.4}")),
        if index == 0 { f64::NAN } else { max_score }
    );
    Ok(if alerts > 0 { 1 } else { 0 })
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
