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

#[cfg(test)]
mod tests {
    #[test]
    fn formats_milliseconds_in_utc() {
        assert_eq!(super::rfc3339(1_500_000_000), "1970-01-01T00:00:01.500Z");
        assert_eq!(super::rfc3339(-5), "1970-01-01T00:00:00.000Z");
    }
}
