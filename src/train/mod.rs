//! What every training example shares: one training loop ([`fit`]) with progress, a
//! metrics CSV, NaN checks, evaluation in eval mode, checkpoints and resume, and the
//! final summary; the shared flags ([`CommonArgs`]); choosing an optimizer by name;
//! printing that survives a closed pipe; the thread pool.
//!
//! An example describes its problem as a [`Task`] (how to run one step's forward pass,
//! how to evaluate) and hands it to [`fit`] with the model, optimizer and schedule.

mod args;
mod error;
mod fit;
mod metrics_log;
mod optimizer_choice;
mod output;
mod progress;
mod schedule_flag;
mod settings;
mod task;

pub use args::{parse_with_defaults, CommonArgs};
pub use error::TrainError;
pub use fit::{
    describe, fit, is_share, show, EpochRecord, RunSummary, SwitchWarning, TrainConfig, EPOCH_KEY,
};
pub use metrics_log::MetricsLog;
pub use optimizer_choice::{OptimizerKind, OptimizerSettings};
pub use output::{print_line, run_in_pool, thread_pool, warn};
pub use progress::EpochProgress;
pub use schedule_flag::ScheduleFlag;
pub use settings::{RunSettings, SETTINGS_PREFIX};
pub use task::{epoch_order, loss_and_perplexity, perplexity_status, Better, StepOutput, Task};

use crate::tensor::Tensor;

/// Number of rows whose arg-max over the last dim equals the label.
///
/// # Panics
/// When `logits` is not `[N, C]` with `N == labels.len()`.
pub fn count_correct(logits: &Tensor, labels: &[usize]) -> usize {
    assert!(
        logits.rank() == 2 && logits.shape()[0] == labels.len(),
        "count_correct: logits {:?} for {} labels",
        logits.shape(),
        labels.len()
    );
    logits
        .argmax_dim(1)
        .iter()
        .zip(labels)
        .filter(|(p, y)| p == y)
        .count()
}
