//! Matrix products with few rows (`C = alpha·A·B + beta·C` where A has at most
//! [`MAX_ROWS`] rows and B's rows are contiguous), straight from the operands, with no
//! packing.
//!
//! `matrixmultiply::sgemm` packs its operands into panels before multiplying. For a
//! product with many rows that cost is spread over them; for the LSTM's recurrent
//! products at batch 20 (`h·W_hhᵀ`, `[20, 200] · [200, 800]`, at every time step, and
//! `dh = dG·W_hh` in backward) it packs all of the weight to use each packed value 20
//! times, and ran at about a third of the FMA peak. Here C is cut into strips of 24
//! columns; each strip is computed in bands of 4 rows whose 4 × 3 vectors of 8 sums stay
//! in registers over all of `k`: each step `p` loads 24 floats of B's row `p` and
//! broadcasts `A[i, p]` for the 4 rows. The strip of B (`k × 24`) is read from memory
//! once and stays in cache for the bands after the first.
//!
//! A's rows and B's rows must be contiguous (column strides 1). [`crate::matmul`] sends
//! a block of C here when it qualifies ([`qualifies`]) and the CPU has AVX2 and FMA;
//! every other product goes to `matrixmultiply`. Each element is one chain of fused
//! multiply-adds over `p = 0..k`, whichever block computes it; the order differs from
//! `matrixmultiply`'s, so the two agree to rounding, not bit for bit.

/// Products with at most this many rows of C take this path.
pub const MAX_ROWS: usize = 32;

/// ... and at most this inner dimension: a strip of B (`k × 24` floats, 96 KiB at this
/// depth) must stay in cache while the bands of rows reuse it. Deeper products go to
/// `matrixmultiply`, which cuts `k` into blocks.
pub const MAX_DEPTH: usize = 1024;

/// The signature [`sgemm`] and [`sgemm_bt`] share, so a caller can pick one and call it.
pub type Kernel = unsafe fn(Operands, f32, *const f32, *const f32, f32, *mut f32);

/// Where one block of C and its operands lie: `C[i, j] (i < m, j < n)` at
/// `c[i·rsc + j]`, `A[i, p]` at `a[i·rsa + p]`, `B[p, j]` at `b[p·rsb + j]`.
#[derive(Clone, Copy, Debug)]
pub struct Operands {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub rsa: usize,
    pub rsb: usize,
    pub rsc: usize,
}

/// True when [`sgemm`] may run the product: few rows, not too deep, the rows of A and
/// of B contiguous, and the CPU has AVX2 and FMA.
pub fn qualifies(m: usize, k: usize, csa: isize, csb: isize) -> bool {
    m <= MAX_ROWS && k <= MAX_DEPTH && csa == 1 && csb == 1 && has_avx2_fma()
}

fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `C = alpha·A·B + beta·C` over the block `o` describes; with `beta == 0` C is
/// written without being read (it may hold anything, NaN included).
///
/// # Safety
/// [`qualifies`] must have returned true for these strides (the CPU has AVX2 and FMA);
/// every element of A, B and C that `o` names must be valid to read (and, for C, to
/// write); C must not overlap A or B, and nothing else may access C meanwhile.
pub unsafe fn sgemm(o: Operands, alpha: f32, a: *const f32, b: *const f32, beta: f32, c: *mut f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract (CPU features, bounds, no aliasing of C).
    unsafe {
        avx::product(avx::Call {
            o,
            alpha,
            a,
            b,
            b_rows: std::ptr::null(),
            beta,
            c,
        });
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (o, alpha, a, b, beta, c);
        unreachable!("skinny_gemm::sgemm: `qualifies` is false off x86_64");
    }
}

/// [`sgemm`] with the rows of B wherever a table puts them: `B[p, j]` at
/// `b[b_rows[p] + j]` (`o.rsb` is unused). A convolution with stride 1 reads its input
/// this way with no im2col copy: each row of B is a run of a shifted copy of the input,
/// from the offset of one kernel tap on (see `conv.rs`). The sums are the ones [`sgemm`]
/// forms, term for term, so the results are bit for bit those of B copied out row by
/// row.
///
/// # Safety
/// As for [`sgemm`], with `b_rows.len() == o.k` and `b[b_rows[p]..b_rows[p] + o.n]`
/// valid to read for every `p`.
pub unsafe fn sgemm_rows(
    o: Operands,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    b_rows: &[usize],
    beta: f32,
    c: *mut f32,
) {
    assert_eq!(
        b_rows.len(),
        o.k,
        "skinny_gemm::sgemm_rows: one offset per row of B"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract (CPU features, bounds, no aliasing of C).
    unsafe {
        avx::product_rows(avx::Call {
            o,
            alpha,
            a,
            b,
            b_rows: b_rows.as_ptr(),
            beta,
            c,
        });
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (o, alpha, a, b, beta, c);
        unreachable!("skinny_gemm::sgemm_rows: `qualifies` is false off x86_64");
    }
}

/// Products with at most this many rows of C take [`sgemm_bt`]: every band of 4 rows
/// reads all of Bᵀ once more, so beyond this `matrixmultiply`'s packing pays off.
pub const MAX_ROWS_BT: usize = 64;

/// True when [`sgemm_bt`] may run the product: few rows, A's rows contiguous, B's
/// columns contiguous (B is the transpose of a matrix with contiguous rows), and the
/// CPU has AVX2 and FMA.
pub fn qualifies_bt(m: usize, csa: isize, rsb: isize) -> bool {
    m <= MAX_ROWS_BT && csa == 1 && rsb == 1 && has_avx2_fma()
}

/// `C = alpha·A·B + beta·C` where B is given by its transpose: `B[p, j]` at
/// `bt[j·o.rsb + p]` (so `o.rsb` is the row stride of Bᵀ). Every element of C is a dot
/// product of two contiguous runs, a row of A and a row of Bᵀ, so nothing is packed:
/// blocks of 4 rows of A × 3 rows of Bᵀ keep 12 vectors of 8 partial sums in registers
/// over `k`, and the band of A's rows stays in cache while the rows of Bᵀ stream past.
/// This is a convolution's weight gradient, `dY · columnsᵀ`, whose `columns` have as
/// many rows as the kernel has taps and as many columns as the image has pixels.
/// With `beta == 0` C is written without being read.
///
/// # Safety
/// [`qualifies_bt`] must have returned true for these strides (the CPU has AVX2 and FMA);
/// every element of A, Bᵀ and C that `o` names must be valid to read (and, for C, to
/// write); C must not overlap A or Bᵀ, and nothing else may access C meanwhile.
pub unsafe fn sgemm_bt(
    o: Operands,
    alpha: f32,
    a: *const f32,
    bt: *const f32,
    beta: f32,
    c: *mut f32,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract (CPU features, bounds, no aliasing of C).
    unsafe {
        avx::product_bt(avx::Call {
            o,
            alpha,
            a,
            b: bt,
            b_rows: std::ptr::null(),
            beta,
            c,
        });
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (o, alpha, a, bt, beta, c);
        unreachable!("skinny_gemm::sgemm_bt: `qualifies_bt` is false off x86_64");
    }
}

/// [`sgemm_bt`] with the rows of Bᵀ wherever a table puts them: `B[p, j]` at
/// `bt[bt_rows[j] + p]` (`o.rsb` is unused). A stride-1 convolution's weight gradient
/// reads its input this way, with no im2col copy: each row of Bᵀ (a row of the lowered
/// input) is a run of a shifted copy of the input, from one kernel tap's offset on
/// (see `conv.rs`).
///
/// # Safety
/// As for [`sgemm_bt`], with `bt_rows.len() == o.n` and `bt[bt_rows[j]..bt_rows[j] + o.k]`
/// valid to read for every `j`.
pub unsafe fn sgemm_bt_rows(
    o: Operands,
    alpha: f32,
    a: *const f32,
    bt: *const f32,
    bt_rows: &[usize],
    beta: f32,
    c: *mut f32,
) {
    assert_eq!(
        bt_rows.len(),
        o.n,
        "skinny_gemm::sgemm_bt_rows: one offset per row of Bᵀ"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract (CPU features, bounds, no aliasing of C).
    unsafe {
        avx::product_bt_rows(avx::Call {
            o,
            alpha,
            a,
            b: bt,
            b_rows: bt_rows.as_ptr(),
            beta,
            c,
        });
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (o, alpha, a, bt, beta, c);
        unreachable!("skinny_gemm::sgemm_bt_rows: `qualifies_bt` is false off x86_64");
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::Operands;

    /// Rows of C per block.
    const R: usize = 4;

    /// One product's operands, handed down to the blocks.
    #[derive(Clone, Copy)]
    pub(super) struct Call {
        pub(super) o: Operands,
        pub(super) alpha: f32,
        pub(super) a: *const f32,
        pub(super) b: *const f32,
        /// Where each row of B (or, for the `bt` kernels, of Bᵀ) starts, when the rows
        /// are not `o.rsb` apart (`TABLE` kernels only; null otherwise).
        pub(super) b_rows: *const usize,
        pub(super) beta: f32,
        pub(super) c: *mut f32,
    }

    /// Row `p` of B: `o.rsb` apart, or where the table says (`TABLE`).
    #[inline(always)]
    unsafe fn b_row<const TABLE: bool>(call: Call, p: usize) -> *const f32 {
        // SAFETY: p < k, and with `TABLE` the table has k entries (the callers).
        unsafe {
            if TABLE {
                call.b.add(*call.b_rows.add(p))
            } else {
                call.b.add(p * call.o.rsb)
            }
        }
    }

    /// `C[i, j] = alpha·acc + beta·C[i, j]`, not reading C when `beta == 0`.
    #[inline(always)]
    unsafe fn finish(c: *mut f32, acc: f32, alpha: f32, beta: f32) {
        // SAFETY: the caller passes an element of C in bounds.
        unsafe {
            *c = if beta == 0.0 {
                alpha * acc
            } else {
                alpha * acc + beta * *c
            }
        };
    }

    /// A block of `ROWS` rows × `8·VECS` columns of C, accumulated in `ROWS × VECS`
    /// registers over all of `k`. With `MASKED`, the block's last vector covers only the
    /// lanes `tail` enables (C's last `n % 8` columns): masked loads and stores neither
    /// read nor write past them, and the enabled lanes get the same fused multiply-adds
    /// as a whole vector's, so every element of C is the same chain whichever block
    /// computes it (cutting C into column blocks for threads changes no bit).
    #[inline(always)]
    unsafe fn rows_block<
        const ROWS: usize,
        const VECS: usize,
        const TABLE: bool,
        const MASKED: bool,
    >(
        call: Call,
        [i0, j0]: [usize; 2],
        tail: __m256i,
    ) {
        let Call {
            o,
            alpha,
            a,
            beta,
            c,
            ..
        } = call;
        // SAFETY (whole block): rows i0..i0+ROWS < m and columns j0..j0+8·VECS <= n, or
        // with `MASKED` the last vector's enabled lanes < n (the callers' loops), p < k:
        // every address read or written is an element of the block.
        unsafe {
            let load = |q: usize, at: *const f32| {
                if MASKED && q == VECS - 1 {
                    _mm256_maskload_ps(at, tail)
                } else {
                    _mm256_loadu_ps(at)
                }
            };
            let mut acc = [[_mm256_setzero_ps(); VECS]; ROWS];
            for p in 0..o.k {
                let row_b = b_row::<TABLE>(call, p).add(j0);
                let bv: [__m256; VECS] = std::array::from_fn(|q| load(q, row_b.add(8 * q)));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*a.add((i0 + r) * o.rsa + p));
                    for q in 0..VECS {
                        acc_r[q] = _mm256_fmadd_ps(av, bv[q], acc_r[q]);
                    }
                }
            }
            let (alpha_v, beta_v) = (_mm256_set1_ps(alpha), _mm256_set1_ps(beta));
            for (r, acc_r) in acc.iter().enumerate() {
                for (q, &sum) in acc_r.iter().enumerate() {
                    let out = c.add((i0 + r) * o.rsc + j0 + 8 * q);
                    let scaled = _mm256_mul_ps(alpha_v, sum);
                    let value = if beta == 0.0 {
                        scaled
                    } else {
                        _mm256_fmadd_ps(beta_v, load(q, out), scaled)
                    };
                    if MASKED && q == VECS - 1 {
                        _mm256_maskstore_ps(out, tail, value);
                    } else {
                        _mm256_storeu_ps(out, value);
                    }
                }
            }
        }
    }

    /// Columns `j0..j0 + 8·VECS` of every row (with `MASKED`, the last vector's lanes
    /// that `tail` enables), in bands of [`R`] rows (then the last 1-3): the strip of B
    /// they read (`k × 8·VECS`) is read from memory once and stays in cache for the bands
    /// after the first.
    #[inline(always)]
    unsafe fn rows_strip<const VECS: usize, const TABLE: bool, const MASKED: bool>(
        call: Call,
        j0: usize,
        tail: __m256i,
    ) {
        // SAFETY: bands cover rows 0..m exactly; the strip's columns are below n (the caller).
        unsafe {
            let mut i0 = 0;
            while i0 + R <= call.o.m {
                rows_block::<R, VECS, TABLE, MASKED>(call, [i0, j0], tail);
                i0 += R;
            }
            match call.o.m - i0 {
                3 => rows_block::<3, VECS, TABLE, MASKED>(call, [i0, j0], tail),
                2 => rows_block::<2, VECS, TABLE, MASKED>(call, [i0, j0], tail),
                1 => rows_block::<1, VECS, TABLE, MASKED>(call, [i0, j0], tail),
                _ => {}
            }
        }
    }

    /// [`super::sgemm`] (`TABLE = false`) and [`super::sgemm_rows`] (`TABLE = true`):
    /// strips of 24 columns, then one of 8 or 16, then the last `n % 8` columns in one
    /// masked vector (a scalar tail would cost more than the vectors: at `n = 196`, a
    /// 14x14 output plane, its four columns took as long as the other 192).
    #[inline(always)]
    unsafe fn strips<const TABLE: bool>(call: Call) {
        // SAFETY: strips stay below n and cover 0..n; the caller's contract covers the rest.
        unsafe {
            let whole = _mm256_set1_epi32(-1);
            let mut j0 = 0;
            while j0 + 24 <= call.o.n {
                rows_strip::<3, TABLE, false>(call, j0, whole);
                j0 += 24;
            }
            if j0 + 16 <= call.o.n {
                rows_strip::<2, TABLE, false>(call, j0, whole);
                j0 += 16;
            } else if j0 + 8 <= call.o.n {
                rows_strip::<1, TABLE, false>(call, j0, whole);
                j0 += 8;
            }
            let left = (call.o.n - j0) as i32;
            if left > 0 {
                let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lanes);
                rows_strip::<1, TABLE, true>(call, j0, tail);
            }
        }
    }

    /// [`super::sgemm`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product(call: Call) {
        // SAFETY: the caller's contract.
        unsafe { strips::<false>(call) }
    }

    /// [`super::sgemm_rows`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product_rows(call: Call) {
        // SAFETY: the caller's contract (a table of k row offsets).
        unsafe { strips::<true>(call) }
    }

    /// The sum of the 8 lanes of `v`.
    #[inline(always)]
    unsafe fn lane_sum(v: __m256) -> f32 {
        // SAFETY: register-only arithmetic; the CPU has AVX (the callers' target features).
        unsafe {
            let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
            _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)))
        }
    }

    /// A block of `ROWS` rows × `COLS` columns of C for [`super::sgemm_bt`]: `ROWS × COLS`
    /// registers of 8 partial dot products over the whole 8s of `k`, summed across their
    /// lanes, then the last `k % 8` terms one at a time.
    #[inline(always)]
    unsafe fn dot_block<const ROWS: usize, const COLS: usize, const TABLE: bool>(
        call: Call,
        [i0, j0]: [usize; 2],
    ) {
        let Call {
            o,
            alpha,
            a,
            b: bt,
            beta,
            c,
            ..
        } = call;
        let whole = o.k - o.k % 8;
        // SAFETY (whole block): rows i0..i0+ROWS < m and j0..j0+COLS < n (the callers'
        // loops), p < k: every address is an element of A, Bᵀ or C.
        unsafe {
            let a_row = |r: usize| a.add((i0 + r) * o.rsa);
            // Row `j` of Bᵀ: `o.rsb` apart, or where the table says (`TABLE`).
            let bt_row = |q: usize| {
                if TABLE {
                    bt.add(*call.b_rows.add(j0 + q))
                } else {
                    bt.add((j0 + q) * o.rsb)
                }
            };
            let mut acc = [[_mm256_setzero_ps(); COLS]; ROWS];
            for p in (0..whole).step_by(8) {
                let bv: [__m256; COLS] = std::array::from_fn(|q| _mm256_loadu_ps(bt_row(q).add(p)));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let av = _mm256_loadu_ps(a_row(r).add(p));
                    for q in 0..COLS {
                        acc_r[q] = _mm256_fmadd_ps(av, bv[q], acc_r[q]);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                for (q, &partial) in acc_r.iter().enumerate() {
                    let mut sum = lane_sum(partial);
                    for p in whole..o.k {
                        sum = (*a_row(r).add(p)).mul_add(*bt_row(q).add(p), sum);
                    }
                    finish(c.add((i0 + r) * o.rsc + j0 + q), sum, alpha, beta);
                }
            }
        }
    }

    /// Rows `i0..i0 + ROWS` of C for [`super::sgemm_bt`], in blocks of 3 columns (then
    /// the last 1 or 2): the band of A's rows is read from memory once and stays in
    /// cache while every row of Bᵀ passes it.
    #[inline(always)]
    unsafe fn dot_band<const ROWS: usize, const TABLE: bool>(call: Call, i0: usize) {
        // SAFETY: blocks cover columns 0..n exactly; rows i0..i0+ROWS <= m (the caller).
        unsafe {
            let mut j0 = 0;
            while j0 + 3 <= call.o.n {
                dot_block::<ROWS, 3, TABLE>(call, [i0, j0]);
                j0 += 3;
            }
            match call.o.n - j0 {
                2 => dot_block::<ROWS, 2, TABLE>(call, [i0, j0]),
                1 => dot_block::<ROWS, 1, TABLE>(call, [i0, j0]),
                _ => {}
            }
        }
    }

    /// [`super::sgemm_bt`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product_bt(call: Call) {
        // SAFETY: the caller's contract.
        unsafe { bands_bt::<false>(call) }
    }

    /// [`super::sgemm_bt_rows`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product_bt_rows(call: Call) {
        // SAFETY: the caller's contract (a table of n row offsets).
        unsafe { bands_bt::<true>(call) }
    }

    /// [`super::sgemm_bt`] (`TABLE = false`) and [`super::sgemm_bt_rows`] (`TABLE =
    /// true`): bands of [`R`] rows, then the last 1-3.
    #[inline(always)]
    unsafe fn bands_bt<const TABLE: bool>(call: Call) {
        // SAFETY: bands cover rows 0..m exactly; the caller's contract covers the rest.
        unsafe {
            let mut i0 = 0;
            while i0 + R <= call.o.m {
                dot_band::<R, TABLE>(call, i0);
                i0 += R;
            }
            match call.o.m - i0 {
                3 => dot_band::<3, TABLE>(call, i0),
                2 => dot_band::<2, TABLE>(call, i0),
                1 => dot_band::<1, TABLE>(call, i0),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `alpha·A·B + beta·C` in f64, from the same layouts.
    fn reference(o: Operands, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &[f32]) -> Vec<f64> {
        let mut out = vec![0.0; o.m * o.n];
        for i in 0..o.m {
            for j in 0..o.n {
                let dot: f64 = (0..o.k)
                    .map(|p| a[i * o.rsa + p] as f64 * b[p * o.rsb + j] as f64)
                    .sum();
                let old = if beta == 0.0 {
                    0.0
                } else {
                    beta as f64 * c[i * o.rsc + j] as f64
                };
                out[i * o.n + j] = alpha as f64 * dot + old;
            }
        }
        out
    }

    /// C (row stride `o.rsc`) holds `expected` (row-major `m × n`) to within rounding,
    /// and the padding between its rows is as it was `before`.
    fn assert_close(o: Operands, c: &[f32], before: &[f32], expected: &[f64], what: &str) {
        for i in 0..o.m {
            for j in 0..o.n {
                let (got, want) = (c[i * o.rsc + j] as f64, expected[i * o.n + j]);
                let tolerance = 1e-5 * (1.0 + o.k as f64).sqrt() * (1.0 + want.abs());
                assert!(
                    (got - want).abs() <= tolerance,
                    "{what}: C[{i}, {j}] = {got}, expected {want}"
                );
            }
            for j in o.n..o.rsc {
                assert_eq!(c[i * o.rsc + j].to_bits(), before[i * o.rsc + j].to_bits());
            }
        }
    }

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_a_reference_at_every_edge() {
        if !has_avx2_fma() {
            eprintln!("skipped: the CPU lacks AVX2 or FMA, so this path is never taken");
            return;
        }
        for m in [1, 2, 3, 4, 5, 7, 20, 32] {
            for k in [1, 7, 8, 9, 200] {
                for n in [1, 2, 3, 7, 8, 9, 16, 23, 24, 25, 41, 200] {
                    for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0)] {
                        // Every row padded: A's row stride k + 3, B's n + 1, C's n + 2.
                        let (rsa, rsb, rsc) = (k + 3, n + 1, n + 2);
                        let o = Operands {
                            m,
                            k,
                            n,
                            rsa,
                            rsb,
                            rsc,
                        };
                        let a = values(m * rsa, 1);
                        let b = values(k * rsb, 2);
                        let mut c = values(m * rsc, 3);
                        if beta == 0.0 {
                            c.iter_mut().for_each(|x| *x = f32::NAN); // must not be read
                        }
                        let expected = reference(o, alpha, &a, &b, beta, &c);
                        let before = c.clone();
                        // SAFETY: AVX2 and FMA are present; the buffers hold every element
                        // the layouts name; C is a separate vector.
                        unsafe { sgemm(o, alpha, a.as_ptr(), b.as_ptr(), beta, c.as_mut_ptr()) };
                        let what = format!("m {m} k {k} n {n} alpha {alpha} beta {beta}");
                        assert_close(o, &c, &before, &expected, &what);
                    }
                }
            }
        }
    }

    #[test]
    fn the_transposed_kernel_matches_a_reference_at_every_edge() {
        if !has_avx2_fma() {
            eprintln!("skipped: the CPU lacks AVX2 or FMA, so this path is never taken");
            return;
        }
        for m in [1, 2, 3, 4, 5, 7, 16, 32, 64] {
            for k in [1, 7, 8, 9, 17, 200] {
                for n in [1, 2, 3, 4, 5, 6, 7, 25, 144] {
                    for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0)] {
                        // Rows padded: A's row stride k + 3, Bᵀ's k + 1, C's n + 2.
                        let (rsa, rsbt, rsc) = (k + 3, k + 1, n + 2);
                        let a = values(m * rsa, 4);
                        let bt = values(n * rsbt, 5);
                        let mut c = values(m * rsc, 6);
                        if beta == 0.0 {
                            c.iter_mut().for_each(|x| *x = f32::NAN); // must not be read
                        }
                        // The same B written out row-major, for the reference.
                        let b: Vec<f32> = (0..k * n).map(|i| bt[(i % n) * rsbt + i / n]).collect();
                        let dense = Operands {
                            m,
                            k,
                            n,
                            rsa,
                            rsb: n,
                            rsc,
                        };
                        let expected = reference(dense, alpha, &a, &b, beta, &c);
                        let before = c.clone();
                        let o = Operands { rsb: rsbt, ..dense };
                        // SAFETY: AVX2 and FMA are present; the buffers hold every element
                        // the layouts name; C is a separate vector.
                        unsafe {
                            sgemm_bt(o, alpha, a.as_ptr(), bt.as_ptr(), beta, c.as_mut_ptr())
                        };
                        let what = format!("m {m} k {k} n {n} alpha {alpha} beta {beta}");
                        assert_close(o, &c, &before, &expected, &what);
                    }
                }
            }
        }
    }

    #[test]
    fn qualifies_only_few_rows_with_contiguous_rows() {
        let simd = has_avx2_fma();
        assert_eq!(qualifies(20, 200, 1, 1), simd);
        assert!(!qualifies(MAX_ROWS + 1, 200, 1, 1));
        assert!(!qualifies(20, MAX_DEPTH + 1, 1, 1));
        assert!(!qualifies(20, 200, 2, 1), "A's rows must be contiguous");
        assert!(!qualifies(20, 200, 1, 200), "B's rows must be contiguous");
        assert_eq!(qualifies_bt(16, 1, 1), simd);
        assert!(!qualifies_bt(MAX_ROWS_BT + 1, 1, 1));
        assert!(!qualifies_bt(16, 2, 1), "A's rows must be contiguous");
        assert!(!qualifies_bt(16, 1, 144), "B's columns must be contiguous");
    }

    /// B's rows where a table puts them (out of order, one of them twice, with gaps)
    /// give the bits of [`sgemm`] on the same rows copied out densely.
    #[test]
    fn every_column_gets_the_same_bits_whichever_block_computes_it() {
        if !has_avx2_fma() {
            eprintln!("skipped: the CPU lacks AVX2 or FMA, so this path is never taken");
            return;
        }
        // C computed whole and as two blocks of columns side by side: a column's block
        // (a strip of 24, 16 or 8, or the masked tail) must not change its value, with
        // any alpha and beta.
        let (m, k) = (6, 37);
        for (n, cut) in [(29, 13), (29, 5), (50, 27), (7, 3)] {
            for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (0.3, 0.7)] {
                let (a, b) = (values(m * k, 11), values(k * n, 12));
                let c0 = values(m * n, 13);
                let whole = Operands {
                    m,
                    k,
                    n,
                    rsa: k,
                    rsb: n,
                    rsc: n,
                };
                let left = Operands { n: cut, ..whole };
                let right = Operands {
                    n: n - cut,
                    ..whole
                };
                let (mut c_whole, mut c_blocks) = (c0.clone(), c0.clone());
                // SAFETY: AVX2 and FMA are present; the blocks name elements of A, B and
                // C only (the right block from column `cut` on); C is its own vector.
                unsafe {
                    sgemm(
                        whole,
                        alpha,
                        a.as_ptr(),
                        b.as_ptr(),
                        beta,
                        c_whole.as_mut_ptr(),
                    );
                    sgemm(
                        left,
                        alpha,
                        a.as_ptr(),
                        b.as_ptr(),
                        beta,
                        c_blocks.as_mut_ptr(),
                    );
                    sgemm(
                        right,
                        alpha,
                        a.as_ptr(),
                        b.as_ptr().add(cut),
                        beta,
                        c_blocks.as_mut_ptr().add(cut),
                    );
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&c_whole),
                    bits(&c_blocks),
                    "n {n} cut at {cut}, alpha {alpha} beta {beta}"
                );
            }
        }
    }

    #[test]
    fn the_row_table_kernel_gives_the_bits_of_the_dense_one() {
        if !has_avx2_fma() {
            eprintln!("skipped: the CPU lacks AVX2 or FMA, so this path is never taken");
            return;
        }
        for (m, k, n) in [
            (1, 1, 1),
            (4, 9, 24),
            (5, 7, 41),
            (16, 144, 840),
            (32, 20, 23),
        ] {
            let source = values(3 * k * n + 50, 7);
            let starts: Vec<usize> = (0..k)
                .map(|p| {
                    if p == 1 {
                        0
                    } else {
                        ((k - p) * 3 * n + p) % (2 * k * n + 40)
                    }
                })
                .collect();
            let dense: Vec<f32> = starts
                .iter()
                .flat_map(|&start| source[start..start + n].iter().copied())
                .collect();
            let a = values(m * k, 8);
            let o = Operands {
                m,
                k,
                n,
                rsa: k,
                rsb: n,
                rsc: n,
            };
            let (mut from_table, mut from_dense) = (vec![0.0; m * n], vec![0.0; m * n]);
            // SAFETY: AVX2 and FMA are present; every start + n lies in `source`, the
            // other buffers hold every element the layouts name, and C is its own vector.
            unsafe {
                sgemm_rows(
                    o,
                    1.5,
                    a.as_ptr(),
                    source.as_ptr(),
                    &starts,
                    0.0,
                    from_table.as_mut_ptr(),
                );
                sgemm(
                    o,
                    1.5,
                    a.as_ptr(),
                    dense.as_ptr(),
                    0.0,
                    from_dense.as_mut_ptr(),
                );
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&from_table), bits(&from_dense), "m {m} k {k} n {n}");
        }
    }

    #[test]
    fn the_transposed_row_table_kernel_gives_the_bits_of_the_dense_one() {
        if !has_avx2_fma() {
            eprintln!("skipped: the CPU lacks AVX2 or FMA, so this path is never taken");
            return;
        }
        // Rows of Bᵀ (length k) scattered through one slice, overlapping and out of
        // order, against the same rows copied out densely; C starts non-zero (beta 1).
        for (m, k, n) in [
            (1, 1, 1),
            (4, 9, 3),
            (5, 13, 7),
            (16, 840, 144),
            (7, 20, 23),
        ] {
            let source = values(3 * k * n + 50, 9);
            let starts: Vec<usize> = (0..n)
                .map(|j| ((n - j) * 3 * k + 5 * j) % (2 * k * n + 40))
                .collect();
            let dense: Vec<f32> = starts
                .iter()
                .flat_map(|&start| source[start..start + k].iter().copied())
                .collect();
            let a = values(m * k, 10);
            let o = Operands {
                m,
                k,
                n,
                rsa: k,
                rsb: k,
                rsc: n,
            };
            let before = values(m * n, 11);
            let (mut from_table, mut from_dense) = (before.clone(), before.clone());
            // SAFETY: AVX2 and FMA are present; every start + k lies in `source`, the
            // other buffers hold every element the layouts name, and C is its own vector.
            unsafe {
                sgemm_bt_rows(
                    o,
                    0.5,
                    a.as_ptr(),
                    source.as_ptr(),
                    &starts,
                    1.0,
                    from_table.as_mut_ptr(),
                );
                sgemm_bt(
                    o,
                    0.5,
                    a.as_ptr(),
                    dense.as_ptr(),
                    1.0,
                    from_dense.as_mut_ptr(),
                );
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&from_table), bits(&from_dense), "m {m} k {k} n {n}");
            // B row-major (`[k, n]`), for the reference's layout.
            let b: Vec<f32> = (0..k * n).map(|i| dense[(i % n) * k + i / n]).collect();
            let reference = reference(Operands { rsb: n, ..o }, 0.5, &a, &b, 1.0, &before);
            assert_close(o, &from_table, &before, &reference, "sgemm_bt_rows");
        }
    }
}
