"""Permute-copies (NCHW <-> NHWC) in PyTorch and in agdlab, each against its own copy.

The shapes of `benches/permute_ratio.rs` (ResNet activations at batch 128, and one large
map). For each shape PyTorch times `x.clone()`, `x.permute(0, 2, 3, 1).contiguous()` and
`y.permute(0, 3, 1, 2).contiguous()` the way that bench times agdlab's `to_vec()` and
`contiguous()`: eight calls per measurement, the three lines in a rotating order, the
ratio of each permute to the copy of its own round. Each outer round runs PyTorch and
then the agdlab bench (RAYON_NUM_THREADS set), so both see the same machine load.

It prints, per shape and direction, the median over outer rounds of:
- each framework's permute-copy / plain copy (the target of issue 6 is at most 1.5);
- agdlab's permute time / PyTorch's (below 1: agdlab is faster).

    pip install torch
    python3 benches/pytorch_permute.py                  # 1 thread, 3 rounds
    python3 benches/pytorch_permute.py --threads 2 --rounds 5
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_common import ROOT, build_bench  # noqa: E402

SHAPES = [(128, 16, 32, 32), (128, 32, 16, 16), (128, 64, 8, 8), (128, 16, 64, 64)]
CALLS_PER_MEASUREMENT = 8


def torch_medians(shape, inner_rounds):
    """Median seconds per call of clone, to-NHWC and to-NCHW, timed as permute_ratio.rs does."""
    n, c, h, w = shape
    x = torch.rand(shape)
    y = torch.rand((n, h, w, c))
    lines = [x.clone, lambda: x.permute(0, 2, 3, 1).contiguous(), lambda: y.permute(0, 3, 1, 2).contiguous()]
    for _ in range(5):
        for line in lines:
            line()
    times = [[], [], []]
    for r in range(inner_rounds):
        for k in range(3):
            j = (r + k) % 3
            start = time.perf_counter()
            for _ in range(CALLS_PER_MEASUREMENT):
                lines[j]()
            times[j].append((time.perf_counter() - start) / CALLS_PER_MEASUREMENT)
    return [statistics.median(t) for t in times]


def agdlab_medians(binary, threads, inner_rounds):
    """Median seconds per call of copy, to-NHWC and to-NCHW per shape, from the bench's
    table of median times."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run([binary, "--rounds", str(inner_rounds)], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    medians = {}
    for line in out.splitlines():
        m = re.match(r"\| \[(\d+), (\d+), (\d+), (\d+)\] \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", line)
        if m:
            shape = tuple(int(v) for v in m.groups()[:4])
            medians[shape] = [float(v) * 1e-6 for v in m.groups()[4:]]
    missing = [s for s in SHAPES if s not in medians]
    if missing:
        raise RuntimeError(f"the permute_ratio bench printed no times for {missing}:\n{out}")
    return medians


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="outer rounds (PyTorch, then agdlab)")
    parser.add_argument("--inner-rounds", type=int, default=30, help="interleaved rounds per shape within one")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    binary = build_bench("permute_ratio")

    # Per shape and direction: lists over outer rounds.
    theirs_vs_copy = {s: ([], []) for s in SHAPES}
    ours_vs_copy = {s: ([], []) for s in SHAPES}
    ours_vs_theirs = {s: ([], []) for s in SHAPES}
    for _ in range(args.rounds):
        torch_times = {s: torch_medians(s, args.inner_rounds) for s in SHAPES}
        our_times = agdlab_medians(binary, args.threads, args.inner_rounds)
        for s in SHAPES:
            (t_copy, *t_permutes), (o_copy, *o_permutes) = torch_times[s], our_times[s]
            for d in range(2):
                theirs_vs_copy[s][d].append(t_permutes[d] / t_copy)
                ours_vs_copy[s][d].append(o_permutes[d] / o_copy)
                ours_vs_theirs[s][d].append(o_permutes[d] / t_permutes[d])

    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds; medians over rounds")
    print("| shape | direction | PyTorch permute / clone | agdlab permute / copy | agdlab / PyTorch permute time |")
    print("|---|---|---|---|---|")
    for s in SHAPES:
        for d, name in enumerate(["NCHW->NHWC", "NHWC->NCHW"]):
            med = lambda table: statistics.median(table[s][d])  # noqa: E731
            print(f"| {list(s)} | {name} | {med(theirs_vs_copy):.2f} | {med(ours_vs_copy):.2f} | "
                  f"{med(ours_vs_theirs):.2f} |")


if __name__ == "__main__":
    main()
