//! What one optimizer does to one parameter ([`UpdateRule`]), and the one [`Optimizer`]
//! built on top of any such rule ([`PerParameter`]).
//!
//! The split follows burn's `SimpleOptimizer` and PyTorch's per-parameter `state`: a rule
//! holds the hyper-parameters and the math (bias corrections from the step count, then one
//! fused element loop over the parameter, its gradient and its state buffers);
//! [`PerParameter`] holds the named parameters and their states and does everything else
//! once for every optimizer: the non-finite gradient check, skipping parameters without a
//! gradient, creating state at a parameter's first step, counting steps, saving and
//! loading state by parameter name, and AGD's SGD-mode diagnostic.

use agdlab_autograd::{Gradients, Param};

use crate::agd::SgdModeReport;
use crate::kernel::{self, ParamState};
use crate::optimizer::{OptimError, Optimizer};
use crate::state::OptimizerState;

/// The per-parameter math of an optimizer: how one parameter tensor and its state buffers
/// change given its gradient. Wrap a rule in [`PerParameter`] to get an [`Optimizer`].
///
/// See the crate documentation ("Adding an optimizer") for a complete example.
pub trait UpdateRule: Send + Sync {
    /// A short name such as `"AGD"`; also the `kind` of the saved state, so two rules whose
    /// states differ in meaning (Adam and AdamW) must have different names.
    fn name(&self) -> &'static str;

    /// The current learning rate.
    fn lr(&self) -> f32;

    /// Set the learning rate used by the following steps.
    fn set_lr(&mut self, lr: f32);

    /// The names of the state buffers, in the order [`UpdateRule::update`] receives them
    /// (for example `["exp_avg", "exp_avg_sq"]`). Each buffer has its parameter's length
    /// and starts at zero. Saved state is keyed `"<param>.<buffer>"`.
    fn buffers(&self) -> &'static [&'static str] {
        &[]
    }

    /// Called once, at a parameter's first step (not after loading a state with a
    /// positive step count), before [`UpdateRule::update`], with the parameter's value and
    /// its freshly zeroed buffers. The default does nothing.
    fn init(&self, theta: &[f32], bufs: &mut [Vec<f32>]) {
        let _ = (theta, bufs);
    }

    /// Update one parameter in place. `step` is this parameter's step count including the
    /// current step (1 at its first step); `bufs` holds the buffers named by
    /// [`UpdateRule::buffers`], in that order. `grad` has `theta`'s length.
    ///
    /// Returns a count of coordinates, reported by [`Optimizer::sgd_mode`] as a fraction
    /// when [`UpdateRule::reports_sgd_mode`] is true (AGD's SGD-mode coordinates); other
    /// rules return 0.
    fn update(&self, step: u64, theta: &mut [f32], grad: &[f32], bufs: &mut [Vec<f32>]) -> usize;

    /// Whether the counts returned by [`UpdateRule::update`] are SGD-mode coordinates, to
    /// be reported by [`Optimizer::sgd_mode`]. Default `false`.
    fn reports_sgd_mode(&self) -> bool {
        false
    }
}

/// An [`Optimizer`] that applies an [`UpdateRule`] to each named parameter separately,
/// keeping one state (step count and buffers) per parameter.
///
/// Every optimizer of this crate is one: [`Agd`](crate::Agd) is
/// `PerParameter<AgdRule>`, [`Adam`](crate::Adam) is `PerParameter<AdamRule>`, and so on.
pub struct PerParameter<R: UpdateRule> {
    params: Vec<(String, Param)>,
    /// `None` until the parameter's first step.
    states: Vec<Option<ParamState>>,
    /// (count returned by the rule, numel) of each parameter updated in the last step.
    last_counts: Vec<Option<(usize, usize)>>,
    rule: R,
}

impl<R: UpdateRule> PerParameter<R> {
    /// An optimizer over `params` (in this order) that updates each with `rule`.
    ///
    /// # Panics
    /// When the rule names more than four buffers (the most a [`Chunk`](crate::Chunk)
    /// carries).
    pub fn with_rule(params: Vec<(String, Param)>, rule: R) -> PerParameter<R> {
        assert!(rule.buffers().len() <= 4, "{}: at most 4 state buffers per parameter", rule.name());
        let n = params.len();
        PerParameter { params, states: vec![None; n], last_counts: vec![None; n], rule }
    }

    /// The update rule (and through it the hyper-parameters).
    pub fn rule(&self) -> &R {
        &self.rule
    }

    /// The fraction of coordinates counted by the rule in the last step, per parameter
    /// updated in that step and overall (weighted by element count; 0 before any step).
    pub(crate) fn count_report(&self) -> SgdModeReport {
        let mut per_param = Vec::new();
        let (mut count, mut total) = (0usize, 0usize);
        for ((name, _), last) in self.params.iter().zip(&self.last_counts) {
            if let Some((c, n)) = *last {
                per_param.push((name.clone(), if n == 0 { 0.0 } else { c as f64 / n as f64 }));
                count += c;
                total += n;
            }
        }
        let overall = if total == 0 { 0.0 } else { count as f64 / total as f64 };
        SgdModeReport { per_param, overall }
    }
}

impl<R: UpdateRule> Optimizer for PerParameter<R> {
    fn step(&mut self, grads: &Gradients) -> Result<(), OptimError> {
        kernel::check_finite(&self.params, grads)?;
        let rule = &self.rule;
        let n_bufs = rule.buffers().len();
        for (((_, p), slot), last) in
            self.params.iter().zip(self.states.iter_mut()).zip(self.last_counts.iter_mut())
        {
            *last = None;
            let Some(g) = kernel::grad_slice(grads, p) else {
                continue;
            };
            let fresh = slot.is_none();
            let st = slot.get_or_insert_with(|| ParamState::zeros(n_bufs, g.len()));
            st.step += 1;
            let count = p.update(|theta| {
                if fresh {
                    rule.init(theta, &mut st.bufs);
                }
                rule.update(st.step, theta, g, &mut st.bufs)
            });
            *last = Some((count, g.len()));
        }
        Ok(())
    }

    fn lr(&self) -> f32 {
        self.rule.lr()
    }

    fn set_lr(&mut self, lr: f32) {
        self.rule.set_lr(lr);
    }

    fn state(&self) -> OptimizerState {
        kernel::save_state(self.name(), self.lr(), &self.params, &self.states, self.rule.buffers())
    }

    fn load_state(&mut self, s: &OptimizerState) -> Result<(), OptimError> {
        let (states, lr) = kernel::load_state(self.name(), &self.params, self.rule.buffers(), s)?;
        self.states = states;
        if let Some(lr) = lr {
            self.rule.set_lr(lr);
        }
        self.last_counts.iter_mut().for_each(|l| *l = None);
        Ok(())
    }

    fn name(&self) -> &'static str {
        self.rule.name()
    }

    fn params(&self) -> &[(String, Param)] {
        &self.params
    }

    fn sgd_mode(&self) -> Option<SgdModeReport> {
        self.rule.reports_sgd_mode().then(|| self.count_report())
    }
}
