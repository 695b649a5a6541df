//! 2-D pooling: max (backward adds each gradient at the window's winner), average
//! (backward spreads it over the window) and global average.

use agdlab_tensor::pool::{avg_pool2d_backward, global_avg_pool2d_backward, max_pool2d_backward};
use agdlab_tensor::Pool2dSpec;

use crate::var::Var;

impl Var {
    /// Max pooling over windows of `[n, c, h, w]`. Backward:
    /// `dx[winner of window] += dy[window]` (NaN wins, as in PyTorch).
    /// PyTorch equivalent: `torch.nn.functional.max_pool2d(x, kernel, stride, padding)`.
    ///
    /// # Shapes
    /// `[n, c, h, w] -> [n, c, (h + 2p - k)/s + 1, (w + 2p - k)/s + 1]`.
    ///
    /// # Panics
    /// As `agdlab_tensor::Pool2dSpec::output_shape`.
    pub fn max_pool2d(&self, spec: Pool2dSpec) -> Var {
        let (out, indices) = self.value().max_pool2d(spec);
        let input_shape = self.shape().to_vec();
        Var::record("max_pool2d", out, &[self], move |g, grads| {
            grads.add(0, || max_pool2d_backward(&g, &indices, &input_shape))
        })
    }

    /// Average pooling over windows of `[n, c, h, w]`, padding counted as zeros. Backward:
    /// `dx[p] += dy[window] / (kh·kw)` for every pixel `p` of the window.
    /// PyTorch equivalent: `torch.nn.functional.avg_pool2d(x, kernel, stride, padding)`.
    ///
    /// # Shapes
    /// As [`Var::max_pool2d`].
    ///
    /// # Panics
    /// As `agdlab_tensor::Pool2dSpec::output_shape`.
    pub fn avg_pool2d(&self, spec: Pool2dSpec) -> Var {
        let out = self.value().avg_pool2d(spec);
        let input_shape = self.shape().to_vec();
        Var::record("avg_pool2d", out, &[self], move |g, grads| {
            grads.add(0, || avg_pool2d_backward(&g, &input_shape, spec))
        })
    }

    /// The mean of every plane.   dx[i, c, y, x] = dy[i, c] / (h·w).
    /// PyTorch equivalent: `x.mean((2, 3))` (`nn.AdaptiveAvgPool2d(1)` + `nn.Flatten()`).
    ///
    /// # Shapes
    /// `[n, c, h, w] -> [n, c]`.
    ///
    /// # Panics
    /// When the input is not of rank 4.
    pub fn global_avg_pool2d(&self) -> Var {
        let out = self.value().global_avg_pool2d();
        let input_shape = self.shape().to_vec();
        Var::record("global_avg_pool2d", out, &[self], move |g, grads| {
            grads.add(0, || global_avg_pool2d_backward(&g, &input_shape))
        })
    }
}
