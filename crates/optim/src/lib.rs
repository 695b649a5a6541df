//! Optimizers for agdlab: one [`Optimizer`] trait, per-parameter fused kernels, state that
//! can be saved and loaded by parameter name, learning-rate schedules and gradient clipping.
//!
//! An optimizer is built from `(name, Param)` pairs and a config struct whose `Default`
//! matches the reference implementation's defaults:
//!
//! ```
//! use agdlab_autograd::{Gradients, Param};
//! use agdlab_optim::{clip_grad_norm, Agd, AgdConfig, Optimizer};
//! use agdlab_tensor::Tensor;
//!
//! let w = Param::new(Tensor::from_vec(vec![1.0, -2.0, 0.5], &[3]).unwrap());
//! let mut opt = Agd::new(vec![("w".to_string(), w.clone())], AgdConfig { lr: 1e-2, ..Default::default() });
//!
//! // Normally `grads` comes from a backward pass.
//! let mut grads = Gradients::new();
//! grads.insert(&w, Tensor::from_vec(vec![0.3, -4.0, 1.0], &[3]).unwrap());
//! let norm = clip_grad_norm(&mut grads, opt.params(), 1.0);
//! opt.step(&grads).unwrap();
//!
//! // The first AGD step moves every coordinate by lr·sign(g).
//! assert!((w.value().to_vec()[1] - (-2.0 + 1e-2)).abs() < 1e-6);
//! println!("norm {norm}, {:.0}% of coordinates in SGD mode", 100.0 * opt.sgd_mode_report().overall);
//! let checkpoint = opt.state(); // save by parameter name; `load_state` restores it
//! assert_eq!(checkpoint.scalar("w.step"), Some(1.0));
//! ```
//!
//! Every optimizer updates each parameter with one fused in-place loop over slices
//! (parameter, gradient, state buffers), split across rayon threads for large tensors.
//!
//! | type | paper | reference semantics |
//! |---|---|---|
//! | [`Sgd`] | Sutskever et al. 2013 (momentum, Nesterov) | `torch.optim.SGD` |
//! | [`Adam`] (also AdamW) | Kingma & Ba 2015; Loshchilov & Hutter 2019 | `torch.optim.Adam` / `AdamW` |
//! | [`Agd`] | Yue et al., NeurIPS 2023, arXiv 2312.01658 | atorch `AGD` |
//! | [`AdaBelief`] | Zhuang et al., NeurIPS 2020 | `adabelief-pytorch` 0.2 (rectify off) |
//! | [`RAdam`] | Liu et al., ICLR 2020 | `torch.optim.RAdam` |

pub mod adabelief;
pub mod adam;
pub mod agd;
pub mod clip;
mod kernel;
pub mod optimizer;
pub mod radam;
pub mod rule;
pub mod schedule;
pub mod sgd;
pub mod state;

pub use adabelief::{AdaBelief, AdaBeliefConfig, AdaBeliefRule};
pub use adam::{Adam, AdamConfig, AdamRule};
pub use agd::{Agd, AgdConfig, AgdRule, SgdModeReport, WeightDecayMode};
pub use clip::clip_grad_norm;
pub use kernel::{run_fused, Chunk};
pub use optimizer::{OptimError, Optimizer};
pub use radam::{RAdam, RAdamConfig, RAdamRule};
pub use rule::{PerParameter, UpdateRule};
pub use schedule::{Constant, CosineAnnealing, LinearWarmup, LrSchedule, StepDecay};
pub use sgd::{Sgd, SgdConfig, SgdRule};
pub use state::OptimizerState;
