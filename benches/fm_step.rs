//! One training step of a factorization machine, split into forward, backward and
//! optimizer step.
//!
//! - `fm_step_criteo`: batch 1024, 39 fields, a 2^20-row table of dimension 16 (with the
//!   linear weights, 2^20·17 + 1 = 17.8M parameters), examples from the synthetic
//!   Criteo-shaped generator hashed into the table. The optimizer step (AGD, Adam, SGD
//!   with momentum) runs alone on one batch's row-sparse gradients, in the default dense
//!   mode (every row moves) and in the lazy mode (only the touched rows); its throughput
//!   is the bytes a dense step must move (AGD and Adam read θ, g, m, v and write θ, m,
//!   v: 28 bytes per parameter; SGD with momentum 20), set against `copy`, a plain
//!   parallel copy of 28 bytes per parameter.
//! - `fm_step_movielens`: the step the `fm_ctr` example repeats 79 times per MovieLens
//!   epoch (batch 1024, 5 fields, 2,655 rows, dimension 16).
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo bench --bench fm_step
//! ```
//!
//! forward = `forward`; backward = `forward_backward` - `forward`; optimizer =
//! `optimizer/<name>`; `full/<name>` is the three together.

#[path = "common/pool.rs"]
mod pool;

use agdlab::autograd::{Gradients, Tape};
use agdlab::data::synthetic_ctr::{SyntheticCtr, SyntheticCtrConfig};
use agdlab::data::CtrBatch;
use agdlab::nn::{bce_with_logits, FactorizationMachine, FmConfig, Module};
use agdlab::optim::{
    Adam, AdamConfig, Agd, AgdConfig, Optimizer, ParamGroup, Sgd, SgdConfig, SparseMode,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

const BATCH: usize = 1024;

/// Builds an optimizer over one parameter group.
type Build = fn(ParamGroup) -> Box<dyn Optimizer>;

const OPTIMIZERS: [(&str, usize, Build); 3] = [
    ("agd", 28, |g| {
        Box::new(
            Agd::with_groups(
                vec![g],
                AgdConfig {
                    lr: 1e-4,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    }),
    ("adam", 28, |g| {
        Box::new(Adam::with_groups(vec![g], AdamConfig::default()).unwrap())
    }),
    ("sgd", 20, |g| {
        Box::new(
            Sgd::with_groups(
                vec![g],
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

/// A model and one batch of `cardinalities`-shaped synthetic examples.
fn setup(cardinalities: Vec<usize>, table_size: Option<usize>) -> (FactorizationMachine, CtrBatch) {
    let config = SyntheticCtrConfig {
        train_examples: BATCH,
        test_examples: 0,
        cardinalities,
        table_size,
        ..SyntheticCtrConfig::default()
    };
    let data = SyntheticCtr::generate(&config).data;
    let fm = FmConfig::new(data.table_size, data.field_names.len(), 16);
    let model = FactorizationMachine::new(&fm, &mut StdRng::seed_from_u64(0));
    let batch = data.train.batch(&(0..BATCH).collect::<Vec<_>>());
    (model, batch)
}

fn loss_on(tape: &Tape, model: &FactorizationMachine, batch: &CtrBatch) -> agdlab::autograd::Var {
    bce_with_logits(
        &model.forward(tape, &batch.ids, batch.values.as_ref()),
        &batch.labels,
    )
}

fn gradients(model: &FactorizationMachine, batch: &CtrBatch) -> Gradients {
    loss_on(&Tape::new(), model, batch).backward()
}

fn bench_shape(
    c: &mut Criterion,
    group_name: &str,
    cardinalities: Vec<usize>,
    table_size: Option<usize>,
    split: bool,
) {
    let (model, batch) = setup(cardinalities, table_size);
    let numel = model.num_parameters();
    let mut group = c.benchmark_group(group_name);
    group.sample_size(20);
    group.bench_function("forward", |b| {
        b.iter(|| loss_on(&Tape::new(), &model, &batch))
    });
    group.bench_function("forward_backward", |b| b.iter(|| gradients(&model, &batch)));
    for (name, bytes, build) in OPTIMIZERS {
        let mut optimizer = build(ParamGroup::new(model.named_parameters()));
        group.bench_function(BenchmarkId::new("full", name), |b| {
            b.iter(|| optimizer.step(&gradients(&model, &batch)).unwrap())
        });
        if !split {
            continue;
        }
        let grads = gradients(&model, &batch);
        group.throughput(Throughput::Bytes((numel * bytes) as u64));
        group.bench_function(BenchmarkId::new("optimizer", name), |b| {
            b.iter(|| optimizer.step(&grads).unwrap())
        });
        let mut lazy = build(ParamGroup::new(model.named_parameters()).sparse(SparseMode::Lazy));
        group.bench_function(BenchmarkId::new("optimizer", format!("{name}_lazy")), |b| {
            b.iter(|| lazy.step(&grads).unwrap())
        });
        group.throughput(Throughput::Elements(BATCH as u64));
    }
    if split {
        // The floor of a memory-bound pass: copy 28 bytes per parameter (14 read, 14 written).
        let source = vec![1.0f32; numel * 7 / 2];
        let mut target = vec![0.0f32; numel * 7 / 2];
        group.throughput(Throughput::Bytes((numel * 28) as u64));
        group.bench_function("copy", |b| {
            b.iter(|| {
                target
                    .par_chunks_mut(1 << 16)
                    .zip(source.par_chunks(1 << 16))
                    .for_each(|(t, s)| t.copy_from_slice(s))
            })
        });
    }
    group.finish();
}

fn fm_step(c: &mut Criterion) {
    pool::use_this_thread_in_the_pool(Some(1));
    let criteo = agdlab::data::synthetic_ctr::criteo_shaped_cardinalities();
    bench_shape(c, "fm_step_criteo", criteo, Some(1 << 20), true);
    bench_shape(
        c,
        "fm_step_movielens",
        vec![943, 1682, 7, 2, 21],
        None,
        false,
    );
}

criterion_group!(benches, fm_step);
criterion_main!(benches);
