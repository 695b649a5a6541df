//! Neural-network building blocks: modules that own parameters and buffers, and losses.
//!
//! - [`Module`]: a walk over what a module owns (parameters and buffers with dotted
//!   names in declaration order, train/eval modes, child modules); [`Forward`] for the
//!   modules that map one value to one value. See [`module`] for how to write one.
//! - [`Buffer`]: non-trained state that is saved with a module (running statistics).
//! - Layers: [`Linear`], activations ([`ReLU`], [`GELU`], [`Tanh`], [`Sigmoid`]),
//!   [`Dropout`], [`Flatten`], and [`Sequential`] to chain them.
//! - [`FactorizationMachine`]: an FM (and DeepFM) over hashed sparse features, with the
//!   O(k·n) pairwise op [`fm_interactions`].
//! - Losses: [`cross_entropy`] (and [`CrossEntropyLoss`] with label smoothing),
//!   [`mse_loss`], [`bce_with_logits`].
//! - [`init`]: PyTorch's initialisers, drawing from an explicit seeded RNG.
//!
//! Layouts, names and defaults follow PyTorch, so weights and values can be ported in
//! either direction.

pub mod activation;
pub mod buffer;
pub mod dropout;
pub mod fm;
pub mod init;
pub mod linear;
pub mod loss;
pub mod module;
pub mod sequential;

pub use activation::{Flatten, ReLU, Sigmoid, Tanh, GELU};
pub use buffer::Buffer;
pub use dropout::Dropout;
pub use fm::{fm_interactions, FactorizationMachine, FmConfig};
pub use linear::Linear;
pub use loss::{bce_with_logits, cross_entropy, mse_loss, CrossEntropyLoss};
pub use module::{Forward, Item, Mode, Module, Walk};
pub use sequential::Sequential;
