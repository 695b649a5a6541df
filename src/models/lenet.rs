//! LeNet-5 (LeCun et al. 1998, "Gradient-based learning applied to document
//! recognition") in its common modern form: ReLU and max pooling instead of the
//! original's scaled tanh and trainable subsampling.

use rand::Rng;

use crate::autograd::Var;
use crate::nn::{Conv2d, Forward, Linear, Module, Walk};
use crate::tensor::{Conv2dSpec, Pool2dSpec};

/// LeNet-5 for `[n, 1, 28, 28]` images, 61,706 parameters:
///
/// ```text
/// conv1  5x5, 1 -> 6, padding 2   ReLU   max-pool 2x2    [n, 6, 14, 14]
/// conv2  5x5, 6 -> 16             ReLU   max-pool 2x2    [n, 16, 5, 5]
/// fc1    400 -> 120  ReLU    fc2  120 -> 84  ReLU    fc3  84 -> classes
/// ```
///
/// PyTorch equivalent (same names, so its `state_dict` loads here):
///
/// ```text
/// class LeNet5(nn.Module):
///     def __init__(self, classes=10):
///         super().__init__()
///         self.conv1 = nn.Conv2d(1, 6, 5, padding=2); self.conv2 = nn.Conv2d(6, 16, 5)
///         self.fc1 = nn.Linear(400, 120); self.fc2 = nn.Linear(120, 84); self.fc3 = nn.Linear(84, classes)
///     def forward(self, x):
///         x = F.max_pool2d(F.relu(self.conv1(x)), 2); x = F.max_pool2d(F.relu(self.conv2(x)), 2)
///         return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))
/// ```
pub struct LeNet5 {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub fc1: Linear,
    pub fc2: Linear,
    pub fc3: Linear,
}

impl LeNet5 {
    /// PyTorch's default initialisation of every layer, from `rng`.
    pub fn new(classes: usize, rng: &mut impl Rng) -> LeNet5 {
        let d = Conv2dSpec::default();
        LeNet5 {
            conv1: Conv2d::new(1, 6, 5, d.padding(2), true, rng),
            conv2: Conv2d::new(6, 16, 5, d, true, rng),
            fc1: Linear::new(16 * 5 * 5, 120, true, rng),
            fc2: Linear::new(120, 84, true, rng),
            fc3: Linear::new(84, classes, true, rng),
        }
    }
}

impl Module for LeNet5 {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("conv1", &self.conv1);
        walk.child("conv2", &self.conv2);
        walk.child("fc1", &self.fc1);
        walk.child("fc2", &self.fc2);
        walk.child("fc3", &self.fc3);
    }
}

impl Forward for LeNet5 {
    /// # Shapes
    /// `[n, 1, 28, 28] -> [n, classes]` (logits).
    ///
    /// # Panics
    /// When the input is not `[n, 1, 28, 28]`.
    fn forward(&self, x: &Var) -> Var {
        let pool = Pool2dSpec::new(2);
        let x = self.conv1.forward(x).relu().max_pool2d(pool);
        let x = self
            .conv2
            .forward(&x)
            .relu()
            .max_pool2d(pool)
            .flatten_from(1);
        let x = self.fc1.forward(&x).relu();
        self.fc3.forward(&self.fc2.forward(&x).relu())
    }
}
