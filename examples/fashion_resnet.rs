//! Train a ResNet-20 on Fashion-MNIST with AGD (or any other optimizer), as the paper's
//! CV experiments train ResNets on CIFAR-10.
//!
//! ```text
//! cargo run --release --example fashion_resnet                        # AGD, 10 epochs
//! cargo run --release --example fashion_resnet -- --optimizer sgd     # a baseline
//! cargo run --release --example fashion_resnet -- --help              # every flag
//! ```
//!
//! The recipe: batch 128, a cosine schedule from the peak learning rate to 0 over the
//! run, weight decay on the convolution and linear weights only (none on biases and
//! batch-norm parameters: two parameter groups), decoupled for AGD (its default
//! `WeightDecayMode::Decoupled`). The shared training loop gives progress, the metrics
//! CSV, checkpoints (`--save`, `--resume`: the batch-norm running statistics are saved
//! with the weights) and the summary; `--diagnostics` (default
//! `runs/fashion_resnet_OPTIMIZER_diagnostics.csv`) receives AGD's SGD-mode fraction
//! per layer after every epoch, for the study tools to plot.
//!
//! Fashion-MNIST is not committed: put its four IDX files in `data/fashion-mnist`, or
//! point `--data-dir` or `$AGDLAB_FASHION_MNIST` at them.

use std::error::Error;
use std::path::PathBuf;

use agdlab::autograd::Tape;
use agdlab::data::fashion_mnist::load_fashion_mnist;
use agdlab::data::mnist::{Mnist, MnistSplit};
use agdlab::models::ResNet;
use agdlab::nn::{cross_entropy, Forward, Module};
use agdlab::optim::{CosineAnnealing, ParamGroup};
use agdlab::say;
use agdlab::train::{
    count_correct, epoch_order, fit, parse_with_defaults, run_in_pool, Better, CommonArgs,
    OptimizerKind, StepOutput, Task,
};
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Default peak learning rate per optimizer.
fn default_lr(kind: OptimizerKind) -> f32 {
    match kind {
        OptimizerKind::Sgd => 0.1,
        _ => 1e-3,
    }
}

/// Default weight decay per optimizer: L2 for SGD, Adam, AdaBelief and RAdam; decoupled
/// (the parameters shrink by `lr·wd` each step) for AGD and AdamW, hence larger.
fn default_weight_decay(kind: OptimizerKind) -> f32 {
    match kind {
        OptimizerKind::Agd | OptimizerKind::AdamW => 1e-2,
        _ => 5e-4,
    }
}

#[derive(Parser, Debug)]
#[command(about = "Train a ResNet-20 on Fashion-MNIST with AGD or a baseline optimizer")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Basic blocks per stage: depth 6k+2 (3 gives ResNet-20).
    #[arg(long, default_value_t = 3)]
    blocks: usize,
    /// Per-layer optimizer diagnostics CSV [default: runs/fashion_resnet_OPTIMIZER_diagnostics.csv].
    #[arg(long)]
    diagnostics: Option<PathBuf>,
    /// Directory with the four Fashion-MNIST IDX files [default: $AGDLAB_FASHION_MNIST, data/fashion-mnist, ../shared/data/fashion-mnist].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Train on the first N training images only (quick runs).
    #[arg(long)]
    train_subset: Option<usize>,
    /// Evaluate on the first N test images only (quick runs).
    #[arg(long)]
    test_subset: Option<usize>,
}

/// Classification of 28x28 images: shuffled batches, evaluation on the test split.
struct Classify<'a> {
    model: &'a ResNet,
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
        // The order depends only on (seed, epoch): a resumed run sees the same batches.
        self.order = epoch_order(self.data.train.len(), self.seed, epoch);
    }

    fn train_step(&mut self, tape: &Tape, step: usize) -> StepOutput {
        let end = ((step + 1) * self.batch_size).min(self.order.len());
        let (x, y) = self
            .data
            .train
            .batch_nchw(&self.order[step * self.batch_size..end]);
        let logits = self.model.forward(&tape.input(x));
        let correct = count_correct(logits.value(), &y) as f64;
        StepOutput {
            loss: cross_entropy(&logits, &y),
            examples: y.len(),
            sums: vec![("train_acc", correct)],
        }
    }

    fn evaluate(&mut self) -> Vec<(String, f64)> {
        let (loss, acc) = evaluate(self.model, &self.data.test);
        vec![("test_loss".into(), loss), ("test_acc".into(), acc)]
    }

    fn primary_metric(&self) -> (&'static str, Better) {
        ("test_acc", Better::Higher)
    }
}

/// Mean loss and accuracy over a whole split, recording nothing (the loop has put the
/// model in eval mode: batch norm uses its running statistics).
fn evaluate(model: &ResNet, split: &MnistSplit) -> (f64, f64) {
    let tape = Tape::no_grad();
    let (mut loss, mut correct) = (0.0f64, 0);
    let all: Vec<usize> = (0..split.len()).collect();
    for idx in all.chunks(500) {
        let (x, y) = split.batch_nchw(idx);
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
    let args: Args =
        parse_with_defaults(&[("epochs", "10"), ("batch_size", "128"), ("delta", "1e-8")]);
    run_in_pool(args.common.threads, |threads| run(&args, threads));
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error + Send + Sync>> {
    let c = &args.common;
    c.validate()?;
    if args.train_subset == Some(0) || args.test_subset == Some(0) || args.blocks == 0 {
        return Err("--train-subset, --test-subset and --blocks must be at least 1".into());
    }
    let mut data = load_fashion_mnist(args.data_dir.as_deref(), args.train_subset)?;
    if let Some(n) = args.test_subset {
        data.test.truncate(n);
    }
    let mut rng = StdRng::seed_from_u64(c.seed);
    let model = ResNet::new(args.blocks, 1, 10, &mut rng);
    let mut optimizer_settings = c.optimizer_settings(default_lr);
    let weight_decay = c
        .weight_decay
        .unwrap_or_else(|| default_weight_decay(c.optimizer));
    optimizer_settings.weight_decay = Some(weight_decay);
    // Decay the convolution and linear weights only: not biases, not batch-norm γ and β.
    let groups = ParamGroup::split(
        model.named_parameters(),
        |_, p| p.shape().len() >= 2,
        |g| g.set("weight_decay", 0.0),
    );
    let mut optimizer = optimizer_settings.build(groups)?;
    let mut task = Classify {
        model: &model,
        data: &data,
        batch_size: c.batch_size,
        seed: c.seed,
        order: vec![],
    };
    let schedule = CosineAnnealing {
        t_max: c.epochs * task.steps_per_epoch(),
        min_factor: 0.0,
    };
    let settings = c
        .run_settings(&optimizer_settings)
        .with("model", format!("resnet{}", model.depth()))
        .with("train-subset", data.train.len())
        .with("test-subset", data.test.len());
    let label = format!("Fashion-MNIST ResNet-{}, {}", model.depth(), c.optimizer);
    say!(
        "{label} ({} parameters) | lr {:e}{} | weight decay {weight_decay:e} | {} train / {} test | batch {} | {threads} thread(s)",
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
    let mut config = c.train_config(label, "fashion_resnet", settings);
    config.diagnostics =
        Some(args.diagnostics.clone().unwrap_or_else(|| {
            format!("runs/fashion_resnet_{}_diagnostics.csv", c.optimizer).into()
        }));
    fit(&model, optimizer.as_mut(), &schedule, &mut task, &config)?;
    Ok(())
}
