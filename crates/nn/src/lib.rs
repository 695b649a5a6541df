//! Neural-network building blocks: modules that own parameters and buffers, and losses.
//!
//! - [`Module`]: a walk over what a module owns (parameters and buffers with dotted
//!   names in declaration order, train/eval modes, child modules); [`Forward`] for the
//!   modules that map one value to one value. See [`module`] for how to write one.
//! - [`Buffer`]: non-trained state that is saved with a module (running statistics).
//! - Vision layers: [`Conv2d`], [`MaxPool2d`], [`AvgPool2d`], [`GlobalAvgPool2d`],
//!   [`BatchNorm2d`] (running statistics as buffers).
//! - Layers: [`Linear`], activations ([`ReLU`], [`GELU`], [`GeluTanh`], [`Tanh`],
//!   [`Sigmoid`]), [`Dropout`], [`Flatten`], [`LayerNorm`], and [`Sequential`] to chain them.
//! - Sequences: [`Embedding`] (ids to vectors, row-sparse backward) and [`Lstm`] (a
//!   multi-layer LSTM; [`lstm::lstm_layer`] and the fused [`lstm::lstm_cell`] inside).
//! - Attention: [`MultiheadAttention`] (with [`causal_mask`] and [`key_padding_mask`]),
//!   [`TransformerEncoderLayer`], [`TransformerDecoderLayer`], [`LearnedPositions`].
//! - [`FactorizationMachine`]: an FM (and DeepFM) over hashed sparse features, with the
//!   O(k·n) pairwise op [`fm_interactions`].
//! - Losses: [`cross_entropy`] (and [`CrossEntropyLoss`] with label smoothing),
//!   [`mse_loss`], [`bce_with_logits`].
//! - [`init`]: PyTorch's initialisers, drawing from an explicit seeded RNG.
//!
//! Layouts, names and defaults follow PyTorch, so weights and values can be ported in
//! either direction.

pub mod activation;
pub mod attention;
pub mod batchnorm;
pub mod buffer;
pub mod conv;
pub mod dropout;
pub mod embedding;
pub mod fm;
pub mod init;
pub mod layernorm;
pub mod linear;
pub mod loss;
pub mod lstm;
pub mod module;
pub mod pool;
pub mod sequential;
pub mod transformer;

pub use activation::{Flatten, GeluTanh, ReLU, Sigmoid, Tanh, GELU};
pub use attention::{causal_mask, key_padding_mask, MultiheadAttention};
pub use batchnorm::{BatchNorm2d, BatchNormConfig};
pub use buffer::Buffer;
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use fm::{fm_interactions, FactorizationMachine, FmConfig};
pub use layernorm::LayerNorm;
pub use linear::Linear;
pub use loss::{bce_with_logits, cross_entropy, mse_loss, CrossEntropyLoss};
pub use lstm::{Lstm, LstmConfig};
pub use module::{Forward, Item, Mode, Module, Walk};
pub use pool::{AvgPool2d, GlobalAvgPool2d, MaxPool2d};
pub use sequential::Sequential;
pub use transformer::{
    Activation, LayerConfig, LearnedPositions, TransformerDecoderLayer, TransformerEncoderLayer,
};
