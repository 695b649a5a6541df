//! Batch normalisation over the channels of NCHW activations. PyTorch equivalent:
//! `torch.nn.BatchNorm2d`.

use agdlab_autograd::{Param, Var};
use agdlab_tensor::Tensor;

use crate::buffer::Buffer;
use crate::module::{Forward, Mode, Module, Walk};

/// Settings of a [`BatchNorm2d`]; `Default` is PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance before the square root, default 1e-5.
    pub eps: f32,
    /// Weight of the newest batch in the running statistics, default `Some(0.1)`:
    /// `running = (1 - momentum)·running + momentum·batch`. `None` keeps the plain
    /// average of every batch seen (factor `1/num_batches_tracked`), as PyTorch's
    /// `momentum=None`.
    pub momentum: Option<f32>,
    /// Learnable per-channel scale γ (`weight`, ones) and shift β (`bias`, zeros),
    /// default on.
    pub affine: bool,
}

impl Default for BatchNormConfig {
    fn default() -> BatchNormConfig {
        BatchNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
        }
    }
}

/// Batch normalisation of `[n, c, h, w]`, per channel.
///
/// - **Training mode** normalises with the batch's mean and (biased) variance over `n`,
///   `h` and `w`, and updates the running statistics with PyTorch's convention: the
///   running variance takes the *unbiased* batch variance (times `m/(m-1)` for `m`
///   values per channel), and `num_batches_tracked` counts the batches.
/// - **Evaluation mode** normalises with the running statistics.
///
/// Then `y = γ·x̂ + β` when affine. The running statistics and the count are
/// [`Buffer`]s: saved in checkpoints and state dicts, never seen by an optimizer. Names
/// follow PyTorch: `weight`, `bias`, `running_mean`, `running_var`,
/// `num_batches_tracked` (saved as `int64`).
///
/// The normalisation is one fused op ([`Var::batch_norm_train`] /
/// [`Var::batch_norm_eval`]) with its own backward pass.
pub struct BatchNorm2d {
    pub weight: Option<Param>,
    pub bias: Option<Param>,
    pub running_mean: Buffer,
    pub running_var: Buffer,
    pub num_batches_tracked: Buffer,
    pub config: BatchNormConfig,
    mode: Mode,
}

impl BatchNorm2d {
    /// PyTorch's defaults: `BatchNorm2d(num_features)`: eps 1e-5, momentum 0.1, affine.
    pub fn new(num_features: usize) -> BatchNorm2d {
        BatchNorm2d::with_config(num_features, BatchNormConfig::default())
    }

    /// γ = 1, β = 0, running mean 0, running variance 1, count 0.
    ///
    /// # Panics
    /// When `eps` is negative or not finite, or `momentum` is outside [0, 1].
    pub fn with_config(num_features: usize, config: BatchNormConfig) -> BatchNorm2d {
        assert!(
            config.eps >= 0.0 && config.eps.is_finite(),
            "BatchNorm2d: eps {} must be >= 0",
            config.eps
        );
        if let Some(m) = config.momentum {
            assert!(
                (0.0..=1.0).contains(&m),
                "BatchNorm2d: momentum {m} must be in [0, 1]"
            );
        }
        let c = num_features;
        BatchNorm2d {
            weight: config.affine.then(|| Param::new(Tensor::ones(&[c]))),
            bias: config.affine.then(|| Param::new(Tensor::zeros(&[c]))),
            running_mean: Buffer::new(Tensor::zeros(&[c])),
            running_var: Buffer::new(Tensor::ones(&[c])),
            num_batches_tracked: Buffer::integer(Tensor::zeros(&[])),
            config,
            mode: Mode::default(),
        }
    }

    pub fn num_features(&self) -> usize {
        self.running_mean.shape()[0]
    }

    /// Fold one batch's statistics into the running ones (PyTorch's update).
    fn track(&self, batch_mean: &Tensor, batch_var: &Tensor, count: usize) {
        let batches = self.num_batches_tracked.update(|n| {
            n[0] += 1.0;
            n[0]
        });
        let factor = self.config.momentum.unwrap_or(1.0 / batches);
        let unbiased = count as f32 / (count - 1) as f32;
        let blend = |buffer: &Buffer, batch: Vec<f32>, scale: f32| {
            buffer.update(|running| {
                for (r, b) in running.iter_mut().zip(batch) {
                    *r = (1.0 - factor) * *r + factor * b * scale;
                }
            })
        };
        blend(&self.running_mean, batch_mean.to_vec(), 1.0);
        blend(&self.running_var, batch_var.to_vec(), unbiased);
    }
}

impl Module for BatchNorm2d {
    fn visit(&self, walk: &mut Walk<'_>) {
        if let Some(w) = &self.weight {
            walk.param("weight", w);
        }
        if let Some(b) = &self.bias {
            walk.param("bias", b);
        }
        walk.buffer("running_mean", &self.running_mean);
        walk.buffer("running_var", &self.running_var);
        walk.buffer("num_batches_tracked", &self.num_batches_tracked);
        walk.mode(&self.mode);
    }
}

impl BatchNorm2d {
    /// `relu(self.forward(input))`, with the ReLU fused into the normalisation's passes
    /// ([`Var::batch_norm_relu_train`]): the usual "conv, batch norm, ReLU" of a ResNet.
    ///
    /// # Panics
    /// As [`Forward::forward`].
    pub fn forward_relu(&self, input: &Var) -> Var {
        self.normalize(input, true)
    }

    fn normalize(&self, input: &Var, relu: bool) -> Var {
        let c = self.num_features();
        assert!(
            input.rank() == 4 && input.shape()[1] == c,
            "BatchNorm2d({c}): needs input [n, {c}, h, w], got {:?}",
            input.shape()
        );
        let weight = self.weight.as_ref().map(|w| w.on(input));
        let bias = self.bias.as_ref().map(|b| b.on(input));
        let (weight, bias, eps) = (weight.as_ref(), bias.as_ref(), self.config.eps);
        if self.mode.is_training() {
            let count = input.value().numel() / c.max(1);
            assert!(
                count > 1,
                "BatchNorm2d: expected more than 1 value per channel in training, got input {:?}",
                input.shape()
            );
            let (y, mean, var) = if relu {
                input.batch_norm_relu_train(weight, bias, eps)
            } else {
                input.batch_norm_train(weight, bias, eps)
            };
            self.track(&mean, &var, count);
            y
        } else {
            let (mean, var) = (self.running_mean.value(), self.running_var.value());
            if relu {
                input.batch_norm_relu_eval(&mean, &var, weight, bias, eps)
            } else {
                input.batch_norm_eval(&mean, &var, weight, bias, eps)
            }
        }
    }
}

impl Forward for BatchNorm2d {
    /// # Shapes
    /// `[n, c, h, w] -> [n, c, h, w]`.
    ///
    /// # Panics
    /// When the input is not `[n, c, h, w]` with `c = num_features`, or, in training
    /// mode, when a channel has a single value (`n·h·w == 1`: no variance to estimate,
    /// as PyTorch refuses).
    fn forward(&self, input: &Var) -> Var {
        self.normalize(input, false)
    }
}
