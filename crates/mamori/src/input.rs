//! From input files to classified windows: the part of the pipeline every command shares.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use mamori_detect::classes::{learn_profile, ClassTable, ClassTableConfig, LearnParams};
use mamori_detect::event::SyscallEvent;
use mamori_detect::window::{StreamMode, Window, WindowConfig, Windower};
use mamori_ingest::{Format, Record};

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

/// Which class table to use.
#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// Class table (TOML), e.g. profiles/motion.toml. Without it a table is learned from the
    /// training data: the most frequent syscalls, split by dominant path prefixes.
    #[arg(long, value_name = "TOML", help_heading = "Classes")]
    pub profile: Option<PathBuf>,
    /// At most this many syscalls get classes in a learned table.
    #[arg(long, default_value_t = 64, value_name = "N", help_heading = "Classes")]
    pub max_syscalls: usize,
    /// A syscall needs at least this share of the training calls to get a class in a learned
    /// table (rarer ones map to "unknown").
    #[arg(
        long,
        default_value_t = 0.0005,
        value_name = "SHARE",
        help_heading = "Classes"
    )]
    pub min_syscall_share: f64,
}

impl ProfileArgs {
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
        long = "window",
        default_value_t = 19,
        value_name = "N",
        help_heading = "Windows"
    )]
    pub size: usize,
    /// Calls between consecutive window starts.
    #[arg(long, default_value_t = 1, value_name = "N", help_heading = "Windows")]
    pub stride: usize,
    /// One interleaved stream per recording (the paper), or one per process / thread.
    #[arg(long, value_enum, default_value_t = StreamArg::Interleaved, help_heading = "Windows")]
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

/// Loads a class table from TOML, naming the file in errors.
pub fn load_profile(path: &Path) -> Result<ClassTable> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read class table {}", path.display()))?;
    let cfg: ClassTableConfig =
        toml::from_str(&text).with_context(|| format!("invalid class table {}", path.display()))?;
    ClassTable::new(cfg).with_context(|| format!("invalid class table {}", path.display()))
}

/// Skipped-line report of one file, printed to stderr at the end of a run.
pub fn report_skipped(path: &Path, reader: &mamori_ingest::EventReader<mamori_ingest::DynBufRead>) {
    let skipped = reader.skipped();
    if skipped.total() > 0 {
        eprintln!("mamori: {}: {}", path.display(), skipped);
    }
}

/// Calls every event of every file in order; stops at the first malformed line unless lenient.
pub fn for_each_record(
    paths: &[PathBuf],
    args: &InputArgs,
    mut f: impl FnMut(&Path, Record) -> Result<()>,
) -> Result<()> {
    for path in paths {
        let mut reader = mamori_ingest::open_path(path, args.format, args.lenient)
            .with_context(|| format!("cannot open {}", path.display()))?;
        while let Some(record) = reader.next_record() {
            let record = record?;
            f(path, record)?;
        }
        report_skipped(path, &reader);
    }
    Ok(())
}

/// The class table: the given profile, or one learned from `paths` (a first pass over them),
/// from the events before `until_ns` when given.
pub fn class_table(
    profile: &ProfileArgs,
    paths: &[PathBuf],
    input: &InputArgs,
    until_ns: Option<i64>,
) -> Result<ClassTable> {
    if let Some(p) = &profile.profile {
        return load_profile(p);
    }
    let mut events: Vec<SyscallEvent> = Vec::new();
    // Learning needs counts only; keep the name and path fields, drop buffers.
    for_each_record(paths, input, |_, r| {
        if let Record::Call(mut e) = r {
            if until_ns.is_some_and(|t| e.time_ns.is_none_or(|et| et >= t)) {
                return Ok(());
            }
            e.args.retain(|a| a.starts_with('/'));
            e.args.truncate(1);
            events.push(e);
        }
        Ok(())
    })?;
    if events.is_empty() {
        bail!("no system-call events in the training input; cannot learn a class table");
    }
    let params = profile.learn_params("learned");
    Ok(ClassTable::new(learn_profile(&events, &params))?)
}

/// Which windows of a recording count.
#[derive(Args, Debug, Clone, Default)]
pub struct WarmupArgs {
    /// Skip the windows that start within this many seconds of each recording's first call:
    /// a container's start-up (loading libraries, opening devices) is not the steady behaviour
    /// a model should learn or be judged on. Needs timestamped input.
    #[arg(
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

/// Classifies and windows every event of `paths` as one recording, calling `f` per window.
/// Windows that start within `warmup_ns` of their file's first timestamp are dropped.
/// Returns (events read, events monitored).
pub fn windows_of(
    paths: &[PathBuf],
    input: &InputArgs,
    table: &ClassTable,
    window: WindowConfig,
    warmup_ns: i64,
    mut f: impl FnMut(Window) -> Result<()>,
) -> Result<(u64, u64)> {
    // Windows carry their call times, so evaluation labels them by their calls.
    let mut windower = Windower::with_call_times(window);
    let (mut seen, mut monitored) = (0u64, 0u64);
    // The first timestamp of the file being read, for the warm-up.
    let mut first_ns: Option<i64> = None;
    let mut emit = |w: Window, first_ns: Option<i64>| -> Result<()> {
        let in_warmup = warmup_ns > 0
            && matches!((w.start_time_ns, first_ns), (Some(s), Some(f0)) if s < f0 + warmup_ns);
        if in_warmup {
            return Ok(());
        }
        f(w)
    };
    // One file at a time, so the warm-up restarts with each; the windower carries on across them.
    for path in paths {
        first_ns = None;
        for_each_record(std::slice::from_ref(path), input, |_, record| {
            match record {
                Record::Call(e) => {
                    seen += 1;
                    if first_ns.is_none() {
                        first_ns = e.time_ns;
                    }
                    if let Some(sym) = table.classify(&e).symbol() {
                        monitored += 1;
                        let key = windower.stream_key(e.pid, e.tid);
                        if let Some(w) = windower.push(key, sym, e.time_ns) {
                            emit(w, first_ns)?;
                        }
                    }
                }
                Record::Exit { pid, .. } => {
                    if window.stream != StreamMode::Interleaved {
                        let key = windower.stream_key(pid, pid);
                        if let Some(w) = windower.end_stream(key) {
                            emit(w, first_ns)?;
                        }
                    }
                }
            }
            Ok(())
        })?;
    }
    for w in windower.flush() {
        emit(w, first_ns)?;
    }
    Ok((seen, monitored))
}

/// Classified symbols of one whole trace (ADFA-LD gives one per file).
pub fn classify_trace(
    table: &ClassTable,
    events: impl IntoIterator<Item = SyscallEvent>,
) -> Vec<u16> {
    events
        .into_iter()
        .filter_map(|e| table.classify(&e).symbol())
        .collect()
}
