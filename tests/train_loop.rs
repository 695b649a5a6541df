//! The shared training loop refuses what would silently go wrong: changed settings on
//! resume, colliding or unwritable paths, empty data, NaN losses (in training and in
//! evaluation), and a closed stdout does not make it panic.

mod common;
use common::temp_dir;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use agdlab::autograd::{Param, Tape, Var};
use agdlab::nn::{cross_entropy, Forward, Linear, Module};
use agdlab::optim::{Constant, ParamGroup};
use agdlab::tensor::Tensor;
use agdlab::train::{
    fit, thread_pool, Better, OptimizerKind, OptimizerSettings, RunSettings, StepOutput, Task,
    TrainConfig, TrainError,
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
    /// Scale the inputs of odd steps up and even steps down (gradients that alternate).
    alternate: bool,
    /// At this step the loss stays finite but `extra`'s gradient is NaN.
    poison_grad: Option<usize>,
    /// A parameter after the model's (in the optimizer's order) that the loss touches
    /// with weight 0, through an op whose backward can return NaN.
    extra: Param,
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
        if self.alternate {
            x = x.mul_scalar(if step % 2 == 1 { 10.0 } else { 0.01 });
        }
        let labels: Vec<usize> = (0..8).map(|i| i % 2).collect();
        let logits = self.model.forward(&tape.input(x));
        let extra = self.extra.on(&logits);
        let nan_gradient = self.poison_grad == Some(step);
        let zero = Var::record(
            "zero_with_poisoned_gradient",
            Tensor::zeros(&[1]),
            &[&extra],
            move |g, grads| {
                grads.add(0, || {
                    if nan_gradient {
                        g.mul_scalar(f32::NAN)
                    } else {
                        g
                    }
                })
            },
        );
        let loss = cross_entropy(&logits, &labels).add(&zero.sum_dims(&[0], false).mul_scalar(0.0));
        StepOutput {
            loss,
            examples: 8,
            sums: vec![],
        }
    }

    fn evaluate(&mut self) -> Vec<(String, f64)> {
        let logits = self.model.forward(&Var::constant(Tensor::ones(&[2, 3])));
        let loss = cross_entropy(&logits, &[0, 1]).item() as f64;
        vec![(
            "test_loss".into(),
            if self.eval_nan { f64::NAN } else { loss },
        )]
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
        alternate: false,
        poison_grad: None,
        extra: Param::new(Tensor::zeros(&[1])),
    }
}

fn config(dir: &Path, settings: RunSettings) -> TrainConfig {
    TrainConfig {
        save: Some(dir.join("ckpt.safetensors")),
        settings,
        ..TrainConfig::new("tiny", 2, dir.join("metrics.csv"))
    }
}

fn run(task: &mut Tiny, config: &TrainConfig) -> Result<agdlab::train::RunSummary, TrainError> {
    let settings = OptimizerSettings {
        kind: OptimizerKind::Sgd,
        lr: 0.1,
        delta: 1e-5,
        weight_decay: None,
        momentum: 0.9,
        difference_every: 1,
        monitor_switching: false,
    };
    let mut model = task.model.named_parameters();
    model.push(("extra".to_string(), task.extra.clone()));
    let mut optimizer = settings.build(vec![ParamGroup::new(model.clone())])?;
    fit(&model, optimizer.as_mut(), &Constant, task, config)
}

#[test]
fn a_resume_with_changed_settings_is_refused_naming_the_setting() {
    let dir = temp_dir("loop-settings");
    let settings = RunSettings::default().with("seed", 1).with("batch-size", 8);
    run(&mut tiny(), &config(&dir, settings)).unwrap();

    let mut resumed = config(
        &dir,
        RunSettings::default().with("seed", 2).with("batch-size", 8),
    );
    resumed.epochs = 3;
    resumed.resume = resumed.save.clone();
    let err = run(&mut tiny(), &resumed).unwrap_err().to_string();
    assert!(
        err.contains("--seed is 2")
            && err.contains("--seed 1")
            && err.contains("--allow-changed-settings"),
        "{err}"
    );

    resumed.allow_changed_settings = true;
    let summary = run(&mut tiny(), &resumed).unwrap();
    assert_eq!(
        summary.history.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        vec![3]
    );
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
    assert!(
        err.contains("after epoch 3") && err.contains("--epochs"),
        "{err}"
    );
}

#[test]
fn colliding_and_unusable_paths_are_refused_before_training() {
    let dir = temp_dir("loop-paths");
    let mut same = config(&dir, RunSettings::default());
    same.metrics = dir.join("ckpt.safetensors");
    let err = run(&mut tiny(), &same).unwrap_err().to_string();
    assert!(err.contains("--metrics") && err.contains("--save"), "{err}");
    assert!(
        !dir.join("ckpt.safetensors").exists(),
        "nothing was trained or written"
    );

    let mut into_dir = config(&dir, RunSettings::default());
    std::fs::create_dir_all(dir.join("adir")).unwrap();
    into_dir.save = Some(dir.join("adir"));
    let err = run(&mut tiny(), &into_dir).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");

    #[cfg(unix)]
    {
        let mut via_link = config(&dir, RunSettings::default());
        std::os::unix::fs::symlink(dir.join("target.safetensors"), dir.join("link.safetensors"))
            .unwrap();
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
    assert!(
        matches!(
            err,
            TrainError::NonFinite {
                epoch: 1,
                step: Some(2),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--lr"), "{err}");
    assert!(
        !dir.join("ckpt.safetensors").exists(),
        "no checkpoint of NaN weights"
    );
}

#[test]
fn with_clipping_a_nan_gradient_stops_training_before_the_step_changes_anything() {
    // After one clean step (a one-step run) ...
    let one_step = temp_dir("loop-nan-grad-ref");
    let mut reference = tiny();
    reference.steps = 1;
    let config_one = TrainConfig {
        clip_grad_norm: Some(1.0),
        ..TrainConfig::new("tiny", 1, one_step.join("m.csv"))
    };
    run(&mut reference, &config_one).unwrap();

    // ... a second step whose last parameter's gradient is NaN changes nothing: the
    // clipping norm is NaN, so the loop stops before the optimizer, which would update
    // the model's parameters (listed first) before reaching the bad one.
    let dir = temp_dir("loop-nan-grad");
    let mut task = tiny();
    task.poison_grad = Some(1);
    let config = TrainConfig {
        clip_grad_norm: Some(1.0),
        ..config(&dir, RunSettings::default())
    };
    let err = run(&mut task, &config).unwrap_err();
    assert!(
        matches!(&err, TrainError::NonFinite { what, epoch: 1, step: Some(2), .. } if what.contains("gradient of extra")),
        "{err}"
    );
    let values = |t: &Tiny| -> Vec<Vec<f32>> {
        t.model
            .named_parameters()
            .iter()
            .map(|(_, p)| p.value().to_vec())
            .collect()
    };
    assert_eq!(values(&task), values(&reference));
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
        .args([
            "closed_pipe_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
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
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the child printed nothing"
        );
    }
    drop(reader);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{}: {stderr}",
        out.status
    );
}

/// AGD with its switching monitor on gradients that alternate between large and small,
/// with a short second-moment memory (β2 = 0.3) so that sqrt(b) follows them, and δ swept
/// across their size: where coordinates cross the threshold at every step, the loop warns,
/// naming the layer, once the flips last a window of steps; where nothing switches (δ far
/// below everything), it stays quiet.
#[test]
fn a_layer_that_keeps_switching_agd_mode_is_warned_about() {
    use agdlab::optim::{Agd, AgdConfig};
    use agdlab::train::SwitchWarning;
    let mut warned_at = Vec::new();
    for delta in [1e-12, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3] {
        let dir = temp_dir("loop-switching");
        let mut task = tiny();
        task.steps = 24;
        task.alternate = true;
        let config = AgdConfig {
            lr: 1e-3,
            betas: (0.9, 0.3),
            delta,
            monitor_switching: true,
            ..Default::default()
        };
        let mut optimizer = Agd::new(task.model.named_parameters(), config).unwrap();
        let mut train = TrainConfig::new("switching", 1, dir.join("metrics.csv"));
        train.switch_warning = Some(SwitchWarning {
            threshold: 0.0,
            window: 3,
        });
        train.diagnostics = Some(dir.join("diagnostics.csv"));
        train.diagnostics_every = 4;
        let model = task.model.named_parameters();
        let summary = fit(&model, &mut optimizer, &Constant, &mut task, &train).unwrap();
        let text = std::fs::read_to_string(dir.join("diagnostics.csv")).unwrap();
        let steps: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap())
            .collect();
        assert!(
            steps.contains(&"4") && steps.contains(&"24"),
            "a row every 4 steps: {text}"
        );
        if !summary.warnings.is_empty() {
            assert!(
                summary
                    .warnings
                    .iter()
                    .all(|w| w.contains("changed AGD mode")),
                "{:?}",
                summary.warnings
            );
            warned_at.push(delta);
        }
    }
    assert!(
        !warned_at.contains(&1e-12),
        "with δ = 1e-12 every coordinate stays adaptive: no warning"
    );
    assert!(
        !warned_at.is_empty(),
        "some δ must sit at the size of the gradient differences"
    );
}

/// `--warn-switching` (a shared flag of every example) turns on AGD's switching monitor
/// and the loop's warning with the given window; out-of-range values are refused naming
/// the flag, and without the flag neither is on.
#[test]
fn the_warn_switching_flag_turns_on_the_monitor_and_the_warning() {
    use agdlab::optim::MODE_FLIP_FRACTION;
    use agdlab::train::{CommonArgs, SwitchWarning};
    use clap::Parser;
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        common: CommonArgs,
    }
    let parse = |extra: &[&str]| Flags::parse_from(["example"].iter().chain(extra)).common;

    let on = parse(&["--warn-switching", "0.05", "--warn-switching-window", "7"]);
    on.validate().unwrap();
    let config = on.train_config("x".into(), "x", Default::default());
    assert_eq!(
        config.switch_warning,
        Some(SwitchWarning {
            threshold: 0.05,
            window: 7
        })
    );
    let settings = on.optimizer_settings(|_| 1e-3);
    assert!(settings.monitor_switching);
    // The AGD it builds reports mode flips (from its second step on).
    let mut task = tiny();
    let mut optimizer = settings
        .build(vec![ParamGroup::new(task.model.named_parameters())])
        .unwrap();
    for step in 0..2 {
        let grads = task.train_step(&Tape::new(), step).loss.backward();
        optimizer.step(&grads).unwrap();
    }
    assert!(
        optimizer
            .diagnostics()
            .overall(MODE_FLIP_FRACTION)
            .is_some(),
        "no flip fraction reported"
    );

    let off = parse(&[]);
    assert_eq!(
        off.train_config("x".into(), "x", Default::default())
            .switch_warning,
        None
    );
    assert!(!off.optimizer_settings(|_| 1e-3).monitor_switching);

    for (args, flag) in [
        (&["--warn-switching", "1.5"][..], "--warn-switching 1.5"),
        (
            &["--warn-switching", "0.1", "--warn-switching-window", "0"][..],
            "--warn-switching-window",
        ),
    ] {
        let message = parse(args).validate().unwrap_err().to_string();
        assert!(message.contains(flag), "{message}");
    }
}
