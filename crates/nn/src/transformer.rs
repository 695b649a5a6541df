//! Transformer encoder and decoder layers, as `torch.nn.TransformerEncoderLayer` and
//! `torch.nn.TransformerDecoderLayer` (batch-first), with their parameter names.
//!
//! ```text
//! pre-LN (norm_first):   x = x + SA(norm1(x));            x = x + FF(norm2(x))
//! post-LN:               x = norm1(x + SA(x));            x = norm2(x + FF(x))
//! FF(x) = dropout2(linear2(dropout(act(linear1(x)))))     SA(x) = dropout1(self_attn(x))
//! decoder, pre-LN:       x = x + SA(norm1(x)); x = x + CA(norm2(x), memory); x = x + FF(norm3(x))
//! ```
//!
//! (Vaswani et al., "Attention Is All You Need", NeurIPS 2017; pre-LN as in Xiong et al.,
//! "On Layer Normalization in the Transformer Architecture", ICML 2020.)

use agdlab_autograd::Var;
use agdlab_tensor::Tensor;
use rand::Rng;

use crate::activation::{gelu, gelu_tanh};
use crate::attention::MultiheadAttention;
use crate::dropout::Dropout;
use crate::layernorm::LayerNorm;
use crate::linear::Linear;
use crate::module::{Forward, Module, Walk};

/// The feed-forward block's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    /// Exact GELU (erf).
    Gelu,
    /// GELU's tanh approximation.
    GeluTanh,
}

impl Activation {
    fn apply(self, x: &Var) -> Var {
        match self {
            Activation::Relu => x.relu(),
            Activation::Gelu => gelu(x),
            Activation::GeluTanh => gelu_tanh(x),
        }
    }
}

/// The sizes and options of a layer; PyTorch's defaults but batch-first.
#[derive(Clone, Copy, Debug)]
pub struct LayerConfig {
    pub d_model: usize,
    pub num_heads: usize,
    pub dim_feedforward: usize,
    pub dropout: f32,
    pub activation: Activation,
    pub layer_norm_eps: f32,
    /// Pre-LN (`true`) or post-LN (`false`, PyTorch's default).
    pub norm_first: bool,
}

impl LayerConfig {
    /// PyTorch's defaults for `d_model` and `num_heads`: feed-forward 2048, dropout 0.1,
    /// ReLU, eps 1e-5, post-LN.
    pub fn new(d_model: usize, num_heads: usize) -> LayerConfig {
        LayerConfig {
            d_model,
            num_heads,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: Activation::Relu,
            layer_norm_eps: 1e-5,
            norm_first: false,
        }
    }
}

/// The feed-forward block shared by both layers: `linear2(dropout(act(linear1(x))))`.
struct FeedForward<'a> {
    linear1: &'a Linear,
    dropout: &'a Dropout,
    linear2: &'a Linear,
    activation: Activation,
}

impl FeedForward<'_> {
    fn forward(&self, x: &Var) -> Var {
        self.linear2.forward(
            &self
                .dropout
                .forward(&self.activation.apply(&self.linear1.forward(x))),
        )
    }
}

/// One encoder layer: self-attention and a feed-forward block, each with a residual
/// connection and a layer norm. PyTorch equivalent: `nn.TransformerEncoderLayer(d_model,
/// nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first=True, norm_first)`.
pub struct TransformerEncoderLayer {
    pub self_attn: MultiheadAttention,
    pub linear1: Linear,
    pub dropout: Dropout,
    pub linear2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub dropout1: Dropout,
    pub dropout2: Dropout,
    pub activation: Activation,
    pub norm_first: bool,
}

impl TransformerEncoderLayer {
    pub fn new(c: LayerConfig, rng: &mut impl Rng) -> TransformerEncoderLayer {
        TransformerEncoderLayer {
            self_attn: MultiheadAttention::new(c.d_model, c.num_heads, c.dropout, rng),
            linear1: Linear::new(c.d_model, c.dim_feedforward, true, rng),
            dropout: Dropout::new(c.dropout, rng.random()),
            linear2: Linear::new(c.dim_feedforward, c.d_model, true, rng),
            norm1: LayerNorm::new(c.d_model, c.layer_norm_eps),
            norm2: LayerNorm::new(c.d_model, c.layer_norm_eps),
            dropout1: Dropout::new(c.dropout, rng.random()),
            dropout2: Dropout::new(c.dropout, rng.random()),
            activation: c.activation,
            norm_first: c.norm_first,
        }
    }

    /// # Shapes
    /// `x: [batch, len, d_model]`, `mask` broadcastable to `[batch, heads, len, len]`
    /// (a [`causal_mask`](crate::causal_mask), a [`key_padding_mask`](crate::key_padding_mask),
    /// or their sum) → `[batch, len, d_model]`.
    pub fn forward(&self, x: &Var, mask: Option<&Tensor>) -> Var {
        let ff = FeedForward {
            linear1: &self.linear1,
            dropout: &self.dropout,
            linear2: &self.linear2,
            activation: self.activation,
        };
        let sa = |x: &Var| {
            self.dropout1
                .forward(&self.self_attn.self_attention(x, mask))
        };
        let ff = |x: &Var| self.dropout2.forward(&ff.forward(x));
        if self.norm_first {
            let x = x.add(&sa(&self.norm1.forward(x)));
            x.add(&ff(&self.norm2.forward(&x)))
        } else {
            let x = self.norm1.forward(&x.add(&sa(x)));
            self.norm2.forward(&x.add(&ff(&x)))
        }
    }
}

impl Module for TransformerEncoderLayer {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("self_attn", &self.self_attn);
        walk.child("linear1", &self.linear1);
        walk.child("dropout", &self.dropout);
        walk.child("linear2", &self.linear2);
        walk.child("norm1", &self.norm1);
        walk.child("norm2", &self.norm2);
        walk.child("dropout1", &self.dropout1);
        walk.child("dropout2", &self.dropout2);
    }
}

/// One decoder layer: masked self-attention, cross-attention to the encoder's memory,
/// and a feed-forward block. PyTorch equivalent: `nn.TransformerDecoderLayer(...,
/// batch_first=True, norm_first)`.
pub struct TransformerDecoderLayer {
    pub self_attn: MultiheadAttention,
    pub multihead_attn: MultiheadAttention,
    pub linear1: Linear,
    pub dropout: Dropout,
    pub linear2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub norm3: LayerNorm,
    pub dropout1: Dropout,
    pub dropout2: Dropout,
    pub dropout3: Dropout,
    pub activation: Activation,
    pub norm_first: bool,
}

impl TransformerDecoderLayer {
    pub fn new(c: LayerConfig, rng: &mut impl Rng) -> TransformerDecoderLayer {
        TransformerDecoderLayer {
            self_attn: MultiheadAttention::new(c.d_model, c.num_heads, c.dropout, rng),
            multihead_attn: MultiheadAttention::new(c.d_model, c.num_heads, c.dropout, rng),
            linear1: Linear::new(c.d_model, c.dim_feedforward, true, rng),
            dropout: Dropout::new(c.dropout, rng.random()),
            linear2: Linear::new(c.dim_feedforward, c.d_model, true, rng),
            norm1: LayerNorm::new(c.d_model, c.layer_norm_eps),
            norm2: LayerNorm::new(c.d_model, c.layer_norm_eps),
            norm3: LayerNorm::new(c.d_model, c.layer_norm_eps),
            dropout1: Dropout::new(c.dropout, rng.random()),
            dropout2: Dropout::new(c.dropout, rng.random()),
            dropout3: Dropout::new(c.dropout, rng.random()),
            activation: c.activation,
            norm_first: c.norm_first,
        }
    }

    /// # Shapes
    /// `x: [batch, lt, d_model]` (the target so far), `memory: [batch, ls, d_model]`,
    /// `self_mask` broadcastable to `[batch, heads, lt, lt]` (causal, plus target padding),
    /// `memory_mask` to `[batch, heads, lt, ls]` (source padding) → `[batch, lt, d_model]`.
    pub fn forward(
        &self,
        x: &Var,
        memory: &Var,
        self_mask: Option<&Tensor>,
        memory_mask: Option<&Tensor>,
    ) -> Var {
        let ff = FeedForward {
            linear1: &self.linear1,
            dropout: &self.dropout,
            linear2: &self.linear2,
            activation: self.activation,
        };
        let sa = |x: &Var| {
            self.dropout1
                .forward(&self.self_attn.self_attention(x, self_mask))
        };
        let ca = |x: &Var| {
            self.dropout2
                .forward(&self.multihead_attn.forward(x, memory, memory, memory_mask))
        };
        let ff = |x: &Var| self.dropout3.forward(&ff.forward(x));
        if self.norm_first {
            let x = x.add(&sa(&self.norm1.forward(x)));
            let x = x.add(&ca(&self.norm2.forward(&x)));
            x.add(&ff(&self.norm3.forward(&x)))
        } else {
            let x = self.norm1.forward(&x.add(&sa(x)));
            let x = self.norm2.forward(&x.add(&ca(&x)));
            self.norm3.forward(&x.add(&ff(&x)))
        }
    }
}

impl Module for TransformerDecoderLayer {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("self_attn", &self.self_attn);
        walk.child("multihead_attn", &self.multihead_attn);
        walk.child("linear1", &self.linear1);
        walk.child("dropout", &self.dropout);
        walk.child("linear2", &self.linear2);
        walk.child("norm1", &self.norm1);
        walk.child("norm2", &self.norm2);
        walk.child("norm3", &self.norm3);
        walk.child("dropout1", &self.dropout1);
        walk.child("dropout2", &self.dropout2);
        walk.child("dropout3", &self.dropout3);
    }
}

/// Learned position embeddings: a `[max_len, d]` table whose first `len` rows are added to
/// a `[batch, len, d]` input. Initialised N(0, 1) as an `nn.Embedding` is; named `weight`.
pub struct LearnedPositions {
    pub weight: agdlab_autograd::Param,
}

impl LearnedPositions {
    pub fn new(max_len: usize, d: usize, rng: &mut impl Rng) -> LearnedPositions {
        LearnedPositions {
            weight: agdlab_autograd::Param::new(crate::init::normal(&[max_len, d], 1.0, rng)),
        }
    }
}

impl Module for LearnedPositions {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.param("weight", &self.weight);
    }
}

impl Forward for LearnedPositions {
    /// # Panics
    /// When the input is longer than the table.
    fn forward(&self, x: &Var) -> Var {
        let (len, max_len) = (x.shape()[1], self.weight.shape()[0]);
        assert!(
            len <= max_len,
            "LearnedPositions: length {len} beyond the table's {max_len} positions"
        );
        x.add(&self.weight.on(x).narrow(0, 0, len))
    }
}
