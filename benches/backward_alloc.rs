//! Bytes allocated by one backward pass of a 35-step recurrence (an LSTM cell built from
//! primitive ops: two matmuls, four gate slices, sigmoid/tanh, products), hidden 200,
//! batch 20, as in the PTB language model.
//!
//! A counting global allocator measures what `backward` allocates, in total and at its
//! peak, next to the size of one full weight gradient; criterion then times the pass.
//!
//! `cargo bench --bench backward_alloc`

use agdlab_autograd::{Param, Tape, Var};
use agdlab_tensor::alloc_count::{measure, CountingAllocator};
use agdlab_tensor::Tensor;
use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const STEPS: usize = 35;
const BATCH: usize = 20;
const HIDDEN: usize = 200;

struct Cell {
    w_ih: Param,
    w_hh: Param,
    bias: Param,
}

/// Forward through `STEPS` steps; returns the loss (sum of the last hidden state).
fn unroll(cell: &Cell, tape: &Tape, xs: &[Tensor]) -> Var {
    // Transposed once, outside the loop: every step's product then meets the same node.
    let w_ih_t = tape.param(&cell.w_ih).t();
    let w_hh_t = tape.param(&cell.w_hh).t();
    let bias = tape.param(&cell.bias);
    let mut h = tape.input(Tensor::zeros(&[BATCH, HIDDEN]));
    let mut c = tape.input(Tensor::zeros(&[BATCH, HIDDEN]));
    for x in xs {
        let gates = tape
            .input(x.clone())
            .matmul(&w_ih_t)
            .add(&h.matmul(&w_hh_t))
            .add(&bias);
        let i = gates.narrow(1, 0, HIDDEN).sigmoid();
        let f = gates.narrow(1, HIDDEN, HIDDEN).sigmoid();
        let g = gates.narrow(1, 2 * HIDDEN, HIDDEN).tanh();
        let o = gates.narrow(1, 3 * HIDDEN, HIDDEN).sigmoid();
        c = f.mul(&c).add(&i.mul(&g));
        h = o.mul(&c.tanh());
    }
    h.sum_all()
}

fn backward_allocation(c: &mut Criterion) {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    let mut rng = StdRng::seed_from_u64(0);
    let cell = Cell {
        w_ih: Param::new(Tensor::normal(&[4 * HIDDEN, HIDDEN], 0.0, 0.07, &mut rng)),
        w_hh: Param::new(Tensor::normal(&[4 * HIDDEN, HIDDEN], 0.0, 0.07, &mut rng)),
        bias: Param::new(Tensor::zeros(&[4 * HIDDEN])),
    };
    let xs: Vec<Tensor> = (0..STEPS)
        .map(|_| Tensor::normal(&[BATCH, HIDDEN], 0.0, 1.0, &mut rng))
        .collect();

    let tape = Tape::new();
    let loss = unroll(&cell, &tape, &xs);
    let (grads, stats) = measure(|| loss.backward());
    let (allocated, count, peak) = (stats.allocated, stats.allocations, stats.peak);
    assert!(grads.get(&cell.w_hh).is_some());
    let weight_grad = 4 * HIDDEN * HIDDEN * 4;
    println!(
        "backward of a {STEPS}-step LSTM recurrence (hidden {HIDDEN}, batch {BATCH}): \
         {:.1} MB allocated in {count} allocations, peak {:.1} MB above the forward; \
         one weight gradient is {:.2} MB, so {:.1} weight-gradients' worth in all",
        allocated as f64 / 1e6,
        peak as f64 / 1e6,
        weight_grad as f64 / 1e6,
        allocated as f64 / weight_grad as f64
    );

    c.bench_function("lstm35_backward", |bench| {
        bench.iter_batched(
            || {
                let tape = Tape::new();
                let loss = unroll(&cell, &tape, &xs);
                (tape, loss)
            },
            |(_tape, loss)| loss.backward(),
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, backward_allocation);
criterion_main!(benches);
