//! This process's memory, as the benchmarks report it (Linux `/proc/self`). When the whole
//! system runs in the process (`start`), these are the system's figures.

/// A field of `/proc/self/status` (`VmRSS`, `VmHWM`), in MiB; NaN where it cannot be read.
pub fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resident memory now, in MiB.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS")
}

/// Peak resident memory since start or the last [`reset_peak_rss`], in MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM")
}

/// Resets the peak to the current resident memory (Linux 4.0+), so a run reports its own.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read_and_the_peak_is_at_least_the_current() {
        let (rss, peak) = (rss_mib(), peak_rss_mib());
        assert!(rss > 0.0 && peak >= rss, "rss {rss}, peak {peak}");
        assert!(status_mib("NoSuchField").is_nan());
    }
}
