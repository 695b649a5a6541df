"""Train examples/ptb_transformer.rs's recipe in PyTorch, for a side-by-side perplexity.

The model of `benches/pytorch_transformer.py` (token + learned position embeddings with
dropout, L pre-LN `nn.TransformerEncoderLayer`s with GELU, a final LayerNorm, an untied
head) trained as the example trains it: PTB read as `word_language_model` reads it (the
vocabulary in first-appearance order, `<eos>` after every line), 20 parallel streams,
windows of 35 tokens with no state carried between them (the last window shorter),
cross-entropy, global-norm clipping at 1.0, 200 linear warm-up steps from 1/200 then a
cosine schedule to 0, decoupled weight decay 0.01 on parameters with 2 or more
dimensions, AGD (written from the paper's equations, `pytorch_common.AGD`) or AdamW.
Validation and test perplexity over windows of 10 streams, as the example evaluates.

    python3 benches/pytorch_ptb_transformer_train.py                      # AGD lr 3e-4 δ 1e-14, 3 epochs
    python3 benches/pytorch_ptb_transformer_train.py --epochs 1 --threads 2
    python3 benches/pytorch_ptb_transformer_train.py --optimizer adamw --lr 1e-3

The data directory is `--data-dir`, else `$AGDLAB_PTB`, `data/ptb` or `../shared/data/ptb`.
"""

import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_common import AGD, TransformerLm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_ptb(flag):
    candidates = [flag, os.environ.get("AGDLAB_PTB"), os.path.join(ROOT, "data", "ptb"),
                  os.path.join(ROOT, "..", "shared", "data", "ptb")]
    for path in candidates:
        if path and os.path.exists(os.path.join(path, "ptb.train.txt")):
            return path
    sys.exit("PTB not found: give --data-dir, set AGDLAB_PTB, or put ptb.{train,valid,test}.txt in data/ptb")


def read_ptb(directory):
    vocab = {}
    splits = {}
    for split in ("train", "valid", "test"):
        ids = []
        with open(os.path.join(directory, f"ptb.{split}.txt"), encoding="utf-8") as f:
            for line in f:
                for word in line.split() + ["<eos>"]:
                    if word not in vocab:
                        vocab[word] = len(vocab)
                    ids.append(vocab[word])
        splits[split] = torch.tensor(ids, dtype=torch.long)
    return vocab, splits


def streams(ids, batch):
    """[rows, batch]: stream b is the b-th contiguous slice of the tokens."""
    rows = len(ids) // batch
    return ids[: rows * batch].view(batch, rows).t().contiguous()


def windows(data, seq):
    """(inputs, targets) batch-first, every `seq` rows, the last one shorter."""
    for start in range(0, data.shape[0] - 1, seq):
        length = min(seq, data.shape[0] - 1 - start)
        yield data[start:start + length].t(), data[start + 1:start + 1 + length].t()


def parameter_kind(name):
    """examples/ptb_transformer.rs's `parameter_kind`, on PyTorch's names."""
    if name.startswith(("embedding.", "positions")):
        return "embedding"
    if "self_attn." in name:
        return "attention"
    if "linear1." in name or "linear2." in name:
        return "feed-forward"
    if "norm" in name:
        return "norm"
    return "head"


@torch.no_grad()
def sgd_mode_by_kind(model, optimizer):
    """AGD's share of coordinates in SGD mode after the last step (its `v` is AGD's b), size-weighted per kind."""
    counts = {}
    for name, p in model.named_parameters():
        state = optimizer.state.get(p)
        if not state:
            continue
        group = next(g for g in optimizer.param_groups if any(q is p for q in g["params"]))
        threshold = group["delta"] * (1 - group["betas"][1] ** state["step"]) ** 0.5
        kind = parameter_kind(name)
        sgd, total = counts.get(kind, (0, 0))
        counts[kind] = (sgd + int((state["v"].sqrt() <= threshold).sum()), total + p.numel())
    return {k: sgd / total for k, (sgd, total) in counts.items()}


@torch.no_grad()
def mean_loss(model, data, seq):
    model.eval()
    total, count = 0.0, 0
    for inputs, targets in windows(data, seq):
        logits = model(inputs)
        total += torch.nn.functional.cross_entropy(logits, targets.reshape(-1), reduction="sum").item()
        count += targets.numel()
    model.train()
    return total / count


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--optimizer", choices=["agd", "adamw"], default="agd")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--delta", type=float, default=1e-14)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--embedding-std", type=float, default=0.02)
    p.add_argument("--seq-len", type=int, default=35)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    vocab, splits = read_ptb(find_ptb(args.data_dir))
    train = streams(splits["train"], args.batch_size)
    valid, test = streams(splits["valid"], 10), streams(splits["test"], 10)
    model = TransformerLm(len(vocab), args.dim, args.heads, args.layers, args.seq_len, args.dropout,
                          args.embedding_std)
    matrices = [q for q in model.parameters() if q.dim() >= 2]
    others = [q for q in model.parameters() if q.dim() < 2]
    groups = [dict(params=matrices, weight_decay=args.weight_decay), dict(params=others, weight_decay=0.0)]
    if args.optimizer == "agd":
        optimizer = AGD(groups, lr=args.lr, delta=args.delta)
    else:
        optimizer = torch.optim.AdamW(groups, lr=args.lr)
    steps_per_epoch = math.ceil((train.shape[0] - 1) / args.seq_len)
    total = args.epochs * steps_per_epoch
    t_max = max(total - args.warmup, 1)

    def factor(t):
        if t < args.warmup:
            start = 1.0 / max(args.warmup, 1)
            return start + (1.0 - start) * t / args.warmup
        return 0.5 * (1.0 + math.cos(math.pi * (t - args.warmup) / t_max))

    print(f"torch {torch.__version__}, {args.threads} thread(s); {args.optimizer} lr {args.lr:g}"
          f"{f' δ {args.delta:g}' if args.optimizer == 'agd' else ''}; vocabulary {len(vocab)}; "
          f"{steps_per_epoch} steps an epoch", flush=True)
    step = 0
    for epoch in range(1, args.epochs + 1):
        start, total_loss, count = time.time(), 0.0, 0
        for inputs, targets in windows(train, args.seq_len):
            for group in optimizer.param_groups:
                group["lr"] = args.lr * factor(step)
            loss = torch.nn.functional.cross_entropy(model(inputs), targets.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            total_loss += loss.item() * targets.numel()
            count += targets.numel()
            step += 1
        seconds = time.time() - start
        valid_loss = mean_loss(model, valid, args.seq_len)
        print(f"epoch {epoch}: train_ppl {math.exp(total_loss / count):.1f} valid_ppl "
              f"{math.exp(valid_loss):.1f} epoch_seconds {seconds:.0f}", flush=True)
        if args.optimizer == "agd":
            shares = sgd_mode_by_kind(model, optimizer)
            print("  SGD mode: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in sorted(shares.items())), flush=True)
    print(f"test_ppl {math.exp(mean_loss(model, test, args.seq_len)):.1f}", flush=True)


if __name__ == "__main__":
    main()
