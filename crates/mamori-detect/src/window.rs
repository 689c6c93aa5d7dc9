//! Sliding windows over class sequences, and their Bag-of-System-Calls (BoSC) counts.
//!
//! Windows are cut per *stream*: one interleaved stream per container (the paper's setting), or
//! one stream per process or thread (STIDE's). Short-lived processes vanish inside an interleaved
//! stream; with per-process streams each gets windows of its own, and a process that ends before
//! filling a window still gets one (partial) window when its stream is flushed.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

use crate::classes::Symbol;

/// How events are split into streams before windowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamMode {
    /// One stream per container / recording, calls interleaved as they happened (the paper).
    #[default]
    Interleaved,
    /// One stream per process (pid).
    PerProcess,
    /// One stream per thread (tid).
    PerThread,
}

/// Window settings; stored in model files, and scoring with other settings is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Calls per window (the paper: 19, the number of classes).
    pub size: usize,
    /// Calls between the starts of consecutive windows.
    pub stride: usize,
    /// How calls are split into streams.
    #[serde(default)]
    pub stream: StreamMode,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            size: 19,
            stride: 1,
            stream: StreamMode::Interleaved,
        }
    }
}

/// A bad window setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    /// Size zero.
    #[error("window size must be at least 1")]
    ZeroSize,
    /// Stride zero.
    #[error("window stride must be at least 1")]
    ZeroStride,
}

impl WindowConfig {
    /// Checks the settings.
    pub fn check(&self) -> Result<(), WindowError> {
        if self.size == 0 {
            return Err(WindowError::ZeroSize);
        }
        if self.stride == 0 {
            return Err(WindowError::ZeroStride);
        }
        Ok(())
    }
}

/// One window of classified calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Stream key (0 for the interleaved stream, else pid or tid).
    pub stream: u64,
    /// Position of the window's first call in its stream (0-based).
    pub start: u64,
    /// Earliest call time in the window, when known.
    pub start_time_ns: Option<i64>,
    /// Latest call time in the window, when known.
    pub end_time_ns: Option<i64>,
    /// The classes, oldest first; shorter than the window size only for a flushed partial window.
    pub symbols: Vec<Symbol>,
    /// The known call times, oldest call first; empty unless the windower was made with
    /// [`Windower::with_call_times`] (evaluation needs them to label a window by its calls, not
    /// by its span: a long-lived thread's window can span minutes).
    pub call_times: Vec<i64>,
}

impl Window {
    /// True when the stream ended before the window filled.
    pub fn is_partial(&self, size: usize) -> bool {
        self.symbols.len() < size
    }
}

#[derive(Debug, Default)]
struct StreamState {
    recent: VecDeque<(Symbol, Option<i64>)>,
    seen: u64,
    emitted: bool,
    until_next: usize,
    /// The windower's push count at this stream's last call: how idle it is.
    last_push: u64,
}

/// How many streams a [`Windower`] keeps open by default: far more threads than a container
/// runs at once, and a bounded ~30 MB with the paper's windows of 19 (a trace with millions of
/// threads that never exit would otherwise grow without bound).
pub const DEFAULT_MAX_STREAMS: usize = 65_536;

/// Cuts streams of classified calls into windows, in constant memory per stream.
#[derive(Debug)]
pub struct Windower {
    config: WindowConfig,
    streams: HashMap<u64, StreamState>,
    call_times: bool,
    max_streams: usize,
    pushes: u64,
    evicted: u64,
}

impl Windower {
    /// A windower for `config` (which must have passed [`WindowConfig::check`]).
    pub fn new(config: WindowConfig) -> Self {
        Windower {
            config,
            streams: HashMap::new(),
            call_times: false,
            max_streams: DEFAULT_MAX_STREAMS,
            pushes: 0,
            evicted: 0,
        }
    }

    /// At most `max` streams open at once (at least 1); when a new stream would exceed it, the
    /// idlest half are closed and counted ([`Windower::evicted_streams`]).
    pub fn with_max_streams(mut self, max: usize) -> Self {
        self.max_streams = max.max(1);
        self
    }

    /// Streams closed because too many were open (their calls so far are kept in the windows
    /// already emitted; a stream that had not filled a window yet loses its calls).
    pub fn evicted_streams(&self) -> u64 {
        self.evicted
    }

    /// Closes the idlest half of the open streams: one O(n) pass frees n/2 slots, so the cost
    /// per new stream stays constant however many arrive.
    fn evict_idle(&mut self) {
        let mut ages: Vec<u64> = self.streams.values().map(|s| s.last_push).collect();
        let half = ages.len() / 2;
        let (_, &mut cut, _) = ages.select_nth_unstable(half);
        let before = self.streams.len();
        self.streams.retain(|_, s| s.last_push > cut);
        self.evicted += (before - self.streams.len()) as u64;
    }

    /// A windower whose windows also carry their calls' times ([`Window::call_times`]).
    pub fn with_call_times(config: WindowConfig) -> Self {
        Windower {
            call_times: true,
            ..Windower::new(config)
        }
    }

    /// How this windower splits calls into streams.
    pub fn stream_mode(&self) -> StreamMode {
        self.config.stream
    }

    /// The stream key of a call under this windower's [`StreamMode`].
    pub fn stream_key(&self, pid: Option<u32>, tid: Option<u32>) -> u64 {
        match self.config.stream {
            StreamMode::Interleaved => 0,
            StreamMode::PerProcess => pid.or(tid).map_or(0, u64::from),
            StreamMode::PerThread => tid.or(pid).map_or(0, u64::from),
        }
    }

    /// Adds one call; returns the window it completes, if any.
    pub fn push(&mut self, stream: u64, symbol: Symbol, time_ns: Option<i64>) -> Option<Window> {
        let size = self.config.size;
        if self.streams.len() >= self.max_streams && !self.streams.contains_key(&stream) {
            self.evict_idle();
        }
        self.pushes += 1;
        let state = self.streams.entry(stream).or_default();
        state.last_push = self.pushes;
        if state.recent.len() == size {
            state.recent.pop_front();
        }
        state.recent.push_back((symbol, time_ns));
        state.seen += 1;
        if state.recent.len() < size {
            return None;
        }
        if state.until_next > 0 {
            state.until_next -= 1;
            return None;
        }
        state.until_next = self.config.stride - 1;
        state.emitted = true;
        Some(make_window(stream, state, self.call_times))
    }

    /// Ends one stream (its process exited): a partial window if it never filled one.
    pub fn end_stream(&mut self, stream: u64) -> Option<Window> {
        let state = self.streams.remove(&stream)?;
        (!state.emitted && !state.recent.is_empty())
            .then(|| make_window(stream, &state, self.call_times))
    }

    /// Ends every stream, in key order so output is deterministic.
    pub fn flush(&mut self) -> Vec<Window> {
        let mut keys: Vec<u64> = self.streams.keys().copied().collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|k| self.end_stream(k))
            .collect()
    }

    /// Number of open streams (for memory accounting).
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }
}

fn make_window(stream: u64, state: &StreamState, call_times: bool) -> Window {
    // Sources emit calls when they complete but stamp them when they start, so times inside a
    // window need not be in order: the window spans its earliest to its latest call.
    let times = state.recent.iter().filter_map(|r| r.1);
    Window {
        stream,
        start: state.seen - state.recent.len() as u64,
        start_time_ns: times.clone().min(),
        end_time_ns: times.max(),
        symbols: state.recent.iter().map(|r| r.0).collect(),
        call_times: if call_times {
            state.recent.iter().filter_map(|r| r.1).collect()
        } else {
            Vec::new()
        },
    }
}

/// All full windows of one finished sequence (e.g. an ADFA-LD trace); a sequence shorter than
/// `size` yields itself as one partial window.
pub fn sequence_windows(
    sequence: &[Symbol],
    size: usize,
    stride: usize,
) -> impl Iterator<Item = &[Symbol]> {
    let short = (sequence.len() < size && !sequence.is_empty()).then_some(sequence);
    let full = if sequence.len() >= size {
        sequence.len() - size + 1
    } else {
        0
    };
    (0..full)
        .step_by(stride.max(1))
        .map(move |s| &sequence[s..s + size])
        .chain(short)
}

/// Rebuilds the call sequence of each stream from its windows: `(stream, start, symbols)` in the
/// order they were emitted, `start` being the position of the window's first call in its stream
/// ([`Window::start`]). A window that overlaps or touches the stream's sequence so far extends
/// it; one after a gap (a window dropped, e.g. held out) starts a new sequence. Sequences come out
/// in the order they started.
pub fn stitch_streams<'a>(
    windows: impl IntoIterator<Item = (u64, u64, &'a [Symbol])>,
) -> Vec<Vec<Symbol>> {
    let mut out: Vec<Vec<Symbol>> = Vec::new();
    // Per stream: index into `out` and the stream position just after its last call.
    let mut open: HashMap<u64, (usize, u64)> = HashMap::new();
    for (stream, start, symbols) in windows {
        let end = start + symbols.len() as u64;
        match open.get_mut(&stream) {
            Some((i, seq_end)) if start <= *seq_end => {
                if end > *seq_end {
                    let skip = (*seq_end - start) as usize;
                    out[*i].extend_from_slice(&symbols[skip..]);
                    *seq_end = end;
                }
            }
            _ => {
                out.push(symbols.to_vec());
                open.insert(stream, (out.len() - 1, end));
            }
        }
    }
    out
}

/// Bag of System Calls: the count of each symbol in a window (length `n_symbols`).
/// Symbols outside the alphabet are counted as the last symbol ("unknown").
pub fn bosc(window: &[Symbol], n_symbols: usize) -> Vec<u32> {
    let mut counts = vec![0u32; n_symbols];
    bosc_into(window, &mut counts);
    counts
}

/// [`bosc`] into a caller's buffer (cleared first), to avoid an allocation per window.
pub fn bosc_into(window: &[Symbol], counts: &mut [u32]) {
    counts.iter_mut().for_each(|c| *c = 0);
    let last = counts.len() - 1;
    for &s in window {
        counts[(s as usize).min(last)] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bosc_counts_match_the_papers_figure_1_example() {
        // 9 monitored calls, window of 10: counts per class.
        let w = [0, 1, 0, 6, 6, 6, 2, 0, 8, 6];
        assert_eq!(bosc(&w, 9), vec![3, 1, 1, 0, 0, 0, 4, 0, 1]);
        // Out-of-alphabet symbols land in the last (unknown) slot.
        assert_eq!(bosc(&[0, 40], 3), vec![1, 0, 1]);
    }

    #[test]
    fn windows_slide_by_stride_per_stream() {
        let cfg = WindowConfig {
            size: 3,
            stride: 2,
            stream: StreamMode::PerProcess,
        };
        let mut w = Windower::new(cfg);
        let mut got = Vec::new();
        for (i, s) in [1u16, 2, 3, 4, 5, 6].iter().enumerate() {
            got.extend(w.push(7, *s, Some(i as i64)));
            // A second process interleaved; it never fills a window.
            if i == 2 {
                assert!(w.push(9, 42, Some(100)).is_none());
            }
        }
        assert_eq!(
            got.iter().map(|w| w.symbols.clone()).collect::<Vec<_>>(),
            vec![vec![1, 2, 3], vec![3, 4, 5]]
        );
        assert_eq!(got[1].start, 2);
        assert_eq!(got[1].start_time_ns, Some(2));
        assert_eq!(got[1].end_time_ns, Some(4));
        assert!(got[1].call_times.is_empty(), "times only when asked for");
        let rest = w.flush();
        assert_eq!(
            rest.len(),
            1,
            "only the short process gets a partial window"
        );
        assert_eq!(rest[0].stream, 9);
        assert_eq!(rest[0].symbols, vec![42]);
        assert!(rest[0].is_partial(3));
    }

    #[test]
    fn open_streams_are_capped_by_evicting_the_idlest() {
        let cfg = WindowConfig {
            size: 3,
            stride: 1,
            stream: StreamMode::PerThread,
        };
        let mut w = Windower::new(cfg).with_max_streams(64);
        // one busy stream, then a flood of threads that call once and never exit
        for _ in 0..3 {
            w.push(1, 1, None);
        }
        let mut windows = 0;
        for tid in 2..100_000u64 {
            assert!(w.open_streams() <= 64);
            if tid % 4 == 0 {
                windows += usize::from(w.push(1, 1, None).is_some());
            }
            w.push(tid, 2, None);
        }
        // the busy stream was never idle enough to go, and kept its windows
        assert_eq!(windows, 99_999 / 4);
        assert!(w.streams.contains_key(&1));
        assert_eq!(w.evicted_streams() + w.open_streams() as u64, 100_000 - 1);
    }

    #[test]
    fn windows_carry_their_call_times_when_asked() {
        let cfg = WindowConfig {
            size: 2,
            stride: 1,
            stream: StreamMode::Interleaved,
        };
        let mut w = Windower::with_call_times(cfg);
        assert!(w.push(0, 1, Some(30)).is_none());
        let win = w.push(0, 2, Some(10)).expect("full");
        assert_eq!(win.call_times, vec![30, 10], "in call order, not sorted");
        assert_eq!((win.start_time_ns, win.end_time_ns), (Some(10), Some(30)));
    }

    #[test]
    fn streams_are_stitched_back_from_their_windows() {
        let a: &[Symbol] = &[1, 2, 3];
        let b: &[Symbol] = &[2, 3, 4];
        let c: &[Symbol] = &[4, 5, 6];
        let d: &[Symbol] = &[9, 9, 9];
        let x: &[Symbol] = &[7, 8];
        let got = stitch_streams([
            (0, 0, a),
            (5, 0, x),
            (0, 1, b),
            (0, 3, c),  // stride 2 after b: overlaps at 4
            (0, 10, d), // gap: a new sequence
            (0, 10, d), // repeated window adds nothing
        ]);
        assert_eq!(got, vec![vec![1, 2, 3, 4, 5, 6], vec![7, 8], vec![9, 9, 9]]);
        assert!(stitch_streams(std::iter::empty()).is_empty());
    }

    #[test]
    fn sequence_windows_cover_and_short_sequences_yield_one() {
        let s = [1u16, 2, 3, 4];
        let ws: Vec<&[u16]> = sequence_windows(&s, 2, 1).collect();
        assert_eq!(ws, vec![&[1, 2][..], &[2, 3], &[3, 4]]);
        let ws: Vec<&[u16]> = sequence_windows(&s, 9, 1).collect();
        assert_eq!(ws, vec![&s[..]]);
        assert_eq!(sequence_windows(&[], 3, 1).count(), 0);
    }
}
