//! Tape-based reverse-mode automatic differentiation over `agdlab-tensor`.
//!
//! One training step reads like this:
//!
//! ```
//! use agdlab_autograd::{Param, Tape};
//! use agdlab_tensor::Tensor;
//!
//! let w = Param::new(Tensor::from_vec(vec![0.5, -1.0], &[1, 2]).unwrap());
//! let tape = Tape::new();                                   // one per step
//! let x = tape.input(Tensor::ones(&[3, 2]));                // the batch rides on it
//! let y = x.matmul(&w.on(&x).t());                          // w joins x's tape
//! let loss = y.sqr().mean_all();
//! let grads = loss.backward();                              // one reverse loop
//! assert_eq!(grads.get(&w).unwrap().shape(), &[1, 2]);      // keyed by parameter
//! ```
//!
//! - [`Tape`]: ops are appended in execution order; backward walks them in reverse.
//!   Tapes are explicit: a value carries its tape, a parameter joins the tape of the
//!   input it meets ([`Param::on`]) or one handed to it ([`Tape::param`]), and mixing two
//!   tapes in one op panics naming the op. [`Tape::no_grad`] records nothing
//!   (evaluation).
//! - [`Var`]: a tensor plus where it came from. Ops live in `ops/`, each forward next
//!   to its backward.
//! - [`Param`]: a trainable tensor with a stable [`ParamId`].
//! - [`Gradients`]: what backward returns, keyed by parameter; each is a [`Grad`], dense
//!   or row-sparse ([`RowSparse`], an embedding's touched rows). A parameter that got no
//!   gradient is absent ([`Gradients::missing`] lists them).
//! - [`InputGrads`]: what an op's backward writes into; contributions accumulate in
//!   place (a weight used at every step of a recurrence has one gradient buffer).
//! - [`gradcheck`]: finite-difference checks for tests.
//!
//! # Writing an op of your own
//!
//! An op is a forward computation on tensors plus a backward closure given to
//! [`Var::record`]. The closure receives the gradient of the op's output and adds each
//! input's gradient through [`InputGrads`]; `grads.add(i, || ...)` computes a gradient
//! only when input `i` needs one. Swish, `y = x·σ(x)`, with `dy/dx = σ(x)(1 + x(1-σ(x)))`:
//!
//! ```
//! use agdlab_autograd::{check_gradients, GradCheck, Var};
//! use agdlab_tensor::Tensor;
//!
//! fn swish(x: &Var) -> Var {
//!     let input = x.value().clone(); // the backward needs x: capture the tensor, not the Var
//!     let out = input.zip_map(&input.sigmoid(), "swish", |x, s| x * s);
//!     Var::record("swish", out, &[x], move |g, grads| {
//!         grads.add(0, || {
//!             let slope = input.map(|x| {
//!                 let s = 1.0 / (1.0 + (-x).exp());
//!                 s * (1.0 + x * (1.0 - s))
//!             });
//!             g.mul(&slope)
//!         });
//!     })
//! }
//!
//! // Checked like every built-in op: backward against finite differences, here on a
//! // transposed (non-contiguous) input.
//! let x = Tensor::from_vec(vec![-2.0, -0.5, 0.3, 1.7, 0.0, 3.0], &[3, 2]).unwrap().t();
//! check_gradients(|v| swish(&v[0]), &[x], &GradCheck::default()).unwrap();
//! ```
//!
//! The tape checks what the closure does, naming the op: a gradient of the wrong shape,
//! or no gradient for an input that needs one, panics during backward rather than
//! leaving that input silently untrained.
//!
//! The closure must be `Send`. That keeps it from capturing a [`Var`], which would make
//! a reference cycle (the `Var` holds its tape, the tape holds the closure) that is
//! never freed; capture the tensors the derivative needs instead. This does not compile:
//!
//! ```compile_fail
//! use agdlab_autograd::Var;
//! fn leaky_square(x: &Var) -> Var {
//!     let saved = x.clone(); // a Var: refused, the closure would not be Send
//!     Var::record("square", x.value().sqr(), &[x], move |g, grads| {
//!         grads.add(0, || g.mul(&saved.value().mul_scalar(2.0)))
//!     })
//! }
//! ```
//!
//! For speed, a backward can accumulate straight into an input's buffer:
//! [`InputGrads::add_matmul`] adds a product with `sgemm` (beta = 1),
//! [`InputGrads::add_with`] hands over the dense buffer, and [`InputGrads::add_rows`]
//! adds a row-sparse contribution. See `ops/linear.rs`, `ops/shape.rs` (`narrow`) and
//! `ops/index.rs` (`embedding`).

pub mod backward;
pub mod grad;
pub mod gradcheck;
pub mod gradients;
mod ops;
pub mod param;
pub mod tape;
pub mod var;

pub use backward::InputGrads;
pub use grad::{Grad, RowSparse};
pub use gradcheck::{check_gradients, GradCheck};
pub use gradients::Gradients;
pub use param::{Param, ParamId, ShapeMismatch};
pub use tape::{Tape, TapeId};
pub use var::Var;
