//! Views copy nothing; element-wise ops broadcast like NumPy on every layout; errors
//! name the op and the shapes.

mod common;

use agdlab_tensor::{Tensor, TensorError};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn ramp(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| i as f32).collect(), shape).unwrap()
}

/// The value at a multi-index, computed from a row-major buffer and shape.
fn at(data: &[f32], shape: &[usize], index: &[usize]) -> f32 {
    let mut flat = 0;
    for (i, d) in index.iter().zip(shape) {
        flat = flat * d + i;
    }
    data[flat]
}

#[test]
fn views_share_storage_and_index_correctly() {
    let x = ramp(&[2, 3, 4]);
    let t = x.transpose(0, 2);
    assert!(t.shares_storage_with(&x));
    assert_eq!(t.shape(), &[4, 3, 2]);
    assert_eq!(t.get(&[3, 1, 0]), x.get(&[0, 1, 3]));

    let p = x.permute(&[1, 2, 0]);
    assert!(p.shares_storage_with(&x));
    assert_eq!(p.get(&[2, 1, 1]), x.get(&[1, 2, 1]));

    let n = x.narrow(2, 1, 2).narrow(0, 1, 1);
    assert!(n.shares_storage_with(&x));
    assert_eq!(n.shape(), &[1, 3, 2]);
    assert_eq!(n.to_vec(), vec![13.0, 14.0, 17.0, 18.0, 21.0, 22.0]);

    let b = ramp(&[3, 1]).broadcast_to(&[2, 3, 4]);
    assert!(
        !b.shares_storage_with(&b.contiguous()),
        "materialising a broadcast copies"
    );
    assert_eq!(b.strides()[0], 0);
    assert_eq!(b.get(&[1, 2, 3]), 2.0);

    let u = x.unsqueeze(1);
    assert_eq!(u.shape(), &[2, 1, 3, 4]);
    assert!(u.shares_storage_with(&x));
    assert!(u.squeeze(1).shares_storage_with(&x));

    // Reshape of a contiguous tensor is a view; of a strided one, a copy.
    let r = x.reshape(&[6, -1]);
    assert_eq!(r.shape(), &[6, 4]);
    assert!(r.shares_storage_with(&x));
    let rt = t.reshape(&[-1]);
    assert!(!rt.shares_storage_with(&x));
    assert_eq!(rt.to_vec(), t.to_vec());

    // contiguous() copies only when needed.
    assert!(x.contiguous().shares_storage_with(&x));
    assert!(!t.contiguous().shares_storage_with(&x));
    assert_eq!(t.contiguous().to_vec(), t.to_vec());
    assert!(t.contiguous().is_contiguous());
}

#[test]
fn in_place_writes_never_leak_into_other_views() {
    let x = ramp(&[2, 3]);
    let mut y = x.clone();
    y.data_mut()[0] = 100.0;
    assert_eq!(x.get(&[0, 0]), 0.0, "copy-on-write kept the original");
    let mut view = x.t();
    view.add_assign(&Tensor::ones(&[3, 2]));
    assert_eq!(x.to_vec(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(view.to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
}

/// Every layout of a `[rows, cols]` tensor holding the values `ramp * scale + shift`.
fn layouts(rows: usize, cols: usize, scale: f32, shift: f32) -> Vec<(&'static str, Tensor)> {
    let f = move |t: Tensor| t.map(|v| v * scale + shift);
    let contiguous = f(ramp(&[rows, cols]));
    let transposed = f(ramp(&[rows, cols])).t().contiguous().t(); // same values, column-major
    let wide = f(ramp(&[rows + 2, cols + 3]));
    // Narrowed: values differ from the ramp, so rebuild the reference from it.
    let narrowed = wide.narrow(0, 1, rows).narrow(1, 2, cols);
    vec![
        ("contiguous", contiguous),
        ("transposed", transposed),
        ("narrowed", narrowed),
    ]
}

#[test]
fn binary_ops_broadcast_like_numpy_on_every_layout() {
    type TensorOp = fn(&Tensor, &Tensor) -> Tensor;
    type ScalarOp = fn(f32, f32) -> f32;
    let ops: [(&str, TensorOp, ScalarOp); 6] = [
        ("add", Tensor::add, |a, b| a + b),
        ("sub", Tensor::sub, |a, b| a - b),
        ("mul", Tensor::mul, |a, b| a * b),
        ("div", Tensor::div, |a, b| a / b),
        ("maximum", Tensor::maximum, f32::max),
        ("gt", Tensor::gt, |a, b| (a > b) as u8 as f32),
    ];
    for (name, op, scalar) in ops {
        for (la, a) in layouts(4, 5, 0.5, -3.0) {
            for (lb, b) in layouts(4, 5, -0.25, 2.0) {
                let got = op(&a, &b).to_vec();
                let (av, bv) = (a.to_vec(), b.to_vec());
                let want: Vec<f32> = av.iter().zip(&bv).map(|(&x, &y)| scalar(x, y)).collect();
                assert_eq!(got, want, "{name} {la} x {lb}");
            }
            // Broadcasting a row [5], a column [4, 1] and a scalar [].
            for other in [
                ramp(&[5]).add_scalar(1.0),
                ramp(&[4, 1]).add_scalar(1.0),
                Tensor::scalar(3.0),
            ] {
                let got = op(&a, &other);
                assert_eq!(got.shape(), &[4, 5]);
                let (av, ov) = (a.to_vec(), other.to_vec());
                for i in 0..4 {
                    for j in 0..5 {
                        let o = match other.shape() {
                            [5] => ov[j],
                            [4, 1] => ov[i],
                            _ => ov[0],
                        };
                        let want = scalar(at(&av, &[4, 5], &[i, j]), o);
                        assert_eq!(
                            got.get(&[i, j]),
                            want,
                            "{name} {la} broadcast {:?}",
                            other.shape()
                        );
                        // And the other way round.
                        assert_eq!(
                            op(&other, &a).get(&[i, j]),
                            scalar(o, at(&av, &[4, 5], &[i, j]))
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn large_tensors_take_the_parallel_path_and_give_bit_identical_results() {
    let mut rng = StdRng::seed_from_u64(0);
    let a = Tensor::normal(&[300, 257], 0.0, 1.0, &mut rng); // 77k elements: above the threshold
    let b = Tensor::normal(&[257], 0.0, 1.0, &mut rng);
    let run = |n| {
        common::pool(n).install(|| {
            (
                a.add(&b).to_vec(),
                a.t().exp().to_vec(),
                a.t().contiguous().to_vec(),
                a.sum_dims(&[0], false).to_vec(),
                (a.sum_all().item(), a.t().sum_dims(&[1], false).to_vec()),
                a.matmul(&a.t()).to_vec(),
            )
        })
    };
    let (serial, parallel) = (run(1), run(2));
    // Bit-identical whatever the thread count (compared without printing 77k values).
    assert!(
        serial.0 == parallel.0,
        "add differs between 1 and 2 threads"
    );
    assert!(
        serial.1 == parallel.1,
        "exp of a transposed view differs between 1 and 2 threads"
    );
    assert!(
        serial.2 == parallel.2,
        "contiguous() of a transposed view differs between 1 and 2 threads"
    );
    assert!(
        serial.3 == parallel.3,
        "sum over axis 0 differs between 1 and 2 threads"
    );
    assert!(
        serial.4 == parallel.4,
        "sum_all or a strided row sum differs between 1 and 2 threads"
    );
    assert!(
        serial.5 == parallel.5,
        "matmul differs between 1 and 2 threads"
    );
    let (av, bv) = (a.to_vec(), b.to_vec());
    for (i, v) in serial.0.iter().enumerate() {
        assert_eq!(*v, av[i] + bv[i % 257]);
    }
}

#[test]
fn unary_math_matches_std() {
    let x = Tensor::from_vec(vec![-2.5, -0.5, 0.0, 0.25, 3.0], &[5]).unwrap();
    let v = x.to_vec();
    let check = |name: &str, got: Tensor, f: fn(f32) -> f32| {
        for (g, &x) in got.to_vec().iter().zip(&v) {
            let want = f(x);
            assert!(
                g == &want
                    || (g.is_nan() && want.is_nan())
                    || (g - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{name}({x}) = {g}, want {want}"
            );
        }
    };
    check("neg", x.neg(), |x| -x);
    check("exp", x.exp(), f32::exp);
    check("log", x.abs().add_scalar(0.1).log(), |x| {
        (x.abs() + 0.1).ln()
    });
    check("sqrt", x.abs().sqrt(), |x| x.abs().sqrt());
    check("tanh", x.tanh(), f32::tanh);
    check("sigmoid", x.sigmoid(), |x| 1.0 / (1.0 + (-x).exp()));
    check("relu", x.relu(), |x| x.max(0.0));
    check("abs", x.abs(), f32::abs);
    check("powf", x.abs().powf(1.5), |x| x.abs().powf(1.5));
    check("clamp", x.clamp(-1.0, 1.0), |x| x.clamp(-1.0, 1.0));
    // erf against known values.
    let e = Tensor::from_vec(vec![0.0, 0.5, 1.0, -2.0], &[4])
        .unwrap()
        .erf()
        .to_vec();
    for (g, want) in e.iter().zip([0.0, 0.520_499_9, 0.842_700_8, -0.995_322_3]) {
        assert!((g - want).abs() < 2e-7, "erf {g} vs {want}");
    }
    // Sigmoid stays finite far out.
    let s = Tensor::from_vec(vec![-200.0, 200.0], &[2])
        .unwrap()
        .sigmoid()
        .to_vec();
    assert_eq!(s, vec![0.0, 1.0]);
}

#[test]
fn where_and_masked_fill() {
    let mask = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3]).unwrap();
    let a = ramp(&[2, 3]);
    let b = Tensor::full(&[2, 1], -1.0);
    assert_eq!(
        mask.where_cond(&a, &b).to_vec(),
        vec![0.0, -1.0, 2.0, 3.0, -1.0, 5.0]
    );
    assert_eq!(
        a.masked_fill(&mask, 9.0).to_vec(),
        vec![9.0, 1.0, 9.0, 9.0, 4.0, 9.0]
    );
}

#[test]
fn seeded_constructors_are_reproducible_and_distributed_as_asked() {
    let draw = |seed| Tensor::normal(&[10_000], 1.0, 2.0, &mut StdRng::seed_from_u64(seed));
    assert_eq!(draw(3).to_vec(), draw(3).to_vec());
    assert_ne!(draw(3).to_vec(), draw(4).to_vec());
    let v = draw(5).to_vec();
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
    assert!(
        (mean - 1.0).abs() < 0.06 && (var.sqrt() - 2.0).abs() < 0.06,
        "mean {mean} std {}",
        var.sqrt()
    );
    let u = Tensor::uniform(&[10_000], -0.5, 0.25, &mut StdRng::seed_from_u64(6)).to_vec();
    assert!(u.iter().all(|&x| (-0.5..0.25).contains(&x)));
    assert_eq!(Tensor::arange(4).to_vec(), vec![0.0, 1.0, 2.0, 3.0]);
    assert_eq!(Tensor::full(&[2, 2], 7.0).to_vec(), vec![7.0; 4]);
    assert_eq!(Tensor::zeros(&[0, 3]).numel(), 0);
}

#[test]
fn data_derived_sizes_return_errors() {
    let err = Tensor::from_vec(vec![1.0; 5], &[2, 3]).unwrap_err();
    assert_eq!(
        err,
        TensorError::LengthMismatch {
            op: "from_vec",
            shape: vec![2, 3],
            expected: 6,
            got: 5
        }
    );
    assert_eq!(
        err.to_string(),
        "from_vec: shape [2, 3] needs 6 elements but the buffer has 5"
    );
}

/// A reshape is a programming decision, like an axis: a wrong one panics naming both
/// shapes (one rule for `Tensor` and `Var`).
#[test]
fn bad_reshapes_panic_naming_both_shapes() {
    let x = ramp(&[2, 3]);
    let message = |f: Box<dyn Fn()>| {
        let err =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("should panic");
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    let x1 = x.clone();
    let m = message(Box::new(move || drop(x1.reshape(&[4, 2]))));
    assert!(
        m.contains("reshape") && m.contains("[2, 3]") && m.contains("[4, 2]"),
        "{m}"
    );
    for bad in [vec![-1, -1], vec![4, -1], vec![-2, 3]] {
        let x1 = x.clone();
        let m = message(Box::new(move || drop(x1.reshape(&bad))));
        assert!(m.contains("reshape"), "{m}");
    }
    let x1 = x.clone();
    let m = message(Box::new(move || drop(x1.reshape_to(&[7]))));
    assert!(m.contains("[2, 3]") && m.contains("[7]"), "{m}");
}

#[test]
#[should_panic(expected = "mul: shapes [2, 3] and [2] do not broadcast")]
fn shape_mismatch_panics_naming_the_op_and_both_shapes() {
    let _ = ramp(&[2, 3]).mul(&ramp(&[2]));
}

#[test]
#[should_panic(expected = "transpose: dim 2 out of range for shape [2, 3]")]
fn bad_axis_panics_naming_the_op() {
    let _ = ramp(&[2, 3]).transpose(0, 2);
}

#[test]
#[should_panic(expected = "narrow: range 2..4 out of bounds for dim 1 of shape [2, 3]")]
fn narrow_out_of_bounds_panics() {
    let _ = ramp(&[2, 3]).narrow(1, 2, 2);
}
