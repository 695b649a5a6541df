//! Reductions and `sum_to` against naive f64 loops, on every layout.

mod common;

use agdlab_tensor::Tensor;
use common::{assert_close, laid_out, ravel, unravel, LAYOUTS};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Naive sum over the flagged dimensions, keeping them as size 1.
fn naive_sum(t: &Tensor, reduced: &[bool]) -> (Vec<usize>, Vec<f64>) {
    let (shape, sums, _) = naive_sums(t, reduced);
    (shape, sums)
}

/// Naive sums and sums of absolute values (which bound the rounding error).
fn naive_sums(t: &Tensor, reduced: &[bool]) -> (Vec<usize>, Vec<f64>, Vec<f64>) {
    let shape = t.shape();
    let out_shape: Vec<usize> = shape
        .iter()
        .zip(reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let mut out = vec![0.0f64; out_shape.iter().product()];
    let mut abs = out.clone();
    for (flat, &v) in t.to_vec().iter().enumerate() {
        let mut idx = unravel(flat, shape);
        idx.iter_mut()
            .zip(reduced)
            .for_each(|(i, &r)| *i = if r { 0 } else { *i });
        out[ravel(&idx, &out_shape)] += v as f64;
        abs[ravel(&idx, &out_shape)] += (v as f64).abs();
    }
    (out_shape, out, abs)
}

fn subsets(rank: usize) -> impl Iterator<Item = Vec<usize>> {
    (0..1usize << rank).map(move |bits| (0..rank).filter(|d| bits >> d & 1 == 1).collect())
}

#[test]
fn sum_and_mean_dims_every_subset_and_layout() {
    let mut rng = StdRng::seed_from_u64(10);
    for shape in [[3, 5, 7], [1, 9, 4], [17, 1, 33]] {
        for layout in LAYOUTS {
            let t = laid_out(&shape, layout, &mut rng);
            for dims in subsets(3) {
                let reduced: Vec<bool> = (0..3).map(|d| dims.contains(&d)).collect();
                let (keep_shape, want) = naive_sum(&t, &reduced);
                let what = format!("{layout} {shape:?} dims {dims:?}");

                let s = t.sum_dims(&dims, true);
                assert_eq!(s.shape(), keep_shape, "{what}");
                assert_close(&s.to_vec(), &want, 1e-5, &what);
                let dropped: Vec<usize> =
                    (0..3).filter(|d| !reduced[*d]).map(|d| shape[d]).collect();
                assert_eq!(t.sum_dims(&dims, false).shape(), dropped, "{what}");

                let count: usize = dims.iter().map(|&d| shape[d]).product();
                let mean_want: Vec<f64> = want.iter().map(|w| w / count as f64).collect();
                assert_close(&t.mean_dims(&dims, false).to_vec(), &mean_want, 1e-5, &what);
            }
            let total: f64 = t.to_vec().iter().map(|&v| v as f64).sum();
            assert_eq!(t.sum_all().shape(), [] as [usize; 0]);
            assert_close(&t.sum_all().to_vec(), &[total], 1e-5, "sum_all");
            assert_close(
                &[t.mean_all().item()],
                &[total / t.numel() as f64],
                1e-5,
                "mean_all",
            );
        }
    }
}

#[test]
fn sums_are_accurate_over_long_runs() {
    // 0.1 is not exact in binary; a plain f32 running sum of 2^22 of them is off by
    // about 10 %. Blocked accumulation stays within f32 rounding of the result.
    let n = 1 << 22;
    let t = Tensor::full(&[n], 0.1);
    let want = n as f64 * 0.1f32 as f64;
    assert_close(&[t.sum_all().item()], &[want], 1e-6, "sum_all of 0.1s");
    let rows = Tensor::full(&[n / 4, 4], 0.1);
    assert_close(
        &rows.sum_dims(&[0], false).to_vec(),
        &[want / 4.0; 4],
        1e-6,
        "column sums of 0.1s",
    );
    let serial = common::pool(1);
    serial.install(|| {
        assert_close(&[t.sum_all().item()], &[want], 1e-6, "serial sum_all");
        assert_close(
            &rows.sum_dims(&[0], false).to_vec(),
            &[want / 4.0; 4],
            1e-6,
            "serial column sums",
        );
    });
}

#[test]
fn large_reductions_take_the_parallel_paths() {
    let mut rng = StdRng::seed_from_u64(11);
    let pool = common::pool(4);
    // Shapes chosen so each kernel branch runs: many outer rows, few long runs, many
    // accumulated rows with one outer block, and a middle block.
    for (shape, dims) in [
        ([64, 2000, 1], vec![1]),
        ([2, 100_000, 1], vec![1]),
        ([1, 50_000, 7], vec![1]),
        ([40, 300, 9], vec![1]),
        ([300, 40, 9], vec![0, 2]),
    ] {
        for layout in ["contiguous", "transposed"] {
            let t = laid_out(&shape, layout, &mut rng);
            let reduced: Vec<bool> = (0..3).map(|d| dims.contains(&d)).collect();
            let (_, want, abs) = naive_sums(&t, &reduced);
            let got = pool.install(|| t.sum_dims(&dims, true));
            for (i, ((&g, &w), &a)) in got.to_vec().iter().zip(&want).zip(&abs).enumerate() {
                let err = (g as f64 - w).abs();
                assert!(
                    err <= 1e-6 * a + 1e-6,
                    "{layout} {shape:?} {dims:?} [{i}]: got {g}, want {w}"
                );
            }
        }
    }
}

#[test]
fn max_and_argmax_along_each_dim() {
    let mut rng = StdRng::seed_from_u64(12);
    let shape = [4, 6, 5];
    for layout in LAYOUTS {
        let t = laid_out(&shape, layout, &mut rng);
        let v = t.to_vec();
        for dim in 0..3 {
            let mut out_shape = shape.to_vec();
            out_shape[dim] = 1;
            let mut best = vec![(f32::NEG_INFINITY, 0usize); out_shape.iter().product()];
            for (flat, &x) in v.iter().enumerate() {
                let mut idx = unravel(flat, &shape);
                let along = idx[dim];
                idx[dim] = 0;
                let slot = &mut best[ravel(&idx, &out_shape)];
                if x > slot.0 {
                    *slot = (x, along);
                }
            }
            let max = t.max_dim(dim, true);
            assert_eq!(max.shape(), out_shape);
            assert_eq!(
                max.to_vec(),
                best.iter().map(|b| b.0).collect::<Vec<_>>(),
                "{layout} max dim {dim}"
            );
            assert_eq!(t.max_dim(dim, false).rank(), 2);
            assert_eq!(
                t.argmax_dim(dim),
                best.iter().map(|b| b.1).collect::<Vec<_>>(),
                "{layout} argmax {dim}"
            );
        }
        assert_eq!(
            t.max_all(),
            v.iter().copied().fold(f32::NEG_INFINITY, f32::max)
        );
    }
}

#[test]
fn max_ties_and_nan() {
    let t = Tensor::from_vec(vec![1.0, 3.0, 3.0, 0.0, f32::NAN, 5.0], &[2, 3]).unwrap();
    assert_eq!(t.argmax_dim(1), vec![1, 1]);
    let m = t.max_dim(1, false).to_vec();
    assert_eq!(m[0], 3.0);
    assert!(m[1].is_nan());
    assert!(t.max_all().is_nan());
    assert_eq!(t.argmax_dim(0), vec![0, 1, 1]);
}

#[test]
fn sum_to_undoes_broadcasting() {
    let mut rng = StdRng::seed_from_u64(13);
    let shape = [4, 6, 5];
    let targets: [&[usize]; 10] = [
        &[6, 5],
        &[1, 5],
        &[5],
        &[4, 1, 5],
        &[4, 6, 1],
        &[1, 1, 1],
        &[],
        &[6, 1],
        &[4, 6, 5],
        &[1, 6, 5],
    ];
    for layout in LAYOUTS {
        let t = laid_out(&shape, layout, &mut rng);
        for &target in &targets {
            let extra = 3 - target.len();
            let reduced: Vec<bool> = (0..3)
                .map(|d| d < extra || target[d - extra] == 1)
                .collect();
            let (_, want) = naive_sum(&t, &reduced);
            let got = t.sum_to(target);
            assert_eq!(got.shape(), target, "{layout} -> {target:?}");
            assert_close(
                &got.to_vec(),
                &want,
                1e-5,
                &format!("{layout} -> {target:?}"),
            );
        }
    }
    // Size-1 leading dims only: a view, no copy.
    let t = Tensor::uniform(&[1, 1, 3], 0.0, 1.0, &mut rng);
    let v = t.sum_to(&[3]);
    assert!(v.shares_storage_with(&t));
    assert_eq!(v.shape(), [3]);
    // The autograd use: bias gradient of a [128, 512] + [512] broadcast.
    let g = Tensor::uniform(&[128, 512], -1.0, 1.0, &mut rng);
    let (_, want) = naive_sum(&g, &[true, false]);
    assert_close(&g.sum_to(&[512]).to_vec(), &want, 1e-5, "bias grad");
}

#[test]
#[should_panic(expected = "sum_to: cannot sum shape [4, 6] down to [4]")]
fn sum_to_panics_on_incompatible_shape() {
    Tensor::zeros(&[4, 6]).sum_to(&[4]);
}

#[test]
#[should_panic(expected = "sum_to: cannot sum shape [6] down to [1, 6]")]
fn sum_to_panics_on_larger_rank() {
    Tensor::zeros(&[6]).sum_to(&[1, 6]);
}

#[test]
#[should_panic(expected = "sum_dims: dim 3 out of range for shape [2, 3, 4]")]
fn sum_dims_panics_on_bad_dim() {
    Tensor::zeros(&[2, 3, 4]).sum_dims(&[0, 3], false);
}

#[test]
#[should_panic(expected = "sum_dims: dim 1 repeated in [1, 1]")]
fn sum_dims_panics_on_repeated_dim() {
    Tensor::zeros(&[2, 3, 4]).sum_dims(&[1, 1], false);
}

#[test]
#[should_panic(expected = "max_all: empty tensor of shape [0, 3]")]
fn max_all_panics_on_empty() {
    Tensor::zeros(&[0, 3]).max_all();
}

#[test]
fn column_sums_add_rows_in_order_in_blocks_of_32() {
    // Summing over the rows adds them one at a time, in order, in f32 within each block
    // of 32 rows, and the blocks in f64 (the documented order, which the kernel keeps
    // while it reads four rows per pass). 103 rows: three full blocks, then 7 rows,
    // which is not a multiple of four either.
    let (rows, cols) = (103, 37);
    let mut rng = StdRng::seed_from_u64(11);
    let t = Tensor::normal(&[rows, cols], 0.0, 1.0, &mut rng);
    let v = t.to_vec();
    let want: Vec<f32> = (0..cols)
        .map(|j| {
            let mut total = 0.0f64;
            for block in (0..rows).collect::<Vec<_>>().chunks(32) {
                let mut partial = 0.0f32;
                for &i in block {
                    partial += v[i * cols + j];
                }
                total += partial as f64;
            }
            total as f32
        })
        .collect();
    let got = t.sum_dims(&[0], false).to_vec();
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&want));
}
