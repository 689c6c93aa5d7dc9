//! `mamori learn`: capture a container's normal behaviour live (or take a recording) and train the
//! model the agent will use for its image.

use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Duration;

use crate::cmd::model_args::{parse_model_kind, ModelArgs};
use anyhow::{bail, Context, Result};
use clap::Args;

use crate::cmd::capture::capture_to;
use crate::cmd::train;
use crate::input::{ProfileArgs, StreamArg, WarmupArgs, WindowArgs};
use mamori_agent::config::Backend;
use mamori_agent::live::Scope;
use mamori_agent::models::model_file;
use mamori_pipeline::model::ModelKind;
use mamori_pipeline::recording::ReadOptions;
use mamori_pipeline::train::TrainConfig;

/// Learn a container image's normal behaviour and store the model for `mamori agent`.
///
/// Live:  mamori learn --container cam --duration 15m
/// From a recording:  mamori learn --from cam.jsonl --image motion
#[derive(Args, Debug)]
pub struct LearnArgs {
    /// Container to learn from (its image names the model).
    #[arg(long, value_name = "NAME", conflicts_with = "from")]
    pub container: Option<String>,
    /// How long to watch the container.
    #[arg(long, default_value = "15m", value_name = "DURATION", value_parser = crate::cmd::numbers::duration)]
    pub duration: Duration,
    /// Learn from recordings instead of live traffic (needs --image).
    #[arg(long, value_name = "FILE", requires = "image")]
    pub from: Vec<PathBuf>,
    /// Image the model is for (default: the container's image).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Directory of per-image models (the agent's `models.dir`).
    #[arg(long, default_value = "/var/lib/mamori/models", value_name = "DIR")]
    pub models: PathBuf,
    /// Capture engine for live learning.
    #[arg(long, value_parser = crate::cmd::agent::parse_backend, default_value_t = Backend::Ebpf, value_name = "ENGINE")]
    pub backend: Backend,
    /// Which model to train. STIDE on per-thread streams raised no false alarm in 30 minutes of
    /// the live agent on the lab container, where `hmm-stide` raised one incident; over the
    /// motion recordings and that run together the two tie (EVALUATION.md, "Live").
    #[arg(long = "model", value_parser = parse_model_kind, default_value_t = ModelKind::Stide, value_name = "MODEL")]
    pub kind: ModelKind,
    /// Calls per window.
    #[arg(value_parser = crate::cmd::numbers::count, long = "window", default_value_t = 19, value_name = "N")]
    pub size: usize,
    /// How calls are split into streams before windowing.
    #[arg(long, value_enum, default_value_t = StreamArg::PerThread)]
    pub stream: StreamArg,
    /// Target false-positive rate on held-out normal windows.
    #[arg(value_parser = crate::cmd::numbers::fraction, long, default_value_t = 0.01, value_name = "RATE")]
    pub target_fpr: f64,
    /// STIDE: a window is flagged only when more of its calls are novel than this. Minutes of
    /// live traffic rarely show every ordering of a daemon's calls: a SIGCHLD landing at a new
    /// point adds two (the handler's `wait4` and `rt_sigreturn`). An intrusion's new programs are
    /// novel in nearly every call. 0 keeps the calibrated threshold as it is.
    #[arg(long, default_value_t = 2, value_name = "CALLS")]
    pub tolerate_novel_calls: usize,
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[command(flatten)]
    pub warmup: WarmupArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: LearnArgs) -> Result<()> {
    std::fs::create_dir_all(&args.models)
        .with_context(|| format!("cannot create model directory {}", args.models.display()))?;
    let (inputs, image) = match (&args.container, args.from.is_empty()) {
        (Some(name), true) => {
            let image = match &args.image {
                Some(i) => i.clone(),
                None => image_of(name)?,
            };
            let recording = model_file(&args.models, &image).with_extension("events.jsonl");
            let file = std::fs::File::create(&recording)
                .with_context(|| format!("cannot create {}", recording.display()))?;
            let mut out = BufWriter::new(file);
            eprintln!(
                "mamori: learning {name} (image {image}) for {}; recording to {}",
                humantime::format_duration(args.duration),
                recording.display()
            );
            let summary = capture_to(
                Scope {
                    containers: vec![name.clone()],
                    include_host: false,
                },
                args.backend,
                128,
                true,
                Some(args.duration),
                &mut out,
            )?;
            drop(out);
            eprintln!(
                "mamori: captured {} calls in {:.0}s ({} dropped by the probe)",
                summary.events, summary.seconds, summary.dropped
            );
            if summary.events == 0 {
                bail!("no calls captured from {name}: is it doing anything?");
            }
            (vec![recording], image)
        }
        (None, false) => {
            let image = args.image.clone().context("--from needs --image")?;
            (args.from.clone(), image)
        }
        _ => bail!("give either --container NAME (live) or --from FILE --image IMAGE"),
    };
    let output = model_file(&args.models, &image);
    let window = WindowArgs {
        size: args.size,
        stride: 1,
        stream: args.stream,
    };
    let config = TrainConfig {
        inputs,
        read: ReadOptions::default(),
        profile: args.profile.profile.clone(),
        learn: args.profile.learn_params("learned"),
        window: window.config()?,
        warmup_ns: args.warmup.ns()?,
        kind: args.kind,
        settings: args.model.settings(),
        calibrate: Vec::new(),
        holdout: 0.2,
        target_fpr: args.target_fpr,
        threshold: None,
        tolerate_novel_calls: args.tolerate_novel_calls,
        // a live recording is cut when --duration ends, often mid-operation
        trim_unlike_tail: true,
        declared_api: args.profile.declared_api()?,
    };
    train::train_and_save(
        &config,
        &output,
        mamori_core::output::SymlinkPolicy::Refuse,
        args.quiet,
    )?;
    eprintln!(
        "mamori: the agent will use {} for image {image}",
        output.display()
    );
    Ok(())
}

/// The image of a running container, from Docker.
fn image_of(name: &str) -> Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the Docker client runtime")?;
    let info = runtime.block_on(async {
        let client = mamori_docker::DockerClient::connect().await?;
        client.inspect(name).await
    })?;
    Ok(info.image)
}
