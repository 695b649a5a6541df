//! Matmul multiplies strided views where they lie: a transposed, narrowed or permuted
//! operand allocates no more than a contiguous one (a copy of an operand here would be
//! 4 MB). Counted with a global allocator in this test binary of its own.

use agdlab_tensor::alloc_count::{CountingAllocator, measure};
use agdlab_tensor::{Tensor, matmul_into};
use rand::SeedableRng;
use rand::rngs::StdRng;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Bytes allocated while running `f` on a one-thread pool.
fn allocated_by<R>(f: impl FnOnce() -> R + Send) -> usize
where
    R: Send,
{
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| measure(f).1.allocated)
}

#[test]
fn strided_operands_are_multiplied_without_a_copy() {
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
    for (label, bytes) in [
        ("transposed A", allocated_by(|| a_t.matmul(&b))),
        ("narrowed B", allocated_by(|| a.matmul(&b_narrow))),
        ("permuted B", allocated_by(|| a.matmul(&b_perm))),
        ("both strided", allocated_by(|| a_t.matmul(&b_perm))),
    ] {
        assert!(
            bytes <= contiguous + slack,
            "{label}: {bytes} bytes against {contiguous} for contiguous operands"
        );
    }
    // The count can tell: copying the transposed operand first would be caught.
    let copied = allocated_by(|| a_t.contiguous().matmul(&b));
    assert!(
        copied > contiguous + slack,
        "a copy must show: {copied} vs {contiguous}"
    );
    // Accumulating into an existing output allocates no output at all.
    let mut c = Tensor::zeros(&[m, n]);
    let into = allocated_by(|| matmul_into(&a_t, &b_perm, &mut c, 1.0, 1.0));
    assert!(
        into + output <= contiguous + slack,
        "matmul_into allocated {into} bytes"
    );
}
