//! Copies, unary and binary ops on strided views equal the element-by-element result on
//! every kind of view, on one thread and on two, below and above the parallel
//! threshold. The reference reads each element with `Tensor::get` (one dot product of
//! index and strides), so it shares no code with the walks under test.

mod common;

use agdlab_tensor::parallel::PARALLEL_THRESHOLD;
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The elements of `t` in row-major order, one `get` per element.
fn naive(t: &Tensor) -> Vec<f32> {
    let shape = t.shape();
    (0..t.numel())
        .map(|mut flat| {
            let mut index = vec![0; shape.len()];
            for d in (0..shape.len()).rev() {
                index[d] = flat % shape[d];
                flat /= shape[d];
            }
            t.get(&index)
        })
        .collect()
}

/// The inverse of a permutation.
fn inverse(order: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; order.len()];
    for (i, &d) in order.iter().enumerate() {
        inv[d] = i;
    }
    inv
}

/// Views of every kind with logical shape `shape` (rank 4): contiguous, permuted (NCHW
/// <-> NHWC and others), narrowed, narrowed then permuted, broadcast, broadcast then
/// permuted. Each over fresh random storage.
fn views_of(shape: &[usize], rng: &mut StdRng) -> Vec<(String, Tensor)> {
    let mut views = vec![(
        "contiguous".to_string(),
        Tensor::uniform(shape, -1.0, 1.0, rng),
    )];
    for order in [
        [0, 2, 3, 1],
        [0, 3, 1, 2],
        [3, 2, 1, 0],
        [1, 0, 2, 3],
        [0, 1, 3, 2],
        [2, 0, 3, 1],
    ] {
        // A contiguous base whose permutation by `order` has the logical shape.
        let inv = inverse(&order);
        let base_shape: Vec<usize> = inv.iter().map(|&i| shape[i]).collect();
        let base = Tensor::uniform(&base_shape, -1.0, 1.0, rng);
        views.push((format!("permuted {order:?}"), base.permute(&order)));
        // The same, with every dimension of the base narrowed from a larger tensor.
        let padded: Vec<usize> = base_shape
            .iter()
            .enumerate()
            .map(|(d, &n)| n + d % 3)
            .collect();
        let mut narrowed = Tensor::uniform(&padded, -1.0, 1.0, rng);
        for (d, &n) in base_shape.iter().enumerate() {
            narrowed = narrowed.narrow(d, (d % 3).min(1), n);
        }
        views.push((
            format!("narrowed, permuted {order:?}"),
            narrowed.permute(&order),
        ));
        // Broadcast along the base's dims 0 and 2, then permuted.
        let mut thin = base_shape.clone();
        thin[0] = 1;
        thin[2] = 1;
        let broadcast = Tensor::uniform(&thin, -1.0, 1.0, rng).broadcast_to(&base_shape);
        views.push((
            format!("broadcast, permuted {order:?}"),
            broadcast.permute(&order),
        ));
    }
    let padded: Vec<usize> = shape.iter().map(|&n| n + 2).collect();
    let mut interior = Tensor::uniform(&padded, -1.0, 1.0, rng);
    for (d, &n) in shape.iter().enumerate() {
        interior = interior.narrow(d, 1, n);
    }
    views.push(("narrowed interior".to_string(), interior));
    let mut row = shape.to_vec();
    row[..3].fill(1);
    views.push((
        "broadcast row".to_string(),
        Tensor::uniform(&row, -1.0, 1.0, rng).broadcast_to(shape),
    ));
    let mut column = shape.to_vec();
    column[3] = 1;
    views.push((
        "broadcast column".to_string(),
        Tensor::uniform(&column, -1.0, 1.0, rng).broadcast_to(shape),
    ));
    for (name, v) in &views {
        assert_eq!(v.shape(), shape, "{name}");
    }
    views
}

/// Shapes below and above the parallel threshold, with ragged sizes (not multiples of
/// the 8 or 32 the transposing tiles use) and size-1 dimensions.
const SHAPES: [[usize; 4]; 6] = [
    [2, 3, 4, 5],
    [4, 16, 24, 24],
    [3, 37, 19, 17],
    [2, 70, 9, 33],
    [1, 40, 1, 1000],
    [5, 1, 90, 80],
];

/// Run `f` on a rayon pool of `threads` threads.
fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    common::pool(threads).install(f)
}

#[test]
fn the_shapes_reach_the_parallel_path() {
    assert!(
        SHAPES
            .iter()
            .filter(|s| s.iter().product::<usize>() > PARALLEL_THRESHOLD)
            .count()
            >= 4
    );
}

#[test]
fn contiguous_and_map_equal_the_naive_walk_on_one_and_two_threads() {
    let mut rng = StdRng::seed_from_u64(0);
    for shape in SHAPES {
        for (name, view) in views_of(&shape, &mut rng) {
            let want = naive(&view);
            let want_mapped: Vec<f32> = want.iter().map(|&x| x * 3.0 + 0.5).collect();
            for threads in [1, 2] {
                let (copy, to_vec, mapped, exp) = on_threads(threads, || {
                    let copy = view.contiguous();
                    assert!(copy.is_contiguous());
                    (
                        copy.to_vec(),
                        view.to_vec(),
                        view.map(|x| x * 3.0 + 0.5).to_vec(),
                        view.exp().to_vec(),
                    )
                });
                let what = format!("{name} of shape {shape:?} on {threads} threads");
                assert!(copy == want, "contiguous() of {what}");
                assert!(to_vec == want, "to_vec() of {what}");
                assert!(mapped == want_mapped, "map of {what}");
                assert!(
                    exp.iter()
                        .zip(&want)
                        .all(|(&e, &x)| e == agdlab_tensor::exp::exp(x)),
                    "exp of {what}"
                );
            }
        }
    }
}

#[test]
fn binary_ops_on_views_equal_the_naive_walk_on_one_and_two_threads() {
    let mut rng = StdRng::seed_from_u64(1);
    for shape in SHAPES {
        let views = views_of(&shape, &mut rng);
        let values: Vec<Vec<f32>> = views.iter().map(|(_, v)| naive(v)).collect();
        // Every view against a contiguous tensor, a permuted one, a broadcast one, and
        // itself; both ways round.
        let partners = [0, 1, views.len() - 1];
        for (i, (name, a)) in views.iter().enumerate() {
            for j in partners.into_iter().chain([i]) {
                let (other, b) = &views[j];
                let want_sub: Vec<f32> = values[i]
                    .iter()
                    .zip(&values[j])
                    .map(|(&x, &y)| x - y)
                    .collect();
                let want_div: Vec<f32> = values[j]
                    .iter()
                    .zip(&values[i])
                    .map(|(&y, &x)| y / x)
                    .collect();
                for threads in [1, 2] {
                    let (sub, div) = on_threads(threads, || (a.sub(b).to_vec(), b.div(a).to_vec()));
                    let what =
                        format!("{name} and {other} of shape {shape:?} on {threads} threads");
                    assert!(sub == want_sub, "{what}: a - b");
                    assert!(
                        div.iter()
                            .zip(&want_div)
                            .all(|(g, w)| g == w || (g.is_nan() && w.is_nan())),
                        "{what}: b / a"
                    );
                }
            }
        }
    }
}

#[test]
fn broadcasting_a_view_against_a_smaller_operand() {
    let mut rng = StdRng::seed_from_u64(2);
    let x = Tensor::uniform(&[8, 24, 20, 12], -1.0, 1.0, &mut rng).permute(&[0, 2, 3, 1]); // [8, 20, 12, 24]
    let bias = Tensor::uniform(&[24], -1.0, 1.0, &mut rng);
    let column = Tensor::uniform(&[20, 1, 1], -1.0, 1.0, &mut rng);
    let (xs, bs, cs) = (naive(&x), bias.to_vec(), column.to_vec());
    for threads in [1, 2] {
        let (with_bias, with_column) =
            on_threads(threads, || (x.add(&bias).to_vec(), column.mul(&x).to_vec()));
        for (flat, (&got_bias, &got_column)) in with_bias.iter().zip(&with_column).enumerate() {
            let (c, h) = (flat % 24, flat / (12 * 24) % 20);
            assert_eq!(
                got_bias,
                xs[flat] + bs[c],
                "bias at {flat} on {threads} threads"
            );
            assert_eq!(
                got_column,
                cs[h] * xs[flat],
                "column at {flat} on {threads} threads"
            );
        }
    }
}

#[test]
fn other_ranks_and_empty_views() {
    let mut rng = StdRng::seed_from_u64(3);
    let views = [
        Tensor::scalar(2.5),
        Tensor::uniform(&[7], -1.0, 1.0, &mut rng).narrow(0, 2, 4),
        Tensor::uniform(&[300, 257], -1.0, 1.0, &mut rng).t(),
        Tensor::uniform(&[5, 33, 70], -1.0, 1.0, &mut rng).permute(&[0, 2, 1]),
        Tensor::uniform(&[40, 30, 50], -1.0, 1.0, &mut rng).permute(&[2, 1, 0]),
        Tensor::uniform(&[3], -1.0, 1.0, &mut rng)
            .broadcast_to(&[20000, 3])
            .t(),
        Tensor::uniform(&[2, 1, 3], -1.0, 1.0, &mut rng)
            .unsqueeze(0)
            .transpose(1, 3),
        Tensor::zeros(&[3, 0, 4]).transpose(0, 2),
        Tensor::zeros(&[0]),
    ];
    for view in views {
        let want = naive(&view);
        for threads in [1, 2] {
            let (copy, doubled, sum) = on_threads(threads, || {
                (
                    view.contiguous().to_vec(),
                    view.mul_scalar(2.0).to_vec(),
                    view.add(&view),
                )
            });
            let what = format!(
                "shape {:?} strides {:?} on {threads} threads",
                view.shape(),
                view.strides()
            );
            assert!(copy == want, "contiguous() of {what}");
            assert!(
                doubled.iter().zip(&want).all(|(&d, &x)| d == 2.0 * x),
                "mul_scalar of {what}"
            );
            assert_eq!(sum.shape(), view.shape());
            assert!(
                sum.to_vec().iter().zip(&want).all(|(&s, &x)| s == x + x),
                "view + view of {what}"
            );
        }
    }
}
