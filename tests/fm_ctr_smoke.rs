//! Smoke test of click prediction end to end: a factorization machine trained with AGD
//! on a small synthetic Criteo-shaped set (labels from a planted FM) must rank the test
//! set well above chance and approach the planted model's own AUC. A few seconds.

use agdlab::autograd::Tape;
use agdlab::data::synthetic_ctr::{SyntheticCtr, SyntheticCtrConfig};
use agdlab::data::CtrExamples;
use agdlab::metrics::{auc, log_loss_with_logits};
use agdlab::nn::{bce_with_logits, FactorizationMachine, FmConfig, Module};
use agdlab::optim::{Agd, AgdConfig, Optimizer, ParamGroup, SparseMode};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Test AUC and log loss of `model` on `examples`, recording nothing.
fn evaluate(model: &FactorizationMachine, examples: &CtrExamples) -> (f64, f64) {
    let all: Vec<usize> = (0..examples.len()).collect();
    let batch = examples.batch(&all);
    let logits = model
        .forward(&Tape::no_grad(), &batch.ids, None)
        .value()
        .to_vec();
    (
        auc(&logits, examples.labels()).unwrap(),
        log_loss_with_logits(&logits, examples.labels()),
    )
}

#[test]
fn an_fm_trained_with_agd_ranks_synthetic_clicks_well_above_chance() {
    // 12 fields of 5 to 50 values (Zipf), a planted FM of dimension 4; 20,000 training
    // and 5,000 test examples.
    let config = SyntheticCtrConfig {
        train_examples: 20_000,
        test_examples: 5_000,
        cardinalities: vec![5, 10, 20, 50, 8, 15, 30, 12, 25, 40, 6, 20],
        factor_std: 0.3,
        linear_std: 0.3,
        bias: -0.5,
        seed: 7,
        ..SyntheticCtrConfig::default()
    };
    let synthetic = SyntheticCtr::generate(&config);
    let planted = synthetic.planted_test_auc().unwrap();
    let data = &synthetic.data;
    for sparse in [SparseMode::Dense, SparseMode::Lazy] {
        let model = FactorizationMachine::new(
            &FmConfig::new(data.table_size, data.field_names.len(), 4),
            &mut StdRng::seed_from_u64(1),
        );
        let group = ParamGroup::new(model.named_parameters()).sparse(sparse);
        let mut optimizer = Agd::with_groups(
            vec![group],
            AgdConfig {
                lr: 2e-3,
                ..Default::default()
            },
        )
        .unwrap();
        let (auc_before, _) = evaluate(&model, &data.test);
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        let mut rng = StdRng::seed_from_u64(2);
        for _epoch in 0..4 {
            order.shuffle(&mut rng);
            for chunk in order.chunks(256) {
                let batch = data.train.batch(chunk);
                let tape = Tape::new();
                let logits = model.forward(&tape, &batch.ids, None);
                optimizer
                    .step(&bce_with_logits(&logits, &batch.labels).backward())
                    .unwrap();
            }
        }
        let (auc_after, log_loss) = evaluate(&model, &data.test);
        eprintln!(
            "{sparse:?}: test AUC {auc_before:.4} -> {auc_after:.4} (planted {planted:.4}), log loss {log_loss:.4}"
        );
        assert!(
            planted > 0.75,
            "the planted model is too weak to test against: {planted}"
        );
        assert!(
            auc_after > 0.75 && auc_after > planted - 0.05,
            "{sparse:?}: AUC {auc_after}, planted {planted}"
        );
        assert!(log_loss < 0.69, "{sparse:?}: log loss {log_loss}");
    }
}
