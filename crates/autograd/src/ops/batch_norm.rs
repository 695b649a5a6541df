//! Batch normalisation over the channels of `[n, c, ...]`, fused: one op with its own
//! backward rather than a chain of means, subtractions and divisions (fewer passes over
//! the activations, and the statistics stay accurate in one pass over them).
//!
//! Per channel, with `m = n·(h·w·...)` elements, batch statistics μ and σ² (biased),
//! `r = 1/√(σ² + ε)` and `x̂ = (x - μ)·r`:
//!
//! ```text
//! forward   y  = γ·x̂ + β                        (one scale and shift per channel)
//! backward  dβ = Σ dy        dγ = Σ dy·x̂
//!           dx = γ·r·(dy - Σdy/m - x̂·Σ(dy·x̂)/m)  (training: μ and σ² depend on x)
//!           dx = γ·r·dy                            (evaluation: fixed statistics)
//! ```
//!
//! The `_relu` forms apply a ReLU in the same pass, `y = max(γ·x̂ + β, 0)`; their
//! backward first masks `dy` to where `y > 0` (one pass), then runs the above. A ResNet
//! applies a ReLU after most of its batch norms, so this saves two of the four passes
//! an unfused ReLU costs.

use agdlab_tensor::batch_norm::{
    batch_norm_grad_sums, batch_norm_input_grad, channel_affine, channel_layout, channel_mean_var,
};
use agdlab_tensor::elementwise::relu_grad;
use agdlab_tensor::Tensor;

use crate::var::Var;

/// `Some(γ)` as a vector, or ones.
fn gamma_of(weight: Option<&Var>, c: usize) -> Vec<f32> {
    weight.map_or_else(|| vec![1.0; c], |w| w.value().to_vec())
}

fn check_affine(op: &str, x: &[usize], weight: Option<&Var>, bias: Option<&Var>) {
    let c = x[1];
    for (what, p) in [("weight", weight), ("bias", bias)] {
        if let Some(p) = p {
            assert_eq!(
                p.shape(),
                &[c],
                "{op}: {what} {:?} for {c} channels of {x:?}",
                p.shape()
            );
        }
    }
}

/// How the op was run: with batch statistics (`training`) or given ones, and whether a
/// ReLU follows in the same pass.
#[derive(Clone, Copy)]
struct Flavour {
    training: bool,
    relu: bool,
}

/// Record the op: the backward is the same in both modes but for the statistics'
/// dependence on `x` (`training`).
fn record(
    name: &'static str,
    x: &Var,
    out: Tensor,
    (mean, invstd): (Vec<f32>, Vec<f32>),
    (weight, bias): (Option<&Var>, Option<&Var>),
    Flavour { training, relu }: Flavour,
) -> Var {
    let [n, c, l] = channel_layout(name, x.shape());
    let gamma = gamma_of(weight, c);
    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    let (has_weight, has_bias) = (weight.is_some(), bias.is_some());
    let x_value = x.value().clone();
    let saved_out = relu.then(|| out.clone());
    Var::record(name, out, &inputs, move |g, grads| {
        let g = match &saved_out {
            Some(y) => relu_grad(&g, y),
            None => g,
        };
        let (sum_dy, sum_dy_xmu) = batch_norm_grad_sums(&g, &x_value, &mean);
        let count = (n * l).max(1) as f64;
        grads.add(0, || {
            let mut a = vec![0.0f32; c];
            let mut b = vec![0.0f32; c];
            let mut d = vec![0.0f32; c];
            for ch in 0..c {
                let (gr, r) = (gamma[ch] as f64, invstd[ch] as f64);
                a[ch] = (gr * r) as f32;
                if training {
                    // dx = γr·dy - γr³·(x-μ)·Σdy(x-μ)/m - γr·Σdy/m
                    let slope = -gr * r * r * r * sum_dy_xmu[ch] / count;
                    b[ch] = slope as f32;
                    d[ch] = (-gr * r * sum_dy[ch] / count - slope * mean[ch] as f64) as f32;
                }
            }
            batch_norm_input_grad(&g, &x_value, &a, &b, &d)
        });
        let mut next = 1;
        if has_weight {
            let dgamma = (0..c)
                .map(|ch| (sum_dy_xmu[ch] * invstd[ch] as f64) as f32)
                .collect();
            grads.add(next, || Tensor::from_vec(dgamma, &[c]).expect("c values"));
            next += 1;
        }
        if has_bias {
            let dbeta = sum_dy.iter().map(|&s| s as f32).collect();
            grads.add(next, || Tensor::from_vec(dbeta, &[c]).expect("c values"));
        }
    })
}

/// `y = γ·(x - μ)/√(σ² + ε) + β` per channel, folded into one scale and shift.
fn normalize(
    x: &Tensor,
    (mean, invstd): (&[f32], &[f32]),
    weight: Option<&Var>,
    bias: Option<&Var>,
    relu: bool,
) -> Tensor {
    let c = mean.len();
    let gamma = gamma_of(weight, c);
    let beta = bias.map_or_else(|| vec![0.0; c], |b| b.value().to_vec());
    let scale: Vec<f32> = (0..c).map(|ch| gamma[ch] * invstd[ch]).collect();
    let shift: Vec<f32> = (0..c).map(|ch| beta[ch] - mean[ch] * scale[ch]).collect();
    channel_affine(x, &scale, &shift, relu)
}

fn inverse_std(var: &[f32], eps: f32) -> Vec<f32> {
    var.iter()
        .map(|&v| 1.0 / ((v as f64 + eps as f64).sqrt()) as f32)
        .collect()
}

impl Var {
    /// Batch normalisation with the batch's own statistics (training mode), over the
    /// channels (dim 1) of `[n, c, ...]`, with optional affine `weight` γ and `bias` β
    /// (each `[c]`). Returns the output and the batch's per-channel mean and biased
    /// variance, from which the caller updates its running statistics. The gradient
    /// flows through the statistics too (see the module documentation).
    ///
    /// PyTorch equivalent: `torch.nn.functional.batch_norm(x, None, None, weight, bias,
    /// training=True, eps=eps)`.
    ///
    /// # Shapes
    /// `[n, c, ...] -> [n, c, ...]`; the statistics are `[c]`.
    ///
    /// # Panics
    /// When the rank is below 2 or γ or β is not `[c]`.
    pub fn batch_norm_train(
        &self,
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f32,
    ) -> (Var, Tensor, Tensor) {
        self.batch_norm_train_impl(weight, bias, eps, false)
    }

    /// [`Var::batch_norm_train`] followed by a ReLU, fused into the same passes.
    /// PyTorch equivalent: `F.relu(F.batch_norm(x, None, None, weight, bias, True, eps=eps))`.
    ///
    /// # Panics
    /// As [`Var::batch_norm_train`].
    pub fn batch_norm_relu_train(
        &self,
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f32,
    ) -> (Var, Tensor, Tensor) {
        self.batch_norm_train_impl(weight, bias, eps, true)
    }

    /// Batch normalisation with given statistics (evaluation mode): `y = γ·(x -
    /// mean)/√(var + ε) + β` per channel of `[n, c, ...]`; `mean` and `var` (each `[c]`)
    /// are constants.
    ///
    /// PyTorch equivalent: `torch.nn.functional.batch_norm(x, mean, var, weight, bias,
    /// training=False, eps=eps)`.
    ///
    /// # Shapes
    /// `[n, c, ...] -> [n, c, ...]`.
    ///
    /// # Panics
    /// When the rank is below 2 or γ, β, `mean` or `var` is not `[c]`.
    pub fn batch_norm_eval(
        &self,
        mean: &Tensor,
        var: &Tensor,
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f32,
    ) -> Var {
        self.batch_norm_eval_impl((mean, var), (weight, bias), eps, false)
    }

    /// [`Var::batch_norm_eval`] followed by a ReLU, fused into the same pass.
    ///
    /// # Panics
    /// As [`Var::batch_norm_eval`].
    pub fn batch_norm_relu_eval(
        &self,
        mean: &Tensor,
        var: &Tensor,
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f32,
    ) -> Var {
        self.batch_norm_eval_impl((mean, var), (weight, bias), eps, true)
    }

    fn batch_norm_train_impl(
        &self,
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f32,
        relu: bool,
    ) -> (Var, Tensor, Tensor) {
        check_affine("batch_norm", self.shape(), weight, bias);
        let (mean, var) = channel_mean_var(self.value());
        let (mean_v, invstd) = (mean.to_vec(), inverse_std(&var.to_vec(), eps));
        let out = normalize(self.value(), (&mean_v, &invstd), weight, bias, relu);
        let flavour = Flavour {
            training: true,
            relu,
        };
        let y = record(
            "batch_norm",
            self,
            out,
            (mean_v, invstd),
            (weight, bias),
            flavour,
        );
        (y, mean, var)
    }

    fn batch_norm_eval_impl(
        &self,
        (mean, var): (&Tensor, &Tensor),
        affine: (Option<&Var>, Option<&Var>),
        eps: f32,
        relu: bool,
    ) -> Var {
        check_affine("batch_norm_eval", self.shape(), affine.0, affine.1);
        let c = self.shape()[1];
        assert!(
            mean.shape() == [c] && var.shape() == [c],
            "batch_norm_eval: statistics {:?} and {:?} for {c} channels of {:?}",
            mean.shape(),
            var.shape(),
            self.shape()
        );
        let (mean_v, invstd) = (mean.to_vec(), inverse_std(&var.to_vec(), eps));
        let out = normalize(self.value(), (&mean_v, &invstd), affine.0, affine.1, relu);
        let flavour = Flavour {
            training: false,
            relu,
        };
        record(
            "batch_norm_eval",
            self,
            out,
            (mean_v, invstd),
            affine,
            flavour,
        )
    }
}
