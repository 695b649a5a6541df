//! Joining and indexing: concat, stack, index_select / index_add, gather / scatter_add,
//! one_hot.
//!
//! Most of these see a contiguous tensor as `[outer, size, inner]` around one dimension
//! `dim`: `outer` is the product of the dimensions before it, `inner` of those after.
//! Selecting entry `i` of `dim` then means copying, for each `outer` position, the
//! contiguous run of `inner` elements at `(o * size + i) * inner`.
//!
//! Each op is paired with the one that undoes it in backward: `index_add` is the
//! backward of `index_select`, `scatter_add` the backward of `gather`, and the
//! backward of `concat` is `narrow`.

use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::tensor::Tensor;

/// A tensor of indices (row-major), for [`Tensor::gather`] and [`Tensor::scatter_add`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indices {
    shape: Vec<usize>,
    data: Vec<usize>,
}

impl Indices {
    /// Wrap a row-major buffer of indices.
    ///
    /// # Errors
    /// [`TensorError::LengthMismatch`] when `data.len()` is not the product of `shape`.
    pub fn new(data: Vec<usize>, shape: &[usize]) -> Result<Indices> {
        let expected: usize = shape.iter().product();
        if data.len() != expected {
            return Err(TensorError::LengthMismatch {
                op: "Indices::new",
                shape: shape.to_vec(),
                expected,
                got: data.len(),
            });
        }
        Ok(Indices {
            shape: shape.to_vec(),
            data,
        })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The indices in row-major order.
    pub fn data(&self) -> &[usize] {
        &self.data
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }
}

/// `(outer, size, inner)` of `shape` around `dim`.
fn split_at_dim(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        shape[..dim].iter().product(),
        shape[dim],
        shape[dim + 1..].iter().product(),
    )
}

impl Tensor {
    /// Join tensors along an existing dimension `dim`; all other dimensions must match.
    ///
    /// PyTorch equivalent: `torch.cat(tensors, dim)`.
    ///
    /// # Panics
    /// When `tensors` is empty, `dim` is out of range, or the shapes differ outside
    /// `dim` (the message lists all shapes).
    pub fn concat(tensors: &[&Tensor], dim: usize) -> Tensor {
        assert!(!tensors.is_empty(), "concat: no tensors given");
        let first = tensors[0];
        first.check_dim("concat", dim);
        let fits = |t: &&Tensor| {
            t.rank() == first.rank()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(d, (a, b))| d == dim || a == b)
        };
        if !tensors.iter().all(fits) {
            let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
            panic!("concat: shapes {shapes:?} differ outside dim {dim}");
        }
        let mut shape = first.shape().to_vec();
        shape[dim] = tensors.iter().map(|t| t.shape()[dim]).sum();
        let (outer, total, inner) = split_at_dim(&shape, dim);
        let mut out = vec![0.0; outer * total * inner];
        let mut start = 0; // where this tensor's part begins within each output block
        for t in tensors {
            let part = t.shape()[dim] * inner;
            let source = t.contiguous();
            let src = source.as_slice().expect("contiguous");
            if part > 0 {
                for (o, run) in src.chunks_exact(part).enumerate() {
                    let at = o * total * inner + start;
                    out[at..at + part].copy_from_slice(run);
                }
            }
            start += part;
        }
        Tensor::from_contiguous(out, &shape)
    }

    /// Join equal-shaped tensors along a new dimension inserted at `dim` (`0..=rank`).
    ///
    /// PyTorch equivalent: `torch.stack(tensors, dim)`.
    ///
    /// # Panics
    /// When `tensors` is empty, `dim > rank`, or the shapes differ.
    pub fn stack(tensors: &[&Tensor], dim: usize) -> Tensor {
        assert!(!tensors.is_empty(), "stack: no tensors given");
        let shape = tensors[0].shape();
        if !tensors.iter().all(|t| t.shape() == shape) {
            let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
            panic!("stack: shapes {shapes:?} differ");
        }
        assert!(
            dim <= shape.len(),
            "stack: dim {dim} out of range for shape {shape:?}"
        );
        let views: Vec<Tensor> = tensors.iter().map(|t| t.unsqueeze(dim)).collect();
        Tensor::concat(&views.iter().collect::<Vec<_>>(), dim)
    }

    /// Entries `indices` of dimension `dim`, in that order (repeats allowed): the
    /// result has `indices.len()` entries along `dim`. Embedding lookup is
    /// `weight.index_select(0, ids)`.
    ///
    /// PyTorch equivalent: `torch.index_select(t, dim, indices)`.
    ///
    /// # Panics
    /// When `dim` is out of range or an index is not below `shape[dim]`.
    pub fn index_select(&self, dim: usize, indices: &[usize]) -> Tensor {
        self.check_dim("index_select", dim);
        let (outer, size, inner) = split_at_dim(self.shape(), dim);
        check_indices("index_select", indices, size, self.shape(), dim);
        let source = self.contiguous();
        let src = source.as_slice().expect("contiguous");
        let mut out = Vec::with_capacity(outer * indices.len() * inner);
        for o in 0..outer {
            for &i in indices {
                let at = (o * size + i) * inner;
                out.extend_from_slice(&src[at..at + inner]);
            }
        }
        let mut shape = self.shape().to_vec();
        shape[dim] = indices.len();
        Tensor::from_contiguous(out, &shape)
    }

    /// A copy of `self` with slice `j` of `source` (along `dim`) added to entry
    /// `indices[j]`; repeated indices accumulate. The backward of
    /// [`index_select`](Self::index_select).
    ///
    /// PyTorch equivalent: `t.index_add(dim, indices, source)`.
    ///
    /// # Panics
    /// When `dim` is out of range, an index is not below `shape[dim]`, or `source`'s
    /// shape is not `self`'s with `indices.len()` entries along `dim`.
    pub fn index_add(&self, dim: usize, indices: &[usize], source: &Tensor) -> Tensor {
        let mut out = self.contiguous();
        out.index_add_assign(dim, indices, source);
        out
    }

    /// In-place [`index_add`](Self::index_add): slice `j` of `source` (along `dim`) is
    /// added to entry `indices[j]` of `self`. The row-sparse gradient of an embedding is
    /// added into a dense one this way, touching only its rows.
    ///
    /// PyTorch equivalent: `t.index_add_(dim, indices, source)`.
    ///
    /// # Panics
    /// As [`index_add`](Self::index_add).
    pub fn index_add_assign(&mut self, dim: usize, indices: &[usize], source: &Tensor) {
        self.check_dim("index_add", dim);
        let mut expected = self.shape().to_vec();
        expected[dim] = indices.len();
        assert!(
            source.shape() == expected,
            "index_add: source shape {:?} should be {expected:?} for shape {:?}, dim {dim} and {} indices",
            source.shape(),
            self.shape(),
            indices.len()
        );
        let (outer, size, inner) = split_at_dim(self.shape(), dim);
        check_indices("index_add", indices, size, self.shape(), dim);
        let source = source.contiguous();
        let src = source.as_slice().expect("contiguous");
        let out = self.data_mut();
        for o in 0..outer {
            for (j, &i) in indices.iter().enumerate() {
                let from = (o * indices.len() + j) * inner;
                let to = (o * size + i) * inner;
                out[to..to + inner]
                    .iter_mut()
                    .zip(&src[from..from + inner])
                    .for_each(|(d, &s)| *d += s);
            }
        }
    }

    /// Add `source` into the window `start..start + source.shape()[dim]` of `dim`, in
    /// place: the backward of [`narrow`](Self::narrow), writing into one gradient buffer
    /// instead of padding with zeros and concatenating.
    ///
    /// PyTorch equivalent: `t.narrow(dim, start, len).add_(source)`.
    ///
    /// # Panics
    /// When `dim` is out of range, the window does not fit, or `source`'s shape differs
    /// from `self`'s outside `dim`.
    pub fn add_assign_narrow(&mut self, dim: usize, start: usize, source: &Tensor) {
        self.check_dim("add_assign_narrow", dim);
        let len = source.shape().get(dim).copied().unwrap_or(0);
        let mut expected = self.shape().to_vec();
        expected[dim] = len;
        assert!(
            source.shape() == expected && start + len <= self.shape()[dim],
            "add_assign_narrow: source {:?} does not fit entries {start}..{} of dim {dim} of {:?}",
            source.shape(),
            start + len,
            self.shape()
        );
        let (outer, size, inner) = split_at_dim(self.shape(), dim);
        let run = len * inner;
        if run == 0 {
            return;
        }
        let source = source.contiguous();
        let src = source.as_slice().expect("contiguous");
        let out = self.data_mut();
        for (o, piece) in src.chunks_exact(run).enumerate() {
            let at = (o * size + start) * inner;
            out[at..at + run]
                .iter_mut()
                .zip(piece)
                .for_each(|(d, &s)| *d += s);
        }
        debug_assert_eq!(src.len(), outer * run);
    }

    /// Pick along `dim` by `index`: `out[i][j] = self[i][index[i][j]]` for `dim = 1`
    /// (likewise for any rank). `index` has `self`'s rank and is no larger than `self`
    /// in the other dimensions; the result has `index`'s shape. Any layout of `self`
    /// is read in place.
    ///
    /// PyTorch equivalent: `torch.gather(t, dim, index)`.
    ///
    /// # Panics
    /// When `dim` is out of range, the ranks differ, `index` is larger than `self`
    /// outside `dim`, or an index value is not below `shape[dim]`.
    pub fn gather(&self, dim: usize, index: &Indices) -> Tensor {
        self.check_dim("gather", dim);
        check_index_shape("gather", self.shape(), index.shape(), Some(dim), "input");
        let walk = index_walk(self.layout(), index.shape(), dim);
        let step = self.strides()[dim];
        let storage = self.storage();
        let size = self.shape()[dim];
        let data = walk
            .offsets()
            .zip(index.data())
            .map(|(base, &i)| {
                check_index("gather", i, size, self.shape(), dim);
                storage[base + i * step]
            })
            .collect();
        Tensor::from_contiguous(data, index.shape())
    }

    /// A copy of `self` with `src` values added at the positions `index` points to
    /// along `dim`: for `dim = 1`, `out[i][index[i][j]] += src[i][j]`; repeats
    /// accumulate. Only the first `index.shape()` entries of `src` are used. The
    /// backward of [`gather`](Self::gather).
    ///
    /// PyTorch equivalent: `t.scatter_add(dim, index, src)`.
    ///
    /// # Panics
    /// When `dim` is out of range, ranks differ, `index` is larger than `self` (outside
    /// `dim`) or than `src` (anywhere), or an index value is not below `shape[dim]`.
    pub fn scatter_add(&self, dim: usize, index: &Indices, src: &Tensor) -> Tensor {
        self.check_dim("scatter_add", dim);
        check_index_shape(
            "scatter_add",
            self.shape(),
            index.shape(),
            Some(dim),
            "input",
        );
        check_index_shape("scatter_add", src.shape(), index.shape(), None, "src");
        let mut out = self.contiguous().to_vec();
        let out_layout = Layout::contiguous(self.shape());
        let walk = index_walk(&out_layout, index.shape(), dim);
        let step = out_layout.strides()[dim];
        let size = self.shape()[dim];
        // `src` restricted to the index's extent: the same walk, in `src`'s layout.
        let mut src_window = src.clone();
        for (d, &n) in index.shape().iter().enumerate() {
            src_window = src_window.narrow(d, 0, n);
        }
        let values = src_window.layout().offsets().map(|o| src.storage()[o]);
        for ((base, &i), v) in walk.offsets().zip(index.data()).zip(values) {
            check_index("scatter_add", i, size, self.shape(), dim);
            out[base + i * step] += v;
        }
        Tensor::from_contiguous(out, self.shape())
    }

    /// Rows of `classes` zeros with a 1 at each label: shape `[labels.len(), classes]`.
    ///
    /// PyTorch equivalent: `torch.nn.functional.one_hot(labels, classes).float()`.
    ///
    /// # Panics
    /// When a label is not below `classes`.
    pub fn one_hot(labels: &[usize], classes: usize) -> Tensor {
        let mut out = vec![0.0; labels.len() * classes];
        for (row, &label) in labels.iter().enumerate() {
            assert!(
                label < classes,
                "one_hot: label {label} at position {row} is not below {classes} classes"
            );
            out[row * classes + label] = 1.0;
        }
        Tensor::from_contiguous(out, &[labels.len(), classes])
    }
}

/// The walk over `index`'s shape through `layout` with `dim` pinned at 0: its offsets
/// are where each index position's row starts, to which `index * stride[dim]` is added.
fn index_walk(layout: &Layout, index_shape: &[usize], dim: usize) -> Layout {
    let mut strides = layout.strides().to_vec();
    strides[dim] = 0;
    Layout::from_parts(index_shape.to_vec(), strides, layout.offset())
}

/// `index` has `target`'s rank and fits inside it in every dimension (but `skip`).
fn check_index_shape(op: &str, target: &[usize], index: &[usize], skip: Option<usize>, what: &str) {
    let fits = index.len() == target.len()
        && index
            .iter()
            .zip(target)
            .enumerate()
            .all(|(d, (&i, &t))| Some(d) == skip || i <= t);
    assert!(
        fits,
        "{op}: index shape {index:?} does not fit {what} shape {target:?}"
    );
}

fn check_indices(op: &str, indices: &[usize], size: usize, shape: &[usize], dim: usize) {
    for &i in indices {
        check_index(op, i, size, shape, dim);
    }
}

#[inline]
fn check_index(op: &str, i: usize, size: usize, shape: &[usize], dim: usize) {
    assert!(
        i < size,
        "{op}: index {i} out of range for dim {dim} of shape {shape:?}"
    );
}
