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
        Var::record("index_select", out, &[self], move |g, grads| {
            grads.add(0, || {
                Tensor::zeros(&input_shape).index_add(dim, &indices, &g)
            })
        })
    }

    /// Rows `ids` of a table `[rows, d...]`: `out[k] = table[ids[k]]`, shape
    /// `[ids.len(), d...]`. Backward: row-sparse, only the rows used (repeats add up),
    /// so a batch touching a thousand rows of a million-row table allocates a thousand
    /// rows. Entries equal to `padding_idx` read their row but send it no gradient.
    /// PyTorch equivalent: `F.embedding(ids, table, padding_idx)` with `sparse=True`.
    ///
    /// # Panics
    /// When `self` has rank 0 or an id is out of range.
    pub fn embedding(&self, ids: &[usize], padding_idx: Option<usize>) -> Var {
        assert!(
            self.rank() >= 1,
            "embedding: the table needs rank >= 1, got shape {:?}",
            self.shape()
        );
        let out = self.value().index_select(0, ids);
        let ids = ids.to_vec();
        Var::record("embedding", out, &[self], move |g, grads| {
            let (rows, values) = match padding_idx {
                Some(pad) if ids.contains(&pad) => {
                    let kept: Vec<usize> = (0..ids.len()).filter(|&k| ids[k] != pad).collect();
                    let rows = kept.iter().map(|&k| ids[k]).collect();
                    (rows, g.index_select(0, &kept))
                }
                _ => (ids, g),
            };
            grads.add_rows(0, rows, values);
        })
    }

    /// `out[i][j] = x[i][index[i][j]]` (for `dim` 1). Backward: `scatter_add` into zeros.
    /// PyTorch equivalent: `torch.gather(x, dim, index)`.
    pub fn gather(&self, dim: usize, index: &Indices) -> Var {
        let input_shape = self.shape().to_vec();
        let out = self.value().gather(dim, index);
        let index = index.clone();
        Var::record("gather", out, &[self], move |g, grads| {
            grads.add(0, || {
                Tensor::zeros(&input_shape).scatter_add(dim, &index, &g)
            })
        })
    }

    /// Replace entries where `mask != 0` by `value` (`x` and `mask` broadcast).
    /// Backward: the gradient, zeroed where the value was replaced.
    pub fn masked_fill(&self, mask: &Tensor, value: f32) -> Var {
        let shape = broadcast_shape(self.shape(), mask.shape()).unwrap_or_else(|| {
            panic!(
                "masked_fill: shapes {:?} and mask {:?} do not broadcast",
                self.shape(),
                mask.shape()
            )
        });
        let x = self.broadcast_to(&shape);
        let keep = mask.broadcast_to(&shape).map(|m| (m == 0.0) as u8 as f32);
        let out = x.value().masked_fill(mask, value);
        Var::record("masked_fill", out, &[&x], move |g, grads| {
            grads.add(0, || g.mul(&keep))
        })
    }
}
