//! Softmax, log-softmax and logsumexp against naive f64 loops, on every layout.

mod common;

use agdlab_tensor::Tensor;
use common::{assert_close, laid_out, ravel, unravel, LAYOUTS};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Naive (f64, max-shifted) softmax, log-softmax and logsumexp along `dim`.
fn naive(t: &Tensor, dim: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let shape = t.shape().to_vec();
    let v: Vec<f64> = t.to_vec().iter().map(|&x| x as f64).collect();
    let mut lse_shape = shape.clone();
    lse_shape[dim] = 1;
    let mut lse = vec![0.0; lse_shape.iter().product()];
    for (o, slot) in lse.iter_mut().enumerate() {
        let base = unravel(o, &lse_shape);
        let row: Vec<f64> = (0..shape[dim])
            .map(|i| {
                let mut idx = base.clone();
                idx[dim] = i;
                v[ravel(&idx, &shape)]
            })
            .collect();
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        *slot = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
    }
    let mut soft = vec![0.0; v.len()];
    let mut log_soft = vec![0.0; v.len()];
    for (flat, &x) in v.iter().enumerate() {
        let mut idx = unravel(flat, &shape);
        idx[dim] = 0;
        let l = lse[ravel(&idx, &lse_shape)];
        log_soft[flat] = x - l;
        soft[flat] = (x - l).exp();
    }
    (soft, log_soft, lse)
}

#[test]
fn softmax_family_every_dim_and_layout() {
    let mut rng = StdRng::seed_from_u64(20);
    for shape in [[3, 5, 7], [2, 1, 129]] {
        for layout in LAYOUTS {
            // Scale up so the shift by the row max matters.
            let t = laid_out(&shape, layout, &mut rng).mul_scalar(30.0);
            for dim in 0..3 {
                let (soft, log_soft, lse) = naive(&t, dim);
                let what = format!("{layout} {shape:?} dim {dim}");
                let s = t.softmax(dim);
                assert_eq!(s.shape(), shape, "{what}");
                assert!(s.is_contiguous());
                assert_close(&s.to_vec(), &soft, 1e-5, &format!("softmax {what}"));
                assert_close(
                    &t.log_softmax(dim).to_vec(),
                    &log_soft,
                    1e-5,
                    &format!("log_softmax {what}"),
                );
                let l = t.logsumexp(dim, true);
                let mut keep = shape.to_vec();
                keep[dim] = 1;
                assert_eq!(l.shape(), keep);
                assert_close(&l.to_vec(), &lse, 1e-5, &format!("logsumexp {what}"));
                assert_eq!(t.logsumexp(dim, false).rank(), 2);
                // Rows sum to 1.
                let sums = s.sum_dims(&[dim], false).to_vec();
                assert!(
                    sums.iter().all(|&x| (x - 1.0).abs() < 1e-5),
                    "{what}: row sums {sums:?}"
                );
            }
        }
    }
}

#[test]
fn softmax_is_stable_for_large_inputs() {
    let t = Tensor::from_vec(vec![1000.0, 1001.0, 1002.0, -1000.0, 0.0, 1000.0], &[2, 3]).unwrap();
    let s = t.softmax(1).to_vec();
    assert!(s.iter().all(|x| x.is_finite()), "{s:?}");
    let e = [(-2.0f64).exp(), (-1.0f64).exp(), 1.0];
    let z: f64 = e.iter().sum();
    assert_close(
        &s[..3],
        &[e[0] / z, e[1] / z, e[2] / z],
        1e-6,
        "shifted row",
    );
    assert_close(&s[3..], &[0.0, 0.0, 1.0], 1e-6, "one-hot row");
    let l = t.log_softmax(1).to_vec();
    assert!(
        l.iter().all(|x| x.is_finite()),
        "log_softmax underflowed: {l:?}"
    );
    assert_close(&[l[3]], &[-2000.0], 1e-6, "log_softmax far tail");
    assert_close(
        &t.logsumexp(1, false).to_vec(),
        &[1002.0 + z.ln(), 1000.0],
        1e-6,
        "logsumexp",
    );
    // All -inf row: logsumexp is -inf, as in PyTorch.
    let neg = Tensor::full(&[1, 4], f32::NEG_INFINITY);
    assert_eq!(neg.logsumexp(1, false).to_vec(), vec![f32::NEG_INFINITY]);
}

#[test]
fn softmax_large_rows_parallel_path() {
    let mut rng = StdRng::seed_from_u64(21);
    let pool = common::pool(4);
    let t = Tensor::uniform(&[128, 1000], -20.0, 20.0, &mut rng);
    for tt in [t.clone(), t.t()] {
        let (soft, log_soft, lse) = naive(&tt, 1);
        pool.install(|| {
            assert_close(&tt.softmax(1).to_vec(), &soft, 1e-5, "softmax");
            assert_close(&tt.log_softmax(1).to_vec(), &log_soft, 1e-5, "log_softmax");
            assert_close(&tt.logsumexp(1, false).to_vec(), &lse, 1e-5, "logsumexp");
        });
    }
}

/// Cross-entropy's fused pass: the probabilities and each row's log-sum-exp, written into
/// a buffer that is never zeroed first, against the naive loop, serially (a small input)
/// and in parallel (128 rows of 1000), on a transposed view, and with no columns at all.
#[test]
fn softmax_with_logsumexp_matches_the_naive_loop() {
    let mut rng = StdRng::seed_from_u64(22);
    let pool = common::pool(4);
    let large = Tensor::uniform(&[1000, 128], -20.0, 20.0, &mut rng).t();
    let small = Tensor::uniform(&[3, 2, 7], -5.0, 5.0, &mut rng);
    for t in [large.contiguous(), large, small] {
        let last = t.rank() - 1;
        let (soft, _, lse) = naive(&t, last);
        let (probs, lse_got) = pool.install(|| t.softmax_with_logsumexp());
        assert_eq!(probs.shape(), t.shape());
        assert_close(&probs.to_vec(), &soft, 1e-5, "probabilities");
        assert_close(&lse_got, &lse, 1e-5, "log-sum-exp");
    }
    let (probs, lse) = Tensor::zeros(&[4, 0]).softmax_with_logsumexp();
    assert_eq!(probs.shape(), [4, 0]);
    assert_eq!(lse, vec![f32::NEG_INFINITY; 4], "rows of no terms");
}

#[test]
#[should_panic(expected = "softmax: dim 2 out of range for shape [3, 4]")]
fn softmax_panics_on_bad_dim() {
    Tensor::zeros(&[3, 4]).softmax(2);
}
