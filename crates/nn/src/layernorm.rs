//! Layer normalisation. PyTorch equivalent: `torch.nn.LayerNorm(d, eps)`.

use agdlab_autograd::{Param, Var};
use agdlab_tensor::Tensor;

use crate::module::{Forward, Module, Walk};

/// Normalise each vector over its last dimension (`d` features), then scale and shift by
/// learned `weight` (ones at first) and `bias` (zeros): see
/// [`Var::layer_norm`](agdlab_autograd::Var::layer_norm).
pub struct LayerNorm {
    pub weight: Param,
    pub bias: Param,
    pub eps: f32,
}

impl LayerNorm {
    /// PyTorch's defaults: weight ones, bias zeros (`eps` is 1e-5 there).
    pub fn new(d: usize, eps: f32) -> LayerNorm {
        LayerNorm {
            weight: Param::new(Tensor::ones(&[d])),
            bias: Param::new(Tensor::zeros(&[d])),
            eps,
        }
    }
}

impl Module for LayerNorm {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.param("weight", &self.weight);
        walk.param("bias", &self.bias);
    }
}

impl Forward for LayerNorm {
    /// # Shapes
    /// `[.., d] -> [.., d]`.
    fn forward(&self, x: &Var) -> Var {
        x.layer_norm(Some(&self.weight.on(x)), Some(&self.bias.on(x)), self.eps)
    }
}
