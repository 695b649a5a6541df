//! The `Tensor` type: a shared `f32` buffer seen through a [`Layout`].
//!
//! Cloning a tensor clones an `Arc`, never the data. Views (transpose, permute, narrow,
//! broadcast_to, unsqueeze, squeeze, reshape of a contiguous tensor) build a new layout
//! over the same storage. [`Tensor::contiguous`] copies only when the layout is not
//! already row-major. In-place writes ([`Tensor::data_mut`]) copy-on-write: they never
//! change what another tensor sharing the storage sees.

use std::fmt;
use std::sync::Arc;

use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::parallel;

/// A strided view of shared `f32` storage.
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Vec<f32>>,
    layout: Layout,
}

impl Tensor {
    // ----------------------------------------------------------------------------
    // Construction
    // ----------------------------------------------------------------------------

    /// Wrap a row-major buffer.
    ///
    /// # Errors
    /// When `data.len()` is not the product of `shape`.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        let expected: usize = shape.iter().product();
        if data.len() != expected {
            return Err(TensorError::LengthMismatch {
                op: "from_vec",
                shape: shape.to_vec(),
                expected,
                got: data.len(),
            });
        }
        Ok(Tensor::from_contiguous(data, shape))
    }

    /// Wrap a buffer known (by construction) to match `shape`.
    pub(crate) fn from_contiguous(data: Vec<f32>, shape: &[usize]) -> Tensor {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        Tensor {
            storage: Arc::new(data),
            layout: Layout::contiguous(shape),
        }
    }

    /// A rank-0 tensor holding `value`.
    pub fn scalar(value: f32) -> Tensor {
        Tensor::from_contiguous(vec![value], &[])
    }

    /// PyTorch equivalent: `torch.full(shape, value)`.
    pub fn full(shape: &[usize], value: f32) -> Tensor {
        Tensor::from_contiguous(parallel::filled(shape.iter().product(), value), shape)
    }

    /// PyTorch equivalent: `torch.zeros(shape)`.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    /// PyTorch equivalent: `torch.ones(shape)`.
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// `[0, 1, .., n-1]` as floats. PyTorch equivalent: `torch.arange(n)`.
    pub fn arange(n: usize) -> Tensor {
        Tensor::from_contiguous((0..n).map(|i| i as f32).collect(), &[n])
    }

    /// Values drawn uniformly from `[low, high)` with the caller's seeded RNG.
    ///
    /// # Panics
    /// When `low >= high`.
    pub fn uniform(shape: &[usize], low: f32, high: f32, rng: &mut impl Rng) -> Tensor {
        assert!(low < high, "uniform: low {low} must be below high {high}");
        let dist = Uniform::new(low, high).expect("uniform: bounds checked above");
        let n = shape.iter().product();
        Tensor::from_contiguous((0..n).map(|_| dist.sample(rng)).collect(), shape)
    }

    /// Values drawn from N(mean, std²) with the caller's seeded RNG.
    ///
    /// # Panics
    /// When `std` is negative or not finite.
    pub fn normal(shape: &[usize], mean: f32, std: f32, rng: &mut impl Rng) -> Tensor {
        let dist = Normal::new(mean, std)
            .unwrap_or_else(|e| panic!("normal: bad std {std} for shape {shape:?}: {e}"));
        let n = shape.iter().product();
        Tensor::from_contiguous((0..n).map(|_| dist.sample(rng)).collect(), shape)
    }

    // ----------------------------------------------------------------------------
    // Accessors
    // ----------------------------------------------------------------------------

    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// Size of dimension `dim`.
    ///
    /// # Panics
    /// When `dim` is out of range.
    pub fn dim(&self, dim: usize) -> usize {
        self.check_dim("dim", dim);
        self.shape()[dim]
    }

    /// The whole underlying buffer (all views of it share it).
    pub fn storage(&self) -> &[f32] {
        &self.storage
    }

    /// True when both tensors view the same buffer.
    pub fn shares_storage_with(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// The elements as a slice when the layout is contiguous, else `None`.
    pub fn as_slice(&self) -> Option<&[f32]> {
        self.layout.contiguous_range().map(|r| &self.storage[r])
    }

    /// The elements in row-major order (copying).
    pub fn to_vec(&self) -> Vec<f32> {
        match self.as_slice() {
            Some(s) => s.to_vec(),
            None => parallel::gather_strided(&self.storage, &self.layout),
        }
    }

    /// The single value of a one-element tensor.
    ///
    /// # Panics
    /// When the tensor does not hold exactly one element.
    pub fn item(&self) -> f32 {
        assert_eq!(
            self.numel(),
            1,
            "item: tensor of shape {:?} is not a single value",
            self.shape()
        );
        self.storage[self.layout.offset()]
    }

    /// The value at a multi-index.
    ///
    /// # Panics
    /// When the index has the wrong rank or is out of bounds.
    pub fn get(&self, index: &[usize]) -> f32 {
        assert!(
            index.len() == self.rank() && index.iter().zip(self.shape()).all(|(i, d)| i < d),
            "get: index {index:?} out of bounds for shape {:?}",
            self.shape()
        );
        self.storage[self.layout.offset_of(index)]
    }

    /// Mutable access to the elements in row-major order.
    ///
    /// Makes this tensor contiguous and the sole owner of its storage first (copying
    /// only when it is a strided view or the buffer is shared), so writes never leak
    /// into other tensors. Parameters updated by an optimizer take the no-copy path.
    pub fn data_mut(&mut self) -> &mut [f32] {
        let whole_buffer = self.layout.offset() == 0 && self.numel() == self.storage.len();
        if !(self.is_contiguous() && whole_buffer) {
            *self = Tensor::from_contiguous(self.to_vec(), self.shape());
        }
        Arc::make_mut(&mut self.storage).as_mut_slice()
    }

    /// A tensor with this view's layout over a private copy of the storage in which
    /// the element at `index` is `value`. Used by finite-difference gradient checks to
    /// perturb one element of a strided view while keeping its strides.
    ///
    /// # Panics
    /// When the index is out of bounds.
    pub fn with_element(&self, index: &[usize], value: f32) -> Tensor {
        let _ = self.get(index);
        let mut storage = self.storage.as_ref().clone();
        storage[self.layout.offset_of(index)] = value;
        Tensor {
            storage: Arc::new(storage),
            layout: self.layout.clone(),
        }
    }

    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor {
            storage: Arc::clone(&self.storage),
            layout,
        }
    }

    pub(crate) fn check_dim(&self, op: &str, dim: usize) {
        assert!(
            dim < self.rank(),
            "{op}: dim {dim} out of range for shape {:?}",
            self.shape()
        );
    }

    // ----------------------------------------------------------------------------
    // Views: no copies
    // ----------------------------------------------------------------------------

    /// Copy into a fresh row-major buffer unless already contiguous.
    /// PyTorch equivalent: `t.contiguous()`.
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        let data = parallel::gather_strided(&self.storage, &self.layout);
        Tensor::from_contiguous(data, self.shape())
    }

    /// A view with a new shape of the same element count; copies only when the tensor
    /// is not contiguous. One entry may be `-1` to infer it (as in PyTorch).
    /// PyTorch equivalent: `t.reshape(shape)`.
    ///
    /// # Panics
    /// When the element counts differ, or the shape has more than one `-1` or another
    /// negative entry: a shape is a programming decision, like an axis (PyTorch raises).
    pub fn reshape(&self, shape: &[isize]) -> Tensor {
        let shape =
            infer_shape(shape, self.numel(), self.shape()).unwrap_or_else(|e| panic!("{e}"));
        self.reshape_to(&shape)
    }

    /// [`reshape`](Self::reshape) with a fully given shape.
    ///
    /// # Panics
    /// When the element counts differ.
    pub fn reshape_to(&self, shape: &[usize]) -> Tensor {
        if shape.iter().product::<usize>() != self.numel() {
            panic!(
                "{}",
                TensorError::ReshapeCount {
                    from: self.shape().to_vec(),
                    to: shape.to_vec()
                }
            );
        }
        let source = self.contiguous();
        let layout = source.layout.reshape_contiguous(shape);
        source.with_layout(layout)
    }

    /// Swap two dimensions. PyTorch equivalent: `t.transpose(d0, d1)`.
    ///
    /// # Panics
    /// When a dimension is out of range.
    pub fn transpose(&self, d0: usize, d1: usize) -> Tensor {
        self.check_dim("transpose", d0);
        self.check_dim("transpose", d1);
        self.with_layout(self.layout.transpose(d0, d1))
    }

    /// Transpose of a matrix (the last two dimensions). PyTorch equivalent: `t.mT`.
    ///
    /// # Panics
    /// When the rank is below 2.
    pub fn t(&self) -> Tensor {
        assert!(
            self.rank() >= 2,
            "t: needs rank >= 2, got shape {:?}",
            self.shape()
        );
        self.transpose(self.rank() - 2, self.rank() - 1)
    }

    /// Reorder dimensions. PyTorch equivalent: `t.permute(order)`.
    ///
    /// # Panics
    /// When `order` is not a permutation of `0..rank`.
    pub fn permute(&self, order: &[usize]) -> Tensor {
        let mut seen = vec![false; self.rank()];
        let valid = order.len() == self.rank()
            && order
                .iter()
                .all(|&d| d < self.rank() && !std::mem::replace(&mut seen[d], true));
        assert!(
            valid,
            "permute: {order:?} is not a permutation for shape {:?}",
            self.shape()
        );
        self.with_layout(self.layout.permute(order))
    }

    /// Keep `len` entries of `dim` from `start`. PyTorch equivalent: `t.narrow(dim, start, len)`.
    ///
    /// # Panics
    /// When the range does not fit the dimension.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Tensor {
        self.check_dim("narrow", dim);
        assert!(
            start + len <= self.shape()[dim],
            "narrow: range {start}..{} out of bounds for dim {dim} of shape {:?}",
            start + len,
            self.shape()
        );
        self.with_layout(self.layout.narrow(dim, start, len))
    }

    /// Stretch size-1 (or missing leading) dimensions to `shape` with stride 0.
    /// PyTorch equivalent: `t.expand(shape)`.
    ///
    /// # Panics
    /// When the shapes are not broadcast-compatible.
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        let compatible = shape.len() >= self.rank()
            && self
                .shape()
                .iter()
                .zip(&shape[shape.len() - self.rank()..])
                .all(|(&have, &want)| have == want || have == 1);
        assert!(
            compatible,
            "broadcast_to: cannot broadcast {:?} to {shape:?}",
            self.shape()
        );
        if self.shape() == shape {
            return self.clone();
        }
        self.with_layout(self.layout.broadcast_to(shape))
    }

    /// Insert a size-1 dimension at `dim` (`0..=rank`). PyTorch: `t.unsqueeze(dim)`.
    ///
    /// # Panics
    /// When `dim > rank`.
    pub fn unsqueeze(&self, dim: usize) -> Tensor {
        assert!(
            dim <= self.rank(),
            "unsqueeze: dim {dim} out of range for shape {:?}",
            self.shape()
        );
        self.with_layout(self.layout.unsqueeze(dim))
    }

    /// Remove a size-1 dimension. PyTorch equivalent: `t.squeeze(dim)`.
    ///
    /// # Panics
    /// When `dim` is out of range or its size is not 1.
    pub fn squeeze(&self, dim: usize) -> Tensor {
        self.check_dim("squeeze", dim);
        assert_eq!(
            self.shape()[dim],
            1,
            "squeeze: dim {dim} of shape {:?} is not 1",
            self.shape()
        );
        self.with_layout(self.layout.squeeze(dim))
    }

    /// Flatten dims `1..` into one: `[n, ...] -> [n, prod(...)]`.
    pub fn flatten_from(&self, start: usize) -> Tensor {
        assert!(
            start <= self.rank(),
            "flatten_from: start {start} beyond shape {:?}",
            self.shape()
        );
        let mut shape: Vec<usize> = self.shape()[..start].to_vec();
        shape.push(self.shape()[start..].iter().product());
        self.reshape_to(&shape)
    }

    /// True when shapes match and every pair of elements is within `atol + rtol*|b|`.
    pub fn allclose(&self, other: &Tensor, rtol: f32, atol: f32) -> bool {
        self.shape() == other.shape()
            && self
                .to_vec()
                .iter()
                .zip(other.to_vec())
                .all(|(&a, b)| (a - b).abs() <= atol + rtol * b.abs() || (a.is_nan() && b.is_nan()))
    }
}

/// Resolve a shape that may contain one `-1`.
fn infer_shape(shape: &[isize], numel: usize, from: &[usize]) -> Result<Vec<usize>> {
    let unknown: Vec<usize> = shape
        .iter()
        .enumerate()
        .filter(|(_, &d)| d == -1)
        .map(|(i, _)| i)
        .collect();
    if unknown.len() > 1 || shape.iter().any(|&d| d < -1) {
        return Err(TensorError::InvalidShape {
            op: "reshape",
            message: format!("shape {shape:?} may hold at most one -1 and no other negatives"),
        });
    }
    let known: usize = shape
        .iter()
        .filter(|&&d| d >= 0)
        .map(|&d| d as usize)
        .product();
    let mut out: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(&i) = unknown.first() {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(TensorError::ReshapeCount {
                from: from.to_vec(),
                to: out,
            });
        }
        out[i] = numel / known;
    }
    if out.iter().product::<usize>() != numel {
        return Err(TensorError::ReshapeCount {
            from: from.to_vec(),
            to: out,
        });
    }
    Ok(out)
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let values = self
            .layout
            .offsets()
            .take(SHOWN)
            .map(|o| self.storage[o])
            .collect::<Vec<_>>();
        let more = if self.numel() > SHOWN { ", .." } else { "" };
        write!(
            f,
            "Tensor(shape={:?}, strides={:?}, values={values:?}{more})",
            self.shape(),
            self.strides()
        )
    }
}
