//! 2-D convolution layer. PyTorch equivalent: `torch.nn.Conv2d`.

use agdlab_autograd::{Param, Var};
use agdlab_tensor::Conv2dSpec;
use rand::Rng;

use crate::init;
use crate::module::{Forward, Module, Walk};

/// A 2-D convolution over NCHW input: weight `[out, in/groups, kh, kw]`, optional bias
/// `[out]` (PyTorch's layouts and names), with stride, padding, dilation and groups in
/// its [`Conv2dSpec`].
///
/// ```
/// use agdlab_autograd::Var;
/// use agdlab_nn::{Conv2d, Forward};
/// use agdlab_tensor::{Conv2dSpec, Tensor};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
/// let conv = Conv2d::new(3, 8, 3, Conv2dSpec::default().stride(2).padding(1), true, &mut rng);
/// let y = conv.forward(&Var::constant(Tensor::zeros(&[4, 3, 28, 28])));
/// assert_eq!(y.shape(), &[4, 8, 14, 14]);
/// ```
pub struct Conv2d {
    pub weight: Param,
    pub bias: Option<Param>,
    pub spec: Conv2dSpec,
}

impl Conv2d {
    /// A square `kernel_size × kernel_size` convolution; see [`Conv2d::with_kernel`].
    ///
    /// # Panics
    /// As [`Conv2d::with_kernel`].
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        spec: Conv2dSpec,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Conv2d {
        Conv2d::with_kernel(
            in_channels,
            out_channels,
            [kernel_size, kernel_size],
            spec,
            bias,
            rng,
        )
    }

    /// A `kh × kw` convolution with PyTorch's default initialisation:
    /// `kaiming_uniform_(w, a=√5)`, that is W and b from U(-1/√fan_in, 1/√fan_in) with
    /// `fan_in = in/groups · kh · kw`.
    ///
    /// # Panics
    /// When `groups` is 0 or does not divide both channel counts, or a kernel side is 0.
    pub fn with_kernel(
        in_channels: usize,
        out_channels: usize,
        [kh, kw]: [usize; 2],
        spec: Conv2dSpec,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Conv2d {
        let groups = spec.groups;
        assert!(
            groups > 0
                && in_channels.is_multiple_of(groups)
                && out_channels.is_multiple_of(groups)
                && kh > 0
                && kw > 0,
            "Conv2d: {groups} group(s) must divide {in_channels} input and {out_channels} output \
             channels, and the kernel {kh}x{kw} must not be empty"
        );
        let fan_in = in_channels / groups * kh * kw;
        let weight = init::kaiming_uniform(
            &[out_channels, in_channels / groups, kh, kw],
            fan_in,
            5f32.sqrt(),
            rng,
        );
        let bound = 1.0 / (fan_in as f32).sqrt();
        let bias = bias.then(|| Param::new(init::uniform(&[out_channels], bound, rng)));
        Conv2d {
            weight: Param::new(weight),
            bias,
            spec,
        }
    }

    pub fn in_channels(&self) -> usize {
        self.weight.shape()[1] * self.spec.groups
    }

    pub fn out_channels(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl Module for Conv2d {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.param("weight", &self.weight);
        if let Some(b) = &self.bias {
            walk.param("bias", b);
        }
    }
}

impl Forward for Conv2d {
    /// # Shapes
    /// `[n, in, h, w] -> [n, out, out_h, out_w]`, with `out_h = (h + 2p - d·(kh-1) - 1)/s
    /// + 1` (likewise `out_w`).
    ///
    /// # Panics
    /// When the input does not have `in` channels or is smaller than the kernel.
    fn forward(&self, input: &Var) -> Var {
        let bias = self.bias.as_ref().map(|b| b.on(input));
        input.conv2d(&self.weight.on(input), bias.as_ref(), self.spec)
    }
}
