//! Latency percentiles by the nearest-rank method.
//!
//! For n samples sorted in increasing order x₁ ≤ … ≤ xₙ, the p-th percentile (0 < p ≤ 100)
//! is x_r with r = ⌈p/100 · n⌉: the smallest sample such that at least p % of the samples are
//! ≤ it. It is always one of the measured values (no interpolation), so a p99 over fewer than
//! 100 samples is simply the maximum. p = 0 is taken as the minimum (r = 1).

use std::time::Duration;

/// The p-th percentile of `samples` (any order) by nearest rank; `None` when there are no
/// samples or `p` is not within 0..=100.
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    percentile_of_sorted(&sorted, p)
}

/// As [`percentile`], for samples already sorted in increasing order.
pub fn percentile_of_sorted(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let n = sorted.len();
    // p/100 · n is at most n here; ceil, then clamp to 1..=n (rank 0 only for p = 0).
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// The usual summary of query latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencySummary {
    pub count: usize,
    pub min: Duration,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl LatencySummary {
    /// Summarises `samples`; `None` when there are none.
    pub fn from_samples(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Some(Self {
            count: sorted.len(),
            min: *sorted.first()?,
            p50: percentile_of_sorted(&sorted, 50.0)?,
            p95: percentile_of_sorted(&sorted, 95.0)?,
            p99: percentile_of_sorted(&sorted, 99.0)?,
            max: *sorted.last()?,
        })
    }
}

/// A duration in milliseconds, with sub-millisecond precision.
pub fn as_millis_f64(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_by_hand() {
        // 1..=10 ms, shuffled. Sorted: 1 2 3 4 5 6 7 8 9 10 (n = 10).
        let samples: Vec<Duration> = [7, 3, 10, 1, 9, 2, 8, 4, 6, 5].map(ms).to_vec();
        // p50: r = ⌈0.50·10⌉ = 5 → 5 ms.  p95: r = ⌈9.5⌉ = 10 → 10 ms.  p99: r = ⌈9.9⌉ = 10.
        assert_eq!(percentile(&samples, 50.0), Some(ms(5)));
        assert_eq!(percentile(&samples, 95.0), Some(ms(10)));
        assert_eq!(percentile(&samples, 99.0), Some(ms(10)));
        // p10: r = ⌈1.0⌉ = 1 → 1 ms; p11: r = ⌈1.1⌉ = 2 → 2 ms; p0 → the minimum.
        assert_eq!(percentile(&samples, 10.0), Some(ms(1)));
        assert_eq!(percentile(&samples, 11.0), Some(ms(2)));
        assert_eq!(percentile(&samples, 0.0), Some(ms(1)));
        assert_eq!(percentile(&samples, 100.0), Some(ms(10)));
    }

    #[test]
    fn hundred_samples() {
        // 1..=100 ms: p50 → r = 50 → 50 ms, p95 → 95 ms, p99 → 99 ms.
        let samples: Vec<Duration> = (1..=100).rev().map(ms).collect();
        let s = LatencySummary::from_samples(&samples).unwrap();
        assert_eq!((s.p50, s.p95, s.p99), (ms(50), ms(95), ms(99)));
        assert_eq!((s.count, s.min, s.max), (100, ms(1), ms(100)));
    }

    #[test]
    fn edge_cases() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(LatencySummary::from_samples(&[]), None);
        assert_eq!(percentile(&[ms(3)], 101.0), None);
        assert_eq!(percentile(&[ms(3)], -1.0), None);
        assert_eq!(percentile(&[ms(3)], f64::NAN), None);
        // One sample is every percentile.
        let s = LatencySummary::from_samples(&[ms(3)]).unwrap();
        assert_eq!((s.p50, s.p95, s.p99), (ms(3), ms(3), ms(3)));
        // Two samples: p50 → r = ⌈1.0⌉ = 1 → the smaller one (no interpolation).
        assert_eq!(percentile(&[ms(9), ms(1)], 50.0), Some(ms(1)));
        assert!((as_millis_f64(Duration::from_micros(1500)) - 1.5).abs() < 1e-12);
    }
}
