//! Tape-based reverse-mode automatic differentiation over `agdlab-tensor`.
//!
//! One training step reads like this:
//!
//! ```ignore
//! let tape = Tape::new();
//! let x = tape.input(batch);                 // data rides on the tape, no gradient
//! let logits = model.forward(&x);             // parameters join the tape as leaves
//! let loss = cross_entropy(&logits, &labels);
//! let grads = loss.backward();                // one reverse loop over the tape
//! optimizer.step(&grads)?;                    // gradients keyed by parameter id
//! ```
//!
//! - [`Tape`]: ops are appended in execution order; backward walks them in reverse.
//! - [`Var`]: a tensor plus where it came from. Ops live in `ops/`, each forward next
//!   to its backward.
//! - [`Param`]: a named, trainable tensor with a stable [`ParamId`].
//! - [`Gradients`]: what backward returns; a parameter that got no gradient is simply
//!   absent ([`Gradients::missing`] lists them).
//! - [`gradcheck`]: finite-difference checks for tests.

pub mod gradcheck;
pub mod gradients;
mod ops;
pub mod param;
pub mod tape;
pub mod var;

pub use gradcheck::{check_gradients, GradCheck};
pub use gradients::Gradients;
pub use param::{Param, ParamId};
pub use tape::Tape;
pub use var::Var;
