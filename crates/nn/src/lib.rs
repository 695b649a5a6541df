//! Neural-network building blocks: modules that own parameters, and losses.
//!
//! - [`Module`]: `forward` plus a walk over parameters with dotted names in
//!   declaration order, and train/eval mode.
//! - Layers: [`Linear`], activations ([`ReLU`], [`GELU`], [`Tanh`], [`Sigmoid`]),
//!   [`Dropout`], [`Flatten`], and [`Sequential`] to stack them.
//! - Losses: [`cross_entropy`], [`mse_loss`], [`bce_with_logits`].
//! - [`init`]: PyTorch's initialisers, drawing from an explicit seeded RNG.
//!
//! Layouts and defaults follow PyTorch, so values can be ported in either direction.

pub mod activation;
pub mod dropout;
pub mod init;
pub mod linear;
pub mod loss;
pub mod module;
pub mod sequential;

pub use activation::{Flatten, ReLU, Sigmoid, Tanh, GELU};
pub use dropout::Dropout;
pub use linear::Linear;
pub use loss::{bce_with_logits, cross_entropy, mse_loss};
pub use module::Module;
pub use sequential::Sequential;
