//! `mamori model show`: what a model file holds.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::modelfile;
use mamori_pipeline::model::TrainedModel;

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Print a model's kind, class table, window settings, threshold and training facts.
    ///
    /// With --json, HMM parameters are exported in hmmlearn's layout (startprob, transmat,
    /// emissionprob as nested arrays), so `CategoricalHMM` can be rebuilt from them.
    Show {
        /// Model file.
        #[arg(value_name = "MODEL")]
        model: PathBuf,
        /// Machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ModelCommand) -> Result<()> {
    let ModelCommand::Show { model, json } = cmd;
    let m: TrainedModel = modelfile::load(&model, modelfile::ModelKind::Syscall)?;
    if json {
        let mut v = json!({
            "file": model.display().to_string(),
            "mamori_version": m.mamori_version,
            "kind": m.kind.to_string(),
            "classes": m.classes,
            "labels": (0..=m.classes.classes.len()).map(|s| label(&m, s)).collect::<Vec<_>>(),
            "window": m.window,
            "threshold": m.threshold,
            "training": m.training,
            "context": m.context,
        });
        if let Some(hmm) = m.detector.hmmlearn_layout() {
            v["hmm"] = hmm;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("model       {}", model.display());
    println!("kind        {} (mamori {})", m.kind, m.mamori_version);
    println!(
        "window      size {}, stride {}, streams {:?}",
        m.window.size, m.window.stride, m.window.stream
    );
    match &m.threshold {
        Some(t) => println!("threshold   {:.6} ({:?})", t.value, t.method),
        None => println!("threshold   none (pass --threshold to score)"),
    }
    println!(
        "training    {} windows from {} events ({} monitored), {} calibration windows, seed {}, {:.2}s",
        m.training.windows,
        m.training.events,
        m.training.monitored_events,
        m.training.calibration_windows,
        m.training.seed,
        m.training.fit_seconds
    );
    for input in &m.training.inputs {
        println!("            {input}");
    }
    println!("detector    {}", m.detector.describe());
    match &m.context {
        Some(c) => {
            let reads = c.declared.iter().filter(|d| d.reads).count();
            println!(
                "context     {} programs, {} request kinds, {} network standard inputs{}; \
                 declared API: {}",
                c.programs.len(),
                c.requests.len(),
                c.network_stdin.len(),
                if c.saw_received_data {
                    ""
                } else {
                    " (no received data: requests not judged)"
                },
                if c.declared.is_empty() {
                    "none".to_string()
                } else {
                    format!("{} request forms, {reads} of them reads", c.declared.len())
                }
            );
        }
        None => println!("context     none (a model file from before the context signals)"),
    }
    println!(
        "classes     `{}`, {} classes + unknown, unmatched calls: {:?}",
        m.classes.name,
        m.classes.classes.len(),
        m.classes.unmatched
    );
    for s in 0..=m.classes.classes.len() {
        println!("  {s:>4}  {}", label(&m, s));
    }
    Ok(())
}

fn label(m: &TrainedModel, s: usize) -> String {
    m.classes
        .classes
        .get(s)
        .map_or_else(|| "unknown".to_string(), |c| c.label())
}
