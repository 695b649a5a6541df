"""Time one training step of the ptb_transformer model in PyTorch and in agdlab, alternating.

The model and batch of `benches/transformer_step.rs` (the `ptb_transformer` example's
model): a 10,000-word vocabulary, token and learned position embeddings, 2 pre-LN
`nn.TransformerEncoderLayer`s (d_model 128, 4 heads, feed-forward 512, GELU, dropout
0.1, batch-first, causal mask), a final LayerNorm and an untied head; batch 20, windows
of 35 tokens. One step is forward, cross-entropy, backward, clipping to global norm 1.0
and an optimizer step: AGD by default (as PyTorch has no AGD: written from the paper's
equations with ordinary tensor ops, in `pytorch_common.py`), or any other with
`--optimizer`, at the `ptb_transformer` example's learning rate (SGD with momentum 0.9,
AdamW with weight decay 1e-2, as `agdlab::study::recipes` runs them; AdaBelief, which
PyTorch lacks, from its equations).

Each round times PyTorch (the median of `--steps` steps after two warm-up steps) and then
agdlab (the median of the criterion bench `whole_step_clip_agd`, run with
RAYON_NUM_THREADS set), and the script reports the median over rounds of the per-round
ratio agdlab time / PyTorch time (below 1: agdlab is faster), per thread count. With
`--optimizer NAME` the agdlab side is the bench `whole_step_clip_NAME`.

    python3 benches/pytorch_transformer.py                  # 1 and 2 threads, 5 rounds
    python3 benches/pytorch_transformer.py --threads 2 --rounds 3
    python3 benches/pytorch_transformer.py --optimizer adamw
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_common import (  # noqa: E402
    TransformerLm, alternate_rounds, compare_steps, make_optimizer, median_step_seconds,
)

VOCAB, DIM, HEADS, LAYERS, BATCH, SEQ, DROPOUT, CLIP = 10_000, 128, 4, 2, 20, 35, 0.1, 1.0
BENCH_GROUP = "transformer_lm_step_2x128_batch20_seq35"
BENCH = "transformer_step"
# The `ptb_transformer` example's learning rate per optimizer (its `default_lr`).
LEARNING_RATES = {"agd": 3e-4, "sgd": 0.1, "adam": 1e-3, "adamw": 1e-3, "adabelief": 1e-3, "radam": 1e-3}

def torch_step_seconds(steps, optimizer_name):
    """Median wall time of one training step over `steps` steps (after 2 warm-up steps)."""
    torch.manual_seed(0)
    model = TransformerLm(VOCAB, DIM, HEADS, LAYERS, SEQ, DROPOUT)
    optimizer = make_optimizer(optimizer_name, model.parameters(), LEARNING_RATES[optimizer_name],
                               delta=1e-14, momentum=0.9)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ))
    targets = torch.randint(0, VOCAB, (SEQ * BATCH,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(ids), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()

    return median_step_seconds(step, steps)


def main():
    def add_flags(parser):
        parser.add_argument("--optimizer", choices=sorted(LEARNING_RATES), default="agd")

    binary, args = compare_steps(__doc__, BENCH, add_flags)
    name, lr = args.optimizer, LEARNING_RATES[args.optimizer]
    print(f"torch {torch.__version__}; one step = forward + backward + clip {CLIP} + {name} (lr {lr:g}); "
          f"{LAYERS} x {DIM} pre-LN Transformer, vocabulary {VOCAB}, batch {BATCH} x {SEQ}; {args.rounds} rounds")
    alternate_rounds(binary, BENCH_GROUP, f"whole_step_clip_{name}",
                     lambda steps: torch_step_seconds(steps, name), args)


if __name__ == "__main__":
    main()
