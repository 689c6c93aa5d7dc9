//! Readers that turn system-call recordings into [`SyscallEvent`]s.
//!
//! Supported sources ([`Format`]):
//!
//! | format   | input                                                                 |
//! |----------|-----------------------------------------------------------------------|
//! | `strace` | `strace -f -tt -yy -s N -o FILE` text (also without `-f`, `-ttt`, `-T`) |
//! | `falco`  | Falco JSON alerts (`output_fields`) or sysdig `-j` JSON events         |
//! | `tracee` | Tracee JSON events                                                     |
//! | `lidds`  | LID-DS 2021 `.sc` files (sysdig enter/exit lines)                      |
//! | `adfa`   | ADFA-LD traces: whitespace-separated i386 system-call numbers          |
//! | `jsonl`  | mamori's own format: one [`SyscallEvent`] JSON object per line         |
//! | [`pcap`] | packet captures, classic pcap or pcapng: raw packets, not events ([`pcap::CaptureReader`]) |
//!
//! Everything streams line by line with one reused line buffer, so memory stays bounded however
//! large the file (except ADFA-LD's [`read_adfa_dataset`], which loads the small data set whole):
//! a line is at most [`DEFAULT_MAX_LINE`] bytes ([`EventReader::with_max_line`]), and at most
//! [`DEFAULT_MAX_PENDING`] calls wait for their other half ([`EventReader::with_max_pending`]).
//! [`open_path`] and [`open_stream`] open their input once: gzip is recognised by its magic bytes
//! (or a `.gz` name) and decompressed on the fly, and the format is detected from the first lines,
//! which are then read again from memory, so pipes and `-` (stdin) lose nothing.
//!
//! A malformed line is an [`IngestError`] naming the file, the 1-based line and what is wrong. In
//! *lenient* mode such lines are skipped instead and counted per reason ([`EventReader::skipped`]),
//! with the first few kept as examples; they are never dropped silently. A compressed input that
//! ends or breaks mid-stream is an error in strict mode; in lenient mode every line before the
//! damage is kept and the loss is one skip (`truncated input` or `corrupt input`). Messages echo
//! input text only escaped (control characters as `\x1b`…) and clipped ([`shown`]).
//!
//! Attack labels (periods of attack steps, with hosts for network traffic) are read by
//! [`labels`].
//!
//! ```
//! use mamori_ingest::{EventReader, Format};
//!
//! let text = "\
//! 1234  12:34:56.789012 write(3</var/log/motion.log>, \"[1:ml1] [NTC] netcam_init\"..., 64) = 64
//! 1234  12:34:56.790000 openat(AT_FDCWD</>, \"/etc/localtime\", O_RDONLY|O_CLOEXEC) = 4</etc/localtime>
//! 1234  12:34:56.800000 +++ exited with 0 +++
//! ";
//! let mut reader = EventReader::new(text.as_bytes(), "example.strace", Format::Strace, false);
//! let write = reader.next().unwrap().unwrap();
//! assert_eq!(write.syscall, "write");
//! assert_eq!(write.pid, Some(1234));
//! assert_eq!(write.fd_path.as_deref(), Some("/var/log/motion.log"));
//! assert_eq!(write.args, ["3", "[1:ml1] [NTC] netcam_init", "64"]);
//! assert_eq!(write.ret, Some(64));
//! let open = reader.next().unwrap().unwrap();
//! assert_eq!(open.args[1], "/etc/localtime");
//! assert_eq!(open.fd_path.as_deref(), Some("/etc/localtime"));
//! assert!(reader.next().is_none());
//! assert_eq!(reader.skipped().total(), 0);
//! ```
#![deny(missing_docs)]

mod adfa;
mod falco;
mod held;
mod jsonl;
pub mod labels;
mod lidds;
pub mod pcap;
mod skip;
mod strace;
mod sysdig;
mod tracee;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::str::FromStr;

pub use adfa::{i386_syscall_name, read_adfa_dataset, AdfaDataset, Trace};
pub use jsonl::write_jsonl;
pub use lidds::lidds_exploit_time_ns;
pub use mamori_detect::event::SyscallEvent;
pub use skip::{SkipAt, SkipUnit, Skipped, SkippedItem, SKIP_EXAMPLES};
pub use strace::{split_args, unescape_c_string};

/// An input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// `strace -f -tt -yy -s N -o FILE` text.
    ///
    /// - Prefix: optional pid (`1234  ` or `[pid 1234] `; strace prints the *thread* id, used for
    ///   both `pid` and `tid`), optional time, its form set by the file's first one: `-t`/`-tt`
    ///   time of day → **ns since the first midnight** (strace prints no date; +24 h at each
    ///   midnight crossed), `-ttt` (≥ 10^8 s) → ns since the epoch, `-r` deltas → ns since the
    ///   first call (summed). `-T` durations are ignored.
    /// - Arguments split at top-level commas; string arguments unquoted and unescaped, the
    ///   truncation marker `...` dropped; `3</path>` becomes `3`; compound arguments (arrays,
    ///   structs, `/* comments */`) kept as printed.
    /// - `fd_path`: the first argument's `-yy` annotation, except for `open`/`openat`/`openat2`/
    ///   `creat`/`open_by_handle_at`, where it is the *returned* descriptor's annotation (the
    ///   file really opened; `None` when the call failed).
    /// - `ret`: decimal or `0x` hex; `= ?` → `None`.
    /// - `<unfinished ...>` / `<... NAME resumed>` are joined per pid (args of both halves,
    ///   time of the first); an unfinished call is emitted with `ret: None` when its thread
    ///   starts another call, exits, or the input ends.
    /// - `--- SIG… ---` lines are skipped; `+++ exited with N +++` / `+++ killed by … +++` become
    ///   [`Record::Exit`].
    Strace,
    /// Falco JSON output (or sysdig `-j` events): fields from `output_fields`, else top level.
    ///
    /// `evt.type` (required) → `syscall`; the first present of `evt.rawtime`, `evt.time`,
    /// `evt.outputtime` (integer ns, or RFC 3339) and the alert's `time` → `time_ns` (a present
    /// but unreadable one is a `bad time` line); `proc.pid`, `thread.tid`, `proc.name`; `container.id`
    /// (else `container.name`); `fd.name` → `fd_path`; `evt.rawres` (else numeric `evt.res`) →
    /// `ret`. Arguments: values of `evt.arg.*` sorted by name, else of `evt.args` split into
    /// `key=value` pairs (`data=` runs to the end); `3(<f>/path)` becomes `3` and gives
    /// `fd_path` when `fd.name` is absent.
    Falco,
    /// Tracee JSON events: `eventName` (required), `timestamp` (ns), `hostProcessId`/
    /// `hostThreadId` (else `processId`/`threadId`), `processName`, `containerId` (else
    /// `container.id`/`.name`), `args[].value` as text in order, `returnValue`. `fd_path` is
    /// `None`. Non-syscall Tracee events are kept too.
    Tracee,
    /// LID-DS 2021 `.sc`: `timestamp_ns uid pid process tid syscall >|< key=value…`. Enter and
    /// exit halves are paired per tid into one event (time of the enter; args of both halves
    /// except `res`; `ret` from `res=`, else the exit's `fd=`); `fd=13(<f>/dev/urandom)` gives
    /// `fd_path` `/dev/urandom` and the argument `13`. Unpaired halves are emitted alone.
    /// `procexit` becomes [`Record::Exit`]. A line cut short (`fd=13(<f>/dev/ur`, or no trailing
    /// space when the file's first line has one) is a `truncated line`.
    LidDs,
    /// ADFA-LD traces: whitespace-separated i386 system-call numbers, named with
    /// [`i386_syscall_name`]; events carry only `syscall`.
    Adfa,
    /// mamori's JSON lines: one [`SyscallEvent`] per line, blank lines allowed
    /// (see [`write_jsonl`]).
    Jsonl,
}

impl Format {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [Format; 6] = [
        Format::Strace,
        Format::Falco,
        Format::Tracee,
        Format::LidDs,
        Format::Adfa,
        Format::Jsonl,
    ];

    /// The name used on the command line (`strace`, `falco`, `tracee`, `lidds`, `adfa`, `jsonl`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Strace => "strace",
            Format::Falco => "falco",
            Format::Tracee => "tracee",
            Format::LidDs => "lidds",
            Format::Adfa => "adfa",
            Format::Jsonl => "jsonl",
        }
    }

    /// Guesses the format from the file name and its first lines; `None` when nothing fits.
    ///
    /// The content decides when it can (JSON keys, line shapes); the extension (`.sc`, `.strace`,
    /// `.jsonl`, after stripping `.gz`) is the fallback, e.g. for an empty file.
    pub fn detect(path: &Path, first_lines: &[&str]) -> Option<Format> {
        let by_content = first_lines
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .and_then(detect_line);
        by_content.or_else(|| {
            let name = path.file_name()?.to_str()?;
            let name = name.strip_suffix(".gz").unwrap_or(name);
            let ext = name.rsplit_once('.')?.1;
            match ext {
                "sc" => Some(Format::LidDs),
                "strace" => Some(Format::Strace),
                "jsonl" | "ndjson" => Some(Format::Jsonl),
                _ => None,
            }
        })
    }

    /// Reads the first lines of `path` (decompressing gzip) and calls [`Format::detect`]. `-`
    /// means stdin, whose first lines are then consumed: to read a stream, use [`open_stream`]
    /// or [`open_path`] with no format, which detect and read from one opening.
    pub fn detect_file(path: &Path) -> Result<Format, IngestError> {
        let source = source_name(path);
        let mut input = decompressing(open_raw(path)?, has_gz_name(path), &source)?;
        let mut prefix = Vec::new();
        let (lines, err) = sniff(&mut input, &mut prefix);
        detect_sniffed(Path::new(&source), &source, &lines, err)
    }

    fn parser(self) -> Box<dyn LineParser + Send> {
        match self {
            Format::Strace => Box::new(strace::StraceParser::default()),
            Format::Falco => Box::new(falco::FalcoParser),
            Format::Tracee => Box::new(tracee::TraceeParser),
            Format::LidDs => Box::new(lidds::LidDsParser::default()),
            Format::Adfa => Box::new(adfa::AdfaParser),
            Format::Jsonl => Box::new(jsonl::JsonlParser),
        }
    }
}

fn detect_line(line: &str) -> Option<Format> {
    if line.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let obj = value.as_object()?;
        if obj.contains_key("output_fields") || obj.contains_key("evt.type") {
            return Some(Format::Falco);
        }
        if obj.contains_key("eventName") {
            return Some(Format::Tracee);
        }
        if obj.contains_key("syscall") {
            return Some(Format::Jsonl);
        }
        return None;
    }
    if line.split_whitespace().all(|t| t.parse::<u32>().is_ok()) {
        return Some(Format::Adfa);
    }
    if lidds::looks_like(line) {
        return Some(Format::LidDs);
    }
    if strace::looks_like(line) {
        return Some(Format::Strace);
    }
    None
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that [`Format::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown input format `{0}`; expected one of strace, falco, tracee, lidds, adfa, jsonl")]
pub struct UnknownFormatName(pub String);

impl FromStr for Format {
    type Err = UnknownFormatName;

    /// Accepts the [`Format::name`]s, case-insensitively, plus `lid-ds`, `sysdig`, `adfa-ld`
    /// and `json`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "strace" => Ok(Format::Strace),
            "falco" | "sysdig" => Ok(Format::Falco),
            "tracee" => Ok(Format::Tracee),
            "lidds" | "lid-ds" | "lid_ds" => Ok(Format::LidDs),
            "adfa" | "adfa-ld" | "adfa_ld" => Ok(Format::Adfa),
            "jsonl" | "json" | "mamori" => Ok(Format::Jsonl),
            _ => Err(UnknownFormatName(s.to_string())),
        }
    }
}

/// Why input could not be read. Every variant names the file (`path`, or whatever source name the
/// reader was given) and the 1-based `line` (0 when the problem is not tied to a line, e.g. the
/// file cannot be opened).
///
/// [`IngestError::Io`] prints `PATH: cannot open` (line 0) or `PATH:LINE: cannot read`, and gives
/// the OS error as its [`std::error::Error::source`], so that `anyhow`'s `{:#}` prints it once:
/// `x.strace: cannot open: No such file or directory (os error 2)`.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Opening or reading failed (missing file, permissions, corrupt gzip…).
    #[error("{}", io_context(path, *line))]
    Io {
        /// The file.
        path: String,
        /// The line being read, 0 for opening.
        line: u64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A line that the format's parser cannot understand.
    #[error("{path}:{line}: malformed {format} line ({reason}): {message}")]
    Malformed {
        /// The file.
        path: String,
        /// The 1-based line number.
        line: u64,
        /// The format being parsed.
        format: Format,
        /// A short category, the key under which lenient mode counts such lines.
        reason: &'static str,
        /// What exactly is wrong.
        message: String,
    },
    /// Auto-detection found no format.
    #[error("{path}:{line}: cannot tell the input format: {message}")]
    UnknownFormat {
        /// The file.
        path: String,
        /// The line looked at.
        line: u64,
        /// Details.
        message: String,
    },
    /// A data set's layout or metadata is not as expected (ADFA-LD folders, LID-DS `.json`).
    #[error("{path}:{line}: {message}")]
    Dataset {
        /// The file or folder.
        path: String,
        /// The 1-based line, 0 when not tied to one.
        line: u64,
        /// Details.
        message: String,
    },
}

fn io_context(path: &str, line: u64) -> String {
    if line == 0 {
        format!("{path}: cannot open")
    } else {
        format!("{path}:{line}: cannot read")
    }
}

impl IngestError {
    /// The file the error is about.
    pub fn path(&self) -> &str {
        match self {
            IngestError::Io { path, .. }
            | IngestError::Malformed { path, .. }
            | IngestError::UnknownFormat { path, .. }
            | IngestError::Dataset { path, .. } => path,
        }
    }

    /// The 1-based line (0 when not tied to a line).
    pub fn line(&self) -> u64 {
        match self {
            IngestError::Io { line, .. }
            | IngestError::Malformed { line, .. }
            | IngestError::UnknownFormat { line, .. }
            | IngestError::Dataset { line, .. } => *line,
        }
    }
}

/// What one line parser reports about a bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineError {
    pub(crate) reason: &'static str,
    pub(crate) message: String,
}

impl LineError {
    pub(crate) fn new(reason: &'static str, message: impl Into<String>) -> Self {
        LineError {
            reason,
            message: message.into(),
        }
    }
}

/// How many characters of input text [`shown`] echoes.
const SHOWN_CHARS: usize = 80;
/// How many characters of a whole message [`EventReader`] keeps.
const MESSAGE_CHARS: usize = 400;

/// Input text as error messages echo it: control characters escaped (`\x1b`, `\n`, `\u{85}`), so
/// that a message cannot drive the terminal it is printed on, and clipped to 80 characters with
/// `…`. Used by every parser for the tokens it quotes.
pub fn shown(text: &str) -> String {
    clip_chars(&escape_controls(text), SHOWN_CHARS)
}

/// `text` with control characters escaped; borrowed when there are none.
pub(crate) fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn clip_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// A parser's message made safe to print: escaped and of bounded length.
pub(crate) fn safe_message(message: &str) -> String {
    clip_chars(&escape_controls(message), MESSAGE_CHARS)
}

/// One line of a JSON-lines source as an object; `None` for a blank line.
pub(crate) fn json_object(
    line: &str,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, LineError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str(line) {
        Ok(serde_json::Value::Object(obj)) => Ok(Some(obj)),
        Ok(_) => Err(LineError::new("not an object", "expected a JSON object")),
        Err(e) => Err(LineError::new("invalid JSON", e.to_string())),
    }
}

/// A parsed item: a system call, or a process/thread ending (strace `+++ exited with 0 +++`,
/// sysdig `procexit` in LID-DS). Defined in `mamori-core`, shared with live capture.
pub use mamori_core::event::Record;

/// Per-format line parser. Parsers may hold state (unfinished calls) and emit records later.
pub(crate) trait LineParser {
    /// Parses one line (without its line ending) and pushes what it completes to `out`.
    fn parse_line(&mut self, line: &str, out: &mut VecDeque<Record>) -> Result<(), LineError>;
    /// Called once at end of input: flush calls that never completed.
    fn finish(&mut self, _out: &mut VecDeque<Record>) {}
    /// Caps the calls held while waiting for their other half.
    fn set_max_pending(&mut self, _max: usize) {}
    /// Calls held now.
    fn pending(&self) -> usize {
        0
    }
    /// Calls emitted early, incomplete, because the cap was reached.
    fn evicted(&self) -> u64 {
        0
    }
}

/// Default cap on the length of one input line, in bytes (1 MiB): see
/// [`EventReader::with_max_line`].
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// Default cap on the calls waiting for their other half (65,536): see
/// [`EventReader::with_max_pending`].
pub const DEFAULT_MAX_PENDING: usize = 65_536;

/// What one read of a line found.
enum LineRead {
    Eof,
    Line,
    /// A line longer than the cap, of this many bytes; it was read past, not kept.
    TooLong(u64),
}

/// Streams [`SyscallEvent`]s (or [`Record`]s) out of any [`BufRead`].
///
/// As an [`Iterator`] it yields only system calls; [`EventReader::next_record`] also yields
/// process exits. In strict mode a bad line is yielded as an `Err` (reading may go on after it);
/// in lenient mode it is counted in [`EventReader::skipped`]. An I/O error ends the stream.
///
/// Calls whose halves are split over several lines (strace `<unfinished ...>`, LID-DS enter/exit)
/// are yielded when they complete, so events are in completion order; `time_ns` is the call's
/// start.
///
/// Memory is bounded by two caps. A line longer than [`EventReader::with_max_line`] bytes is read
/// past without being kept and is a malformed line (`line too long`). At most
/// [`EventReader::with_max_pending`] calls wait for their other half (strace calls per thread,
/// LID-DS enter halves per thread); when a new one would exceed the cap, the oldest is yielded
/// incomplete (`ret: None`, as at the end of input) and counted in
/// [`EventReader::evicted_pending`]; its other half, if it comes, is then an event of its own, as
/// in a recording started mid-call. Those are events, not skipped lines, so they are not in
/// [`EventReader::skipped`]: report both.
///
/// In lenient mode a compressed input that ends or breaks mid-stream stops reading quietly after
/// the last whole line, with one `truncated input` (or `corrupt input`) skip at the line where it
/// stopped; calls still waiting are yielded as at the end of input.
pub struct EventReader<R> {
    input: R,
    source: String,
    format: Format,
    lenient: bool,
    parser: Box<dyn LineParser + Send>,
    buf: Vec<u8>,
    line_no: u64,
    queue: VecDeque<Record>,
    done: bool,
    skipped: Skipped,
    max_line: usize,
}

impl<R: BufRead> EventReader<R> {
    /// A reader of `format` over `input`; `source` names the input in error messages (a path,
    /// `<stdin>`).
    pub fn new(input: R, source: impl Into<String>, format: Format, lenient: bool) -> Self {
        EventReader {
            input,
            source: source.into(),
            format,
            lenient,
            parser: format.parser(),
            buf: Vec::with_capacity(4096),
            line_no: 0,
            queue: VecDeque::new(),
            done: false,
            skipped: Skipped::new(SkipUnit::Line),
            max_line: DEFAULT_MAX_LINE,
        }
        .with_max_pending(DEFAULT_MAX_PENDING)
    }

    /// Caps a line at `bytes` bytes (without its line ending; at least 1; default
    /// [`DEFAULT_MAX_LINE`]). A longer line is read past without being kept, and is an error
    /// naming the limit (strict) or a `line too long` skip (lenient).
    pub fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1);
        self
    }

    /// Caps the calls held while waiting for their other half at `calls` (at least 1; default
    /// [`DEFAULT_MAX_PENDING`]). Past the cap the oldest is yielded incomplete and counted in
    /// [`EventReader::evicted_pending`].
    pub fn with_max_pending(mut self, calls: usize) -> Self {
        self.parser.set_max_pending(calls.max(1));
        self
    }

    /// Calls waiting for their other half right now (never more than the pending cap).
    pub fn pending_calls(&self) -> usize {
        self.parser.pending()
    }

    /// Calls yielded early and incomplete (`ret: None`) because more than the pending cap were
    /// waiting: a sign of a capture with very many threads blocked at once, or of a cap too low.
    pub fn evicted_pending(&self) -> u64 {
        self.parser.evicted()
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The source name used in messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Lines skipped so far (lenient mode only; always empty in strict mode).
    pub fn skipped(&self) -> &Skipped {
        &self.skipped
    }

    /// The next system call or process exit; `None` at the end of input.
    pub fn next_record(&mut self) -> Option<Result<Record, IngestError>> {
        loop {
            if let Some(rec) = self.queue.pop_front() {
                return Some(Ok(rec));
            }
            if self.done {
                return None;
            }
            let too_long = match self.read_line() {
                Err(e) => {
                    self.done = true;
                    self.parser.finish(&mut self.queue);
                    let at = self.line_no + 1;
                    if self.lenient {
                        if let Some((reason, what)) = damage(&e) {
                            self.skipped.record(
                                SkipAt::Line(at),
                                reason,
                                format!("{what} ({e}); the rest of the file was lost"),
                            );
                            continue;
                        }
                    }
                    return Some(Err(IngestError::Io {
                        path: self.source.clone(),
                        line: at,
                        source: e,
                    }));
                }
                Ok(LineRead::Eof) => {
                    self.done = true;
                    self.parser.finish(&mut self.queue);
                    continue;
                }
                Ok(LineRead::Line) => None,
                Ok(LineRead::TooLong(len)) => Some(len),
            };
            self.line_no += 1;
            if let Some(len) = too_long {
                let message = format!(
                    "the line is {len} bytes, longer than the limit of {} bytes",
                    self.max_line
                );
                if self.lenient {
                    self.skipped
                        .record(SkipAt::Line(self.line_no), "line too long", message);
                    continue;
                }
                return Some(Err(IngestError::Malformed {
                    path: self.source.clone(),
                    line: self.line_no,
                    format: self.format,
                    reason: "line too long",
                    message,
                }));
            }
            let mut end = self.buf.len();
            while end > 0 && matches!(self.buf[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            let bytes = &self.buf[..end];
            let text = match std::str::from_utf8(bytes) {
                Ok(s) => std::borrow::Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(bytes),
            };
            if let Err(err) = self.parser.parse_line(&text, &mut self.queue) {
                let message = safe_message(&err.message);
                if self.lenient {
                    self.skipped
                        .record(SkipAt::Line(self.line_no), err.reason, message);
                } else {
                    return Some(Err(IngestError::Malformed {
                        path: self.source.clone(),
                        line: self.line_no,
                        format: self.format,
                        reason: err.reason,
                        message,
                    }));
                }
            }
        }
    }

    /// Reads the next line into `buf` (with its line ending), keeping at most `max_line` bytes
    /// of it: the rest of a longer line is consumed and only counted.
    fn read_line(&mut self) -> io::Result<LineRead> {
        self.buf.clear();
        let mut len: u64 = 0; // bytes of the line without its `\n`
        let mut any = false;
        let mut too_long = false;
        loop {
            let avail = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            any = true;
            let (take, ended) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            let content = if ended { take - 1 } else { take };
            len += content as u64;
            if !too_long {
                if len > self.max_line as u64 {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&avail[..take]);
                }
            }
            self.input.consume(take);
            if ended {
                break;
            }
        }
        Ok(match (any, too_long) {
            (false, _) => LineRead::Eof,
            (true, true) => LineRead::TooLong(len),
            (true, false) => LineRead::Line,
        })
    }
}

/// Whether a read error is damage to the input (a compressed stream cut short or corrupt), which
/// lenient mode reports as a skip, rather than a failure to read: (reason, what happened).
fn damage(e: &io::Error) -> Option<(&'static str, &'static str)> {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Some((
            "truncated input",
            "the input ends in the middle of its compressed data",
        )),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            Some(("corrupt input", "the compressed data is corrupt from here"))
        }
        _ => None,
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = Result<SyscallEvent, IngestError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_record()? {
                Ok(Record::Call(ev)) => return Some(Ok(ev)),
                Ok(Record::Exit { .. }) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// A boxed buffered input, as [`open_path`] returns.
pub type DynBufRead = Box<dyn BufRead + Send>;

/// The source name of the path `-`, which means stdin.
pub const STDIN_NAME: &str = "<stdin>";

/// The non-blank lines [`sniff`] reads for format detection ([`Format::detect`] decides on the
/// first; reading no further keeps a live pipe responsive), and the bytes it keeps at most.
const SNIFF_LINES: usize = 1;
const SNIFF_BYTES: usize = 4 << 20;

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn source_name(path: &Path) -> String {
    if is_stdin(path) {
        STDIN_NAME.to_string()
    } else {
        path.display().to_string()
    }
}

fn has_gz_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Opens `path` (`-`: stdin) once, unbuffered.
fn open_raw(path: &Path) -> Result<Box<dyn Read + Send>, IngestError> {
    if is_stdin(path) {
        return Ok(Box::new(io::stdin()));
    }
    let file = File::open(path).map_err(|source| IngestError::Io {
        path: source_name(path),
        line: 0,
        source,
    })?;
    Ok(Box::new(file))
}

/// Buffers `raw`, decompressing it when it starts with the gzip magic bytes (or `gz` is set, for
/// a `.gz` name). The first bytes are read once and put back in front, so a pipe loses nothing.
fn decompressing(
    mut raw: Box<dyn Read + Send>,
    gz: bool,
    source: &str,
) -> Result<DynBufRead, IngestError> {
    let mut head = [0u8; 2];
    let mut n = 0;
    while n < head.len() {
        match raw.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source_err) => {
                return Err(IngestError::Io {
                    path: source.to_string(),
                    line: 1,
                    source: source_err,
                })
            }
        }
    }
    let gz = gz || head[..n] == [0x1f, 0x8b];
    let raw = BufReader::with_capacity(1 << 16, Cursor::new(head[..n].to_vec()).chain(raw));
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    })
}

/// Reads up to the first non-blank line (each line up to [`DEFAULT_MAX_LINE`] bytes) for format
/// detection, appending every byte read to `prefix`. A read error stops it and is returned, to be
/// met again when the reader gets there.
fn sniff(input: &mut DynBufRead, prefix: &mut Vec<u8>) -> (Vec<String>, Option<io::Error>) {
    let mut lines = Vec::new();
    while lines.len() < SNIFF_LINES && prefix.len() < SNIFF_BYTES {
        let start = prefix.len();
        match input
            .by_ref()
            .take(DEFAULT_MAX_LINE as u64)
            .read_until(b'\n', prefix)
        {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (lines, Some(e)),
        }
        let text = String::from_utf8_lossy(&prefix[start..]).trim().to_string();
        if !text.is_empty() {
            lines.push(text);
        }
    }
    (lines, None)
}

fn detect_sniffed(
    name: &Path,
    source: &str,
    lines: &[String],
    err: Option<io::Error>,
) -> Result<Format, IngestError> {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    if let Some(format) = Format::detect(name, &refs) {
        return Ok(format);
    }
    if let Some(e) = err {
        return Err(IngestError::Io {
            path: source.to_string(),
            line: lines.len() as u64 + 1,
            source: e,
        });
    }
    Err(IngestError::UnknownFormat {
        path: source.to_string(),
        line: 1,
        message: format!(
            "the first lines look like none of {}; name one with a format option",
            Format::ALL.map(Format::name).join(", ")
        ),
    })
}

/// Yields a stored error once, then reads on from `inner`: the error format detection met,
/// replayed after the lines it read.
struct ErrThen<R> {
    err: Option<io::Error>,
    inner: R,
}

impl<R: Read> Read for ErrThen<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.err.take() {
            Some(e) => Err(e),
            None => self.inner.read(buf),
        }
    }
}

impl<R: BufRead> BufRead for ErrThen<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.err.take() {
            Some(e) => Err(e),
            None => self.inner.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
    }
}

fn reader_over(
    mut input: DynBufRead,
    source: String,
    name: &Path,
    format: Option<Format>,
    lenient: bool,
) -> Result<EventReader<DynBufRead>, IngestError> {
    let format = match format {
        Some(f) => f,
        None => {
            let mut prefix = Vec::new();
            let (lines, err) = sniff(&mut input, &mut prefix);
            let format = detect_sniffed(name, &source, &lines, err.as_ref().map(copy_io_err))?;
            // Read the detected lines again, from memory, then the rest of the stream.
            input = Box::new(Cursor::new(prefix).chain(ErrThen { err, inner: input }));
            format
        }
    };
    Ok(EventReader::new(input, source, format, lenient))
}

/// An `io::Error` is not `Clone`; this keeps its kind and text.
fn copy_io_err(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

/// Opens a file (gzip-compressed or not) as an [`EventReader`]; `format: None` detects it from
/// the first lines (else from the name, see [`Format::detect`]). The path `-` means stdin,
/// named [`STDIN_NAME`] in messages. The input is opened once, so pipes (`/dev/stdin`,
/// `<(…)`) work, compressed or not.
pub fn open_path(
    path: impl AsRef<Path>,
    format: Option<Format>,
    lenient: bool,
) -> Result<EventReader<DynBufRead>, IngestError> {
    let path = path.as_ref();
    let source = source_name(path);
    let input = decompressing(open_raw(path)?, has_gz_name(path), &source)?;
    reader_over(input, source.clone(), Path::new(&source), format, lenient)
}

/// [`open_path`] over any byte stream: gzip is recognised by its magic bytes, and `format: None`
/// detects the format from the first lines (the extension of `source` is the fallback). `source`
/// names the input in messages.
pub fn open_stream(
    input: impl Read + Send + 'static,
    source: impl Into<String>,
    format: Option<Format>,
    lenient: bool,
) -> Result<EventReader<DynBufRead>, IngestError> {
    let source = source.into();
    let input = decompressing(Box::new(input), false, &source)?;
    reader_over(input, source.clone(), Path::new(&source), format, lenient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!("LID-DS".parse::<Format>(), Ok(Format::LidDs));
        assert!("pcap".parse::<Format>().is_err());
    }

    #[test]
    fn detects_formats_from_content() {
        let p = Path::new("x");
        let cases = [
            (
                "1234  12:34:56.789012 write(1, \"x\", 1) = 1",
                Format::Strace,
            ),
            ("write(1, \"x\", 1) = 1", Format::Strace),
            ("1700000000.123456 read(0, \"\", 1) = 0", Format::Strace),
            (
                "1631078867380457267 0 2902771 apache2 2902771 select < res=0 ",
                Format::LidDs,
            ),
            ("6 6 63 6 42 120", Format::Adfa),
            (r#"{"syscall":"read"}"#, Format::Jsonl),
            (r#"{"eventName":"openat","args":[]}"#, Format::Tracee),
            (
                r#"{"output":"x","output_fields":{"evt.type":"open"}}"#,
                Format::Falco,
            ),
            (r#"{"evt.type":"open","evt.num":1}"#, Format::Falco),
        ];
        for (line, want) in cases {
            assert_eq!(Format::detect(p, &["", line]), Some(want), "{line}");
        }
        assert_eq!(Format::detect(p, &["hello world"]), None);
        assert_eq!(
            Format::detect(Path::new("a/b.sc.gz"), &[]),
            Some(Format::LidDs)
        );
    }

    #[test]
    fn lenient_counts_and_strict_errors() {
        let text = "{\"syscall\":\"read\"}\nnot json\n\n{\"syscall\":\"write\"}\n{\"sys\":1}\n";
        let strict: Vec<_> = EventReader::new(text.as_bytes(), "t.jsonl", Format::Jsonl, false)
            .map(|r| r.map(|e| e.syscall).map_err(|e| (e.line(), e.to_string())))
            .collect();
        assert_eq!(strict.len(), 4);
        assert_eq!(strict[0], Ok("read".to_string()));
        let (line, msg) = strict[1].clone().unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.starts_with("t.jsonl:2: malformed jsonl line"), "{msg}");
        assert_eq!(strict[2], Ok("write".to_string()));
        assert_eq!(strict[3].clone().unwrap_err().0, 5);

        let mut lenient = EventReader::new(text.as_bytes(), "t.jsonl", Format::Jsonl, true);
        let names: Vec<String> = lenient.by_ref().map(|r| r.unwrap().syscall).collect();
        assert_eq!(names, ["read", "write"]);
        assert_eq!(lenient.skipped().total(), 2);
        let lines: Vec<SkipAt> = lenient.skipped().examples().iter().map(|e| e.at).collect();
        assert_eq!(lines, [SkipAt::Line(2), SkipAt::Line(5)]);
        assert!(lenient.skipped().to_string().starts_with("2 lines skipped"));
    }

    #[test]
    fn an_overlong_line_is_not_buffered() {
        let mut text = b"{\"syscall\":\"read\"}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 3 << 20));
        text.extend_from_slice(b"\n{\"syscall\":\"close\"}\n");
        let input = BufReader::with_capacity(8192, &text[..]);
        let mut r = EventReader::new(input, "t", Format::Jsonl, true).with_max_line(1000);
        let mut names = Vec::new();
        while let Some(e) = r.next() {
            names.push(e.unwrap().syscall);
            // The line buffer holds at most the cap plus one read of the input.
            assert!(r.buf.capacity() <= 16_384, "{}", r.buf.capacity());
        }
        assert_eq!(names, ["read", "close"]);
        assert_eq!(r.skipped().counts().get("line too long"), Some(&1));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let bytes: &[u8] = b"{\"syscall\":\"re\xffad\"}\n";
        let ev: Vec<_> = EventReader::new(bytes, "t", Format::Jsonl, false).collect();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].as_ref().unwrap().syscall, "re\u{fffd}ad");
    }
}
