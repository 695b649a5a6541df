//! The `seq2seq_reverse` example (the file itself, included below): greedy decoding of a
//! batch gives each sequence what decoding it alone gives, and a small model learns to
//! reverse within a short run through the shared training loop.

mod common;

#[allow(dead_code)]
#[path = "../examples/seq2seq_reverse.rs"]
mod seq2seq_reverse;

use agdlab::nn::Module;
use agdlab::optim::{Agd, AgdConfig, Constant};
use agdlab::train::{fit, Task, TrainConfig};
use common::temp_dir;
use rand::rngs::StdRng;
use rand::SeedableRng;
use seq2seq_reverse::{greedy_decode, sample, Reverse, Reverser};

/// Sequences finish (emit EOS) at different steps, so a batch's decoder inputs have
/// different lengths: each one's next token must still be read from its own last
/// position. (The example once read them at the first sequence's length, and its
/// held-out accuracy stuck at 32% while the training loss went to 1e-4.)
#[test]
fn batched_greedy_decoding_matches_decoding_one_sequence_at_a_time() {
    let model = Reverser::new(16, 1, 3);
    let src = sample(&mut StdRng::seed_from_u64(5), 24).src;
    let alone: Vec<Vec<usize>> = src
        .iter()
        .map(|s| greedy_decode(&model, std::slice::from_ref(s)).remove(0))
        .collect();
    // Shortest outputs first, so the first sequence of the batch stops growing first.
    let mut order: Vec<usize> = (0..src.len()).collect();
    order.sort_by_key(|&i| alone[i].len());
    let lengths: std::collections::BTreeSet<usize> = alone.iter().map(Vec::len).collect();
    assert!(
        lengths.len() > 1,
        "the test needs sequences that stop at different steps: {lengths:?}"
    );
    let batch: Vec<Vec<usize>> = order.iter().map(|&i| src[i].clone()).collect();
    for (&i, decoded) in order.iter().zip(greedy_decode(&model, &batch)) {
        assert_eq!(decoded, alone[i], "source {:?}", src[i]);
    }
}

#[test]
fn a_small_model_learns_to_reverse() {
    let model = Reverser::new(32, 1, 0);
    let mut task = Reverse {
        model: &model,
        steps: 60,
        batch: 32,
        seed: 0,
        epoch: 0,
    };
    let before = task.evaluate()[0].1;
    let config = AgdConfig {
        lr: 1e-3,
        delta: 1e-14,
        ..Default::default()
    };
    let mut optimizer = Agd::new(model.named_parameters(), config).unwrap();
    let dir = temp_dir("seq2seq");
    let train = TrainConfig {
        clip_grad_norm: Some(1.0), // as the example
        ..TrainConfig::new("seq2seq", 7, dir.join("metrics.csv"))
    };
    let summary = fit(&model, &mut optimizer, &Constant, &mut task, &train).unwrap();
    let (best, _) = summary.best.unwrap();
    assert!(
        before < 0.01 && best > 0.2,
        "exact-sequence accuracy {before} -> best {best}; {summary:?}"
    );
}
