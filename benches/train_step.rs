//! One training step of the MNIST MLP (784-512-256-10, batch 128), split into its parts:
//! forward only (no tape), forward on a tape, forward + backward, and the whole step with
//! AGD. The whole step is what an epoch repeats 469 times.
//!
//! `RAYON_NUM_THREADS=1 cargo bench --bench train_step`

#[path = "common/pool.rs"]
mod pool;

use agdlab::autograd::Tape;
use agdlab::nn::{cross_entropy, Forward, Linear, Module, ReLU, Sequential};
use agdlab::optim::{Agd, AgdConfig, Optimizer};
use agdlab::tensor::Tensor;
use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn mlp(rng: &mut StdRng) -> Sequential {
    Sequential::new()
        .append(Linear::new(784, 512, true, rng))
        .append(ReLU)
        .append(Linear::new(512, 256, true, rng))
        .append(ReLU)
        .append(Linear::new(256, 10, true, rng))
}

fn train_step(c: &mut Criterion) {
    // RAYON_NUM_THREADS threads (all cores when unset), this one among them.
    pool::use_this_thread_in_the_pool(None);
    // As the training loop does (`fit`): steps reuse freed pages instead of faulting in new ones.
    agdlab::tensor::memory::keep_freed_memory();
    let mut rng = StdRng::seed_from_u64(0);
    let model = mlp(&mut rng);
    let x = Tensor::normal(&[128, 784], 0.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..128).map(|i| i % 10).collect();
    let mut opt = Agd::new(
        model.named_parameters(),
        AgdConfig {
            lr: 1e-4,
            ..Default::default()
        },
    )
    .unwrap();

    let mut group = c.benchmark_group("mlp_step_batch128");
    group.bench_function("forward_no_tape", |b| {
        b.iter(|| model.forward(&Tape::no_grad().input(x.clone())))
    });
    group.bench_function("forward_on_tape", |b| {
        b.iter(|| {
            let tape = Tape::new();
            cross_entropy(&model.forward(&tape.input(x.clone())), &labels)
        })
    });
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            let tape = Tape::new();
            cross_entropy(&model.forward(&tape.input(x.clone())), &labels).backward()
        })
    });
    group.bench_function("forward_backward_agd_step", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let grads = cross_entropy(&model.forward(&tape.input(x.clone())), &labels).backward();
            opt.step(&grads).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
