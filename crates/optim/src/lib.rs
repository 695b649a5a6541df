//! Optimizers for agdlab: one [`Optimizer`] trait, per-parameter fused kernels, state that
//! can be saved and loaded by parameter name, learning-rate schedules and gradient clipping.
//!
//! An optimizer is built from `(name, Param)` pairs (or [`ParamGroup`]s, each with its own
//! learning rate, weight decay, δ, ...) and a config struct whose `Default` matches the
//! reference implementation's defaults. Configs are validated: a bad value is an
//! [`OptimError`] naming the hyper-parameter, never a panic.
//!
//! ```
//! use agdlab_autograd::{Gradients, Param};
//! use agdlab_optim::{clip_grad_norm, Agd, AgdConfig, Optimizer, SGD_MODE_FRACTION};
//! use agdlab_tensor::Tensor;
//!
//! let w = Param::new(Tensor::from_vec(vec![1.0, -2.0, 0.5], &[3]).unwrap());
//! let mut opt = Agd::new(vec![("w".to_string(), w.clone())], AgdConfig { lr: 1e-2, ..Default::default() })?;
//!
//! // Normally `grads` comes from a backward pass.
//! let mut grads = Gradients::new();
//! grads.insert(&w, Tensor::from_vec(vec![0.3, -4.0, 1.0], &[3]).unwrap());
//! let norm = clip_grad_norm(&mut grads, opt.params(), 1.0);
//! opt.step(&grads)?;
//!
//! // The first AGD step moves every coordinate by lr·sign(g).
//! assert!((w.value().to_vec()[1] - (-2.0 + 1e-2)).abs() < 1e-6);
//! let sgd_mode = opt.diagnostics().overall(SGD_MODE_FRACTION).unwrap();
//! println!("norm {norm}, {:.0}% of coordinates in SGD mode", 100.0 * sgd_mode);
//! let checkpoint = opt.state(); // save by parameter name; `load_state` restores it
//! assert_eq!(checkpoint.scalar("w.step"), Some(1.0));
//!
//! // Bad settings are errors that name the setting.
//! let bad = Agd::new(vec![("w".to_string(), w)], AgdConfig { delta: -1.0, ..Default::default() });
//! assert!(bad.unwrap_err().to_string().contains("delta"));
//! # Ok::<(), agdlab_optim::OptimError>(())
//! ```
//!
//! Every optimizer updates each parameter with one fused in-place loop over slices
//! (parameter, gradient, state buffers), split across rayon threads for large tensors.
//! Each is a [`PerParameter`] optimizer around an [`UpdateRule`]: `Agd` is
//! `PerParameter<AgdRule>`, `Adam` is `PerParameter<AdamRule>`, and so on.
//!
//! | type | paper | reference semantics |
//! |---|---|---|
//! | [`Sgd`] | Sutskever et al. 2013 (momentum, Nesterov) | `torch.optim.SGD` |
//! | [`Adam`] (also AdamW) | Kingma & Ba 2015; Loshchilov & Hutter 2019 | `torch.optim.Adam` / `AdamW` |
//! | [`Agd`] | Yue et al., NeurIPS 2023, arXiv 2312.01658 | atorch `AGD` |
//! | [`AdaBelief`] | Zhuang et al., NeurIPS 2020 | `adabelief-pytorch` 0.2 (rectify off) |
//! | [`RAdam`] | Liu et al., ICLR 2020 | `torch.optim.RAdam` |
//!
//! # Adding an optimizer
//!
//! Write only the math, in one file: implement [`UpdateRule`] for a struct holding the
//! hyper-parameters, and wrap it in [`PerParameter`]. The rule lists its hyper-parameters
//! by name (so parameter groups can set them), names its state buffers and updates one
//! parameter in place; [`PerParameter`] does the rest (the NaN/Inf check as the gradient
//! is read, skipping parameters without a gradient, row-sparse gradients, step counts,
//! creating zeroed buffers, parameter groups and learning-rate schedules, saving and
//! loading state by parameter name, diagnostics). [`run_fused`] splits large tensors
//! across threads. Heavy-ball momentum, for example:
//!
//! ```
//! use agdlab_autograd::{Gradients, Param};
//! use agdlab_optim::{check_hyperparam, run_fused, unknown_hyperparam, Chunk, OptimError, Optimizer, PerParameter, UpdateRule};
//! use agdlab_tensor::Tensor;
//!
//! /// b ← μ·b + g,  θ ← θ - γ·b
//! #[derive(Clone)]
//! struct HeavyBall { lr: f32, momentum: f32 }
//!
//! impl UpdateRule for HeavyBall {
//!     type Stats = (); // measures nothing
//!     fn name(&self) -> &'static str { "HeavyBall" }
//!     fn hyperparams(&self) -> Vec<(&'static str, f64)> {
//!         vec![("lr", self.lr as f64), ("momentum", self.momentum as f64)]
//!     }
//!     fn set_hyperparam(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
//!         let ok = |valid| check_hyperparam("HeavyBall", name, value, valid, "a number >= 0");
//!         match name {
//!             "lr" => self.lr = ok(value >= 0.0)? as f32,
//!             "momentum" => self.momentum = ok(value >= 0.0)? as f32,
//!             _ => return Err(unknown_hyperparam(self, name)),
//!         }
//!         Ok(())
//!     }
//!     fn buffers(&self) -> &'static [&'static str] { &["momentum_buffer"] }
//!     fn update(&self, _step: u64, chunk: Chunk<'_>) {
//!         let (lr, mu) = (self.lr, self.momentum);
//!         run_fused(chunk, &|ch: Chunk<'_>| {
//!             let Chunk { theta, grad, bufs: [b, ..] } = ch;
//!             // Blocks of the gradient, each checked for NaN/Inf just before it comes.
//!             for (range, grad) in grad.finite_blocks() {
//!                 for ((t, &g), b) in theta[range.clone()].iter_mut().zip(grad).zip(&mut b[range]) {
//!                     *b = mu * *b + g;
//!                     *t -= lr * *b;
//!                 }
//!             }
//!         })
//!     }
//! }
//!
//! let w = Param::new(Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
//! let mut opt = PerParameter::with_rule(vec![("w".into(), w.clone())], HeavyBall { lr: 0.5, momentum: 0.9 }).unwrap();
//! let mut grads = Gradients::new();
//! grads.insert(&w, Tensor::from_vec(vec![1.0, -1.0], &[2]).unwrap());
//! opt.step(&grads).unwrap(); // b = g
//! opt.step(&grads).unwrap(); // b = 1.9·g
//! let w1 = w.value().to_vec();
//! assert!((w1[0] - (1.0 - 0.5 * 2.9)).abs() < 1e-6 && (w1[1] - (2.0 + 0.5 * 2.9)).abs() < 1e-6);
//! assert_eq!(opt.state().scalar("w.step"), Some(2.0));
//! assert!(opt.state().tensor("w.momentum_buffer").is_some());
//! ```

pub mod adabelief;
pub mod adam;
pub mod agd;
pub mod clip;
pub mod diagnostics;
pub mod group;
mod kernel;
pub mod optimizer;
pub mod radam;
pub mod rule;
pub mod schedule;
pub mod sgd;
pub mod state;

pub use adabelief::{AdaBelief, AdaBeliefConfig, AdaBeliefRule};
pub use adam::{Adam, AdamConfig, AdamRule};
pub use agd::{Agd, AgdConfig, AgdRule, AgdStats, WeightDecayMode};
pub use clip::clip_grad_norm;
pub use diagnostics::{Diagnostics, ParamReport, StepStats, MODE_FLIP_FRACTION, SGD_MODE_FRACTION};
pub use group::{ParamGroup, SparseMode};
pub use kernel::{
    check_gradients, run_fused, Chunk, FiniteBlocks, Gradient, CHECK_BLOCK, MAX_BUFFERS,
};
pub use optimizer::{OptimError, Optimizer};
pub use radam::{RAdam, RAdamConfig, RAdamRule};
pub use rule::{check_hyperparam, unknown_hyperparam, PerParameter, UpdateRule, MAX_STEP};
pub use schedule::{Constant, CosineAnnealing, LinearWarmup, LrSchedule, StepDecay};
pub use sgd::{Sgd, SgdConfig, SgdRule};
pub use state::OptimizerState;
