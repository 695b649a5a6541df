//! A lookup table of vectors, one row per id. PyTorch equivalent: `torch.nn.Embedding`.
//!
//! The forward reads rows; the backward ([`Var::embedding`]) is row-sparse: a batch that
//! uses a thousand ids of a million-row table produces a gradient of a thousand rows,
//! and ids equal to the padding index send no gradient at all. Whether an optimizer then
//! updates every row (as PyTorch's dense `nn.Embedding` does) or only the touched ones
//! is the parameter group's choice (`agdlab_optim::SparseMode`).

use agdlab_autograd::{Param, Tape, Var};
use rand::Rng;

use crate::init;
use crate::module::{Module, Walk};

/// A table `weight: [num_embeddings, embedding_dim]`; id `k` is row `k`.
///
/// Takes ids, not a [`Var`], so it does not implement [`Forward`](crate::Forward):
/// call [`Embedding::forward`] with the step's tape.
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`, PyTorch's layout and name (`weight`).
    pub weight: Param,
    /// Ids equal to this read their row (zeros at initialisation) but send it no
    /// gradient, so it stays as it is: PyTorch's `padding_idx`.
    pub padding_idx: Option<usize>,
}

impl Embedding {
    /// PyTorch's initialisation: every entry from N(0, 1), the padding row zero.
    ///
    /// # Panics
    /// When `padding_idx` is not below `num_embeddings`.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
        rng: &mut impl Rng,
    ) -> Embedding {
        let mut weight = init::normal(&[num_embeddings, embedding_dim], 1.0, rng);
        if let Some(pad) = padding_idx {
            assert!(
                pad < num_embeddings,
                "Embedding: padding_idx {pad} out of range for {num_embeddings} embeddings"
            );
            weight.data_mut()[pad * embedding_dim..(pad + 1) * embedding_dim].fill(0.0);
        }
        Embedding {
            weight: Param::new(weight),
            padding_idx,
        }
    }

    /// The number of rows (ids `0..num_embeddings`).
    pub fn num_embeddings(&self) -> usize {
        self.weight.shape()[0]
    }

    /// The length of each vector.
    pub fn embedding_dim(&self) -> usize {
        self.weight.shape()[1]
    }

    /// The rows of `ids`, arranged as `shape` (whose product is `ids.len()`), recorded
    /// on `tape` (nothing is recorded on a [`Tape::no_grad`]). `ids` are row-major in
    /// `shape`: a `[seq, batch]` window of a language model has `ids[t * batch + b]`.
    ///
    /// PyTorch equivalent: `embedding(ids.view(shape))`.
    ///
    /// # Shapes
    /// `ids: shape` (flattened) `-> [shape..., embedding_dim]`.
    ///
    /// # Panics
    /// When `ids.len()` is not the product of `shape`, or an id is not below
    /// [`num_embeddings`](Self::num_embeddings) (ids are the caller's to check: a data
    /// loader maps words to ids it knows).
    pub fn forward(&self, tape: &Tape, ids: &[usize], shape: &[usize]) -> Var {
        assert_eq!(
            shape.iter().product::<usize>(),
            ids.len(),
            "Embedding: {} ids do not fill shape {shape:?}",
            ids.len()
        );
        let rows = tape.param(&self.weight).embedding(ids, self.padding_idx);
        let mut out_shape: Vec<usize> = shape.to_vec();
        out_shape.push(self.embedding_dim());
        let out_shape: Vec<isize> = out_shape.iter().map(|&d| d as isize).collect();
        rows.reshape(&out_shape)
    }
}

impl Module for Embedding {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.param("weight", &self.weight);
    }
}
