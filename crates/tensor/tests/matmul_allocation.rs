//! Matmul multiplies strided views where they lie: a transposed or narrowed operand
//! allocates no more than a contiguous one (a copy of an operand here would be 4 MB).
//! The one exception is B stored column by column (`x · Wᵀ`), which `matrixmultiply`
//! would pack one element at a time: it is copied once into row-major order when the
//! product is large enough to repay it, and never when the copy would not fit in cache.
//! A row-major A with a long inner dimension, which `matrixmultiply` would also pack one
//! element at a time, is copied a block of `SGEMM_KC` columns at a time into one
//! cache-sized panel per task. Counted with a global allocator in this test binary of
//! its own.

mod common;

use agdlab_tensor::alloc_count::{measure, CountingAllocator};
use agdlab_tensor::matmul::{REORDER_MAX_ELEMENTS, REORDER_MIN_REUSE, SGEMM_KC};
use agdlab_tensor::{matmul_into, Tensor};
use std::sync::{Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::SeedableRng;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The allocation count is global, so the tests of this file take turns: each holds
/// this for its whole body (its setup allocates too).
fn exclusive() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Bytes allocated while running `f` on a one-thread pool.
fn allocated_by<R>(f: impl FnOnce() -> R + Send) -> usize
where
    R: Send,
{
    let pool = common::pool(1);
    pool.install(|| measure(f).1.allocated)
}

#[test]
fn strided_operands_are_multiplied_without_a_copy() {
    let _turn = exclusive();
    let mut rng = StdRng::seed_from_u64(0);
    let (m, k, n) = (256, 4096, 256); // an operand of 4 MB
    let a = Tensor::uniform(&[m, k], -1.0, 1.0, &mut rng);
    let b = Tensor::uniform(&[k, n], -1.0, 1.0, &mut rng);
    let a_t = Tensor::uniform(&[k, m], -1.0, 1.0, &mut rng).t(); // [m, k], transposed
    let b_wide = Tensor::uniform(&[k, n + 40], -1.0, 1.0, &mut rng);
    let b_narrow = b_wide.narrow(1, 20, n); // [k, n], rows with gaps
    let b_perm = Tensor::uniform(&[n, k], -1.0, 1.0, &mut rng).permute(&[1, 0]);

    let contiguous = allocated_by(|| a.matmul(&b));
    let output = m * n * 4;
    assert!(
        contiguous >= output,
        "the output itself is {output} bytes, counted {contiguous}"
    );
    let slack = 64 * 1024; // task lists and the like, far below one 4 MB copy
                           // Row-major A, k = 4096: copied one block of k at a time into one panel of
                           // m × SGEMM_KC (256 KB, a sixteenth of A), so at no time does a copy of A exist:
                           // the most live at once is the column-major A's plus the panel. (Each block is its
                           // own `sgemm` call with its own packing buffers, so the bytes allocated in all grow.)
    let panel = m * SGEMM_KC * 4;
    let peak_of = |a: &Tensor| common::pool(1).install(|| measure(|| a.matmul(&b)).1.peak);
    let (row_major_peak, column_major_peak) = (peak_of(&a), peak_of(&a_t));
    assert!(
        row_major_peak >= column_major_peak + panel
            && row_major_peak <= column_major_peak + panel + slack,
        "row-major A: {row_major_peak} bytes live at most, expected {column_major_peak} \
         and one {panel}-byte panel"
    );
    for (label, bytes) in [
        ("transposed A", allocated_by(|| a_t.matmul(&b))),
        ("narrowed B", allocated_by(|| a.matmul(&b_narrow))),
    ] {
        assert!(
            bytes <= contiguous + slack,
            "{label}: {bytes} bytes against {contiguous} for contiguous operands"
        );
    }
    // B stored column by column, in a product with REORDER_MIN_REUSE rows: one copy of B.
    assert!(m >= REORDER_MIN_REUSE && k * n <= REORDER_MAX_ELEMENTS);
    let b_bytes = k * n * 4;
    let transposed_a = allocated_by(|| a_t.matmul(&b)); // column-major A: no panel
    for (label, base, bytes) in [
        ("permuted B", contiguous, allocated_by(|| a.matmul(&b_perm))),
        (
            "both strided",
            transposed_a,
            allocated_by(|| a_t.matmul(&b_perm)),
        ),
    ] {
        assert!(
            bytes >= base + b_bytes && bytes <= base + b_bytes + slack,
            "{label}: {bytes} bytes, expected one {b_bytes}-byte copy of B beyond {base}"
        );
    }
    // With fewer rows than that, the copy would not pay: none is made.
    let few_rows = a.narrow(0, 0, REORDER_MIN_REUSE - 8);
    let with_contiguous_b = allocated_by(|| few_rows.matmul(&b));
    let bytes = allocated_by(|| few_rows.matmul(&b_perm));
    assert!(
        bytes <= with_contiguous_b + slack,
        "few rows: {bytes} bytes against {with_contiguous_b} with a row-major B"
    );
    // The count can tell: copying the transposed operand first would be caught.
    let copied = allocated_by(|| a_t.contiguous().matmul(&b));
    assert!(
        copied > contiguous + slack,
        "a copy must show: {copied} vs {contiguous}"
    );
    // Accumulating into an existing output allocates no output at all (only the copy
    // of the column-major B).
    let mut c = Tensor::zeros(&[m, n]);
    let into = allocated_by(|| matmul_into(&a_t, &b_narrow, &mut c, 1.0, 1.0));
    assert!(
        into + output <= contiguous + slack,
        "matmul_into allocated {into} bytes"
    );
    let into = allocated_by(|| matmul_into(&a_t, &b_perm, &mut c, 1.0, 1.0));
    assert!(
        into + output <= contiguous + b_bytes + slack,
        "matmul_into allocated {into} bytes"
    );
}

#[test]
fn an_operand_too_large_for_the_cache_is_never_copied() {
    let _turn = exclusive();
    let mut rng = StdRng::seed_from_u64(1);
    // B: [k, n] stored column by column, just over REORDER_MAX_ELEMENTS.
    let (m, k, n) = (REORDER_MIN_REUSE, 2048, REORDER_MAX_ELEMENTS / 2048 + 16);
    // A column-major, the order `sgemm` packs fastest, so only B is in question.
    let a = Tensor::uniform(&[k, m], -1.0, 1.0, &mut rng).t();
    let b = Tensor::uniform(&[n, k], -1.0, 1.0, &mut rng).t();
    let (output, b_bytes) = (m * n * 4, k * n * 4);
    let bytes = allocated_by(|| a.matmul(&b));
    assert!(
        bytes >= output && bytes < b_bytes,
        "{bytes} bytes for a {output}-byte output: B ({b_bytes} bytes) was copied"
    );
}
