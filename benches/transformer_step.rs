//! One training step of the `ptb_transformer` example's model (the example's own code:
//! a 10,000-word vocabulary, 2 pre-LN blocks of width 128 with 4 heads, feed-forward 512,
//! dropout 0.1, an untied head) at batch 20 and windows of 35 tokens, split into its
//! parts: forward on a tape, forward + backward, and the whole step (+ clipping to norm
//! 1.0 and an optimizer step), as `fit` runs it, with each optimizer (`whole_step_clip_agd`
//! (δ 1e-14), `..._sgd`, `..._adam`, `..._adamw`, `..._adabelief`, `..._radam`, at the
//! learning rates of the example and of `agdlab::study::recipes`; SGD with momentum 0.9;
//! each optimizer's own weight decay, as `benches/pytorch_transformer.py` builds PyTorch's).
//!
//! `head_only` runs the vocabulary head's three products alone (forward, dX, dW through
//! `matmul_into`, as the ops do), so `head_only / whole_step` is its share of the step.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench transformer_step
//! ```
//!
//! `benches/pytorch_transformer.py` times the same step in PyTorch and agdlab, alternating.

#[path = "common/pool.rs"]
mod pool;

#[path = "common/optimizers.rs"]
mod optimizers;
#[allow(dead_code)]
#[path = "../examples/ptb_transformer.rs"]
mod ptb_transformer;

use agdlab::autograd::Tape;
use agdlab::nn::{cross_entropy, Module};
use agdlab::optim::clip_grad_norm;
use agdlab::tensor::matmul::matmul_into;
use agdlab::tensor::Tensor;
use criterion::{criterion_group, criterion_main, Criterion};
use optimizers::step_optimizers;
use ptb_transformer::TransformerLm;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const VOCAB: usize = 10_000;
const DIM: usize = 128;
const HEADS: usize = 4;
const LAYERS: usize = 2;
const BATCH: usize = 20;
const SEQ: usize = 35;

fn transformer_step(c: &mut Criterion) {
    // RAYON_NUM_THREADS threads (all cores when unset), this one among them.
    pool::use_this_thread_in_the_pool(None);
    // As the training loop does (`fit`): steps reuse freed pages instead of faulting in new ones.
    agdlab::tensor::memory::keep_freed_memory();
    let model = TransformerLm::new(VOCAB, DIM, HEADS, LAYERS, SEQ, 0.1, 0.02, 0);
    let mut rng = StdRng::seed_from_u64(1);
    let ids: Vec<usize> = (0..SEQ * BATCH)
        .map(|_| rng.random_range(0..VOCAB))
        .collect();
    let targets: Vec<usize> = (0..SEQ * BATCH)
        .map(|_| rng.random_range(0..VOCAB))
        .collect();
    let params = model.named_parameters();

    let mut group = c.benchmark_group("transformer_lm_step_2x128_batch20_seq35");
    group.sample_size(20);
    group.bench_function("forward_on_tape", |b| {
        b.iter(|| {
            let tape = Tape::new();
            cross_entropy(&model.forward(&tape, &ids, BATCH), &targets)
        })
    });
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            let tape = Tape::new();
            cross_entropy(&model.forward(&tape, &ids, BATCH), &targets).backward()
        })
    });
    for (kind, mut opt) in step_optimizers(&params, ptb_transformer::default_lr, 1e-14, 0.9) {
        group.bench_function(format!("whole_step_clip_{kind}"), |b| {
            b.iter(|| {
                let tape = Tape::new();
                let mut grads =
                    cross_entropy(&model.forward(&tape, &ids, BATCH), &targets).backward();
                clip_grad_norm(&mut grads, &params, 1.0);
                opt.step(&grads).unwrap();
            })
        });
    }
    let n = |shape: &[usize], rng: &mut StdRng| Tensor::normal(shape, 0.0, 0.1, rng);
    let (x, head, d_logits) = (
        n(&[SEQ * BATCH, DIM], &mut rng),
        n(&[VOCAB, DIM], &mut rng),
        n(&[SEQ * BATCH, VOCAB], &mut rng),
    );
    group.bench_function("head_only", |b| {
        b.iter(|| {
            let mut logits = Tensor::zeros(&[SEQ * BATCH, VOCAB]);
            matmul_into(&x, &head.t(), &mut logits, 1.0, 0.0);
            let mut d_x = Tensor::zeros(&[SEQ * BATCH, DIM]);
            matmul_into(&d_logits, &head, &mut d_x, 1.0, 0.0);
            let mut d_w = Tensor::zeros(&[VOCAB, DIM]);
            matmul_into(&d_logits.t(), &x, &mut d_w, 1.0, 1.0);
            (logits, d_x, d_w)
        })
    });
    group.finish();
}

criterion_group!(benches, transformer_step);
criterion_main!(benches);
