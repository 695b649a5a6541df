//! The shared training loop refuses what would silently go wrong: changed settings on
//! resume, colliding or unwritable paths, empty data, NaN losses (in training and in
//! evaluation), and a closed stdout does not make it panic.

mod common;
use common::temp_dir;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use agdlab::autograd::{Tape, Var};
use agdlab::nn::{cross_entropy, Forward, Linear, Module};
use agdlab::optim::{Constant, ParamGroup};
use agdlab::tensor::Tensor;
use agdlab::train::{
    fit, thread_pool, Better, OptimizerKind, OptimizerSettings, RunSettings, StepOutput, Task, TrainConfig,
    TrainError,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// A linear classifier on fixed data; `poison` makes the loss NaN at that step, or the
/// evaluation NaN with `eval_nan`.
struct Tiny {
    model: Linear,
    steps: usize,
    poison: Option<usize>,
    eval_nan: bool,
}

impl Task for Tiny {
    fn steps_per_epoch(&self) -> usize {
        self.steps
    }

    fn train_step(&mut self, tape: &Tape, step: usize) -> StepOutput {
        let mut x = Tensor::normal(&[8, 3], 0.0, 1.0, &mut StdRng::seed_from_u64(step as u64));
        if self.poison == Some(step) {
            x = x.mul_scalar(f32::NAN);
        }
        let labels: Vec<usize> = (0..8).map(|i| i % 2).collect();
        let logits = self.model.forward(&tape.input(x));
        StepOutput { loss: cross_entropy(&logits, &labels), examples: 8, sums: vec![] }
    }

    fn evaluate(&mut self) -> Vec<(String, f64)> {
        let logits = self.model.forward(&Var::constant(Tensor::ones(&[2, 3])));
        let loss = cross_entropy(&logits, &[0, 1]).item() as f64;
        vec![("test_loss".into(), if self.eval_nan { f64::NAN } else { loss })]
    }

    fn primary_metric(&self) -> (&'static str, Better) {
        ("test_loss", Better::Lower)
    }
}

fn tiny() -> Tiny {
    Tiny {
        model: Linear::new(3, 2, true, &mut StdRng::seed_from_u64(0)),
        steps: 3,
        poison: None,
        eval_nan: false,
    }
}

fn config(dir: &Path, settings: RunSettings) -> TrainConfig {
    TrainConfig {
        label: "tiny".into(),
        epochs: 2,
        clip_grad_norm: None,
        metrics: dir.join("metrics.csv"),
        diagnostics: None,
        save: Some(dir.join("ckpt.safetensors")),
        resume: None,
        allow_changed_settings: false,
        settings,
    }
}

fn run(task: &mut Tiny, config: &TrainConfig) -> Result<agdlab::train::RunSummary, TrainError> {
    let settings = OptimizerSettings {
        kind: OptimizerKind::Sgd,
        lr: 0.1,
        delta: 1e-5,
        weight_decay: None,
        momentum: 0.9,
    };
    let mut optimizer = settings.build(vec![ParamGroup::new(task.model.named_parameters())])?;
    let model = task.model.named_parameters();
    fit(&model, optimizer.as_mut(), &Constant, task, config)
}

#[test]
fn a_resume_with_changed_settings_is_refused_naming_the_setting() {
    let dir = temp_dir("loop-settings");
    let settings = RunSettings::default().with("seed", 1).with("batch-size", 8);
    run(&mut tiny(), &config(&dir, settings)).unwrap();

    let mut resumed = config(&dir, RunSettings::default().with("seed", 2).with("batch-size", 8));
    resumed.epochs = 3;
    resumed.resume = resumed.save.clone();
    let err = run(&mut tiny(), &resumed).unwrap_err().to_string();
    assert!(
        err.contains("--seed is 2") && err.contains("--seed 1") && err.contains("--allow-changed-settings"),
        "{err}"
    );

    resumed.allow_changed_settings = true;
    let summary = run(&mut tiny(), &resumed).unwrap();
    assert_eq!(summary.history.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn a_checkpoint_beyond_the_run_is_refused() {
    let dir = temp_dir("loop-epochs");
    let mut first = config(&dir, RunSettings::default());
    first.epochs = 3;
    run(&mut tiny(), &first).unwrap();
    let mut shorter = config(&dir, RunSettings::default());
    shorter.resume = shorter.save.clone();
    let err = run(&mut tiny(), &shorter).unwrap_err().to_string();
    assert!(err.contains("after epoch 3") && err.contains("--epochs"), "{err}");
}

#[test]
fn colliding_and_unusable_paths_are_refused_before_training() {
    let dir = temp_dir("loop-paths");
    let mut same = config(&dir, RunSettings::default());
    same.metrics = dir.join("ckpt.safetensors");
    let err = run(&mut tiny(), &same).unwrap_err().to_string();
    assert!(err.contains("--metrics") && err.contains("--save"), "{err}");
    assert!(!dir.join("ckpt.safetensors").exists(), "nothing was trained or written");

    let mut into_dir = config(&dir, RunSettings::default());
    std::fs::create_dir_all(dir.join("adir")).unwrap();
    into_dir.save = Some(dir.join("adir"));
    let err = run(&mut tiny(), &into_dir).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");

    #[cfg(unix)]
    {
        let mut via_link = config(&dir, RunSettings::default());
        std::os::unix::fs::symlink(dir.join("target.safetensors"), dir.join("link.safetensors")).unwrap();
        via_link.save = Some(dir.join("link.safetensors"));
        let err = run(&mut tiny(), &via_link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(!dir.join("target.safetensors").exists());
    }
}

#[test]
fn empty_data_is_an_error() {
    let dir = temp_dir("loop-empty");
    let mut empty = tiny();
    empty.steps = 0;
    let err = run(&mut empty, &config(&dir, RunSettings::default())).unwrap_err();
    assert!(matches!(err, TrainError::Data(_)), "{err}");
    assert!(!dir.join("ckpt.safetensors").exists());
}

#[test]
fn a_nan_loss_stops_training_naming_epoch_and_step() {
    let dir = temp_dir("loop-nan");
    let mut poisoned = tiny();
    poisoned.poison = Some(1);
    let err = run(&mut poisoned, &config(&dir, RunSettings::default())).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { epoch: 1, step: Some(2), .. }), "{err}");
    assert!(err.to_string().contains("--lr"), "{err}");
    assert!(!dir.join("ckpt.safetensors").exists(), "no checkpoint of NaN weights");
}

#[test]
fn a_nan_evaluation_stops_training_before_the_checkpoint() {
    let dir = temp_dir("loop-eval-nan");
    let mut task = tiny();
    task.eval_nan = true;
    let err = run(&mut task, &config(&dir, RunSettings::default())).unwrap_err();
    assert!(
        matches!(&err, TrainError::NonFinite { what, epoch: 1, step: None, .. } if what.contains("test_loss")),
        "{err}"
    );
    assert!(!dir.join("ckpt.safetensors").exists());
}

#[test]
fn zero_threads_is_an_error_not_a_panic() {
    let err = thread_pool(Some(0)).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("--threads"), "{err}");
    let (_, threads) = thread_pool(Some(100_000)).unwrap();
    assert!(threads <= std::thread::available_parallelism().unwrap().get());
}

/// The child of the test below: prints lines until its stdout is closed.
#[test]
#[ignore = "started by printing_to_a_closed_pipe_ends_quietly"]
fn closed_pipe_child() {
    if std::env::var("AGDLAB_PIPE_CHILD").is_err() {
        return;
    }
    for i in 0..1_000_000 {
        agdlab::say!("line {i}");
    }
}

#[test]
fn printing_to_a_closed_pipe_ends_quietly() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["closed_pipe_child", "--exact", "--ignored", "--nocapture", "--test-threads", "1"])
        .env("AGDLAB_PIPE_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read until the child's own lines start (the test harness prints first), then close.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("line 0") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the child printed nothing");
    }
    drop(reader);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("panicked"), "{}: {stderr}", out.status);
}
