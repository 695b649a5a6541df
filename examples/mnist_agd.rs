//! Train a 784-512-256-10 MLP on real MNIST with AGD (or any other optimizer).
//!
//! ```text
//! cargo run --release --example mnist_agd                       # AGD, defaults
//! cargo run --release --example mnist_agd -- --optimizer adam   # a baseline
//! cargo run --release --example mnist_agd -- --help             # every flag
//! ```
//!
//! One step, end to end: a shuffled batch becomes a tensor on a fresh tape, the model's
//! forward records its ops, cross-entropy gives the loss, `backward` returns gradients
//! keyed by parameter, and the optimizer updates the parameters in place. Per-epoch
//! metrics go to a CSV file; `--save`/`--resume` write and read a safetensors
//! checkpoint (model, optimizer state, epoch) so a run can continue exactly.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;

use agdlab::autograd::{Tape, Var};
use agdlab::checkpoint::{load_training, save_training};
use agdlab::data::mnist::{Mnist, MnistSplit, IMAGE_SIZE};
use agdlab::nn::{cross_entropy, Forward, Linear, Module, Walk};
use agdlab::optim::{Constant, CosineAnnealing, LrSchedule, ParamGroup, SGD_MODE_FRACTION};
use agdlab::train::{check_loss, count_correct, MetricsLog, OptimizerKind, OptimizerSettings, Progress};
use clap::Parser;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Default learning rate per optimizer, tuned on this task (see README.md).
fn default_lr(kind: OptimizerKind) -> f32 {
    match kind {
        OptimizerKind::Agd => 1e-4,
        OptimizerKind::Sgd => 0.1,
        OptimizerKind::Adam | OptimizerKind::AdamW | OptimizerKind::AdaBelief | OptimizerKind::RAdam => 1e-3,
    }
}

#[derive(Parser, Debug)]
#[command(about = "Train a 784-512-256-10 MLP on MNIST with AGD or a baseline optimizer")]
struct Args {
    /// agd, sgd, adam, adamw, adabelief or radam.
    #[arg(long, default_value = "agd")]
    optimizer: OptimizerKind,
    /// Peak learning rate [default: tuned per optimizer: agd 1e-4, sgd 0.1, others 1e-3].
    #[arg(long)]
    lr: Option<f32>,
    /// AGD's switching threshold δ.
    #[arg(long, default_value_t = 1e-5)]
    delta: f32,
    /// Weight decay [default: the optimizer's own: 0, or 1e-2 for adamw].
    #[arg(long)]
    weight_decay: Option<f32>,
    /// SGD's momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Learning-rate schedule over all steps.
    #[arg(long, value_enum, default_value_t = Schedule::Cosine)]
    schedule: Schedule,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads for matmul and large element-wise ops [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Directory with the four MNIST IDX files [default: $AGDLAB_MNIST, data/mnist, ../shared/data/mnist].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Train on the first N training images only (quick runs).
    #[arg(long)]
    train_subset: Option<usize>,
    /// Write a checkpoint here after every epoch (atomically).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Continue from a checkpoint written by --save.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Per-epoch metrics CSV [default: runs/mnist_<optimizer>.csv].
    #[arg(long)]
    metrics: Option<PathBuf>,
}

/// How the learning rate moves over the run's steps.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Schedule {
    /// From the peak learning rate down to 0 along a half cosine.
    Cosine,
    /// The peak learning rate throughout.
    Constant,
}

/// The model: two hidden ReLU layers.
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Mlp {
    fn new(rng: &mut StdRng) -> Mlp {
        Mlp {
            fc1: Linear::new(IMAGE_SIZE, 512, true, rng),
            fc2: Linear::new(512, 256, true, rng),
            fc3: Linear::new(256, 10, true, rng),
        }
    }
}

impl Module for Mlp {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("fc1", &self.fc1);
        walk.child("fc2", &self.fc2);
        walk.child("fc3", &self.fc3);
    }
}

impl Forward for Mlp {
    fn forward(&self, x: &Var) -> Var {
        let h = self.fc1.forward(x).relu();
        let h = self.fc2.forward(&h).relu();
        self.fc3.forward(&h)
    }
}

/// Mean loss and accuracy over a whole split, in eval mode and recording nothing
/// (PyTorch: `model.eval()` and `torch.no_grad()`).
fn evaluate(model: &Mlp, split: &MnistSplit) -> (f32, f32) {
    model.eval();
    let tape = Tape::no_grad();
    let (mut loss, mut correct) = (0.0f64, 0);
    let all: Vec<usize> = (0..split.len()).collect();
    for idx in all.chunks(1000) {
        let (x, y) = split.batch(idx);
        let logits = model.forward(&tape.input(x));
        loss += cross_entropy(&logits, &y).item() as f64 * idx.len() as f64;
        correct += count_correct(logits.value(), &y);
    }
    model.train();
    ((loss / split.len() as f64) as f32, correct as f32 / split.len() as f32)
}

fn main() {
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    if let Err(e) = pool.install(|| run(&args, threads)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error + Send + Sync>> {
    let wall = std::time::Instant::now();
    if args.epochs == 0 || args.batch_size == 0 || args.lr.is_some_and(|lr| lr.is_nan() || lr <= 0.0) {
        return Err("--epochs and --batch-size must be at least 1 and --lr positive".into());
    }
    let mut data = Mnist::locate_and_load(args.data_dir.as_deref())?.normalized();
    if let Some(n) = args.train_subset {
        data.train.truncate(n);
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let model = Mlp::new(&mut rng);
    let params = model.named_parameters();
    let lr = args.lr.unwrap_or_else(|| default_lr(args.optimizer));
    let settings = OptimizerSettings {
        kind: args.optimizer,
        lr,
        delta: args.delta,
        weight_decay: args.weight_decay,
        momentum: args.momentum,
    };
    let mut optimizer = settings.build(vec![ParamGroup::new(params)])?;
    let steps_per_epoch = data.train.len().div_ceil(args.batch_size);
    let schedule: Box<dyn LrSchedule> = match args.schedule {
        Schedule::Cosine => {
            Box::new(CosineAnnealing { t_max: args.epochs * steps_per_epoch, min_factor: 0.0 })
        }
        Schedule::Constant => Box::new(Constant),
    };

    let mut start_epoch = 0;
    if let Some(path) = &args.resume {
        let (state, extra) = load_training(path, &model)?;
        optimizer.load_state(&state)?;
        start_epoch = extra
            .get("epoch")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| format!("{}: checkpoint has no epoch count", path.display()))?;
        println!("resumed from {} after epoch {start_epoch}", path.display());
    }

    println!(
        "MNIST MLP 784-512-256-10 ({} parameters) | {} lr {lr:e}{} | {} train / {} test | batch {} | {threads} thread(s)",
        model.num_parameters(),
        args.optimizer,
        if args.optimizer == OptimizerKind::Agd { format!(" δ {:e}", args.delta) } else { String::new() },
        data.train.len(),
        data.test.len(),
        args.batch_size,
    );
    let metrics_path =
        args.metrics.clone().unwrap_or_else(|| format!("runs/mnist_{}.csv", args.optimizer).into());
    let header = [
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "lr",
        "sgd_mode_fraction",
        "epoch_seconds",
    ];
    let mut metrics = if args.resume.is_some() {
        MetricsLog::append_or_create(&metrics_path, &header)?
    } else {
        MetricsLog::create(&metrics_path, &header)?
    };

    let mut best = (0.0f32, 0);
    let mut train_seconds = 0.0;
    for epoch in start_epoch..args.epochs {
        // The data order depends only on (seed, epoch), so a resumed run sees the same batches.
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            args.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
        ));
        let mut progress = Progress::new(format!("epoch {:>2}/{}", epoch + 1, args.epochs), steps_per_epoch);
        let (mut loss_sum, mut correct) = (0.0f64, 0);
        let mut sgd_mode_sum = None; // AGD: Σ over steps of the fraction of coordinates in SGD mode
        for (i, idx) in order.chunks(args.batch_size).enumerate() {
            let (x, y) = data.train.batch(idx);
            let tape = Tape::new();
            let logits = model.forward(&tape.input(x));
            let loss = cross_entropy(&logits, &y);
            let loss_value = check_loss(loss.item(), epoch + 1, i)?;
            let grads = loss.backward();
            schedule.apply(optimizer.as_mut(), epoch * steps_per_epoch + i);
            optimizer.step(&grads)?;
            if let Some(fraction) = optimizer.diagnostics().overall(SGD_MODE_FRACTION) {
                *sgd_mode_sum.get_or_insert(0.0) += fraction;
            }
            loss_sum += loss_value as f64 * idx.len() as f64;
            correct += count_correct(logits.value(), &y);
            progress.update(i + 1, || {
                format!("loss {:.4}", loss_sum / ((i * args.batch_size + idx.len()) as f64))
            });
        }
        let epoch_seconds = progress.elapsed().as_secs_f64();
        train_seconds += epoch_seconds;
        let (train_loss, train_acc) =
            ((loss_sum / data.train.len() as f64) as f32, correct as f32 / data.train.len() as f32);
        let (test_loss, test_acc) = evaluate(&model, &data.test);
        if test_acc > best.0 {
            best = (test_acc, epoch + 1);
        }
        let sgd_fraction = sgd_mode_sum.map(|sum: f64| sum / steps_per_epoch as f64);
        println!(
            "epoch {:>2}: train loss {train_loss:.4} acc {:.2}% | test loss {test_loss:.4} acc {:.2}% | {epoch_seconds:.1}s{}",
            epoch + 1,
            100.0 * train_acc,
            100.0 * test_acc,
            sgd_fraction.map_or(String::new(), |f| format!(" | SGD mode {:.1}%", 100.0 * f)),
        );
        metrics.row(&[
            (epoch + 1).to_string(),
            format!("{train_loss:.6}"),
            format!("{train_acc:.6}"),
            format!("{test_loss:.6}"),
            format!("{test_acc:.6}"),
            format!("{:e}", optimizer.lr()),
            sgd_fraction.map_or(String::new(), |f| format!("{f:.6}")),
            format!("{epoch_seconds:.3}"),
        ])?;
        if let Some(path) = &args.save {
            let extra = BTreeMap::from([
                ("epoch".to_string(), (epoch + 1).to_string()),
                ("seed".to_string(), args.seed.to_string()),
                ("optimizer".to_string(), args.optimizer.to_string()),
            ]);
            save_training(path, &model, &optimizer.state(), &extra)?;
        }
    }

    let (final_loss, final_acc) = evaluate(&model, &data.test);
    println!("---");
    let best =
        if best.1 > 0 { format!(", best {:.2}% at epoch {}", 100.0 * best.0, best.1) } else { String::new() };
    println!(
        "{}: final test accuracy {:.2}% (loss {final_loss:.4}){best} | training {train_seconds:.1}s, wall {:.1}s",
        args.optimizer,
        100.0 * final_acc,
        wall.elapsed().as_secs_f64()
    );
    println!("metrics: {}", metrics.path().display());
    if let Some(path) = &args.save {
        println!("checkpoint: {}", path.display());
    }
    Ok(())
}
