"""Time one training step of the ptb_lstm model in PyTorch and in agdlab, alternating.

The model and batch of `benches/lstm_step.rs` (the `ptb_lstm` example's model): a
10,000-word vocabulary, embedding 200, a 2-layer 200-unit LSTM, a 10,000-way decoder,
dropout 0.2, untied weights; batch 20, 35 steps. One step is forward, cross-entropy,
backward, clipping to global norm 0.25 and an optimizer step: AGD by default, or any
other with `--optimizer`, at the `ptb_lstm` example's learning rate. PyTorch runs its
fused `nn.LSTM` (with `nn.Embedding`, `nn.Linear`) and `torch.optim`'s SGD, Adam, AdamW
and RAdam; as PyTorch has no AGD or AdaBelief, those two are written from their
equations with ordinary tensor ops (in `pytorch_common.py`).

Machines here are shared and noisy, so each round times PyTorch (the median of
`--steps` steps after two warm-up steps) and then agdlab (the median of the criterion
bench `whole_step_clip_agd`, run with RAYON_NUM_THREADS set), and the script reports the
median over rounds of the per-round ratio agdlab time / PyTorch time (below 1: agdlab
is faster), per thread count. Bare times are printed for reference only. With
`--optimizer NAME` the agdlab side is the bench `whole_step_clip_NAME`.

    pip install torch
    python3 benches/pytorch_lstm.py                        # 1 and 2 threads, 5 rounds
    python3 benches/pytorch_lstm.py --threads 1 --rounds 3
    python3 benches/pytorch_lstm.py --optimizer sgd         # lr 20, as ptb_lstm
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_common import alternate_rounds, compare_steps, make_optimizer, median_step_seconds  # noqa: E402

VOCAB, SIZE, LAYERS, BATCH, SEQ, DROPOUT, CLIP = 10_000, 200, 2, 20, 35, 0.2, 0.25
BENCH_GROUP = "lstm_lm_step_2x200_batch20_seq35"
# The `ptb_lstm` example's learning rate per optimizer (its `default_lr`).
LEARNING_RATES = {"agd": 3e-4, "sgd": 20.0, "adam": 2e-3, "adamw": 2e-3, "adabelief": 2e-3, "radam": 2e-3}


class LanguageModel(torch.nn.Module):
    """PyTorch's word_language_model (LSTM, untied), as examples/ptb_lstm.rs builds it."""

    def __init__(self):
        super().__init__()
        self.drop = torch.nn.Dropout(DROPOUT)
        self.encoder = torch.nn.Embedding(VOCAB, SIZE)
        self.rnn = torch.nn.LSTM(SIZE, SIZE, LAYERS, dropout=DROPOUT)
        self.decoder = torch.nn.Linear(SIZE, VOCAB)

    def forward(self, ids):
        output, _ = self.rnn(self.drop(self.encoder(ids)))
        return self.decoder(self.drop(output).reshape(-1, SIZE))


def torch_step_seconds(steps, optimizer_name):
    """Median wall time of one training step over `steps` steps (after 2 warm-up steps)."""
    torch.manual_seed(0)
    model = LanguageModel()
    optimizer = make_optimizer(optimizer_name, model.parameters(), LEARNING_RATES[optimizer_name])
    ids = torch.randint(0, VOCAB, (SEQ, BATCH))
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

    binary, args = compare_steps(__doc__, "lstm_step", add_flags)
    name, lr = args.optimizer, LEARNING_RATES[args.optimizer]
    print(f"torch {torch.__version__}; one step = forward + backward + clip {CLIP} + {name} (lr {lr:g}); "
          f"{LAYERS}x{SIZE} LSTM, vocabulary {VOCAB}, batch {BATCH} x {SEQ}; {args.rounds} rounds")
    alternate_rounds(binary, BENCH_GROUP, f"whole_step_clip_{name}",
                     lambda steps: torch_step_seconds(steps, name), args)


if __name__ == "__main__":
    main()
