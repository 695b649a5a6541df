//! Pooling layers: [`MaxPool2d`], [`AvgPool2d`] and [`GlobalAvgPool2d`].

use agdlab_autograd::Var;
use agdlab_tensor::Pool2dSpec;

use crate::module::{Forward, Module, Walk};

/// The largest value of each window of every plane. PyTorch equivalent:
/// `torch.nn.MaxPool2d(kernel_size, stride, padding)` (stride defaults to the kernel).
#[derive(Clone, Copy, Debug)]
pub struct MaxPool2d {
    pub spec: Pool2dSpec,
}

impl MaxPool2d {
    /// `kernel × kernel` windows with stride `kernel`, no padding (PyTorch's defaults);
    /// other strides and padding through [`Pool2dSpec`]'s builder:
    /// `MaxPool2d { spec: Pool2dSpec::new(3).stride(2).padding(1) }`.
    pub fn new(kernel: usize) -> MaxPool2d {
        MaxPool2d {
            spec: Pool2dSpec::new(kernel),
        }
    }
}

/// The mean of each window of every plane, padding counted as zeros. PyTorch
/// equivalent: `torch.nn.AvgPool2d(kernel_size, stride, padding)`.
#[derive(Clone, Copy, Debug)]
pub struct AvgPool2d {
    pub spec: Pool2dSpec,
}

impl AvgPool2d {
    /// `kernel × kernel` windows with stride `kernel`, no padding (PyTorch's defaults).
    pub fn new(kernel: usize) -> AvgPool2d {
        AvgPool2d {
            spec: Pool2dSpec::new(kernel),
        }
    }
}

/// The mean of every plane: `[n, c, h, w] -> [n, c]`, the head of a ResNet.
/// PyTorch equivalent: `torch.nn.AdaptiveAvgPool2d(1)` followed by `torch.nn.Flatten()`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalAvgPool2d;

impl Module for MaxPool2d {
    fn visit(&self, _walk: &mut Walk<'_>) {}
}

impl Module for AvgPool2d {
    fn visit(&self, _walk: &mut Walk<'_>) {}
}

impl Module for GlobalAvgPool2d {
    fn visit(&self, _walk: &mut Walk<'_>) {}
}

impl Forward for MaxPool2d {
    /// # Shapes
    /// `[n, c, h, w] -> [n, c, (h + 2p - k)/s + 1, (w + 2p - k)/s + 1]`.
    ///
    /// # Panics
    /// When the input is not of rank 4 or smaller than the window.
    fn forward(&self, input: &Var) -> Var {
        input.max_pool2d(self.spec)
    }
}

impl Forward for AvgPool2d {
    /// # Shapes
    /// As [`MaxPool2d`].
    ///
    /// # Panics
    /// When the input is not of rank 4 or smaller than the window.
    fn forward(&self, input: &Var) -> Var {
        input.avg_pool2d(self.spec)
    }
}

impl Forward for GlobalAvgPool2d {
    /// # Shapes
    /// `[n, c, h, w] -> [n, c]`.
    ///
    /// # Panics
    /// When the input is not of rank 4.
    fn forward(&self, input: &Var) -> Var {
        input.global_avg_pool2d()
    }
}
