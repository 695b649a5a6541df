//! Parameter-free layers: activations and `Flatten`.

use agdlab_autograd::Var;

use crate::module::{Forward, Module, Walk};

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Module for $name {
            fn visit(&self, _walk: &mut Walk<'_>) {}
        }

        impl Forward for $name {
            fn forward(&self, $x: &Var) -> Var {
                $body
            }
        }
    };
}

activation!(
    /// `max(x, 0)`, NaN staying NaN. PyTorch equivalent: `torch.nn.ReLU`.
    ReLU, |x| x.relu()
);
activation!(
    /// `tanh x`. PyTorch equivalent: `torch.nn.Tanh`.
    Tanh, |x| x.tanh()
);
activation!(
    /// `1/(1+e^-x)`. PyTorch equivalent: `torch.nn.Sigmoid`.
    Sigmoid, |x| x.sigmoid()
);
activation!(
    /// Exact GELU, `x·Φ(x) = ½x(1 + erf(x/√2))`. PyTorch equivalent: `torch.nn.GELU()`.
    GELU, |x| gelu(x)
);
activation!(
    /// GELU's tanh approximation, `½x(1 + tanh(√(2/π)·(x + 0.044715·x³)))`. PyTorch
    /// equivalent: `torch.nn.GELU(approximate="tanh")`.
    GeluTanh, |x| gelu_tanh(x)
);
activation!(
    /// `[n, d1, d2, ..] -> [n, d1·d2·..]`. PyTorch equivalent: `torch.nn.Flatten()`.
    Flatten, |x| x.flatten_from(1)
);

/// `½x(1 + erf(x/√2))`: the fused op [`Var::gelu`].
pub fn gelu(x: &Var) -> Var {
    x.gelu()
}

/// `½x(1 + tanh(√(2/π)·(x + 0.044715·x³)))`: the fused op [`Var::gelu_tanh`].
pub fn gelu_tanh(x: &Var) -> Var {
    x.gelu_tanh()
}
