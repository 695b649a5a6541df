//! The progress bar of an epoch: drawn on stderr when it is a terminal, silent otherwise
//! (logs and pipes get the per-epoch lines only).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One epoch's progress: steps done, elapsed time and a status (the running loss).
pub struct EpochProgress {
    bar: ProgressBar,
}

impl EpochProgress {
    pub fn new(label: String, steps: usize) -> EpochProgress {
        let bar = ProgressBar::with_draw_target(
            Some(steps as u64),
            ProgressDrawTarget::stderr_with_hz(10),
        );
        let style =
            ProgressStyle::with_template("{prefix} [{bar:24}] {pos}/{len} {elapsed_precise} {msg}")
                .expect("a valid template")
                .progress_chars("#>.");
        bar.set_style(style);
        bar.set_prefix(label);
        bar.enable_steady_tick(Duration::from_millis(500));
        EpochProgress { bar }
    }

    /// `done` steps finished, with a status text (computed only when drawn, at most ten
    /// times a second).
    pub fn update(&self, done: usize, status: impl FnOnce() -> String) {
        self.bar.set_position(done as u64);
        if !self.bar.is_hidden() {
            self.bar.set_message(status());
        }
    }

    /// Remove the bar (the epoch's summary line replaces it).
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
