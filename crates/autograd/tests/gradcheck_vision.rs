//! The vision ops (conv2d, pooling, batch norm) checked two ways:
//!
//! - finite differences of every backward over combinations of stride, padding,
//!   dilation and groups, at odd sizes, on contiguous and non-contiguous inputs (an
//!   NHWC buffer seen as NCHW through a permute, a narrowed window, swapped h and w);
//! - forward and backward against a naive direct convolution written here, on sizes
//!   large enough to take the parallel path and several runs of the weight gradient's
//!   accumulation, and bit-identical at 1 and 2 threads.

use agdlab_autograd::{check_gradients, GradCheck, Tape, Var};
use agdlab_tensor::{Conv2dSpec, Pool2dSpec, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// `[n, c, h, w]` values in several layouts: contiguous; stored NHWC and permuted; a
/// window narrowed out of a larger tensor (an offset, non-unit row strides); stored with
/// h and w swapped and transposed back.
fn nchw_layouts(
    shape: [usize; 4],
    seed: u64,
    draw: impl Fn(&[usize], &mut StdRng) -> Tensor,
) -> Vec<(&'static str, Tensor)> {
    let [n, c, h, w] = shape;
    let mut rng = StdRng::seed_from_u64(seed);
    let out = vec![
        ("contiguous", draw(&shape, &mut rng)),
        (
            "permuted from NHWC",
            draw(&[n, h, w, c], &mut rng).permute(&[0, 3, 1, 2]),
        ),
        (
            "narrowed",
            draw(&[n + 1, c + 2, h + 1, w + 3], &mut rng)
                .narrow(0, 1, n)
                .narrow(1, 1, c)
                .narrow(3, 2, w)
                .narrow(2, 0, h),
        ),
        (
            "h and w swapped",
            draw(&[n, c, w, h], &mut rng).transpose(2, 3),
        ),
    ];
    for (name, t) in &out {
        assert_eq!(t.shape(), &shape, "{name}");
    }
    out
}

fn normal(shape: &[usize], rng: &mut StdRng) -> Tensor {
    Tensor::normal(shape, 0.0, 1.0, rng)
}

/// Distinct values 0.05 apart (a shuffled ramp): a max-pool's winner is stable under
/// the finite-difference step.
fn ramp(shape: &[usize], rng: &mut StdRng) -> Tensor {
    let n = shape.iter().product::<usize>();
    let mut values: Vec<f32> = (0..n).map(|i| i as f32 * 0.05 - 2.0).collect();
    values.shuffle(rng);
    Tensor::from_vec(values, shape).unwrap()
}

fn check(name: &str, f: impl Fn(&[Var]) -> Var, inputs: &[Tensor]) {
    check_gradients(f, inputs, &GradCheck::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// The specs checked: every one of stride, padding, dilation and groups away from its
/// default, alone and together, on rectangular kernels.
fn specs() -> Vec<(Conv2dSpec, [usize; 2])> {
    let d = Conv2dSpec::default();
    vec![
        (d, [3, 2]),
        (d.stride(2), [3, 3]),
        (d.padding(1), [3, 3]),
        (
            Conv2dSpec {
                padding: [2, 0],
                ..d
            },
            [3, 1],
        ),
        (d.dilation(2), [2, 3]),
        (d.groups(2), [3, 3]),
        (d.stride(2).padding(1).dilation(2).groups(2), [3, 2]),
        (
            Conv2dSpec {
                stride: [1, 2],
                padding: [1, 2],
                dilation: [2, 1],
                groups: 2,
            },
            [2, 3],
        ),
        (d, [1, 1]),                      // pointwise: no lowering
        (d.stride(2), [1, 1]),            // 1x1 with stride: a subsampling lowering
        (d.groups(4).padding(1), [3, 3]), // depthwise
        (d.padding(1), [1, 1]),           // padding beyond the kernel's reach: col2im at stride 1
        (d.padding(2).dilation(1), [2, 2]),
    ]
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(1);
    for (case, (spec, [kh, kw])) in specs().into_iter().enumerate() {
        let weight = Tensor::normal(
            &[6 - 2 * (spec.groups == 4) as usize, 4 / spec.groups, kh, kw],
            0.0,
            0.5,
            &mut rng,
        );
        let out_channels = weight.shape()[0];
        let bias = Tensor::normal(&[out_channels], 0.0, 1.0, &mut rng);
        for (layout, x) in nchw_layouts([2, 4, 7, 6], case as u64, normal) {
            let name = format!("conv2d {spec:?} kernel {kh}x{kw} on {layout}");
            check(
                &name,
                |v| v[0].conv2d(&v[1], Some(&v[2]), spec),
                &[x.clone(), weight.clone(), bias.clone()],
            );
        }
        // Without a bias, and with a non-contiguous weight (a transposed view).
        let weight_t = weight.transpose(2, 3).contiguous().transpose(2, 3);
        let x = normal(&[2, 4, 5, 7], &mut rng);
        check(
            &format!("conv2d {spec:?} no bias, strided weight"),
            |v| v[0].conv2d(&v[1], None, spec),
            &[x, weight_t],
        );
    }
}

#[test]
fn pooling_gradients_match_finite_differences() {
    let specs = [
        Pool2dSpec::new(2),
        Pool2dSpec::new(3).stride(2),
        Pool2dSpec::new(3).stride(2).padding(1),
        Pool2dSpec {
            kernel: [2, 3],
            stride: [1, 2],
            padding: [1, 1],
        },
    ];
    for spec in specs {
        for (layout, x) in nchw_layouts([2, 3, 7, 5], 3, ramp) {
            check(
                &format!("max_pool2d {spec:?} on {layout}"),
                |v| v[0].max_pool2d(spec),
                std::slice::from_ref(&x),
            );
            check(
                &format!("avg_pool2d {spec:?} on {layout}"),
                |v| v[0].avg_pool2d(spec),
                &[x],
            );
        }
    }
    for (layout, x) in nchw_layouts([2, 3, 5, 4], 4, normal) {
        check(
            &format!("global_avg_pool2d on {layout}"),
            |v| v[0].global_avg_pool2d(),
            &[x],
        );
    }
}

#[test]
fn batch_norm_gradients_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(5);
    let gamma = Tensor::uniform(&[3], 0.5, 1.5, &mut rng);
    let beta = Tensor::normal(&[3], 0.0, 1.0, &mut rng);
    let mean = Tensor::normal(&[3], 0.0, 1.0, &mut rng);
    let var = Tensor::uniform(&[3], 0.5, 2.0, &mut rng);
    // The statistics make the output depend on every element of a channel: a looser
    // step tolerance is not needed, but the inputs are kept near unit scale.
    for (layout, x) in nchw_layouts([4, 3, 5, 3], 6, normal) {
        let (g, b) = (gamma.clone(), beta.clone());
        check(
            &format!("batch_norm train on {layout}"),
            |v| v[0].batch_norm_train(Some(&v[1]), Some(&v[2]), 1e-5).0,
            &[x.clone(), g, b],
        );
        check(
            &format!("batch_norm train, no affine, on {layout}"),
            |v| v[0].batch_norm_train(None, None, 1e-5).0,
            std::slice::from_ref(&x),
        );
        let (m, s) = (mean.clone(), var.clone());
        check(
            &format!("batch_norm eval on {layout}"),
            move |v| v[0].batch_norm_eval(&m, &s, Some(&v[1]), Some(&v[2]), 1e-5),
            &[x, gamma.clone(), beta.clone()],
        );
    }
    // Rank 2 (BatchNorm1d's [n, c]) and rank 3.
    let x2 = Tensor::normal(&[6, 3], 0.0, 1.0, &mut rng);
    check(
        "batch_norm train [n, c]",
        |v| v[0].batch_norm_train(Some(&v[1]), None, 1e-5).0,
        &[x2, gamma.clone()],
    );
    let x3 = Tensor::normal(&[3, 5, 4], 0.0, 1.0, &mut rng).transpose(1, 2);
    check(
        "batch_norm train [n, c, l] transposed",
        |v| v[0].batch_norm_train(None, Some(&v[1]), 1e-5).0,
        &[x3, Tensor::zeros(&[4])],
    );
}

// ---------------------------------------------------------------------------------
// Against a naive direct convolution
// ---------------------------------------------------------------------------------

/// The convolution straight from its definition, in f64, with its three gradients for
/// the cotangent `dy`: `(y, dx, dw, db)`.
fn naive_conv(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    spec: Conv2dSpec,
    dy: Option<&Tensor>,
) -> [Vec<f64>; 4] {
    let [n, c, h, wd] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let [o, cg, kh, kw] = [w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]];
    let og = o / spec.groups;
    let out = |size: usize, k: usize, a: usize| {
        (size + 2 * spec.padding[a] - spec.dilation[a] * (k - 1) - 1) / spec.stride[a] + 1
    };
    let (oh, ow) = (out(h, kh, 0), out(wd, kw, 1));
    let (xs, ws, bs) = (x.to_vec(), w.to_vec(), b.to_vec());
    let dys = dy.map(|d| d.to_vec());
    let mut y = vec![0.0f64; n * o * oh * ow];
    let (mut dx, mut dw, mut db) = (
        vec![0.0f64; xs.len()],
        vec![0.0f64; ws.len()],
        vec![0.0f64; o],
    );
    for i in 0..n {
        for oc in 0..o {
            let g = oc / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    let yi = ((i * o + oc) * oh + oy) * ow + ox;
                    let mut acc = bs[oc] as f64;
                    let grad = dys.as_ref().map_or(0.0, |d| d[yi] as f64);
                    db[oc] += grad;
                    for ci in 0..cg {
                        let ch = g * cg + ci;
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let iy = (oy * spec.stride[0] + ki * spec.dilation[0]) as isize
                                    - spec.padding[0] as isize;
                                let ix = (ox * spec.stride[1] + kj * spec.dilation[1]) as isize
                                    - spec.padding[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xi = ((i * c + ch) * h + iy as usize) * wd + ix as usize;
                                let wi = ((oc * cg + ci) * kh + ki) * kw + kj;
                                acc += xs[xi] as f64 * ws[wi] as f64;
                                dx[xi] += grad * ws[wi] as f64;
                                dw[wi] += grad * xs[xi] as f64;
                            }
                        }
                    }
                    y[yi] = acc;
                }
            }
        }
    }
    [y, dx, dw, db]
}

fn assert_close(name: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: lengths");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= 1e-4 * scale,
            "{name}: element {i}: {g} vs {w}"
        );
    }
}

/// Our conv2d and its gradients for cotangent `dy`: `[y, dx, dw, db]`.
fn ours(x: &Tensor, w: &Tensor, b: &Tensor, spec: Conv2dSpec, dy: &Tensor) -> [Vec<f32>; 4] {
    let tape = Tape::new();
    let (xv, wv, bv) = (
        tape.leaf(x.clone()),
        tape.leaf(w.clone()),
        tape.leaf(b.clone()),
    );
    let y = xv.conv2d(&wv, Some(&bv), spec);
    let grads = y.backward_with(dy.clone());
    let get = |v: &Var| grads.wrt(v).unwrap().to_vec();
    [y.value().to_vec(), get(&xv), get(&wv), get(&bv)]
}

#[test]
fn conv2d_matches_a_direct_convolution_on_larger_batches() {
    let mut rng = StdRng::seed_from_u64(7);
    // 37 images: three runs of the weight gradient (16 + 16 + 5), and enough work for
    // the parallel path. Small outputs are multiplied several images per product
    // (`ConvGeometry::images_per_product`): 2 images of 15x13 outputs (the last alone),
    // 7 of 8x7 in the grouped case, 15 of 5x5 in the strided 1x1 one (then 6).
    let cases = [
        (
            [37, 8, 15, 13],
            [12, 8, 3, 3],
            Conv2dSpec::default().padding(1),
        ),
        (
            [37, 8, 15, 13],
            [12, 4, 3, 2],
            Conv2dSpec::default()
                .stride(2)
                .padding(1)
                .dilation(2)
                .groups(2),
        ),
        ([21, 16, 9, 9], [8, 16, 1, 1], Conv2dSpec::default()),
        // Stride 1 with few output channels: read from shifted copies of the input
        // with no im2col (`ShiftedInput`), with dilation, unequal padding and groups,
        // and a 5x5 kernel with no padding over three channels (rows narrower than the
        // input's).
        (
            [5, 6, 12, 20],
            [8, 3, 3, 3],
            Conv2dSpec {
                stride: [1, 1],
                padding: [2, 1],
                dilation: [2, 1],
                groups: 2,
            },
        ),
        ([4, 3, 28, 28], [6, 3, 5, 5], Conv2dSpec::default()),
        // 40 output channels: products cut into two bands of 20 rows for the
        // packing-free kernel (`banded_sgemm`), over 8 images of 7x7 outputs side by
        // side (the last product holds one), and over one image of 12x12.
        (
            [9, 8, 7, 7],
            [40, 8, 3, 3],
            Conv2dSpec::default().padding(1),
        ),
        (
            [3, 5, 12, 12],
            [40, 5, 3, 3],
            Conv2dSpec::default().padding(1),
        ),
        // A tap whose every read lies in the side padding (kj = 0 reads columns -4..-2
        // of a 4-wide input), with output rows narrower than the input's.
        (
            [3, 2, 40, 4],
            [3, 2, 3, 3],
            Conv2dSpec {
                stride: [1, 1],
                padding: [1, 4],
                dilation: [1, 5],
                groups: 1,
            },
        ),
        (
            [21, 16, 9, 9],
            [8, 16, 1, 1],
            Conv2dSpec::default().stride(2),
        ),
    ];
    for (x_shape, w_shape, spec) in cases {
        let x = Tensor::normal(&x_shape, 0.0, 1.0, &mut rng);
        let w = Tensor::normal(&w_shape, 0.0, 0.3, &mut rng);
        let b = Tensor::normal(&[w_shape[0]], 0.0, 1.0, &mut rng);
        let y_shape = x.conv2d(&w, None, spec).shape().to_vec();
        let dy = Tensor::normal(&y_shape, 0.0, 1.0, &mut rng);
        let want = naive_conv(&x, &w, &b, spec, Some(&dy));
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| ours(&x, &w, &b, spec, &dy))
        };
        let (one, two) = (run(1), run(2));
        for (k, what) in ["output", "input grad", "weight grad", "bias grad"]
            .iter()
            .enumerate()
        {
            assert_close(
                &format!("{what} of {x_shape:?} * {w_shape:?} {spec:?}"),
                &two[k],
                &want[k],
            );
            assert_eq!(one[k], two[k], "{what} differs between 1 and 2 threads");
        }
    }
}

#[test]
fn conv2d_accumulates_the_weight_gradient_of_a_shared_weight() {
    // One weight used twice: both contributions land in its one buffer.
    let mut rng = StdRng::seed_from_u64(8);
    let (x, w) = (
        Tensor::normal(&[3, 2, 6, 6], 0.0, 1.0, &mut rng),
        Tensor::normal(&[2, 2, 3, 3], 0.0, 0.5, &mut rng),
    );
    let spec = Conv2dSpec::default().padding(1);
    check(
        "conv2d twice with one weight",
        |v| v[0].conv2d(&v[1], None, spec).conv2d(&v[1], None, spec),
        &[x, w],
    );
}
