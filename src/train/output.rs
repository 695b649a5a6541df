//! Printing that survives a closed pipe, and the thread pool an example asks for.

use std::fmt;
use std::io::{self, Write};

use super::error::TrainError;

/// Print one line to stdout. When stdout is a closed pipe (`example | head -1`), stop
/// the program quietly, as Unix tools do, instead of panicking as `println!` would:
/// checkpoints are written atomically, so stopping here never leaves a broken file.
pub fn print_line(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Any other failure to print (a full disk behind a redirect) is not worth dying for.
    }
}

/// Print a warning line to stderr, ignoring a closed stderr.
pub fn warn(args: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "warning: {args}");
}

/// `println!` for training programs: see [`print_line`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::train::print_line(format_args!($($arg)*))
    };
}

/// A rayon pool of `requested` threads (all cores when `None`), and the count used.
///
/// # Errors
/// `--threads 0`, or a pool the system cannot create (the message names the flag).
/// More threads than cores only add overhead (1000 ran 29 times slower than 100 on two
/// cores), so a larger request is capped at the number of cores, with a warning.
pub fn thread_pool(requested: Option<usize>) -> Result<(rayon::ThreadPool, usize), TrainError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match requested {
        Some(0) => return Err(TrainError::Settings("--threads must be at least 1".into())),
        Some(n) if n > cores => {
            warn(format_args!(
                "--threads {n}: this machine has {cores} core(s); using {cores}"
            ));
            cores
        }
        Some(n) => n,
        None => cores,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| {
            TrainError::Settings(format!(
                "--threads {threads}: cannot start the threads: {e}"
            ))
        })?;
    Ok((pool, threads))
}

/// The body of every training example's `main`: run `run(threads)` inside a pool of
/// `requested` threads (see [`thread_pool`]); on an error, print it to stderr and exit
/// with status 1.
pub fn run_in_pool<F>(requested: Option<usize>, run: F)
where
    F: FnOnce(usize) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let result = match thread_pool(requested) {
        Ok((pool, threads)) => pool.install(|| run(threads)),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
