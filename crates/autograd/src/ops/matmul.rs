//! Matrix product, 2-D or batched with broadcast batch dims.

use crate::var::Var;

impl Var {
    /// `C = A·B`.  dA = dC·Bᵀ, dB = Aᵀ·dC, each summed back over broadcast batch dims.
    /// The transposes are views: no copy reaches `sgemm`.
    pub fn matmul(&self, other: &Var) -> Var {
        let (a, b) = (self.value().clone(), other.value().clone());
        let out = a.matmul(&b);
        Var::record("matmul", out, &[self, other], move |g, needs| {
            vec![
                needs[0].then(|| g.matmul(&b.t()).sum_to(a.shape())),
                needs[1].then(|| a.t().matmul(g).sum_to(b.shape())),
            ]
        })
    }
}
