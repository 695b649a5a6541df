//! Element-wise ops, reductions and softmax against plain slice loops.
//!
//! Each group pairs a `Tensor` op with the loop a person would write by hand over
//! `Vec<f32>` (allocating its output too), so the ratio is the framework's overhead.
//! Runs with `RAYON_NUM_THREADS` rayon threads (default 1).
//!
//! `cargo bench --bench elementwise -- --warm-up-time 1 --measurement-time 3`

#[path = "common/pool.rs"]
mod pool;

use agdlab_tensor::Tensor;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Size rayon's global pool: `RAYON_NUM_THREADS` threads, 1 when unset, the bench's
/// thread among them (see `common/pool.rs`). With one thread the ops take the serial
/// path.
fn single_threaded_by_default() {
    pool::use_this_thread_in_the_pool(Some(1));
}

const N: usize = 1 << 20;

fn unary_and_binary(c: &mut Criterion) {
    single_threaded_by_default();
    let mut rng = StdRng::seed_from_u64(0);
    let a = Tensor::uniform(&[N], -1.0, 1.0, &mut rng);
    let b = Tensor::uniform(&[N], -1.0, 1.0, &mut rng);
    let (av, bv) = (a.to_vec(), b.to_vec());

    let mut group = c.benchmark_group("add_1M");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("slice_loop", |bench| {
        bench.iter(|| av.iter().zip(&bv).map(|(x, y)| x + y).collect::<Vec<f32>>())
    });
    group.bench_function("Tensor::add", |bench| bench.iter(|| a.add(&b)));
    group.finish();

    let mut group = c.benchmark_group("relu_1M");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("slice_loop", |bench| {
        bench.iter(|| av.iter().map(|x| x.max(0.0)).collect::<Vec<f32>>())
    });
    group.bench_function("Tensor::relu", |bench| bench.iter(|| a.relu()));
    group.finish();

    let mut group = c.benchmark_group("exp_1M");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("slice_loop", |bench| {
        bench.iter(|| av.iter().map(|x| x.exp()).collect::<Vec<f32>>())
    });
    group.bench_function("Tensor::exp", |bench| bench.iter(|| a.exp()));
    group.finish();

    // Linear layer bias: [128, 512] + [512] broadcast.
    let x = Tensor::uniform(&[128, 512], -1.0, 1.0, &mut rng);
    let bias = Tensor::uniform(&[512], -1.0, 1.0, &mut rng);
    let (xv, biasv) = (x.to_vec(), bias.to_vec());
    let mut group = c.benchmark_group("bias_add_128x512");
    group.throughput(Throughput::Elements(128 * 512));
    group.bench_function("slice_loop", |bench| {
        bench.iter(|| {
            let mut out = Vec::with_capacity(xv.len());
            for row in xv.chunks_exact(512) {
                out.extend(row.iter().zip(&biasv).map(|(x, b)| x + b));
            }
            out
        })
    });
    group.bench_function("Tensor::add", |bench| bench.iter(|| x.add(&bias)));
    group.finish();
}

fn reductions(c: &mut Criterion) {
    single_threaded_by_default();
    let mut rng = StdRng::seed_from_u64(1);
    let x = Tensor::uniform(&[128, 512], -1.0, 1.0, &mut rng);
    let xv = x.to_vec();
    let mut group = c.benchmark_group("sum_axis0_128x512");
    group.throughput(Throughput::Elements(128 * 512));
    group.bench_function("slice_loop", |bench| {
        bench.iter(|| {
            let mut out = vec![0.0f32; 512];
            for row in xv.chunks_exact(512) {
                out.iter_mut().zip(row).for_each(|(o, &v)| *o += v);
            }
            out
        })
    });
    group.bench_function("Tensor::sum_dims", |bench| {
        bench.iter(|| x.sum_dims(&[0], false))
    });
    group.bench_function("Tensor::sum_to", |bench| bench.iter(|| x.sum_to(&[512])));
    group.finish();

    let a = Tensor::uniform(&[N], -1.0, 1.0, &mut rng);
    let av = a.to_vec();
    let mut group = c.benchmark_group("sum_all_1M");
    group.throughput(Throughput::Elements(N as u64));
    // A plain f32 `.sum()` is a serial dependency chain (and less accurate); the
    // 8-lane loop is what a hand-vectorised version looks like.
    group.bench_function("slice_iter_sum", |bench| {
        bench.iter(|| black_box(&av).iter().sum::<f32>())
    });
    group.bench_function("slice_8_lanes", |bench| {
        bench.iter(|| {
            let mut lanes = [0.0f32; 8];
            for c in black_box(&av).chunks_exact(8) {
                lanes.iter_mut().zip(c).for_each(|(l, &v)| *l += v);
            }
            lanes.iter().sum::<f32>()
        })
    });
    group.bench_function("Tensor::sum_all", |bench| bench.iter(|| a.sum_all()));
    group.finish();
}

fn softmax(c: &mut Criterion) {
    single_threaded_by_default();
    let mut rng = StdRng::seed_from_u64(2);
    for cols in [10, 1000] {
        let x = Tensor::uniform(&[128, cols], -5.0, 5.0, &mut rng);
        let xv = x.to_vec();
        let mut group = c.benchmark_group(format!("softmax_128x{cols}"));
        group.throughput(Throughput::Elements(128 * cols as u64));
        group.bench_function("slice_loop", |bench| {
            bench.iter(|| {
                let mut out = vec![0.0f32; xv.len()];
                for (o, row) in out.chunks_exact_mut(cols).zip(xv.chunks_exact(cols)) {
                    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut s = 0.0;
                    for (o, &v) in o.iter_mut().zip(row) {
                        *o = (v - m).exp();
                        s += *o;
                    }
                    o.iter_mut().for_each(|o| *o /= s);
                }
                out
            })
        });
        group.bench_function("Tensor::softmax", |bench| bench.iter(|| x.softmax(1)));
        group.bench_function("Tensor::log_softmax", |bench| {
            bench.iter(|| x.log_softmax(1))
        });
        group.finish();
    }
}

criterion_group!(benches, unary_and_binary, reductions, softmax);
criterion_main!(benches);
