//! Adam and AdamW (one kernel; AdamW is Adam with decoupled weight decay).

use agdlab_autograd::Param;

use crate::group::ParamGroup;
use crate::kernel::{self, Chunk};
use crate::optimizer::OptimError;
use crate::rule::{unknown_hyperparam, validated, AdamFamily, PerParameter, UpdateRule};

/// Hyper-parameters of [`Adam`]. `Default` is `torch.optim.Adam`'s defaults;
/// [`AdamConfig::adamw`] is `torch.optim.AdamW`'s (weight decay 1e-2, decoupled).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
    pub amsgrad: bool,
    /// `false`: L2 penalty added to the gradient (Adam); `true`: θ ← θ·(1-γλ) (AdamW).
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled_weight_decay: false,
        }
    }
}

impl AdamConfig {
    /// `torch.optim.AdamW` defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay
    /// 1e-2 (decoupled), no AMSGrad.
    pub fn adamw() -> AdamConfig {
        AdamConfig {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..Default::default()
        }
    }
}

/// Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015) and, with
/// `decoupled_weight_decay`, AdamW (Loshchilov & Hutter, "Decoupled Weight Decay
/// Regularization", ICLR 2019), exactly as `torch.optim.Adam` / `torch.optim.AdamW`,
/// including AMSGrad (Reddi, Kale & Kumar, ICLR 2018).
///
/// Per parameter θ with gradient g_t, lr γ, betas (β1, β2), ε, weight decay λ:
///
/// ```text
/// g_t ← g_t + λ·θ                 (Adam, λ ≠ 0)       θ ← θ·(1 - γλ)   (AdamW)
/// m_t = β1·m_{t-1} + (1-β1)·g_t
/// v_t = β2·v_{t-1} + (1-β2)·g_t²
/// v̂_t = max(v̂_{t-1}, v_t)   (AMSGrad; else v̂_t = v_t)
/// θ  ← θ - γ/(1-β1^t) · m_t / (sqrt(v̂_t)/sqrt(1-β2^t) + ε)
/// ```
///
/// State: `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` (AMSGrad only), step count.
/// [`Optimizer::name`](crate::Optimizer::name) (and the state's kind) is `"Adam"` or `"AdamW"`.
/// Parameter groups may set `lr`, `beta1`, `beta2`, `eps` and `weight_decay`.
pub type Adam = PerParameter<AdamRule>;

impl Adam {
    /// Adam (or AdamW) over `params`, one group.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] on a non-positive learning rate, betas
    /// outside [0, 1), or a negative ε or weight decay (as `torch.optim.Adam` refuses).
    pub fn new(params: Vec<(String, Param)>, config: AdamConfig) -> Result<Adam, OptimError> {
        PerParameter::with_rule(params, AdamRule::new(config)?)
    }

    /// Adam over parameter groups, each overriding `config` as it says.
    ///
    /// # Errors
    /// As [`Adam::new`], and as [`PerParameter::with_rule_groups`].
    pub fn with_groups(groups: Vec<ParamGroup>, config: AdamConfig) -> Result<Adam, OptimError> {
        PerParameter::with_rule_groups(groups, AdamRule::new(config)?)
    }

    /// The configuration of the first group.
    pub fn config(&self) -> &AdamConfig {
        &self.rule().config
    }
}

/// The per-parameter rule of [`Adam`] (and AdamW).
#[derive(Clone, Debug)]
pub struct AdamRule {
    config: AdamConfig,
}

impl AdamRule {
    /// # Errors
    /// As [`Adam::new`].
    pub fn new(config: AdamConfig) -> Result<AdamRule, OptimError> {
        validated(AdamRule { config })
    }

    fn family(&mut self) -> AdamFamily<'_> {
        let c = &mut self.config;
        let optimizer = if c.decoupled_weight_decay {
            "AdamW"
        } else {
            "Adam"
        };
        AdamFamily {
            optimizer,
            lr: &mut c.lr,
            betas: &mut c.betas,
            eps: &mut c.eps,
            weight_decay: &mut c.weight_decay,
        }
    }

    pub fn config(&self) -> &AdamConfig {
        &self.config
    }
}

impl UpdateRule for AdamRule {
    type Stats = ();

    fn name(&self) -> &'static str {
        if self.config.decoupled_weight_decay {
            "AdamW"
        } else {
            "Adam"
        }
    }

    fn hyperparams(&self) -> Vec<(&'static str, f64)> {
        self.clone().family().hyperparams()
    }

    fn set_hyperparam(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        if self.family().set(name, value)? {
            Ok(())
        } else {
            Err(unknown_hyperparam(self, name))
        }
    }

    fn nonnegative_buffers(&self) -> &'static [&'static str] {
        &["exp_avg_sq", "max_exp_avg_sq"]
    }

    fn buffers(&self) -> &'static [&'static str] {
        if self.config.amsgrad {
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq"]
        }
    }

    fn update(&self, step: u64, chunk: Chunk<'_>) {
        let c = self.config;
        let (b1, b2) = c.betas;
        let t = step as f64;
        let bc1 = 1.0 - (b1 as f64).powf(t);
        let bc2 = 1.0 - (b2 as f64).powf(t);
        let step_size = (c.lr as f64 / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let decay = if c.decoupled_weight_decay {
            1.0 - c.lr * c.weight_decay
        } else {
            1.0
        };
        let l2 = if c.decoupled_weight_decay {
            0.0
        } else {
            c.weight_decay
        };
        let (eps, amsgrad) = (c.eps, c.amsgrad);
        let k = AdamCoefficients {
            b1,
            b2,
            l2,
            decay,
            step_size,
            bc2_sqrt,
            eps,
        };
        let adam_kernel = |ch: Chunk<'_>| {
            if amsgrad {
                adam_chunk::<true>(ch, &k)
            } else {
                adam_chunk::<false>(ch, &k)
            }
        };
        kernel::run_fused(chunk, &adam_kernel)
    }
}

/// The loop-invariant numbers of one Adam step on one parameter.
struct AdamCoefficients {
    b1: f32,
    b2: f32,
    /// g ← g + l2·θ (Adam's L2 weight decay; 0 for AdamW).
    l2: f32,
    /// θ ← decay·θ (AdamW's decoupled weight decay; 1 for Adam).
    decay: f32,
    /// γ/(1-β1^t).
    step_size: f32,
    /// sqrt(1-β2^t).
    bc2_sqrt: f32,
    eps: f32,
}

/// The fused Adam element loop over one chunk. `AMSGRAD` is compile-time so the loop is
/// straight-line and vectorises.
fn adam_chunk<const AMSGRAD: bool>(ch: Chunk<'_>, k: &AdamCoefficients) {
    let Chunk {
        theta,
        grad,
        bufs: [m, v, vmax, ..],
    } = ch;
    for (range, grad) in grad.finite_blocks() {
        let n = grad.len();
        let theta = &mut theta[range.start..][..n];
        let (m, v) = (&mut m[range.start..][..n], &mut v[range.start..][..n]);
        let vmax = if AMSGRAD {
            &mut vmax[range.start..][..n]
        } else {
            &mut *vmax
        };
        adam_block::<AMSGRAD>(k, theta, grad, m, v, vmax);
    }
}

/// [`adam_chunk`]'s element loop over one block (all slices of the block's length).
#[inline(always)]
fn adam_block<const AMSGRAD: bool>(
    k: &AdamCoefficients,
    theta: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vmax: &mut [f32],
) {
    for i in 0..grad.len() {
        let g = grad[i] + k.l2 * theta[i];
        m[i] = k.b1 * m[i] + (1.0 - k.b1) * g;
        v[i] = k.b2 * v[i] + (1.0 - k.b2) * g * g;
        let v_hat = if AMSGRAD {
            vmax[i] = vmax[i].max(v[i]);
            vmax[i]
        } else {
            v[i]
        };
        let denom = v_hat.sqrt() / k.bc2_sqrt + k.eps;
        theta[i] = theta[i] * k.decay - k.step_size * (m[i] / denom);
    }
}
