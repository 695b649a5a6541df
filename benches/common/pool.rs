//! The thread pool a bench times in, set up as a training example's.

/// Build rayon's global pool with `RAYON_NUM_THREADS` threads (when it is not set:
/// `default_threads`, or rayon's own default, one per core), the bench's own thread
/// among them, and return how many threads it has.
///
/// A training example runs inside its pool (`run_in_pool`), so its parallel operations
/// start on a pool thread and the others join in. A bench timing from a thread outside
/// the pool would instead hand every parallel operation over to the pool and sleep until
/// it is done: one more thread than cores, and a wake-up per operation. PyTorch's
/// OpenMP master thread likewise works inside its team. Timed from outside, the PTB
/// LSTM step at 2 threads took 102-113 ms against 89 ms from inside.
///
/// If the global pool already exists (another group of the same bench set it up
/// first), it is left as it is.
pub fn use_this_thread_in_the_pool(default_threads: Option<usize>) -> usize {
    let mut builder = rayon::ThreadPoolBuilder::new().use_current_thread();
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        if let Some(threads) = default_threads {
            builder = builder.num_threads(threads);
        }
    }
    let _ = builder.build_global();
    rayon::current_num_threads()
}
