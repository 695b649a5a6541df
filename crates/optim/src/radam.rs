//! RAdam: Adam with a rectified adaptive learning rate.

use agdlab_autograd::Param;

use crate::group::ParamGroup;
use crate::kernel::{self, Chunk};
use crate::optimizer::OptimError;
use crate::rule::{unknown_hyperparam, validated, AdamFamily, PerParameter, UpdateRule};

/// Hyper-parameters of [`RAdam`]; `Default` matches `torch.optim.RAdam`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RAdamConfig {
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
    /// `false`: L2 (g ← g + λθ, default); `true`: θ ← θ·(1 - γλ).
    pub decoupled_weight_decay: bool,
}

impl Default for RAdamConfig {
    fn default() -> Self {
        RAdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }
}

/// RAdam (Liu, Jiang, He, Chen, Liu, Gao & Han, "On the Variance of the Adaptive Learning
/// Rate and Beyond", ICLR 2020), exactly as `torch.optim.RAdam`.
///
/// Per parameter θ with gradient g_t, lr γ, betas (β1, β2), ε, weight decay λ:
///
/// ```text
/// g_t ← g_t + λθ  (L2)    or    θ ← θ·(1 - γλ)  (decoupled)
/// m_t = β1·m_{t-1} + (1-β1)·g_t
/// v_t = β2·v_{t-1} + (1-β2)·g_t²
/// ρ_∞ = 2/(1-β2) - 1,   ρ_t = ρ_∞ - 2t·β2^t/(1-β2^t)
/// if ρ_t > 5:  r_t = sqrt((ρ_t-4)(ρ_t-2)ρ_∞ / ((ρ_∞-4)(ρ_∞-2)ρ_t))
///              θ ← θ - γ · m_t/(1-β1^t) · r_t · sqrt(1-β2^t)/(sqrt(v_t) + ε)
/// else:        θ ← θ - γ · m_t/(1-β1^t)                  (un-adapted momentum step)
/// ```
///
/// State: `exp_avg`, `exp_avg_sq`, step count.
pub type RAdam = PerParameter<RAdamRule>;

impl RAdam {
    /// RAdam over `params`, one group.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] on a non-positive learning rate, betas
    /// outside [0, 1), or a negative ε or weight decay.
    pub fn new(params: Vec<(String, Param)>, config: RAdamConfig) -> Result<RAdam, OptimError> {
        PerParameter::with_rule(params, RAdamRule::new(config)?)
    }

    /// RAdam over parameter groups, each overriding `config` as it says.
    ///
    /// # Errors
    /// As [`RAdam::new`], and as [`PerParameter::with_rule_groups`].
    pub fn with_groups(groups: Vec<ParamGroup>, config: RAdamConfig) -> Result<RAdam, OptimError> {
        PerParameter::with_rule_groups(groups, RAdamRule::new(config)?)
    }

    pub fn config(&self) -> &RAdamConfig {
        &self.rule().config
    }
}

/// The per-parameter rule of [`RAdam`].
#[derive(Clone, Debug)]
pub struct RAdamRule {
    config: RAdamConfig,
}

impl RAdamRule {
    /// # Errors
    /// As [`RAdam::new`].
    pub fn new(config: RAdamConfig) -> Result<RAdamRule, OptimError> {
        validated(RAdamRule { config })
    }

    fn family(&mut self) -> AdamFamily<'_> {
        let c = &mut self.config;
        AdamFamily {
            optimizer: "RAdam",
            lr: &mut c.lr,
            betas: &mut c.betas,
            eps: &mut c.eps,
            weight_decay: &mut c.weight_decay,
        }
    }

    pub fn config(&self) -> &RAdamConfig {
        &self.config
    }
}

impl UpdateRule for RAdamRule {
    type Stats = ();

    fn name(&self) -> &'static str {
        "RAdam"
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
        &["exp_avg_sq"]
    }

    fn buffers(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn update(&self, step: u64, chunk: Chunk<'_>) {
        let c = self.config;
        let (b1, b2) = c.betas;
        let eps = c.eps;
        let (keep, l2) = if c.decoupled_weight_decay {
            (1.0 - c.lr * c.weight_decay, 0.0)
        } else {
            (1.0, c.weight_decay)
        };
        let rho_inf = 2.0 / (1.0 - b2 as f64) - 1.0;
        let t = step as f64;
        let bc1 = 1.0 - (b1 as f64).powf(t);
        let bc2 = 1.0 - (b2 as f64).powf(t);
        let rho_t = rho_inf - 2.0 * t * (b2 as f64).powf(t) / bc2;
        let rectified = rho_t > 5.0;
        let inv_bc1 = (1.0 / bc1) as f32;
        let lr = c.lr;
        // Scale of the adaptive step: γ·r_t·sqrt(1-β2^t).
        let adaptive = if rectified {
            let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .sqrt();
            (c.lr as f64 * rect * bc2.sqrt()) as f32
        } else {
            0.0
        };
        let k = RAdamCoefficients {
            b1,
            b2,
            eps,
            keep,
            l2,
            inv_bc1,
            lr,
            adaptive,
        };
        // One monomorphised loop per (rectified, L2) pair: no loop-invariant branch is left
        // in the element loop, so it vectorises without computing both arms.
        let radam_kernel = |ch: Chunk<'_>| match (rectified, l2 != 0.0) {
            (false, false) => radam_chunk::<false, false>(ch, &k),
            (false, true) => radam_chunk::<false, true>(ch, &k),
            (true, false) => radam_chunk::<true, false>(ch, &k),
            (true, true) => radam_chunk::<true, true>(ch, &k),
        };
        kernel::run_fused(chunk, &radam_kernel)
    }
}

/// The loop-invariant numbers of one RAdam step on one parameter.
struct RAdamCoefficients {
    b1: f32,
    b2: f32,
    eps: f32,
    /// θ ← keep·θ (decoupled weight decay; 1 otherwise) and g ← g + l2·θ (L2; 0 otherwise).
    keep: f32,
    l2: f32,
    /// 1/(1-β1^t).
    inv_bc1: f32,
    /// γ, the plain (momentum SGD) step while the variance is not yet rectifiable.
    lr: f32,
    /// γ·r_t·sqrt(1-β2^t), the adaptive step's scale once it is.
    adaptive: f32,
}

/// The fused RAdam element loop over one chunk, block by block (`RECTIFIED` and `L2`
/// compile-time).
fn radam_chunk<const RECTIFIED: bool, const L2: bool>(ch: Chunk<'_>, k: &RAdamCoefficients) {
    let Chunk {
        theta,
        grad,
        bufs: [m, v, ..],
    } = ch;
    for (range, grad) in grad.finite_blocks() {
        let n = grad.len();
        let theta = &mut theta[range.start..][..n];
        let (m, v) = (&mut m[range.start..][..n], &mut v[range.start..][..n]);
        for i in 0..n {
            let gi = if L2 {
                grad[i] + k.l2 * theta[i]
            } else {
                grad[i]
            };
            let th = theta[i] * k.keep;
            m[i] = k.b1 * m[i] + (1.0 - k.b1) * gi;
            v[i] = k.b2 * v[i] + (1.0 - k.b2) * gi * gi;
            let mh = m[i] * k.inv_bc1;
            theta[i] = if RECTIFIED {
                th - mh * (k.adaptive / (v[i].sqrt() + k.eps))
            } else {
                th - mh * k.lr
            };
        }
    }
}
