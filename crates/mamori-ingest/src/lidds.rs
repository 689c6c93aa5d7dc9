//! LID-DS 2021 `.sc` recordings (sysdig events, one half-call per line).
//!
//! Line: `timestamp_ns uid pid process_name tid syscall direction key=value…`, where direction is
//! `>` (enter) or `<` (exit). Halves are paired per thread into one event: `time_ns` is the enter
//! time, `args` the values of the enter then exit arguments (without `res`), `ret` the exit's
//! `res=` (or its `fd=` for calls that return a descriptor: `open`, `accept`, `socket`…),
//! `fd_path` the first descriptor annotation (`fd=13(<f>/dev/urandom)` → `/dev/urandom`; a value
//! `N(<t>text)` becomes `N`). An exit without an enter (recording started mid-call) is emitted
//! alone; an enter that never exits is emitted when its thread enters another call, or at the end
//! (or, past the pending cap, when it is the oldest waiting). sysdig's `procexit` event becomes
//! [`Record::Exit`] for its tid. `uid` is not kept (no field for it).
//!
//! A line cut short is malformed (`truncated line`): a value `N(…` without its closing `)`
//! (`fd=13(<f>/dev/ur`), or, in a file whose first line ends with the space sysdig prints after
//! every argument (as LID-DS's do), a line without it (`size=51`, cut from `size=512 `).

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::held::Held;
use crate::sysdig::{fd_value, parse_res, split_kv};
use crate::{shown, IngestError, LineError, LineParser, Record, SyscallEvent};

#[derive(Debug, Default)]
pub(crate) struct LidDsParser {
    /// Enter halves waiting for their exit, per tid.
    pending: Held<Half>,
    /// Whether the file's first line ends with a space (then every line must).
    trailing_space: Option<bool>,
}

#[derive(Debug)]
struct Half {
    time_ns: i64,
    pid: u32,
    tid: u32,
    process: String,
    syscall: String,
    args: Vec<(String, String)>,
}

struct Parsed<'a> {
    time_ns: i64,
    pid: u32,
    process: String,
    tid: u32,
    syscall: &'a str,
    enter: bool,
    args: &'a str,
}

/// Byte ranges of the whitespace-separated tokens of `line`, at most `max`.
fn tokens(line: &str, max: usize) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < max {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let s = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        out.push((s, i));
    }
    out
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse(line: &str) -> Result<Parsed<'_>, LineError> {
    // Process names may contain spaces: find the direction token `>`/`<` whose token two places
    // earlier (the tid) is a number.
    let toks = tokens(line, 40);
    let t = |i: usize| &line[toks[i].0..toks[i].1];
    let dir = (6..toks.len())
        .find(|&k| matches!(t(k), ">" | "<") && is_digits(t(k - 2)))
        .ok_or_else(|| {
            LineError::new(
                "bad line shape",
                "expected `timestamp uid pid process tid syscall >|< args…`",
            )
        })?;
    let num = |i: usize, what: &str| -> Result<u64, LineError> {
        t(i).parse::<u64>().map_err(|_| {
            LineError::new(
                "bad number",
                format!("{what} `{}` is not a number", shown(t(i))),
            )
        })
    };
    let time_ns = i64::try_from(num(0, "timestamp")?)
        .map_err(|_| LineError::new("bad number", "timestamp out of range"))?;
    num(1, "uid")?;
    let id = |i: usize, what: &str| -> Result<u32, LineError> {
        u32::try_from(num(i, what)?).map_err(|_| {
            LineError::new(
                "bad number",
                format!("{what} `{}` out of range", shown(t(i))),
            )
        })
    };
    let pid = id(2, "pid")?;
    let tid = id(dir - 2, "tid")?;
    let process = line[toks[3].0..toks[dir - 3].1].to_string();
    Ok(Parsed {
        time_ns,
        pid,
        process,
        tid,
        syscall: t(dir - 1),
        enter: t(dir) == ">",
        args: line.get(toks[dir].1..).unwrap_or("").trim(),
    })
}

/// Whether a line looks like a LID-DS `.sc` line (for format detection).
pub(crate) fn looks_like(line: &str) -> bool {
    parse(line).is_ok()
}

fn owned_args(text: &str) -> Vec<(String, String)> {
    split_kv(text)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn build(enter: Option<Half>, exit: Option<Half>) -> SyscallEvent {
    let base = match (&enter, &exit) {
        (Some(h), _) | (None, Some(h)) => h,
        (None, None) => return SyscallEvent::default(),
    };
    let mut event = SyscallEvent {
        time_ns: Some(base.time_ns),
        pid: Some(base.pid),
        tid: Some(base.tid),
        process: Some(base.process.clone()),
        ..SyscallEvent::named(base.syscall.clone())
    };
    let exit_args = exit.as_ref().map(|h| h.args.as_slice()).unwrap_or(&[]);
    event.ret = exit.as_ref().and_then(|_| {
        let get = |key: &str| exit_args.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        get("res")
            .and_then(|v| parse_res(v))
            .or_else(|| get("fd").and_then(|v| parse_res(v)))
    });
    let enter_args = enter.as_ref().map(|h| h.args.as_slice()).unwrap_or(&[]);
    for (k, v) in enter_args.iter().chain(exit_args) {
        if k == "res" {
            continue;
        }
        match fd_value(v) {
            Some((num, path)) => {
                if event.fd_path.is_none() && !path.is_empty() {
                    event.fd_path = Some(path.to_string());
                }
                event.args.push(num.to_string());
            }
            None => event.args.push(v.clone()),
        }
    }
    event
}

/// A value cut inside the parentheses sysdig puts after a number (`fd=13(<f>/dev/urandom)`,
/// `flags=4097(O_RDONLY)`, `res=-2(ENOENT)`), which always end the value: `fd=13(<f>/dev/ur`.
/// Other values (paths, `data=` buffers) may hold any parentheses.
fn cut_value(args: &[(String, String)]) -> Option<&(String, String)> {
    args.iter().find(|(k, v)| {
        let digits = v.strip_prefix('-').unwrap_or(v);
        let n = digits.bytes().take_while(u8::is_ascii_digit).count();
        k != "data" && n > 0 && digits[n..].starts_with('(') && !v.ends_with(')')
    })
}

impl LidDsParser {
    fn take_pending(&mut self, tid: u32) -> Option<Half> {
        self.pending.take(tid)
    }

    /// Holds an enter half; an older one of the same thread, and at the cap the oldest of all,
    /// are yielded alone.
    fn hold(&mut self, half: Half, out: &mut VecDeque<Record>) {
        if let Some(old) = self.take_pending(half.tid) {
            out.push_back(Record::Call(build(Some(old), None)));
        }
        self.pending.hold(half.tid, half, |old| {
            out.push_back(Record::Call(build(Some(old), None)))
        });
    }
}

impl LineParser for LidDsParser {
    fn parse_line(&mut self, line: &str, out: &mut VecDeque<Record>) -> Result<(), LineError> {
        if line.trim().is_empty() {
            return Ok(());
        }
        let p = parse(line)?;
        let ends_with_space = line.ends_with(' ');
        let convention = *self.trailing_space.get_or_insert(ends_with_space);
        if convention && !ends_with_space {
            let mut tail = line.len().saturating_sub(24);
            while !line.is_char_boundary(tail) {
                tail -= 1;
            }
            return Err(LineError::new(
                "truncated line",
                format!(
                    "the line ends in `{}` without the space after its last argument (cut short?)",
                    shown(&line[tail..])
                ),
            ));
        }
        let args = owned_args(p.args);
        if let Some((k, v)) = cut_value(&args) {
            return Err(LineError::new(
                "truncated line",
                format!("`{k}={}` lacks its closing `)` (cut short?)", shown(v)),
            ));
        }
        if p.syscall == "procexit" {
            // sysdig's process-exit event, not a system call.
            if let Some(old) = self.take_pending(p.tid) {
                out.push_back(Record::Call(build(Some(old), None)));
            }
            out.push_back(Record::Exit {
                pid: Some(p.tid),
                time_ns: Some(p.time_ns),
            });
            return Ok(());
        }
        let half = Half {
            time_ns: p.time_ns,
            pid: p.pid,
            tid: p.tid,
            process: p.process,
            syscall: p.syscall.to_string(),
            args,
        };
        if p.enter {
            self.hold(half, out);
        } else {
            let enter = match self.take_pending(p.tid) {
                Some(h) if h.syscall == half.syscall => Some(h),
                Some(other) => {
                    out.push_back(Record::Call(build(Some(other), None)));
                    None
                }
                None => None,
            };
            out.push_back(Record::Call(build(enter, Some(half))));
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut VecDeque<Record>) {
        let mut rest: Vec<Half> = self.pending.drain().into_iter().map(|(_, h)| h).collect();
        rest.sort_by_key(|h| (h.time_ns, h.tid));
        for h in rest {
            out.push_back(Record::Call(build(Some(h), None)));
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

/// The attack time of a LID-DS 2021 recording, in ns since the epoch (comparable to the
/// events' `time_ns`), from the recording's `.json` metadata; `None` for a recording without an
/// exploit. `path` may name the `.json` or any sibling (`.sc`, `.pcap`): the extension is
/// replaced.
///
/// Uses `time.exploit[0].absolute` (seconds), else `time.warmup_end.absolute` +
/// `time.exploit[0].relative`. Seconds are floating point, so the result is exact to about 1 µs.
pub fn lidds_exploit_time_ns(path: impl AsRef<Path>) -> Result<Option<i64>, IngestError> {
    let path: PathBuf = path.as_ref().with_extension("json");
    let shown = path.display().to_string();
    let bad = |message: String| IngestError::Dataset {
        path: shown.clone(),
        line: 0,
        message,
    };
    let text = fs::read_to_string(&path).map_err(|source| IngestError::Io {
        path: shown.clone(),
        line: 0,
        source,
    })?;
    let meta: Value = serde_json::from_str(&text).map_err(|e| IngestError::Dataset {
        path: shown.clone(),
        line: e.line() as u64,
        message: format!("invalid JSON: {e}"),
    })?;
    if meta.get("exploit").and_then(Value::as_bool) == Some(false) {
        return Ok(None);
    }
    let time = meta
        .get("time")
        .ok_or_else(|| bad("no `time` object".into()))?;
    let Some(first) = time
        .get("exploit")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    else {
        return Ok(None);
    };
    let secs = match first.get("absolute").and_then(Value::as_f64) {
        Some(abs) => abs,
        None => {
            let rel = first
                .get("relative")
                .and_then(Value::as_f64)
                .ok_or_else(|| {
                    bad("`time.exploit[0]` has neither `absolute` nor `relative`".into())
                })?;
            let start = time
                .get("warmup_end")
                .and_then(|w| w.get("absolute"))
                .and_then(Value::as_f64)
                .ok_or_else(|| {
                    bad("`time.exploit[0].relative` but no `time.warmup_end.absolute`".into())
                })?;
            start + rel
        }
    };
    if !secs.is_finite() || secs.abs() > 9.0e9 {
        return Err(bad(format!("exploit time {secs} s is out of range")));
    }
    Ok(Some((secs * 1e9).round() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventReader, Format};

    fn read(text: &str) -> Vec<SyscallEvent> {
        EventReader::new(text.as_bytes(), "x.sc", Format::LidDs, false)
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn pairs_enter_and_exit() {
        let text = "\
1631078867380457267 0 2902771 apache2 2902771 select < res=0 
1631078867467766934 33 2902774 apache2 2902774 open > 
1631078867467773648 33 2902774 apache2 2902774 open < fd=13(<f>/dev/urandom) name=/dev/urandom flags=4097(O_RDONLY|O_CLOEXEC) mode=0 dev=200073 
1631078867467776775 33 2902774 apache2 2902774 read > fd=13(<f>/dev/urandom) size=512 
1631078867467779939 33 2902774 apache2 2902774 read < res=512 data=Fft LT3b=x 
1631078884708585503 33 2902774 apache2 2902774 read < res=-11(EAGAIN) data= 
1631078867467817332 33 2902774 apache2 2902774 mmap > addr=0 length=12288 
1631078867467820185 33 2902774 apache2 2902774 mmap < res=7F5246360000 vm_size=112448 
1631078867467845921 33 2902775 my worker 2902775 brk > addr=560F96009000 
";
        let v = read(text);
        assert_eq!(v.len(), 6);
        assert_eq!((v[0].syscall.as_str(), v[0].ret), ("select", Some(0)));
        assert_eq!(v[1].syscall, "open");
        assert_eq!(v[1].time_ns, Some(1631078867467766934));
        assert_eq!(v[1].ret, Some(13));
        assert_eq!(v[1].fd_path.as_deref(), Some("/dev/urandom"));
        assert_eq!(
            v[1].args,
            [
                "13",
                "/dev/urandom",
                "4097(O_RDONLY|O_CLOEXEC)",
                "0",
                "200073"
            ]
        );
        assert_eq!(v[2].args, ["13", "512", "Fft LT3b=x"]);
        assert_eq!(v[2].ret, Some(512));
        assert_eq!(v[2].process.as_deref(), Some("apache2"));
        assert_eq!((v[2].pid, v[2].tid), (Some(2902774), Some(2902774)));
        assert_eq!(v[3].ret, Some(-11));
        assert_eq!(v[3].time_ns, Some(1631078884708585503));
        assert_eq!(v[4].ret, Some(0x7F5246360000));
        assert_eq!(v[5].syscall, "brk");
        assert_eq!(v[5].process.as_deref(), Some("my worker"));
        assert_eq!(v[5].ret, None);
    }

    #[test]
    fn procexit_is_an_exit() {
        let text = "5 0 7 sh 8 read > fd=0\n6 0 7 sh 8 procexit > status=0\n";
        let mut r = EventReader::new(text.as_bytes(), "x.sc", Format::LidDs, false);
        let recs: Vec<Record> = std::iter::from_fn(|| r.next_record())
            .map(Result::unwrap)
            .collect();
        assert_eq!(recs.len(), 2);
        assert!(matches!(&recs[0], Record::Call(e) if e.syscall == "read" && e.ret.is_none()));
        assert_eq!(
            recs[1],
            Record::Exit {
                pid: Some(8),
                time_ns: Some(6)
            }
        );
    }

    #[test]
    fn truncated_lines_are_malformed() {
        // Real `.sc` lines end with a space after the last argument; a cut line does not.
        let good = "\
1631078867467773648 33 2902774 apache2 2902774 open < fd=13(<f>/dev/urandom) name=/dev/urandom flags=4097(O_RDONLY|O_CLOEXEC) mode=0 dev=200073 
1631078867467776775 33 2902774 apache2 2902774 read > fd=13(<f>/dev/urandom) size=512 
";
        assert_eq!(read(good).len(), 2);
        for cut in [
            "1631078867467776775 33 2902774 apache2 2902774 read > fd=13(<f>/dev/ur",
            "1631078867467776775 33 2902774 apache2 2902774 read > fd=13(<f>/dev/urandom) size=51",
            "1631078867467776775 33 2902774 apache2 2902774 read > fd=13(<f>/dev/urandom) si",
        ] {
            let text = format!("{good}{cut}\n");
            let mut r = EventReader::new(text.as_bytes(), "x.sc", Format::LidDs, true);
            assert_eq!(r.by_ref().count(), 2, "{cut}");
            assert_eq!(
                r.skipped().counts().get("truncated line"),
                Some(&1),
                "{cut}: {}",
                r.skipped()
            );
        }
        // An unclosed `N(` is a cut even without the trailing-space convention.
        for cut in ["fd=13(<f>/dev/ur", "flags=4097(O_RDONLY|O_CL", "res=-2(ENO"] {
            let text = format!("1 0 2 p 2 read > {cut}\n");
            let mut r = EventReader::new(text.as_bytes(), "x.sc", Format::LidDs, false);
            let err = r.next().unwrap().unwrap_err();
            assert!(err.to_string().contains("truncated line"), "{err}");
        }
        // Paths and `data=` buffers may hold any parentheses.
        assert_eq!(read("1 0 2 p 2 write < res=3 data=a(b \n").len(), 1);
        assert_eq!(
            read("1 0 2 p 2 open < fd=3(<f>/tmp/a(b) name=/tmp/a(b \n").len(),
            1
        );
    }

    #[test]
    fn bad_lines() {
        let mut r = EventReader::new(
            "garbage\n1 0 x apache2 1 read > fd=1\n1 0 1 apache2 1 read < res=1\n".as_bytes(),
            "x.sc",
            Format::LidDs,
            true,
        );
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(r.skipped().counts().get("bad line shape"), Some(&1));
        assert_eq!(r.skipped().counts().get("bad number"), Some(&1));
    }
}
