//! Learning-rate schedules: the learning rate as a function of the step (or epoch) index.
//!
//! A schedule is a pure function `lr_at(t)`; call [`LrSchedule::apply`] (or
//! `opt.set_lr(s.lr_at(t))`) before step `t`. Closed forms, so resuming at any `t` gives
//! the same value as counting up to it (unlike PyTorch's chained, recursive forms, which
//! agree with these closed forms when stepped from 0).

use crate::optimizer::Optimizer;

/// A learning rate for every step (or epoch) index `t = 0, 1, 2, ...`.
pub trait LrSchedule {
    /// The learning rate to use at index `t`.
    fn lr_at(&self, t: usize) -> f32;

    /// Set `opt`'s learning rate to `self.lr_at(t)`.
    fn apply(&self, opt: &mut dyn Optimizer, t: usize) {
        opt.set_lr(self.lr_at(t));
    }
}

/// The same learning rate throughout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant {
    pub lr: f32,
}

impl LrSchedule for Constant {
    fn lr_at(&self, _t: usize) -> f32 {
        self.lr
    }
}

/// `lr_t = base_lr · gamma^⌊t / step_size⌋`. PyTorch equivalent: `StepLR`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    pub base_lr: f32,
    pub step_size: usize,
    pub gamma: f32,
}

impl LrSchedule for StepDecay {
    /// # Panics
    /// When `step_size` is 0.
    fn lr_at(&self, t: usize) -> f32 {
        assert!(self.step_size > 0, "StepDecay: step_size must be positive");
        let k = (t / self.step_size) as i32;
        (self.base_lr as f64 * (self.gamma as f64).powi(k)) as f32
    }
}

/// `lr_t = eta_min + (base_lr - eta_min)·(1 + cos(π·t/t_max))/2`, the closed form of
/// PyTorch's `CosineAnnealingLR` (Loshchilov & Hutter, "SGDR", ICLR 2017, without
/// restarts). Past `t_max` the cosine continues (rising again), as PyTorch's does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealing {
    pub base_lr: f32,
    pub t_max: usize,
    pub eta_min: f32,
}

impl LrSchedule for CosineAnnealing {
    /// # Panics
    /// When `t_max` is 0.
    fn lr_at(&self, t: usize) -> f32 {
        assert!(self.t_max > 0, "CosineAnnealing: t_max must be positive");
        let (base, min) = (self.base_lr as f64, self.eta_min as f64);
        let cos = (std::f64::consts::PI * t as f64 / self.t_max as f64).cos();
        (min + (base - min) * (1.0 + cos) / 2.0) as f32
    }
}

/// Linear warm-up wrapping another schedule:
///
/// ```text
/// t <  W:  lr_t = inner(0) · (start_factor + (1 - start_factor)·t/W)
/// t >= W:  lr_t = inner(t - W)
/// ```
///
/// PyTorch equivalent: `SequentialLR([LinearLR(start_factor, total_iters=W), inner],
/// milestones=[W])`.
pub struct LinearWarmup {
    pub warmup_steps: usize,
    pub start_factor: f32,
    pub inner: Box<dyn LrSchedule>,
}

impl LinearWarmup {
    pub fn new(warmup_steps: usize, start_factor: f32, inner: impl LrSchedule + 'static) -> Self {
        LinearWarmup { warmup_steps, start_factor, inner: Box::new(inner) }
    }
}

impl LrSchedule for LinearWarmup {
    fn lr_at(&self, t: usize) -> f32 {
        if t < self.warmup_steps {
            let s = self.start_factor as f64;
            let f = s + (1.0 - s) * t as f64 / self.warmup_steps as f64;
            (self.inner.lr_at(0) as f64 * f) as f32
        } else {
            self.inner.lr_at(t - self.warmup_steps)
        }
    }
}
