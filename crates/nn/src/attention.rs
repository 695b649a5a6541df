//! Scaled dot-product multi-head attention, in `torch.nn.MultiheadAttention`'s layout.
//!
//! ```text
//! Q = query·W_qᵀ + b_q,  K = key·W_kᵀ + b_k,  V = value·W_vᵀ + b_v     (W = in_proj_weight)
//! per head h:  A_h = softmax(Q_h·K_hᵀ/√d_h + mask),  O_h = dropout(A_h)·V_h
//! out = concat_h(O_h)·W_oᵀ + b_o                                          (out_proj)
//! ```
//!
//! Tensors are batch-first, `[batch, length, embed]` (PyTorch's `batch_first=True`).
//! Masks are additive: 0 where a query may attend to a key, `-inf` where it may not;
//! [`causal_mask`] and [`key_padding_mask`] build the usual two. Every product is one
//! batched `sgemm` over `[batch, heads]`, on views: splitting the heads is a reshape and a
//! permute, with no copy until the heads are joined again.

use agdlab_autograd::{Param, Var};
use agdlab_tensor::Tensor;
use rand::Rng;

use crate::dropout::Dropout;
use crate::init;
use crate::linear::Linear;
use crate::module::{Forward, Module, Walk};

/// The additive mask that lets position `t` attend to positions `0..=t` only: `[len, len]`,
/// 0 on and below the diagonal, `-inf` above. PyTorch equivalent:
/// `nn.Transformer.generate_square_subsequent_mask(len)`.
pub fn causal_mask(len: usize) -> Tensor {
    let data = (0..len * len)
        .map(|i| {
            if i % len > i / len {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(data, &[len, len]).expect("len·len values")
}

/// The additive mask hiding padding keys: `[batch, 1, 1, len]` from `padding[b][j]` (true
/// where key `j` of sequence `b` is padding), broadcastable against `[batch, heads, lq, len]`
/// scores. PyTorch equivalent: `key_padding_mask` (True = ignore).
///
/// # Panics
/// When the rows differ in length.
pub fn key_padding_mask(padding: &[Vec<bool>]) -> Tensor {
    let len = padding.first().map_or(0, Vec::len);
    assert!(
        padding.iter().all(|r| r.len() == len),
        "key_padding_mask: rows of different lengths"
    );
    let data = padding
        .iter()
        .flatten()
        .map(|&pad| if pad { f32::NEG_INFINITY } else { 0.0 })
        .collect();
    Tensor::from_vec(data, &[padding.len(), 1, 1, len]).expect("one value per key")
}

/// Multi-head attention with PyTorch's parameters and names: `in_proj_weight` `[3D, D]`
/// (the query, key and value projections stacked), `in_proj_bias` `[3D]`,
/// `out_proj.weight` `[D, D]`, `out_proj.bias` `[D]`.
pub struct MultiheadAttention {
    pub in_proj_weight: Param,
    pub in_proj_bias: Param,
    pub out_proj: Linear,
    pub num_heads: usize,
    /// Dropout on the attention weights (active in training mode).
    pub dropout: Dropout,
}

impl MultiheadAttention {
    /// PyTorch's initialisation: `in_proj_weight` Xavier-uniform, biases zero,
    /// `out_proj.weight` as a `Linear`'s.
    ///
    /// # Panics
    /// When `embed_dim` is not a multiple of `num_heads`, or `dropout` is outside [0, 1).
    pub fn new(
        embed_dim: usize,
        num_heads: usize,
        dropout: f32,
        rng: &mut impl Rng,
    ) -> MultiheadAttention {
        assert!(
            num_heads > 0 && embed_dim.is_multiple_of(num_heads),
            "MultiheadAttention: embed_dim {embed_dim} is not a multiple of num_heads {num_heads}"
        );
        let in_proj_weight =
            init::xavier_uniform(&[3 * embed_dim, embed_dim], embed_dim, 3 * embed_dim, rng);
        let mut out_proj = Linear::new(embed_dim, embed_dim, true, rng);
        out_proj.bias = Some(Param::new(Tensor::zeros(&[embed_dim])));
        MultiheadAttention {
            in_proj_weight: Param::new(in_proj_weight),
            in_proj_bias: Param::new(Tensor::zeros(&[3 * embed_dim])),
            out_proj,
            num_heads,
            dropout: Dropout::new(dropout, rng.random()),
        }
    }

    pub fn embed_dim(&self) -> usize {
        self.out_proj.out_features()
    }

    /// Self-attention: queries, keys and values all from `x`, with one projection.
    ///
    /// # Shapes
    /// `x: [batch, len, D]`, `mask` broadcastable to `[batch, heads, len, len]` →
    /// `[batch, len, D]`.
    pub fn self_attention(&self, x: &Var, mask: Option<&Tensor>) -> Var {
        let d = self.embed_dim();
        let qkv = x.linear(&self.in_proj_weight.on(x), Some(&self.in_proj_bias.on(x)));
        let parts = qkv.split(&[d, d, d], 2);
        self.attend(&parts[0], &parts[1], &parts[2], mask)
    }

    /// Attention of `query` to `key`/`value` (cross-attention: `key` and `value` are the
    /// encoder's memory).
    ///
    /// # Shapes
    /// `query: [batch, lq, D]`, `key`, `value: [batch, lk, D]`, `mask` broadcastable to
    /// `[batch, heads, lq, lk]` → `[batch, lq, D]`.
    pub fn forward(&self, query: &Var, key: &Var, value: &Var, mask: Option<&Tensor>) -> Var {
        let d = self.embed_dim();
        let w = self.in_proj_weight.on(query);
        let b = self.in_proj_bias.on(query);
        let project =
            |x: &Var, k: usize| x.linear(&w.narrow(0, k * d, d), Some(&b.narrow(0, k * d, d)));
        self.attend(
            &project(query, 0),
            &project(key, 1),
            &project(value, 2),
            mask,
        )
    }

    /// Scaled dot-product attention of projected `q`, `k`, `v`, then the output projection.
    fn attend(&self, q: &Var, k: &Var, v: &Var, mask: Option<&Tensor>) -> Var {
        let (batch, lq, d) = (q.shape()[0], q.shape()[1], q.shape()[2]);
        let lk = k.shape()[1];
        let (h, dh) = (self.num_heads, d / self.num_heads);
        // [batch, len, D] -> [batch, heads, len, dh]: a reshape and a permute, both views.
        let heads = |x: &Var, len: usize| {
            x.reshape(&[batch as isize, len as isize, h as isize, dh as isize])
                .permute(&[0, 2, 1, 3])
        };
        let q = heads(&q.mul_scalar(1.0 / (dh as f32).sqrt()), lq);
        let (k, v) = (heads(k, lk), heads(v, lk));
        let weights = q.matmul(&k.transpose(2, 3)).softmax_masked(mask);
        let weights = self.dropout.forward(&weights);
        let out = weights.matmul(&v).permute(&[0, 2, 1, 3]).reshape(&[
            batch as isize,
            lq as isize,
            d as isize,
        ]);
        self.out_proj.forward(&out)
    }
}

impl Module for MultiheadAttention {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.param("in_proj_weight", &self.in_proj_weight);
        walk.param("in_proj_bias", &self.in_proj_bias);
        walk.child("out_proj", &self.out_proj);
        walk.child("dropout", &self.dropout);
    }
}
