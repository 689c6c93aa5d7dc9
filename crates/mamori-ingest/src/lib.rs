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
//! Everything streams line by line with one reused line buffer, so memory stays constant however
//! large the file (except ADFA-LD's [`read_adfa_dataset`], which loads the small data set whole).
//! Files ending in `.gz` (or starting with the gzip magic bytes) are decompressed on the fly by
//! [`open_path`].
//!
//! A malformed line is an [`IngestError`] naming the file, the 1-based line and what is wrong. In
//! *lenient* mode such lines are skipped instead and counted per reason ([`EventReader::skipped`]),
//! with the first few kept as examples; they are never dropped silently.
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
mod jsonl;
pub mod labels;
mod lidds;
pub mod pcap;
mod skip;
mod strace;
mod sysdig;
mod tracee;

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
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
    ///   both `pid` and `tid`), optional time: `-t`/`-tt` time of day → **ns since midnight**
    ///   (strace prints no date), `-ttt` → ns since the epoch. `-T` durations are ignored.
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
    /// `evt.type` (required) → `syscall`; `evt.rawtime`/`evt.time` (integer ns, or RFC 3339) or
    /// the alert's `time` → `time_ns`; `proc.pid`, `thread.tid`, `proc.name`; `container.id`
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
    /// `procexit` becomes [`Record::Exit`].
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

    /// Reads the first lines of `path` (decompressing `.gz`) and calls [`Format::detect`].
    pub fn detect_file(path: &Path) -> Result<Format, IngestError> {
        let source = path.display().to_string();
        let mut input = open_input(path)?;
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        while lines.len() < 5 {
            buf.clear();
            line_no += 1;
            let n = (&mut input)
                .take(1 << 20)
                .read_until(b'\n', &mut buf)
                .map_err(|source_err| IngestError::Io {
                    path: source.clone(),
                    line: line_no,
                    source: source_err,
                })?;
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf).trim().to_string();
            if !text.is_empty() {
                lines.push(text);
            }
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        Format::detect(path, &refs).ok_or_else(|| IngestError::UnknownFormat {
            path: source,
            line: 1,
            message: format!(
                "the first lines look like none of {}; name one with a format option",
                Format::ALL.map(Format::name).join(", ")
            ),
        })
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
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Reading failed (missing file, permissions, corrupt gzip…).
    #[error("{path}:{line}: cannot read: {source}")]
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
        }
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
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Err(e) => {
                    self.done = true;
                    self.parser.finish(&mut self.queue);
                    return Some(Err(IngestError::Io {
                        path: self.source.clone(),
                        line: self.line_no + 1,
                        source: e,
                    }));
                }
                Ok(0) => {
                    self.done = true;
                    self.parser.finish(&mut self.queue);
                    continue;
                }
                Ok(_) => {}
            }
            self.line_no += 1;
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
                if self.lenient {
                    self.skipped
                        .record(SkipAt::Line(self.line_no), err.reason, err.message);
                } else {
                    return Some(Err(IngestError::Malformed {
                        path: self.source.clone(),
                        line: self.line_no,
                        format: self.format,
                        reason: err.reason,
                        message: err.message,
                    }));
                }
            }
        }
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

fn open_input(path: &Path) -> Result<DynBufRead, IngestError> {
    let io_err = |source| IngestError::Io {
        path: path.display().to_string(),
        line: 0,
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let gz = path.extension().is_some_and(|e| e == "gz")
        || reader
            .fill_buf()
            .map_err(io_err)?
            .starts_with(&[0x1f, 0x8b]);
    if gz {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// Opens a file (gzip-compressed or not) as an [`EventReader`]; `format: None` auto-detects it
/// with [`Format::detect_file`].
pub fn open_path(
    path: impl AsRef<Path>,
    format: Option<Format>,
    lenient: bool,
) -> Result<EventReader<DynBufRead>, IngestError> {
    let path = path.as_ref();
    let format = match format {
        Some(f) => f,
        None => Format::detect_file(path)?,
    };
    let input = open_input(path)?;
    Ok(EventReader::new(
        input,
        path.display().to_string(),
        format,
        lenient,
    ))
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
    fn invalid_utf8_is_replaced_not_fatal() {
        let bytes: &[u8] = b"{\"syscall\":\"re\xffad\"}\n";
        let ev: Vec<_> = EventReader::new(bytes, "t", Format::Jsonl, false).collect();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].as_ref().unwrap().syscall, "re\u{fffd}ad");
    }
}
