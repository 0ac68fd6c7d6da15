//! candle's thread count, worked out once per process.
//!
//! candle asks for its thread count on every matrix product: `RAYON_NUM_THREADS` when it is
//! set, otherwise the process's CPU mask and `/proc/cpuinfo`, read and parsed again each
//! time. One query's ~40 products spent ~4 ms of ~16 on that (`benches/query.rs`: p50
//! 16.4 ms with the variable unset, 12.3 ms with it set to the same 2 threads). Setting the
//! variable once, before any thread starts, turns the reading into a lookup.

/// Sets `RAYON_NUM_THREADS` to the count candle would work out (one thread per physical
/// core of the process's CPU mask) when it is unset and the calling thread is the process's
/// only one, and returns the count candle uses.
///
/// Binaries that run models call it first thing in `main`, before the tokio runtime starts
/// its threads. With other threads running (a test harness, a runtime already started) it
/// leaves the environment alone: writing it then could race a reader.
#[allow(unsafe_code)]
pub fn pin_compute_threads() -> usize {
    let threads = candle_core::utils::get_num_threads();
    if std::env::var_os("RAYON_NUM_THREADS").is_none() && is_only_thread() {
        // SAFETY: the environment is written while no other thread exists to read it.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
    threads
}

/// Whether the process has a single thread (Linux's `/proc/self/task`; elsewhere, `false`).
fn is_only_thread() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_the_environment_alone_beside_other_threads() {
        // The test harness runs tests on threads of its own: never the only thread.
        assert!(!is_only_thread());
        let before = std::env::var_os("RAYON_NUM_THREADS");
        assert!(pin_compute_threads() >= 1);
        assert_eq!(std::env::var_os("RAYON_NUM_THREADS"), before);
    }
}
