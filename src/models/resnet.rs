//! ResNets for small images (He, Zhang, Ren & Sun, "Deep Residual Learning for Image
//! Recognition", CVPR 2016, section 4.2): `6k + 2` layers in three stages of basic
//! blocks with 16, 32 and 64 channels. ResNet-20 (`k = 3`) is the CIFAR network of the
//! paper, here taking `[n, 1, 28, 28]` grayscale images.

use rand::Rng;

use crate::autograd::Var;
use crate::nn::init;
use crate::nn::{BatchNorm2d, Conv2d, Forward, Linear, Module, Walk};
use crate::tensor::Conv2dSpec;

/// A 3x3 convolution without bias, initialised as the ResNet paper does (He et al.
/// 2015): N(0, 2/fan_in), `torch.nn.init.kaiming_normal_(w)`.
fn conv(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    rng: &mut impl Rng,
) -> Conv2d {
    let spec = Conv2dSpec::default().stride(stride).padding(kernel / 2);
    let conv = Conv2d::new(in_channels, out_channels, kernel, spec, false, rng);
    let fan_in = in_channels * kernel * kernel;
    let std = (2.0 / fan_in as f32).sqrt();
    conv.weight
        .set(init::normal(&conv.weight.shape(), std, rng))
        .expect("same shape");
    conv
}

/// Two 3x3 convolutions with batch norm, plus the input (a projection when the shape
/// changes):
///
/// ```text
/// out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
/// shortcut = identity, or 1x1 conv (stride s) + batch norm when the size or width changes
/// ```
///
/// The projection shortcut is the paper's option B; names follow the common PyTorch
/// definition (`shortcut.0` the 1x1 convolution, `shortcut.1` its batch norm).
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    pub conv2: Conv2d,
    pub bn2: BatchNorm2d,
    pub shortcut: Option<(Conv2d, BatchNorm2d)>,
}

impl BasicBlock {
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        rng: &mut impl Rng,
    ) -> BasicBlock {
        let shortcut = (stride != 1 || in_channels != out_channels).then(|| {
            (
                conv(in_channels, out_channels, 1, stride, rng),
                BatchNorm2d::new(out_channels),
            )
        });
        BasicBlock {
            conv1: conv(in_channels, out_channels, 3, stride, rng),
            bn1: BatchNorm2d::new(out_channels),
            conv2: conv(out_channels, out_channels, 3, 1, rng),
            bn2: BatchNorm2d::new(out_channels),
            shortcut,
        }
    }
}

/// The projection shortcut as PyTorch's `nn.Sequential(conv, bn)` names it.
struct Shortcut<'a>(&'a Conv2d, &'a BatchNorm2d);

impl Module for Shortcut<'_> {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("0", self.0);
        walk.child("1", self.1);
    }
}

impl Module for BasicBlock {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("conv1", &self.conv1);
        walk.child("bn1", &self.bn1);
        walk.child("conv2", &self.conv2);
        walk.child("bn2", &self.bn2);
        if let Some((conv, bn)) = &self.shortcut {
            walk.child("shortcut", &Shortcut(conv, bn));
        }
    }
}

impl Forward for BasicBlock {
    fn forward(&self, x: &Var) -> Var {
        let out = self.bn1.forward_relu(&self.conv1.forward(x));
        let out = self.bn2.forward(&self.conv2.forward(&out));
        let shortcut = match &self.shortcut {
            Some((conv, bn)) => bn.forward(&conv.forward(x)),
            None => x.clone(),
        };
        out.add_relu(&shortcut)
    }
}

/// A stage: blocks run in order, named `"0"`, `"1"`, ... as in `nn.Sequential`.
struct Stage<'a>(&'a [BasicBlock]);

impl Module for Stage<'_> {
    fn visit(&self, walk: &mut Walk<'_>) {
        for (i, block) in self.0.iter().enumerate() {
            walk.child(&i.to_string(), block);
        }
    }
}

/// A ResNet of depth `6k + 2` for small images:
///
/// ```text
/// conv1 3x3, in -> 16, bn1, ReLU                              [n, 16, 28, 28]
/// layer1: k blocks, 16 channels                               [n, 16, 28, 28]
/// layer2: k blocks, 32 channels, the first with stride 2      [n, 32, 14, 14]
/// layer3: k blocks, 64 channels, the first with stride 2      [n, 64, 7, 7]
/// global average pool, fc 64 -> classes                       [n, classes]
/// ```
///
/// ResNet-20 ([`ResNet::resnet20`]) has 272,186 parameters for 10 classes. Convolution
/// weights are drawn from N(0, 2/fan_in) (He et al. 2015), batch norms start at γ = 1,
/// β = 0, the classifier has PyTorch's `Linear` default.
///
/// PyTorch equivalent: `benches/pytorch_resnet.py` defines the same network with the
/// same names (`conv1`, `bn1`, `layer2.0.shortcut.0`, ..., `fc`).
pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    pub layer1: Vec<BasicBlock>,
    pub layer2: Vec<BasicBlock>,
    pub layer3: Vec<BasicBlock>,
    pub fc: Linear,
}

impl ResNet {
    /// ResNet-20 for `[n, 1, h, w]` grayscale images.
    pub fn resnet20(classes: usize, rng: &mut impl Rng) -> ResNet {
        ResNet::new(3, 1, classes, rng)
    }

    /// A ResNet of depth `6·blocks_per_stage + 2` for `in_channels`-channel images.
    ///
    /// # Panics
    /// When `blocks_per_stage` is 0.
    pub fn new(
        blocks_per_stage: usize,
        in_channels: usize,
        classes: usize,
        rng: &mut impl Rng,
    ) -> ResNet {
        assert!(
            blocks_per_stage > 0,
            "ResNet: needs at least one block per stage"
        );
        let stage = |in_channels: usize, out_channels: usize, stride: usize, rng: &mut _| {
            (0..blocks_per_stage)
                .map(|i| {
                    let (cin, s) = if i == 0 {
                        (in_channels, stride)
                    } else {
                        (out_channels, 1)
                    };
                    BasicBlock::new(cin, out_channels, s, rng)
                })
                .collect::<Vec<_>>()
        };
        let conv1 = conv(in_channels, 16, 3, 1, rng);
        let (layer1, layer2, layer3) = (
            stage(16, 16, 1, rng),
            stage(16, 32, 2, rng),
            stage(32, 64, 2, rng),
        );
        ResNet {
            conv1,
            bn1: BatchNorm2d::new(16),
            layer1,
            layer2,
            layer3,
            fc: Linear::new(64, classes, true, rng),
        }
    }

    /// The number of weighted layers, `6k + 2`.
    pub fn depth(&self) -> usize {
        6 * self.layer1.len() + 2
    }
}

impl Module for ResNet {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("conv1", &self.conv1);
        walk.child("bn1", &self.bn1);
        walk.child("layer1", &Stage(&self.layer1));
        walk.child("layer2", &Stage(&self.layer2));
        walk.child("layer3", &Stage(&self.layer3));
        walk.child("fc", &self.fc);
    }
}

impl Forward for ResNet {
    /// # Shapes
    /// `[n, in, h, w] -> [n, classes]` (logits).
    ///
    /// # Panics
    /// When the input does not have `in` channels or is smaller than 3x3.
    fn forward(&self, x: &Var) -> Var {
        let mut x = self.bn1.forward_relu(&self.conv1.forward(x));
        for block in self.layer1.iter().chain(&self.layer2).chain(&self.layer3) {
            x = block.forward(&x);
        }
        self.fc.forward(&x.global_avg_pool2d())
    }
}
