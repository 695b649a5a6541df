//! Layer normalisation, fused: one pass for the row statistics, one for the output, and
//! a backward that needs only the normalised values and the inverse deviations.
//!
//! Composed from primitives, a layer norm is a dozen ops and as many temporaries; fused,
//! its backward is the closed form below.

use agdlab_tensor::Tensor;
use rayon::prelude::*;

use crate::var::Var;

/// Rows below this many elements in all are normalised on one thread.
const PARALLEL_ELEMENTS: usize = 1 << 15;

impl Var {
    /// Normalise over the last dimension, then scale and shift:
    ///
    /// ```text
    /// μ = mean(x),  σ² = mean((x-μ)²)  (biased, as PyTorch),  r = 1/sqrt(σ² + eps)
    /// x̂ = (x - μ)·r,   y = x̂·w + b
    /// ```
    ///
    /// Backward, per row of N elements, with `ĝ = dy·w`:
    ///
    /// ```text
    /// dx = (r/N)·(N·ĝ - Σĝ - x̂·Σ(ĝ·x̂)),   dw = Σ_rows dy·x̂,   db = Σ_rows dy
    /// ```
    ///
    /// PyTorch equivalent: `F.layer_norm(x, [x.shape[-1]], w, b, eps)`.
    ///
    /// # Panics
    /// When `x` has rank 0, or `weight`/`bias` are not `[N]`.
    pub fn layer_norm(&self, weight: Option<&Var>, bias: Option<&Var>, eps: f32) -> Var {
        assert!(
            self.rank() >= 1,
            "layer_norm: needs rank >= 1, got shape {:?}",
            self.shape()
        );
        let n = self.shape()[self.rank() - 1];
        for (what, v) in [("weight", weight), ("bias", bias)] {
            if let Some(v) = v {
                assert_eq!(
                    v.shape(),
                    &[n],
                    "layer_norm: {what} {:?} for rows of {n}",
                    v.shape()
                );
            }
        }
        let x = self.value().contiguous();
        let (normalized, inv_std) = normalize_rows(x.as_slice().expect("contiguous"), n, eps);
        let x_hat = Tensor::from_vec(normalized, self.shape()).expect("one value per element");
        let mut out = x_hat.clone();
        if let Some(w) = weight {
            out = out.mul(w.value());
        }
        if let Some(b) = bias {
            out = out.add(b.value());
        }

        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let w = weight.map(|w| w.value().clone());
        let (has_weight, has_bias) = (weight.is_some(), bias.is_some());
        let shape = self.shape().to_vec();
        Var::record("layer_norm", out, &inputs, move |g, grads| {
            let g = g.contiguous();
            let rows = g.numel() / n.max(1);
            grads.add(0, || {
                let g_hat = match &w {
                    Some(w) => g.mul(w),
                    None => g.clone(),
                };
                let dx = input_gradient(
                    g_hat.as_slice().expect("contiguous"),
                    x_hat.as_slice().expect("contiguous"),
                    &inv_std,
                    n,
                );
                Tensor::from_vec(dx, &shape).expect("one value per element")
            });
            let flat = |t: &Tensor| t.reshape_to(&[rows, n]);
            if has_weight {
                grads.add(1, || flat(&g.mul(&x_hat)).sum_dims(&[0], false));
            }
            if has_bias {
                grads.add(1 + has_weight as usize, || flat(&g).sum_dims(&[0], false));
            }
        })
    }
}

/// `x̂` of every row of `n` elements, and each row's `1/sqrt(σ² + eps)`. Statistics in f64.
fn normalize_rows(x: &[f32], n: usize, eps: f32) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len().checked_div(n).unwrap_or(0);
    let mut out = vec![0.0f32; x.len()];
    let mut inv_std = vec![0.0f32; rows];
    let row = |(src, (dst, r)): (&[f32], (&mut [f32], &mut f32))| {
        let mean = src.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = src.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = ((v as f64 - mean) * inv) as f32;
        }
        *r = inv as f32;
    };
    if n == 0 {
        return (out, inv_std);
    }
    if x.len() >= PARALLEL_ELEMENTS {
        x.par_chunks(n)
            .zip(out.par_chunks_mut(n).zip(inv_std.par_iter_mut()))
            .for_each(row);
    } else {
        x.chunks(n)
            .zip(out.chunks_mut(n).zip(inv_std.iter_mut()))
            .for_each(row);
    }
    (out, inv_std)
}

/// `dx = (r/N)·(N·ĝ - Σĝ - x̂·Σ(ĝ·x̂))` for every row.
fn input_gradient(g_hat: &[f32], x_hat: &[f32], inv_std: &[f32], n: usize) -> Vec<f32> {
    let mut dx = vec![0.0f32; g_hat.len()];
    if n == 0 {
        return dx;
    }
    let row = |dx: &mut [f32], g: &[f32], xh: &[f32], r: f32| {
        let sum_g: f64 = g.iter().map(|&v| v as f64).sum();
        let sum_gx: f64 = g.iter().zip(xh).map(|(&a, &b)| a as f64 * b as f64).sum();
        let scale = r as f64 / n as f64;
        for ((d, &gi), &xi) in dx.iter_mut().zip(g).zip(xh) {
            *d = (scale * (n as f64 * gi as f64 - sum_g - xi as f64 * sum_gx)) as f32;
        }
    };
    if g_hat.len() >= PARALLEL_ELEMENTS {
        dx.par_chunks_mut(n)
            .zip(g_hat.par_chunks(n).zip(x_hat.par_chunks(n)))
            .zip(inv_std.par_iter())
            .for_each(|((dx, (g, xh)), &r)| row(dx, g, xh, r));
    } else {
        dx.chunks_mut(n)
            .zip(g_hat.chunks(n).zip(x_hat.chunks(n)))
            .zip(inv_std.iter())
            .for_each(|((dx, (g, xh)), &r)| row(dx, g, xh, r));
    }
    dx
}
