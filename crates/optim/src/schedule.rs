//! Learning-rate schedules: a factor for every step (or epoch) index, applied to every
//! parameter group's initial learning rate.
//!
//! A schedule is a pure function `factor(t)`; call [`LrSchedule::apply`] (or
//! `opt.set_lr_factor(s.factor(t))`) before step `t`, and each group's learning rate
//! becomes its initial learning rate times the factor, as PyTorch's `LambdaLR` does. Closed
//! forms, so resuming at any `t` gives the same value as counting up to it (unlike
//! PyTorch's chained, recursive forms, which agree with these closed forms when stepped
//! from 0).

use crate::optimizer::Optimizer;

/// A learning-rate factor (in f64, as PyTorch computes learning rates) for every step (or epoch) index `t = 0, 1, 2, ...`.
pub trait LrSchedule {
    /// The factor by which every group's initial learning rate is scaled at index `t`.
    fn factor(&self, t: usize) -> f64;

    /// Set `opt`'s group learning rates for index `t`.
    fn apply(&self, opt: &mut dyn Optimizer, t: usize) {
        opt.set_lr_factor(self.factor(t));
    }
}

/// The initial learning rates throughout (factor 1).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Constant;

impl LrSchedule for Constant {
    fn factor(&self, _t: usize) -> f64 {
        1.0
    }
}

/// `factor_t = gamma^⌊t / step_size⌋`. PyTorch equivalent: `StepLR`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    pub step_size: usize,
    pub gamma: f32,
}

impl LrSchedule for StepDecay {
    /// # Panics
    /// When `step_size` is 0.
    fn factor(&self, t: usize) -> f64 {
        assert!(self.step_size > 0, "StepDecay: step_size must be positive");
        let k = (t / self.step_size) as i32;
        (self.gamma as f64).powi(k)
    }
}

/// `factor_t = min + (1 - min)·(1 + cos(π·t/t_max))/2`: from 1 down to `min_factor` along
/// a half cosine. The closed form of PyTorch's `CosineAnnealingLR` with
/// `eta_min = min_factor·base_lr` (Loshchilov & Hutter, "SGDR", ICLR 2017, without
/// restarts). Past `t_max` the cosine continues (rising again), as PyTorch's does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealing {
    pub t_max: usize,
    pub min_factor: f32,
}

impl LrSchedule for CosineAnnealing {
    /// # Panics
    /// When `t_max` is 0.
    fn factor(&self, t: usize) -> f64 {
        assert!(self.t_max > 0, "CosineAnnealing: t_max must be positive");
        let min = self.min_factor as f64;
        let cos = (std::f64::consts::PI * t as f64 / self.t_max as f64).cos();
        min + (1.0 - min) * (1.0 + cos) / 2.0
    }
}

/// Linear warm-up wrapping another schedule:
///
/// ```text
/// t <  W:  factor_t = inner(0) · (start_factor + (1 - start_factor)·t/W)
/// t >= W:  factor_t = inner(t - W)
/// ```
///
/// PyTorch equivalent: `SequentialLR([LinearLR(start_factor, total_iters=W), inner],
/// milestones=[W])`.
pub struct LinearWarmup {
    pub warmup_steps: usize,
    pub start_factor: f32,
    pub inner: Box<dyn LrSchedule + Send + Sync>,
}

impl LinearWarmup {
    pub fn new(
        warmup_steps: usize,
        start_factor: f32,
        inner: impl LrSchedule + Send + Sync + 'static,
    ) -> Self {
        LinearWarmup {
            warmup_steps,
            start_factor,
            inner: Box::new(inner),
        }
    }
}

impl LrSchedule for LinearWarmup {
    fn factor(&self, t: usize) -> f64 {
        if t < self.warmup_steps {
            let s = self.start_factor as f64;
            let f = s + (1.0 - s) * t as f64 / self.warmup_steps as f64;
            self.inner.factor(0) * f
        } else {
            self.inner.factor(t - self.warmup_steps)
        }
    }
}
