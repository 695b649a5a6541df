"""Time one MovieLens-100k epoch of a factorization machine in PyTorch and in agdlab, in one run.

The machines here are shared and noisy, so this script measures both frameworks back to
back, alternating, and reports the ratio (PyTorch time / agdlab time: above 1 means
agdlab is faster), not bare times.

    python3 benches/pytorch_fm.py                          # 1 thread, agd adam sgd, 5 rounds
    python3 benches/pytorch_fm.py --threads 2 --rounds 7
    python3 benches/pytorch_fm.py --accuracy               # also PyTorch's best test AUC, 3 splits

Both sides train the same model on the same data: an FM of dimension 16 (bias, and one
table of [w | v] rows, w = 0 and v ~ N(0, 0.01^2) at the start) on the five MovieLens
fields (user, item, age bucket, gender, occupation; a rating of 4+ is a click), split
80/20 by the same SplitMix64 permutation as agdlab's `CtrExamples::split_80_20`, batch
1024, BCE-with-logits loss, and the same optimizer settings; PyTorch's table is a dense
`nn.Embedding`, so every row's optimizer state advances at every step, as in agdlab's
default (`--sparse dense`). Each time covers one pass over the 80,000 training ratings
(batch assembly, forward, backward, optimizer step); an agdlab time is the
`epoch_seconds` of the `fm_ctr` example's metrics CSV. Each round runs `--epochs`
epochs on each side and keeps the median epoch. PyTorch has no AGD, so the script
includes one written from the paper's equations with ordinary tensor ops, as a user of
PyTorch would.
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_common import make_optimizer  # noqa: E402  (AGD from the paper's equations)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M64 = (1 << 64) - 1
AGE_BUCKETS = [18, 25, 35, 45, 50, 56]  # lower ends after "under 18"


def find_movielens():
    for d in [os.environ.get("AGDLAB_MOVIELENS"),
              os.environ.get("AGDLAB_DATA") and os.path.join(os.environ["AGDLAB_DATA"], "movielens-100k"),
              os.path.join(ROOT, "data", "movielens-100k"),
              os.path.join(os.path.dirname(ROOT), "shared", "data", "movielens-100k")]:
        if d and all(os.path.exists(os.path.join(d, f)) for f in ["u.data", "u.user"]):
            return d
    sys.exit("MovieLens-100k not found: put u.data and u.user in data/movielens-100k (see data/README.md)")


def permutation(n, seed):
    """SplitMix64 Fisher-Yates, as agdlab's SplitMix64::permutation."""
    state, p = seed, list(range(n))
    for i in range(n - 1, 0, -1):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        j = (z ^ (z >> 31)) % (i + 1)
        p[i], p[j] = p[j], p[i]
    return p


def load_movielens(directory):
    """Ids [n, 5] in agdlab's table layout, labels [n], table size (src/data/movielens.rs)."""
    users = {}
    for line in open(os.path.join(directory, "u.user"), encoding="utf-8"):
        if line.strip():
            uid, age, gender, occupation, _ = line.rstrip("\r\n").split("|")
            age_bucket = sum(int(age) >= low for low in AGE_BUCKETS)
            users[int(uid)] = (age_bucket, 1 if gender.strip() == "F" else 0, occupation.strip())
    ratings = [tuple(int(x) for x in line.split("\t")[:3])
               for line in open(os.path.join(directory, "u.data"), encoding="utf-8") if line.strip()]
    user_row = {u: r for r, u in enumerate(sorted(users))}
    item_row = {i: r for r, i in enumerate(sorted({i for _, i, _ in ratings}))}
    occupation_row = {o: r for r, o in enumerate(sorted({u[2] for u in users.values()}))}
    sizes = [len(user_row), len(item_row), len(AGE_BUCKETS) + 1, 2, len(occupation_row)]
    offsets = np.cumsum([0] + sizes[:-1])
    ids = np.array([[user_row[u], item_row[i], users[u][0], users[u][1], occupation_row[users[u][2]]]
                    for u, i, _ in ratings], dtype=np.int64) + offsets
    labels = np.array([1.0 if r >= 4 else 0.0 for _, _, r in ratings], dtype=np.float32)
    return torch.from_numpy(ids), torch.from_numpy(labels), sum(sizes)


def split(ids, labels, seed):
    order = torch.tensor(permutation(len(labels), seed))
    train = len(labels) - len(labels) // 5
    return (ids[order[:train]], labels[order[:train]]), (ids[order[train:]], labels[order[train:]])


class FactorizationMachine(torch.nn.Module):
    """agdlab's FactorizationMachine (crates/nn/src/fm.rs): bias, and a table of [w | v] rows."""

    def __init__(self, table_size, dim):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(1))
        self.table = torch.nn.Embedding(table_size, 1 + dim)
        with torch.no_grad():
            self.table.weight[:, 0] = 0.0
            self.table.weight[:, 1:].normal_(0.0, 0.01)

    def forward(self, ids):
        rows = self.table(ids)
        w, e = rows[..., 0], rows[..., 1:]
        pairs = 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1)
        return self.bias + w.sum(1) + pairs


LRS = {"agd": 1e-4, "adam": 1e-3, "sgd": 0.5}


def auc(scores, labels):
    """Exact AUC with ties counting one half."""
    order = np.argsort(scores, kind="mergesort")
    s, y = scores[order], labels[order]
    _, starts, counts = np.unique(s, return_index=True, return_counts=True)
    ranks = np.repeat(starts + (counts + 1) / 2.0, counts)
    positives = y.sum()
    return (ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * (len(y) - positives))


def torch_epochs(name, train, test, table_size, epochs, seed=0, batch=1024):
    """Seconds of each of `epochs` epochs, and the test AUC after each."""
    torch.manual_seed(seed)
    model = FactorizationMachine(table_size, 16)
    opt = make_optimizer(name, model.parameters(), LRS[name], momentum=0.9)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    (x, y), (x_test, y_test) = train, test
    seconds, aucs = [], []
    for _ in range(epochs):
        order = torch.randperm(len(y))
        start = time.perf_counter()
        for i in range(0, len(y), batch):
            idx = order[i:i + batch]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds.append(time.perf_counter() - start)
        with torch.no_grad():
            aucs.append(auc(model(x_test).numpy(), y_test.numpy()))
    return seconds, aucs


def agdlab_epochs(binary, name, epochs, threads):
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "metrics.csv")
        subprocess.run(
            [binary, "--optimizer", name, "--lr", str(LRS[name]), "--epochs", str(epochs),
             "--threads", str(threads), "--metrics", metrics],
            check=True, capture_output=True,
        )
        with open(metrics) as f:
            return [float(row["epoch_seconds"]) for row in csv.DictReader(f)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per round and side (median kept)")
    parser.add_argument("--optimizers", nargs="+", default=["agd", "adam", "sgd"])
    parser.add_argument("--accuracy", action="store_true",
                        help="also train PyTorch 20 epochs on splits 0, 1, 2 and print its best test AUC")
    args = parser.parse_args()

    subprocess.run(["cargo", "build", "--release", "--example", "fm_ctr"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "examples", "fm_ctr")
    torch.set_num_threads(args.threads)
    ids, labels, table_size = load_movielens(find_movielens())
    train, test = split(ids, labels, 0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds of {args.epochs} epochs; "
          f"{len(train[1])} train / {len(test[1])} test, {table_size} rows; first train ids {train[0][0].tolist()}")
    print(f"{'optimizer':<10} {'pytorch s':>10} {'agdlab s':>10} {'ratio':>7}")
    for name in args.optimizers:
        ours, theirs = [], []
        for _ in range(args.rounds):  # alternate so both see the same machine load
            theirs.append(statistics.median(torch_epochs(name, train, test, table_size, args.epochs)[0]))
            ours.append(statistics.median(agdlab_epochs(binary, name, args.epochs, args.threads)))
        t, o = statistics.median(theirs), statistics.median(ours)
        print(f"{name:<10} {t:>10.3f} {o:>10.3f} {t / o:>7.2f}", flush=True)
    if args.accuracy:
        print("PyTorch best test AUC over 20 epochs, splits 0 1 2 (mean):")
        for name in args.optimizers:
            best = [max(torch_epochs(name, *split(ids, labels, s), table_size, 20, seed=s)[1]) for s in range(3)]
            print(f"{name:<10} {' '.join(f'{b:.4f}' for b in best)} ({statistics.mean(best):.4f})", flush=True)


if __name__ == "__main__":
    main()
