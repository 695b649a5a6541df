//! A decoder-only Transformer language model on Penn Treebank, with AGD (or any other
//! optimizer): the stand-in for the paper's Transformer results.
//!
//! ```text
//! cargo run --release --example ptb_transformer                         # AGD, lr 3e-4, δ 1e-14
//! cargo run --release --example ptb_transformer -- --optimizer adamw    # lr 1e-3
//! cargo run --release --example ptb_transformer -- --delta 1e-5         # more SGD mode
//! ```
//!
//! The model: token and learned position embeddings (window 35, both drawn from
//! N(0, 0.02²) as GPT-2 draws them; `--embedding-std 1` gives `nn.Embedding`'s N(0, 1),
//! with which every optimizer learns far more slowly here) with dropout, `L` pre-LN
//! blocks (self-attention under a causal mask, then a GELU feed-forward block of width
//! 4·D, dropout 0.1), a final LayerNorm and an untied linear head. Windows of 35 tokens
//! of 20 parallel streams, with no state carried between windows; gradients clipped to
//! norm 1.0; 200 warm-up steps, then a cosine schedule to 0; decoupled weight decay 0.01
//! on matrices only (embeddings, projections, head), none on biases and norms.
//!
//! After training, the SGD-mode share of AGD's coordinates per parameter kind
//! (embedding, attention, feed-forward, norm, head) is printed for every epoch, from the
//! diagnostics CSV. PTB is not committed: see `data/README.md` for where to put it.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use agdlab::autograd::{Tape, Var};
use agdlab::data::ptb::{Ptb, Streams, Window};
use agdlab::nn::{
    causal_mask, cross_entropy, Activation, Dropout, Embedding, Forward, LayerConfig, LayerNorm,
    LearnedPositions, Linear, Module, TransformerEncoderLayer, Walk,
};
use agdlab::optim::{CosineAnnealing, LinearWarmup, ParamGroup};
use agdlab::say;
use agdlab::train::{
    fit, loss_and_perplexity, parse_with_defaults, perplexity_status, run_in_pool, Better,
    CommonArgs, OptimizerKind, StepOutput, Task,
};
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Default learning rate per optimizer (issue 11's recipes; AGD's README: about a tenth
/// of AdamW's... here a third, the best of the PyTorch runs).
pub fn default_lr(kind: OptimizerKind) -> f32 {
    match kind {
        OptimizerKind::Agd => 3e-4,
        OptimizerKind::Sgd => 0.1,
        OptimizerKind::Adam
        | OptimizerKind::AdamW
        | OptimizerKind::AdaBelief
        | OptimizerKind::RAdam => 1e-3,
    }
}

#[derive(Parser, Debug)]
#[command(
    about = "Train a Transformer language model on Penn Treebank with AGD or a baseline optimizer"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Transformer blocks.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Model width D (the feed-forward block is 4·D wide).
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Attention heads (must divide --dim).
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Dropout on the embeddings, in attention and in every block.
    #[arg(long, default_value_t = 0.1)]
    dropout: f32,
    /// Standard deviation of the token and position embeddings at initialisation:
    /// GPT-2's 0.02 by default; 1 is PyTorch's `nn.Embedding` default, with which every
    /// optimizer learns far more slowly here (see the README).
    #[arg(long, default_value_t = 0.02)]
    embedding_std: f32,
    /// Tokens per window (also the size of the position table).
    #[arg(long, default_value_t = 35)]
    seq_len: usize,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    clip: f32,
    /// Linear warm-up steps before the cosine schedule.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Per-parameter optimizer diagnostics CSV (AGD's SGD-mode fraction)
    /// (default: runs/ptb_transformer_OPTIMIZER_diagnostics.csv).
    #[arg(long)]
    diagnostics: Option<PathBuf>,
    /// Directory with ptb.{train,valid,test}.txt (default: $AGDLAB_PTB, data/ptb, ../shared/data/ptb).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Train on the first N training tokens only (quick runs; the vocabulary is still the whole file's).
    #[arg(long)]
    train_tokens: Option<usize>,
    /// Evaluate on the first N validation and test tokens only (quick runs).
    #[arg(long)]
    eval_tokens: Option<usize>,
}

/// Embeddings -> pre-LN blocks -> LayerNorm -> head, named `embedding.weight`,
/// `positions.weight`, `blocks.{i}.self_attn.in_proj_weight`, ..., `norm.weight`,
/// `head.weight`.
pub struct TransformerLm {
    pub embedding: Embedding,
    pub positions: LearnedPositions,
    pub blocks: Vec<TransformerEncoderLayer>,
    pub norm: LayerNorm,
    pub head: Linear,
    pub drop: Dropout,
}

impl TransformerLm {
    /// Token and position embeddings from N(0, `embedding_std`²) (0.02 is GPT-2's
    /// initialisation, 1.0 PyTorch's `nn.Embedding` default); every layer with PyTorch's
    /// own initialisation.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vocab: usize,
        dim: usize,
        heads: usize,
        layers: usize,
        window: usize,
        dropout: f32,
        embedding_std: f32,
        seed: u64,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let block = LayerConfig {
            dim_feedforward: 4 * dim,
            dropout,
            activation: Activation::Gelu,
            norm_first: true,
            ..LayerConfig::new(dim, heads)
        };
        let embedding = Embedding::new(vocab, dim, None, &mut rng);
        let positions = LearnedPositions::new(window, dim, &mut rng);
        // Both tables are drawn from N(0, 1); scaling gives N(0, std²) from the same draws.
        for table in [&embedding.weight, &positions.weight] {
            table
                .set(table.value().mul_scalar(embedding_std))
                .expect("a table keeps its shape");
        }
        TransformerLm {
            embedding,
            positions,
            blocks: (0..layers)
                .map(|_| TransformerEncoderLayer::new(block, &mut rng))
                .collect(),
            norm: LayerNorm::new(dim, 1e-5),
            head: Linear::new(dim, vocab, true, &mut rng),
            drop: Dropout::new(dropout, seed.wrapping_add(1)),
        }
    }

    /// Logits `[batch·len, vocab]` for batch-first ids `[batch, len]` (row-major); each
    /// position sees itself and the positions before it.
    pub fn forward(&self, tape: &Tape, ids: &[usize], batch: usize) -> Var {
        let len = ids.len() / batch;
        let tokens = self.embedding.forward(tape, ids, &[batch, len]);
        let mut x = self.drop.forward(&self.positions.forward(&tokens));
        let mask = causal_mask(len);
        for block in &self.blocks {
            x = block.forward(&x, Some(&mask));
        }
        self.head
            .forward(&self.norm.forward(&x))
            .reshape(&[(batch * len) as isize, -1])
    }
}

impl Module for TransformerLm {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("embedding", &self.embedding);
        walk.child("positions", &self.positions);
        for (i, block) in self.blocks.iter().enumerate() {
            walk.child(&format!("blocks.{i}"), block);
        }
        walk.child("norm", &self.norm);
        walk.child("head", &self.head);
        self.drop.visit(walk);
    }
}

/// A window of `[len, batch]` streams as batch-first inputs and targets `[batch, len]`.
fn batch_first(window: &Window, batch: usize) -> (Vec<usize>, Vec<usize>) {
    let transpose = |seq_major: &[usize]| -> Vec<usize> {
        (0..batch)
            .flat_map(|b| (0..window.len).map(move |t| seq_major[t * batch + b]))
            .collect()
    };
    (transpose(&window.inputs), transpose(&window.targets))
}

/// Next-word prediction over windows of PTB's streams; every window starts afresh.
pub struct LanguageModelling<'a> {
    pub model: &'a TransformerLm,
    pub train: Streams,
    pub valid: Streams,
    pub test: Streams,
    pub seq_len: usize,
}

impl Task for LanguageModelling<'_> {
    fn steps_per_epoch(&self) -> usize {
        self.train.windows(self.seq_len)
    }

    fn start_epoch(&mut self, _epoch: usize) {} // the streams are read in order

    fn train_step(&mut self, tape: &Tape, step: usize) -> StepOutput {
        let window = self.train.window(step, self.seq_len);
        let (inputs, targets) = batch_first(&window, self.train.batch());
        let logits = self.model.forward(tape, &inputs, self.train.batch());
        StepOutput {
            loss: cross_entropy(&logits, &targets),
            examples: targets.len(),
            sums: vec![],
        }
    }

    fn train_metrics(&self, mean_loss: f64) -> Vec<(String, f64)> {
        loss_and_perplexity("train", mean_loss)
    }

    fn progress_status(&self, mean_loss: f64) -> String {
        perplexity_status(mean_loss)
    }

    fn evaluate(&mut self) -> Vec<(String, f64)> {
        loss_and_perplexity("valid", mean_loss(self.model, &self.valid, self.seq_len))
    }

    fn primary_metric(&self) -> (&'static str, Better) {
        ("valid_ppl", Better::Lower)
    }

    fn final_evaluation(&mut self) -> Vec<(String, f64)> {
        loss_and_perplexity("test", mean_loss(self.model, &self.test, self.seq_len))
    }
}

/// Mean loss per predicted token over every window of `streams`, recording nothing.
pub fn mean_loss(model: &TransformerLm, streams: &Streams, seq_len: usize) -> f64 {
    let tape = Tape::no_grad();
    let mut total = 0.0f64;
    for w in 0..streams.windows(seq_len) {
        let window = streams.window(w, seq_len);
        let (inputs, targets) = batch_first(&window, streams.batch());
        let logits = model.forward(&tape, &inputs, streams.batch());
        total += cross_entropy(&logits, &targets).item() as f64 * targets.len() as f64;
    }
    total / streams.predictions().max(1) as f64
}

/// The kind of a parameter, from its name, for the SGD-mode table.
pub fn parameter_kind(name: &str) -> &'static str {
    if name.starts_with("embedding.") || name.starts_with("positions.") {
        "embedding"
    } else if name.contains("self_attn.") {
        "attention"
    } else if name.contains(".linear1.") || name.contains(".linear2.") {
        "feed-forward"
    } else if name.contains("norm") {
        "norm"
    } else {
        "head"
    }
}

/// Per epoch (from 1), per parameter kind: the share of coordinates in SGD mode.
pub type SgdModeTable = BTreeMap<usize, BTreeMap<&'static str, f64>>;

/// Per epoch and parameter kind: the share of coordinates in SGD mode, from a
/// diagnostics CSV (`epoch,step,param,key,value` rows; the last row of each epoch and
/// parameter, its mean over the epoch, counts), each parameter weighted by its size.
pub fn sgd_mode_by_kind(
    csv: &Path,
    sizes: &BTreeMap<String, usize>,
) -> Result<SgdModeTable, Box<dyn Error + Send + Sync>> {
    let text = std::fs::read_to_string(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let mut last: BTreeMap<(usize, String), f64> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if let [epoch, _step, param, "sgd_mode_fraction", value] = fields[..] {
            if let (Ok(epoch), Ok(value)) = (epoch.parse(), value.parse()) {
                last.insert((epoch, param.to_string()), value);
            }
        }
    }
    let mut table: BTreeMap<usize, BTreeMap<&'static str, (f64, f64)>> = BTreeMap::new();
    for ((epoch, param), fraction) in last {
        if let Some(&size) = sizes.get(&param) {
            let entry = table
                .entry(epoch)
                .or_default()
                .entry(parameter_kind(&param))
                .or_default();
            entry.0 += fraction * size as f64;
            entry.1 += size as f64;
        }
    }
    Ok(table
        .into_iter()
        .map(|(epoch, kinds)| {
            (
                epoch,
                kinds
                    .into_iter()
                    .map(|(k, (sum, n))| (k, sum / n))
                    .collect(),
            )
        })
        .collect())
}

fn main() {
    let args: Args = parse_with_defaults(&[
        ("epochs", "3"),
        ("batch_size", "20"),
        ("delta", "1e-14"),
        ("weight_decay", "0.01"),
    ]);
    run_in_pool(args.common.threads, |threads| run(&args, threads));
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error + Send + Sync>> {
    let c = &args.common;
    c.validate()?;
    if args.seq_len == 0
        || args.dim == 0
        || args.layers == 0
        || args.heads == 0
        || !args.dim.is_multiple_of(args.heads)
    {
        return Err(format!(
            "--seq-len, --dim, --layers and --heads must be at least 1, and --heads {} must divide --dim {}",
            args.heads, args.dim
        )
        .into());
    }
    if !(0.0..1.0).contains(&args.dropout)
        || args.clip.is_nan()
        || args.clip < 0.0
        || !(args.embedding_std > 0.0 && args.embedding_std.is_finite())
    {
        return Err(format!(
            "--dropout {} must be in [0, 1), --clip {} at least 0 and --embedding-std {} above 0",
            args.dropout, args.clip, args.embedding_std
        )
        .into());
    }
    let mut ptb = Ptb::locate_and_load(args.data_dir.as_deref())?;
    ptb.train.truncate(args.train_tokens.unwrap_or(usize::MAX));
    for split in [&mut ptb.valid, &mut ptb.test] {
        split.truncate(args.eval_tokens.unwrap_or(usize::MAX));
    }
    let vocab = ptb.vocab.len();
    let model = TransformerLm::new(
        vocab,
        args.dim,
        args.heads,
        args.layers,
        args.seq_len,
        args.dropout,
        args.embedding_std,
        c.seed,
    );
    let eval_batch = 10;
    let mut task = LanguageModelling {
        model: &model,
        train: Streams::new(&ptb.train, c.batch_size),
        valid: Streams::new(&ptb.valid, eval_batch),
        test: Streams::new(&ptb.test, eval_batch),
        seq_len: args.seq_len,
    };
    if task.steps_per_epoch() == 0
        || task.valid.windows(args.seq_len) == 0
        || task.test.windows(args.seq_len) == 0
    {
        return Err("too few training, validation or test tokens for one window".into());
    }
    let optimizer_settings = c.optimizer_settings(default_lr);
    let groups = ParamGroup::split(
        model.named_parameters(),
        |_, p| p.shape().len() >= 2,
        |g| g.set("weight_decay", 0.0),
    );
    let mut optimizer = optimizer_settings.build(groups)?;
    let total = c.epochs * task.steps_per_epoch();
    let schedule = LinearWarmup::new(
        args.warmup,
        1.0 / args.warmup.max(1) as f32,
        CosineAnnealing {
            t_max: total.saturating_sub(args.warmup).max(1),
            min_factor: 0.0,
        },
    );
    let model_name = format!(
        "{} x D {} ({} heads) pre-LN Transformer",
        args.layers, args.dim, args.heads
    );
    let settings = c
        .run_settings(&optimizer_settings)
        .with("model", &model_name)
        .with("dropout", args.dropout)
        .with("embedding-std", args.embedding_std)
        .with("seq-len", args.seq_len)
        .with("clip", args.clip)
        .with("warmup", args.warmup)
        .with("train-tokens", ptb.train.len())
        .with("eval-tokens", ptb.valid.len());
    let label = format!("PTB {model_name}, {}", c.optimizer);
    say!(
        "{label} ({} parameters) | lr {:e}{} | {} train tokens, vocabulary {vocab} | batch {} x {} tokens | {threads} thread(s)",
        model.num_parameters(),
        optimizer_settings.lr,
        if c.optimizer == OptimizerKind::Agd {
            format!(" δ {:e}", c.delta)
        } else {
            String::new()
        },
        ptb.train.len(),
        c.batch_size,
        args.seq_len,
    );
    let mut config = c.train_config(label, "ptb_transformer", settings);
    config.clip_grad_norm = (args.clip > 0.0).then_some(args.clip);
    let diagnostics = args
        .diagnostics
        .clone()
        .unwrap_or_else(|| format!("runs/ptb_transformer_{}_diagnostics.csv", c.optimizer).into());
    config.diagnostics = Some(diagnostics.clone());
    fit(&model, optimizer.as_mut(), &schedule, &mut task, &config)?;

    if c.optimizer == OptimizerKind::Agd {
        let sizes = model
            .named_parameters()
            .into_iter()
            .map(|(n, p)| (n, p.numel()))
            .collect();
        let table = sgd_mode_by_kind(&diagnostics, &sizes)?;
        say!("AGD's coordinates in SGD mode, per parameter kind (mean over each epoch):");
        say!("| epoch | embedding | attention | feed-forward | norm | head |");
        say!("|---|---|---|---|---|---|");
        for (epoch, kinds) in table {
            let cell = |k: &str| {
                kinds
                    .get(k)
                    .map_or("—".to_string(), |f| format!("{:.1}%", 100.0 * f))
            };
            say!(
                "| {epoch} | {} | {} | {} | {} | {} |",
                cell("embedding"),
                cell("attention"),
                cell("feed-forward"),
                cell("norm"),
                cell("head")
            );
        }
    }
    Ok(())
}
