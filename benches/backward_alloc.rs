//! Bytes allocated by one backward pass of a 35-step recurrence (an LSTM cell built from
//! primitive ops: two matmuls, four gate slices, sigmoid/tanh, products), hidden 200,
//! batch 20, as in the PTB language model.
//!
//! A counting global allocator measures what `backward` allocates, in total and at its
//! peak, next to the size of one full weight gradient; criterion then times the pass.
//!
//! `cargo bench --bench backward_alloc`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use agdlab_autograd::{Param, Tape, Var};
use agdlab_tensor::Tensor;
use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;

struct Counting;
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn note_alloc(size: usize) {
    ALLOCATED.fetch_add(size, Ordering::Relaxed);
    COUNT.fetch_add(1, Ordering::Relaxed);
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// only statistics and never affect what is returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        note_alloc(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
        let gates = tape.input(x.clone()).matmul(&w_ih_t).add(&h.matmul(&w_hh_t)).add(&bias);
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
    let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
    let mut rng = StdRng::seed_from_u64(0);
    let cell = Cell {
        w_ih: Param::new(Tensor::normal(&[4 * HIDDEN, HIDDEN], 0.0, 0.07, &mut rng)),
        w_hh: Param::new(Tensor::normal(&[4 * HIDDEN, HIDDEN], 0.0, 0.07, &mut rng)),
        bias: Param::new(Tensor::zeros(&[4 * HIDDEN])),
    };
    let xs: Vec<Tensor> = (0..STEPS).map(|_| Tensor::normal(&[BATCH, HIDDEN], 0.0, 1.0, &mut rng)).collect();

    let tape = Tape::new();
    let loss = unroll(&cell, &tape, &xs);
    let (allocated0, count0) = (ALLOCATED.load(Ordering::Relaxed), COUNT.load(Ordering::Relaxed));
    let live0 = LIVE.load(Ordering::Relaxed);
    PEAK.store(live0, Ordering::Relaxed);
    let grads = loss.backward();
    let allocated = ALLOCATED.load(Ordering::Relaxed) - allocated0;
    let count = COUNT.load(Ordering::Relaxed) - count0;
    let peak = PEAK.load(Ordering::Relaxed) - live0;
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
