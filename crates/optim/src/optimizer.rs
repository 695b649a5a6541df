//! The [`Optimizer`] trait shared by every optimizer, and its error type.
//!
//! An optimizer is built from named parameters, like PyTorch's
//! `Optimizer(model.named_parameters(), ...)`, and sees all of them and their gradients at
//! once in [`Optimizer::step`], so whole-model checks (non-finite gradients) and
//! diagnostics (AGD's SGD-mode fraction) fit naturally.

use std::fmt;

use agdlab_autograd::{Gradients, Param};

use crate::agd::SgdModeReport;
use crate::state::OptimizerState;

/// What can go wrong in [`Optimizer::step`] or [`Optimizer::load_state`].
#[derive(Clone, Debug, PartialEq)]
pub enum OptimError {
    /// A gradient holds NaN or ±Inf; no parameter or state was modified.
    NonFiniteGradient { param: String },
    /// The state was written by another optimizer (for example `"Adam"` into `"AGD"`).
    KindMismatch { expected: String, found: String },
    /// An entry of the state names no parameter (or no buffer) of this optimizer.
    UnknownEntry { key: String },
    /// A parameter of this optimizer (or one of its buffers) is absent from the state.
    MissingEntry { param: String, entry: String },
    /// A saved buffer's shape differs from its parameter's.
    ShapeMismatch { key: String, expected: Vec<usize>, found: Vec<usize> },
    /// A saved value is unusable (for example a negative or fractional step count).
    InvalidValue { key: String, reason: String },
}

impl fmt::Display for OptimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimError::NonFiniteGradient { param } => {
                write!(f, "gradient of parameter `{param}` contains NaN or Inf; step skipped")
            }
            OptimError::KindMismatch { expected, found } => {
                write!(f, "optimizer state was saved by `{found}`, cannot load it into `{expected}`")
            }
            OptimError::UnknownEntry { key } => {
                write!(f, "optimizer state entry `{key}` matches no parameter of this optimizer")
            }
            OptimError::MissingEntry { param, entry } => {
                write!(f, "optimizer state has no `{entry}` for parameter `{param}`")
            }
            OptimError::ShapeMismatch { key, expected, found } => write!(
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

/// An optimizer over a fixed list of named parameters.
pub trait Optimizer {
    /// Update every parameter that has a gradient in `grads`, in place.
    ///
    /// Parameters without a gradient are skipped and their per-parameter step count is
    /// not advanced (as in PyTorch, where `p.grad is None` skips `p`).
    ///
    /// # Errors
    /// [`OptimError::NonFiniteGradient`] naming the first parameter (in construction
    /// order) whose gradient holds NaN or Inf. The check runs before anything is
    /// modified, so on error parameters and state are untouched.
    ///
    /// # Panics
    /// When a gradient's length differs from its parameter's (a programming error;
    /// [`Gradients::insert`] already enforces shapes).
    fn step(&mut self, grads: &Gradients) -> Result<(), OptimError>;

    /// The current learning rate.
    fn lr(&self) -> f32;

    /// Set the learning rate used by the following steps (for schedules).
    fn set_lr(&mut self, lr: f32);

    /// A snapshot of the state: buffers `"<param>.<buffer>"`, scalars `"<param>.step"`
    /// for every parameter (0 before its first step) and `"lr"`.
    fn state(&self) -> OptimizerState;

    /// Restore a snapshot taken by [`Optimizer::state`] of the same kind of optimizer
    /// over parameters with the same names and shapes. Also restores `"lr"` when present.
    /// Hyper-parameters other than the learning rate come from this optimizer's config.
    ///
    /// # Errors
    /// A different `kind`, an entry naming an unknown parameter or buffer, a parameter
    /// whose step count or buffers are missing, or a buffer of the wrong shape. On error
    /// nothing is modified.
    fn load_state(&mut self, state: &OptimizerState) -> Result<(), OptimError>;

    /// A short name such as `"AGD"`; also the `kind` of [`Optimizer::state`].
    fn name(&self) -> &'static str;

    /// The parameters, in construction order.
    fn params(&self) -> &[(String, Param)];

    /// AGD's switching diagnostic for the last step: the fraction of coordinates in
    /// SGD mode, per parameter and overall. `None` for optimizers without modes.
    fn sgd_mode(&self) -> Option<SgdModeReport> {
        None
    }
}
