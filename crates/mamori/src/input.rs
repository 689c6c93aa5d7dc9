//! The input flags every command shares, and thin wrappers that hand them to
//! [`mamori_pipeline::recording`] as plain settings.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use mamori_detect::classes::LearnParams;
use mamori_detect::window::{StreamMode, WindowConfig};
use mamori_ingest::Format;
use mamori_pipeline::declared::DeclaredRequest;
use mamori_pipeline::recording::{self, ReadOptions};
use mamori_wot::td::ThingDescription;

pub use mamori_pipeline::recording::load_profile;

/// Which files to read and how.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Input format; detected from the file's content when omitted.
    #[arg(long, value_name = "FORMAT", help_heading = "Input")]
    pub format: Option<Format>,
    /// Count and report malformed lines instead of stopping at the first one.
    #[arg(long, help_heading = "Input")]
    pub lenient: bool,
}

impl InputArgs {
    /// The reading settings these flags describe.
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            format: self.format,
            lenient: self.lenient,
        }
    }
}

/// Which class table to use.
#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// Class table (TOML), e.g. profiles/motion.toml. Without it a table is learned from the
    /// training data: the most frequent syscalls, split by dominant path prefixes.
    #[arg(long, value_name = "TOML", help_heading = "Classes")]
    pub profile: Option<PathBuf>,
    /// At most this many syscalls get classes in a learned table.
    #[arg(value_parser = crate::cmd::numbers::count, long, default_value_t = 64, value_name = "N", help_heading = "Classes")]
    pub max_syscalls: usize,
    /// A syscall needs at least this share of the training calls to get a class in a learned
    /// table (rarer ones map to "unknown").
    #[arg(
        value_parser = crate::cmd::numbers::fraction,
        long,
        default_value_t = 0.0005,
        value_name = "SHARE",
        help_heading = "Classes"
    )]
    pub min_syscall_share: f64,
    /// The device's W3C WoT Thing Description (JSON file), e.g. profiles/motion.td.json: a
    /// request never seen in training that the TD declares as a read (readproperty, an event
    /// subscription) is not raised by the request signal; any other says whether the TD
    /// declares it (an action, a property write) or not. Stored in the model.
    #[arg(long, value_name = "TD.json", help_heading = "Context")]
    pub thing_description: Option<PathBuf>,
}

impl ProfileArgs {
    /// The HTTP requests the `--thing-description` declares (none without one).
    pub fn declared_api(&self) -> Result<Vec<DeclaredRequest>> {
        let Some(path) = &self.thing_description else {
            return Ok(Vec::new());
        };
        let bytes = std::fs::read(path).map_err(|e| {
            anyhow::anyhow!("--thing-description {}: cannot read: {e}", path.display())
        })?;
        let td = ThingDescription::parse(&path.display().to_string(), &bytes)
            .map_err(|e| anyhow::anyhow!("--thing-description {e}"))?;
        let forms = td.http_forms();
        if forms.is_empty() {
            bail!(
                "--thing-description {}: the TD declares no HTTP(S) forms",
                path.display()
            );
        }
        Ok(forms
            .into_iter()
            .map(|f| DeclaredRequest::new(&f.method, &f.href, f.reads, f.what))
            .collect())
    }

    /// Settings for learning a class table.
    pub fn learn_params(&self, name: &str) -> LearnParams {
        LearnParams {
            name: name.to_string(),
            max_syscalls: self.max_syscalls,
            min_syscall_share: self.min_syscall_share,
            ..LearnParams::default()
        }
    }
}

/// Window settings.
#[derive(Args, Debug, Clone)]
pub struct WindowArgs {
    /// Calls per window (the paper: 19).
    #[arg(
        value_parser = crate::cmd::numbers::count,
        long = "window",
        default_value_t = 19,
        value_name = "N",
        help_heading = "Windows"
    )]
    pub size: usize,
    /// Calls between consecutive window starts.
    #[arg(value_parser = crate::cmd::numbers::count, long, default_value_t = 1, value_name = "N", help_heading = "Windows")]
    pub stride: usize,
    /// One stream per thread (recommended: a new process or thread forms windows of its own), one
    /// per process, or one interleaved stream per recording (the paper).
    #[arg(long, value_enum, default_value_t = StreamArg::PerThread, help_heading = "Windows")]
    pub stream: StreamArg,
}

/// `--stream` values.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamArg {
    /// One stream per recording or container.
    Interleaved,
    /// One stream per process.
    PerProcess,
    /// One stream per thread.
    PerThread,
}

impl WindowArgs {
    pub fn config(&self) -> Result<WindowConfig> {
        let cfg = WindowConfig {
            size: self.size,
            stride: self.stride,
            stream: match self.stream {
                StreamArg::Interleaved => StreamMode::Interleaved,
                StreamArg::PerProcess => StreamMode::PerProcess,
                StreamArg::PerThread => StreamMode::PerThread,
            },
        };
        cfg.check()?;
        Ok(cfg)
    }
}

/// Which windows of a recording count.
#[derive(Args, Debug, Clone, Default)]
pub struct WarmupArgs {
    /// Skip the windows that start within this many seconds of each recording's first call:
    /// a container's start-up (loading libraries, opening devices) is not the steady behaviour
    /// a model should learn or be judged on. Needs timestamped input.
    #[arg(
        value_parser = crate::cmd::numbers::non_negative,
        long,
        default_value_t = 0.0,
        value_name = "SECONDS",
        help_heading = "Windows"
    )]
    pub warmup: f64,
}

impl WarmupArgs {
    /// The warm-up in nanoseconds, checked.
    pub fn ns(&self) -> Result<i64> {
        if !(self.warmup.is_finite() && self.warmup >= 0.0) {
            bail!(
                "--warmup must be a number of seconds ≥ 0, got {}",
                self.warmup
            );
        }
        Ok((self.warmup * 1e9).round() as i64)
    }
}

/// See [`recording::for_each_record`].
pub fn for_each_record(
    paths: &[PathBuf],
    input: &InputArgs,
    f: impl FnMut(&Path, mamori_ingest::Record) -> Result<()>,
) -> Result<()> {
    recording::for_each_record(paths, &input.read_options(), f)
}
