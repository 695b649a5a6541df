//! The affine map of a `Linear` layer, fused for speed: `y = x·Wᵀ + b`.
//!
//! Composed from primitives this would be a matmul against a transposed view, a
//! broadcast and an add, and its weight gradient would come out transposed (needing a
//! copy). Fused, the forward is one `sgemm` ([`agdlab_tensor::Tensor::linear`], which
//! folds the bias into a large product), and each gradient is one `sgemm` producing its
//! natural layout.

use crate::var::Var;

impl Var {
    /// `y = x·Wᵀ + b` for `x: [.., in]`, `W: [out, in]`, `b: [out]`.
    ///   dx = dy·W,   dW = dyᵀ·x,   db = Σ_rows dy.
    /// PyTorch equivalent: `torch.nn.functional.linear(x, W, b)`.
    ///
    /// # Panics
    /// When `x`'s last dim differs from `W`'s second, or `b` is not `[out]`.
    pub fn linear(&self, weight: &Var, bias: Option<&Var>) -> Var {
        let (x, w) = (self.value().clone(), weight.value().clone());
        assert!(
            w.rank() == 2 && x.rank() >= 1 && x.shape()[x.rank() - 1] == w.shape()[1],
            "linear: input {:?} does not fit weight {:?} (expected [.., {}])",
            x.shape(),
            w.shape(),
            w.shape().get(1).copied().unwrap_or(0)
        );
        let (fan_in, fan_out) = (w.shape()[1], w.shape()[0]);
        let mut out_shape = x.shape().to_vec();
        *out_shape.last_mut().expect("rank >= 1") = fan_out;
        let x2 = x.reshape_to(&[x.numel() / fan_in, fan_in]);

        let out = x2
            .linear(&w, bias.map(|b| b.value()))
            .reshape_to(&out_shape);

        let inputs: Vec<&Var> = match bias {
            Some(b) => vec![self, weight, b],
            None => vec![self, weight],
        };
        let x_shape = x.shape().to_vec();
        Var::record("linear", out, &inputs, move |g, grads| {
            let g2 = g.reshape_to(&[x2.shape()[0], fan_out]);
            // dx = dy·W, straight into x's gradient when x is a matrix.
            if x_shape.len() == 2 {
                grads.add_matmul(0, &g2, &w);
            } else {
                grads.add(0, || g2.matmul(&w).reshape_to(&x_shape));
            }
            // dW = dyᵀ·x, accumulated into W's one buffer however often W is used.
            grads.add_matmul(1, &g2.t(), &x2);
            if grads.len() == 3 {
                grads.add(2, || g2.sum_dims(&[0], false));
            }
        })
    }
}
