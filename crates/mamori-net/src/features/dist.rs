//! Streaming summaries of a distribution (count, mean, std, min, max, quantiles) in constant memory.
//!
//! A flood puts millions of packets in one window, so values are not kept: quantiles come from a
//! log-scale histogram with 8 buckets per octave (a quantile is within ~9 % of the exact value),
//! which is plenty to tell a 60-byte SYN flood from 1,400-byte video frames.

/// Buckets per doubling of the value.
const PER_OCTAVE: usize = 8;
/// Values below this land in the first bucket (1 ns for times in seconds, sub-byte for sizes).
const FLOOR: f64 = 1e-9;
/// Octaves covered above `FLOOR` (1e-9 · 2^48 ≈ 2.8e5: past any packet size or window length).
const OCTAVES: usize = 48;
const BUCKETS: usize = PER_OCTAVE * OCTAVES + 1;

/// Running summary of non-negative values.
#[derive(Debug, Clone)]
pub struct Dist {
    count: u64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
    /// Allocated on first use and then reused across `reset`s.
    buckets: Vec<u32>,
}

impl Default for Dist {
    fn default() -> Self {
        Dist {
            count: 0,
            sum: 0.0,
            sum_sq: 0.0,
            min: f64::INFINITY,
            max: 0.0,
            buckets: Vec::new(),
        }
    }
}

/// Names of the statistics [`Dist::write_stats`] appends, in order.
pub const STAT_NAMES: [&str; 6] = ["mean", "std", "min", "max", "p50", "p90"];

impl Dist {
    /// Adds one value (negative values count as 0).
    #[inline]
    pub fn add(&mut self, value: f64) {
        let v = if value.is_finite() && value > 0.0 {
            value
        } else {
            0.0
        };
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS];
        }
        self.buckets[bucket_of(v)] += 1;
    }

    /// Forgets every value but keeps the histogram's allocation.
    pub fn reset(&mut self) {
        self.count = 0;
        self.sum = 0.0;
        self.sum_sq = 0.0;
        self.min = f64::INFINITY;
        self.max = 0.0;
        self.buckets.iter_mut().for_each(|b| *b = 0);
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// Population standard deviation (0 when fewer than two values).
    pub fn std(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let n = self.count as f64;
        let mean = self.sum / n;
        (self.sum_sq / n - mean * mean).max(0.0).sqrt()
    }

    /// Smallest value (0 when empty).
    pub fn min(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.min
        }
    }

    /// Largest value (0 when empty).
    pub fn max(&self) -> f64 {
        self.max
    }

    /// The `q` quantile (0..=1) from the histogram, clamped to the exact min and max.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).floor() as u64;
        if rank == 0 {
            return self.min;
        }
        if rank + 1 == self.count {
            return self.max;
        }
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen > rank {
                return bucket_value(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Appends mean, std, min, max, p50 and p90 (the order of [`STAT_NAMES`]).
    pub fn write_stats(&self, out: &mut Vec<f64>) {
        out.extend_from_slice(&[
            self.mean(),
            self.std(),
            self.min(),
            self.max(),
            self.quantile(0.5),
            self.quantile(0.9),
        ]);
    }
}

#[inline]
fn bucket_of(v: f64) -> usize {
    if v <= FLOOR {
        return 0;
    }
    let b = ((v / FLOOR).log2() * PER_OCTAVE as f64) as usize + 1;
    b.min(BUCKETS - 1)
}

/// Geometric middle of bucket `i`.
fn bucket_value(i: usize) -> f64 {
    if i == 0 {
        return 0.0;
    }
    FLOOR * 2f64.powf((i as f64 - 0.5) / PER_OCTAVE as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_exact() {
        let mut d = Dist::default();
        for v in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            d.add(v);
        }
        assert_eq!(d.count(), 8);
        assert!((d.mean() - 5.0).abs() < 1e-12);
        assert!((d.std() - 2.0).abs() < 1e-12);
        assert_eq!(d.min(), 2.0);
        assert_eq!(d.max(), 9.0);
    }

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut d = Dist::default();
        for v in 1..=1000 {
            d.add(v as f64);
        }
        let p50 = d.quantile(0.5);
        let p90 = d.quantile(0.9);
        assert!((p50 / 500.0 - 1.0).abs() < 0.09, "p50 {p50}");
        assert!((p90 / 900.0 - 1.0).abs() < 0.09, "p90 {p90}");
        assert_eq!(d.quantile(0.0), 1.0);
        assert_eq!(d.quantile(1.0), 1000.0);
    }

    #[test]
    fn empty_and_reset() {
        let mut d = Dist::default();
        let mut out = Vec::new();
        d.write_stats(&mut out);
        assert_eq!(out, vec![0.0; 6]);
        d.add(1e-6);
        d.add(f64::NAN);
        assert_eq!(d.count(), 2);
        assert_eq!(d.min(), 0.0);
        d.reset();
        assert_eq!(d.count(), 0);
        assert_eq!(d.quantile(0.5), 0.0);
    }
}
