//! Reductions. The backward of a sum spreads the gradient back over the summed axes
//! (a broadcast); a max sends it to the position of the maximum.

use agdlab_tensor::index::Indices;
use agdlab_tensor::Tensor;

use crate::var::Var;

/// The shape of `shape` with `dims` kept as size 1.
fn keepdim_shape(shape: &[usize], dims: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
        .collect()
}

impl Var {
    /// Sum over `dims`.  d/dx = 1 for every summed element: broadcast the gradient back.
    pub fn sum_dims(&self, dims: &[usize], keepdim: bool) -> Var {
        let input_shape = self.shape().to_vec();
        let kept = keepdim_shape(&input_shape, dims);
        let out = self.value().sum_dims(dims, keepdim);
        Var::record("sum_dims", out, &[self], move |g, grads| {
            grads.add(0, || {
                g.reshape_to(&kept).broadcast_to(&input_shape).contiguous()
            })
        })
    }

    /// Sum of all elements (rank 0).  d/dx = 1.
    pub fn sum_all(&self) -> Var {
        let input_shape = self.shape().to_vec();
        Var::record(
            "sum_all",
            self.value().sum_all(),
            &[self],
            move |g, grads| grads.add(0, || Tensor::full(&input_shape, g.item())),
        )
    }

    /// Mean over `dims`.  d/dx = 1/n for each of the n averaged elements.
    pub fn mean_dims(&self, dims: &[usize], keepdim: bool) -> Var {
        let n: usize = dims.iter().map(|&d| self.shape()[d]).product();
        self.sum_dims(dims, keepdim).mul_scalar(1.0 / n as f32)
    }

    /// Mean of all elements (rank 0).
    pub fn mean_all(&self) -> Var {
        let n = self.value().numel();
        self.sum_all().mul_scalar(1.0 / n as f32)
    }

    /// Maximum along `dim`. The gradient goes to the first position of the maximum
    /// (the index `argmax` returns), as in PyTorch's `max(dim)`.
    pub fn max_dim(&self, dim: usize, keepdim: bool) -> Var {
        let x = self.value().clone();
        let out = x.max_dim(dim, keepdim);
        let kept = keepdim_shape(x.shape(), &[dim]);
        Var::record("max_dim", out, &[self], move |g, grads| {
            grads.add(0, || {
                let winners =
                    Indices::new(x.argmax_dim(dim), &kept).expect("one index per kept slot");
                Tensor::zeros(x.shape()).scatter_add(dim, &winners, &g.reshape_to(&kept))
            })
        })
    }
}
