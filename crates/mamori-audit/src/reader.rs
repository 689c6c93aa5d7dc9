//! Streams of lines → events: [`AuditReader`] over any `BufRead`, [`open_path`] for files (gzip
//! detected by its magic bytes; `-` is stdin), [`read_all`] to collect.
//!
//! Memory stays constant whatever the input's length: one line buffer (capped), the open
//! events (capped by [`AssemblerOptions::max_pending`]), the first few malformed-line examples.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use memchr::memchr;

use crate::assemble::{Assembler, AssemblerOptions, Completion};
use crate::event::AuditEvent;
use crate::parse::LineParser;
use crate::stats::{Malformed, ParseStats};

/// How an [`AuditReader`] treats its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Stop at the first malformed or over-long line with an error naming it (default: count it
    /// in the stats and go on).
    pub strict: bool,
    /// Lines longer than this many bytes (newline excluded) are skipped without being buffered
    /// (default 1 MiB; the kernel's records are at most ~8 KiB).
    pub max_line: usize,
    /// How many malformed lines the stats keep as examples (default 16).
    pub max_examples: usize,
    /// Grouping limits.
    pub assembler: AssemblerOptions,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            strict: false,
            max_line: 1 << 20,
            max_examples: 16,
            assembler: AssemblerOptions::default(),
        }
    }
}

/// Reading failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input could not be opened.
    #[error("{}: {source}", path.display())]
    Open {
        /// What was opened.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// Reading failed (after `line` complete lines, at byte `offset`).
    #[error("read error after line {line} (byte {offset}): {source}")]
    Io {
        /// Lines read before the error.
        line: u64,
        /// Bytes read before the error.
        offset: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A line is not an audit record (strict mode).
    #[error("line {line}, byte {offset} (column {column}): expected {expected}")]
    Malformed {
        /// Line number, from 1.
        line: u64,
        /// Byte offset of the error in the input.
        offset: u64,
        /// Byte offset of the error in the line.
        column: usize,
        /// What the parser expected there.
        expected: &'static str,
    },
    /// A line is longer than [`ReaderOptions::max_line`] (strict mode).
    #[error("line {line}, byte {offset}: longer than {cap} bytes")]
    LineTooLong {
        /// Line number, from 1.
        line: u64,
        /// Byte offset of the line's start.
        offset: u64,
        /// The cap.
        cap: usize,
    },
}

enum Line {
    Text,
    TooLong,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Done,
}

/// An iterator of [`AuditEvent`]s from audit log lines.
///
/// Lenient by default: malformed and over-long lines are counted in [`AuditReader::stats`]
/// (with line numbers and byte offsets) and skipped. In strict mode the first one is an error
/// and ends the iteration. A source that reports `WouldBlock` or `TimedOut` (a followed file or
/// socket gone quiet) makes the reader flush its open events, then read on.
pub struct AuditReader<R> {
    inner: R,
    opts: ReaderOptions,
    parser: LineParser,
    asm: Assembler,
    buf: Vec<u8>,
    skipping: bool,
    lines: u64,
    pos: u64,
    line_start: u64,
    state: State,
}

impl<R: BufRead> AuditReader<R> {
    /// A lenient reader with default limits.
    pub fn new(inner: R) -> AuditReader<R> {
        AuditReader::with_options(inner, ReaderOptions::default())
    }

    /// A reader with these options.
    pub fn with_options(inner: R, opts: ReaderOptions) -> AuditReader<R> {
        AuditReader {
            inner,
            parser: LineParser::new(),
            asm: Assembler::new(opts.assembler.clone()),
            opts,
            buf: Vec::with_capacity(4096),
            skipping: false,
            lines: 0,
            pos: 0,
            line_start: 0,
            state: State::Reading,
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &ParseStats {
        self.asm.stats()
    }

    /// The source.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The source, mutably (reading from it directly confuses line numbers).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The grouping state (open events, [`Assembler::low_watermark`]).
    pub fn assembler(&self) -> &Assembler {
        &self.asm
    }

    /// Reads up to the next line end (or the input's end), keeping at most `max_line` bytes.
    /// A `WouldBlock` keeps the partial line for the next call.
    fn next_line(&mut self) -> io::Result<Line> {
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                if self.buf.is_empty() && !self.skipping {
                    return Ok(Line::Eof);
                }
                return Ok(self.end_line());
            }
            let (len, found) = match memchr(b'\n', avail) {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            if !self.skipping {
                if self.buf.len() + len > self.opts.max_line {
                    self.skipping = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&avail[..len]);
                }
            }
            let used = len + usize::from(found);
            self.inner.consume(used);
            self.pos += used as u64;
            if found {
                return Ok(self.end_line());
            }
        }
    }

    fn end_line(&mut self) -> Line {
        self.lines += 1;
        if std::mem::take(&mut self.skipping) {
            Line::TooLong
        } else {
            Line::Text
        }
    }

    /// The next event and why it completed.
    pub fn next_event(&mut self) -> Option<Result<(AuditEvent, Completion), Error>> {
        loop {
            if let Some(ev) = self.asm.pop_with_completion() {
                return Some(Ok(ev));
            }
            if self.state == State::Done {
                return None;
            }
            let line = match self.next_line() {
                Ok(line) => line,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.asm.flush_quiet();
                    continue;
                }
                Err(source) => {
                    self.state = State::Done;
                    return Some(Err(Error::Io {
                        line: self.lines,
                        offset: self.pos,
                        source,
                    }));
                }
            };
            let start = std::mem::replace(&mut self.line_start, self.pos);
            let stats = self.asm.stats_mut();
            stats.bytes = self.pos;
            match line {
                Line::Eof => {
                    self.asm.finish();
                    self.state = State::Done;
                }
                Line::TooLong => {
                    stats.lines += 1;
                    stats.long_lines += 1;
                    if self.opts.strict {
                        self.state = State::Done;
                        return Some(Err(Error::LineTooLong {
                            line: self.lines,
                            offset: start,
                            cap: self.opts.max_line,
                        }));
                    }
                }
                Line::Text => {
                    stats.lines += 1;
                    if let Err(e) = self.handle_line(start) {
                        self.state = State::Done;
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    fn handle_line(&mut self, start: u64) -> Result<(), Error> {
        let bytes = &self.buf;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            self.buf.clear();
            return Ok(());
        }
        // Audit writes ASCII (untrusted strings are hex); ENRICHED names may be UTF-8. Anything
        // else is replaced rather than refused.
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(bytes),
        };
        let result = match self.parser.parse(&text) {
            Ok(parsed) => {
                self.asm.push(parsed);
                Ok(())
            }
            Err(mut e) => {
                if let Cow::Owned(_) = text {
                    e.offset = raw_offset(bytes, e.offset);
                }
                let stats = self.asm.stats_mut();
                stats.malformed += 1;
                if stats.malformed_examples.len() < self.opts.max_examples {
                    stats.malformed_examples.push(Malformed::new(
                        self.lines,
                        start,
                        e.offset,
                        e.expected,
                        text.as_bytes(),
                    ));
                }
                if self.opts.strict {
                    Err(Error::Malformed {
                        line: self.lines,
                        offset: start + e.offset as u64,
                        column: e.offset,
                        expected: e.expected,
                    })
                } else {
                    Ok(())
                }
            }
        };
        self.buf.clear();
        result
    }
}

/// The offset in `bytes` of offset `lossy` in `String::from_utf8_lossy(bytes)`, where each invalid
/// sequence became one 3-byte U+FFFD: errors name offsets in the input, not in our copy.
fn raw_offset(bytes: &[u8], lossy: usize) -> usize {
    let (mut raw, mut fixed) = (0, 0);
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid().len();
        if lossy <= fixed + valid {
            return raw + (lossy - fixed);
        }
        raw += valid;
        fixed += valid;
        let bad = chunk.invalid().len();
        if bad > 0 {
            if lossy < fixed + 3 {
                return raw;
            }
            raw += bad;
            fixed += 3;
        }
    }
    raw.min(bytes.len())
}

impl<R: BufRead> Iterator for AuditReader<R> {
    type Item = Result<AuditEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().map(|r| r.map(|(e, _)| e))
    }
}

/// A boxed source, as [`open_path`] returns.
pub type DynSource = Box<dyn BufRead + Send>;

const READ_BUFFER: usize = 256 << 10;

/// Opens a log file (gzip or plain, told by the first bytes), or stdin for `-`, leniently.
pub fn open_path(path: impl AsRef<Path>) -> Result<AuditReader<DynSource>, Error> {
    open_path_with(path, ReaderOptions::default())
}

/// [`open_path`] with options.
pub fn open_path_with(
    path: impl AsRef<Path>,
    opts: ReaderOptions,
) -> Result<AuditReader<DynSource>, Error> {
    open_or_stdin(path.as_ref(), opts, || Box::new(io::stdin()))
}

/// The body of a plain-HTTP GET (a collector's record stream,
/// `http://HOST:PORT/api/devices/NAME/records`), read until the server closes it. HTTP/1.0, so
/// the body is neither chunked nor kept alive. Loopback or a management network only: no TLS.
fn http_get(url: &str) -> io::Result<Box<dyn Read + Send>> {
    use std::io::Write;
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {why}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("not http://"))?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut tcp = std::net::TcpStream::connect(host)?;
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    // the head, byte by byte up to the blank line (small, once)
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte)? == 0 || head.len() > 64 << 10 {
            return Err(bad(
                "the server closed the connection before its reply head ended",
            ));
        }
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head);
    let line = status.lines().next().unwrap_or("");
    if line.split_whitespace().nth(1) != Some("200") {
        return Err(bad(&format!("the server answered `{line}`")));
    }
    Ok(Box::new(tcp))
}

fn open_or_stdin(
    path: &Path,
    opts: ReaderOptions,
    stdin: impl FnOnce() -> Box<dyn Read + Send>,
) -> Result<AuditReader<DynSource>, Error> {
    let open_err = |source| Error::Open {
        path: path.to_path_buf(),
        source,
    };
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        stdin()
    } else if let Some(url) = path.to_str().filter(|p| p.starts_with("http://")) {
        http_get(url).map_err(open_err)?
    } else {
        Box::new(File::open(path).map_err(open_err)?)
    };
    Ok(AuditReader::with_options(
        maybe_gunzip(BufReader::with_capacity(READ_BUFFER, raw)).map_err(open_err)?,
        opts,
    ))
}

/// Wraps a source in a gzip decoder (multi-member, as `cat a.gz b.gz` makes) when it starts with
/// the gzip magic bytes.
pub fn maybe_gunzip<R: BufRead + Send + 'static>(mut src: R) -> io::Result<DynSource> {
    let head = loop {
        match src.fill_buf() {
            Ok(b) => break b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            READ_BUFFER,
            flate2::bufread::MultiGzDecoder::new(src),
        )))
    } else {
        Ok(Box::new(src))
    }
}

/// Reads a whole log (see [`open_path`]) into memory: its events and the counters.
pub fn read_all(path: impl AsRef<Path>) -> Result<(Vec<AuditEvent>, ParseStats), Error> {
    let mut reader = open_path(path)?;
    let events = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok((events, reader.stats().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const EVENT: &str = "type=SYSCALL msg=audit(1700000000.001:1): arch=c000003e syscall=59 success=yes exit=0 items=1 pid=10 comm=\"ls\" exe=\"/bin/ls\" key=(null)\n\
type=EXECVE msg=audit(1700000000.001:1): argc=1 a0=\"ls\"\n\
type=PATH msg=audit(1700000000.001:1): item=0 name=\"/bin/ls\" inode=7 dev=08:01 mode=0100755 nametype=NORMAL\n\
type=EOE msg=audit(1700000000.001:1): \n";

    fn reader(text: &str, opts: ReaderOptions) -> AuditReader<Cursor<Vec<u8>>> {
        AuditReader::with_options(Cursor::new(text.as_bytes().to_vec()), opts)
    }

    #[test]
    fn lenient_counts_bad_lines_with_line_and_offset() {
        let bad = "type=PATH msg=audit(1700000000.002:2): name=\"/tm";
        let text = format!("{EVENT}\n{bad}\nnot audit\n");
        let mut r = reader(&text, ReaderOptions::default());
        let events: Vec<_> = r.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(events.len(), 1);
        let s = r.stats();
        assert_eq!((s.lines, s.records, s.malformed, s.events), (7, 4, 2, 1));
        let m = &s.malformed_examples[0];
        assert_eq!((m.line, m.column), (6, bad.len()));
        assert_eq!(m.offset, (EVENT.len() + 1 + bad.len()) as u64);
        assert_eq!(m.expected, "`\"` closing the value");
        let m = &s.malformed_examples[1];
        assert_eq!(
            (m.line, m.column, m.offset),
            (7, 0, (EVENT.len() + 1 + bad.len() + 1) as u64)
        );
        assert_eq!(s.bytes, text.len() as u64);
    }

    #[test]
    fn strict_stops_at_the_first_bad_line() {
        let text = format!("{EVENT}type=EOE msg=audit(17.x:3):\n{EVENT}");
        let opts = ReaderOptions {
            strict: true,
            ..Default::default()
        };
        let mut r = reader(&text, opts);
        assert_eq!(r.next().unwrap().unwrap().serial, 1);
        let e = r.next().unwrap().unwrap_err();
        assert!(matches!(
            e,
            Error::Malformed {
                line: 5,
                column: 22,
                expected: "the milliseconds of the stamp",
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            format!(
                "line 5, byte {} (column 22): expected the milliseconds of the stamp",
                EVENT.len() + 22
            )
        );
        assert!(r.next().is_none(), "an error ends the iteration");
    }

    #[test]
    fn line_cap_skips_long_lines_without_buffering_them() {
        let long = format!(
            "type=EXECVE msg=audit(1700000000.001:1): a0=\"{}\"",
            "x".repeat(5000)
        );
        let text = format!("{long}\n{EVENT}");
        let opts = ReaderOptions {
            max_line: 1000,
            ..Default::default()
        };
        let mut r = reader(&text, opts.clone());
        let events: Vec<_> = r.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].records.len(), 4, "the long EXECVE was not kept");
        assert_eq!((r.stats().long_lines, r.stats().lines), (1, 5));
        assert!(r.buf.capacity() <= 4096, "{}", r.buf.capacity());
        let mut strict = reader(
            &text,
            ReaderOptions {
                strict: true,
                ..opts
            },
        );
        assert!(matches!(
            strict.next(),
            Some(Err(Error::LineTooLong {
                line: 1,
                offset: 0,
                cap: 1000
            }))
        ));
    }

    #[test]
    fn last_line_without_newline_crlf_and_blank_lines() {
        let text = EVENT.replace('\n', "\r\n\r\n");
        let text = text.trim_end();
        let mut r = reader(text, ReaderOptions::default());
        let events: Vec<_> = r.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(events.len(), 1);
        assert!(events[0].has_eoe());
        assert_eq!(r.stats().malformed, 0);
        assert_eq!(r.stats().records, 4);
    }

    #[test]
    fn offsets_of_lines_with_invalid_utf8_count_input_bytes() {
        // A truncated line with a stray byte for its type: the error is at byte 22 of the line
        // (the `)` that lacks its `:`), not at 24 as in its lossy copy.
        let mut bytes = b"type=X msg=audit(1.0:1)".to_vec();
        bytes[5] = 0x80;
        bytes.push(b'\n');
        let mut r = AuditReader::new(Cursor::new(bytes));
        assert!(r.next().is_none());
        let m = &r.stats().malformed_examples[0];
        assert_eq!((m.column, m.offset), (22, 22));
        assert_eq!(raw_offset(b"ab\xffcd", 2), 2);
        assert_eq!(raw_offset(b"ab\xffcd", 3), 2, "inside the replacement");
        assert_eq!(raw_offset(b"ab\xffcd", 5), 3);
        assert_eq!(
            raw_offset(b"ab\xff\xfecd", 8),
            4,
            "one U+FFFD per bad byte here"
        );
        assert_eq!(raw_offset(b"ab", 2), 2);
        let mut bytes = b"type=X msg=audit(1.0:1): k=\"".to_vec();
        bytes.push(0xff);
        let mut r = AuditReader::new(Cursor::new(bytes.clone()));
        assert!(r.next().is_none());
        let m = &r.stats().malformed_examples[0];
        assert_eq!(
            m.column,
            bytes.len(),
            "unclosed quote: at the end of the input line"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let mut bytes = b"type=USER_CMD msg=audit(1.000:5): uid=0 ACCT=\"".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\"\n");
        let mut r = AuditReader::new(Cursor::new(bytes));
        let ev = r.next().unwrap().unwrap();
        assert_eq!(ev.records[0].get("ACCT"), Some("\u{fffd}\u{fffd}"));
    }

    /// A source that says `WouldBlock` once after its data, then ends.
    struct Quiet {
        data: Cursor<Vec<u8>>,
        blocked: bool,
    }
    impl Read for Quiet {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data.read(buf)?;
            if n == 0 && !self.blocked {
                self.blocked = true;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        }
    }

    #[test]
    fn a_quiet_source_flushes_open_events() {
        let text = "type=SYSCALL msg=audit(1.000:7): syscall=0\n";
        let src = BufReader::new(Quiet {
            data: Cursor::new(text.into()),
            blocked: false,
        });
        let mut r = AuditReader::new(src);
        let (ev, how) = r.next_event().unwrap().unwrap();
        assert_eq!((ev.serial, how), (7, Completion::Idle));
        assert!(r.next().is_none());
        assert_eq!(r.stats().by_idle, 1);
    }

    #[test]
    fn files_plain_gzip_and_missing() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("audit.log");
        std::fs::write(&plain, EVENT.repeat(3)).unwrap();
        let gz = dir.path().join("audit.log.1.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(EVENT.as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();

        let (events, stats) = read_all(&plain).unwrap();
        // The same serial three times in a row: three events, each closed by its EOE.
        assert_eq!((events.len(), stats.by_eoe), (3, 3));
        let (events, stats) = read_all(&gz).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            stats.bytes,
            EVENT.len() as u64,
            "offsets count decompressed bytes"
        );
        assert_eq!(events[0].execve.as_ref().unwrap().argv, vec!["ls"]);
        let missing = dir.path().join("nope");
        let e = read_all(&missing).unwrap_err();
        assert!(matches!(e, Error::Open { .. }));
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn dash_is_stdin_gzip_or_not() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(EVENT.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        for input in [gz, EVENT.as_bytes().to_vec()] {
            let r = open_or_stdin(Path::new("-"), ReaderOptions::default(), || {
                Box::new(Cursor::new(input))
            })
            .unwrap();
            let events: Vec<_> = r.collect::<Result<_, _>>().unwrap();
            assert_eq!(events.len(), 1);
        }
        // A file named `-` elsewhere is a file.
        let e = open_or_stdin(
            Path::new("./-"),
            ReaderOptions::default(),
            || unreachable!(),
        );
        assert!(matches!(e, Err(Error::Open { .. })));
    }
}
