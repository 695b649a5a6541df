//! One optimizer step on one large tensor (10M parameters by default), timed plainly so
//! that `benches/pytorch_optim.py` can set it against PyTorch's fused Adam in the same
//! run. Also a plain copy of the same number of bytes, the floor of a memory-bound pass.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo bench --bench optimizer_step -- --numel 10000000 --reps 30
//! ```
//!
//! Prints one line per optimizer: `name numel threads median_ms min_ms gb_per_s`, where
//! the bandwidth counts the bytes the update must move (AGD, Adam, AdaBelief and RAdam:
//! read θ, g, m, v and write θ, m, v: 28 bytes per parameter; SGD with momentum: 20; the
//! copy: 28).

#[path = "common/pool.rs"]
mod pool;

use std::time::Instant;

use agdlab::autograd::{Gradients, Param};
use agdlab::optim::{
    AdaBelief, AdaBeliefConfig, Adam, AdamConfig, Agd, AgdConfig, Optimizer, RAdam, RAdamConfig,
    Sgd, SgdConfig,
};
use agdlab::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn report(name: &str, numel: usize, bytes_per_param: usize, times: &mut [f64]) {
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let gbps = (numel * bytes_per_param) as f64 / median / 1e9;
    println!(
        "{name} {numel} {} {:.3} {:.3} {gbps:.1}",
        rayon::current_num_threads(),
        median * 1e3,
        times[0] * 1e3
    );
}

fn time(reps: usize, mut f: impl FnMut()) -> Vec<f64> {
    f(); // warm up: first-step state allocation
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let numel = flag(&args, "--numel", 10_000_000);
    let reps = flag(&args, "--reps", 30);
    pool::use_this_thread_in_the_pool(Some(1));

    let mut rng = StdRng::seed_from_u64(0);
    let param = Param::new(Tensor::normal(&[numel], 0.0, 0.05, &mut rng));
    let mut grads = Gradients::new();
    grads.insert(&param, Tensor::normal(&[numel], 0.0, 1e-3, &mut rng));
    let params = vec![("w".to_string(), param)];

    let optimizers: Vec<(&str, usize, Box<dyn Optimizer>)> = vec![
        (
            "agd",
            28,
            Box::new(Agd::new(params.clone(), AgdConfig::default()).unwrap()),
        ),
        (
            "adam",
            28,
            Box::new(Adam::new(params.clone(), AdamConfig::default()).unwrap()),
        ),
        (
            "adabelief",
            28,
            Box::new(AdaBelief::new(params.clone(), AdaBeliefConfig::default()).unwrap()),
        ),
        (
            "radam",
            28,
            Box::new(RAdam::new(params.clone(), RAdamConfig::default()).unwrap()),
        ),
        (
            "sgd_momentum",
            20,
            Box::new(
                Sgd::new(
                    params.clone(),
                    SgdConfig {
                        lr: 0.01,
                        momentum: 0.9,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
        ),
    ];
    for (name, bytes, mut optimizer) in optimizers {
        let mut times = time(reps, || optimizer.step(&grads).unwrap());
        report(name, numel, bytes, &mut times);
    }

    // The floor: copy 28 bytes per parameter (read 16, write 12 would be Adam's mix; a
    // copy of 14 bytes each way moves the same total).
    let source = vec![1.0f32; numel * 7 / 2];
    let mut target = vec![0.0f32; numel * 7 / 2];
    let mut times = time(reps, || {
        use rayon::prelude::*;
        target
            .par_chunks_mut(1 << 16)
            .zip(source.par_chunks(1 << 16))
            .for_each(|(t, s)| t.copy_from_slice(s));
    });
    report("copy", numel, 28, &mut times);
}
