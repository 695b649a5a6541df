//! A smoke test of the `ptb_lstm` example's model and task (the example file itself,
//! included below) on a tiny synthetic corpus, through the shared training loop: the
//! loss must fall, and the metrics must hold train, validation and test perplexity.

mod common;
#[path = "common/corpus.rs"]
mod corpus;

#[allow(dead_code)]
#[path = "../examples/ptb_lstm.rs"]
mod ptb_lstm;

use agdlab::data::ptb::Streams;
use agdlab::nn::Module;
use agdlab::optim::{Agd, AgdConfig, Constant};
use agdlab::train::{fit, Task, TrainConfig};
use common::temp_dir;
use corpus::tiny_ptb;
use ptb_lstm::{LanguageModel, LanguageModelling};

#[test]
fn the_example_task_learns_a_tiny_corpus() {
    let ptb = tiny_ptb();
    let model = LanguageModel::new(ptb.vocab.len(), 16, 16, 2, 0.1, 0);
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names[..3],
        ["encoder.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0"]
    );
    assert_eq!(names[names.len() - 2..], ["decoder.weight", "decoder.bias"]);

    let mut task = LanguageModelling {
        model: &model,
        train: Streams::new(&ptb.train, 4),
        valid: Streams::new(&ptb.valid, 2),
        test: Streams::new(&ptb.test, 2),
        seq_len: 10,
        state: None,
    };
    assert_eq!(task.steps_per_epoch(), 60); // 2,400 tokens in 4 streams of 600, 10 steps each
    let mut optimizer = Agd::new(
        model.named_parameters(),
        AgdConfig {
            lr: 1e-2,
            ..Default::default()
        },
    )
    .unwrap();
    let dir = temp_dir("ptb-lstm-smoke");
    let mut config = TrainConfig::new("smoke", 3, dir.join("metrics.csv"));
    config.clip_grad_norm = Some(0.25);
    config.diagnostics = Some(dir.join("diagnostics.csv"));
    let summary = fit(&model, &mut optimizer, &Constant, &mut task, &config).unwrap();

    let metric = |epoch: usize, name: &str| {
        summary.history[epoch]
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let (first, last) = (metric(0, "train_ppl"), metric(2, "train_ppl"));
    assert!(
        last < 0.6 * first,
        "training perplexity did not fall enough: {first} -> {last}"
    );
    assert!((metric(2, "train_loss").exp() - last).abs() < 1e-6 * last);
    // Chance is 13; the corpus is mostly predictable, so far below it.
    assert!(
        metric(2, "valid_ppl") < 6.0,
        "valid_ppl {}",
        metric(2, "valid_ppl")
    );
    let test_ppl = summary.final_metric("test_ppl").expect("test_ppl");
    assert!(test_ppl < 6.0, "test_ppl {test_ppl}");
    let csv = std::fs::read_to_string(&config.metrics).unwrap();
    assert!(
        csv.starts_with("epoch,train_loss,train_ppl,valid_loss,valid_ppl,lr,"),
        "{csv}"
    );
    let diagnostics = std::fs::read_to_string(dir.join("diagnostics.csv")).unwrap();
    assert!(
        diagnostics.contains("rnn.weight_hh_l1,sgd_mode_fraction"),
        "{diagnostics}"
    );
}
