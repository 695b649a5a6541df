//! Ready-made models that several programs share: [`LeNet5`] for MNIST (the
//! `mnist_agd --model cnn` example) and [`ResNet`] (ResNet-20 for 28x28 grayscale
//! images: the `fashion_resnet` example and the study tools).
//!
//! Parameter and buffer names follow the usual PyTorch definitions of the same models,
//! so a PyTorch `state_dict` loads into them with [`crate::state_dict::load_state_dict`].

pub mod lenet;
pub mod resnet;

pub use lenet::LeNet5;
pub use resnet::{BasicBlock, ResNet};
