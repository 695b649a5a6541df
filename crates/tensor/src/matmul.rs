//! Matrix products on strided views, through `matrixmultiply::sgemm`.
//!
//! `sgemm` takes a row stride and a column stride for each operand, so a transposed,
//! narrowed or permuted view is multiplied where it lies: no operand is ever copied.
//! Batched products walk the (broadcast) batch dimensions; a broadcast batch dimension
//! has stride 0, so every batch entry reads the same matrix. The result is always a
//! fresh contiguous tensor, or (for [`matmul_into`]) an existing contiguous one.
//!
//! Threads come from rayon only (matrixmultiply's own `threading` feature is off): a
//! large product is cut into independent `sgemm` calls that write disjoint blocks of
//! C, one per batch entry or per block of C's rows, and those run on rayon's pool.
//! Each task is a serial `sgemm`, so parallelism never nests.

use rayon::prelude::*;

use crate::layout::{broadcast_shape, Layout};
use crate::tensor::Tensor;

/// Products with at least this many multiply-adds (`batch·m·k·n`) split across rayon.
///
/// Below it a single `sgemm` call is faster than handing out tasks.
pub const PARALLEL_MULADDS: usize = 1 << 21;

/// Row blocks handed to separate tasks are a multiple of this (the f32 micro-kernel's
/// row count in matrixmultiply), so no task ends in a ragged micro-panel.
const ROW_ALIGN: usize = 8;

impl Tensor {
    /// Matrix product `[.., m, k] · [.., k, n] -> [.., m, n]`.
    ///
    /// Both operands need rank ≥ 2; the batch dimensions (all but the last two)
    /// broadcast NumPy-style, so a 2-D operand multiplies every matrix of a batched
    /// one. Strided views (transposes, narrows, permutes, broadcasts) are multiplied
    /// without copying.
    ///
    /// PyTorch equivalent: `torch.matmul(a, b)` (for rank ≥ 2).
    ///
    /// # Panics
    /// When an operand has rank below 2, the inner dimensions differ, or the batch
    /// dimensions do not broadcast; the message names `matmul` and both shapes.
    pub fn matmul(&self, rhs: &Tensor) -> Tensor {
        let plan = Plan::new("matmul", self, rhs);
        // sgemm with beta = 0 never reads C, but the buffer must exist; zeroing is
        // cheap next to the product (and `k == 0` relies on it).
        let mut out = vec![0.0; plan.out_shape.iter().product()];
        plan.run(self, rhs, &mut out, 1.0, 0.0);
        Tensor::from_contiguous(out, &plan.out_shape)
    }

    /// Accumulate a product in place: `self += a · b`.
    ///
    /// The backward pass of a matmul uses this to add into a gradient buffer without a
    /// temporary. `self` is made contiguous and unshared first (see
    /// [`Tensor::data_mut`]).
    ///
    /// PyTorch equivalent: `c.addmm_(a, b)` / `c += a @ b`.
    ///
    /// # Panics
    /// As [`matmul_into`].
    pub fn matmul_acc(&mut self, a: &Tensor, b: &Tensor) {
        matmul_into(a, b, self, 1.0, 1.0);
    }
}

/// `C = alpha · A·B + beta · C`, written into `c` (made contiguous first).
///
/// With `beta == 0` the old contents of `c` are ignored (even NaN), as in BLAS.
///
/// PyTorch equivalent: `torch.baddbmm(c, a, b, beta=beta, alpha=alpha, out=c)`.
///
/// # Panics
/// As [`Tensor::matmul`], and when `c`'s shape is not the shape of `a.matmul(b)`.
pub fn matmul_into(a: &Tensor, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) {
    let plan = Plan::new("matmul_into", a, b);
    assert!(
        c.shape() == plan.out_shape,
        "matmul_into: output has shape {:?} but {:?} · {:?} gives {:?}",
        c.shape(),
        a.shape(),
        b.shape(),
        plan.out_shape
    );
    plan.run(a, b, c.data_mut(), alpha, beta);
}

/// Shapes and broadcast layouts of one (batched) product.
struct Plan {
    m: usize,
    k: usize,
    n: usize,
    /// `batch ++ [m, n]`.
    out_shape: Vec<usize>,
    /// `a` broadcast to `batch ++ [m, k]`.
    a: Layout,
    /// `b` broadcast to `batch ++ [k, n]`.
    b: Layout,
}

impl Plan {
    fn new(op: &str, a: &Tensor, b: &Tensor) -> Plan {
        let (sa, sb) = (a.shape(), b.shape());
        assert!(a.rank() >= 2 && b.rank() >= 2, "{op}: needs rank >= 2, got shapes {sa:?} and {sb:?}");
        let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
        let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
        assert!(k == k2, "{op}: inner dimensions differ ({k} vs {k2}) for shapes {sa:?} and {sb:?}");
        let batch = broadcast_shape(&sa[..sa.len() - 2], &sb[..sb.len() - 2])
            .unwrap_or_else(|| panic!("{op}: batch dimensions of {sa:?} and {sb:?} do not broadcast"));
        let with = |rows: usize, cols: usize| [batch.as_slice(), &[rows, cols]].concat();
        Plan {
            m,
            k,
            n,
            out_shape: with(m, n),
            a: a.layout().broadcast_to(&with(m, k)),
            b: b.layout().broadcast_to(&with(k, n)),
        }
    }

    /// Compute `c = alpha·A·B + beta·c` for every batch entry; `c` is row-major.
    fn run(&self, a: &Tensor, b: &Tensor, c: &mut [f32], alpha: f32, beta: f32) {
        let (m, k, n) = (self.m, self.k, self.n);
        debug_assert_eq!(c.len(), self.out_shape.iter().product::<usize>());
        if c.is_empty() {
            return;
        }
        if k == 0 {
            // An empty sum: A·B is all zeros. Don't hand sgemm zero sizes.
            scale(c, beta);
            return;
        }
        let rank = self.out_shape.len();
        let a_batch = self.a.squeeze(rank - 1).squeeze(rank - 2);
        let b_batch = self.b.squeeze(rank - 1).squeeze(rank - 2);
        let geometry = Geometry {
            k,
            n,
            rsa: self.a.strides()[rank - 2] as isize,
            csa: self.a.strides()[rank - 1] as isize,
            rsb: self.b.strides()[rank - 2] as isize,
            csb: self.b.strides()[rank - 1] as isize,
            a: a.storage(),
            b: b.storage(),
            alpha,
            beta,
        };

        let batches = c.len() / (m * n);
        let threads = rayon::current_num_threads();
        let parallel = threads > 1 && batches * m * k * n >= PARALLEL_MULADDS;
        // Enough row blocks per matrix that every thread gets work, when the batch
        // alone does not provide it.
        let blocks_per_matrix = if parallel && batches < threads { threads.div_ceil(batches) } else { 1 };
        let rows_per_block = m.div_ceil(blocks_per_matrix).next_multiple_of(ROW_ALIGN).min(m);

        let tasks = c.chunks_mut(m * n).zip(a_batch.offsets().zip(b_batch.offsets())).flat_map(
            |(c_matrix, (a_offset, b_offset))| {
                c_matrix.chunks_mut(rows_per_block * n).enumerate().map(move |(block, c_rows)| Task {
                    a_offset: a_offset + block * rows_per_block * self.a.strides()[rank - 2],
                    b_offset,
                    c: c_rows,
                })
            },
        );
        if parallel {
            tasks.collect::<Vec<_>>().into_par_iter().for_each(|task| geometry.sgemm(task));
        } else {
            tasks.for_each(|task| geometry.sgemm(task));
        }
    }
}

/// What every `sgemm` call of one product shares.
struct Geometry<'a> {
    k: usize,
    n: usize,
    rsa: isize,
    csa: isize,
    rsb: isize,
    csb: isize,
    a: &'a [f32],
    b: &'a [f32],
    alpha: f32,
    beta: f32,
}

/// One `sgemm` call: a block of C's rows (of one batch entry) and where its A rows and
/// its B matrix start in storage.
struct Task<'c> {
    a_offset: usize,
    b_offset: usize,
    c: &'c mut [f32],
}

impl Geometry<'_> {
    /// `task.c = alpha · A[rows]·B + beta · task.c`, with `task.c` row-major `rows × n`.
    fn sgemm(&self, task: Task<'_>) {
        let (k, n) = (self.k, self.n);
        let rows = task.c.len() / n;
        assert!(rows > 0 && k > 0 && n > 0 && task.c.len() == rows * n, "matmul: bad block");
        // The last element each operand reaches: strides are non-negative (usize in the
        // layout), so the largest offset is at the last row and last column.
        let a_last = task.a_offset + (rows - 1) * self.rsa as usize + (k - 1) * self.csa as usize;
        let b_last = task.b_offset + (k - 1) * self.rsb as usize + (n - 1) * self.csb as usize;
        assert!(
            a_last < self.a.len() && b_last < self.b.len(),
            "matmul: view reaches past its storage (A to {a_last} of {}, B to {b_last} of {})",
            self.a.len(),
            self.b.len()
        );
        // SAFETY: every element sgemm reads of A is at `a_offset + i*rsa + p*csa` with
        // i < rows, p < k; all strides are non-negative, so the largest is `a_last`,
        // checked above to lie in `self.a` (likewise `b_last` for B with p < k, j < n).
        // The base pointers are in bounds because they are at most those maxima.
        // C is `task.c`, an exclusively borrowed `rows × n` row-major slice
        // (rsc = n, csc = 1): its elements are distinct and all inside it, and it
        // cannot overlap A or B, which are shared borrows. With beta == 0 sgemm does
        // not read C. Sizes are non-zero (k == 0 and empty C are handled by `run`).
        unsafe {
            matrixmultiply::sgemm(
                rows,
                k,
                n,
                self.alpha,
                self.a.as_ptr().add(task.a_offset),
                self.rsa,
                self.csa,
                self.b.as_ptr().add(task.b_offset),
                self.rsb,
                self.csb,
                self.beta,
                task.c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
    }
}

/// `c = beta · c`, where `beta == 0` overwrites (so NaN in `c` does not survive).
fn scale(c: &mut [f32], beta: f32) {
    if beta == 0.0 {
        c.fill(0.0);
    } else if beta != 1.0 {
        c.iter_mut().for_each(|x| *x *= beta);
    }
}
