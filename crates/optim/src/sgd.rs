//! Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay.

use agdlab_autograd::Param;

use crate::kernel::{self, Chunk};
use crate::rule::{PerParameter, UpdateRule};

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
        SgdConfig { lr: 1e-3, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
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
/// State: buffer `momentum_buffer` (only when μ ≠ 0) and the step count.
pub type Sgd = PerParameter<SgdRule>;

impl Sgd {
    /// # Panics
    /// When Nesterov is requested without momentum or with dampening (as PyTorch refuses).
    pub fn new(params: Vec<(String, Param)>, config: SgdConfig) -> Sgd {
        PerParameter::with_rule(params, SgdRule::new(config))
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
    /// # Panics
    /// When Nesterov is requested without momentum or with dampening (as PyTorch refuses).
    pub fn new(config: SgdConfig) -> SgdRule {
        assert!(
            !config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
            "Sgd: Nesterov momentum requires a momentum and zero dampening"
        );
        SgdRule { config }
    }

    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl UpdateRule for SgdRule {
    fn name(&self) -> &'static str {
        "SGD"
    }

    fn lr(&self) -> f32 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.config.lr = lr;
    }

    fn buffers(&self) -> &'static [&'static str] {
        if self.config.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn update(&self, step: u64, theta: &mut [f32], grad: &[f32], bufs: &mut [Vec<f32>]) -> usize {
        let c = self.config;
        let first = step == 1;
        let (lr, mu, damp, wd, nesterov) = (c.lr, c.momentum, c.dampening, c.weight_decay, c.nesterov);
        let sgd_kernel = |ch: Chunk<'_>| -> usize {
            let Chunk { theta, grad, bufs: [buf, ..] } = ch;
            if mu == 0.0 {
                for (t, &g) in theta.iter_mut().zip(grad) {
                    let g = if wd != 0.0 { g + wd * *t } else { g };
                    *t -= lr * g;
                }
            } else {
                for ((t, &g), b) in theta.iter_mut().zip(grad).zip(buf.iter_mut()) {
                    let g = if wd != 0.0 { g + wd * *t } else { g };
                    *b = if first { g } else { mu * *b + (1.0 - damp) * g };
                    let d = if nesterov { g + mu * *b } else { *b };
                    *t -= lr * d;
                }
            }
            0
        };
        kernel::run_fused(Chunk::new(theta, grad, bufs), &sgd_kernel)
    }
}
