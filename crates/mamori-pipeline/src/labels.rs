//! Attack labels by time: `--attack-from/--attack-to` or a labels file of ranges.
//!
//! Times are written as integer nanoseconds, decimal seconds (`1700000000.25`), or a time of day
//! `HH:MM:SS[.frac]` (nanoseconds since midnight, the clock strace `-tt` prints). A labels file has
//! one range per line, `FROM TO [name]`, with `#` comments.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// One labelled attack period, in the events' clock.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttackRange {
    /// Start, inclusive (ns).
    pub from_ns: i64,
    /// End, inclusive (ns).
    pub to_ns: i64,
    /// Step name from the labels file.
    pub name: String,
}

/// Parses one time value.
pub fn parse_time(text: &str) -> Result<i64> {
    let t = text.trim();
    if t.contains(':') {
        let mut parts = t.splitn(3, ':');
        let h: i64 = parts.next().unwrap_or("").parse().context("hours")?;
        let m: i64 = parts.next().unwrap_or("").parse().context("minutes")?;
        let s: f64 = parts.next().unwrap_or("").parse().context("seconds")?;
        if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0.0..61.0).contains(&s) {
            bail!("time of day out of range: {t}");
        }
        return Ok((h * 3600 + m * 60) * 1_000_000_000 + (s * 1e9).round() as i64);
    }
    if let Ok(ns) = t.parse::<i64>() {
        return Ok(ns);
    }
    let secs: f64 = t
        .parse()
        .with_context(|| format!("`{t}` is not a time (ns, seconds, or HH:MM:SS.frac)"))?;
    Ok((secs * 1e9).round() as i64)
}

/// Reads a labels file.
pub fn read_labels(path: &Path) -> Result<Vec<AttackRange>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read labels {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 2 {
            bail!("{}:{}: expected `FROM TO [name]`", path.display(), i + 1);
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let from_ns = parse_time(fields[0]).with_context(at)?;
        let to_ns = parse_time(fields[1]).with_context(at)?;
        if to_ns < from_ns {
            bail!("{}: range ends before it starts", at());
        }
        out.push(AttackRange {
            from_ns,
            to_ns,
            name: fields[2..].join(" "),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_time_forms() {
        assert_eq!(parse_time("12").unwrap(), 12);
        assert_eq!(parse_time("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_time("01:02:03.5").unwrap(), 3_723_500_000_000);
        assert!(parse_time("25:00:00").is_err());
        assert!(parse_time("soon").is_err());
    }
}
