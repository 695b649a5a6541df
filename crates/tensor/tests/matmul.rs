//! Matmul against a naive triple loop (f64 accumulation) for every operand layout.
//!
//! Layout bugs (a swapped stride, a forgotten offset) give wrong numbers only for
//! some shapes, so every layout is tried at the odd sizes 1, 7, 65 and 129.

mod common;

use agdlab_tensor::{matmul_into, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

const SIZES: [usize; 4] = [1, 7, 65, 129];

/// The same logical `[rows, cols]` matrix, laid out in storage in different ways.
#[derive(Clone, Copy, Debug)]
enum Lay {
    Contiguous,
    /// A transposed view of a `[cols, rows]` buffer.
    Transposed,
    /// A window (non-zero offset, row stride wider than the row) of a larger buffer.
    Narrowed,
    /// A transposed window of a larger buffer.
    NarrowedTransposed,
}

const LAYS: [Lay; 4] = [
    Lay::Contiguous,
    Lay::Transposed,
    Lay::Narrowed,
    Lay::NarrowedTransposed,
];

fn matrix(rows: usize, cols: usize, lay: Lay, rng: &mut StdRng) -> Tensor {
    let t = match lay {
        Lay::Contiguous => Tensor::uniform(&[rows, cols], -1.0, 1.0, rng),
        Lay::Transposed => Tensor::uniform(&[cols, rows], -1.0, 1.0, rng).t(),
        Lay::Narrowed => Tensor::uniform(&[rows + 3, cols + 5], -1.0, 1.0, rng)
            .narrow(0, 2, rows)
            .narrow(1, 3, cols),
        Lay::NarrowedTransposed => Tensor::uniform(&[cols + 4, rows + 2], -1.0, 1.0, rng)
            .narrow(0, 1, cols)
            .narrow(1, 2, rows)
            .t(),
    };
    assert_eq!(t.shape(), [rows, cols]);
    t
}

/// Naive product of (batched, broadcasting) operands: values and, per element, the sum
/// of |a||b| over the inner index, which bounds the rounding error.
fn naive(a: &Tensor, b: &Tensor) -> (Vec<usize>, Vec<f64>, Vec<f64>) {
    let (ra, rb) = (a.rank(), b.rank());
    let (m, k, n) = (a.shape()[ra - 2], a.shape()[ra - 1], b.shape()[rb - 1]);
    assert_eq!(k, b.shape()[rb - 2]);
    // Batch broadcast, worked out here rather than by the library.
    let (ba, bb) = (&a.shape()[..ra - 2], &b.shape()[..rb - 2]);
    let rank = ba.len().max(bb.len());
    let pad = |s: &[usize]| [vec![1; rank - s.len()], s.to_vec()].concat();
    let (pa, pb) = (pad(ba), pad(bb));
    let batch: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
    let batches: usize = batch.iter().product();
    let full = |t: &Tensor, rows: usize, cols: usize| {
        let shape = [batch.clone(), vec![rows, cols]].concat();
        t.broadcast_to(&shape)
            .to_vec()
            .iter()
            .map(|&x| x as f64)
            .collect::<Vec<f64>>()
    };
    let (av, bv) = (full(a, m, k), full(b, k, n));
    let mut out = vec![0.0; batches * m * n];
    let mut bound = vec![0.0; batches * m * n];
    for bi in 0..batches {
        let (am, bm) = (&av[bi * m * k..][..m * k], &bv[bi * k * n..][..k * n]);
        for i in 0..m {
            for j in 0..n {
                let (mut s, mut s_abs) = (0.0f64, 0.0f64);
                for p in 0..k {
                    let xy = am[i * k + p] * bm[p * n + j];
                    s += xy;
                    s_abs += xy.abs();
                }
                out[(bi * m + i) * n + j] = s;
                bound[(bi * m + i) * n + j] = s_abs;
            }
        }
    }
    (batch, out, bound)
}

fn assert_matches_naive(a: &Tensor, b: &Tensor, what: &str) {
    let c = a.matmul(b);
    let (batch, want, bound) = naive(a, b);
    let (m, n) = (a.shape()[a.rank() - 2], b.shape()[b.rank() - 1]);
    assert_eq!(c.shape(), [batch, vec![m, n]].concat(), "{what}: shape");
    assert!(c.is_contiguous());
    for (i, ((&got, &w), &bd)) in c.to_vec().iter().zip(&want).zip(&bound).enumerate() {
        let err = (got as f64 - w).abs();
        assert!(
            err <= 1e-4 * bd.max(1e-6),
            "{what}: element {i}: got {got}, want {w} (|a||b| sum {bd})"
        );
    }
}

#[test]
fn matmul_2d_every_layout_and_odd_size() {
    let mut rng = StdRng::seed_from_u64(1);
    for &m in &SIZES {
        for &k in &SIZES {
            for &n in &SIZES {
                for &la in &LAYS {
                    for &lb in &LAYS {
                        let a = matrix(m, k, la, &mut rng);
                        let b = matrix(k, n, lb, &mut rng);
                        assert_matches_naive(&a, &b, &format!("[{m},{k}]{la:?} x [{k},{n}]{lb:?}"));
                    }
                }
            }
        }
    }
}

/// Batched operands of shape `[3, rows, cols]` in various layouts.
fn batched(rows: usize, cols: usize, variant: usize, rng: &mut StdRng) -> Tensor {
    let t = match variant {
        0 => Tensor::uniform(&[3, rows, cols], -1.0, 1.0, rng),
        // Batch dim in the middle of storage: [rows, 3, cols] permuted.
        1 => Tensor::uniform(&[rows, 3, cols], -1.0, 1.0, rng).permute(&[1, 0, 2]),
        // Matrices stored transposed, batch last: [cols, rows, 3] permuted.
        2 => Tensor::uniform(&[cols, rows, 3], -1.0, 1.0, rng).permute(&[2, 1, 0]),
        // One matrix broadcast over the batch (stride 0).
        3 => Tensor::uniform(&[1, rows, cols], -1.0, 1.0, rng).broadcast_to(&[3, rows, cols]),
        // Narrowed batch and rows of a larger buffer.
        _ => Tensor::uniform(&[5, rows + 2, cols], -1.0, 1.0, rng)
            .narrow(0, 1, 3)
            .narrow(1, 2, rows),
    };
    assert_eq!(t.shape(), [3, rows, cols]);
    t
}

#[test]
fn matmul_batched_every_layout_and_odd_size() {
    let mut rng = StdRng::seed_from_u64(2);
    for &m in &SIZES {
        for &k in &SIZES {
            for &n in &SIZES {
                for va in 0..5 {
                    // All B layouts against A contiguous, all A layouts against a fixed
                    // B layout: covers each layout on each side at every size.
                    let vb = (va + m + n) % 5;
                    let a = batched(m, k, va, &mut rng);
                    let b = batched(k, n, vb, &mut rng);
                    assert_matches_naive(&a, &b, &format!("[3,{m},{k}]#{va} x [3,{k},{n}]#{vb}"));
                    let a0 = batched(m, k, 0, &mut rng);
                    let b = batched(k, n, va, &mut rng);
                    assert_matches_naive(&a0, &b, &format!("[3,{m},{k}]#0 x [3,{k},{n}]#{va}"));
                }
            }
        }
    }
}

#[test]
fn matmul_broadcasts_batch_dimensions() {
    let mut rng = StdRng::seed_from_u64(3);
    // 2-D against batched, both ways.
    let w = matrix(7, 65, Lay::Transposed, &mut rng);
    let x = batched(65, 7, 2, &mut rng);
    assert_matches_naive(&w, &x, "2-D x batched");
    assert_matches_naive(&x.t(), &w.t(), "batched x 2-D");
    // [2, 1, m, k] x [3, k, n] -> [2, 3, m, n].
    let a = Tensor::uniform(&[2, 1, 7, 65], -1.0, 1.0, &mut rng);
    let b = Tensor::uniform(&[3, 65, 1], -1.0, 1.0, &mut rng);
    assert_matches_naive(&a, &b, "[2,1,7,65] x [3,65,1]");
    assert_eq!(a.matmul(&b).shape(), [2, 3, 7, 1]);
}

#[test]
fn matmul_parallel_path_matches_naive_and_serial() {
    let mut rng = StdRng::seed_from_u64(4);
    let cases = [
        (
            matrix(300, 200, Lay::Contiguous, &mut rng),
            matrix(200, 260, Lay::Contiguous, &mut rng),
        ),
        (
            matrix(300, 200, Lay::NarrowedTransposed, &mut rng),
            matrix(200, 260, Lay::Transposed, &mut rng),
        ),
        // Batched with fewer entries than threads: split by batch and by rows.
        (
            batched(150, 200, 1, &mut rng),
            batched(200, 130, 3, &mut rng),
        ),
        // Wider than tall: split by columns (with a ragged last block), on views too.
        (
            matrix(64, 200, Lay::Contiguous, &mut rng),
            matrix(200, 521, Lay::Contiguous, &mut rng),
        ),
        (
            matrix(64, 200, Lay::Transposed, &mut rng),
            matrix(200, 521, Lay::NarrowedTransposed, &mut rng),
        ),
        // Few rows, rows contiguous: the packing-free path (`skinny_gemm`) in every
        // column block, with a ragged last block (20·256·521 multiply-adds: above the
        // parallel threshold).
        (
            matrix(20, 256, Lay::Contiguous, &mut rng),
            matrix(256, 521, Lay::Contiguous, &mut rng),
        ),
    ];
    let pool = common::pool(4);
    let serial = common::pool(1);
    for (i, (a, b)) in cases.iter().enumerate() {
        let parallel = pool.install(|| a.matmul(b));
        let one = serial.install(|| a.matmul(b));
        let (_, want, bound) = naive(a, b);
        for ((&got, &w), &bd) in parallel.to_vec().iter().zip(&want).zip(&bound) {
            assert!(
                (got as f64 - w).abs() <= 1e-4 * bd,
                "case {i}: got {got}, want {w}"
            );
        }
        // Each output element is computed by one sgemm over the whole of k either way,
        // so splitting the work changes nothing, not even rounding.
        assert!(
            parallel.to_vec() == one.to_vec(),
            "case {i}: parallel and serial differ"
        );
    }
}

/// A language model's decoder, `x · Wᵀ`, at a size where matmul first copies both
/// operands into the orders `sgemm` packs fastest (B, stored column by column, with at
/// least `REORDER_MIN_REUSE` rows of C; A, row-major, with more than 1024 columns of C so
/// that it would be packed more than once). The copies are exact, so the product equals
/// the one of contiguous copies made by hand, bit for bit, serially and in parallel, and
/// `matmul_into` accumulates through the same path.
#[test]
fn operands_reordered_before_the_product_give_the_same_result() {
    let mut rng = StdRng::seed_from_u64(7);
    let (m, k, n) = (300, 64, 1100);
    let x = matrix(m, k, Lay::Narrowed, &mut rng);
    let w = Tensor::uniform(&[n, k], -1.0, 1.0, &mut rng); // [n, k]: W as a Linear holds it
    let by_hand = x.t().contiguous().t().matmul(&w.t().contiguous());
    for threads in [1, 2, 3] {
        let pool = common::pool(threads);
        let product = pool.install(|| x.matmul(&w.t()));
        assert!(
            product.to_vec() == by_hand.to_vec(),
            "{threads} thread(s): the reordered product differs from the hand-copied one"
        );
        let mut c = Tensor::full(&[m, n], 0.5);
        pool.install(|| matmul_into(&x, &w.t(), &mut c, 2.0, 1.0));
        for (i, (&got, &p)) in c.to_vec().iter().zip(&by_hand.to_vec()).enumerate() {
            assert!(
                (got - (2.0 * p + 0.5)).abs() <= 1e-5 * (1.0 + p.abs()),
                "{threads} thread(s), matmul_into at {i}: {got} vs {}",
                2.0 * p + 0.5
            );
        }
    }
    assert_matches_naive(&x, &w.t(), "decoder x · Wᵀ");
}

/// A row-major A too large to copy whole, with `k` above matrixmultiply's block of 256
/// (the decoder backward `dlogits · W`, scaled down): the product copies A one block of
/// 256 columns at a time into column-major panels, and gives the bits of one `sgemm` on a
/// column-major copy of A, at any thread count; `matmul_into` accumulates through the
/// same path.
#[test]
fn a_row_major_operand_copied_by_blocks_of_k_gives_the_same_result() {
    let mut rng = StdRng::seed_from_u64(8);
    // 40 rows: too many for the packing-free kernel; k = 600: two whole blocks and a part.
    let (m, k, n) = (40, 600, 100);
    let dlogits = Tensor::uniform(&[m, k], -1.0, 1.0, &mut rng);
    let w = Tensor::uniform(&[k, n], -1.0, 1.0, &mut rng);
    let by_hand = dlogits.t().contiguous().t().matmul(&w);
    for threads in [1, 2, 3] {
        let pool = common::pool(threads);
        let product = pool.install(|| dlogits.matmul(&w));
        assert!(
            product.to_vec() == by_hand.to_vec(),
            "{threads} thread(s): the product by blocks of k differs from one sgemm"
        );
        let mut c = Tensor::full(&[m, n], 0.5);
        pool.install(|| matmul_into(&dlogits, &w, &mut c, 2.0, 1.0));
        for (i, (&got, &p)) in c.to_vec().iter().zip(&by_hand.to_vec()).enumerate() {
            assert!(
                (got - (2.0 * p + 0.5)).abs() <= 1e-5 * (1.0 + p.abs()),
                "{threads} thread(s), matmul_into at {i}: {got} vs {}",
                2.0 * p + 0.5
            );
        }
    }
    assert_matches_naive(&dlogits, &w, "dlogits · W by blocks of k");
}

#[test]
fn matmul_into_accumulates_with_alpha_and_beta() {
    let mut rng = StdRng::seed_from_u64(5);
    for &(m, k, n) in &[(7, 65, 129), (129, 7, 1), (300, 200, 260)] {
        let a = matrix(m, k, Lay::Narrowed, &mut rng);
        let b = matrix(k, n, Lay::Transposed, &mut rng);
        let c0 = Tensor::uniform(&[m, n], -1.0, 1.0, &mut rng);
        let (_, ab, bound) = naive(&a, &b);

        let mut c = c0.clone();
        matmul_into(&a, &b, &mut c, 0.5, 1.0);
        let mut acc = c0.clone();
        acc.matmul_acc(&a, &b);
        acc.matmul_acc(&a, &b);
        let mut scaled = c0.clone();
        matmul_into(&a, &b, &mut scaled, -2.0, 3.0);

        let old = c0.to_vec();
        for i in 0..m * n {
            let tol = 1e-4 * (bound[i] + 1.0);
            let check = |got: f32, want: f64, what: &str| {
                assert!(
                    (got as f64 - want).abs() <= 4.0 * tol,
                    "{what} [{m},{k},{n}] {i}: {got} vs {want}"
                )
            };
            check(
                c.to_vec()[i],
                0.5 * ab[i] + old[i] as f64,
                "alpha=0.5 beta=1",
            );
            check(
                acc.to_vec()[i],
                2.0 * ab[i] + old[i] as f64,
                "matmul_acc twice",
            );
            check(
                scaled.to_vec()[i],
                -2.0 * ab[i] + 3.0 * old[i] as f64,
                "alpha=-2 beta=3",
            );
        }
        // c0 itself is untouched: the writes were copy-on-write.
        assert_eq!(c0.to_vec(), old);
    }
}

#[test]
fn matmul_into_beta_zero_ignores_nan_and_k_zero_scales() {
    let a = Tensor::ones(&[2, 3]);
    let b = Tensor::ones(&[3, 2]);
    let mut c = Tensor::full(&[2, 2], f32::NAN);
    matmul_into(&a, &b, &mut c, 1.0, 0.0);
    assert_eq!(c.to_vec(), vec![3.0; 4]);

    let empty_a = Tensor::zeros(&[2, 0]);
    let empty_b = Tensor::zeros(&[0, 2]);
    assert_eq!(empty_a.matmul(&empty_b).to_vec(), vec![0.0; 4]);
    let mut c = Tensor::full(&[2, 2], 2.0);
    matmul_into(&empty_a, &empty_b, &mut c, 1.0, 0.5);
    assert_eq!(c.to_vec(), vec![1.0; 4]);
    let mut c = Tensor::full(&[2, 2], f32::NAN);
    matmul_into(&empty_a, &empty_b, &mut c, 1.0, 0.0);
    assert_eq!(c.to_vec(), vec![0.0; 4]);
    assert_eq!(
        Tensor::zeros(&[0, 3])
            .matmul(&Tensor::zeros(&[3, 4]))
            .shape(),
        [0, 4]
    );
}

#[test]
fn matmul_does_not_touch_operands() {
    // (That no operand is copied is checked by counting allocations in
    // tests/matmul_allocation.rs.)
    let mut rng = StdRng::seed_from_u64(6);
    let a = Tensor::uniform(&[65, 7], -1.0, 1.0, &mut rng);
    let before = a.to_vec();
    let _ = a.t().matmul(&a);
    assert_eq!(a.to_vec(), before);
}

#[test]
#[should_panic(expected = "matmul: inner dimensions differ (3 vs 4) for shapes [2, 3] and [4, 5]")]
fn matmul_panics_on_inner_mismatch() {
    Tensor::zeros(&[2, 3]).matmul(&Tensor::zeros(&[4, 5]));
}

#[test]
#[should_panic(expected = "matmul: batch dimensions of [2, 3, 4] and [5, 4, 1] do not broadcast")]
fn matmul_panics_on_batch_mismatch() {
    Tensor::zeros(&[2, 3, 4]).matmul(&Tensor::zeros(&[5, 4, 1]));
}

#[test]
#[should_panic(expected = "matmul: needs rank >= 2")]
fn matmul_panics_on_vector() {
    Tensor::zeros(&[3]).matmul(&Tensor::zeros(&[3, 4]));
}

#[test]
#[should_panic(expected = "matmul_into: output has shape [2, 3]")]
fn matmul_into_panics_on_output_shape() {
    let mut c = Tensor::zeros(&[2, 3]);
    matmul_into(
        &Tensor::zeros(&[2, 4]),
        &Tensor::zeros(&[4, 5]),
        &mut c,
        1.0,
        1.0,
    );
}
