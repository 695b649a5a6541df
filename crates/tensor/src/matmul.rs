//! Matrix products on strided views, through `matrixmultiply::sgemm`.
//!
//! `sgemm` takes a row stride and a column stride for each operand, so a transposed,
//! narrowed or permuted view is multiplied where it lies. The one exception is an
//! operand that `sgemm` would pack one element at a time (A with its rows contiguous, B
//! with its columns contiguous, as `x · Wᵀ` has both), in a product large enough that
//! copying it once into the other order is cheaper than that slow packing: see
//! [`REORDER_MAX_ELEMENTS`] and `Reorder`.
//! Batched products walk the (broadcast) batch dimensions; a broadcast batch dimension
//! has stride 0, so every batch entry reads the same matrix. The result is always a
//! fresh contiguous tensor, or (for [`matmul_into`]) an existing contiguous one.
//!
//! Threads come from rayon only (matrixmultiply's own `threading` feature is off): a
//! large product is cut into independent `sgemm` calls that write disjoint blocks of
//! C, one per batch entry or per block of C's rows or columns (along the longer side),
//! and those run on rayon's pool.
//! Each task is a serial `sgemm`, so parallelism never nests. A task with few rows whose
//! operands have contiguous rows (the LSTM's per-step products at batch 20) runs the
//! packing-free kernel of [`crate::skinny_gemm`] instead of `matrixmultiply`.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::gemm::packed_sgemm;
use crate::layout::{broadcast_shape, Layout};
use crate::skinny_gemm;
use crate::tensor::Tensor;
use crate::transpose::transpose_block_into;

/// Products with at least this many multiply-adds (`batch·m·k·n`) split across rayon.
///
/// Below it a single `sgemm` call is faster than handing out tasks.
pub const PARALLEL_MULADDS: usize = 1 << 21;

/// Row blocks handed to separate tasks are a multiple of this (the f32 micro-kernel's
/// row count in matrixmultiply), so no task ends in a ragged micro-panel.
const ROW_ALIGN: usize = 8;

/// Column blocks are a multiple of this (a whole number of the micro-kernel's columns).
const COL_ALIGN: usize = 16;

impl Tensor {
    /// Matrix product `[.., m, k] · [.., k, n] -> [.., m, n]`.
    ///
    /// Both operands need rank ≥ 2; the batch dimensions (all but the last two)
    /// broadcast NumPy-style, so a 2-D operand multiplies every matrix of a batched
    /// one. Strided views (transposes, narrows, permutes, broadcasts) are multiplied
    /// without copying, except that a large 2-D product first copies an operand that
    /// `sgemm` would pack one element at a time, such as the `Wᵀ` of `x · Wᵀ` (see the
    /// module docs).
    ///
    /// PyTorch equivalent: `torch.matmul(a, b)` (for rank ≥ 2).
    ///
    /// # Panics
    /// When an operand has rank below 2, the inner dimensions differ, or the batch
    /// dimensions do not broadcast; the message names `matmul` and both shapes.
    pub fn matmul(&self, rhs: &Tensor) -> Tensor {
        let plan = Plan::new("matmul", self, rhs);
        let len: usize = plan.out_shape.iter().product();
        if plan.k == 0 || len == 0 {
            // An empty sum: the product is all zeros.
            return Tensor::zeros(&plan.out_shape);
        }
        // sgemm with beta = 0 writes every element of C without reading it, so the output
        // is not zeroed first (for the small products of attention heads, zeroing cost as
        // much as a fifth of the product).
        let mut out: Vec<f32> = Vec::with_capacity(len);
        // SAFETY: `out` has room for `len` elements; `run_raw` with beta = 0 and k > 0 has
        // sgemm write each of the `len` elements of C (the blocks of C the tasks cover tile
        // it exactly) and read none, and nothing else touches `out` meanwhile. After it,
        // all `len` elements are initialised, so setting the length is sound.
        unsafe {
            plan.run_raw(self, rhs, out.as_mut_ptr(), len, 1.0, 0.0);
            out.set_len(len);
        }
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
        assert!(
            a.rank() >= 2 && b.rank() >= 2,
            "{op}: needs rank >= 2, got shapes {sa:?} and {sb:?}"
        );
        let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
        let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
        assert!(
            k == k2,
            "{op}: inner dimensions differ ({k} vs {k2}) for shapes {sa:?} and {sb:?}"
        );
        let batch =
            broadcast_shape(&sa[..sa.len() - 2], &sb[..sb.len() - 2]).unwrap_or_else(|| {
                panic!("{op}: batch dimensions of {sa:?} and {sb:?} do not broadcast")
            });
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
        debug_assert_eq!(c.len(), self.out_shape.iter().product::<usize>());
        if c.is_empty() {
            return;
        }
        if self.k == 0 {
            // An empty sum: A·B is all zeros. Don't hand sgemm zero sizes.
            scale(c, beta);
            return;
        }
        // SAFETY: `c` is an initialised, exclusively borrowed buffer of `c.len()` elements.
        unsafe { self.run_raw(a, b, c.as_mut_ptr(), c.len(), alpha, beta) }
    }

    /// [`Plan::run`] through a raw pointer, for an output not yet initialised.
    ///
    /// # Safety
    /// `c` must be valid for writes of `c_len` elements (the product's size), not aliased
    /// by anything else for the duration, and initialised unless `beta == 0`; `k > 0`.
    unsafe fn run_raw(
        &self,
        a: &Tensor,
        b: &Tensor,
        c: *mut f32,
        c_len: usize,
        alpha: f32,
        beta: f32,
    ) {
        let (m, k, n) = (self.m, self.k, self.n);
        debug_assert!(k > 0 && c_len == self.out_shape.iter().product::<usize>());
        let rank = self.out_shape.len();
        let batches = c_len / (m * n);
        let threads = rayon::current_num_threads();
        let parallel = threads > 1 && batches * m * k * n >= PARALLEL_MULADDS;
        // When the batch alone does not give every thread work, cut each matrix of C into
        // blocks along its longer side: each task packs only its own slice of the operand
        // on that side, and the whole (smaller) operand on the other.
        let blocks = if parallel && batches < threads {
            threads.div_ceil(batches)
        } else {
            1
        };
        let by_columns = blocks > 1 && n > m;
        let (rows_per_block, cols_per_block) = if by_columns {
            (m, n.div_ceil(blocks).next_multiple_of(COL_ALIGN).min(n))
        } else {
            (m.div_ceil(blocks).next_multiple_of(ROW_ALIGN).min(m), n)
        };

        // An operand that `matrixmultiply` would pack one element at a time is first
        // copied into the order it packs a row at a time (see `Reorder`).
        let reorder = Reorder::new(self, [rows_per_block, cols_per_block]);
        let a_reordered = reorder
            .a
            .then(|| a.transpose(0, 1).contiguous().transpose(0, 1));
        let b_reordered = reorder.b.then(|| b.contiguous());
        let (a, a_layout) = match &a_reordered {
            Some(copy) => (copy, copy.layout()),
            None => (a, &self.a),
        };
        let (b, b_layout) = match &b_reordered {
            Some(copy) => (copy, copy.layout()),
            None => (b, &self.b),
        };

        let a_batch = a_layout.squeeze(rank - 1).squeeze(rank - 2);
        let b_batch = b_layout.squeeze(rank - 1).squeeze(rank - 2);
        let geometry = Geometry {
            k,
            n,
            rsa: a_layout.strides()[rank - 2],
            csa: a_layout.strides()[rank - 1],
            rsb: b_layout.strides()[rank - 2],
            csb: b_layout.strides()[rank - 1],
            a: a.storage(),
            b: b.storage(),
            alpha,
            beta,
            a_by_k_blocks: reorder.a_by_k_blocks,
        };
        let (rsa, csb) = (a_layout.strides()[rank - 2], b_layout.strides()[rank - 1]);

        let c_ptr = CPtr(c);
        let mut tasks = Vec::new();
        for (matrix, (a_offset, b_offset)) in a_batch.offsets().zip(b_batch.offsets()).enumerate() {
            for row0 in (0..m).step_by(rows_per_block) {
                for col0 in (0..n).step_by(cols_per_block) {
                    tasks.push(Task {
                        a_offset: a_offset + row0 * rsa,
                        b_offset: b_offset + col0 * csb,
                        c_offset: matrix * m * n + row0 * n + col0,
                        rows: rows_per_block.min(m - row0),
                        cols: cols_per_block.min(n - col0),
                    });
                }
            }
        }
        let run = |task: &Task| geometry.sgemm(task, c_ptr, c_len);
        if parallel {
            tasks.par_iter().for_each(run);
        } else {
            tasks.iter().for_each(run);
        }
    }
}

/// Largest operand, in elements (16 MiB of `f32`), that a product copies into a
/// better storage order (see `Reorder`): a larger one would not stay in cache between
/// the copy and the packing, so the copy would cost a round trip to memory.
pub const REORDER_MAX_ELEMENTS: usize = 1 << 22;

/// Multiply-adds per element of an operand (the size of C's other side) below which the
/// operand is never reordered: the copy would cost too large a share of the product.
pub const REORDER_MIN_REUSE: usize = 256;

/// `matrixmultiply`'s block of C's columns for `f32` (its `S_NC`): each `sgemm` call
/// packs A once per block of this many columns, and B once.
pub(crate) const SGEMM_NC: usize = 1024;

/// `matrixmultiply`'s block of the inner dimension for `f32` (its `S_KC`): it adds the
/// product into C one block of this many terms at a time, so a caller that cuts `k`
/// into the same blocks (with `beta = 1` after the first) gets the same bits.
pub const SGEMM_KC: usize = 256;

/// Which operands of a 2-D product to copy into another storage order first.
///
/// `matrixmultiply` packs A in panels of a few rows, one column of the panel at a time,
/// and B in panels of a few columns, one row at a time. When those runs are contiguous
/// (A column-major, B row-major) it copies them whole; otherwise it reads them one
/// element at a time. The decoder of a language model, `x · Wᵀ` with `W: [10000, 200]`
/// row-major, is the second case on both sides: there, copying `Wᵀ` into row-major order
/// first (0.45 ms) made the product 2.5 ms faster (31.3 -> 28.8 ms; 28.0 with `x`
/// reordered too, which is packed once per [`SGEMM_NC`] columns of C: ten times). So
/// B is reordered, and A when it would be packed more than once, if it is packed
/// element by element, is at most [`REORDER_MAX_ELEMENTS`], and the product does at least
/// [`REORDER_MIN_REUSE`] multiply-adds per element copied (the copy is then a small
/// fraction of the product). A is not reordered when the packing-free kernel of
/// [`skinny_gemm`] would run the product: it reads A's rows where they lie.
///
/// The copies are exact and `sgemm` packs the same values either way, so a product that
/// `matrixmultiply` runs gives the same bits with or without the reordering. (Which
/// operand `matrixmultiply` then treats as its A is `gemm::packed_sgemm`'s choice, made
/// after these copies: it may run the product transposed, where a reordered A is packed
/// as a row-major Bᵀ, still a run at a time.)
///
/// Only 2-D products are considered: the batched ones (attention heads) are small, and
/// copying a broadcast operand would multiply it.
struct Reorder {
    a: bool,
    /// A is packed element by element but too large to copy whole: copy it one block of
    /// [`SGEMM_KC`] columns at a time instead (see [`Geometry::sgemm_by_k_blocks`]).
    a_by_k_blocks: bool,
    b: bool,
}

impl Reorder {
    fn new(plan: &Plan, [rows_per_task, cols_per_task]: [usize; 2]) -> Reorder {
        let (m, k, n) = (plan.m, plan.k, plan.n);
        if plan.out_shape.len() != 2 || m * k * n < PARALLEL_MULADDS {
            return Reorder {
                a: false,
                a_by_k_blocks: false,
                b: false,
            };
        }
        let worth = worth_reordering;
        let [rsa, csa] = [plan.a.strides()[0], plan.a.strides()[1]];
        let csb = plan.b.strides()[1];
        let skinny = skinny_gemm::qualifies(rows_per_task, k, csa as isize, 1);
        // A row-major A is the usual case: reordering it whole pays only when each task
        // would pack it more than once.
        let a = m > 1 && rsa != 1 && !skinny && cols_per_task > SGEMM_NC && worth(m * k, n);
        Reorder {
            a,
            a_by_k_blocks: m > 1 && rsa != 1 && csa == 1 && !skinny && !a && k > SGEMM_KC,
            b: n > 1 && csb != 1 && worth(k * n, m),
        }
    }
}

/// True when a 2-D product copies an operand of `elements` elements, packed one element
/// at a time, into the other storage order (see `Reorder`): the copy fits in cache and
/// `other_side` multiply-adds (the size of C's other side) use each element copied.
fn worth_reordering(elements: usize, other_side: usize) -> bool {
    elements <= REORDER_MAX_ELEMENTS && other_side >= REORDER_MIN_REUSE
}

/// True when `[m, k] · B` with a column-major `B: [k, n]` (the `Wᵀ` of `x · Wᵀ`) copies
/// B into row-major order before multiplying (see `Reorder`). `Tensor::linear` asks, to
/// make that copy itself with the bias appended.
pub(crate) fn reorders_column_major_b(m: usize, k: usize, n: usize) -> bool {
    m * k * n >= PARALLEL_MULADDS && n > 1 && worth_reordering(k * n, m)
}

/// C's base pointer, shared by the tasks of one product, which write disjoint blocks.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: the tasks of one product write pairwise disjoint blocks of C (different batch
// entries, row ranges or column ranges), and C is exclusively `run_raw`'s until every task
// has finished (its callers' contract: an exclusive borrow, or a fresh buffer nothing else
// can see), so sending the pointer to rayon's threads creates no aliasing.
unsafe impl Send for CPtr {}
unsafe impl Sync for CPtr {}

/// What every `sgemm` call of one product shares.
struct Geometry<'a> {
    k: usize,
    n: usize,
    rsa: usize,
    csa: usize,
    rsb: usize,
    csb: usize,
    a: &'a [f32],
    b: &'a [f32],
    alpha: f32,
    beta: f32,
    /// Copy A into column-major order one block of `k` at a time (see `Reorder`).
    a_by_k_blocks: bool,
}

/// One `sgemm` call: a `rows × cols` block of one batch entry of C, and where the
/// matching rows of A and columns of B start in storage.
struct Task {
    a_offset: usize,
    b_offset: usize,
    /// Offset of the block's first element in C (row-major, row stride `n`).
    c_offset: usize,
    rows: usize,
    cols: usize,
}

impl Geometry<'_> {
    /// `C[block] = alpha · A[rows]·B[:, cols] + beta · C[block]`.
    fn sgemm(&self, task: &Task, c: CPtr, c_len: usize) {
        let (k, n, rows, cols) = (self.k, self.n, task.rows, task.cols);
        assert!(rows > 0 && k > 0 && cols > 0, "matmul: empty block");
        // The last element each operand reaches: strides are non-negative (usize in the
        // layout), so the largest offset is at the last row and last column.
        let a_last = task.a_offset + (rows - 1) * self.rsa + (k - 1) * self.csa;
        let b_last = task.b_offset + (k - 1) * self.rsb + (cols - 1) * self.csb;
        let c_last = task.c_offset + (rows - 1) * n + (cols - 1);
        assert!(
            a_last < self.a.len() && b_last < self.b.len() && c_last < c_len,
            "matmul: block reaches past its storage (A to {a_last} of {}, B to {b_last} of {}, C to {c_last} of {c_len})",
            self.a.len(),
            self.b.len()
        );
        if skinny_gemm::qualifies(rows, k, self.csa as isize, self.csb as isize) {
            let operands = skinny_gemm::Operands {
                m: rows,
                k,
                n: cols,
                rsa: self.rsa,
                rsb: self.rsb,
                rsc: n,
            };
            // SAFETY: `qualifies` holds (AVX2 and FMA; A's and B's column strides are 1).
            // The kernel reads A at `a_offset + i*rsa + p`, B at `b_offset + p*rsb + j`
            // and writes C at `c_offset + i*n + j` for i < rows, p < k, j < cols: the
            // elements whose last ones were checked above to lie in A, B and C. C is
            // this task's alone (see `CPtr`) and disjoint from A and B; with beta == 0
            // it is written without being read.
            unsafe {
                skinny_gemm::sgemm(
                    operands,
                    self.alpha,
                    self.a.as_ptr().add(task.a_offset),
                    self.b.as_ptr().add(task.b_offset),
                    self.beta,
                    c.0.add(task.c_offset),
                );
            }
            return;
        }
        if self.a_by_k_blocks {
            self.sgemm_by_k_blocks(task, c);
            return;
        }
        // SAFETY: every element sgemm reads of A is at `a_offset + i*rsa + p*csa` with
        // i < rows, p < k; all strides are non-negative, so the largest is `a_last`,
        // checked above to lie in `self.a` (likewise `b_last` for B with p < k, j < cols).
        // C is written at `c_offset + i*n + j` (rsc = n, csc = 1), i < rows, j < cols <= n:
        // distinct elements, the largest `c_last`, checked to lie in C, which `run_raw`
        // holds exclusively; no other task touches this block (see `CPtr`), and C cannot
        // overlap A or B, which are shared borrows. With beta == 0 sgemm does not read C
        // (matrixmultiply documents that C need not be initialised then). Sizes are
        // non-zero (k == 0 and empty C never reach here).
        unsafe {
            packed_sgemm(
                [rows, k, cols],
                self.alpha,
                (self.a.as_ptr().add(task.a_offset), self.rsa, self.csa),
                (self.b.as_ptr().add(task.b_offset), self.rsb, self.csb),
                self.beta,
                (c.0.add(task.c_offset), n, 1),
            );
        }
    }

    /// [`Geometry::sgemm`] for a row-major A that `matrixmultiply` would pack one element
    /// at a time and that is too large to copy whole (the backward `dlogits · W` of a
    /// language model's decoder, `[700, 10000] · [10000, 200]`): each block of
    /// [`SGEMM_KC`] columns of the task's rows of A is transposed into a column-major
    /// panel that stays in cache, which `sgemm` then packs a run at a time, and its
    /// product is added into C (`beta = 1` after the first block). The blocks are
    /// `sgemm`'s own, so the result has the same bits as one call. On that decoder
    /// product at one thread: 34.4–35.1 -> 31.4–32.6 ms.
    ///
    /// The caller has checked that the block lies in A, B and C, and that A's column
    /// stride is 1 (see `Reorder`).
    fn sgemm_by_k_blocks(&self, task: &Task, c: CPtr) {
        let (k, n, rows, cols) = (self.k, self.n, task.rows, task.cols);
        debug_assert_eq!(self.csa, 1, "by k blocks: A's rows must be contiguous");
        let mut panel = vec![MaybeUninit::<f32>::uninit(); rows * SGEMM_KC.min(k)];
        for k0 in (0..k).step_by(SGEMM_KC) {
            let depth = SGEMM_KC.min(k - k0);
            // panel[p·rows + i] = A[i, k0 + p]: rows `k0..k0 + depth` of Aᵀ.
            transpose_block_into(
                self.a,
                task.a_offset + k0,
                self.rsa,
                [depth, rows],
                &mut panel,
            );
            let beta = if k0 == 0 { self.beta } else { 1.0 };
            // SAFETY: `transpose_block_into` wrote the first `depth·rows` elements of
            // `panel`, which sgemm reads at `i + p·rows` (i < rows, p < depth), and
            // `MaybeUninit<f32>` has the layout of `f32`. B is read at
            // `b_offset + (k0 + p)·rsb + j·csb` and C written at `c_offset + i·n + j`
            // (i < rows, p < depth, j < cols): within the block that `Geometry::sgemm`
            // checked to lie in B and C before calling this. C is this task's alone (see
            // `CPtr`) and disjoint from A, B and `panel`; with beta == 0 (the first block
            // only) sgemm does not read it.
            unsafe {
                packed_sgemm(
                    [rows, depth, cols],
                    self.alpha,
                    (panel.as_ptr().cast::<f32>(), 1, rows),
                    (
                        self.b.as_ptr().add(task.b_offset + k0 * self.rsb),
                        self.rsb,
                        self.csb,
                    ),
                    beta,
                    (c.0.add(task.c_offset), n, 1),
                );
            }
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
