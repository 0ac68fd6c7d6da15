//! What the benches share: percentiles, milliseconds and the machine's load.

use std::time::Duration;

/// The `p` quantile (0–1) of `sorted`, by the nearest-rank method.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The 1-minute load average (Linux), to read the timings by: the machine may be shared.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}
