//! Falco JSON output (`json_output: true`) and sysdig `-j` events.
//!
//! Fields are looked up in `output_fields` first, then at the top level (sysdig `-j`):
//! `evt.type` (required) → `syscall`; the first present (not `null`) of `evt.rawtime`, `evt.time`,
//! `evt.outputtime` (integer ns, numeric string or RFC 3339) and the alert's top-level `time` →
//! `time_ns`, `None`
//! when none is present. A present time that is not a time (or is before 1970) makes the line
//! malformed (`bad time`), naming the field: no other field stands in for it. `proc.pid`, `thread.tid`, `proc.name`;
//! `container.id` (else `container.name`); `fd.name` → `fd_path`; `evt.rawres` (else a numeric
//! `evt.res`) → `ret`. Arguments are the values of the `evt.arg.*` fields sorted by name, or else
//! the values of the `evt.args` text split into `key=value` pairs (a descriptor value
//! `3(<f>/path)` becomes `3`, and gives `fd_path` when `fd.name` is absent).

use mamori_core::time::days_from_civil;
use std::collections::VecDeque;

use serde_json::{Map, Value};

use crate::sysdig::{fd_value, split_kv};
use crate::{json_object, shown, LineError, LineParser, Record, SyscallEvent};

pub(crate) struct FalcoParser;

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get("output_fields")
        .and_then(Value::as_object)
        .and_then(|o| o.get(name))
        .or_else(|| obj.get(name))
        .filter(|v| !v.is_null())
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| u as i64))
            .or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn as_time(v: &Value) -> Option<i64> {
    let t = match v {
        // A float only when it is a whole number of ns within range.
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| parse_rfc3339(s)),
        _ => None,
    };
    t.filter(|&t| t >= 0)
}

/// The event's time: the first present of `evt.rawtime`, `evt.time`, `evt.outputtime` (sysdig
/// `-j`'s default), the alert's `time`.
fn event_time(obj: &Map<String, Value>) -> Result<Option<i64>, LineError> {
    let candidates = [
        ("evt.rawtime", field(obj, "evt.rawtime")),
        ("evt.time", field(obj, "evt.time")),
        ("evt.outputtime", field(obj, "evt.outputtime")),
        ("time", obj.get("time").filter(|v| !v.is_null())),
    ];
    for (name, value) in candidates {
        if let Some(v) = value {
            return match as_time(v) {
                Some(t) => Ok(Some(t)),
                None => Err(LineError::new(
                    "bad time",
                    format!(
                        "`{name}` is {}, not ns since the epoch or an RFC 3339 time",
                        shown(&v.to_string())
                    ),
                )),
            };
        }
    }
    Ok(None)
}

/// `2024-01-01T00:00:00.123456789Z` (or `+01:00`, or a space for `T`) → ns since the epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = b.get(r)?;
        if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(t).ok()?.parse().ok()
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut digits = 0;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if digits < 9 {
                frac_ns = frac_ns * 10 + i64::from(c - b'0');
            }
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            frac_ns *= 10;
        }
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

impl LineParser for FalcoParser {
    fn parse_line(&mut self, line: &str, out: &mut VecDeque<Record>) -> Result<(), LineError> {
        let Some(obj) = json_object(line)? else {
            return Ok(());
        };
        let obj = &obj;
        let Some(syscall) = field(obj, "evt.type").and_then(Value::as_str) else {
            return Err(LineError::new(
                "no evt.type",
                "no `evt.type` string in `output_fields` or at the top level",
            ));
        };
        let mut event = SyscallEvent::named(syscall);
        event.time_ns = event_time(obj)?;
        let id = |name| {
            field(obj, name)
                .and_then(as_i64)
                .and_then(|n| u32::try_from(n).ok())
        };
        event.pid = id("proc.pid");
        event.tid = id("thread.tid");
        event.process = field(obj, "proc.name").and_then(as_text);
        event.container = field(obj, "container.id")
            .or_else(|| field(obj, "container.name"))
            .and_then(as_text)
            .filter(|s| !s.is_empty());
        event.fd_path = field(obj, "fd.name")
            .and_then(as_text)
            .filter(|s| !s.is_empty());
        event.ret = field(obj, "evt.rawres")
            .and_then(as_i64)
            .or_else(|| field(obj, "evt.res").and_then(as_i64));

        let mut arg_fields: Vec<(&str, &Value)> = obj
            .get("output_fields")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .chain(obj.iter())
            .filter_map(|(k, v)| k.strip_prefix("evt.arg.").map(|name| (name, v)))
            .collect();
        arg_fields.sort_by(|a, b| a.0.cmp(b.0));
        arg_fields.dedup_by(|a, b| a.0 == b.0);
        let mut annotated = None;
        if !arg_fields.is_empty() {
            for (_, v) in arg_fields {
                if let Some(text) = as_text(v) {
                    let (value, path) = match fd_value(&text) {
                        Some((num, path)) => (num.to_string(), Some(path.to_string())),
                        None => (text, None),
                    };
                    if annotated.is_none() {
                        annotated = path.filter(|p| !p.is_empty());
                    }
                    event.args.push(value);
                }
            }
        } else if let Some(text) = field(obj, "evt.args").and_then(Value::as_str) {
            for (_, v) in split_kv(text) {
                let v = match fd_value(v) {
                    Some((num, path)) => {
                        if annotated.is_none() && !path.is_empty() {
                            annotated = Some(path.to_string());
                        }
                        num
                    }
                    None => v,
                };
                event.args.push(v.to_string());
            }
        }
        if event.fd_path.is_none() {
            event.fd_path = annotated;
        }
        out.push_back(Record::Call(event));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventReader, Format};

    fn read(text: &str) -> Vec<SyscallEvent> {
        EventReader::new(text.as_bytes(), "f.json", Format::Falco, false)
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00.123456789Z"),
            Some(1_704_067_200_123_456_789)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.5+01:00"),
            Some(1_699_996_400_500_000_000)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1_000_000_000));
        assert_eq!(parse_rfc3339("2024-02-30"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.Z"), None);
    }

    #[test]
    fn falco_alert() {
        let line = r#"{"output":"x","priority":"Notice","rule":"r","time":"2024-01-01T00:00:00.123456789Z","output_fields":{"evt.type":"write","evt.args":"fd=3(<f>/var/log/motion.log) size=64 data=[1:ml1] [NTC] netcam_init ok","fd.name":"/var/log/motion.log","proc.name":"motion","proc.pid":123,"thread.tid":124,"container.id":"abc","evt.time":1700000000123456789,"evt.res":"64"}}"#;
        let e = &read(line)[0];
        assert_eq!(e.syscall, "write");
        assert_eq!(e.time_ns, Some(1_700_000_000_123_456_789));
        assert_eq!((e.pid, e.tid), (Some(123), Some(124)));
        assert_eq!(e.process.as_deref(), Some("motion"));
        assert_eq!(e.container.as_deref(), Some("abc"));
        assert_eq!(e.fd_path.as_deref(), Some("/var/log/motion.log"));
        assert_eq!(e.args, ["3", "64", "[1:ml1] [NTC] netcam_init ok"]);
        assert_eq!(e.ret, Some(64));
    }

    #[test]
    fn sysdig_flat_with_arg_fields() {
        let line = r#"{"evt.type":"openat","evt.time":"2024-01-01T00:00:01Z","evt.arg.name":"/etc/localtime","evt.arg.fd":"4(<f>/etc/localtime)","evt.arg.flags":"O_RDONLY","evt.rawres":4,"proc.pid":"9","container.id":null}"#;
        let e = &read(line)[0];
        assert_eq!(e.time_ns, Some(1_704_067_201_000_000_000));
        assert_eq!(e.args, ["4", "O_RDONLY", "/etc/localtime"]);
        assert_eq!(e.fd_path.as_deref(), Some("/etc/localtime"));
        assert_eq!(e.ret, Some(4));
        assert_eq!(e.pid, Some(9));
        assert_eq!(e.container, None);
    }

    #[test]
    fn a_present_but_bad_time_is_malformed() {
        let alert = |fields: &str| {
            format!(
                r#"{{"time":"2024-01-01T00:00:00Z","output_fields":{{"evt.type":"read"{fields}}}}}"#
            )
        };
        for (fields, field) in [
            (r#","evt.time":"12:34:56.789""#, "evt.time"),
            (
                r#","evt.rawtime":"soon","evt.time":1700000000000000000"#,
                "evt.rawtime",
            ),
            (r#","evt.time":true"#, "evt.time"),
            (r#","evt.time":-5"#, "evt.time"),
        ] {
            let line = alert(fields);
            let err = EventReader::new(line.as_bytes(), "f.json", Format::Falco, false)
                .next()
                .unwrap()
                .unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("(bad time)"), "{fields}: {msg}");
            assert!(msg.contains(field), "{fields}: {msg}");
        }
        let bad_alert_time = r#"{"time":"yesterday","output_fields":{"evt.type":"read"}}"#;
        let err = EventReader::new(bad_alert_time.as_bytes(), "f", Format::Falco, false)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("`time`"), "{err}");
        // The fallbacks that remain: rawtime, then evt.time, then the alert's time.
        assert_eq!(read(&alert(""))[0].time_ns, Some(1_704_067_200_000_000_000));
        assert_eq!(
            read(&alert(r#","evt.time":null"#))[0].time_ns,
            Some(1_704_067_200_000_000_000)
        );
        assert_eq!(
            read(&alert(r#","evt.rawtime":5,"evt.time":"garbage""#))[0].time_ns,
            Some(5)
        );
        assert_eq!(read(r#"{"evt.type":"read"}"#)[0].time_ns, None);
    }

    #[test]
    fn missing_type_is_an_error() {
        let mut r = EventReader::new(
            "{\"output_fields\":{}}\n[1]\n{\"evt.type\":\"read\"}\n".as_bytes(),
            "f",
            Format::Falco,
            true,
        );
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(r.skipped().counts().get("no evt.type"), Some(&1));
        assert_eq!(r.skipped().counts().get("not an object"), Some(&1));
    }
}
