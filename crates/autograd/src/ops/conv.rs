//! 2-D convolution, fused for speed: the forward is im2col + `sgemm` per image, and each
//! gradient stays in `sgemm` (see `agdlab_tensor::conv` for the lowering).

use agdlab_tensor::conv::{conv2d_bias_grad, conv2d_input_grad, conv2d_weight_grad};
use agdlab_tensor::Conv2dSpec;

use crate::var::Var;

impl Var {
    /// 2-D convolution of `self: [n, in, h, w]` with `weight: [out, in/groups, kh, kw]`
    /// and an optional `bias: [out]`:
    ///
    /// ```text
    /// y[i, o] = b[o] + Σ_{c, ki, kj} W[o, c, ki, kj] · x[i, c, oy·s + ki·d - p, ox·s + kj·d - p]
    /// dx = col2im(Wᵀ · dy)     dW += dy · im2col(x)ᵀ over the batch     db = Σ dy
    /// ```
    ///
    /// The weight gradient is accumulated into the weight's one gradient buffer.
    ///
    /// PyTorch equivalent: `torch.nn.functional.conv2d(x, weight, bias, stride, padding,
    /// dilation, groups)`.
    ///
    /// # Shapes
    /// `[n, in, h, w] -> [n, out, (h + 2p - d·(kh-1) - 1)/s + 1, (w + ...)/s + 1]`.
    ///
    /// # Panics
    /// When the shapes do not fit (see `agdlab_tensor::ConvGeometry::new`) or the bias
    /// is not `[out]`.
    pub fn conv2d(&self, weight: &Var, bias: Option<&Var>, spec: Conv2dSpec) -> Var {
        let (x, w) = (self.value().contiguous(), weight.value().contiguous());
        let out = x.conv2d(&w, bias.map(|b| b.value()), spec);
        let inputs: Vec<&Var> = match bias {
            Some(b) => vec![self, weight, b],
            None => vec![self, weight],
        };
        Var::record("conv2d", out, &inputs, move |g, grads| {
            let g = g.contiguous();
            grads.add_with(0, |dx| conv2d_input_grad(&g, &w, spec, dx));
            grads.add_with(1, |dw| conv2d_weight_grad(&g, &x, spec, dw));
            if grads.len() == 3 {
                grads.add(2, || conv2d_bias_grad(&g));
            }
        })
    }
}
