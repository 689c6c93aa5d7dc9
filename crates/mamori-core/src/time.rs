//! Timestamps as alerts write them.

/// RFC 3339 with milliseconds (`2026-12-01T06:04:45.679Z`) of nanoseconds since the Unix epoch;
/// times before the epoch (relative clocks of some recordings) print as the epoch plus the offset
/// clamped at zero.
pub fn rfc3339(ns: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`),
/// for the parsers of dated inputs (Falco events, detection points) that need no time crate.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_milliseconds_in_utc() {
        assert_eq!(super::rfc3339(1_500_000_000), "1970-01-01T00:00:01.500Z");
        assert_eq!(super::rfc3339(-5), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn counts_days_across_leap_years() {
        assert_eq!(super::days_from_civil(1970, 1, 1), 0);
        assert_eq!(super::days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(super::days_from_civil(1969, 12, 31), -1);
    }
}
