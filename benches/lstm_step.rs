//! One training step of the `ptb_lstm` example's model (the example's own code: a
//! 10,000-word vocabulary, embedding 200, 2 x 200 LSTM, decoder; dropout 0.2) at batch
//! 20 and 35 steps, split into its parts: forward on a tape, forward + backward, and the
//! whole step (+ clipping to norm 0.25 and an optimizer step), as `fit` runs it, with
//! each optimizer (`whole_step_clip_agd` (δ 1e-5), `..._sgd`, `..._adam`, `..._adamw`,
//! `..._adabelief`, `..._radam`, at the example's learning rates).
//!
//! `gemm_only` runs just the matrix products of one step, with the same shapes and
//! operand layouts (through `matmul_into`, as the ops do), so `gemm_only / whole_step`
//! is the share of the step spent in `sgemm`.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench lstm_step
//! ```
//!
//! `benches/pytorch_lstm.py` times the same step in PyTorch and agdlab, alternating.

#[path = "common/pool.rs"]
mod pool;

#[path = "common/optimizers.rs"]
mod optimizers;
#[allow(dead_code)]
#[path = "../examples/ptb_lstm.rs"]
mod ptb_lstm;

use agdlab::autograd::Tape;
use agdlab::nn::{cross_entropy, Module};
use agdlab::optim::clip_grad_norm;
use agdlab::tensor::matmul::matmul_into;
use agdlab::tensor::Tensor;
use criterion::{criterion_group, criterion_main, Criterion};
use optimizers::step_optimizers;
use ptb_lstm::LanguageModel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const VOCAB: usize = 10_000;
const SIZE: usize = 200;
const LAYERS: usize = 2;
const BATCH: usize = 20;
const SEQ: usize = 35;

/// The matrix products of one training step of the model above, with its layouts.
struct Products {
    x: Tensor,        // [seq·batch, 200]: an LSTM layer's input, or the decoder's
    w_ih: Tensor,     // [800, 200]
    w_hh: Tensor,     // [800, 200]
    h: Tensor,        // [batch, 200]
    decoder: Tensor,  // [10000, 200]
    d_logits: Tensor, // [seq·batch, 10000]
    d_gates: Tensor,  // [seq·batch, 800]
}

impl Products {
    fn new(rng: &mut StdRng) -> Products {
        let n = |shape: &[usize], rng: &mut StdRng| Tensor::normal(shape, 0.0, 0.1, rng);
        Products {
            x: n(&[SEQ * BATCH, SIZE], rng),
            w_ih: n(&[4 * SIZE, SIZE], rng),
            w_hh: n(&[4 * SIZE, SIZE], rng),
            h: n(&[BATCH, SIZE], rng),
            decoder: n(&[VOCAB, SIZE], rng),
            d_logits: n(&[SEQ * BATCH, VOCAB], rng),
            d_gates: n(&[SEQ * BATCH, 4 * SIZE], rng),
        }
    }

    fn run(&self) {
        let p = self;
        let rows = SEQ * BATCH;
        let gemm = |a: &Tensor, b: &Tensor, out: &[usize], beta: f32| {
            let mut c = Tensor::zeros(out);
            matmul_into(a, b, &mut c, 1.0, beta);
            c
        };
        let mut d_w_hh = Tensor::zeros(&[4 * SIZE, SIZE]);
        for _ in 0..LAYERS {
            // forward: input projection, then one recurrent product per step
            gemm(&p.x, &p.w_ih.t(), &[rows, 4 * SIZE], 1.0);
            for _ in 0..SEQ {
                gemm(&p.h, &p.w_hh.t(), &[BATCH, 4 * SIZE], 1.0);
            }
            // backward: per step dh = dG·W_hh and dW_hh += dGᵀ·h; then the projection's
            let d_g = p.d_gates.narrow(0, 0, BATCH);
            for _ in 0..SEQ {
                gemm(&d_g, &p.w_hh, &[BATCH, SIZE], 0.0);
                matmul_into(&d_g.t(), &p.h, &mut d_w_hh, 1.0, 1.0);
            }
            gemm(&p.d_gates, &p.w_ih, &[rows, SIZE], 0.0);
            gemm(&p.d_gates.t(), &p.x, &[4 * SIZE, SIZE], 0.0);
        }
        // the decoder: forward, then dX and dW
        gemm(&p.x, &p.decoder.t(), &[rows, VOCAB], 1.0);
        gemm(&p.d_logits, &p.decoder, &[rows, SIZE], 0.0);
        gemm(&p.d_logits.t(), &p.x, &[VOCAB, SIZE], 0.0);
    }
}

fn lstm_step(c: &mut Criterion) {
    // RAYON_NUM_THREADS threads (all cores when unset), this one among them.
    pool::use_this_thread_in_the_pool(None);
    // As the training loop does (`fit`): steps reuse freed pages instead of faulting in new ones.
    agdlab::tensor::memory::keep_freed_memory();
    let model = LanguageModel::new(VOCAB, SIZE, SIZE, LAYERS, 0.2, 0);
    let mut rng = StdRng::seed_from_u64(1);
    let ids: Vec<usize> = (0..SEQ * BATCH)
        .map(|_| rng.random_range(0..VOCAB))
        .collect();
    let targets: Vec<usize> = (0..SEQ * BATCH)
        .map(|_| rng.random_range(0..VOCAB))
        .collect();
    let params = model.named_parameters();

    let mut group = c.benchmark_group("lstm_lm_step_2x200_batch20_seq35");
    group.sample_size(20);
    group.bench_function("forward_on_tape", |b| {
        b.iter(|| {
            let tape = Tape::new();
            cross_entropy(&model.forward(&tape, &ids, SEQ, None).0, &targets)
        })
    });
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            let tape = Tape::new();
            cross_entropy(&model.forward(&tape, &ids, SEQ, None).0, &targets).backward()
        })
    });
    for (kind, mut opt) in step_optimizers(&params, ptb_lstm::default_lr, 1e-5, 0.0) {
        group.bench_function(format!("whole_step_clip_{kind}"), |b| {
            b.iter(|| {
                let tape = Tape::new();
                let mut grads =
                    cross_entropy(&model.forward(&tape, &ids, SEQ, None).0, &targets).backward();
                clip_grad_norm(&mut grads, &params, 0.25);
                opt.step(&grads).unwrap();
            })
        });
    }
    let products = Products::new(&mut rng);
    group.bench_function("gemm_only", |b| b.iter(|| products.run()));
    group.finish();
}

criterion_group!(benches, lstm_step);
criterion_main!(benches);
