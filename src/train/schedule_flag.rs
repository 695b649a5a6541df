//! The `--schedule` flag of the examples that offer a choice of learning-rate schedule.

use crate::optim::{Constant, CosineAnnealing, LrSchedule};

/// How the learning rate moves over a run's steps.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleFlag {
    /// From the peak learning rate down to 0 along a half cosine.
    Cosine,
    /// The peak learning rate throughout.
    Constant,
}

impl ScheduleFlag {
    /// The schedule over a run of `total_steps` steps (all epochs).
    pub fn build(self, total_steps: usize) -> Box<dyn LrSchedule> {
        match self {
            ScheduleFlag::Cosine => Box::new(CosineAnnealing {
                t_max: total_steps.max(1),
                min_factor: 0.0,
            }),
            ScheduleFlag::Constant => Box::new(Constant),
        }
    }
}
