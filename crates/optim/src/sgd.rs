//! Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay.

use agdlab_autograd::{Gradients, Param};

use crate::kernel::{self, Chunk, ParamState};
use crate::optimizer::{OptimError, Optimizer};
use crate::state::OptimizerState;

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
pub struct Sgd {
    params: Vec<(String, Param)>,
    config: SgdConfig,
    states: Vec<Option<ParamState>>,
}

impl Sgd {
    /// # Panics
    /// When Nesterov is requested without momentum or with dampening (as PyTorch refuses).
    pub fn new(params: Vec<(String, Param)>, config: SgdConfig) -> Sgd {
        assert!(
            !config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
            "Sgd: Nesterov momentum requires a momentum and zero dampening"
        );
        let states = vec![None; params.len()];
        Sgd { params, config, states }
    }

    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    fn buf_names(&self) -> &'static [&'static str] {
        if self.config.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &Gradients) -> Result<(), OptimError> {
        kernel::check_finite(&self.params, grads)?;
        let c = self.config;
        let n_bufs = self.buf_names().len();
        for ((_, p), slot) in self.params.iter().zip(self.states.iter_mut()) {
            let Some(g) = kernel::grad_slice(grads, p) else {
                continue;
            };
            let st = slot.get_or_insert_with(|| ParamState::zeros(n_bufs, g.len()));
            st.step += 1;
            let first = st.step == 1;
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
            p.update(|theta| kernel::run_fused(Chunk::new(theta, g, &mut st.bufs), &sgd_kernel));
        }
        Ok(())
    }

    fn lr(&self) -> f32 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.config.lr = lr;
    }

    fn state(&self) -> OptimizerState {
        kernel::save_state(self.name(), self.config.lr, &self.params, &self.states, self.buf_names())
    }

    fn load_state(&mut self, s: &OptimizerState) -> Result<(), OptimError> {
        let (states, lr) = kernel::load_state(self.name(), &self.params, self.buf_names(), s)?;
        self.states = states;
        if let Some(lr) = lr {
            self.config.lr = lr;
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "SGD"
    }

    fn params(&self) -> &[(String, Param)] {
        &self.params
    }
}
