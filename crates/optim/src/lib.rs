//! Optimizers for agdlab: one [`Optimizer`] trait, per-parameter fused kernels, state that
//! can be saved and loaded by parameter name, learning-rate schedules and gradient clipping.
//!
//! An optimizer is built from `(name, Param)` pairs and a config struct whose `Default`
//! matches the reference implementation's defaults:
//!
//! ```ignore
//! let mut opt = Agd::new(model.named_params(), AgdConfig { lr: 1e-4, ..Default::default() });
//! let grads = loss.backward();
//! clip_grad_norm(&mut grads, opt.params(), 1.0);
//! opt.step(&grads)?;
//! println!("{:.1}% coordinates in SGD mode", 100.0 * opt.sgd_mode_report().overall);
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
pub mod schedule;
pub mod sgd;
pub mod state;

pub use adabelief::{AdaBelief, AdaBeliefConfig};
pub use adam::{Adam, AdamConfig};
pub use agd::{Agd, AgdConfig, SgdModeReport, WeightDecayMode};
pub use clip::clip_grad_norm;
pub use optimizer::{OptimError, Optimizer};
pub use radam::{RAdam, RAdamConfig};
pub use schedule::{Constant, CosineAnnealing, LinearWarmup, LrSchedule, StepDecay};
pub use sgd::{Sgd, SgdConfig};
pub use state::OptimizerState;
