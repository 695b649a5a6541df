//! AdaBelief: Adam whose second moment tracks the "belief" (g_t - m_t)².

use agdlab_autograd::Param;

use crate::agd::WeightDecayMode;
use crate::group::ParamGroup;
use crate::kernel::{self, Chunk};
use crate::optimizer::OptimError;
use crate::rule::{unknown_hyperparam, validated, AdamFamily, PerParameter, UpdateRule};

/// Hyper-parameters of [`AdaBelief`]; `Default` matches `adabelief-pytorch` 0.2
/// (`eps=1e-16`, `weight_decouple=True`, `fixed_decay=False`, `amsgrad=False`), except
/// that rectification is not implemented (as with `rectify=False`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaBeliefConfig {
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
    /// Decoupled (`weight_decouple=True`, default), fixed (`fixed_decay=True`) or L2.
    pub weight_decay_mode: WeightDecayMode,
    pub amsgrad: bool,
}

impl Default for AdaBeliefConfig {
    fn default() -> Self {
        AdaBeliefConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-16,
            weight_decay: 0.0,
            weight_decay_mode: WeightDecayMode::Decoupled,
            amsgrad: false,
        }
    }
}

/// AdaBelief (Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris & Duncan, "AdaBelief
/// Optimizer: Adapting Stepsizes by the Belief in Observed Gradients", NeurIPS 2020).
///
/// Variant implemented: the official `adabelief-pytorch` package, version 0.2.x, with
/// `rectify=False` (the package's default is `rectify=True`; the rectified RAdam-style
/// branch and `degenerated_to_sgd` are not implemented). Weight decay is applied before
/// the moment update, as in 0.2. Per parameter θ with gradient g_t, lr γ, betas (β1, β2),
/// ε, weight decay λ:
///
/// ```text
/// θ ← θ·(1 - γλ)  (decoupled)  |  θ ← θ·(1 - λ)  (fixed)  |  g_t ← g_t + λθ  (L2)
/// m_t = β1·m_{t-1} + (1-β1)·g_t
/// s_t = β2·s_{t-1} + (1-β2)·(g_t - m_t)² + ε        (ε is stored into s_t)
/// ŝ_t = max(ŝ_{t-1}, s_t)   (AMSGrad; else ŝ_t = s_t)
/// θ  ← θ - γ/(1-β1^t) · m_t / (sqrt(ŝ_t)/sqrt(1-β2^t) + ε)
/// ```
///
/// State: `exp_avg`, `exp_avg_var`, `max_exp_avg_var` (AMSGrad), step count.
pub type AdaBelief = PerParameter<AdaBeliefRule>;

impl AdaBelief {
    /// AdaBelief over `params`, one group.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] on a non-positive learning rate, betas
    /// outside [0, 1), or a negative ε or weight decay.
    pub fn new(
        params: Vec<(String, Param)>,
        config: AdaBeliefConfig,
    ) -> Result<AdaBelief, OptimError> {
        PerParameter::with_rule(params, AdaBeliefRule::new(config)?)
    }

    /// AdaBelief over parameter groups, each overriding `config` as it says.
    ///
    /// # Errors
    /// As [`AdaBelief::new`], and as [`PerParameter::with_rule_groups`].
    pub fn with_groups(
        groups: Vec<ParamGroup>,
        config: AdaBeliefConfig,
    ) -> Result<AdaBelief, OptimError> {
        PerParameter::with_rule_groups(groups, AdaBeliefRule::new(config)?)
    }

    pub fn config(&self) -> &AdaBeliefConfig {
        &self.rule().config
    }
}

/// The per-parameter rule of [`AdaBelief`].
#[derive(Clone, Debug)]
pub struct AdaBeliefRule {
    config: AdaBeliefConfig,
}

impl AdaBeliefRule {
    /// # Errors
    /// As [`AdaBelief::new`].
    pub fn new(config: AdaBeliefConfig) -> Result<AdaBeliefRule, OptimError> {
        validated(AdaBeliefRule { config })
    }

    fn family(&mut self) -> AdamFamily<'_> {
        let c = &mut self.config;
        AdamFamily {
            optimizer: "AdaBelief",
            lr: &mut c.lr,
            betas: &mut c.betas,
            eps: &mut c.eps,
            weight_decay: &mut c.weight_decay,
        }
    }

    pub fn config(&self) -> &AdaBeliefConfig {
        &self.config
    }
}

impl UpdateRule for AdaBeliefRule {
    type Stats = ();

    fn name(&self) -> &'static str {
        "AdaBelief"
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
        &["exp_avg_var", "max_exp_avg_var"]
    }

    fn buffers(&self) -> &'static [&'static str] {
        if self.config.amsgrad {
            &["exp_avg", "exp_avg_var", "max_exp_avg_var"]
        } else {
            &["exp_avg", "exp_avg_var"]
        }
    }

    fn update(&self, step: u64, chunk: Chunk<'_>) {
        let c = self.config;
        let (b1, b2) = c.betas;
        let (eps, amsgrad, wd) = (c.eps, c.amsgrad, c.weight_decay);
        let (keep, l2) = match c.weight_decay_mode {
            WeightDecayMode::Decoupled => (1.0 - c.lr * wd, 0.0),
            WeightDecayMode::Fixed => (1.0 - wd, 0.0),
            WeightDecayMode::L2 => (1.0, wd),
        };
        let t = step as f64;
        let bc1 = 1.0 - (b1 as f64).powf(t);
        let bc2 = 1.0 - (b2 as f64).powf(t);
        let step_size = (c.lr as f64 / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let k = AdaBeliefCoefficients {
            b1,
            b2,
            l2,
            keep,
            step_size,
            bc2_sqrt,
            eps,
        };
        let belief_kernel = |ch: Chunk<'_>| {
            if amsgrad {
                adabelief_chunk::<true>(ch, &k)
            } else {
                adabelief_chunk::<false>(ch, &k)
            }
        };
        kernel::run_fused(chunk, &belief_kernel)
    }
}

/// The loop-invariant numbers of one AdaBelief step on one parameter.
struct AdaBeliefCoefficients {
    b1: f32,
    b2: f32,
    /// g ← g + l2·θ (L2 weight decay; 0 otherwise).
    l2: f32,
    /// θ ← keep·θ (decoupled or fixed weight decay; 1 otherwise).
    keep: f32,
    /// γ/(1-β1^t).
    step_size: f32,
    /// sqrt(1-β2^t).
    bc2_sqrt: f32,
    eps: f32,
}

/// The fused AdaBelief element loop over one chunk (`AMSGRAD` compile-time, so it
/// vectorises).
fn adabelief_chunk<const AMSGRAD: bool>(ch: Chunk<'_>, k: &AdaBeliefCoefficients) {
    let Chunk {
        theta,
        grad,
        bufs: [m, s, smax, ..],
    } = ch;
    for (range, grad) in grad.finite_blocks() {
        let n = grad.len();
        let theta = &mut theta[range.start..][..n];
        let (m, s) = (&mut m[range.start..][..n], &mut s[range.start..][..n]);
        let smax = if AMSGRAD {
            &mut smax[range.start..][..n]
        } else {
            &mut *smax
        };
        adabelief_block::<AMSGRAD>(k, theta, grad, m, s, smax);
    }
}

/// [`adabelief_chunk`]'s element loop over one block (all slices of the block's length).
#[inline(always)]
fn adabelief_block<const AMSGRAD: bool>(
    k: &AdaBeliefCoefficients,
    theta: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    s: &mut [f32],
    smax: &mut [f32],
) {
    for i in 0..grad.len() {
        let g = grad[i] + k.l2 * theta[i];
        let th = theta[i] * k.keep;
        m[i] = k.b1 * m[i] + (1.0 - k.b1) * g;
        let r = g - m[i];
        s[i] = k.b2 * s[i] + (1.0 - k.b2) * r * r + k.eps;
        let s_hat = if AMSGRAD {
            smax[i] = smax[i].max(s[i]);
            smax[i]
        } else {
            s[i]
        };
        let denom = s_hat.sqrt() / k.bc2_sqrt + k.eps;
        theta[i] = th - k.step_size * (m[i] / denom);
    }
}
