//! Convolution forward + backward (input and weight gradients) at the LeNet-5 and
//! ResNet-20 shapes of a batch of 128 28x28 images, at 1 and 2 threads, against raw
//! `sgemm` calls of the same matrix sizes.
//!
//! Both benches of a shape set their throughput to the same FLOP count (3 products of
//! `2·muladds` each), so criterion's "Gelem/s" reads as GFLOP/s, and
//! `raw / conv` throughput is at once the conv's efficiency against raw sgemm and an
//! upper bound of the share of conv time spent inside sgemm (the rest is im2col,
//! col2im, kernel flips and bias sums). The raw side per image: `[m, k]·[k, n]`
//! (forward), `[k, m]·[m, n]` (input gradient), `[m, n]·[n, k]` accumulated (weight
//! gradient), with `m = out/groups`, `k = in/groups·kh·kw`, `n = out_h·out_w`, contiguous
//! operands, images split across the threads as the conv splits them.
//!
//! `cargo bench --bench conv -- --warm-up-time 1 --measurement-time 5`

use agdlab_tensor::conv::{conv2d_input_grad, conv2d_weight_grad};
use agdlab_tensor::gemm::{sgemm, MatMut, MatRef};
use agdlab_tensor::{Conv2dSpec, ConvGeometry, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

const BATCH: usize = 128;

/// (name, input shape, weight shape, spec): every distinct convolution of the two models.
fn shapes() -> Vec<(&'static str, [usize; 4], [usize; 4], Conv2dSpec)> {
    let d = Conv2dSpec::default();
    vec![
        (
            "lenet_conv1",
            [BATCH, 1, 28, 28],
            [6, 1, 5, 5],
            d.padding(2),
        ),
        ("lenet_conv2", [BATCH, 6, 14, 14], [16, 6, 5, 5], d),
        (
            "resnet_16x28x28",
            [BATCH, 16, 28, 28],
            [16, 16, 3, 3],
            d.padding(1),
        ),
        (
            "resnet_16to32_stride2",
            [BATCH, 16, 28, 28],
            [32, 16, 3, 3],
            d.stride(2).padding(1),
        ),
        (
            "resnet_32x14x14",
            [BATCH, 32, 14, 14],
            [32, 32, 3, 3],
            d.padding(1),
        ),
        (
            "resnet_64x7x7",
            [BATCH, 64, 7, 7],
            [64, 64, 3, 3],
            d.padding(1),
        ),
    ]
}

/// The three products of one image's convolution at its matrix sizes.
fn raw_products(geo: &ConvGeometry, bufs: &mut RawBuffers) {
    let (m, k, n) = geo.gemm_sizes();
    let RawBuffers {
        w,
        cols,
        y,
        dcols,
        dw,
    } = bufs;
    for _ in 0..geo.spec.groups {
        sgemm(
            1.0,
            MatRef::row_major(w, 0, m, k),
            MatRef::row_major(cols, 0, k, n),
            0.0,
            MatMut::row_major(y, 0, m, n),
        );
        sgemm(
            1.0,
            MatRef::row_major(w, 0, m, k).t(),
            MatRef::row_major(y, 0, m, n),
            0.0,
            MatMut::row_major(dcols, 0, k, n),
        );
        sgemm(
            1.0,
            MatRef::row_major(y, 0, m, n),
            MatRef::row_major(cols, 0, k, n).t(),
            1.0,
            MatMut::row_major(dw, 0, m, k),
        );
    }
}

#[derive(Clone)]
struct RawBuffers {
    w: Vec<f32>,
    cols: Vec<f32>,
    y: Vec<f32>,
    dcols: Vec<f32>,
    dw: Vec<f32>,
}

fn conv(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut group = c.benchmark_group(format!("conv_fwd_bwd_{threads}t"));
        group.sample_size(10);
        for (name, xs, ws, spec) in shapes() {
            let geo = ConvGeometry::new(name, &xs, &ws, spec);
            group.throughput(Throughput::Elements(3 * 2 * geo.muladds() as u64));
            let x = Tensor::normal(&xs, 0.0, 1.0, &mut rng);
            let w = Tensor::normal(&ws, 0.0, 0.1, &mut rng);
            let dy = Tensor::normal(&geo.output_shape(), 0.0, 1.0, &mut rng);
            group.bench_function(BenchmarkId::new("agdlab", name), |b| {
                b.iter(|| {
                    pool.install(|| {
                        let y = x.conv2d(&w, None, spec);
                        let mut dx = Tensor::zeros(&xs);
                        conv2d_input_grad(&dy, &w, spec, &mut dx);
                        let mut dw = Tensor::zeros(&ws);
                        conv2d_weight_grad(&dy, &x, spec, &mut dw);
                        (y, dx, dw)
                    })
                })
            });
            let (m, k, n) = geo.gemm_sizes();
            let bufs = RawBuffers {
                w: vec![0.5; m * k],
                cols: vec![0.25; k * n],
                y: vec![0.0; m * n],
                dcols: vec![0.0; k * n],
                dw: vec![0.0; m * k],
            };
            group.bench_function(BenchmarkId::new("raw_sgemm", name), |b| {
                b.iter(|| {
                    pool.install(|| {
                        (0..BATCH)
                            .into_par_iter()
                            .for_each_init(|| bufs.clone(), |bufs, _| raw_products(&geo, bufs))
                    })
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, conv);
criterion_main!(benches);
