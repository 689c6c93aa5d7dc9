//! One audit line → one [`Record`] with its stamp.
//!
//! The format, as auditd writes it to `audit.log`, as `ausearch --raw` prints it and as the audisp
//! `af_unix` plugin sends it (`string` format):
//!
//! ```text
//! [node=HOST ]type=KIND msg=audit(SECONDS.MILLIS:SERIAL): k=v k="quoted" k=HEX … [0x1d K=V …]
//! ```
//!
//! The part after the single 0x1d byte is present in `log_format=ENRICHED` logs: auditd's
//! interpretations (`UID="root"`, `SYSCALL=execve`, `SADDR={ … }`). Userspace records put their
//! own fields in `msg='op=… res=success'`; those are parsed as fields too, after `msg`.
//! Words without `=` (`avc:  denied  { read } for …`) are left in the raw line only.
//!
//! One allocation per line for the text (plus one for the spans and one for the kind); values
//! are spans into it. A reusable [`LineParser`] keeps its scratch space between lines.

use memchr::memchr;

use crate::event::{Record, Span};

/// The byte that separates raw fields from ENRICHED interpretations.
pub const ENRICHED_SEPARATOR: u8 = 0x1d;

/// A parsed line: its event stamp and the record.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    /// Seconds since the epoch in nanoseconds (audit writes milliseconds).
    pub time_ns: i64,
    /// The event serial.
    pub serial: u64,
    /// The record; a `node=` prefix is its first field.
    pub record: Record,
    has_node: bool,
}

impl ParsedLine {
    /// The `node=` prefix's value, for logs aggregated from several hosts.
    pub fn node(&self) -> Option<&str> {
        if self.has_node {
            self.record.get("node")
        } else {
            None
        }
    }
}

/// Why a line is not an audit record, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset} of the line: expected {expected}")]
pub struct LineError {
    /// Offset in the line (0-based) where the parser stopped.
    pub offset: usize,
    /// What it expected there.
    pub expected: &'static str,
}

/// Parses one line (a trailing `\n` or `\r\n` is ignored). See [`LineParser`] to reuse scratch
/// space across lines.
pub fn parse_line(line: &str) -> Result<ParsedLine, LineError> {
    LineParser::new().parse(line)
}

/// A line parser that keeps its scratch span buffer between lines.
#[derive(Debug, Default)]
pub struct LineParser {
    spans: Vec<Span>,
}

/// The parts of the header, as offsets.
struct Header {
    kind: (usize, usize),
    time_ns: i64,
    serial: u64,
    has_node: bool,
    n_raw: usize,
}

const C_DELIM: u8 = 1; // ends a token: space, tab, the ENRICHED separator
const C_EQ: u8 = 2;

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    t[b' ' as usize] = C_DELIM;
    t[b'\t' as usize] = C_DELIM;
    t[ENRICHED_SEPARATOR as usize] = C_DELIM;
    t[b'=' as usize] = C_EQ;
    t
}
static CLASS: [u8; 256] = class_table();

fn err(offset: usize, expected: &'static str) -> LineError {
    LineError { offset, expected }
}

#[inline]
fn skip_blanks(b: &[u8], mut p: usize, end: usize) -> usize {
    while p < end && (b[p] == b' ' || b[p] == b'\t') {
        p += 1;
    }
    p
}

/// The end of an unquoted value or bare word: the next blank or separator.
#[inline]
fn token_end(b: &[u8], mut p: usize, end: usize) -> usize {
    while p < end && CLASS[b[p] as usize] & C_DELIM == 0 {
        p += 1;
    }
    p
}

fn expect(b: &[u8], p: usize, lit: &'static [u8], what: &'static str) -> Result<usize, LineError> {
    if b.get(p..p + lit.len()) == Some(lit) {
        Ok(p + lit.len())
    } else {
        Err(err(p, what))
    }
}

/// Decimal digits at `p`: (value, digit count, end); refuses more than 19 digits.
fn digits(b: &[u8], mut p: usize, what: &'static str) -> Result<(u64, usize, usize), LineError> {
    let start = p;
    let mut v = 0u64;
    while p < b.len() && b[p].is_ascii_digit() {
        if p - start == 19 {
            return Err(err(p, what));
        }
        v = v * 10 + u64::from(b[p] - b'0');
        p += 1;
    }
    if p == start {
        return Err(err(p, what));
    }
    Ok((v, p - start, p))
}

/// One token of the field list.
enum Token {
    Field {
        key: (usize, usize),
        val: (usize, usize),
        flags: u16,
        /// A `'…'` value whose inside is parsed for nested fields.
        single: bool,
    },
    Bare,
}

/// Reads the token at `p` (not a blank, not the separator, `p < end`); returns it and the offset
/// after it.
fn token(b: &[u8], p: usize, end: usize) -> Result<(Token, usize), LineError> {
    if b[p] == b'{' {
        // A bare `{ read write }` (AVC permissions): skip it whole, spaces included.
        return match memchr(b'}', &b[p + 1..end]) {
            Some(i) => Ok((Token::Bare, p + 1 + i + 1)),
            None => Err(err(end, "`}` closing the `{`")),
        };
    }
    let ks = p;
    let mut q = p;
    while q < end && CLASS[b[q] as usize] == 0 {
        q += 1;
    }
    if q == ks || q >= end || b[q] != b'=' {
        return Ok((Token::Bare, token_end(b, q, end)));
    }
    if q - ks > usize::from(u16::MAX) {
        return Err(err(ks, "a key shorter than 64 KiB"));
    }
    let key = (ks, q);
    let v = q + 1;
    if v >= end {
        return Ok((
            Token::Field {
                key,
                val: (v, v),
                flags: 0,
                single: false,
            },
            v,
        ));
    }
    let quoted = |close: u8, what: &'static str| match memchr(close, &b[v + 1..end]) {
        Some(i) => Ok((v + 1, v + 1 + i)),
        None => Err(err(end, what)),
    };
    Ok(match b[v] {
        b'"' => {
            let val = quoted(b'"', "`\"` closing the value")?;
            (
                Token::Field {
                    key,
                    val,
                    flags: Span::QUOTED,
                    single: false,
                },
                val.1 + 1,
            )
        }
        b'\'' => {
            let val = quoted(b'\'', "`'` closing the value")?;
            (
                Token::Field {
                    key,
                    val,
                    flags: Span::QUOTED,
                    single: true,
                },
                val.1 + 1,
            )
        }
        b'{' => {
            // ENRICHED `SADDR={ saddr_fam=inet laddr=… }`: the braces are kept in the value.
            let close = match memchr(b'}', &b[v + 1..end]) {
                Some(i) => v + 1 + i,
                None => return Err(err(end, "`}` closing the value")),
            };
            (
                Token::Field {
                    key,
                    val: (v, close + 1),
                    flags: 0,
                    single: false,
                },
                close + 1,
            )
        }
        _ => {
            let e = token_end(b, v, end);
            (
                Token::Field {
                    key,
                    val: (v, e),
                    flags: 0,
                    single: false,
                },
                e,
            )
        }
    })
}

fn span(key: (usize, usize), val: (usize, usize), flags: u16) -> Span {
    // Lines are capped far below 4 GiB before they get here (checked in `parse_header`).
    Span {
        key: key.0 as u32,
        key_len: (key.1 - key.0) as u16,
        val: val.0 as u32,
        val_len: (val.1 - val.0) as u32,
        flags,
    }
}

impl LineParser {
    /// A parser with empty scratch space.
    pub fn new() -> LineParser {
        LineParser::default()
    }

    /// Parses one line; see the module docs for the format.
    pub fn parse(&mut self, line: &str) -> Result<ParsedLine, LineError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let h = self.parse_spans(line.as_bytes())?;
        let record = Record::from_parts(
            line[h.kind.0..h.kind.1].to_owned(),
            line.into(),
            self.spans.as_slice().into(),
            h.n_raw as u32,
        );
        Ok(ParsedLine {
            time_ns: h.time_ns,
            serial: h.serial,
            record,
            has_node: h.has_node,
        })
    }

    fn parse_spans(&mut self, b: &[u8]) -> Result<Header, LineError> {
        self.spans.clear();
        if b.len() >= u32::MAX as usize {
            return Err(err(0, "a line shorter than 4 GiB"));
        }
        let end = b.len();
        let mut p = skip_blanks(b, 0, end);
        let mut has_node = false;
        if b[p..].starts_with(b"node=") {
            let v = p + 5;
            let e = token_end(b, v, end);
            self.spans.push(span((p, p + 4), (v, e), 0));
            has_node = true;
            p = skip_blanks(b, e, end);
        }
        p = expect(b, p, b"type=", "`type=`")?;
        let kind = (p, token_end(b, p, end));
        if kind.0 == kind.1 {
            return Err(err(p, "a record type after `type=`"));
        }
        p = skip_blanks(b, kind.1, end);
        p = expect(b, p, b"msg=audit(", "`msg=audit(`")?;
        let (secs, _, q) = digits(b, p, "the seconds of the stamp")?;
        p = expect(b, q, b".", "`.` after the seconds")?;
        let (frac, nfrac, q) = digits(b, p, "the milliseconds of the stamp")?;
        if nfrac > 9 {
            return Err(err(p + 9, "at most 9 fraction digits"));
        }
        p = expect(b, q, b":", "`:` before the serial")?;
        let (serial, _, q) = digits(b, p, "the serial")?;
        p = expect(b, q, b"):", "`):` after the serial")?;
        let time_ns = i64::try_from(secs)
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
            .and_then(|s| s.checked_add(frac as i64 * 10i64.pow(9 - nfrac as u32)))
            .ok_or(err(p, "a stamp before the year 2262"))?;
        let n_raw = self.fields(b, p, end)?;
        Ok(Header {
            kind,
            time_ns,
            serial,
            has_node,
            n_raw,
        })
    }

    /// The field list from `p`; returns where the interpretations start.
    fn fields(&mut self, b: &[u8], mut p: usize, end: usize) -> Result<usize, LineError> {
        let mut n_raw = None;
        loop {
            p = skip_blanks(b, p, end);
            if p >= end {
                break;
            }
            if b[p] == ENRICHED_SEPARATOR {
                n_raw.get_or_insert(self.spans.len());
                p += 1;
                continue;
            }
            let (tok, next) = token(b, p, end)?;
            if let Token::Field {
                key,
                val,
                flags,
                single,
            } = tok
            {
                self.spans.push(span(key, val, flags));
                if single {
                    self.nested(b, val.0, val.1);
                }
            }
            p = next;
        }
        Ok(n_raw.unwrap_or(self.spans.len()))
    }

    /// Fields inside a userspace `msg='…'`; leniently: a malformed inside keeps what parsed and
    /// the raw `msg` value.
    fn nested(&mut self, b: &[u8], mut p: usize, end: usize) {
        loop {
            p = skip_blanks(b, p, end);
            if p >= end {
                return;
            }
            match token(b, p, end) {
                Ok((
                    Token::Field {
                        key, val, flags, ..
                    },
                    next,
                )) => {
                    self.spans.push(span(key, val, flags | Span::NESTED));
                    p = next;
                }
                Ok((Token::Bare, next)) => p = next.max(p + 1),
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSCALL: &str = "type=SYSCALL msg=audit(1733500000.123:4567): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c6f0 a1=55d0c700 a2=55d0c710 a3=8 items=2 ppid=100 pid=101 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm=\"cat\" exe=\"/usr/bin/cat\" subj=unconfined key=\"exec\"\x1dARCH=x86_64 SYSCALL=execve AUID=\"alice\" UID=\"root\"";

    #[test]
    fn syscall_line_with_interpretations() {
        let p = parse_line(SYSCALL).unwrap();
        assert_eq!(p.serial, 4567);
        assert_eq!(p.time_ns, 1_733_500_000_123_000_000);
        assert_eq!(p.node(), None);
        let r = &p.record;
        assert_eq!(r.kind, "SYSCALL");
        assert_eq!(r.get("arch"), Some("c000003e"));
        assert_eq!(r.get("comm"), Some("cat"));
        assert_eq!(
            r.get("key"),
            Some("exec"),
            "quoted value right before the separator"
        );
        assert!(r.value("key").unwrap().quoted);
        assert!(!r.value("arch").unwrap().quoted);
        assert_eq!(r.fields().count(), 26);
        assert_eq!(r.get("ARCH"), None, "interpretations are not raw fields");
        assert_eq!(r.interpreted_get("SYSCALL"), Some("execve"));
        assert_eq!(r.interpreted_get("AUID"), Some("alice"));
        assert_eq!(r.interpreted().count(), 4);
        assert_eq!(r.raw(), SYSCALL);
    }

    #[test]
    fn eoe_node_prefix_newline_and_fraction() {
        let p = parse_line("node=web-1 type=EOE msg=audit(1700000000.5:9): \r\n").unwrap();
        assert_eq!(p.node(), Some("web-1"));
        assert_eq!(p.record.kind, "EOE");
        assert_eq!(p.time_ns, 1_700_000_000_500_000_000);
        assert_eq!(
            p.record.fields().collect::<Vec<_>>(),
            vec![("node", "web-1")]
        );
        assert!(!p.record.raw().ends_with('\n'));
    }

    #[test]
    fn user_msg_nested_fields() {
        let line = "type=USER_LOGIN msg=audit(1700000001.000:10): pid=812 uid=0 auid=1000 ses=4 subj=unconfined msg='op=login id=1000 exe=\"/usr/sbin/sshd\" hostname=10.0.0.2 addr=10.0.0.2 terminal=/dev/pts/1 res=success'\x1dUID=\"root\" AUID=\"alice\" ID=\"alice\"";
        let r = parse_line(line).unwrap().record;
        let msg = r.value("msg").unwrap();
        assert!(msg.text.starts_with("op=login id=1000") && msg.text.ends_with("res=success"));
        assert!(!msg.nested);
        assert_eq!(r.get("op"), Some("login"));
        assert_eq!(r.get("exe"), Some("/usr/sbin/sshd"));
        assert_eq!(r.get("res"), Some("success"));
        assert!(r.value("res").unwrap().nested);
        // The outer uid comes first.
        assert_eq!(r.get("uid"), Some("0"));
        assert_eq!(r.interpreted_get("ID"), Some("alice"));
    }

    #[test]
    fn avc_bare_words_and_enriched_braces() {
        let avc = "type=AVC msg=audit(1700000002.000:11): avc:  denied  { read write } for  pid=5 comm=\"nginx\" name=\"x\" scontext=system_u:system_r:httpd_t:s0 tclass=file permissive=0";
        let r = parse_line(avc).unwrap().record;
        assert_eq!(r.get("pid"), Some("5"));
        assert_eq!(r.get("tclass"), Some("file"));
        assert_eq!(r.fields().count(), 6);
        let sa = "type=SOCKADDR msg=audit(1700000002.000:12): saddr=02001F907F0000010000000000000000\x1dSADDR={ saddr_fam=inet laddr=127.0.0.1 lport=8080 }";
        let r = parse_line(sa).unwrap().record;
        assert_eq!(
            r.interpreted_get("SADDR"),
            Some("{ saddr_fam=inet laddr=127.0.0.1 lport=8080 }")
        );
        assert_eq!(r.get("saddr"), Some("02001F907F0000010000000000000000"));
    }

    #[test]
    fn empty_values_and_split_args() {
        let r = parse_line("type=EXECVE msg=audit(1.000:1): argc=2 a0=\"\" a1_len=6 a1[0]=616263 a1[1]=\"def\" last=")
            .unwrap()
            .record;
        assert_eq!(r.get("a0"), Some(""));
        assert_eq!(r.get("a1[0]"), Some("616263"));
        assert_eq!(r.get("a1[1]"), Some("def"));
        assert_eq!(r.get("last"), Some(""));
    }

    #[test]
    fn errors_name_the_offset_and_what_was_expected() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "`type=`"),
            ("hello world", 0, "`type=`"),
            (
                "type= msg=audit(1.000:1):",
                5,
                "a record type after `type=`",
            ),
            ("type=EOE audit(1.000:1):", 9, "`msg=audit(`"),
            (
                "type=EOE msg=audit(x.000:1):",
                19,
                "the seconds of the stamp",
            ),
            ("type=EOE msg=audit(1:1):", 20, "`.` after the seconds"),
            ("type=EOE msg=audit(1.000 1):", 24, "`:` before the serial"),
            ("type=EOE msg=audit(1.000:):", 25, "the serial"),
            ("type=EOE msg=audit(1.000:7)", 26, "`):` after the serial"),
            (
                "type=PATH msg=audit(1.000:7): name=\"/etc/pa",
                43,
                "`\"` closing the value",
            ),
            (
                "type=USER_CMD msg=audit(1.000:7): msg='op=x",
                43,
                "`'` closing the value",
            ),
            (
                "type=SOCKADDR msg=audit(1.000:7): saddr=00\x1dSADDR={ x",
                52,
                "`}` closing the value",
            ),
        ];
        for &(line, offset, expected) in cases {
            let e = parse_line(line).unwrap_err();
            assert_eq!((e.offset, e.expected), (offset, expected), "{line:?}");
        }
        let e = parse_line("type=EOE msg=audit(99999999999999999999.000:1):").unwrap_err();
        assert_eq!(e.offset, 38, "{e}");
        assert_eq!(
            parse_line("type=EOE msg=audit(1.000:1)")
                .unwrap_err()
                .to_string(),
            "byte 26 of the line: expected `):` after the serial"
        );
    }

    #[test]
    fn parser_reuse_keeps_lines_apart() {
        let mut p = LineParser::new();
        let a = p.parse(SYSCALL).unwrap();
        let b = p
            .parse("type=CWD msg=audit(1733500000.123:4567): cwd=\"/root\"")
            .unwrap();
        assert_eq!(a.record.get("exe"), Some("/usr/bin/cat"));
        assert_eq!(
            b.record.fields().collect::<Vec<_>>(),
            vec![("cwd", "/root")]
        );
    }
}
