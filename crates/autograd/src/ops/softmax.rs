//! Softmax family. `log_softmax` is fused for numerical stability; `softmax` is
//! composed as `exp(log_softmax(x))`; `softmax_masked` (attention's) is fused with its
//! additive mask.

use agdlab_tensor::Tensor;

use crate::var::Var;

impl Var {
    /// `y = x - logsumexp(x)` along `dim`.  dx = dy - softmax(x)·Σ dy (along `dim`).
    pub fn log_softmax(&self, dim: usize) -> Var {
        let out = self.value().log_softmax(dim);
        let saved = out.clone();
        Var::record("log_softmax", out, &[self], move |g, grads| {
            grads.add(0, || {
                let softmax = saved.exp();
                let total = g.sum_dims(&[dim], true);
                g.sub(&softmax.mul(&total))
            })
        })
    }

    /// `softmax(x) = exp(log_softmax(x))` along `dim`.
    pub fn softmax(&self, dim: usize) -> Var {
        self.log_softmax(dim).exp()
    }

    /// Softmax along the last dimension of `x + mask`, where `mask` (broadcast to `x`'s
    /// shape) holds 0 where attending is allowed and `-inf` where it is not. Each row is
    /// shifted by its maximum before `exp`, so large scores do not overflow; masked
    /// entries come out exactly 0. A row masked entirely has no softmax and comes out NaN,
    /// as in PyTorch.
    ///
    /// Backward, per row, with `y` the output: `dx = y·(dy - Σ dy·y)` (the mask is a
    /// constant).
    ///
    /// PyTorch equivalent: `torch.softmax(x + mask, -1)`, as in
    /// `F.scaled_dot_product_attention`.
    ///
    /// # Panics
    /// When `x` has rank 0 or `mask` does not broadcast to `x`'s shape.
    pub fn softmax_masked(&self, mask: Option<&Tensor>) -> Var {
        assert!(
            self.rank() >= 1,
            "softmax_masked: needs rank >= 1, got shape {:?}",
            self.shape()
        );
        let last = self.rank() - 1;
        let scores = match mask {
            Some(m) => self.value().add(&m.broadcast_to(self.shape())),
            None => self.value().clone(),
        };
        let out = scores.softmax(last);
        let y = out.clone();
        Var::record("softmax_masked", out, &[self], move |g, grads| {
            grads.add(0, || {
                let dot = g.mul(&y).sum_dims(&[last], true);
                y.mul(&g.sub(&dot))
            })
        })
    }
}
