//! From recordings on disk to classified windows: the part of the pipeline every command shares.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mamori_detect::classes::{learn_profile, ClassTable, ClassTableConfig, LearnParams};
use mamori_detect::event::SyscallEvent;
use mamori_detect::window::{StreamMode, Window, WindowConfig, Windower};
use mamori_ingest::{Format, Record};
use serde::{Deserialize, Serialize};

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
    // Learning the table is a pass of its own before the windows are read: a pipe would be
    // empty the second time.
    if let Some(stream) = paths.iter().find(|p| !readable_twice(p)) {
        bail!(
            "{}: learning a class table reads the input twice, and this is a stream (stdin or a \
             pipe) that can be read once: give --profile, or save the input to a file first",
            stream.display()
        );
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

/// What the calls of a recording carry, counted: a model records it for its training input, so
/// that input scored later can be checked against it ([`InputProfile::mismatches`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputProfile {
    /// System calls read.
    pub calls: u64,
    /// Calls with a timestamp.
    pub timed: u64,
    /// Calls that name the file their descriptor refers to (`strace -yy`, sysdig `fd.name`).
    pub with_paths: u64,
}

/// Calls read from each file before its input is checked against the model's
/// ([`InputCheck`]): enough to see what a recording carries, few enough to stop early.
pub const PROBE_CALLS: u64 = 2_000;

impl InputProfile {
    /// Counts one call.
    pub fn add(&mut self, e: &SyscallEvent) {
        self.calls += 1;
        self.timed += u64::from(e.time_ns.is_some());
        self.with_paths += u64::from(e.fd_path.is_some());
    }

    fn share(part: u64, whole: u64) -> f64 {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    }

    /// Share of calls with a timestamp.
    pub fn timed_share(&self) -> f64 {
        Self::share(self.timed, self.calls)
    }

    /// Share of calls with a descriptor path.
    pub fn path_share(&self) -> f64 {
        Self::share(self.with_paths, self.calls)
    }

    /// How this input (being scored) differs from the `trained` input in ways that change the
    /// scores: descriptor paths missing or new (the class table splits calls by path), or
    /// timestamps missing (the warm-up and the alert rule's gap and cooldown need them).
    pub fn mismatches(&self, trained: &InputProfile) -> Vec<String> {
        let mut out = Vec::new();
        if self.calls == 0 || trained.calls == 0 {
            return out;
        }
        let (tp, sp) = (trained.path_share(), self.path_share());
        if tp >= 0.05 && sp < tp / 10.0 {
            out.push(format!(
                "the model was trained on calls that name their files ({:.0} % of calls, e.g. \
                 strace -yy) but {:.1} % of these calls do: path-based classes cannot match and \
                 normal windows will score as anomalies; record with strace -yy (or the same \
                 capture as in training), or retrain on input like this",
                tp * 100.0,
                sp * 100.0
            ));
        } else if tp < 0.01 && sp >= 0.05 {
            out.push(format!(
                "these calls name their files ({:.0} % of calls) but the model's training input \
                 did not ({:.1} %): calls will fall into path-based classes the model never saw; \
                 retrain on input like this",
                sp * 100.0,
                tp * 100.0
            ));
        }
        let (tt, st) = (trained.timed_share(), self.timed_share());
        if tt >= 0.5 && st < 0.5 {
            out.push(format!(
                "the model's training input was timestamped but {:.0} % of these calls carry no \
                 time: the warm-up cannot apply and the alert rule's gap and cooldown see every \
                 window at time 0; record with strace -tt (or -ttt, -r)",
                (1.0 - st) * 100.0
            ));
        }
        out
    }
}

/// What to do when input differs from the model's training input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MismatchPolicy {
    /// Stop with an error naming the file and what differs.
    Refuse,
    /// Say so on stderr and go on.
    Warn,
}

/// Checks each file's first [`PROBE_CALLS`] calls (or all, if fewer) against a model's
/// training input.
#[derive(Debug, Clone, Copy)]
pub struct InputCheck<'a> {
    /// The training input's profile.
    pub trained: &'a InputProfile,
    /// What to do on a difference.
    pub policy: MismatchPolicy,
}

/// What reading recordings into windows saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowsRead {
    /// Events read.
    pub events: u64,
    /// Events that matched the class table.
    pub monitored: u64,
    /// What the calls carried.
    pub profile: InputProfile,
    /// Streams closed because too many were open at once (see [`Windower::with_max_streams`]).
    pub evicted_streams: u64,
}

/// Whether `path` can be read a second time from its start: a regular file (or a link to one),
/// not `-` (stdin), a FIFO or a character device.
pub fn readable_twice(path: &Path) -> bool {
    // A missing file is not a stream: opening it reports what is wrong.
    path.as_os_str() != "-" && std::fs::metadata(path).map_or(true, |m| m.is_file())
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
    let r = windows(
        paths,
        read,
        table,
        Windower::new(window),
        warmup_ns,
        None,
        &mut |_, _| {},
        f,
    )?;
    Ok((r.events, r.monitored))
}

/// [`windows_observed`] with each window's call times ([`Window::call_times`]), so evaluation
/// can label a window by its calls rather than its span.
pub fn windows_with_call_times(
    paths: &[PathBuf],
    read: &ReadOptions,
    table: &ClassTable,
    window: WindowConfig,
    warmup_ns: i64,
    mut on_call: impl FnMut(usize, &SyscallEvent),
    f: impl FnMut(Window) -> Result<()>,
) -> Result<(u64, u64)> {
    windows(
        paths,
        read,
        table,
        Windower::with_call_times(window),
        warmup_ns,
        None,
        &mut on_call,
        f,
    )
    .map(|r| (r.events, r.monitored))
}

/// [`windows_of`] that also checks each file against a model's training input (`check`),
/// returns what it read, and shows every call to `on_call` (in input order, before its
/// window), for signals that look at calls rather than windows, such as
/// [`crate::context`]'s. `on_call` gets the file's index in `paths`.
#[allow(clippy::too_many_arguments)]
pub fn windows_observed(
    paths: &[PathBuf],
    read: &ReadOptions,
    table: &ClassTable,
    window: WindowConfig,
    warmup_ns: i64,
    check: Option<InputCheck<'_>>,
    mut on_call: impl FnMut(usize, &SyscallEvent),
    f: impl FnMut(Window) -> Result<()>,
) -> Result<WindowsRead> {
    windows(
        paths,
        read,
        table,
        Windower::new(window),
        warmup_ns,
        check,
        &mut on_call,
        f,
    )
}

#[allow(clippy::too_many_arguments)]
fn windows(
    paths: &[PathBuf],
    read: &ReadOptions,
    table: &ClassTable,
    mut windower: Windower,
    warmup_ns: i64,
    check: Option<InputCheck<'_>>,
    on_call: &mut dyn FnMut(usize, &SyscallEvent),
    mut f: impl FnMut(Window) -> Result<()>,
) -> Result<WindowsRead> {
    let stream_mode = windower.stream_mode();
    let (mut seen, mut monitored) = (0u64, 0u64);
    let mut profile = InputProfile::default();
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
    for (file, path) in paths.iter().enumerate() {
        first_ns = None;
        let mut file_profile = InputProfile::default();
        let mut checked = check.is_none();
        // Windows wait until their file has passed the check, so refused input prints nothing.
        let mut held: Vec<(Window, Option<i64>)> = Vec::new();
        let check_file = |file_profile: &InputProfile| -> Result<()> {
            let Some(check) = check else { return Ok(()) };
            let found = file_profile.mismatches(check.trained);
            if found.is_empty() {
                return Ok(());
            }
            let text = found.join("; and ");
            match check.policy {
                MismatchPolicy::Refuse => bail!(
                    "{}: input unlike the model's training input: {text} (--ignore-input-mismatch \
                     scores it anyway)",
                    path.display()
                ),
                MismatchPolicy::Warn => {
                    eprintln!("mamori: warning: {}: {text}", path.display());
                    Ok(())
                }
            }
        };
        for_each_record(std::slice::from_ref(path), read, |_, record| {
            match record {
                Record::Call(e) => {
                    seen += 1;
                    on_call(file, &e);
                    profile.add(&e);
                    file_profile.add(&e);
                    if !checked && file_profile.calls >= PROBE_CALLS {
                        checked = true;
                        check_file(&file_profile)?;
                        for (w, f0) in held.drain(..) {
                            emit(w, f0)?;
                        }
                    }
                    if first_ns.is_none() {
                        first_ns = e.time_ns;
                    }
                    if let Some(sym) = table.classify(&e).symbol() {
                        monitored += 1;
                        let key = windower.stream_key(e.pid, e.tid);
                        if let Some(w) = windower.push(key, sym, e.time_ns) {
                            if checked {
                                emit(w, first_ns)?;
                            } else {
                                held.push((w, first_ns));
                            }
                        }
                    }
                }
                Record::Exit { pid, .. } => {
                    if stream_mode != StreamMode::Interleaved {
                        let key = windower.stream_key(pid, pid);
                        if let Some(w) = windower.end_stream(key) {
                            if checked {
                                emit(w, first_ns)?;
                            } else {
                                held.push((w, first_ns));
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
        if !checked {
            check_file(&file_profile)?;
        }
        for (w, f0) in held {
            emit(w, f0)?;
        }
    }
    for w in windower.flush() {
        emit(w, first_ns)?;
    }
    let evicted_streams = windower.evicted_streams();
    if evicted_streams > 0 {
        eprintln!(
            "mamori: warning: {evicted_streams} idle streams closed because more than {} were \
             open at once; calls of those that had not filled a window were not scored",
            mamori_detect::window::DEFAULT_MAX_STREAMS
        );
    }
    Ok(WindowsRead {
        events: seen,
        monitored,
        profile,
        evicted_streams,
    })
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
