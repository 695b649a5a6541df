//! Resuming is exact: N steps, save, load in a fresh process, M more steps gives
//! bit-identical parameters to N+M steps in one run.
//!
//! The parent test trains N+M steps straight, and N steps then a checkpoint. It then
//! starts this same test binary again as a child process running only
//! `resume_child` (an ignored test that does nothing unless the parent asks), which
//! builds a model from a *different* seed (so every value must come from the file),
//! loads the checkpoint, trains M steps and writes its parameters out. The parent
//! compares them bit for bit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use agdlab::autograd::Tape;
use agdlab::checkpoint::{load_training, save_training, Checkpoint};
use agdlab::nn::{cross_entropy, Forward, Linear, Module, ReLU, Sequential};
use agdlab::optim::{Agd, AgdConfig, CosineAnnealing, LrSchedule, Optimizer};
use agdlab::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

const N: usize = 7;
const M: usize = 6;
const CHECKPOINT_ENV: &str = "AGDLAB_TEST_RESUME_CHECKPOINT";
const OUTPUT_ENV: &str = "AGDLAB_TEST_RESUME_OUTPUT";

fn model(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .append(Linear::new(12, 32, true, &mut rng))
        .append(ReLU)
        .append(Linear::new(32, 4, true, &mut rng))
}

fn optimizer(model: &Sequential) -> Agd {
    // AMSGrad and weight decay on, so every kind of state must survive the file.
    Agd::new(
        model.named_parameters(),
        AgdConfig {
            lr: 3e-3,
            amsgrad: true,
            weight_decay: 1e-2,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Batch `step` of a fixed synthetic data stream (a function of the step only).
fn batch(step: usize) -> (Tensor, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(1000 + step as u64);
    let x = Tensor::normal(&[16, 12], 0.0, 1.0, &mut rng);
    let labels = x
        .to_vec()
        .chunks(12)
        .map(|row| (row[0] > 0.0) as usize * 2 + (row[1] > 0.0) as usize)
        .collect();
    (x, labels)
}

/// Train steps `range` with a cosine schedule over N+M steps.
fn train(model: &Sequential, opt: &mut Agd, range: std::ops::Range<usize>) {
    let schedule = CosineAnnealing {
        t_max: N + M,
        min_factor: 0.0,
    };
    for step in range {
        let (x, y) = batch(step);
        let tape = Tape::new();
        let loss = cross_entropy(&model.forward(&tape.input(x)), &y);
        schedule.apply(opt, step);
        opt.step(&loss.backward()).unwrap();
    }
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("agdlab-resume-{}-{name}", std::process::id()))
}

fn bits(model: &Sequential) -> Vec<(String, Vec<u32>)> {
    model
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.value().to_vec().iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn resume_in_a_fresh_process_is_bit_identical() {
    // One uninterrupted run.
    let straight = model(1);
    let mut opt = optimizer(&straight);
    train(&straight, &mut opt, 0..N + M);

    // N steps, then a checkpoint.
    let first = model(1);
    let mut opt = optimizer(&first);
    train(&first, &mut opt, 0..N);
    let checkpoint = temp_path("checkpoint.safetensors");
    let output = temp_path("output.safetensors");
    let extra = BTreeMap::from([("step".to_string(), N.to_string())]);
    save_training(&checkpoint, &first, &opt.state(), &extra).unwrap();

    // M more steps in a fresh process.
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "resume_child",
            "--exact",
            "--ignored",
            "--test-threads",
            "1",
        ])
        .env(CHECKPOINT_ENV, &checkpoint)
        .env(OUTPUT_ENV, &output)
        .output()
        .expect("start the child process");
    assert!(
        child.status.success(),
        "child process failed ({}):\n{}{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );

    let resumed = Checkpoint::load(&output).unwrap();
    let _ = std::fs::remove_file(&checkpoint);
    let _ = std::fs::remove_file(&output);
    for (name, expected) in bits(&straight) {
        let got: Vec<u32> = resumed
            .get(&name)
            .unwrap()
            .to_vec()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(got, expected, "parameter {name} differs after resuming");
    }
    // And the resumed run really moved away from the checkpoint.
    assert_ne!(bits(&first), bits(&straight));
}

/// The child half of the test above; does nothing unless started by it.
#[test]
#[ignore = "started by resume_in_a_fresh_process_is_bit_identical"]
fn resume_child() {
    let (Ok(checkpoint), Ok(output)) = (std::env::var(CHECKPOINT_ENV), std::env::var(OUTPUT_ENV))
    else {
        eprintln!(
            "resume_child: only runs as the child of resume_in_a_fresh_process_is_bit_identical"
        );
        return;
    };
    let fresh = model(99);
    let mut opt = optimizer(&fresh);
    let (state, extra) = load_training(Path::new(&checkpoint), &fresh).unwrap();
    opt.load_state(&state).unwrap();
    let start: usize = extra["step"].parse().unwrap();
    train(&fresh, &mut opt, start..N + M);
    let tensors = fresh
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.value()))
        .collect();
    Checkpoint {
        tensors,
        metadata: BTreeMap::new(),
    }
    .save(Path::new(&output))
    .unwrap();
}
