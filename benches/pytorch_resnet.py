"""Time training of ResNet-20 on Fashion-MNIST (or LeNet-5 on MNIST) in PyTorch and in
agdlab, in one run, alternating the two, and print the ratio.

The speed bar of agdlab is PyTorch on the CPU. Machines here are shared and noisy, so
this script measures both frameworks back to back, alternating, and reports the ratio
(agdlab time / PyTorch time: below 1 means agdlab is faster; the target for ResNet-20
is at most 0.8 at 2 threads), not bare times.

    pip install torch numpy
    python3 benches/pytorch_resnet.py --threads 2                       # ResNet-20, full epochs
    python3 benches/pytorch_resnet.py --threads 2 --train-subset 3840   # 30 steps per side
    python3 benches/pytorch_resnet.py --model lenet --threads 2

Both sides train the same network (same layers, names and initialisation scheme) on the
same images (the first --train-subset of the training split), batch 128, with the same
optimizer settings, weight decay groups (none on biases and batch-norm parameters) and
cosine schedule. Each time covers the training pass (batch assembly, forward, backward,
optimizer step), not data loading or evaluation: agdlab's comes from the
`epoch_seconds` column of its metrics CSV. With --train-subset the times are scaled to
a 60,000-image epoch. PyTorch has no AGD, so the script includes one written from the
paper's equations with ordinary tensor ops (decoupled weight decay, as agdlab's
default), as a user of PyTorch would.
"""

import argparse
import csv
import gzip
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_common import AGD  # noqa: E402  (with decoupled weight decay)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_data(name):
    for d in [os.path.join(ROOT, "data", name), os.path.join(ROOT, "..", "shared", "data", name)]:
        if os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")):
            return d
    sys.exit(f"{name} not found in data/{name} or ../shared/data/{name}")


def load_train(name, n, mean, std):
    path = find_data(name)
    with gzip.open(os.path.join(path, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    with gzip.open(os.path.join(path, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    x = (torch.from_numpy(images.astype(np.float32)) / 255.0 - mean) / std
    return x, torch.from_numpy(labels.astype(np.int64))


class LeNet5(nn.Module):
    """agdlab::models::LeNet5, same names."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


def conv(cin, cout, k, stride):
    c = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
    nn.init.kaiming_normal_(c.weight)
    return c


class BasicBlock(nn.Module):
    """agdlab::models::BasicBlock: projection shortcut (1x1 conv + BN) when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = conv(cin, cout, 3, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv(cout, cout, 3, 1), nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    """agdlab::models::ResNet: 6k+2 layers, stages of 16/32/64 channels, 28x28 grayscale."""

    def __init__(self, k=3, classes=10):
        super().__init__()
        self.conv1, self.bn1 = conv(1, 16, 3, 1), nn.BatchNorm2d(16)

        def stage(cin, cout, stride):
            return nn.Sequential(*[BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(k)])

        self.layer1, self.layer2, self.layer3 = stage(16, 16, 1), stage(16, 32, 2), stage(32, 64, 2)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean((2, 3)))


SETTINGS = {  # model -> (data set, mean, std, agdlab example, extra flags, lr per optimizer, wd per optimizer)
    "resnet": ("fashion-mnist", 0.2860, 0.3530, "fashion_resnet", [],
               {"sgd": 0.1, "adam": 1e-3, "agd": 1e-3}, {"sgd": 5e-4, "adam": 5e-4, "agd": 1e-2}),
    "lenet": ("mnist", 0.1307, 0.3081, "mnist_agd", ["--model", "cnn"],
              {"sgd": 0.1, "adam": 1e-3, "agd": 1e-3}, {"sgd": 0.0, "adam": 0.0, "agd": 0.0}),
}


def torch_pass(model_name, optimizer_name, x, y, epochs_for_schedule, seed=0):
    _, _, _, _, _, lrs, wds = SETTINGS[model_name]
    torch.manual_seed(seed)
    model = ResNet() if model_name == "resnet" else LeNet5()
    lr, wd = lrs[optimizer_name], wds[optimizer_name]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]
    if optimizer_name == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9)
    elif optimizer_name == "adam":
        opt = torch.optim.Adam(groups, lr=lr)
    else:
        opt = AGD(groups, lr=lr, delta=1e-8 if model_name == "resnet" else 1e-5)
    steps = math.ceil(x.shape[0] / 128)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * epochs_for_schedule)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0])
    model.train()
    start = time.perf_counter()
    for i in range(0, x.shape[0], 128):
        idx = order[i:i + 128]
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return time.perf_counter() - start


def agdlab_pass(binary, model_name, optimizer_name, threads, train_subset):
    _, _, _, _, extra, lrs, wds = SETTINGS[model_name]
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "metrics.csv")
        cmd = [binary, *extra, "--optimizer", optimizer_name, "--lr", str(lrs[optimizer_name]),
               "--epochs", "1", "--threads", str(threads), "--metrics", metrics,
               "--train-subset", str(train_subset)]
        if model_name == "resnet":
            cmd += ["--weight-decay", str(wds[optimizer_name]), "--test-subset", "500",
                    "--diagnostics", os.path.join(tmp, "diag.csv")]
        subprocess.run(cmd, check=True, capture_output=True)
        with open(metrics) as f:
            rows = list(csv.DictReader(f))
    return float(rows[-1]["epoch_seconds"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["resnet", "lenet"], default="resnet")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-subset", type=int, default=60000, help="images per timed pass")
    parser.add_argument("--optimizers", nargs="+", default=["agd", "sgd", "adam"])
    args = parser.parse_args()

    data, mean, std, example, *_ = SETTINGS[args.model]
    subprocess.run(["cargo", "build", "--release", "--example", example], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "examples", example)
    torch.set_num_threads(args.threads)
    x, y = load_train(data, args.train_subset, mean, std)
    scale = 60000 / x.shape[0]
    print(f"torch {torch.__version__}, {args.model}, {args.threads} thread(s), {args.rounds} rounds, "
          f"{x.shape[0]} images per pass (times scaled to a 60,000-image epoch)")
    print(f"{'optimizer':<10} {'pytorch s/epoch':>16} {'agdlab s/epoch':>15} {'agdlab/pytorch':>15}")
    for name in args.optimizers:
        ours, theirs = [], []
        for _ in range(args.rounds):  # alternate so both see the same machine load
            theirs.append(torch_pass(args.model, name, x, y, 1))
            ours.append(agdlab_pass(binary, args.model, name, args.threads, x.shape[0]))
        ratios = [o / t for o, t in zip(ours, theirs)]
        t, o = statistics.median(theirs) * scale, statistics.median(ours) * scale
        print(f"{name:<10} {t:>16.1f} {o:>15.1f} {statistics.median(ratios):>15.2f}"
              f"   (per-round ratios {', '.join(f'{r:.2f}' for r in ratios)})")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
