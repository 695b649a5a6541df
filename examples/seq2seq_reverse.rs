//! An encoder-decoder Transformer learns to reverse random token sequences: the shape of
//! translation (a source read by an encoder, a target written by a decoder through
//! cross-attention, padding masks on both sides) on a task that needs no data set.
//!
//! ```text
//! cargo run --release --example seq2seq_reverse                   # AGD, δ 1e-14
//! cargo run --release --example seq2seq_reverse -- --optimizer adamw
//! ```
//!
//! Sequences of 8 to 24 symbols (16 kinds) are drawn fresh for every step from the seed,
//! the step and the epoch; the decoder is trained with teacher forcing; evaluation
//! decodes 512 held-out sequences greedily and counts the exactly reversed ones.

use std::error::Error;

use agdlab::autograd::{Param, Tape, Var};
use agdlab::nn::{
    causal_mask, init, key_padding_mask, Activation, CrossEntropyLoss, Forward, LayerConfig,
    LayerNorm, LearnedPositions, Linear, Module, TransformerDecoderLayer, TransformerEncoderLayer,
    Walk,
};
use agdlab::optim::{CosineAnnealing, LinearWarmup, ParamGroup};
use agdlab::say;
use agdlab::tensor::Tensor;
use agdlab::train::{
    fit, parse_with_defaults, run_in_pool, Better, CommonArgs, OptimizerKind, StepOutput, Task,
};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PAD: usize = 0;
const BOS: usize = 1;
const EOS: usize = 2;
const SYMBOLS: usize = 16;
const VOCAB: usize = 3 + SYMBOLS;
const MAX_LEN: usize = 24;

#[derive(Parser, Debug)]
#[command(about = "Train an encoder-decoder Transformer to reverse random sequences")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Training steps per epoch.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Model width d_model (4 heads, feed-forward 4·d).
    #[arg(long, default_value_t = 64)]
    dim: usize,
    /// Encoder and decoder layers, each.
    #[arg(long, default_value_t = 2)]
    layers: usize,
}

fn default_lr(kind: OptimizerKind) -> f32 {
    match kind {
        OptimizerKind::Agd => 3e-4,
        OptimizerKind::Sgd => 0.1,
        _ => 1e-3,
    }
}

/// Token embedding (shared by both sides), learned positions, pre-LN layers, a head.
pub struct Reverser {
    embedding: Param,
    positions: LearnedPositions,
    encoder: Vec<TransformerEncoderLayer>,
    encoder_norm: LayerNorm,
    decoder: Vec<TransformerDecoderLayer>,
    decoder_norm: LayerNorm,
    head: Linear,
}

impl Module for Reverser {
    fn visit(&self, walk: &mut Walk<'_>) {
        walk.param("embedding.weight", &self.embedding);
        walk.child("positions", &self.positions);
        for (i, layer) in self.encoder.iter().enumerate() {
            walk.child(&format!("encoder.{i}"), layer);
        }
        walk.child("encoder_norm", &self.encoder_norm);
        for (i, layer) in self.decoder.iter().enumerate() {
            walk.child(&format!("decoder.{i}"), layer);
        }
        walk.child("decoder_norm", &self.decoder_norm);
        walk.child("head", &self.head);
    }
}

/// Token ids `[batch, len]` (row-major) as embeddings plus positions.
fn embed(model: &Reverser, tape: &Tape, ids: &[usize], batch: usize) -> Var {
    let len = ids.len() / batch;
    let rows = tape.param(&model.embedding).embedding(ids, Some(PAD));
    model
        .positions
        .forward(&rows.reshape(&[batch as isize, len as isize, -1]))
}

impl Reverser {
    /// A model of width `dim` (4 heads, feed-forward 4·dim, GELU, pre-LN, no dropout)
    /// with `layers` encoder and `layers` decoder layers, initialised from `seed`.
    pub fn new(dim: usize, layers: usize, seed: u64) -> Reverser {
        let mut rng = StdRng::seed_from_u64(seed);
        let layer = LayerConfig {
            dim_feedforward: 4 * dim,
            dropout: 0.0,
            activation: Activation::Gelu,
            norm_first: true,
            ..LayerConfig::new(dim, 4)
        };
        Reverser {
            embedding: Param::new(init::normal(&[VOCAB, dim], 1.0, &mut rng)),
            positions: LearnedPositions::new(MAX_LEN + 2, dim, &mut rng),
            encoder: (0..layers)
                .map(|_| TransformerEncoderLayer::new(layer, &mut rng))
                .collect(),
            encoder_norm: LayerNorm::new(dim, 1e-5),
            decoder: (0..layers)
                .map(|_| TransformerDecoderLayer::new(layer, &mut rng))
                .collect(),
            decoder_norm: LayerNorm::new(dim, 1e-5),
            head: Linear::new(dim, VOCAB, true, &mut rng),
        }
    }

    /// The encoder's memory `[batch, ls, D]` of the sources, and their padding mask.
    fn encode(&self, tape: &Tape, src: &[Vec<usize>]) -> (Var, Tensor) {
        let (src_ids, src_pad) = padded(src);
        let src_mask = key_padding_mask(&src_pad);
        let mut memory = embed(self, tape, &src_ids, src.len());
        for layer in &self.encoder {
            memory = layer.forward(&memory, Some(&src_mask));
        }
        (self.encoder_norm.forward(&memory), src_mask)
    }

    /// Logits `[batch·lt, VOCAB]` for target inputs `tgt` `[batch, lt]` given the memory.
    fn decode(&self, tape: &Tape, memory: &Var, src_mask: &Tensor, tgt: &[Vec<usize>]) -> Var {
        let (tgt_ids, tgt_pad) = padded(tgt);
        let self_mask = causal_mask(tgt_pad[0].len()).add(&key_padding_mask(&tgt_pad));
        let mut x = embed(self, tape, &tgt_ids, tgt.len());
        for layer in &self.decoder {
            x = layer.forward(&x, memory, Some(&self_mask), Some(src_mask));
        }
        self.head
            .forward(&self.decoder_norm.forward(&x))
            .reshape(&[-1, VOCAB as isize])
    }
}

/// Pad to the longest sequence: the ids row-major and where the padding is.
fn padded(seqs: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<bool>>) {
    let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
    let ids = seqs
        .iter()
        .flat_map(|s| {
            s.iter()
                .copied()
                .chain(std::iter::repeat_n(PAD, len - s.len()))
        })
        .collect();
    (
        ids,
        seqs.iter()
            .map(|s| (0..len).map(|i| i >= s.len()).collect())
            .collect(),
    )
}

/// Source sequences, the decoder's inputs (BOS + reversed) and its targets (reversed + EOS).
pub struct Examples {
    pub src: Vec<Vec<usize>>,
    pub inputs: Vec<Vec<usize>>,
    pub targets: Vec<Vec<usize>>,
}

/// `n` random sequences of 8 to `MAX_LEN` symbols.
pub fn sample(rng: &mut StdRng, n: usize) -> Examples {
    let src: Vec<Vec<usize>> = (0..n)
        .map(|_| {
            (0..rng.random_range(8..=MAX_LEN))
                .map(|_| 3 + rng.random_range(0..SYMBOLS))
                .collect()
        })
        .collect();
    let reversed: Vec<Vec<usize>> = src
        .iter()
        .map(|s| s.iter().rev().copied().collect())
        .collect();
    let inputs = reversed
        .iter()
        .map(|r| std::iter::once(BOS).chain(r.iter().copied()).collect())
        .collect();
    let targets = reversed
        .iter()
        .map(|r| r.iter().copied().chain([EOS]).collect())
        .collect();
    Examples {
        src,
        inputs,
        targets,
    }
}

pub struct Reverse<'a> {
    pub model: &'a Reverser,
    pub steps: usize,
    pub batch: usize,
    pub seed: u64,
    pub epoch: usize,
}

impl Task for Reverse<'_> {
    fn steps_per_epoch(&self) -> usize {
        self.steps
    }

    fn start_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
    }

    fn train_step(&mut self, tape: &Tape, step: usize) -> StepOutput {
        let stream = (self.seed << 32) ^ ((self.epoch * self.steps + step) as u64 + 1);
        let Examples {
            src,
            inputs,
            targets,
        } = sample(&mut StdRng::seed_from_u64(stream), self.batch);
        let (memory, src_mask) = self.model.encode(tape, &src);
        let logits = self.model.decode(tape, &memory, &src_mask, &inputs);
        let (target_ids, _) = padded(&targets);
        let tokens = target_ids.iter().filter(|&&t| t != PAD).count();
        let loss = CrossEntropyLoss {
            ignore_index: Some(PAD),
            ..Default::default()
        }
        .forward(&logits, &target_ids);
        StepOutput {
            loss,
            examples: tokens,
            sums: vec![],
        }
    }

    fn evaluate(&mut self) -> Vec<(String, f64)> {
        let Examples { src, targets, .. } =
            sample(&mut StdRng::seed_from_u64(u64::MAX - self.seed), 512);
        let decoded = greedy_decode(self.model, &src);
        let exact = decoded.iter().zip(&targets).filter(|(d, t)| d == t).count();
        vec![("exact_acc".into(), exact as f64 / src.len() as f64)]
    }

    fn primary_metric(&self) -> (&'static str, Better) {
        ("exact_acc", Better::Higher)
    }
}

/// Decode each source greedily, one token at a time, up to EOS (included) or
/// `MAX_LEN + 1` tokens.
pub fn greedy_decode(model: &Reverser, src: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let tape = Tape::no_grad();
    let (memory, src_mask) = model.encode(&tape, src);
    let mut outputs: Vec<Vec<usize>> = vec![Vec::new(); src.len()];
    for _ in 0..=MAX_LEN {
        let inputs: Vec<Vec<usize>> = outputs
            .iter()
            .map(|o| std::iter::once(BOS).chain(o.iter().copied()).collect())
            .collect();
        let logits = model.decode(&tape, &memory, &src_mask, &inputs);
        // The decoder's rows are padded to the longest input: finished sequences stop
        // growing, so the first input is not always that long.
        let len = inputs.iter().map(Vec::len).max().unwrap_or(0);
        let next = logits.value().argmax_dim(1);
        for (b, out) in outputs.iter_mut().enumerate() {
            if out.last() != Some(&EOS) {
                out.push(next[b * len + len - 1]);
            }
        }
        if outputs.iter().all(|o| o.last() == Some(&EOS)) {
            break;
        }
    }
    outputs
}

fn main() {
    let args: Args =
        parse_with_defaults(&[("epochs", "20"), ("batch_size", "64"), ("delta", "1e-14")]);
    run_in_pool(args.common.threads, |threads| run(&args, threads));
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error + Send + Sync>> {
    let c = &args.common;
    c.validate()?;
    let model = Reverser::new(args.dim, args.layers, c.seed);
    let optimizer_settings = c.optimizer_settings(default_lr);
    let groups = ParamGroup::split(
        model.named_parameters(),
        |_, p| p.shape().len() >= 2,
        |g| g.set("weight_decay", 0.0),
    );
    let mut optimizer = optimizer_settings.build(groups)?;
    let total = c.epochs * args.steps;
    let schedule = LinearWarmup::new(
        100,
        0.01,
        CosineAnnealing {
            t_max: total.saturating_sub(100).max(1),
            min_factor: 0.0,
        },
    );
    let settings = c
        .run_settings(&optimizer_settings)
        .with("steps", args.steps)
        .with("dim", args.dim)
        .with("layers", args.layers);
    let label = format!("seq2seq reverse, {}", c.optimizer);
    say!(
        "{label} ({} parameters, d {} x {} layers) | lr {:e} | {} steps of batch {} per epoch | {threads} thread(s)",
        model.num_parameters(),
        args.dim,
        args.layers,
        optimizer_settings.lr,
        args.steps,
        c.batch_size
    );
    let mut task = Reverse {
        model: &model,
        steps: args.steps,
        batch: c.batch_size,
        seed: c.seed,
        epoch: 0,
    };
    let mut config = c.train_config(label, "seq2seq_reverse", settings);
    config.clip_grad_norm = Some(1.0);
    fit(&model, optimizer.as_mut(), &schedule, &mut task, &config)?;
    Ok(())
}
