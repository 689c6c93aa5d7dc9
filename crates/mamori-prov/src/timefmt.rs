//! Times as people write them: Unix seconds (`1765022400.25`) or RFC 3339
//! (`2026-12-06T12:00:00Z`, `2026-12-06T21:00:00.250+09:00`), and back to UTC text.
//!
//! A hand-written civil-calendar conversion (Howard Hinnant's `days_from_civil`) keeps the crate
//! free of a date library for the two formats it needs.

use mamori_core::time::days_from_civil;

const NS_PER_SEC: i64 = 1_000_000_000;

/// Parses a time into nanoseconds since the Unix epoch: Unix seconds with an optional fraction,
/// or RFC 3339 with `T` or a space between date and time, an optional fraction and `Z` or an
/// offset.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty time".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_unix(s);
    }
    parse_rfc3339(s)
}

fn parse_unix(s: &str) -> Result<i64, String> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() || frac.contains('.') {
        return Err(format!("`{s}` is not Unix seconds (SECONDS[.FRACTION])"));
    }
    let secs: i64 = int
        .parse()
        .map_err(|_| format!("`{s}`: seconds out of range"))?;
    let ns = frac_ns(frac).ok_or_else(|| format!("`{s}`: fraction longer than 9 digits"))?;
    secs.checked_mul(NS_PER_SEC)
        .and_then(|v| v.checked_add(ns))
        .ok_or_else(|| format!("`{s}`: seconds out of range"))
}

/// `"25"` → 250_000_000: the digits after the point, as nanoseconds.
fn frac_ns(frac: &str) -> Option<i64> {
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ns = 0i64;
    for (i, b) in frac.bytes().enumerate() {
        ns += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    Some(ns)
}

fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "`{s}` is neither Unix seconds nor RFC 3339 (e.g. 2026-12-06T12:00:00Z or 2026-12-06T12:00:00.250+09:00)"
        )
    };
    // RFC 3339 is ASCII; checking first keeps the byte slicing below on char boundaries.
    if !s.is_ascii() {
        return Err(bad());
    }
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |from: usize, to: usize| -> Result<i64, String> {
        let part = &s[from..to];
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, min, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(format!("`{s}`: no such date"));
    }
    // 60 allows a leap second as written; it lands on the next minute's first second.
    if hour > 23 || min > 59 || sec > 60 {
        return Err(format!("`{s}`: no such time of day"));
    }
    let mut rest = &s[19..];
    let mut ns = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        ns =
            frac_ns(&r[..digits]).ok_or_else(|| format!("`{s}`: fraction longer than 9 digits"))?;
        rest = &r[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || !(ob[0] == b'+' || ob[0] == b'-') || ob[3] != b':' {
                return Err(bad());
            }
            let oh: i64 = rest[1..3].parse().map_err(|_| bad())?;
            let om: i64 = rest[4..6].parse().map_err(|_| bad())?;
            if oh > 23 || om > 59 {
                return Err(format!("`{s}`: offset out of range"));
            }
            let v = oh * 3600 + om * 60;
            if ob[0] == b'-' {
                -v
            } else {
                v
            }
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    // Nanoseconds in an i64 reach from 1677 to 2262.
    secs.checked_mul(NS_PER_SEC)
        .and_then(|v| v.checked_add(ns))
        .ok_or_else(|| format!("`{s}`: out of range (1677-2262)"))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn split(ns: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let secs = ns.div_euclid(NS_PER_SEC);
    let ms = ns.rem_euclid(NS_PER_SEC) / 1_000_000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, sod / 3600, sod % 3600 / 60, sod % 60, ms)
}

/// `2026-12-06T12:00:01.234Z`: UTC with milliseconds (audit stamps have no finer resolution).
pub fn format_utc(ns: i64) -> String {
    let (y, mo, d, h, mi, s, ms) = split(ns);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// `12:00:01.234`: the UTC time of day, for edge labels.
pub fn format_clock(ns: i64) -> String {
    let (_, _, _, h, mi, s, ms) = split(ns);
    format!("{h:02}:{mi:02}:{s:02}.{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("1765022400"), Ok(1_765_022_400 * NS_PER_SEC));
        assert_eq!(
            parse_time("1765022400.25"),
            Ok(1_765_022_400 * NS_PER_SEC + 250_000_000)
        );
        assert!(parse_time("1.2.3").is_err());
        assert!(parse_time("1.1234567890").is_err());
        assert!(parse_time(".5").is_err());
    }

    #[test]
    fn rfc3339_round_trip() {
        let t = parse_time("2026-12-06T12:00:01.234Z").unwrap();
        assert_eq!(format_utc(t), "2026-12-06T12:00:01.234Z");
        assert_eq!(format_clock(t), "12:00:01.234");
        assert_eq!(
            parse_time("2026-12-06T21:00:01.234+09:00").unwrap(),
            t,
            "offsets are subtracted"
        );
        assert_eq!(parse_time("2026-12-06 12:00:01.234Z").unwrap(), t);
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_time("2000-02-29T00:00:00Z"),
            Ok(951_782_400 * NS_PER_SEC)
        );
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rfc3339_errors_say_why() {
        assert!(parse_time("2026-02-30T00:00:00Z")
            .unwrap_err()
            .contains("no such date"));
        assert!(parse_time("2026-12-06T25:00:00Z")
            .unwrap_err()
            .contains("no such time"));
        assert!(parse_time("2026-12-06T12:00:00")
            .unwrap_err()
            .contains("RFC 3339"));
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(parse_time("").is_err());
        assert!(
            parse_time("2026-12-0é:00:00:00Z").is_err(),
            "non-ASCII, no panic"
        );
        assert!(parse_time("２０２６-12-06T12:00:00Z").is_err());
        assert!(parse_time("9999-12-31T23:59:59Z")
            .unwrap_err()
            .contains("out of range"));
    }
}
