//! A smoke test of the `ptb_transformer` example's model and task (the example file
//! itself, included below) on a tiny synthetic corpus, through the shared training loop:
//! the loss must fall, the metrics must hold train, validation and test perplexity, and
//! the per-kind SGD-mode table must be built from the diagnostics CSV.

mod common;
#[path = "common/corpus.rs"]
mod corpus;

#[allow(dead_code)]
#[path = "../examples/ptb_transformer.rs"]
mod ptb_transformer;

use std::collections::BTreeMap;

use agdlab::data::ptb::Streams;
use agdlab::nn::Module;
use agdlab::optim::{Agd, AgdConfig, Constant};
use agdlab::train::{fit, Task, TrainConfig};
use common::temp_dir;
use corpus::tiny_ptb;
use ptb_transformer::{parameter_kind, sgd_mode_by_kind, LanguageModelling, TransformerLm};

#[test]
fn the_example_task_learns_a_tiny_corpus() {
    let ptb = tiny_ptb();
    let model = TransformerLm::new(ptb.vocab.len(), 16, 2, 1, 10, 0.0, 0.02, 0);
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names[..3],
        [
            "embedding.weight",
            "positions.weight",
            "blocks.0.self_attn.in_proj_weight"
        ]
    );
    assert_eq!(names[names.len() - 2..], ["head.weight", "head.bias"]);
    let kinds: Vec<&str> = names.iter().map(|n| parameter_kind(n)).collect();
    for kind in ["embedding", "attention", "feed-forward", "norm", "head"] {
        assert!(
            kinds.contains(&kind),
            "no parameter of kind {kind} in {names:?}"
        );
    }

    let mut task = LanguageModelling {
        model: &model,
        train: Streams::new(&ptb.train, 4),
        valid: Streams::new(&ptb.valid, 2),
        test: Streams::new(&ptb.test, 2),
        seq_len: 10,
    };
    assert_eq!(task.steps_per_epoch(), 60); // 2,400 tokens in 4 streams of 600, 10 per window
    let config = AgdConfig {
        lr: 3e-3,
        delta: 1e-14,
        ..Default::default()
    };
    let mut optimizer = Agd::new(model.named_parameters(), config).unwrap();
    let dir = temp_dir("ptb-transformer-smoke");
    let mut config = TrainConfig::new("smoke", 3, dir.join("metrics.csv"));
    config.clip_grad_norm = Some(1.0);
    config.diagnostics = Some(dir.join("diagnostics.csv"));
    let summary = fit(&model, &mut optimizer, &Constant, &mut task, &config).unwrap();

    let metric = |epoch: usize, name: &str| {
        summary.history[epoch]
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let (first, last) = (metric(0, "train_ppl"), metric(2, "train_ppl"));
    assert!(
        last < 0.7 * first,
        "training perplexity did not fall enough: {first} -> {last}"
    );
    // Chance is 13; the corpus is mostly predictable, so far below it.
    assert!(
        metric(2, "valid_ppl") < 6.0,
        "valid_ppl {}",
        metric(2, "valid_ppl")
    );
    let test_ppl = summary.final_metric("test_ppl").expect("test_ppl");
    assert!(test_ppl < 6.0, "test_ppl {test_ppl}");

    let sizes: BTreeMap<String, usize> = model
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.numel()))
        .collect();
    let table = sgd_mode_by_kind(&dir.join("diagnostics.csv"), &sizes).unwrap();
    assert_eq!(table.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
    for kinds in table.values() {
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert!(kinds.values().all(|f| (0.0..=1.0).contains(f)), "{kinds:?}");
    }
}

#[test]
fn sgd_mode_by_kind_weights_each_parameter_by_its_size() {
    let dir = temp_dir("ptb-transformer-kinds");
    let csv = dir.join("diagnostics.csv");
    std::fs::write(
        &csv,
        "epoch,step,param,key,value\n\
         1,10,embedding.weight,sgd_mode_fraction,0.5\n\
         1,10,positions.weight,sgd_mode_fraction,0\n\
         1,10,blocks.0.linear1.weight,sgd_mode_fraction,0.25\n\
         1,10,head.weight,sgd_mode_fraction,1\n\
         1,10,head.weight,mode_flip_fraction,0.75\n\
         2,20,embedding.weight,sgd_mode_fraction,1\n",
    )
    .unwrap();
    let sizes: BTreeMap<String, usize> = [
        ("embedding.weight", 30),
        ("positions.weight", 10),
        ("blocks.0.linear1.weight", 8),
        ("head.weight", 4),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    let table = sgd_mode_by_kind(&csv, &sizes).unwrap();
    assert_eq!(table[&1]["embedding"], (0.5 * 30.0) / 40.0);
    assert_eq!(table[&1]["feed-forward"], 0.25);
    assert_eq!(table[&1]["head"], 1.0);
    assert_eq!(table[&2].len(), 1);
    assert_eq!(table[&2]["embedding"], 1.0);
}

/// `embedding_std` scales both embedding tables (same draws, so exactly `std` times the
/// N(0, 1) tables of PyTorch's default), and leaves every other parameter as it is.
#[test]
fn the_embedding_tables_start_from_the_given_standard_deviation() {
    let (vocab, dim, window) = (300, 16, 10);
    let unit = TransformerLm::new(vocab, dim, 2, 1, window, 0.0, 1.0, 7);
    let small = TransformerLm::new(vocab, dim, 2, 1, window, 0.0, 0.02, 7);
    for ((name, a), (_, b)) in unit
        .named_parameters()
        .into_iter()
        .zip(small.named_parameters())
    {
        let (a, b) = (a.value().to_vec(), b.value().to_vec());
        let scale = if parameter_kind(&name) == "embedding" {
            0.02
        } else {
            1.0
        };
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x * scale, *y, "{name}");
        }
        if scale != 1.0 {
            let std = (b.iter().map(|v| v * v).sum::<f32>() / b.len() as f32).sqrt();
            assert!((std - 0.02).abs() < 0.002, "{name}: std {std}");
        }
    }
}
