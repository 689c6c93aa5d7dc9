//! Value parsers for the numbers of the `mamori net` flags: clap puts the flag and the value in
//! front of their message (`invalid value 'nan' for '--threshold <SCORE>': not a finite
//! number`), so NaN, infinities and zero durations or counts are refused before anything runs.

use std::time::Duration;

/// A finite number (NaN and infinities would silently turn comparisons off).
pub fn finite_f64(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| "not a number".to_string())?;
    if !v.is_finite() {
        return Err("not a finite number".into());
    }
    Ok(v)
}

/// A finite number above zero.
pub fn positive_f64(s: &str) -> Result<f64, String> {
    let v = finite_f64(s)?;
    if v <= 0.0 {
        return Err("must be above 0".into());
    }
    Ok(v)
}

/// A share: finite, at least 0 and below 1.
pub fn fraction(s: &str) -> Result<f64, String> {
    let v = finite_f64(s)?;
    if !(0.0..1.0).contains(&v) {
        return Err("must be at least 0 and below 1".into());
    }
    Ok(v)
}

/// A duration above zero (`10s`, `500ms`, `2m`).
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(d)
}

/// A count above zero.
pub fn positive_usize(s: &str) -> Result<usize, String> {
    let v: usize = s
        .trim()
        .parse()
        .map_err(|_| "not a whole number".to_string())?;
    if v == 0 {
        return Err("must be at least 1".into());
    }
    Ok(v)
}

/// A count of at least 2 (cross-validation folds).
pub fn at_least_two(s: &str) -> Result<usize, String> {
    let v = positive_usize(s)?;
    if v < 2 {
        return Err("must be at least 2".into());
    }
    Ok(v)
}

/// A byte count above zero (snap length).
pub fn positive_u32(s: &str) -> Result<u32, String> {
    let v: u32 = s
        .trim()
        .parse()
        .map_err(|_| "not a whole number".to_string())?;
    if v == 0 {
        return Err("must be at least 1".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_and_zero_values_are_refused() {
        for bad in ["nan", "NaN", "inf", "-inf", "infinity", "x", ""] {
            assert!(finite_f64(bad).is_err(), "{bad}");
            assert!(positive_f64(bad).is_err(), "{bad}");
            assert!(fraction(bad).is_err(), "{bad}");
        }
        assert_eq!(finite_f64("-0.25"), Ok(-0.25));
        assert_eq!(positive_f64("0"), Err("must be above 0".into()));
        assert!(positive_f64("-1").is_err());
        assert_eq!(fraction("0"), Ok(0.0));
        assert!(fraction("1").is_err());
        assert_eq!(positive_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["0s", "0", "0ms", "-1s", "nan", "soon"] {
            assert!(positive_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(positive_usize("3"), Ok(3));
        assert!(positive_usize("0").is_err());
        assert!(positive_usize("-1").is_err());
        assert!(at_least_two("1").is_err());
        assert_eq!(positive_u32("256"), Ok(256));
        assert!(positive_u32("0").is_err());
    }
}
