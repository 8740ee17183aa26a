//! Helpers for the tests that SIGKILL a child process at random moments.

/// The seed of a crash test's random kill times: `$WA_CRASH_SEED`, or `default`. Tests print
/// it on failure so a run can be replayed.
pub fn seed(default: u64) -> u64 {
    std::env::var("WA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A multi-threaded tokio runtime for the parent side of a crash test (2 workers, like CI).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
