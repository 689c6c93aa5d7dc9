//! From recordings on disk to classified windows: the part of the pipeline every command shares.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mamori_detect::classes::{learn_profile, ClassTable, ClassTableConfig, LearnParams};
use mamori_detect::event::SyscallEvent;
use mamori_detect::window::{StreamMode, Window, WindowConfig, Windower};
use mamori_ingest::{Format, Record};

/// How recordings are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Input format; detected from the content when `None`.
    pub format: Option<Format>,
    /// Count and report malformed lines instead of stopping at the first one.
    pub lenient: bool,
}

/// Loads a class table from TOML, naming the file in errors.
pub fn load_profile(path: &Path) -> Result<ClassTable> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read class table {}", path.display()))?;
    let cfg: ClassTableConfig =
        toml::from_str(&text).with_context(|| format!("invalid class table {}", path.display()))?;
    ClassTable::new(cfg).with_context(|| format!("invalid class table {}", path.display()))
}

/// Skipped-line report of one file, printed to stderr at the end of a run, with the calls yielded
/// without their result because too many were waiting at once.
pub fn report_skipped(path: &Path, reader: &mamori_ingest::EventReader<mamori_ingest::DynBufRead>) {
    let skipped = reader.skipped();
    if skipped.total() > 0 {
        eprintln!("mamori: {}: {}", path.display(), skipped);
    }
    let evicted = reader.evicted_pending();
    if evicted > 0 {
        eprintln!(
            "mamori: {}: {evicted} unfinished calls yielded without their result (more than {} \
             waiting at once)",
            path.display(),
            mamori_ingest::DEFAULT_MAX_PENDING
        );
    }
}

/// Calls every event of every file in order; stops at the first malformed line unless lenient.
pub fn for_each_record(
    paths: &[PathBuf],
    read: &ReadOptions,
    mut f: impl FnMut(&Path, Record) -> Result<()>,
) -> Result<()> {
    for path in paths {
        // The error names the path: `PATH: cannot open: <OS error>`.
        let mut reader = mamori_ingest::open_path(path, read.format, read.lenient)?;
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
    profile: Option<&Path>,
    learn: &LearnParams,
    paths: &[PathBuf],
    read: &ReadOptions,
    until_ns: Option<i64>,
) -> Result<ClassTable> {
    if let Some(p) = profile {
        return load_profile(p);
    }
    let mut events: Vec<SyscallEvent> = Vec::new();
    // Learning needs counts only; keep the name and path fields, drop buffers.
    for_each_record(paths, read, |_, r| {
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
    Ok(ClassTable::new(learn_profile(&events, learn))?)
}

/// Classifies and windows every event of `paths` as one recording, calling `f` per window.
/// Windows that start within `warmup_ns` of their file's first timestamp are dropped.
/// Returns (events read, events monitored).
pub fn windows_of(
    paths: &[PathBuf],
    read: &ReadOptions,
    table: &ClassTable,
    window: WindowConfig,
    warmup_ns: i64,
    f: impl FnMut(Window) -> Result<()>,
) -> Result<(u64, u64)> {
    windows(paths, read, table, Windower::new(window), warmup_ns, f)
}

/// [`windows_of`] with each window's call times ([`Window::call_times`]), so evaluation can label
/// a window by its calls rather than its span.
pub fn windows_with_call_times(
    paths: &[PathBuf],
    read: &ReadOptions,
    table: &ClassTable,
    window: WindowConfig,
    warmup_ns: i64,
    f: impl FnMut(Window) -> Result<()>,
) -> Result<(u64, u64)> {
    windows(
        paths,
        read,
        table,
        Windower::with_call_times(window),
        warmup_ns,
        f,
    )
}

fn windows(
    paths: &[PathBuf],
    read: &ReadOptions,
    table: &ClassTable,
    mut windower: Windower,
    warmup_ns: i64,
    mut f: impl FnMut(Window) -> Result<()>,
) -> Result<(u64, u64)> {
    let stream_mode = windower.stream_mode();
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
        for_each_record(std::slice::from_ref(path), read, |_, record| {
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
                    if stream_mode != StreamMode::Interleaved {
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
