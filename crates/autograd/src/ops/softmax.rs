//! Softmax family. `log_softmax` is fused for numerical stability; `softmax` is
//! composed as `exp(log_softmax(x))`.

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
}
