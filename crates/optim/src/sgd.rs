//! Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay.

use agdlab_autograd::Param;

use crate::group::ParamGroup;
use crate::kernel::{self, Chunk};
use crate::optimizer::OptimError;
use crate::rule::{check_hyperparam, unknown_hyperparam, validated, PerParameter, UpdateRule};

/// Hyper-parameters of [`Sgd`]; `Default` matches `torch.optim.SGD` (lr 1e-3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

/// SGD with momentum, exactly as `torch.optim.SGD`.
///
/// Per parameter θ with gradient g_t, learning rate γ, momentum μ, dampening τ, weight
/// decay λ:
///
/// ```text
/// g_t ← g_t + λ·θ                         (if λ ≠ 0)
/// b_1 = g_1                               (first step: no dampening)
/// b_t = μ·b_{t-1} + (1-τ)·g_t             (t > 1)
/// d_t = g_t + μ·b_t  (Nesterov)  or  b_t  (if μ ≠ 0), else d_t = g_t
/// θ  ← θ - γ·d_t
/// ```
///
/// Momentum: Polyak 1964; the Nesterov form as in Sutskever, Martens, Dahl & Hinton,
/// "On the importance of initialization and momentum in deep learning", ICML 2013.
/// State: buffer `momentum_buffer` (only when μ ≠ 0) and the step count. Parameter
/// groups may set `lr`, `momentum`, `dampening` and `weight_decay`.
pub type Sgd = PerParameter<SgdRule>;

impl Sgd {
    /// SGD over `params`, one group.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] on a non-positive learning rate, a momentum
    /// outside [0, 1], a negative weight decay, or Nesterov momentum without momentum or
    /// with dampening (as PyTorch refuses).
    pub fn new(params: Vec<(String, Param)>, config: SgdConfig) -> Result<Sgd, OptimError> {
        PerParameter::with_rule(params, SgdRule::new(config)?)
    }

    /// SGD over parameter groups, each overriding `config` as it says.
    ///
    /// # Errors
    /// As [`Sgd::new`], and as [`PerParameter::with_rule_groups`].
    pub fn with_groups(groups: Vec<ParamGroup>, config: SgdConfig) -> Result<Sgd, OptimError> {
        PerParameter::with_rule_groups(groups, SgdRule::new(config)?)
    }

    pub fn config(&self) -> &SgdConfig {
        &self.rule().config
    }
}

/// The per-parameter rule of [`Sgd`].
#[derive(Clone, Debug)]
pub struct SgdRule {
    config: SgdConfig,
}

impl SgdRule {
    /// # Errors
    /// As [`Sgd::new`].
    pub fn new(config: SgdConfig) -> Result<SgdRule, OptimError> {
        let nesterov_ok = !config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0);
        check_hyperparam(
            "SGD",
            "nesterov",
            config.momentum as f64,
            nesterov_ok,
            "Nesterov momentum needs a momentum > 0 and zero dampening",
        )?;
        validated(SgdRule { config })
    }

    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl UpdateRule for SgdRule {
    type Stats = ();

    fn name(&self) -> &'static str {
        "SGD"
    }

    fn hyperparams(&self) -> Vec<(&'static str, f64)> {
        let c = &self.config;
        vec![
            ("lr", c.lr as f64),
            ("momentum", c.momentum as f64),
            ("dampening", c.dampening as f64),
            ("weight_decay", c.weight_decay as f64),
        ]
    }

    /// The momentum cannot change between 0 and non-zero (that adds or removes the
    /// momentum buffer, so it is not a per-group option then).
    fn set_hyperparam(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        let c = &mut self.config;
        let check =
            |valid: bool, expected: &str| check_hyperparam("SGD", name, value, valid, expected);
        let finite_nonnegative = value >= 0.0 && value.is_finite();
        match name {
            "lr" => c.lr = check(finite_nonnegative, "a finite number >= 0")? as f32,
            "momentum" => {
                check((0.0..=1.0).contains(&value), "a number in [0, 1]")?;
                let same_kind = (value == 0.0) == (c.momentum == 0.0);
                c.momentum = check(
                    same_kind,
                    "zero in a group exactly when the optimizer's momentum is",
                )? as f32
            }
            "dampening" => {
                c.dampening = check((0.0..=1.0).contains(&value), "a number in [0, 1]")? as f32
            }
            "weight_decay" => {
                c.weight_decay = check(finite_nonnegative, "a finite number >= 0")? as f32
            }
            _ => return Err(unknown_hyperparam(self, name)),
        }
        Ok(())
    }

    fn buffers(&self) -> &'static [&'static str] {
        if self.config.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn update(&self, step: u64, chunk: Chunk<'_>) {
        let c = self.config;
        let k = SgdCoefficients {
            lr: c.lr,
            mu: c.momentum,
            damp: c.dampening,
            wd: c.weight_decay,
            nesterov: c.nesterov,
            first: step == 1,
        };
        // One monomorphised loop per (momentum, weight decay) pair, so the element loop
        // has no loop-invariant branches left and vectorises.
        let sgd_kernel = |ch: Chunk<'_>| match (k.mu != 0.0, k.wd != 0.0) {
            (false, false) => sgd_chunk::<false, false>(ch, &k),
            (false, true) => sgd_chunk::<false, true>(ch, &k),
            (true, false) => sgd_chunk::<true, false>(ch, &k),
            (true, true) => sgd_chunk::<true, true>(ch, &k),
        };
        kernel::run_fused(chunk, &sgd_kernel)
    }
}

/// The loop-invariant numbers of one SGD step on one parameter.
struct SgdCoefficients {
    lr: f32,
    /// Momentum μ and dampening τ.
    mu: f32,
    damp: f32,
    /// L2 weight decay λ (g ← g + λ·θ).
    wd: f32,
    nesterov: bool,
    /// The parameter's first step: the buffer starts as g.
    first: bool,
}

/// The fused SGD element loop over one chunk, block by block; `MOMENTUM` and `DECAY`
/// (weight decay non-zero) are compile-time, `first` and `nesterov` become selects.
fn sgd_chunk<const MOMENTUM: bool, const DECAY: bool>(ch: Chunk<'_>, k: &SgdCoefficients) {
    let Chunk {
        theta,
        grad,
        bufs: [buf, ..],
    } = ch;
    for (range, grad) in grad.finite_blocks() {
        let n = grad.len();
        let theta = &mut theta[range.start..][..n];
        let buf = if MOMENTUM {
            &mut buf[range.start..][..n]
        } else {
            &mut *buf
        };
        for i in 0..n {
            let g = if DECAY {
                grad[i] + k.wd * theta[i]
            } else {
                grad[i]
            };
            let d = if MOMENTUM {
                let b = if k.first {
                    g
                } else {
                    k.mu * buf[i] + (1.0 - k.damp) * g
                };
                buf[i] = b;
                if k.nesterov {
                    g + k.mu * b
                } else {
                    b
                }
            } else {
                g
            };
            theta[i] -= k.lr * d;
        }
    }
}
