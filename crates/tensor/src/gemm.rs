//! One serial `sgemm` on matrices that lie inside plain slices, bounds-checked.
//!
//! [`Tensor::matmul`](crate::Tensor::matmul) works on whole tensors and splits large
//! products across threads. The convolution kernels (`conv.rs`) need something smaller:
//! a product of a weight matrix with one image's columns, written into a window of the
//! output, on the thread that already owns that image. [`sgemm`] is that: the operands
//! are [`MatRef`]s (a slice plus shape and strides), the result a [`MatMut`], and every
//! element either reaches is checked to lie inside its slice before `matrixmultiply`
//! is called, so the function is safe to call with any arguments. Products with few
//! rows whose operands' rows are contiguous (a convolution with up to 32 output
//! channels: `weight · columns`) go to the packing-free kernel of [`crate::skinny_gemm`]
//! instead, as [`crate::Tensor::matmul`]'s do, and so do those whose B is the transpose
//! of a matrix with contiguous rows (its weight gradient: `dY · columnsᵀ`).

use crate::skinny_gemm;

/// A read-only `rows × cols` matrix inside a slice: element `(i, j)` is
/// `data[offset + i·row_stride + j·col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// The row-major `rows × cols` matrix starting at `offset`.
    pub fn row_major(data: &'a [f32], offset: usize, rows: usize, cols: usize) -> MatRef<'a> {
        MatRef {
            data,
            offset,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose: a view, nothing is copied.
    pub fn t(self) -> MatRef<'a> {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// A writable `rows × cols` matrix inside a slice, laid out as [`MatRef`]. Its elements
/// must be distinct (checked by [`sgemm`]).
#[derive(Debug)]
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatMut<'a> {
    /// The row-major `rows × cols` matrix starting at `offset`.
    pub fn row_major(data: &'a mut [f32], offset: usize, rows: usize, cols: usize) -> MatMut<'a> {
        MatMut {
            data,
            offset,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }
}

/// The largest offset a `rows × cols` view reaches (strides are non-negative).
fn last_offset(
    offset: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> usize {
    offset + (rows - 1) * row_stride + (cols - 1) * col_stride
}

/// `C = alpha·A·B + beta·C`, on the calling thread. With `beta == 0` the old contents
/// of `C` are not read (even NaN is overwritten), as in BLAS.
///
/// PyTorch equivalent: `torch.addmm(c, a, b, beta=beta, alpha=alpha, out=c)`.
///
/// # Panics
/// When the shapes do not fit (`a.cols != b.rows`, `c` not `a.rows × b.cols`), when a
/// view reaches past its slice, or when two elements of `c` share a place in memory.
pub fn sgemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k && c.rows == m && c.cols == n,
        "sgemm: shapes do not fit: A {m}x{k}, B {}x{n}, C {}x{}",
        b.rows,
        c.rows,
        c.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    let distinct =
        m == 1 || n == 1 || c.row_stride >= n * c.col_stride || c.col_stride >= m * c.row_stride;
    assert!(
        distinct && (m == 1 || c.row_stride > 0) && (n == 1 || c.col_stride > 0),
        "sgemm: C's strides ({}, {}) make elements of a {m}x{n} matrix overlap",
        c.row_stride,
        c.col_stride
    );
    let c_last = last_offset(c.offset, m, n, c.row_stride, c.col_stride);
    assert!(
        c_last < c.data.len(),
        "sgemm: C reaches {c_last} in a slice of {}",
        c.data.len()
    );
    if k == 0 {
        // An empty sum: A·B is all zeros. Don't hand sgemm a zero size.
        for i in 0..m {
            for j in 0..n {
                let x = &mut c.data[c.offset + i * c.row_stride + j * c.col_stride];
                *x = if beta == 0.0 { 0.0 } else { beta * *x };
            }
        }
        return;
    }
    let a_last = last_offset(a.offset, m, k, a.row_stride, a.col_stride);
    let b_last = last_offset(b.offset, k, n, b.row_stride, b.col_stride);
    assert!(
        a_last < a.data.len() && b_last < b.data.len(),
        "sgemm: an operand reaches past its slice (A to {a_last} of {}, B to {b_last} of {})",
        a.data.len(),
        b.data.len()
    );
    // A packing-free kernel when one fits: B with contiguous rows (`B[p, j]` at
    // `p·rsb + j`), or B the transpose of a matrix with contiguous rows (at `j·csb + p`).
    let (a_rows, c_rows) = (a.col_stride == 1, c.col_stride == 1);
    let packing_free: Option<(skinny_gemm::Kernel, usize)> = if !(a_rows && c_rows) {
        None
    } else if skinny_gemm::qualifies(m, k, 1, b.col_stride as isize) {
        Some((skinny_gemm::sgemm, b.row_stride))
    } else if skinny_gemm::qualifies_bt(m, 1, b.row_stride as isize) {
        Some((skinny_gemm::sgemm_bt, b.col_stride))
    } else {
        None
    };
    if let Some((kernel, b_stride)) = packing_free {
        let operands = skinny_gemm::Operands {
            m,
            k,
            n,
            rsa: a.row_stride,
            rsb: b_stride,
            rsc: c.row_stride,
        };
        // SAFETY: the kernel's `qualifies` holds (AVX2 and FMA; A's rows, C's rows and
        // B's rows or columns are contiguous). It reads A at `a.offset + i·rsa + p`, B at
        // `b.offset + p·rsb + j` (or `+ j·csb + p`) and writes C at `c.offset + i·rsc + j`
        // for i < m, p < k, j < n: the elements whose last ones (`a_last`, `b_last`,
        // `c_last`) were checked above to lie in their slices. `c.data` is an exclusive
        // borrow, so it overlaps neither A nor B; with beta == 0 C is written unread.
        unsafe {
            kernel(
                operands,
                alpha,
                a.data.as_ptr().add(a.offset),
                b.data.as_ptr().add(b.offset),
                beta,
                c.data.as_mut_ptr().add(c.offset),
            );
        }
        return;
    }
    // SAFETY: every element sgemm reads of A is at `a.offset + i·rsa + p·csa` with i < m,
    // p < k; strides are non-negative, so the largest is `a_last`, checked above to lie in
    // `a.data` (likewise `b_last` for B). C is written at `c.offset + i·rsc + j·csc`,
    // i < m, j < n: the largest is `c_last`, inside `c.data`, and the stride check above
    // makes these places distinct. `c.data` is an exclusive borrow, so it overlaps neither
    // A nor B. With beta == 0 sgemm does not read C. All sizes are non-zero.
    unsafe {
        packed_sgemm(
            [m, k, n],
            alpha,
            (a.data.as_ptr().add(a.offset), a.row_stride, a.col_stride),
            (b.data.as_ptr().add(b.offset), b.row_stride, b.col_stride),
            beta,
            (
                c.data.as_mut_ptr().add(c.offset),
                c.row_stride,
                c.col_stride,
            ),
        );
    }
}

/// `matrixmultiply::sgemm` (`C = alpha·A·B + beta·C`, `A: m×k`, `B: k×n`, each operand
/// a pointer and its row and column strides), asked in whichever orientation moves
/// fewer elements through memory ([`moves_less_transposed`]).
///
/// Asked for the transposed product `Cᵀ = Bᵀ·Aᵀ` (the same operands and C with their
/// strides swapped), `matrixmultiply` computes the same sums in the same order: each
/// element of C adds its terms in turn, one block of [`crate::matmul::SGEMM_KC`] at a
/// time, so the result has the same bits either way (tested). The operands keep their
/// packing order too (a column-major A is a row-major Bᵀ, each packed a run at a time).
/// What changes is how often the operands are packed and C revisited.
///
/// On the decoder of a language model at one thread (medians of 11, old and new builds
/// alternated three or four times): its forward product `[700, 201] · [201, 10000]`,
/// 29.2–29.9 -> 27.8–28.7 ms; its weight gradient `[10000, 700] · [700, 200]`,
/// 32.6–33.6 -> 32.0–32.5 ms.
///
/// # Safety
/// As `matrixmultiply::sgemm`: A and B valid for reads at every `i·rs + j·cs` of their
/// shapes, C valid for writes at every one of its own, those places distinct, C
/// overlapping neither A nor B, and C initialised unless `beta == 0`.
pub(crate) unsafe fn packed_sgemm(
    [m, k, n]: [usize; 3],
    alpha: f32,
    (a, rsa, csa): (*const f32, usize, usize),
    (b, rsb, csb): (*const f32, usize, usize),
    beta: f32,
    (c, rsc, csc): (*mut f32, usize, usize),
) {
    let [rsa, csa, rsb, csb, rsc, csc] = [rsa, csa, rsb, csb, rsc, csc].map(|s| s as isize);
    // SAFETY: the caller's contract is matrixmultiply's, for either orientation: the
    // transposed call reads and writes exactly the same elements.
    unsafe {
        if moves_less_transposed(m, k, n) {
            matrixmultiply::sgemm(n, k, m, alpha, b, csb, rsb, a, csa, rsa, beta, c, csc, rsc);
        } else {
            matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
        }
    }
}

/// Elements of C (`f32`) that one block of C's columns may hold and stay in a 1 MiB
/// L2 cache between `matrixmultiply`'s passes over it.
const C_BLOCK_IN_CACHE: usize = 1 << 18;

/// Elements `matrixmultiply::sgemm` moves for an `m × k × n` product, by its loop order:
/// for each block of [`SGEMM_NC`](crate::matmul::SGEMM_NC) columns of C, for each block
/// of [`SGEMM_KC`](crate::matmul::SGEMM_KC) terms, it packs that part of B, then packs A
/// one block of rows at a time and adds into the block of C. So A is packed once per
/// block of columns, B once, and C's block is passed over once per block of terms, from
/// memory unless the block stays in cache between passes.
fn elements_moved(m: usize, k: usize, n: usize) -> usize {
    use crate::matmul::{SGEMM_KC, SGEMM_NC};
    let packed = m * k * n.div_ceil(SGEMM_NC) + k * n;
    let c_passes = if m * n.min(SGEMM_NC) <= C_BLOCK_IN_CACHE {
        1
    } else {
        k.div_ceil(SGEMM_KC)
    };
    packed + m * n * c_passes
}

/// True when [`packed_sgemm`] asks for `Cᵀ = Bᵀ·Aᵀ`: that moves fewer elements
/// ([`elements_moved`]) than `C = A·B`. The decoder of a language model:
/// - `[700, 201] · [201, 10000]` packs its small A ten times one way (3.4 M elements
///   packed) and once the other (2.1 M);
/// - `[10000, 700] · [700, 200]` passes over all of C (8 MB) three times one way, and the
///   other way over blocks of 1024 of its rows (800 kB) which stay in cache.
fn moves_less_transposed(m: usize, k: usize, n: usize) -> bool {
    elements_moved(n, k, m) < elements_moved(m, k, n)
}

/// `C = alpha·A·B + beta·C` where the rows of B lie anywhere in one slice: `B[p, j]` is
/// `b[b_rows[p] + j]`, for `j < c.cols`. This is how a stride-1 convolution reads shifted
/// copies of its input with no im2col copy (`conv.rs`). Only products that
/// [`skinny_gemm::qualifies`] for (few rows of C, A's and C's rows contiguous, a CPU with
/// AVX2 and FMA) can take it: check `skinny_gemm::qualifies(m, k, 1, 1)` first.
///
/// # Panics
/// When the product does not qualify, the shapes do not fit (`b_rows.len() != a.cols`,
/// `c` not `a.rows` rows), a view reaches past its slice, or C's rows overlap.
pub fn sgemm_rows(
    alpha: f32,
    a: MatRef<'_>,
    b: &[f32],
    b_rows: &[usize],
    beta: f32,
    c: MatMut<'_>,
) {
    let (m, k, n) = (a.rows, a.cols, c.cols);
    assert!(
        b_rows.len() == k && c.rows == m,
        "sgemm_rows: shapes do not fit: A {m}x{k}, {} rows of B, C {}x{n}",
        b_rows.len(),
        c.rows
    );
    assert!(
        skinny_gemm::qualifies(m, k, 1, 1) && a.col_stride == 1 && c.col_stride == 1,
        "sgemm_rows: A {m}x{k} with column stride {} and C with column stride {} do not \
         qualify for the packing-free kernel",
        a.col_stride,
        c.col_stride
    );
    if m == 0 || n == 0 || k == 0 {
        // An empty sum is zeros; the conv lowering never asks for one.
        return sgemm(alpha, a, MatRef::row_major(&[], 0, k, n), beta, c);
    }
    let operands = table_operands("sgemm_rows", &a, &c, b_rows, n, b.len());
    // SAFETY: `skinny_gemm::qualifies` held (AVX2 and FMA) and A's and C's rows are
    // contiguous. The kernel reads A at `a.offset + i·rsa + p`, B at `b_rows[p] + j` and
    // writes C at `c.offset + i·rsc + j` for i < m, p < k, j < n: `table_operands`
    // checked all of them to lie in their slices, and C's rows to be distinct. `c.data`
    // is an exclusive borrow, so it overlaps neither A nor B.
    unsafe {
        skinny_gemm::sgemm_rows(
            operands,
            alpha,
            a.data.as_ptr().add(a.offset),
            b.as_ptr(),
            b_rows,
            beta,
            c.data.as_mut_ptr().add(c.offset),
        );
    }
}

/// `C = alpha·A·B + beta·C` where B is given by its transpose and the rows of Bᵀ lie
/// anywhere in one slice: `B[p, j]` is `bt[bt_rows[j] + p]`, for `p < a.cols`. This is
/// how a stride-1 convolution's weight gradient reads shifted copies of its input with
/// no im2col copy (`conv.rs`). Only products that [`skinny_gemm::qualifies_bt`] for (few
/// rows of C, A's and C's rows contiguous, a CPU with AVX2 and FMA) can take it: check
/// `skinny_gemm::qualifies_bt(m, 1, 1)` first.
///
/// # Panics
/// When the product does not qualify, the shapes do not fit (`bt_rows.len() != c.cols`,
/// `c` not `a.rows` rows), a view reaches past its slice, or C's rows overlap.
pub fn sgemm_bt_rows(
    alpha: f32,
    a: MatRef<'_>,
    bt: &[f32],
    bt_rows: &[usize],
    beta: f32,
    c: MatMut<'_>,
) {
    let (m, k, n) = (a.rows, a.cols, c.cols);
    assert!(
        bt_rows.len() == n && c.rows == m,
        "sgemm_bt_rows: shapes do not fit: A {m}x{k}, {} rows of Bᵀ, C {}x{n}",
        bt_rows.len(),
        c.rows
    );
    assert!(
        skinny_gemm::qualifies_bt(m, 1, 1) && a.col_stride == 1 && c.col_stride == 1,
        "sgemm_bt_rows: A {m}x{k} with column stride {} and C with column stride {} do \
         not qualify for the packing-free kernel",
        a.col_stride,
        c.col_stride
    );
    if m == 0 || n == 0 || k == 0 {
        // An empty sum is zeros; the conv lowering never asks for one.
        return sgemm(alpha, a, MatRef::row_major(&[], 0, k, n), beta, c);
    }
    let operands = table_operands("sgemm_bt_rows", &a, &c, bt_rows, k, bt.len());
    // SAFETY: `skinny_gemm::qualifies_bt` held (AVX2 and FMA) and A's and C's rows are
    // contiguous. The kernel reads A at `a.offset + i·rsa + p`, Bᵀ at `bt_rows[j] + p`
    // and writes C at `c.offset + i·rsc + j` for i < m, p < k, j < n: `table_operands`
    // checked all of them to lie in their slices, and C's rows to be distinct. `c.data`
    // is an exclusive borrow, so it overlaps neither A nor Bᵀ.
    unsafe {
        skinny_gemm::sgemm_bt_rows(
            operands,
            alpha,
            a.data.as_ptr().add(a.offset),
            bt.as_ptr(),
            bt_rows,
            beta,
            c.data.as_mut_ptr().add(c.offset),
        );
    }
}

/// The bounds [`sgemm_rows`] and [`sgemm_bt_rows`] check before their kernel runs, on a
/// non-empty product: C's rows do not overlap, A (`m × k`, rows contiguous) and C
/// (`m × n`) lie in their slices, and so does every `run`-long row the table starts in
/// the table's source (`source_len` floats). Returns the kernel's operands.
///
/// # Panics
/// When one of them does not hold; the message names `op`.
fn table_operands(
    op: &str,
    a: &MatRef<'_>,
    c: &MatMut<'_>,
    table: &[usize],
    run: usize,
    source_len: usize,
) -> skinny_gemm::Operands {
    let (m, k, n) = (a.rows, a.cols, c.cols);
    assert!(
        m == 1 || c.row_stride >= n,
        "{op}: C's rows ({} apart) overlap at {n} columns",
        c.row_stride
    );
    let a_last = last_offset(a.offset, m, k, a.row_stride, 1);
    let c_last = last_offset(c.offset, m, n, c.row_stride, 1);
    let table_end = table.iter().map(|&start| start + run).max().unwrap_or(0);
    assert!(
        a_last < a.data.len() && table_end <= source_len && c_last < c.data.len(),
        "{op}: an operand reaches past its slice (A to {a_last} of {}, the table's rows \
         to {table_end} of {source_len}, C to {c_last} of {})",
        a.data.len(),
        c.data.len()
    );
    skinny_gemm::Operands {
        m,
        k,
        n,
        rsa: a.row_stride,
        rsb: 0,
        rsc: c.row_stride,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: MatRef<'_>, b: MatRef<'_>) -> Vec<f32> {
        let at = |m: &MatRef<'_>, i: usize, j: usize| {
            m.data[m.offset + i * m.row_stride + j * m.col_stride]
        };
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols).map(|p| at(&a, i, p) * at(&b, p, j)).sum();
            }
        }
        out
    }

    #[test]
    fn the_orientation_that_moves_less() {
        // The decoder of a language model: forward and weight gradient transposed ...
        assert!(moves_less_transposed(700, 201, 10000));
        assert!(moves_less_transposed(10000, 700, 200));
        // ... and not their mirror images, a square product, an LSTM's weight gradient,
        // or the blocks of the decoder's input gradient (ties keep the order asked).
        assert!(!moves_less_transposed(10000, 201, 700));
        assert!(!moves_less_transposed(200, 700, 10000));
        assert!(!moves_less_transposed(1000, 1000, 1000));
        assert!(!moves_less_transposed(800, 700, 200));
        assert!(!moves_less_transposed(700, 256, 200));
    }

    #[test]
    fn the_transposed_orientation_gives_the_same_bits() {
        // [40, 30] · [30, 2100] packs A three times one way and once the other.
        let (m, k, n) = (40, 30, 2100);
        assert!(moves_less_transposed(m, k, n) && !moves_less_transposed(n, k, m));
        let a: Vec<f32> = (0..m * k).map(|x| (x as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|x| (x as f32 * 0.11).cos()).collect();
        let c0: Vec<f32> = (0..m * n).map(|x| (x as f32 * 0.05).sin()).collect();
        // Every storage order of A and B, and C row-major (rsc = n) or column-major.
        for (rsa, csa) in [(k, 1), (1, m)] {
            for (rsb, csb) in [(n, 1), (1, k)] {
                for (rsc, csc) in [(n, 1), (1, m)] {
                    let (mut want, mut got) = (c0.clone(), c0.clone());
                    // SAFETY: A, B and C are m·k, k·n and m·n elements, and each
                    // (stride, stride) pair above walks its shape inside them.
                    unsafe {
                        let (a, b) = (a.as_ptr(), b.as_ptr());
                        let strides = [rsa, csa, rsb, csb, rsc, csc].map(|s| s as isize);
                        let [ra, ca, rb, cb, rc, cc] = strides;
                        matrixmultiply::sgemm(
                            m,
                            k,
                            n,
                            0.7,
                            a,
                            ra,
                            ca,
                            b,
                            rb,
                            cb,
                            0.3,
                            want.as_mut_ptr(),
                            rc,
                            cc,
                        );
                        let c = got.as_mut_ptr();
                        packed_sgemm(
                            [m, k, n],
                            0.7,
                            (a, rsa, csa),
                            (b, rsb, csb),
                            0.3,
                            (c, rsc, csc),
                        );
                    }
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "A {rsa}x{csa}, B {rsb}x{csb}, C {rsc}x{csc}"
                    );
                    // and it is the product: one element against a direct sum
                    let (i, j) = (37, 2071);
                    let sum: f32 = (0..k)
                        .map(|p| a[i * rsa + p * csa] * b[p * rsb + j * csb])
                        .sum();
                    let expect = 0.7 * sum + 0.3 * c0[i * rsc + j * csc];
                    assert!((got[i * rsc + j * csc] - expect).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn matches_a_triple_loop_on_transposed_and_offset_views() {
        let a: Vec<f32> = (0..40).map(|x| (x as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..60).map(|x| (x as f32 * 0.11).cos()).collect();
        let (m, k, n) = (3, 5, 7);
        let a_view = MatRef::row_major(&a, 2, k, m).t(); // 3x5, read down columns
        let b_view = MatRef::row_major(&b, 1, k, n);
        let want = naive(a_view, b_view);
        // C written column-major (as NCHW output from a pixel-major product would be).
        let mut c = vec![f32::NAN; 4 + m * n];
        sgemm(
            1.0,
            a_view,
            b_view,
            0.0,
            MatMut {
                data: &mut c,
                offset: 4,
                rows: m,
                cols: n,
                row_stride: 1,
                col_stride: m,
            },
        );
        for i in 0..m {
            for j in 0..n {
                assert!((c[4 + i + j * m] - want[i * n + j]).abs() < 1e-5);
            }
        }
        // beta = 1 accumulates.
        sgemm(
            1.0,
            a_view,
            b_view,
            1.0,
            MatMut {
                data: &mut c,
                offset: 4,
                rows: m,
                cols: n,
                row_stride: 1,
                col_stride: m,
            },
        );
        assert!((c[4] - 2.0 * want[0]).abs() < 1e-5);
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn refuses_overlapping_output() {
        let a = vec![1.0; 4];
        let mut c = vec![0.0; 4];
        let v = MatRef::row_major(&a, 0, 2, 2);
        sgemm(
            1.0,
            v,
            v,
            0.0,
            MatMut {
                data: &mut c,
                offset: 0,
                rows: 2,
                cols: 2,
                row_stride: 1,
                col_stride: 1,
            },
        );
    }

    #[test]
    #[should_panic(expected = "reaches past")]
    fn refuses_views_past_the_slice() {
        let a = vec![1.0; 4];
        let mut c = vec![0.0; 4];
        sgemm(
            1.0,
            MatRef::row_major(&a, 1, 2, 2),
            MatRef::row_major(&a, 0, 2, 2),
            0.0,
            MatMut::row_major(&mut c, 0, 2, 2),
        );
    }

    /// Both table kernels refuse a table row that runs off the end of its source, naming
    /// themselves, and accept the same table one element shorter.
    #[test]
    fn table_kernels_refuse_rows_past_their_source() {
        if !skinny_gemm::qualifies(2, 3, 1, 1) || !skinny_gemm::qualifies_bt(2, 1, 1) {
            eprintln!("skipped: the CPU lacks AVX2 or FMA, so these kernels never run");
            return;
        }
        let a = vec![1.0; 6];
        let source = vec![2.0; 10];
        let run = |op: &str, table: &[usize]| {
            std::panic::catch_unwind(|| {
                let mut c = vec![0.0; 6];
                let (a, c_mat) = (
                    MatRef::row_major(&a, 0, 2, 3),
                    MatMut::row_major(&mut c, 0, 2, 3),
                );
                if op == "sgemm_rows" {
                    sgemm_rows(1.0, a, &source, table, 0.0, c_mat);
                } else {
                    sgemm_bt_rows(1.0, a, &source, table, 0.0, c_mat);
                }
                c
            })
        };
        // Rows of B are 3 long (C's columns); rows of Bᵀ are 3 long too (A's columns).
        for op in ["sgemm_rows", "sgemm_bt_rows"] {
            let fits = run(op, &[0, 7, 4]).expect("a table inside the source");
            assert_eq!(
                fits,
                vec![6.0; 6],
                "{op}: each element is 1·2 summed 3 times"
            );
            let message = run(op, &[0, 8, 4])
                .expect_err("a row reaching past the source")
                .downcast::<String>()
                .expect("a formatted message");
            assert!(
                message.starts_with(op) && message.contains("reaches past its slice"),
                "{op}: {message}"
            );
        }
    }
}
