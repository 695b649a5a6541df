"""Time one MNIST epoch of the 784-512-256-10 MLP in PyTorch and in agdlab, in one run.

The speed bar of agdlab is PyTorch on the CPU. Machines here are shared and noisy, so
this script measures both frameworks back to back, alternating, and reports the ratio
(PyTorch time / agdlab time: above 1 means agdlab is faster), not bare times.

    pip install torch numpy
    python3 benches/pytorch_mlp.py                    # 1 thread, sgd adam agd, 3 rounds
    python3 benches/pytorch_mlp.py --threads 2 --rounds 5

Both sides train the same model on the same data (the MNIST files in data/mnist),
batch 128, with the same optimizer settings; each time covers one pass over the 60,000
training images (batch assembly, forward, backward, optimizer step), not data loading.
PyTorch has no AGD, so the script includes one written from the paper's equations with
ordinary tensor ops, as a user of PyTorch would (the reference implementation works the
same way, one op at a time).
"""

import argparse
import csv
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_common import AGD  # noqa: E402  (AGD from the paper's equations)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_mnist_train():
    path = os.path.join(ROOT, "data", "mnist")
    with gzip.open(os.path.join(path, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(os.path.join(path, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (torch.from_numpy(images.astype(np.float32)) / 255.0 - 0.1307) / 0.3081
    return x, torch.from_numpy(labels.astype(np.int64))


def torch_epoch(optimizer_name, lr, x, y, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    if optimizer_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    elif optimizer_name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = AGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0])
    start = time.perf_counter()
    for i in range(0, x.shape[0], 128):
        idx = order[i:i + 128]
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def agdlab_epoch(binary, optimizer_name, lr, threads):
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "metrics.csv")
        subprocess.run(
            [binary, "--optimizer", optimizer_name, "--lr", str(lr), "--epochs", "1",
             "--schedule", "constant", "--threads", str(threads), "--metrics", metrics],
            check=True, capture_output=True,
        )
        with open(metrics) as f:
            rows = list(csv.DictReader(f))
    return float(rows[-1]["epoch_seconds"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--optimizers", nargs="+", default=["sgd", "adam", "agd"])
    args = parser.parse_args()

    subprocess.run(["cargo", "build", "--release", "--example", "mnist_agd"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "examples", "mnist_agd")
    torch.set_num_threads(args.threads)
    x, y = load_mnist_train()
    lrs = {"sgd": 0.1, "adam": 1e-3, "agd": 1e-4}
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds, one epoch each")
    print(f"{'optimizer':<10} {'pytorch s':>10} {'agdlab s':>10} {'ratio':>7}")
    for name in args.optimizers:
        ours, theirs = [], []
        for _ in range(args.rounds):  # alternate so both see the same machine load
            theirs.append(torch_epoch(name, lrs[name], x, y))
            ours.append(agdlab_epoch(binary, name, lrs[name], args.threads))
        t, o = statistics.median(theirs), statistics.median(ours)
        print(f"{name:<10} {t:>10.2f} {o:>10.2f} {t / o:>7.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
