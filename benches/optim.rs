//! One optimizer step over the parameters of the MNIST MLP (784-512-256-10, 535,818
//! scalars), against the floor of a single fused pass: a plain slice loop that reads the
//! gradient and two state buffers and writes the parameter and both buffers (what an
//! Adam-style update must touch at least).
//!
//! `RAYON_NUM_THREADS=1 cargo bench --bench optim`

#[path = "common/pool.rs"]
mod pool;

use agdlab::autograd::{Gradients, Param};
use agdlab::optim::{Adam, AdamConfig, Agd, AgdConfig, Optimizer, Sgd, SgdConfig};
use agdlab::tensor::Tensor;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Makes an optimizer over the given parameters.
type BuildOptimizer = fn(Vec<(String, Param)>) -> Box<dyn Optimizer>;

const SHAPES: [&[usize]; 6] = [&[512, 784], &[512], &[256, 512], &[256], &[10, 256], &[10]];

fn mlp_params_and_grads() -> (Vec<(String, Param)>, Gradients) {
    let mut rng = StdRng::seed_from_u64(0);
    let mut grads = Gradients::new();
    let params: Vec<(String, Param)> = SHAPES
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let p = Param::new(Tensor::normal(shape, 0.0, 0.05, &mut rng));
            grads.insert(&p, Tensor::normal(shape, 0.0, 1e-3, &mut rng));
            (format!("p{i}"), p)
        })
        .collect();
    (params, grads)
}

fn optimizer_step(c: &mut Criterion) {
    // RAYON_NUM_THREADS threads (all cores when unset), this one among them.
    pool::use_this_thread_in_the_pool(None);
    let numel: usize = SHAPES.iter().map(|s| s.iter().product::<usize>()).sum();
    let mut group = c.benchmark_group("optimizer_step_mlp");
    group.throughput(Throughput::Elements(numel as u64));
    let builders: [(&str, BuildOptimizer); 5] = [
        ("agd", |p| {
            Box::new(Agd::new(p, AgdConfig::default()).unwrap())
        }),
        ("agd_amsgrad_win", |p| {
            Box::new(
                Agd::new(
                    p,
                    AgdConfig {
                        amsgrad: true,
                        win: true,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
        ("adam", |p| {
            Box::new(Adam::new(p, AdamConfig::default()).unwrap())
        }),
        ("adamw", |p| {
            Box::new(Adam::new(p, AdamConfig::adamw()).unwrap())
        }),
        ("sgd_momentum", |p| {
            Box::new(
                Sgd::new(
                    p,
                    SgdConfig {
                        lr: 0.1,
                        momentum: 0.9,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
    ];
    for (name, build) in builders {
        let (params, grads) = mlp_params_and_grads();
        let mut opt = build(params);
        group.bench_function(BenchmarkId::new("step", name), |b| {
            b.iter(|| opt.step(&grads).unwrap())
        });
    }
    // The floor: one pass reading g, m, v and writing θ, m, v.
    let mut theta = vec![0.1f32; numel];
    let (mut m, mut v) = (vec![0.0f32; numel], vec![0.0f32; numel]);
    let g = vec![1e-3f32; numel];
    group.bench_function(BenchmarkId::new("step", "slice_loop_floor"), |b| {
        b.iter(|| {
            for (((t, &g), m), v) in theta.iter_mut().zip(&g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = 0.9 * *m + 0.1 * g;
                *v = 0.999 * *v + 0.001 * g * g;
                *t -= 1e-3 * *m / (v.sqrt() + 1e-8);
            }
            std::hint::black_box(&theta);
        })
    });
    group.finish();
}

criterion_group!(benches, optimizer_step);
criterion_main!(benches);
