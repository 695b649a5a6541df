//! Fully connected layer. PyTorch equivalent: `torch.nn.Linear`.

use agdlab_autograd::{Param, Var};
use rand::Rng;

use crate::init;
use crate::module::{Forward, Module, Walk};

/// `y = x·Wᵀ + b`, weight `[out, in]`, bias `[out]` (PyTorch's layout).
pub struct Linear {
    pub weight: Param,
    pub bias: Option<Param>,
}

impl Linear {
    /// PyTorch's default initialisation: W and b from U(-1/√in, 1/√in).
    pub fn new(in_features: usize, out_features: usize, bias: bool, rng: &mut impl Rng) -> Linear {
        let weight =
            init::kaiming_uniform(&[out_features, in_features], in_features, 5f32.sqrt(), rng);
        let bound = 1.0 / (in_features as f32).sqrt();
        let bias = bias.then(|| Param::new(init::uniform(&[out_features], bound, rng)));
        Linear {
            weight: Param::new(weight),
            bias,
        }
    }

    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl Module for Linear {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.param("weight", &self.weight);
        if let Some(b) = &self.bias {
            walk.param("bias", b);
        }
    }
}

impl Forward for Linear {
    /// # Shapes
    /// `[.., in] -> [.., out]`.
    fn forward(&self, input: &Var) -> Var {
        let bias = self.bias.as_ref().map(|b| b.on(input));
        input.linear(&self.weight.on(input), bias.as_ref())
    }
}
