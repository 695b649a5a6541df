//! A word-level LSTM language model on Penn Treebank, with AGD (or any other optimizer).
//!
//! ```text
//! cargo run --release --example ptb_lstm                          # AGD, 2 x 200, 3 epochs
//! cargo run --release --example ptb_lstm -- --optimizer sgd       # PyTorch's recipe: lr 20
//! cargo run --release --example ptb_lstm -- --layers 3 --help     # every flag
//! ```
//!
//! The model and recipe of PyTorch's `word_language_model` example: embedding, LSTM and
//! decoder with dropout on the embeddings and on the LSTM's outputs (and between its
//! layers), untied weights, batch 20, 35-step windows, gradients clipped to norm 0.25.
//! Each epoch reads the training text as 20 parallel streams; the LSTM's state is carried
//! from one window to the next, detached (truncated back-propagation through time), and
//! reset at the start of each epoch. Perplexity is `exp` of the mean loss per token.
//! PTB is not committed: see `data/README.md` for where to put it.

use std::error::Error;
use std::path::PathBuf;

use agdlab::autograd::{Tape, Var};
use agdlab::data::ptb::{Ptb, Streams};
use agdlab::nn::{
    cross_entropy, init, Dropout, Embedding, Forward, Linear, Lstm, LstmConfig, Module, Walk,
};
use agdlab::optim::{Constant, CosineAnnealing, LrSchedule, ParamGroup, StepDecay};
use agdlab::say;
use agdlab::tensor::Tensor;
use agdlab::train::{
    fit, loss_and_perplexity, parse_with_defaults, perplexity_status, run_in_pool, Better,
    CommonArgs, OptimizerKind, StepOutput, Task,
};
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Default learning rate per optimizer (the recipes of issue 9; see README.md).
pub fn default_lr(kind: OptimizerKind) -> f32 {
    match kind {
        OptimizerKind::Agd => 3e-4,
        OptimizerKind::Sgd => 20.0,
        OptimizerKind::Adam
        | OptimizerKind::AdamW
        | OptimizerKind::AdaBelief
        | OptimizerKind::RAdam => 2e-3,
    }
}

#[derive(Parser, Debug)]
#[command(about = "Train an LSTM language model on Penn Treebank with AGD or a baseline optimizer")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Stacked LSTM layers (the paper uses 1, 2 and 3).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=3))]
    layers: u32,
    /// Size of the word embeddings.
    #[arg(long, default_value_t = 200)]
    embedding_size: usize,
    /// Hidden units per LSTM layer.
    #[arg(long, default_value_t = 200)]
    hidden_size: usize,
    /// Dropout on embeddings, between LSTM layers and on the LSTM's outputs.
    #[arg(long, default_value_t = 0.2)]
    dropout: f32,
    /// Steps per window of truncated back-propagation through time.
    #[arg(long, default_value_t = 35)]
    seq_len: usize,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = 0.25)]
    clip: f32,
    /// Learning-rate schedule over all steps.
    #[arg(long, value_enum, default_value_t = Schedule::Constant)]
    schedule: Schedule,
    /// With `--schedule step`: the factor applied to the learning rate after each epoch.
    #[arg(long, default_value_t = 0.25)]
    lr_decay: f32,
    /// Per-parameter optimizer diagnostics CSV (AGD's SGD-mode fraction per layer)
    /// [default: runs/ptb_lstm_<optimizer>_diagnostics.csv].
    #[arg(long)]
    diagnostics: Option<PathBuf>,
    /// Directory with ptb.{train,valid,test}.txt [default: $AGDLAB_PTB, data/ptb, ../shared/data/ptb].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Train on the first N training tokens only (quick runs; the vocabulary is still the whole file's).
    #[arg(long)]
    train_tokens: Option<usize>,
    /// Evaluate on the first N validation and test tokens only (quick runs).
    #[arg(long)]
    eval_tokens: Option<usize>,
}

/// How the learning rate moves over the run's steps.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Schedule {
    /// The peak learning rate throughout.
    Constant,
    /// From the peak learning rate down to 0 along a half cosine.
    Cosine,
    /// Multiplied by --lr-decay after every epoch.
    Step,
}

/// Embedding -> dropout -> LSTM -> dropout -> decoder, with the names of PyTorch's
/// `word_language_model` (`encoder.weight`, `rnn.weight_ih_l0`, ..., `decoder.bias`).
pub struct LanguageModel {
    pub encoder: Embedding,
    pub rnn: Lstm,
    pub decoder: Linear,
    pub drop: Dropout,
}

impl LanguageModel {
    /// `word_language_model`'s initialisation: embeddings and decoder weights from
    /// U(-0.1, 0.1), decoder bias 0, the LSTM's own (PyTorch's) initialisation.
    pub fn new(
        vocab: usize,
        embedding: usize,
        hidden: usize,
        layers: usize,
        dropout: f32,
        seed: u64,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let encoder = Embedding::new(vocab, embedding, None, &mut rng);
        encoder
            .weight
            .set(init::uniform(&[vocab, embedding], 0.1, &mut rng))
            .expect("same shape");
        let config = LstmConfig {
            num_layers: layers,
            dropout,
            batch_first: false,
        };
        let rnn = Lstm::new(embedding, hidden, config, &mut rng);
        let decoder = Linear::new(hidden, vocab, true, &mut rng);
        decoder
            .weight
            .set(init::uniform(&[vocab, hidden], 0.1, &mut rng))
            .expect("same shape");
        decoder
            .bias
            .as_ref()
            .expect("has a bias")
            .set(Tensor::zeros(&[vocab]))
            .expect("same shape");
        LanguageModel {
            encoder,
            rnn,
            decoder,
            drop: Dropout::new(dropout, seed.wrapping_add(1)),
        }
    }

    /// Logits `[len·batch, vocab]` for the ids of a `[len, batch]` window, and the new state.
    pub fn forward(
        &self,
        tape: &Tape,
        ids: &[usize],
        len: usize,
        state: Option<(Var, Var)>,
    ) -> (Var, (Var, Var)) {
        let embedded = self
            .drop
            .forward(&self.encoder.forward(tape, ids, &[len, ids.len() / len]));
        let (output, state) = self
            .rnn
            .forward(&embedded, state.as_ref().map(|(h, c)| (h, c)));
        let hidden = self
            .drop
            .forward(&output)
            .reshape(&[ids.len() as isize, -1]);
        (self.decoder.forward(&hidden), state)
    }
}

impl Module for LanguageModel {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.child("encoder", &self.encoder);
        walk.child("rnn", &self.rnn);
        walk.child("decoder", &self.decoder);
        self.drop.visit(walk);
    }
}

/// Next-word prediction over PTB's streams, the LSTM state carried across windows.
pub struct LanguageModelling<'a> {
    pub model: &'a LanguageModel,
    pub train: Streams,
    pub valid: Streams,
    pub test: Streams,
    pub seq_len: usize,
    /// The state after the last window, detached; `None` at the start of an epoch.
    pub state: Option<(Tensor, Tensor)>,
}

impl Task for LanguageModelling<'_> {
    fn steps_per_epoch(&self) -> usize {
        self.train.windows(self.seq_len)
    }

    fn start_epoch(&mut self, _epoch: usize) {
        self.state = None; // the streams are read in order: no shuffling
    }

    fn train_step(&mut self, tape: &Tape, step: usize) -> StepOutput {
        let window = self.train.window(step, self.seq_len);
        let state = self
            .state
            .take()
            .map(|(h, c)| (tape.input(h), tape.input(c)));
        let (logits, (h, c)) = self.model.forward(tape, &window.inputs, window.len, state);
        self.state = Some((h.value().clone(), c.value().clone())); // detached
        StepOutput {
            loss: cross_entropy(&logits, &window.targets),
            examples: window.targets.len(),
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
pub fn mean_loss(model: &LanguageModel, streams: &Streams, seq_len: usize) -> f64 {
    let tape = Tape::no_grad();
    let (mut total, mut state) = (0.0f64, None);
    for w in 0..streams.windows(seq_len) {
        let window = streams.window(w, seq_len);
        let (logits, next) = model.forward(&tape, &window.inputs, window.len, state);
        total +=
            cross_entropy(&logits, &window.targets).item() as f64 * window.targets.len() as f64;
        state = Some(next);
    }
    total / streams.predictions().max(1) as f64
}

fn main() {
    let args: Args =
        parse_with_defaults(&[("epochs", "3"), ("batch_size", "20"), ("momentum", "0")]);
    run_in_pool(args.common.threads, |threads| run(&args, threads));
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error + Send + Sync>> {
    let c = &args.common;
    c.validate()?;
    if args.seq_len == 0 || args.embedding_size == 0 || args.hidden_size == 0 {
        return Err("--seq-len, --embedding-size and --hidden-size must be at least 1".into());
    }
    if !(0.0..1.0).contains(&args.dropout) || args.clip.is_nan() || args.clip < 0.0 {
        return Err(format!(
            "--dropout {} must be in [0, 1) and --clip {} at least 0",
            args.dropout, args.clip
        )
        .into());
    }
    let mut ptb = Ptb::locate_and_load(args.data_dir.as_deref())?;
    ptb.train.truncate(args.train_tokens.unwrap_or(usize::MAX));
    for split in [&mut ptb.valid, &mut ptb.test] {
        split.truncate(args.eval_tokens.unwrap_or(usize::MAX));
    }
    let (layers, vocab) = (args.layers as usize, ptb.vocab.len());
    let model = LanguageModel::new(
        vocab,
        args.embedding_size,
        args.hidden_size,
        layers,
        args.dropout,
        c.seed,
    );
    let eval_batch = 10; // as word_language_model
    let mut task = LanguageModelling {
        model: &model,
        train: Streams::new(&ptb.train, c.batch_size),
        valid: Streams::new(&ptb.valid, eval_batch),
        test: Streams::new(&ptb.test, eval_batch),
        seq_len: args.seq_len,
        state: None,
    };
    if task.valid.windows(args.seq_len) == 0 || task.test.windows(args.seq_len) == 0 {
        return Err(format!("too few validation or test tokens for {eval_batch} streams").into());
    }
    let optimizer_settings = c.optimizer_settings(default_lr);
    let mut optimizer =
        optimizer_settings.build(vec![ParamGroup::new(model.named_parameters())])?;
    let steps = task.steps_per_epoch();
    let schedule: Box<dyn LrSchedule> = match args.schedule {
        Schedule::Constant => Box::new(Constant),
        Schedule::Cosine => Box::new(CosineAnnealing {
            t_max: c.epochs * steps.max(1),
            min_factor: 0.0,
        }),
        Schedule::Step => Box::new(StepDecay {
            step_size: steps.max(1),
            gamma: args.lr_decay,
        }),
    };
    let model_name = format!(
        "{layers}x{} LSTM, embedding {}",
        args.hidden_size, args.embedding_size
    );
    let settings = c
        .run_settings(&optimizer_settings)
        .with("model", &model_name)
        .with("dropout", args.dropout)
        .with("seq-len", args.seq_len)
        .with("clip", args.clip)
        .with("schedule", format!("{:?} {}", args.schedule, args.lr_decay))
        .with("train-tokens", ptb.train.len())
        .with("eval-tokens", ptb.valid.len());
    let label = format!("PTB {model_name}, {}", c.optimizer);
    say!(
        "{label} ({} parameters) | lr {:e}{} | {} train tokens, vocabulary {vocab} | batch {} x {} steps | {threads} thread(s)",
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
    let mut config = c.train_config(label, "ptb_lstm", settings);
    config.clip_grad_norm = (args.clip > 0.0).then_some(args.clip);
    config.diagnostics = Some(
        args.diagnostics
            .clone()
            .unwrap_or_else(|| format!("runs/ptb_lstm_{}_diagnostics.csv", c.optimizer).into()),
    );
    fit(
        &model,
        optimizer.as_mut(),
        schedule.as_ref(),
        &mut task,
        &config,
    )?;
    Ok(())
}
