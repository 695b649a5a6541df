//! AGD: an auto-switchable optimizer using the stepwise gradient difference as its
//! preconditioner.

use agdlab_autograd::Param;

use crate::diagnostics::{StepStats, MODE_FLIP_FRACTION, SGD_MODE_FRACTION};
use crate::group::ParamGroup;
use crate::kernel::{self, Chunk};
use crate::optimizer::OptimError;
use crate::rule::{check_hyperparam, unknown_hyperparam, validated, PerParameter, UpdateRule};

/// How [`Agd`] applies weight decay λ (ignored when `win` is on: Win has its own decay).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WeightDecayMode {
    /// θ ← θ·(1 - γλ) before the update (atorch `weight_decouple=True`, the default).
    #[default]
    Decoupled,
    /// θ ← θ·(1 - λ), independent of the learning rate (atorch `fixed_decay=True`).
    Fixed,
    /// g ← g + λ·θ, a classic L2 penalty (atorch `weight_decouple=False`).
    L2,
}

/// Hyper-parameters of [`Agd`]; `Default` matches atorch's `AGD` defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgdConfig {
    /// γ, default 1e-3. The authors advise about 1/10 of the learning rate AdamW would use.
    pub lr: f32,
    /// (β1, β2), default (0.9, 0.999).
    pub betas: (f32, f32),
    /// δ, the switching threshold, default 1e-5 (1e-14 for Transformers, 1e-8 in the
    /// authors' CIFAR demo). Must be positive: with δ = 0 a coordinate whose gradient
    /// differences are all zero would divide 0 by 0.
    pub delta: f32,
    /// λ, default 0.
    pub weight_decay: f32,
    pub weight_decay_mode: WeightDecayMode,
    /// Use the running maximum of b_t in the denominator (default off).
    pub amsgrad: bool,
    /// Win acceleration (Zhou et al., "Win: Weight-Decay-Integrated Nesterov Acceleration
    /// for Adaptive Gradient Algorithms", ICLR 2023), default off.
    pub win: bool,
    /// Clamp the ratio m_t / max(sqrt(b_t), δ·sqrt(1-β2^t)) to [-clip, clip] (default
    /// `None`; the authors suggest trying 5 if training is unstable).
    pub clip: Option<f32>,
    /// Update b (and so recompute the stepwise difference) only every k steps: at steps
    /// 1, 1+k, 1+2k, ...; between them b is kept as it is. Default 1, the paper's AGD. Not
    /// in the paper: a study option for "how often must the difference be computed". b's
    /// bias correction then counts b's updates, n_b = ⌊(t-1)/k⌋ + 1, not the steps.
    pub difference_every: u32,
    /// Count, per parameter and step, the coordinates whose mode (SGD or adaptive) changed
    /// since the previous step, reported as [`MODE_FLIP_FRACTION`] by
    /// [`Optimizer::diagnostics`](crate::Optimizer::diagnostics). Costs a state buffer
    /// (`sgd_mode`, each coordinate's last mode as 0 or 1). Default off.
    pub monitor_switching: bool,
}

impl Default for AgdConfig {
    fn default() -> Self {
        AgdConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            delta: 1e-5,
            weight_decay: 0.0,
            weight_decay_mode: WeightDecayMode::Decoupled,
            amsgrad: false,
            win: false,
            clip: None,
            difference_every: 1,
            monitor_switching: false,
        }
    }
}

/// AGD (Yue, Ye, Zhang, Zhou, Chen, Zhu, Lin, Wu, Zhu & Zhou, "AGD: an Auto-switchable
/// Optimizer using Stepwise Gradient Difference for Preconditioning Matrix", NeurIPS 2023,
/// arXiv:2312.01658), with the options of the reference implementation, atorch
/// `atorch/optimizers/agd.py`.
///
/// # Update
/// Per parameter θ with gradient g_t, lr γ, betas (β1, β2), threshold δ:
///
/// ```text
/// m_t = β1·m_{t-1} + (1-β1)·g_t
/// s_1 = m_1/(1-β1)                                   (= g_1)
/// s_t = m_t/(1-β1^t) - m_{t-1}/(1-β1^(t-1))          (t > 1, stepwise gradient difference)
/// b_t = β2·b_{t-1} + (1-β2)·s_t²
/// θ  ← θ - γ·(sqrt(1-β2^t)/(1-β1^t)) · m_t / max(sqrt(b_t), δ·sqrt(1-β2^t))
/// ```
///
/// s_t is formed inside the same element loop from the old and new m (no copy of m).
///
/// # Switching rule
/// A coordinate is in **SGD mode** when sqrt(b_t) ≤ δ·sqrt(1-β2^t): the step is then
/// θ ← θ - (γ/δ)·m_t/(1-β1^t), bias-corrected momentum SGD with learning rate γ/δ.
/// Otherwise it is in **adaptive mode**, an Adam-like step preconditioned by the EMA of
/// squared stepwise differences. [`Optimizer::diagnostics`](crate::Optimizer::diagnostics)
/// reports the SGD-mode fraction of the last step ([`SGD_MODE_FRACTION`]) per parameter
/// and overall, counted inside the fused loop (on the AMSGrad maximum when it is on).
///
/// # Options (as in atorch)
/// - weight decay λ (default 0), applied before the moment update, by
///   [`WeightDecayMode`]: decoupled θ ← θ(1-γλ) (default), fixed θ ← θ(1-λ), or L2
///   g ← g + λθ. Not applied this way when `win` is on.
/// - `amsgrad`: b̂_t = max(b̂_{t-1}, b_t) replaces b_t in the denominator and the switch.
/// - `clip`: u_t = clamp(m_t / max(sqrt(b̂_t), δ·sqrt(1-β2^t)), -clip, clip), before the
///   learning rate and the bias correction; the step is θ ← θ - γ_t·u_t with
///   γ_t = γ·sqrt(1-β2^t)/(1-β1^t).
/// - `difference_every` (k, a study option, not in the paper): b is updated only at
///   steps 1, 1+k, 1+2k, ... and kept between them; its bias correction uses the number
///   of its updates n_b = ⌊(t-1)/k⌋ + 1 in place of t. k = 1 is the paper's AGD, bit
///   for bit.
/// - `monitor_switching`: counts the coordinates whose mode changed since the previous
///   step ([`MODE_FLIP_FRACTION`]); an extra buffer `sgd_mode` remembers each mode.
/// - `win`: an extra buffer z and the Win extrapolation, with λ entering only here:
///   ```text
///   z_t = (z_{t-1} - γ_t·u_t) / (1 + λ·γ_t)
///   τ   = 1 / (3 + 2γ_t·λ)
///   θ  ← τ·θ - τ·2γ_t·u_t + 2τ·z_t
///   ```
///   **Choice:** z starts at the parameter's value at its first step (z_0 = θ_0), as the
///   first public AGD did (the dlrover repository, `dlrover/trainer/torch/optimizers/agd.py`,
///   clones the parameter into z). The later atorch release (`atorch/optimizers/agd.py`)
///   starts z at zero, which pulls the first Win step towards the origin (with λ = 0,
///   θ_1 = θ_0/3 - (4/3)·γ_1·u_1); with z_0 = θ_0 it is θ_1 = θ_0 - (4/3)·γ_1·u_1, and a
///   point with u = 0, λ = 0 stays put, as the Win recursion intends (θ and z start
///   together).
///
/// # Defaults and advice
/// lr 1e-3, betas (0.9, 0.999), δ 1e-5, λ 0, decoupled decay, no AMSGrad/Win/clip. The
/// authors' README: use a learning rate about 1/10 of AdamW's; δ = 1e-14 is usually fine
/// for Transformer-like models; their CIFAR demo uses δ = 1e-8; try clip = 5 if training
/// is unstable.
///
/// State: `exp_avg` (m), `exp_avg_sq` (b), `max_exp_avg_sq` (AMSGrad), `z` (Win),
/// `sgd_mode` (the switching monitor), step.
/// Parameter groups may set `lr`, `beta1`, `beta2`, `delta` and `weight_decay`.
pub type Agd = PerParameter<AgdRule>;

impl Agd {
    /// AGD over `params`, one group.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] on a non-positive learning rate or δ, a
    /// negative λ, betas outside [0, 1), or a non-positive clip (the reference raises
    /// `ValueError` likewise; it accepts δ = 0, which divides 0 by 0 on a coordinate
    /// whose gradient differences are zero).
    pub fn new(params: Vec<(String, Param)>, config: AgdConfig) -> Result<Agd, OptimError> {
        PerParameter::with_rule(params, AgdRule::new(config)?)
    }

    /// AGD over parameter groups, each overriding `config` as it says.
    ///
    /// # Errors
    /// As [`Agd::new`], and as [`PerParameter::with_rule_groups`].
    pub fn with_groups(groups: Vec<ParamGroup>, config: AgdConfig) -> Result<Agd, OptimError> {
        PerParameter::with_rule_groups(groups, AgdRule::new(config)?)
    }

    /// The configuration of the first group.
    pub fn config(&self) -> &AgdConfig {
        &self.rule().config
    }
}

/// The per-parameter rule of [`Agd`].
#[derive(Clone, Debug)]
pub struct AgdRule {
    config: AgdConfig,
}

impl AgdRule {
    /// # Errors
    /// As [`Agd::new`].
    pub fn new(config: AgdConfig) -> Result<AgdRule, OptimError> {
        let k = config.difference_every;
        check_hyperparam(
            "AGD",
            "difference_every",
            k as f64,
            k >= 1,
            "a whole number >= 1",
        )?;
        if let Some(c) = config.clip {
            check_hyperparam(
                "AGD",
                "clip",
                c as f64,
                c > 0.0 && c.is_finite(),
                "a positive number",
            )?;
        }
        validated(AgdRule { config })
    }

    pub fn config(&self) -> &AgdConfig {
        &self.config
    }
}

/// What AGD's fused loop counts: the coordinates that took the SGD branch, and (with the
/// switching monitor) those whose mode changed since the previous step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgdStats {
    pub sgd_mode: usize,
    /// `None` without the switching monitor.
    pub flips: Option<usize>,
}

impl StepStats for AgdStats {
    fn merge(self, other: AgdStats) -> AgdStats {
        let flips = match (self.flips, other.flips) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        AgdStats {
            sgd_mode: self.sgd_mode + other.sgd_mode,
            flips,
        }
    }

    fn report(&self, numel: usize) -> Vec<(&'static str, f64)> {
        let fraction = |count: usize| {
            if numel == 0 {
                0.0
            } else {
                count as f64 / numel as f64
            }
        };
        let mut out = vec![(SGD_MODE_FRACTION, fraction(self.sgd_mode))];
        if let Some(flips) = self.flips {
            out.push((MODE_FLIP_FRACTION, fraction(flips)));
        }
        out
    }
}

impl UpdateRule for AgdRule {
    type Stats = AgdStats;

    fn name(&self) -> &'static str {
        "AGD"
    }

    fn hyperparams(&self) -> Vec<(&'static str, f64)> {
        let c = &self.config;
        vec![
            ("lr", c.lr as f64),
            ("beta1", c.betas.0 as f64),
            ("beta2", c.betas.1 as f64),
            ("delta", c.delta as f64),
            ("weight_decay", c.weight_decay as f64),
        ]
    }

    fn set_hyperparam(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        let c = &mut self.config;
        let check =
            |valid: bool, expected: &str| check_hyperparam("AGD", name, value, valid, expected);
        match name {
            "lr" => c.lr = check(value >= 0.0 && value.is_finite(), "a finite number >= 0")? as f32,
            "beta1" => c.betas.0 = check((0.0..1.0).contains(&value), "a number in [0, 1)")? as f32,
            "beta2" => c.betas.1 = check((0.0..1.0).contains(&value), "a number in [0, 1)")? as f32,
            "delta" => {
                c.delta = check(
                    value > 0.0 && value.is_finite() && value as f32 > 0.0,
                    "a positive number",
                )? as f32
            }
            "weight_decay" => {
                c.weight_decay =
                    check(value >= 0.0 && value.is_finite(), "a finite number >= 0")? as f32
            }
            _ => return Err(unknown_hyperparam(self, name)),
        }
        Ok(())
    }

    fn nonnegative_buffers(&self) -> &'static [&'static str] {
        &["exp_avg_sq", "max_exp_avg_sq"]
    }

    /// `exp_avg`, `exp_avg_sq`, then `max_exp_avg_sq` (AMSGrad), `z` (Win) and `sgd_mode`
    /// (the switching monitor) when their options are on, in this order.
    fn buffers(&self) -> &'static [&'static str] {
        const ALL: [&str; 5] = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "z", "sgd_mode"];
        const LISTS: [&[&str]; 8] = [
            &[ALL[0], ALL[1]],
            &[ALL[0], ALL[1], ALL[4]],
            &[ALL[0], ALL[1], ALL[3]],
            &[ALL[0], ALL[1], ALL[3], ALL[4]],
            &[ALL[0], ALL[1], ALL[2]],
            &[ALL[0], ALL[1], ALL[2], ALL[4]],
            &[ALL[0], ALL[1], ALL[2], ALL[3]],
            &ALL,
        ];
        let c = &self.config;
        LISTS[4 * c.amsgrad as usize + 2 * c.win as usize + c.monitor_switching as usize]
    }

    /// Win: z_0 = θ_0 (see [`Agd`]'s documentation for this choice).
    fn init(&self, theta: &[f32], bufs: &mut [Vec<f32>]) {
        if self.config.win {
            let z = 2 + self.config.amsgrad as usize;
            bufs[z].copy_from_slice(theta);
        }
    }

    fn update(&self, step: u64, chunk: Chunk<'_>) -> AgdStats {
        let c = self.config;
        let (b1, b2) = c.betas;
        let (amsgrad, win, wd) = (c.amsgrad, c.win, c.weight_decay);
        let clip = c.clip.unwrap_or(f32::INFINITY);
        // Pre-update weight decay (not with Win): θ·keep, then g + l2·θ.
        let (keep, l2) = match (win, c.weight_decay_mode) {
            (true, _) => (1.0, 0.0),
            (false, WeightDecayMode::Decoupled) => (1.0 - c.lr * wd, 0.0),
            (false, WeightDecayMode::Fixed) => (1.0 - wd, 0.0),
            (false, WeightDecayMode::L2) => (1.0, wd),
        };
        let first = step == 1;
        let t = step as f64;
        // At t = 1, m_0 = 0, so s_1 = m_1/(1-β1) also comes out of the t > 1 formula
        // with the old-momentum coefficient set to 0.
        let bc1 = 1.0 - (b1 as f64).powf(t);
        let bc1_old = 1.0 - (b1 as f64).powf(t - 1.0);
        // b is updated at steps 1, 1+k, 1+2k, ... (every step for the paper's k = 1), and
        // its bias correction counts those updates.
        let every = c.difference_every as u64;
        let updates_b = (step - 1).is_multiple_of(every);
        let b_updates = ((step - 1) / every + 1) as f64;
        let bc2 = 1.0 - (b2 as f64).powf(b_updates);
        let (b_keep, b_new) = if updates_b {
            (b2, 1.0 - b2)
        } else {
            (1.0, 0.0)
        };
        let inv_bc1 = (1.0 / bc1) as f32;
        let inv_bc1_old = if first { 0.0 } else { (1.0 / bc1_old) as f32 };
        let delta_adj = (c.delta as f64 * bc2.sqrt()) as f32;
        let lr_adj64 = c.lr as f64 * bc2.sqrt() / bc1;
        let lr_adj = lr_adj64 as f32;
        // Win coefficients.
        let z_scale = (1.0 / (1.0 + wd as f64 * lr_adj64)) as f32;
        let tao64 = 1.0 / (3.0 + 2.0 * lr_adj64 * wd as f64);
        let (tao, tao_lr2, tao2) = (
            tao64 as f32,
            (tao64 * 2.0 * lr_adj64) as f32,
            (2.0 * tao64) as f32,
        );

        let k = AgdCoefficients {
            b1,
            b_keep,
            b_new,
            count_flips: !first,
            keep,
            l2,
            inv_bc1,
            inv_bc1_old,
            delta_adj,
            lr_adj,
            clip,
            z_scale,
            tao,
            tao_lr2,
            tao2,
        };
        // One monomorphised loop per option set, so the element loop has no
        // loop-invariant branches left and vectorises.
        let agd_kernel = |ch: Chunk<'_>| -> AgdStats {
            match (amsgrad, win, c.monitor_switching) {
                (false, false, false) => agd_chunk::<false, false, false>(ch, &k),
                (false, false, true) => agd_chunk::<false, false, true>(ch, &k),
                (false, true, false) => agd_chunk::<false, true, false>(ch, &k),
                (false, true, true) => agd_chunk::<false, true, true>(ch, &k),
                (true, false, false) => agd_chunk::<true, false, false>(ch, &k),
                (true, false, true) => agd_chunk::<true, false, true>(ch, &k),
                (true, true, false) => agd_chunk::<true, true, false>(ch, &k),
                (true, true, true) => agd_chunk::<true, true, true>(ch, &k),
            }
        };
        kernel::run_fused(chunk, &agd_kernel)
    }
}

/// The loop-invariant numbers of one AGD step on one parameter.
struct AgdCoefficients {
    b1: f32,
    /// b ← b_keep·b + b_new·s²: (β2, 1-β2) when b is updated this step, (1, 0) when kept.
    b_keep: f32,
    b_new: f32,
    /// Whether mode changes count (not at a parameter's first step: no previous mode).
    count_flips: bool,
    /// θ ← keep·θ before the update (decoupled or fixed weight decay; 1 otherwise).
    keep: f32,
    /// g ← g + l2·θ (L2 weight decay; 0 otherwise).
    l2: f32,
    /// 1/(1-β1^t) and 1/(1-β1^(t-1)) (0 at t = 1).
    inv_bc1: f32,
    inv_bc1_old: f32,
    /// δ·sqrt(1-β2^n_b), the switching threshold on sqrt(b_t) (n_b = t for k = 1).
    delta_adj: f32,
    /// γ·sqrt(1-β2^n_b)/(1-β1^t).
    lr_adj: f32,
    /// |u| bound (infinite when clipping is off).
    clip: f32,
    /// Win: 1/(1+λγ_t), τ, 2τγ_t and 2τ.
    z_scale: f32,
    tao: f32,
    tao_lr2: f32,
    tao2: f32,
}

/// The fused AGD element loop over one chunk; counts the coordinates in SGD mode (and,
/// with `MONITOR`, those whose mode changed). The options are compile-time so each
/// variant is a straight-line loop that vectorises.
fn agd_chunk<const AMSGRAD: bool, const WIN: bool, const MONITOR: bool>(
    ch: Chunk<'_>,
    k: &AgdCoefficients,
) -> AgdStats {
    let Chunk {
        theta,
        grad,
        bufs: [m, b, x, y, w],
    } = ch;
    // The optional buffers come in the order of `AgdRule::buffers`.
    let mut optional = [x, y, w].into_iter();
    let mut next = |on: bool| -> &mut [f32] {
        if on {
            optional.next().expect("buffer")
        } else {
            &mut []
        }
    };
    let (bmax, z, last_mode) = (next(AMSGRAD), next(WIN), next(MONITOR));
    let (mut sgd_count, mut flips) = (0usize, 0usize);
    for (range, grad) in grad.finite_blocks() {
        let (block_sgd, block_flips) =
            agd_block::<AMSGRAD, WIN, MONITOR>(range, k, (theta, grad, m, b), (bmax, z, last_mode));
        sgd_count += block_sgd as usize;
        flips += block_flips as usize;
    }
    AgdStats {
        sgd_mode: sgd_count,
        flips: MONITOR.then_some(flips),
    }
}

/// [`agd_chunk`]'s element loop over the elements `range` of the chunk, whose gradient is
/// `grad`: returns the number of coordinates in SGD mode and (with `MONITOR`) of mode
/// changes. The counts are summed in u32 lanes, as wide as the f32 ones: a usize counter
/// makes the compiler vectorise the whole loop 4-wide (the width of 64-bit lanes) instead
/// of 8, halving the rate of the sqrt and the division. A block lies within one of
/// `run_fused`'s pieces (at most 32 Ki elements), so the u32 sums cannot overflow.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn agd_block<const AMSGRAD: bool, const WIN: bool, const MONITOR: bool>(
    range: std::ops::Range<usize>,
    k: &AgdCoefficients,
    (theta, grad, m, b): (&mut [f32], &[f32], &mut [f32], &mut [f32]),
    (bmax, z, last_mode): (&mut [f32], &mut [f32], &mut [f32]),
) -> (u32, u32) {
    let n = grad.len();
    let at = range.start;
    let theta = &mut theta[at..][..n];
    let (m, b) = (&mut m[at..][..n], &mut b[at..][..n]);
    let bmax = if AMSGRAD { &mut bmax[at..][..n] } else { bmax };
    let z = if WIN { &mut z[at..][..n] } else { z };
    let last_mode = if MONITOR {
        &mut last_mode[at..][..n]
    } else {
        last_mode
    };
    let (mut sgd_count, mut flips) = (0u32, 0u32);
    for i in 0..theta.len() {
        let g = grad[i] + k.l2 * theta[i];
        let m_old = m[i];
        let m_new = k.b1 * m_old + (1.0 - k.b1) * g;
        m[i] = m_new;
        // The stepwise difference of bias-corrected momenta.
        let s = m_new * k.inv_bc1 - m_old * k.inv_bc1_old;
        b[i] = k.b_keep * b[i] + k.b_new * s * s;
        let b_hat = if AMSGRAD {
            bmax[i] = bmax[i].max(b[i]);
            bmax[i]
        } else {
            b[i]
        };
        let root = b_hat.sqrt();
        let sgd_mode = root <= k.delta_adj;
        sgd_count += sgd_mode as u32;
        if MONITOR {
            let mode = sgd_mode as u8 as f32;
            flips += (k.count_flips & (mode != last_mode[i])) as u32;
            last_mode[i] = mode;
        }
        let denom = if sgd_mode { k.delta_adj } else { root };
        let ratio = m_new / denom;
        // Written as selects (not f32::clamp) so the loop vectorises; a NaN stays NaN.
        let u = if ratio > k.clip {
            k.clip
        } else if ratio < -k.clip {
            -k.clip
        } else {
            ratio
        };
        let th = theta[i] * k.keep;
        theta[i] = if WIN {
            z[i] = (z[i] - k.lr_adj * u) * k.z_scale;
            k.tao * th - k.tao_lr2 * u + k.tao2 * z[i]
        } else {
            th - k.lr_adj * u
        };
    }
    (sgd_count, flips)
}
