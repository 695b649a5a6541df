//! Shared test helpers: the same logical tensor in different storage layouts, and
//! row-major multi-index arithmetic for naive reference loops.
#![allow(dead_code)]

use agdlab_tensor::Tensor;
use rand::rngs::StdRng;

/// Names of the layouts [`laid_out`] builds.
pub const LAYOUTS: [&str; 5] = [
    "contiguous",
    "permuted",
    "narrowed",
    "transposed",
    "broadcast",
];

/// A random tensor of logical shape `shape` (rank 3) stored as `layout` says.
pub fn laid_out(shape: &[usize], layout: &str, rng: &mut StdRng) -> Tensor {
    let [a, b, c] = [shape[0], shape[1], shape[2]];
    let t = match layout {
        "contiguous" => Tensor::uniform(&[a, b, c], -1.0, 1.0, rng),
        "permuted" => Tensor::uniform(&[c, a, b], -1.0, 1.0, rng).permute(&[1, 2, 0]),
        "narrowed" => Tensor::uniform(&[a + 1, b + 2, c + 3], -1.0, 1.0, rng)
            .narrow(0, 1, a)
            .narrow(1, 2, b)
            .narrow(2, 1, c),
        "transposed" => Tensor::uniform(&[a, c, b], -1.0, 1.0, rng).transpose(1, 2),
        "broadcast" => Tensor::uniform(&[1, b, c], -1.0, 1.0, rng).broadcast_to(&[a, b, c]),
        other => panic!("unknown layout {other}"),
    };
    assert_eq!(t.shape(), shape);
    t
}

/// Multi-index of row-major position `flat` in `shape`.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}

/// Row-major position of a multi-index in `shape`.
pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// `|got - want| <= tol * max(1, |want|)` element-wise, with a message.
pub fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= tol * w.abs().max(1.0) || (g.is_nan() && w.is_nan()),
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

/// A rayon pool of its own with `threads` workers, so a test can run the serial path
/// (1) or the parallel one (several) whatever the machine has.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}
