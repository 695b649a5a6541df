//! Train a factorization machine (or DeepFM) to predict clicks, with AGD or a baseline.
//!
//! ```text
//! cargo run --release --example fm_ctr                              # MovieLens-100k, AGD
//! cargo run --release --example fm_ctr -- --optimizer adam          # a baseline
//! cargo run --release --example fm_ctr -- --source synthetic        # Criteo-shaped, planted FM
//! cargo run --release --example fm_ctr -- --source criteo --criteo-file train.txt --max-examples 1000000
//! cargo run --release --example fm_ctr -- --mlp 64,32               # DeepFM head
//! ```
//!
//! Sources: MovieLens-100k (a rating of 4+ is a click; 5 fields; seeded 80/20 split), a
//! seeded synthetic Criteo-shaped set whose labels come from a planted FM (the summary
//! gives that model's own test AUC, the ceiling), or a Criteo-format file (Kaggle's
//! tab-separated `train.txt` or the comma-separated sample, 80/20 split).
//!
//! Defaults: 10 epochs of batch 1024 with a cosine schedule from the peak learning rate
//! to 0; the peak rate depends on the optimizer and the source (`default_lr`: on
//! MovieLens AGD 1e-3, Adam and its kin 1e-2, SGD 2; elsewhere 1e-4, 1e-3 and 0.5).
//!
//! `--sparse` says how the optimizer treats the tables' row-sparse gradients:
//! - `dense` (default): as a dense gradient with zero rows, so every row's moments decay
//!   and every row moves at every step, as the paper's optimizers (and PyTorch with a
//!   dense `nn.Embedding`) do. A step costs a pass over the whole table.
//! - `lazy`: only the rows in the batch are updated, as PyTorch's `SparseAdam`. Much
//!   cheaper for large tables, but another algorithm: a row's moments decay only when it
//!   is touched, and AGD's stepwise difference spans the steps since its last touch.

use std::error::Error;
use std::path::PathBuf;

use agdlab::autograd::Tape;
use agdlab::data::criteo::{self, CriteoOptions, IntegerEncoding};
use agdlab::data::movielens::MovieLens;
use agdlab::data::synthetic_ctr::{SyntheticCtr, SyntheticCtrConfig};
use agdlab::data::{CtrDataset, CtrExamples};
use agdlab::metrics::{auc, log_loss_with_logits};
use agdlab::nn::{bce_with_logits, FactorizationMachine, FmConfig, Module};
use agdlab::optim::{ParamGroup, SparseMode};
use agdlab::say;
use agdlab::train::{
    epoch_order, fit, parse_with_defaults, run_in_pool, Better, CommonArgs, OptimizerKind,
    ScheduleFlag, StepOutput, Task,
};
use clap::{Parser, ValueEnum};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Default learning rate per optimizer and source (see README.md).
///
/// MovieLens-100k: tuned with the default cosine schedule over 10 epochs, mean best test
/// AUC over split seeds 0-2 (lr grid 1e-4..2e-3 for AGD, 1e-3..2e-2 for the Adam family,
/// 0.5..2 for SGD). AGD peaks at 1e-3, about a tenth of Adam's best rate (1e-2), as the
/// AGD authors advise. The synthetic and Criteo sources memorise rare values within a
/// few epochs, so they keep the smaller rates (AGD 1e-4, Adam 1e-3, SGD 0.5).
fn default_lr(source: Source, kind: OptimizerKind) -> f32 {
    let (agd, adam_family, sgd) = match source {
        Source::Movielens => (1e-3, 1e-2, 2.0),
        Source::Synthetic | Source::Criteo => (1e-4, 1e-3, 0.5),
    };
    match kind {
        OptimizerKind::Agd => agd,
        OptimizerKind::Sgd => sgd,
        OptimizerKind::Adam
        | OptimizerKind::AdamW
        | OptimizerKind::AdaBelief
        | OptimizerKind::RAdam => adam_family,
    }
}

#[derive(Parser, Debug)]
#[command(about = "Train a factorization machine on click logs with AGD or a baseline optimizer")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Where the examples come from.
    #[arg(long, value_enum, default_value_t = Source::Movielens)]
    source: Source,
    /// MovieLens-100k directory [default: $AGDLAB_MOVIELENS, data/movielens-100k, ../shared/data/movielens-100k].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The Criteo-format file for --source criteo (plain or gzip'd).
    #[arg(long)]
    criteo_file: Option<PathBuf>,
    /// Dimension of the factors.
    #[arg(long, default_value_t = 16)]
    dim: usize,
    /// Hidden sizes of a DeepFM head, e.g. 64,32 [default: none, a plain FM].
    #[arg(long, value_delimiter = ',')]
    mlp: Vec<usize>,
    /// How the tables' row-sparse gradients are applied (see the example's documentation).
    #[arg(long, value_enum, default_value_t = Sparse::Dense)]
    sparse: Sparse,
    /// Rows of the hashed table [default: 2^20 for criteo; synthetic: one row per value].
    #[arg(long)]
    table_size: Option<usize>,
    /// How Criteo's integer fields become features.
    #[arg(long, value_enum, default_value_t = Integers::Bucket)]
    integers: Integers,
    /// Seed of the train/test split or of the synthetic data [default: --seed].
    #[arg(long)]
    split_seed: Option<u64>,
    /// Skip malformed lines (counting them) instead of stopping at the first.
    #[arg(long)]
    skip_malformed: bool,
    /// Read at most this many examples of the Criteo file.
    #[arg(long)]
    max_examples: Option<usize>,
    /// Training and test examples of the synthetic set.
    #[arg(long, value_delimiter = ',', default_value = "500000,100000")]
    synthetic_size: Vec<usize>,
    /// Learning-rate schedule over all steps.
    #[arg(long, value_enum, default_value_t = ScheduleFlag::Cosine)]
    schedule: ScheduleFlag,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Source {
    Movielens,
    Synthetic,
    Criteo,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Sparse {
    Dense,
    Lazy,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Integers {
    Bucket,
    Log,
}

/// Click prediction: shuffled batches of the training set, log loss and AUC on both sets.
struct ClickTask<'a> {
    model: &'a FactorizationMachine,
    data: &'a CtrDataset,
    batch_size: usize,
    seed: u64,
    order: Vec<usize>,
    /// The epoch's training logits and labels so far (for the running train AUC).
    seen: (Vec<f32>, Vec<f32>),
    planted_test_auc: Option<f64>,
}

impl Task for ClickTask<'_> {
    fn steps_per_epoch(&self) -> usize {
        self.data.train.len().div_ceil(self.batch_size)
    }

    fn start_epoch(&mut self, epoch: usize) {
        self.order = epoch_order(self.data.train.len(), self.seed, epoch);
        self.seen = (Vec::new(), Vec::new());
    }

    fn train_step(&mut self, tape: &Tape, step: usize) -> StepOutput {
        let end = ((step + 1) * self.batch_size).min(self.order.len());
        let batch = self
            .data
            .train
            .batch(&self.order[step * self.batch_size..end]);
        let logits = self.model.forward(tape, &batch.ids, batch.values.as_ref());
        self.seen.0.extend(logits.value().to_vec());
        self.seen.1.extend(batch.labels.to_vec());
        StepOutput {
            loss: bce_with_logits(&logits, &batch.labels),
            examples: batch.ids.len() / self.model.num_fields(),
            sums: vec![],
        }
    }

    /// The running log loss and AUC of the epoch's predictions as they were made.
    fn train_metrics(&self, mean_loss: f64) -> Vec<(String, f64)> {
        let train_auc = auc(&self.seen.0, &self.seen.1).unwrap_or(f64::NAN);
        vec![
            ("train_logloss".into(), mean_loss),
            ("train_auc".into(), train_auc),
        ]
    }

    fn evaluate(&mut self) -> Vec<(String, f64)> {
        let (logloss, test_auc) = evaluate(self.model, &self.data.test);
        vec![
            ("test_logloss".into(), logloss),
            ("test_auc".into(), test_auc),
        ]
    }

    fn primary_metric(&self) -> (&'static str, Better) {
        ("test_auc", Better::Higher)
    }

    fn final_evaluation(&mut self) -> Vec<(String, f64)> {
        self.planted_test_auc
            .map(|a| ("planted_test_auc".to_string(), a))
            .into_iter()
            .collect()
    }
}

/// Log loss and AUC over a whole set, recording nothing.
fn evaluate(model: &FactorizationMachine, examples: &CtrExamples) -> (f64, f64) {
    let all: Vec<usize> = (0..examples.len()).collect();
    let mut logits = Vec::with_capacity(all.len());
    for chunk in all.chunks(8192) {
        let batch = examples.batch(chunk);
        logits.extend(
            model
                .forward(&Tape::no_grad(), &batch.ids, batch.values.as_ref())
                .value()
                .to_vec(),
        );
    }
    (
        log_loss_with_logits(&logits, examples.labels()),
        auc(&logits, examples.labels()).unwrap_or(f64::NAN),
    )
}

fn main() {
    let args: Args = parse_with_defaults(&[("epochs", "10"), ("batch_size", "1024")]);
    run_in_pool(args.common.threads, |threads| run(&args, threads));
}

/// The data set the flags ask for, its description, and the planted model's test AUC.
fn load(
    args: &Args,
    seed: u64,
) -> Result<(CtrDataset, String, Option<f64>), Box<dyn Error + Send + Sync>> {
    let report = |skipped: agdlab::data::Skipped| {
        if skipped.count > 0 {
            say!("{skipped}")
        }
    };
    Ok(match args.source {
        Source::Movielens => {
            let (movielens, skipped) =
                MovieLens::locate_and_load(args.data_dir.as_deref(), args.skip_malformed)?;
            report(skipped);
            (movielens.split(seed), "MovieLens-100k".into(), None)
        }
        Source::Synthetic => {
            let [train_examples, test_examples] = args.synthetic_size[..] else {
                return Err("--synthetic-size takes two numbers: training,test".into());
            };
            let config = SyntheticCtrConfig {
                train_examples,
                test_examples,
                table_size: args.table_size,
                seed,
                ..Default::default()
            };
            let synthetic = SyntheticCtr::generate(&config);
            let planted = synthetic.planted_test_auc();
            (
                synthetic.data,
                format!("synthetic Criteo-shaped (seed {seed})"),
                planted,
            )
        }
        Source::Criteo => {
            let path = args
                .criteo_file
                .as_deref()
                .ok_or("--source criteo needs --criteo-file PATH")?;
            let integers = match args.integers {
                Integers::Bucket => IntegerEncoding::Bucket,
                Integers::Log => IntegerEncoding::Log,
            };
            let table_size = args.table_size.unwrap_or(1 << 20);
            let options = CriteoOptions {
                table_size,
                integers,
                skip_malformed: args.skip_malformed,
                max_examples: args.max_examples,
            };
            let (examples, skipped) = criteo::read_criteo(path, &options)?;
            report(skipped);
            let (train, test) = examples.split_80_20(seed);
            (
                CtrDataset {
                    train,
                    test,
                    table_size,
                    field_names: criteo::field_names(),
                },
                path.display().to_string(),
                None,
            )
        }
    })
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error + Send + Sync>> {
    let c = &args.common;
    c.validate()?;
    if args.dim == 0 || args.table_size == Some(0) || args.mlp.contains(&0) {
        return Err("--dim, --table-size and the --mlp sizes must be at least 1".into());
    }
    let split_seed = args.split_seed.unwrap_or(c.seed);
    let (data, source, planted_test_auc) = load(args, split_seed)?;
    let fields = data.field_names.len();
    let config = FmConfig {
        mlp_hidden: args.mlp.clone(),
        ..FmConfig::new(data.table_size, fields, args.dim)
    };
    let model = FactorizationMachine::new(&config, &mut StdRng::seed_from_u64(c.seed));
    let optimizer_settings = c.optimizer_settings(|kind| default_lr(args.source, kind));
    let sparse = match args.sparse {
        Sparse::Dense => SparseMode::Dense,
        Sparse::Lazy => SparseMode::Lazy,
    };
    let mut optimizer = optimizer_settings
        .build(vec![
            ParamGroup::new(model.named_parameters()).sparse(sparse)
        ])?;
    let mut task = ClickTask {
        model: &model,
        data: &data,
        batch_size: c.batch_size,
        seed: c.seed,
        order: Vec::new(),
        seen: (Vec::new(), Vec::new()),
        planted_test_auc,
    };
    let mlp: Vec<String> = args.mlp.iter().map(|h| h.to_string()).collect();
    let kind = if args.mlp.is_empty() {
        "FM".to_string()
    } else {
        format!("DeepFM (MLP {})", mlp.join("-"))
    };
    let settings = c
        .run_settings(&optimizer_settings)
        .with("source", format!("{:?} {source}", args.source))
        .with("dim", args.dim)
        .with("mlp", mlp.join(","))
        .with("sparse", format!("{:?}", args.sparse))
        .with("table-size", data.table_size)
        .with("integers", format!("{:?}", args.integers))
        .with("split-seed", split_seed)
        .with("schedule", format!("{:?}", args.schedule))
        .with(
            "examples",
            format!("{}+{}", data.train.len(), data.test.len()),
        );
    let label = format!("{kind} dim {} on {source}, {}", args.dim, c.optimizer);
    say!(
        "{label} ({} parameters) | lr {:e}{} | {:?} table updates | {} train / {} test ({:.1}% positive) | {} fields, {} rows | batch {} | {threads} thread(s)",
        model.num_parameters(),
        optimizer_settings.lr,
        if c.optimizer == OptimizerKind::Agd {
            format!(" δ {:e}", c.delta)
        } else {
            String::new()
        },
        args.sparse,
        data.train.len(),
        data.test.len(),
        100.0 * data.train.positive_fraction(),
        fields,
        data.table_size,
        c.batch_size,
    );
    if let Some(planted) = planted_test_auc {
        say!("the planted model's own test AUC (the ceiling): {planted:.4}");
    }
    let schedule = args.schedule.build(c.epochs * task.steps_per_epoch());
    fit(
        &model,
        optimizer.as_mut(),
        schedule.as_ref(),
        &mut task,
        &c.train_config(label, "fm_ctr", settings),
    )?;
    Ok(())
}
