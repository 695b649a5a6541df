//! Indexing: row lookups (embeddings) and gathers (picking a class's log-probability).
//! Each backward scatters the gradient back to where the values were read, adding
//! where an index repeats.

use agdlab_tensor::index::Indices;
use agdlab_tensor::layout::broadcast_shape;
use agdlab_tensor::Tensor;

use crate::var::Var;

impl Var {
    /// Entries `indices` along `dim`. Backward: `index_add` into zeros.
    /// PyTorch equivalent: `x.index_select(dim, indices)`.
    pub fn index_select(&self, dim: usize, indices: &[usize]) -> Var {
        let input_shape = self.shape().to_vec();
        let out = self.value().index_select(dim, indices);
        let indices = indices.to_vec();
        Var::record("index_select", out, &[self], move |g, _| {
            vec![Some(Tensor::zeros(&input_shape).index_add(dim, &indices, g))]
        })
    }

    /// `out[i][j] = x[i][index[i][j]]` (for `dim` 1). Backward: `scatter_add` into zeros.
    /// PyTorch equivalent: `torch.gather(x, dim, index)`.
    pub fn gather(&self, dim: usize, index: &Indices) -> Var {
        let input_shape = self.shape().to_vec();
        let out = self.value().gather(dim, index);
        let index = index.clone();
        Var::record("gather", out, &[self], move |g, _| {
            vec![Some(Tensor::zeros(&input_shape).scatter_add(dim, &index, g))]
        })
    }

    /// Replace entries where `mask != 0` by `value` (`x` and `mask` broadcast).
    /// Backward: the gradient, zeroed where the value was replaced.
    pub fn masked_fill(&self, mask: &Tensor, value: f32) -> Var {
        let shape = broadcast_shape(self.shape(), mask.shape()).unwrap_or_else(|| {
            panic!("masked_fill: shapes {:?} and mask {:?} do not broadcast", self.shape(), mask.shape())
        });
        let x = self.broadcast_to(&shape);
        let keep = mask.broadcast_to(&shape).map(|m| (m == 0.0) as u8 as f32);
        let out = x.value().masked_fill(mask, value);
        Var::record("masked_fill", out, &[&x], move |g, _| vec![Some(g.mul(&keep))])
    }
}
