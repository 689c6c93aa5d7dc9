//! strace text output (`strace -f -tt -yy -s N -o FILE`).
//!
//! Line prefix: an optional pid (`1234  ` with `-f` and `-o`, or `[pid  1234] ` on a terminal),
//! then an optional timestamp, whose form the file's first timestamp decides ([`Clock`]):
//!
//! - `-t`/`-tt` time of day (`12:34:56.789012`): ns since the first midnight, since strace prints
//!   no date; a step back of more than 12 h is the next day (a trace crossing midnight stays
//!   monotonic).
//! - `-ttt` seconds since the epoch (`1700000000.123456`; 10^8 s or more): ns since the epoch.
//! - `-r` deltas (`     0.000123`, below 10^8 s): each the time since the previous line, summed
//!   into ns since the first call.
//!
//! With `-f` strace prints the *thread* id; it is used as both `pid` and `tid`, as the text cannot
//! tell them apart.
//!
//! Arguments are split at top-level commas (strings, `(…)`, `[…]`, `{…}`, `/* … */` and `-yy`
//! annotations `<…>` are kept whole). A string argument is unquoted and unescaped; the truncation
//! marker `...` after its closing quote is dropped. An annotated descriptor `3</var/log/x>` becomes
//! the argument `3`, and the first annotation becomes `fd_path` — except for the `open` family,
//! whose `fd_path` is the annotation of the returned descriptor (the file actually opened) and
//! `None` when the call failed. Compound arguments (arrays, structs) are kept as printed.

use std::collections::VecDeque;

use crate::held::Held;
use crate::{shown, LineError, LineParser, Record, SyscallEvent};

/// Calls whose result is a new descriptor for the path they name.
const OPEN_FAMILY: &[&str] = &["open", "openat", "openat2", "creat", "open_by_handle_at"];

#[derive(Debug)]
pub(crate) struct StraceParser {
    /// Unfinished calls per pid (0 when strace printed no pid).
    pending: Held<Pending>,
    clock: Clock,
}

impl Default for StraceParser {
    fn default() -> Self {
        StraceParser {
            pending: Held::default(),
            clock: Clock::Unknown,
        }
    }
}

#[derive(Debug)]
struct Pending {
    event: SyscallEvent,
    /// The first `-yy` annotation of the arguments seen so far.
    first_annotation: Option<String>,
}

const DAY_NS: i64 = 86_400_000_000_000;
const HALF_DAY_NS: i64 = DAY_NS / 2;
/// Seconds from which a bare number is `-ttt` Unix time (1973) rather than a `-r` delta.
const EPOCH_MIN_NS: i64 = 100_000_000 * 1_000_000_000;

/// A printed timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    /// `HH:MM:SS[.frac]`, ns since midnight.
    TimeOfDay(i64),
    /// `SECS[.frac]`, ns.
    Seconds(i64),
}

/// The file's clock, set by its first timestamp and kept for the rest of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// No timestamp yet.
    Unknown,
    /// `-t`/`-tt`: `day_ns` is added to the time of day (24 h per midnight crossed); `max_ns` is
    /// the latest time yielded.
    TimeOfDay { day_ns: i64, max_ns: i64 },
    /// `-ttt`.
    Epoch,
    /// `-r`: the sum of the deltas after the first.
    Relative { total_ns: i64 },
}

impl Clock {
    /// The time of a line stamped `stamp` (`tok` as printed, for messages); advances the clock.
    fn time(&mut self, stamp: Stamp, tok: &str) -> Result<i64, LineError> {
        let mixed = |first: &str| {
            LineError::new(
                "bad timestamp",
                format!(
                    "timestamp `{}` is not of the form of the file's first one ({first})",
                    shown(tok)
                ),
            )
        };
        match (*self, stamp) {
            (Clock::Unknown, Stamp::TimeOfDay(t)) => {
                *self = Clock::TimeOfDay {
                    day_ns: 0,
                    max_ns: t,
                };
                Ok(t)
            }
            (Clock::Unknown, Stamp::Seconds(t)) if t >= EPOCH_MIN_NS => {
                *self = Clock::Epoch;
                Ok(t)
            }
            (Clock::Unknown, Stamp::Seconds(_)) => {
                // The first `-r` delta is from strace's start, not from a call: time 0.
                *self = Clock::Relative { total_ns: 0 };
                Ok(0)
            }
            (Clock::TimeOfDay { mut day_ns, max_ns }, Stamp::TimeOfDay(t)) => {
                let mut at = t + day_ns;
                if at < max_ns - HALF_DAY_NS {
                    // Midnight passed.
                    day_ns += DAY_NS;
                    at += DAY_NS;
                } else if at > max_ns + HALF_DAY_NS && day_ns >= DAY_NS {
                    // A late line from before the last midnight (threads interleave).
                    at -= DAY_NS;
                }
                *self = Clock::TimeOfDay {
                    day_ns,
                    max_ns: max_ns.max(at),
                };
                Ok(at)
            }
            (Clock::Epoch, Stamp::Seconds(t)) => Ok(t),
            (Clock::Relative { total_ns }, Stamp::Seconds(d)) => {
                let total_ns = total_ns.checked_add(d).ok_or_else(|| {
                    LineError::new(
                        "bad timestamp",
                        format!("relative time overflows at `{}`", shown(tok)),
                    )
                })?;
                *self = Clock::Relative { total_ns };
                Ok(total_ns)
            }
            (Clock::TimeOfDay { .. }, Stamp::Seconds(_)) => Err(mixed("a time of day")),
            (Clock::Epoch, Stamp::TimeOfDay(_)) => Err(mixed("Unix time, `-ttt`")),
            (Clock::Relative { .. }, Stamp::TimeOfDay(_)) => Err(mixed("a relative time, `-r`")),
        }
    }
}

/// Whether a line looks like strace output (for format detection).
pub(crate) fn looks_like(line: &str) -> bool {
    let Ok((_, rest)) = take_prefix(line) else {
        return false;
    };
    let body = rest.trim_start();
    if body.starts_with("<... ") || body.starts_with("+++ ") || body.starts_with("--- ") {
        return true;
    }
    match body.find('(') {
        Some(i) if i > 0 => valid_name(&body[..i]),
        _ => false,
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'?')
}

/// Splits off `[pid N]`/`N` and a timestamp. Returns `((pid, (stamp, token)), rest)`.
#[allow(clippy::type_complexity)]
fn take_prefix(line: &str) -> Result<((Option<u32>, Option<(Stamp, &str)>), &str), LineError> {
    let mut rest = line.trim_start();
    let mut pid = None;
    if let Some(r) = rest.strip_prefix("[pid") {
        let close = r
            .find(']')
            .ok_or_else(|| LineError::new("bad prefix", "`[pid` without `]`"))?;
        let n = r[..close].trim();
        pid = Some(
            n.parse::<u32>()
                .map_err(|_| LineError::new("bad prefix", format!("bad pid `{}`", shown(n))))?,
        );
        rest = r[close + 1..].trim_start();
    } else {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let tok = &rest[..end];
        if end < rest.len() && !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) {
            pid =
                Some(tok.parse::<u32>().map_err(|_| {
                    LineError::new("bad prefix", format!("bad pid `{}`", shown(tok)))
                })?);
            rest = rest[end..].trim_start();
        }
    }
    let mut time = None;
    if rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let tok = &rest[..end];
        let stamp = parse_time(tok).ok_or_else(|| {
            LineError::new(
                "bad timestamp",
                format!("cannot read timestamp `{}`", shown(tok)),
            )
        })?;
        time = Some((stamp, tok));
        rest = rest[end..].trim_start();
    }
    Ok(((pid, time), rest))
}

/// `12:34:56[.frac]` → ns since midnight; `secs[.frac]` → ns.
fn parse_time(tok: &str) -> Option<Stamp> {
    let (whole, frac) = match tok.split_once('.') {
        Some((w, f)) => (w, f),
        None => (tok, ""),
    };
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let mut frac_ns: i64 = 0;
    for b in frac.bytes().chain(std::iter::repeat(b'0')).take(9) {
        frac_ns = frac_ns * 10 + i64::from(b - b'0');
    }
    let of_day = whole.contains(':');
    let secs: i64 = if of_day {
        let mut parts = whole.split(':');
        let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let num = |t: &str| -> Option<i64> {
            if t.is_empty() || t.len() > 2 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        };
        num(h)? * 3600 + num(m)? * 60 + num(s)?
    } else {
        if whole.is_empty() || whole.len() > 12 || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        whole.parse().ok()?
    };
    let ns = secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)?;
    Some(if of_day {
        Stamp::TimeOfDay(ns)
    } else {
        Stamp::Seconds(ns)
    })
}

/// The result of [`split_args`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitArgs<'a> {
    /// Top-level arguments, trimmed, as printed (a trailing empty argument is dropped).
    pub args: Vec<&'a str>,
    /// Byte offset just past the closing `)`, or `None` when the text ended first (an
    /// `<unfinished ...>` call or a truncated line).
    pub end: Option<usize>,
}

/// Splits strace's argument text (what follows the call's `(`) at top-level commas, up to the
/// matching `)`. Quoted strings, `(…)`, `[…]`, `{…}`, `/* … */` comments and `<…>` annotations
/// (after a descriptor, or at the start of an argument) are kept whole. Never panics.
pub fn split_args(text: &str) -> SplitArgs<'_> {
    let b = text.as_bytes();
    let mut args = Vec::new();
    let mut depth: usize = 0;
    let mut start = 0;
    let mut i = 0;
    let mut end = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = match text[i + 2..].find("*/") {
                    Some(p) => i + 2 + p + 2,
                    None => b.len(),
                };
                continue;
            }
            // `1<<TCP_LISTEN` (a flag mask strace prints in netlink messages) is a shift, not an
            // annotation
            b'<' if b.get(i + 1) == Some(&b'<') => {
                i += 2;
                continue;
            }
            b'<' if i == start
                || text[start..i].trim().is_empty()
                || b[i - 1].is_ascii_alphanumeric()
                || b[i - 1] == b'_' =>
            {
                i = annotation_end(b, i) + 1;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' if depth == 0 => {
                args.push(text[start..i].trim());
                end = Some(i + 1);
                break;
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                args.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if end.is_none() && start < b.len() {
        args.push(text[start..].trim());
    }
    if args.last().is_some_and(|a| a.is_empty()) {
        args.pop();
    }
    SplitArgs { args, end }
}

/// Unescapes the inside of a C string as strace prints it: `\n \t \r \v \f \a \b \e \" \' \\ \?`,
/// octal `\0`–`\377` and hex `\xHH`. Bytes that are not UTF-8 become U+FFFD. Never panics; an
/// unknown escape is kept as written.
pub fn unescape_c_string(s: &str) -> String {
    let b = s.as_bytes();
    if !b.contains(&b'\\') {
        return s.to_string();
    }
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'e' => out.push(0x1b),
            b'"' | b'\'' | b'\\' | b'?' => out.push(c),
            b'0'..=b'7' => {
                let mut v: u32 = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let mut v: u32 = 0;
                let mut n = 0;
                while n < 2 && i < b.len() && b[i].is_ascii_hexdigit() {
                    v = v * 16 + (b[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                if n == 0 {
                    out.extend_from_slice(b"\\x");
                } else {
                    out.push(v as u8);
                }
            }
            _ => {
                out.push(b'\\');
                out.push(c);
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Given `b[start] == b'<'`, the index of the matching `>` (or `b.len()` if none): nested `<…>`
/// count (`/dev/null<char 1:3>`), a `>` inside `[…]` does not (`TCP:[1.2.3.4:80->5.6.7.8:9]`),
/// and backslash escapes are skipped.
fn annotation_end(b: &[u8], start: usize) -> usize {
    let mut angle = 0usize;
    let mut square = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'<' => angle += 1,
            b'[' => square += 1,
            b']' => square = square.saturating_sub(1),
            b'>' if square == 0 => {
                angle = angle.saturating_sub(1);
                if angle == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// One printed argument → (value, `-yy` annotation).
fn clean_arg(raw: &str) -> (String, Option<String>) {
    if let Some(inner) = raw.strip_prefix('"') {
        // Find the closing quote.
        let b = inner.as_bytes();
        let mut i = 0;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        if i < b.len() {
            let rest = inner[i + 1..].trim();
            if rest.is_empty() || rest == "..." {
                return (unescape_c_string(&inner[..i]), None);
            }
        }
        return (raw.to_string(), None);
    }
    if raw.ends_with('>') {
        if let Some(lt) = raw.find('<') {
            let head = &raw[..lt];
            if !head.is_empty()
                && head
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                let ann = &raw[lt + 1..raw.len() - 1];
                return (head.to_string(), Some(unescape_c_string(ann)));
            }
        }
    }
    (raw.to_string(), None)
}

/// Parses ` = ret[<annotation>] ...` after the closing parenthesis.
fn parse_return(rest: &str) -> Result<(Option<i64>, Option<String>), LineError> {
    let r = rest.trim_start();
    let Some(r) = r.strip_prefix('=') else {
        return Err(LineError::new(
            "missing return value",
            format!(
                "expected ` = <return value>` after `)`, found `{}`",
                shown(rest)
            ),
        ));
    };
    let r = r.trim_start();
    if r.starts_with('?') {
        return Ok((None, None));
    }
    let b = r.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i = 1;
    }
    let value = if b[i..].starts_with(b"0x") {
        let s = i + 2;
        let mut e = s;
        while e < b.len() && b[e].is_ascii_hexdigit() {
            e += 1;
        }
        i = e;
        u64::from_str_radix(&r[s..e], 16).ok().map(|v| {
            let v = v as i64;
            if r.starts_with('-') {
                v.wrapping_neg()
            } else {
                v
            }
        })
    } else {
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            None
        } else {
            r[..i].parse::<i64>().ok()
        }
    };
    let Some(value) = value else {
        return Err(LineError::new(
            "bad return value",
            format!("cannot read return value `{}`", shown(r)),
        ));
    };
    let mut annotation = None;
    if b.get(i) == Some(&b'<') {
        let end = annotation_end(b, i);
        if end < b.len() {
            annotation = Some(unescape_c_string(&r[i + 1..end]));
        }
    }
    Ok((Some(value), annotation))
}

const UNFINISHED: &str = "<unfinished ...>";

impl StraceParser {
    fn push_args(pending: &mut Pending, raw_args: &[&str]) {
        for raw in raw_args {
            let (value, ann) = clean_arg(raw);
            if pending.first_annotation.is_none() {
                pending.first_annotation = ann;
            }
            pending.event.args.push(value);
        }
    }

    fn complete(mut p: Pending, ret: Option<i64>, ret_ann: Option<String>) -> SyscallEvent {
        p.event.ret = ret;
        p.event.fd_path = if OPEN_FAMILY.contains(&p.event.syscall.as_str()) {
            ret_ann
        } else {
            p.first_annotation
        };
        p.event
    }

    fn take_pending(&mut self, key: u32) -> Option<Pending> {
        self.pending.take(key)
    }

    /// Holds an unfinished call; at the cap, first yields the oldest one incomplete.
    fn hold(&mut self, key: u32, p: Pending, out: &mut VecDeque<Record>) {
        self.flush_pid(key, out);
        self.pending.hold(key, p, |old| {
            out.push_back(Record::Call(Self::complete(old, None, None)))
        });
    }

    fn flush_pid(&mut self, key: u32, out: &mut VecDeque<Record>) {
        if let Some(p) = self.take_pending(key) {
            out.push_back(Record::Call(Self::complete(p, None, None)));
        }
    }
}

impl LineParser for StraceParser {
    fn parse_line(&mut self, line: &str, out: &mut VecDeque<Record>) -> Result<(), LineError> {
        if line.trim().is_empty() || line.starts_with("strace: ") {
            return Ok(());
        }
        let ((pid, stamp), body) = take_prefix(line)?;
        let time_ns = match stamp {
            Some((stamp, tok)) => Some(self.clock.time(stamp, tok)?),
            None => None,
        };
        let key = pid.unwrap_or(0);
        let body = body.trim_end();
        if body.starts_with("--- ") || body == "---" {
            return Ok(()); // signal delivery, not a call
        }
        if body.starts_with("+++ ") {
            if !body.ends_with("+++") {
                return Err(LineError::new(
                    "bad exit line",
                    format!("`{}` does not end with `+++`", shown(body)),
                ));
            }
            self.flush_pid(key, out);
            out.push_back(Record::Exit { pid, time_ns });
            return Ok(());
        }
        let (unfinished, body) = match body.strip_suffix(UNFINISHED) {
            Some(b) => (true, b),
            None => (false, body),
        };
        let (mut pending, args_text) = if let Some(r) = body.strip_prefix("<... ") {
            let Some(close) = r.find('>') else {
                return Err(LineError::new(
                    "bad resumed line",
                    format!("`<... ` without `>` in `{}`", shown(body)),
                ));
            };
            let head = &r[..close];
            let Some(name) = head.strip_suffix(" resumed") else {
                return Err(LineError::new(
                    "bad resumed line",
                    format!(
                        "expected `<... NAME resumed>`, found `<... {}>`",
                        shown(head)
                    ),
                ));
            };
            let pending = match self.take_pending(key) {
                Some(p) if p.event.syscall == name => p,
                other => {
                    if let Some(p) = other {
                        // A different call was pending for this pid: it never resumed.
                        out.push_back(Record::Call(Self::complete(p, None, None)));
                    }
                    Pending {
                        event: SyscallEvent {
                            time_ns,
                            pid,
                            tid: pid,
                            ..SyscallEvent::named(name)
                        },
                        first_annotation: None,
                    }
                }
            };
            (pending, &r[close + 1..])
        } else {
            let Some(open) = body.find('(') else {
                return Err(LineError::new(
                    "not a system call",
                    format!("no `(` in `{}`", shown(body)),
                ));
            };
            let name = body[..open].trim_end();
            if !valid_name(name) {
                return Err(LineError::new(
                    "not a system call",
                    format!("`{}` is not a system-call name", shown(name)),
                ));
            }
            self.flush_pid(key, out);
            let pending = Pending {
                event: SyscallEvent {
                    time_ns,
                    pid,
                    tid: pid,
                    ..SyscallEvent::named(name)
                },
                first_annotation: None,
            };
            (pending, &body[open + 1..])
        };
        let split = split_args(args_text);
        Self::push_args(&mut pending, &split.args);
        if unfinished {
            self.hold(key, pending, out);
            return Ok(());
        }
        let Some(end) = split.end else {
            return Err(LineError::new(
                "unbalanced arguments",
                format!(
                    "`{}(` has no matching `)` (truncated line?)",
                    shown(&pending.event.syscall)
                ),
            ));
        };
        let (ret, ret_ann) = parse_return(&args_text[end..])?;
        out.push_back(Record::Call(Self::complete(pending, ret, ret_ann)));
        Ok(())
    }

    fn finish(&mut self, out: &mut VecDeque<Record>) {
        for (_, p) in self.pending.drain() {
            out.push_back(Record::Call(Self::complete(p, None, None)));
        }
    }

    fn set_max_pending(&mut self, max: usize) {
        self.pending.set_max(max);
    }

    fn pending(&self) -> usize {
        self.pending.len()
    }

    fn evicted(&self) -> u64 {
        self.pending.evicted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_operators_in_netlink_messages_are_not_annotations() {
        // from `ss -tlnp` under strace -yy (the fresh motion set's recon)
        let text = "3<NETLINK:[SOCK_DIAG:23481]>, {msg_iov=[{iov_base=[{idiag_states=1<<TCP_CLOSE|1<<TCP_LISTEN, id={idiag_sport=htons(0)}}], iov_len=72}], msg_flags=0}, 0) = 72";
        let split = split_args(text);
        assert_eq!(split.args.len(), 3, "{:?}", split.args);
        assert_eq!(split.args[2], "0");
        assert!(split.end.is_some());
    }
    use crate::{EventReader, Format};

    fn parse(text: &str) -> Vec<Record> {
        let mut r = EventReader::new(text.as_bytes(), "t.strace", Format::Strace, false);
        let mut v = Vec::new();
        while let Some(rec) = r.next_record() {
            v.push(rec.unwrap());
        }
        v
    }

    fn calls(text: &str) -> Vec<SyscallEvent> {
        parse(text)
            .into_iter()
            .filter_map(|r| match r {
                Record::Call(e) => Some(e),
                Record::Exit { .. } => None,
            })
            .collect()
    }

    fn one(text: &str) -> SyscallEvent {
        let mut v = calls(text);
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    #[test]
    fn write_with_truncated_string() {
        let e = one("1234  12:34:56.789012 write(3</var/log/motion.log>, \"[1:ml1] [NTC] [ALL] netcam_init\"..., 64) = 64\n");
        assert_eq!(e.syscall, "write");
        assert_eq!(e.pid, Some(1234));
        assert_eq!(e.tid, Some(1234));
        assert_eq!(
            e.time_ns,
            Some(((12 * 3600 + 34 * 60 + 56) * 1_000_000_000) + 789_012_000)
        );
        assert_eq!(e.args, ["3", "[1:ml1] [NTC] [ALL] netcam_init", "64"]);
        assert_eq!(e.fd_path.as_deref(), Some("/var/log/motion.log"));
        assert_eq!(e.ret, Some(64));
    }

    #[test]
    fn escapes_in_strings() {
        let e = one(r#"7 write(1, "a\nb\t\"q\"\\ \101\x42\0end", 13) = 13"#);
        assert_eq!(e.args[1], "a\nb\t\"q\"\\ AB\0end");
        assert_eq!(e.pid, Some(7));
        assert_eq!(e.time_ns, None);
    }

    #[test]
    fn socket_and_special_annotations() {
        let e = one(
            "1 write(5<TCP:[127.0.0.1:8081->127.0.0.1:40532]>, \"HTTP/1.1 200 OK\\r\\n\", 17) = 17",
        );
        assert_eq!(
            e.fd_path.as_deref(),
            Some("TCP:[127.0.0.1:8081->127.0.0.1:40532]")
        );
        assert_eq!(e.args[1], "HTTP/1.1 200 OK\r\n");
        for (ann, want) in [
            ("<socket:[123]>", "socket:[123]"),
            ("<pipe:[4567]>", "pipe:[4567]"),
            ("<anon_inode:[eventpoll]>", "anon_inode:[eventpoll]"),
            ("</dev/null<char 1:3>>", "/dev/null<char 1:3>"),
        ] {
            let e = one(&format!("1 close(4{ann}) = 0"));
            assert_eq!(e.fd_path.as_deref(), Some(want));
            assert_eq!(e.args, ["4"]);
        }
    }

    #[test]
    fn returns() {
        let e = one(
            "openat(AT_FDCWD</tmp>, \"/nope\", O_RDONLY) = -1 ENOENT (No such file or directory)",
        );
        assert_eq!(e.ret, Some(-1));
        assert_eq!(e.fd_path, None, "failed open has no descriptor path");
        assert_eq!(e.args, ["AT_FDCWD", "/nope", "O_RDONLY"]);
        let e = one(
            "openat(AT_FDCWD</tmp>, \"/etc/localtime\", O_RDONLY|O_CLOEXEC) = 3</etc/localtime>",
        );
        assert_eq!(e.ret, Some(3));
        assert_eq!(e.fd_path.as_deref(), Some("/etc/localtime"));
        assert_eq!(e.args[2], "O_RDONLY|O_CLOEXEC");
        let e = one("exit_group(0) = ?");
        assert_eq!(e.ret, None);
        let e = one("mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f3c1a2b3000");
        assert_eq!(e.ret, Some(0x7f3c1a2b3000));
        assert_eq!(e.args.len(), 6);
        let e = one("1234  1700000000.123456 read(0</dev/pts/0>, \"\", 1) = 0 <0.000012>");
        assert_eq!(e.time_ns, Some(1_700_000_000_123_456_000));
        assert_eq!(e.ret, Some(0));
        assert_eq!(e.args, ["0", "", "1"]);
        let err = EventReader::new(
            "99999999999.5 read(0) = 0".as_bytes(),
            "t",
            Format::Strace,
            false,
        )
        .next()
        .unwrap()
        .unwrap_err();
        assert!(err.to_string().contains("bad timestamp"), "{err}");
        let e = one("[pid  42] 12:00:00 poll([{fd=3, events=POLLIN}], 1, -1) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)");
        assert_eq!(e.pid, Some(42));
        assert_eq!(e.time_ns, Some(12 * 3600 * 1_000_000_000));
        assert_eq!(e.ret, None);
        assert_eq!(e.args, ["[{fd=3, events=POLLIN}]", "1", "-1"]);
    }

    #[test]
    fn nested_arguments() {
        let e = one(
            r#"5  execve("/bin/sh", ["sh", "-c", "a, b (c)"], 0x7ffd740bea28 /* 35 vars, x */) = 0"#,
        );
        assert_eq!(
            e.args,
            [
                "/bin/sh",
                r#"["sh", "-c", "a, b (c)"]"#,
                "0x7ffd740bea28 /* 35 vars, x */"
            ]
        );
        let e = one("getdents64(3</>, 0x55 /* 12 entries */, 32768) = 360");
        assert_eq!(e.args, ["3", "0x55 /* 12 entries */", "32768"]);
        let e = one("rt_sigaction(SIGINT, {sa_handler=0x1, sa_mask=[INT QUIT], sa_flags=SA_RESTORER|SA_RESTART, sa_restorer=0x7f}, NULL, 8) = 0");
        assert_eq!(e.args.len(), 4);
        assert_eq!(e.args[2], "NULL");
        let e = one("wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 5826");
        assert_eq!(e.args[1], "[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]");
        let e = one("restart_syscall(<... resuming interrupted read ...>) = 0");
        assert_eq!(e.args, ["<... resuming interrupted read ...>"]);
        let e = one("write(1</tmp/a,b (1)>, \"x\", 1) = 1");
        assert_eq!(e.fd_path.as_deref(), Some("/tmp/a,b (1)"));
        assert_eq!(e.args, ["1", "x", "1"]);
    }

    #[test]
    fn unfinished_and_resumed() {
        let text = "\
5825  00:22:48.756544 wait4(-1,  <unfinished ...>
5826  00:22:48.756595 read(3</etc/passwd>,  <unfinished ...>
5826  00:22:48.756600 <... read resumed>\"root:x\", 4096) = 6
5825  00:22:48.759879 <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 5826
";
        let v = calls(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].syscall, "read");
        assert_eq!(v[0].args, ["3", "root:x", "4096"]);
        assert_eq!(v[0].fd_path.as_deref(), Some("/etc/passwd"));
        assert_eq!(v[0].ret, Some(6));
        assert_eq!(v[0].time_ns, Some(48_756_595_000 + 22 * 60 * 1_000_000_000));
        assert_eq!(v[1].syscall, "wait4");
        assert_eq!(v[1].pid, Some(5825));
        assert_eq!(
            v[1].args,
            ["-1", "[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]", "0", "NULL"]
        );
        assert_eq!(v[1].ret, Some(5826));
        assert_eq!(v[1].time_ns, Some(48_756_544_000 + 22 * 60 * 1_000_000_000));
    }

    #[test]
    fn unfinished_at_exit_and_eof() {
        let text = "\
10 futex(0x7f, FUTEX_WAIT, 0, NULL <unfinished ...>
11 read(0,  <unfinished ...>
10 +++ killed by SIGKILL +++
11 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=10} ---
12 <... poll resumed>) = 1
";
        let recs = parse(text);
        assert_eq!(recs.len(), 4, "{recs:?}");
        match &recs[0] {
            Record::Call(e) => {
                assert_eq!(e.syscall, "futex");
                assert_eq!(e.ret, None);
                assert_eq!(e.args, ["0x7f", "FUTEX_WAIT", "0", "NULL"]);
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(
            recs[1],
            Record::Exit {
                pid: Some(10),
                time_ns: None
            }
        );
        match &recs[2] {
            Record::Call(e) => assert_eq!((e.syscall.as_str(), e.ret), ("poll", Some(1))),
            r => panic!("{r:?}"),
        }
        match &recs[3] {
            Record::Call(e) => assert_eq!((e.syscall.as_str(), e.ret), ("read", None)),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn malformed_lines() {
        let mut r = EventReader::new(
            "1 write(1, \"abc\n2 hello\n3 read(0, \"\", 1) = 0\n4 close(1) =\n".as_bytes(),
            "t.strace",
            Format::Strace,
            true,
        );
        let v: Vec<_> = r.by_ref().map(|e| e.unwrap()).collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].syscall, "read");
        let counts = r.skipped().counts();
        assert_eq!(counts.get("unbalanced arguments"), Some(&1));
        assert_eq!(counts.get("not a system call"), Some(&1));
        assert_eq!(counts.get("bad return value"), Some(&1));
        assert_eq!(r.skipped().examples()[1].at, crate::SkipAt::Line(2));
    }

    #[test]
    fn relative_timestamps_accumulate() {
        // `strace -f -r -T -yy`: deltas since the previous line, not times.
        let text = "\
1234       0.000000 execve(\"/bin/true\", [\"true\"], 0x7ffd /* 20 vars */) = 0 <0.000150>
1234       0.000420 brk(NULL) = 0x55d0 <0.000010>
1235       0.000100 read(3</etc/passwd>,  <unfinished ...>
[pid  1234]      0.000050 close(4</x>) = 0 <0.000008>
1235       0.000020 <... read resumed>\"x\", 1) = 1 <0.000180>
1235       1.500000 +++ exited with 0 +++
1234       0.250000 exit_group(0) = ?
";
        let recs = parse(text);
        let times: Vec<(String, Option<i64>)> = recs
            .iter()
            .map(|r| match r {
                Record::Call(e) => (e.syscall.clone(), e.time_ns),
                Record::Exit { time_ns, .. } => ("+++".to_string(), *time_ns),
            })
            .collect();
        let want: Vec<(String, Option<i64>)> = [
            ("execve", 0),
            ("brk", 420_000),
            ("close", 570_000),
            ("read", 520_000),
            ("+++", 1_500_590_000),
            ("exit_group", 1_750_590_000),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), Some(*t)))
        .collect();
        assert_eq!(times, want);
        let read = calls(text)
            .into_iter()
            .find(|e| e.syscall == "read")
            .unwrap();
        assert_eq!((read.pid, read.ret), (Some(1235), Some(1)));
        assert_eq!(read.fd_path.as_deref(), Some("/etc/passwd"));
        // A first delta that is not 0 still starts the clock at 0.
        let v = calls("0.000010 getpid() = 7\n0.000005 getppid() = 1\n");
        assert_eq!(v[0].time_ns, Some(0));
        assert_eq!(v[1].time_ns, Some(5_000));
        // `-ttt` stays Unix time.
        let v = calls("1700000000.5 getpid() = 7\n1700000000.25 getppid() = 1\n");
        assert_eq!(v[0].time_ns, Some(1_700_000_000_500_000_000));
        assert_eq!(v[1].time_ns, Some(1_700_000_000_250_000_000));
    }

    #[test]
    fn time_of_day_unwraps_at_midnight() {
        let text = "\
1 23:59:59.900000 getpid() = 1
2 23:59:59.950000 getpid() = 2
1 23:59:59.940000 getpid() = 1
1 00:00:00.100000 getpid() = 1
2 23:59:59.990000 getpid() = 2
1 00:00:01 getpid() = 1
1 12:00:01 getpid() = 1
1 23:59:59 getpid() = 1
1 00:00:00.5 getpid() = 1
";
        let day = 86_400_000_000_000i64;
        let times: Vec<i64> = calls(text).iter().map(|e| e.time_ns.unwrap()).collect();
        assert_eq!(
            times,
            [
                day - 100_000_000,
                day - 50_000_000,
                day - 60_000_000, // threads interleave: a small step back is kept
                day + 100_000_000,
                day - 10_000_000, // a late line from before midnight
                day + 1_000_000_000,
                day + 43_201_000_000_000,
                2 * day - 1_000_000_000,
                2 * day + 500_000_000,
            ]
        );
    }

    #[test]
    fn unescape_edge_cases() {
        assert_eq!(unescape_c_string(r"\x4"), "\x04");
        assert_eq!(unescape_c_string(r"\xzz"), r"\xzz");
        assert_eq!(unescape_c_string(r"\q"), r"\q");
        assert_eq!(unescape_c_string("\\"), "\\");
        assert_eq!(unescape_c_string(r"\377"), "\u{fffd}");
        assert_eq!(unescape_c_string(r"\303\251"), "é");
    }
}
