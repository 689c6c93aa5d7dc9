//! Value parsers for the numbers the syscall commands take: a number that parses is not yet a
//! number that means something. `nan` parses as an `f64` and turns every comparison false (a NaN
//! threshold flags nothing), so non-finite values are refused where they are typed.

/// Any finite number (a threshold, which may be negative for log-likelihood scores).
pub fn finite(text: &str) -> Result<f64, String> {
    let x: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !x.is_finite() {
        return Err(format!("`{text}` is not a finite number"));
    }
    Ok(x)
}

/// A finite number ≥ 0 (seconds, weights).
pub fn non_negative(text: &str) -> Result<f64, String> {
    let x = finite(text)?;
    if x < 0.0 {
        return Err(format!("`{text}` is negative; give a number ≥ 0"));
    }
    Ok(x)
}

/// A finite number > 0 (learning rates, tolerances).
pub fn positive(text: &str) -> Result<f64, String> {
    let x = finite(text)?;
    if x <= 0.0 {
        return Err(format!("`{text}` must be greater than 0"));
    }
    Ok(x)
}

/// A share or rate in [0, 1].
pub fn fraction(text: &str) -> Result<f64, String> {
    let x = finite(text)?;
    if !(0.0..=1.0).contains(&x) {
        return Err(format!("`{text}` is not within 0..=1"));
    }
    Ok(x)
}

/// A share in [0, 1) (a target false-positive rate of 1 would flag everything).
pub fn below_one(text: &str) -> Result<f64, String> {
    let x = finite(text)?;
    if !(0.0..1.0).contains(&x) {
        return Err(format!("`{text}` must be at least 0 and below 1"));
    }
    Ok(x)
}

/// A count of at least 2 (cross-validation folds).
pub fn at_least_two(text: &str) -> Result<usize, String> {
    let n = count(text)?;
    if n < 2 {
        return Err(format!("`{text}` must be at least 2"));
    }
    Ok(n)
}

/// A `u64` count of at least 1 (seeds to run).
pub fn count_u64(text: &str) -> Result<u64, String> {
    count(text).map(|n| n as u64)
}

/// A `u32` count of at least 1 (a snap length in bytes).
pub fn count_u32(text: &str) -> Result<u32, String> {
    u32::try_from(count(text)?).map_err(|_| format!("`{text}` is too large"))
}

/// A count of at least 1 (window sizes, strides, states).
pub fn count(text: &str) -> Result<usize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number ≥ 1"))?;
    if n == 0 {
        return Err("0 is not allowed here; give a whole number ≥ 1".into());
    }
    Ok(n)
}

/// A duration (`humantime`: `30s`, `5m`) longer than zero.
pub fn duration(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| format!("`{text}`: {e}"))?;
    if d.is_zero() {
        return Err("a zero duration is not allowed here".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_and_out_of_range_are_refused() {
        for bad in ["nan", "NaN", "inf", "-inf", "infinity", "1e999", "x", ""] {
            assert!(finite(bad).is_err(), "{bad}");
        }
        assert_eq!(finite("-3.5"), Ok(-3.5));
        assert!(non_negative("-0.1").is_err());
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(positive("0").is_err());
        assert!(fraction("1.01").is_err());
        assert_eq!(fraction("0.01"), Ok(0.01));
        assert!(count("0").is_err());
        assert!(count("-1").is_err());
        assert_eq!(count("19"), Ok(19));
        assert!(duration("0s").is_err());
        assert!(below_one("1").is_err());
        assert_eq!(below_one("0"), Ok(0.0));
        assert!(at_least_two("1").is_err());
        assert_eq!(count_u32("256"), Ok(256));
        assert!(count_u32("0").is_err() && count_u32("4294967296").is_err());
        assert_eq!(duration("2s"), Ok(std::time::Duration::from_secs(2)));
    }
}
