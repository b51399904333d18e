//! The async runtime the server runs on, built in one place: the binary and the load
//! generators that stand in for it (`benches/`) take it from here, so what the benches
//! measure is the runtime operators run, not tokio's defaults.

/// The blocking pool's default bound (`--max-blocking-threads`,
/// `CHAT_MAX_BLOCKING_THREADS`): twice what SQLite's reads can use at once (their 4
/// readers, each read in place lending its worker to a blocking thread, and as many
/// more waiting for a reader).
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 16;

/// A multi-threaded runtime builder with every driver on and the blocking pool bounded
/// to `max_blocking_threads` (at least 1). Workers default to one per core; callers may
/// still name or count them before `build`.
///
/// tokio's default lets the blocking pool grow to 512 threads, and it starts one
/// whenever none is idle: every SQLite read that runs in place hands its worker to
/// another thread, and on a loaded machine the threads it starts are slow to become
/// idle, so more are started (a soak ended at 67 threads, from 31, while a build ran
/// beside it; 10,000 WebSockets opening at once left 15-20). Each thread keeps its
/// stack and, with glibc, may keep a malloc arena's pages after the burst. Past the
/// bound, blocking work waits for a thread rather than starting one.
///
/// ```
/// let runtime = chat_server::runtime::builder(chat_server::runtime::DEFAULT_MAX_BLOCKING_THREADS)
///     .build()
///     .unwrap();
/// assert_eq!(runtime.block_on(async { 1 + 1 }), 2);
/// ```
pub fn builder(max_blocking_threads: usize) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .max_blocking_threads(max_blocking_threads.max(1));
    builder
}
