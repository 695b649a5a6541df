//! Tape-based reverse-mode automatic differentiation.

pub mod gradients;
pub mod param;

pub use gradients::Gradients;
pub use param::{Param, ParamId};
