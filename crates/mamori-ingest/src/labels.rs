//! Attack labels: which periods of a recording or a capture are attack steps, and, for network
//! traffic, between which hosts.
//!
//! A labels file has one step per line, fields separated by tabs or spaces, `#` comments, in
//! either of two shapes:
//!
//! | Line                             | Labels                                                     |
//! |----------------------------------|------------------------------------------------------------|
//! | `FROM TO [NAME]`                 | a step by time alone (system-call recordings)              |
//! | `FROM TO ATTACKER VICTIM [NAME]` | a step by time and hosts (network traffic)                 |
//!
//! A line is of the second shape when its third field is an IP address. ATTACKER is an IP
//! address; VICTIM an IP address or `*` for any host (a scan). NAME may contain spaces. Readers
//! that need hosts (which packets are attack traffic) ask for [`Expect::Hosts`], which makes
//! every line the second shape.
//!
//! FROM and TO are inclusive and become nanoseconds ([`parse_time`]):
//!
//! - decimal seconds, `1700000000.25` (strace `-ttt`, Unix time), exact to the nanosecond;
//! - integer nanoseconds, `1700000000250000000`;
//! - a time of day, `HH:MM:SS[.frac]`: nanoseconds since midnight, the clock of strace `-tt`.
//!   Hours 24–47 are the next day: a recording that passes midnight is read with its times
//!   carried into the next day, so a step at 00:10 after it is written `24:10:00`.
//!
//! On a line that names hosts the times are Unix time, the clock of packet captures: an integer
//! below 10^11 is seconds (`1700000000`; no capture is from 1973 in nanoseconds), and a time of
//! day is an error. Times must be finite and not negative, and TO must not be before FROM; errors
//! name the file, the line and the value (escaped and clipped, as [`crate::shown`] does).
//!
//! ```
//! use mamori_ingest::labels::{parse_labels, Expect};
//!
//! let text = "# FROM TO [ATTACKER VICTIM] NAME\n\
//!             1700000000.5 1700000002.25 edit config\n\
//!             1700000010 1700000020 10.0.0.3 * port scan\n";
//! let steps = parse_labels(text, "attack.labels", Expect::AnyShape)?;
//! assert_eq!(steps[0].from_ns, 1_700_000_000_500_000_000);
//! assert_eq!(steps[0].to_ns, 1_700_000_002_250_000_000);
//! assert_eq!(steps[0].name, "edit config");
//! assert_eq!(steps[0].attacker, None);
//! assert_eq!(steps[1].from_ns, 1_700_000_010_000_000_000); // integer seconds beside hosts
//! assert_eq!(steps[1].attacker, Some("10.0.0.3".parse().unwrap()));
//! assert_eq!(steps[1].victim, None); // `*`
//!
//! let err = parse_labels("5 4 late\n", "attack.labels", Expect::AnyShape).unwrap_err();
//! assert_eq!(err.to_string(), "attack.labels:1: TO 4 is before FROM 5");
//! # Ok::<(), mamori_ingest::labels::LabelsError>(())
//! ```

use std::net::IpAddr;
use std::path::Path;

/// One labelled attack step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// Start (ns), inclusive; never negative.
    pub from_ns: i64,
    /// End (ns), inclusive; not before `from_ns`.
    pub to_ns: i64,
    /// Name from the file (`edit-config`, `syn-flood`); may be empty.
    pub name: String,
    /// The attacking host, on a line that names hosts.
    pub attacker: Option<IpAddr>,
    /// The attacked host; `None` for any host (`*`) or on a line without hosts.
    pub victim: Option<IpAddr>,
}

/// Which line shapes a reader accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Expect {
    /// Either shape, line by line: steps by time, with hosts where a line names them.
    #[default]
    AnyShape,
    /// Every line must name hosts, `FROM TO ATTACKER VICTIM [NAME]` (network labels).
    Hosts,
}

/// A time that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(String);

/// A labels file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    /// The file cannot be read.
    #[error("cannot read labels {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        err: std::io::Error,
    },
    /// A line is wrong.
    #[error("{file}:{line}: {message}")]
    Line {
        /// The file (or the source name given to [`parse_labels`]).
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads a labels file.
pub fn read_labels(path: &Path, expect: Expect) -> Result<Vec<Step>, LabelsError> {
    let text = std::fs::read_to_string(path).map_err(|err| LabelsError::Read {
        path: path.display().to_string(),
        err,
    })?;
    parse_labels(&text, &path.display().to_string(), expect)
}

/// Parses labels text; `source` names it in errors (`source:line: …`).
pub fn parse_labels(text: &str, source: &str, expect: Expect) -> Result<Vec<Step>, LabelsError> {
    let mut steps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        steps.push(
            parse_line(&fields, expect).map_err(|message| LabelsError::Line {
                file: source.to_string(),
                line: i + 1,
                message: crate::safe_message(&message),
            })?,
        );
    }
    Ok(steps)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "field"
    } else {
        "fields"
    }
}

fn parse_line(fields: &[&str], expect: Expect) -> Result<Step, String> {
    let hosts = match expect {
        Expect::Hosts => true,
        Expect::AnyShape => fields.get(2).is_some_and(|f| f.parse::<IpAddr>().is_ok()),
    };
    let min = if hosts { 4 } else { 2 };
    if fields.len() < min {
        let shape = match (expect, hosts) {
            (Expect::Hosts, _) => "`FROM TO ATTACKER VICTIM [NAME]`",
            (Expect::AnyShape, true) => {
                "`FROM TO ATTACKER VICTIM [NAME]` (the third field is a host)"
            }
            (Expect::AnyShape, false) => "`FROM TO [NAME]` or `FROM TO ATTACKER VICTIM [NAME]`",
        };
        return Err(format!(
            "expected {shape}, got {} {}",
            fields.len(),
            plural(fields.len())
        ));
    }
    let time = |field: &str| {
        let ns = if hosts {
            unix_time(field)
        } else {
            parse_time(field)
        };
        ns.map_err(|e| e.to_string())
    };
    let from_ns = time(fields[0])?;
    let to_ns = time(fields[1])?;
    if to_ns < from_ns {
        return Err(format!("TO {} is before FROM {}", fields[1], fields[0]));
    }
    if !hosts {
        return Ok(Step {
            from_ns,
            to_ns,
            name: fields[2..].join(" "),
            attacker: None,
            victim: None,
        });
    }
    let attacker: IpAddr = fields[2]
        .parse()
        .map_err(|_| format!("ATTACKER `{}` is not an IP address", fields[2]))?;
    let victim = match fields[3] {
        "*" => None,
        v => Some(
            v.parse()
                .map_err(|_| format!("VICTIM `{v}` is not an IP address or `*`"))?,
        ),
    };
    Ok(Step {
        from_ns,
        to_ns,
        name: fields[4..].join(" "),
        attacker: Some(attacker),
        victim,
    })
}

/// Parses one time to nanoseconds: integer nanoseconds, decimal seconds (`1700000000.25`), or a
/// time of day `HH:MM:SS[.frac]` (nanoseconds since midnight). Rejects what is not finite, is
/// negative, or does not fit in `i64` nanoseconds.
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    if t.contains(':') {
        return time_of_day(t);
    }
    if let Ok(ns) = t.parse::<i64>() {
        return non_negative(t, ns);
    }
    seconds(t, "ns, decimal seconds, or HH:MM:SS.frac")
}

/// Unix time on a line naming hosts: seconds (an integer below 10^11 too) or integer ns.
fn unix_time(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    if t.contains(':') {
        return Err(TimeError(format!(
            "`{t}` is a time of day; a line naming hosts needs Unix time (seconds or ns)"
        )));
    }
    if let Ok(n) = t.parse::<i64>() {
        // Integer seconds are far smaller than any nanosecond time since 1973.
        if (0..100_000_000_000).contains(&n) {
            return n.checked_mul(1_000_000_000).ok_or_else(|| too_large(t));
        }
        return non_negative(t, n);
    }
    seconds(t, "Unix seconds or ns")
}

fn non_negative(t: &str, ns: i64) -> Result<i64, TimeError> {
    if ns < 0 {
        return Err(TimeError(format!("`{t}` is a negative time")));
    }
    Ok(ns)
}

fn too_large(t: &str) -> TimeError {
    TimeError(format!("`{t}` is too large a time (after the year 2262)"))
}

/// Decimal seconds to ns: `SECS.FRAC` exactly (rounded at the tenth fractional digit), other
/// forms (`1.7e9`) through `f64`.
fn seconds(t: &str, forms: &str) -> Result<i64, TimeError> {
    let not_a_time = || TimeError(format!("`{t}` is not a time ({forms})"));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if let Some((int, frac)) = t.split_once('.') {
        let int_digits = int.strip_prefix('+').unwrap_or(int);
        if digits(int_digits) && digits(frac) && !(int_digits.is_empty() && frac.is_empty()) {
            let secs: i64 = if int_digits.is_empty() {
                0
            } else {
                int_digits.parse().map_err(|_| too_large(t))?
            };
            let mut ns: i64 = 0;
            for (i, b) in frac.bytes().take(10).enumerate() {
                let d = i64::from(b - b'0');
                if i < 9 {
                    ns = ns * 10 + d;
                } else if d >= 5 {
                    ns += 1;
                }
            }
            for _ in frac.len()..9 {
                ns *= 10;
            }
            return secs
                .checked_mul(1_000_000_000)
                .and_then(|s| s.checked_add(ns))
                .ok_or_else(|| too_large(t));
        }
    }
    let secs: f64 = t.parse().map_err(|_| not_a_time())?;
    if !secs.is_finite() {
        return Err(TimeError(format!("`{t}` is not a finite time")));
    }
    if secs < 0.0 {
        return Err(TimeError(format!("`{t}` is a negative time")));
    }
    let ns = (secs * 1e9).round();
    if ns >= i64::MAX as f64 {
        return Err(too_large(t));
    }
    Ok(ns as i64)
}

/// `HH:MM:SS[.frac]` to ns since midnight (hours up to 47: the next day).
fn time_of_day(t: &str) -> Result<i64, TimeError> {
    let bad = |what: &str| {
        TimeError(format!(
            "`{t}` is not a time of day HH:MM:SS[.frac] ({what})"
        ))
    };
    let mut parts = t.splitn(3, ':');
    let (h, m, s) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let h: i64 = h.parse().map_err(|_| bad("hours"))?;
    let m: i64 = m.parse().map_err(|_| bad("minutes"))?;
    // Seconds are decimal seconds: finite, not negative, exact to the ns.
    let s_ns = if s.contains(['e', 'E']) {
        Err(bad("seconds"))
    } else {
        seconds(s, "seconds").map_err(|_| bad("seconds"))
    }?;
    if !(0..48).contains(&h) || !(0..60).contains(&m) || s_ns >= 61_000_000_000 {
        return Err(TimeError(format!("time of day out of range: {t}")));
    }
    Ok((h * 3600 + m * 60) * 1_000_000_000 + s_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(text: &str) -> Result<Vec<Step>, String> {
        parse_labels(text, "f", Expect::AnyShape).map_err(|e| e.to_string())
    }

    fn hosts(text: &str) -> Result<Vec<Step>, String> {
        parse_labels(text, "f", Expect::Hosts).map_err(|e| e.to_string())
    }

    #[test]
    fn time_forms() {
        assert_eq!(parse_time("12"), Ok(12));
        assert_eq!(parse_time("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_time(".25"), Ok(250_000_000));
        assert_eq!(parse_time("3."), Ok(3_000_000_000));
        assert_eq!(parse_time("1.7e9"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_time("01:02:03.5"), Ok(3_723_500_000_000));
        assert_eq!(parse_time("23:59:60"), Ok(86_400_000_000_000)); // a leap second
                                                                    // Exact to the ns, where f64 would be off by up to 128 ns at today's epoch seconds.
        assert_eq!(
            parse_time("1796123682.828781022"),
            Ok(1_796_123_682_828_781_022)
        );
        assert_eq!(parse_time("0.0000000015"), Ok(2)); // rounded at the tenth digit
        assert!(parse_time("48:00:00").is_err());
        // the day after midnight, as a -tt trace that passes midnight is read
        assert_eq!(
            parse_time("24:10:00").ok(),
            Some((24 * 3600 + 600) * 1_000_000_000)
        );
        assert!(parse_time("soon").is_err());
        assert!(parse_time("").is_err());
        assert!(parse_time(".").is_err());
    }

    #[test]
    fn non_finite_negative_and_huge_times_are_rejected() {
        for t in ["nan", "NaN", "inf", "-inf", "infinity"] {
            let e = parse_time(t).unwrap_err().to_string();
            assert!(e.contains("not a finite time"), "{t}: {e}");
        }
        for t in ["-5", "-1.5", "-1e3"] {
            let e = parse_time(t).unwrap_err().to_string();
            assert!(e.contains("negative"), "{t}: {e}");
        }
        for t in ["1e30", "99999999999999999999", "9999999999.5"] {
            let e = parse_time(t).unwrap_err().to_string();
            assert!(e.contains("too large"), "{t}: {e}");
        }
        for t in [
            "01:02:nan",
            "01:02:inf",
            "01:-2:03",
            "01:02:-3",
            "-1:02:03",
            "01:02:1e1",
        ] {
            assert!(parse_time(t).is_err(), "{t}");
        }
        assert_eq!(
            any("nan 5 x\n").unwrap_err(),
            "f:1: `nan` is not a finite time"
        );
        assert_eq!(
            hosts("1 -2 10.0.0.1 *\n").unwrap_err(),
            "f:1: `-2` is a negative time"
        );
    }

    #[test]
    fn both_shapes_in_one_file() {
        let steps = any("# comment\n\
             \n\
             10 20\n\
             1.5 2.5 edit config # trailing comment\n\
             100\t110\t10.0.0.3\t10.0.0.2\tsyn-flood\n\
             200 210 fe80::1 * scan\n\
             00:00:01 00:00:02 ps\n")
        .unwrap();
        assert_eq!(steps.len(), 5);
        assert_eq!((steps[0].from_ns, steps[0].to_ns), (10, 20)); // ns without hosts
        assert_eq!(steps[0].name, "");
        assert_eq!(steps[0].attacker, None);
        assert_eq!(steps[1].name, "edit config");
        assert_eq!(steps[1].from_ns, 1_500_000_000);
        // Beside hosts an integer below 10^11 is Unix seconds.
        assert_eq!(
            (steps[2].from_ns, steps[2].to_ns),
            (100_000_000_000, 110_000_000_000)
        );
        assert_eq!(steps[2].attacker, Some("10.0.0.3".parse().unwrap()));
        assert_eq!(steps[2].victim, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(steps[2].name, "syn-flood");
        assert_eq!(steps[3].attacker, Some("fe80::1".parse().unwrap()));
        assert_eq!(steps[3].victim, None);
        assert_eq!(steps[4].from_ns, 1_000_000_000);
    }

    #[test]
    fn a_line_naming_hosts_is_checked_as_one() {
        assert_eq!(
            any("1 2 10.0.0.1\n").unwrap_err(),
            "f:1: expected `FROM TO ATTACKER VICTIM [NAME]` (the third field is a host), got 3 \
             fields"
        );
        assert_eq!(
            any("1 2 10.0.0.1 everyone\n").unwrap_err(),
            "f:1: VICTIM `everyone` is not an IP address or `*`"
        );
        assert_eq!(
            any("01:00:00 02:00:00 10.0.0.1 *\n").unwrap_err(),
            "f:1: `01:00:00` is a time of day; a line naming hosts needs Unix time (seconds or ns)"
        );
        // Integer ns beside hosts stay ns.
        let s = any("1700000000000000000 1700000000000000001 10.0.0.1 *\n").unwrap();
        assert_eq!(s[0].from_ns, 1_700_000_000_000_000_000);
    }

    #[test]
    fn expecting_hosts_rejects_steps_without() {
        assert_eq!(
            hosts("1 2 host *\n").unwrap_err(),
            "f:1: ATTACKER `host` is not an IP address"
        );
        assert_eq!(
            hosts("1 2 ps\n").unwrap_err(),
            "f:1: expected `FROM TO ATTACKER VICTIM [NAME]`, got 3 fields"
        );
        assert_eq!(hosts("1 2 10.0.0.1 * x y\n").unwrap()[0].name, "x y");
    }

    #[test]
    fn messages_escape_control_bytes() {
        let e = any("1\u{1b}[2J 5 x\n").unwrap_err();
        assert_eq!(
            e,
            "f:1: `1\\x1b[2J` is not a time (ns, decimal seconds, or HH:MM:SS.frac)"
        );
        let e = any(&format!("1 {}\n", "7".repeat(5000) + "x")).unwrap_err();
        assert!(e.len() < 500, "{}", e.len());
        assert!(any("1 2 10.0.0.1 \u{0}\n").unwrap_err().contains("`\\x00`"));
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(any("1 2\n5 4\n").unwrap_err(), "f:2: TO 4 is before FROM 5");
        assert_eq!(
            any("\n\n7\n").unwrap_err(),
            "f:3: expected `FROM TO [NAME]` or `FROM TO ATTACKER VICTIM [NAME]`, got 1 field"
        );
        assert_eq!(
            any("1 soon\n").unwrap_err(),
            "f:1: `soon` is not a time (ns, decimal seconds, or HH:MM:SS.frac)"
        );
        let missing = Path::new("/nonexistent/mamori.labels");
        let e = read_labels(missing, Expect::AnyShape).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read labels /nonexistent/mamori.labels"
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
