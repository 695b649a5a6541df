//! The [`Optimizer`] trait shared by every optimizer, and its error type.
//!
//! An optimizer is built from named parameters in one or more
//! [`ParamGroup`](crate::ParamGroup)s, like PyTorch's
//! `Optimizer([{"params": ..., "weight_decay": 0.0}, ...])`, and sees all of them and
//! their gradients at once in [`Optimizer::step`], so whole-model checks (non-finite
//! gradients) and diagnostics (AGD's SGD-mode fraction) fit naturally.

use std::fmt;

use agdlab_autograd::{Gradients, Param};

use crate::diagnostics::Diagnostics;
use crate::state::OptimizerState;

/// What can go wrong building an optimizer, in [`Optimizer::step`] or in
/// [`Optimizer::load_state`].
#[derive(Clone, Debug, PartialEq)]
pub enum OptimError {
    /// A hyper-parameter is out of its range (a negative δ, β1 ≥ 1, ...). `name` is the
    /// hyper-parameter's name as a parameter group spells it (`"delta"`, `"beta1"`).
    InvalidHyperparameter {
        optimizer: &'static str,
        name: String,
        value: f64,
        expected: String,
    },
    /// A parameter group sets a hyper-parameter this optimizer does not have.
    UnknownHyperparameter {
        optimizer: &'static str,
        name: String,
        known: Vec<&'static str>,
    },
    /// The same parameter (or parameter name) appears twice among the groups.
    DuplicateParameter { name: String },
    /// A gradient holds NaN or ±Inf. No non-finite value was written, but the step may
    /// have been applied in part (see [`Optimizer::step`]).
    NonFiniteGradient { param: String },
    /// The state was written by another optimizer (for example `"Adam"` into `"AGD"`).
    KindMismatch { expected: String, found: String },
    /// An entry of the state names no parameter (or no buffer) of this optimizer.
    UnknownEntry { key: String },
    /// A parameter of this optimizer (or one of its buffers) is absent from the state.
    MissingEntry { param: String, entry: String },
    /// A saved buffer's shape differs from its parameter's.
    ShapeMismatch {
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A saved value is unusable (a negative or fractional step count, a NaN moment,
    /// a parameter saved in another group).
    InvalidValue { key: String, reason: String },
}

impl fmt::Display for OptimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimError::InvalidHyperparameter {
                optimizer,
                name,
                value,
                expected,
            } => {
                write!(
                    f,
                    "{optimizer}: invalid {name} {value}: expected {expected}"
                )
            }
            OptimError::UnknownHyperparameter {
                optimizer,
                name,
                known,
            } => {
                write!(
                    f,
                    "{optimizer} has no hyper-parameter `{name}` (it has: {})",
                    known.join(", ")
                )
            }
            OptimError::DuplicateParameter { name } => {
                write!(
                    f,
                    "parameter `{name}` appears twice among the optimizer's parameter groups"
                )
            }
            OptimError::NonFiniteGradient { param } => {
                write!(
                    f,
                    "gradient of parameter `{param}` contains NaN or Inf; the step stopped there"
                )
            }
            OptimError::KindMismatch { expected, found } => {
                write!(
                    f,
                    "optimizer state was saved by `{found}`, cannot load it into `{expected}`"
                )
            }
            OptimError::UnknownEntry { key } => {
                write!(
                    f,
                    "optimizer state entry `{key}` matches no parameter of this optimizer"
                )
            }
            OptimError::MissingEntry { param, entry } => {
                write!(
                    f,
                    "optimizer state has no `{entry}` for parameter `{param}`"
                )
            }
            OptimError::ShapeMismatch {
                key,
                expected,
                found,
            } => write!(
                f,
                "optimizer state entry `{key}` has shape {found:?}, parameter has shape {expected:?}"
            ),
            OptimError::InvalidValue { key, reason } => {
                write!(f, "optimizer state entry `{key}` is invalid: {reason}")
            }
        }
    }
}

impl std::error::Error for OptimError {}

/// An optimizer over a fixed list of named parameters, in one or more groups.
pub trait Optimizer {
    /// Update every parameter that has a gradient in `grads`, in place.
    ///
    /// Parameters without a gradient are skipped and their per-parameter step count is
    /// not advanced (as in PyTorch, where `p.grad is None` skips `p`). A row-sparse
    /// gradient (an embedding's) is handled as its group's
    /// [`SparseMode`](crate::SparseMode) says: by default as the dense gradient with zero
    /// rows, so every row's state advances (the paper's semantics).
    ///
    /// # Errors
    /// [`OptimError::NonFiniteGradient`] naming the first parameter (in construction
    /// order) whose gradient holds NaN or Inf. The check is fused into the update (each
    /// block of 128 gradient elements is checked just before it is used, so a step reads
    /// every gradient once, as PyTorch's fused optimizers do): no non-finite value ever
    /// reaches a parameter or the optimizer's state, but the parameters before the bad
    /// one, and the blocks of the bad one that were finite, have taken the step. Stop there (the training loop
    /// does), or call [`check_gradients`](crate::check_gradients) before `step` to skip
    /// such a step with nothing changed.
    ///
    /// # Panics
    /// When a gradient's shape differs from its parameter's (a programming error;
    /// [`Gradients::insert`] already enforces shapes).
    fn step(&mut self, grads: &Gradients) -> Result<(), OptimError>;

    /// A short name such as `"AGD"`; also the `kind` of [`Optimizer::state`].
    fn name(&self) -> &'static str;

    /// The parameters of every group, in construction order.
    fn params(&self) -> &[(String, Param)];

    /// The number of parameter groups.
    fn num_groups(&self) -> usize;

    /// The current learning rate of `group`.
    ///
    /// # Panics
    /// When there is no such group.
    fn group_lr(&self, group: usize) -> f32;

    /// The current learning rate of the first group (the only one, usually).
    fn lr(&self) -> f32 {
        self.group_lr(0)
    }

    /// Set every group's learning rate to its initial learning rate times `factor`: how
    /// a schedule scales every group (PyTorch's `LambdaLR`). A factor of 0 is allowed
    /// (the end of a cosine schedule).
    ///
    /// # Panics
    /// When `factor` is negative or not finite.
    fn set_lr_factor(&mut self, factor: f64);

    /// A snapshot of the state: buffers `"<param>.<buffer>"`, scalars `"<param>.step"`
    /// and `"<param>.group"` for every parameter, and `"group.<g>.<hyper-parameter>"`
    /// (`lr`, `initial_lr` and the rest) for every group.
    fn state(&self) -> OptimizerState;

    /// Restore a snapshot taken by [`Optimizer::state`] of the same kind of optimizer
    /// over parameters with the same names, shapes and groups. Restores each group's
    /// current learning rate; the other hyper-parameters, and the initial learning rates
    /// schedules scale, come from this optimizer's configuration.
    ///
    /// # Errors
    /// A different `kind`, an entry naming an unknown parameter or buffer, a parameter
    /// whose step count or buffers are missing, a buffer of the wrong shape or holding
    /// NaN/Inf, a negative second moment, a step count that is not an integer in
    /// `0..=2^53`, or a parameter saved in another group. On error nothing is modified.
    fn load_state(&mut self, state: &OptimizerState) -> Result<(), OptimError>;

    /// What the last step measured, per parameter and overall: AGD's SGD-mode fraction,
    /// for example. Optimizers without diagnostics report nothing. Comparison tools read
    /// every optimizer this way.
    fn diagnostics(&self) -> Diagnostics;
}
