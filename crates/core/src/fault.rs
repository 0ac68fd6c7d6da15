//! Crash points for recovery tests: named places between the steps of a queue handler where
//! a test can make the process die as `kill -9` would, to check that redelivery repairs
//! everything. Inert unless the environment variable [`CRASH_AT_ENV`] names the point; it is
//! read once per process.

use std::sync::OnceLock;

/// `RAG_TEST_CRASH_AT=embedder.after_vector_upsert` aborts the process at that point.
pub const CRASH_AT_ENV: &str = "RAG_TEST_CRASH_AT";

/// Aborts the process (no unwinding, no destructors, no flushes: a crash) when
/// [`CRASH_AT_ENV`] names `point`.
pub fn crash_point(point: &str) {
    static CRASH_AT: OnceLock<Option<String>> = OnceLock::new();
    let armed = CRASH_AT.get_or_init(|| std::env::var(CRASH_AT_ENV).ok().filter(|v| !v.is_empty()));
    if armed.as_deref() == Some(point) {
        eprintln!("{CRASH_AT_ENV}={point}: aborting the process");
        std::process::abort();
    }
}
