//! Train a 784-512-256-10 MLP (or, with `--model cnn`, a LeNet-5) on real MNIST with AGD
//! (or any other optimizer).
//!
//! ```text
//! cargo run --release --example mnist_agd                       # AGD, defaults
//! cargo run --release --example mnist_agd -- --model cnn        # LeNet-5
//! cargo run --release --example mnist_agd -- --optimizer adam   # a baseline
//! cargo run --release --example mnist_agd -- --help             # every flag
//! ```
//!
//! One step, end to end: a shuffled batch becomes a tensor on a fresh tape, the model's
//! forward records its ops, cross-entropy gives the loss; the shared training loop
//! (`agdlab::train::fit`) runs backward, steps the optimizer, evaluates in eval mode,
//! writes per-epoch metrics to a CSV and, with `--save`, a checkpoint to resume from.

use std::error::Error;
use std::path::PathBuf;

use agdlab::autograd::Tape;
use agdlab::data::mnist::{Mnist, MnistSplit, IMAGE_SIZE};
use agdlab::models::LeNet5;
use agdlab::nn::{cross_entropy, Forward, Linear, Module, Walk};
use agdlab::optim::ParamGroup;
use agdlab::say;
use agdlab::train::{
    count_correct, epoch_order, fit, parse_with_defaults, run_in_pool, Better, CommonArgs,
    OptimizerKind, ScheduleFlag, StepOutput, Task,
};
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Default learning rate per model and optimizer, tuned on this task (see README.md).
fn default_lr(model: ModelKind, kind: OptimizerKind) -> f32 {
    match (model, kind) {
        (ModelKind::Mlp, OptimizerKind::Agd) => 1e-4,
        (ModelKind::Cnn, OptimizerKind::Agd) => 1e-3,
        (_, OptimizerKind::Sgd) => 0.1,
        (
            _,
            OptimizerKind::Adam
            | OptimizerKind::AdamW
            | OptimizerKind::AdaBelief
            | OptimizerKind::RAdam,
        ) => 1e-3,
    }
}

#[derive(Parser, Debug)]
#[command(about = "Train an MLP or a LeNet-5 on MNIST with AGD or a baseline optimizer")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// The network.
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp)]
    model: ModelKind,
    /// Learning-rate schedule over all steps.
    #[arg(long, value_enum, default_value_t = ScheduleFlag::Cosine)]
    schedule: ScheduleFlag,
    /// Directory with the four MNIST IDX files [default: $AGDLAB_MNIST, data/mnist, ../shared/data/mnist].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Train on the first N training images only (quick runs).
    #[arg(long)]
    train_subset: Option<usize>,
    /// Per-parameter optimizer diagnostics CSV (AGD's SGD-mode fraction per layer) [default: none].
    #[arg(long)]
    diagnostics: Option<PathBuf>,
}

/// Which network to train.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
enum ModelKind {
    /// 784-512-256-10 with ReLUs.
    Mlp,
    /// LeNet-5 (`agdlab::models::LeNet5`): two 5x5 convolutions with max pooling, three linear layers.
    Cnn,
}

/// The model: two hidden ReLU layers.
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Module for Mlp {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("fc1", &self.fc1);
        walk.child("fc2", &self.fc2);
        walk.child("fc3", &self.fc3);
    }
}

impl Forward for Mlp {
    fn forward(&self, x: &agdlab::autograd::Var) -> agdlab::autograd::Var {
        let h = self.fc1.forward(x).relu();
        let h = self.fc2.forward(&h).relu();
        self.fc3.forward(&h)
    }
}

/// MNIST classification: shuffled batches of the training set, evaluation on the test set.
struct Classify<'a> {
    model: &'a dyn Forward,
    /// Feed `[n, 1, 28, 28]` images (a CNN) rather than `[n, 784]` rows.
    nchw: bool,
    data: &'a Mnist,
    batch_size: usize,
    seed: u64,
    order: Vec<usize>,
}

impl Task for Classify<'_> {
    fn steps_per_epoch(&self) -> usize {
        self.data.train.len().div_ceil(self.batch_size)
    }

    fn start_epoch(&mut self, epoch: usize) {
        // The data order depends only on (seed, epoch), so a resumed run sees the same batches.
        self.order = epoch_order(self.data.train.len(), self.seed, epoch);
    }

    fn train_step(&mut self, tape: &Tape, step: usize) -> StepOutput {
        let end = ((step + 1) * self.batch_size).min(self.order.len());
        let (x, y) = batch(
            &self.data.train,
            &self.order[step * self.batch_size..end],
            self.nchw,
        );
        let logits = self.model.forward(&tape.input(x));
        let correct = count_correct(logits.value(), &y) as f64;
        StepOutput {
            loss: cross_entropy(&logits, &y),
            examples: y.len(),
            sums: vec![("train_acc", correct)],
        }
    }

    fn evaluate(&mut self) -> Vec<(String, f64)> {
        let (loss, acc) = evaluate(self.model, &self.data.test, self.nchw);
        vec![("test_loss".into(), loss), ("test_acc".into(), acc)]
    }

    fn primary_metric(&self) -> (&'static str, Better) {
        ("test_acc", Better::Higher)
    }
}

/// The examples at `indices`, flat or as images.
fn batch(
    split: &MnistSplit,
    indices: &[usize],
    nchw: bool,
) -> (agdlab::tensor::Tensor, Vec<usize>) {
    if nchw {
        split.batch_nchw(indices)
    } else {
        split.batch(indices)
    }
}

/// Mean loss and accuracy over a whole split, recording nothing.
fn evaluate(model: &dyn Forward, split: &MnistSplit, nchw: bool) -> (f64, f64) {
    let tape = Tape::no_grad();
    let (mut loss, mut correct) = (0.0f64, 0);
    let all: Vec<usize> = (0..split.len()).collect();
    for idx in all.chunks(1000) {
        let (x, y) = batch(split, idx, nchw);
        let logits = model.forward(&tape.input(x));
        loss += cross_entropy(&logits, &y).item() as f64 * idx.len() as f64;
        correct += count_correct(logits.value(), &y);
    }
    (
        loss / split.len().max(1) as f64,
        correct as f64 / split.len().max(1) as f64,
    )
}

fn main() {
    let args: Args = parse_with_defaults(&[("epochs", "10"), ("batch_size", "128")]);
    run_in_pool(args.common.threads, |threads| run(&args, threads));
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error + Send + Sync>> {
    let c = &args.common;
    c.validate()?;
    if args.train_subset == Some(0) {
        return Err("--train-subset 0: there would be nothing to train on".into());
    }
    // With --train-subset only the first N training images are read and decoded.
    let data =
        Mnist::locate_and_load_limited(args.data_dir.as_deref(), args.train_subset)?.normalized();
    let mut rng = StdRng::seed_from_u64(c.seed);
    let model: Box<dyn Forward> = match args.model {
        ModelKind::Mlp => Box::new(Mlp {
            fc1: Linear::new(IMAGE_SIZE, 512, true, &mut rng),
            fc2: Linear::new(512, 256, true, &mut rng),
            fc3: Linear::new(256, 10, true, &mut rng),
        }),
        ModelKind::Cnn => Box::new(LeNet5::new(10, &mut rng)),
    };
    let optimizer_settings = c.optimizer_settings(|kind| default_lr(args.model, kind));
    let mut optimizer =
        optimizer_settings.build(vec![ParamGroup::new(model.named_parameters())])?;
    let nchw = args.model == ModelKind::Cnn;
    let mut task = Classify {
        model: model.as_ref(),
        nchw,
        data: &data,
        batch_size: c.batch_size,
        seed: c.seed,
        order: Vec::new(),
    };
    let schedule = args.schedule.build(c.epochs * task.steps_per_epoch());
    let settings = c
        .run_settings(&optimizer_settings)
        .with("schedule", format!("{:?}", args.schedule))
        .with("train-subset", data.train.len())
        .with("model", format!("{:?}", args.model));
    let name = match args.model {
        ModelKind::Mlp => "MNIST MLP 784-512-256-10",
        ModelKind::Cnn => "MNIST LeNet-5",
    };
    let label = format!("{name}, {}", c.optimizer);
    say!(
        "{label} ({} parameters) | lr {:e}{} | {} train / {} test | batch {} | {threads} thread(s)",
        model.num_parameters(),
        optimizer_settings.lr,
        if c.optimizer == OptimizerKind::Agd {
            format!(" δ {:e}", c.delta)
        } else {
            String::new()
        },
        data.train.len(),
        data.test.len(),
        c.batch_size,
    );
    let mut config = c.train_config(label, if nchw { "mnist_cnn" } else { "mnist" }, settings);
    config.diagnostics = args.diagnostics.clone();
    fit(
        model.as_ref(),
        optimizer.as_mut(),
        schedule.as_ref(),
        &mut task,
        &config,
    )?;
    Ok(())
}
