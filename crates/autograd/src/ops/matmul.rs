//! Matrix product, 2-D or batched with broadcast batch dims.

use crate::var::Var;

impl Var {
    /// `C = A·B`.  dA = dC·Bᵀ, dB = Aᵀ·dC, each summed back over broadcast batch dims.
    /// The transposes are views: no copy reaches `sgemm`. When an operand was not
    /// broadcast, its gradient accumulates straight into its buffer (`sgemm`, beta = 1).
    ///
    /// PyTorch equivalent: `torch.matmul(a, b)` (for rank ≥ 2).
    pub fn matmul(&self, other: &Var) -> Var {
        let (a, b) = (self.value().clone(), other.value().clone());
        let out = a.matmul(&b);
        let out_shape = out.shape().to_vec();
        // The shape the product has before summing over broadcast batch dims.
        let full = |operand: &[usize]| {
            let mut shape = out_shape.clone();
            let rank = shape.len();
            shape[rank - 2..].copy_from_slice(&operand[operand.len() - 2..]);
            shape
        };
        let (a_full, b_full) = (full(a.shape()) == a.shape(), full(b.shape()) == b.shape());
        Var::record("matmul", out, &[self, other], move |g, grads| {
            if a_full {
                grads.add_matmul(0, &g, &b.t());
            } else {
                grads.add(0, || g.matmul(&b.t()).sum_to(a.shape()));
            }
            if b_full {
                grads.add_matmul(1, &a.t(), &g);
            } else {
                grads.add(1, || a.t().matmul(&g).sum_to(b.shape()));
            }
        })
    }
}
