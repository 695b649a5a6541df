//! Crash consistency of the shared training loop: `kill -9` at random moments (some
//! during saves), resume each time, and check after every kill that
//! - the metrics CSV has no epoch twice and none the checkpoint is missing;
//! - a resume succeeds, clearing any temporary file the kill left behind;
//!
//! and at the end that the parameters are bit-identical to an uninterrupted run's.
//!
//! The parent starts this test binary again as a child running only `kill_loop_child`
//! (an ignored test that trains a small model through `agdlab::train::fit`).

mod common;
use common::temp_dir;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agdlab::autograd::{Tape, Var};
use agdlab::checkpoint::Checkpoint;
use agdlab::nn::{cross_entropy, Forward, Linear, Module, ReLU, Sequential};
use agdlab::optim::{Agd, AgdConfig, CosineAnnealing, ParamGroup};
use agdlab::tensor::Tensor;
use agdlab::train::{fit, Better, RunSettings, StepOutput, Task, TrainConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIR_ENV: &str = "AGDLAB_KILL_LOOP_DIR";
const EPOCHS: usize = 24;

/// Classify which of four quadrants a point is in, with a few wrong labels.
struct Quadrants {
    model: Sequential,
    x: Tensor,
    y: Vec<usize>,
}

impl Task for Quadrants {
    fn steps_per_epoch(&self) -> usize {
        8
    }

    fn train_step(&mut self, tape: &Tape, step: usize) -> StepOutput {
        let rows: Vec<usize> = (step * 64..(step + 1) * 64).collect();
        let x = self.x.index_select(0, &rows);
        let y: Vec<usize> = rows.iter().map(|&r| self.y[r]).collect();
        let logits = self.model.forward(&tape.input(x));
        StepOutput {
            loss: cross_entropy(&logits, &y),
            examples: y.len(),
            sums: vec![],
        }
    }

    fn evaluate(&mut self) -> Vec<(String, f64)> {
        let logits = self.model.forward(&Var::constant(self.x.clone()));
        vec![(
            "eval_loss".into(),
            cross_entropy(&logits, &self.y).item() as f64,
        )]
    }

    fn primary_metric(&self) -> (&'static str, Better) {
        ("eval_loss", Better::Lower)
    }
}

/// The child: train (resuming when a checkpoint exists) in the directory it is given.
#[test]
#[ignore = "started by kill_minus_nine_at_random_moments_never_breaks_a_run"]
fn kill_loop_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        eprintln!("kill_loop_child: only runs as the child of the kill-loop test");
        return;
    };
    let dir = PathBuf::from(dir);
    let mut rng = StdRng::seed_from_u64(0);
    let model = Sequential::new()
        .append(Linear::new(2, 512, true, &mut rng))
        .append(ReLU)
        .append(Linear::new(512, 512, true, &mut rng))
        .append(ReLU)
        .append(Linear::new(512, 4, true, &mut rng));
    let x = Tensor::uniform(&[512, 2], -1.0, 1.0, &mut rng);
    let y = x
        .to_vec()
        .chunks(2)
        .map(|p| (p[0] > 0.0) as usize * 2 + (p[1] > 0.0) as usize)
        .collect();
    let config = AgdConfig {
        lr: 3e-3,
        amsgrad: true,
        ..Default::default()
    };
    let mut optimizer =
        Agd::with_groups(vec![ParamGroup::new(model.named_parameters())], config).unwrap();
    let checkpoint = dir.join("run.safetensors");
    let mut task = Quadrants { model, x, y };
    let train = TrainConfig {
        clip_grad_norm: Some(1.0),
        diagnostics: Some(dir.join("diagnostics.csv")),
        diagnostics_every: 3,
        save: Some(checkpoint.clone()),
        resume: checkpoint.exists().then_some(checkpoint),
        settings: RunSettings::default()
            .with("lr", 3e-3)
            .with("epochs", EPOCHS),
        ..TrainConfig::new("kill-loop", EPOCHS, dir.join("metrics.csv"))
    };
    let schedule = CosineAnnealing {
        t_max: EPOCHS * 8,
        min_factor: 0.0,
    };
    fit(
        &task.model.named_parameters(),
        &mut optimizer,
        &schedule,
        &mut task,
        &train,
    )
    .unwrap();
}

fn child(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "kill_loop_child",
            "--exact",
            "--ignored",
            "--test-threads",
            "1",
            "--nocapture",
        ])
        .env(DIR_ENV, dir)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child")
}

/// The epochs of the metrics rows (first column), in file order.
fn metric_epochs(dir: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .collect()
}

fn checkpoint_epoch(dir: &Path) -> usize {
    match Checkpoint::load(dir.join("run.safetensors")) {
        Ok(c) => c.metadata["epoch"].parse().unwrap(),
        Err(_) => 0,
    }
}

fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

fn model_bits(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let c = Checkpoint::load(dir.join("run.safetensors")).unwrap();
    c.tensors
        .into_iter()
        .map(|(n, t)| (n, t.to_vec().iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn kill_minus_nine_at_random_moments_never_breaks_a_run() {
    // The reference: one uninterrupted run, timed to place the kills.
    let straight = temp_dir("kill-loop-straight");
    let started = Instant::now();
    let out = child(&straight).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_time = started.elapsed();
    assert_eq!(metric_epochs(&straight), (1..=EPOCHS).collect::<Vec<_>>());

    let dir = temp_dir("kill-loop");
    let mut rng = StdRng::seed_from_u64(42);
    let (mut kills, mut during_save, mut row_ahead) = (0, 0, 0);
    loop {
        let mut running = child(&dir);
        // Every other kill aims at the window the crash consistency is about: just after
        // an epoch's metrics row appears, while its checkpoint is being written.
        let aim_at_save = kills % 2 == 1;
        let rows_before = metric_epochs(&dir).len();
        let wait = Duration::from_secs_f64(rng.random_range(0.02..0.35) * run_time.as_secs_f64());
        let deadline = Instant::now() + if aim_at_save { run_time } else { wait };
        let mut finished = None;
        while Instant::now() < deadline {
            if let Some(status) = running.try_wait().unwrap() {
                finished = Some(status);
                break;
            }
            if aim_at_save && metric_epochs(&dir).len() > rows_before {
                std::thread::sleep(Duration::from_micros(rng.random_range(0..12_000)));
                break;
            }
            std::thread::sleep(Duration::from_micros(if aim_at_save { 200 } else { 2000 }));
        }
        if let Some(status) = finished {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut running.stderr.take().unwrap(), &mut err).unwrap();
            assert!(status.success(), "a resumed run failed: {err}");
            if kills >= 20 {
                break;
            }
            // Finished before 20 kills: start over in a fresh directory.
            std::fs::remove_dir_all(&dir).unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            continue;
        }
        running.kill().unwrap(); // SIGKILL
        running.wait().unwrap();
        kills += 1;
        if !temporaries(&dir).is_empty() {
            during_save += 1;
        }
        // After every kill the metrics and the checkpoint agree, up to the row of the
        // epoch whose checkpoint was being written (the next resume drops it).
        let epochs = metric_epochs(&dir);
        let mut deduplicated = epochs.clone();
        deduplicated.dedup();
        assert_eq!(
            epochs, deduplicated,
            "kill {kills}: an epoch appears twice in the metrics"
        );
        let saved = checkpoint_epoch(&dir);
        row_ahead += (epochs.len() == saved + 1) as usize;
        assert!(
            epochs.len() == saved || epochs.len() == saved + 1,
            "kill {kills}: metrics rows {epochs:?} do not match the checkpoint's epoch {saved}"
        );
        assert_eq!(
            epochs,
            (1..=epochs.len()).collect::<Vec<_>>(),
            "kill {kills}"
        );
    }
    assert!(
        temporaries(&dir).is_empty(),
        "stale temporaries: {:?}",
        temporaries(&dir)
    );
    assert_eq!(metric_epochs(&dir), (1..=EPOCHS).collect::<Vec<_>>());
    assert_eq!(
        model_bits(&dir),
        model_bits(&straight),
        "the resumed run differs from the uninterrupted one"
    );
    // The per-step diagnostics hold no timings: they are the same file as the straight run's.
    let read = |d: &Path| std::fs::read_to_string(d.join("diagnostics.csv")).unwrap();
    assert_eq!(
        read(&dir),
        read(&straight),
        "diagnostics rows lost or repeated across the kills"
    );
    eprintln!(
        "{kills} kills: {during_save} during a save (a temporary file left), {row_ahead} after an epoch's \
         metrics row and before its checkpoint"
    );
}
