//! Parameter initialisers, each drawing from an explicit seeded RNG.
//!
//! Names and formulas follow `torch.nn.init`. PyTorch's default for `Linear` and
//! `Conv2d` is `kaiming_uniform_(w, a=√5)`, which works out to U(-1/√fan_in, 1/√fan_in),
//! with the bias drawn from the same range.

use agdlab_tensor::Tensor;
use rand::Rng;

/// U(-bound, bound).
pub fn uniform(shape: &[usize], bound: f32, rng: &mut impl Rng) -> Tensor {
    if bound == 0.0 {
        return Tensor::zeros(shape);
    }
    Tensor::uniform(shape, -bound, bound, rng)
}

/// `torch.nn.init.kaiming_uniform_(w, a)` with fan-in mode and leaky-ReLU gain:
/// bound = gain·√(3/fan_in), gain = √(2/(1+a²)).
pub fn kaiming_uniform(shape: &[usize], fan_in: usize, a: f32, rng: &mut impl Rng) -> Tensor {
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    uniform(shape, gain * (3.0 / fan_in as f32).sqrt(), rng)
}

/// `torch.nn.init.xavier_uniform_(w)`: bound = √(6/(fan_in+fan_out)).
pub fn xavier_uniform(
    shape: &[usize],
    fan_in: usize,
    fan_out: usize,
    rng: &mut impl Rng,
) -> Tensor {
    uniform(shape, (6.0 / (fan_in + fan_out) as f32).sqrt(), rng)
}

/// N(0, std²).
pub fn normal(shape: &[usize], std: f32, rng: &mut impl Rng) -> Tensor {
    Tensor::normal(shape, 0.0, std, rng)
}
