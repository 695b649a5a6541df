//! Strided CPU `f32` tensors: the bottom layer of agdlab. It knows nothing of gradients.
//!
//! A [`Tensor`] is an `Arc`'d buffer seen through a [`Layout`] (shape, strides in
//! elements, offset). Cloning is cheap, and so are views: transpose, permute, narrow,
//! broadcast (stride 0), unsqueeze/squeeze and reshape of a contiguous tensor are
//! stride arithmetic over the same buffer; [`Tensor::contiguous`] copies only when it
//! must. PyTorch users will recognise the names: each op's docs give its PyTorch
//! equivalent.
//!
//! | module | what it holds |
//! |---|---|
//! | [`layout`] | shape/stride arithmetic and the strided index walk |
//! | [`tensor`] | the type, constructors (seeded `uniform`/`normal`), views |
//! | [`elementwise`] | unary math, binary ops with NumPy broadcasting, comparisons |
//! | [`reduce`] | sums, means, max/argmax over chosen axes, `sum_to` (undo broadcasting) |
//! | [`exp`] | a vectorisable `exp` (Cephes' `expf`), within 2 ulp |
//! | [`softmax`] | numerically stable softmax, log-softmax, logsumexp |
//! | [`index`] | concat/stack, index_select/index_add, gather/scatter_add |
//! | [`matmul`] | 2-D and batched products through `matrixmultiply::sgemm`, strides passed straight through (an operand it would pack element by element is reordered first) |
//! | [`skinny_gemm`] | the packing-free product `matmul` uses for blocks with few rows (AVX2/FMA) |
//! | [`linear`] | `x·Wᵀ + b`, with the bias folded into the product when it is large |
//! | [`parallel`] | when and how loops use rayon's threads, and the strided walkers |
//! | `transpose` (private) | transposed tiles: copying a view that runs down its columns (NCHW <-> NHWC, `Wᵀ`) in AVX 8 x 8 blocks |
//! | [`alloc_count`] | a counting allocator for tests that promise "no copy" |
//! | [`memory`] | keeping freed memory for reuse between training steps (glibc's `mallopt`) |
//! | [`gemm`] | one serial, bounds-checked `sgemm` on matrices inside slices |
//! | [`conv`] | 2-D convolution: im2col + sgemm forward, col2im + sgemm backward |
//! | [`pool`] | max, average and global average pooling of NCHW planes |
//! | [`batch_norm`] | per-channel statistics and affine maps of batch normalisation |
//!
//! Threads: element-wise loops and reductions over more than
//! [`parallel::PARALLEL_THRESHOLD`] elements, and large matmuls, split across rayon's
//! pool; smaller ones run serially. Rayon is the only source of threads (matrixmultiply's
//! own threading is off), so `RAYON_NUM_THREADS` or `ThreadPool::install` sets the count
//! for everything, and results are bit-identical whatever the count.
//!
//! Errors: a shape mismatch between operands or a bad axis is a programming error and
//! panics with the op's name and the shapes (each op's `# Panics`); sizes that come from
//! data (`from_vec`, `reshape`) return a [`TensorError`].

pub mod alloc_count;
pub mod batch_norm;
pub mod conv;
pub mod elementwise;
pub mod error;
pub mod exp;
pub mod gemm;
pub mod index;
pub mod layout;
pub mod linear;
pub mod matmul;
pub mod memory;
pub mod parallel;
pub mod pool;
pub mod reduce;
pub mod skinny_gemm;
pub mod softmax;
pub mod tensor;
mod transpose;

pub use conv::{Conv2dSpec, ConvGeometry};
pub use error::{Result, TensorError};
pub use index::Indices;
pub use layout::Layout;
pub use matmul::matmul_into;
pub use pool::Pool2dSpec;
pub use tensor::Tensor;
