//! # agdlab
//!
//! A from-scratch tensor, automatic-differentiation and optimizer framework, built to
//! study the AGD optimizer (Yue et al., *AGD: an Auto-switchable Optimizer using
//! Stepwise Gradient Difference for Preconditioning Matrix*, NeurIPS 2023) next to SGD,
//! Adam/AdamW and other baselines.
//!
//! This root crate gathers the layers under one name and adds the pieces that touch
//! the outside world:
//!
//! | module | what it is |
//! |---|---|
//! | [`tensor`] | strided CPU `f32` arrays (views without copies, broadcasting, matmul) |
//! | [`autograd`] | the tape: records ops, runs them backwards; [`autograd::Param`] |
//! | [`nn`] | modules that own parameters (Linear, Conv2d, Embedding, LSTM, ...) |
//! | [`optim`] | one `Optimizer` trait: SGD, Adam/AdamW, AGD, ...; saveable state |
//! | [`data`] | loaders (MNIST/Fashion-MNIST IDX, PTB, MovieLens-100k, Criteo, synthetic CTR) and the data-set locator |
//! | [`checkpoint`] | safetensors checkpoints of models and optimizer state |
//! | [`metrics`] | AUC and log loss of binary classifiers |
//! | [`models`] | shared models: LeNet-5, ResNet-20 |
//! | [`train`] | the one training loop every example uses (progress, metrics, checkpoints, NaN checks) |
//! | [`study`] | the comparison runner's recipes, CSV readers, tables and SVG pictures |
//!
//! Data flows one way: loader -> batch tensors -> module forward on a tape -> loss ->
//! backward -> gradients -> optimizer step -> parameters, and at chosen steps
//! parameters + optimizer state -> checkpoint file.
//!
//! Errors follow one split throughout: programming errors (wrong shapes between
//! operands, an out-of-range batch index) panic with a message; anything that comes
//! from outside the program (files, environment) returns a `Result` whose error names
//! the file and the problem.

pub use agdlab_autograd as autograd;
pub use agdlab_nn as nn;
pub use agdlab_optim as optim;
pub use agdlab_tensor as tensor;

pub mod checkpoint;
pub mod data;
pub mod metrics;
pub mod models;
pub mod state_dict;
pub mod study;
pub mod train;

/// The names a training program needs: `use agdlab::prelude::*;`.
pub mod prelude {
    pub use crate::autograd::{Gradients, Param, Tape, Var};
    pub use crate::nn::{cross_entropy, Buffer, Forward, Linear, Module, Sequential, Walk};
    pub use crate::optim::{
        Adam, AdamConfig, Agd, AgdConfig, LrSchedule, Optimizer, ParamGroup, Sgd, SgdConfig,
        SGD_MODE_FRACTION,
    };
    pub use crate::tensor::Tensor;
}
