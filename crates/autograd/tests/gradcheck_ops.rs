//! Finite-difference checks of every differentiable op, on contiguous, transposed,
//! narrowed (offset), permuted and broadcast inputs.
//!
//! Each op is checked on every layout of the same logical values: layout bugs hide in
//! backward passes (a gradient written with the wrong strides), and this is where they
//! surface.

// `&[x.clone()]` reads better than `std::slice::from_ref(&x)` next to the multi-input calls.
#![allow(clippy::cloned_ref_to_slice_refs)]

use agdlab_autograd::{check_gradients, GradCheck, Param, Var};
use agdlab_tensor::index::Indices;
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Tensors of logical shape `shape` in several layouts, values from `transform`.
///
/// The transform is applied to the underlying storage before the view is taken, so the
/// layout under test is the one the op actually sees.
fn layouts(shape: &[usize], seed: u64, transform: fn(f32) -> f32) -> Vec<(&'static str, Tensor)> {
    layouts_from(shape, seed, |shape, rng| {
        Tensor::normal(shape, 0.0, 1.0, rng).map(transform)
    })
}

/// As [`layouts`], with the underlying storage drawn by `draw(storage_shape, rng)`.
fn layouts_from(
    shape: &[usize],
    seed: u64,
    draw: impl Fn(&[usize], &mut StdRng) -> Tensor,
) -> Vec<(&'static str, Tensor)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let rank = shape.len();
    let mut out = vec![("contiguous", draw(shape, &mut rng))];
    if rank >= 2 {
        let mut swapped = shape.to_vec();
        swapped.swap(rank - 2, rank - 1);
        let base = draw(&swapped, &mut rng);
        out.push(("transposed", base.transpose(rank - 2, rank - 1)));
    }
    if rank >= 1 {
        let mut wider = shape.to_vec();
        wider[0] += 2;
        wider[rank - 1] += 3;
        let base = draw(&wider, &mut rng);
        out.push((
            "narrowed",
            base.narrow(0, 1, shape[0])
                .narrow(rank - 1, 2, shape[rank - 1]),
        ));
    }
    if rank >= 3 {
        // Storage holds dims in rotated order; permuting brings back `shape`.
        let rotated: Vec<usize> = (0..rank).map(|i| shape[(i + 1) % rank]).collect();
        let base = draw(&rotated, &mut rng);
        let order: Vec<usize> = (0..rank).map(|i| (i + rank - 1) % rank).collect();
        let permuted = base.permute(&order);
        assert_eq!(permuted.shape(), shape);
        out.push(("permuted", permuted));
    }
    for (name, t) in &out {
        assert_eq!(t.shape(), shape, "layout {name}");
    }
    out
}

fn identity(x: f32) -> f32 {
    x
}
/// Away from 0, for ops with a kink or pole there.
fn away_from_zero(x: f32) -> f32 {
    x + 0.2f32.copysign(x)
}
fn positive(x: f32) -> f32 {
    x.abs() + 0.5
}

fn check(name: &str, f: impl Fn(&[Var]) -> Var, inputs: &[Tensor]) {
    check_gradients(f, inputs, &GradCheck::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// Check a unary op on every layout of a rank-2 and a rank-3 input, and through a
/// broadcast of a smaller leaf.
fn check_unary(name: &str, transform: fn(f32) -> f32, f: impl Fn(&Var) -> Var + Copy) {
    for shape in [&[3, 4][..], &[2, 3, 4][..]] {
        for (layout, x) in layouts(shape, 1, transform) {
            check(&format!("{name} on {layout} {shape:?}"), |v| f(&v[0]), &[x]);
        }
    }
    for (layout, x) in layouts(&[1, 4], 2, transform) {
        check(
            &format!("{name} on broadcast {layout}"),
            |v| f(&v[0].broadcast_to(&[3, 4])),
            &[x],
        );
    }
}

/// Check a binary op on every pairing of layouts, and with NumPy broadcasting.
fn check_binary(
    name: &str,
    ta: fn(f32) -> f32,
    tb: fn(f32) -> f32,
    f: impl Fn(&Var, &Var) -> Var + Copy,
) {
    for shape in [&[3, 4][..], &[2, 3, 4][..]] {
        for ((la, a), (lb, b)) in layouts(shape, 3, ta)
            .into_iter()
            .zip(layouts(shape, 4, tb).into_iter().rev())
        {
            check(
                &format!("{name} on {la} x {lb} {shape:?}"),
                |v| f(&v[0], &v[1]),
                &[a, b],
            );
        }
    }
    // Broadcasting: [3, 4] with [4], [3, 1] and [1, 4]; a transposed [4, 3] view with a row.
    let mut rng = StdRng::seed_from_u64(5);
    let a = Tensor::normal(&[3, 4], 0.0, 1.0, &mut rng).map(ta);
    let at = Tensor::normal(&[3, 4], 0.0, 1.0, &mut rng).map(ta).t();
    for b_shape in [&[4][..], &[3, 1][..], &[1, 4][..]] {
        let b = Tensor::normal(b_shape, 0.0, 1.0, &mut rng).map(tb);
        check(
            &format!("{name} broadcast [3,4] x {b_shape:?}"),
            |v| f(&v[0], &v[1]),
            &[a.clone(), b.clone()],
        );
        check(
            &format!("{name} broadcast {b_shape:?} x [3,4]"),
            |v| f(&v[1], &v[0]),
            &[a.clone(), b],
        );
    }
    let row = Tensor::normal(&[3], 0.0, 1.0, &mut rng).map(tb);
    check(
        &format!("{name} broadcast transposed x row"),
        |v| f(&v[0], &v[1]),
        &[at, row],
    );
}

#[test]
fn binary_arithmetic() {
    check_binary("add", identity, identity, |a, b| a.add(b));
    check_binary("sub", identity, identity, |a, b| a.sub(b));
    check_binary("mul", identity, identity, |a, b| a.mul(b));
    check_binary("div", away_from_zero, away_from_zero, |a, b| a.div(b));
}

/// `add_relu` against finite differences, with `a` away from 0 and `b` small, so that
/// no sum is within the step of the kink; and its values and gradients against `add`
/// then `relu`, including a sum that is negative.
#[test]
fn add_relu_is_a_sum_and_a_relu() {
    fn small(x: f32) -> f32 {
        0.04 * x
    }
    check_binary("add_relu", away_from_zero, small, |a, b| a.add_relu(b));

    let mut rng = StdRng::seed_from_u64(6);
    let (a, b) = (
        Tensor::normal(&[5, 7], 0.0, 1.0, &mut rng),
        Tensor::normal(&[5, 7], 0.0, 1.0, &mut rng),
    );
    let weights = Tensor::normal(&[5, 7], 0.0, 1.0, &mut rng);
    let run = |fused: bool| {
        let tape = agdlab_autograd::Tape::new();
        let (pa, pb) = (Param::new(a.clone()), Param::new(b.clone()));
        let (va, vb) = (tape.param(&pa), tape.param(&pb));
        let y = if fused {
            va.add_relu(&vb)
        } else {
            va.add(&vb).relu()
        };
        let loss = y.mul(&tape.input(weights.clone())).sum_all();
        let grads = loss.backward();
        let g = |p: &Param| grads.dense(p).unwrap().to_vec();
        (y.value().to_vec(), g(&pa), g(&pb))
    };
    let (fused, unfused) = (run(true), run(false));
    assert!(fused.0.contains(&0.0) && fused.0.iter().any(|&v| v > 0.0));
    assert_eq!(fused, unfused);
}

#[test]
fn maximum_and_minimum() {
    // a is shifted away from b's range so no pair is within the finite-difference step.
    fn high(x: f32) -> f32 {
        x.abs() + 0.1
    }
    fn low(x: f32) -> f32 {
        -x.abs() - 0.1
    }
    check_binary("maximum", high, low, |a, b| a.maximum(b));
    check_binary("maximum", low, high, |a, b| a.maximum(b));
    check_binary("minimum", high, low, |a, b| a.minimum(b));
}

#[test]
fn where_cond_routes_gradients() {
    let mask = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[4]).unwrap();
    for ((la, a), (lb, b)) in
        layouts(&[3, 4], 6, identity)
            .into_iter()
            .zip(layouts(&[3, 4], 7, identity))
    {
        check(
            &format!("where_cond {la} {lb}"),
            |v| Var::where_cond(&mask, &v[0], &v[1]),
            &[a, b],
        );
    }
}

#[test]
fn unary_math() {
    check_unary("neg", identity, |x| x.neg());
    check_unary("add_scalar", identity, |x| x.add_scalar(1.5));
    check_unary("mul_scalar", identity, |x| x.mul_scalar(-2.5));
    check_unary("exp", identity, |x| x.exp());
    check_unary("log", positive, |x| x.log());
    check_unary("sqrt", positive, |x| x.sqrt());
    check_unary("sqr", identity, |x| x.sqr());
    check_unary("powf", positive, |x| x.powf(1.7));
    check_unary("tanh", identity, |x| x.tanh());
    check_unary("sigmoid", identity, |x| x.sigmoid());
    check_unary("relu", away_from_zero, |x| x.relu());
    check_unary("abs", away_from_zero, |x| x.abs());
    check_unary("erf", identity, |x| x.erf());
    fn off_bounds(x: f32) -> f32 {
        // Keep values clear of the clamp bounds ±0.5.
        if (x.abs() - 0.5).abs() < 0.1 {
            x + 0.25f32.copysign(x)
        } else {
            x
        }
    }
    check_unary("clamp", off_bounds, |x| x.clamp(-0.5, 0.5));
}

#[test]
fn reductions() {
    check_unary("sum_all", identity, |x| x.sum_all());
    check_unary("mean_all", identity, |x| x.mean_all());
    for (layout, x) in layouts(&[2, 3, 4], 8, identity) {
        for dims in [&[0][..], &[1], &[2], &[0, 2], &[1, 2]] {
            for keepdim in [false, true] {
                let name = format!("sum_dims {dims:?} keepdim={keepdim} on {layout}");
                check(&name, |v| v[0].sum_dims(dims, keepdim), &[x.clone()]);
                check(
                    &format!("mean_{name}"),
                    |v| v[0].mean_dims(dims, keepdim),
                    &[x.clone()],
                );
            }
        }
    }
}

#[test]
fn max_along_a_dim() {
    // Distinct values 0.1 apart (a shuffled ramp), so the arg-max is stable under the step.
    let ramp = |shape: &[usize], rng: &mut StdRng| {
        let n = shape.iter().product::<usize>();
        let mut values: Vec<f32> = (0..n).map(|i| i as f32 * 0.1 - 1.0).collect();
        values.shuffle(rng);
        Tensor::from_vec(values, shape).unwrap()
    };
    for (layout, x) in layouts_from(&[3, 5, 4], 9, ramp) {
        for dim in 0..3 {
            for keepdim in [false, true] {
                check(
                    &format!("max_dim {dim} keepdim={keepdim} on {layout}"),
                    |v| v[0].max_dim(dim, keepdim),
                    &[x.clone()],
                );
            }
        }
    }
}

#[test]
fn shape_ops() {
    check_unary("reshape", identity, |x| x.reshape(&[-1, 2]));
    check_unary("flatten_from", identity, |x| x.flatten_from(1));
    check_unary("transpose", identity, |x| x.transpose(0, 1));
    check_unary("t", identity, |x| x.t());
    check_unary("unsqueeze", identity, |x| x.unsqueeze(1));
    check_unary("narrow", identity, |x| x.narrow(1, 1, 2));
    // Pieces used unevenly (one twice, one not at all) must still add into one buffer.
    check_unary("split", identity, |x| {
        let last = x.rank() - 1;
        let pieces = x.split(&[1, 1, 2], last);
        pieces[0]
            .mul_scalar(3.0)
            .add(&pieces[2].sum_dims(&[last], true))
            .add(&pieces[0])
    });
    check_unary("chunk of 4 along the last dim", identity, |x| {
        let gates = x.chunk(2, x.rank() - 1);
        gates[0].sigmoid().mul(&gates[1].tanh())
    });
    check_unary("squeeze", identity, |x| x.unsqueeze(0).squeeze(0));
    for (layout, x) in layouts(&[2, 3, 4], 10, identity) {
        check(
            &format!("permute on {layout}"),
            |v| v[0].permute(&[2, 0, 1]),
            &[x],
        );
    }
    for (layout, x) in layouts(&[3, 1], 11, identity) {
        check(
            &format!("broadcast_to on {layout}"),
            |v| v[0].broadcast_to(&[2, 3, 4]),
            &[x],
        );
    }
}

#[test]
fn concat_and_stack() {
    for ((la, a), (lb, b)) in layouts(&[3, 4], 12, identity)
        .into_iter()
        .zip(layouts(&[3, 4], 13, identity).into_iter().rev())
    {
        check(
            &format!("concat dim 0 {la} {lb}"),
            |v| Var::concat(&[&v[0], &v[1]], 0),
            &[a.clone(), b.clone()],
        );
        check(
            &format!("concat dim 1 {la} {lb}"),
            |v| Var::concat(&[&v[0], &v[1], &v[0]], 1),
            &[a.clone(), b.clone()],
        );
        check(
            &format!("stack {la} {lb}"),
            |v| Var::stack(&[&v[0], &v[1]], 1),
            &[a, b],
        );
    }
    // Rank 3 with permuted inputs, and a broadcast one.
    for ((la, a), (lb, b)) in layouts(&[2, 3, 4], 27, identity)
        .into_iter()
        .zip(layouts(&[2, 3, 4], 28, identity).into_iter().rev())
    {
        for dim in 0..3 {
            check(
                &format!("concat rank 3 dim {dim} {la} {lb}"),
                |v| Var::concat(&[&v[0], &v[1]], dim),
                &[a.clone(), b.clone()],
            );
        }
        let row = Tensor::normal(&[4], 0.0, 1.0, &mut StdRng::seed_from_u64(29));
        check(
            &format!("stack with broadcast {la}"),
            |v| Var::stack(&[&v[0], &v[1].broadcast_to(&[2, 3, 4])], 0),
            &[a, row],
        );
    }
}

#[test]
fn matmul_all_layouts() {
    // 2-D: every pairing of layouts.
    for (la, a) in layouts(&[3, 5], 14, identity) {
        for (lb, b) in layouts(&[5, 4], 15, identity) {
            check(
                &format!("matmul {la} x {lb}"),
                |v| v[0].matmul(&v[1]),
                &[a.clone(), b.clone()],
            );
        }
    }
    // Batched, with permuted operands and a broadcast batch.
    for (la, a) in layouts(&[2, 3, 5], 16, identity) {
        for (lb, b) in layouts(&[2, 5, 4], 17, identity) {
            check(
                &format!("batched matmul {la} x {lb}"),
                |v| v[0].matmul(&v[1]),
                &[a.clone(), b.clone()],
            );
        }
        let shared = Tensor::normal(&[5, 4], 0.0, 1.0, &mut StdRng::seed_from_u64(18));
        check(
            &format!("batched x broadcast matrix {la}"),
            |v| v[0].matmul(&v[1]),
            &[a.clone(), shared],
        );
    }
}

#[test]
fn fused_linear() {
    let mut rng = StdRng::seed_from_u64(19);
    let w = Tensor::normal(&[4, 5], 0.0, 1.0, &mut rng);
    let b = Tensor::normal(&[4], 0.0, 1.0, &mut rng);
    for (layout, x) in layouts(&[3, 5], 20, identity) {
        check(
            &format!("linear on {layout}"),
            |v| v[0].linear(&v[1], Some(&v[2])),
            &[x.clone(), w.clone(), b.clone()],
        );
        check(
            &format!("linear no bias on {layout}"),
            |v| v[0].linear(&v[1], None),
            &[x, w.clone()],
        );
    }
    for (layout, x) in layouts(&[2, 3, 5], 21, identity) {
        check(
            &format!("linear 3-D on {layout}"),
            |v| v[0].linear(&v[1], Some(&v[2])),
            &[x, w.clone(), b.clone()],
        );
    }
    // A transposed weight view.
    let wt = Tensor::normal(&[5, 4], 0.0, 1.0, &mut rng).t();
    check(
        "linear transposed weight",
        |v| v[0].linear(&v[1], Some(&v[2])),
        &[Tensor::normal(&[3, 5], 0.0, 1.0, &mut rng), wt, b],
    );
}

#[test]
fn softmax_family() {
    for (layout, x) in layouts(&[3, 5], 22, identity) {
        for dim in 0..2 {
            check(
                &format!("log_softmax dim {dim} on {layout}"),
                |v| v[0].log_softmax(dim),
                &[x.clone()],
            );
            check(
                &format!("softmax dim {dim} on {layout}"),
                |v| v[0].softmax(dim),
                &[x.clone()],
            );
        }
    }
    for (layout, x) in layouts(&[2, 3, 4], 23, identity) {
        check(
            &format!("log_softmax dim 1 on {layout}"),
            |v| v[0].log_softmax(1),
            &[x],
        );
    }
}

#[test]
fn indexing() {
    for (layout, x) in layouts(&[4, 3], 24, identity) {
        // Repeated indices must accumulate.
        check(
            &format!("index_select rows {layout}"),
            |v| v[0].index_select(0, &[2, 0, 2, 3]),
            &[x.clone()],
        );
        check(
            &format!("index_select cols {layout}"),
            |v| v[0].index_select(1, &[1, 1, 0]),
            &[x.clone()],
        );
        let index = Indices::new(vec![0, 2, 1, 1, 2, 2, 0, 0], &[4, 2]).unwrap();
        check(
            &format!("gather dim 1 {layout}"),
            |v| v[0].gather(1, &index),
            &[x.clone()],
        );
        let index0 = Indices::new(vec![3, 0, 1, 1, 1, 2], &[2, 3]).unwrap();
        check(
            &format!("gather dim 0 {layout}"),
            |v| v[0].gather(0, &index0),
            &[x.clone()],
        );
        let mask = Tensor::from_vec(vec![0.0, 1.0, 0.0], &[3]).unwrap();
        check(
            &format!("masked_fill {layout}"),
            |v| v[0].masked_fill(&mask, 7.0),
            &[x],
        );
    }
    // Embedding lookups: row-sparse gradients (densified for the check), repeated ids,
    // and a table used by two lookups whose sparse gradients add up.
    for (layout, table) in layouts(&[5, 3], 30, identity) {
        check(
            &format!("embedding {layout}"),
            |v| v[0].embedding(&[4, 1, 4, 0], None),
            &[table.clone()],
        );
        check(
            &format!("two embedding lookups {layout}"),
            |v| {
                v[0].embedding(&[2, 1, 2, 4], None)
                    .mul(&v[0].embedding(&[0, 0, 3, 3], None))
            },
            &[table.clone()],
        );
        check(
            &format!("embedding and a dense use {layout}"),
            |v| {
                v[0].embedding(&[1, 3], None)
                    .sum_all()
                    .add(&v[0].sqr().sum_all())
            },
            &[table],
        );
    }
    // Rank 3, including a permuted layout, along every dim.
    for (layout, x) in layouts(&[2, 4, 3], 25, identity) {
        for dim in 0..3 {
            let picks: Vec<usize> = (0..5).map(|i| (i * 7 + dim) % x.shape()[dim]).collect();
            check(
                &format!("index_select dim {dim} {layout}"),
                |v| v[0].index_select(dim, &picks),
                &[x.clone()],
            );
        }
        let index = Indices::new((0..12).map(|i| (i * 5) % 4).collect(), &[2, 2, 3]).unwrap();
        check(
            &format!("gather rank 3 dim 1 {layout}"),
            |v| v[0].gather(1, &index),
            &[x.clone()],
        );
    }
    // Broadcast inputs: a row stretched before it is indexed.
    for (layout, row) in layouts(&[1, 3], 26, identity) {
        let index = Indices::new(vec![2, 0, 1, 1, 0, 2, 2, 2], &[4, 2]).unwrap();
        check(
            &format!("index_select of broadcast {layout}"),
            |v| v[0].broadcast_to(&[4, 3]).index_select(0, &[3, 1, 1]),
            &[row.clone()],
        );
        check(
            &format!("gather of broadcast {layout}"),
            |v| v[0].broadcast_to(&[4, 3]).gather(1, &index),
            &[row.clone()],
        );
        let mask = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[4, 1]).unwrap();
        check(
            &format!("masked_fill of broadcast {layout}"),
            |v| v[0].masked_fill(&mask, -1.0),
            &[row],
        );
    }
}

#[test]
fn composites_reuse_values() {
    // A value used several times: gradients from every use must add up.
    check_unary("x*x + x", identity, |x| x.mul(x).add(x));
    check_unary("x*exp(x) - tanh(x)/2", identity, |x| {
        x.mul(&x.exp()).sub(&x.tanh().mul_scalar(0.5))
    });
    check_unary("softmax-weighted sum", identity, |x| {
        x.softmax(x.rank() - 1).mul(x).sum_all()
    });
}

#[test]
fn layer_norm_with_and_without_affine() {
    let mut rng = StdRng::seed_from_u64(31);
    let w = Tensor::normal(&[5], 1.0, 0.3, &mut rng);
    let b = Tensor::normal(&[5], 0.0, 0.3, &mut rng);
    for shape in [&[3, 5][..], &[2, 4, 5][..]] {
        for (layout, x) in layouts(shape, 32, identity) {
            check(
                &format!("layer_norm affine on {layout} {shape:?}"),
                |v| v[0].layer_norm(Some(&v[1]), Some(&v[2]), 1e-5),
                &[x.clone(), w.clone(), b.clone()],
            );
            check(
                &format!("layer_norm plain on {layout} {shape:?}"),
                |v| v[0].layer_norm(None, None, 1e-5),
                &[x.clone()],
            );
            check(
                &format!("layer_norm weight only on {layout} {shape:?}"),
                |v| v[0].layer_norm(Some(&v[1]), None, 1e-5),
                &[x, w.clone()],
            );
        }
    }
}

#[test]
fn masked_softmax_with_causal_and_padding_masks() {
    let neg = f32::NEG_INFINITY;
    // Causal [4, 4]: position t sees 0..=t.
    let causal: Vec<f32> = (0..16)
        .map(|i| if i % 4 > i / 4 { neg } else { 0.0 })
        .collect();
    let causal = Tensor::from_vec(causal, &[4, 4]).unwrap();
    // Key padding for a batch of 2: the second sequence's last key is padding.
    let padding =
        Tensor::from_vec(vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, neg], &[2, 1, 1, 4]).unwrap();
    for (layout, x) in layouts(&[2, 3, 4, 4], 33, identity) {
        check(
            &format!("softmax_masked causal on {layout}"),
            |v| v[0].softmax_masked(Some(&causal)),
            &[x.clone()],
        );
        check(
            &format!("softmax_masked padding on {layout}"),
            |v| v[0].softmax_masked(Some(&padding)),
            &[x.clone()],
        );
        check(
            &format!("softmax_masked none on {layout}"),
            |v| v[0].softmax_masked(None),
            &[x],
        );
    }
}
